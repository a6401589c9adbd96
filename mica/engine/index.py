"""The SQLite lookup index (``archfiles.db3``) of a product, in WAL mode so readers never block.

Readers open it with `ArchiveIndex.open_for_reading`, which never creates anything and
raises `MissingArchiveError` when the folder holds no archive (`require_archive` decides
that, also for archives kept without an index). They write nothing, so they work on an
archive made read-only, owned by another user or on a read-only mount (`connect_readonly`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mica.engine.lock import UpdateLock
from mica.engine.product import FileProduct
from mica.errors import MissingArchiveError

_log = logging.getLogger(__name__)

INDEX_NAME = "archfiles.db3"
_HAS_TABLE_SQL = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'archfiles'"

# Write-ahead intents of the ingest, so a crash between placing a file and committing its row
# (or between committing and deleting a superseded file) is finished by the next run.
_PENDING_SQL = """
CREATE TABLE IF NOT EXISTS pending (
    path text PRIMARY KEY,
    action text NOT NULL   -- 'add': placed, row not yet committed; 'drop': superseded file
)
"""


# Store partitions whose chunk must be rewritten: set in the same transaction as the file
# rows that change them, cleared in the transaction that records the new chunk.
_DIRTY_SQL = "CREATE TABLE IF NOT EXISTS dirty_parts (part text PRIMARY KEY)"


class ArchiveIndex:
    """Lookup table of a product's files: one row per archived file."""

    def __init__(self, product: FileProduct, root: Path, readonly: bool = False):
        self.product = product
        self.root = Path(root)
        self.path = self.root / INDEX_NAME
        self.readonly = readonly
        #: opened ``immutable=1`` (see `connect_readonly`): `changed` then tells whether a
        #: writer touched the database file since
        self.immutable = False
        if readonly:
            self._opened = _file_state(self.path)
            self.conn, self.immutable = _connect_readonly(self.path)
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self._create()
        self.conn.row_factory = sqlite3.Row
        self.columns = [c.name for c in product.index_columns]

    @classmethod
    def open_for_reading(cls, product: FileProduct, root: Path) -> ArchiveIndex:
        """The index, opened read-only (nothing is created).

        Raises
        ------
        MissingArchiveError
            When ``root`` holds no archive of the product (see `require_archive`).
        """
        root = Path(root)
        problem = archive_problem(root, check_table=False)
        if problem is None:
            index = cls(product, root, readonly=True)
            problem = table_problem(index.conn)
            if problem is None:
                return index
            index.close()
        raise missing_archive(product.name, root, problem)

    def _create(self) -> None:
        cols = ",\n    ".join(f"{c.name} {c.sqltype}" for c in self.product.index_columns)
        self.conn.execute(
            f"CREATE TABLE IF NOT EXISTS archfiles (\n    {cols},\n    PRIMARY KEY (filename)\n)"
        )
        self.conn.execute(_PENDING_SQL)
        self.conn.execute(_DIRTY_SQL)
        for sql in self.product.index_sql:
            self.conn.execute(sql)

    def close(self) -> None:
        self.conn.close()

    def changed(self) -> bool:
        """Whether the database file changed since an ``immutable=1`` open (False for other
        opens, which SQLite keeps consistent): a writer that started meanwhile and
        checkpointed may have torn what was read, so the reader reads again."""
        return self.immutable and _file_state(self.path) != self._opened

    def __enter__(self) -> ArchiveIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- queries -------------------------------------------------------------------------
    def query(
        self,
        where: str = "1",
        params: Sequence[Any] = (),
        order: str = "filetime, filename",
        columns: str = "*",
    ) -> list[dict[str, Any]]:
        """Rows (``columns`` of them) matching a parameterised WHERE clause."""
        sql = f"SELECT {columns} FROM archfiles WHERE {where} ORDER BY {order}"
        return [dict(r) for r in self.conn.execute(sql, tuple(params))]

    def get(self, filename: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM archfiles WHERE filename = ?", (filename,))
        row = row.fetchone()
        return None if row is None else dict(row)

    def archived(self, filenames: Iterable[str]) -> set[str]:
        """Those of ``filenames`` the index holds (one query per 500 names)."""
        names, found = list(filenames), set()
        for i in range(0, len(names), 500):
            chunk = names[i : i + 500]
            sql = f"SELECT filename FROM archfiles WHERE filename IN ({','.join('?' * len(chunk))})"
            found.update(r[0] for r in self.conn.execute(sql, chunk))
        return found

    def overlapping(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        """Rows of the same stream whose interval overlaps the row's (touching ends do not)."""
        # No archived file spans more than max_file_span (validation refuses it), so both
        # ends are bounded: an index on (stream, tstop) then serves the query with the few
        # files that end after the row's start (an ingest in time order).
        span = self.product.max_file_span
        where = ["tstart < ?", "tstop > ?", "tstart >= ?", "tstop < ?", "filename != ?"]
        params: list[Any] = [
            row["tstop"] - 1e-3,
            row["tstart"] + 1e-3,
            row["tstart"] - span,
            row["tstop"] + span,
            row["filename"],
        ]
        for col in self.product.stream_columns:
            where.append(f"{col} = ?")
            params.append(row[col])
        return self.query(" AND ".join(where), params)

    def filenames(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT filename FROM archfiles")}

    def resume_time(self) -> float | None:
        """Where an update without --start continues: the earliest of the streams' latest starts."""
        streams = ", ".join(self.product.stream_columns) or "1"
        sql = f"SELECT MIN(t) FROM (SELECT MAX(tstart) AS t FROM archfiles GROUP BY {streams})"
        (value,) = self.conn.execute(sql).fetchone()
        return value

    # --- writes --------------------------------------------------------------------------
    def replace(self, insert: Iterable[dict[str, Any]], delete: Iterable[str]) -> set[str]:
        """Delete rows by filename and insert new rows (call inside `transaction()`).

        The store partitions of every row inserted or deleted are marked dirty in the same
        transaction (readers skip their chunks until rebuilt); returns them.
        """
        insert, delete = list(insert), list(delete)
        placeholders = ", ".join("?" for _ in self.columns)
        sql = (
            f"INSERT OR REPLACE INTO archfiles ({', '.join(self.columns)}) VALUES ({placeholders})"
        )
        parts: set[str] = set()
        if self.product.has_store:
            gone = [row for name in delete if (row := self.get(name)) is not None]
            parts = {p for row in [*insert, *gone] for p in self.product.partitions(row)}
        self.conn.executemany(
            "DELETE FROM archfiles WHERE filename = ?", [(name,) for name in delete]
        )
        self.conn.executemany(sql, [tuple(r[c] for c in self.columns) for r in insert])
        self.mark_dirty(parts)
        return parts

    def transaction(self) -> _Transaction:
        return _Transaction(self.conn)

    def snapshot(self) -> _Transaction:
        """A read transaction: every query inside sees the same state of the index."""
        return _Transaction(self.conn, "BEGIN")

    def pending(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self.conn.execute("SELECT path, action FROM pending")]

    def add_pending(self, items: Iterable[tuple[str, str]]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO pending (path, action) VALUES (?, ?)", list(items)
        )

    def dirty_parts(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT part FROM dirty_parts")]

    def mark_dirty(self, parts: Iterable[str]) -> None:
        self.conn.executemany(
            "INSERT OR IGNORE INTO dirty_parts (part) VALUES (?)", [(p,) for p in parts]
        )

    def clear_dirty(self, parts: Iterable[str]) -> None:
        self.conn.executemany("DELETE FROM dirty_parts WHERE part = ?", [(p,) for p in parts])

    def clear_pending(self, paths: Iterable[str]) -> None:
        self.conn.executemany("DELETE FROM pending WHERE path = ?", [(p,) for p in paths])


def table_problem(conn: sqlite3.Connection) -> str | None:
    if conn.execute(_HAS_TABLE_SQL).fetchone() is None:  # a first update is creating it
        return f"{INDEX_NAME} has no archfiles table yet"
    return None


def archive_problem(
    root: Path, holds: Callable[[Path], bool] | None = None, check_table: bool = True
) -> str | None:
    """Why ``root`` holds no archive (None when it holds one, even an empty one).

    By default an archive is a folder with an index (``archfiles.db3`` with its
    ``archfiles`` table; ``check_table=False`` skips opening it). Archives kept without an
    index (dark calibrations) pass ``holds``, which says whether the folder holds their
    data; a folder an update has run on (it leaves its lock file) is an empty archive.
    Reads only: nothing is created.
    """
    root = Path(root)
    if not root.is_dir():
        return "no such folder" if not root.exists() else "not a folder"
    if holds is not None:
        if UpdateLock(root).path.exists() or holds(root):
            return None
        return "no update has written there"
    path = root / INDEX_NAME
    if not path.is_file():
        return f"no {INDEX_NAME}"
    if check_table:
        conn = connect_readonly(path)
        try:
            return table_problem(conn)
        finally:
            conn.close()
    return None


def connect_readonly(path: Path, timeout: float = 60.0) -> sqlite3.Connection:
    """A read-only connection to an SQLite database of an archive, creating no file where
    this process could not write the database itself.

    The index is in WAL mode, where a reader needs the ``-wal`` and ``-shm`` files beside
    the database. It is opened ``mode=ro``, safe while an update writes, when this process
    may write the database and its folder (SQLite creates the two files when missing, with
    the database's permissions) or when a writer's ``-wal`` and ``-shm`` lie there (SQLite
    reads them, through a private copy of the ``-shm`` index when that file is read-only).
    Otherwise (an archive made read-only, owned by another user, or on a read-only mount,
    with no such pair) no process holds the database open for writing — a WAL writer keeps
    both files while connected, and the last connection to close removes them — and it is
    opened ``immutable=1``: no lock, no ``-shm``, nothing written (SQLite's documented way
    to read a WAL database without write access). Creating the files there instead would
    leave them owned by this user, where the archive's owner may not write them.
    `ArchiveIndex.changed` catches a writer starting during such a read.

    Parameters
    ----------
    path : Path
        The database file.
    timeout : float
        Seconds to wait for a lock (``mode=ro`` only).
    """
    return _connect_readonly(Path(path), timeout)[0]


def _connect_readonly(path: Path, timeout: float = 60.0) -> tuple[sqlite3.Connection, bool]:
    """`connect_readonly` and whether it opened the database ``immutable=1``."""
    folder = path.parent
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    writer = os.access(path, os.W_OK) and os.access(folder, os.W_OK)
    follow = writer or (wal.exists() and shm.exists())
    uri = f"file:{quote(str(path))}?mode=ro" + ("" if follow else "&immutable=1")
    conn = sqlite3.connect(uri, uri=True, timeout=timeout)
    if not follow and path not in _WAL_NOTED and (_file_state(wal) or (0, 0))[1] > 0:
        _WAL_NOTED.add(path)
        # A writer killed before its last checkpoint, with its -shm gone: the changes it
        # committed stay in the -wal, which only a writable open brings into the database.
        _log.warning(
            "%s has committed changes in %s that a reader without write access cannot "
            "see: the archive's owner should run `mica check --repair` (it opens the "
            "index for writing, which merges them)",
            path,
            wal.name,
        )
    return conn, not follow


#: databases whose unmerged -wal file `connect_readonly` reported (once per process)
_WAL_NOTED: set[Path] = set()


def _file_state(path: Path) -> tuple[int, int, int] | None:
    """What tells a rewritten file: (inode, size, mtime), None when there is none."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


#: The end of a missing-archive message: how a reader is pointed at an archive (the command
#: line names its own option instead: `mica.cli`).
POINT_AT_ARCHIVE = "point data_root=/MICA_ARCHIVE at an archive"


def missing_archive(product: str, root: Path, problem: str) -> MissingArchiveError:
    """The error for a folder without an archive: names it and the command that fills it."""
    return MissingArchiveError(
        f"no {product} archive in {root} ({problem}): fill it with 'mica update {product} "
        f"--start ... --stop ... --source ...' or {POINT_AT_ARCHIVE}",
        product,
        root,
    )


def require_archive(product: str, root: Path, holds: Callable[[Path], bool] | None = None) -> Path:
    """``root`` if it holds an archive of ``product`` (see `archive_problem`).

    Raises
    ------
    MissingArchiveError
        Naming the folder and the ``mica update`` command that fills it.
    """
    problem = archive_problem(root, holds)
    if problem is not None:
        raise missing_archive(product, Path(root), problem)
    return Path(root)


class _Transaction:
    """BEGIN IMMEDIATE (or ``begin``) ... COMMIT, ROLLBACK on error."""

    def __init__(self, conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE"):
        self.conn = conn
        self.begin = begin

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute(self.begin)
        return self.conn

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
