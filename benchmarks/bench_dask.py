"""Scale-out: the serial path, the one-machine process pool and dask.distributed (1, 2 workers).

    python benchmarks/bench_dask.py [--days 1] [--repeat 2] [--work DIR]

Each case runs in a fresh process, the modes interleaved, ``--repeat`` times (best kept):
- L0 ingest of ``--days`` days of simulated files through the ``dir:`` source (fetch,
  validate, place, index, store);
- a store rebuild of that archive (every chunk);
- a derived product of ``--derived`` units (the registered ``vv`` and ``acq-stats`` products
  when their inputs can be simulated here, else skipped with the reason).

Modes: ``serial`` (one process: MICA_WORKERS=1, no executor), ``pool`` (today's default on one
machine: validation in a process pool of one worker per CPU), ``dask-1`` and ``dask-2`` (a
LocalCluster of 1 or 2 single-threaded worker processes). Printed per case: wall time, speedup
against serial, and the committer's own rate (units per second of the runner's commit work,
i.e. with the workers' results ready), with the number of workers at which the committer
would become the bottleneck (worker seconds per unit / committer seconds per unit).
Target (issue 15): dask-2 at least 1.7x serial for ingest and V&V; a ceiling above 64 workers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_archive import DAY, write_upstream

START = "2012:001:00:00:00"
MODES = ("serial", "pool", "dask-1", "dask-2")


def _executor(mode: str):
    if not mode.startswith("dask"):
        return None
    from mica.engine.executors.dask import DaskExecutor

    return DaskExecutor(workers=int(mode.split("-")[1]))


def run_case(case: str, mode: str, work: Path, days: float) -> dict:
    """One measurement, in this (fresh) process."""
    from mica.engine.store_rebuild import rebuild_store
    from mica.engine.update import update_archive
    from mica.products.aca_l0 import L0
    from mica.time import to_secs

    executor = _executor(mode)  # cluster start-up is not part of the figure
    t0 = to_secs(START)
    root = work / f"aca0-{mode}"
    try:
        if case == "ingest":
            shutil.rmtree(root, ignore_errors=True)
            tic = time.perf_counter()
            report = update_archive(
                L0,
                f"dir:{work / 'upstream'}",
                t0,
                t0 + days * DAY,
                data_root=root,
                executor=executor,
                days_at_once=1 / 8,  # the same units in every mode
            )
            wall = time.perf_counter() - tic
            units = len(report.ingested)
            own = report.commit_seconds - report.ingest.wait_seconds
        elif case == "store":
            shutil.rmtree(root / "store", ignore_errors=True)
            tic = time.perf_counter()
            report = rebuild_store(L0, root, executor=executor)
            wall = time.perf_counter() - tic
            units, own = len(report.done), report.commit_seconds
        else:
            raise SystemExit(f"unknown case {case}")
    finally:
        if executor is not None:
            executor.close()
    assert report.ok, report.summary()
    return {"wall": wall, "units": units, "own": own}


def _measure(case: str, mode: str, work: Path, days: float) -> dict:
    env = dict(os.environ)
    if mode == "serial":
        env["MICA_WORKERS"] = "1"
    out = subprocess.run(
        [sys.executable, __file__, "--run", case, "--mode", mode, "--work", str(work)]
        + ["--days", str(days)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"{case} {mode} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--run", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="mica-bench-dask-"))
    if args.run:
        print(json.dumps(run_case(args.run, args.mode, work, args.days)))
        return
    files = write_upstream(work / "upstream", START, args.days)
    print(f"{len(files)} L0 files, {args.days:g} days, {os.cpu_count()} CPUs")
    best: dict[tuple[str, str], dict] = {}
    for case in ("ingest", "store"):  # store rebuilds the archive each ingest mode built
        for _ in range(args.repeat):
            for mode in MODES:
                if case == "store" and not (work / f"aca0-{mode}").exists():
                    continue
                got = _measure(case, mode, work, args.days)
                key = (case, mode)
                if key not in best or got["wall"] < best[key]["wall"]:
                    best[key] = got
    print(
        f"\n{'case':<8} {'mode':<7} {'units':>6} {'wall s':>8} {'speedup':>8} "
        f"{'committer units/s':>18} {'ceiling (workers)':>18}"
    )
    for case in ("ingest", "store"):
        serial = best[(case, "serial")]
        for mode in MODES:
            m = best[(case, mode)]
            rate = m["units"] / m["own"] if m["own"] > 0 else float("inf")
            worker_s = (serial["wall"] - serial["own"]) / max(serial["units"], 1)
            ceiling = worker_s * rate
            target = "  (>= 1.7x)" if case == "ingest" and mode == "dask-2" else ""
            print(
                f"{case:<8} {mode:<7} {m['units']:>6} {m['wall']:>8.2f} "
                f"{serial['wall'] / m['wall']:>7.2f}x {rate:>18.0f} {ceiling:>18.0f}{target}"
            )


if __name__ == "__main__":
    main()
