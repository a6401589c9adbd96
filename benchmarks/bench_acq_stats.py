"""Acquisition statistics: calibration against flight, and speed figures.

Calibration: the per-observation statistics (`mica.stats._acq.calc_acq_stats` on the simulated
inputs) over one observation in ``--every`` (default 10) of the simulated mission 2000.3-2014.5,
failure rate (not ``acqid``) per magnitude bin and per warm-pixel-fraction tercile (the flight
table's terciles), with binomial errors, beside the real table
``tests/data/acq_outcomes_2000_2014.fits.gz``. A bin passes when within 2 sigma (combined) or
15 % relative of flight.

Speed: ``get_stats()`` of a 300,000-row table, ``read_where`` on obsid, one observation's
statistics with its telemetry in memory, and ``mica update acq-stats`` over one simulated day.

Run: ``python benchmarks/bench_acq_stats.py [--every 10] [--skip-calibration]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.table import Table

from mica.sim.pcad import SimProvider
from mica.stats._acq import calc_acq_stats
from mica.stats.inputs import InputError, Series
from mica.time import conversion_scope, frac_year, to_secs

TABLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "acq_outcomes_2000_2014.fits.gz"
MAG_BINS = [(6.0, 9.0), (9.0, 9.5), (9.5, 10.0), (10.0, 10.3), (10.3, 10.6), (10.6, 11.0)]


def simulated_sample(every: int = 10, start: str = "2000:110", stop: str = "2014:180"):
    """(mag, warm_frac, fail) of every acquisition of one observation in ``every``."""
    p = SimProvider()
    obs = p.obsids(float(to_secs(start)), float(to_secs(stop)))[::every]
    mags, wfs, fails, secs = [], [], [], []
    for obsid, _ in obs:
        t0 = time.perf_counter()
        try:
            rows = calc_acq_stats(p, obsid, 0)
        except InputError:
            continue
        secs.append(time.perf_counter() - t0)
        mags.append(rows["mag_aca"])
        wfs.append(rows["n100_warm_frac"])
        fails.append(~rows["acqid"])
    return np.concatenate(mags), np.concatenate(wfs), np.concatenate(fails), len(obs), secs


def _rate(fail: np.ndarray) -> tuple[float, float, int]:
    n = len(fail)
    r = float(np.mean(fail)) if n else np.nan
    return r, float(np.sqrt(max(r * (1 - r), 1.0 / max(n, 1)) / max(n, 1))), n


def calibration_table(sim, flight) -> tuple[list[str], bool]:
    """Lines of the table and whether every bin passes."""
    (smag, swf, sfail), (fmag, fwf, ffail) = sim, flight
    edges = np.percentile(fwf, [100 / 3, 200 / 3])
    bins = [(f"mag {lo}-{hi}", (lo, hi), "mag") for lo, hi in MAG_BINS]
    terc = [(-np.inf, edges[0]), (edges[0], edges[1]), (edges[1], np.inf)]
    bins += [(f"warm tercile {k + 1} ({lo:.3f}-{hi:.3f})", (lo, hi), "wf")
             for k, (lo, hi) in enumerate(terc)]  # fmt: skip
    lines = [f"{'bin':34s} {'sim fail %':>16s} {'n':>6s}   {'flight fail %':>16s} {'n':>6s}  ok"]
    all_ok = True
    for label, (lo, hi), col in bins:
        sx, fx = (smag, fmag) if col == "mag" else (swf, fwf)
        rs, es, ns = _rate(sfail[(sx >= lo) & (sx < hi)])
        rf, ef, nf = _rate(ffail[(fx >= lo) & (fx < hi)])
        ok = abs(rs - rf) <= max(2 * np.hypot(es, ef), 0.15 * rf)
        all_ok &= bool(ok)
        lines.append(
            f"{label:34s} {100 * rs:7.2f} +- {100 * es:5.2f} {ns:6d}   "
            f"{100 * rf:7.2f} +- {100 * ef:5.2f} {nf:6d}  {'yes' if ok else 'NO'}"
        )
    return lines, all_ok


def speed(tmp: Path) -> list[str]:
    """The speed figures (seconds)."""
    from mica.engine.derived import update_derived
    from mica.engine.obsid_update import update_obsid_archive
    from mica.products.obspar import OBSPAR
    from mica.stats.acq_product import ACQ_STATS
    from mica.stats.acq_stats import DTYPE, get_stats

    out = []
    rng = np.random.default_rng(1)
    n = 300_000
    rows = np.zeros(n, DTYPE)
    rows["obsid"] = np.repeat(np.arange(n // 8), 8)[:n]
    rows["slot"] = np.tile(np.arange(8), n // 8 + 1)[:n]
    rows["guide_tstart"] = np.sort(rng.uniform(6e7, 8e8, n))
    rows["agasc_id"] = rng.integers(1, 2**31, n)
    rows["mag"] = rng.uniform(6, 11, n)
    big = tmp / "big"
    table = ACQ_STATS.table(big)
    groups: dict[tuple, np.ndarray] = {}
    order = np.argsort(rows["obsid"], kind="stable")
    bounds = np.flatnonzero(np.diff(rows["obsid"][order])) + 1
    for part in np.split(rows[order], bounds):
        groups[(int(part["obsid"][0]), 0)] = part
    big.mkdir()
    table.write(groups, {})
    t0 = time.perf_counter()
    got = get_stats(data_root=big)
    out.append(f"get_stats() on {len(got)} rows: {time.perf_counter() - t0:.3f} s (<= 0.5)")
    import tables

    with tables.open_file(table.path) as h5:
        h5.root.data.read_where("obsid == 5438")
        t0 = time.perf_counter()
        for k in range(20):
            h5.root.data.read_where(f"obsid == {1000 + 997 * k}")
        dt = (time.perf_counter() - t0) / 20
    out.append(f"read_where('obsid == N'): {1000 * dt:.1f} ms (<= 20)")
    # one observation with its telemetry in memory
    p = SimProvider()
    obsid = p.obsids(float(to_secs("2012:001")), float(to_secs("2012:001:06:00:00")))[0][0]
    mv = p.maneuver(obsid)
    from mica.stats._acq import ACQ_MSIDS

    tlm = p.telemetry(ACQ_MSIDS, mv.acq_start, mv.dwell_start + 100.0)
    ccd = p.telemetry(["AACCCDPT"], mv.guide_start - 250.0, mv.guide_start + 250.0)

    class InMemory(SimProvider):
        def telemetry(self, msids, start, stop) -> dict[str, Series]:
            return ccd if msids == ["AACCCDPT"] else tlm

    mem = InMemory()
    calc_acq_stats(mem, obsid, 0)
    t0 = time.perf_counter()
    for _ in range(10):
        calc_acq_stats(mem, obsid, 0)
    out.append(
        f"one observation, telemetry in memory: {(time.perf_counter() - t0) / 10:.3f} s (<= 0.2)"
    )
    arch = tmp / "day"
    update_obsid_archive(
        OBSPAR, "sim", start="2012:010", stop="2012:011", data_root=arch / "obspar"
    )
    t0 = time.perf_counter()
    rep = update_derived(ACQ_STATS, archive=arch, data_root=arch / "acq_stats")
    out.append(
        f"mica update acq-stats, one day ({len(rep.done)} observations, "
        f"{len(rep.failed)} failed): {time.perf_counter() - t0:.2f} s (<= 10)"
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--skip-calibration", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for line in speed(Path(tmp)):
            print(line)
    if args.skip_calibration:
        return
    t = Table.read(TABLE)
    flight = (np.asarray(t["mag"]), np.asarray(t["warm_pix"]), np.asarray(t["fail"], bool))
    t0 = time.perf_counter()
    mag, wf, fail, n_obs, secs = simulated_sample(args.every)
    with conversion_scope():
        span = frac_year(["2000:110", "2014:180"])
    print(
        f"\ncalibration: {len(mag)} simulated acquisitions from {len(secs)} of {n_obs} sampled "
        f"observations {span[0]:.1f}-{span[1]:.1f} (every {args.every}th), "
        f"{time.perf_counter() - t0:.0f} s, median {1000 * np.median(secs):.0f} ms/observation"
    )
    lines, ok = calibration_table((mag, wf, fail), flight)
    print("\n".join(lines))
    print("all bins within 2 sigma or 15 %:", "yes" if ok else "NO")


if __name__ == "__main__":
    main()
