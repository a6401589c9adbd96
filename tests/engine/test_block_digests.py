"""The checksum of a store chunk's block digests: CRC-32C in a record written now
(``blocks_hash``), zlib's crc32 in a record without it (written before), each checked with
its own algorithm on every read path (blocks read here, `ChunkedRows`, blocks HDF5 decodes,
a contiguous dataset, `mica check --verify-store`'s whole file), and a flipped byte refused
naming the file either way."""

from __future__ import annotations

import zlib
from pathlib import Path

import google_crc32c
import h5py
import hdf5plugin
import numpy as np
import pytest

from mica.engine import h5chunks
from mica.engine.h5chunks import (
    BLOCK_HASH,
    ChunkDigests,
    block_hash_of,
    block_seed,
    image_and_record,
)
from mica.engine.stored_blocks import StoredBlocks, read_rows
from mica.errors import DamagedStoreError

ROWS = 1050  # 10 blocks of 100 rows and a padded edge block
SEED = "test/1@1"
#: how a record written before ``blocks_hash`` checks its blocks
OLD_HASH = "crc32"


def _write(path: Path, algorithm: str) -> ChunkDigests:
    """A chunk-like file (Blosc rows, rows HDF5 decodes, a contiguous dataset) written as a
    store writes one, its blocks digested with ``algorithm`` (``"crc32"``: a record written
    before ``blocks_hash``, which it then lacks), and its digests as a reader parses them."""
    rng = np.random.default_rng(5)
    with (
        pytest.MonkeyPatch.context() as mp,
        h5py.File(path.name, "w", driver="core", backing_store=False) as h5,
    ):
        mp.setattr(h5chunks, "BLOCK_HASH", algorithm)
        blosc = hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)
        h5.create_dataset("TIME", data=np.cumsum(rng.random(ROWS)), chunks=(100,), **blosc)
        h5.create_dataset("PLAIN", data=np.arange(ROWS), chunks=(100,))  # HDF5 decodes it
        h5.create_dataset("TRANGE", data=rng.random((11, 2)))  # contiguous
        image, record = image_and_record(h5, {"part": "test/1"}, SEED)
    path.write_bytes(image)
    if algorithm == OLD_HASH:
        del record["blocks_hash"]  # (as written before it)
    datasets = h5chunks.RecordedDatasets(record["datasets"])
    file = tuple(record["file"])
    return ChunkDigests(path, SEED, "test chunk", datasets, file, block_hash=block_hash_of(record))


def _reads(digests: ChunkDigests) -> None:
    """Every read path over the whole chunk, checked against ``digests``."""
    path = digests.path
    with StoredBlocks(path, digests) as blocks:
        blocks.read("TIME")
    with h5py.File(path, "r") as h5:
        read_rows(h5["TIME"], 0, ROWS, digests)  # `ChunkedRows`
        read_rows(h5["PLAIN"], 0, ROWS, digests)  # blocks HDF5 decodes
        digests.check_data("TRANGE", h5["TRANGE"][()])
        digests.check_file(h5)


@pytest.mark.parametrize("algorithm", [BLOCK_HASH, OLD_HASH])
def test_blocks_checked_with_the_recorded_checksum(algorithm, tmp_path):
    """Each record's digests are its algorithm's, seeded as `block_seed` seeds them, and
    every read path checks them: intact, they pass; a byte flipped in a block is refused
    naming the file, the dataset and the block."""
    digests = _write(tmp_path / "c.h5", algorithm)
    assert digests.block_hash == algorithm
    with h5py.File(digests.path, "r") as h5:
        dsid = h5["TIME"].id
        info = dsid.get_chunk_info_by_coord((300,))
        stored = dsid.read_direct_chunk((300,))[1]
    text = f"{SEED}/TIME/3".encode()
    expected = (
        google_crc32c.value(text + stored) if algorithm == "crc32c" else zlib.crc32(text + stored)
    )
    assert digests.dataset("TIME").crcs[3] == expected
    assert block_seed(SEED, "TIME", 3, algorithm) == (
        google_crc32c.value(text) if algorithm == "crc32c" else zlib.crc32(text)
    )
    _reads(digests)

    with open(digests.path, "r+b") as fh:  # a byte of block 3 of TIME flipped
        fh.seek(info.byte_offset + info.size // 2)
        byte = fh.read(1)[0]
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes([byte ^ 0x5A]))
    where = rf"{digests.path}: /TIME chunk at row 300 \(block 3\) does not match its digest"
    with StoredBlocks(digests.path, digests) as blocks, pytest.raises(DamagedStoreError) as err:
        blocks.read("TIME", 250, 420)
    assert err.value.chunk == digests.path
    assert err.match(where)
    with h5py.File(digests.path, "r") as h5, pytest.raises(DamagedStoreError, match=where):
        read_rows(h5["TIME"], 250, 420, digests)
    with h5py.File(digests.path, "r") as h5, pytest.raises(DamagedStoreError, match=where):
        digests.check_file(h5)


def test_the_recorded_checksum_is_the_one_used(tmp_path):
    """Digests checked with the other algorithm fail (a record's ``blocks_hash`` is not
    ignored), and a record naming an algorithm not known does not parse."""
    old = _write(tmp_path / "old.h5", OLD_HASH)
    new = _write(tmp_path / "new.h5", BLOCK_HASH)
    assert old.dataset("TIME").crcs != new.dataset("TIME").crcs
    swapped = ChunkDigests(old.path, SEED, "old", old.datasets, old.file, block_hash="crc32c")
    with StoredBlocks(old.path, swapped) as blocks, pytest.raises(DamagedStoreError):
        blocks.read("TIME", 0, 10)
    with pytest.raises(DamagedStoreError, match="/TRANGE does not match its digest"):
        with h5py.File(old.path, "r") as h5:
            swapped.check_data("TRANGE", h5["TRANGE"][()])
    assert block_hash_of({}) == OLD_HASH and block_hash_of({"blocks_hash": "x"}) == "x"
    for bad in ("x", None, 3):
        with pytest.raises(ValueError, match="not a block digest"):
            ChunkDigests(old.path, SEED, "test chunk", old.datasets, old.file, block_hash=bad)
