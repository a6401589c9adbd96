"""Store chunk files in HDF5: opened for reading, their datasets read through h5py's
low-level API (`read_slab`), and the digests every stored block is checked against.

Every stored block a store read decodes is checked against the digests recorded when its chunk
was written (`ChunkDigests`: the CRC-32C of each HDF5 chunk's stored bytes, `BLOCK_HASH`, zlib's
crc32 in records written before it, seeded with the chunk's partition, the dataset and the block
number, `block_seed`), so a flipped byte, a block or a whole chunk file put in another's place,
or an older generation's block of other rows put back fails the read with a `DamagedStoreError`
instead of returning other data. Readers that decode stored blocks themselves
(`mica.engine.stored_blocks`) check the bytes they have read, before decoding them; for
datasets HDF5 decodes (`ChunkDigests.check_rows`) the stored blocks are read
once more as HDF5 finds them (from the page cache) and checked before anything read is
returned.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import mmap
import os
import sys
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import google_crc32c
import h5py
import hdf5plugin
import numpy as np

from mica import config
from mica.errors import DamagedStoreError

_buffers = threading.local()

#: What h5py raises for a file whose HDF5 structures do not parse: OSError (a file or object
#: it cannot open), KeyError (a name not found), ValueError, and RuntimeError (a B-tree or
#: heap with a wrong signature, an address past the end of the file).
UNREADABLE = (OSError, KeyError, ValueError, RuntimeError)


class _OneBloscThread(contextlib.ContextDecorator):
    """Blosc on one thread for mica's own compress and decompress calls, and no setting of
    the user's process changed outside them (a context manager and decorator; reentrant and
    shared by threads).

    A pool of a thread per CPU made store writes 6x and reads up to 8x slower on two cores;
    two blosc2 threads decompress faster alone but make whole fetches slower (measured;
    parallelism comes from the callers). Both libraries take ``BLOSC_NTHREADS`` at every
    call: c-blosc 1.x (hdf5plugin's filter: h5py reads and writes) and c-blosc2
    (`blosc2.decompress` here); a call made under it also sets the library's own thread
    count, which outlives the call. So the first scope to open saves the variable and
    blosc2's count (C side, and the ``blosc2.nthreads`` attribute that ``set_nthreads``
    rewrites), the last to close puts them back: about 4 us, 0.2 ms when the user had
    asked blosc2 for a pool (it is stopped and restarted). c-blosc 1.x has no Python
    setting to restore: it takes the variable again at the user's next call. Other threads
    calling Blosc while a mica call runs get one thread too (a process-wide setting).

    blosc2 is imported only where it decodes (`mica.engine.stored_blocks.blosc_decode`,
    where c-blosc does not load; 100 ms of start-up that other reads never need): a scope
    opened before blosc2 was imported saves its count when a call inside the scope first
    asks for it (`adopt_blosc2`).
    """

    _VAR = config.BLOSC_NTHREADS

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = 0
        self._env: str | None = None
        self._blosc2: tuple[int, int] | None = None  # (attribute, count) saved in this scope

    def _save_blosc2(self, blosc2: Any) -> None:
        """Save blosc2's count and set it to one (caller holds the lock, a scope is open)."""
        if self._blosc2 is None:
            attr = blosc2.nthreads
            self._blosc2 = (attr, blosc2.set_nthreads(1))

    def __enter__(self) -> _OneBloscThread:
        with self._lock:
            if self._open == 0:
                self._env = os.environ.get(self._VAR)
                os.environ[self._VAR] = "1"
                if "blosc2" in sys.modules:  # the user's (or an earlier call's) blosc2
                    self._save_blosc2(sys.modules["blosc2"])
            self._open += 1
        return self

    def adopt_blosc2(self) -> Any:
        """blosc2 (imported now if it was not), on one thread for the open scope."""
        import blosc2

        with self._lock:
            if self._open:
                self._save_blosc2(blosc2)
        return blosc2

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._open -= 1
            if self._open == 0:
                if self._env is None:
                    os.environ.pop(self._VAR, None)
                else:
                    os.environ[self._VAR] = self._env
                if self._blosc2 is not None:
                    blosc2 = sys.modules["blosc2"]
                    attr, count = self._blosc2
                    self._blosc2 = None
                    blosc2.set_nthreads(count)
                    blosc2.nthreads = attr


one_blosc_thread = _OneBloscThread()


def open_h5(path: str | os.PathLike) -> h5py.File:
    """A store chunk or table file, opened for reading without HDF5's file lock.

    mica writes these files whole under a temporary name and renames them into place, so no
    process writes a file a reader has open: the lock would guard nothing, and taking it
    fails on a mount without locks (NFS without a lock daemon, some parallel file systems).
    """
    return h5py.File(path, "r", locking=False)


def open_h5_id(path: str | os.PathLike) -> h5py.h5f.FileID:
    """`open_h5` through h5py's low-level API (an ``h5py.h5f`` id; the caller closes it)."""
    return h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY, _unlocked_access())


@functools.cache
def _unlocked_access() -> h5py.h5p.PropFAID:
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_file_locking(False, True)  # no lock (see `open_h5`)
    # No chunk cache: these readers read each stored block once, and each dataset's cache
    # (1 MB) was fresh memory to fault in: a 25-year header-3 fetch's first call took 12 %
    # longer with it (measured).
    fapl.set_cache(0, 0, 0, 1.0)
    return fapl


def thread_buffer(name: str, nbytes: int) -> np.ndarray:
    """A reusable per-thread byte buffer (cache-warm, no page faults after the first use)."""
    buf = getattr(_buffers, name, None)
    if buf is None or len(buf) < nbytes:
        buf = np.empty(nbytes, dtype=np.uint8)
        setattr(_buffers, name, buf)
    return buf[:nbytes]


def is_blosc_chunked(dset: h5py.Dataset) -> bool:
    """Whether the dataset is chunked with the Blosc filter alone (what this module reads)."""
    if dset.chunks is None:
        return False
    plist = dset.id.get_create_plist()
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    return filters == [hdf5plugin.BLOSC_ID]


# --- digests of the stored blocks --------------------------------------------------------
def _zlib_crc32(crc: int, data: Any) -> int:
    """zlib's crc32 of ``data`` continuing ``crc`` (`BlockHash.extend`'s argument order)."""
    return zlib.crc32(data, crc)


@dataclass(frozen=True)
class BlockHash:
    """A checksum of stored blocks: ``seed(text)``, the checksum of a seed text, and
    ``extend(crc, data)``, that of ``data`` following the bytes whose checksum is ``crc``
    (``data``: bytes or a C-contiguous array; no memoryview or mapping: google-crc32c's C
    extension refuses them)."""

    name: str
    seed: Callable[[bytes], int]
    extend: Callable[[int, Any], int]


#: The checksum of every stored block (and contiguous dataset) of a store chunk or table
#: written now, named by its record's ``blocks_hash``: CRC-32C, computed by the processor's
#: CRC instruction (google-crc32c): 24 us for a 520 kB image block against 312 us for zlib's
#: crc32 (measured), and every read checks each block it decodes. A record without
#: ``blocks_hash`` (written before) is zlib's crc32 (`block_hash_of`).
BLOCK_HASH = "crc32c"
#: the block checksums a record may name, by name (`ChunkDigests` picks one per record)
_BLOCK_HASHES = {
    "crc32": BlockHash("crc32", zlib.crc32, _zlib_crc32),
    "crc32c": BlockHash("crc32c", google_crc32c.value, google_crc32c.extend),
}


def block_hash_of(record: Mapping[str, Any]) -> str:
    """The checksum a chunk's or table's record digests its blocks with: its ``blocks_hash``,
    zlib's ``"crc32"`` for a record written before it was recorded (`ChunkDigests` refuses
    a name it does not know)."""
    return record.get("blocks_hash", "crc32")


def block_seed(identity: str, name: str, block: int, algorithm: str = BLOCK_HASH) -> int:
    """The checksum (``algorithm``, a `BlockHash` name) a block's digest starts from: that of
    the text ``<identity>/<name>/<block>``. It names the chunk (``identity``: its partition,
    and for a chunk recorded before appends kept blocks, or a store table, its generation),
    the dataset and the block, so a block or a whole chunk file put in another's place fails
    its check even when its own bytes are intact. A block of an earlier generation of the same
    partition, dataset and block number passes only with the same bytes: the same rows (an
    append carries them over as they are), so no other data is read; the file put back whole
    fails the file's digest, seeded with the generation (`file_digest`), and the shapes."""
    return _BLOCK_HASHES[algorithm].seed(f"{identity}/{name}/{block}".encode())


#: A block's place in its file: (offset, stored size, HDF5 filter mask).
Location = tuple[int, int, int]
#: `DatasetDigests.blocks` as recorded (hex of these, block after block).
_LOCATION = np.dtype([("offset", "<u8"), ("size", "<u4"), ("mask", "<u4")])


@dataclass(frozen=True)
class DatasetDigests:
    """One dataset of a store chunk as recorded when the chunk was written: dtype, shape, HDF5
    chunk shape (None: contiguous, unfiltered) and the checksum of each stored block in order
    along the chunked axis (a contiguous dataset: one of its data), in the algorithm its
    record names (`block_hash_of`: 32 bits either way).

    ``blocks``, for a dataset filtered by Blosc alone in blocks of whole rows (chunked along
    its first axis only), is each block's `Location` in the file, so a reader reads the
    blocks without opening HDF5 (`mica.engine.stored_blocks.StoredBlocks`): the digests it
    checks them against name the chunk, the dataset and the block, so a file put in the
    chunk's place fails them.
    None when not recorded (other datasets, and chunks written before they were).
    """

    dtype: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...] | None
    crcs: tuple[int, ...]
    blocks: tuple[Location, ...] | None = None
    #: the axis along which the blocks follow one another (rows; the second axis of byte
    #: planes); 0 when there is one block (then the rows may be on another axis)
    axis: int = field(init=False)

    def __post_init__(self) -> None:
        sizes = zip(self.chunks or (), self.shape)
        axis = next((i for i, (c, s) in enumerate(sizes) if c < s), 0)
        object.__setattr__(self, "axis", axis)

    def to_json(self) -> list[Any]:
        crcs = np.array(self.crcs, dtype="<u4").tobytes().hex()
        item = [
            self.dtype,
            list(self.shape),
            None if self.chunks is None else list(self.chunks),
            crcs,
        ]
        if self.blocks is not None:
            item.append(np.array(list(self.blocks), dtype=_LOCATION).tobytes().hex())
        return item

    @classmethod
    def from_json(cls, item: list[Any]) -> DatasetDigests:
        dtype, shape, chunks, crcs, *located = item
        values = np.frombuffer(bytes.fromhex(crcs), dtype="<u4").tolist()
        blocks = None
        if located:
            found = np.frombuffer(bytes.fromhex(located[0]), dtype=_LOCATION).tolist()
            if len(found) != len(values):
                raise ValueError(f"{len(found)} block locations for {len(values)} digests")
            blocks = tuple(found)
        chunks = None if chunks is None else tuple(chunks)
        return cls(dtype, tuple(shape), chunks, tuple(values), blocks)


class RecordedDatasets(Mapping[str, DatasetDigests]):
    """Dataset name -> `DatasetDigests` of a chunk's recorded digests (their JSON lists),
    each checked and built on first use: a read opens a few of a chunk's datasets, and
    checking the lists of a 100-day header-3 chunk's 167 datasets cost a first fetch across
    a period edge 0.27 ms of its 4.3 (measured), after building them all had been most of
    it. A record whose list does not parse raises ValueError where it is used
    (`ChunkDigests.dataset` names the chunk damaged); the names alone are known at once."""

    def __init__(self, raw: Mapping[str, list[Any]]):
        if not isinstance(raw, Mapping):
            raise ValueError(f"not a record of datasets: {raw!r}")
        self._raw = raw
        self._built: dict[str, DatasetDigests] = {}

    def __getitem__(self, name: str) -> DatasetDigests:
        record = self._built.get(name)
        if record is None:
            record = self._built[name] = _dataset_record(self._raw[name])
        return record

    def __contains__(self, name: object) -> bool:
        return name in self._raw  # (no record built)

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def _dataset_record(item: Any) -> DatasetDigests:
    """A dataset's record from its JSON list, its form and hex digits checked (ValueError)."""
    try:
        dtype, shape, chunks, crcs, *located = item
    except (TypeError, ValueError):
        raise ValueError(f"not a dataset record: {item!r}") from None
    if not isinstance(dtype, str) or not isinstance(shape, list) or len(located) > 1:
        raise ValueError(f"not a dataset record: {item!r}")
    if chunks is not None and not isinstance(chunks, list):
        raise ValueError(f"not a dataset record: {item!r}")
    if not isinstance(crcs, str) or len(crcs) % 8:
        raise ValueError(f"not a list of crc32: {crcs!r}")
    if located and (not isinstance(located[0], str) or len(located[0]) != len(crcs) * 4):
        raise ValueError(f"not a list of block locations: {located[0]!r}")
    try:  # (the hex digits, and the numbers of the lists)
        return DatasetDigests.from_json(item)
    except TypeError as exc:
        raise ValueError(f"not a dataset record: {exc}") from None


#: The checksum of a whole chunk file written now (`file_digest`), named as the third item of
#: its record's ``file`` (``[size, digest, "crc32c"]``): CRC-32C, computed by the processor's
#: CRC instruction (google-crc32c), 10-16 GB/s here against zlib's crc32 at 3 GB/s; an append
#: to a long period's chunk hashes the old file and the new one whole (measured 54 -> 14 ms
#: for 190 MB). A record of two items (``[size, digest]``, written before) is zlib's crc32.
FILE_HASH = "crc32c"
#: `file_digest`'s algorithms: (bytes-like, crc of the bytes before them) -> crc
_FILE_HASHES: dict[str, Callable[[Any, int], int]] = {
    "crc32": zlib.crc32,
    # (its C extension takes read-only bytes or an array, not a mapping or memoryview)
    "crc32c": lambda data, crc: google_crc32c.extend(crc, np.frombuffer(data, np.uint8)),
}


def file_digest(
    data: Any, identity: str, crc: int | None = None, algorithm: str = FILE_HASH
) -> int:
    """The checksum (``algorithm``: a `_FILE_HASHES` name, `FILE_HASH` for a file written
    now) of a whole chunk file's bytes (``crc``: of the bytes before ``data``), seeded with its
    ``identity``: `mica check --verify-store` sees a flip in any byte, also in bytes no read
    decodes (attributes, HDF5's own structures). The seed is zlib's crc32 of the text
    ``<identity>//0`` whichever the algorithm (as records since `FILE_HASH` have it)."""
    seed = block_seed(identity, "", 0, "crc32") if crc is None else crc
    return _FILE_HASHES[algorithm](data, seed)


def record_digests(
    h5: h5py.File,
    image: bytes,
    identity: str,
    carried: Mapping[str, tuple[DatasetDigests, int]] | None = None,
) -> dict[str, DatasetDigests]:
    """The digests (`BLOCK_HASH`) of every dataset of a chunk file built in memory (``h5``,
    flushed; its bytes ``image``), seeded with ``identity`` (`block_seed`).

    ``carried``: dataset name -> (its record in the chunk the file was appended to, ``first``):
    its blocks before ``first`` are that chunk's, unchanged at their offsets
    (`mica.engine.chunk_extend.append_rows`), so their digests and locations are taken from
    the record (which must be seeded with ``identity`` and digested with `BLOCK_HASH` too)
    and only the blocks from ``first`` on are located and digested: an append costs what it
    adds, not the period."""
    data = np.frombuffer(image, np.uint8)  # (what google-crc32c reads: not a memoryview)
    algorithm = BLOCK_HASH
    extend = _BLOCK_HASHES[algorithm].extend
    out = {}
    for name, dset in h5.items():  # every dataset of a chunk is at the root
        chunks, blocks = dset.chunks, None
        if chunks is None:
            seed = block_seed(identity, name, 0, algorithm)
            crcs = [extend(seed, np.ascontiguousarray(dset[()]))]
        else:
            record = DatasetDigests(dset.dtype.str, dset.shape, chunks, ())
            axis, step = record.axis, chunks[record.axis]
            found: list[int | None] = [None] * -(-dset.shape[axis] // step)
            located: list[Location] = [(0, 0, 0)] * len(found)
            before, first = (carried or {}).get(name, (None, 0))
            if before is not None:
                found[:first] = before.crcs[:first]
                if before.blocks:
                    located[:first] = before.blocks[:first]
            for info in _stored_blocks(dset, axis, step, first, len(found)):
                block = info.chunk_offset[axis] // step
                stored = data[info.byte_offset : info.byte_offset + info.size]
                found[block] = extend(block_seed(identity, name, block, algorithm), stored)
                located[block] = (info.byte_offset, info.size, info.filter_mask)
            if None in found:  # HDF5 writes every chunk of data it is given
                raise ValueError(f"{name}: block {found.index(None)} was not written")
            crcs = found  # type: ignore[assignment]
            if is_blosc_chunked(dset) and tuple(chunks[1:]) == dset.shape[1:]:
                blocks = tuple(located)  # blocks of whole rows: read without HDF5
                if before is not None and first and not before.blocks:
                    blocks = None  # (the carried record has none: a layout without them)
        out[name] = DatasetDigests(dset.dtype.str, dset.shape, chunks, tuple(crcs), blocks)
    return out


def _stored_blocks(dset: h5py.Dataset, axis: int, step: int, first: int, count: int) -> list[Any]:
    """HDF5's chunk information of blocks [first, count) of ``dset`` along ``axis``: one walk
    of its chunk index for all of them (finding the k-th chunk walks it from the start), one
    lookup a block for the few after a carried record's."""
    if first == 0:
        stored_blocks: list[Any] = []
        dset.id.chunk_iter(stored_blocks.append)
        return stored_blocks
    origin = [0] * len(dset.shape)
    out = []
    for block in range(first, count):
        origin[axis] = block * step
        out.append(dset.id.get_chunk_info_by_coord(tuple(origin)))
    return out


def image_and_record(
    h5: h5py.File, identity: dict[str, Any], seed: str, blocks_seed: str | None = None
) -> tuple[bytes, dict]:
    """The bytes of a file built in memory (``driver="core"``) and its record: ``identity``,
    the file's size and digest (seeded with ``seed``), and each dataset's digests, seeded
    with ``blocks_seed`` (None: ``seed``; recorded when given)."""
    h5.flush()
    image = h5.id.get_file_image()
    datasets = record_digests(h5, image, seed if blocks_seed is None else blocks_seed)
    return image, file_record(identity, image, seed, datasets, blocks_seed)


def file_record(
    identity: dict[str, Any],
    image: Any,
    seed: str,
    datasets: Mapping[str, DatasetDigests],
    blocks_seed: str | None = None,
    free: int = 0,
) -> dict[str, Any]:
    """The record of a file of bytes ``image`` and dataset digests ``datasets`` (see
    `image_and_record`; made by `record_digests`, in `BLOCK_HASH`, which the record names as
    its ``blocks_hash``)."""
    record = {
        "identity": identity,
        "file": [len(image), file_digest(image, seed), FILE_HASH],
        "blocks_hash": BLOCK_HASH,
        "datasets": {name: d.to_json() for name, d in datasets.items()},
    }
    if blocks_seed is not None:
        record["blocks_seed"] = blocks_seed
    if free:
        record["free"] = free
    return record


class ChunkDigests:
    """What a store chunk file must hold: its identity and each dataset's `DatasetDigests`.
    Its checks raise `DamagedStoreError` naming the file, the dataset and block, and ``label``
    (the chunk's slot, view, period and generation). Dataset names may come with or without
    HDF5's leading ``/``.

    Parameters
    ----------
    path : Path
        The chunk file.
    identity : str
        ``<partition>@<generation>``: the seed of the file's digest, and of every block's
        unless ``blocks_seed`` is given (`block_seed`).
    label : str
        The chunk described for a person.
    datasets : mapping
        Dataset name -> its recorded `DatasetDigests`.
    file : (int, int) or (int, int, str)
        The file's size and `file_digest`, and the digest's algorithm (two items: zlib's
        crc32, a record written before `FILE_HASH`).
    blocks_seed : str, optional
        The seed of every block's digest (a store chunk's: its partition, with no generation,
        so that a generation appended to the one before keeps its blocks' digests).
    free : int
        The bytes earlier appends freed in the file, as recorded.
    block_hash : str
        The checksum of the blocks' digests (`block_hash_of` the record; `BLOCK_HASH` for
        digests `record_digests` made): its `BlockHash` is chosen here, once.

    Raises
    ------
    ValueError
        ``file`` or ``block_hash`` names an algorithm not known (a record that does not parse).
    """

    def __init__(
        self,
        path: Path,
        identity: str,
        label: str,
        datasets: Mapping[str, DatasetDigests],
        file: tuple[int, int],
        blocks_seed: str | None = None,
        free: Any = 0,
        block_hash: str = BLOCK_HASH,
    ):
        self.path = path
        self.identity = identity
        self.blocks_seed = identity if blocks_seed is None else blocks_seed
        self.label = label
        self.datasets = datasets
        self.file = file
        if len(file) > 2 and file[2] not in _FILE_HASHES:  # (a record that does not parse)
            raise ValueError(f"not a file digest: {file!r}")
        hashing = _BLOCK_HASHES.get(block_hash) if isinstance(block_hash, str) else None
        if hashing is None:
            raise ValueError(f"not a block digest: {block_hash!r}")
        self.block_hash = block_hash
        # (crc, stored bytes) -> crc: the one function every block check calls
        self._extend = hashing.extend
        self.free = free
        self._seeds: dict[tuple[str, int], int] = {}  # (dataset, block) -> `block_seed`

    def _seed(self, name: str, block: int) -> int:
        seed = self._seeds.get((name, block))
        if seed is None:
            seed = block_seed(self.blocks_seed, name.lstrip("/"), block, self.block_hash)
            self._seeds[name, block] = seed
        return seed

    def damaged(self, detail: str) -> DamagedStoreError:
        """The error for ``detail`` (what is wrong) in this chunk."""
        return DamagedStoreError.at(self.path, f"{self.path}: {detail} ({self.label})")

    def block_damaged(self, name: str, block: int, row: int, what: str) -> DamagedStoreError:
        """The error of block ``block`` (first row ``row``) of dataset ``name``: ``what``."""
        return self.damaged(f"/{name.lstrip('/')} chunk at row {row} (block {block}) {what}")

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Any failure of HDF5 to read the chunk (a dataset missing, metadata that no longer
        parses) raised as `DamagedStoreError`; a chunk file gone (replaced since the caller's
        snapshot) stays a FileNotFoundError."""
        try:
            yield
        except (DamagedStoreError, FileNotFoundError):
            raise
        except UNREADABLE as exc:
            if not self.path.exists():  # HDF5 says only that it cannot open it
                raise FileNotFoundError(errno.ENOENT, "store chunk gone", str(self.path)) from exc
            raise self.damaged(f"does not read back: {exc}") from exc

    def dataset(self, name: str) -> DatasetDigests:
        """The record of dataset ``name``."""
        try:
            return self.datasets[name.lstrip("/")]
        except KeyError:
            raise self.damaged(f"/{name.lstrip('/')} is not a dataset of this chunk") from None
        except ValueError as exc:  # (`RecordedDatasets`: checked on first use)
            what = f"/{name.lstrip('/')} has a record that does not parse: {exc}"
            raise self.damaged(what) from None

    def check_meta(self, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> DatasetDigests:
        """Dataset ``name`` has its recorded dtype and shape; its record."""
        record = self.dataset(name)
        if dtype.str != record.dtype or tuple(shape) != record.shape:  # (h5py's: tuples)
            raise self.damaged(
                f"/{name.lstrip('/')} is {dtype.str} {tuple(shape)}, recorded as "
                f"{record.dtype} {record.shape}"
            )
        return record

    def check_block(
        self, name: str, block: int, stored: Any, record: DatasetDigests | None = None
    ) -> None:
        """The stored bytes of block ``block`` of dataset ``name`` (its ``record``, if the
        caller has it) match its digest. ``stored``: bytes or a C-contiguous array (not a
        memoryview, see `BlockHash`)."""
        record = record or self.dataset(name)
        seed = self._seed(name, block)
        if block >= len(record.crcs) or self._extend(seed, stored) != record.crcs[block]:
            row = block * record.chunks[record.axis] if record.chunks else 0
            raise self.block_damaged(name, block, row, "does not match its digest")

    def check_rows(
        self,
        dsid: h5py.h5d.DatasetID,
        name: str,
        lo: int,
        hi: int | None,
        dtype: np.dtype,
        shape: tuple[int, ...],
        record: DatasetDigests | None = None,
    ) -> None:
        """The stored blocks holding rows [lo, hi) (None: to the end) along the chunked axis
        of a dataset HDF5 decodes, read as HDF5 finds them (its chunk index) and checked
        (its dtype and shape first, unless the caller passes its ``record`` from
        `check_meta`). One HDF5 call a block: half the cost of locating it and reading it
        here (measured)."""
        record = record or self.check_meta(name, dtype, shape)
        if record.chunks is None:
            raise ValueError(f"{name} is contiguous: check its data (`check_data`)")
        axis, step = record.axis, record.chunks[record.axis]
        if len(record.crcs) < 2:  # one block (or none), whichever axis the rows are on
            blocks = range(len(record.crcs) if hi is None or hi > lo else 0)
        else:
            hi = record.shape[axis] if hi is None else min(hi, record.shape[axis])
            blocks = range(lo // step, -(-hi // step) if hi > lo else lo // step)
        origin = [0] * len(record.shape)
        for block in blocks:
            origin[axis] = block * step
            try:  # the bytes HDF5 decodes for this block (found as its read finds them)
                stored = dsid.read_direct_chunk(tuple(origin))[1]
            except UNREADABLE as exc:  # missing, truncated
                what = f"is unreadable: {exc}"
                raise self.block_damaged(name, block, block * step, what) from exc
            self.check_block(name, block, stored, record)

    def check_data(self, name: str, data: np.ndarray) -> None:
        """A contiguous dataset read whole matches its digest."""
        record = self.check_meta(name, data.dtype, data.shape)
        crc = self._extend(self._seed(name, 0), np.ascontiguousarray(data))
        if record.chunks is not None or crc != record.crcs[0]:
            raise self.damaged(f"/{name.lstrip('/')} does not match its digest")

    def check_file(self, h5: h5py.File) -> None:
        """An open chunk file against the record (``mica check --verify-store``): the same
        datasets, dtypes, shapes and HDF5 chunk shapes, every stored block's digest (these
        say where the damage is), then all its bytes (`file_digest`)."""
        names, recorded = set(h5), set(self.datasets)
        if names != recorded:
            raise self.damaged(
                f"holds datasets {sorted(names - recorded)} not recorded and lacks "
                f"{sorted(recorded - names)}"
            )
        fd = h5.id.get_vfd_handle()
        for name, record in self.datasets.items():
            dset = h5[name]
            if dset.chunks != record.chunks:
                raise self.damaged(f"/{name} is in HDF5 chunks {dset.chunks}, not {record.chunks}")
            if record.chunks is None:
                self.check_data(name, dset[()])
                continue
            stored = dset.id.get_num_chunks()
            if stored != len(record.crcs):
                raise self.damaged(f"/{name} has {stored} blocks, not {len(record.crcs)}")
            self.check_rows(dset.id, name, 0, None, dset.dtype, dset.shape)
        self.check_bytes(
            fd,
            "(its datasets' blocks do: the damage is in its attributes or HDF5's own structures)",
        )

    def check_bytes(self, fd: int, why: str = "") -> None:
        """All the bytes of the open chunk file ``fd`` against the file's size and digest
        (`file_digest`), hashed where the page cache holds them (a mapping: no copy of a
        file of hundreds of MB, half the time of reading it in pieces, measured); ``why``
        ends the message of a mismatch."""
        size = os.fstat(fd).st_size
        algorithm = self.file[2] if len(self.file) > 2 else "crc32"
        if size:
            with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as view:
                crc = file_digest(view, self.identity, algorithm=algorithm)
        else:
            crc = file_digest(b"", self.identity, algorithm=algorithm)
        if (size, crc) != tuple(self.file[:2]):
            raise self.damaged(f"its {size} bytes do not match the file's digest {why}".rstrip())


def read_slab(
    fid: Any, name: str, lo: int = 0, hi: int | None = None, digests: ChunkDigests | None = None
) -> np.ndarray:
    """Rows [lo, hi) (None: all rows; clipped to the dataset) of a dataset of an open file
    (``h5py.h5f`` id) through h5py's low-level API, the stored blocks read checked against the
    chunk's ``digests`` (a contiguous dataset is read and checked whole).

    Raises
    ------
    KeyError
        No such dataset (and none recorded in ``digests``).
    DamagedStoreError
        A block or the dataset's dtype or shape is not what ``digests`` recorded, or a
        recorded dataset is missing.
    """
    try:
        dset = h5py.h5d.open(fid, name.encode())
    except KeyError:
        if digests is not None and name in digests.datasets:
            raise digests.damaged(f"/{name} is missing") from None
        raise
    space = dset.get_space()
    shape = space.shape
    hi = shape[0] if hi is None else min(hi, shape[0])
    lo = min(lo, hi)
    dtype = dset.dtype
    record = None if digests is None else digests.check_meta(name, dtype, shape)
    whole = None  # the rows asked for from a contiguous dataset, checked whole
    if record is not None and record.chunks is None:
        whole, lo, hi = slice(lo, hi), 0, shape[0]
    out = np.empty((hi - lo, *shape[1:]), dtype=dtype)
    if hi > lo:
        space.select_hyperslab((lo, *[0] * (len(shape) - 1)), out.shape)
        dset.read(h5py.h5s.create_simple(out.shape), space, out)
    if record is None:
        return out
    # Checked after HDF5's read, before anything is returned: the chunk index and the stored
    # bytes are then in HDF5's cache and the CPU's (the check costs a third less, measured).
    if whole is not None:
        digests.check_data(name, out)  # type: ignore[union-attr]
        return out[whole]
    # the whole dataset read: every block checked, whichever axis it is chunked along (rows
    # [lo, hi) are along the first; `check_rows` counts along the chunked one)
    every = lo == 0 and hi == shape[0]
    digests.check_rows(dset, name, lo, None if every else hi, dtype, shape, record)  # type: ignore[union-attr]
    return out
