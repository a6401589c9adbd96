"""Per-obsid archives: CDA download throughput and get_files by time over 2,000+ obsids.

    python benchmarks/bench_obsid.py [--files 16] [--mb 4] [--obsids 2000]

1. Download throughput from a loopback HTTP server (http.server in its own process) serving
   gzipped files in the public bulk-download layout, with 1 and 8 parallel transfers,
   beside a bare copy of the same bytes (``shutil.copyfile``); once with no added latency
   and once with 40 ms per response (a WAN round trip), where parallelism pays.
2. ``get_files`` by time range over bench archives of at least 2,000 obsids:
   * obspar: built through the real update path (simulated upstream, ingest, links);
   * asp1: the index rows ingest writes (8 contents per aspect interval of the default
     and last revision of every science obsid, revision and link tables), written
     directly because simulating ~150,000 FITS files would take an hour; the query reads
     only the index, so its timing is that of a real archive of this size.
Prints a table.
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mica.archive import asp_l1, obspar  # noqa: E402
from mica.engine.index import ArchiveIndex  # noqa: E402
from mica.engine.obsid_layout import mark_revision, relink  # noqa: E402
from mica.engine.obsid_update import update_obsid_archive  # noqa: E402
from mica.products.asp_l1 import ASP_L1  # noqa: E402
from mica.products.obspar import OBSPAR  # noqa: E402
from mica.sim import asp_l1 as sim  # noqa: E402
from mica.sim.mission import default_mission  # noqa: E402
from mica.sources.cda import CDASource  # noqa: E402
from mica.sources.cda_lists import Listed  # noqa: E402
from mica.time import year_doy  # noqa: E402


# --- 1. download throughput ----------------------------------------------------------------------
def make_files(folder: Path, n: int, mb: float) -> list[Listed]:
    """n gzipped files of ~mb MB each (FITS-like: half noise, half zeros)."""
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        raw = np.concatenate(
            [
                rng.integers(0, 256, int(mb * 2**20 * 0.7), dtype=np.uint8),
                np.zeros(int(mb * 2**20 * 0.3), dtype=np.uint8),
            ]
        ).tobytes()
        name = f"pcadf{400000000 + i * 1000:09d}N001_asol1.fits"
        (folder / (name + ".gz")).write_bytes(gzip.compress(raw, compresslevel=1, mtime=0))
        out.append(Listed(name, len(raw)))
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    folder: Path
    delay: float

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        path = self.folder / Path(self.path).name
        if not path.exists():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        time.sleep(self.delay)
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _run_server(folder: Path, delay: float, port: multiprocessing.Value) -> None:
    handler = type("H", (_Handler,), {"folder": folder, "delay": delay})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    port.value = httpd.server_address[1]
    httpd.serve_forever(poll_interval=0.05)


def serve(folder: Path, delay: float) -> tuple[multiprocessing.Process, str]:
    """The loopback server in its own process, so it does not share the client's GIL."""
    port = multiprocessing.Value("i", 0)
    proc = multiprocessing.get_context("fork").Process(
        target=_run_server, args=(folder, delay, port), daemon=True
    )
    proc.start()
    while port.value == 0:
        time.sleep(0.01)
    return proc, f"http://127.0.0.1:{port.value}"


def bench_downloads(n: int, mb: float) -> list[tuple[str, str]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        served = tmp / "served"
        served.mkdir()
        files = make_files(served, n, mb)
        total = sum((served / (f.name + ".gz")).stat().st_size for f in files)
        copy_dir = tmp / "copy"
        copy_dir.mkdir()
        t0 = time.perf_counter()
        for f in files:
            shutil.copyfile(served / (f.name + ".gz"), copy_dir / (f.name + ".gz"))
        dt = time.perf_counter() - t0
        rows.append(
            (
                f"bare copy of the same {n} files ({total / 2**20:.0f} MB)",
                f"{total / 2**20 / dt:8.0f} MB/s",
            )
        )
        for delay in (0.0, 0.04):
            server, url = serve(served, delay)
            for workers in (1, 8):
                src = CDASource(url, workers=workers, progress=False, backoff=0.01)
                src.urls = lambda obsid, name, url=url: [f"{url}/{name}.gz"]
                dest = tmp / f"dl-{workers}-{delay}"
                t0 = time.perf_counter()
                results = src.download_all(1, files, dest)
                dt = time.perf_counter() - t0
                src.close()
                assert all(r.path for r in results), [r.error for r in results if r.error]
                rows.append(
                    (
                        f"cda download, {workers} parallel, {delay * 1000:.0f} ms latency"
                        " (verified: gzip + size)",
                        f"{total / 2**20 / dt:8.0f} MB/s",
                    )
                )
            server.terminate()
            server.join()
    return rows


# --- 2. get_files over 2,000+ obsids --------------------------------------------------------------
def science_obsids(start: str, count: int) -> list:
    out = []
    for obs in default_mission().observations(start, "2030:001"):
        if obs.kind == "science" and sim.available(obs.obsid):
            out.append(obs)
            if len(out) >= count:
                break
    return out


def build_asp1_index(root: Path, observations: list) -> int:
    """Index rows for the default and last revision of each obsid (see module docstring)."""
    nrows = 0
    with ArchiveIndex(ASP_L1, root) as index:
        for obs in observations:
            default, last = sim.sim_revisions(obs.obsid)
            procs = {p.revision: p for p in sim.available(obs.obsid)}
            for rev in sorted({r for r in (default, last) if r is not None}):
                rows = []
                for ai in sim.aspect_intervals(obs):
                    year, doy = year_doy(ai.tstart)
                    for suffix, content in sim_suffixes():
                        rows.append(
                            {
                                "filename": f"pcadf{int(ai.tstart):09d}N{rev:03d}_{suffix}.fits.gz",
                                "filetime": int(ai.tstart),
                                "year": year,
                                "doy": doy,
                                "tstart": ai.tstart,
                                "tstop": ai.tstop,
                                "checksum": "bench",
                                "ascdsver": procs[rev].ascdsver,
                                "caldbver": procs[rev].caldbver,
                                "content": content,
                                "revision": rev,
                                "obsid": obs.obsid,
                                "obi": ai.obi,
                                "date": "2012-01-01T00:00:00",
                                "isdefault": None,
                            }
                        )
                with index.transaction():
                    index.replace(rows, [])
                mark_revision(index, obs.obsid, rev, len(rows))
                nrows += len(rows)
            relink(ASP_L1, index, obs.obsid, default, last)
    return nrows


def sim_suffixes() -> list[tuple[str, str]]:
    from mica.products.asp_l1 import ASP_SUFFIX_CONTENT

    return list(ASP_SUFFIX_CONTENT.items())


def time_queries(func, windows: list[tuple[float, float]]) -> tuple[float, float, float]:
    times, counts = [], []
    for start, stop in windows:
        t0 = time.perf_counter()
        counts.append(len(func(start, stop)))
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), float(np.percentile(times, 95)), statistics.mean(counts)


def bench_queries(n_obsids: int) -> list[tuple[str, str]]:
    rows = []
    observations = science_obsids("2008:001", n_obsids)
    t_lo, t_hi = observations[0].tstart, observations[-1].tstop
    rng = np.random.default_rng(2)
    windows = [(t, t + 29 * 86400) for t in rng.uniform(t_lo, t_hi - 30 * 86400, 50)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["MICA_ARCHIVE"] = str(tmp)
        t0 = time.perf_counter()
        nrows = build_asp1_index(tmp / "asp1", observations)
        rows.append(
            (
                f"asp1 bench index: {len(observations)} obsids, {nrows} rows "
                f"(written in {time.perf_counter() - t0:.0f} s)",
                "",
            )
        )
        med, p95, mean = time_queries(
            lambda a, b: asp_l1.get_files(start=a, stop=b, content=["FIDPROPS"]), windows
        )
        rows.append(
            (
                f"asp_l1.get_files(30-day range, FIDPROPS) ~{mean:.0f} files",
                f"median {med:5.1f} ms, p95 {p95:5.1f} ms",
            )
        )
        med, p95, mean = time_queries(lambda a, b: asp_l1.get_files(start=a, stop=b), windows)
        rows.append(
            (
                f"asp_l1.get_files(30-day range, default contents) ~{mean:.0f} files",
                f"median {med:5.1f} ms, p95 {p95:5.1f} ms",
            )
        )
        ids = [o.obsid for o in observations[:: max(1, len(observations) // 50)]]
        med, p95, mean = time_queries(lambda a, b: asp_l1.get_files(int(a)), [(i, 0) for i in ids])
        rows.append(
            (
                f"asp_l1.get_files(obsid) ~{mean:.0f} files",
                f"median {med:5.1f} ms, p95 {p95:5.1f} ms",
            )
        )
        # obspar through the real update path (simulated upstream, ingest, links)
        t0 = time.perf_counter()
        report = update_obsid_archive(
            OBSPAR, "sim", start=t_lo, stop=t_hi, data_root=tmp / "obspar"
        )
        assert report.ok, report.summary()
        rows.append(
            (
                f"obspar bench archive via `update obspar`: {len(report.done)} obsids "
                f"(built in {time.perf_counter() - t0:.0f} s)",
                "",
            )
        )
        med, p95, mean = time_queries(lambda a, b: obspar.get_files(start=a, stop=b), windows)
        rows.append(
            (
                f"obspar.get_files(30-day range) ~{mean:.0f} files",
                f"median {med:5.1f} ms, p95 {p95:5.1f} ms",
            )
        )
        med, p95, _ = time_queries(lambda a, b: [obspar.get_obspar(int(a))], [(i, 0) for i in ids])
        rows.append(
            (
                "obspar.get_obspar(obsid) (parse included)",
                f"median {med:5.1f} ms, p95 {p95:5.1f} ms",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--mb", type=float, default=4.0)
    parser.add_argument("--obsids", type=int, default=2000)
    args = parser.parse_args()
    rows = bench_downloads(args.files, args.mb) + bench_queries(args.obsids)
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  result")
    print("-" * (width + 32))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
