"""Store tables: one file of datasets derived from every chunk of a store view.

A `mica.engine.store_layout.StoreTable` (e.g. the header-3 items' daily statistics over the
whole mission) is computed from the current chunks of its view and kept as one HDF5 file,
``store/<name>.<generation>.h5``, recorded in the index table ``store_tables`` with:

* ``sources``: the view's chunks it was derived from, a ``<partition> <chunk path>`` line
  each, in partition order (a chunk's path names its generation: a rebuilt chunk has
  another), and the layout numbers of the store, the view and the table;
* ``digests``: like a chunk's (`mica.engine.h5chunks.ChunkDigests`), seeded with
  ``<name>@<generation>``: every block a reader decodes is checked.

Each dataset of the file is the pieces `StoreTable.derive` gives for each chunk, in period
order, one after the other along the last axis; the dataset `PIECES` says where each
chunk's lie (`_image`).

It is written when the store is built or updated: each time a chunk of the view is recorded
or dropped and no partition of the view is left dirty, the table is derived again if its
sources are no longer the chunks recorded (`refresh_tables`). Only the chunks that changed
are read: the pieces of the chunks still recorded under the same path are taken from the
table now recorded, checked against its digests (`_kept_pieces`); a table of another
layout, missing or failing its checks is derived from every chunk, the same datasets.

When the chunks that changed are the last in period order (an update appends to the last
period, or starts the next: the usual case), the new table extends the recorded one
(`_image`): the datasets' stored blocks of the pieces before them are copied as they are,
each checked against its digest, and only the rows after them are encoded, so a day's
update to a 25-year table costs what the day adds, not the mission
(`mica.engine.chunk_extend.extend_dataset`; the datasets are growable, in blocks of `_BLOCK`
values along their last axis, so that every generation stores the same blocks).

Readers use it only while its sources are exactly the view's chunks now recorded and no
partition of the view is dirty (`current_table`, one query); else they read the chunks
themselves, which give the same answer. ``mica check`` names a table that is stale or, with
``--verify-store``, damaged, and ``--repair`` derives it again (`check_tables`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin
import numpy as np

from mica.engine.chunk_extend import extend_dataset, growable_dataset
from mica.engine.h5chunks import (
    UNREADABLE,
    ChunkDigests,
    RecordedDatasets,
    block_hash_of,
    image_and_record,
    one_blosc_thread,
    open_h5,
    open_h5_id,
    read_slab,
)
from mica.engine.index import OlderArchiveTable
from mica.engine.store_layout import StoreDescription, StoreTable
from mica.errors import DamagedStoreError

_log = logging.getLogger(__name__)

_TABLES_SQL = """
CREATE TABLE IF NOT EXISTS store_tables (
    name text PRIMARY KEY,
    path text NOT NULL,
    sources text NOT NULL,  -- layout line, then '<partition> <chunk path>' per chunk
    digests text NOT NULL   -- JSON: identity, file size and digest, datasets' digests
)
"""
_CODEC = hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)
#: values per HDF5 chunk of a table dataset along its last axis: a daily table's 25 years
#: are 9 blocks, of which an update encodes the last again (`_image`)
_BLOCK = 1024
#: The dataset of a table file saying where each chunk's pieces lie: for each other dataset
#: (by name, in sorted order), the length along the last axis of each chunk's piece (the
#: chunks of the table's ``sources`` in period order), -1 for a chunk without one; of one
#: dimension, datasets x chunks long (none in a table of no other dataset or no chunk: an
#: HDF5 dataset stored in blocks holds at least one value).
PIECES = "PIECES"
#: the digests of the tables read lately: (archive, path) -> (recorded text, parsed)
_PARSED: dict[tuple[Path, str], tuple[str, ChunkDigests]] = {}
_PARSED_MAX = 64


def create_table(conn: sqlite3.Connection) -> None:
    """The ``store_tables`` table of an index opened for writing."""
    conn.execute(_TABLES_SQL)


def _bounds(view: str) -> tuple[str, str]:
    """Partition keys of ``view`` lie strictly between these (``'/'`` is just before ``'0'``)."""
    return f"{view}/", f"{view}0"


def _layout_line(description: StoreDescription, table: StoreTable, version: int) -> str:
    return f"layout {version}.{description.view_named(table.view).layout}.{table.layout}"


#: the view's chunks now recorded, as `_TABLES_SQL`'s ``sources`` lists them (one line each)
_SOURCES_SQL = (
    "SELECT group_concat(part || ' ' || path, char(10)) FROM "
    "(SELECT part, path FROM store_chunks WHERE part > ? AND part < ? ORDER BY part)"
)
_ANY_CHUNK_SQL = "SELECT 1 FROM store_chunks WHERE part > ? AND part < ? LIMIT 1"
_DIRTY_SQL = "SELECT EXISTS (SELECT 1 FROM dirty_parts WHERE part > ? AND part < ?)"


def _sources(conn: sqlite3.Connection, layout: str, view: str) -> str:
    listed = conn.execute(_SOURCES_SQL, _bounds(view)).fetchone()[0]
    return f"{layout}\n{listed or ''}"


def _digests(root: Path, row: dict[str, Any]) -> ChunkDigests:
    """The recorded digests of a table's index row (ValueError and the like: unparsable)."""
    key = (root, row["path"])
    known = _PARSED.get(key)
    if known is not None and known[0] == row["digests"]:
        return known[1]
    record = json.loads(row["digests"])
    identity = record["identity"]
    seed = f"{identity['table']}@{identity['generation']}"
    label = f"store table {identity['table']}, generation {identity['generation']}"
    datasets = RecordedDatasets(record["datasets"])
    hashed = block_hash_of(record)
    digests = ChunkDigests(
        root / row["path"], seed, label, datasets, record["file"], block_hash=hashed
    )
    if len(_PARSED) >= _PARSED_MAX:  # generations of a long-running writer's tables
        _PARSED.clear()
    _PARSED[key] = (row["digests"], digests)
    return digests


def current_table(
    conn: sqlite3.Connection,
    root: Path,
    description: StoreDescription,
    table: StoreTable,
    version: int,
) -> ChunkDigests | None:
    """The digests (whose ``path`` is the file) of ``table`` when readers may use it: derived
    from exactly the chunks of its view now recorded, with no partition of the view dirty,
    of this layout. One query; None otherwise (or without a ``store_tables`` table)."""
    lo, hi = _bounds(table.view)
    sql = (
        f"SELECT path, digests, sources = ? || char(10) || coalesce(({_SOURCES_SQL}), '') "
        f"AND NOT ({_DIRTY_SQL}) FROM store_tables WHERE name = ?"
    )
    layout = _layout_line(description, table, version)
    try:
        row = conn.execute(sql, (layout, lo, hi, lo, hi, table.name)).fetchone()
    except OlderArchiveTable:  # an archive written before store tables existed
        return None
    if row is None or not row[2]:
        return None
    try:
        return _digests(root, {"path": row[0], "digests": row[1]})
    except (ValueError, KeyError, TypeError):
        return None


def _recorded(conn: sqlite3.Connection, name: str) -> dict[str, Any] | None:
    try:
        row = conn.execute(
            "SELECT path, sources, digests FROM store_tables WHERE name = ?", (name,)
        ).fetchone()
    except OlderArchiveTable:
        return None
    return None if row is None else {"path": row[0], "sources": row[1], "digests": row[2]}


def _is_current(store: Any, table: StoreTable, version: int) -> bool:
    """Whether ``table``'s recorded file is of the chunks now recorded and exists."""
    conn = store.index.conn
    row = _recorded(conn, table.name)
    layout = _layout_line(store.product.store_description, table, version)
    return (
        row is not None
        and row["sources"] == _sources(conn, layout, table.view)
        and (store.index.root / row["path"]).exists()
    )


def refresh_tables(store: Any, view: str, version: int) -> None:
    """Derive again the tables of ``view`` whose sources changed, once no partition of the
    view is dirty (`mica.engine.colstore.ColumnStore` calls it when it records or drops a
    chunk of the view). A table whose chunks do not all serve (of another layout, damaged)
    is not written: readers read the chunks."""
    description = store.product.store_description
    conn = store.index.conn
    for table in description.tables:
        if table.view != view or conn.execute(_DIRTY_SQL, _bounds(view)).fetchone()[0]:
            continue
        if not _is_current(store, table, version):
            _rebuild(store, table, version)


def _rebuild(store: Any, table: StoreTable, version: int) -> bool:
    """Derive ``table`` from its view's current chunks, write it under a new generation and
    record it in place of the old one; False when a chunk does not serve or the file cannot
    be written (the old record then stays, stale: readers read the chunks)."""
    description = store.product.store_description
    conn = store.index.conn
    layout = _layout_line(description, table, version)
    sources = _sources(conn, layout, table.view)
    now = _source_paths(sources, layout) or {}  # part -> chunk path
    old = _recorded(conn, table.name)
    order = _in_periods(description, now)
    # the recorded table's chunks (None: no table, or one of another layout), in period order
    held = None if old is None else _source_paths(old["sources"], layout)
    was = _in_periods(description, held or {})
    lead = _extension(held, was, now, order)
    kept = {} if lead else _kept_pieces(store.index.root, table, old, held, was, now)
    # the chunks read must serve; those kept did when the table recorded was derived from
    # them (the same files, of the same layout): not looked up again (parsing 92 chunks'
    # digests records was 17 ms of a 25-year table's ~60 ms derivation from one changed chunk)
    read = order[lead:] if lead else [part for part in order if part not in kept]
    chunks = store.current_chunks(read, names=False)
    if len(chunks) < len(read):
        return False  # chunks of another layout or found damaged: not derived from them
    rel, gen = store.new_chunk_path(table.name)
    identity = {"table": table.name, "generation": gen, "layout": layout}

    def derived(part: str) -> dict[str, np.ndarray]:
        return table.derive(part, store.index.root / now[part], store.digests(chunks[part]))

    try:
        pieces = {part: derived(part) for part in read}
        built = None
        if lead:
            try:
                extends = (_digests(store.index.root, old), was, lead)
                built = _image(identity, [pieces[p] for p in read], extends)
            except (*UNREADABLE, TypeError) as exc:  # (DamagedStoreError: an OSError)
                _log.info("store table %s derived from every chunk: %s", table.name, exc)
                chunks.update(store.current_chunks(order[:lead], names=False))
                if len(chunks) < len(order):
                    return False
                pieces.update((part, derived(part)) for part in order[:lead])
        if built is None:
            built = _image(identity, [kept[p] if p in kept else pieces[p] for p in order])
        image, record = built
    except (DamagedStoreError, FileNotFoundError) as exc:  # a chunk changed meanwhile
        _log.warning("store table %s not derived: %s", table.name, exc)
        return False
    dest = store.index.root / rel
    with store.index.transaction():  # a crash before the record below deletes it
        store.index.add_pending([(str(dest), "scratch")])
    replaces = store.index.root / old["path"] if old else None  # whose mode it keeps
    try:
        store._write(dest, image, replaces)  # (room kept for the index, as for a chunk)
    except OSError as exc:
        _log.warning("store table %s not written (readers read the chunks): %s", table.name, exc)
        with store.index.transaction():
            store.index.clear_pending([str(dest)])
        return False
    drops = [str(store.index.root / old["path"])] if old else []
    with store.index.transaction():
        conn.execute(
            "INSERT OR REPLACE INTO store_tables (name, path, sources, digests) "
            "VALUES (?, ?, ?, ?)",
            (table.name, rel, sources, json.dumps(record)),
        )
        store.index.clear_pending([str(dest)])
        store.index.add_pending([(p, "drop") for p in drops])
    store._drop(drops)
    return True


def _in_periods(description: StoreDescription, parts: Iterable[str]) -> list[str]:
    """Partitions of one view in period order (their keys sort as text: ``10`` before ``9``)."""
    return sorted(parts, key=lambda p: description.partition_identity(p)["period"])


def _extension(
    held: dict[str, str] | None, was: list[str], now: dict[str, str], order: list[str]
) -> int:
    """How many of the recorded table's chunks lead the new one (0: it is not extended,
    `_image`): the recorded table's chunks ``held`` (partition -> chunk path; None: no table
    of this layout), ``was`` in period order, whose first ``lead`` (at least one) are the
    first of ``order`` (the chunks now, in period order; ``now``: partition -> chunk path)
    under the same paths, and at most its last one is not (the chunks after the lead changed
    or are new)."""
    if held is None:
        return 0
    lead = 0
    for before, part in zip(was, order):
        if before != part or held[before] != now[part]:
            break
        lead += 1
    return lead if lead and lead >= len(was) - 1 and lead < len(order) else 0


def _chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The HDF5 chunk shape of a table dataset of ``shape``: whole along every axis but the
    last, `_BLOCK` values along it."""
    return (*shape[:-1], _BLOCK)


def _kept_pieces(
    root: Path,
    table: StoreTable,
    old: dict[str, Any] | None,
    held: dict[str, str] | None,
    was: list[str],
    now: dict[str, str],
) -> dict[str, dict[str, np.ndarray]]:
    """The pieces of the chunks the recorded table ``old`` (its index row) was derived from
    (``held``: partition -> chunk path, None for a table of another layout, whose pieces
    may be of other datasets; ``was``: those partitions in period order) that are still
    recorded (``now``: partition -> chunk path), partition -> dataset name -> piece, read
    from its file checked against its digests: what a derivation need not read again.
    Empty (every chunk read) when there are none, or its file is missing or fails its
    checks."""
    if old is None or held is None:
        return {}
    same = {part for part, path in held.items() if now.get(part) == path}
    if not same:
        return {}
    kept: dict[str, dict[str, np.ndarray]] = {part: {} for part in same}
    try:
        digests = _digests(root, old)
        fid = open_h5_id(digests.path)
        try:
            with one_blosc_thread, digests.reading():
                for name, row in _piece_lengths(fid, digests, len(was)).items():
                    data = read_slab(fid, name, digests=digests)
                    ends = np.cumsum(np.maximum(row, 0))
                    if len(ends) and ends[-1] != data.shape[-1]:
                        raise ValueError(f"{PIECES} says {ends[-1]} along /{name}'s last axis")
                    for part, length, end in zip(was, row.tolist(), ends.tolist()):
                        if length >= 0 and part in same:
                            kept[part][name] = data[..., end - length : end]
        finally:
            fid.close()  # not left to the collector: its file is dropped once replaced
    except (*UNREADABLE, TypeError) as exc:  # (DamagedStoreError: an OSError)
        _log.info("store table %s derived from every chunk: %s", table.name, exc)
        return {}
    return kept


@one_blosc_thread
def _image(
    identity: dict[str, Any],
    pieces: list[dict[str, np.ndarray]],
    extends: tuple[ChunkDigests, list[str], int] | None = None,
) -> tuple[bytes, dict]:
    """The bytes of a table file and its record (identity, file size and digest, each
    dataset's digests): each dataset the chunks' ``pieces`` (in period order) one after the
    other along its last axis, and `PIECES`, where they lie.

    ``extends`` = (digests, chunks, lead): the pieces follow those of the first ``lead``
    chunks of the recorded table (``digests``: its file's; ``chunks``: the chunks it was
    derived from, in period order), whose stored blocks are copied as they are, each checked
    (`extend_dataset`), and whose rows after them are encoded again with the new ones. The
    same datasets as from all those pieces.

    Raises
    ------
    DamagedStoreError, OSError, KeyError, ValueError, TypeError
        The recorded table is missing, unreadable or not what its digests say, or does not
        agree with the pieces (the caller then derives the table from every chunk); or a
        piece is named `PIECES` (ValueError).
    """
    seed = f"{identity['table']}@{identity['generation']}"
    with contextlib.ExitStack() as stack:
        old, heads, lead = None, {}, 0
        if extends is not None:
            digests, was, lead = extends
            stack.enter_context(digests.reading())
            old = stack.enter_context(open_h5(digests.path))
            heads = {
                name: row[:lead]
                for name, row in _piece_lengths(old.id, digests, len(was)).items()
                if (row[:lead] >= 0).any()
            }
        names = sorted(set(heads) | {name for piece in pieces for name in piece})
        if PIECES in names:
            raise ValueError(f"store table {identity['table']}: {PIECES} names its own dataset")
        h5 = stack.enter_context(
            contextlib.closing(h5py.File(f"{seed}.mem", "w", driver="core", backing_store=False))
        )
        h5.attrs["identity"] = json.dumps(identity)
        where = np.full((len(names), lead + len(pieces)), -1, dtype=np.int64)
        for i, name in enumerate(names):
            head = heads.get(name, np.full(lead, -1))
            where[i, :lead] = head
            held = []
            for j, piece in enumerate(pieces):
                if name in piece:
                    where[i, lead + j] = np.shape(piece[name])[-1]
                    held.append(piece[name])
            if held:
                rows = np.concatenate(held, axis=-1)
            else:  # (kept pieces alone: the new chunks have none)
                source = old[name]
                rows = np.empty((*source.shape[:-1], 0), source.dtype)
            axis = rows.ndim - 1
            if old is None:
                growable_dataset(h5, name, rows, _chunks(rows.shape), axis, _CODEC)
            else:
                keep = int(np.maximum(head, 0).sum())
                chunks = _chunks(rows.shape)
                extend_dataset(h5, old, name, rows, chunks, axis, digests, _CODEC, keep)
        if names:
            pieces_at = where.ravel()
            growable_dataset(h5, PIECES, pieces_at, _chunks(pieces_at.shape), 0, _CODEC)
        return image_and_record(h5, identity, seed)


def _piece_lengths(
    fid: h5py.h5f.FileID, digests: ChunkDigests, chunks: int
) -> dict[str, np.ndarray]:
    """Of a recorded table file (its `PIECES`, read checked): dataset name -> the length
    along its last axis of the piece of each of its ``chunks`` chunks (-1: none)."""
    names = sorted(name for name in digests.datasets if name != PIECES)
    if not names:
        return {}
    lengths = read_slab(fid, PIECES, digests=digests).reshape(len(names), chunks)
    return dict(zip(names, lengths))


def _source_paths(sources: str, layout: str) -> dict[str, str] | None:
    """Partition -> chunk path of a table's ``sources`` (its layout line, then a line a
    chunk: `_sources`); None when they are of another layout than ``layout``."""
    layout_line, *lines = sources.split("\n")
    if layout_line != layout:
        return None
    return dict(line.split(" ", 1) for line in lines if line)


def _known(description: StoreDescription, part: str) -> bool:
    """Whether ``part`` is a partition key of this store layout."""
    try:
        description.partition_identity(part)
    except ValueError:
        return False
    return True


def check_tables(
    store: Any, version: int, verify: bool, repair: bool, stale: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """``mica check`` of a store's tables: (problems, repairs). A table not derived from the
    chunks now recorded is stale; with ``verify``, a current one whose file does not match
    its digests (every block and byte) is damaged. ``repair`` derives each again. A table
    whose view has a dirty partition or one of ``stale`` (the check's stale partitions) is
    left to the chunks' repair, which derives it once they are current."""
    problems: list[str] = []
    repairs: list[str] = []
    description = store.product.store_description
    conn = store.index.conn
    views = {description.partition_identity(p)["view"] for p in stale if _known(description, p)}
    for table in description.tables:
        if table.view in views or conn.execute(_DIRTY_SQL, _bounds(table.view)).fetchone()[0]:
            continue
        chunked = conn.execute(_ANY_CHUNK_SQL, _bounds(table.view))
        if chunked.fetchone() is None and _recorded(conn, table.name) is None:
            continue  # no chunk of the view, no table
        problem = None
        if not _is_current(store, table, version):
            problem = f"store table {table.name} is not derived from the current store chunks"
        elif verify:
            row = _recorded(conn, table.name)
            try:
                digests = _digests(store.index.root, row)  # type: ignore[arg-type]
                with digests.reading(), open_h5(digests.path) as h5:
                    digests.check_file(h5)
            except (*UNREADABLE, TypeError) as exc:
                detail = getattr(exc, "detail", str(exc))
                problem = f"store table {table.name} is damaged: {detail}"
        if problem is None:
            continue
        mend = "mica check --verify-store --repair" if verify else "mica check --repair"
        problems.append(f"{problem}; readers read the chunks until {mend} derives it again")
        if repair:
            if _rebuild(store, table, version):
                repairs.append(f"derived store table {table.name} again")
            else:
                problems.append(f"store table {table.name} could not be derived")
    return problems, repairs
