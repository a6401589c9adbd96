"""Columnar store: a table product's rows as per-partition HDF5 chunk files.

A partition (e.g. ten days of one L0 slot) is one immutable chunk file holding the columns of
the rows of that partition's archived files, in file order, plus a per-row file index. A
product may also keep narrower views (a few columns in larger partitions, e.g. header-3). A
chunk is written whole under a new name (its next generation), beside the old one, renamed into
place, and recorded in ``store_chunks`` with the exact file list (name + checksum) it was built
from. An update that adds files after a partition's own extends its chunk: the new generation
is a byte copy of the old file, made by the kernel, that HDF5 appends the new rows to (each
dataset's last block written again with them), under the temporary name it is renamed from;
its old blocks keep their offsets and digests (`mica.engine.chunk_extend`), so an append
encodes and digests what it adds, not the whole period (the copy, its fsync and the file's
checksum still cost the period's bytes); the update reads the index rows of the files after
the chunk's alone (`PartitionRows`: the partition's file list, compared with the chunk's,
written by SQLite). The old file is never changed: a reader of it is
still served. Space the appends free (the rewritten last blocks) stays in the file, recorded;
past a third of the file the next generation is written afresh, its old blocks copied into a
new file.

Every change of the index marks the partitions it touches dirty in the same transaction; the
transaction that records a rebuilt chunk clears the mark. Readers use only chunks that are not
dirty and read the other partitions' files, so a crash between an ingest and its store update
never gives wrong answers; the next update, ``mica check --repair`` or ``mica rebuild store``
brings the chunk up to date. ``mica check`` also compares the file lists in full.

Nothing a chunk holds is taken on trust: the transaction that records a chunk also records its
identity (partition: view, slot, period; and generation, the number in its file name) and, for
every dataset, its dtype, shape and the CRC-32C of each stored HDF5 chunk (a "block"; zlib's
crc32 in a record written before, which names no ``blocks_hash``), seeded with the partition
(`mica.engine.h5chunks.ChunkDigests`, `block_seed`: an older generation's block passes only
with the same bytes, i.e. the same rows), and the CRC-32C of the whole file
(`mica.engine.h5chunks.file_digest`), seeded with the partition and generation; the identity
is also an attribute of the file. Readers check every block they decode, so a flipped byte, a
chunk file put in another partition's or generation's place, or a block in another's place
fails the read with a `DamagedStoreError`;
by default (``MICA_STORE_DAMAGED``, `serve_from_files`) the reader then reads that partition's
files and says once which command mends the chunk. A chunk recorded
without digests (written before they existed) counts as out of date: served from the files
until an update, ``mica rebuild store`` or ``mica check --repair`` rewrites it.

Format (chosen by measurement, see benchmarks/bench_hdr3_store.py and the README): HDF5 via
h5py with Blosc LZ4 and shuffle (hdf5plugin). Reads of the full view take the stored blocks
they need themselves, without opening the file in HDF5 (`stored_blocks`: each file's layout
learnt once per process), and decode only the Blosc blocks holding the asked byte planes;
one-column groups are read back block by block, and reads of images over more than
`_SHORT_DEFER_ROWS` rows decode them into the caller's output (`ChunkedRows`).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import math
import mmap
import os
import shutil
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import h5py
import hdf5plugin
import numpy as np

from mica import config
from mica.engine.atomic import partial_name, write_atomic
from mica.engine.chunk_extend import (
    COMPACT_FREE,
    Extended,
    HeldChunk,
    append_rows,
    copy_chunk_file,
    extend_dataset,
    growable_dataset,
)
from mica.engine.h5chunks import (
    BLOCK_HASH,
    ChunkDigests,
    DatasetDigests,
    RecordedDatasets,
    block_hash_of,
    file_record,
    image_and_record,
    is_blosc_chunked,
    one_blosc_thread,
    open_h5,
    open_h5_id,
    read_slab,
    record_digests,
)
from mica.engine.index import FILE_ORDER, ArchiveIndex, OlderArchiveTable, rows_in
from mica.engine.product import FileProduct
from mica.engine.read import archived_fits
from mica.engine.store_tables import create_table, refresh_tables
from mica.engine.stored_blocks import (
    ChunkedRows,
    DeferredPlanes,
    StoredDataset,
    StoredFile,
    as_records,
    blosc_blocks,
    read_planes,
    read_rows,
    read_rows_of,
    stored_layout,
)
from mica.engine.synced import synced_chunk_kept
from mica.errors import ArchiveWriteError, DamagedFileError, DamagedStoreError

_log = logging.getLogger(__name__)

STORE_DIR = "store"
# Blosc LZ4 with shuffle (measured in benchmarks/bench_hdr3_store.py against Blosc2/zstd,
# Blosc2/LZ4, Blosc/zstd and none): images decompress at about the speed of Blosc2/LZ4, and
# the small header-3 datasets 3x faster than any Blosc2 codec, whose per-call set-up dominates
# there; about 1.35x the size of Blosc2/zstd.
_CODEC = hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)
_PARTS_PER_QUERY = 200
_CHUNK_BYTES = 1 << 20  # HDF5 chunk size: big enough that per-chunk overhead is small
_MIN_CHUNK_ROWS = 1024  # and rows per HDF5 chunk of a group of small records
# Rows per block of the chunk's time index (TRANGE: min and max TIME of each block), so a
# short fetch from a long chunk reads only the blocks around its time range.
_BLOCK_ROWS = 4096
# HDF5 chunk rows of a view keeping its columns alone (header-3: TIME 128 kB, a byte 16 kB).
_ALONE_CHUNK_ROWS = 4 * _BLOCK_ROWS
#: A chunk's dataset of its files' names (`ColumnStore._write_files`), and its block (bytes).
_FILES = "FILES"
_FILES_BLOCK = 1 << 16
# HDF5 chunk rows of a byte-plane group, each plane of a chunk one Blosc block of its own
# (`_block_bytes`): a read decodes only the planes of the columns it asks for, and a short
# read of every column one block of rows of each (a 10-minute read of every L0 column: 0.4 MB
# a slot, not the 2 MB of two 1 MB chunks whose 128 kB Blosc blocks each spanned 3-9 planes).
_PLANE_ROWS = _BLOCK_ROWS
# Blosc block of a one-column dataset of a view that groups its columns (L0 images, FILEIDX):
# a short read decodes the blocks holding its rows (c-blosc's own block for a 1 MB chunk of
# float32 images is 512 kB: a 10-minute read decoded 0.5-1 MB of images a slot for 28 kB).
# Its HDF5 chunks stay 1 MB: in 256 kB chunks, long image reads (`ChunkedRows`) took 1.1-1.3x
# as long (measured).
_COLUMN_BLOCK = 64 << 10
# Free space a chunk write leaves for the index: the store is a cache, the index the truth,
# so a chunk that would leave less is not written (its partition is served from files).
_INDEX_RESERVE = 8 << 20

_CHUNKS_SQL = """
CREATE TABLE IF NOT EXISTS store_chunks (
    part text PRIMARY KEY,
    path text NOT NULL,
    files text NOT NULL,      -- 'v<version>' then '<filename> <checksum>' lines, row order
    nrows int NOT NULL,
    tstart float,
    tstop float,
    digests text              -- JSON: identity, and per dataset dtype, shape, blocks' CRC
)
"""
# Columns added since the table's first layout (`ColumnStore` adds them to older archives).
_ADDED_COLUMNS = {"digests": "text"}


#: archives whose out-of-date chunks a reader reported (`ColumnStore.current_chunks`: once
#: per process)
_STALE_NOTED: set[Path] = set()
#: chunk files a reader of this process found damaged (`serve_from_files`): their partitions
#: are read from the files from then on
_DAMAGED: set[Path] = set()
#: the digests of the chunk files read lately (`ColumnStore.digests`), by archive and chunk
#: file: the recorded text and what it parsed to. By file, not by text: hashing a 100-day
#: header-3 chunk's digests (tens of kB) would cost a short fetch more than comparing them.
#: A chunk file is recorded once under its name (a rebuild or a sync records a new
#: generation, a new name), so `ColumnStore.current_chunks` reads no text it holds here.
_PARSED: dict[Path, dict[str, tuple[str, ChunkDigests | None]]] = {}
_PARSED_MAX = 256
#: Characters of a chunk's file list that hold its layout tag (`ColumnStore._tag`: a few),
#: read instead of the list by `ColumnStore.current_chunks` without ``names``.
_TAG_CHARS = 32

# Bumped when the chunk layout changes: chunks of another version count as out of date.
STORE_VERSION = 10
_VERSION_TAG = f"v{STORE_VERSION}\n"
# Views keeping each column alone (`StoreView.alone`) have their own tag: their chunks built
# before that layout (byte planes) count as out of date, while the other views' stay current.
_ALONE_TAG = f"v{STORE_VERSION}a\n"


#: the index columns `_file_list` reads
_FILE_LIST_COLUMNS = "filename, checksum"


def _file_list(rows: Sequence[dict[str, Any]], tag: str = _VERSION_TAG) -> str:
    """What a chunk was built from: layout version, then filename and checksum per file in
    row order (plain text, compared by `mica check`)."""
    if isinstance(rows, PartitionRows):
        return rows.file_list(tag)
    return tag + "\n".join(f"{r['filename']} {r['checksum']}" for r in rows)


#: A partition's file list as SQLite writes it (`_file_list`'s lines; the rows in the order
#: `ArchiveIndex.query` gives them), formatted by {where}.
_FILE_LIST_SQL = (
    "SELECT group_concat(line, char(10)) FROM (SELECT filename || ' ' || checksum AS line "
    f"FROM archfiles WHERE {{where}} ORDER BY {FILE_ORDER})"
)


class PartitionRows(Sequence[dict[str, Any]]):
    """A partition's index rows (`ColumnStore._part_todo`) when its files are those of its
    chunk (``held``: that chunk's file list, without its layout tag, of ``count`` files)
    followed by ``tail`` (the rows after them): the held files' rows are read from the
    index only when one is asked for (``fetch(offset)``: the partition's rows from the
    ``offset``-th on), from the first asked for on, as a view's ``derive`` asks for the last
    few; every row for a chunk built from the files. An append of a day to a long period
    reads the tail's alone (`ColumnStore.build`), and its file list is the held list and the
    tail's lines (`_file_list`). Pickled (for a build in another process) as the plain list
    of every row."""

    def __init__(
        self,
        held: str,
        count: int,
        tail: list[dict[str, Any]],
        fetch: Callable[[int], list[dict[str, Any]]],
    ):
        self._held = held
        self._count = count
        self._fetch = fetch
        #: the rows read: from the ``_first``-th on
        self._first = count
        self._rows = tail

    def _from(self, at: int) -> list[dict[str, Any]]:
        """The rows from the ``at``-th on (read from the index from there if not yet)."""
        if at < self._first:
            self._rows = self._fetch(at)[: self._first - at] + self._rows
            self._first = at
        return self._rows[at - self._first :]

    def __len__(self) -> int:
        return self._first + len(self._rows)

    def __getitem__(self, at: Any) -> Any:
        if isinstance(at, slice):
            start, stop, step = at.indices(len(self))
            if step < 0:
                return self._from(0)[at]
            return self._from(start)[: max(stop - start, 0) : step] if start < stop else []
        at = at + len(self) if at < 0 else at
        if not 0 <= at < len(self):
            raise IndexError("partition row index out of range")
        return self._from(at)[0]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._from(0))

    def __reduce__(self) -> tuple[Any, ...]:
        return list, (self._from(0),)

    def file_list(self, tag: str) -> str:
        """`_file_list` of the rows: the held list, then the tail's lines."""
        added = self._rows[self._count - self._first :]
        tail = "".join(f"\n{r['filename']} {r['checksum']}" for r in added)
        return f"{tag}{self._held}{tail}"


def _chunk_names(chunk: dict[str, Any], tag: str = _VERSION_TAG) -> list[str] | None:
    """The file names of a chunk, in row order, from its index row (None: another layout)."""
    names = _names_of(chunk["files"], tag)
    return None if names is None else list(names)


@functools.lru_cache(maxsize=64)
def _names_of(files: str, tag: str) -> tuple[str, ...] | None:
    # Cached by the file list itself: a 100-day header-3 chunk lists about a thousand files,
    # and splitting them was a third of a one-hour fetch's Python time.
    if not files.startswith(tag):
        return None
    return tuple(line.split(" ", 1)[0] for line in files.splitlines()[1:])


def _digests_of(
    text: str,
) -> tuple[dict[str, Any], Mapping[str, DatasetDigests], tuple[int, int], str | None, Any, str]:
    """A chunk's recorded identity, dataset digests, file size and digest, the seed of its
    blocks' digests (None: its identity's, a chunk recorded before appends kept blocks), the
    bytes appends freed in its file (as recorded) and the checksum of its blocks' digests
    (`block_hash_of`), from its ``digests`` column."""
    record = json.loads(text)
    datasets = RecordedDatasets(record["datasets"])
    blocks_seed = record.get("blocks_seed")
    if blocks_seed is not None and not isinstance(blocks_seed, str):
        raise ValueError(f"not a seed: {blocks_seed!r}")
    file = tuple(record["file"])
    free = record.get("free", 0)
    hashed = block_hash_of(record)
    return record["identity"], datasets, file, blocks_seed, free, hashed  # type: ignore[return-value]


def describe_chunk(identity: dict[str, Any]) -> str:
    """A chunk's identity for a person, e.g. ``store chunk 3/511: slot 3, period 511 of the
    full view, generation 1700000000000000000``."""
    keys = [f"{k} {v}" for k, v in identity.items() if k not in _IDENTITY_FIELDS]
    view = f"the {identity['view']} view" if identity["view"] else "the full view"
    keys += [f"period {identity['period']} of {view}", f"generation {identity['generation']}"]
    return f"store chunk {identity['part']}: {', '.join(keys)}"


#: The identity fields of every chunk; the others are the keys of its view (e.g. ``slot``).
_IDENTITY_FIELDS = ("part", "view", "period", "generation")


def serve_from_files(err: DamagedStoreError) -> None:
    """What a reader does with a store chunk that failed its check (``MICA_STORE_DAMAGED``,
    `mica.config.store_damaged`): ``raise`` raises ``err``; ``fallback`` (the default)
    remembers the chunk file, so that this process reads its partition from the archived
    files from now on (`ColumnStore.current_chunks` leaves it out), and logs it once with the
    command that mends it; the caller then reads the partition's files. A reader writes
    nothing: the chunk stays until its archive's owner mends it. A chunk met again although
    it was left out is raised too (its reader would only meet it again)."""
    if config.store_damaged() == "raise" or err.chunk in _DAMAGED:
        raise err
    _DAMAGED.add(err.chunk)
    _log.warning("%s (its rows are read from the archived files now)", err)


def _require_space(folder: Path, nbytes: int) -> None:
    """Raise ENOSPC unless ``folder``'s disk holds ``nbytes`` more plus `_INDEX_RESERVE`."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < nbytes + _INDEX_RESERVE:
        raise OSError(
            errno.ENOSPC,
            f"{free} bytes free, a store chunk of {nbytes} bytes needs "
            f"{nbytes + _INDEX_RESERVE} with the index's reserve",
            str(folder),
        )


def _read_group(
    h5: h5py.File,
    group: str,
    dtype: np.dtype,
    columns: Iterable[str] | None = None,
    rows: slice = slice(None),
    digests: ChunkDigests | None = None,
) -> dict[str, np.ndarray]:
    """Columns (None: all) of a column group of record dtype ``dtype`` over ``rows`` (see
    `ColumnStore._write`), the blocks read checked against the chunk's ``digests``."""
    dset = h5[group]
    if len(dtype.names) == 1:  # one column in its own dtype and shape
        start, stop, _ = rows.indices(dset.shape[0])
        return {dtype.names[0]: read_rows(dset, start, stop, digests)}
    # Byte planes through h5py: hdf5plugin's Blosc decodes these one-byte planes 2-3x faster
    # than blosc2 does (measured on header-3 chunks).
    planes = dset[:, rows]
    if digests is not None:  # checked before anything is returned (see `read_slab`)
        start, stop, _ = rows.indices(dset.shape[1])
        digests.check_rows(dset.id, group, start, stop, dset.dtype, dset.shape)
    out = {}
    for name in dtype.names if columns is None else columns:
        field, offset = dtype.fields[name][:2]
        # Only this column's planes are gathered (plane by plane: 2x faster than a strided
        # transpose), with no record array in between.
        data = np.empty((planes.shape[1], field.itemsize), dtype=np.uint8)
        for k in range(field.itemsize):
            data[:, k] = planes[offset + k]
        out[name] = data.view(field.base).reshape((-1, *field.shape))
    return out


def _decoded_group(
    h5: h5py.File,
    group: str,
    dtype: np.dtype,
    digests: ChunkDigests,
    rows: slice = slice(None),
    columns: Iterable[str] | None = None,
) -> dict[str, np.ndarray]:
    """Columns (None: all) of a column group over ``rows`` for a chunk build, checked against
    the chunk's ``digests``: as `_read_group` reads them, but a group of one column decoded
    by HDF5 (a build never imports blosc2, whose start-up costs about as much as a day's
    chunks' rows)."""
    if len(dtype.names) > 1:
        return _read_group(h5, group, dtype, columns, rows, digests)
    dset = h5[group]
    start, stop, _ = rows.indices(dset.shape[0])
    digests.check_rows(dset.id, group, start, stop, dset.dtype, dset.shape)
    return {dtype.names[0]: dset[start:stop]}


def _read_along(h5: h5py.File, name: str, lo: int, hi: int, digests: ChunkDigests) -> np.ndarray:
    """Rows [lo, hi) along the second axis of dataset ``name`` of an open chunk, the blocks
    holding them checked against the chunk's ``digests`` (`HeldChunk.read_along`)."""
    dset = h5[name]
    digests.check_rows(dset.id, name, lo, hi, dset.dtype, dset.shape)
    return dset[:, lo:hi]


@contextlib.contextmanager
def _mapped(path: Path) -> Iterator[memoryview]:
    """The bytes of file ``path``, mapped read-only (no copy into this process)."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = memoryview(mm)
        try:
            yield view
        finally:
            view.release()


def _decompress(_: str, obj: Any) -> None:
    """Read a dataset whole (`h5py.Group.visititems` callback: None goes on visiting)."""
    if isinstance(obj, h5py.Dataset):
        obj[()]


@dataclass
class ChunkTask:
    """One chunk to build (`ColumnStore.plan_chunks`): picklable, for `build_chunk`."""

    product: FileProduct
    root: Path
    part: str
    rows: list[dict[str, Any]]
    old: dict[str, Any] | None
    rel: str
    #: the chunk's generation (the number in its file name, `ColumnStore.new_chunk_path`)
    gen: int
    #: a folder of arrays the validating workers kept (`keep_arrays`), read before the files
    cache: Path | None = None


class BuiltChunk(NamedTuple):
    """What `build_chunk` wrote, for `ColumnStore.record_chunk`."""

    nrows: int
    tstart: float | None
    tstop: float | None
    #: identity and digests (`ColumnStore._write`), recorded with the chunk
    digests: str


def _cache_path(cache: Path, row: dict[str, Any]) -> Path:
    # the checksum in the name: arrays of another revision of a file never match its row
    return cache / f"{row['filename']}.{row['checksum']}.arrays"


def keep_arrays(cache: Path, row: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Keep a validated file's store arrays in ``cache`` (a staging folder on the shared
    filesystem) so the chunk build on a worker does not decode the file again. A cache,
    not the truth: no fsync; written under a temporary name, so a task run twice (its
    worker killed) never leaves a torn copy. The format is a JSON list of (name, dtype,
    shape) and the raw bytes, never pickle (loading a pickle from a shared folder would run
    whatever code it holds); ``.npz`` measured 4x slower to write and read back."""
    cache.mkdir(parents=True, exist_ok=True)
    dest = _cache_path(cache, row)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
    values = [np.ascontiguousarray(v) for v in arrays.values()]
    meta = json.dumps([[k, v.dtype.str, v.shape] for k, v in zip(arrays, values)]).encode()
    with open(tmp, "wb") as fh:
        fh.write(len(meta).to_bytes(8, "little"))
        fh.write(meta)
        for value in values:
            fh.write(value.data)
    os.replace(tmp, dest)


def drop_kept(cache: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Remove the arrays kept for the files of ``rows`` (their chunks are built)."""
    for row in rows:
        _cache_path(cache, row).unlink(missing_ok=True)


def _kept_arrays(cache: Path | None, row: dict[str, Any]) -> dict[str, np.ndarray] | None:
    if cache is None:
        return None
    try:
        with open(_cache_path(cache, row), "rb") as fh:
            # mapped, not read: the chunk build copies the arrays once, as it does kept ones
            # (copy on write: a build may change an array in place, never the file)
            buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
        size = int.from_bytes(buf[:8], "little")
        pos, out = 8 + size, {}
        for name, dtype, shape in json.loads(buf[8:pos]):
            dtype, count = np.dtype(dtype), math.prod(shape)
            out[name] = np.frombuffer(buf, dtype, count, pos).reshape(shape)
            pos += count * dtype.itemsize
        return out
    except (OSError, ValueError, TypeError):  # object dtypes refused by frombuffer too
        return None  # not kept (validated by an earlier run): read from the file


class _Folder:
    """The part of an index a chunk build uses: the archive folder (no database)."""

    readonly = True

    def __init__(self, root: Path):
        self.root = root


def build_chunk(task: ChunkTask) -> BuiltChunk:
    """Write the chunk file of ``task`` (extending the old chunk, or from its arrays and the
    files, see `ColumnStore.build`) for `ColumnStore.record_chunk`. Touches nothing but that
    file: runs in any process that sees the archive folder."""
    builder = ColumnStore(task.product, _Folder(task.root))  # type: ignore[arg-type]
    return builder.build(
        task.root / task.rel,
        task.part,
        task.gen,
        task.rows,
        task.old,
        lambda row: _kept_arrays(task.cache, row),
    )


def _time_ranges(times: np.ndarray) -> np.ndarray:
    """The time index of a chunk's rows (``TRANGE``): min and max TIME of each block of
    `_BLOCK_ROWS` rows."""
    starts = np.arange(0, len(times), _BLOCK_ROWS)
    trange = np.zeros((len(starts), 2))
    if len(times):
        trange[:, 0] = np.minimum.reduceat(times, starts)
        trange[:, 1] = np.maximum.reduceat(times, starts)
    return trange


def _chunk_rows(dtype: np.dtype, alone: bool) -> int:
    """Rows per HDF5 chunk of a column group of record dtype ``dtype`` (``alone``: a view
    keeping each column alone), whatever the number of rows: the datasets are unlimited
    along their rows (`growable_dataset`), so a partition's first day is stored in the
    blocks its next generations copy."""
    rows = max(_MIN_CHUNK_ROWS, _CHUNK_BYTES // dtype.itemsize)
    if alone:  # a short fetch decompresses a few blocks' rows, not a megabyte
        rows = min(rows, _ALONE_CHUNK_ROWS)
    elif len(dtype.names) > 1:  # byte planes: a plane of a chunk is one Blosc block
        rows = max(_MIN_CHUNK_ROWS, min(_PLANE_ROWS, _CHUNK_BYTES // dtype.itemsize))
    return rows


def _block_bytes(dtype: np.dtype, alone: bool, rows: int) -> int:
    """The Blosc block size (bytes) of a column group of record dtype ``dtype`` stored in HDF5
    chunks of ``rows`` rows (`_chunk_rows`; ``alone``: a view keeping each column alone): one
    byte plane of a chunk for a byte-plane group, at most `_COLUMN_BLOCK` for one column of
    a grouping view, c-blosc's own choice (0) for a view keeping its columns alone (their
    chunks, read through HDF5, keep the layout they were measured with)."""
    if alone:
        return 0
    if len(dtype.names) > 1:
        return rows
    return min(_COLUMN_BLOCK, rows * dtype.itemsize)


def _stored_form(
    dtype: np.dtype, columns: dict[str, np.ndarray], rows_per_chunk: int
) -> tuple[np.ndarray, tuple[int, ...], int]:
    """A column group's rows as its dataset stores them, its HDF5 chunk shape and the axis
    along which the rows follow one another (see `ColumnStore._image`)."""
    if len(dtype.names) == 1:
        data = columns[dtype.names[0]].astype(dtype[0].base, copy=False)
        return data, (rows_per_chunk, *data.shape[1:]), 0
    n = len(columns[dtype.names[0]])
    values = np.empty(n, dtype=dtype)
    for c in dtype.names:
        values[c] = columns[c]
    data = np.ascontiguousarray(values.view(np.uint8).reshape(n, -1).T)
    return data, (dtype.itemsize, rows_per_chunk), 1


def _span(times: np.ndarray, old: dict[str, Any] | None) -> tuple[float | None, float | None]:
    """The first and last TIME of a chunk's rows: ``times``, and those of the chunk ``old``
    (its index row) it extends."""
    lows = [float(times.min())] if len(times) else []
    highs = [float(times.max())] if len(times) else []
    if old is not None and old["tstart"] is not None:
        lows.append(old["tstart"])
        highs.append(old["tstop"])
    return (min(lows), max(highs)) if lows else (None, None)


#: a short read decodes its deferred columns (images) at once from the stored blocks up to
#: this many rows (above: `ChunkedRows`, decoded into the caller's output, see `_H5Reader`)
_SHORT_DEFER_ROWS = 2 * _BLOCK_ROWS
#: from this many blocks of a chunk's time index on, a read's deferred byte-plane columns
#: are decoded into the caller's output (`_rows_later`); below, the two edge blocks read for
#: their rows and the stored blocks read once more cost more than the arrays in between
_LATER_BLOCKS = 16
#: up to this many columns of a byte-plane group come each in its own array; more come as
#: fields of one record array (its planes copied in one pass, not a pass a column)
_FEW_COLUMNS = 4


class _ChunkReader:
    """How `_rows_of` reads a chunk file: its time index, a column group over rows, and a
    deferred column (None: this reader does not defer; the caller reads otherwise)."""

    #: whether a read with deferred columns over more than `_SHORT_DEFER_ROWS` rows is left
    #: to another reader
    defers_only_short = False
    #: whether columns of byte-plane groups may be decoded later, into the caller's output
    #: (`later`, `_rows_later`)
    defers_planes = False

    def trange(self) -> np.ndarray:
        raise NotImplementedError

    def group(self, group: str, asked: list[str] | None, rows: slice) -> dict[str, np.ndarray]:
        """Columns ``asked`` (None: all) of a column group over ``rows``; a reader may also
        give the group's records under its name (contiguous, when it read them whole)."""
        raise NotImplementedError

    def deferred(self, group: str, rows: slice) -> Any:
        raise NotImplementedError

    def later(self, group: str, asked: list[str], rows: slice) -> dict[str, Any] | None:
        """Columns of a byte-plane group over ``rows`` located, decoded later into the
        caller's output (`DeferredPlanes`); None: read them now (a reader that
        ``defers_planes``)."""
        raise NotImplementedError

    def rows(self, group: str) -> int:
        """The number of rows of a group's dataset (a reader that ``defers_planes``)."""
        raise NotImplementedError


class _H5Reader(_ChunkReader):
    """A chunk file open in HDF5 (`_read_group`, `ChunkedRows`)."""

    def __init__(self, h5: h5py.File, groups: dict[str, np.dtype], digests: ChunkDigests | None):
        self.h5, self.groups, self.digests = h5, groups, digests

    def trange(self) -> np.ndarray:
        trange = self.h5["TRANGE"][:]
        if self.digests is not None:
            self.digests.check_data("TRANGE", trange)
        return trange

    def group(self, group: str, asked: list[str] | None, rows: slice) -> dict[str, np.ndarray]:
        return _read_group(self.h5, group, self.groups[group], asked, rows, self.digests)

    def deferred(self, group: str, rows: slice) -> Any:
        dset = self.h5[group]
        if not is_blosc_chunked(dset):
            return None
        return ChunkedRows(dset, rows.start, rows.stop, self.digests)


class _StoredReader(_ChunkReader):
    """A chunk file whose stored blocks `stored_blocks` located: read by ``os.pread``, checked,
    decoded by c-blosc (no HDF5 file opened); deferred columns of a short read come decoded."""

    defers_only_short = True
    defers_planes = True

    def __init__(
        self,
        fd: int,
        path: Path,
        layout: StoredFile,
        groups: dict[str, np.dtype],
        digests: ChunkDigests,
    ):
        self.fd, self.path, self.layout = fd, path, layout
        self.groups, self.digests = groups, digests

    def _dataset(self, name: str) -> StoredDataset:
        dset = self.layout.datasets.get(name)
        if dset is None:
            if name in self.digests.datasets:
                raise self.digests.damaged(f"/{name} is missing")
            raise KeyError(name)
        return dset

    def trange(self) -> np.ndarray:
        return read_rows_of(self.fd, self._dataset("TRANGE"), 0, 1 << 62, self.digests)

    def group(self, group: str, asked: list[str] | None, rows: slice) -> dict[str, np.ndarray]:
        dtype, dset = self.groups[group], self._dataset(group)
        if len(dtype.names) == 1:  # one column in its own dtype and shape
            lo, hi, _ = rows.indices(dset.shape[0])
            return {dtype.names[0]: read_rows_of(self.fd, dset, lo, hi, self.digests)}
        lo, hi, _ = rows.indices(dset.shape[1])
        asked = list(dtype.names) if asked is None else asked
        if len(asked) > _FEW_COLUMNS:  # all planes at once, as records: columns are views
            whole = [(0, dtype.itemsize)]
            (rows_,) = read_planes(self.fd, dset, whole, lo, hi, self.digests)
            records = as_records(rows_, dtype)
            return {group: records, **{name: records[name] for name in asked}}
        fields = [dtype.fields[name][:2] for name in asked]
        planes = [(offset, field.itemsize) for field, offset in fields]
        got = read_planes(self.fd, dset, planes, lo, hi, self.digests)
        return {
            name: items.view(field.base).reshape((-1, *field.shape))
            for name, (field, _), items in zip(asked, fields, got)
        }

    def deferred(self, group: str, rows: slice) -> Any:
        if rows.stop - rows.start > _SHORT_DEFER_ROWS:
            return None
        return self.group(group, None, rows)[group]

    def later(self, group: str, asked: list[str], rows: slice) -> dict[str, Any] | None:
        dtype, dset = self.groups[group], self._dataset(group)
        if len(dtype.names) == 1:  # a column alone: read now
            return None
        fields = [dtype.fields[name][0] for name in asked]
        planes = [(dtype.fields[name][1], dtype.fields[name][0].itemsize) for name in asked]
        if not DeferredPlanes.takes(dset, planes, rows):
            return None
        source = DeferredPlanes(self.fd, dset, planes, rows, self.digests)
        return {name: source.column(k, field) for k, (name, field) in enumerate(zip(asked, fields))}

    def rows(self, group: str) -> int:
        dset = self._dataset(group)
        return dset.shape[0] if len(self.groups[group].names) == 1 else dset.shape[1]


def _hits_span(keep: np.ndarray) -> slice:
    """From the first True of ``keep`` (a bool array holding one) past its last: no index
    array of every hit; the last found in its bytes from the end (numpy's argmax of the
    reversed array copies it element by element first: 3% of the instructions of a day's
    read of two columns, measured)."""
    return slice(int(keep.argmax()), keep.tobytes().rfind(1) + 1)


def _rows_of(
    reader: _ChunkReader,
    names: list[str],
    groups: dict[str, np.dtype],
    columns: set[str],
    tstart: float,
    tstop: float,
    files: set[str] | None,
    defer: Iterable[str],
    later: Iterable[str] = (),
) -> tuple[dict[str, Any], list[str]] | None:
    """`ColumnStore.read`'s rows through ``reader`` (None: a deferred column this reader
    leaves to another)."""
    key = next(g for g, dtype in groups.items() if "TIME" in dtype.names)
    trange = reader.trange()
    blocks = np.flatnonzero((trange[:, 1] >= tstart) & (trange[:, 0] <= tstop))
    if len(blocks) == 0:
        return {}, names
    span = slice(int(blocks[0]) * _BLOCK_ROWS, (int(blocks[-1]) + 1) * _BLOCK_ROWS)
    # deferred: one-column groups (named after their column) asked for
    wanted = [g for g in groups if g in defer and g in columns and groups[g].names == (g,)]
    if wanted and reader.defers_only_short and span.stop - span.start > _SHORT_DEFER_ROWS:
        return None
    columns = set(columns)
    leave_out = files is not None and not files.issuperset(names)
    decoded_later = set()
    if reader.defers_planes and not leave_out and len(blocks) >= _LATER_BLOCKS:
        planes = {c for dtype in groups.values() if len(dtype.names) > 1 for c in dtype.names}
        decoded_later = set(later) & columns & planes
    at = _inner_rows(reader, key, trange, blocks, tstart, tstop) if decoded_later else None
    if at is not None:  # their rows known without reading TIME whole: columns decoded later
        return _rows_later(reader, groups, columns, decoded_later, wanted, at), names
    out = reader.group(key, [c for c in groups[key].names if c in columns], span)
    times = out["TIME"]
    keep = (times >= tstart) & (times <= tstop)
    if leave_out:  # FILEIDX returned too
        columns.add("FILEIDX")
    if "FILEIDX" in columns:
        out.update(reader.group("FILEIDX", None, span))
    if leave_out:
        keep &= np.array([n in files for n in names])[out["FILEIDX"]]
    if not keep.any():
        return {}, names
    rows = _hits_span(keep)  # in span
    kept = columns | {g for g, dtype in groups.items() if len(dtype.names) > 1}  # records
    out = {c: v[rows] for c, v in out.items() if c in kept}
    at = slice(span.start + rows.start, span.start + rows.stop)  # within the chunk
    for group, dtype in groups.items():
        asked = [c for c in dtype.names if c in columns and c not in out]
        if group in wanted and asked == [group]:
            later = reader.deferred(group, at)
            if later is not None:
                out[group] = later
                continue
        if asked:
            out.update(reader.group(group, asked, at))
    sel = keep[rows]
    if sel.all():  # the usual case: no copy through a boolean index
        return out, names
    return {
        c: v.narrowed(sel) if isinstance(v, ChunkedRows) else v[sel] for c, v in out.items()
    }, names


def _inner_rows(
    reader: _ChunkReader,
    key: str,
    trange: np.ndarray,
    blocks: np.ndarray,
    tstart: float,
    tstop: float,
) -> slice | None:
    """The chunk's rows with tstart <= TIME <= tstop when they are consecutive and every
    block between the first and the last holding some lies within the range (by the time
    index): found from the time index and the TIME of the two edge blocks alone. None
    otherwise (rows out of time order: the caller reads TIME over every block)."""
    b0, b1 = int(blocks[0]), int(blocks[-1])
    within = (trange[b0 : b1 + 1, 0] >= tstart) & (trange[b0 : b1 + 1, 1] <= tstop)
    if not within[1:-1].all():
        return None
    nrows = reader.rows(key)

    def hits(block: int) -> tuple[int, int] | None:
        """Rows [a, b) of ``block`` in the range, if consecutive."""
        lo = block * _BLOCK_ROWS
        if within[block - b0]:
            return lo, min(lo + _BLOCK_ROWS, nrows)
        times = reader.group(key, ["TIME"], slice(lo, lo + _BLOCK_ROWS))["TIME"]
        found = np.flatnonzero((times >= tstart) & (times <= tstop))
        if len(found) == 0 or found[-1] - found[0] + 1 != len(found):
            return None
        return lo + int(found[0]), lo + int(found[-1]) + 1

    first, last = hits(b0), hits(b1)
    if first is None or last is None:
        return None
    if first[1] != (b0 + 1) * _BLOCK_ROWS or last[0] != b1 * _BLOCK_ROWS:
        return None  # a gap at an inner edge
    return slice(first[0], last[1])


def _rows_later(
    reader: _ChunkReader,
    groups: dict[str, np.dtype],
    columns: set[str],
    later: set[str],
    wanted: list[str],
    at: slice,
) -> dict[str, Any]:
    """`_rows_of`'s columns over rows ``at`` of the chunk, those in ``later`` located only
    where the reader defers them (decoded into the caller's output, `DeferredPlanes`)."""
    out: dict[str, Any] = {}
    for group, dtype in groups.items():
        asked = [c for c in dtype.names if c in columns]
        if group in wanted and asked == [group]:
            deferred = reader.deferred(group, at)
            if deferred is not None:
                out[group] = deferred
                continue
        now = [c for c in asked if c not in later]
        decoded_later = [c for c in asked if c in later]
        located = reader.later(group, decoded_later, at) if decoded_later else None
        if located is None:
            now = asked
        else:
            out.update(located)
        if now:
            out.update(reader.group(group, now, at))
    return out


@functools.lru_cache(maxsize=64)
def _column_groups(product: FileProduct, names: tuple[str, ...]) -> dict[str, np.dtype]:
    """`ColumnStore._groups`, made once per product and columns (every read of a chunk asks:
    building the dtypes cost a tenth of a 10-minute read of a slot)."""
    dtypes = {**product.store_dtypes, "FILEIDX": np.dtype(np.uint16)}
    if product.store_description.alone_columns(names):  # each column its own dataset
        return {c: np.dtype([(c, dtypes[c])]) for c in [*names, "FILEIDX"]}
    groups: dict[str, list[str]] = {}
    for group, cols in product.store_groups.items():
        present = [c for c in cols if c in names]
        if present:
            groups[present[0] if len(present) == 1 else group] = present
    placed = {c for cols in groups.values() for c in cols}
    rest = [c for c in names if c not in placed]
    if rest:
        groups["OTHER"] = rest
    groups["FILEIDX"] = ["FILEIDX"]
    return {g: np.dtype([(c, dtypes[c]) for c in cols]) for g, cols in groups.items()}


def rebuilt_line(written: int, asked: int) -> str:
    """The report line of a rebuild of ``asked`` chunks that wrote ``written`` of them
    (`ColumnStore.rebuild`)."""
    line = f"rebuilt {written} store chunks"
    if written < asked:
        line += (
            f"; {asked - written} left dirty, read from their files (a damaged file or a "
            "full disk: see the warnings)"
        )
    return line


class ColumnStore:
    """The store of one product archive (``<product root>/store``)."""

    def __init__(self, product: FileProduct, index: ArchiveIndex):
        self.product = product
        self.index = index
        self.dir = index.root / STORE_DIR
        if not index.readonly:
            index.conn.execute(_CHUNKS_SQL)
            self._add_columns()
            if product.store_description.tables:
                create_table(index.conn)

    def _add_columns(self) -> None:
        """Bring an older archive's ``store_chunks`` to this layout (a writer's first open):
        its chunks get no digests, so they count as out of date (served from their files)
        until rebuilt."""
        have = {row[1] for row in self.index.conn.execute("PRAGMA table_info(store_chunks)")}
        for name, sqltype in _ADDED_COLUMNS.items():
            if name not in have:
                self.index.conn.execute(f"ALTER TABLE store_chunks ADD COLUMN {name} {sqltype}")

    # --- reading -------------------------------------------------------------------------
    def digests(self, chunk: dict[str, Any]) -> ChunkDigests | None:
        """What a chunk's file must hold, from its index row (None: recorded without digests,
        or with a record that does not parse: an out-of-date chunk, rebuilt like one; a
        dataset's own list is checked where it is read, `RecordedDatasets`)."""
        text = chunk.get("digests")
        if not text:
            return None
        known = _PARSED.get(self.index.root, {}).get(chunk["path"])  # a generation's own file
        if known is not None and known[0] == text:  # (the same text object: no comparison)
            return known[1]
        try:
            identity, datasets, file, blocks_seed, free, hashed = _digests_of(text)
            label = describe_chunk(identity)
            seed = f"{chunk['part']}@{identity['generation']}"  # this row's partition
            if blocks_seed is not None and blocks_seed != chunk["part"]:
                raise ValueError(f"blocks seeded as {blocks_seed}, not {chunk['part']}")
            path = self.index.root / chunk["path"]
            digests = ChunkDigests(path, seed, label, datasets, file, blocks_seed, free, hashed)
        except (ValueError, KeyError, TypeError):
            digests = None
        if sum(map(len, _PARSED.values())) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED.setdefault(self.index.root, {})[chunk["path"]] = (text, digests)
        return digests

    def chunk(self, part: str) -> dict[str, Any] | None:
        try:
            rows = self.index.conn.execute(
                "SELECT * FROM store_chunks WHERE part = ?", (part,)
            ).fetchall()
        except OlderArchiveTable:  # an archive written before the store existed
            return None
        return dict(rows[0]) if rows else None

    def chunk_files(self, chunk: dict[str, Any]) -> tuple[str, ...]:
        """The file names a current chunk holds, in row order, from its index row as
        `current_chunks` gives it (with its file list)."""
        return _names_of(chunk["files"], self._tag(chunk["part"])) or ()

    def current_chunks(self, parts: Iterable[str], names: bool = True) -> dict[str, dict[str, Any]]:
        """The chunks of ``parts`` that readers may use: of this layout version, recorded
        with digests, not dirty (every change of the index marks its partitions dirty in the
        same transaction, see `ArchiveIndex.replace`, and a rebuild clears them with the new
        chunk) and not found damaged by this process (`serve_from_files`).

        Each is its ``store_chunks`` row; without ``names``, a row has no ``files`` (the file
        list, which `_chunk_names` reads: tens of kB for a 100-day header-3 chunk), for a
        reader of the chunk's own datasets. The ``digests`` text of a chunk file this
        process parsed already (`digests`) is not read again: the row holds the kept one."""
        parts = sorted(set(parts))
        out: dict[str, dict[str, Any]] = {}
        outdated: list[str] = []
        parsed = dict(_PARSED.get(self.index.root, {}))  # (another thread may clear it)
        for k in range(0, len(parts), _PARTS_PER_QUERY):
            batch = parts[k : k + _PARTS_PER_QUERY]
            # the parsed chunk files of this batch's partitions (``store/<part>.<gen>.h5``)
            wanted = set(batch)
            known = [p for p in parsed if p[len(STORE_DIR) + 1 :].rsplit(".", 2)[0] in wanted]
            rows = self._chunk_rows(batch, names, known)
            if rows is None:  # an archive written before the store existed
                return {}
            for row in rows:  # of this layout (the tag depends on the view)
                if row.get("digests", "") is None and row["path"] in parsed:
                    row["digests"] = parsed[row["path"]][0]
                files = row["files"] if names else row.pop("files")
                if files.startswith(self._tag(row["part"])) and self.digests(row):
                    if not _DAMAGED or self.index.root / row["path"] not in _DAMAGED:
                        out[row["part"]] = row
                else:
                    outdated.append(row["part"])
        if len(out) < len(parts) and self.index.root not in _STALE_NOTED:
            self._note_stale([p for p in parts if p not in out], outdated)
        return out

    def _chunk_rows(
        self, parts: list[str], names: bool, known: list[str]
    ) -> list[dict[str, Any]] | None:
        """The ``store_chunks`` rows of ``parts`` not dirty (None: the archive has no store),
        ``files`` the list's first `_TAG_CHARS` characters without ``names``, ``digests``
        None for the chunk files ``known``."""
        files = "files" if names else f"substr(files, 1, {_TAG_CHARS})"
        digests = "digests"
        if known:
            digests = f"CASE WHEN path IN ({','.join('?' * len(known))}) THEN NULL ELSE digests END"
        where = (
            f"WHERE part IN ({','.join('?' * len(parts))}) "
            "AND part NOT IN (SELECT part FROM dirty_parts)"
        )
        columns = f"part, path, {files} AS files, nrows, tstart, tstop, {digests} AS digests"
        try:
            rows = self.index.conn.execute(
                f"SELECT {columns} FROM store_chunks {where}", [*known, *parts]
            ).fetchall()
        except OlderArchiveTable:
            try:  # an older archive's table, without digests: its chunks are out of date
                rows = self.index.conn.execute(f"SELECT * FROM store_chunks {where}", parts)
                rows = rows.fetchall()
            except OlderArchiveTable:
                return None
        return [dict(row) for row in rows]

    def _note_stale(self, missing: list[str], outdated: list[str]) -> None:
        """Say once per process and archive that partitions a reader asked for are served
        from their files because their chunks are dirty or of another layout, and which
        command brings them up to date (a reader writes nothing, whatever it finds)."""
        stale = set(outdated) | set(self.index.dirty_parts(among=missing))
        if not stale:  # partitions without files, which have no chunk
            return
        _STALE_NOTED.add(self.index.root)
        _log.warning(
            "%d store chunks of %s are out of date (an update running or interrupted, or "
            "chunks of an older layout or without digests), e.g. %s: their rows are read "
            "from the archived files, which is slower, until the archive's owner runs "
            "`mica rebuild store --data-root %s`",
            len(stale),
            self.index.root,
            min(stale),
            self.index.root,
        )

    def _tag(self, part: str) -> str:
        """The layout tag a current chunk of ``part`` starts its file list with (a view's own
        layout number, `StoreView.layout`, after the store's)."""
        try:
            alone = self.product.store_description.partition_alone(part)
            layout = self.product.store_description.partition_layout(part)
        except ValueError:  # a key of another layout: no chunk of it is current
            return "\0"
        tag = _ALONE_TAG if alone else _VERSION_TAG
        return f"{tag[:-1]}.{layout}\n" if layout else tag

    @one_blosc_thread
    def read(
        self,
        chunk: dict[str, Any],
        columns: Iterable[str],
        tstart: float,
        tstop: float,
        files: set[str] | None = None,
        defer: Iterable[str] = (),
        later: Iterable[str] = (),
    ) -> tuple[dict[str, Any], list[str]]:
        """Rows of a chunk with tstart <= TIME <= tstop, asked columns only, from ``files``
        (None: from every file of the chunk). Columns in ``defer`` that are stored alone come
        as `ChunkedRows`, decompressed when the caller copies them to their destination;
        columns in ``later`` stored as byte planes may come as `DeferredColumn` (a read of
        all the chunk's files over `_LATER_BLOCKS` blocks or more), decoded by the caller
        (`mica.engine.stored_blocks.decode_deferred`).

        Returns (columns by name, with FILEIDX into the chunk's file names when asked or
        when some of the chunk's files are left out, and with the records of a group of
        columns under the group's name where they were read whole; those names). The time
        index picks the blocks of rows that can hold the range; there the group holding
        TIME is read, then each other group holding asked columns in one call over the rows
        between the first and the last hit. Every block read is checked against the chunk's
        digests (deferred columns when decoded).

        Raises
        ------
        FileNotFoundError
            The chunk file is gone (replaced since the caller's snapshot).
        DamagedStoreError
            The chunk is not what its index row recorded (see `serve_from_files`).
        """
        with self.checking(chunk) as digests:
            asked = set(columns) | {"TIME"}
            return self._read(chunk, asked, tstart, tstop, files, defer, later, digests)

    @contextlib.contextmanager
    def checking(self, chunk: dict[str, Any]) -> Iterator[ChunkDigests | None]:
        """The chunk's digests, and meanwhile HDF5's failures to read the chunk raised as
        `DamagedStoreError` (`ChunkDigests.reading`). Nothing is read from a chunk without
        digests: `current_chunks` never gives one (ValueError)."""
        digests = self.digests(chunk)
        if digests is None:
            raise ValueError(f"store chunk {chunk['part']} has no digests: it is not current")
        with digests.reading():
            yield digests

    def _read(
        self,
        chunk: dict[str, Any],
        columns: set[str],
        tstart: float,
        tstop: float,
        files: set[str] | None,
        defer: Iterable[str],
        later: Iterable[str],
        digests: ChunkDigests | None,
    ) -> tuple[dict[str, Any], list[str]]:
        # File names and groups from the index and the product, not from the file's
        # attributes (each HDF5 attribute read costs about as much as a small dataset).
        names = _chunk_names(chunk, self._tag(chunk["part"])) or []  # current: this layout
        groups = self._groups(self.product.partition_columns(chunk["part"]))
        path = self.index.root / chunk["path"]
        fd = os.open(path, os.O_RDONLY)  # FileNotFoundError: replaced since the snapshot
        try:
            layout = stored_layout(path, fd) if digests is not None else None
            if layout is not None and layout.readable:  # its stored blocks read here
                reader: _ChunkReader = _StoredReader(fd, path, layout, groups, digests)
                got = _rows_of(reader, names, groups, columns, tstart, tstop, files, defer, later)
                if got is not None:
                    return got
        finally:
            os.close(fd)
        with open_h5(path) as h5:
            reader = _H5Reader(h5, groups, digests)
            got = _rows_of(reader, names, groups, columns, tstart, tstop, files, defer, later)
        return got  # type: ignore[return-value]

    @one_blosc_thread
    def read_alone(
        self, chunk: dict[str, Any], columns: Iterable[str], tstart: float, tstop: float
    ) -> dict[str, np.ndarray]:
        """Rows of a chunk of a view keeping each column alone (`StoreView.alone`) with
        tstart <= TIME <= tstop: TIME and the asked columns, every file's rows.

        The lean path of the header-3 fetch: the time index, then one hyperslab read per
        column over the blocks that can hold the range, so only the asked columns' bytes of
        those blocks are decompressed (hdf5plugin's Blosc). h5py's low-level calls: its
        File and Dataset objects cost twice the reads of a one-hour fetch (measured). Every
        block read is checked against the chunk's digests; raises as `read` does.
        """
        with self.checking(chunk) as digests:
            fid = open_h5_id(self.index.root / chunk["path"])
            try:
                trange = read_slab(fid, "TRANGE", digests=digests)
                blocks = np.flatnonzero((trange[:, 1] >= tstart) & (trange[:, 0] <= tstop))
                if len(blocks) == 0:
                    return {}
                lo = int(blocks[0]) * _BLOCK_ROWS
                hi = min((int(blocks[-1]) + 1) * _BLOCK_ROWS, int(chunk["nrows"]))
                times = read_slab(fid, "TIME", lo, hi, digests)
                keep = (times >= tstart) & (times <= tstop)
                if not keep.any():
                    return {}
                span = _hits_span(keep)
                a, b = span.start, span.stop
                out = {"TIME": times[span]}
                for name in columns:
                    if name != "TIME":
                        out[name] = read_slab(fid, name, lo + a, lo + b, digests)
            finally:
                fid.close()
        sel = keep[a:b]
        if sel.all():  # rows in time order: the usual case, no copy
            return out
        return {c: v[sel] for c, v in out.items()}

    # --- writing -------------------------------------------------------------------------
    def rebuild(
        self, parts: Iterable[str], loaded: dict[str, dict[str, np.ndarray]] | None = None
    ) -> int:
        """Rewrite the chunks of ``parts`` from their current files (``loaded`` may hold the
        arrays of files already in memory, by filename); how many were written (the others
        are left dirty, served from their files, and warned about: a disk that takes no
        chunk, a damaged file)."""
        loaded = loaded or {}
        todo = sorted(set(parts))
        try:
            self._mark_todo(todo)
            for k, part in enumerate(todo):
                if not self._rebuild_part(part, loaded):
                    # The disk takes no chunk now: leave this and the remaining partitions
                    # dirty (served from their files) for the next update to write.
                    with self.index.transaction():
                        self.index.mark_dirty(todo[k:])
                    break
            return len(todo) - len(self.index.dirty_parts(among=todo))
        except sqlite3.Error as exc:  # the index itself cannot be written
            err = ArchiveWriteError.from_error(exc, self.index.root)
            if err is None:
                raise
            raise err from exc

    def _mark_todo(self, todo: list[str]) -> None:
        """Mark the partitions a rebuild is about to write dirty (those not already: an
        update's are), so that a view's store tables are derived once, when its last
        partition is written, not after each of its chunks from all of them (quadratic in a
        repair or ``mica rebuild store`` of a long mission's header-3 chunks; 150 ms a
        derivation at 92 chunks, measured), and a rebuild killed half-way is finished by the
        next update."""
        if len(todo) < 2:
            return
        dirty = set(self.index.dirty_parts(among=todo))
        if not dirty.issuperset(todo):
            with self.index.transaction():
                self.index.mark_dirty(todo)

    def _rebuild_part(self, part: str, loaded: dict[str, dict[str, np.ndarray]]) -> bool:
        """Bring one partition's chunk up to date; False when its file could not be written
        (disk full, read-only: `ArchiveWriteError` reasons), which is warned about."""
        todo = self._part_todo(part)
        if todo is None:
            return True
        rows, old = todo
        return self._replace_chunk(part, rows, old, lambda row: loaded.get(row["filename"]))

    def _part_todo(self, part: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None] | None:
        """A partition's rows (the columns a chunk build reads, `FileProduct.store_row_columns`)
        and current chunk, or None when the chunk is up to date (its dirty mark then
        cleared)."""
        wanted = self.product.store_row_columns
        columns = ", ".join(wanted) if wanted else "*"
        old = self.chunk(part)
        rows: Sequence[dict[str, Any]]
        try:
            where, params = self.product.partition_where(part)
            rows = self._rows_after(part, old, where, params, columns) or self.index.query(
                where, params, columns=columns
            )
        except ValueError:  # a partition key of an older store layout: drop its chunk
            rows = []
        synced = self.synced_alone()
        if self._serves(part, rows, old, synced):
            if part in synced and old is not None:
                kept = self.synced_kept(old, [r["filename"] for r in rows])
                if kept is not None:
                    warnings.warn(kept, RuntimeWarning, stacklevel=3)
            with self.index.transaction():
                self.index.clear_dirty([part])
            self.derive_tables([part])
            return None
        return rows, old

    def _rows_after(
        self,
        part: str,
        old: dict[str, Any] | None,
        where: str,
        params: list[Any],
        columns: str,
    ) -> PartitionRows | None:
        """The rows of partition ``part`` (SQL ``where``, ``params``) as `PartitionRows` when
        its files are those of its chunk ``old``, in order, then others or none (None: not
        so, or no such chunk). Found by the partition's file list as SQLite writes it (no
        row made in Python: the rows of a 100-day period cost an append to its end a tenth
        of its time, and the comparisons of their file lists as much again), then the rows
        after the chunk's files alone."""
        if old is None:
            return None
        tag = self._tag(part)
        held = old["files"]
        if not held.startswith(tag) or len(held) == len(tag):
            return None
        listed = self.index.conn.execute(_FILE_LIST_SQL.format(where=where), params).fetchone()
        listed = listed[0] if listed else None
        body = held[len(tag) :]
        if listed is None or not (listed == body or listed.startswith(body + "\n")):
            return None
        query = self.index.query
        count = body.count("\n") + 1
        added = listed.count("\n") + 1 - count
        # the rows from the chunk's last file's time on (its files of that time first)
        last = body[body.rfind("\n") + 1 :].split(" ", 1)[0]
        since = "filetime >= (SELECT filetime FROM archfiles WHERE filename = ?)"
        later = query(f"{where} AND {since}", [*params, last], columns=columns) if added else []
        rows = PartitionRows(
            body,
            count,
            later[len(later) - added :],
            # (the OFFSET's parameter follows the WHERE clause's)
            lambda offset: query(
                where, [*params, offset], order=f"{FILE_ORDER} LIMIT -1 OFFSET ?", columns=columns
            ),
        )
        if f"{tag}{listed}" != rows.file_list(tag):  # (a line SQLite writes otherwise)
            return None
        return rows

    def _serves(
        self,
        part: str,
        rows: Sequence[dict[str, Any]],
        chunk: dict[str, Any] | None,
        synced: set[str],
    ) -> bool:
        """Whether ``chunk`` (its index row) serves partition ``part`` holding ``rows``: its
        file exists, it was recorded with digests, and it was built from exactly those
        files, or a sync installed it built from more of them (``synced``: the server
        archive's chunk holds files this archive does not, and every file this one holds).
        A sync's chunk holding files this archive lacks also serves a partition holding files
        it lacks (an update here): it is the only copy here of those files' rows."""
        if (
            chunk is None
            or self.digests(chunk) is None  # written before digests: unverifiable
            or not (self.index.root / chunk["path"]).exists()
        ):
            return False
        tag = self._tag(part)
        listed = _file_list(rows, tag)
        if chunk["files"] == listed:
            return True
        if part not in synced or not chunk["files"].startswith(tag):
            return False
        held = set(chunk["files"][len(tag) :].splitlines())
        here = set(listed[len(tag) :].splitlines())
        # the only copy here of the rows of files this archive lacks: kept, never rebuilt
        # from the files here alone (`mica.engine.synced.synced_chunk_kept`)
        names = {line.split(" ", 1)[0] for line in here}
        return held >= here or any(line.split(" ", 1)[0] not in names for line in held)

    # --- building chunks away from the index (worker processes, cluster workers) --------
    def plan_chunks(self, parts: Iterable[str], cache: Path | None = None) -> list[ChunkTask]:
        """The chunk builds that bring ``parts`` up to date, each under a new name registered
        as scratch (a crash before `record_chunk` deletes it). Partitions up to date are
        cleared, those with no files left have their chunk dropped here. ``cache``: where
        validation kept files' arrays (`keep_arrays`)."""
        tasks = []
        todo_parts = sorted(set(parts))
        self._mark_todo(todo_parts)
        for part in todo_parts:
            todo = self._part_todo(part)
            if todo is None:
                continue
            rows, old = todo
            if not rows:
                self._replace_chunk(part, rows, old)
                continue
            rel, gen = self.new_chunk_path(part)
            tasks.append(ChunkTask(self.product, self.index.root, part, rows, old, rel, gen, cache))
        with self.index.transaction():
            self.index.add_pending([(str(t.root / t.rel), "scratch") for t in tasks])
        return tasks

    @staticmethod
    def new_chunk_path(part: str) -> tuple[str, int]:
        """Where a new chunk of ``part`` is written (relative to the archive folder) and its
        generation, the number in that name (nanoseconds of the clock: a later build of the
        partition has a larger one)."""
        gen = time.time_ns()
        return f"{STORE_DIR}/{part}.{gen}.h5", gen

    def record_chunk(self, task: ChunkTask, built: BuiltChunk | Exception) -> bool:
        """Record a chunk `build_chunk` wrote (or, given the exception it raised, leave the
        partition dirty: served from its files); False when it was not written."""
        dest = task.root / task.rel
        if isinstance(built, Exception):
            dest.unlink(missing_ok=True)
            warnings.warn(
                f"store chunk {task.part} not written, its data are read from the archived "
                f"files until an update or `mica rebuild store` writes it: {built}",
                RuntimeWarning,
                stacklevel=2,
            )
            with self.index.transaction():
                self.index.clear_pending([str(dest)])
                self.index.mark_dirty([task.part])
            return False
        self._record(task.part, task.rows, task.rel, task.old, built)
        return True

    @one_blosc_thread
    def _chunk_arrays(self, chunk: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
        """Every file's arrays held by a chunk (by filename), so a rebuild that adds files
        to a partition decompresses the chunk instead of re-reading its FITS files. Only a
        chunk whose every block read matches its digests is reused: nothing else is carried
        into the new chunk (whose digests would vouch for it)."""
        names = _chunk_names(chunk, self._tag(chunk["part"]))
        digests = self.digests(chunk)
        if names is None or digests is None:  # another layout, or unverifiable
            return {}
        columns: dict[str, np.ndarray] = {}
        try:
            with digests.reading(), open_h5(self.index.root / chunk["path"]) as h5:
                for group, dtype in self._groups(
                    self.product.partition_columns(chunk["part"])
                ).items():
                    columns.update(_decoded_group(h5, group, dtype, digests))
        except OSError as exc:  # gone, or damaged (DamagedStoreError): read the files
            if isinstance(exc, DamagedStoreError):
                _log.warning("%s: its partition is rebuilt from the archived files", exc.detail)
            return {}
        fileidx = columns.pop("FILEIDX")
        bounds = np.searchsorted(fileidx, np.arange(len(names) + 1))
        return {
            name: {c: v[bounds[i] : bounds[i + 1]] for c, v in columns.items()}
            for i, name in enumerate(names)
        }

    def _load(self, row: dict[str, Any]) -> dict[str, np.ndarray]:
        with archived_fits(self.product.path(row, self.index.root), self.index.root) as hdus:
            return self.product.store_arrays(hdus, row)

    def _replace_chunk(
        self,
        part: str,
        rows: list[dict[str, Any]],
        old: dict[str, Any] | None,
        given: Callable[[dict[str, Any]], dict[str, np.ndarray] | None] = lambda row: None,
    ) -> bool:
        """Write and record the chunk of ``part`` holding ``rows`` in place of ``old`` (its
        index row; drop it when there are no rows), the arrays of files taken from ``given``
        where it has them (`build`); False when the chunk could not be written (the
        partition then stays dirty)."""
        drops = [str(self.index.root / old["path"])] if old else []
        if not rows:
            with self.index.transaction():
                self.index.conn.execute("DELETE FROM store_chunks WHERE part = ?", (part,))
                self.index.add_pending([(p, "drop") for p in drops])
                self.index.clear_dirty([part])
            self._drop(drops)
            self.derive_tables([part])
            return True
        rel, gen = self.new_chunk_path(part)
        dest = self.index.root / rel
        with self.index.transaction():  # a crash before the commit below deletes it
            self.index.add_pending([(str(dest), "scratch")])
        try:
            built = self.build(dest, part, gen, rows, old, given)
        except DamagedFileError as exc:
            # Nothing is built from a damaged file: the partition stays dirty, its readers
            # read its files (and are refused that one, by name), the other partitions go on.
            _log.warning("store chunk %s not rebuilt: %s", part, exc)
            with self.index.transaction():
                self.index.clear_pending([str(dest)])
                self.index.mark_dirty([part])
            return True
        except OSError as exc:
            err = ArchiveWriteError.from_error(exc, self.index.root)
            if err is None:
                raise
            # The store is a cache: the ingest stands, the partition stays dirty.
            warnings.warn(
                f"store chunk {part} not written, its data are read from the archived "
                f"files until an update writes it: {err}",
                RuntimeWarning,
                stacklevel=4,
            )
            with self.index.transaction():  # nothing of it is on disk (write_atomic)
                self.index.clear_pending([str(dest)])
            return False
        self._record(part, rows, rel, old, built)
        return True

    def _record(
        self,
        part: str,
        rows: list[dict[str, Any]],
        rel: str,
        old: dict[str, Any] | None,
        built: BuiltChunk,
    ) -> None:
        """One transaction: the written chunk in ``store_chunks`` with its digests, its
        scratch intent gone, the old chunk's file to drop, the partition clean; then the old
        file removed."""
        drops = [str(self.index.root / old["path"])] if old else []
        with self.index.transaction():
            self.index.conn.execute(
                "INSERT OR REPLACE INTO store_chunks (part, path, files, nrows, tstart, tstop, "
                "digests) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (part, rel, _file_list(rows, self._tag(part)), *built),
            )
            self.index.clear_pending([str(self.index.root / rel)])
            self.index.add_pending([(p, "drop") for p in drops])
            self.index.clear_dirty([part])
        self._drop(drops)
        self.derive_tables([part])

    def derive_tables(self, parts: Iterable[str] | None = None) -> None:
        """The store tables derived from the views of ``parts`` (whose chunks were recorded
        or dropped; None: every table's view), derived again where their chunks changed,
        once no partition of their view is dirty (`mica.engine.store_tables`)."""
        description = self.product.store_description
        if not description.tables:
            return
        if parts is None:
            for view in sorted({table.view for table in description.tables}):
                refresh_tables(self, view, STORE_VERSION)
            return
        views = set()
        for part in parts:
            try:
                views.add(description.partition_identity(part)["view"])
            except ValueError:  # a partition of an older layout
                continue
        for view in sorted(views):
            refresh_tables(self, view, STORE_VERSION)

    def _drop(self, drops: list[str]) -> None:
        for p in drops:
            Path(p).unlink(missing_ok=True)
        if drops:
            with self.index.transaction():
                self.index.clear_pending(drops)

    def build(
        self,
        dest: Path,
        part: str,
        gen: int,
        rows: list[dict[str, Any]],
        old: dict[str, Any] | None,
        given: Callable[[dict[str, Any]], dict[str, np.ndarray] | None],
    ) -> BuiltChunk:
        """Write the chunk of partition ``part``, generation ``gen``, holding the files of
        ``rows`` at ``dest`` (mode of the ``old`` chunk's file, its index row, kept) and
        return what `_record` records. The arrays of a file come from ``given`` (None: not
        given), else from the old chunk or the file.

        When the old chunk holds the first of ``rows`` and nothing else (the files added
        come after its files: the usual update), the new chunk extends it
        (`mica.engine.chunk_extend`): only the added files are read and only their rows
        encoded (with the old rows of each dataset's last, partial block); the new file is
        a byte copy of the old one appended to (`_append`) unless the old one's blocks were
        digested with its generation or it holds too much freed space (then its blocks are
        copied into a new file, `_image`). Otherwise, or
        when the old chunk turns out damaged or gone, the chunk is built from every file's
        arrays: the old chunk's (decoded, if every block read matches its digests) or the
        file's.
        """
        replaces = None if old is None else self.index.root / old["path"]
        kept = self._extends(part, rows, old)
        if kept:
            added = [given(r) or self._load(r) for r in rows[kept:]]
            try:
                freed = self._appends_in_place(part, old)  # type: ignore[arg-type]
                if freed is not None:
                    return self._append(dest, part, gen, rows, added, old, freed)  # type: ignore[arg-type]
                image, built = self._image(part, gen, rows, added, old)
            except (DamagedStoreError, FileNotFoundError) as exc:  # read from the files
                _log.warning("%s: its partition is rebuilt from the archived files", exc)
                old = None
            else:
                self._write(dest, image, replaces)
                return built
        reuse = self._chunk_arrays(old) if old is not None else {}
        arrays = [given(r) or reuse.get(r["filename"]) or self._load(r) for r in rows]
        image, built = self._image(part, gen, rows, arrays)
        self._write(dest, image, replaces)
        return built

    def _extends(self, part: str, rows: list[dict[str, Any]], old: dict[str, Any] | None) -> int:
        """How many of ``rows`` the ``old`` chunk of ``part`` holds, as their first files,
        when a new chunk holding ``rows`` may extend it (`build`): it holds nothing else, is
        of this layout and recorded with digests, and files are added after its own (0:
        not so)."""
        if old is None or self.digests(old) is None:
            return 0
        tag = self._tag(part)
        listed = _file_list(rows, tag)
        held = old["files"]
        if not held.startswith(tag) or not listed.startswith(held + "\n"):
            return 0
        # one line a file after the tag (counted: a period's list is not split into names)
        return held.count("\n", len(tag)) + 1 if len(held) > len(tag) else 0

    @one_blosc_thread
    def _image(
        self,
        part: str,
        gen: int,
        rows: list[dict[str, Any]],
        arrays: list[dict[str, np.ndarray]],
        extends: dict[str, Any] | None = None,
    ) -> tuple[bytes, BuiltChunk]:
        """The bytes of the chunk file of partition ``part``, generation ``gen``, holding the
        files of ``rows`` (``arrays``: theirs, or, with ``extends``, those of the files after
        the ones the chunk ``extends`` holds, see `mica.engine.chunk_extend`), and what
        `_record` records: rows, time span, identity and digests (JSON, for the ``digests``
        column of its index row).

        One dataset per column group, so a fetch of a few columns reads a few datasets,
        and for a view with ``derive`` the datasets it computes. The file's ``identity``
        attribute names the partition (view, keys, period) and the generation; the digests
        record every dataset's dtype and shape and the CRC-32C of each stored block, seeded
        with the partition (`mica.engine.h5chunks.record_digests`).

        A group of one column is stored in its own dtype and shape (typed shuffle in the
        codec). A group of several is stored as byte planes: its packed records viewed as
        bytes and transposed to (record size, rows), so each byte of a field is contiguous
        (what shuffle does) and a reader gathers only the planes of the columns it asks
        for, without HDF5 compound-type conversion (measured several times slower).

        Raises
        ------
        DamagedStoreError, FileNotFoundError
            The chunk ``extends`` is damaged or gone (`build` then builds from the files).
        """
        base = None if extends is None else self.digests(extends)
        with contextlib.ExitStack() as stack:
            # Built in memory and written by plain file I/O: HDF5 never writes to the disk,
            # so a full or read-only disk is an ordinary OSError, not a failed HDF5 write
            # whose handles are later closed again (that segfaulted on a full disk).
            h5 = h5py.File(f"{part}.{gen}.mem", "w", driver="core", backing_store=False)
            stack.callback(h5.close)
            old = None  # the chunk ``extends``, open
            if base is not None:
                stack.enter_context(base.reading())  # HDF5's failures: a damaged chunk
                old = stack.enter_context(open_h5(self.index.root / extends["path"]))
            identity, n, times, _ = self._fill(h5, part, gen, rows, arrays, extends, old, base)
            image, record = image_and_record(h5, identity, f"{part}@{gen}", part)
        return image, BuiltChunk(n, *_span(times, extends), json.dumps(record))

    def _fill(
        self,
        h5: h5py.File,
        part: str,
        gen: int,
        rows: list[dict[str, Any]],
        arrays: list[dict[str, np.ndarray]],
        extends: dict[str, Any] | None,
        old: h5py.File | None,
        base: ChunkDigests | None,
        in_place: bool = False,
    ) -> tuple[dict[str, Any], int, np.ndarray, dict[str, int]]:
        """Write the chunk of `_image` into ``h5``: a new file, or (``in_place``) a copy of
        the chunk ``extends`` (its index row; open as ``old``, its digests ``base``) to
        append to (`_append`). Returns the chunk's identity, rows, the new rows' TIME and,
        in place, each dataset's first block written (`append_rows`; the blocks before it
        are the old chunk's)."""
        names = self.product.partition_columns(part)
        identity = {
            "part": part,
            **self.product.store_description.partition_identity(part),
            "generation": gen,
        }
        kept = len(rows) - len(arrays)  # the files of the chunk ``extends``, before ``arrays``
        columns = {name: np.concatenate([a[name] for a in arrays]) for name in names}
        columns["FILEIDX"] = np.concatenate(
            [np.full(len(a["TIME"]), kept + i, dtype=np.uint16) for i, a in enumerate(arrays)]
        )
        groups = self._groups(names)
        alone = self.product.store_description.alone_columns(names)
        derive = self.product.store_description.partition_derive(part)
        firsts: dict[str, int] = {}
        # Self-description only: readers take the layout from the product.
        h5.attrs["version"] = STORE_VERSION
        h5.attrs["groups"] = json.dumps({g: dtype.names for g, dtype in groups.items()})
        h5.attrs["identity"] = json.dumps(identity)
        self._write_files(h5, rows, kept, old, base, in_place)
        times = columns["TIME"]
        if in_place:
            del h5["TRANGE"]  # (contiguous: written again whole)
        if base is None or old is None:
            n = len(times)
            h5.create_dataset("TRANGE", data=_time_ranges(times))
        else:
            held = int(extends["nrows"])  # type: ignore[index]
            n = len(times) + held
            trange = self._extended_ranges(old, groups, held, times, base)
            h5.create_dataset("TRANGE", data=trange)
        copied = 0
        for group, dtype in groups.items():
            rows_per_chunk = _chunk_rows(dtype, alone)
            data, chunks, axis = _stored_form(dtype, columns, rows_per_chunk)
            with blosc_blocks(_block_bytes(dtype, alone, rows_per_chunk)):
                first = None
                if in_place:
                    first = append_rows(h5, group, data, chunks, axis, base)  # type: ignore[arg-type]
                    if first is None and group in h5:
                        del h5[group]
                if first is not None:
                    firsts[group] = first
                    dset = h5[group]
                elif base is None or old is None:
                    dset = growable_dataset(h5, group, data, chunks, axis, _CODEC)
                else:
                    dset, blocks = extend_dataset(h5, old, group, data, chunks, axis, base, _CODEC)
                    copied += blocks
                dset.flush()  # encoded now: HDF5 encodes cached blocks when it evicts them
            if first is None and len(dtype.names) > 1:
                dset.attrs["planes"] = repr(dtype.descr)
        if derive is not None:
            if base is None or old is None:
                derived = derive(rows, arrays)
            else:
                # (the new time index's blocks of old rows cover them)
                decode = self._decoder(old, groups, base)
                read = functools.partial(read_slab, old.id, digests=base)
                along = functools.partial(_read_along, old, digests=base)
                chunk = HeldChunk(base, kept, trange, _BLOCK_ROWS, read, decode, along)
                derived = derive(rows, arrays, held=chunk)
            for name, data in derived.items():
                first = self._write_derived(h5, name, data, old, base, in_place)
                if first is not None:
                    firsts[name] = first
        else:
            derived = {}
        if in_place:  # what the old chunk held and this one does not (a derived dataset)
            for name in set(h5) - {"TRANGE", _FILES, *groups, *derived}:
                del h5[name]
        if base is not None and not in_place:
            _log.debug("store chunk %s extended: %d of its blocks copied", part, copied)
        return identity, n, times, firsts

    def _extended_ranges(
        self,
        old: h5py.File,
        groups: dict[str, np.dtype],
        held: int,
        times: np.ndarray,
        digests: ChunkDigests,
    ) -> np.ndarray:
        """The time index (`_time_ranges`) of the old chunk's ``held`` rows (open as ``old``,
        checked against its ``digests``) followed by new rows of TIME ``times``: the old
        index's blocks of old rows alone, then those of its last rows and the new ones."""
        trange = old["TRANGE"][()]
        digests.check_data("TRANGE", trange)
        key = next(g for g, dtype in groups.items() if "TIME" in dtype.names)
        stored = old[key].shape[-1 if len(groups[key].names) > 1 else 0]
        if stored != held:  # the index row and the file disagree: build from the files
            raise digests.damaged(f"/{key} holds {stored} rows, its index row {held}")
        full = held // _BLOCK_ROWS
        rows = slice(full * _BLOCK_ROWS, held)
        last = _decoded_group(old, key, groups[key], digests, rows, ["TIME"])["TIME"]
        return np.concatenate([trange[:full], _time_ranges(np.concatenate([last, times]))])

    @staticmethod
    def _decoder(
        h5: h5py.File, groups: dict[str, np.dtype], digests: ChunkDigests
    ) -> Callable[[slice], dict[str, np.ndarray]]:
        """The columns of every group of an open chunk over a slice of its rows, decoded and
        checked (`HeldChunk`'s ``decode``)."""

        def decode(rows: slice) -> dict[str, np.ndarray]:
            out = {}
            for group, dtype in groups.items():
                out.update(_decoded_group(h5, group, dtype, digests, rows))
            return out

        return decode

    @staticmethod
    def _write_files(
        h5: h5py.File,
        rows: list[dict[str, Any]],
        kept: int,
        old: h5py.File | None,
        base: ChunkDigests | None,
        in_place: bool,
    ) -> None:
        """The names of the chunk's files, one a line, as the bytes of dataset `_FILES`
        (self-description only), growable: a chunk extending another (the first ``kept`` of
        ``rows`` its files, open as ``old``) appends the names of the others. Not an
        attribute: HDF5 leaves the space of an attribute written again in the file, and a
        long period's list is hundreds of kB."""

        def names(part: list[dict[str, Any]]) -> np.ndarray:
            return np.frombuffer("".join(f"{r['filename']}\n" for r in part).encode(), np.uint8)

        if "files" in h5.attrs:  # (a chunk written before `_FILES`, appended to)
            del h5.attrs["files"]
        chunks = (_FILES_BLOCK,)
        if base is not None and old is not None and _FILES in base.datasets:
            added = names(rows[kept:])
            if in_place and append_rows(h5, _FILES, added, chunks, 0, base) is not None:
                return
            if _FILES not in h5:
                extend_dataset(h5, old, _FILES, added, chunks, 0, base, _CODEC)
                return
        if _FILES in h5:
            del h5[_FILES]
        growable_dataset(h5, _FILES, names(rows), chunks, 0, _CODEC)

    @staticmethod
    def _write_derived(
        h5: h5py.File,
        name: str,
        data: np.ndarray | Extended,
        old: h5py.File | None,
        digests: ChunkDigests | None,
        in_place: bool = False,
    ) -> int | None:
        """Write a derived dataset: a table (one axis) unlimited, in blocks of
        `_ALONE_CHUNK_ROWS` rows, its first rows copied from the ``old`` chunk when it is
        `Extended` (``in_place``: ``h5`` is a copy of the old chunk, appended to; returns
        the first block written, `append_rows`); another in one block (``in_place``: in
        place of the old one)."""
        if isinstance(data, Extended):
            chunks = list(data.rows.shape)
            chunks[data.axis] = data.block or _ALONE_CHUNK_ROWS
            blocks, axis = tuple(chunks), data.axis
            if in_place:
                first = append_rows(h5, name, data.rows, blocks, axis, digests, data.keep)  # type: ignore[arg-type]
                if first is not None:
                    return first
            if name in h5:  # (in place, not appended to)
                del h5[name]
            if old is None or digests is None:  # a new chunk's
                growable_dataset(h5, name, data.rows, blocks, axis, _CODEC)
            else:
                extend_dataset(h5, old, name, data.rows, blocks, axis, digests, _CODEC, data.keep)
            return None
        if in_place and name in h5:
            del h5[name]
        if np.ndim(data) == 1:
            growable_dataset(h5, name, data, (_ALONE_CHUNK_ROWS,), 0, _CODEC)
        else:
            chunks = (min(max(len(data), 1), _ALONE_CHUNK_ROWS), *np.shape(data)[1:])
            h5.create_dataset(name, data=data, chunks=chunks, **_CODEC)
        return None

    def _appends_in_place(self, part: str, old: dict[str, Any]) -> int | None:
        """The bytes earlier appends freed in the chunk ``old`` of ``part`` (its index row)
        when its new generation is its byte copy appended to (`_append`), else None: its
        blocks' digests must be seeded with its partition alone (so they stay the new
        generation's) and that space at most `COMPACT_FREE` of the file (else the new
        generation is written afresh, without it)."""
        digests = self.digests(old)
        if digests is None or digests.blocks_seed != part:
            return None
        free = digests.free
        if not isinstance(free, int) or free > COMPACT_FREE * digests.file[0]:
            return None
        return free

    def _append(
        self,
        dest: Path,
        part: str,
        gen: int,
        rows: list[dict[str, Any]],
        arrays: list[dict[str, np.ndarray]],
        extends: dict[str, Any],
        freed: int,
    ) -> BuiltChunk:
        """Write at ``dest`` the chunk of `_image` extending the chunk ``extends`` (its index
        row; ``freed``: the bytes earlier appends freed in its file) as a byte copy of its
        file appended to (`copy_chunk_file`,
        `mica.engine.chunk_extend.append_rows`), under the temporary name `write_atomic`
        renames into place; the old file is never changed (a reader of it is still served).
        The old file's bytes are checked against its digest first (one CRC over the file,
        no call a block: a damaged chunk is built from the files, as a copy of its blocks
        would find). Only the blocks written are digested: the others keep their digests
        and locations (`record_digests`), unless the old record digests its blocks with
        another checksum than `BLOCK_HASH` (zlib's crc32, written before): then every block
        of the new file is digested again (its old blocks are the checked file's bytes;
        CRC-32C of the file's blocks costs a few ms a hundred MB); the file's digest is
        computed again over its bytes.

        Raises
        ------
        DamagedStoreError, FileNotFoundError
            The chunk ``extends`` is damaged or gone (`build` then builds from the files).
        """
        base = self.digests(extends)
        assert base is not None  # (`_appends_in_place`)
        src = self.index.root / extends["path"]
        # room for the appended rows as HDF5 writes them (Blosc may store a block as is)
        extra = 2 * sum(v.nbytes for a in arrays for v in a.values()) + (1 << 20)
        _require_space(dest.parent, base.file[0] + extra)
        seed = f"{part}@{gen}"
        out: list[tuple[dict[str, Any], int, np.ndarray, dict]] = []

        def write(fh: Any) -> None:
            with open(src, "rb") as old:  # every byte carried over as it was recorded
                base.check_bytes(old.fileno())
            copy_chunk_file(src, fh, extra)
            tmp = partial_name(dest)  # the file ``fh`` writes
            with contextlib.ExitStack() as stack:
                stack.enter_context(base.reading())  # HDF5's failures: a damaged chunk
                old = stack.enter_context(open_h5(src))
                h5 = stack.enter_context(h5py.File(tmp, "r+", locking=False))
                filled = self._fill(h5, part, gen, rows, arrays, extends, old, base, True)
                identity, n, times, firsts = filled
                free = h5.id.get_freespace() + freed
                h5.flush()
                carried = {name: (base.dataset(name), first) for name, first in firsts.items()}
                if base.block_hash != BLOCK_HASH:  # (carried blocks are digested again)
                    carried = {}
                with _mapped(tmp) as image:
                    datasets = record_digests(h5, image, part, carried)
            with _mapped(tmp) as image:  # closed: its bytes as they stay
                record = file_record(identity, image, seed, datasets, part, free)
            out.append((record, n, times, firsts))

        write_atomic(dest, write, src)
        record, n, times, firsts = out[0]
        _log.debug("store chunk %s extended in place: %d datasets appended to", part, len(firsts))
        return BuiltChunk(n, *_span(times, extends), json.dumps(record))

    def _write(self, dest: Path, image: bytes, replaces: Path | None) -> None:
        """Write a chunk file's bytes at ``dest`` (`write_atomic`), with the mode of the file
        it ``replaces`` (else a new file's), if the disk keeps room for the index."""
        _require_space(dest.parent, len(image))
        write_atomic(dest, lambda fh: fh.write(image), replaces)

    def _groups(self, names: list[str]) -> dict[str, np.dtype]:
        """The record dtype of each column group of a partition holding ``names``: the
        product's groups, then the leftovers, then FILEIDX. A one-column group is named
        after its column."""
        return dict(_column_groups(self.product, tuple(names)))

    @one_blosc_thread
    def damaged_chunks(self) -> dict[str, tuple[Path, str]]:
        """Chunks whose file exists but is not what their index row recorded: another
        chunk's identity in its attributes, a dataset, dtype, shape or stored block not
        matching its digests, or a dataset that does not decompress: part -> (chunk file, the
        problem). Chunks without digests are left to `stale_parts`."""
        out: dict[str, tuple[Path, str]] = {}
        try:
            rows = self.index.conn.execute("SELECT * FROM store_chunks").fetchall()
        except OlderArchiveTable:  # an archive written before the store existed
            return out
        for chunk in map(dict, rows):
            path = self.index.root / chunk["path"]
            digests = self.digests(chunk)
            if digests is None or not path.exists():
                continue  # a chunk without digests or without its file is stale
            try:
                with digests.reading(), open_h5(path) as h5:
                    self._check_identity(chunk, h5, digests)
                    digests.check_file(h5)
                    h5.visititems(_decompress)  # and every block decodes
            except OSError as exc:  # DamagedStoreError from `reading`, or the file gone
                out[chunk["part"]] = (path, getattr(exc, "detail", str(exc)))  # no advice
        return out

    def _check_identity(self, chunk: dict[str, Any], h5: h5py.File, digests: ChunkDigests) -> None:
        """The chunk file's ``identity`` attribute is the one its index row recorded."""
        recorded = _digests_of(chunk["digests"])[0]
        claimed = h5.attrs.get("identity")
        try:
            found = json.loads(claimed)
        except (TypeError, ValueError):
            raise digests.damaged(f"has no readable identity ({claimed!r})") from None
        if recorded.get("part") != chunk["part"]:
            raise digests.damaged(f"its index row records {describe_chunk(recorded)}")
        if found != recorded:
            named = isinstance(found, dict) and set(_IDENTITY_FIELDS) <= set(found)
            raise digests.damaged(f"the file holds {describe_chunk(found) if named else found}")

    def stale_parts(self) -> list[str]:
        """Partitions whose chunk is missing, dirty, recorded without digests, or not built
        from the partition's current files (full comparison of file lists, for `mica
        check`).

        Partition by partition: a partition with a chunk has its rows read by the query a
        rebuild makes (`ArchiveIndex.partition_rows`), one without is asked only whether it
        holds a row (the same WHERE clause, served by the same index). An index of millions
        of rows is never held whole, and SQLite, not Python, sorts the rows into their
        partitions.
        """
        try:
            built = {r[0] for r in self.index.conn.execute("SELECT part FROM store_chunks")}
        except OlderArchiveTable:
            built = set()
        stale, held = set(self.index.dirty_parts()), set()
        synced = self.synced_alone()
        for part in self.index.partition_candidates():
            if part not in built:
                if self._holds_rows(part):
                    held.add(part)
                    stale.add(part)  # files without a chunk
                continue
            rows = self.index.partition_rows(part, _FILE_LIST_COLUMNS)
            if not rows:
                continue
            held.add(part)
            if not self._serves(part, rows, self.chunk(part), synced):
                stale.add(part)
        # chunks of partitions without files, but a sync's chunk needs none here
        return sorted(stale | (built - held - synced))

    def _holds_rows(self, part: str) -> bool:
        """Whether partition ``part`` holds any index row."""
        where, params = self.product.partition_where(part)
        sql = f"SELECT 1 FROM archfiles WHERE {where} LIMIT 1"
        return self.index.conn.execute(sql, params).fetchone() is not None

    def synced_gone(self) -> dict[str, dict[str, Any]]:
        """The index rows, by partition, of the chunks a sync installed whose file is gone
        (``mica check --repair`` removes a damaged one; or by hand): only a sync brings
        them back, there are no files here to rebuild them from."""
        gone = {}
        for part in sorted(self.synced_alone()):
            chunk = self.chunk(part)
            if chunk is not None and not (self.index.root / chunk["path"]).exists():
                gone[part] = chunk
        return gone

    def synced_kept(self, chunk: dict[str, Any], filenames: Iterable[str]) -> str | None:
        """What to say of chunk ``chunk`` (a sync's) kept in a partition now holding
        ``filenames`` (`synced_chunk_kept`: None when it holds the rows of them all)."""
        held = set(self.chunk_files(chunk))
        lacking = [name for name in filenames if name not in held]
        return synced_chunk_kept(self.index.root, chunk, lacking)

    def synced_alone(self, parts: Iterable[str] | None = None) -> set[str]:
        """Partitions whose chunk `mica.sync` installed from the server's archive (a store
        view, e.g. header-3), built there from files this archive may hold some of or none:
        current while they hold every file of the partition this archive holds (their bytes
        were verified against the server's manifest, their blocks carry the server's
        digests). ``parts``: only those among these (`rows_in`)."""
        sql = "SELECT part FROM synced_parts"
        try:
            if parts is None:
                return {r[0] for r in self.index.conn.execute(sql)}
            where = " WHERE part IN ({marks})"
            return {r[0] for r in rows_in(self.index.conn, sql + where, sorted(set(parts)))}
        except OlderArchiveTable:  # no sync ever installed a chunk here
            return set()
