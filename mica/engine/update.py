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
from mica.engine.sources import Source, make_source
from mica.time import CxoTimeLike, day_end, day_start, to_date, to_secs

# Requests reach this far beyond each chunk so files straddling its edges are not missed.
CHUNK_PAD = 10000.0

Progress = Callable[[int, int, str], None]


def update_archive(product: FileProduct, source: str | Source | None = None,
                   start: CxoTimeLike = None, stop: CxoTimeLike = None,
                   days_at_once: float = 30.0, data_root: str | Path | None = None,
                   progress: Progress | None = None, wait: float = 0.0) -> IngestReport:
    """Fetch the product's files in [start, stop] from ``source`` and ingest them.

    With no ``start`` the update continues from the last ingested time. Only one update of
    an archive runs at a time: a second one waits ``wait`` seconds, then raises ArchiveBusy.
    """
    src = make_source(source)
    root = product.root(data_root)
    report = IngestReport()
    with UpdateLock(root, wait=wait), ArchiveIndex(product, root) as index:
        recover_pending(product, index)
        if start is None:
            resume = index.resume_time()
            if resume is None:
                raise ValueError(f"the {product.name} archive at {root} is empty: give a start time")
            tstart = float(resume)
        else:
            tstart = to_secs(start)
        tstop = to_secs(stop)
        if tstop <= tstart:
            raise ValueError(f"stop {to_date(tstop)} is not after start {to_date(tstart)}")
        t0s = np.arange(day_start(tstart), day_end(tstop), days_at_once * 86400.0)
        staging = root / STAGING_DIR
        for i, t0 in enumerate(t0s):
            t1 = min(t0 + days_at_once * 86400.0, day_end(tstop))
            if progress:
                progress(i, len(t0s), f"{to_date(t0)[:8]} .. {to_date(t1)[:8]}")
            shutil.rmtree(staging, ignore_errors=True)  # leftovers of a killed run
            staging.mkdir(parents=True)
            files = src.fetch(product, t0 - CHUNK_PAD, t1 + CHUNK_PAD, staging)
            report.merge(ingest_files(product, files, index=index))
            shutil.rmtree(staging, ignore_errors=True)
        if progress:
            progress(len(t0s), len(t0s), "done")
    return report
