"""The fast read paths give the reference answers (row-block fill of `get_slot_data`)."""

from __future__ import annotations

import numpy as np

from mica.archive import aca_l0
from tests.conftest import SIM_START, SIM_STOP

SIM_SPAN = (SIM_START, SIM_STOP)


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


def test_aca_images_is_the_stacked_table_of_every_slot(real_l0_archive):
    """`get_aca_images` builds one table from every slot's good rows: the table a table per
    slot stacked and sorted by (TIME, IMGNUM) gives (columns, their order, classes, dtypes,
    values and masks), over a day of 4x4, 6x6 and 8x8 rows."""
    from astropy.table import Table, vstack

    span = ("2003:215", "2003:216")
    got = aca_l0.get_aca_images(*span, data_root=real_l0_archive)
    tables = []
    for slot in aca_l0.ALL_SLOTS:
        data = aca_l0.get_slot_data(*span, slot, centered_8x8=True, data_root=real_l0_archive)
        tables.append(Table(data[data["QUALITY"] == 0]))
    stacked = vstack(tables)
    stacked.sort(["TIME", "IMGNUM1"])
    want = _maude_columns(stacked)
    assert len(got) > 1000 and len(np.unique(got["IMGTYPE"])) > 1
    assert got.colnames == want.colnames
    for name in want.colnames:
        a, b = got[name], want[name]
        assert type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape, name
        assert np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b)), name
        assert np.array_equal(np.ma.getdata(a), np.ma.getdata(b)), name
    empty = aca_l0.get_aca_images("2003:217", "2003:218", data_root=real_l0_archive)
    assert empty.colnames == want.colnames and len(empty) == 0


def _maude_columns(table):
    """The columns the original's `get_aca_images` made of the stacked slots' table."""
    for name in table.colnames:
        col = table[name]
        if name != "IMGRAW" and hasattr(col, "mask") and not np.any(col.mask):
            table[name] = np.asarray(col)
    for base in ("IMGFID", "IMGFUNC", "IMGNUM"):
        table[base] = table[f"{base}1"]
        for k in range(1, 5):
            del table[f"{base}{k}"]
    size = np.asarray(table["IMGSIZE"])
    for axis in ("ROW", "COL"):
        base = np.asarray(table[f"IMG{axis}0"]).astype(np.int16)
        table[f"IMG{axis}_A1"] = base + np.where(size == 6, 1, 0)
        table[f"IMG{axis}0_8X8"] = base - np.select([size == 6, size == 4], [1, 2], 0)
    table["IMGTYPE"] = np.select([size == 8, size == 6], [4, 1], 0)
    table.rename_columns(["IMGRAW", "BGDTYP", "PIXTLM"], ["IMG", "AABGDTYP", "AAPIXTLM"])
    del table["FILENAME"], table["QUALITY"]
    table["VCDUCTR"] = np.asarray(table["MJF"], dtype=np.int64) * 128 + np.asarray(table["MNF"])
    table["IMG_VCDUCTR"] = table["VCDUCTR"]
    flags = [("GLBSTAT", 7, aca_l0.GLBSTAT_NAMES), ("IMGSTAT", 5, aca_l0.IMGSTAT_NAMES)]
    for column, top, names in flags:
        byte = np.asarray(table[column], dtype=np.uint8)
        for bit, name in zip(range(top, -1, -1), names):
            table[name] = (byte >> bit) & 1 == 1
    commcnt = np.asarray(table["COMMCNT"], dtype=np.uint8)
    table["COMMCNT"] = commcnt >> 2
    table["COMMCNT_CHECKSUM_FAIL"] = commcnt & 1 == 1
    table["COMMCNT_SYNTAX_ERROR"] = (commcnt >> 1) & 1 == 1
    commprog = np.asarray(table["COMMPROG"], dtype=np.uint8)
    table["COMMPROG"] = commprog >> 2
    table["COMMPROG_REPEAT"] = commprog & 3
    return table


def test_images_table_as_the_constructor_makes_it():
    """`_table_of` gives the table astropy's constructor makes of the same arrays (without
    copying them): column classes, names, dtypes, shapes, values, masks, fill values,
    units, formats, descriptions, meta, indices and the columns' parent table."""
    from astropy.table import Table

    n = 5
    arrays = {
        "TIME": np.linspace(0.0, 4.0, n),
        "IMG": np.ma.MaskedArray(np.ones((n, 8, 8), np.float32), mask=np.arange(n * 64) % 3 == 0),
        "HD3TLM62": np.ma.MaskedArray(np.arange(n, dtype=np.uint8), mask=[0, 1, 0, 1, 0]),
        "PIXTLM": np.array(["ORIG", "SUM"] * 2 + ["ORIG"]),
        "HIGH_BGD": np.arange(n) % 2 == 1,
    }
    want = Table(list(arrays.values()), names=list(arrays), copy=False)
    # and as astropy's own views make it (another astropy's columns: `_column_attributes`)
    for got in (aca_l0._table_of(arrays), aca_l0._table_viewed(Table(), arrays)):
        _assert_constructed(got, want, arrays)


def _assert_constructed(got, want, arrays) -> None:
    assert got.colnames == want.colnames and got.masked == want.masked and got.meta == want.meta
    for name in want.colnames:
        a, b = got[name], want[name]
        assert type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape, name
        for attr in ("name", "unit", "format", "description", "meta"):
            assert getattr(a, attr) == getattr(b, attr), (name, attr)
        assert a.info.indices == b.info.indices == [] and a.info.parent_table is got
        assert repr(getattr(a, "fill_value", None)) == repr(getattr(b, "fill_value", None)), name
        assert np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b)), name
        assert np.array_equal(np.ma.getdata(a), np.ma.getdata(b)), name
        assert np.shares_memory(np.ma.getdata(a), np.ma.getdata(arrays[name]))  # no copy
    assert repr(got) == repr(want)
    # each column its own indices and fill value
    assert len({id(got[name].info.indices) for name in got.colnames}) == len(got.colnames)
    got["HD3TLM62"].fill_value = 7
    assert got["IMG"].fill_value == want["IMG"].fill_value


def test_long_reads_decode_into_the_output_and_equal_the_file_scan(sim_l0_archive, monkeypatch):
    """Reads over many blocks of a chunk (here from 2 of its 4096-row blocks on) find their
    rows from the time index and the edge blocks' TIME, and decode their columns into the
    output (`DeferredPlanes`): the same values, masks and dtypes as the file scan, for ranges
    starting and ending inside blocks, at a block's first and last row, of a few rows across
    a block edge, and for every column, a few, and TIME alone."""
    from mica.engine import colstore, stored_blocks

    monkeypatch.setattr(colstore, "_LATER_BLOCKS", 2)
    monkeypatch.setattr(aca_l0, "_FILL_ROWS", 500)  # fills of several row blocks
    monkeypatch.setattr(colstore, "_SHORT_DEFER_ROWS", 1024)  # and of `ChunkedRows` images
    decoded = []  # the real decoding, counted
    into = stored_blocks.DeferredPlanes.into
    monkeypatch.setattr(
        stored_blocks.DeferredPlanes, "into", lambda self, c: decoded.append(1) or into(self, c)
    )
    no_images = [c for c in aca_l0.SLOT_COLUMNS if c != "IMGRAW"]
    for slot in (3, 7):  # 3 and 4 blocks of rows, of every image size
        times = aca_l0.get_slot_data(*SIM_SPAN, slot, columns="TIME", data_root=sim_l0_archive)
        times = np.asarray(times["TIME"])
        ranges = [  # (start, stop, over many blocks)
            (times[100], times[-100], True),
            (times[0] - 1, times[-1] + 1, True),
            (times[4096], times[8191], False),
            (times[4000], times[4200], False),
        ]
        for a, b, long in ranges:
            files = aca_l0.get_slot_data(a, b, slot, use_store=False, data_root=sim_l0_archive)
            assert len(files)
            for columns in [None, no_images, ["TIME", "TEMPCCD"], ["TEMPCCD", "HD3TLM62"]]:
                before = len(decoded)
                store = aca_l0.get_slot_data(a, b, slot, columns=columns, data_root=sim_l0_archive)
                if long and columns is not None:  # (images over many rows: ChunkedRows)
                    assert len(decoded) > before, (slot, a, b, columns)
                _assert_equal_columns(store, files)
            # columns of the header-3 views (each column alone): read at once, as before
            for columns, sizes in ((["TIME"], None), (["TIME", "HD3TLM62"], [8])):
                store = aca_l0.get_slot_data(
                    a, b, slot, sizes, columns=columns, data_root=sim_l0_archive
                )
                _assert_equal_columns(store, files[np.isin(files["IMGSIZE"], sizes or [4, 6, 8])])


def _assert_equal_columns(store: np.ma.MaskedArray, files: np.ma.MaskedArray) -> None:
    """``store``'s columns have the rows, dtypes, values and masks of those of ``files``."""
    assert len(store) == len(files)
    for name in store.dtype.names:
        assert store.dtype[name] == files.dtype[name], name
        assert np.array_equal(np.ma.getmaskarray(store[name]), np.ma.getmaskarray(files[name]))
        assert np.array_equal(store[name].filled(0), files[name].filled(0)), name
