"""`get_aca_images` from the store against the table the files give (every slot's
``use_store=False`` rows stacked and sorted, as the original made the table), over 10-minute
ranges around a store period's edge: after it, the rows of files started before it come
from the look-back period's chunk, which is read only where its rows reach the range."""

from __future__ import annotations

import numpy as np
import pytest

from mica.archive import aca_l0
from tests.archive.conftest import BOUNDARY
from tests.archive.test_speed_paths import _maude_columns


def files_table(root, a, b):
    from astropy.table import Table, vstack

    tables = []
    for slot in aca_l0.ALL_SLOTS:
        data = aca_l0.get_slot_data(a, b, slot, centered_8x8=True, data_root=root, use_store=False)
        tables.append(Table(data[data["QUALITY"] == 0]))
    stacked = vstack(tables)
    stacked.sort(["TIME", "IMGNUM1"])
    return _maude_columns(stacked)


@pytest.mark.parametrize("start", [-900, -300, 0, 1, 300, 3000])
def test_aca_images_equal_the_files_around_a_period_edge(boundary_archive, start):
    a, b = BOUNDARY + start, BOUNDARY + start + 600
    got = aca_l0.get_aca_images(a, b, data_root=boundary_archive)
    want = files_table(boundary_archive, a, b)
    assert len(got) > 100 and got.colnames == want.colnames
    for name in want.colnames:
        x, y = got[name], want[name]
        assert type(x) is type(y) and x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(np.ma.getmaskarray(x), np.ma.getmaskarray(y)), name
        assert np.array_equal(np.ma.getdata(x), np.ma.getdata(y)), name


def test_a_range_after_the_edge_holds_rows_of_files_started_before_it(boundary_archive):
    """The range of ``start=1`` above needs the look-back period's rows (from its chunk)."""
    a, b = BOUNDARY + 1, BOUNDARY + 601
    before = 0
    for slot in aca_l0.ALL_SLOTS:
        data = aca_l0.get_slot_data(
            a, b, slot, columns=["FILENAME"], data_root=boundary_archive, use_store=False
        )
        before += sum(float(name[4:].split("N")[0]) < BOUNDARY for name in data["FILENAME"])
    assert before > 0
