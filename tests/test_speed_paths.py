"""The fast read paths give the reference answers (row-block fill of `get_slot_data`)."""

from __future__ import annotations

import numpy as np

from mica.archive import aca_l0


def test_row_block_fill_spans_blocks_and_equals_file_scan(real_l0_archive, monkeypatch):
    """A day of one slot fills many row blocks, across image-size changes, and equals the
    file scan (values and masks of every column) with and without images."""
    # Blocks of 500 rows (8192 in use): this day has 3416 rows of the slot.
    monkeypatch.setattr(aca_l0, "_FILL_ROWS", 500)
    for columns in (None, [c for c in aca_l0.SLOT_COLUMNS if c != "IMGRAW"]):
        kwargs = dict(slot=3, data_root=real_l0_archive, columns=columns)
        store = aca_l0.get_slot_data("2003:215", "2003:216", **kwargs)
        files = aca_l0.get_slot_data("2003:215", "2003:216", use_store=False, **kwargs)
        assert len(store) > 2 * aca_l0._FILL_ROWS
        assert len(np.unique(store["IMGSIZE"])) > 1  # masks change inside the output
        assert store.dtype == files.dtype
        for name in store.dtype.names:
            assert np.array_equal(np.ma.getmaskarray(store[name]), np.ma.getmaskarray(files[name]))
            assert np.array_equal(store[name].filled(0), files[name].filled(0)), name
        # a row at a block edge carries this row's own values, not a neighbour's
        edge = aca_l0._FILL_ROWS
        assert store["TIME"][edge - 1] < store["TIME"][edge] < store["TIME"][edge + 1]
