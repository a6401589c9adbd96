"""Header-3 values are the original mica's for the same bytes: value and dtype, every item.

The oracles below are small independent implementations of the formulas of the original's
``mica/archive/aca_hdr3.py`` (sot/mica), each comment naming the function it stands for. They
run over the byte patterns that matter (0x0000, 0xFFFF, the sign boundaries, the thermistor
table's ends, the avg_bkg overflow bound, seeded random words), through the decoders directly,
through the compatibility names (``two_byte_sum``, ``ad_temp``, ``HDR3_DEF``) and through
``MSID`` on a simulated archive whose header-3 words are these patterns (the store's sample
tables and the file scan both). The three fixes (docs/migration.rst) are checked as fixes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy.interpolate import interp1d

from mica.archive import aca_hdr3, aca_l0
from mica.products.hdr3_items import EXTRA_ITEMS, ITEMS, get_item, valid_names
from mica.time import to_secs
from tests.archive.test_aca_hdr3 import served_by_tables
from tests.conftest import REPO_ROOT

# ---------------------------------------------------------------------------------------
# The original's formulas

# The original's thermistor table (its ``a_to_d``): A/D count (hex) -> degC.
ORIGINAL_A_TO_D = [
    ("3D70", -40), ("3C9E", -35), ("3B98", -30), ("3A55", -25), ("38CD", -20),
    ("36FD", -15), ("34E1", -10), ("3279", -5), ("2FCB", 0), ("2CDF", 5),
    ("29C5", 10), ("2688", 15), ("2340", 20), ("2000", 25), ("1CD3", 30),
    ("19CC", 35), ("16F4", 40), ("1454", 45), ("11EF", 50), ("0FC5", 55),
    ("0DD8", 60), ("0C22", 65), ("0A9F", 70), ("094D", 75), ("0825", 80),
]  # fmt: skip


def original_two_byte_sum(high: np.ndarray, low: np.ndarray, scale: float = 1) -> np.ndarray:
    """The original's ``two_byte_sum``: the bytes as a big-endian signed 16-bit word (int16),
    times ``scale`` with numpy's promotion (int16 for an int scale, wrapping; float64 for a
    float)."""
    word = high.astype(np.int32) * 256 + low.astype(np.int32)
    return np.where(word > 32767, word - 65536, word).astype(np.int16) * scale


def original_ad_temp(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """The original's ``ad_temp`` (``ad_func``): the signed word through a cubic ``interp1d``
    of the table, NaN outside it."""
    counts = np.array([int(h, 16) for h, _ in ORIGINAL_A_TO_D])
    degc = np.array([t for _, t in ORIGINAL_A_TO_D], dtype=float)
    order = np.argsort(counts)
    spline = interp1d(counts[order], degc[order], kind="cubic", bounds_error=False)
    return spline(original_two_byte_sum(high, low))


# The original's HDR3_DEF "value" of each item it decoded: (formula, slot, first byte of the
# word, scale). The key's slot; ccd_temp reads its high word 676, aca_temp its word 772.
ORIGINAL = {
    "066": ("ad_temp", 0, 66, None),
    "072": ("ad_temp", 0, 72, None),
    "074": ("ad_temp", 0, 74, None),
    "076": ("sum", 0, 76, 0.20518),
    "162": ("sum", 1, 62, 0.61035),
    "164": ("sum", 1, 64, 0.61035),
    "166": ("sum", 1, 66, 1.04597),
    "172": ("ad_temp", 1, 72, None),
    "174": ("ad_temp", 1, 74, None),
    "176": ("ad_temp", 1, 76, None),
    "262": ("ad_temp", 2, 62, None),
    "264": ("ad_temp", 2, 64, None),
    "266": ("ad_temp", 2, 66, None),
    "272": ("ad_temp", 2, 72, None),
    "274": ("ad_temp", 2, 74, None),
    "276": ("ad_temp", 2, 76, None),
    "576": ("sum", 5, 76, 5),
    "676": ("sum", 6, 76, 0.01),
    "764": ("sum", 7, 64, 1),
    "766": ("sum", 7, 72, 1 / 256.0),
    "776": ("sum", 7, 76, 1),
}
# Where the original is plainly wrong, what this mica gives instead (docs/migration.rst).
FIXED = {
    "076": ("sum", 0, 76, 0.30518),  # the documented LSB, not the 0.20518 typo
    "172": ("sum", 1, 72, 0.30518),  # analog ground in mV, not through the thermistor table
    "576": ("sum32", 5, 76, 5),  # 5 x the word in int32: the original's int16 wrapped
}


def expected(key: str, high: np.ndarray, low: np.ndarray, fixed: bool = True) -> np.ndarray:
    """The value of item ``key`` for these bytes: the original's formula or its fix."""
    kind, _, _, scale = (FIXED if fixed and key in FIXED else ORIGINAL)[key]
    if kind == "ad_temp":
        return original_ad_temp(high, low)
    if kind == "sum32":
        return original_two_byte_sum(high, low).astype(np.int32) * scale
    return original_two_byte_sum(high, low, scale)


def assert_same(got: np.ndarray, want: np.ndarray, key: str) -> None:
    """Same dtype; same values (the thermistor spline to 1e-9 C: solved here in numpy,
    by scipy in the original), NaN where the original has NaN."""
    got = np.asarray(np.ma.getdata(got))
    assert got.dtype == want.dtype, (key, got.dtype, want.dtype)
    if ORIGINAL[key][0] == "ad_temp" and key not in FIXED:
        assert np.array_equal(np.isnan(got), np.isnan(want)), key
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9, err_msg=key)
    else:
        assert np.array_equal(got, want), key


# ---------------------------------------------------------------------------------------
# Byte patterns

SPECIAL_WORDS = [
    0x0000, 0xFFFF, 0x7FFF, 0x8000, 0x8001, 0x7FFE, 0x0001, 0xFFFE, 0x00FF, 0xFF00,
    0x0100, 0x0080, 0x0825, 0x0824, 0x3D70, 0x3D71, 0x2000, 0x1999, 0x199A, 0xE667,
    0xE666, 0x0D7A, 0xFA24, 0x015B,
]  # fmt: skip
# Seeded random words after the special ones: every pattern a word position takes.
PATTERNS = np.array(
    SPECIAL_WORDS + np.random.default_rng(2026).integers(0, 65536, 24).tolist(), dtype=np.int64
)


def word_bytes(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(high, low) uint8 bytes of 16-bit words."""
    words = np.asarray(words, dtype=np.int64) & 0xFFFF
    return (words >> 8).astype(np.uint8), (words & 0xFF).astype(np.uint8)


def all_words() -> np.ndarray:
    """The patterns, then 5000 seeded random words."""
    rng = np.random.default_rng(26)
    return np.concatenate([PATTERNS, rng.integers(0, 65536, 5000)])


# ---------------------------------------------------------------------------------------
# The decoders


@pytest.mark.parametrize("key", sorted(ORIGINAL))
def test_items_decode_the_bytes_the_original_did(key):
    _, slot, first, _ = ORIGINAL[key]
    item = ITEMS[key]
    assert item.byte_columns == ((slot, f"HD3TLM{first}"), (slot, f"HD3TLM{first + 1}"))
    assert aca_hdr3.HDR3_DEF[key]["msid"] == item.msid


@pytest.mark.parametrize("key", sorted(ORIGINAL))
def test_decode_is_the_original_formula(key):
    high, low = word_bytes(all_words())
    item = ITEMS[key]
    want = expected(key, high, low)
    got = item.decode(np.column_stack([high, low]))
    assert not np.ma.getmaskarray(got).any()
    assert_same(got, want, key)
    # the store's path: the same from 16-bit words
    words = high.astype(np.uint16) << 8 | low
    assert_same(item.decode_words([words], [np.zeros(len(words), bool)]), want, key)


@pytest.mark.parametrize("key", sorted(ORIGINAL))
def test_compatibility_names_are_the_original_formula(key):
    """``HDR3_DEF[key]['value']`` of one slot's rows, and ``two_byte_sum``/``ad_temp`` with the
    original's arguments."""
    kind, slot, first, scale = ORIGINAL[key]
    high, low = word_bytes(all_words())
    cols = {f"HD3TLM{first}": high, f"HD3TLM{first + 1}": low}
    assert_same(aca_hdr3.HDR3_DEF[key]["value"](cols), expected(key, high, low), key)
    names = list(cols)
    if kind == "ad_temp":
        got = aca_hdr3.ad_temp(names)(cols)
        want = original_ad_temp(high, low)
        assert np.array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    else:
        got = aca_hdr3.two_byte_sum(names, scale=scale)(cols)
        want = original_two_byte_sum(high, low, scale)
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_fixes_change_only_what_they_say():
    words = all_words()
    high, low = word_bytes(words)
    signed = np.where(words > 32767, words - 65536, words)
    got = {key: np.ma.getdata(ITEMS[key].decode(np.column_stack([high, low]))) for key in FIXED}
    # ad_5v_ps: 0.30518 / 0.20518 of the original's (48.7 % more)
    orig = expected("076", high, low, fixed=False)
    nonzero = signed != 0
    np.testing.assert_allclose(orig[nonzero] / got["076"][nonzero], 0.20518 / 0.30518, rtol=1e-12)
    # ad_analog_gnd: the original's is NaN for every reading near ground
    near_ground = np.abs(signed) < 2085
    assert np.isnan(expected("172", high, low, fixed=False)[near_ground]).all()
    assert np.array_equal(got["172"], signed * 0.30518)
    # avg_bkg: equal to the original's up to 6553 ADC counts, beyond it the original wrapped
    orig = expected("576", high, low, fixed=False)
    small = np.abs(signed) <= 6553
    assert small.sum() > 100 and (~small).sum() > 100
    assert np.array_equal(got["576"][small], orig[small])
    assert np.array_equal(got["576"], signed * 5) and not np.array_equal(got["576"], orig)
    # each fix is said in the item's desc and listed in the migration notes
    migration = (REPO_ROOT / "docs" / "migration.rst").read_text()
    for key in FIXED:
        assert "fixed:" in ITEMS[key].desc
        assert re.search(rf"^ *\* ``{ITEMS[key].msid}`` fixed: ", migration, re.M), key
    assert all("fixed:" not in ITEMS[key].desc for key in ORIGINAL if key not in FIXED)


def test_extra_names_are_other_units_of_the_same_bytes():
    high, low = word_bytes(all_words())
    raw = np.column_stack([high, low])
    val = {
        name: np.ma.getdata(get_item(name).decode(raw))
        for name in valid_names()
        if get_item(name).nbytes == 2
    }
    for base in ("ad_5v_ps", "ad_15v_ps", "ad_m15v_ps", "ad_27v_ps", "ad_analog_gnd"):
        assert get_item(f"{base}_volts").unit == "V" and get_item(base).unit == "mV"
        np.testing.assert_allclose(val[f"{base}_volts"], val[base] / 1000, rtol=1e-15)
    assert np.array_equal(val["avg_bkg_adc"] * 5, val["avg_bkg"])
    assert np.array_equal(val["ccd_setpoint_degc"], val["ccd_setpoint"] * 0.01)
    assert (
        get_item("ccd_setpoint_degc").unit == "degC" and get_item("ccd_setpoint").unit == "counts"
    )
    # ccd_temp_fine adds the low word (slot 7) to ccd_temp's high word
    fine = get_item("ccd_temp_fine")
    assert fine.byte_columns[:2] == get_item("ccd_temp").byte_columns and fine.slots == (6, 7)
    out = np.ma.getdata(fine.decode(np.column_stack([high, low, low, high])))
    assert np.all(out >= val["ccd_temp"]) and np.all(out < val["ccd_temp"] + 0.01)
    assert all(item.key in ITEMS and item.msid not in ITEMS for item in EXTRA_ITEMS.values())


# ---------------------------------------------------------------------------------------
# Through MSID on a simulated archive whose header-3 words are the patterns

T0 = to_secs("2012:001:02:30:00")  # every slot reads 8x8 rows from here (slot 7 in 3 runs)
T1 = to_secs("2012:001:06:00:00")


def pattern_words(slot, times, vcdu, mission=None, rng=None):
    """Stands in for `mica.sim.hdr3.slot_words`: consecutive rows step through `PATTERNS`,
    each word position and slot at its own offset."""
    step = np.rint(np.asarray(times) / 4.1).astype(np.int64)
    return np.stack([PATTERNS[(step + 7 * k + 11 * slot) % len(PATTERNS)] for k in range(6)], 1)


@pytest.fixture(scope="module")
def pattern_archive(tmp_path_factory):
    from mica.engine.time_update import update_archive
    from mica.products.aca_l0 import L0
    from mica.sim import hdr3

    root = tmp_path_factory.mktemp("hdr3-patterns") / "aca0"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hdr3, "slot_words", pattern_words)
        mp.setenv("MICA_WORKERS", "1")  # the files are written here, where the patch is
        report = update_archive(L0, "sim", T0 - 600, T1 + 600, data_root=root)
    assert report.ingested and not report.rejected
    return root


def archive_bytes(root: Path, slot: int, first: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TIME and the (high, low) bytes of a slot's 8x8 rows, from the FITS files."""
    cols = [f"HD3TLM{first}", f"HD3TLM{first + 1}"]
    rows = aca_l0.get_slot_data(
        T0, T1, slot, imgsize=[8], columns=["TIME", *cols], data_root=root, use_store=False
    )
    return rows["TIME"].data, rows[cols[0]].data, rows[cols[1]].data


@pytest.mark.parametrize("use_store", [True, False])
def test_msid_values_are_the_original_formula(pattern_archive, use_store):
    for key in sorted(ORIGINAL):
        _, slot, first, _ = ORIGINAL[key]
        msid = aca_hdr3.MSID(
            ITEMS[key].msid, T0, T1, data_root=pattern_archive, use_store=use_store
        )
        times, high, low = archive_bytes(pattern_archive, slot, first)
        good = ~np.ma.getmaskarray(msid.vals)
        at = np.searchsorted(times, msid.times[good])
        assert np.array_equal(times[at], msid.times[good])
        assert_same(np.ma.getdata(msid.vals)[good], expected(key, high[at], low[at]), key)
        # every pattern was read by this item
        seen = set((high[at].astype(int) * 256 + low[at]).tolist())
        assert seen >= set(PATTERNS.tolist()), (key, len(set(PATTERNS.tolist()) - seen))
        assert msid.vals.dtype == expected(key, high[:1], low[:1]).dtype


def test_store_equals_file_scan_every_name(pattern_archive):
    """The sample tables serve each item alone and give the file scan's values, masks and
    dtypes, for every name (the original's and the extra ones)."""
    for name in valid_names():
        item = get_item(name)
        assert served_by_tables({name: item}, T0, T1, pattern_archive)
        fast = aca_hdr3.MSID(name, T0, T1, data_root=pattern_archive)
        slow = aca_hdr3.MSID(name, T0, T1, data_root=pattern_archive, use_store=False)
        assert np.array_equal(fast.times, slow.times) and fast.vals.count() > 1000
        assert fast.vals.dtype == slow.vals.dtype, name
        assert np.array_equal(np.ma.getmaskarray(fast.vals), np.ma.getmaskarray(slow.vals))
        assert np.array_equal(np.ma.getdata(fast.vals), np.ma.getdata(slow.vals), equal_nan=True)
        assert fast.unit == item.unit and fast.desc == item.desc
    together = aca_hdr3.MSIDset(valid_names(), T0, T1, data_root=pattern_archive)
    apart = aca_hdr3.MSIDset(valid_names(), T0, T1, data_root=pattern_archive, use_store=False)
    for name in valid_names():
        # on the shared grid, where an item's slot has no row the value is masked (what
        # lies under the mask is no value: compared filled)
        a, b = together[name].vals, apart[name].vals
        assert a.dtype == b.dtype and np.array_equal(a.mask, b.mask), name
        assert np.array_equal(a.filled(0), b.filled(0), equal_nan=True), name
