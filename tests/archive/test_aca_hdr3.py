"""ACA header-3 pseudo-MSIDs: decoding and the MSID/MSIDset API."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mica.archive import aca_hdr3, aca_l0, hdr3_samples
from mica.archive.aca_hdr3 import MSID, MissingDataError, Msid, MSIDset
from mica.errors import MissingArchiveError
from mica.products.aca_l0 import HD3_COLUMNS
from mica.products.hdr3_items import (
    ITEMS,
    MSID_ALIASES,
    byte_columns,
    get_item,
    s16,
    valid_names,
)
from tests.archive.conftest import BOUNDARY

# Real 2003:215 data: slots 0-2 are 8x8 03:08-04:51, slot 7 8x8 with interleaved times.
REAL_START, REAL_STOP = "2003:215:00:00:00", "2003:216:00:00:00"


def word_bytes(*words: int) -> np.ndarray:
    """One row of big-endian bytes for 16-bit words (negative words as two's complement)."""
    return np.array([[b for w in words for b in ((w >> 8) & 0xFF, w & 0xFF)]], dtype=np.uint8)


def decode(name: str, *words: int) -> float:
    return get_item(name).decode(word_bytes(*words))[0]


# ---------------------------------------------------------------------------------------
# Decoding


@pytest.mark.parametrize(
    "b0, b1, expected",
    [
        (0x00, 0x00, 0),
        (0xF0, 0x0F, -4081),
        (0x0F, 0xF0, 4080),
        (0xFF, 0xFF, -1),
        (0x80, 0x00, -32768),
        (0x7F, 0xFF, 32767),
    ],
)
def test_s16_vectors(b0, b1, expected):
    assert s16(np.uint8(b0), np.uint8(b1)) == expected
    assert s16(np.array([b0], np.uint8), np.array([b1], np.uint8))[0] == expected


def test_s16_masked_if_either_byte_masked():
    hi = np.ma.masked_array(np.array([1, 2, 3], np.uint8), mask=[False, True, False])
    lo = np.ma.masked_array(np.array([4, 5, 6], np.uint8), mask=[False, False, True])
    out = s16(hi, lo)
    assert out.mask.tolist() == [False, True, True] and out[0] == 0x0104


@pytest.mark.parametrize(
    "counts, degc",
    [(13461, -9.349), (5724, 41.09), (6046, 38.80), (7318, 30.38), (4806, 48.19), (10000, 14.19)],
)
def test_thermistor_check_values(counts, degc):
    assert decode("ccd_det_therm", counts) == pytest.approx(degc, abs=0.005)


def test_thermistor_out_of_range_is_nan_not_masked():
    vals = get_item("ccd_det_therm").decode(np.vstack([word_bytes(16000), word_bytes(2000)]))
    assert np.all(np.isnan(vals.data)) and not vals.mask.any()


# Real 2003:215 values: raw word(s) -> physical value (the original's units; the extra names
# give V and degC).
SPEC_2003 = [
    ("ac_status_word", [692], 692, 0),
    ("misc_status_bits", [420], 420, 0),
    ("ccd_molyb_therm_1", [8416], 23.65, 0.005),
    ("ccd_molyb_therm_2", [8870], 20.92, 0.005),
    ("ccd_det_therm", [14075], -14.98, 0.005),
    ("ad_5v_ps", [16136], 4924.39, 0.01),
    ("ad_15v_ps", [24258], 14805.87, 0.01),
    ("ad_m15v_ps", [-24389], -14885.83, 0.01),
    ("ad_27v_ps", [25392], 26559.27, 0.01),
    ("ad_analog_gnd", [-1], -0.30518, 1e-12),
    ("ad_5v_ps_volts", [16136], 4.92, 0.005),
    ("ad_15v_ps_volts", [24258], 14.81, 0.005),
    ("ad_m15v_ps_volts", [-24389], -14.89, 0.005),
    ("ad_27v_ps_volts", [25392], 26.56, 0.005),
    ("ad_analog_gnd_volts", [-1], -0.30518e-3, 1e-9),
    ("ad_converter_therm", [6936], 32.82, 0.005),
    ("ad_smhs_therm", [9856], 15.05, 0.005),
    ("ad_smohs_therm", [9845], 15.11, 0.01),
    ("ad_achohs_therm", [9726], 15.82, 0.01),
    ("ccd_setpoint", [-1500], -1500, 0),
    ("ccd_setpoint_degc", [-1500], -15.00, 1e-9),
    ("aca_temp", [3960], 15.47, 0.005),
    ("last_ram_fail_addr", [0], 0, 0),
    ("dac", [347], 347, 0),
]


@pytest.mark.parametrize("name, words, expected, tol", SPEC_2003)
def test_spec_2003_words(name, words, expected, tol):
    assert decode(name, *words) == pytest.approx(expected, abs=tol)


def test_other_scalings():
    assert decode("avg_bkg", -3) == -15  # electrons, 5 x ADC counts, as the original's
    assert decode("avg_bkg_adc", -3) == -3.0
    assert decode("ccd_flush_dur", 0xFFFF) == 2 * 65535.0  # unsigned, 2 us LSB
    assert decode("ccd_row_shift_period", 100) == 100.0
    assert decode("sci_hdr_pulse_period", 0x0001, 0x0000) == 2.0 * 65536
    assert decode("zero_off16_quad_d", -5) == -5.0
    assert decode("zero_off32_quad_a", -2, 0x8000) == -1.5  # -2 + 0.5 ADC counts
    assert decode("aca_temp", -256) == -1.0  # word 772 (766 holds its sign extension)
    assert decode("dsn_hdr1", 0x0102, 0x0304, 0x0506) == 0x010203040506
    assert get_item("ccd_setpoint").unit == "counts" and get_item("ad_5v_ps").unit == "mV"
    assert get_item("ad_5v_ps_volts").unit == "V" and get_item("ccd_setpoint_degc").unit == "degC"


def test_ccd_temp_fine_uses_both_words_and_falls_back_to_high_word():
    temps = np.array([-15.123456, -0.004, 12.5])
    counts = np.rint(temps / 0.01 * 65536).astype(np.int64)
    raw = np.vstack([word_bytes(int(c >> 16), int(c & 0xFFFF)) for c in counts])
    item = get_item("ccd_temp_fine")
    assert np.allclose(item.decode(raw), temps, atol=1e-7)
    high = get_item("ccd_temp").decode(raw[:, :2])  # the original's: the high word alone
    assert np.allclose(high, np.floor(temps / 0.01) * 0.01)
    missing_low = np.ma.masked_array(raw, mask=np.zeros_like(raw, bool))
    missing_low.mask[:, 2:] = True  # slot 7 absent: high word alone, floor to 0.01 C
    out = item.decode(missing_low)
    assert not out.mask.any() and np.allclose(out, np.floor(temps / 0.01) * 0.01)
    missing_high = np.ma.masked_array(raw, mask=np.zeros_like(raw, bool))
    missing_high.mask[:, 1] = True
    assert item.decode(missing_high).mask.all()


def test_status_word_bits():
    item = get_item("ac_status_word")
    bits = item.bits(item.decode(word_bytes(692)))  # 0x02B4 = 00 0000 1010 11 0 10 0
    assert {k: int(v[0]) for k, v in bits.items()} == {
        "spare": 0,
        "readout_mode": 10,
        "sh_input_grounded": 0,
        "reset_in_column_flush": 1,
        "reset_in_row_shift": 0,
        "mux_to_ground": 1,
        "test_signal": 3,
        "command_error": 0,
        "parallel_clock": 2,
        "prom_write": 0,
    }
    assert bits["command_error"].dtype == bool and bits["readout_mode"].dtype.kind == "i"
    misc = get_item("misc_status_bits")
    bits = misc.bits(misc.decode(word_bytes(420)))  # 0x01A4: bits 2, 5, 7, 8
    assert sorted(k for k, v in bits.items() if v[0]) == [
        "ac_table_cksum_ok",
        "idle_code_lsb",
        "tec_active",
        "warm_boot",
    ]
    assert len(bits) == 16 and get_item("dac").bits(np.ma.arange(3)) == {}
    ctr = get_item("proc_stack_telem_ctr")
    bits = ctr.bits(ctr.decode(word_bytes(0x12FE)))
    assert (bits["stack_pointer"][0], bits["telem_update_ctr"][0]) == (0x12, 0xFE)


def test_item_table():
    assert len(ITEMS) == 38 and len(MSID_ALIASES) == 38
    assert all(item.desc and item.longdesc for item in ITEMS.values())
    assert byte_columns("476", 4) == (
        (4, "HD3TLM76"),
        (4, "HD3TLM77"),
        (5, "HD3TLM62"),
        (5, "HD3TLM63"),
    )
    assert get_item("ccd_temp").slots == (6,) and get_item("ccd_temp").slot == 6
    assert get_item("ccd_temp_fine").slots == (6, 7) and get_item("ccd_temp_fine").slot == 6
    assert [c for _, c in get_item("dsn_hdr1").byte_columns] == [f"HD3TLM6{i}" for i in range(2, 8)]
    assert get_item("aca_temp").byte_columns == ((7, "HD3TLM72"), (7, "HD3TLM73"))
    assert get_item("aca_temp").size == 4 and aca_hdr3.HDR3_DEF["766"]["nbytes"] == 4
    # Every byte of the 96-byte block is used by at most one item.
    used = [bc for item in ITEMS.values() for bc in item.byte_columns]
    assert len(used) == len(set(used))
    assert get_item("CCD_Temp") is get_item("676") is ITEMS["676"]


def test_unknown_name_lists_valid_names():
    with pytest.raises(MissingDataError) as err:
        get_item("ccd_tmp")
    assert isinstance(err.value, KeyError) and isinstance(err.value, ValueError)
    assert "msid ccd_tmp not found" in str(err.value)
    assert all(name in str(err.value) for name in MSID_ALIASES)
    with pytest.raises(KeyError):
        MSIDset(["dac", "nope"], "2003:215", "2003:216")


# ---------------------------------------------------------------------------------------
# Alignment and gap masking on synthetic rows (through the single data-access function)


def synthetic_rows(
    times: list[float], fill: dict[str, list[int]] | None = None
) -> aca_hdr3.SlotRows:
    cols = {name: np.zeros(len(times), dtype=np.uint8) for name in HD3_COLUMNS}
    for name, values in (fill or {}).items():
        cols[name][:] = values
    return aca_hdr3.SlotRows(np.array(times, dtype=float), cols, np.ones(len(times), bool))


def test_mask_gaps_rule():
    tstop = 100.0
    # 10.0 -> 14.1 -> 18.2 ok; 18.2 -> 30.0 gap; 30.0 -> 34.1005 within 0.001; 34.1005 ->
    # 38.3 off by 0.0995; last row: next is tstop + 33 (not 4.1 away); row past tstop is cut.
    times = [10.0, 14.1, 18.2, 30.0, 34.1005, 38.3, 42.4, 101.0]
    rows = aca_hdr3._mask_gaps(synthetic_rows(times), tstop)
    assert rows.times.tolist() == times[:-1]
    assert (~rows.valid).tolist() == [False, False, True, False, True, False, True]
    # Data continuing past the padded stop keeps the last in-range row.
    t = list(np.arange(0, 60, 4.1))
    rows = aca_hdr3._mask_gaps(synthetic_rows(t), tstop=t[3])
    assert len(rows.times) == 4 and rows.valid.all()


def test_msidset_alignment_synthetic(monkeypatch):
    """Slot 6 and 7 rows on partly different times; ccd_temp_fine takes slot 7's low word."""
    t6 = [1000.0 + 4.1 * i for i in range(6)]
    t7 = t6[2:] + [t6[-1] + 4.1, t6[-1] + 8.2]  # shares 4 stamps, 2 more of its own
    temp = -15.2537
    c = int(np.rint(temp / 0.01 * 65536))
    hi, lo = (c >> 16) & 0xFFFF, c & 0xFFFF
    rows = {
        6: synthetic_rows(t6, {"HD3TLM76": [hi >> 8] * 6, "HD3TLM77": [hi & 0xFF] * 6}),
        7: synthetic_rows(
            t7,
            {
                "HD3TLM62": [lo >> 8] * 6,
                "HD3TLM63": [lo & 0xFF] * 6,
                "HD3TLM76": [1] * 6,
                "HD3TLM77": [0xFF] * 6,
            },
        ),
    }
    calls = []

    def fake(start, stop, slots, data_root, use_store=True, columns=()):
        calls.extend((slot, stop) for slot in slots)
        return {slot: rows[slot] for slot in slots}

    monkeypatch.setattr(aca_hdr3, "_slot_hdr3_rows", fake)
    tstop = t7[-1]
    # use_store=False: the rows path (the store's sample table is tested on real archives)
    one = MSID("ccd_temp_fine", 999.0, tstop, use_store=False)
    assert sorted(s for s, _ in calls) == [6, 7] and all(s == tstop + 33 for _, s in calls)
    # The grid is slot 6's times only; the last slot-6 row is followed by no slot-6 row.
    assert one.times.tolist() == t6
    assert one.vals.mask.tolist() == [False] * 5 + [True]
    assert np.allclose(one.vals[2:5], temp, atol=1e-7)  # both words
    assert np.allclose(one.vals[:2], temp, atol=0.01) and not np.allclose(one.vals[:2], temp)
    both = MSIDset(["ccd_temp_fine", "DAC"], 999.0, tstop, use_store=False)
    assert list(both) == ["ccd_temp_fine", "DAC"]
    assert both["DAC"].times.tolist() == sorted(set(t6) | set(t7)) == both.times.tolist()
    assert both["DAC"].vals.count() == 5 and set(both["DAC"].vals.compressed()) == {511}
    assert both["ccd_temp_fine"].vals.count() == 5


# ---------------------------------------------------------------------------------------
# Real 2003:215 archive


@pytest.fixture(scope="module")
def real_set(real_l0_archive) -> MSIDset:
    return MSIDset(valid_names(), REAL_START, REAL_STOP, data_root=real_l0_archive)


def test_real_det_therm_matches_tempccd(real_l0_archive):
    msid = MSID("ccd_det_therm", REAL_START, REAL_STOP, data_root=real_l0_archive)
    rows = aca_l0.get_slot_data(
        REAL_START,
        REAL_STOP,
        0,
        imgsize=[8],
        columns=["TIME", "TEMPCCD"],
        data_root=real_l0_archive,
    )
    good = ~msid.vals.mask
    assert good.sum() > 1500
    idx = np.searchsorted(rows["TIME"].data, msid.times[good])
    assert np.array_equal(rows["TIME"].data[idx], msid.times[good])
    tempccd = rows["TEMPCCD"].data[idx] - 273.15
    assert np.max(np.abs(msid.vals[good] - tempccd)) < 0.5


# Real 2003 values: medians over the day (tolerance = row-to-row noise).
REAL_MEDIANS = {
    "ac_status_word": (692, 0),
    "misc_status_bits": (420, 0),
    "ccd_molyb_therm_1": (23.65, 0.02),
    "ccd_molyb_therm_2": (20.92, 0.02),
    "ccd_det_therm": (-14.98, 0.02),
    "ad_5v_ps": (4920, 10),
    "ad_15v_ps": (14810, 10),
    "ad_m15v_ps": (-14890, 10),
    "ad_27v_ps": (26560, 10),
    "ad_5v_ps_volts": (4.92, 0.01),
    "ad_analog_gnd": (-0.31, 0.01),
    "ad_converter_therm": (32.82, 0.05),
    "ad_smhs_therm": (15.05, 0.02),
    "ccd_setpoint": (-1500, 0),
    "ccd_setpoint_degc": (-15.00, 1e-9),
    "aca_temp": (15.47, 0.01),
    "last_ram_fail_addr": (0, 0),
    "dac": (347, 0),
}


def test_real_medians(real_set):
    for name, (expected, tol) in REAL_MEDIANS.items():
        assert float(np.ma.median(real_set[name].vals)) == pytest.approx(expected, abs=tol), name
    mirror = [
        np.ma.median(real_set[n].vals)
        for n in (
            "ad_smohs_therm",
            "ad_pmhs_therm",
            "ad_pmohs_therm",
            "ad_achhs_therm",
            "ad_achohs_therm",
            "ad_lc_therm",
        )
    ]
    assert 15.05 < min(mirror) and max(mirror) < 15.85


def test_real_alignment(real_set, real_l0_archive):
    times = real_set.times
    assert all(np.array_equal(m.times, times) for m in real_set.values())
    rows = {
        s: aca_l0.get_slot_data(
            REAL_START, REAL_STOP, s, columns=["TIME", "IMGSIZE"], data_root=real_l0_archive
        )
        for s in (0, 7)
    }
    t8 = {s: set(r["TIME"].data[r["IMGSIZE"].data == 8]) for s, r in rows.items()}
    assert set(times) == t8[0] | t8[7]
    # Slot 7 items are masked wherever slot 7 had no 8x8 row; slot 0-2 items likewise.
    not7 = ~np.isin(times, list(t8[7]))
    assert not7.sum() > 1500  # slot 7 runs on its own 4.1 s phase in this file set
    for name in ("dac", "aca_temp", "ccd_setpoint", "last_ram_fail_addr"):
        assert real_set[name].vals.mask[not7].all()
    assert real_set["ad_5v_ps"].vals.mask[~np.isin(times, list(t8[0]))].all()
    # Slots 3-6 never ran 8x8: their items are fully masked.
    for name in ("avg_bkg", "ccd_temp", "zero_off32_quad_c", "proc_stack_telem_ctr"):
        assert real_set[name].vals.mask.all()
    assert real_set["ad_5v_ps"].vals.count() == 1524 and real_set["dac"].vals.count() == 1518


def test_real_gap_masking(real_set):
    """The rows before the 2003 decom breaks (and the final row) carry stale bytes: masked."""
    m = real_set["ad_5v_ps"]
    # Last slot-0 row of file ...227 (45.1 s gap follows) and the last row of the data.
    for t in (176267336.42555985, 176273519.22582352):
        i = np.flatnonzero(m.times == t)
        assert len(i) == 1 and m.vals.mask[i[0]]
    assert np.all(np.abs(m.vals.compressed() - 4920) < 10)  # no stale words survive
    assert real_set["dac"].vals.mask[real_set.times == 176267334.37555975].all()


def test_filter_bad_and_copy(real_l0_archive):
    msid = MSID("ac_status_word", REAL_START, REAL_STOP, data_root=real_l0_archive)
    n, good = len(msid.times), msid.vals.count()
    assert msid.hdr3_msid == "062" and msid.msid == "ac_status_word" and msid.unit == ""
    assert msid.desc.startswith("AC status word") and msid.datestart.startswith("2003:215")
    assert set(msid.bits) >= {"readout_mode", "parallel_clock"}
    dup = msid.copy()
    filtered = msid.filter_bad(copy=True)
    assert len(msid.times) == n and isinstance(msid.vals, np.ma.MaskedArray)
    assert len(filtered.times) == len(filtered.vals) == good < n
    assert not isinstance(filtered.vals, np.ma.MaskedArray)
    assert np.all(filtered.bits["parallel_clock"] == 2)
    assert msid.filter_bad() is msid and len(msid.vals) == good
    assert len(dup.vals) == n and dup.vals is not msid.vals
    fast = Msid("AC_STATUS_WORD", REAL_START, REAL_STOP, data_root=real_l0_archive)
    assert np.array_equal(fast.vals, filtered.vals) and np.array_equal(fast.times, msid.times)
    given = MSID(
        "x",
        0.0,
        1.0,
        msid_data={
            "hdr3_msid": "776",
            "vals": np.ma.arange(2),
            "times": [0.0, 1.0],
            "desc": "d",
            "longdesc": "l",
        },
    )
    assert given.unit == "counts" and given.desc == "d" and given.bits == {}


def test_later_originals_clear_cache_is_taken(real_l0_archive):
    # code written for the original's later versions passes clear_cache (False in loops)
    plain = MSID("dac", REAL_START, REAL_STOP, data_root=real_l0_archive)
    kept = MSID("dac", REAL_START, REAL_STOP, data_root=real_l0_archive, clear_cache=False)
    assert len(plain.times) > 0
    assert np.array_equal(kept.times, plain.times)
    assert np.ma.allequal(kept.vals, plain.vals) and np.array_equal(kept.vals.mask, plain.vals.mask)


def test_empty_ranges(real_l0_archive, tmp_path):
    for start, stop, root in [
        ("2003:100", "2003:101", real_l0_archive),
        ("2003:215:03:00:00", "2003:215:03:00:30", real_l0_archive),
    ]:
        mset = MSIDset(["ccd_temp", "dac", "ad_5v_ps"], start, stop, data_root=root)
        assert len(mset.times) == 0
        for m in mset.values():
            assert len(m.vals) == 0 and len(m.times) == 0 and len(m.bits) == 0
        assert len(Msid("ac_status_word", start, stop, data_root=root).vals) == 0
    # A folder without an archive is an error, not an empty range.
    with pytest.raises(MissingArchiveError, match="no aca-l0 archive in .*no-archive"):
        MSIDset(["ccd_temp"], "2010:001", "2010:002", data_root=tmp_path / "no-archive")


def test_hd3_columns_are_the_only_bytes_read():
    assert {c for item in ITEMS.values() for _, c in item.byte_columns} == set(HD3_COLUMNS)


# ---------------------------------------------------------------------------------------
# The header-3 view of the store: exactly the file scan's answer

# Items of every kind: 32-bit over two slots (ccd_temp_fine), a word read apart from its
# key (aca_temp), 48-bit (dsn_hdr1), int16 counts (dac), mV, thermistor, a status word.
STORE_ITEMS = [
    "ccd_temp_fine",
    "ccd_temp",
    "aca_temp",
    "dsn_hdr1",
    "dac",
    "ad_5v_ps",
    "ccd_det_therm",
    "ac_status_word",
    "ad_15v_ps",
]


def assert_set_equal(fast: MSIDset, slow: MSIDset, data_root=None) -> int:
    """Same grid, values, masks and bit fields, for the set and (given ``data_root``) for
    each item alone, which the store's sample table serves (one grid slot); returns the
    number of unmasked values."""
    assert np.array_equal(fast.times, slow.times)
    good = 0
    for name in slow:
        if data_root is not None:
            args = ([name], slow.tstart, slow.tstop)
            alone = MSIDset(*args, data_root=data_root)
            assert_set_equal(alone, MSIDset(*args, data_root=data_root, use_store=False))
        a, b = fast[name], slow[name]
        assert np.array_equal(np.ma.getmaskarray(a.vals), np.ma.getmaskarray(b.vals)), name
        assert np.array_equal(np.ma.filled(a.vals, 0), np.ma.filled(b.vals, 0), equal_nan=True)
        assert a.vals.dtype == b.vals.dtype and a.bits.keys() == b.bits.keys(), name
        for field in a.bits:
            assert np.array_equal(np.ma.filled(a.bits[field], 0), np.ma.filled(b.bits[field], 0))
        good += int(a.vals.count())
    return good


def table_parts(items, a, b, data_root) -> list[tuple[bool, int]]:
    """Per period part of [a, b]: whether the sample tables serve it, and its grid's length."""
    with hdr3_samples.open_tables(items, a, b, data_root) as parts:
        return [(p.tables is not None, len(p.grid)) for p in parts]


def served_by_tables(items, a, b, data_root) -> bool:
    """Whether the sample tables serve every period of [a, b]."""
    return all(served for served, _ in table_parts(items, a, b, data_root))


def windows(t0: float, t1: float) -> list[tuple[float, float]]:
    """The whole span, hour-long windows at odd offsets, and one ending inside a gap."""
    out = [(t0, t1)]
    for k in range(int((t1 - t0) // 3600)):
        out.append((t0 + 1234.5 + 3600 * k, t0 + 1234.5 + 3600 * (k + 1)))
    return out


def test_store_equals_file_scan_hour_windows_real(real_l0_archive):
    t0, t1 = aca_l0.get_slot_data(
        REAL_START, REAL_STOP, 7, imgsize=[8], columns="TIME", data_root=real_l0_archive
    )["TIME"][[0, -1]]
    good = 0
    for a, b in windows(float(t0) - 100, float(t1) + 100):
        kwargs = dict(data_root=real_l0_archive)
        fast = MSIDset(STORE_ITEMS, a, b, **kwargs)
        slow = MSIDset(STORE_ITEMS, a, b, use_store=False, **kwargs)
        good += assert_set_equal(fast, slow, real_l0_archive)
    assert good > 10000  # slots 0-2 and 7 carry values here (6 never ran 8x8 in 2003)


SIM_ITEMS = ["ac_status_word", "ad_5v_ps", "ccd_det_therm", "ad_15v_ps", "ad_smohs_therm"]


def test_store_equals_file_scan_across_chunk_boundary(boundary_archive):
    from mica.engine.colstore import ColumnStore
    from mica.engine.index import ArchiveIndex
    from mica.products.aca_l0 import L0

    with ArchiveIndex(L0, boundary_archive) as index:
        parts = set(ColumnStore(L0, index).current_chunks(["hd3/0/51", "hd3/0/52"]))
    assert parts == {"hd3/0/51", "hd3/0/52"}  # served by two chunks
    good = 0
    for a, b in [*windows(BOUNDARY - 7300, BOUNDARY + 7300), (BOUNDARY - 1800, BOUNDARY + 1800)]:
        kwargs = dict(data_root=boundary_archive)
        fast = MSIDset(SIM_ITEMS, a, b, **kwargs)
        slow = MSIDset(SIM_ITEMS, a, b, use_store=False, **kwargs)
        good += assert_set_equal(fast, slow, boundary_archive)
    masked = MSIDset(SIM_ITEMS, BOUNDARY - 7300, BOUNDARY + 7300, data_root=boundary_archive)
    assert good > 20000 and masked["ad_5v_ps"].vals.mask.sum() > 0  # gaps were masked
    # The sample tables served every window, each period's part by its own table.
    items = {"ad_5v_ps": get_item("ad_5v_ps")}
    inside = table_parts(items, BOUNDARY - 7000, BOUNDARY - 3600, boundary_archive)
    assert len(inside) == 1 and inside[0][0] and inside[0][1] > 500
    both = table_parts(items, BOUNDARY - 7000, BOUNDARY + 7000, boundary_archive)
    assert [served for served, _ in both] == [True, True] and min(n for _, n in both) > 500


def test_chunk_and_file_partitions_mixed(tmp_path, boundary_archive):
    """One partition served by its chunk, the next (dirty) by its files, a third whose chunk
    file is gone by its files too: still the file scan's answer."""
    from mica.engine.colstore import ColumnStore
    from mica.engine.index import ArchiveIndex
    from mica.products.aca_l0 import L0

    root = tmp_path / "aca0"
    shutil.copytree(boundary_archive, root)
    with ArchiveIndex(L0, root) as index:
        with index.transaction():
            index.mark_dirty(["hd3/0/52"])
        path = ColumnStore(L0, index).chunk("hd3/1/51")["path"]
    (root / path).unlink()
    a, b = BOUNDARY - 5000, BOUNDARY + 5000
    fast = MSIDset(SIM_ITEMS, a, b, data_root=root)
    slow = MSIDset(SIM_ITEMS, a, b, data_root=root, use_store=False)
    assert assert_set_equal(fast, slow, root) > 5000


def test_sample_tables_and_files_across_periods(tmp_path, boundary_archive):
    """A range over two periods of the sample view: the first served by its table, the
    second (dirty) by its files; then with the first's chunk file gone, both by the files:
    the file scan's answer for the set (several grid slots) and each item alone."""
    from mica.engine.colstore import ColumnStore
    from mica.engine.index import ArchiveIndex
    from mica.products.aca_l0 import L0

    root = tmp_path / "aca0"
    shutil.copytree(boundary_archive, root)
    items = {name: get_item(name) for name in SIM_ITEMS}
    a, b = BOUNDARY - 5000, BOUNDARY + 5000
    assert [served for served, _ in table_parts(items, a, b, root)] == [True, True]
    with ArchiveIndex(L0, root) as index:
        with index.transaction():
            index.mark_dirty(["hd3s/52"])
        path = ColumnStore(L0, index).chunk("hd3s/51")["path"]
    assert [served for served, _ in table_parts(items, a, b, root)] == [True, False]
    slow = MSIDset(SIM_ITEMS, a, b, data_root=root, use_store=False)
    assert assert_set_equal(MSIDset(SIM_ITEMS, a, b, data_root=root), slow, root) > 5000
    (root / path).unlink()
    assert [served for served, _ in table_parts(items, a, b, root)] == [False, False]
    assert assert_set_equal(MSIDset(SIM_ITEMS, a, b, data_root=root), slow) > 5000


def test_chunks_of_the_byte_plane_layout_are_stale(tmp_path, boundary_archive):
    """A store written before the header-3 view kept each column alone (its chunks hold the
    12 bytes and TIME as byte planes, tagged with the shared layout version): readers use the
    files for them, `stale_parts` lists them and a rebuild writes the current layout."""
    import dataclasses

    import h5py

    from mica.engine.colstore import ColumnStore
    from mica.engine.index import ArchiveIndex
    from mica.products.aca_l0 import L0, L0Product

    class PlanesL0(L0Product):  # the earlier layout: the hd3 view as byte planes
        store = dataclasses.replace(
            L0.store, views=[L0.store.views[0], dataclasses.replace(L0.store.views[1], alone=False)]
        )

    root = tmp_path / "aca0"
    shutil.copytree(boundary_archive, root)
    hd3 = [f"hd3/{s}/{p}" for s in range(3) for p in (51, 52)]
    with ArchiveIndex(L0, root) as index:
        with index.transaction():
            index.conn.execute("DELETE FROM store_chunks WHERE part LIKE 'hd3/%'")
        ColumnStore(PlanesL0(), index).rebuild(hd3)  # the old layout, by the old code path
        path = ColumnStore(L0, index).chunk("hd3/0/51")["path"]
        assert ColumnStore(L0, index).current_chunks(hd3) == {}
        assert set(ColumnStore(L0, index).stale_parts()) == set(hd3)
    with h5py.File(root / path, "r") as h5:
        assert "KEY" in h5 and "TIME" not in h5  # byte planes
    a, b = BOUNDARY - 5000, BOUNDARY + 5000
    slow = MSIDset(SIM_ITEMS, a, b, data_root=root, use_store=False)
    assert assert_set_equal(MSIDset(SIM_ITEMS, a, b, data_root=root), slow, root) > 5000
    with ArchiveIndex(L0, root) as index:
        ColumnStore(L0, index).rebuild(ColumnStore(L0, index).stale_parts())
        assert set(ColumnStore(L0, index).current_chunks(hd3)) == set(hd3)
        assert ColumnStore(L0, index).stale_parts() == []
        path = ColumnStore(L0, index).chunk("hd3/0/51")["path"]
    with h5py.File(root / path, "r") as h5:
        assert "TIME" in h5 and "HD3TLM76" in h5 and "KEY" not in h5  # one dataset per column
    assert assert_set_equal(MSIDset(SIM_ITEMS, a, b, data_root=root), slow, root) > 5000
