"""Derived products: tables computed per unit (an observation, an obsid revision) from other
products, on the one runner.

A derived product is a small description (`DerivedProduct`): which units to compute
(``plan``), how to compute one (``compute``, side-effect free, in any executor), optionally
what to install for it (``install``, e.g. a report folder), and the table its rows go to
(`mica.engine.table_store.TableSpec`). `update_derived` runs it with
`mica.engine.runner.run_update`, writing the table a generation at a time
(`mica.engine.table_store.GenerationTable`: every ``checkpoint`` units and at the end);
units that failed are recorded with their reason and retried by ``check_missing``.
`check_derived` checks the table, and its digest (`mica.engine.digests`); a table that fails
is rebuilt from the inputs by ``mica check --repair`` (`update_derived` with ``rebuild``),
keeping its hand-edited columns where they read.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from mica.engine.atomic import copy_atomic, partial_name
from mica.engine.digests import folder_problem, recorded, sidecar
from mica.engine.executors import Executor, UnitError
from mica.engine.provenance import archive_kind, read_provenance, write_provenance
from mica.engine.report import CheckReport, UpdateReport
from mica.engine.runner import Job, Progress, Unit, run_update
from mica.engine.table_store import GenerationTable, TableDamage, TableSpec, carry_preserved
from mica.errors import DerivedFailure


@dataclass
class DerivedUnit:
    """One unit of a derived product: its key, a progress label, its start, its data."""

    key: tuple
    label: str
    tstart: float = 0.0
    data: Any = None


class DerivedProduct(ABC):
    """The description of a derived product (one module-level instance per product).

    Attributes
    ----------
    name : str
        Command name (``mica update <name>``).
    folder : str
        Its folder under the archive root.
    table_name : str
        The table file in that folder.
    spec : TableSpec
        The table.
    inputs : tuple of str
        Folders (under the archive root) of the products it is computed from; the first that
        records a kind decides whether this product is simulated or real.
    unit : str
        What one unit is (for the report).
    units_per_task : int
        Units one cluster task may compute (`Executor.map`'s ``per_task``): more than one
        for units of a few milliseconds each, whose scheduling would cost as much.
    """

    name: str = ""
    folder: str = ""
    table_name: str = ""
    spec: TableSpec
    inputs: tuple[str, ...] = ()
    unit: str = "observation"
    units_per_task: int = 1

    def root(self, data_root: str | os.PathLike | None = None) -> Path:
        """The product folder: ``data_root``, else ``<archive>/<folder>``."""
        from mica.config import archive_root

        return Path(data_root) if data_root is not None else archive_root() / self.folder

    def table(self, data_root: str | os.PathLike | None = None) -> GenerationTable:
        """The product's table file (``data_root`` as in `root`)."""
        return GenerationTable(
            self.root(data_root) / self.table_name, self.spec, f"mica update {self.name}"
        )

    def kind(self, archive: Path) -> str | None:
        """``'simulated'`` or ``'real'``: the kind recorded by the input archives."""
        for name in self.inputs:
            kind = archive_kind(archive / name)
            if kind is not None:
                return kind
        return None

    @abstractmethod
    def plan(
        self,
        archive: Path,
        table: GenerationTable,
        *,
        start: float | None,
        stop: float | None,
        obsids: list[int] | None,
        check_missing: bool,
    ) -> list[DerivedUnit]:
        """The units to compute, in time order (``archive``: the folder of the inputs)."""

    @abstractmethod
    def compute(self, archive: Path, unit: DerivedUnit, staging: Path) -> np.ndarray:
        """One unit's rows; writes nothing outside ``staging``. Raise `DerivedFailure`
        (recorded with its message) when the unit cannot be computed."""

    def install(self, archive: Path, unit: DerivedUnit, rows: np.ndarray, staging: Path) -> None:
        """Install what ``compute`` left in ``staging`` (runs in the updater, in unit order)."""
        return None

    def unit_folders(self, data_root: str | os.PathLike | None = None) -> dict[int, list[Path]]:
        """The folders this product writes beside its table, one per unit, by obsid (each
        with the `mica.engine.digests.FOLDER_DIGESTS` of its files): none by default."""
        return {}

    def unit_problems(self, data_root: str | os.PathLike | None = None) -> dict[int, list[str]]:
        """Problems of the units' layout besides their folders' digests (e.g. links that
        lead nowhere), by obsid: `mica check --repair` computes those obsids again. None by
        default."""
        return {}

    def remarks(self, data_root: str | os.PathLike | None = None) -> list[str]:
        """What `mica check` lists beside the problems: by default the recorded failures."""
        table = self.table(data_root)
        return [
            f"{self.spec.label(tuple(row[c] for c in self.spec.key))} failed: "
            f"{row['reason'].decode()}"
            for row in table.failures()
        ]


class _Compute:
    """The picklable step of a derived unit."""

    def __init__(self, product: DerivedProduct, archive: Path):
        self.product = product
        self.archive = archive

    def __call__(self, unit: Unit) -> np.ndarray:
        return self.product.compute(self.archive, unit.data, unit.staging)


@dataclass
class DerivedJob(Job):
    """The runner's job for a derived product (see `update_derived`)."""

    derived: DerivedProduct
    root: Path
    archive: Path
    start: float | None = None
    stop: float | None = None
    obsids: list[int] | None = None
    check_missing: bool = False
    checkpoint: int = 200
    #: compute every unit again from the inputs, the first generation replacing the table
    #: (`rebuild_table`): ``mica check --repair`` of a table that failed its check
    rebuild: bool = False
    rows: dict[tuple, np.ndarray] = field(default_factory=dict)
    failures: dict[tuple, tuple[float, str]] = field(default_factory=dict)
    staging_name: str = "staging"
    #: the rows of the table being rebuilt, by unit key: their hand-edited columns are
    #: carried into the new rows
    previous: dict[tuple, np.ndarray] = field(default_factory=dict)
    #: the next generation replaces the table (the first of a rebuild)
    fresh: bool = False

    def __post_init__(self) -> None:
        self.name = self.derived.name
        self.unit = self.derived.unit
        self.units_per_task = self.derived.units_per_task
        self.verb = "computed"
        self.product = None  # inputs are archives, not a source
        self.tab = GenerationTable(
            self.root / self.derived.table_name, self.derived.spec, f"mica update {self.name}"
        )

    def recover(self) -> list[str]:
        done = []
        for tmp in unfinished(self.tab):
            tmp.unlink(missing_ok=True)  # a generation a killed run did not finish
            done.append(f"removed the unfinished table generation {tmp.name}")
        if self.rebuild:
            done += self.rebuild_table()
        return done

    def rebuild_table(self) -> list[str]:
        """Start a rebuild: keep the table aside (a second name, ``<table>.<timestamp>``),
        its rows' hand-edited columns to carry over where it reads, and plan from no rows."""
        self.fresh = True
        if not self.tab.exists():
            return []
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        aside = self.tab.path.with_name(f"{self.tab.path.name}.{stamp}")
        try:  # a second name: the next generation replaces the table's name only
            os.link(self.tab.path, aside)
        except OSError:  # a file system without hard links
            copy_atomic(self.tab.path, aside)
        done = [f"rebuilding {self.tab.path.name} from the inputs; the old one is kept as {aside}"]
        spec = self.derived.spec
        try:
            old = self.tab.read(verify=False)
        except Exception as err:  # noqa: BLE001  (any damage: nothing of it is carried)
            return [*done, f"no hand-edited column kept: the old table does not read ({err})"]
        at: dict[tuple, list[int]] = {}
        for i, key in enumerate(zip(*(old[c].tolist() for c in spec.key))):
            at.setdefault(key, []).append(i)
        self.previous = {key: old[rows] for key, rows in at.items()}
        edited = np.zeros(len(old), bool)
        for name in spec.preserve:
            edited |= old[name] != np.zeros((), old.dtype[name])
        if edited.any():
            columns = ", ".join(spec.preserve)
            done.append(f"kept the hand-edited {columns} of {edited.sum()} rows of the old table")
        return done

    def new_report(self) -> UpdateReport:
        return UpdateReport(self.name, self.unit, self.verb, files_based=False)

    def plan(self, source: Any, report: UpdateReport) -> Iterable[Unit]:
        units = self.derived.plan(
            self.archive,
            # a rebuild plans as for an empty table (a name never written): every unit
            GenerationTable(self.tab.path.with_name(f".{self.tab.path.name}.none"), self.tab.spec)
            if self.rebuild
            else self.tab,
            start=self.start,
            stop=self.stop,
            obsids=self.obsids,
            check_missing=self.check_missing,
        )
        kind = self.derived.kind(self.archive)
        record = read_provenance(self.root) or {}
        if kind is not None and record.get("kind") != kind:
            self.root.mkdir(parents=True, exist_ok=True)
            write_provenance(self.root, {**record, "kind": kind, "source": "derived"})
        return [Unit(u.key, u.label, self.staging(i), u) for i, u in enumerate(units)]

    def step(self, source: Any) -> Callable[[Unit], Any]:
        return _Compute(self.derived, self.archive)

    def failed(self, unit: Unit, error: UnitError, report: UpdateReport) -> None:
        err = error.error
        reason = str(err) if isinstance(err, DerivedFailure) else f"{type(err).__name__}: {err}"
        self.failures[unit.key] = (unit.data.tstart, reason)
        report.failed[unit.key] = reason
        self._maybe_checkpoint(report)

    def commit(self, unit: Unit, result: np.ndarray, report: UpdateReport) -> None:
        self.derived.install(self.archive, unit.data, result, unit.staging)
        old = self.previous.get(unit.key)
        if old is not None and self.derived.spec.preserve:
            result = np.asarray(result, self.derived.spec.dtype).copy()
            carry_preserved(old, result, self.derived.spec)
        self.rows[unit.key] = result
        report.done[unit.key] = f"{len(result)} rows"
        self._maybe_checkpoint(report)

    def _maybe_checkpoint(self, report: UpdateReport) -> None:
        if len(self.rows) + len(self.failures) >= self.checkpoint:
            self.flush(report)

    def flush(self, report: UpdateReport) -> None:
        """Write a generation with what was computed since the last one."""
        if self.rows or self.failures or self.fresh:
            report.notes += self.tab.write(self.rows, self.failures, fresh=self.fresh)
            self.rows, self.failures, self.fresh = {}, {}, False

    def finish(self, report: UpdateReport) -> None:
        self.flush(report)  # a rebuild with no unit at all: an empty table

    def interrupted(self, report: UpdateReport) -> list[str]:
        # Units computed since the last generation are not in the table: not finished.
        unsaved = [*self.rows, *self.failures]
        for key in unsaved:
            report.done.pop(key, None)
            report.failed.pop(key, None)
        if not unsaved:
            return []
        return [f"{len(unsaved)} {self.unit}s computed but not yet written to the table"]


def update_derived(
    product: DerivedProduct,
    data_root: str | os.PathLike | None = None,
    start: Any = None,
    stop: Any = None,
    obsids: list[int] | None = None,
    check_missing: bool = False,
    wait: float = 0.0,
    progress: Progress | None = None,
    executor: Executor | None = None,
    checkpoint: int = 200,
    archive: str | os.PathLike | None = None,
    rebuild: bool = False,
) -> UpdateReport:
    """Compute a derived product's units not yet in its table, and write the table.

    Parameters
    ----------
    product : DerivedProduct
        What to compute.
    data_root : path-like, optional
        The product folder (default ``<archive>/<product.folder>``).
    start, stop : time, optional
        Limit the units by time (any time `mica.time` accepts).
    obsids : list of int, optional
        Compute these obsids (again, if already in the table).
    check_missing : bool
        Also retry the units recorded as failed and any missing from the table.
    wait : float
        Seconds to wait for another running update of the product.
    progress : callable, optional
        ``progress(done, total, label)``.
    executor : Executor, optional
        Where units are computed (default: in this process).
    checkpoint : int
        Units per table generation.
    archive : path-like, optional
        The folder holding the input products (default: the product folder's parent).
    rebuild : bool
        Compute every unit again and replace the table (kept aside as
        ``<table>.<timestamp>``), its hand-edited columns carried over where it reads: what
        ``mica check --repair`` does with a table that fails its check.

    Returns
    -------
    UpdateReport
        ``done`` / ``failed`` by unit key.
    """
    from mica.time import to_secs

    root = product.root(data_root)
    job = DerivedJob(
        derived=product,
        root=root,
        archive=Path(archive) if archive is not None else root.parent,
        start=None if start is None else float(to_secs(start)),
        stop=None if stop is None else float(to_secs(stop)),
        obsids=obsids,
        check_missing=check_missing,
        checkpoint=checkpoint,
        rebuild=rebuild,
    )
    return run_update(job, source=None, progress=progress, wait=wait, executor=executor)


def unfinished(table: GenerationTable) -> list[Path]:
    """What a killed write of ``table`` left beside it: a generation, a digest record."""
    partial = partial_name(sidecar(table.path))
    found = sorted(table.path.parent.glob(f".{table.path.name}.tmp-*"))
    return found + ([partial] if os.path.lexists(partial) else [])


def check_derived(
    product: DerivedProduct,
    data_root: str | os.PathLike | None = None,
    repair: bool = False,
    verify_store: bool = False,
) -> CheckReport:
    """A derived product's problems: a table that does not open or does not match its
    recorded digests (`GenerationTable.damage`; every byte read), an unfinished generation.

    ``repair`` removes unfinished generations; a table whose rows are damaged is rebuilt
    from the inputs (`update_derived` with ``rebuild``, under the update lock), one whose
    rows are intact (a hand edit) rewritten from them; a table written before digests were
    gets them recorded. ``verify_store`` changes nothing (a derived table has no columnar
    store: its digests are compared anyway). Recorded failures are not problems of the
    archive: the report's notes list them (`DerivedProduct.remarks`; they are retried by
    ``mica update <name> --check-missing``) when there is no problem. Bool columns of the
    earlier format (h5py's enums, int8 to PyTables) are a problem too, which ``repair``
    mends by rewriting the table (`GenerationTable.rewrite`).
    """
    root = product.root(data_root)
    table = product.table(data_root)
    report = CheckReport(product.name, files=None)
    for tmp in unfinished(table):
        if repair:
            tmp.unlink(missing_ok=True)
            report.repairs.append(f"removed the unfinished table generation {tmp.name}")
        else:
            report.problems.append(f"unfinished table generation {tmp} (a killed update)")
    if not table.exists():
        report.empty = f"no table at {table.path}"
        return report
    report.data_kind = archive_kind(root) or "unknown"
    old_bools: list[str] = []
    try:  # its digests first: rows that do not match them are not decoded here
        damage = table.damage()
        if damage is None or damage.rows_intact:
            table.keys()
            table.failures()
            old_bools = table.old_bool_columns()
    except Exception as err:  # noqa: BLE001  (any damage of the file is the problem reported)
        damage = TableDamage(f"does not open: {err}", False)
    if damage is not None:
        report.problems.append(f"{table.path} {damage.detail}")
    if damage is not None and not damage.rows_intact:
        if repair:
            rebuilt = update_derived(product, data_root=data_root, rebuild=True)
            report.repairs += rebuilt.recovered
            counts = rebuilt.summary().splitlines()[0]
            report.repairs.append(f"rebuilt {table.path.name} from the inputs ({counts})")
        return report
    if damage is not None or (old_bools and repair):
        if repair:
            table.rewrite()
            why = "its rows as they are, digests recorded" if damage else "PyTables booleans"
            report.repairs.append(f"rewrote {table.path.name} with {why}")
    elif recorded(table.path) is None:
        if repair:  # it reads whole: its digests are recorded as it is
            table.record_digests()
            report.repairs.append(f"recorded the digests of {table.path.name}")
        else:
            report.notes.append(
                f"no digests recorded for {table.path} (written before digests were): "
                "`mica check --repair` or the next update that writes it records them"
            )
    if old_bools and not repair:
        report.problems.append(
            f"{table.path}: bool columns {', '.join(old_bools)} are HDF5 enums, which PyTables "
            f"reads as int8; `mica check --repair` or the next `mica update {product.name}` "
            "rewrites them as PyTables booleans"
        )
    _check_unit_folders(product, data_root, repair, verify_store, report)
    if not report.problems:
        report.notes += product.remarks(data_root)
    return report


def _check_unit_folders(
    product: DerivedProduct,
    data_root: str | os.PathLike | None,
    repair: bool,
    read: bool,
    report: CheckReport,
) -> None:
    """The unit folders whose files are not those their digests name (``read``: every byte
    compared, else only that each file is there); ``repair`` computes their obsids again."""
    damaged = product.unit_problems(data_root)
    for obsid, folders in product.unit_folders(data_root).items():
        for folder in folders:
            problem = folder_problem(folder, read)
            if problem is not None:
                damaged.setdefault(obsid, []).append(f"{folder}: {problem}")
    if not damaged:
        return
    if repair:
        redone = update_derived(product, data_root=data_root, obsids=sorted(damaged))
        report.repairs += [f"wrote again: {line}" for lines in damaged.values() for line in lines]
        report.repairs.append(redone.summary().splitlines()[0])
        return
    for obsid, lines in damaged.items():
        mend = f"`mica update {product.name} --obsid {obsid}` writes it again"
        report.problems += [f"{line}; {mend}" for line in lines]
