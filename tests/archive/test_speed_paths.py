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


def test_ascii_columns_widen_to_numpy_strings():
    """The byte-to-code-point widening of the string columns equals numpy's S -> U cast,
    and anything it does not handle (non-ASCII bytes, other widths) goes to numpy's cast."""
    values = np.array([b"AB", b"", b"ABCD", b"x\x00y", b"Z  "], dtype="S4")
    wide = aca_l0._widen(values, np.dtype("<U4"))
    assert wide.dtype == np.dtype("<U4") and wide.tolist() == values.astype("<U4").tolist()
    odd = np.array([b"\xe9t\xe9"], dtype="S4")
    assert aca_l0._widen(odd, np.dtype("<U4")) is odd  # numpy's cast raises for it, as before
    assert aca_l0._widen(values, np.dtype("<U8")) is values


def test_file_names_by_runs_of_rows():
    out = np.zeros(7, dtype="<U40")
    aca_l0._put_names(out, ["a.fits", "b.fits", "c.fits"], np.array([0, 0, 2, 2, 2, 1, 1]))
    assert out.tolist() == ["a.fits"] * 2 + ["c.fits"] * 3 + ["b.fits"] * 2
