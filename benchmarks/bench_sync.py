"""`mica sync` over loopback: bytes moved, up-to-date re-sync, resume after a kill, latency,
and ``rsync -a`` of the same folders side by side.

    python benchmarks/bench_sync.py [--days 30] [--period-days 100] [--only-period]
        [--work DIR] [--reuse]

1. Builds a ``--days`` simulated archive through the real update paths (L0 of every slot with
   its columnar store, so its header-3 views too, and the obspars of the window), publishes it
   (``mica publish``'s function) and serves it with a threaded static server on 127.0.0.1
   (HTTP ranges; a ``--latency`` delay before each answer when asked).
2. Prints, each measured on a fresh laptop archive:

   * a selective sync (L0 of the middle third, slots 0-3; ``aca-hdr3`` and ``obspar`` of the
     whole window): bytes moved against the bytes of the selected entries (target <= 1.05x);
   * the same sync again, up to date: bytes moved against the data's (target <= 0.5 %);
   * a whole ``aca-l0`` sync killed (SIGKILL) at about 40 % then run again: bytes downloaded
     twice, against the partial files left (at most one per transfer);
   * throughput of the whole ``aca-l0`` sync with 1 and 8 transfers under 40 ms of added
     latency per request;
   * ``rsync -a`` of the same folders (``aca0``, ``obspar``) on the same disk: bytes and wall
     time, first and up to date (installed with apt-get where absent; skipped if it cannot be).

3. First (alone with ``--only-period``): day ``--period-days`` of a header-3 period appended
   to the days before it (built once through the store's own build path, 8 slots at the full
   cadence, `mica.sim.hdr3_store`), published, and the next ``aca-hdr3`` sync of a laptop that
   holds the chunks of the days before: bytes moved against the changed chunks whole, and
   ``rsync``'s delta transfer of the store folder to a copy of those chunks.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mica.engine.obsid_update import update_obsid_archive  # noqa: E402
from mica.engine.time_update import update_archive  # noqa: E402
from mica.products.aca_l0 import L0  # noqa: E402
from mica.products.obspar import OBSPAR  # noqa: E402
from mica.sync.client import SyncClient  # noqa: E402
from mica.sync.manifest import Selection  # noqa: E402
from mica.sync.publish import publish  # noqa: E402
from mica.sync.run import STAGING, sync  # noqa: E402
from mica.time import to_date, to_secs  # noqa: E402

START = "2012:100:00:00:00"
REPO = Path(__file__).resolve().parents[1]


class Served:
    """A static server of ``root`` on 127.0.0.1 counting the bytes it sends."""

    def __init__(self, root: Path):
        state = self
        self.root, self.sent, self.latency = root, 0, 0.0
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as nginx (a small range: 40 ms else)

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                if state.latency:
                    time.sleep(state.latency)
                path = state.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                size = path.stat().st_size
                start, stop = 0, size
                rng = self.headers.get("Range", "")
                if rng.startswith("bytes="):  # "a-" or "a-b" (b included), as nginx
                    first, last = rng[6:].split("-", 1)
                    start, stop = int(first), min(int(last) + 1, size) if last else size
                ranged = (start, stop) != (0, size)
                self.send_response(206 if ranged else 200)
                self.send_header("Content-Length", str(stop - start))
                if ranged:
                    self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
                self.end_headers()
                with open(path, "rb") as fh:
                    fh.seek(start)
                    left = stop - start
                    while left and (block := fh.read(min(1 << 16, left))):
                        left -= len(block)
                        try:
                            self.wfile.write(block)
                        except OSError:
                            return
                        with state.lock:
                            state.sent += len(block)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client killed mid-request (the resume test): nothing to report

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def take(self) -> int:
        with self.lock:
            sent, self.sent = self.sent, 0
        return sent


def build(root: Path, days: float) -> tuple[float, float]:
    t0 = to_secs(START)
    t1 = t0 + days * 86400.0
    tic = time.perf_counter()
    update_archive(L0, "sim", t0, t1, data_root=root / "aca0")
    update_obsid_archive(OBSPAR, "sim", start=t0, stop=t1, data_root=root / "obspar")
    print(f"built {days:g} days in {time.perf_counter() - tic:.0f} s")
    return t0, t1


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def row(what: str, value: str, note: str = "") -> None:
    print(f"  {what:<58} {value:>18}  {note}")


def timed_sync(url: str, products: list[str], local: Path, sel: Selection, transfers: int):
    tic = time.perf_counter()
    report = sync(url, products, sel, archive=local, transfers=transfers)
    assert report.ok, report.summary()
    return report, time.perf_counter() - tic


def kill_and_resume(served: Served, local: Path, data: int) -> None:
    """A whole aca-l0 sync killed at ~40 % of its bytes, then run again."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "mica.cli", "--archive", str(local), "sync", served.url]
    cmd += ["--products", "aca-l0", "--transfers", "8", "--quiet"]
    served.take()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while served.sent < 0.4 * data and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = served.take()
    staged = [p for p in (local / STAGING).iterdir() if p.is_file()]
    partials = [p for p in staged if p.name.endswith(".partial")]
    kept = sum(p.stat().st_size for p in staged)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    second = served.take()
    row("killed at (server's count: socket buffers included)", f"{first / 1e6:.1f} MB")
    total = f"of {data / 1e6:.1f} MB"
    row("files kept in staging (verified, partial)", f"{kept / 1e6:.1f} MB", total)
    row("partial files among them (8 transfers)", f"{len(partials)}")
    row("resumed sync moved", f"{second / 1e6:.2f} MB", f"missing: {(data - kept) / 1e6:.2f} MB")
    again = second - (data - kept)
    row(
        "bytes downloaded again (beyond what was missing)",
        f"{again / 1e6:.3f} MB",
        f"(at most one partial file per transfer: {'yes' if len(partials) <= 8 else 'NO'})",
    )


def have_rsync() -> bool:
    """Whether rsync runs here (installed with apt-get where absent; said when it cannot be)."""
    if shutil.which("rsync") is None:
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "rsync"], capture_output=True, check=False
        )
    if shutil.which("rsync") is None:
        print("  rsync not installed and not installable here: skipped")
        return False
    return True


def rsync_side_by_side(server: Path, work: Path) -> None:
    if not have_rsync():
        return
    dest = work / "rsync"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir()
    for label in ("first", "up to date"):
        tic = time.perf_counter()
        done = subprocess.run(
            ["rsync", "-a", "--stats", str(server / "aca0"), str(server / "obspar"), str(dest)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        secs = time.perf_counter() - tic
        sent = next(
            (ln.split(":", 1)[1].strip() for ln in done.stdout.splitlines()
             if ln.startswith("Total bytes sent")),
            "?",
        )  # fmt: skip
        row(f"rsync -a aca0 obspar ({label})", f"{secs:.2f} s", f"bytes sent {sent}")


#: the header-3 period of the appended-day measure (`period_day_sync`)
PERIOD_START = 52 * 100 * 86400.0


def period_day_sync(work: Path, days: int, reuse: bool) -> None:
    """Day ``days`` (1: the first) appended to a header-3 period on the server, published:
    the next ``aca-hdr3`` sync of a laptop holding the period's chunks of the days before,
    beside the changed chunks whole and ``rsync -a --fuzzy --no-whole-file --delete-after``
    of the store folder (rsync's delta transfer, the older generation, deleted only after,
    found as the basis of the newly named file)."""
    from mica.sim.hdr3_store import day_files, store_hdr3_files

    built = work / f"period-built-{days - 1}"
    if not (reuse and (built / "aca0").exists()):
        shutil.rmtree(built, ignore_errors=True)
        tic = time.perf_counter()
        for day in range(days - 1):
            store_hdr3_files(built / "aca0", day_files(PERIOD_START + day * 86400.0))
        secs = time.perf_counter() - tic
        print(f"  built {days - 1} days of header-3 store (8 slots) in {secs:.0f} s")
    server, laptop, basis = work / "period-server", work / "period-laptop", work / "period-rsync"
    whole_laptop = work / "period-laptop-whole"
    for folder in (server, laptop, basis, whole_laptop):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(built, server)
    shutil.copytree(server / "aca0" / "store", basis)
    publish(server, ["aca-hdr3"])
    served = Served(server)
    sync(served.url, ["aca-hdr3"], archive=laptop)
    shutil.copytree(laptop, whole_laptop)
    for chunk in (whole_laptop / "aca0" / "store").rglob("*.h5"):
        chunk.unlink()  # (no older generation here: the chunks come whole)
    store_hdr3_files(server / "aca0", day_files(PERIOD_START + (days - 1) * 86400.0))
    publish(server, ["aca-hdr3"])
    served.take()
    report, whole_secs = timed_sync(served.url, ["aca-hdr3"], whole_laptop, Selection(), 4)
    whole_moved = served.take()
    report, secs = timed_sync(served.url, ["aca-hdr3"], laptop, Selection(), 4)
    moved = served.take()
    whole = sum(e.size for p in report.plans for e in p.needed)
    fetched, _ = report.patched_bytes
    row(
        f"chunks the day changed ({len(report.patched)} made from the older ones)",
        f"{whole / 1e6:.1f} MB",
    )
    row(
        "mica sync holding the older chunks: bytes moved",
        f"{moved / 1e6:.2f} MB",
        f"{moved / whole:.3f}x; {secs:.2f} s on loopback",
    )
    row("  of which pieces of chunks (the rest: head, parts)", f"{fetched / 1e6:.2f} MB")
    row(
        "mica sync holding none: bytes moved (chunks whole)",
        f"{whole_moved / 1e6:.2f} MB",
        f"{whole_moved / whole:.3f}x; {whole_secs:.2f} s on loopback",
    )
    if not have_rsync():
        return
    tic = time.perf_counter()
    done = subprocess.run(
        ["rsync", "-a", "--fuzzy", "--no-whole-file", "--delete-after", "--stats",
         f"{server / 'aca0' / 'store'}/", str(basis)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    secs = time.perf_counter() - tic
    stats = dict(ln.split(":", 1) for ln in done.stdout.splitlines() if ":" in ln)
    sent = int(stats["Total bytes sent"].split()[0].replace(",", ""))
    row(
        "rsync delta transfer (--fuzzy) of the store: bytes sent",
        f"{sent / 1e6:.2f} MB",
        f"{sent / whole:.3f}x; {secs:.2f} s",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30.0, help="days of simulated data")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: temp)")
    parser.add_argument("--reuse", action="store_true", help="keep an archive built in --work")
    parser.add_argument("--latency", type=float, default=0.04, help="added seconds per request")
    parser.add_argument(
        "--period-days",
        type=int,
        default=100,
        help="days of the header-3 period a day is appended to",
    )
    parser.add_argument("--only-period", action="store_true", help="the appended day alone")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-sync-"))
    print(f"Day {args.period_days} appended to a header-3 period, then synced:")
    period_day_sync(work, args.period_days, args.reuse)
    if args.only_period:
        return
    server = work / "server"
    if not (args.reuse and (server / "aca0").exists()):
        shutil.rmtree(server, ignore_errors=True)
        t0, t1 = build(server, args.days)
    else:
        t0, t1 = to_secs(START), to_secs(START) + args.days * 86400.0
    tic = time.perf_counter()
    publish(server)
    print(f"published in {time.perf_counter() - tic:.1f} s")
    served = Served(server)
    data = folder_bytes(server / "aca0") + folder_bytes(server / "obspar")
    print(f"archive: {data / 1e6:.0f} MB in aca0 and obspar ({args.days:g} days)")
    print("Selective sync (L0 middle third, slots 0-3; aca-hdr3 and obspar of the window):")
    third = (t1 - t0) / 3
    products = [("aca-l0", Selection(t0 + third, t1 - third, (0, 1, 2, 3)))]
    products += [("aca-hdr3", Selection(t0, t1)), ("obspar", Selection(t0, t1))]
    local = work / "laptop-selective"
    shutil.rmtree(local, ignore_errors=True)
    served.take()
    selected = moved = 0
    for name, sel in products:
        report, _ = timed_sync(served.url, [name], local, sel, 8)
        selected += sum(e.size for p in report.plans for e in p.needed if e.kind != "link")
    moved = served.take()
    row("bytes of the selected entries", f"{selected / 1e6:.2f} MB")
    row("bytes moved (files, heads, parts)", f"{moved / 1e6:.2f} MB", f"{moved / selected:.3f}x")
    for name, sel in products:
        timed_sync(served.url, [name], local, sel, 8)
    again = served.take()
    row("up-to-date re-sync: bytes moved", f"{again / 1e3:.1f} kB", f"{again / data:.4%} of data")
    print("Resume after a kill (whole aca-l0, 8 transfers):")
    local = work / "laptop-killed"
    shutil.rmtree(local, ignore_errors=True)
    plan = sync(served.url, ["aca-l0"], archive=work / "laptop-plan", dry_run=True)
    kill_and_resume(served, local, sum(t.size for p in plan.plans for t in p.transfers()))
    print(f"Throughput, whole aca-l0, {args.latency * 1000:.0f} ms added per request:")
    served.latency = args.latency
    items = [t for p in plan.plans for t in p.transfers()]
    for transfers in (1, 8):
        staging = work / f"staging-{transfers}"
        shutil.rmtree(staging, ignore_errors=True)
        served.take()
        tic = time.perf_counter()
        with SyncClient(served.url, transfers) as client:
            client.fetch_all(items, staging)
        secs = time.perf_counter() - tic
        nbytes = served.take()
        row(
            f"{transfers} transfer{'s' if transfers > 1 else ''}: {len(items)} files downloaded",
            f"{nbytes / 1e6 / secs:.1f} MB/s",
            f"{secs:.1f} s",
        )
        shutil.rmtree(staging, ignore_errors=True)
    local = work / "laptop-whole"
    shutil.rmtree(local, ignore_errors=True)
    _, secs = timed_sync(served.url, ["aca-l0"], local, Selection(), 8)
    row("whole sync, 8 transfers (download, validation, install)", f"{secs:.1f} s")
    served.latency = 0.0
    print("rsync -a of the same folders (same disk, no validation):")
    rsync_side_by_side(server, work)
    print(f"(window {to_date(t0)[:8]} .. {to_date(t1)[:8]}; work folder {work})")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
