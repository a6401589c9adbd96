"""Archives built from the simulated upstream through the real update paths.

`build_docs_archive` builds the documentation's small archive, which the doctests read
(``conftest.py``) and the demo archive contains; `mica demo` builds its own from the same
parts: the header-3 carrying L0 files of a window (`archive_hdr3_window`), the obsid
products of a window (`update_obsid_window`), dark calibrations with the L0 their
temperatures need (`archive_calibrations`) and the derived products of what an archive holds
(`derive_products`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from mica import config
from mica.archive.aca_dark.product import HDR3_PAD
from mica.engine.report import UpdateReport
from mica.engine.time_update import update_archive
from mica.products.aca_l0 import L0
from mica.progress import progress_bar
from mica.time import CxoTimeLike, to_date, to_secs

if TYPE_CHECKING:
    from mica.sim.dark_schedule import DarkCalPlan
    from mica.sim.source import SimSource

__all__ = [
    "DOCS_WINDOW",
    "DOCS_L0_WINDOW",
    "DOCS_ASP_OBSIDS",
    "build_docs_archive",
    "archive_hdr3_window",
    "update_obsid_window",
    "quick_sim_source",
    "archive_calibrations",
    "derive_products",
]

#: The documentation's archive: header-3 slots over two days, one hour of all slots.
DOCS_WINDOW = ("2012:125:00:00:00", "2012:127:00:00:00")
DOCS_L0_WINDOW = ("2012:125:00:00:00", "2012:125:01:00:00")
#: the obsid of DOCS_WINDOW whose aspect L1 products the documentation's archive holds
DOCS_ASP_OBSIDS = [10369]
#: the slots whose 8x8 L0 files carry header-3 ``ccd_temp``, ``aca_temp`` and ``dac``
HDR3_SLOTS = (6, 7)
#: the aspect L1 products of the archives built here keep every 4th sample: seconds, not a
#: minute (`quick_sim_source`)
L1_DECIMATE = 4


def build_docs_archive(root: Path, progress: bool = False) -> list[str]:
    """Build the documentation's small simulated archive in ``root`` the way the demo does.

    It covers DOCS_WINDOW (2012:125-127): header-3 carrying L0 files (slots 6-7, 8x8), one
    hour of L0 of all slots, the obspars of the obsids in it, the aspect L1 products of obsid
    10369 and the dark calibration of 2012:131. Returns the lines of what was archived.
    """
    from mica.sim.aca_dark import dark_cal_schedule

    root = Path(root)
    lines = []
    with progress_bar("update aca-l0", enabled=progress) as bar:
        report = update_archive(L0, "sim", *DOCS_L0_WINDOW, data_root=root / "aca0", progress=bar)
    lines.append(report.summary().splitlines()[0])
    lines.append(
        archive_hdr3_window(root, *DOCS_WINDOW, progress=progress).summary().splitlines()[0]
    )
    lines += update_obsid_window(root, *DOCS_WINDOW)
    plan = min(dark_cal_schedule(), key=lambda p: abs(p.tstart - to_secs("2012:131")))
    lines += [str(r) for r in archive_calibrations([plan], root, progress)]
    lines += derive_products(root)
    return lines


def write_sim_hdr3_files(start: CxoTimeLike, stop: CxoTimeLike, dest: Path) -> list[Path]:
    """Write the simulated L0 files that carry header-3 ``ccd_temp``, ``aca_temp`` and ``dac``
    (slots 6-7 in 8x8) in [start, stop] into ``dest``: a quarter of the 8x8 data and none of
    the other sizes, which is all the header-3 examples read."""
    from mica.sim.aca_l0 import plan_l0_files, write_l0_file

    dest.mkdir(parents=True, exist_ok=True)
    plans = [p for p in plan_l0_files(start, stop) if p.slot in HDR3_SLOTS and p.imgsize == 8]
    return [write_l0_file(p, dest) for p in plans]


def archive_hdr3_window(
    root: Path, start: CxoTimeLike, stop: CxoTimeLike, progress: bool
) -> UpdateReport:
    """Archive the header-3 carrying L0 files of [start, stop] into ``root/aca0`` through
    the real ingest path (a ``dir:`` source over a scratch folder of simulated files)."""
    work = root / "upstream-l0-hdr3"
    shutil.rmtree(work, ignore_errors=True)
    try:
        write_sim_hdr3_files(start, stop, work)
        t0, t1 = to_secs(start), to_secs(stop)
        with progress_bar("update aca-l0 (header-3 slots 6-7)", enabled=progress) as bar:
            return update_archive(
                L0, f"dir:{work}", t0, t1, days_at_once=(t1 - t0) / 86400.0 + 1.0,
                data_root=root / "aca0", progress=bar,
            )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


def quick_sim_source() -> SimSource:
    """The simulated upstream whose aspect L1 products keep every `L1_DECIMATE`-th sample,
    unless ``MICA_SIM_L1_DECIMATE`` is set (the simulator then follows it)."""
    from mica.sim.source import SimSource

    return SimSource(config.sim_l1_decimate(default=L1_DECIMATE))


def update_obsid_window(root: Path, start: str, stop: str) -> list[str]:
    """Archive the obspars of the obsids in [start, stop] and the aspect L1 products of
    DOCS_ASP_OBSIDS (one observation shows every reader; all six would triple the time)."""
    from mica.engine.obsid_update import update_obsid_archive
    from mica.products.asp_l1 import ASP_L1
    from mica.products.obspar import OBSPAR

    source = quick_sim_source()
    lines = []
    for product, kwargs in (
        (ASP_L1, {"obsids": DOCS_ASP_OBSIDS}),
        (OBSPAR, {"start": start, "stop": stop}),
    ):
        report = update_obsid_archive(product, source, data_root=root / product.subdir, **kwargs)
        lines.append(f"update {product.name} {kwargs}: " + report.summary().splitlines()[0])
    return lines


def _archive_l0_near(plans: list[DarkCalPlan], archive_root: Path, progress: bool) -> None:
    """Archive the slot 6-7 8x8 L0 files around each calibration (their header-3
    ``ccd_temp``) into ``archive_root/aca0``."""
    from mica.sim.aca_dark import write_hdr3_l0_files

    # Before 2000 the temperature is the original's guess: no L0 needed.
    plans = [p for p in plans if p.tstop >= to_secs("2000:001")]
    if not plans:
        return
    # The upstream folder is scratch: ingest copies the files into the archive.
    work = archive_root / "upstream-l0-dark"
    shutil.rmtree(work, ignore_errors=True)
    write_hdr3_l0_files(plans, work, pad=HDR3_PAD + 60.0)
    # One ingest of everything (one chunk): the validation pool starts once.
    t0, t1 = plans[0].tstart - 3600.0, plans[-1].tstop + 3600.0
    with progress_bar("update aca-l0 (slots 6-7 near the calibrations)", progress) as bar:
        update_archive(
            L0, f"dir:{work}", t0, t1, days_at_once=(t1 - t0) / 86400.0 + 2.0,
            data_root=archive_root / "aca0", progress=bar,
        )  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)


def archive_calibrations(plans: list[DarkCalPlan], archive_root: Path, progress: bool) -> list[str]:
    """Archive the calibrations of ``plans`` (with the L0 their temperatures need) into
    ``archive_root/aca_dark``; returns the refusals."""
    from mica.archive.aca_dark.update import update_aca_dark

    archive_root = Path(archive_root)
    _archive_l0_near(plans, archive_root, progress)
    refused = []
    for plan in plans:
        day = to_date(plan.tstart)[:8]
        with progress_bar(f"update aca-dark ({plan.dark_id})", enabled=progress) as bar:
            report = update_aca_dark(
                day, plan.tstop + 1.0, source="sim", data_root=archive_root / "aca_dark",
                l0_root=archive_root / "aca0", progress=bar,
            )  # fmt: skip
        refused += list(report.failed.values())
    return refused


def derive_products(root: Path) -> list[str]:
    """Compute the derived products (acquisition statistics, V&V) of what ``root`` holds."""
    from mica.engine.derived import update_derived
    from mica.stats.acq_product import ACQ_STATS
    from mica.vv.product import VV

    lines = []
    for product in (ACQ_STATS, VV):
        report = update_derived(product, data_root=root / product.folder, archive=root)
        lines.append(report.summary().splitlines()[0])
    return lines
