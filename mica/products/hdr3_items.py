"""ACA header-3 diagnostic items: the 38-entry table and their decoders (no I/O).

The 12 ``HD3TLM*`` bytes of every 8x8 slot form
a 96-byte diagnostic block read as big-endian 16-bit words. An item is named by its key
``SIW`` (slot, image type 6/7, first byte 2/4/6) and occupies ``size`` bytes starting there;
multi-word items continue through the byte pairs 62, 64, 66, 72, 74, 76 and then into the
next slot (see `byte_columns`). It decodes ``nbytes`` of them, from ``start`` (the key, but
for ``aca_temp``, whose value is its low word 772).

Values are the original mica's for the same bytes, in its units and dtypes, for the 21 items
it decoded (its ``HDR3_DEF`` ``value``), except where it was plainly wrong (the item's
``desc`` says so and docs/migration.rst lists the change): ``ad_5v_ps`` (0.20518 typo of its
0.30518 mV LSB), ``ad_analog_gnd`` (run through the thermistor table) and ``avg_bkg`` (int16
overflow past 6553 ADC counts). Other units and resolutions are other names
(`EXTRA_ITEMS`: ``ad_5v_ps_volts``, ``ccd_setpoint_degc``, ``ccd_temp_fine``, ...) decoding
the same bytes.

Decoding API
------------
* ``item.decode(raw)`` takes an ``(n, item.nbytes)`` array (masked or plain, uint8) of the
  item's bytes in the order of ``item.byte_columns`` and returns a masked array of ``n``
  physical values in ``item.unit``. A value is masked when any byte it needs is masked,
  except that a 32-bit value whose low word sits in the next slot (``ccd_temp_fine``,
  ``zero_off32_quad_c``) falls back to its high word alone when only the low word is masked.
* ``item.decode_words(words, masks)`` is the same from the item's 16-bit words (most
  significant first) and one mask per word, as the store's sample table holds them; every
  decoder is written once, on words, and ``decode`` packs the bytes (`words_of`) first.
* ``item.bits(vals)`` splits the raw integer ``vals`` of an item with ``fields`` (the status
  words 062/064 and the packed words 362/672) into ``{field name: masked array}``; one-bit
  fields are bool, wider ones int. Items without fields return ``{}``.
* Thermistor items go through `hdr3_calib.ad_to_degc`: counts outside the calibrated range
  give NaN (not masked), as in the original.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mica.errors import MissingDataError  # raised for unknown names; re-exported
from mica.products.hdr3_calib import ad_to_degc

__all__ = [
    "HD3_COLUMNS",
    "WORD_PAIRS",
    "BitField",
    "Hdr3Item",
    "EXTRA_ITEMS",
    "ITEMS",
    "MSID_ALIASES",
    "MissingDataError",
    "PARALLEL_CLOCK_US",
    "byte_columns",
    "get_item",
    "s16",
    "valid_names",
    "words_of",
]

#: First byte of each 16-bit word of one slot, in continuation order.
WORD_PAIRS = (62, 64, 66, 72, 74, 76)
#: The 12 header-3 byte columns of an 8x8 L0 row, HD3TLM62..67 and HD3TLM72..77 (each word's
#: high byte, then its low byte).
HD3_COLUMNS = [f"HD3TLM{first + k}" for first in WORD_PAIRS for k in (0, 1)]
#: ac_status_word ``parallel_clock`` code -> clock period for parallel shifts (us).
PARALLEL_CLOCK_US = {0: 6, 1: 12, 2: 24, 3: 48}

# Documented LSBs in mV; ad_5v_ps uses 0.30518, not the original's 0.20518 typo.
LSB_5V_MV = 0.30518
LSB_TYPO_5V_MV = 0.20518  # the original's ad_5v_ps scale (named in the item's desc)
LSB_15V_MV = 0.61035
LSB_27V_MV = 1.04597


def byte_columns(key: str, nbytes: int) -> tuple[tuple[int, str], ...]:
    """(slot, column) of each byte of an item, most significant first."""
    slot, pair = int(key[0]), WORD_PAIRS.index(int(key[1:]))
    out: list[tuple[int, str]] = []
    for _ in range(nbytes // 2):
        first = WORD_PAIRS[pair]
        out += [(slot, f"HD3TLM{first}"), (slot, f"HD3TLM{first + 1}")]
        pair += 1
        if pair == len(WORD_PAIRS):  # continue into the next slot's block
            pair, slot = 0, slot + 1
    return tuple(out)


# ---------------------------------------------------------------------------------------
# Word helpers: an item is decoded from its 16-bit words (most significant first), each with
# a mask; masks combine with "or". The same mask array may serve several words (one per slot,
# as the store's sample table gives them): it is then combined once.

Words = Sequence[np.ndarray]


def _raw(raw: np.ndarray, nbytes: int) -> tuple[np.ndarray, np.ndarray]:
    arr = np.ma.asarray(raw)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1) if arr.size == nbytes else arr.reshape(-1, nbytes)
    if arr.shape[1] != nbytes:
        raise ValueError(f"expected {nbytes} bytes per row, got shape {arr.shape}")
    # Masked bytes keep whatever they hold: every value built from one is masked.
    data = np.ma.getdata(arr)
    if data.dtype.kind not in "ui":
        data = data.astype(np.int64)
    return data, np.ma.getmaskarray(arr)


def words_of(raw: np.ndarray, nbytes: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(n, nbytes) big-endian bytes (masked or plain) -> the item's words and their masks.

    Parameters
    ----------
    raw : array-like
        Bytes in the order of ``byte_columns``; a 1-D array of ``nbytes`` is one row.
    nbytes : int
        Bytes per row (an even number).

    Returns
    -------
    (words, masks)
        ``nbytes // 2`` int32 words (high byte first) and bool masks (a word is masked when
        either of its bytes is).
    """
    data, mask = _raw(raw, nbytes)
    words, masks = [], []
    for k in range(0, nbytes, 2):
        word = data[:, k].astype(np.int32)
        word <<= 8
        word |= data[:, k + 1]
        words.append(word)
        masks.append(mask[:, k] | mask[:, k + 1])
    return words, masks


def _uint(words: Words, masks: Words) -> tuple[np.ndarray, np.ndarray]:
    """Words as one unsigned big-endian integer (int32 for one word, else int64: half the
    memory traffic for the 16-bit words most items are) and the "or" of their masks (a new
    array)."""
    wide = np.int32 if len(words) == 1 else np.int64
    value = np.asarray(words[0]).astype(wide)
    masked = np.array(masks[0], dtype=bool)
    for word, mask in zip(words[1:], masks[1:]):
        value <<= 16
        value |= np.asarray(word).astype(wide, copy=False)
        if mask is not masks[0]:
            masked |= mask
    return value, masked


def _signed(value: np.ndarray, bits: int) -> np.ndarray:
    """Two's complement of an unsigned ``bits``-wide integer (0xFFFF -> -1 for 16 bits)."""
    half = 1 << (bits - 1)
    out = value ^ half  # sign extension without a select: (v ^ half) - half
    out -= half
    return out


def s16(b0: np.ndarray, b1: np.ndarray) -> np.ma.MaskedArray:
    """High byte ``b0`` and low byte ``b1`` as a signed big-endian 16-bit word (int32)."""
    b0, b1 = np.ma.asarray(b0), np.ma.asarray(b1)
    raw = np.ma.column_stack([b0.ravel(), b1.ravel()])
    value, mask = _uint(*words_of(raw, 2))
    out = np.ma.masked_array(_signed(value, 16).astype(np.int32), mask=mask)
    return out.reshape(np.shape(b0)) if np.ndim(b0) else out[0]


def _out(value: np.ndarray, mask: np.ndarray, dtype: type) -> np.ma.MaskedArray:
    # ``mask`` is the decoder's own array (never a caller's): no copy
    return np.ma.masked_array(np.asarray(value, dtype=dtype), mask=mask, copy=False)


# ---------------------------------------------------------------------------------------
# Decoder factories: each returns (words, masks) -> masked values.

Decoder = Callable[[Words, Words], np.ma.MaskedArray]


def _word(
    nbytes: int, signed: bool, scale: float | None = None, dtype: type | None = None
) -> Decoder:
    """Whole item as one integer (16, 32 or 48 bits), optionally times ``scale``, as
    ``dtype`` (default: float64 when scaled, else int32 for 16 bits, int64 wider)."""
    if dtype is None:
        dtype = np.float64 if scale is not None else np.int32 if nbytes == 2 else np.int64

    def decode(words: Words, masks: Words) -> np.ma.MaskedArray:
        value, mask = _uint(words, masks)
        if signed:
            value = _signed(value, 8 * nbytes)
        # int32 words times a float are float64 as the original's int16 words were: the
        # same products bit for bit
        return _out(value if scale is None else value * scale, mask, dtype)

    return decode


def _sum16(scale: float | None = None) -> Decoder:
    """The original's ``two_byte_sum``: the signed 16-bit word, times a float ``scale``
    (float64), or unscaled (int16, its dtype)."""
    return _word(2, True, scale, None if scale is not None else np.int16)


def _thermistor(words: Words, masks: Words) -> np.ma.MaskedArray:
    value, mask = _uint(words, masks)
    # Masked words evaluate to NaN (the original filled them with the out-of-range 16000).
    counts = np.where(mask, 16000, _signed(value, 16))
    return _out(ad_to_degc(counts), mask, np.float64)


def _split32(scale: float) -> Decoder:
    """Signed 32-bit value (high word signed, low word unsigned) times ``scale``.

    The low word may live in the next slot; where only it is missing the high word alone is
    used (resolution ``65536 * scale``, truncated towards -inf) instead of losing the sample.
    """

    def decode(words: Words, masks: Words) -> np.ma.MaskedArray:
        high = np.asarray(words[0])
        hmask = np.array(masks[0], dtype=bool)
        # uint16 words (the store's) read as int16 are their two's complement at no cost
        signed = high.view(np.int16) if high.dtype == np.uint16 else _signed(high, 16)
        # (high * 65536 + low) * scale, in place (the same operations in the same order)
        value = signed.astype(np.float64)
        value *= 65536.0
        value += np.where(masks[1], 0, words[1])
        value *= scale
        return _out(value, hmask, np.float64)

    return decode


# ---------------------------------------------------------------------------------------
# Bit fields of the status words


@dataclass(frozen=True)
class BitField:
    """``width`` bits starting at bit ``lsb`` (0 = least significant) of an item's raw value."""

    name: str
    lsb: int
    width: int
    desc: str

    def extract(self, vals: np.ndarray) -> np.ma.MaskedArray:
        arr = np.ma.asarray(vals)
        bits = (arr.filled(0).astype(np.int64) >> self.lsb) & ((1 << self.width) - 1)
        out = bits.astype(bool) if self.width == 1 else bits
        return np.ma.masked_array(out, mask=np.ma.getmaskarray(arr).copy())


_AC_STATUS_FIELDS = (
    BitField("spare", 10, 6, "bits 15-10: spare"),
    BitField("readout_mode", 6, 4, "bits 9-6 (R): CCD readout mode flags 1|2|4|8, see below"),
    BitField("sh_input_grounded", 6, 1, "R&1: S/H input grounded during pixel readout"),
    BitField("reset_in_column_flush", 7, 1, "R&2: CCD reset pulsed during column flush"),
    BitField("reset_in_row_shift", 8, 1, "R&4: CCD reset/sw pulsed during row shifts"),
    BitField("mux_to_ground", 9, 1, "R&8: MUX switched to ground when A/D not in use"),
    BitField("test_signal", 4, 2, "bits 5-4 (T): test signal select (not available in flight)"),
    BitField("command_error", 3, 1, "bit 3 (E): AC command input buffer overwritten"),
    BitField(
        "parallel_clock",
        1,
        2,
        "bits 2-1 (C): parallel shift clock period code, 0/1/2/3 = 6/12/24/48 us",
    ),
    BitField("prom_write", 0, 1, "bit 0 (P): PromWrite, AC EEPROM in write mode"),
)
_MISC_NAMES = [
    ("ac_send_timeout", "AcSendTimeOut"),
    ("ac_idle_timeout", "AcIdleTimeOut"),
    ("tec_active", "TecActive"),
    ("tec_heat", "TecHeat"),
    ("dec_ac_table", "DecAcTable"),
    ("ac_table_cksum_ok", "AcTableCkSumOK"),
    ("stack_error", "StackError"),
    ("warm_boot", "WarmBoot"),
    ("idle_code_lsb", "IdleCode LSB"),
    ("cal_mode", "CalMode"),
    ("cal_mode_pending", "CalModePending"),
    ("iu_data", "IuData"),
    ("iu_data_pending", "IuDataPending"),
    ("dsn_fixed", "DsnFixed"),
    ("initial_cal_fill_ok", "InitialCalFillOK"),
    ("io_upd_timeout", "IoUpdTimeout"),
]
_MISC_FIELDS = tuple(
    BitField(name, bit, 1, f"bit {bit}: {manual}") for bit, (name, manual) in enumerate(_MISC_NAMES)
)
_STACK_FIELDS = (
    BitField("stack_pointer", 8, 8, "high byte: processor stack pointer"),
    BitField("telem_update_ctr", 0, 8, "low byte: telemetry update counter, +1 per 1.025 s"),
)
_DSN2_FIELDS = (
    BitField("record_counter", 8, 24, "3 high bytes: DSN record counter"),
    BitField("dsn_header2", 0, 8, "low byte: header 2 for DSN records"),
)


# ---------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class Hdr3Item:
    """One header-3 pseudo-MSID: where its bytes are and how to decode them.

    ``nbytes`` bytes from ``start`` are decoded (``start`` defaults to ``key``); ``size``
    (default ``nbytes``) is the item's extent in the block, the original's ``nbytes``.
    """

    key: str
    msid: str
    desc: str
    longdesc: str
    unit: str
    nbytes: int
    decoder: Decoder = field(repr=False)
    fields: tuple[BitField, ...] = ()
    size: int = 0
    start: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", self.size or self.nbytes)
        object.__setattr__(self, "start", self.start or self.key)

    @property
    def byte_columns(self) -> tuple[tuple[int, str], ...]:
        """(slot, HD3TLM column) of each decoded byte, most significant first."""
        return byte_columns(self.start, self.nbytes)

    @property
    def word_columns(self) -> tuple[tuple[int, int], ...]:
        """(slot, first byte) of each 16-bit word, most significant first (``decode_words``
        order): the words of bytes ``first`` (high) and ``first + 1``."""
        return tuple((s, int(name[-2:])) for s, name in self.byte_columns[::2])

    @property
    def slot(self) -> int:
        """The slot carrying the item's first (most significant) decoded word."""
        return int(self.start[0])

    @property
    def slots(self) -> tuple[int, ...]:
        """All slots whose bytes the item uses (two for items continuing into the next slot)."""
        return tuple(sorted({s for s, _ in self.byte_columns}))

    def decode(self, raw: np.ndarray) -> np.ma.MaskedArray:
        """(n, nbytes) uint8 bytes -> masked values in ``unit`` (`decode_words` of their
        words)."""
        return self.decoder(*words_of(raw, self.nbytes))

    def decode_words(self, words: Words, masks: Words) -> np.ma.MaskedArray:
        """The item's 16-bit words -> masked values in ``unit``.

        Parameters
        ----------
        words : sequence of array
            ``nbytes // 2`` arrays of ``n`` unsigned 16-bit words (any integer dtype holding
            0..65535), most significant first, in the order of `byte_columns`.
        masks : sequence of array
            One bool array per word, True where it is not available; one array may serve
            several words (e.g. all the words of one slot).

        Returns
        -------
        numpy.ma.MaskedArray
            ``n`` values; the arrays given are not modified nor kept.
        """
        if len(words) != self.nbytes // 2 or len(masks) != len(words):
            raise ValueError(
                f"{self.msid} takes {self.nbytes // 2} words and masks, got "
                f"{len(words)} and {len(masks)}"
            )
        return self.decoder(words, masks)

    def bits(self, vals: np.ndarray) -> dict[str, np.ma.MaskedArray]:
        """Split raw integer ``vals`` into the named fields ({} for items without fields)."""
        return {f.name: f.extract(vals) for f in self.fields}


def _item(
    key: str,
    msid: str,
    desc: str,
    unit: str,
    nbytes: int,
    decoder: Decoder,
    longdesc: str,
    fields: tuple[BitField, ...] = (),
    size: int = 0,
    start: str = "",
    fixed: str = "",
) -> Hdr3Item:
    """An item; ``desc`` gets the unit and ``fixed``, what differs from the original."""
    full = (f"{desc} ({unit})" if unit else desc) + (f"; fixed: {fixed}" if fixed else "")
    return Hdr3Item(key, msid, full, longdesc, unit, nbytes, decoder, fields, size, start)


def _therm(key: str, msid: str, desc: str) -> Hdr3Item:
    return _item(
        key,
        msid,
        desc,
        "degC",
        2,
        _thermistor,
        f"{desc}: signed 16-bit A/D word through the thermistor calibration "
        "(cubic spline, valid 2085..15728 counts = 80..-40 C, NaN outside).",
    )


def _millivolts(key: str, msid: str, desc: str, lsb_mv: float, fixed: str = "") -> Hdr3Item:
    """A power supply reading in mV (float64), as the original's ``two_byte_sum(scale=LSB)``;
    ``fixed`` says where the original was wrong."""
    return _item(
        key,
        msid,
        desc,
        "mV",
        2,
        _sum16(lsb_mv),
        f"{desc}: signed 16-bit A/D word, 1 LSB = {lsb_mv} mV (values in mV, as the "
        f"original's; {msid}_volts gives volts).",
        fixed=fixed,
    )


_ITEM_LIST = [
    _item(
        "062",
        "ac_status_word",
        "AC status word",
        "",
        2,
        _word(2, False),
        "AC status word xxxx xxrr rrtt eccp (unsigned 16-bit): spare, CCD readout mode "
        "flags, test signal select, command error, parallel clock period, PromWrite. "
        "Fields in MSID.bits.",
        _AC_STATUS_FIELDS,
    ),
    _item(
        "064",
        "misc_status_bits",
        "Misc status bits",
        "",
        2,
        _word(2, False),
        "Miscellaneous status bits (unsigned 16-bit), bit 0 = LSB: "
        + ", ".join(f"{b} {m}" for b, (_, m) in enumerate(_MISC_NAMES))
        + ". Fields in MSID.bits.",
        _MISC_FIELDS,
    ),
    _therm("066", "ccd_molyb_therm_1", "A/D CCD molyb therm 1"),
    _therm("072", "ccd_molyb_therm_2", "A/D CCD molyb therm 2"),
    _therm("074", "ccd_det_therm", "A/D CCD detector therm"),
    _millivolts(
        "076",
        "ad_5v_ps",
        "A/D +5 volt PS",
        LSB_5V_MV,
        f"the original scaled by {LSB_TYPO_5V_MV}, a typo of its documented "
        f"{LSB_5V_MV} mV LSB (its values were 0.672 x these)",
    ),
    _millivolts("162", "ad_15v_ps", "A/D +15 volt PS", LSB_15V_MV),
    _millivolts("164", "ad_m15v_ps", "A/D -15 volt PS", LSB_15V_MV),
    _millivolts("166", "ad_27v_ps", "A/D +27 volt PS", LSB_27V_MV),
    _millivolts(
        "172",
        "ad_analog_gnd",
        "A/D analog ground",
        LSB_5V_MV,
        "the original ran this word through the thermistor table (NaN for any reading "
        "near ground, below 2085 counts)",
    ),
    _therm("174", "ad_converter_therm", "A/D for A/D convertor therm"),
    _therm("176", "ad_smhs_therm", "A/D secondary mirror therm. HRMA side"),
    _therm("262", "ad_smohs_therm", "A/D secondary mirror therm. Opp HRMA side"),
    _therm("264", "ad_pmhs_therm", "A/D primary mirror therm. HRMA side"),
    _therm("266", "ad_pmohs_therm", "A/D primary mirror therm. Opp HRMA side"),
    _therm("272", "ad_achhs_therm", "A/D AC housing therm. HRMA side"),
    _therm("274", "ad_achohs_therm", "A/D AC housing therm. Opp HRMA side"),
    _therm("276", "ad_lc_therm", "A/D lens cell therm."),
    _item(
        "362",
        "proc_stack_telem_ctr",
        "Processor stack pointer and telem update counter",
        "",
        2,
        _word(2, False),
        "Unsigned 16-bit: processor stack pointer (high byte) and telemetry update counter "
        "(low byte, +1 per 1.025 s update). Fields in MSID.bits.",
        _STACK_FIELDS,
    ),
    _item(
        "364",
        "sci_hdr_pulse_period",
        "Science header pulse period",
        "us",
        4,
        _word(4, False, 2.0),
        "Science header pulse period, unsigned 32-bit, 1 LSB = 2 us.",
    ),
    *[
        _item(
            key,
            f"zero_off16_quad_{q}",
            f"16-bit zero offset, CCD quadrant {q.upper()}",
            "ADC counts",
            2,
            _word(2, True, 1.0),
            f"16-bit zero offset for CCD quadrant {q.upper()}, signed, 1 LSB = 1 ADC count "
            "(~5 e-).",
        )
        for key, q in (("372", "a"), ("374", "b"), ("376", "c"), ("462", "d"))
    ],
    *[
        _item(
            key,
            f"zero_off32_quad_{q}",
            f"32-bit zero offset, CCD quadrant {q.upper()}",
            "ADC counts",
            4,
            _split32(2.0**-16),
            f"32-bit zero offset for CCD quadrant {q.upper()}, signed, 1 LSB = 2^-16 ADC "
            "counts (high word = whole ADC counts)."
            + (
                " Bytes: slot 4 76,77 + slot 5 62,63; where slot 5 has no row at the same "
                "time the value is the high word alone (1 ADC count resolution)."
                if key == "476"
                else ""
            ),
        )
        for key, q in (("464", "a"), ("472", "b"), ("476", "c"), ("564", "d"))
    ],
    _item(
        "572",
        "ccd_flush_dur",
        "Last CCD flush duration",
        "us",
        2,
        _word(2, False, 2.0),
        "Duration of the last CCD flush, unsigned 16-bit, 1 LSB = 2 us.",
    ),
    _item(
        "574",
        "ccd_row_shift_period",
        "CCD row shift clock period",
        "us",
        2,
        _word(2, False, 1.0),
        "CCD row shift clock period, unsigned 16-bit, 1 LSB = 1 us.",
    ),
    _item(
        "576",
        "avg_bkg",
        "Average background",
        "e-",
        2,
        _word(2, True, 5, np.int32),
        "Average background of the last readout (all tracked images and search segments), "
        "signed 16-bit, 1 LSB = 1 ADC count (nominally 5 e-): values in electrons, 5 x the "
        "word, as the original's; avg_bkg_adc gives ADC counts.",
        fixed="int32 (the original's int16 wrapped around past 6553 ADC counts)",
    ),
    _item(
        "662",
        "dsn_hdr1",
        "Header 1 for DSN records",
        "",
        6,
        _word(6, False),
        "Header 1 for DSN records, 48-bit unsigned raw value.",
    ),
    _item(
        "672",
        "dsn_hdr2",
        "Record counter and Header 2 for DSN",
        "",
        4,
        _word(4, False),
        "Unsigned 32-bit: record counter (3 high bytes) and Header 2 (low byte) for DSN. "
        "Fields in MSID.bits.",
        _DSN2_FIELDS,
    ),
    _item(
        "676",
        "ccd_temp",
        "CCD temperature",
        "degC",
        2,
        _sum16(0.01),
        "CCD temperature, signed 32-bit, 1 LSB = 0.01/2^16 C; the value is its high word "
        "(slot 6 bytes 76,77) in units of 0.01 C, as the original's. ccd_temp_fine adds the "
        "low word (slot 7 bytes 62,63).",
        size=4,
    ),
    _item(
        "764",
        "ccd_setpoint",
        "CCD temperature control setpoint, 1 count = 0.01 C",
        "counts",
        2,
        _sum16(),
        "CCD temperature control setpoint, signed 16-bit, 1 LSB = 0.01 C: values in counts "
        "(int16), as the original's; ccd_setpoint_degc gives degC.",
    ),
    _item(
        "766",
        "aca_temp",
        "Temperature used in the angle calibration",
        "degC",
        2,
        _sum16(1.0 / 256),
        "ACA temperature used in the angle calibration, signed 32-bit (words 766 + 772), "
        "1 LSB = 1/256 C; the value is the low word 772 read as signed 16 bits, as the "
        "original's (the same for -128..128 C, where word 766 is the sign extension).",
        size=4,
        start="772",
    ),
    _item(
        "774",
        "last_ram_fail_addr",
        "RAM address of last write/read test failure",
        "",
        2,
        _word(2, False),
        "RAM address of the last write/read test failure (unsigned 16-bit).",
    ),
    _item(
        "776",
        "dac",
        "TEC DAC number",
        "counts",
        2,
        _sum16(),
        "Last value written to the TEC power control DAC, 0..511 (511 = TEC saturated); "
        "signed 16-bit (int16), as the original's.",
    ),
]

#: key -> item, in key order (38 entries): the original's items and values.
ITEMS: dict[str, Hdr3Item] = {item.key: item for item in _ITEM_LIST}
#: msid name -> key.
MSID_ALIASES: dict[str, str] = {item.msid: item.key for item in _ITEM_LIST}


def _extra(base: str, suffix: str, desc: str, unit: str, decoder: Decoder, **kw: int) -> Hdr3Item:
    """The bytes of item ``base`` (name) in other units or resolution: name base_suffix."""
    item = ITEMS[MSID_ALIASES[base]]
    name = f"{base}_{suffix}"
    longdesc = f"{item.longdesc} {name}: the same bytes in {unit}."
    return _item(item.key, name, desc, unit, kw.pop("nbytes", 2), decoder, longdesc, **kw)


_EXTRA_LIST = [
    *[
        _extra(base, "volts", desc, "V", _word(2, True, lsb_mv / 1000.0))
        for base, desc, lsb_mv in (
            ("ad_5v_ps", "A/D +5 volt PS", LSB_5V_MV),
            ("ad_15v_ps", "A/D +15 volt PS", LSB_15V_MV),
            ("ad_m15v_ps", "A/D -15 volt PS", LSB_15V_MV),
            ("ad_27v_ps", "A/D +27 volt PS", LSB_27V_MV),
            ("ad_analog_gnd", "A/D analog ground", LSB_5V_MV),
        )
    ],
    _extra("avg_bkg", "adc", "Average background", "ADC counts", _word(2, True, 1.0)),
    _extra("ccd_setpoint", "degc", "CCD temperature control setpoint", "degC", _sum16(0.01)),
    _extra(
        "ccd_temp",
        "fine",
        "CCD temperature, both words",
        "degC",
        _split32(0.01 / 65536),
        nbytes=4,
    ),
]
#: name -> item: other units or resolutions of the original's items (same key, same bytes).
#: ``ccd_temp_fine`` is the 32-bit value, high word (slot 6 bytes 76,77) in 0.01 C plus low
#: word (slot 7 bytes 62,63) / 65536 x 0.01 C; where slot 7 has no 8x8 row at the same time
#: it is the high word alone (0.01 C resolution, as ``ccd_temp``).
EXTRA_ITEMS: dict[str, Hdr3Item] = {item.msid: item for item in _EXTRA_LIST}


def valid_names() -> list[str]:
    """All accepted pseudo-MSID names (keys are accepted too)."""
    return [*MSID_ALIASES, *EXTRA_ITEMS]


def get_item(msid: str) -> Hdr3Item:
    """Item by name (case-insensitive) or 3-character key; `MissingDataError` otherwise."""
    text = str(msid).strip().lower()
    if text in EXTRA_ITEMS:
        return EXTRA_ITEMS[text]
    key = MSID_ALIASES.get(text, text)
    if key not in ITEMS:
        raise MissingDataError(
            f"msid {msid} not found; valid names: {', '.join(valid_names())} "
            f"(or the keys {', '.join(ITEMS)})"
        )
    return ITEMS[key]
