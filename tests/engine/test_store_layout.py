"""The store layout derived from a product's store description: keys, columns and SQL."""

from __future__ import annotations

from collections import defaultdict

import pytest

from mica.engine.index import ArchiveIndex
from mica.engine.store_layout import StoreDescription, StoreView
from mica.products.aca_l0 import HD3_VIEW_COLUMNS, L0, STORE_COLUMNS


@pytest.mark.parametrize("fixture", ["real_l0_archive", "sim_l0_archive"])
def test_partition_sql_selects_exactly_its_files(fixture, request):
    """For every partition of an archive, its SQL selects the files whose rows it holds."""
    root = request.getfixturevalue(fixture)
    with ArchiveIndex.open_for_reading(L0, root) as index:
        rows = index.query()
        expected = defaultdict(set)
        for row in rows:
            for part in L0.partitions(row):
                expected[part].add(row["filename"])
        assert any(p.startswith("hd3/") for p in expected)  # both views are exercised
        for part, names in expected.items():
            where, params = L0.partition_where(part)
            got = {r["filename"] for r in index.query(where, params)}
            assert got == names, part
            cols = L0.partition_columns(part)
            hd3 = part.startswith(("hd3/", "hd3s/"))  # the header-3 and sample views
            assert cols == (HD3_VIEW_COLUMNS if hd3 else STORE_COLUMNS)


def test_narrowest_view_serves_columns_it_holds():
    row8 = {"slot": 3, "imgsize": 8, "filetime": 176267340.0}
    row8.update(tstart=row8["filetime"] + 0.5, tstop=row8["filetime"] + 3600.0)
    row6 = {**row8, "imgsize": 6}
    assert L0.partition(row8) == "3/204"
    assert L0.partition(row8, ["TIME", "HD3TLM62"]) == "hd3/3/20"
    assert L0.partition(row8, ["TIME", "IMGRAW"]) == "3/204"  # not all in the narrow view
    assert L0.partition(row6, ["TIME"]) == "3/204"  # the narrow view holds 8x8 rows only
    assert L0.partitions(row6) == ["3/204"]
    # the sample view (tables derived from every slot's 8x8 files) never serves rows
    assert L0.partitions(row8) == ["3/204", "hd3/3/20", "hd3s/20"]
    # the sample view holds files within its reach of a period too (`StoreView.reach`)
    end = 21 * 8640000.0
    near = {**row8, "filetime": end - 1000, "tstart": end - 999.5, "tstop": end - 500.0}
    assert L0.partitions(near) == ["3/209", "hd3/3/20", "hd3s/20", "hd3s/21"]
    assert L0.store.partition_derive("hd3s/20") and L0.store.partition_derive("hd3/3/20") is None


@pytest.mark.parametrize("part", ["x/1", "hd3/1", "1/2/3/4", "hd3/a/2"])
def test_keys_of_another_layout_are_refused(part):
    with pytest.raises(ValueError, match="not a store partition"):
        L0.partition_where(part)


def test_first_view_must_hold_every_file():
    with pytest.raises(ValueError, match="first store view"):
        StoreDescription({}, {}, [StoreView("narrow", ["TIME"], 86400.0)])
