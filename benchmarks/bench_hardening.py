"""Hardening run: hostile L0 files, kill -9 during updates, a full disk; one table.

Hostile variants of the real 2003 L0 files and of simulated L0 files (seeded numpy RNG:
header card edits, column-format edits, value edits, byte flips, truncations, gzip damage)
go through the real update path (`update_archive` with a ``dir:`` source) in batches, each
into a copy of an archive built from the other files, in a forked process (a crash shows
as its exit code). Each case is classified: clean refusal (named in the report, kept in
``rejected/``), accepted and read back equal (store read == file read, the variant's TIME
values present), unhandled crash, wrong accept, archive data changed (rows or files of the
base archive differ after the batch).

Usage: ``python benchmarks/bench_hardening.py [--cases 2000] [--kills 30] [--seed 17]``
(the disk-full run needs root for ``mount -t tmpfs``).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from mica.archive import aca_l0
from mica.engine.check import check_archive
from mica.engine.index import ArchiveIndex
from mica.engine.update import update_archive
from mica.products.aca_l0 import L0
from mica.sim.aca_l0 import plan_l0_files, write_l0_file

REAL_DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "aca_l0_2003"
SIM_WINDOW = ("2012:001:00:00:00", "2012:001:01:00:00")
MUTATIONS = ("card", "tform", "value", "flip", "truncate", "gzip")
OUTCOMES = ("refused", "accepted", "crash", "wrong_accept", "data_changed")
_NUMPY = {"J": ">i4", "D": ">f8", "E": ">f4", "I": ">i2", "B": "u1", "K": ">i8"}
_CARDS = ("TSTART", "TSTOP", "NAXIS2", "TFORM1", "TTYPE2", "TUNIT1", "TFORM4", "EXTNAME")


# --- the generator ---------------------------------------------------------------------------
def _raw(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _fits_bytes(hdus: fits.HDUList) -> bytes:
    out = io.BytesIO()
    hdus.writeto(out, output_verify="silentfix", checksum=True)
    return out.getvalue()


def _edit_card(raw: bytes, rng: np.random.Generator) -> bytes:
    with fits.open(io.BytesIO(raw)) as hdus:
        header = hdus[int(rng.integers(0, len(hdus)))].header
        key = str(rng.choice(_CARDS))
        value = [-1, 0, 10**12, "junk", float("nan"), 1e30, ""][int(rng.integers(0, 7))]
        if rng.random() < 0.25 and key in header:
            del header[key]
        else:
            try:
                header[key] = value
            except (ValueError, TypeError):
                header[key] = "junk"
        try:
            return _fits_bytes(hdus)
        except Exception:  # astropy itself refuses to write it: offer the edited bytes
            return raw.replace(b"TSTART  =", b"TSTART = ", 1)


def _edit_tform(raw: bytes, rng: np.random.Generator) -> bytes:
    with fits.open(io.BytesIO(raw)) as hdus:
        table = hdus[1]
        cols = list(table.columns)
        k = int(rng.integers(0, len(cols)))
        col = cols[k]
        fmt = str(rng.choice(["J", "D", "E", "I", "B", "K", "16A", "36I"]))
        data = np.asarray(table.data[col.name])
        try:
            if fmt.endswith("A"):
                values = np.array([b"x"] * len(data))
            elif fmt == "36I":
                values = np.zeros((len(data), 36), dtype=np.int16)
            else:
                values = data.reshape(len(data), -1)[:, 0].astype(_NUMPY[fmt])
        except Exception:
            values = np.zeros(len(data), dtype=np.int32)
            fmt = "J"
        cols[k] = fits.Column(name=col.name, format=fmt, array=values)
        new = fits.BinTableHDU.from_columns(cols, header=table.header)
        return _fits_bytes(fits.HDUList([hdus[0], new]))


def _edit_value(raw: bytes, rng: np.random.Generator) -> bytes:
    with fits.open(io.BytesIO(raw)) as hdus:
        data = hdus[1].data
        name = str(rng.choice(data.columns.names))
        col = data[name]
        rows = rng.integers(0, len(col), size=int(rng.integers(1, 5)))
        if col.dtype.kind == "f":
            col[rows] = [np.nan, np.inf, -1e30, 0.0][int(rng.integers(0, 4))]
        elif col.dtype.kind in "iu":
            info = np.iinfo(col.dtype)
            col[rows] = [info.min, info.max, 0][int(rng.integers(0, 3))]
        else:
            col[rows] = col[rows[:1]]
        if name == "TIME" and rng.random() < 0.5:
            col[:] = col[::-1].copy()  # out of order
        return _fits_bytes(hdus)


def mutate(path: Path, kind: str, rng: np.random.Generator) -> bytes:
    """One hostile variant (gzipped file bytes) of the L0 file ``path``."""
    raw = _raw(path)
    if kind == "card":
        raw = _edit_card(raw, rng)
    elif kind == "tform":
        raw = _edit_tform(raw, rng)
    elif kind == "value":
        raw = _edit_value(raw, rng)
    elif kind == "flip":
        buf = bytearray(raw)
        for at in rng.integers(0, len(buf), size=int(rng.integers(1, 9))):
            buf[at] ^= 1 << int(rng.integers(0, 8))
        raw = bytes(buf)
    elif kind == "truncate":
        raw = raw[: int(rng.integers(0, len(raw)))]
    out = gzip.compress(raw, mtime=0)
    if kind == "gzip":
        buf = bytearray(out)
        how = int(rng.integers(0, 3))
        if how == 0:
            buf = buf[: int(rng.integers(2, len(buf)))]
        elif how == 1:
            buf[int(rng.integers(10, len(buf) - 8))] ^= 0xFF
        else:
            buf[-8:] = bytes(8)  # CRC and size trailer
        out = bytes(buf)
    return out


# --- batches ---------------------------------------------------------------------------------
def _state(root: Path) -> dict[str, str]:
    """The archive's data: index rows and the bytes of each indexed file."""
    with ArchiveIndex(L0, root) as index:
        rows = index.query()
    return {
        r["filename"]: f"{r['checksum']} "
        + hashlib.sha256(L0.path(r, root).read_bytes()).hexdigest()
        for r in rows
    }


def build_base(files: list[Path], where: Path) -> Path:
    """An archive of ``files`` through the real update path."""
    folder = where / "upstream"
    folder.mkdir(parents=True)
    for path in files:
        shutil.copy(path, folder / path.name)
    times = [L0.name_time(p.name) for p in files]
    root = where / "aca0"
    update_archive(L0, f"dir:{folder}", min(times) - 10, max(times) + 10, data_root=root)
    return root


def run_batch(
    base: Path, variants: dict[str, bytes], work: Path, span: tuple[float, float]
) -> dict[str, str]:
    """Offer ``variants`` (name -> bytes) to a copy of ``base``; outcome per name."""
    root = work / "aca0"
    work.mkdir(parents=True)
    shutil.copytree(base, root)
    before = _state(root)
    up = work / "up"
    up.mkdir()
    for name, data in variants.items():
        (up / name).write_bytes(data)
    try:
        report = update_archive(L0, f"dir:{up}", span[0] - 10, span[1] + 10, data_root=root)
    except Exception as exc:  # an unhandled error out of the update
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/mica/" in f.filename]
        at = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        what = f"crash {type(exc).__name__}{at}: {exc}"[:300]
        return {name: what for name in variants}
    out: dict[str, str] = {}
    refused = {err.filename for err in report.rejected}
    after = _state(root)
    changed = {n for n in before if before[n] != after.get(n)} - set(variants)
    for name, data in variants.items():
        if name in refused:
            out[name] = "refused" if (root / "rejected" / name).exists() else "wrong_accept"
        elif name in after:
            out[name] = _read_back(root, name, data)
        else:
            out[name] = "crash not reported"
        if changed:
            out[name] = "data_changed " + ",".join(sorted(changed))[:200]
    return out


def _read_back(root: Path, name: str, data: bytes) -> str:
    """accepted when store and file reads agree and hold the variant's TIME values."""
    with fits.open(io.BytesIO(gzip.decompress(data))) as hdus:
        times = np.asarray(hdus[1].data["TIME"], dtype=float)
        slot = int(hdus[1].header.get("IMGNUM1", hdus[0].header.get("IMGNUM1", -1)))
    if slot < 0 or slot > 7:
        slot = int(name.split("_")[1])
    lo, hi = float(np.nanmin(times)), float(np.nanmax(times))
    stored = aca_l0.get_slot_data(lo - 1, hi + 1, slot, data_root=root)
    direct = aca_l0.get_slot_data(lo - 1, hi + 1, slot, data_root=root, use_store=False)
    for col in stored.dtype.names:
        a, b = np.ma.getdata(stored[col]), np.ma.getdata(direct[col])
        if not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
            return f"wrong_accept store != files in {col}"
    if not np.isin(times, np.ma.getdata(stored["TIME"])).all():
        return "wrong_accept TIME values not served"
    return "accepted"


def _batch_in_process(args: tuple, conn: Any) -> None:
    conn.send(run_batch(*args))


def run_batch_forked(
    base: Path, variants: dict[str, bytes], work: Path, span: tuple
) -> dict[str, str]:
    """`run_batch` in a forked process: a segfault or hang is a crash of every case."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_batch_in_process, args=((base, variants, work, span), child))
    proc.start()
    result = parent.recv() if parent.poll(600) else None
    proc.join(10)
    if result is None:
        proc.kill()
        return {n: f"crash process exit {proc.exitcode}" for n in variants}
    return result


def run_attributed(
    run: Any, base: Path, variants: dict[str, bytes], work: Path, span: tuple
) -> dict[str, str]:
    """A batch; when it crashed, each of its variants again alone, so a crash is charged to
    the file that caused it (the others of the batch were not offered by that update)."""
    out = run(base, variants, work / "all", span)
    if len(variants) > 1 and any(v.startswith("crash") for v in out.values()):
        for k, (name, data) in enumerate(variants.items()):
            out.update(run(base, {name: data}, work / f"one-{k}", span))
    return out


def fuzz(cases: int, seed: int, where: Path, forked: bool = True) -> Counter:
    """Generate ``cases`` variants, run them in batches; counts by outcome (and details)."""
    rng = np.random.default_rng(seed)
    real = sorted(REAL_DATA.glob("*.fits.gz"))
    sim_dir = where / "sim-files"
    sim_dir.mkdir(parents=True)
    for plan in plan_l0_files(*SIM_WINDOW):
        write_l0_file(plan, sim_dir)
    sim = sorted(sim_dir.glob("*.fits*"))
    pools = []
    for kind, files in (("real", real), ("sim", sim)):
        targets = files[1::3]  # held out of the base archive: one variant of each per batch
        base = build_base([f for f in files if f not in targets], where / f"base-{kind}")
        times = [L0.name_time(p.name) for p in files]
        pools.append((base, targets, (min(times), max(times))))
    counts: Counter = Counter()
    details: list[str] = []
    done, batch = 0, 0
    while done < cases:
        base, targets, span = pools[batch % 2]
        variants = {}
        for target in targets[: cases - done]:
            kind = MUTATIONS[int(rng.integers(0, len(MUTATIONS)))]
            variants[L0.archive_name(target.name)] = mutate(target, kind, rng)
        work = where / f"batch-{batch}"
        run = run_batch_forked if forked else run_batch
        for name, outcome in run_attributed(run, base, variants, work, span).items():
            counts[outcome.split(" ", 1)[0]] += 1
            if not outcome.startswith(("refused", "accepted")):
                details.append(f"{name}: {outcome}")
        shutil.rmtree(work, ignore_errors=True)
        done += len(variants)
        batch += 1
    counts["cases"] = done
    counts["details"] = details  # type: ignore[assignment]
    return counts


# --- kill -9 and disk full -------------------------------------------------------------------
def _mica(*args: str, **kw: Any) -> subprocess.Popen:
    exe = str(Path(sys.executable).parent / "mica")
    return subprocess.Popen([exe, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def kill_runs(n: int, seed: int, where: Path) -> int:
    """Updates killed at random times, then re-run: how many end clean and equal."""
    rng = np.random.default_rng(seed + 1)
    up = where / "kill-up"
    up.mkdir(parents=True)
    for plan in plan_l0_files(*SIM_WINDOW):
        write_l0_file(plan, up)
    span = ["--start", SIM_WINDOW[0], "--stop", SIM_WINDOW[1], "--quiet"]
    clean = where / "kill-clean"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "mica"),
            "update",
            "aca-l0",
            "--source",
            f"dir:{up}",
            "--data-root",
            str(clean),
            *span,
        ],
        check=True,
        capture_output=True,
    )
    expected = _state(clean)
    repaired = 0
    for k in range(n):
        root = where / f"kill-{k}"
        args = ["update", "aca-l0", "--source", f"dir:{up}", "--data-root", str(root), *span]
        proc = _mica(*args, start_new_session=True)
        time.sleep(float(rng.uniform(0.3, 4.0)))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        again = _mica(*args)
        again.communicate(timeout=600)
        ok = again.returncode == 0 and check_archive(L0, data_root=root).ok
        if ok and _state(root) == expected:
            repaired += 1
        shutil.rmtree(root, ignore_errors=True)
    return repaired


def disk_full_run(where: Path) -> str:
    """A simulated day into a 30 MB tmpfs, then 200 MB: the outcome in words."""
    mnt = where / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=30m", "tmpfs", str(mnt)]).returncode:
        return "skipped (mount not permitted)"
    try:
        root = mnt / "aca0"
        args = [
            "update",
            "aca-l0",
            "--source",
            "sim",
            "--start",
            "2012:001",
            "--stop",
            "2012:002",
            "--days-at-once",
            "0.25",
            "--data-root",
            str(root),
            "--quiet",
        ]
        full = _mica(*args)
        _, err = full.communicate(timeout=600)
        first = f"exit {full.returncode}" + (", traceback" if b"Traceback" in err else "")
        subprocess.run(["mount", "-o", "remount,size=200m", str(mnt)], check=True)
        again = _mica(*args)
        again.communicate(timeout=600)
        ok = again.returncode == 0 and check_archive(L0, data_root=root).ok
        verdict = "clean" if ok else "NOT clean"
        return f"full: {first}; after remount: exit {again.returncode}, check {verdict}"
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--seed", type=int, default=17)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mica-hardening-") as tmp:
        where = Path(tmp)
        t0 = time.time()
        counts = fuzz(opts.cases, opts.seed, where / "fuzz")
        repaired = kill_runs(opts.kills, opts.seed, where / "kill")
        disk = disk_full_run(where)
    rows = [
        ("cases tried", counts["cases"]),
        ("clean refusals", counts["refused"]),
        ("accepted, read back equal", counts["accepted"]),
        ("unhandled crashes", counts["crash"]),
        ("wrong accepts", counts["wrong_accept"]),
        ("data changed", counts["data_changed"]),
        ("kill -9 runs repaired", f"{repaired}/{opts.kills}"),
        ("disk full", disk),
        ("seconds", f"{time.time() - t0:.0f}"),
    ]
    for label, value in rows:
        print(f"{label:<28} {value}")
    for line in counts["details"][:40]:
        print("  " + line)
    print(json.dumps({k: v for k, v in counts.items() if k != "details"}))


if __name__ == "__main__":
    main()
