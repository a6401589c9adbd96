"""A store chunk's next generation built from the one before: its stored blocks kept as they
are, only the rows after them encoded.

An update that adds files after the last of a partition (the usual case: each day's files
come after the days before) writes the partition's chunk again under a new name, as every
build does (`mica.engine.colstore`: chunk files are immutable, written beside and renamed into
place). Rebuilding it from the arrays would decode and encode every row of the partition, up
to a whole period. Here the new generation starts as a byte copy of the old file
(`copy_chunk_file`: the kernel's ``copy_file_range``, no HDF5 call a block), checked whole
against the old file's digest, and HDF5 appends to it (`append_rows`): each dataset's blocks
before its last stay where they are, and only the old rows of its last block, decoded and
checked, are encoded again with the new rows. The blocks' digests are seeded with the
partition, not the generation, so the kept blocks keep their digests and locations and only the
written ones are digested (`mica.engine.h5chunks.record_digests`); the file's digest, seeded
with the generation, is computed again over its bytes. HDF5 frees the rewritten blocks' old
space, which stays in the file (recorded as ``free``); once it passes `COMPACT_FREE` of the
file, or for a chunk whose blocks were digested with its generation, the next generation is a
new file instead, each full block copied into it byte for byte (`extend_dataset`: h5py's
``read_direct_chunk`` / ``write_direct_chunk``, each checked against the old digests as it is
copied). Blosc encodes a block the same way each time, so either way the file holds the blocks
a full build would write.

A view's derived datasets (`mica.engine.store_layout.StoreView.derive`) are extended the same
way: given the old chunk (`HeldChunk`: its datasets read checked, and its rows from a time on),
``derive`` returns, for a dataset whose first rows do not change, the number of them it keeps
and the rows after them (`Extended`), so an append to a long period computes what the new
rows touch, not the whole period again.
"""

from __future__ import annotations

import errno
import mmap
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import h5py
import numpy as np

from mica.engine.h5chunks import ChunkDigests, DatasetDigests


class Extended(NamedTuple):
    """A derived dataset of an extended chunk: the old chunk's first ``keep`` rows, then
    ``rows`` (`extend_dataset`), along ``axis``, in blocks of ``block`` rows (None: the
    store's blocks of a table)."""

    keep: int
    rows: np.ndarray
    axis: int = 0
    block: int | None = None


class HeldChunk:
    """The chunk a new generation extends, as the view's ``derive`` reads it: every read is
    checked against the chunk's digests.

    Parameters
    ----------
    digests : ChunkDigests
        Its recorded digests.
    files : int
        How many files it holds (the first of the new chunk's).
    time_ranges : numpy.ndarray
        Its time index (``TRANGE``: min and max TIME of each block of ``block_rows`` rows),
        checked.
    block_rows : int
        Rows per block of the time index.
    read_rows : callable
        ``read_rows(name, lo, hi)``: rows [lo, hi) (``hi`` None: to the end) of a dataset,
        decoded and checked.
    decode : callable
        Its view's columns and ``FILEIDX`` over a slice of its rows, decoded and checked.
    read_along : callable
        ``read_along(name, lo, hi)``: rows [lo, hi) along the second axis of a dataset,
        decoded and checked (`read_along`).
    """

    def __init__(
        self,
        digests: ChunkDigests,
        files: int,
        time_ranges: np.ndarray,
        block_rows: int,
        read_rows: Callable[[str, int, int | None], np.ndarray],
        decode: Callable[[slice], dict[str, np.ndarray]],
        read_along: Callable[[str, int, int], np.ndarray],
    ):
        self.digests = digests
        self._read_along = read_along
        self.files = files
        self._ranges = time_ranges
        self._block_rows = block_rows
        self._read_rows = read_rows
        self._decode = decode
        #: name -> (first row, the rows from there to the end) of the reads to the end
        self._ends: dict[str, tuple[int, np.ndarray]] = {}

    def names(self, pattern: str) -> list[re.Match[str]]:
        """The matches of the regular expression ``pattern`` with the chunk's dataset names
        (whole names), in name order."""
        found = (re.fullmatch(pattern, name) for name in sorted(self.digests.datasets))
        return [m for m in found if m is not None]

    def shape(self, name: str) -> tuple[int, ...] | None:
        """The recorded shape of dataset ``name`` (None: the chunk has none)."""
        record = self.digests.datasets.get(name)
        return None if record is None else record.shape

    def read(self, name: str, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Rows [lo, hi) (None: to the end) of dataset ``name``, along its first axis. The
        rows read to the end are kept: a later read of rows among them takes them from
        there (a table's last rows are read several times as an extension finds its join)."""
        kept = self._ends.get(name)
        if kept is not None and kept[0] <= lo:
            return kept[1][lo - kept[0] : None if hi is None else hi - kept[0]]
        rows = self._read_rows(name, lo, hi)
        if hi is None:
            self._ends[name] = (lo, rows)
        return rows

    def read_along(self, name: str, lo: int, hi: int) -> np.ndarray:
        """Rows [lo, hi) along the second axis of dataset ``name`` (whole along the first),
        decoded and checked: the blocks holding them alone are read."""
        return self._read_along(name, lo, hi)

    def rows_since(self, t: float) -> list[dict[str, np.ndarray]]:
        """Each held file's rows with TIME >= ``t`` (the view's columns), in file order: the
        blocks of the time index reaching ``t`` are decoded, from the first to the last."""
        blocks = np.flatnonzero(self._ranges[:, 1] >= t)
        span = slice(int(blocks[0]) * self._block_rows, None) if len(blocks) else slice(0, 0)
        columns = self._decode(span)
        fileidx = columns.pop("FILEIDX")
        later = columns["TIME"] >= t
        fileidx = fileidx[later]
        columns = {name: values[later] for name, values in columns.items()}
        bounds = np.searchsorted(fileidx, np.arange(self.files + 1))
        # one mapping for every file without such rows (most of a long period's): building
        # one a file cost as much as the rest of an append to the period's end (measured)
        none = {name: values[:0] for name, values in columns.items()}
        return [
            {name: values[lo:hi] for name, values in columns.items()} if hi > lo else none
            for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist())
        ]


def _along(axis: int, rows: slice) -> tuple[slice, ...]:
    """The index selecting ``rows`` along ``axis`` (whole extents before it)."""
    return (*[slice(None)] * axis, rows)


def growable_dataset(
    h5: h5py.File, name: str, data: np.ndarray, chunks: tuple[int, ...], axis: int, codec: Any
) -> h5py.Dataset:
    """Dataset ``name`` of ``h5`` holding ``data`` in HDF5 chunks ``chunks`` with the filter
    ``codec``, unlimited along ``axis`` (the axis along which its rows follow one another).

    Unlimited so that its blocks have the same shape whatever the number of rows (HDF5
    refuses a block larger than a fixed-size dataset): a chunk's first day and its next
    generations store the same blocks, which an extension then copies (`extend_dataset`)
    instead of encoding them again.
    """
    maxshape = _unlimited(data.shape, axis)
    return h5.create_dataset(name, data=data, chunks=chunks, maxshape=maxshape, **codec)


def _unlimited(shape: tuple[int, ...], axis: int) -> tuple[int | None, ...]:
    """``shape`` unlimited along ``axis`` (HDF5's ``maxshape``)."""
    return tuple(None if i == axis else n for i, n in enumerate(shape))


def extend_dataset(
    new: h5py.File,
    old: h5py.File,
    name: str,
    rows: np.ndarray,
    chunks: tuple[int, ...],
    axis: int,
    digests: ChunkDigests,
    codec: Any,
    keep: int | None = None,
) -> tuple[h5py.Dataset, int]:
    """Write dataset ``name`` of ``new`` (`growable_dataset`): the first ``keep`` rows (None:
    all) of ``old``'s dataset, then ``rows`` (both in their stored form, one after the other
    along ``axis``), in HDF5 chunks ``chunks`` with the filter ``codec``. ``old`` without
    the dataset: ``rows`` alone (``keep`` must then be 0 or None).

    When ``old`` stored the dataset in the same HDF5 chunks, its full blocks of kept rows
    are copied as they are (each checked against ``digests``, the old chunk's), and only
    its kept rows after them are decoded (checked) and written again with ``rows``;
    otherwise (a chunk written before its blocks had a fixed shape) every kept row is.

    Returns
    -------
    (dataset, blocks copied)

    Raises
    ------
    DamagedStoreError
        A copied or decoded block, or the old dataset's dtype or shape, is not what
        ``digests`` recorded, the old dataset does not have the new rows' dtype and row
        shape (a chunk of another layout) or has fewer than ``keep`` rows, or a dataset
        ``digests`` recorded is missing.
    """
    if name not in old and name not in digests.datasets and not keep:
        return growable_dataset(new, name, rows, chunks, axis, codec), 0
    source = old[name]
    record = digests.check_meta(name, source.dtype, source.shape)
    before = source.shape[:axis] + source.shape[axis + 1 :]
    held = source.shape[axis] if keep is None else keep
    if source.dtype != rows.dtype or before != rows.shape[:axis] + rows.shape[axis + 1 :]:
        raise digests.damaged(
            f"/{name} is {source.dtype} {source.shape}, the new rows {rows.dtype} {rows.shape}"
        )
    if held > source.shape[axis]:
        raise digests.damaged(f"/{name} holds {source.shape[axis]} rows, not {held}")
    shape = list(rows.shape)
    shape[axis] += held
    maxshape = _unlimited(tuple(shape), axis)
    dset = new.create_dataset(
        name, shape=tuple(shape), dtype=rows.dtype, chunks=chunks, maxshape=maxshape, **codec
    )
    step = chunks[axis]
    copied = held // step if record.chunks == tuple(chunks) else 0
    if copied:
        _copy_blocks(old, source, dset, name, copied, axis, step, digests, record)
    start = copied * step
    if start < held:  # the kept rows after the copied blocks, checked before they are used
        digests.check_rows(source.id, name, start, held, source.dtype, source.shape, record)
        rows = np.concatenate([source[_along(axis, slice(start, held))], rows], axis=axis)
    if rows.shape[axis]:
        dset[_along(axis, slice(start, None))] = rows
    return dset, copied


def _copy_blocks(
    old: h5py.File,
    source: h5py.Dataset,
    dset: h5py.Dataset,
    name: str,
    blocks: int,
    axis: int,
    step: int,
    digests: ChunkDigests,
    record: DatasetDigests,
) -> None:
    """Copy the first ``blocks`` stored blocks of ``source`` (dataset ``name`` of ``old``)
    into ``dset`` as they are, each checked against ``digests`` first. Found in one walk of
    HDF5's chunk index and taken from the old file mapped in memory: a block read through
    HDF5 cost twice as much, and a long period's chunk holds tens of thousands of them."""
    located: dict[tuple[int, ...], Any] = {}
    source.id.chunk_iter(lambda info: located.__setitem__(tuple(info.chunk_offset), info))
    origin = [0] * len(source.shape)
    with open(old.filename, "rb") as fh:
        # an array over the mapping (a block check's CRC-32C takes no memoryview), unmapped
        # when the last array over it goes
        whole = np.frombuffer(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ), np.uint8)
    for block in range(blocks):
        origin[axis] = block * step
        info = located.get(tuple(origin))
        if info is None:
            raise digests.damaged(f"/{name} has no stored block {block}")
        stored = whole[info.byte_offset : info.byte_offset + info.size]
        digests.check_block(name, block, stored, record)
        dset.id.write_direct_chunk(tuple(origin), stored, info.filter_mask)


# --- appending in place: the new generation a byte copy of the old one, appended to ---------
#: Free bytes (space HDF5 freed as a chunk was appended to: each dataset's rewritten last
#: block) beyond which the next generation is written afresh, as a fraction of the file.
#: A header-3 period's sample chunk settles near a quarter (its rows fill 1.4 blocks a
#: dataset a day, the rewritten last block frees half of one on average).
COMPACT_FREE = 1 / 3


#: ``copy_file_range``'s errors that say it cannot copy between these files at all
_NO_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOTSUP}


def copy_chunk_file(src: Path, out: BinaryIO, extra: int) -> None:
    """The bytes of chunk file ``src`` into ``out`` (an empty file) by the kernel
    (``copy_file_range``: no copy through this process), then ``extra`` bytes reserved after
    them, so that HDF5's writes of an append find the disk's room taken already (a full disk
    fails here, as an ordinary OSError, not in HDF5; HDF5 cuts the file to its end when it
    closes it)."""
    out.flush()
    dst = out.fileno()
    with open(src, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        copied = 0
        try:
            while copied < size:
                step = os.copy_file_range(fh.fileno(), dst, size - copied)
                if step == 0:
                    raise OSError(errno.EIO, "store chunk shorter than its size", str(src))
                copied += step
        except OSError as exc:  # a file system (or kernel) without it: copied through here
            if exc.errno not in _NO_COPY_RANGE:
                raise
            fh.seek(copied)
            os.lseek(dst, copied, os.SEEK_SET)
            shutil.copyfileobj(fh, out, 1 << 20)
            out.flush()
    if extra:
        os.posix_fallocate(dst, size, extra)


def append_rows(
    h5: h5py.File,
    name: str,
    rows: np.ndarray,
    chunks: tuple[int, ...],
    axis: int,
    digests: ChunkDigests,
    keep: int | None = None,
) -> int | None:
    """Append ``rows`` to dataset ``name`` of ``h5``, a copy of the chunk of ``digests`` open
    for writing, after its first ``keep`` rows (None: all) along ``axis``: the dataset's
    blocks before the one holding row ``keep`` stay as they are, where they are; the kept
    rows of that block (decoded and checked against ``digests`` first) are written again
    with ``rows``, by HDF5, which frees the block's old space.

    Returns
    -------
    int or None
        The first block written (the blocks before it are the old chunk's; their number when
        nothing is written: no rows added after all the old ones), or None when the
        dataset cannot be appended to in place (none, or not in HDF5 chunks ``chunks``
        growable along ``axis``): the caller writes it afresh.

    Raises
    ------
    DamagedStoreError
        The dataset's dtype or shape is not what ``digests`` recorded, or a kept row's block
        does not match its digest, or the rows are not of its dtype and row shape.
    """
    if name not in h5:
        return None
    # HDF5's own calls, not h5py's Dataset: an append calls this for every dataset of a chunk
    # (hundreds in a header-3 sample chunk), and h5py's objects and selections cost several
    # times the HDF5 work of a few rows (measured)
    dsid = h5py.h5d.open(h5.id, name.encode())
    dtype, shape = dsid.dtype, dsid.shape
    record = digests.check_meta(name, dtype, shape)
    dcpl = dsid.get_create_plist()
    if dcpl.get_layout() != h5py.h5d.CHUNKED or dcpl.get_chunk() != tuple(chunks):
        return None
    growable = tuple(
        n == h5py.h5s.UNLIMITED if i == axis else n == shape[i]
        for i, n in enumerate(dsid.get_space().get_simple_extent_dims(True))
    )
    if not all(growable):
        return None
    before = shape[:axis] + shape[axis + 1 :]
    if dtype != rows.dtype or before != rows.shape[:axis] + rows.shape[axis + 1 :]:
        raise digests.damaged(f"/{name} is {dtype} {shape}, the new rows {rows.dtype} {rows.shape}")
    held = shape[axis] if keep is None else keep
    if held > shape[axis]:
        raise digests.damaged(f"/{name} holds {shape[axis]} rows, not {held}")
    step = chunks[axis]
    if held == shape[axis] and not rows.shape[axis]:
        return -(-held // step)  # nothing added (a slot without new rows): every block stays
    first = held // step
    start = first * step
    if start < held:  # the kept rows of the block written again, checked before they are used
        digests.check_rows(dsid, name, start, held, dtype, shape, record)
        rows = np.concatenate([_read_rows(dsid, shape, axis, start, held), rows], axis=axis)
    grown = list(shape)
    grown[axis] = start + rows.shape[axis]
    dsid.set_extent(tuple(grown))
    if rows.shape[axis]:
        rows = np.ascontiguousarray(rows)
        dsid.write(h5py.h5s.create_simple(rows.shape), _rows_space(dsid, axis, start, rows), rows)
    return first


def _rows_space(dsid: h5py.h5d.DatasetID, axis: int, start: int, rows: np.ndarray) -> Any:
    """The selection of a dataset's rows from ``start`` along ``axis`` (whole extents along
    the other axes) where ``rows`` go."""
    space = dsid.get_space()
    origin = [0] * rows.ndim
    origin[axis] = start
    space.select_hyperslab(tuple(origin), rows.shape)
    return space


def _read_rows(
    dsid: h5py.h5d.DatasetID, shape: tuple[int, ...], axis: int, lo: int, hi: int
) -> np.ndarray:
    """Rows [lo, hi) along ``axis`` of a dataset of ``shape`` (whole along the others)."""
    out_shape = list(shape)
    out_shape[axis] = hi - lo
    out = np.empty(tuple(out_shape), dtype=dsid.dtype)
    if out.size:
        dsid.read(h5py.h5s.create_simple(out.shape), _rows_space(dsid, axis, lo, out), out)
    return out
