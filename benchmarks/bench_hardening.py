"""Hardening run: hostile L0, obspar and aspect L1 files, kill -9 during updates, a full disk.

Hostile variants (the generator of benchmarks/hostile_gen.py, shared with the fuzz tests,
driven by a seeded numpy RNG: header card edits, column-format edits, value edits, obspar
parameter edits, byte flips, truncations, gzip damage) of the real 2003 L0 files, simulated
L0 files, simulated obspars and simulated aspect L1 files go through the real update path
(``dir:`` sources; L0 in batches into a copy of an archive built from the other files, an
obspar or aspect L1 variant alone into an archive of another obsid), in a forked process
(a crash shows as its exit code). Each case is classified: clean refusal (named in the
report, kept in ``rejected/`` with its reason), accepted and read back equal (L0: store read
== file read holding astropy's TIME values; obspar, aspect L1: archived bytes and astropy
read equal to the offered file), not delivered (a variant whose OBS_ID names another obsid),
unhandled crash, wrong accept, archive data changed (rows or files of the base archive differ,
anything left in staging, or `check_archive` not clean).

Usage: ``python benchmarks/bench_hardening.py [--cases 2000] [--kills 30] [--seed 17]``
(the disk-full run needs root for ``mount -t tmpfs``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from hostile_gen import (
    FITS_MUTATIONS,
    TEXT_MUTATIONS,
    build_l0_base,
    build_obsid_base,
    index_state,
    mutate,
    mutate_text,
    run_l0_batch,
    run_obsid_case,
)

from mica.engine.index_check import check_archive
from mica.products.aca_l0 import L0
from mica.sim.aca_l0 import plan_l0_files, write_l0_file

REAL_DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "aca_l0_2003"
SIM_WINDOW = ("2012:001:00:00:00", "2012:001:01:00:00")


def _in_process(call: tuple, conn: Any) -> None:
    conn.send(call[0](*call[1:]))


def forked(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a forked process: a segfault or hang is None."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_in_process, args=((fn, *args), child))
    proc.start()
    result = parent.recv() if parent.poll(600) else None
    proc.join(10)
    if result is None:
        proc.kill()
    return result


def run_batch_forked(
    base: Path, variants: dict[str, bytes], work: Path, span: tuple
) -> dict[str, str]:
    """`run_l0_batch` in a forked process: a segfault or hang is a crash of every case."""
    result = forked(run_l0_batch, base, variants, work, span)
    return result or {n: "crash process died or hung" for n in variants}


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


def fuzz(cases: int, seed: int, where: Path, forked_runs: bool = True) -> Counter:
    """Generate ``cases`` variants (two thirds L0, one sixth each obspar and aspect L1), run
    them; counts by outcome (and details)."""
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
        base = build_l0_base([f for f in files if f not in targets], where / f"base-{kind}")
        times = [L0.name_time(p.name) for p in files]
        pools.append((base, targets, (min(times), max(times))))
    counts: Counter = Counter()
    details: list[str] = []

    def tally(name: str, outcome: str) -> None:
        counts[outcome.split(" ", 1)[0]] += 1
        if not outcome.startswith(("refused", "accepted", "elsewhere")):
            details.append(f"{name}: {outcome}")

    n_obsid = cases // 6
    done, batch = 0, 0
    while done < cases - 2 * n_obsid:
        base, targets, span = pools[batch % 2]
        variants = {}
        for target in targets[: cases - 2 * n_obsid - done]:
            kind = FITS_MUTATIONS[int(rng.integers(0, len(FITS_MUTATIONS)))]
            variants[L0.archive_name(target.name)] = mutate(target, kind, rng)
        work = where / f"batch-{batch}"
        run = run_batch_forked if forked_runs else run_l0_batch
        for name, outcome in run_attributed(run, base, variants, work, span).items():
            tally(name, outcome)
        shutil.rmtree(work, ignore_errors=True)
        done += len(variants)
        batch += 1
    for family in ("obspar", "asp"):
        base, mirror, files = build_obsid_base(family, where / f"base-{family}")
        for k in range(n_obsid):
            target = files[int(rng.integers(0, len(files)))]
            if family == "obspar":
                kind = TEXT_MUTATIONS[int(rng.integers(0, len(TEXT_MUTATIONS)))]
                data = mutate_text(target, kind, rng)
            else:
                kind = FITS_MUTATIONS[int(rng.integers(0, len(FITS_MUTATIONS)))]
                data = mutate(target, kind, rng)
            work = where / f"{family}-{k}"
            # in this process: a forked child cannot use the engine's forkserver worker pool
            # (the parent's forkserver is not its child); an exception is still a crash
            outcome = run_obsid_case(family, base, mirror, target, data, work)
            tally(f"{kind} of {target.name}", outcome)
            shutil.rmtree(work, ignore_errors=True)
            done += 1
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
    expected = index_state(L0, clean)
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
        if ok and index_state(L0, root) == expected:
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
        ("not delivered (other obsid)", counts["elsewhere"]),
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
