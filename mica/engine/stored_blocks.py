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
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin
import numpy as np

from mica.engine.h5chunks import ChunkDigests, open_h5_id

__all__ = ["StoredDataset", "StoredFile", "read_planes", "read_rows_of", "stored_layout"]

#: layouts of the chunk files read lately, by path (`stored_layout`)
_LAYOUTS: OrderedDict[Path, tuple[tuple[int, int, int], StoredFile | None]] = OrderedDict()
_LAYOUTS_MAX = 512
_LOCK = threading.Lock()  # readers of several threads share the layouts
_local = threading.local()


@dataclass(frozen=True)
class StoredDataset:
    """One dataset of a chunk file as stored: dtype, shape, HDF5 chunk shape (None:
    contiguous) and, per block along its chunked axis, (file offset, stored size, filter mask)
    (a contiguous dataset: its one extent, filter mask 0)."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    chunks: tuple[int, ...] | None
    blocks: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class StoredFile:
    """A chunk file's datasets as stored, and the (inode, size, mtime) they were learnt at."""

    state: tuple[int, int, int]
    datasets: dict[str, StoredDataset]


def _state(fd: int) -> tuple[int, int, int]:
    st = os.fstat(fd)
    return st.st_ino, st.st_size, st.st_mtime_ns


def stored_layout(path: Path, fd: int) -> StoredFile | None:
    """The layout of the chunk file open as ``fd`` (opened by the caller from ``path``),
    learnt once per process while the file's (inode, size, mtime) stays; None when it is not
    one this module reads (a dataset with other filters, a block twice or out of order).

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
    if _getitem() is None:
        return None
    fid = open_h5_id(path)
    try:
        if _state(fid.get_vfd_handle()) != state:
            raise FileNotFoundError(2, "store chunk replaced meanwhile", str(path))
        datasets = _datasets(fid)
    finally:
        fid.close()
    layout = None if datasets is None else StoredFile(state, datasets)
    with _LOCK:
        _LAYOUTS[path] = (state, layout)
        if len(_LAYOUTS) > _LAYOUTS_MAX:
            _LAYOUTS.popitem(last=False)
    return layout


def _datasets(fid: h5py.h5f.FileID) -> dict[str, StoredDataset] | None:
    """Every dataset at the root of an open file, as stored (None: one not read here)."""
    root = h5py.h5g.open(fid, b"/")
    out = {}
    for k in range(root.get_num_objs()):
        name = root.get_objname_by_idx(k)
        dset = h5py.h5d.open(root, name)
        try:
            shape = tuple(dset.shape)
            plist = dset.get_create_plist()
            if plist.get_layout() == h5py.h5d.CONTIGUOUS:
                if plist.get_nfilters():
                    return None
                offset = dset.get_offset()
                nbytes = int(np.prod(shape)) * dset.dtype.itemsize
                blocks = ((0, 0, 0),) if offset is None else ((offset, nbytes, 0),)
                chunks = None
            else:
                filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
                if filters != [hdf5plugin.BLOSC_ID]:
                    return None
                chunks = tuple(plist.get_chunk())
                axis = next((i for i, (c, s) in enumerate(zip(chunks, shape)) if c < s), 0)
                found = []
                for i in range(dset.get_num_chunks()):
                    info = dset.get_chunk_info(i)
                    if any(o for j, o in enumerate(info.chunk_offset) if j != axis):
                        return None  # blocks along one axis only
                    found.append((info.chunk_offset[axis] // chunks[axis], info))
                found.sort(key=lambda item: item[0])
                if [b for b, _ in found] != list(range(len(found))):
                    return None  # a block missing: HDF5's read (and its checks) says which
                blocks = tuple((i.byte_offset, i.size, i.filter_mask) for _, i in found)
            text = name.decode()
            out[text] = StoredDataset(text, dset.dtype, shape, chunks, blocks)
        finally:
            dset.close()
    return out


# --- decoding -----------------------------------------------------------------------------
_LIB: list[Any] = []


def _getitem() -> Any:
    """c-blosc's ``blosc_getitem`` from hdf5plugin's Blosc filter library (None: it does not
    load). It decodes into the caller's buffer on the calling thread with a context of its
    own (no global state: safe from any thread)."""
    if not _LIB:
        try:
            lib = ctypes.CDLL(str(Path(hdf5plugin.PLUGIN_PATH) / "libh5blosc.so"))
            getitem = lib.blosc_getitem
            getitem.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
            getitem.restype = ctypes.c_int
            _LIB.append(getitem)
        except (OSError, AttributeError):
            _LIB.append(None)
    return _LIB[0]


def _stored(fd: int, path: Path, dset: StoredDataset, block: int, digests: ChunkDigests) -> Any:
    """Block ``block`` of ``dset`` as stored, read and checked against its digest (into a
    buffer of this thread, valid until its next call)."""
    offset, size, _ = dset.blocks[block]
    buf = _buffer(size, "stored")
    if os.preadv(fd, [buf], offset) != size:
        row = block * (dset.chunks or (0,))[0]
        raise digests.damaged(f"/{dset.name} chunk at row {row} (block {block}) is truncated")
    digests.check_block(dset.name, block, buf)
    return buf


def _decode(
    stored: Any, dset: StoredDataset, start: int, count: int, out: np.ndarray, digests: Any
) -> None:
    """Items [start, start + count) (in the dataset's item size) of a checked Blosc block into
    ``out`` (``count`` items long, contiguous)."""
    src = (ctypes.c_char * len(stored)).from_buffer(stored)
    if _getitem()(src, start, count, out.ctypes.data) != count * dset.dtype.itemsize:
        raise digests.damaged(f"/{dset.name} does not decompress")


def read_planes(
    fd: int,
    path: Path,
    dset: StoredDataset,
    planes: list[tuple[int, int]],
    lo: int,
    hi: int,
    digests: ChunkDigests,
) -> list[np.ndarray]:
    """Byte planes ``[first, first + count)`` (each of ``planes``) of a (planes, rows) uint8
    dataset chunked along its rows, over rows [lo, hi), as rows: one (hi - lo, count) array
    each (a column of ``count``-byte items is its view). Only the stored blocks holding
    those rows are read (and checked); in each, only the Blosc blocks holding those planes
    are decoded, each once; each plane is copied once, from the decoded block into its
    place in the rows."""
    digests.check_meta(dset.name, dset.dtype, dset.shape)
    step = dset.chunks[1]  # type: ignore[index]
    nbytes = dset.chunks[0] * step  # type: ignore[index]
    out = [np.empty((hi - lo, count), np.uint8) for _, count in planes]
    for block in range(lo // step, -(-hi // step) if hi > lo else 0):
        stored = _stored(fd, path, dset, block, digests)
        a, b = max(lo, block * step), min(hi, (block + 1) * step)
        if dset.blocks[block][2]:  # stored without its filter
            whole = np.frombuffer(stored, np.uint8)
        else:
            whole = _buffer(nbytes)
            spans = [(first * step, (first + count) * step) for first, count in planes]
            for start, stop in _blosc_runs(stored, spans, nbytes):
                _decode(stored, dset, start, stop - start, whole[start:stop], digests)
        at = a - block * step  # rows [a, b) of the block
        for (first, count), dest in zip(planes, out):
            for k in range(count):
                start = (first + k) * step + at
                dest[a - lo : b - lo, k] = whole[start : start + b - a]
    return out


def _blosc_runs(stored: Any, spans: list[tuple[int, int]], nbytes: int) -> list[tuple[int, int]]:
    """The byte ranges to decode for ``spans`` of a Blosc buffer of ``nbytes``: the Blosc
    blocks holding them (from its header), consecutive ones merged, so no block is decoded
    twice (c-blosc decodes whole blocks)."""
    size = int.from_bytes(bytes(stored[8:12]), "little") or nbytes  # the header's blocksize
    needed = sorted({k for a, b in spans if b > a for k in range(a // size, -(-b // size))})
    runs: list[list[int]] = []
    for k in needed:
        if runs and runs[-1][1] == k:
            runs[-1][1] = k + 1
        else:
            runs.append([k, k + 1])
    return [(a * size, min(b * size, nbytes)) for a, b in runs]


def _buffer(nbytes: int, name: str = "decoded") -> np.ndarray:
    """A reused buffer of this thread (no fresh pages to fault in at every block)."""
    buf = getattr(_local, name, None)
    if buf is None or len(buf) < nbytes:
        buf = np.empty(nbytes, np.uint8)
        setattr(_local, name, buf)
    return buf[:nbytes]


def read_rows_of(
    fd: int, path: Path, dset: StoredDataset, lo: int, hi: int, digests: ChunkDigests
) -> np.ndarray:
    """Rows [lo, hi) of a dataset chunked along its first axis (or contiguous), checked."""
    hi = min(hi, dset.shape[0])
    lo = min(lo, hi)
    row_items = int(np.prod(dset.shape[1:], dtype=np.int64))
    out = np.empty((hi - lo, *dset.shape[1:]), dset.dtype)
    if dset.chunks is None:  # contiguous: read and checked whole
        offset, size, _ = dset.blocks[0]
        data = np.empty(dset.shape, dset.dtype)
        if size and os.preadv(fd, [data.reshape(-1).view(np.uint8)], offset) != size:
            raise digests.damaged(f"/{dset.name} is truncated")
        digests.check_data(dset.name, data)
        return data[lo:hi]
    digests.check_meta(dset.name, dset.dtype, dset.shape)
    step = dset.chunks[0]
    flat = out.reshape(hi - lo, -1) if row_items != 1 else out.reshape(-1, 1)
    for block in range(lo // step, -(-hi // step) if hi > lo else 0):
        stored = _stored(fd, path, dset, block, digests)
        a, b = max(lo, block * step), min(hi, (block + 1) * step)
        dest = flat[a - lo : b - lo]
        if dset.blocks[block][2]:  # stored without its filter
            whole = np.frombuffer(stored, dset.dtype).reshape(step, -1)
            dest[:] = whole[a - block * step : b - block * step]
        else:
            first = (a - block * step) * row_items
            _decode(stored, dset, first, (b - a) * row_items, dest, digests)
    return out
