"""Header-3 diagnostic bytes of 8x8 ACA images: physical values -> HD3TLM62..67, 72..77.

Each slot carries six big-endian 16-bit words, in byte-pair order
62, 64, 66, 72, 74, 76; a value lives in the slot its key names (slot 6 carries ccd_temp,
slot 7 dac/aca_temp, ...). Encodings: voltages round(mV / LSB),
thermistors through the inverse A/D spline, ccd_temp as a 32-bit 0.01/2^16 C count split
over words 676/762, aca_temp round(T * 256) in word 772 with 766 its sign extension.
"""

from __future__ import annotations

import numpy as np

from mica.products.hdr3_calib import degc_to_ad
from mica.sim.mission import Mission, default_mission

__all__ = ["HD3_COLUMNS", "slot_words", "words_to_bytes", "bytes_to_words", "hdr3_bytes"]

HD3_COLUMNS = tuple(f"HD3TLM{i}{w}" for i in (6, 7) for w in range(2, 8))

# Documented LSBs (mV per count); the +5 V word uses the described 0.30518, not mica's typo.
LSB_5V = 0.30518
LSB_15V = 0.61035
LSB_27V = 1.04597
LSB_GND = 0.30518

AC_STATUS_WORD = 692  # 0x02B4: real 2003 and 2019 value
MISC_STATUS_BITS = 420  # 0x01A4: TecActive, AcTableCkSumOK, WarmBoot, IdleCode LSB
STACK_POINTER = 0x3C
PULSE_PERIOD = 512500  # science header pulse period, 1.025 s in 2 us counts
FLUSH_DURATION = 2968  # 2 us counts (~5.9 ms)
ROW_SHIFT_PERIOD = 24  # us, matches ac_status_word clock-period bits (24 us)
DSN_HDR1 = (0x1ACF, 0xFC1D, 0x0A55)


def _ad(degc: np.ndarray, noise: np.ndarray) -> np.ndarray:
    return degc_to_ad(degc).astype(np.int64) + noise


def _split32(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed 32-bit counts -> (high word, low word) as 16-bit patterns."""
    x = np.asarray(x, dtype=np.int64) & 0xFFFFFFFF
    return x >> 16, x & 0xFFFF


def slot_words(
    slot: int,
    times: np.ndarray,
    vcdu: np.ndarray,
    mission: Mission | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """(n, 6) int64 word values (16-bit patterns, signed allowed) for one slot's 8x8 rows.

    `times` are the rows' TIME (CXC secs), `vcdu` their global VCDU counts (for counters).
    """
    m = mission or default_mission()
    rng = rng or np.random.default_rng(0)
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(vcdu, dtype=np.int64)
    n = len(t)
    w = np.zeros((n, 6), dtype=np.int64)

    def jitter(counts: int) -> np.ndarray:
        return rng.integers(-counts, counts + 1, n)

    if slot == 0:
        th = m.thermistors_degc(t)
        volts = m.voltages_mv(t)
        w[:, 0] = AC_STATUS_WORD
        w[:, 1] = MISC_STATUS_BITS
        w[:, 2] = _ad(th["ccd_molyb_therm_1"], jitter(1))
        w[:, 3] = _ad(th["ccd_molyb_therm_2"], jitter(1))
        w[:, 4] = _ad(th["ccd_det_therm"], jitter(1))
        w[:, 5] = np.rint(volts["ad_5v_ps"] / LSB_5V).astype(np.int64) + jitter(5)
    elif slot == 1:
        th = m.thermistors_degc(t)
        volts = m.voltages_mv(t)
        w[:, 0] = np.rint(volts["ad_15v_ps"] / LSB_15V).astype(np.int64) + jitter(1)
        w[:, 1] = np.rint(volts["ad_m15v_ps"] / LSB_15V).astype(np.int64) + jitter(2)
        w[:, 2] = np.rint(volts["ad_27v_ps"] / LSB_27V).astype(np.int64) + jitter(1)
        w[:, 3] = np.rint(volts["ad_analog_gnd"] / LSB_GND).astype(np.int64) + jitter(1) // 2
        w[:, 4] = _ad(th["ad_converter_therm"], jitter(2))
        w[:, 5] = _ad(th["ad_smhs_therm"], jitter(1))
    elif slot == 2:
        th = m.thermistors_degc(t)
        keys = (
            "ad_smohs_therm",
            "ad_pmhs_therm",
            "ad_pmohs_therm",
            "ad_achhs_therm",
            "ad_achohs_therm",
            "ad_lc_therm",
        )
        for k, key in enumerate(keys):
            w[:, k] = _ad(th[key], jitter(1))
    elif slot == 3:
        # Stack pointer (high byte) and telemetry update counter (+1 per 1.025 s packet).
        w[:, 0] = (STACK_POINTER << 8) | ((v >> 2) & 0xFF)
        w[:, 1], w[:, 2] = _split32(PULSE_PERIOD + jitter(3))
        zero16 = _zero_offsets(t, m)
        w[:, 3:6] = np.rint(zero16[:, :3]).astype(np.int64) + rng.integers(-1, 2, (n, 3))
    elif slot == 4:
        zero = _zero_offsets(t, m) + rng.normal(0.0, 0.3, (n, 4))
        z32 = np.rint(zero * 65536.0).astype(np.int64)
        w[:, 0] = np.rint(zero[:, 3]).astype(np.int64)
        w[:, 1], w[:, 2] = _split32(z32[:, 0])
        w[:, 3], w[:, 4] = _split32(z32[:, 1])
        w[:, 5], _ = _split32(z32[:, 2])  # low word continues in slot 5 (word 562)
    elif slot == 5:
        zero = _zero_offsets(t, m) + rng.normal(0.0, 0.3, (n, 4))
        z32 = np.rint(zero * 65536.0).astype(np.int64)
        _, w[:, 0] = _split32(z32[:, 2])
        w[:, 1], w[:, 2] = _split32(z32[:, 3])
        w[:, 3] = FLUSH_DURATION + jitter(2)
        w[:, 4] = ROW_SHIFT_PERIOD
        w[:, 5] = np.rint(m.bgd_level_dn(t) + rng.normal(0.0, 0.7, n)).astype(np.int64)
    elif slot == 6:
        w[:, 0], w[:, 1], w[:, 2] = DSN_HDR1
        rec = (v >> 7) & 0xFFFFFF  # record counter: one DSN record per major frame
        w[:, 3] = rec >> 8
        w[:, 4] = ((rec & 0xFF) << 8) | 0x5A
        ccd = m.ccd_temp_degc(t) + rng.normal(0.0, 0.002, n)
        hi, _ = _split32(np.floor(ccd / 0.01 * 65536.0).astype(np.int64))
        w[:, 5] = hi
    elif slot == 7:
        ccd = m.ccd_temp_degc(t) + rng.normal(0.0, 0.002, n)
        _, lo = _split32(np.floor(ccd / 0.01 * 65536.0).astype(np.int64))
        w[:, 0] = lo
        w[:, 1] = np.rint(m.ccd_setpoint_degc(t) / 0.01).astype(np.int64)
        aca = np.rint(m.aca_temp_degc(t) * 256.0).astype(np.int64)
        w[:, 2], w[:, 3] = _split32(aca)
        w[:, 4] = 0  # last_ram_fail_addr
        w[:, 5] = m.dac_counts(t).astype(np.int64)
    else:
        raise ValueError(f"slot must be 0..7, got {slot}")
    return w


def _zero_offsets(t: np.ndarray, m: Mission) -> np.ndarray:
    """CCD quadrant A-D zero offsets (ADC counts): slow with CCD temperature, fixed pattern."""
    base = np.array([28.0, 31.5, 26.8, 30.2])
    ccd = m.ccd_temp_degc(t)
    return base[None, :] + 0.15 * (ccd[:, None] + 15.0)


def words_to_bytes(words: np.ndarray) -> np.ndarray:
    """(n, 6) words -> (n, 12) uint8 in column order HD3TLM62..67, 72..77 (big-endian)."""
    u = np.asarray(words, dtype=np.int64) & 0xFFFF
    out = np.empty((len(u), 12), dtype=np.uint8)
    out[:, 0::2] = u >> 8
    out[:, 1::2] = u & 0xFF
    return out


def bytes_to_words(b: np.ndarray) -> np.ndarray:
    """(n, 12) bytes -> (n, 6) signed 16-bit words (high byte first, two's complement)."""
    b = np.asarray(b, dtype=np.int64)
    u = (b[:, 0::2] << 8) | b[:, 1::2]
    return np.where(u >= 32768, u - 65536, u)


def hdr3_bytes(
    slot: int,
    times: np.ndarray,
    vcdu: np.ndarray,
    mission: Mission | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """The 12 HD3TLM bytes per 8x8 row of `slot` at row times `times`."""
    return words_to_bytes(slot_words(slot, times, vcdu, mission, rng))
