"""V&V scored against the simulator's ground truth, and its speed.

    python benchmarks/bench_vv.py [--revisions 500] [--fault-scale 40] [--decimate 20]
                                  [--workers 2] [--out /tmp/bench_vv]

1. Confusion table: ``--revisions`` simulated obsid revisions (science obsids from 2000 on,
   every revision that exists), their ASP L1 products and obspars written by the simulator
   with the fault rates multiplied by ``--fault-scale`` (``MICA_SIM_FAULT_SCALE``), each V&V'd
   by `mica.vv.Obi` and its disposition tabulated against `mica.sim.asp_l1.ground_truth`
   (written to ``<out>/ground_truth.json``). Target: every fault kind flagged (WARN or BAD)
   >= 95 %, fault-free revisions BAD <= 1 %.
2. Speed: V&V of one typical (~30 ks) observation at the real cadence, with and without its
   plots (targets 2 s and 0.5 s), and `get_rms_data` over a 40,000-revision summary table
   (8 rows each, written as one table generation; target 0.5 s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np


def _one(job: tuple[int, int, int]) -> tuple[int, int, str | None, str, list[int], str]:
    """Write one revision's files, V&V it; (obsid, rev, fault, status, flagged slots, note)."""
    from mica.sim import asp_l1 as sim
    from mica.sim.obspar import obspar_revisions, write_obspars
    from mica.vv import Obi

    obsid, revision, _ = job
    truth = sim.ground_truth(obsid)
    tmp = Path(tempfile.mkdtemp(prefix="bench_vv_"))
    try:
        sim.write_asp_l1(obsid, revision, tmp)
        par_rev = obspar_revisions(obsid)[0][0]
        pars = write_obspars(obsid, par_rev, tmp)
        try:
            info = Obi(sorted(str(p) for p in pars), tmp).info()
        except Exception as err:  # noqa: BLE001  (a failure is a result to tabulate)
            return obsid, revision, truth["fault"], "ERROR", [], f"{type(err).__name__}: {err}"
        disp = info["disposition"]
        slots = sorted(set(disp["bad_slots"]) | set(disp["warn_slots"]))
        return obsid, revision, truth["fault"], disp["status"], slots, "; ".join(disp["reasons"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _jobs(n: int) -> list[tuple[int, int, int]]:
    from mica.sim import asp_l1 as sim
    from mica.sim.mission import default_mission

    out = []
    for obs in default_mission().observations("2000:001", "2020:001"):
        if obs.kind != "science":
            continue
        for proc in sim.available(obs.obsid):
            out.append((obs.obsid, proc.revision, 0))
        if len(out) >= n:
            break
    return out[:n]


def confusion(args: argparse.Namespace) -> None:
    from mica.sim import asp_l1 as sim

    os.environ["MICA_SIM_FAULT_SCALE"] = str(args.fault_scale)
    os.environ["MICA_SIM_L1_DECIMATE"] = str(args.decimate)
    jobs = _jobs(args.revisions)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sim.write_ground_truth(out / "ground_truth.json", sorted({j[0] for j in jobs}))
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(_one, jobs, chunksize=4))
    elapsed = time.perf_counter() - t0
    table: dict[str, Counter] = defaultdict(Counter)
    slot_hit: Counter = Counter()
    misses = []
    for obsid, _rev, fault, status, slots, note in results:
        kind = fault or "none"
        table[kind][status] += 1
        truth_slot = sim.ground_truth(obsid)["slot"]
        if fault and truth_slot is not None and truth_slot in slots:
            slot_hit[kind] += 1
        if (fault and status == "OK") or (not fault and status in ("BAD", "ERROR")):
            misses.append((obsid, _rev, kind, status, note[:150]))
    print(
        f"\nConfusion table: {len(results)} simulated obsid revisions "
        f"(fault scale {args.fault_scale}, decimate {args.decimate}, {elapsed:.0f} s)\n"
    )
    head = f"{'seeded fault':<15}{'n':>5}{'OK':>6}{'WARN':>6}{'BAD':>6}{'ERR':>5}"
    print(head + f"{'flagged':>9}{'BAD':>7}{'slot named':>12}")
    for kind in [*sim.PROBLEM_KINDS, "none"]:
        c = table.get(kind, Counter())
        n = sum(c.values())
        if not n:
            print(f"{kind:<15}{0:>5}")
            continue
        flagged = (c["WARN"] + c["BAD"]) / n
        no_slot = kind in ("none", "momentum_dump", "wrong_catalog")
        slot = f"{'-':>11}" if no_slot else f"{slot_hit[kind] / n:>11.0%}"
        print(
            f"{kind:<15}{n:>5}{c['OK']:>6}{c['WARN']:>6}{c['BAD']:>6}{c['ERROR']:>5}"
            f"{flagged:>9.1%}{c['BAD'] / n:>7.1%} {slot}"
        )
    print(
        "(flagged = WARN or BAD; for 'none' the target is BAD <= 1 %, for faults flagged >= 95 %)"
    )
    for miss in misses[:15]:
        print("  miss:", *miss)


def speed(args: argparse.Namespace) -> None:
    from mica.engine.table_store import GenerationTable
    from mica.sim import asp_l1 as sim
    from mica.sim.mission import default_mission
    from mica.sim.obspar import obspar_revisions, write_obspars
    from mica.vv import Obi, get_rms_data
    from mica.vv.report import write_report
    from mica.vv.table import VV_DTYPE, VV_SPEC

    os.environ.pop("MICA_SIM_L1_DECIMATE", None)  # the real cadence
    os.environ["MICA_SIM_FAULT_SCALE"] = "1"
    obs = next(
        o
        for o in default_mission().observations("2012:001", "2013:001")
        if o.kind == "science"
        and 27e3 < o.tstop - o.tstart < 33e3
        and sim.seeded_problem(o.obsid) is None
        and sim.available(o.obsid)
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench_vv_speed_"))
    try:
        sim.write_asp_l1(obs.obsid, sim.available(obs.obsid)[-1].revision, tmp)
        par = [str(p) for p in write_obspars(obs.obsid, obspar_revisions(obs.obsid)[0][0], tmp)]
        no_plots, with_plots = [], []
        for i in range(3):
            t0 = time.perf_counter()
            obi = Obi(par, tmp)
            info = obi.info()
            no_plots.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            obi = Obi(par, tmp)
            write_report(obi, tmp / f"out{i}")
            with_plots.append(time.perf_counter() - t0)
        n = sum(s.get("n_pts", 0) for s in info["slots"].values())
        print(
            f"\nSpeed: obsid {obs.obsid} ({(obs.tstop - obs.tstart) / 1e3:.0f} ks, "
            f"{len(obi.aspect_intervals)} intervals, {n} centroids, real cadence)"
        )
        print(f"  V&V without plots: {min(no_plots):.2f} s (best of 3; target 0.5 s)")
        print(f"  V&V with JSON, HDF5, plots, HTML: {min(with_plots):.2f} s (target 2 s)")
        # the summary table of 40,000 revisions
        rows = {}
        rng = np.random.default_rng(1)
        for k in range(40_000):
            r = np.zeros(8, VV_DTYPE)
            r["obsid"], r["revision"], r["slot"] = k // 2, 1 + k % 2, np.arange(8)
            r["tstart"] = 1e8 + 3e4 * k
            r["dy_rms"] = rng.random(8)
            r["disposition"] = b"OK"
            rows[(k // 2, 1 + k % 2)] = r
        table = GenerationTable(tmp / "vv" / "vv.h5", VV_SPEC)
        (tmp / "vv").mkdir()
        t0 = time.perf_counter()
        table.write(rows, {})
        t_write = time.perf_counter() - t0
        reads = []
        for _ in range(3):
            t0 = time.perf_counter()
            data = get_rms_data(tmp / "vv")
            reads.append(time.perf_counter() - t0)
        print(
            f"  get_rms_data() over 40,000 revisions ({len(data)} rows, "
            f"{table.path.stat().st_size / 1e6:.0f} MB): {min(reads):.2f} s (target 0.5 s); "
            f"writing that generation {t_write:.1f} s"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--revisions", type=int, default=500)
    parser.add_argument("--fault-scale", type=float, default=40.0)
    parser.add_argument("--decimate", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "bench_vv"))
    parser.add_argument("--skip-confusion", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    if not args.skip_speed:
        speed(args)
    if not args.skip_confusion:
        confusion(args)


if __name__ == "__main__":
    main()
