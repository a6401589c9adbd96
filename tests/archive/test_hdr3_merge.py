"""The merge of a part's grid slots' times (`hdr3_samples._merge`): the sorted union and
each slot's positions in it, block by block (`MERGE_ROWS`), whatever the blocks' size; and
sets whose slots have different times read through it give the file scan's answer."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mica.archive import hdr3_samples
from mica.archive.aca_hdr3 import MSIDset
from mica.products.hdr3_items import get_item
from tests.archive.conftest import BOUNDARY
from tests.archive.test_aca_hdr3 import SIM_ITEMS, assert_set_equal

PERIOD = 100 * 86400.0


def merged(times: dict[int, np.ndarray]) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """`_merge`'s grid and each slot's positions in it (all of them for a slice)."""
    tables = {s: hdr3_samples.SlotTable(None, None, s, 0, len(t)) for s, t in times.items()}
    grid = hdr3_samples._merge(tables, times)
    return grid, {s: np.arange(len(grid))[t.placed] for s, t in tables.items()}


def grids(rng: np.random.Generator) -> list[dict[int, np.ndarray]]:
    """Slots' times: the same, mostly the same, disjoint, one empty, three slots, one row."""
    frames = 441763200.0 + 4.1 * np.arange(5000) + rng.uniform(0, 1e-3, 5000)
    some = np.sort(rng.choice(5000, 3000, replace=False))
    others = np.sort(rng.choice(5000, 4000, replace=False))
    return [
        {6: frames, 7: frames.copy()},
        {6: frames[some], 7: frames[others]},
        {6: frames[:2000], 7: frames[3000:]},
        {6: frames[3000:], 7: frames[:2000]},
        {6: frames[some], 7: frames[:0]},
        {0: frames[::3], 1: frames[others], 2: frames[1000:1500]},
        {4: frames[17:18], 5: frames[some]},
        {1: frames[:0], 2: frames[:0]},
    ]


@pytest.mark.parametrize("rows", [1, 7, 512, hdr3_samples.MERGE_ROWS])
def test_merge_is_the_sorted_union_and_each_slot_s_positions(monkeypatch, rows):
    monkeypatch.setattr(hdr3_samples, "MERGE_ROWS", rows)
    for times in grids(np.random.default_rng(rows)):
        grid, placed = merged(times)
        union = np.unique(np.concatenate(list(times.values())))
        assert np.array_equal(grid, union) and grid.dtype == np.float64
        for slot, positions in placed.items():
            assert np.array_equal(grid[positions], times[slot])


@pytest.fixture(scope="module")
def split_grids(tmp_path_factory, boundary_archive):
    """A copy of the boundary archive whose second period's sample-table chunk is dirty (read
    from the files), and [a, b] over both periods: the set's grid slots have different times
    in it (the merge runs), checked here."""
    from mica.engine.index import ArchiveIndex
    from mica.products.aca_l0 import L0

    root = tmp_path_factory.mktemp("merge") / "aca0"
    shutil.copytree(boundary_archive, root)
    items = {name: get_item(name) for name in SIM_ITEMS}
    a, b = BOUNDARY - 6000, BOUNDARY + 6000
    with hdr3_samples.open_tables(items, a, b, root) as parts:
        placed = [t.placed for t in parts[0].tables.values()]
    assert any(not isinstance(p, slice) for p in placed)  # different times: merged
    with ArchiveIndex(L0, root) as index:
        with index.transaction():
            index.mark_dirty([f"hd3s/{int(BOUNDARY // PERIOD)}"])
    with hdr3_samples.open_tables(items, a, b, root) as parts:
        assert [p.tables is not None for p in parts] == [True, False]  # then from the files
    return root, a, b


@pytest.mark.parametrize("rows", [3, 256, hdr3_samples.MERGE_ROWS])
def test_sets_of_slots_with_different_times_give_the_file_scan(monkeypatch, split_grids, rows):
    """Merged in blocks of any size, beside a period read from its files (dirty chunk), and
    inside the period the table serves: the file scan's grid and values."""
    root, a, b = split_grids
    monkeypatch.setattr(hdr3_samples, "MERGE_ROWS", rows)
    for lo, hi in [(a, b), (a, BOUNDARY - 1000), (a + 1234.5, a + 4834.5)]:
        fast = MSIDset(SIM_ITEMS, lo, hi, data_root=root)
        slow = MSIDset(SIM_ITEMS, lo, hi, data_root=root, use_store=False)
        assert assert_set_equal(fast, slow) > 500


def test_items_share_the_set_s_times(boundary_archive):
    """Every item's ``times`` is the set's grid, one array, as the original's items share
    theirs: no copy of the grid per item."""
    got = MSIDset(SIM_ITEMS, BOUNDARY - 3000, BOUNDARY + 3000, data_root=boundary_archive)
    slow = MSIDset(
        SIM_ITEMS, BOUNDARY - 3000, BOUNDARY + 3000, data_root=boundary_archive, use_store=False
    )
    assert len(got.times) > 500 and np.array_equal(got.times, slow.times)
    assert all(m.times is got.times for m in got.values())
    assert all(m.times is slow.times for m in slow.values())
