"""Dark calibrations: the props table with images beside the bare read, and the update's cost.

    python benchmarks/bench_dark.py --cals 16 [--work DIR]

Builds a bench archive of N simulated calibrations spread over the mission through the real
update path (replicas served by a dir: source, CCD temperatures from header-3 data in an L0
archive holding slots 6-7 around each calibration) and prints one table. Target:
``get_dark_cal_props_table(include_image=True)`` within 1.2x of the bare read of the same
image files into native float32 arrays.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from bench_archive import best_of, print_table

from mica.archive.aca_dark import dark_cal
from mica.archive.aca_dark.update import update_aca_dark
from mica.engine.time_update import update_archive
from mica.products.aca_l0 import L0
from mica.sim import aca_dark as sim

REPEAT = 9  # best of: the reads take tens of ms, so take many samples


def bare_read_raw(paths: list[Path]) -> list[np.ndarray]:
    """Read each file's bytes, view the data as big-endian float32, convert to native."""
    out = []
    for path in paths:
        raw = path.read_bytes()
        header = raw.index(b"END" + b" " * 77) // 2880 * 2880 + 2880
        out.append(np.frombuffer(raw, ">f4", 1024 * 1024, header).astype(np.float32))
    return out


def bare_read_astropy(paths: list[Path]) -> list[np.ndarray]:
    """astropy's reader, no memory map, converted to native float32."""
    return [fits.getdata(path, memmap=False).astype(np.float32) for path in paths]


def build(work: Path, n_cals: int) -> tuple[Path, list[float], float]:
    """Bench archive of ``n_cals`` calibrations; returns (aca_dark root, update s/cal, sim s)."""
    schedule = sim.dark_cal_schedule()
    # Spread over the mission, after 2000 (earlier ones need no L0: their cost differs).
    usable = [p for p in schedule if p.tstart > 63100000.0]
    plans = [usable[int(i)] for i in np.linspace(0, len(usable) - 1, n_cals)]
    upstream = work / "replicas"
    tic = time.perf_counter()
    for plan in plans:
        if not (upstream / sim.replica_filename(plan.dark_id, 1)).exists():
            sim.write_replicas(plan, upstream)
    t_sim = time.perf_counter() - tic
    l0_up = work / "l0-upstream"
    if not l0_up.exists():
        sim.write_hdr3_l0_files(plans, l0_up)
    t0, t1 = plans[0].tstart - 3600, plans[-1].tstop + 3600
    update_archive(L0, f"dir:{l0_up}", t0, t1, days_at_once=(t1 - t0) / 86400 + 2,
                   data_root=work / "aca0")  # fmt: skip
    root = work / "aca_dark"
    per_cal = []
    for plan in plans:
        if (root / plan.dark_id).exists():
            continue
        day = dark_cal.dark_id_to_date(plan.dark_id)
        tic = time.perf_counter()
        report = update_aca_dark(day, plan.tstop + 1.0, f"dir:{upstream}", root)
        per_cal.append(time.perf_counter() - tic)
        assert list(report.done) == [plan.dark_id], report.summary()
    return root, per_cal, t_sim / max(len(per_cal), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cals", type=int, default=16)
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: temp)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="mica-bench-dark-"))
    root, per_cal, t_sim = build(work, args.cals)
    ids = list(dark_cal.get_dark_cal_dirs(data_root=root))
    paths = [root / i / "image.fits" for i in ids]
    mb = sum(p.stat().st_size for p in paths) / 1e6
    t_raw = best_of(lambda: bare_read_raw(paths), REPEAT)
    t_astropy = best_of(lambda: bare_read_astropy(paths), REPEAT)
    t_table = best_of(
        lambda: dark_cal.get_dark_cal_props_table("1999:001", "2030:001", True, data_root=root),
        REPEAT,
    )
    t_props = best_of(
        lambda: dark_cal.get_dark_cal_props_table("1999:001", "2030:001", data_root=root)
    )
    t_one = best_of(lambda: dark_cal.get_dark_cal_image(ids[len(ids) // 2], data_root=root))
    bare = min(t_raw, t_astropy)
    rows = [
        ("calibrations / image MB", f"{len(ids)} / {mb:.0f}", ""),
        ("simulated upstream (5 replicas)", f"{t_sim:.2f} s/cal", "(not part of the update)"),
    ]
    if per_cal:
        rows.append(
            (
                "update: validate+temps+combine+write",
                f"{np.mean(per_cal):.2f} s/cal",
                f"min {min(per_cal):.2f} max {max(per_cal):.2f}",
            )
        )
    rows += [
        ("bare read (bytes -> native f32)", f"{t_raw:.3f} s", f"{mb / t_raw:.0f} MB/s"),
        ("bare read (astropy getdata)", f"{t_astropy:.3f} s", f"{mb / t_astropy:.0f} MB/s"),
        (
            "props_table(include_image=True)",
            f"{t_table:.3f} s",
            f"{t_table / bare:.2f}x best bare (<= 1.2)",
        ),
        ("props_table() (no images)", f"{t_props * 1e3:.1f} ms", ""),
        ("get_dark_cal_image (one)", f"{t_one * 1e3:.1f} ms", ""),
    ]
    print_table(f"aca-dark bench archive {root}", rows)


if __name__ == "__main__":
    main()
