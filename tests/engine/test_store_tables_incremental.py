"""A store table derived again from the chunks that changed only (`mica.engine.store_tables`).

The header-3 mission table (``hd3d``) over three ``hd3s`` periods (50, 51 and 52, built
through the store's real chunk build, `mica.sim.hdr3_store`), period 51 ending early so that a
day can be added in its middle. After a day appended to the last period, one added to the
middle period (its chunk extended under a new generation) or a period's files removed (its
chunk dropped), only the chunk that changed is read (if any), and the table's datasets are
byte for byte those a derivation from every chunk writes; an old table of another layout,
missing or failing its digests is derived from every chunk, the same datasets.
"""

from __future__ import annotations

import dataclasses
import shutil

import h5py
import hdf5plugin
import numpy as np
import pytest

from mica.engine import store_tables
from mica.engine.colstore import STORE_VERSION, ColumnStore
from mica.engine.index import ArchiveIndex
from mica.engine.store_tables import PIECES, current_table
from mica.products.aca_l0 import L0
from mica.products.hdr3_mission import DAILY_TABLE, period_daily_bins
from mica.sim.hdr3_store import store_hdr3_files
from tests.archive.test_hdr3_mission import START, _files

DAY = 86400.0
#: The archive's (first day, days) from START (test_hdr3_mission's: period 50's last 40 days
#: are days 0-39, period 51 days 40-139, period 52 from day 140): 51 holds days 40-79 only.
DAYS = [(0, 80), (140, 10)]


@pytest.fixture(scope="module")
def periods(tmp_path_factory):
    root = tmp_path_factory.mktemp("hd3d-incremental") / "aca0"
    store_hdr3_files(root, [f for days in DAYS for f in _files(*days)])
    return root


@pytest.fixture
def derived():
    """The partitions whose chunk the table's derivations read, in order."""
    read: list[str] = []

    def spied(part, path, digests):
        read.append(part)
        return period_daily_bins(part, path, digests)

    tables = L0.store_description.tables  # (a list: the description itself is frozen)
    at = tables.index(DAILY_TABLE)
    tables[at] = dataclasses.replace(DAILY_TABLE, derive=spied)
    try:
        yield read
    finally:
        tables[at] = DAILY_TABLE


def _table(root):
    with ArchiveIndex.open_for_reading(L0, root) as index:
        return current_table(index.conn, root, L0.store_description, DAILY_TABLE, STORE_VERSION)


def _datasets(root) -> dict[str, tuple[str, tuple, bytes]]:
    """Every dataset of the current table file: dtype, shape and bytes."""
    digests = _table(root)
    assert digests is not None
    with h5py.File(digests.path, "r") as h5:
        return {name: (h5[name].dtype.str, h5[name].shape, h5[name][()].tobytes()) for name in h5}


def _set_sources(root, edit) -> None:
    """The table's recorded ``sources`` lines edited by ``edit`` (a list in, a list out)."""
    with ArchiveIndex(L0, root) as index, index.transaction():
        sources = index.conn.execute("SELECT sources FROM store_tables").fetchone()[0]
        index.conn.execute(
            "UPDATE store_tables SET sources = ?", ("\n".join(edit(sources.split("\n"))),)
        )


def _derive_again(root) -> None:
    with ArchiveIndex(L0, root) as index:
        ColumnStore(L0, index).derive_tables()


def _whole(root, tmp_path, derived, parts=("hd3s/50", "hd3s/51", "hd3s/52")):
    """The table's datasets as a derivation from every chunk (``parts``) writes them (in a
    copy: the recorded table named of another layout)."""
    copy = tmp_path / "whole" / "aca0"
    shutil.rmtree(copy.parent, ignore_errors=True)
    shutil.copytree(root, copy)
    _set_sources(copy, lambda lines: ["layout 0", *lines[1:]])
    derived.clear()
    _derive_again(copy)
    assert derived == list(parts)  # every chunk, in period order
    return _datasets(copy)


def test_only_changed_chunks_are_read_and_the_table_is_the_whole_one(periods, tmp_path, derived):
    """A day appended to the last period, then one added in the middle period: each time
    only that period's chunk is read; then the last period's chunk dropped: none is read.
    Each time the datasets equal a whole derivation's."""
    root = tmp_path / "aca0"
    shutil.copytree(periods, root)
    before = _datasets(root)
    assert before == _whole(root, tmp_path, derived)
    assert len(before) > 2 and PIECES in before
    for day, part in ((150, "hd3s/52"), (80, "hd3s/51")):
        derived.clear()
        store_hdr3_files(root, _files(day, 1))
        assert derived == [part]
        after = _datasets(root)
        assert after != before and after == _whole(root, tmp_path, derived)
        before = after
    # the middle day's bin is there, between its neighbours (bins by day since 1998)
    item = next(name for name in after if name.startswith("ST."))
    dtype, shape, data = after[item]
    bins = np.frombuffer(data, dtype=dtype).reshape(shape)[0]
    day80 = (START + 80 * DAY) // DAY
    assert np.all(np.diff(bins) > 0) and day80 in bins
    # the last period's files removed: its chunk dropped, no chunk read
    with ArchiveIndex(L0, root) as index, index.transaction():
        rows = index.query("filetime >= ?", [52 * 100 * DAY], columns="filename")
        index.replace([], [row["filename"] for row in rows])
    derived.clear()
    store_hdr3_files(root, [])
    assert derived == []
    assert _datasets(root) == _whole(root, tmp_path, derived, ("hd3s/50", "hd3s/51"))


@pytest.mark.parametrize("old", ["damaged", "missing", "other layout"])
def test_an_old_table_that_does_not_serve_is_derived_whole(periods, tmp_path, derived, caplog, old):
    """The recorded table fails its digests, is gone, or is of another layout: after a day
    appended, every chunk is read, and the datasets are the whole derivation's."""
    root = tmp_path / "aca0"
    shutil.copytree(periods, root)
    path = _table(root).path
    if old == "damaged":  # a flipped byte in a stored block of an item's bins
        data = bytearray(path.read_bytes())
        with h5py.File(path, "r") as h5:
            name = next(n for n in h5 if n.startswith("ST."))
            offset = h5[name].id.get_chunk_info(0).byte_offset
        data[offset + 40] ^= 0xFF
        path.write_bytes(bytes(data))
    elif old == "missing":
        path.unlink()
    else:
        _set_sources(root, lambda lines: [lines[0][:-1] + "1", *lines[1:]])
    derived.clear()
    with caplog.at_level("INFO", logger="mica.engine.store_tables"):
        store_hdr3_files(root, _files(150, 1))
    # each once (the changed one first when the table was to be extended)
    assert sorted(derived) == ["hd3s/50", "hd3s/51", "hd3s/52"]
    if old != "other layout":
        assert "derived from every chunk" in caplog.text
    assert _datasets(root) == _whole(root, tmp_path, derived)


def _blocks(root) -> dict[str, list[bytes]]:
    """Every dataset of the current table file: its stored blocks' bytes, in order."""
    with h5py.File(_table(root).path, "r") as h5:
        out = {}
        for name in h5:
            dset = h5[name]
            found: list[tuple[int, ...]] = []
            dset.id.chunk_iter(lambda info, found=found: found.append(info.chunk_offset))
            out[name] = [dset.id.read_direct_chunk(origin)[1] for origin in sorted(found)]
        return out


def test_a_table_of_many_blocks_keeps_the_blocks_before_what_changed(
    periods, tmp_path, derived, monkeypatch
):
    """Blocks of 8 days: a day appended to the last period keeps the stored blocks of the
    pieces before it as they were, copied (the table derived before in Blosc's zstd: they
    stay zstd), encodes those after it, and the datasets are the whole derivation's."""
    monkeypatch.setattr(store_tables, "_BLOCK", 8)
    codec = store_tables._CODEC
    monkeypatch.setattr(store_tables, "_CODEC", hdf5plugin.Blosc(cname="zstd", clevel=5))
    root = tmp_path / "aca0"
    shutil.copytree(periods, root)
    _set_sources(root, lambda lines: ["layout 0", *lines[1:]])
    _derive_again(root)  # every chunk, in blocks of 8 days, zstd
    before, datasets = _blocks(root), _datasets(root)
    names = sorted(name for name in datasets if name != PIECES)
    dtype, _, data = datasets[PIECES]
    lengths = np.frombuffer(data, dtype=dtype).reshape(len(names), 3)
    monkeypatch.setattr(store_tables, "_CODEC", codec)
    derived.clear()
    store_hdr3_files(root, _files(150, 1))
    assert derived == ["hd3s/52"]
    after = _blocks(root)
    for name, row in zip(names, lengths):
        kept = int(np.maximum(row[:2], 0).sum()) // 8  # the full blocks of periods 50-51
        assert kept >= 2 and len(after[name]) > kept
        assert after[name][:kept] == before[name][:kept]
        assert all(_cname(block) == "zstd" for block in after[name][:kept])
        assert all(_cname(block) == "lz4" for block in after[name][kept:])
    assert _datasets(root) == _whole(root, tmp_path, derived)


def _cname(block: bytes) -> str:
    """The codec of a stored Blosc block (its header's flags byte, bits 5-7)."""
    return {1: "lz4", 4: "zstd"}.get(block[2] >> 5, "other")
