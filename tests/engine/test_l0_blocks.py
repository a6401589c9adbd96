"""The L0 full view's blocks (layout 1): byte planes in `_PLANE_ROWS`-row HDF5 chunks with each
plane of a chunk one Blosc block, images and FILEIDX in `_COLUMN_BLOCK` Blosc blocks, the
header-3 views as c-blosc makes them; `blosc_blocks` leaves c-blosc's defaults behind it; a
chunk of the earlier layout is served from the files until rebuilt."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from mica.archive import aca_l0
from mica.engine import colstore
from mica.engine.colstore import _CODEC, ColumnStore
from mica.engine.index import ArchiveIndex
from mica.engine.stored_blocks import blosc_blocks
from mica.products.aca_l0 import FULL_LAYOUT, L0
from tests.engine.test_l0_store import assert_same

DAY = ("2003:215", "2003:216")


def _blosc_blocks(dset: h5py.Dataset) -> list[tuple[int, int]]:
    """(block size, flags) of the Blosc header of each stored block of a dataset."""
    out: list[tuple[int, int]] = []

    def head(info) -> None:
        raw = dset.id.read_direct_chunk(info.chunk_offset)[1]
        out.append((int.from_bytes(raw[8:12], "little"), raw[2]))

    dset.id.chunk_iter(head)
    return out


def _chunks(root: Path) -> list[dict]:
    with ArchiveIndex(L0, root) as index:
        return [dict(r) for r in index.conn.execute("SELECT * FROM store_chunks")]


def test_full_view_blocks(real_l0_archive):
    """Every full-view chunk: KEY and OTHER in chunks of `_PLANE_ROWS` rows whose Blosc
    blocks are one plane each (not split); IMGRAW in 4096-row chunks of 64 kB blocks; its
    file list tagged with the full view's layout. The header-3 view keeps c-blosc's blocks."""
    full = [c for c in _chunks(real_l0_archive) if "/" in c["part"] and c["part"][0].isdigit()]
    tag = f"v{colstore.STORE_VERSION}.{FULL_LAYOUT}\n"
    assert full and all(c["files"].startswith(tag) for c in full)
    for chunk in full:
        with h5py.File(real_l0_archive / chunk["path"], "r") as h5:
            for group in ("KEY", "OTHER"):
                dset = h5[group]
                assert dset.chunks == (dset.shape[0], colstore._PLANE_ROWS)
                blocks = _blosc_blocks(dset)
                assert blocks and all(size == colstore._PLANE_ROWS for size, _ in blocks)
                assert all(flags & 0x10 for _, flags in blocks)  # one stream a block
            images = h5["IMGRAW"]
            assert images.chunks == (4096, 64)
            assert {size for size, _ in _blosc_blocks(images)} == {colstore._COLUMN_BLOCK}
    hd3 = [c for c in _chunks(real_l0_archive) if c["part"].startswith("hd3/")]
    with h5py.File(real_l0_archive / hd3[0]["path"], "r") as h5:
        assert {size for size, _ in _blosc_blocks(h5["TIME"])} != {colstore._PLANE_ROWS}


def test_blosc_blocks_put_back(tmp_path):
    """Blocks of the size asked inside `blosc_blocks`, c-blosc's own after it (and after a
    failure inside it)."""
    data = np.arange(1 << 20, dtype=np.uint32).astype(np.uint8).reshape(16, -1)
    with h5py.File(tmp_path / "x.h5", "w") as h5:
        with blosc_blocks(4096):
            inside = h5.create_dataset("inside", data=data, chunks=data.shape, **_CODEC)
            inside.flush()  # HDF5 encodes a cached block when it leaves the cache
        with pytest.raises(RuntimeError), blosc_blocks(8192):
            raise RuntimeError("a failed write")
        after = h5.create_dataset("after", data=data, chunks=data.shape, **_CODEC)
        assert [size for size, _ in _blosc_blocks(inside)] == [4096]
        assert [size for size, _ in _blosc_blocks(after)] == [128 << 10]
        assert np.array_equal(inside[()], data) and np.array_equal(after[()], data)


def test_earlier_layout_served_from_files(tmp_path, real_l0_archive):
    """A full-view chunk tagged with the earlier layout is not read: its rows come from the
    files (equal values), and `mica rebuild store` writes it again in this layout."""
    root = tmp_path / "aca0"
    shutil.copytree(real_l0_archive, root)
    with ArchiveIndex(L0, root) as index, index.transaction():
        old = f"v{colstore.STORE_VERSION}.{FULL_LAYOUT}\n"
        index.conn.execute(
            "UPDATE store_chunks SET files = 'v' || ? || substr(files, ?) WHERE part LIKE '3/%'",
            (str(colstore.STORE_VERSION) + "\n", len(old) + 1),
        )
    ref = aca_l0.get_slot_data(*DAY, 3, data_root=root, use_store=False)
    with ArchiveIndex.open_for_reading(L0, root) as index:
        parts = [c["part"] for c in _chunks(root) if c["part"].startswith("3/")]
        assert parts and not ColumnStore(L0, index).current_chunks(parts)
    assert_same(aca_l0.get_slot_data(*DAY, 3, data_root=root), ref)
    with ArchiveIndex(L0, root) as index:
        ColumnStore(L0, index).rebuild(parts)
    with ArchiveIndex.open_for_reading(L0, root) as index:
        assert set(ColumnStore(L0, index).current_chunks(parts)) == set(parts)
    assert_same(aca_l0.get_slot_data(*DAY, 3, data_root=root), ref)
