"""Rebuild a product's columnar store on the runner: one unit per stale partition.

A unit's step (`mica.engine.colstore.build_chunk`) writes the partition's chunk file under a
new name the runner registered as scratch, on any executor (worker processes, a cluster on
the shared filesystem); the runner records each chunk, in partition order, in one transaction
(`ColumnStore.record_chunk`). A chunk that cannot be built leaves its partition dirty, served
from the files. A killed rebuild leaves scratch files that the next update or ``mica check
--repair`` removes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from mica.engine.colstore import BuiltChunk, ChunkTask, ColumnStore, build_chunk
from mica.engine.executors import Executor, UnitError
from mica.engine.index import ArchiveIndex
from mica.engine.ingest import recover_pending
from mica.engine.product import FileProduct
from mica.engine.report import UpdateReport
from mica.engine.runner import Job, Progress, Unit, run_update


def _build(unit: Unit) -> BuiltChunk:
    return build_chunk(unit.data)


class StoreRebuildJob(Job):
    """Bring the store chunks of ``parts`` (default: every stale one) up to date."""

    unit = "store chunk"
    verb = "rebuilt"
    staging_name = "staging-store"

    def __init__(
        self,
        product: FileProduct,
        data_root: str | Path | None = None,
        parts: Iterable[str] | None = None,
    ):
        self.store_of = product
        self.product = None  # rebuilt from the archive itself: no source
        self.name = f"{product.name} store"
        self.root = product.root(data_root)
        self.parts = None if parts is None else list(parts)
        self.index: ArchiveIndex | None = None

    def session(self) -> AbstractContextManager:
        self.index = ArchiveIndex(self.store_of, self.root)
        return self.index

    def recover(self) -> list[str]:
        return recover_pending(self.store_of, self.index)

    def plan(self, source: Any, report: UpdateReport) -> Iterable[Unit]:
        self.store = ColumnStore(self.store_of, self.index)
        parts = self.store.stale_parts() if self.parts is None else self.parts
        tasks = self.store.plan_chunks(parts)
        return [Unit(t.part, t.part, self.staging(i), t) for i, t in enumerate(tasks)]

    def step(self, source: Any) -> Callable[[Unit], Any]:
        return _build

    def commit(self, unit: Unit, result: BuiltChunk, report: UpdateReport) -> None:
        self.store.record_chunk(unit.data, result)
        report.done[unit.key] = f"{result.nrows} rows"

    def failed(self, unit: Unit, error: UnitError, report: UpdateReport) -> None:
        self.store.record_chunk(unit.data, error.error)  # partition stays dirty, files serve it
        report.failed[unit.key] = str(error)


def rebuild_store(
    product: FileProduct,
    data_root: str | Path | None = None,
    parts: Iterable[str] | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
    wait: float = 0.0,
) -> UpdateReport:
    """Rebuild the store chunks of ``parts`` (default: every stale partition) of a product.

    Parameters
    ----------
    product : FileProduct
        A product with a columnar store (``mica.products.aca_l0.L0``).
    data_root : path-like, optional
        The product folder (default ``<archive>/<product folder>``).
    parts : iterable of str, optional
        Partitions to rebuild (default: those `ColumnStore.stale_parts` lists).
    executor : Executor, optional
        Where chunks are built (default: in this process; a `DaskExecutor` for a cluster).
    progress : callable, optional
        ``progress(done, total, label)``.
    wait : float
        Seconds to wait for a running update of the product.

    Returns
    -------
    UpdateReport
        ``done`` / ``failed`` by partition.
    """
    job = StoreRebuildJob(product, data_root, parts)
    return run_update(job, progress=progress, wait=wait, executor=executor)


__all__ = ["ChunkTask", "StoreRebuildJob", "rebuild_store"]
