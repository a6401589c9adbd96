"""`mica update aca-dark`: dark-current calibrations built from their replicas, on the runner.

The product (inputs, output layout) is `mica.archive.aca_dark.product`, the numerics
`mica.archive.aca_dark.compute`. `DarkJob` plans windows of ``days_at_once`` days; a
window's step (side-effect free: fetch into its staging folder, check, compute) fetches the
replicas, and for each calibration whose first replica starts in [start, stop] and is not
archived whole: checks the replicas, finds the CCD temperatures in the L0 archive, combines
the map, builds the properties; its commit installs each calibration folder atomically
(`CalibLayout.install`). Re-runs change nothing; a killed run leaves dot-named leftovers
that the next update removes.

With ``with_inputs`` the update first archives, from the same source and through the L0
update (`mica.engine.time_update.update_archive`), the L0 windows the temperatures need
(`mica.archive.aca_dark.product.input_windows`), then the calibrations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mica.archive.aca_dark.product import (
    DARK,
    HDR3_PAD,
    LAYOUT,
    DarkReplicaProduct,
    calibration_problem,
    default_l0_root,
    id_day_secs,
    input_windows,
)
from mica.engine.provenance import archive_kind, settle_kind
from mica.engine.report import UpdateReport
from mica.engine.runner import Job, Progress, Unit, run_update
from mica.engine.source import split_delivery
from mica.engine.time_update import update_archive
from mica.errors import InvalidArgumentError
from mica.products.aca_l0 import L0
from mica.time import SECONDS_PER_DAY, CxoTimeLike, day_end, day_start, time_range, to_date

from .compute import (
    ACDC_START,
    CalibrationRefused,
    build_props,
    combine_replicas,
    image_bytes,
    load_replicas,
    replica_ccd_temps,
)
from .dark_cal import IMAGE_NAME, PROPS_NAME, dark_cals_root, dark_id_to_date

if TYPE_CHECKING:  # annotations only: the update runs the source the engine resolves
    from mica.sources import Source

__all__ = [
    "ACDC_START",
    "DARK",
    "HDR3_PAD",
    "CalibrationRefused",
    "DarkJob",
    "DarkReplicaProduct",
    "calibration_problem",
    "check_dark_archive",
    "combine_replicas",
    "replica_ccd_temps",
    "update_aca_dark",
]


def _group(files: list[Path]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for path in files:
        match = DARK.filename_re.fullmatch(DARK.archive_name(path.name))
        if match:
            out.setdefault(match.group(1), []).append(path)
    return out


def _window_replicas(
    src: Source, tstart: float, tstop: float, unit: Unit
) -> Iterator[tuple[str, list[dict[str, Any]] | CalibrationRefused | None]]:
    """(dark_id, checked replicas | refusal | None when archived whole) of the calibrations
    of one window starting in [tstart, stop]."""
    c0, c1, whole, kind, root = unit.data
    files, refused = split_delivery(src.fetch(DARK, c0, c1, unit.staging))
    groups = _group(files)
    # a replica the source refused (two different copies) refuses its calibration
    clashes = {dark_id: err for err in refused for dark_id in _group([Path(err.filename)])}
    for dark_id in sorted(set(groups) | set(clashes)):
        if not c0 <= id_day_secs(dark_id) < c1:
            continue  # delivered extra: its own window handles it
        if dark_id in whole:
            yield dark_id, None
            continue
        if dark_id in clashes:
            yield dark_id, CalibrationRefused(dark_id, f"replica file {clashes[dark_id]}")
            continue
        try:
            reps = load_replicas(dark_id, groups[dark_id], kind, root)
        except CalibrationRefused as err:
            yield dark_id, err
            continue
        if tstart <= reps[0]["tstart"] <= tstop:  # else: same day, outside the range
            yield dark_id, reps


def build_window(
    src: Source, l0_root: Path, tstart: float, tstop: float, unit: Unit
) -> list[tuple[str, str, Any]]:
    """The step of one window: per calibration ``(id, "unchanged" | "refused" | "build",
    message | ({file name: bytes}, replica kind))``."""
    out: list[tuple[str, str, Any]] = []
    for dark_id, reps in _window_replicas(src, tstart, tstop, unit):
        if reps is None:
            out.append((dark_id, "unchanged", None))
            continue
        try:
            if isinstance(reps, CalibrationRefused):
                raise reps
            temps, mean_hdr3 = replica_ccd_temps(dark_id, reps, l0_root)
            integ = float(np.mean([r["integ"] for r in reps]))
            image, n_cosmic = combine_replicas(np.stack([r.pop("image") for r in reps]), integ)
            props, text = build_props(dark_id, reps, temps, n_cosmic, mean_hdr3)
            data = image_bytes(dark_id, image, len(reps), props["ccd_temp"])
        except CalibrationRefused as err:
            out.append((dark_id, "refused", str(err)))
            continue
        files = {IMAGE_NAME: data, PROPS_NAME: text.encode()}
        out.append((dark_id, "build", (files, reps[0]["kind"])))
    return out


def window_inputs(
    src: Source, tstart: float, tstop: float, unit: Unit
) -> list[tuple[str, float, float]]:
    """The step of one window when archiving inputs: (id, t0, t1) of the L0 ranges its
    calibrations to build need (refused ones are reported by the calibrations' pass)."""
    out = []
    for dark_id, reps in _window_replicas(src, tstart, tstop, unit):
        if isinstance(reps, list):
            out += [(dark_id, t0, t1) for t0, t1 in input_windows(reps)]
    return out


class DarkJob(Job):
    """Dark calibrations of [start, stop], one window of days per unit (module docstring)."""

    name = DARK.name
    product = DARK
    unit = "dark calibration"
    verb = "archived"
    staging_name = LAYOUT.staging

    def __init__(
        self,
        start: CxoTimeLike = None,
        stop: CxoTimeLike = None,
        data_root: str | Path | None = None,
        l0_root: str | Path | None = None,
        days_at_once: float = 90.0,
    ):
        self.root = dark_cals_root(data_root)
        self.l0_root = (
            Path(l0_root).expanduser() if l0_root is not None else default_l0_root(data_root)
        )
        self.start, self.stop, self.days_at_once = start, stop, days_at_once
        self.tstart = self.tstop = 0.0

    def recover(self) -> list[str]:
        return LAYOUT.clean_leftovers(self.root)

    def plan(self, source: Source, report: UpdateReport) -> Iterator[Unit]:
        start = self.start
        if start is None:
            ids = LAYOUT.ids(self.root)
            if not ids:
                raise InvalidArgumentError(
                    f"the aca-dark archive at {self.root} is empty: give a start time"
                )
            start = dark_id_to_date(ids[-1])
        self.tstart, self.tstop = time_range(start, self.stop)
        whole = frozenset(i for i in LAYOUT.ids(self.root) if LAYOUT.is_whole(self.root, i))
        kind = archive_kind(self.root)  # replicas of the other kind are refused
        span = self.days_at_once * SECONDS_PER_DAY
        for i, c0 in enumerate(np.arange(day_start(self.tstart), day_end(self.tstop), span)):
            c1 = min(c0 + span, day_end(self.tstop))
            label = f"{to_date(c0)[:8]} .. {to_date(c1)[:8]}"
            yield Unit(
                label, label, self.staging(i), (float(c0), float(c1), whole, kind, self.root)
            )

    def step(self, source: Source) -> Callable[[Unit], Any]:
        return partial(build_window, source, self.l0_root, self.tstart, self.tstop)

    def commit(self, unit: Unit, result: list[tuple[str, str, Any]], report: UpdateReport) -> None:
        for dark_id, outcome, value in result:
            if outcome == "unchanged":
                report.unchanged.append(dark_id)
            elif outcome == "refused":
                report.failed[dark_id] = value
            else:
                files, kind = value
                if archive_kind(self.root) is None:  # a content-judged source: the first fixes it
                    settle_kind(self.root, kind)
                broken = (self.root / dark_id).exists()
                LAYOUT.install(self.root, dark_id, files)
                report.done[dark_id] = "rebuilt broken calibration" if broken else "archived"


class DarkInputsJob(DarkJob):
    """The inputs' pass of ``--with-inputs``: per window, the L0 ranges its calibrations
    need, archived from the same source through the L0 update."""

    def __init__(self, wait: float, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.wait = wait

    def recover(self) -> list[str]:
        return []  # the calibrations' pass recovers (and reports it)

    def plan(self, source: Source, report: UpdateReport) -> Iterator[Unit]:
        self.resolved = source  # the inputs come from the calibrations' own source
        return super().plan(source, report)

    def step(self, source: Source) -> Callable[[Unit], Any]:
        return partial(window_inputs, source, self.tstart, self.tstop)

    def commit(
        self, unit: Unit, result: list[tuple[str, float, float]], report: UpdateReport
    ) -> None:
        for dark_id, t0, t1 in result:
            l0 = update_archive(L0, self.resolved, t0, t1, data_root=self.l0_root, wait=self.wait)
            report.ingest.merge(l0.ingest)
            report.notes.append(
                f"inputs of {dark_id}: aca-l0 {to_date(t0)[:17]} .. {to_date(t1)[:17]}: "
                + l0.ingest.summary().splitlines()[0]
            )


def update_aca_dark(
    start: CxoTimeLike = None,
    stop: CxoTimeLike = None,
    source: str | Source | None = None,
    data_root: str | Path | None = None,
    l0_root: str | Path | None = None,
    days_at_once: float = 90.0,
    progress: Progress | None = None,
    wait: float = 0.0,
    with_inputs: bool = False,
) -> UpdateReport:
    """Archive the calibrations whose first replica starts in [start, stop].

    ``start`` defaults to the day of the last archived calibration, ``stop`` to now;
    ``data_root`` is the ``aca_dark`` folder, ``l0_root`` the L0 archive used for the CCD
    temperatures (default: ``aca0`` beside ``data_root``). A calibration whose inputs are
    missing is refused (in the report's ``failed``, saying what to update first); the
    others are archived regardless. ``with_inputs`` first archives the L0 data the
    temperatures need from the same ``source``.
    """
    args = (start, stop, data_root, l0_root, days_at_once)
    report = None
    if with_inputs:
        report = run_update(DarkInputsJob(wait, *args), source, progress, wait)
    cals = run_update(DarkJob(*args), source, progress=progress, wait=wait)
    if report is not None:
        cals.ingest.merge(report.ingest)
        cals.notes[:0] = report.notes
    return cals


def check_dark_archive(
    data_root: str | Path | None = None, repair: bool = False
) -> tuple[list[str], list[str]]:
    """(problems, repairs made) of the dark archive: leftovers of interrupted updates and
    calibration folders that are not whole (files, JSON, image size, checksums). ``repair``
    removes leftovers and moves broken calibrations to ``rejected/`` so an update rebuilds
    them."""
    return LAYOUT.check(dark_cals_root(data_root), repair=repair)


# The calibration-product interface of the registry (`mica.engine.registry`).
update = update_aca_dark
check = check_dark_archive
