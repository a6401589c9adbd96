"""Byte planes of a (planes, rows) store dataset put into rows (`stored_blocks.read_planes`,
`DeferredPlanes`) give the stored values, however each stored block holds its planes: one
compressed stream a plane (the store's layout: the streams are passed to c-blosc as they
are), several planes a Blosc block (decoded first), a plane's stream out of place in its
block (decoded first), or wider plane sets than c-blosc splits."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest

from mica.engine import stored_blocks
from mica.engine.h5chunks import ChunkDigests, record_digests
from mica.engine.stored_blocks import DeferredPlanes, blosc_blocks, read_planes, stored_layout

NPLANES, STEP, ROWS = 24, 1024, 5000  # 4 whole stored blocks and a padded edge block
IDENTITY = "test/planes@1"
#: plane sets read: TIME's and IMGSIZE's of the store's KEY group, one plane, c-blosc's
#: widest split (16 planes), and wider ones (one stream a block)
PLANE_SETS = [[(0, 8), (20, 4)], [(3, 1)], [(0, 16)], [(0, NPLANES)], [(5, 17)]]


def _planes() -> np.ndarray:
    """Planes as the store's are: noisy low bytes, runs, constant (zero) high bytes."""
    rng = np.random.default_rng(5)
    data = np.zeros((NPLANES, ROWS), np.uint8)
    data[:4] = rng.integers(0, 256, (4, ROWS))
    data[4:8] = np.repeat(rng.integers(0, 256, (4, ROWS // 50 + 1)), 50, axis=1)[:, :ROWS]
    data[20] = rng.choice([4, 6, 8], ROWS)
    data[12:16] = 7
    return data


def _write(path: Path, data: np.ndarray, blocksize: int) -> ChunkDigests:
    """A chunk-like file of one Blosc (LZ4) plane dataset of Blosc blocks of ``blocksize``
    bytes (0: c-blosc's choice), and its digests as a store chunk records them."""
    codec = hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)
    with h5py.File(path, "w") as h5, blosc_blocks(blocksize):
        h5.create_dataset("P", data=data, chunks=(NPLANES, STEP), **codec).flush()
    return _digests(path)


def _digests(path: Path) -> ChunkDigests:
    image = path.read_bytes()
    with h5py.File(path, "r") as h5:
        datasets = record_digests(h5, image, IDENTITY)
    return ChunkDigests(path, IDENTITY, "test chunk", datasets, (len(image), 0))


def _stream_moved_last(path: Path, block: int, plane: int) -> None:
    """Rewrite stored block ``block`` of P with the stream of ``plane`` moved to the end of
    the buffer (its header's offsets follow the streams): the same Blosc buffer to c-blosc
    and HDF5, of the same size, but that plane's stream no longer between its neighbours'."""
    with h5py.File(path, "r") as h5:
        info = h5["P"].id.get_chunk_info(block)
    with open(path, "r+b") as f:
        f.seek(info.byte_offset)
        buf = f.read(info.size)
        nblocks = struct.unpack_from("<I", buf, 4)[0] // struct.unpack_from("<I", buf, 8)[0]
        starts = struct.unpack_from(f"<{nblocks}I", buf, 16)
        streams = [buf[s : s + 4 + struct.unpack_from("<i", buf, s)[0]] for s in starts]
        order = [k for k in range(nblocks) if k != plane] + [plane]
        at, moved = 16 + 4 * nblocks, {}
        for k in order:
            moved[k] = at
            at += len(streams[k])
        assert at == len(buf)
        head = struct.pack(f"<{nblocks}I", *(moved[k] for k in range(nblocks)))
        f.seek(info.byte_offset)
        f.write(buf[:16] + head + b"".join(streams[k] for k in order))


@pytest.mark.parametrize(
    ("blocksize", "moved_block", "as_streams"),
    [
        (STEP, None, True),  # the store's layout: one stream a plane
        (STEP, 1, True),  # block 1's plane 2 out of place: decoded first (the others not)
        (0, None, False),  # c-blosc's choice: the chunk one Blosc block
        (2 * STEP, None, False),  # two planes a Blosc block
    ],
)
def test_planes_put_into_rows_equal_the_stored_values(tmp_path, blocksize, moved_block, as_streams):
    data = _planes()
    path = tmp_path / "c.h5"
    digests = _write(path, data, blocksize)
    if moved_block is not None:
        _stream_moved_last(path, moved_block, 2)
        with h5py.File(path, "r") as h5:  # still the same values to HDF5
            assert np.array_equal(h5["P"][()], data)
        digests = _digests(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        dset = stored_layout(path, fd).datasets["P"]
        record = digests.check_meta("P", dset.dtype, dset.shape)
        for planes in PLANE_SETS:
            for lo, hi in [(0, ROWS), (700, ROWS - 300), (STEP + 1, 3 * STEP - 1)]:
                got = read_planes(fd, dset, planes, lo, hi, digests)
                for (first, count), rows in zip(planes, got):
                    assert np.array_equal(rows, data[first : first + count, lo:hi].T), (
                        planes,
                        lo,
                        hi,
                    )
            # whether each plane set's streams were passed on as they are (c-blosc splits
            # blocks of up to 16 planes)
            batches = stored_blocks._batches(fd, dset, planes, range(5), digests, record)
            for _, columns in batches:
                for (_, count), column in zip(planes, columns):
                    assert (column.codec is not None) == (as_streams and count <= 16)
        # decoded into the fields of a structured output (strided), as get_slot_data does
        out = np.zeros(ROWS - 900, [("TIME", "<f8"), ("TEMPCCD", "<f4"), ("SIZE", "<i4")])
        planes = [(0, 8), (20, 4)]
        assert DeferredPlanes.takes(dset, planes, slice(600, ROWS - 300))
        source = DeferredPlanes(fd, dset, planes, slice(600, ROWS - 300), digests)
        time, size = source.column(0, np.dtype("<f8")), source.column(1, np.dtype("<i4"))
        stored_blocks.decode_deferred([(time, out["TIME"]), (size, out["SIZE"])])
        rows = data[:, 600 : ROWS - 300].T.copy()
        assert np.array_equal(out["TIME"], rows[:, :8].copy().view("<f8")[:, 0])
        assert np.array_equal(out["SIZE"], rows[:, 20:24].copy().view("<i4")[:, 0])
        assert not out["TEMPCCD"].any()
    finally:
        os.close(fd)
