"""`StoredBlocks`: rows of a chunk file read as their stored blocks give HDF5's answer, from
the block locations the chunk's digests record (no HDF5 at all) or, for a chunk recorded
without them, from locations kept per process only while the file is the one located; every
block checked against its digest."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest

from mica.engine import stored_blocks
from mica.engine.h5chunks import ChunkDigests, DatasetDigests, RecordedDatasets, record_digests
from mica.engine.stored_blocks import ChunkedRows, StoredBlocks
from mica.errors import DamagedStoreError

ROWS = 1050  # 10 blocks of 100 rows and a padded edge block
IDENTITY = "test/1@1"


def _write(path: Path, seed: int = 0) -> ChunkDigests:
    """A chunk-like file (Blosc datasets of one and two axes, one uncompressed) and its
    digests as a store chunk records them."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as h5:
        blosc = hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)
        h5.create_dataset("TIME", data=np.cumsum(rng.random(ROWS)), chunks=(100,), **blosc)
        flat = np.zeros(ROWS, np.uint16)  # compresses to almost nothing
        h5.create_dataset("W", data=flat, chunks=(100,), **blosc)
        img = rng.integers(0, 2**15, (ROWS, 3), dtype=np.int16)
        h5.create_dataset("IMG", data=img, chunks=(100, 3), **blosc)
        h5.create_dataset("PLAIN", data=np.arange(ROWS), chunks=(100,))
    image = path.read_bytes()
    with h5py.File(path, "r") as h5:
        datasets = record_digests(h5, image, IDENTITY)
    return ChunkDigests(path, IDENTITY, "test chunk", datasets, (len(image), 0))


def _unlocated(digests: ChunkDigests) -> ChunkDigests:
    """The digests as a chunk written before block locations were recorded has them."""
    datasets = {n: dataclasses.replace(d, blocks=None) for n, d in digests.datasets.items()}
    return ChunkDigests(digests.path, IDENTITY, digests.label, datasets, digests.file)


@pytest.fixture
def chunk(tmp_path) -> tuple[Path, ChunkDigests]:
    path = tmp_path / "c.h5"
    return path, _write(path)


def test_records_checked_where_read(chunk):
    """A chunk's dataset records are checked and built on first use only: a record that
    does not parse leaves the others readable and makes its own dataset's read fail as a
    damaged chunk (served from its files), naming the dataset."""
    path, digests = chunk
    raw = {name: record.to_json() for name, record in digests.datasets.items()}
    raw["W"] = [*raw["W"][:3], "not hex!"]
    raw["PLAIN"] = 7
    recorded = RecordedDatasets(raw)
    assert "W" in recorded and "PLAIN" in recorded and len(recorded) == 4  # nothing parsed
    damaged = ChunkDigests(path, IDENTITY, "test chunk", recorded, digests.file)
    with StoredBlocks(path, damaged) as blocks:
        with h5py.File(path, "r") as h5:
            assert np.array_equal(blocks.read("TIME", 140, 460), h5["TIME"][140:460])
        for name in ("W", "PLAIN"):
            with pytest.raises(DamagedStoreError, match=f"/{name} has a record that does not"):
                blocks.read(name, 0, 10)
    with pytest.raises(ValueError, match="not a record of datasets"):
        RecordedDatasets([["<f8", [1], None, "00000000"]])


def test_what_is_recorded(chunk):
    """Locations for the datasets read as blocks (Blosc, blocks of whole rows), in the
    record's JSON form and back."""
    path, digests = chunk
    located = {n for n, d in digests.datasets.items() if d.blocks is not None}
    assert located == {"TIME", "W", "IMG"}
    for name, record in digests.datasets.items():
        assert DatasetDigests.from_json(record.to_json()) == record
        assert len(record.to_json()) == (5 if name in located else 4)  # old records: 4
    with h5py.File(path, "r") as h5:
        dsid = h5["IMG"].id
        infos = [dsid.get_chunk_info(k) for k in range(dsid.get_num_chunks())]
    assert digests.datasets["IMG"].blocks == tuple(
        (i.byte_offset, i.size, i.filter_mask) for i in infos
    )
    assert {mask for _, _, mask in digests.datasets["IMG"].blocks} == {0, 1}  # some as is


@pytest.mark.parametrize("recorded", [True, False])
@pytest.mark.parametrize(
    "lo, hi", [(0, None), (0, 100), (150, 420), (999, 1050), (7, 7), (1040, 2000)]
)
def test_rows_are_hdf5_s(chunk, lo, hi, recorded):
    path, digests = chunk
    digests = digests if recorded else _unlocated(digests)
    with h5py.File(path, "r") as h5:
        want = {name: h5[name][lo:hi] for name in ("TIME", "W", "IMG")}
    stored_blocks._LAYOUTS.pop(path, None)
    for _ in ("located through HDF5 unless recorded", "from the kept locations"):
        with StoredBlocks(path, digests) as blocks:
            for name, values in want.items():
                got = blocks.read(name, lo, hi)
                assert got.dtype == values.dtype and np.array_equal(got, values), name
            assert blocks._fid is None  # HDF5 opened only to learn the file's layout
        assert (path in stored_blocks._LAYOUTS) != recorded  # learnt once, when not recorded
    out = np.full((len(want["IMG"]), 3), -1, np.int16)
    with StoredBlocks(path, digests) as blocks:
        assert blocks.read("IMG", lo, hi, out=out) is out
    assert np.array_equal(out, want["IMG"])


@pytest.mark.parametrize("lo, hi", [(0, None), (150, 420), (1040, 2000)])
def test_rows_are_hdf5_s_without_c_blosc(chunk, monkeypatch, lo, hi):
    """Where hdf5plugin's c-blosc does not load, blosc2 decodes the recorded blocks (whole:
    it has no decoding of a block's items alone)."""
    path, digests = chunk
    monkeypatch.setattr(stored_blocks, "_c_blosc", lambda: None)
    with h5py.File(path, "r") as h5, StoredBlocks(path, digests) as blocks:
        for name in ("TIME", "W", "IMG"):
            assert np.array_equal(blocks.read(name, lo, hi), h5[name][lo:hi]), name
            stop = min(ROWS if hi is None else hi, ROWS)
            if stop > lo:  # (rows decoded block by block into the caller's output)
                rows = ChunkedRows(h5[name], lo, stop, digests)
                assert np.array_equal(np.asarray(rows), h5[name][lo:stop]), name


def test_what_it_does_not_decode(chunk):
    path, digests = chunk
    time = digests.datasets["TIME"]
    with StoredBlocks(path, digests) as blocks:
        assert not blocks.map("PLAIN").blosc
        with pytest.raises(ValueError, match="not filtered by Blosc"):
            blocks.read("PLAIN")
    # a recorded dataset HDF5 does not have is missing; at recorded locations, its blocks
    # (another dataset's) fail its digests
    for record, error in [
        (dataclasses.replace(time, blocks=None), "/GONE is missing"),
        (time, "digest"),
    ]:
        recorded = {**digests.datasets, "GONE": record}
        more = ChunkDigests(path, IDENTITY, "test chunk", recorded, digests.file)
        with StoredBlocks(path, more) as blocks, pytest.raises(DamagedStoreError, match=error):
            blocks.read("GONE")
    with StoredBlocks(path) as blocks, pytest.raises(KeyError):
        blocks.map("OTHER")


@pytest.mark.parametrize("recorded", [True, False])
def test_a_block_damaged_after_it_was_located(chunk, recorded):
    """Locations kept from a read, then a stored byte flipped in place: the next read fails
    the block's digest; h5py can open the file for writing between reads (nothing is kept
    open)."""
    path, digests = chunk
    digests = digests if recorded else _unlocated(digests)
    with StoredBlocks(path, digests) as blocks:
        blocks.read("TIME")
        offset, size, _ = blocks.map("TIME").blocks[3]
    with h5py.File(path, "r+") as h5:  # no reader holds the file
        h5.attrs["edited"] = 1
    with h5py.File(path, "r") as h5:
        assert h5["TIME"].id.get_chunk_info(3).byte_offset == offset  # blocks stay put
    with open(path, "r+b") as fh:
        fh.seek(offset + size // 2)
        byte = fh.read(1)[0]
        fh.seek(offset + size // 2)
        fh.write(bytes([byte ^ 0x5A]))
    with StoredBlocks(path, digests) as blocks:
        blocks.read("TIME", 0, 300)  # blocks 0-2: intact
        with pytest.raises(DamagedStoreError, match=r"/TIME chunk at row 300 \(block 3\)"):
            blocks.read("TIME", 250, 350)


def test_a_file_put_in_its_place_is_located_afresh(tmp_path, chunk):
    """Another file renamed onto the path (new inode): its own locations are found, and its
    blocks fail the first file's digests, recorded locations or not (so a location never
    reads another file's bytes as this file's)."""
    path, digests = chunk
    with StoredBlocks(path, _unlocated(digests)) as blocks:
        blocks.read("TIME")
    other = tmp_path / "other.h5"
    other_digests = _write(other, seed=1)
    os.replace(other, path)
    with h5py.File(path, "r") as h5:
        want = h5["TIME"][()]
    with StoredBlocks(path, _unlocated(other_digests)) as blocks:
        assert np.array_equal(blocks.read("TIME"), want)
    assert stored_blocks._LAYOUTS[path][0][0] == os.stat(path).st_ino
    for old in (digests, _unlocated(digests)):
        with StoredBlocks(path, old) as blocks, pytest.raises(DamagedStoreError, match="digest"):
            blocks.read("TIME")


def test_a_truncated_file(chunk):
    """Recorded blocks past the file's end are named, not read short."""
    path, digests = chunk
    last = digests.datasets["TIME"].blocks[-1]
    with open(path, "r+b") as fh:
        fh.truncate(last[0] + 1)
    with StoredBlocks(path, digests) as blocks:
        with pytest.raises(DamagedStoreError, match=r"row 1000 \(block 10\) is truncated"):
            blocks.read("TIME", 1000)


@pytest.mark.parametrize("lo, hi", [(0, None), (150, 420), (1040, 2000)])
def test_rows_wider_than_a_blosc_type(tmp_path, lo, hi):
    """Rows of more bytes than Blosc's largest type (255: the filter then stores them as
    bytes) read in part of a block: the block's items are counted in the type its header
    gives, not the dataset's."""
    path = tmp_path / "wide.h5"
    rng = np.random.default_rng(3)
    names = rng.integers(65, 91, (ROWS, 300), dtype=np.uint8).view("S300")[:, 0]
    with h5py.File(path, "w") as h5:
        blosc = hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)
        h5.create_dataset("NAMES", data=names, chunks=(100,), **blosc)
    image = path.read_bytes()
    with h5py.File(path, "r") as h5:
        datasets = record_digests(h5, image, IDENTITY)
    digests = ChunkDigests(path, IDENTITY, "test chunk", datasets, (len(image), 0))
    with StoredBlocks(path, digests) as blocks:
        assert np.array_equal(blocks.read("NAMES", lo, hi), names[lo:hi])
