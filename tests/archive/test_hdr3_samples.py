"""The header-3 sample table and the word decoders it feeds.

The store path decodes the table's 16-bit words (`Hdr3Item.decode_words`), the file scan the
rows' bytes (`Hdr3Item.decode`, which packs them into words first): both must give the same
values, masks and bit fields, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from mica.archive import aca_hdr3
from mica.archive.aca_hdr3 import MSIDset
from mica.products.hdr3_items import get_item, valid_names, words_of
from mica.time import to_secs
from tests.archive.test_aca_hdr3 import assert_set_equal, served_by_tables, table_parts, windows

T0 = to_secs("2012:001:00:00:00")
SPAN = 6 * 3600.0
# 32-bit over two slots (ccd_temp_fine 6 -> 7, zero_off32_quad_c 4 -> 5), the high word of
# one (ccd_temp), a word read apart from its key (aca_temp), 48-bit, a status word with
# fields, a thermistor, mV and V.
ITEMS_ONE_SLOT = [
    "ccd_temp_fine",
    "ccd_temp",
    "zero_off32_quad_c",
    "aca_temp",
    "dsn_hdr1",
    "ac_status_word",
    "ccd_det_therm",
    "ad_5v_ps",
    "ad_5v_ps_volts",
]


@pytest.fixture(scope="module")
def sim_archive(tmp_path_factory):
    """Six simulated hours in one ``hd3s`` partition: slots 4-7 read 8x8, slot 7 about half
    the time (so ``ccd_temp_fine`` often falls back to its high word)."""
    from mica.engine.time_update import update_archive
    from mica.products.aca_l0 import L0

    root = tmp_path_factory.mktemp("hd3s") / "aca0"
    update_archive(L0, "sim", T0, T0 + SPAN, data_root=root)
    return root


def _masked_bytes(rng: np.random.Generator, n: int, nbytes: int) -> np.ma.MaskedArray:
    raw = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    raw[:50] = 0  # the extremes of every word
    raw[50:100] = 0xFF
    raw[100:150, ::2] = 0x80
    return np.ma.masked_array(raw, mask=rng.random((n, nbytes)) < 0.1)


@pytest.mark.parametrize("name", valid_names())
def test_decode_words_is_decode_of_the_bytes(name):
    item = get_item(name)
    raw = _masked_bytes(np.random.default_rng(valid_names().index(name)), 5000, item.nbytes)
    from_bytes = item.decode(raw)
    words, masks = words_of(raw, item.nbytes)
    # as the table holds them: uint16 words; one shared mask per slot
    per_slot = {}
    shared = []
    for (slot, _), mask in zip(item.word_columns, masks):
        per_slot[slot] = per_slot.get(slot, np.zeros(len(mask), bool)) | mask
    for slot, _ in item.word_columns:
        shared.append(per_slot[slot])
    kept = [m.copy() for m in shared]
    for got_masks in (masks, shared):
        got = item.decode_words([w.astype(np.uint16) for w in words], got_masks)
        ref = item.decode(raw) if got_masks is masks else _decode_slot_masked(item, raw, shared)
        assert got.dtype == ref.dtype
        assert np.array_equal(np.ma.getmaskarray(got), np.ma.getmaskarray(ref)), name
        assert np.array_equal(np.ma.getdata(got), np.ma.getdata(ref), equal_nan=True), name
        for name, field in item.bits(got).items():
            assert np.array_equal(np.ma.filled(field, 0), np.ma.filled(item.bits(ref)[name], 0))
    assert all(np.array_equal(a, b) for a, b in zip(shared, kept))  # inputs left alone
    assert from_bytes.count() > 0 and np.ma.getmaskarray(from_bytes).any()


def _decode_slot_masked(item, raw, shared):
    """`decode` of the bytes with each byte masked as its word's slot mask says."""
    mask = np.column_stack([m for m in shared for _ in range(2)])
    return item.decode(np.ma.masked_array(np.ma.getdata(raw), mask=mask))


def test_split32_words_against_integer_arithmetic():
    """ccd_temp_fine from words: (signed high * 65536 + low) * 0.01 / 65536, the high word
    alone where the low one is masked."""
    item = get_item("ccd_temp_fine")
    high = np.array([0xFFFF, 0x8000, 0x0000, 0x7FFF, 0xFA12], dtype=np.uint16)
    low = np.array([0xFFFF, 0x0000, 0x0001, 0xFFFF, 0x1234], dtype=np.uint16)
    low_masked = np.array([False, False, True, False, True])
    out = item.decode_words([high, low], [np.zeros(5, bool), low_masked])
    signed = [h - 65536 if h >= 32768 else h for h in high.tolist()]
    want = [
        (s * 65536 + (0 if m else lo)) * (0.01 / 65536)
        for s, lo, m in zip(signed, low.tolist(), low_masked)
    ]
    assert not out.mask.any() and np.allclose(out, want, rtol=0, atol=1e-12)
    assert item.decode_words([high, low], [high == 0x8000, low_masked]).mask.tolist() == [
        False,
        True,
        False,
        False,
        False,
    ]


def test_decode_words_wants_one_word_and_mask_per_word():
    item = get_item("ccd_temp_fine")
    with pytest.raises(ValueError, match="ccd_temp_fine takes 2 words"):
        item.decode_words([np.zeros(3, np.uint16)], [np.zeros(3, bool)])


def test_store_table_equals_file_scan_sim(sim_archive):
    """Each item alone and all together (the sample tables serve both), over the six
    hours, hour windows and a window past the data: the file scan's answer, gaps and the
    high-word fallback included."""
    good = 0
    for a, b in [*windows(T0 - 50, T0 + SPAN + 50), (T0 + SPAN - 1800, T0 + SPAN + 1800)]:
        for name in ITEMS_ONE_SLOT:
            items = {name: get_item(name)}
            assert served_by_tables(items, a, b, sim_archive)
        assert served_by_tables({n: get_item(n) for n in ITEMS_ONE_SLOT}, a, b, sim_archive)
        fast = MSIDset(ITEMS_ONE_SLOT, a, b, data_root=sim_archive)
        slow = MSIDset(ITEMS_ONE_SLOT, a, b, data_root=sim_archive, use_store=False)
        good += assert_set_equal(fast, slow, sim_archive)
    assert good > 10000
    whole = aca_hdr3.MSID("ccd_temp_fine", T0, T0 + SPAN, data_root=sim_archive)
    assert whole.bads.any()  # gaps were masked
    rows = aca_hdr3._slot_hdr3_rows(T0, T0 + SPAN, [7], sim_archive, use_store=False)
    alone = ~np.isin(whole.times, rows[7].times) & ~whole.bads  # no slot 7 row: high word
    assert alone.sum() > 100
    hundredths = np.ma.getdata(whole.vals)[alone] * 100
    assert np.allclose(hundredths, np.round(hundredths), rtol=0, atol=1e-6)


def test_range_without_files_in_a_stored_partition(sim_archive):
    """A range inside the partition's period but past its files: no index query, the table
    gives an empty answer, as the file scan does."""
    a, b = T0 + SPAN + 7200, T0 + SPAN + 10800
    got = table_parts({"ccd_temp": get_item("ccd_temp")}, a, b, sim_archive)
    assert got == [(True, 0)]
    fast = MSIDset(["ccd_temp"], a, b, data_root=sim_archive)
    assert len(fast["ccd_temp"]) == 0 and fast["ccd_temp"].vals.dtype == np.float64
    slow = MSIDset(["ccd_temp"], a, b, data_root=sim_archive, use_store=False)
    assert_set_equal(fast, slow)
