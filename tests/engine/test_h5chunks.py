"""Direct chunk reads of Blosc-compressed HDF5 datasets: same values as h5py, clear errors."""

from __future__ import annotations

import threading

import h5py
import numpy as np
import pytest

from mica.engine.colstore import _CODEC
from mica.engine.stored_blocks import ChunkedRows, read_rows

RNG = np.random.default_rng(5)
N = 10_000


@pytest.fixture
def h5file(tmp_path):
    """Datasets as the store writes one-column groups (rows chunked, with a short edge chunk)
    and one without a filter."""
    path = tmp_path / "chunks.h5"
    images = RNG.integers(-50, 4000, size=(N, 64)).astype(np.float32)
    with h5py.File(path, "w") as h5:
        h5.create_dataset("IMGRAW", data=images, chunks=(1024, 64), **_CODEC)
        h5.create_dataset("PLAIN", data=images[:, :4])
    return path, images


RANGES = [(0, N), (0, 1), (1023, 1025), (5000, N - 3), (N - 1, N), (7, 7)]


@pytest.mark.parametrize("start,stop", RANGES)
def test_rows_equal_h5py(h5file, start, stop):
    path, images = h5file
    with h5py.File(path, "r") as h5:
        assert np.array_equal(read_rows(h5["IMGRAW"], start, stop), images[start:stop])
        assert np.array_equal(read_rows(h5["PLAIN"], start, stop), images[start:stop, :4])


def test_narrowed_rows_readable_after_the_file_is_gone(h5file):
    path, images = h5file
    with h5py.File(path, "r") as h5:
        rows = ChunkedRows(h5["IMGRAW"], 1000, 9000)
    path.unlink()  # chunk files are replaced by new names; a reader keeps its own descriptor
    keep = RNG.random(8000) < 0.3
    again = RNG.random(int(keep.sum())) < 0.5
    narrowed = rows.narrowed(keep).narrowed(again)
    assert narrowed.shape == (int(again.sum()), 64)
    assert np.array_equal(np.asarray(narrowed), images[1000:9000][keep][again])
    assert np.array_equal(np.asarray(rows), images[1000:9000])


def test_corrupt_chunk_names_file_and_chunk(h5file):
    path, _ = h5file
    with h5py.File(path, "r") as h5:
        info = h5["IMGRAW"].id.get_chunk_info_by_coord((2048, 0))
    with open(path, "r+b") as f:  # a Blosc header that claims another size
        f.seek(info.byte_offset + 4)
        f.write(b"\xff\xff\xff\x7f")
    with h5py.File(path, "r") as h5:
        assert np.array_equal(read_rows(h5["IMGRAW"], 0, 2048).shape, (2048, 64))
        with pytest.raises(OSError, match=r"chunks\.h5: /IMGRAW chunk at row 2048"):
            read_rows(h5["IMGRAW"], 0, N)


def test_file_truncated_after_locating(h5file):
    path, images = h5file
    with h5py.File(path, "r") as h5:  # (HDF5 refuses to open a file shorter than it says)
        rows = ChunkedRows(h5["IMGRAW"], 0, N)
        info = h5["IMGRAW"].id.get_chunk_info_by_coord((9216, 0))
    with open(path, "r+b") as f:
        f.truncate(info.byte_offset + 10)
    truncated = r"chunks\.h5: /IMGRAW chunk at row 9216 \(block 9\) is truncated"
    with pytest.raises(OSError, match=truncated):
        np.asarray(rows)


def test_block_never_written_is_named_when_located(tmp_path):
    """A block HDF5 holds no bytes for (never written) fails when the rows are located,
    before anything is decoded, in the words of every stored-block read."""
    path = tmp_path / "holes.h5"
    with h5py.File(path, "w") as h5:
        dset = h5.create_dataset("IMGRAW", (4096, 64), "f4", chunks=(1024, 64), **_CODEC)
        dset[:1024] = 1.0  # blocks 1-3 never written
    with h5py.File(path, "r") as h5:
        assert np.array_equal(ChunkedRows(h5["IMGRAW"], 0, 1024), np.ones((1024, 64), "f4"))
        missing = r"holes\.h5: /IMGRAW chunk at row 1024 \(block 1\) is missing or truncated"
        with pytest.raises(OSError, match=missing):
            ChunkedRows(h5["IMGRAW"], 512, 2048)


def test_sink_error_stops_the_decoding_thread(h5file):
    path, images = h5file
    with h5py.File(path, "r") as h5:
        rows = ChunkedRows(h5["IMGRAW"], 0, N)
    seen = []

    def sink(chunk, row0):
        seen.append(row0)
        if row0 == 2048:
            raise KeyError("caller stops")

    with pytest.raises(KeyError, match="caller stops"):
        rows.each_chunk(sink)
    assert seen == [0, 1024, 2048]  # in row order, none after the error
    assert not [t for t in threading.enumerate() if t.name == "mica-chunk-decode"]
    assert np.array_equal(np.asarray(rows), images)  # its buffers are free again
