"""The one update runner: lock, recovery, staging, progress, report; one commit per unit.

An update is a `Job` (a product's description of how to plan, step and commit its units)
run by `run_update`:

1. take the product's update lock (`mica.engine.lock`), so one updater runs at a time;
2. ``job.recover()``: finish or undo what a killed run left (intents, temporary folders);
3. ``job.plan(source, report)``: the units of work (L0 time chunks, obsids, dark-calibration
   windows), each with its own staging folder;
4. the executor runs each unit's side-effect-free step (fetch into the unit's staging
   folder, validate, compute) and returns picklable results in unit order;
5. ``job.commit(unit, result, report)``: here, in the runner's process, one unit at a time,
   in unit order, the only step that changes the archive.

A unit whose step raised comes back as a `UnitError`: ``job.failed`` records it in the report
(or re-raises what must stop the update, e.g. a source that cannot serve the product).

An interrupted update (Ctrl-C) raises ``KeyboardInterrupt`` again, its message the report's
summary: what it finished, where it stopped and what it left (`UpdateReport.interrupted`).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mica.engine.adopt import adopt_if_original
from mica.engine.executors import Executor, InlineExecutor, UnitError, timed
from mica.engine.lock import UpdateLock
from mica.engine.product import FileProduct
from mica.engine.provenance import resolve_source
from mica.engine.report import UpdateReport
from mica.engine.source import Source
from mica.errors import ArchiveWriteError

#: ``progress(done, total, label)``: called before each unit and at the end. A callback that
#: also has ``files(done, total, name)`` (`mica.progress.UpdateProgress`) hears of each file
#: a unit settles (jobs that handle files pass it on: `Job.file_progress`).
Progress = Callable[[int, int, str], None]

_log = logging.getLogger(__name__)


@dataclass
class Unit:
    """One unit of work: its report key, a progress label, its staging folder, its data."""

    key: Any
    label: str
    staging: Path
    data: Any = None


class Job(ABC):
    """How one product is updated: the runner calls these in the order of the module doc."""

    #: product name, what a unit is and what happens to it (for the report's summary)
    name: str = ""
    unit: str = "unit"
    verb: str = "updated"
    #: the product updated (its provenance decides the source), the folder holding it (lock,
    #: staging), and the staging folder's name in it
    product: FileProduct | None
    root: Path
    staging_name: str = "staging"
    #: units one task of an executor may run (`Executor.map`'s ``per_task``)
    units_per_task: int = 1
    #: per-file progress ``(done, total, name)`` of the running update, set by the runner
    file_progress: Callable[[int, int, str], None] | None = None

    def session(self) -> AbstractContextManager:
        """Resources held while the lock is (e.g. the open index)."""
        return nullcontext()

    def recover(self) -> list[str]:
        """Finish or undo what a killed run left; returns what was done."""
        return []

    @abstractmethod
    def plan(self, source: Source, report: UpdateReport) -> Iterable[Unit]:
        """The units of work, in commit order (may record skipped units in the report)."""

    @abstractmethod
    def step(self, source: Source) -> Callable[[Unit], Any]:
        """The side-effect-free step of a unit (picklable for out-of-process executors)."""

    @abstractmethod
    def commit(self, unit: Unit, result: Any, report: UpdateReport) -> None:
        """Apply one unit's result to the archive (runs in the runner's process)."""

    def failed(self, unit: Unit, error: UnitError, report: UpdateReport) -> None:
        """A unit's step raised: by default the update stops with that error."""
        raise error.error

    def finish(self, report: UpdateReport) -> None:
        """After the last unit's commit (e.g. write a derived table's generation)."""
        return None

    def interrupted(self, report: UpdateReport) -> list[str]:
        """The update was interrupted: keep in the report only what the archive keeps;
        returns what else is left undone (e.g. results not written yet)."""
        return []

    def new_report(self) -> UpdateReport:
        return UpdateReport(self.name, self.unit, self.verb)

    def staging(self, i: int) -> Path:
        """The staging folder of the ``i``-th unit."""
        return self.root / self.staging_name / f"u{i:05d}"


def run_update(
    job: Job,
    source: str | Source | None = None,
    progress: Progress | None = None,
    wait: float = 0.0,
    executor: Executor | None = None,
) -> UpdateReport:
    """Run ``job`` against ``source`` (see the module docstring); returns its report.

    Only one update of a product runs at a time: a second one waits ``wait`` seconds, then
    raises `ArchiveBusy`.
    """
    # The first update of an archive of the original mica adopts it (`mica.engine.adopt`).
    adopted = job.product and adopt_if_original(job.product, job.root, wait, executor)
    # The one place an update resolves its source, checked against the archive's provenance
    # (a derived product's inputs are other archives: it has no source).
    src = None if job.product is None else resolve_source(source, job.product, job.root)
    executor = executor or InlineExecutor()
    report = job.new_report()
    report.notes += [adopted] if adopted else []
    where = _Position()
    try:
        with UpdateLock(job.root, wait=wait), job.session():
            report.recovered += job.recover()
            staging = job.root / job.staging_name
            shutil.rmtree(staging, ignore_errors=True)  # leftovers of a killed run
            try:
                where.units = list(job.plan(src, report))
                _run_units(job, src, executor, report, progress, where)
                where.finishing = True
                job.finish(report)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except KeyboardInterrupt as interrupt:
        where.record(job, report)
        raise KeyboardInterrupt(report.summary()) from interrupt
    except (OSError, sqlite3.Error) as exc:  # disk full, read-only: one ArchiveWriteError
        err = ArchiveWriteError.from_error(exc, job.root)
        if err is None or err is exc:
            raise
        raise err from exc
    return report


@dataclass
class _Position:
    """How far an update got: what an interrupted one reports."""

    units: list[Unit] = field(default_factory=list)
    #: the unit being fetched or committed (-1: still planning)
    current: int = -1
    #: files of the current unit settled, of its total (units that report their files)
    files: tuple[int, int] = (0, 0)
    #: after the last unit's commit (``job.finish``)
    finishing: bool = False

    def on_file(self, forward: Callable[[int, int, str], None] | None) -> Callable:
        """The jobs' per-file callback: counts the current unit's files, then ``forward``."""

        def settled(done: int, total: int, name: str) -> None:
            self.files = (done, total)
            if forward is not None:
                forward(done, total, name)

        return settled

    def record(self, job: Job, report: UpdateReport) -> None:
        """Write in ``report`` where the update stopped and what it left."""
        unsaved = job.interrupted(report)
        n = len(self.units)
        if self.finishing:
            report.interrupted = f"after its last {job.unit}, while finishing"
            left = [f"finishing what the {n} {job.unit}s wrote"]
        elif self.current < 0:
            report.interrupted = f"before its first {job.unit}, while planning"
            left = ["all of it"]
        else:
            unit = self.units[self.current]
            done, total = self.files
            report.interrupted = f"in {unit.label} ({job.unit} {self.current + 1} of {n})"
            if total:
                report.interrupted += f", {done} of its {total} files processed"
            later = n - self.current - 1
            left = [f"the rest of {unit.label}"]
            if later:
                left.append(f"{later} later {job.unit}{'s' if later > 1 else ''}")
        report.left = left + unsaved


def _run_units(
    job: Job,
    src: Source | None,
    executor: Executor,
    report: UpdateReport,
    progress: Progress | None,
    where: _Position,
) -> None:
    job.file_progress = where.on_file(getattr(progress, "files", None))
    name_units = getattr(progress, "units_named", None)
    if name_units is not None:  # the progress shows counts and rates in the job's unit
        name_units(job.unit)
    steps = executor.map(_staged(job.step(src)), where.units, job.units_per_task)
    with closing(timed(steps, report)) as results:
        _commit_units(job, src, results, report, progress, where)


def _commit_units(
    job: Job,
    src: Source | None,
    results: Iterator[Any],
    report: UpdateReport,
    progress: Progress | None,
    where: _Position,
) -> None:
    t0 = time.perf_counter()
    units = where.units
    for i, unit in enumerate(units):
        where.current, where.files = i, (0, 0)
        if progress:
            progress(i, len(units), unit.label)
        result = next(results)
        t_commit, cpu_commit = time.perf_counter(), time.thread_time()
        try:
            if isinstance(result, UnitError):
                job.failed(unit, result, report)
            else:
                job.commit(unit, result, report)
            # One line per unit for logs and non-terminal runs (``mica -v``).
            _log.info(
                "%s: %s %d/%d %s: %s (%.1f s)",
                job.name,
                job.unit,
                i + 1,
                len(units),
                unit.label,
                report.done.get(unit.key) or report.failed.get(unit.key, "no change"),
                time.perf_counter() - t0,
            )
        finally:
            report.commit_seconds += time.perf_counter() - t_commit
            report.commit_cpu_seconds += time.thread_time() - cpu_commit
            shutil.rmtree(unit.staging, ignore_errors=True)
            notes = getattr(src, "notes", None)
            if notes:  # remarks of the source about this unit
                report.notes += notes
                notes.clear()
    if progress:
        progress(len(units), len(units), "done")


class _staged:
    """A step that first makes its unit's (empty) staging folder; picklable."""

    def __init__(self, fn: Callable[[Unit], Any]):
        self.fn = fn

    def __call__(self, unit: Unit) -> Any:
        shutil.rmtree(unit.staging, ignore_errors=True)
        unit.staging.mkdir(parents=True)
        return self.fn(unit)
