"""The SQLite lookup index (``archfiles.db3``) of a product, in WAL mode so readers never block.

Readers open it with `ArchiveIndex.open_for_reading`, which never creates anything and
raises `MissingArchiveError` when the folder holds no archive (`require_archive` decides
that, also for archives kept without an index). They write nothing, so they work on an
archive made read-only, owned by another user or on a read-only mount (`connect_readonly`).

A damaged index file (truncated, overwritten, a page of garbage) or one missing beside an
archive raises `DamagedIndexError` from any query, never SQLite's own error: its message
names the file and the commands that rebuild it from the archived files
(`mica.engine.index_rebuild`).
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from mica.engine.atomic import make_file, make_folders
from mica.engine.lock import UpdateLock
from mica.engine.product import FileProduct, IndexColumn
from mica.errors import ArchiveBusy, DamagedIndexError, MissingArchiveError, ProvenanceError

_log = logging.getLogger(__name__)

INDEX_NAME = "archfiles.db3"
_HAS_TABLE_SQL = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'archfiles'"
_LAST_ROW_SQL = "SELECT max(rowid) FROM archfiles"
# The original mica's archfiles.db3 holds the archfiles table alone: an index without the
# tables this package adds to every index it writes (pending, dirty_parts) is the original's.
# Both looked up in one query (`_known_tables`); a reader's open then reads the file table's
# last row alone (`_LAST_ROW_SQL`).
_KNOWN_TABLES_SQL = (
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('archfiles', 'pending')"
)

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


#: rows `ArchiveIndex.query` fetches at a time
_QUERY_BATCH = 1024
#: values one query binds in an ``IN`` list at most (`rows_in`)
_IN_LIST = 500
#: how long a damaged-looking index must hold still to count as damaged (s): a writer creating
#: it rewrites it sooner (`ArchiveIndex._open_readonly`)
_SETTLE = 0.05
#: SQLite's primary result codes that mean the database file itself is damaged
_DAMAGED_CODES = {11: "SQLITE_CORRUPT", 26: "SQLITE_NOTADB"}
#: how long a statement waits for another process's lock on an index (s), then `ArchiveBusy`
LOCK_WAIT = 60.0
#: how long a writer closing waits for readers' reads to end so that its checkpoint moves
#: every commit into the database file (ms; `close_writer`)
_CLOSE_WAIT_MS = 2000
#: SQLITE_BUSY: another connection held its lock past `LOCK_WAIT`
_BUSY = 5
#: SQLITE_READONLY_ROLLBACK: a read-only connection met a hot journal it may not roll back
_READONLY_ROLLBACK = 776
#: Why a database with such a journal serves nothing yet (`creation_interrupted`).
HALF_CREATED = (
    f"{INDEX_NAME} is being created, or an update was killed creating it: "
    "the next update or `mica check --repair` completes it"
)


def creation_interrupted(path: Path) -> bool:
    """Whether the SQLite database ``path`` has a hot rollback journal that a read-only
    connection cannot roll back ("attempt to write a readonly database").

    An index (and the aspect L1 processing table) runs in WAL mode once created: only its
    creation writes a rollback journal, so this is an update creating it, or killed doing
    so. Nothing is committed yet; the next writable open rolls the journal back (SQLite's
    recovery), readers do not.
    """
    if not Path(f"{path}-journal").exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
        try:
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:  # Python < 3.11 has no error code: the journal
        return getattr(exc, "sqlite_errorcode", _READONLY_ROLLBACK) == _READONLY_ROLLBACK
    return False


def damage_detail(exc: BaseException) -> str | None:
    """What SQLite says is wrong with a damaged database file, when ``exc`` says so (None
    for other errors: a lock, a missing table, a full disk)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if (
        isinstance(exc, sqlite3.DatabaseError)
        and code is not None
        and code & 0xFF in _DAMAGED_CODES
    ):
        return str(exc)
    if isinstance(exc, sqlite3.OperationalError) and str(exc).startswith("Could not decode"):
        return f"{exc} (a text column's bytes are not UTF-8: the page is damaged)"
    return None


class OlderArchiveTable(sqlite3.OperationalError):
    """A query of an archive index named a table or column the index lacks: an archive
    written before they existed (raised by the index's cursors, `_guarded`, for the callers
    that read such an archive as holding none). Any other error of the index (I/O, a lock, an
    interrupted query) is not this one. Never raised past those callers: not a `MicaError`."""


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """A cursor method whose SQLite error for a damaged file is `DamagedIndexError`, for a
    lock held past the wait `ArchiveBusy`, for a missing table or column `OlderArchiveTable`."""

    @functools.wraps(method)
    def call(self: sqlite3.Cursor, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            self.connection.raise_damaged(exc)
            self.connection.raise_busy(exc)
            if str(exc).startswith(("no such table", "no such column")):
                raise OlderArchiveTable(*exc.args) from exc
            raise

    return call


class _GuardedCursor(sqlite3.Cursor):
    """A cursor of an archive index: SQLite's error for a damaged file, raised when a
    statement or a later row reaches the damage, becomes `DamagedIndexError`."""

    execute = _guarded(sqlite3.Cursor.execute)
    executemany = _guarded(sqlite3.Cursor.executemany)
    fetchone = _guarded(sqlite3.Cursor.fetchone)
    fetchmany = _guarded(sqlite3.Cursor.fetchmany)
    fetchall = _guarded(sqlite3.Cursor.fetchall)
    __next__ = _guarded(sqlite3.Cursor.__next__)


class _IndexConnection(sqlite3.Connection):
    """A connection to an archive index whose cursors raise `DamagedIndexError` for a
    damaged file (see `_GuardedCursor`)."""

    #: the index file and its product's command name, for the error's message
    index_path: Path = Path(INDEX_NAME)
    product_name: str = ""

    def cursor(self, factory: Any = _GuardedCursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any:
        return self.cursor().executemany(sql, parameters)

    def raise_damaged(self, exc: sqlite3.DatabaseError) -> None:
        """Raise `DamagedIndexError` from ``exc`` when it says the file is damaged."""
        detail = damage_detail(exc)
        if detail is not None:
            raise DamagedIndexError.at(self.index_path, detail, self.product_name) from exc

    def raise_busy(self, exc: sqlite3.DatabaseError) -> None:
        """Raise `ArchiveBusy` naming the file when ``exc`` says another process held its
        lock past the wait (`LOCK_WAIT`): a stopped or hung one, as SQLite's locks last a
        transaction."""
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF == _BUSY:
            raise ArchiveBusy(
                f"{self.index_path} stayed locked by another process for {LOCK_WAIT:g} s "
                f"(a stopped or hung one: `fuser -v {self.index_path}` names it); run "
                "again once it is gone (an update goes on from what it committed)"
            ) from exc


def _guard(conn: sqlite3.Connection, path: Path, product: str) -> sqlite3.Connection:
    if isinstance(conn, _IndexConnection):
        conn.index_path, conn.product_name = Path(path), product
    return conn


#: The order of a partition's rows (`ArchiveIndex.query`'s): the order of its chunk's files.
FILE_ORDER = "filetime, filename"


def rows_in(conn: sqlite3.Connection, sql: str, values: Iterable[Any]) -> Iterator[Any]:
    """The rows of ``sql`` for ``values``, whose ``{marks}`` (in ``IN ({marks})``) stands for
    them: a query per `_IN_LIST` of them, as one statement binds only so many."""
    values = list(values)
    for k in range(0, len(values), _IN_LIST):
        batch = values[k : k + _IN_LIST]
        yield from conn.execute(sql.format(marks=",".join("?" * len(batch))), batch)


class ArchiveIndex:
    """Lookup table of a product's files: one row per archived file.

    ``path``: the database file when not ``<root>/archfiles.db3`` (a rebuild writes the
    new index beside the old one, `mica.engine.index_rebuild`).
    """

    def __init__(
        self,
        product: FileProduct,
        root: Path,
        readonly: bool = False,
        path: Path | None = None,
        rechecked: bool = False,
    ):
        self.product = product
        self.root = Path(root)
        self.path = self.root / INDEX_NAME if path is None else Path(path)
        self.readonly = readonly
        #: opened ``immutable=1`` (see `connect_readonly`): `changed` then tells whether a
        #: writer touched the database file since
        self.immutable = False
        #: a reader that reads again when the file changed meanwhile (`changed`): it may
        #: read an index whose ``-wal`` is empty without locks (`_follows_writers`)
        self.rechecked = rechecked
        #: the original mica's index, read through `present_as_own` (readers only)
        self.original = False
        #: a read-only connection this thread keeps for its next reader (`_keep_reader`):
        #: `close` leaves it open
        self.kept = False
        #: which of ``archfiles`` and ``pending`` the index had when opened read-only
        #: (`_known_tables`)
        self.tables: set[str] = set()
        if readonly:
            self._open_readonly(product)
            if self.original:
                present_as_own(self.conn, product, self.root)
        else:
            make_folders(self.path.parent)
            make_file(self.path)  # the archive's mode, not SQLite's 644
            self.conn = sqlite3.connect(
                self.path, timeout=LOCK_WAIT, isolation_level=None, factory=_IndexConnection
            )
            _guard(self.conn, self.path, product.name)
            try:
                if is_original_schema(self.conn):  # before WAL mode, which rewrites the file
                    raise ProvenanceError(
                        f"{self.root} is an archive of the original mica, not adopted yet: "
                        "`mica adopt` (or the first `mica update`) makes it this package's"
                    )
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self._create()
            except BaseException:
                self.conn.close()
                raise
        self.conn.row_factory = sqlite3.Row
        self.columns = [c.name for c in product.index_columns]

    @classmethod
    def open_for_reading(
        cls, product: FileProduct, root: Path, rechecked: bool = False
    ) -> ArchiveIndex:
        """The index, opened read-only (nothing is created); ``rechecked``: the caller
        reads again when `changed` says a writer changed the file meanwhile
        (`mica.engine.read.snapshot_read`), so an index whose ``-wal`` holds nothing may be
        read without locks also by its owner.

        Raises
        ------
        MissingArchiveError
            When ``root`` holds no archive of the product (see `require_archive`).
        """
        root = root if isinstance(root, Path) else Path(root)  # (Path(a Path) parses again)
        # A kept connection serves while its file is the one it opened: the folder holds
        # that index still (`archive_problem` would find no problem; its two ``stat`` calls
        # were a tenth of a warm day's read of two columns, measured).
        kept = _kept_reader(product, root, rechecked)
        if kept is not None:
            return kept
        problem = archive_problem(root, check_table=False, product=product.name)
        if problem is None:
            index = cls(product, root, readonly=True, rechecked=rechecked)
            try:
                problem = _table_lost(root, table_problem(index.conn, index.tables), product.name)
            except BaseException:
                index.close()
                raise
            if problem is None:
                _keep_reader(index)
                return index
            index.close()
        raise missing_archive(product.name, root, problem)

    def _create(self) -> None:
        if self.conn.execute(_HAS_TABLE_SQL).fetchone() is None:
            # a new index all at once: never seen with archfiles alone (the original's)
            with self.transaction():
                create_tables(self.conn, self.product)
        else:
            create_tables(self.conn, self.product)

    def close(self) -> None:
        if not self.readonly:
            close_writer(self.conn)
        elif not self.kept:  # a reader's connection kept for the next reader (`_keep_reader`)
            self.conn.close()

    def changed(self) -> bool:
        """Whether the database file changed since an ``immutable=1`` open (False for other
        opens, which SQLite keeps consistent): a writer that started meanwhile and
        checkpointed may have torn what was read, so the reader reads again."""
        return self.immutable and _file_state(self.path) != self._opened

    def _open_readonly(self, product: FileProduct) -> None:
        """Open the index read-only. A header or file table read as damaged while a writer is
        changing the file (an update creating the index: its first page is being written; a
        sync putting a new index in place) is read again once the file holds still; damage in
        a file that holds still is `DamagedIndexError`. The file table's root page is read
        here, once an opened file: a read served by store chunks alone reads no file row, yet
        a damaged table must be `DamagedIndexError` for it as for every other read."""
        while True:
            self._opened = _file_state(self.path)
            self.conn, self.immutable = _connect_readonly(
                self.path, product=product.name, quiet=self.rechecked
            )
            try:
                self.tables = _known_tables(self.conn)
                self.original = is_original_schema(self.conn, self.tables)
                if "archfiles" in self.tables:
                    self.conn.execute(_LAST_ROW_SQL).fetchone()
                return
            except DamagedIndexError:
                self.conn.close()
                time.sleep(_SETTLE)
                if _file_state(self.path) == self._opened:
                    raise
            except sqlite3.OperationalError as exc:
                self.conn.close()
                if creation_interrupted(self.path):
                    raise missing_archive(product.name, self.root, HALF_CREATED) from exc
                raise

    def __enter__(self) -> ArchiveIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- queries -------------------------------------------------------------------------
    def query(
        self,
        where: str = "1",
        params: Sequence[Any] = (),
        order: str = FILE_ORDER,
        columns: str = "*",
    ) -> list[dict[str, Any]]:
        """Rows (``columns`` of them) matching a parameterised WHERE clause."""
        sql = f"SELECT {columns} FROM archfiles WHERE {where} ORDER BY {order}"
        cursor = self.conn.cursor()
        cursor.row_factory = None  # plain tuples: dict(zip(...)) costs half of dict(Row)
        cursor.execute(sql, tuple(params))
        names = [d[0] for d in cursor.description]
        out = []
        # rows a batch at a time: the cursor's iteration is a guarded Python call per row
        # (`_GuardedCursor`, about a microsecond: a third of a day's 32-row query)
        while True:
            rows = cursor.fetchmany(_QUERY_BATCH)
            out.extend([dict(zip(names, row)) for row in rows])
            if len(rows) < _QUERY_BATCH:  # the last (no call more to find it empty)
                return out

    def get(self, filename: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM archfiles WHERE filename = ?", (filename,))
        row = row.fetchone()
        return None if row is None else dict(row)

    def archived(self, filenames: Iterable[str]) -> set[str]:
        """Those of ``filenames`` the index holds (`rows_in`)."""
        sql = "SELECT filename FROM archfiles WHERE filename IN ({marks})"
        return {r[0] for r in rows_in(self.conn, sql, filenames)}

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

    def rows_named(self, filenames: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The rows of those of ``filenames`` the index holds, by name (`rows_in`)."""
        sql = "SELECT * FROM archfiles WHERE filename IN ({marks})"
        return {r["filename"]: dict(r) for r in rows_in(self.conn, sql, filenames)}

    def batches(self, size: int = 5000, columns: str = "*") -> Iterator[list[sqlite3.Row]]:
        """Every row (``columns`` of it), ``size`` at a time in the order they were added
        (the table's own, read without a lookup per row; about time order for an archive
        updated in time order): a pass over millions of rows never holds them all. Each
        batch is a fresh query after the last row seen, so the caller may change rows
        between batches. The rows are SQLite's (read by column name): no dictionary made
        per row. The original's index may be a view (`present_as_own`), without rowids:
        its rows come in filename order."""
        key, last = ("filename", "") if self.original else ("rowid", -1)
        while True:
            sql = f"SELECT {key}, {columns} FROM archfiles WHERE {key} > ? ORDER BY {key} LIMIT ?"
            rows = self.conn.execute(sql, (last, size)).fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    def partition_rows(self, part: str, columns: str = "*") -> list[sqlite3.Row]:
        """The rows (``columns`` of them) of a store partition in file order, as SQLite's
        rows (read by column name): the rebuild's query (`FileProduct.partition_where`),
        served by an index."""
        where, params = self.product.partition_where(part)
        sql = f"SELECT {columns} FROM archfiles WHERE {where} ORDER BY {FILE_ORDER}"
        return self.conn.execute(sql, params).fetchall()

    def partition_candidates(self) -> Iterator[str]:
        """Every store partition that may hold files (a superset: `partition_rows` says
        which do), found by SQLite from each view's key columns and periods.

        A view with ``reach`` adds the periods next to each file's own, where a file near
        a period's edge also belongs (`StoreView.keys_of`).
        """
        for view in self.product.store_description.views:
            keys = [*view.keys, f"CAST(filetime / {float(view.period)!r} AS INTEGER)"]
            only = " AND ".join(f"{k} = ?" for k in view.only) or "1"
            sql = f"SELECT DISTINCT {', '.join(keys)} FROM archfiles WHERE {only}"
            before = int(view.reach // view.period) + 1 if view.reach else 0
            after = int((view.reach + view.span) // view.period) + 1 if view.reach else 0
            found: set[str] = set()
            for *values, number in self.conn.execute(sql, list(view.only.values())):
                row = dict(zip(view.keys, values))
                for k in range(number - before, number + after + 1):
                    found.add(view.key({**row, "filetime": k * view.period}))
            yield from sorted(found)

    def count(self) -> int:
        """The number of rows (archived files)."""
        return self.conn.execute("SELECT count(*) FROM archfiles").fetchone()[0]

    def resume_time(self) -> float | None:
        """Where an update without --start continues: the earliest of the streams' latest
        starts (None for an empty index).

        Each stream is found, and its latest start read, by one search of the index on
        (stream columns, tstart) (`engine_index_sql`): the cost grows with the number of
        streams (8 slots), not with the archive's files.
        """
        streams = list(self.product.stream_columns)
        if not streams:
            return self.conn.execute("SELECT MAX(tstart) FROM archfiles").fetchone()[0]
        cols = ", ".join(streams)
        same = " AND ".join(f"{c} = ?" for c in streams)
        after = f"({cols}) > ({', '.join('?' * len(streams))})"
        first = f"SELECT {cols} FROM archfiles ORDER BY {cols} LIMIT 1"
        latest: list[float] = []
        stream = self.conn.execute(first).fetchone()
        while stream is not None:
            if None in tuple(stream):  # a NULL stream value (a column that allows one):
                # it compares with nothing, so group the whole table instead
                sql = f"SELECT MIN(t) FROM (SELECT MAX(tstart) AS t FROM archfiles GROUP BY {cols})"
                return self.conn.execute(sql).fetchone()[0]
            sql = f"SELECT MAX(tstart) FROM archfiles WHERE {same}"
            latest.append(self.conn.execute(sql, tuple(stream)).fetchone()[0])
            sql = f"SELECT {cols} FROM archfiles WHERE {after} ORDER BY {cols} LIMIT 1"
            stream = self.conn.execute(sql, tuple(stream)).fetchone()
        return min(latest, default=None)

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

    def dirty_parts(self, among: Iterable[str] | None = None, prefix: str = "") -> list[str]:
        """The partitions marked dirty: of ``among`` alone, or those starting with ``prefix``,
        looked up by key (a caller asking about a few partitions reads a few rows, however
        many others are dirty, e.g. the full view's in a header-3 store)."""
        if among is None:
            rows = self.conn.execute(
                "SELECT part FROM dirty_parts WHERE part GLOB ?", (f"{prefix}*",)
            )
            return [r[0] for r in rows]
        sql = "SELECT part FROM dirty_parts WHERE part IN ({marks})"
        return [r[0] for r in rows_in(self.conn, sql, among)]

    def mark_dirty(self, parts: Iterable[str]) -> None:
        self.conn.executemany(
            "INSERT OR IGNORE INTO dirty_parts (part) VALUES (?)", [(p,) for p in parts]
        )

    def clear_dirty(self, parts: Iterable[str]) -> None:
        self.conn.executemany("DELETE FROM dirty_parts WHERE part = ?", [(p,) for p in parts])

    def clear_pending(self, paths: Iterable[str]) -> None:
        self.conn.executemany("DELETE FROM pending WHERE path = ?", [(p,) for p in paths])


def create_tables(conn: sqlite3.Connection, product: FileProduct) -> None:
    """The tables and indexes of a product's index, those missing (inside a transaction
    when the caller began one: adopting the original's index is one)."""
    cols = ",\n    ".join(f"{c.name} {c.sqltype}" for c in product.index_columns)
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS archfiles (\n    {cols},\n    PRIMARY KEY (filename)\n)"
    )
    conn.execute(_PENDING_SQL)
    conn.execute(_DIRTY_SQL)
    for sql in [*product.index_sql, *engine_index_sql(product)]:
        conn.execute(sql)


def engine_index_sql(product: FileProduct) -> list[str]:
    """The indexes the engine's own queries need, whatever the product declares, so that
    none of them reads more rows as the archive grows (`tests/engine/test_query_plans.py`):

    - (stream columns, tstart): `ArchiveIndex.resume_time`, one search per stream;
    - (stream columns, tstop): an ingest's overlap query per file (`ArchiveIndex.overlapping`);
    - (a store view's key columns, filetime): the rows of a store partition
      (`mica.engine.store_layout.StoreDescription.partition_where`).

    Each is named after its columns (``idx_archfiles_slot_tstart``): a product declaring
    the same index under that name (`FileProduct.index_sql`) keeps one. A writer's open
    creates those missing (`create_tables`), so an archive of an older version gains them at
    its next update; readers never create anything and work without them, more slowly.
    """
    streams = list(product.stream_columns)
    wanted = [[*streams, "tstart"], [*streams, "tstop"]]
    if product.store is not None:
        wanted += [[*view.keys, "filetime"] for view in product.store.views]
    unique = {"_".join(cols): ", ".join(cols) for cols in wanted}  # once each, in order
    return [
        f"CREATE INDEX IF NOT EXISTS idx_archfiles_{name} ON archfiles ({cols})"
        for name, cols in unique.items()
    ]


# --- the original mica's index ------------------------------------------------------------
def _known_tables(conn: sqlite3.Connection) -> set[str]:
    """Which of ``archfiles`` (the index's) and ``pending`` (this package's) the index has."""
    return {row[0] for row in conn.execute(_KNOWN_TABLES_SQL)}


def is_original_schema(conn: sqlite3.Connection, tables: set[str] | None = None) -> bool:
    """Whether an index is the original mica's: an ``archfiles`` table, none of ours
    (``tables``: its `_known_tables`, when known)."""
    return (_known_tables(conn) if tables is None else tables) == {"archfiles"}


def holds_original_index(root: str | Path) -> bool:
    """Whether a product folder holds the original mica's index (read only)."""
    path = Path(root) / INDEX_NAME
    if not path.is_file():
        return False
    try:
        conn = connect_readonly(path)
        try:
            return is_original_schema(conn)
        finally:
            conn.close()
    except (sqlite3.DatabaseError, DamagedIndexError):  # a damaged index: `mica check` says so
        return False


def missing_columns(conn: sqlite3.Connection, product: FileProduct) -> list[IndexColumn]:
    """The product's index columns that the ``archfiles`` table lacks (the original's
    obspar index had no filetime, its aspect L1 index no obi)."""
    have = {row[1] for row in conn.execute("PRAGMA main.table_info(archfiles)")}
    return [c for c in product.index_columns if c.name not in have]


def present_as_own(conn: sqlite3.Connection, product: FileProduct, root: Path) -> None:
    """Show a read-only connection to the original's index (of the folder ``root``) as an
    index of ours.

    Temporary objects, private to the connection and kept in memory, shadow the missing
    ones (SQLite resolves a name in ``temp`` first): an ``archfiles`` view adding the
    product's missing columns (as `FileProduct.original_columns` gives them, else NULL),
    empty ``pending`` and ``dirty_parts`` tables, and the product's
    `FileProduct.original_views`. Nothing is written to the archive.
    """
    conn.execute("PRAGMA temp_store = MEMORY")
    missing = missing_columns(conn, product)
    if missing:
        values = product.original_columns(conn, root, [c.name for c in missing])
        extra = ", ".join(f"{values.get(c.name, 'NULL')} AS {c.name}" for c in missing)
        conn.execute(f"CREATE TEMP VIEW archfiles AS SELECT *, {extra} FROM main.archfiles")
    conn.execute("CREATE TEMP TABLE pending (path text PRIMARY KEY, action text NOT NULL)")
    conn.execute("CREATE TEMP TABLE dirty_parts (part text PRIMARY KEY)")
    for sql in product.original_views:
        conn.execute(sql)


def table_problem(conn: sqlite3.Connection, tables: set[str] | None = None) -> str | None:
    """Why the index serves nothing yet (None: it has its table; ``tables``: its
    `_known_tables`, when known)."""
    if tables is None:
        has_table = conn.execute(_HAS_TABLE_SQL).fetchone() is not None
    else:
        has_table = "archfiles" in tables
    if not has_table:  # a first update is creating it
        return f"{INDEX_NAME} has no archfiles table yet"
    return None


def archive_problem(
    root: Path,
    holds: Callable[[Path], bool] | None = None,
    check_table: bool = True,
    product: str = "",
) -> str | None:
    """Why ``root`` holds no archive (None when it holds one, even an empty one).

    By default an archive is a folder with an index (``archfiles.db3`` with its
    ``archfiles`` table; ``check_table=False`` skips opening it). Archives kept without an
    index (dark calibrations) pass ``holds``, which says whether the folder holds their
    data; a folder an update has run on (it leaves its lock file) is an empty archive.
    Reads only: nothing is created.

    Raises
    ------
    DamagedIndexError
        When the index is damaged, or missing from a folder an update ran on (an update
        creates the index first and never removes it). ``product`` names it in the message.
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
        if index_missing(root):
            raise DamagedIndexError.at(
                path,
                "the index file is missing (an update made an archive in this folder)",
                product,
            )
        return f"no {INDEX_NAME}"
    if check_table:
        conn = connect_readonly(path, product=product)
        try:
            problem = table_problem(conn)
        except sqlite3.OperationalError:
            if creation_interrupted(path):
                return HALF_CREATED
            raise
        finally:
            conn.close()
        return _table_lost(root, problem, product)
    return None


def _table_lost(root: Path, problem: str | None, product: str) -> str | None:
    """``problem``, why the index of ``root`` serves nothing yet (`table_problem`), unless an
    update made an archive there: it creates the index with its tables, so one without is
    damaged (emptied, truncated)."""
    if problem is not None and _made_by_update(root):
        raise DamagedIndexError.at(
            root / INDEX_NAME,
            "the index holds no table (an update made an archive in this folder)",
            product,
        )
    return problem


def index_missing(root: Path) -> bool:
    """Whether ``root`` lacks the index of the archive an update made there: its lock file
    is there, stamped (an update writes its pid into it once it holds it, before anything
    else: an empty one is a first update's between creating and taking it), no update runs
    now (a first update may be creating the index) and there is no index file."""
    return not (Path(root) / INDEX_NAME).exists() and _made_by_update(root)


def _made_by_update(root: str | Path) -> bool:
    """Whether an update made an archive in ``root`` and none runs now (`index_missing`)."""
    lock = UpdateLock(Path(root))
    if not lock.stamped():
        return False
    try:
        lock.refuse_if_busy()
    except ArchiveBusy:
        return False
    return True


def close_writer(conn: sqlite3.Connection) -> None:
    """Close a writing connection to a WAL database with its commits in the database file and
    the ``-wal`` emptied. SQLite does that only as the last connection closes: with a reader
    still connected (one this process keeps, or another user's) the commits would stay in
    the ``-wal`` after the update, unseen by a reader without write access that finds it
    without its ``-shm`` and by a copy of the file alone. A reader mid-read past
    `_CLOSE_WAIT_MS` leaves the rest to the next writer."""
    try:
        conn.execute(f"PRAGMA busy_timeout = {_CLOSE_WAIT_MS}")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.Error:  # busy, or in a transaction an error left open: rolled back below
        pass
    finally:
        conn.close()


def connect_readonly(path: Path, product: str | None = None) -> sqlite3.Connection:
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
    `ArchiveIndex.changed` catches a writer starting during such a read. A ``mode=ro``
    statement waits `LOCK_WAIT` for a writer's lock.

    Parameters
    ----------
    path : Path
        The database file.
    product : str, optional
        For an archive index (also when the file is named ``archfiles.db3``): its product's
        command name. Queries then raise `DamagedIndexError` when the file is damaged.
    """
    return _connect_readonly(Path(path), product)[0]


def _connect_readonly(
    path: Path, product: str | None = None, quiet: bool = False
) -> tuple[sqlite3.Connection, bool]:
    """`connect_readonly` and whether it opened the database ``immutable=1`` (``product``
    not None: an archive index, its damage raised as `DamagedIndexError`; ``quiet``: also
    when its log is empty, `_follows_writers`)."""
    wal = Path(f"{path}-wal")
    follow = _follows_writers(path, quiet)
    uri = f"file:{quote(str(path))}?mode=ro" + ("" if follow else "&immutable=1")
    if product is None and path.name != INDEX_NAME:
        conn = sqlite3.connect(uri, uri=True, timeout=LOCK_WAIT)
    else:
        conn = sqlite3.connect(uri, uri=True, timeout=LOCK_WAIT, factory=_IndexConnection)
        _guard(conn, path, product or "")
    if not follow and path not in _WAL_NOTED and _log_bytes(path) > 0:
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


def _follows_writers(path: Path, quiet: bool) -> bool:
    """Whether a read-only open of the WAL database ``path`` follows its writers through the
    ``-wal`` and ``-shm`` files (``mode=ro``, see `connect_readonly`) rather than reading the
    database file alone (``immutable=1``).

    ``quiet`` (a reader that reads again when a writer touched the file meanwhile,
    `ArchiveIndex.changed`, ``rechecked``): the file alone also while the database's
    ``-wal`` holds nothing (none there, or empty): every commit is in the file itself, and a
    writer connecting meanwhile writes its commits to the ``-wal`` until a checkpoint (which
    changes the file).
    A ``mode=ro`` open, the first of its process, costs a short read 0.25 ms more: SQLite
    takes the locks of the shared-memory index and, as its first connection, resets it and
    runs the log's recovery (writing the ``-shm`` file, which a reader need not do).
    """
    if quiet and not _log_bytes(path) and _in_wal_mode(path):
        return False
    writer = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    return writer or (Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists())


def _log_bytes(path: Path) -> int:
    """The size of the database's ``-wal`` (0: none)."""
    wal = f"{os.fspath(path)}-wal"
    if not os.access(wal, os.F_OK):  # (none, the usual case: no exception made)
        return 0
    try:
        return os.stat(wal).st_size
    except OSError:
        return 0


def _in_wal_mode(path: Path) -> bool:
    """Whether the SQLite database file ``path`` is in WAL mode (its header's file format
    versions are 2); in rollback-journal mode a writer changes the file during its
    transactions."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(20)
    except OSError:
        return False
    return header[18:20] == b"\x02\x02"


class _KeptReader(NamedTuple):
    """A reader's index (its read-only connection) kept for this thread's next reader."""

    pid: int
    index: ArchiveIndex


#: per thread, index file -> its `_KeptReader` (sqlite3 connections serve their own thread)
_readers = threading.local()
#: kept connections per thread at most (the least recently used is closed)
_KEPT_MAX = 8
#: connections a forked child inherited: never used nor closed there (closing the parent's
#: SQLite connection in a child is unsafe), only held
_INHERITED: list[sqlite3.Connection] = []


def _kept() -> OrderedDict[Path, _KeptReader]:
    kept = getattr(_readers, "kept", None)
    if kept is None:
        kept = _readers.kept = OrderedDict()
    return kept


def _keep_reader(index: ArchiveIndex) -> None:
    """Keep a reader's fresh connection for this thread's next reader of the index: opening
    one and its first query (SQLite reads the schema) cost a short read 0.45 ms, more than
    its queries (measured). The original mica's index is not kept (its views are per
    connection)."""
    if index.original:
        return
    kept = _kept()
    old = kept.pop(index.path, None)
    if old is not None:
        _release(old)
    kept[index.path] = _KeptReader(os.getpid(), index)
    index.kept = True
    while len(kept) > _KEPT_MAX:
        _release(kept.popitem(last=False)[1])


def _release(entry: _KeptReader) -> None:
    """Close a kept connection, unless a parent process opened it (inherited through a fork:
    closing it here is unsafe; it is kept aside, never used)."""
    if entry.pid == os.getpid():
        entry.index.conn.close()
    else:
        _INHERITED.append(entry.index.conn)


def close_kept_readers() -> None:
    """Close the read-only connections this thread keeps (`ArchiveIndex.open_for_reading`):
    while one is open, SQLite leaves an index's ``-wal`` and ``-shm`` beside it, as for any
    reader still running."""
    kept = _kept()
    while kept:
        _release(kept.popitem()[1])


def _kept_reader(product: FileProduct, root: Path, rechecked: bool) -> ArchiveIndex | None:
    """The index through this thread's kept connection, when it still reads the current file.

    A ``mode=ro`` connection sees every commit in its next transaction (WAL), so it serves
    while the file is the one it opened (same inode: a rebuild renames a new index into
    place). One opened ``immutable=1`` serves while the file holds still (its inode, size and
    mtime) and a fresh open for this reader would not follow writers (`_follows_writers`: a
    ``-wal`` holding commits appeared, or the reader does not read again after a change).
    """
    path = root / INDEX_NAME
    kept = _kept()
    entry = kept.get(path)
    if entry is None:
        return None
    index = entry.index
    if entry.pid != os.getpid():  # inherited through a fork
        _INHERITED.append(kept.pop(path).index.conn)
        return None
    now = _file_state(path)
    opened = index._opened
    stale = now is None or opened is None or now[0] != opened[0] or index.product is not product
    if index.immutable and not stale:  # (a fresh open would follow writers now: a commit
        # waits in the -wal; the file's header, read at the open, has not changed since)
        quiet = rechecked and not _log_bytes(path)
        stale = now != opened or (not quiet and _follows_writers(path, quiet=False))
    if stale or index.conn.in_transaction:
        del kept[path]
        index.conn.close()
        return None
    kept.move_to_end(path)
    return index


#: databases whose unmerged -wal file `connect_readonly` reported (once per process)
_WAL_NOTED: set[Path] = set()


def _file_state(path: Path) -> tuple[int, int, int] | None:
    """What tells a rewritten file: (inode, size, mtime), None when there is none."""
    try:
        st = os.stat(path)  # (pathlib's stat costs twice os.stat's on a warm read's path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


#: The end of a missing-archive message: how a reader is pointed at an archive (the command
#: line names its own option instead: `mica.cli`).
POINT_AT_ARCHIVE = "point data_root=/MICA_ARCHIVE at an archive"


def missing_archive(
    product: str, root: Path, problem: str, fill: str | None = None
) -> MissingArchiveError:
    """The error for a folder without an archive: names it and the command that fills it
    (``fill``, default an update by time from a source), and the product folders it holds
    when it is an archive's root (given as ``data_root``, which takes a product's folder),
    or its parent when that is missing too."""
    held = sorted(p.name for p in _subfolders(root) if (p / INDEX_NAME).is_file())
    if held:
        hint = (
            f"; {root} holds the product folders {', '.join(held)}: data_root takes one of "
            "them, MICA_ARCHIVE the folder holding them"
        )
    elif not Path(root).parent.exists():  # (a typo in the archive's own path, most likely)
        hint = f"; {Path(root).parent} does not exist either"
    else:
        hint = ""
    fill = fill or f"mica update {product} --start ... --stop ... --source ..."
    return MissingArchiveError(
        f"no {product} archive in {root} ({problem}): fill it with '{fill}' or "
        f"{POINT_AT_ARCHIVE}{hint}",
        product,
        root,
    )


def _subfolders(root: Path) -> list[Path]:
    """The folders in ``root`` (none when it cannot be listed)."""
    try:
        return [p for p in Path(root).iterdir() if p.is_dir()]
    except OSError:
        return []


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
