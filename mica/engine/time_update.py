"""Update a time-ordered archive (ACA L0) from a source: day-aligned chunks on the runner.

`TimeChunkJob` plans day-aligned chunks of ``days_at_once`` days over [start, stop] (start defaults
to where the archive left off); a chunk's step fetches its files into the chunk's staging
folder, its commit ingests them (`ingest_files`: validation in worker processes, then the
crash-safe commits one file at a time, in time order).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from mica.engine.colstore import ColumnStore, build_chunk, drop_kept
from mica.engine.executors import Executor, UnitError, timed
from mica.engine.index import ArchiveIndex
from mica.engine.ingest import (
    STAGING_DIR,
    ingest_files,
    ingest_validated,
    quarantine,
    recover_pending,
    validate_files,
)
from mica.engine.product import FileProduct, RejectedFile
from mica.engine.report import UpdateReport
from mica.engine.runner import Job, Progress, Unit, run_update
from mica.engine.source import Source, split_delivery
from mica.errors import InvalidArgumentError
from mica.time import CxoTimeLike, day_end, day_start, time_range, to_date, to_secs

__all__ = ["TimeChunkJob", "Progress", "update_archive", "update_range"]


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
            raise InvalidArgumentError(
                f"the {product.name} archive at {root} is empty: give {alternative}"
            )
        tstart = float(last)
    else:
        tstart = to_secs(start)
    return time_range(tstart, stop)


def _fetch_chunk(src: Source, product: FileProduct, unit: Unit) -> list[Path | RejectedFile]:
    r0, r1, before = unit.data
    # Only the first chunk looks back for files that began earlier: the chunk before a later
    # one fetched the files named up to its start.
    return src.fetch(product, r0, r1, unit.staging, lookback=None if before is None else 0.0)


def _fetch_validate(
    src: Source, product: FileProduct, cache: Path, unit: Unit
) -> list[tuple[str, Path, Any] | RejectedFile]:
    """A chunk's files fetched and validated in one task (on an executor's worker), their
    store arrays kept in ``cache`` for the chunk builds; the source's refusals follow them.
    A file named before the chunk's start came with the previous chunk too (a source
    delivering the files that overlap a range, as the simulator does): it is left to the
    committer, not validated twice."""
    before = unit.data[2]

    def seen(name: str) -> bool:
        try:
            return before is not None and product.name_time(name) < before
        except Exception:  # noqa: BLE001  (a name the product cannot read: validation says why)
            return False

    files, refused = split_delivery(_fetch_chunk(src, product, unit))
    return [*validate_files(product, files, cache, seen), *refused]


class TimeChunkJob(Job):
    """A time-chunked update of one file product (see the module docstring).

    With an ``executor`` (a cluster), chunks are fetched and files validated on it, and the
    store chunks the update touched are built on it each time the committed files reach a
    new period of the store, and at the end.
    """

    unit = "time chunk"
    verb = "fetched"
    staging_name = STAGING_DIR

    def __init__(
        self,
        product: FileProduct,
        start: CxoTimeLike = None,
        stop: CxoTimeLike = None,
        days_at_once: float | None = None,
        data_root: str | Path | None = None,
        executor: Executor | None = None,
    ):
        self.product = product
        self.name = product.name
        self.root = product.root(data_root)
        if days_at_once is None:  # a cluster needs many small units to share out
            days_at_once = 30.0 if executor is None else 1.0
        self.start, self.stop, self.days_at_once = start, stop, days_at_once
        self.executor = executor
        self.index: ArchiveIndex | None = None
        self._epoch: str | None = None  # the store period the last committed unit reached

    def session(self) -> AbstractContextManager:
        self.index = ArchiveIndex(self.product, self.root)
        return self.index

    def recover(self) -> list[str]:
        return recover_pending(self.product, self.index)

    def plan(self, source: Source, report: UpdateReport) -> Iterator[Unit]:
        tstart, tstop = update_range(
            self.product, self.root, self.start, self.stop, self.index.resume_time
        )
        span = self.days_at_once * 86400.0
        t0s = np.arange(day_start(tstart), day_end(tstop), span)
        first = True  # a later chunk's files named before its start came with the previous
        for i, t0 in enumerate(t0s):
            t1 = min(t0 + span, day_end(tstop))
            # Chunks are day-aligned, but never ask for more than the requested range.
            r0, r1 = max(t0, tstart), min(t1, tstop)
            if r1 <= r0:  # a chunk of the last day after ``stop``
                continue
            label = f"{to_date(r0)[:17]} .. {to_date(r1)[:17]}"
            seen_before = None if first else float(r0)  # see `_fetch_validate`
            yield Unit(label, label, self.staging(i), (float(r0), float(r1), seen_before))
            first = False

    def step(self, source: Source) -> Callable[[Unit], Any]:
        if self.executor is None:  # validation in this process's pool, at the commit
            return partial(_fetch_chunk, source, self.product)
        # on an executor a unit is one task: its files fetched and validated together
        return partial(_fetch_validate, source, self.product, self._arrays())

    def commit(self, unit: Unit, result: Any, report: UpdateReport) -> None:
        files, refused = split_delivery(result)
        if self.executor is None:
            ingest = ingest_files(self.product, files, index=self.index, on_file=self.file_progress)
        else:
            ingest = ingest_validated(self.product, files, self.index, on_file=self.file_progress)
        for err in refused:  # refused by the source: the reason is kept as a rejected file's
            ingest.rejected.append(err)
            quarantine(self.index.root, None, err)
        report.ingest.merge(ingest)
        if ingest.unchanged and not (ingest.ingested or ingest.replaced or ingest.rejected):
            report.unchanged.append(unit.key)  # every file already archived: nothing written
        else:
            report.done[unit.key] = ingest.summary().splitlines()[0]
        if self.executor is not None and self.product.has_store:
            # As a serial ingest writes the chunks at each new period of the store, so that
            # the arrays kept in staging stay about a period's, not the whole run's.
            epoch = self.product.partition_epoch({"filetime": unit.data[1]})
            if self._epoch is not None and epoch != self._epoch:
                self._build_chunks()
            self._epoch = epoch

    def _arrays(self) -> Path:
        """Where the workers keep validated files' store arrays: in the staging folder, which
        the runner empties before and after the update (`mica.engine.runner.run_update`)."""
        return self.root / self.staging_name / "arrays"

    def finish(self, report: UpdateReport) -> None:
        if self.executor is not None and self.product.has_store:
            self._build_chunks()

    def _build_chunks(self) -> None:
        """Build the dirty store chunks on the executor, from the arrays the workers kept;
        those arrays are then dropped (a later build of a partition reuses its chunk)."""
        store = ColumnStore(self.product, self.index)
        tasks = store.plan_chunks(self.index.dirty_parts(), self._arrays())
        with closing(timed(self.executor.map(build_chunk, tasks))) as results:
            for task, built in zip(tasks, results):
                store.record_chunk(task, built.error if isinstance(built, UnitError) else built)
        drop_kept(self._arrays(), [row for task in tasks for row in task.rows])


def update_archive(
    product: FileProduct,
    source: str | Source | None = None,
    start: CxoTimeLike = None,
    stop: CxoTimeLike = None,
    days_at_once: float | None = None,
    data_root: str | Path | None = None,
    progress: Progress | None = None,
    wait: float = 0.0,
    executor: Executor | None = None,
) -> UpdateReport:
    """Fetch the product's files in [start, stop] from ``source`` and ingest them.

    With no ``start`` the update continues from the last ingested time. Only one update of
    an archive runs at a time: a second one waits ``wait`` seconds, then raises ArchiveBusy.
    The report's ``ingested`` / ``rejected`` / ``ingest`` hold the files' fates. Chunks are
    ``days_at_once`` days (default 30, or 1 on an ``executor`` such as a `DaskExecutor`).
    """
    job = TimeChunkJob(product, start, stop, days_at_once, data_root, executor)
    return run_update(job, source, progress=progress, wait=wait, executor=executor)
