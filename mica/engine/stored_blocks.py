"""Short reads of store chunk files without HDF5: where each stored block lies, learnt once.

Opening an HDF5 file and its datasets costs a short read (a day of two L0 columns) more than
decoding what it needs (about 0.1 ms a file and each dataset, measured). Chunk files are
immutable under their name (a new generation is a new name, renamed into place), so what HDF5
says of a file's layout -- each dataset's dtype, shape, HDF5 chunk shape and the file offset
and size of every stored block -- holds for as long as the file's (inode, size, mtime) does.
`stored_layout` learns it once per process and file (through h5py's low-level calls), and
a warm read is then ``os.pread`` of the stored blocks it needs, their digest check
(`mica.engine.h5chunks.ChunkDigests.check_block`: the read bytes themselves are checked, as
on every path) and c-blosc's ``blosc_getitem``, which decodes only the Blosc blocks holding
the asked bytes: a few byte planes of a 1 MB HDF5 chunk cost a fraction of decoding it whole.

No HDF5 file stays open between calls (a caller's later ``h5py.File(path, "r+")`` would fail):
the layout is plain numbers. c-blosc is hdf5plugin's own Blosc filter library (the one HDF5
decodes these chunks with), called through ctypes: importing blosc2 costs a first read more
than the whole read. A file whose layout is not plain Blosc-compressed chunks (or where the
library does not load) is not served here (`stored_layout` gives None); callers read it
through HDF5 instead.

`StoredBlocks` reads whole rows of a chunk's datasets the same way, from the block locations
its digests record holds (written with the chunk, so even a first read opens no HDF5 file),
else from `stored_layout`.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import errno
import functools
import math
import os
import queue
import struct
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin
import numpy as np

from mica.engine.h5chunks import (
    ChunkDigests,
    DatasetDigests,
    is_blosc_chunked,
    one_blosc_thread,
    open_h5_id,
    thread_buffer,
)
from mica.errors import DamagedStoreError

__all__ = [
    "BlockMap",
    "ChunkedRows",
    "DeferredColumn",
    "DeferredPlanes",
    "StoredBlocks",
    "StoredDataset",
    "StoredFile",
    "as_records",
    "blosc_blocks",
    "blosc_decode",
    "decode_deferred",
    "read_blocks",
    "read_planes",
    "read_rows",
    "read_rows_of",
    "stored_layout",
]

#: layouts of the chunk files read lately, by path (`stored_layout`)
_LAYOUTS: OrderedDict[Path, tuple[tuple[int, int, int], StoredFile | None]] = OrderedDict()
_LAYOUTS_MAX = 512
_LOCK = threading.Lock()  # readers of several threads share the layouts


@dataclass(frozen=True)
class StoredDataset:
    """One dataset of a chunk file as stored: dtype, shape, HDF5 chunk shape (None:
    contiguous) and, per block along its chunked axis, (file offset, stored size, filter mask)
    (a contiguous dataset: its one extent, filter mask 0). Not ``readable`` (no blocks): one
    this module does not read (other filters, blocks along two axes, a block missing or twice:
    HDF5's read and its checks say what it is). ``streams``: where plane sets' streams lie in
    its blocks, as `_Unshuffled` learns them (kept with the layout: the same bytes while the
    file is the same, every read checking them against their digests)."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    chunks: tuple[int, ...] | None
    blocks: tuple[tuple[int, int, int], ...]
    readable: bool = True
    streams: dict[tuple[int, int, int], Any] = field(
        default_factory=dict, compare=False, repr=False
    )


@dataclass(frozen=True)
class StoredFile:
    """A chunk file's datasets as stored, and the (inode, size, mtime) they were learnt at."""

    state: tuple[int, int, int]
    datasets: dict[str, StoredDataset]

    @property
    def readable(self) -> bool:
        """Whether every dataset is one this module reads."""
        return all(d.readable for d in self.datasets.values())


def _state(fd: int) -> tuple[int, int, int]:
    st = os.fstat(fd)
    return st.st_ino, st.st_size, st.st_mtime_ns


def stored_layout(path: Path, fd: int) -> StoredFile | None:
    """The layout of the chunk file open as ``fd`` (opened by the caller from ``path``),
    learnt once per process while the file's (inode, size, mtime) stays; None when c-blosc
    does not load (`StoredDataset.readable` says which datasets this module reads).

    Raises
    ------
    FileNotFoundError
        ``path`` names another file than ``fd`` now (replaced meanwhile: the caller's
        snapshot is out of date).
    OSError, KeyError, ValueError
        HDF5 cannot read the file's structure (the caller's checks name the damage).
    """
    state = _state(fd)
    with _LOCK:
        known = _LAYOUTS.get(path)
        if known is not None and known[0] == state:
            _LAYOUTS.move_to_end(path)
            return known[1]
    if _c_blosc() is None:
        return None
    fid = open_h5_id(path)
    try:
        if _state(fid.get_vfd_handle()) != state:
            raise FileNotFoundError(2, "store chunk replaced meanwhile", str(path))
        layout = StoredFile(state, _datasets(fid))
    finally:
        fid.close()
    with _LOCK:
        _LAYOUTS[path] = (state, layout)
        if len(_LAYOUTS) > _LAYOUTS_MAX:
            _LAYOUTS.popitem(last=False)
    return layout


def _datasets(fid: h5py.h5f.FileID) -> dict[str, StoredDataset]:
    """Every dataset at the root of an open file, as stored."""
    root = h5py.h5g.open(fid, b"/")
    out = {}
    for k in range(root.get_num_objs()):
        name = root.get_objname_by_idx(k)
        dset = h5py.h5d.open(root, name)
        try:
            out[name.decode()] = _stored_dataset(name.decode(), dset)
        finally:
            dset.close()
    return out


def _stored_dataset(name: str, dset: h5py.h5d.DatasetID) -> StoredDataset:
    shape = tuple(dset.shape)
    plist = dset.get_create_plist()
    unread = StoredDataset(name, dset.dtype, shape, None, (), readable=False)
    if plist.get_layout() == h5py.h5d.CONTIGUOUS:
        if plist.get_nfilters():
            return unread
        offset = dset.get_offset()
        nbytes = int(np.prod(shape)) * dset.dtype.itemsize
        blocks = ((0, 0, 0),) if offset is None else ((offset, nbytes, 0),)
        return StoredDataset(name, dset.dtype, shape, None, blocks)
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    if filters != [hdf5plugin.BLOSC_ID]:
        return unread
    chunks = tuple(plist.get_chunk())
    axis = next((i for i, (c, s) in enumerate(zip(chunks, shape)) if c < s), 0)
    found = []
    infos: list[Any] = []
    dset.chunk_iter(infos.append)  # one walk (the k-th chunk's is a walk each)
    for info in infos:
        if any(o for j, o in enumerate(info.chunk_offset) if j != axis):
            return unread  # blocks along one axis only
        found.append((info.chunk_offset[axis] // chunks[axis], info))
    found.sort(key=lambda item: item[0])
    if [b for b, _ in found] != list(range(len(found))):
        return unread  # a block missing: HDF5's read (and its checks) says which
    blocks = tuple((i.byte_offset, i.size, i.filter_mask) for _, i in found)
    return StoredDataset(name, dset.dtype, shape, chunks, blocks)


# --- decoding -----------------------------------------------------------------------------
#: per thread, buffer name -> (the kept buffer `thread_buffer` gives slices of, its address)
_addresses = threading.local()


def _addressed_buffer(name: str, nbytes: int) -> tuple[np.ndarray, int]:
    """`thread_buffer` ``name`` of ``nbytes`` and its address, learnt once per kept buffer:
    numpy's ``ctypes.data`` costs 2-3 us a call, and a day's read of two columns passes
    c-blosc about twenty addresses (measured)."""
    buf = thread_buffer(name, nbytes)
    kept = getattr(_addresses, name, None)
    if kept is None or kept[0] is not buf.base:  # (the pair holds the buffer: no id reused)
        kept = (buf.base, buf.ctypes.data)
        setattr(_addresses, name, kept)
    return buf, kept[1]


def _stored(
    fd: int,
    dset: StoredDataset,
    block: int,
    digests: ChunkDigests,
    record: DatasetDigests | None = None,
) -> tuple[np.ndarray, int]:
    """Block ``block`` of ``dset`` as stored, read and checked against its digest (``record``:
    the dataset's, if the caller has it) into a buffer of this thread, valid until its next
    call; and the buffer's address."""
    offset, size, _ = dset.blocks[block]
    buf, address = _addressed_buffer("stored", size)
    if os.preadv(fd, [buf], offset) != size:
        row = block * (dset.chunks or (0,))[0]
        raise digests.damaged(f"/{dset.name} chunk at row {row} (block {block}) is truncated")
    digests.check_block(dset.name, block, buf, record)
    return buf, address


def _decode(src: int, dset: StoredDataset, start: int, count: int, dest: int, digests: Any) -> None:
    """Items [start, start + count) (in the dataset's item size) of a checked Blosc block at
    address ``src`` into the ``count`` items at address ``dest``."""
    if _c_blosc().blosc_getitem(src, start, count, dest) != count * dset.dtype.itemsize:
        raise digests.damaged(f"/{dset.name} does not decompress")


#: up to this many rows, `read_planes` decodes the Blosc blocks of those rows of every asked
#: plane and copies them into their rows in one transposing copy; above, each column's
#: planes of every stored block, put into rows by c-blosc's unshuffle (`_Unshuffled`)
_FEW_ROWS = 512
#: Blosc header flags: shuffled, one stream a block (not split); and c-blosc's flags of a
#: buffer stored as is (``BLOSC_MEMCPYED``), of its codec (the top three bits)
_SHUFFLED, _NOT_SPLIT, _MEMCPYED, _CODEC = 0x01, 0x10, 0x02, 0xE0
#: c-blosc decodes a block's streams split by item byte for items of up to 16 bytes
#: (``MAX_SPLITS``): `_Unshuffled` passes plane sets that wide their stored streams as they are
_MAX_SPLITS = 16
_UNKNOWN = object()  # (`StoredDataset.streams` not learnt yet: None is learnt)
_BLOSC_HEAD = 16
#: bytes of planes `read_planes` unshuffles in one call at most
_UNSHUFFLE_BYTES = 2 << 20


def read_planes(
    fd: int,
    dset: StoredDataset,
    planes: list[tuple[int, int]],
    lo: int,
    hi: int,
    digests: ChunkDigests,
) -> list[np.ndarray]:
    """Byte planes ``[first, first + count)`` (each of ``planes``) of a (planes, rows) uint8
    dataset chunked along its rows, over rows [lo, hi), as rows: one (hi - lo, count) array
    each (a column of ``count``-byte items is its view). Only the stored blocks holding
    those rows are read (and checked); in each, only the Blosc blocks holding the asked
    planes are decoded (of a few rows: only the Blosc blocks holding those rows of them),
    each once."""
    record = digests.check_meta(dset.name, dset.dtype, dset.shape)
    nplanes, step = dset.chunks  # type: ignore[misc]
    blocks = range(lo // step, -(-hi // step) if hi > lo else lo // step)
    if hi - lo > _FEW_ROWS and _unshuffles(dset, planes, blocks):
        whole = [np.empty((len(blocks) * step, count), np.uint8) for _, count in planes]
        for k0, columns in _batches(fd, dset, planes, blocks, digests, record):
            for column, rows in zip(columns, whole):
                column.unshuffle(rows[k0 * step : k0 * step + column.rows], dset, digests)
        at = lo - blocks[0] * step
        return [rows[at : at + hi - lo] for rows in whole]
    nbytes = nplanes * step
    out = [np.empty((hi - lo, count), np.uint8) for _, count in planes]
    decoded, at_decoded = _addressed_buffer("decoded", nbytes)
    by_plane = decoded.reshape(nplanes, step)
    for block in blocks:
        stored, src = _stored(fd, dset, block, digests, record)
        a, b = max(lo, block * step), min(hi, (block + 1) * step)
        at = a - block * step  # rows [a, b) of the block
        if dset.blocks[block][2]:  # stored without its filter
            source = np.frombuffer(stored, np.uint8).reshape(nplanes, step)
        else:
            source = by_plane
            for start, stop in _blosc_runs(stored, planes, step, at, b - a, nbytes):
                _decode(src, dset, start, stop - start, at_decoded + start, digests)
        for (first, count), rows in zip(planes, out):
            if b - a <= _FEW_ROWS:
                # the planes' rows gathered first: a transposing copy straight from planes a
                # block's rows apart (a power of two: the same cache sets) cost 8x as much
                # (62 us against 8 for 292 rows of 75 planes, measured)
                planes_rows = np.ascontiguousarray(source[first : first + count, at : at + b - a])
                rows[a - lo : b - lo] = planes_rows.T
                continue
            for k in range(count):
                rows[a - lo : b - lo, k] = source[first + k, at : at + b - a]
    return out


def as_records(rows: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Rows of bytes (``(n, dtype.itemsize)`` uint8) as ``n`` records of ``dtype``, sharing
    their memory: for contiguous rows through the buffer protocol, as numpy's ``view``
    gives them without its check of the fields (12 us a call against 0.3, measured; a
    10-minute `get_aca_images` makes 21 of them)."""
    if rows.flags.c_contiguous:
        return np.frombuffer(rows, dtype)
    return rows.view(dtype).reshape(-1)


def _unshuffles(dset: StoredDataset, planes: list[tuple[int, int]], blocks: range) -> bool:
    """Whether `_Unshuffled` puts these planes of these stored blocks into rows: items of
    fewer than 256 bytes (Blosc's item size is one byte) and every block filtered."""
    return max(count for _, count in planes) < 256 and not any(dset.blocks[b][2] for b in blocks)


def _batches(
    fd: int,
    dset: StoredDataset,
    planes: list[tuple[int, int]],
    blocks: range,
    digests: ChunkDigests,
    record: DatasetDigests,
    nbytes: int = _UNSHUFFLE_BYTES,
) -> Iterator[tuple[int, list[_Unshuffled]]]:
    """The ``planes`` of consecutive batches of the stored ``blocks`` (each read and checked
    once), gathered into one `_Unshuffled` per plane set, ready to be put into rows: (the
    batch's first block, as an index into ``blocks``; its `_Unshuffled`), each valid until
    the next. A batch holds about ``nbytes`` of planes (this thread's kept buffers)."""
    step = dset.chunks[1]  # type: ignore[index]
    batch = max(1, nbytes // (step * sum(count for _, count in planes)))
    for k0 in range(0, len(blocks), batch):
        part = blocks[k0 : k0 + batch]
        columns = [_Unshuffled(*plane, step, len(part), i) for i, plane in enumerate(planes)]
        for block in part:
            stored, src = _stored(fd, dset, block, digests, record)
            for column in columns:
                column.add(block, stored, src, dset, digests)
        yield k0, columns


def _plane_streams(
    stored: np.ndarray, dset: StoredDataset, first: int, count: int
) -> tuple[int, int, int, int] | None:
    """Where the streams of planes ``[first, first + count)`` lie in the checked Blosc buffer
    ``stored`` of a block of ``dset``: (start, end, codec version, codec flags) when it holds
    each plane as one compressed stream of its own (a Blosc block of one plane: how
    `blosc_blocks` stores them) and these follow one another, each after its size; else None.
    """
    nplanes, step = dset.chunks  # type: ignore[misc]
    try:
        _, version, flags, typesize, size, blocksize = _HEAD.unpack_from(stored)
        if flags & _MEMCPYED or typesize != 1 or blocksize != step or size != nplanes * step:
            return None
        starts = struct.unpack_from(f"<{count}I", stored, _BLOSC_HEAD + 4 * first)
        end = starts[0]
        for start in starts:
            if start != end:
                return None
            end = start + 4 + _SIZE.unpack_from(stored, start)[0]
    except struct.error:  # an offset past the end
        return None
    if not starts[0] < end <= len(stored):
        return None
    return starts[0], end, version, flags & _CODEC


#: a Blosc header: format, codec version, flags, item size, bytes, block size (and then the
#: compressed size)
_HEAD = struct.Struct("<BBBBII")
_SIZE = struct.Struct("<i")
_memmove = ctypes.memmove


#: bytes of planes `DeferredPlanes` stages at a time (this thread's buffers, reused: the
#: rows go from there into the caller's output while they are in the CPU's cache)
_STAGED_BYTES = 512 << 10


class DeferredPlanes:
    """Byte planes of columns of a (planes, rows) uint8 dataset over rows [lo, hi), located
    but not decoded (where `takes`): `into` decodes them once into the caller's arrays, a batch of
    stored blocks at a time through this thread's buffers (c-blosc's unshuffle, as
    `read_planes` puts many rows into place).

    A read of many rows into a larger output (`mica.archive.aca_l0.get_slot_data`) would
    otherwise hold the columns' rows beside the output: twice the heap, which glibc gave
    back at the end of each call (its trim threshold is twice the largest block freed), so
    every call faulted its pages in again (1,400 minor faults for 10 days of TIME and
    TEMPCCD, a third of the call, measured).

    Holds its own descriptor of the file (readable after the caller's is closed, and after
    the file is replaced); raises `DamagedStoreError` as `read_planes` does, when decoded.
    """

    def __init__(
        self,
        fd: int,
        dset: StoredDataset,
        planes: list[tuple[int, int]],
        rows: slice,
        digests: ChunkDigests,
    ):
        self.file = Descriptor(fd)
        self.dset, self.planes, self.digests = dset, planes, digests
        self.lo, self.hi = rows.start, rows.stop

    @staticmethod
    def takes(dset: StoredDataset, planes: list[tuple[int, int]], rows: slice) -> bool:
        """Whether these planes over these rows (of a (planes, rows) uint8 dataset) are
        put into rows this way: not for items of 256 bytes or more, or a stored block
        without its filter (`read_planes` reads them)."""
        step = dset.chunks[1]  # type: ignore[index]
        blocks = range(rows.start // step, -(-rows.stop // step))
        return rows.stop > rows.start and _unshuffles(dset, planes, blocks)

    def column(self, k: int, dtype: np.dtype) -> DeferredColumn:
        """The ``k``-th plane set's column, of ``dtype`` (as stored: its planes' items)."""
        return DeferredColumn(self, k, dtype)

    def into(self, columns: list[tuple[DeferredColumn, np.ndarray]]) -> None:
        """Rows [lo, hi) of each of its ``columns`` into the array beside it (``hi - lo``
        rows of any dtype and strides: numpy casts them), then close the file."""
        record = self.digests.check_meta(self.dset.name, self.dset.dtype, self.dset.shape)
        step = self.dset.chunks[1]  # type: ignore[index]
        blocks = range(self.lo // step, -(-self.hi // step))
        planes = [self.planes[column.k] for column, _ in columns]
        fd, staged = self.file.fd, _STAGED_BYTES
        for k0, unshuffled in _batches(fd, self.dset, planes, blocks, self.digests, record, staged):
            row0 = (blocks[0] + k0) * step  # the batch's first row in the dataset
            a, b = max(self.lo, row0), min(self.hi, row0 + unshuffled[0].rows)
            for i, (batch, (column, dest)) in enumerate(zip(unshuffled, columns)):
                rows, at = _addressed_buffer(f"staged{i}", batch.rows * batch.count)
                batch.unshuffle(at, self.dset, self.digests)
                rows = rows.reshape(batch.rows, batch.count)
                values = rows[a - row0 : b - row0].view(column.dtype.base)
                dest[a - self.lo : b - self.lo] = values.reshape(b - a, *column.dtype.shape)
        self.file.close()


class DeferredColumn:
    """One column of `DeferredPlanes` (``len``: its rows; ``dtype``: as stored)."""

    def __init__(self, source: DeferredPlanes, k: int, dtype: np.dtype):
        self.source, self.k, self.dtype = source, k, dtype

    def __len__(self) -> int:
        return self.source.hi - self.source.lo


def decode_deferred(columns: list[tuple[DeferredColumn, np.ndarray]]) -> None:
    """Each deferred column into the array beside it (`DeferredPlanes.into`), the stored
    blocks of each source read and checked once for all its columns."""
    by_source: dict[DeferredPlanes, list[tuple[DeferredColumn, np.ndarray]]] = {}
    for column, dest in columns:
        by_source.setdefault(column.source, []).append((column, dest))
    for source, pairs in by_source.items():
        source.into(pairs)


class _Unshuffled:
    """One column's byte planes of consecutive stored blocks gathered into one Blosc buffer
    that describes them as blocks of items of ``count`` bytes, shuffled, then put into rows
    by decompressing it: c-blosc decodes each block's planes and unshuffles them, in one call
    for the blocks (a copy plane by plane is a strided write of one byte a row, several
    times slower; a call a block cost a long read of a few columns a third more, measured).

    Up to `_MAX_SPLITS` planes, a block of the buffer is split into one stream a plane
    (c-blosc's split blocks), so each plane's stream is taken from its stored block as it
    is, compressed: decoded once, into place, where decoding the planes first
    (``blosc_getitem``) and storing them as they are cost two more copies of every byte,
    a tenth of a day's read of two columns (instructions, measured). A stored block that
    does not hold each plane as a stream of its own (`_plane_streams`), or whose streams of
    these planes do not follow one another, is decoded and its planes stored as they are;
    so are wider plane sets, as one stream a block.

    The buffer (this thread's ``unshuffle<index>.<count>``, kept: fresh memory for it cost
    as much as the rest of the read): a 16-byte header (one block of ``count * step`` bytes
    per stored block), the offset of each block, then the blocks' streams, each after its
    size.
    """

    def __init__(self, first: int, count: int, step: int, nblocks: int, index: int):
        self.first, self.count, self.step, self.nblocks = first, count, step, nblocks
        self.rows = nblocks * step
        self.size = count * step  # of a block, decoded
        self.split = count <= _MAX_SPLITS
        self.starts: list[int] = []  # of each block in the buffer
        self.at = _BLOSC_HEAD + 4 * nblocks  # where the next block goes
        self.codec: tuple[int, int] | None = None  # (version, flags) of the streams
        # at most each plane stored as it is, after its size
        total = self.at + nblocks * ((count if self.split else 1) * 4 + self.size)
        # a buffer per item size: a read alternating between groups of two item sizes
        # (TIME's 8 bytes, TEMPCCD's 4) would otherwise reallocate one
        self.buffer, self.address = _addressed_buffer(f"unshuffle{index}.{count}", total)

    def add(
        self, block: int, stored: np.ndarray, src: int, dset: StoredDataset, digests: ChunkDigests
    ) -> None:
        """Block ``block``'s planes, from its checked Blosc buffer ``stored`` at address
        ``src``, after the blocks added before."""
        at = self.at
        self.starts.append(at)
        if self.split:
            key = (block, self.first, self.count)
            streams = dset.streams.get(key, _UNKNOWN)
            if streams is _UNKNOWN:
                streams = dset.streams[key] = _plane_streams(stored, dset, self.first, self.count)
            if streams is not None and self.codec in (None, streams[2:]):
                a, b = streams[0], streams[1]
                _memmove(self.address + at, src + a, b - a)
                self.at = at + b - a
                self.codec = streams[2:]
                return
        # decoded, and stored as they are: all planes as one stream, or each after its size
        nbytes, start = self.size, self.first * self.step
        if not self.split:
            _SIZE.pack_into(self.buffer, at, nbytes)
            _decode(src, dset, start, nbytes, self.address + at + 4, digests)
            self.at = at + 4 + nbytes
            return
        out = self.buffer[at : at + self.count * 4 + nbytes].reshape(self.count, -1)
        planes, at_planes = _addressed_buffer("planes", nbytes)
        _decode(src, dset, start, nbytes, at_planes, digests)
        out[:, :4] = np.frombuffer(_SIZE.pack(self.step), np.uint8)
        out[:, 4:] = planes.reshape(self.count, self.step)
        self.at = at + out.size

    def unshuffle(self, rows: np.ndarray | int, dset: StoredDataset, digests: ChunkDigests) -> None:
        """Every block's rows into ``rows`` ((blocks * step, count), contiguous; or its
        address)."""
        version, codec = self.codec or (1, 1 << 5)  # (streams stored as they are: any codec)
        flags = _SHUFFLED | codec | (0 if self.split else _NOT_SPLIT)
        nbytes = self.nblocks * self.size
        head = (2, version, flags, self.count, nbytes, self.size)
        _HEAD.pack_into(self.buffer, 0, *head)
        struct.pack_into(f"<I{self.nblocks}I", self.buffer, 12, self.at, *self.starts)
        dest = rows if isinstance(rows, int) else rows.ctypes.data
        if _c_blosc().blosc_decompress_ctx(self.address, dest, nbytes, 1) != nbytes:
            raise digests.damaged(f"/{dset.name} does not decompress")


def _blosc_runs(
    stored: Any, planes: list[tuple[int, int]], step: int, at: int, rows: int, nbytes: int
) -> list[tuple[int, int]]:
    """The byte ranges to decode of a Blosc buffer of ``nbytes`` holding planes of ``step``
    bytes for rows [at, at + rows) of the ``planes`` (first, count): the Blosc blocks holding
    them (from its header), consecutive ones merged, so no block is decoded twice (c-blosc
    decodes whole blocks)."""
    size = int.from_bytes(bytes(stored[8:12]), "little") or nbytes  # the header's blocksize
    if rows == step or size >= step:  # whole planes (the blocks of a few rows of each)
        if len(planes) == 1:
            first, count = planes[0]
            stop = -(-(first + count) * step // size) * size
            return [(first * step // size * size, min(stop, nbytes))]
        starts = np.array([first * step for first, _ in planes])
        stops = np.array([(first + count) * step for first, count in planes])
    else:  # a range of bytes per plane
        starts = np.concatenate([np.arange(f, f + c) for f, c in planes]) * step + at
        stops = starts + rows
    order = np.argsort(starts, kind="stable")
    first_block = starts[order] // size
    end_block = np.maximum.accumulate(-(-stops[order] // size))  # past the last
    breaks = np.flatnonzero(first_block[1:] > end_block[:-1])  # a gap before the next run
    run_starts = first_block[np.concatenate([[0], breaks + 1])] * size
    run_stops = np.minimum(end_block[np.concatenate([breaks, [len(end_block) - 1]])] * size, nbytes)
    return list(zip(run_starts.tolist(), run_stops.tolist()))


def read_rows_of(
    fd: int, dset: StoredDataset, lo: int, hi: int, digests: ChunkDigests
) -> np.ndarray:
    """Rows [lo, hi) of a dataset chunked along its first axis (or contiguous), checked."""
    hi = min(hi, dset.shape[0])
    lo = min(lo, hi)
    if dset.chunks is None:  # contiguous: read and checked whole
        offset, size, _ = dset.blocks[0]
        data = np.empty(dset.shape, dset.dtype)
        if size and os.preadv(fd, [data.reshape(-1).view(np.uint8)], offset) != size:
            raise digests.damaged(f"/{dset.name} is truncated")
        digests.check_data(dset.name, data)
        return data[lo:hi]
    record = digests.check_meta(dset.name, dset.dtype, dset.shape)
    out = np.empty((hi - lo, *dset.shape[1:]), dset.dtype)
    read_blocks(fd, dset.name, dset.chunks[0], dset.blocks, lo, out, digests, record)
    return out


def _block_damaged(
    digests: ChunkDigests | None, path: str, name: str, block: int, step: int, what: str
) -> DamagedStoreError:
    """The error of block ``block`` (of ``step`` rows) of dataset ``name``: ``what``; named by
    the chunk's ``digests``, else with the file's ``path``."""
    if digests is not None:
        return digests.block_damaged(name, block, block * step, what)
    where = f"{path}: /{name.lstrip('/')} chunk at row {block * step} (block {block})"
    return DamagedStoreError.at(Path(path), f"{where} {what}")


def read_blocks(
    fd: int,
    name: str,
    step: int,
    blocks: Sequence[tuple[int, int, int]] | Mapping[int, tuple[int, int, int]],
    lo: int,
    out: np.ndarray,
    digests: ChunkDigests | None,
    record: DatasetDigests | None = None,
    path: str = "",
) -> None:
    """Rows [lo, lo + len(out)) of dataset ``name``, stored in Blosc blocks of ``step`` whole
    rows at ``blocks`` ((file offset, stored size, filter mask) of each, by block number: a
    sequence in row order or a mapping holding the blocks of the rows; a block HDF5 has no
    location for at offset -1) of the file open as ``fd``, into ``out``
    (contiguous, of the dataset's dtype and row shape). Each block is read once into this
    thread's buffer and checked against ``digests`` (``record``: the dataset's; None: not
    checked, a damaged block is then named with ``path``); a block whole within the rows is
    decoded straight into them, of the others c-blosc decodes only the asked rows' items
    (``blosc_getitem``).

    Raises
    ------
    DamagedStoreError
        A block is missing, truncated, does not match its digest or does not decode.
    """
    hi = lo + len(out)
    per_row = out.itemsize * math.prod(out.shape[1:])  # (np.prod: 8 us a call)
    flat = out.view(np.uint8).reshape(len(out), per_row)  # each row's bytes
    c_blosc, raw = _c_blosc(), ctypes.c_size_t()

    def damaged(block: int, what: str) -> DamagedStoreError:
        return _block_damaged(digests, path, name, block, step, what)

    for block in range(lo // step, -(-hi // step) if hi > lo else 0):
        offset, size, skipped = blocks[block]
        if offset < 0:
            raise damaged(block, "is missing")
        stored, address = _addressed_buffer("stored", size)
        if os.preadv(fd, [stored], offset) != size:
            raise damaged(block, "is truncated")
        if digests is not None:
            digests.check_block(name, block, stored, record)
        row0 = block * step
        a, b = max(lo, row0), min(hi, row0 + step)
        dest = flat[a - lo : b - lo]
        try:
            if skipped:  # the filter was not applied to this block: stored as is
                if size != step * per_row:
                    raise ValueError(f"it has {size} bytes, not {step * per_row}")
                dest[:] = stored.reshape(step, per_row)[a - row0 : b - row0]
            elif c_blosc is None:  # blosc2 (whole buffers only)
                if b - a == step:
                    blosc_decode(stored, dest.reshape(-1))
                else:
                    whole = thread_buffer("block", step * per_row)
                    blosc_decode(stored, whole)
                    dest[:] = whole.reshape(step, per_row)[a - row0 : b - row0]
            else:  # c-blosc at the kept buffer's address (numpy's ctypes.data: 2-3 us a call)
                valid = c_blosc.blosc_cbuffer_validate(address, size, ctypes.byref(raw))
                if valid < 0 or raw.value != step * per_row:
                    raise ValueError(f"its Blosc header does not describe {step * per_row} bytes")
                nbytes, at = (b - a) * per_row, dest.ctypes.data
                if b - a == step:
                    got = c_blosc.blosc_decompress_ctx(address, at, nbytes, 1)
                else:  # the asked rows' items alone, in the type size its header gives (the
                    # dtype's, or 1 for rows of items over 255 bytes)
                    items, part = divmod(per_row, int(stored[3]) or 1)
                    if part:
                        raise ValueError(f"its type size {stored[3]} does not divide a row")
                    got = c_blosc.blosc_getitem(address, (a - row0) * items, (b - a) * items, at)
                if got != nbytes:
                    raise ValueError("Blosc could not decode it")
        except ValueError as exc:
            raise damaged(block, f"does not decode: {exc}") from exc


class Descriptor:
    """A duplicate of an open file's descriptor, closed by `close` or once nothing holds it
    (rows read later, and their narrowed copies, share one): no file object, whose
    collection would warn of an unclosed file."""

    def __init__(self, fd: int):
        self.fd = os.dup(fd)
        self.close = weakref.finalize(self, os.close, self.fd)


class ChunkedRows:
    """Rows [start, stop) of a Blosc-compressed dataset chunked along its first axis only,
    located but not yet decompressed, optionally narrowed by a boolean ``keep`` over those
    rows.

    Holds its own descriptor of the file, so it stays readable after the HDF5 file is closed
    and even after the file is removed (chunk files are replaced by new names, never
    rewritten). Each stored block is read, checked and decoded by `read_blocks`, whole (edge
    blocks padded, as HDF5 stores them). Raises `DamagedStoreError` (an OSError) naming the
    file, the block and the repair command if a block is missing, truncated, does not decode
    to its size or, given the chunk's ``digests``, does not match its digest (checked on the
    bytes read, before they are decoded).
    """

    def __init__(
        self, dset: h5py.Dataset, start: int, stop: int, digests: ChunkDigests | None = None
    ):
        self.path = Path(dset.file.filename)
        self.name = dset.name
        self.dtype = dset.dtype
        self.start, self.stop = start, stop
        self.row_shape = dset.shape[1:]
        self.chunk_shape = dset.chunks
        self.keep: np.ndarray | None = None
        self.digests = digests
        self.record = (
            None if digests is None else digests.check_meta(self.name, self.dtype, dset.shape)
        )
        fd = dset.file.id.get_vfd_handle()
        size = os.fstat(fd).st_size
        rows = dset.chunks[0]
        dsid, origin = dset.id, [0] * len(dset.chunks)
        #: block number -> (file offset, stored size, filter mask), in row order
        self.located: dict[int, tuple[int, int, int]] = {}
        for row0 in range(start - start % rows, stop, rows):
            origin[0] = row0
            info = dsid.get_chunk_info_by_coord(tuple(origin))
            if info.byte_offset is None or info.byte_offset + info.size > size:
                what = "is missing or truncated"
                raise _block_damaged(digests, str(self.path), self.name, row0 // rows, rows, what)
            self.located[row0 // rows] = (info.byte_offset, info.size, info.filter_mask)
        self._descriptor = Descriptor(fd)  # shared by narrowed copies
        self.fd = self._descriptor.fd

    def close(self) -> None:
        """Close the file descriptor now (this and every narrowed copy become unreadable);
        without it, it is closed once the last of them is gone."""
        self._descriptor.close()

    def __len__(self) -> int:
        return self.stop - self.start if self.keep is None else int(np.count_nonzero(self.keep))

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.row_shape)

    def narrowed(self, keep: np.ndarray) -> ChunkedRows:
        """These rows where ``keep`` (a boolean over the current rows) is true."""
        if self.keep is not None:  # over the rows kept so far: make it one over all rows
            full = np.zeros_like(self.keep)
            full[np.flatnonzero(self.keep)[keep]] = True
            keep = full
        out = copy.copy(self)
        out.keep = keep
        return out

    def _decode(self, block: int, out: np.ndarray) -> np.ndarray:
        """Block ``block`` decoded whole into ``out`` (a byte buffer of its size), as rows."""
        rows = out.view(self.dtype).reshape(self.chunk_shape)
        step, digests = self.chunk_shape[0], self.digests
        at, path = block * step, str(self.path)
        read_blocks(self.fd, self.name, step, self.located, at, rows, digests, self.record, path)
        return rows

    def each_chunk(self, sink: Callable[[np.ndarray, int], None]) -> None:
        """``sink(chunk, row0)`` for every located chunk, in row order: ``chunk`` is the whole
        decoded chunk (edge chunks padded, as HDF5 stores them), valid during the call only.

        With several chunks, a worker thread reads and decodes the next chunks while the
        sink copies this one: numpy releases the GIL while it copies, and c-blosc's calls
        while they decode, so the copy and the first touch of the caller's output overlap
        decompression (measured on 105 image chunks: 47 ms in turn, 37 ms overlapped, 30 ms
        for decompression alone).
        """
        nbytes = math.prod(self.chunk_shape) * self.dtype.itemsize
        step = self.chunk_shape[0]
        if len(self.located) < 2:
            for block in self.located:
                sink(self._decode(block, thread_buffer("out0", nbytes)), block * step)
            return
        free: queue.SimpleQueue[np.ndarray | None] = queue.SimpleQueue()
        for i in range(3):  # one being copied, one decoded and waiting, one being decoded
            free.put(thread_buffer(f"out{i}", nbytes))
        ready: queue.SimpleQueue[tuple[int, np.ndarray, np.ndarray] | BaseException | None]
        ready = queue.SimpleQueue()

        def decode_all() -> None:
            try:
                for block in self.located:
                    out = free.get()
                    if out is None:  # the caller stopped
                        return
                    ready.put((block * step, out, self._decode(block, out)))
                ready.put(None)
            except BaseException as exc:  # handed to the caller, which raises it
                ready.put(exc)

        worker = threading.Thread(target=decode_all, name="mica-chunk-decode", daemon=True)
        worker.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                row0, out, rows = item
                sink(rows, row0)
                free.put(out)
        finally:
            for _ in range(3):  # a worker waiting for a buffer stops at the first None
                free.put(None)
            worker.join()

    def each_block(self, sink: Callable[[np.ndarray, int], None]) -> None:
        """``sink(values, at)`` for consecutive blocks of the rows: ``values``
        go to rows [at, at + len(values)) of `len(self)`; valid during the call only."""
        before = None if self.keep is None else np.cumsum(self.keep) - self.keep

        def put(chunk: np.ndarray, row0: int) -> None:
            lo = max(self.start, row0)
            hi = min(self.stop, row0 + len(chunk))
            values = chunk[lo - row0 : hi - row0]
            if before is None:
                sink(values, lo - self.start)
            else:
                keep = self.keep[lo - self.start : hi - self.start]
                if keep.any():
                    sink(values[keep], int(before[lo - self.start]))

        self.each_chunk(put)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.empty(self.shape, dtype=self.dtype)

        def put(values: np.ndarray, at: int) -> None:
            out[at : at + len(values)] = values

        self.each_block(put)
        return out if dtype is None else out.astype(dtype, copy=False)


def read_rows(
    dset: h5py.Dataset, start: int, stop: int, digests: ChunkDigests | None = None
) -> np.ndarray:
    """Rows [start, stop) of a dataset chunked along its first axis, checked against the
    chunk's ``digests`` when given."""
    if is_blosc_chunked(dset) and stop > start:
        rows = ChunkedRows(dset, start, stop, digests)
        try:
            return np.asarray(rows)
        finally:
            rows.close()
    if digests is not None:  # decoded by HDF5 (e.g. its filters no longer read as Blosc)
        digests.check_rows(dset.id, dset.name, start, stop, dset.dtype, dset.shape)
    return dset[start:stop]


@dataclass(frozen=True)
class BlockMap:
    """Where a dataset chunked along its first axis keeps its stored blocks.

    ``blocks`` holds, per block in row order, its (file offset, stored size, HDF5 filter
    mask); a block HDF5 has no location for is ``(-1, 0, 0)``. ``blosc`` says whether the
    dataset is filtered by Blosc alone (else `StoredBlocks` leaves it to HDF5).
    """

    dtype: np.dtype
    shape: tuple[int, ...]
    rows: int
    blosc: bool
    blocks: tuple[tuple[int, int, int], ...]

    @classmethod
    def recorded(cls, record: DatasetDigests) -> BlockMap | None:
        """The map a chunk's record gives (None: it has no `DatasetDigests.blocks`)."""
        if record.blocks is None or record.chunks is None:
            return None
        shape = record.shape
        return cls(np.dtype(record.dtype), shape, record.chunks[0], True, record.blocks)

    @classmethod
    def learnt(cls, dset: StoredDataset) -> BlockMap | None:
        """The map of a dataset as `stored_layout` learnt it (None: not `readable`)."""
        chunks = dset.chunks
        if not dset.readable:
            return None
        if chunks is None or tuple(chunks[1:]) != dset.shape[1:]:
            return cls(dset.dtype, dset.shape, 0, False, ())
        return cls(dset.dtype, dset.shape, chunks[0], True, dset.blocks)

    @classmethod
    def of(cls, dsid: h5py.h5d.DatasetID) -> BlockMap:
        """The map of an open dataset (its chunk index walked once)."""
        shape = tuple(dsid.get_space().shape)
        plist = dsid.get_create_plist()
        chunks = plist.get_chunk() if plist.get_layout() == h5py.h5d.CHUNKED else None
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
        blosc = (
            chunks is not None
            and filters == [hdf5plugin.BLOSC_ID]
            and len(shape) >= 1
            and tuple(chunks[1:]) == shape[1:]
        )
        if not blosc:
            return cls(dsid.dtype, shape, 0, False, ())
        rows = int(chunks[0])
        found = [(-1, 0, 0)] * -(-shape[0] // rows)

        def put(info: Any) -> None:
            block = info.chunk_offset[0] // rows
            if block < len(found):
                found[block] = (info.byte_offset, info.size, info.filter_mask)

        dsid.chunk_iter(put)
        return cls(dsid.dtype, shape, rows, True, tuple(found))


@functools.cache
def _c_blosc() -> Any:
    """c-blosc from hdf5plugin's Blosc filter library (the code HDF5 decodes these blocks with;
    no import of blosc2, whose 250 ms start-up would be most of a first read): the loaded
    library with ``blosc_cbuffer_validate``, ``blosc_decompress_ctx``, ``blosc_getitem``,
    ``blosc_set_blocksize`` and ``blosc_set_splitmode`` typed, or None when it does not load
    or offer them. Each decoding call decodes into the caller's buffer on the calling thread
    with a context of its own (safe from any thread)."""
    try:
        lib = ctypes.CDLL(os.path.join(hdf5plugin.PLUGIN_PATH, "libh5blosc.so"))
        validate, decompress = lib.blosc_cbuffer_validate, lib.blosc_decompress_ctx
        getitem = lib.blosc_getitem
        lib.blosc_set_blocksize.argtypes = [ctypes.c_size_t]
        lib.blosc_set_splitmode.argtypes = [ctypes.c_int]
    except (OSError, AttributeError):
        return None
    validate.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]
    validate.restype = ctypes.c_int
    decompress.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    decompress.restype = ctypes.c_int
    getitem.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    getitem.restype = ctypes.c_int
    return lib


#: c-blosc's split mode of its default (``BLOSC_FORWARD_COMPAT_SPLIT``) and the one that keeps
#: a block of the size asked for (``BLOSC_NEVER_SPLIT``): a split codec's blocks are never
#: smaller than 64 kB
_SPLIT_DEFAULT, _SPLIT_NEVER = 4, 2
#: held while `blosc_blocks` sets c-blosc's process-wide block size
_BLOCKS_LOCK = threading.Lock()


@contextlib.contextmanager
def blosc_blocks(nbytes: int) -> Iterator[None]:
    """Blosc blocks of ``nbytes`` bytes (0: c-blosc's own choice, up to 512 kB) in what the
    HDF5 Blosc filter compresses meanwhile.

    c-blosc decodes whole blocks, so a block size is what a short read decodes at least:
    `read_planes` and `read_rows_of` decode only the blocks holding the asked bytes. The
    filter takes no block size of its own; it compresses with c-blosc's global settings, in
    the library `_c_blosc` loads (hdf5plugin's, the one HDF5 runs), so they are set here and
    put back to c-blosc's defaults on leaving, under a lock (other threads writing Blosc
    through HDF5 meanwhile would get these blocks too: the store's writers all come through
    here). HDF5 encodes a block when it leaves its chunk cache: flush what is written before
    leaving (``Dataset.flush``). Any block size decodes the same way: without the library
    nothing is set.
    """
    lib = _c_blosc() if nbytes else None
    if lib is None:
        yield
        return
    with _BLOCKS_LOCK:
        lib.blosc_set_blocksize(nbytes)
        lib.blosc_set_splitmode(_SPLIT_NEVER)
        try:
            yield
        finally:
            lib.blosc_set_blocksize(0)
            lib.blosc_set_splitmode(_SPLIT_DEFAULT)


def blosc_decode(src: np.ndarray, out: np.ndarray) -> None:
    """Decode the Blosc buffer ``src`` (uint8) into ``out`` (contiguous, its exact size), on
    one thread.

    Raises
    ------
    ValueError
        The buffer's header does not describe ``out``'s size within ``src``'s bytes, or it
        does not decode.
    """
    c_blosc = _c_blosc()
    if c_blosc is None:  # blosc2 decodes c-blosc's buffers too
        with one_blosc_thread:
            blosc2 = one_blosc_thread.adopt_blosc2()
            raw, packed, _ = blosc2.get_cbuffer_sizes(src)
            if raw != out.nbytes or packed > len(src):
                raise ValueError(f"its Blosc header says {raw} bytes from {packed}")
            blosc2.decompress(src, dst=out)
        return
    raw = ctypes.c_size_t()
    valid = c_blosc.blosc_cbuffer_validate(src.ctypes.data, len(src), ctypes.byref(raw))
    if valid < 0 or raw.value != out.nbytes:
        raise ValueError(f"its Blosc header does not describe {out.nbytes} bytes")
    if c_blosc.blosc_decompress_ctx(src.ctypes.data, out.ctypes.data, out.nbytes, 1) != out.nbytes:
        raise ValueError("Blosc could not decode it")


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class StoredBlocks:
    """Rows of the datasets of one chunk file, read as their stored blocks: each block read
    once (``os.preadv`` at its offset), checked against the chunk's ``digests`` and decoded
    by c-blosc straight into the output (`blosc_decode`).

    The blocks' locations come from the chunk's digests record when it holds them, else from
    `stored_layout` (learnt once per process and file), else from HDF5, opened on first need
    and kept open until `close` only (h5py files are never kept open across calls: a later
    ``h5py.File(path, "r+")`` in the process would fail). A dataset not filtered by Blosc
    alone is read by HDF5 (`h5`), its blocks checked by the caller
    (`mica.engine.h5chunks.read_slab`).

    Raises `DamagedStoreError` (an OSError) for a missing dataset or block, a truncated
    file, a block that fails its digest or does not decode; FileNotFoundError when the file
    is gone, or was replaced while this was open (the caller starts again).
    """

    def __init__(self, path: str | os.PathLike, digests: ChunkDigests | None = None):
        self.path = os.fspath(path)
        self.digests = digests
        self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self._fid: h5py.h5f.FileID | None = None
        self._recorded: dict[str, BlockMap] = {}  # the maps ``digests`` give
        self._learnt: StoredFile | None = None  # as `stored_layout` learnt the file
        self._identity = _identity(os.fstat(self.fd))

    def close(self) -> None:
        """Close the file (and HDF5's, if it was opened)."""
        if self._fid is not None:
            self._fid.close()
            self._fid = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> StoredBlocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def h5(self) -> h5py.h5f.FileID:
        """HDF5's id of the file (opened now if it was not), the same file as ``fd``."""
        if self._fid is None:
            fid = open_h5_id(self.path)
            if _identity(os.fstat(fid.get_vfd_handle())) != self._identity:
                fid.close()
                raise FileNotFoundError(errno.ENOENT, "store chunk replaced", self.path)
            self._fid = fid
        return self._fid

    def map(self, name: str) -> BlockMap:
        """Dataset ``name``'s `BlockMap`: as the chunk's digests record it, else as HDF5
        finds it (KeyError: no such dataset, none recorded)."""
        found = self._recorded.get(name)
        if found is None and self.digests is not None and name in self.digests.datasets:
            found = BlockMap.recorded(self.digests.dataset(name))
        if found is None:
            if self._learnt is None:
                self._learnt = stored_layout(Path(self.path), self.fd)
            if self._learnt is not None and name in self._learnt.datasets:
                found = BlockMap.learnt(self._learnt.datasets[name])
        if found is None:  # a file `stored_layout` does not read: HDF5 locates it
            try:
                dsid = h5py.h5d.open(self.h5(), name.encode())
            except KeyError:
                if self.digests is not None and name in self.digests.datasets:
                    raise self.digests.damaged(f"/{name} is missing") from None
                raise
            found = BlockMap.of(dsid)
        self._recorded[name] = found
        return found

    def rows(self, name: str) -> int:
        """The number of rows of dataset ``name``."""
        return self.map(name).shape[0]

    def read(
        self, name: str, lo: int = 0, hi: int | None = None, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Rows [lo, hi) (None: to the end; clipped to the dataset) of a dataset `BlockMap.blosc`
        says is Blosc-filtered, checked against the chunk's digests (its dtype and shape,
        then each block's stored bytes), into ``out`` (the rows' length) or a new array."""
        bmap = self.map(name)
        if not bmap.blosc:
            raise ValueError(f"{name} is not filtered by Blosc alone: read it with HDF5")
        record = None
        if self.digests is not None:
            record = self.digests.check_meta(name, bmap.dtype, bmap.shape)
        hi = bmap.shape[0] if hi is None else min(hi, bmap.shape[0])
        lo = min(lo, hi)
        if out is None:
            out = np.empty((hi - lo, *bmap.shape[1:]), dtype=bmap.dtype)
        elif not out.flags.c_contiguous or out.shape != (hi - lo, *bmap.shape[1:]):
            raise ValueError(f"{name}: out must be contiguous, of {hi - lo} rows")
        read_blocks(self.fd, name, bmap.rows, bmap.blocks, lo, out, self.digests, record, self.path)
        return out
