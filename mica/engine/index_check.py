"""Consistency of an archive with its index: the index file, every file against its row, no
link in the archive, every row with its file.

The files are the truth, the index their lookup table. `check_archive` streams (the files a
folder at a time, the rows a batch at a time: an archive of millions of files is never held
whole) and reports:

- a damaged index (SQLite's ``quick_check``), or one missing beside archived files;
  ``repair`` rebuilds it from the files (`mica.engine.index_rebuild`) and checks on;
- each archived file against its row: a file without a row (``repair`` indexes it), a row
  that says otherwise than the file's own headers (`file_row`: slot, times, revision,
  checksum, ...; ``repair`` rewrites the row from the validated file), a file that no
  longer validates (``repair`` quarantines it and drops its row);
- a symbolic link in the archive other than the layout's own: never followed; ``repair``
  moves a link named as an archived file aside into ``rejected/`` (the link itself, its
  target untouched), other links are reported for the archive's owner;
- a row whose file is missing (``repair`` drops it: a later update fetches the file again);
- interrupted ingests, the store chunks and the product's layout.
"""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mica.engine.adopt import adopt_archive
from mica.engine.colstore import STORE_VERSION, ColumnStore, rebuilt_line
from mica.engine.describe import describe_file, describe_headers
from mica.engine.index import (
    HALF_CREATED,
    INDEX_NAME,
    ArchiveIndex,
    connect_readonly,
    creation_interrupted,
    holds_original_index,
    table_problem,
)
from mica.engine.index_rebuild import archived_files, holds_files, rebuild_locked, walk_archive
from mica.engine.ingest import (
    REJECTED_DIR,
    IngestReport,
    check_provenance,
    commit_file,
    quarantine,
    recover_pending,
    refusing,
)
from mica.engine.lock import check_lock
from mica.engine.product import KIND, FileProduct, RejectedFile
from mica.engine.provenance import provenance_line
from mica.engine.report import CheckReport
from mica.engine.store_tables import check_tables
from mica.engine.synced import synced_chunk_fetch
from mica.errors import DamagedIndexError


def check_archive(
    product: FileProduct,
    data_root: str | Path | None = None,
    repair: bool = False,
    verify_store: bool = False,
) -> CheckReport:
    """Compare index and files; with ``repair`` make them consistent (under the update lock).
    ``verify_store`` also checks every store chunk against its recorded identity and digests
    and decompresses it (damaged ones are rebuilt).

    Without ``repair`` nothing is written, not even the lock (`check_lock`): the index is
    opened read-only, so the check runs on a read-only archive or one of another user."""
    root = product.root(data_root)
    # A repair writes: an archive of the original mica is adopted first (`mica.engine.adopt`).
    adopted = repair and holds_original_index(root) and adopt_archive(product, root).done
    report = CheckReport(product.name, provenance=provenance_line(product, root))
    report.repairs += adopted or []
    if not root.is_dir() or not ((root / INDEX_NAME).exists() or holds_files(product, root)):
        return report
    with check_lock(root, repair):
        try:
            with _index(product, root, repair, report) as index:
                _check_index(product, root, index, repair, verify_store, report)
        except DamagedIndexError as err:  # damage quick_check passes (text that does not decode)
            report.problems.append(f"the index {INDEX_NAME} is damaged: {err.detail}")
            if repair:
                report.repairs += rebuild_locked(product, root)
    return report


def _check_index(
    product: FileProduct,
    root: Path,
    index: ArchiveIndex | None,
    repair: bool,
    verify_store: bool,
    report: CheckReport,
) -> None:
    """`check_archive`'s checks of the archive of ``index`` (None: none opened)."""
    if index is None or table_problem(index.conn) is not None:  # a first update creates it
        return
    for path, action in index.pending():
        report.problems.append(f"interrupted ingest left {action} {Path(path).name}")
    # the chunks an interrupted ingest marked dirty: recover_pending rebuilds them
    dirty = sorted(index.dirty_parts()) if repair and product.has_store else []
    report.problems += [_stale_chunk(part) for part in dirty]
    if repair:
        report.repairs += recover_pending(product, index)
    _check_files(product, index, report, repair)
    _check_rows(product, index, report, repair)
    if product.has_store and index.original:  # readers read the files meanwhile
        report.notes.append("no columnar store: the original kept none (`mica adopt`)")
    elif product.has_store:
        store = ColumnStore(product, index)
        fetch: set[str] = set()  # a sync's chunks removed: fetched again, not rebuilt here
        if verify_store:
            mend = f"'mica --archive {root.parent} check --verify-store --repair'"
            damaged = store.damaged_chunks()
            synced = store.synced_alone(damaged)
            for part, (path, problem) in damaged.items():
                if part in synced:  # no files here to rebuild it from: the server's
                    chunk = store.chunk(part) or {}
                    again = synced_chunk_fetch(root, chunk.get("tstart"), chunk.get("tstop"))
                    report.problems.append(
                        f"store chunk {part} is damaged: {problem}; a sync installed it: "
                        f"{'' if repair else 'mend it with ' + mend + ', then '}{again} "
                        "fetches it again"
                    )
                    fetch.add(part)
                else:
                    report.problems.append(
                        f"store chunk {part} is damaged: {problem}; mend it with {mend}"
                    )
                if repair:  # derived data: without its file the chunk is rebuilt below
                    path.unlink(missing_ok=True)
        stale = [part for part in store.stale_parts() if part not in fetch]
        _check_synced(store, root, report, fetch)
        report.problems += [_stale_chunk(part) for part in stale if part not in dirty]
        if repair and stale:
            report.repairs.append(rebuilt_line(store.rebuild(stale), len(stale)))
        problems, repairs = check_tables(
            store, STORE_VERSION, verify_store, repair, [] if repair else stale
        )
        report.problems += problems
        report.repairs += repairs
    problems, repairs = product.check_layout(index, repair)
    report.problems += problems
    report.repairs += repairs
    report.files = index.count()


def _check_synced(store: ColumnStore, root: Path, report: CheckReport, skip: set[str]) -> None:
    """The chunks a sync installed (but ``skip``): one without its file (removed by a repair,
    or by hand) is a problem naming the sync that fetches it again; one kept beside files
    archived here since (`ColumnStore._serves`) a note naming the sync of the partition's
    files."""
    gone = store.synced_gone()
    for part, chunk in gone.items():
        if part not in skip:
            again = synced_chunk_fetch(root, chunk["tstart"], chunk["tstop"])
            report.problems.append(
                f"store chunk {part}, installed by a sync, has no file: {again} fetches it again"
            )
    for part in sorted(store.synced_alone() - skip - gone.keys()):
        chunk = store.chunk(part)
        if chunk is None:
            continue
        try:
            rows = store.index.partition_rows(part, "filename")
        except ValueError:  # a partition key of an older store layout
            continue
        kept = store.synced_kept(chunk, [r["filename"] for r in rows])
        if kept is not None:
            report.notes.append(kept)


def _stale_chunk(part: str) -> str:
    return f"store chunk {part} does not match the index"


@contextmanager
def _index(
    product: FileProduct, root: Path, repair: bool, report: CheckReport
) -> Iterator[ArchiveIndex | None]:
    """The index of ``root``, opened read-only unless ``repair``; a damaged or missing one
    is reported, and rebuilt from the files with ``repair`` (None without); one an update
    was killed creating is reported, and rolled back by the writable open of ``repair``."""
    if creation_interrupted(root / INDEX_NAME):
        report.problems.append(f"the index: {HALF_CREATED}")
        if not repair:
            yield None
            return
        report.repairs.append(f"rolled back the interrupted creation of {INDEX_NAME}")
        damage = None
    else:
        damage = index_damage(product, root)
    if damage is not None:
        report.problems.append(damage)
        if not repair:
            yield None
            return
        report.repairs += rebuild_locked(product, root)
    with ArchiveIndex(product, root, readonly=not repair) as index:
        yield index


def index_damage(product: FileProduct, root: Path) -> str | None:
    """What is wrong with the index file of ``root`` (None: SQLite finds nothing wrong),
    for a folder that holds archived files: missing, not a database, damaged pages."""
    path = root / INDEX_NAME
    if not path.exists():
        return f"the index {INDEX_NAME} is missing beside the archived files"
    try:
        conn = connect_readonly(path, product=product.name)
        try:
            found = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
            emptied = found == ["ok"] and table_problem(conn) is not None
        finally:
            conn.close()
    except DamagedIndexError as err:
        return f"the index {INDEX_NAME} is damaged: {err.detail}"
    if found != ["ok"]:
        return f"the index {INDEX_NAME} is damaged: " + "; ".join(
            line.replace("\n", " ") for line in found
        )
    if emptied and holds_files(product, root):  # (an update creates it with its tables)
        return f"the index {INDEX_NAME} is empty (no table) beside the archived files"
    return None


def file_row(product: FileProduct, name: str, path: Path) -> dict[str, Any]:
    """The index row the archived file at ``path`` says it has: from its headers where the
    product reads them alone (`describe_headers`), else from the whole file's validation.

    Raises
    ------
    RejectedFile
        When the file is unreadable or no longer valid.
    """
    with refusing(name, "cannot be read"):
        row = describe_headers(product, name, path)
        if row is None:
            row = describe_file(product, name, path)
    row.pop(KIND, None)
    return row


class _AsStored:
    """A row as the index gives it back: SQLite's column types applied (a parameter file's
    boolean read back as an integer, a number kept in a text column as text)."""

    def __init__(self, product: FileProduct):
        self.conn = sqlite3.connect(":memory:")
        columns = ", ".join(f"{c.name} {c.sqltype.split()[0]}" for c in product.index_columns)
        self.conn.execute(f"CREATE TABLE row ({columns})")
        self.names = [c.name for c in product.index_columns]

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        have = [n for n in self.names if n in row]
        self.conn.execute("DELETE FROM row")
        self.conn.execute(
            f"INSERT INTO row ({', '.join(have)}) VALUES ({', '.join('?' * len(have))})",
            [row[n] for n in have],
        )
        return dict(zip(have, self.conn.execute(f"SELECT {', '.join(have)} FROM row").fetchone()))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)
    return a == b


def row_differences(product: FileProduct, row: dict[str, Any], truth: dict[str, Any]) -> list[str]:
    """How an index row differs from what its file says (``truth``, as `_AsStored` gives
    it), column by column (the columns the layout sets are not compared)."""
    return [
        f"{name} {row.get(name)!r} (index) != {value!r} (file)"
        for name, value in truth.items()
        if name not in product.managed_columns and not _same(row.get(name), value)
    ]


def _row_path(product: FileProduct, row: dict[str, Any], root: Path) -> Path | None:
    """Where a row places its file; None for a row whose values place it nowhere."""
    try:
        return product.path(row, root)
    except (KeyError, TypeError, ValueError):  # an edited row: a text where a number was
        return None


def _check_files(
    product: FileProduct, index: ArchiveIndex, report: CheckReport, repair: bool
) -> None:
    """Every entry of the archive's folders: links, partial files, files against rows."""
    root = index.root
    as_stored = _AsStored(product)
    for folder, entries in walk_archive(root):
        for entry in entries:
            if entry.is_symlink():
                _check_link(product, root, folder / entry.name, report, repair)
            elif entry.name.endswith(".partial") and entry.is_file(follow_symlinks=False):
                report.problems.append(f"partial file {entry.name}")
                if repair:
                    (folder / entry.name).unlink(missing_ok=True)
                    report.repairs.append(f"removed partial {entry.name}")
        files = archived_files(product, entries)
        rows = index.rows_named(name for name, _ in files)
        for name, path in files:
            row = rows.get(name)
            if row is None:
                _unindexed(product, index, path, report, repair)
            else:
                _compare(product, index, row, path, as_stored, report, repair)


def _check_link(
    product: FileProduct, root: Path, path: Path, report: CheckReport, repair: bool
) -> None:
    """A symbolic link in the archive: reported, never followed; one named as an archived
    (or partial) file is moved aside by ``repair``, the link itself."""
    if product.owns_link(path):
        return  # the layout's (checked by `FileProduct.check_layout`)
    rel = path.relative_to(root)
    target = os.readlink(path)
    named = product.filename_re.fullmatch(path.name) or path.name.endswith(".partial")
    if not named:
        report.problems.append(
            f"symbolic link {rel} -> {target} in the archive (not followed; the archive's "
            "owner decides whether it belongs there)"
        )
        return
    report.problems.append(f"symbolic link {rel} -> {target} named as an archived file")
    if repair:
        quarantine(root, path, RejectedFile(path.name, f"a symbolic link to {target}"))
        report.repairs.append(
            f"moved the link {rel} aside into {REJECTED_DIR}/ (the link itself: its target "
            "is untouched)"
        )


def _unindexed(
    product: FileProduct, index: ArchiveIndex, path: Path, report: CheckReport, repair: bool
) -> None:
    """A file without an index row: ``repair`` indexes it (the ingest's rules)."""
    report.problems.append(f"file without index row: {path.name}")
    if not repair:
        return
    try:
        with refusing(path.name):
            row = describe_file(product, path.name, path)
            check_provenance(index, row)
            if product.path(row, index.root) != path:
                raise RejectedFile(path.name, "is not in its layout folder")
            ingest = IngestReport()
            commit_file(product, index, row, path, ingest)  # store fixed below
        what = "indexed" if ingest.ingested else "removed outdated"
        report.repairs.append(f"{what} {path.name}")
    except RejectedFile as err:
        quarantine(index.root, path, err)
        report.repairs.append(f"quarantined {err}")


def _compare(
    product: FileProduct,
    index: ArchiveIndex,
    row: dict[str, Any],
    path: Path,
    as_stored: _AsStored,
    report: CheckReport,
    repair: bool,
) -> None:
    """A file against its index row: ``repair`` rewrites a row that differs from the
    validated file, and quarantines a file that is no longer valid."""
    name = path.name
    try:
        truth = as_stored(file_row(product, name, path))
    except RejectedFile as err:
        report.problems.append(f"archived file {name} is unreadable or invalid: {err.problem}")
        if repair:
            _drop_file(index, row, path, err, report)
        return
    if index.original:
        # the original's index lacks some columns (read as None) and took its checksums
        # from another HDU: its rows are compared on what it recorded the same way
        truth = {k: v for k, v in truth.items() if k != "checksum" and row.get(k) is not None}
    differences = row_differences(product, row, truth)
    if _row_path(product, row, index.root) != path:
        differences.append(f"the row places the file elsewhere than {path.parent.name}/")
    if not differences:
        return
    report.problems.append(f"index row of {name} differs from the file: {'; '.join(differences)}")
    if not repair:
        return
    try:
        with refusing(name):
            full = describe_file(product, name, path)
            check_provenance(index, full)
            if product.path(full, index.root) != path:
                raise RejectedFile(name, f"is not in its layout folder {product.folder(full)}")
    except RejectedFile as err:
        _drop_file(index, row, path, err, report)
        return
    for column in product.managed_columns:  # the layout's (checked by its check_layout)
        full[column] = row.get(column)
    with index.transaction():
        index.replace([full], [name])
    report.repairs.append(f"rewrote the index row of {name} from the file")


def _drop_file(
    index: ArchiveIndex, row: dict[str, Any], path: Path, err: RejectedFile, report: CheckReport
) -> None:
    """Quarantine an archived file that is no longer valid and drop its row."""
    quarantine(index.root, path, err)
    with index.transaction():
        index.replace([], [row["filename"]])
    report.repairs.append(f"quarantined {err} (a later update fetches it again)")


def _check_rows(
    product: FileProduct, index: ArchiveIndex, report: CheckReport, repair: bool
) -> None:
    """Every row has its file; ``repair`` drops the rows of missing files."""
    folders = _Folders(product, index.root)
    for names in _row_batches(product, index, folders):
        missing = [name for name, held in names if not held]
        report.problems += [f"index row without file: {name}" for name in missing]
        if repair and missing:
            with index.transaction():
                index.replace([], missing)
            report.repairs += [
                f"dropped row of missing {name} (a later update fetches it again)"
                for name in missing
            ]


def _row_batches(
    product: FileProduct, index: ArchiveIndex, folders: _Folders
) -> Iterator[Iterator[tuple[str, bool]]]:
    """Every row's file name and whether the archive holds its file, a batch at a time in
    the order `ArchiveIndex.batches` gives them. With the product's `folder_columns`, each
    row comes from SQLite as a plain tuple (its file name, then those columns) and its
    folder is found by those values (`_Folders.names_at`): no Python work per row but a
    lookup (1.8 million rows: seconds, not a minute)."""
    needed = product.folder_columns
    if needed is None:
        for rows in index.batches():
            yield ((row["filename"], folders.hold(row)) for row in rows)
        return
    columns = ", ".join(dict.fromkeys(["filename", *needed]))
    key = "filename" if index.original else "rowid"
    sql = f"SELECT {key}, {columns} FROM archfiles WHERE {key} > ? ORDER BY {key} LIMIT ?"
    cursor = index.conn.cursor()
    cursor.row_factory = None  # tuples: sliced, not read by name
    last: Any = "" if index.original else -1
    while rows := cursor.execute(sql, (last, _BATCH)).fetchall():
        last = rows[-1][0]
        yield ((row[1], row[1] in folders.names_at(row[2:])) for row in rows)


#: rows a batch of `_row_batches`
_BATCH = 5000


class _Folders:
    """Whether the archive holds a row's file (`FileProduct.path`, a link counts), from
    its folder's names, listed once for all its rows (the rows come in name order, so a
    folder's together): one listing per folder, not an ``lstat`` per row of millions."""

    #: folders whose names are kept at once (rows of another order list a folder again)
    KEPT = 64

    def __init__(self, product: FileProduct, root: Path):
        self.product, self.root = product, root
        self.names: dict[str, frozenset[str]] = {}
        self.at: dict[tuple[Any, ...], frozenset[str]] = {}

    def hold(self, row: Any) -> bool:
        try:  # as `_row_path`: an edited row places its file nowhere
            folder, name = self.product.folder(row), row["filename"]
        except (KeyError, TypeError, ValueError):
            return False
        return name in self._listed(folder)

    def names_at(self, values: tuple[Any, ...]) -> frozenset[str]:
        """The names in the folder of rows with these values of the product's
        `folder_columns` (none for values that place a file nowhere)."""
        names = self.at.get(values)
        if names is None:
            if len(self.at) >= self.KEPT:
                self.at.clear()
            row = dict(zip(self.product.folder_columns, values))
            try:  # as `_row_path`: an edited row places its file nowhere
                names = self._listed(self.product.folder(row))
            except (KeyError, TypeError, ValueError):
                names = frozenset()
            self.at[values] = names
        return names

    def _listed(self, folder: str) -> frozenset[str]:
        names = self.names.get(folder)
        if names is None:
            if len(self.names) >= self.KEPT:
                self.names.clear()
            try:
                names = frozenset(os.listdir(self.root / folder))
            except OSError:  # no such folder (or not one)
                names = frozenset()
            self.names[folder] = names
        return names
