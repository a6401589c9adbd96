"""Update an archive from a source: locked, recovered, chunked by time, resumable."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mica.engine.index import ArchiveIndex
from mica.engine.ingest import STAGING_DIR, IngestReport, ingest_files, recover_pending
from mica.engine.lock import UpdateLock
from mica.engine.product import FileProduct
from mica.engine.provenance import resolve_source
from mica.sources import Source
from mica.time import CxoTimeLike, day_end, day_start, to_date, to_secs

Progress = Callable[[int, int, str], None]


def update_range(
    product: FileProduct,
    root: Path,
    start: CxoTimeLike,
    stop: CxoTimeLike,
    resume: Callable[[], float | None],
    alternative: str = "a start time",
) -> tuple[float, float]:
    """(tstart, tstop) of an update; with no ``start``, where the archive left off."""
    if start is None:
        last = resume()
        if last is None:
            raise ValueError(f"the {product.name} archive at {root} is empty: give {alternative}")
        tstart = float(last)
    else:
        tstart = to_secs(start)
    tstop = to_secs(stop)
    if tstop <= tstart:
        raise ValueError(f"stop {to_date(tstop)} is not after start {to_date(tstart)}")
    return tstart, tstop


def update_archive(
    product: FileProduct,
    source: str | Source | None = None,
    start: CxoTimeLike = None,
    stop: CxoTimeLike = None,
    days_at_once: float = 30.0,
    data_root: str | Path | None = None,
    progress: Progress | None = None,
    wait: float = 0.0,
) -> IngestReport:
    """Fetch the product's files in [start, stop] from ``source`` and ingest them.

    With no ``start`` the update continues from the last ingested time. Only one update of
    an archive runs at a time: a second one waits ``wait`` seconds, then raises ArchiveBusy.
    """
    src = resolve_source(source, product, product.root(data_root))
    root = product.root(data_root)
    report = IngestReport()
    with UpdateLock(root, wait=wait), ArchiveIndex(product, root) as index:
        recover_pending(product, index)
        tstart, tstop = update_range(product, root, start, stop, index.resume_time)
        t0s = np.arange(day_start(tstart), day_end(tstop), days_at_once * 86400.0)
        staging = root / STAGING_DIR
        for i, t0 in enumerate(t0s):
            t1 = min(t0 + days_at_once * 86400.0, day_end(tstop))
            # Chunks are day-aligned, but never ask for more than the requested range.
            r0, r1 = max(t0, tstart), min(t1, tstop)
            if progress:
                progress(i, len(t0s), f"{to_date(r0)[:17]} .. {to_date(r1)[:17]}")
            shutil.rmtree(staging, ignore_errors=True)  # leftovers of a killed run
            staging.mkdir(parents=True)
            files = src.fetch(product, r0, r1, staging)
            report.merge(ingest_files(product, files, index=index))
            shutil.rmtree(staging, ignore_errors=True)
        if progress:
            progress(len(t0s), len(t0s), "done")
    return report
