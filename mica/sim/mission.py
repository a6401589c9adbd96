"""Deterministic simulated Chandra mission: schedule, spacecraft clock and ACA histories.

Everything is a pure function of the seed: the schedule runs from launch (1999:204) to a fixed
end (2030:001), never "now", so the same seed always gives the same observations, the same
L0 file boundaries and the same bytes.

The schedule is built vectorised at construction (about 40k observations):

* Perigee passes every 63.5 h. A radiation zone of +-4 h around perigee holds 2-4
  engineering (ER) observations; guide slots run 8x8 for +-4.5 h around perigee, so the
  science observations next to the zone switch 6x6 -> 8x8 (a new L0 file).
* Between zones, science windows of ~55 h are split into ~6 observations of ~1-40 ks,
  each preceded by a 10-20 min maneuver; ~4 % of them are ER calibrations.
* Obsid 3552 sits at 2003:215 03:06 UTC with the star/fid layout of the real 2003 files,
  and the spacecraft clock is anchored on the real 2003 clock correlation so that its
  VCDU counters equal the real ones (MJF 47648 at 176267165 s).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np
from erfa import ErfaWarning

from mica.sim.dark_schedule import DarkCalPlan, plan_dark_cals
from mica.time import CxoTimeLike, to_secs

__all__ = [
    "Mission",
    "Observation",
    "SlotAssignment",
    "default_mission",
    "get_mission",
    "register_mission",
    "yagzag_to_pixel",
    "pixel_to_yagzag",
    "VCDU_WRAP",
    "VCDU_SECS",
]

# ---------------------------------------------------------------------------------------
# Constants
MISSION_START = "1999:204:12:00:00.000"  # first ACA activity (launch day)
FIRST_SCIENCE = "1999:230:00:00:00.000"
MISSION_END = "2030:001:00:00:00.000"  # fixed end: never "now" (reproducible bytes)

VCDU_WRAP = 1 << 24  # 24-bit VCDU counter
VCDU_SECS = 0.25625  # nominal minor frame duration
ORBIT_PERIOD = 63.5 * 3600.0
RAD_ZONE_HALF = 4.0 * 3600.0  # ER-only part of each perigee pass
PERIGEE_8X8_HALF = 4.5 * 3600.0  # guide slots run 8x8 within this of perigee
DARK_CAL_8X8_PAD = 1200.0  # slots 6-7 run 8x8 this long before and after dark-cal replicas
STREAM_BREAK_MIN = 0.75 * 3600.0
STREAM_BREAK_MAX = 6.0 * 3600.0

# Real 2003 clock correlation (BTIMNULL, BTIMRATE, BTIMDRFT) anchors the simulated clock.
_CLOCK_ANCHOR_BTIMNULL = 174704303.431911
_CLOCK_ANCHOR_RATE = 0.256250010926104
_CLOCK_ANCHOR_DRIFT = 3.5491781165136e-19
# Drift grows ~linearly so that 2019 reaches the real 1.64e-18 (rate ~0.25625001485).
_CLOCK_DRIFT_STEP = 1.087e-20

# Obsid 3552 (real files shipped in shared/realdata/aca_l0_2003): acquisition at VCDU
# 47648/28, guide drop at ~176272841 s, next acquisition at ~176273521 s, stream break at
# 47746/0.
OBS3552_TSTART = 176267165.0
OBS3552_TSTOP = 176272840.0
OBS3552_NEXT_TSTART = 176273521.0
OBS3552_BREAK_LOCAL_VCDU = 47746 * 128

ROLE_NAMES = ("unused", "fid", "guide", "monitor")
ROLE_UNUSED, ROLE_FID, ROLE_GUIDE, ROLE_MONITOR = 0, 1, 2, 3
TRACK_SIZE = {ROLE_UNUSED: 4, ROLE_FID: 8, ROLE_GUIDE: 6, ROLE_MONITOR: 8}

# Fid-light positions (yag, zag arcsec) per SI, first set = real 2003 obsid 3552 fids.
_FID_SETS = np.array(
    [
        [(940.3, -1740.3), (-1822.9, 161.4), (397.2, 809.3)],  # ACIS-I (as obsid 3552)
        [(-1174.0, 688.0), (1224.0, -1120.0), (-346.0, -1743.0)],  # ACIS-S
        [(-776.0, -1813.0), (835.0, 1951.0), (-1836.0, 1165.0)],  # HRC-I
        [(-1188.0, 848.0), (1239.0, -912.0), (-323.0, -1737.0)],  # HRC-S
    ]
)

# Real obsid 3552 layout (fid centroids, guide window centres and summed fluxes of the
# aca_l0_2003 files):
# (role, mag, yag, zag) per slot 0..7.
_OBS3552_SLOTS = (
    (ROLE_FID, 6.75, 940.3, -1740.3),
    (ROLE_FID, 6.81, -1822.9, 161.4),
    (ROLE_FID, 6.93, 397.2, 809.3),
    (ROLE_GUIDE, 9.28, 2153.6, 2263.5),
    (ROLE_GUIDE, 9.40, -149.5, -819.0),
    (ROLE_GUIDE, 9.62, 1898.9, -754.1),
    (ROLE_GUIDE, 9.21, -674.1, -1288.6),
    (ROLE_MONITOR, 12.6, -4.6, 55.3),
)


def yagzag_to_pixel(yag: np.ndarray | float, zag: np.ndarray | float) -> tuple:
    """Linear ACA plate scale (edge convention, 4.996"/pixel): +yag -> lower row."""
    return (30.35 - np.asarray(yag)) / 4.996, (np.asarray(zag) + 24.65) / 4.996


def pixel_to_yagzag(row: np.ndarray | float, col: np.ndarray | float) -> tuple:
    """Inverse of `yagzag_to_pixel`."""
    return 30.35 - 4.996 * np.asarray(row), 4.996 * np.asarray(col) - 24.65


# ---------------------------------------------------------------------------------------
# Deterministic noise that is a function of time only (same t -> same value in every slot)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (vectorised, wrapping uint64 arithmetic)."""
    x = np.asarray(x, dtype=np.uint64)
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def hash_uniform(keys: np.ndarray, salt: int) -> np.ndarray:
    """Uniform [0, 1) values from integer keys and a salt (pure function)."""
    k = np.atleast_1d(np.asarray(keys)).astype(np.uint64)
    h = _mix64(k ^ _mix64(np.array([salt & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _time_normal(t: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic ~N(0, 1) white noise keyed by the float64 bits of t."""
    bits = np.ascontiguousarray(np.atleast_1d(np.asarray(t, dtype=np.float64))).view(np.uint64)
    u1 = hash_uniform(bits, salt)
    u2 = hash_uniform(bits, salt + 0x9E37)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SlotAssignment:
    """One ACA slot of an observation (position in arcsec, imgsize during tracking)."""

    slot: int
    role: str  # 'fid' | 'guide' | 'monitor' | 'unused'
    imgsize: int
    mag: float
    yag: float
    zag: float


@dataclass(frozen=True)
class Observation:
    """One dwell: acquisition at `tstart`, guide tracking ends at `tstop` (CXC secs)."""

    obsid: int
    tstart: float
    tstop: float
    ra: float
    dec: float
    roll: float
    kind: str  # 'science' | 'er'
    slots: tuple[SlotAssignment, ...]
    index: int = -1  # position in the mission schedule
    dither_phase: tuple[float, float] = (0.0, 0.0)  # radians (yaw, pitch)
    dither_ampl: tuple[float, float] = (8.0, 8.0)  # arcsec
    dither_period: tuple[float, float] = (1000.0, 707.1)  # s

    def slot(self, slot: int) -> SlotAssignment:
        """The assignment of image slot `slot` (0-7)."""
        return self.slots[slot]


class Mission:
    """A deterministic simulated mission (schedule, clock, stream breaks, physical histories).

    Parameters
    ----------
    seed : int
        Everything (schedule, stars, noise) derives from it.
    """

    def __init__(self, seed: int = 1999) -> None:
        self.seed = int(seed)
        with warnings.catch_warnings():
            # 2030 lies beyond the leap-second table: ERFA calls it a "dubious year".
            warnings.simplefilter("ignore", ErfaWarning)
            self.t_begin = float(to_secs(MISSION_START))
            self.t_first_science = float(to_secs(FIRST_SCIENCE))
            self.t_end = float(to_secs(MISSION_END))
            self._build_histories()
        self._build_clock()
        self._build_schedule()
        self._build_stream_breaks()

    # -----------------------------------------------------------------------------------
    # Clock: piecewise quadratic per 2^24-VCDU counter cycle, continuous in value and rate.
    def _build_clock(self) -> None:
        # Cycle index j0 holds the real 2003 correlation; count cycles before and after.
        n_before = int(np.ceil((_CLOCK_ANCHOR_BTIMNULL - self.t_begin) / (VCDU_WRAP * VCDU_SECS)))
        n_before += 2
        n_after = int(np.ceil((self.t_end - _CLOCK_ANCHOR_BTIMNULL) / (VCDU_WRAP * VCDU_SECS)))
        n_after += 2
        n = n_before + n_after
        j = np.arange(n) - n_before
        drift = _CLOCK_ANCHOR_DRIFT + _CLOCK_DRIFT_STEP * j
        w = float(VCDU_WRAP)
        # rate_{j+1} = rate_j + 2 drift_j W keeps dt/dv continuous across counter wraps.
        inc = 2.0 * drift * w
        rate = np.empty(n)
        rate[n_before] = _CLOCK_ANCHOR_RATE
        rate[n_before + 1 :] = _CLOCK_ANCHOR_RATE + np.cumsum(inc[n_before:-1])
        rate[:n_before] = _CLOCK_ANCHOR_RATE - np.cumsum(inc[:n_before][::-1])[::-1]
        length = rate * w + drift * w * w
        btimnull = np.empty(n)
        btimnull[n_before] = _CLOCK_ANCHOR_BTIMNULL
        btimnull[n_before + 1 :] = _CLOCK_ANCHOR_BTIMNULL + np.cumsum(length[n_before:-1])
        btimnull[:n_before] = _CLOCK_ANCHOR_BTIMNULL - np.cumsum(length[:n_before][::-1])[::-1]
        # Round to what the FITS headers print so that headers reproduce times exactly.
        self.clock_btimnull = np.array([float(f"{x:.6f}") for x in btimnull])
        self.clock_rate = np.array([float(f"{x:.15g}") for x in rate])
        self.clock_drift = np.array([float(f"{x:.14e}") for x in drift])

    def clock_params(self, cycle: int) -> tuple[float, float, float]:
        """(BTIMNULL, BTIMRATE, BTIMDRFT) of counter cycle `cycle` (= global VCDU >> 24)."""
        return (
            float(self.clock_btimnull[cycle]),
            float(self.clock_rate[cycle]),
            float(self.clock_drift[cycle]),
        )

    def vcdu_to_time(self, vcdu: np.ndarray | int, cycle: int | None = None) -> np.ndarray:
        """CXC secs of global (unwrapped) VCDU counts.

        With `cycle` given, every count is referred to that cycle's correlation (what an L0
        file does with its header BTIM* values); otherwise to its own cycle.
        """
        v = np.asarray(vcdu, dtype=np.int64)
        j = (v >> 24) if cycle is None else np.full(v.shape, cycle, dtype=np.int64)
        x = (v - (j << 24)).astype(np.float64)
        return self.clock_btimnull[j] + self.clock_rate[j] * x + self.clock_drift[j] * x * x

    def time_to_vcdu(self, t: np.ndarray | float) -> np.ndarray:
        """Fractional global VCDU count at CXC time(s) `t`."""
        t = np.asarray(t, dtype=np.float64)
        j = np.clip(np.searchsorted(self.clock_btimnull, t, side="right") - 1, 0, None)
        b, r, d = self.clock_btimnull[j], self.clock_rate[j], self.clock_drift[j]
        x = (t - b) / r
        x = x - (b + r * x + d * x * x - t) / (r + 2.0 * d * x)  # one Newton step: exact
        return j * float(VCDU_WRAP) + x

    # -----------------------------------------------------------------------------------
    def _build_schedule(self) -> None:
        rng = np.random.default_rng([self.seed, 1])
        t_begin, t_end = self.t_begin, self.t_end
        anchor0 = OBS3552_TSTART
        # Perigee phase: obsid 3552 sits half an orbit from perigee (6x6 guide as in 2003).
        p_anchor = 0.5 * (OBS3552_TSTART + OBS3552_TSTOP) - 0.5 * ORBIT_PERIOD
        k0 = int(np.floor((t_begin - p_anchor) / ORBIT_PERIOD)) - 1
        k1 = int(np.ceil((t_end - p_anchor) / ORBIT_PERIOD)) + 1
        self.perigee_times = p_anchor + ORBIT_PERIOD * np.arange(k0, k1 + 1)
        per = self.perigee_times

        # Windows alternate: radiation zone (ER) [p - RZ, p + RZ], then science gap.
        zs = per - RAD_ZONE_HALF
        ze = per + RAD_ZONE_HALF
        w_start = np.empty(2 * len(per) - 1)
        w_end = np.empty_like(w_start)
        w_start[0::2], w_end[0::2] = zs, ze
        w_start[1::2], w_end[1::2] = ze[:-1], zs[1:]
        w_is_zone = np.zeros(len(w_start), bool)
        w_is_zone[0::2] = True
        w_start = np.clip(w_start, t_begin, t_end)
        w_end = np.clip(w_end, t_begin, t_end)
        keep = (w_end - w_start) > 3000.0
        w_start, w_end, w_is_zone = w_start[keep], w_end[keep], w_is_zone[keep]
        w_len = w_end - w_start

        # Pieces per window: 2-4 ERs per zone, ~33 ks pieces in science windows.
        n_zone = rng.integers(2, 5, len(w_start))
        n_sci = np.maximum(1, np.rint(w_len / 33000.0)).astype(np.int64)
        n_piece = np.where(w_is_zone, n_zone, n_sci)
        n_piece = np.minimum(n_piece, np.maximum(1, (w_len // 2400.0).astype(np.int64)))
        win = np.repeat(np.arange(len(w_start)), n_piece)
        n_tot = len(win)
        # Relative durations: science skewed long (capped ~40 ks), ERs moderate.
        x_sci = 40.0 - 39.0 * rng.beta(1.2, 3.5, n_tot)
        x_er = rng.uniform(0.6, 1.4, n_tot)
        x = np.where(w_is_zone[win], x_er, x_sci)
        gap = rng.uniform(600.0, 1200.0, n_tot)  # maneuver before each dwell
        sum_x = np.bincount(win, weights=x)
        sum_gap = np.bincount(win, weights=gap)
        scale = (w_len - sum_gap) / sum_x
        dur = x * scale[win]
        piece_len = dur + gap
        csum = np.cumsum(piece_len)
        first = np.concatenate([[0], np.cumsum(n_piece)[:-1]])
        offset = np.concatenate([[0.0], csum])[first]
        b0 = w_start[win] + (csum - piece_len) - offset[win]
        tstart = b0 + gap
        tstop = b0 + piece_len
        is_er = w_is_zone[win] | (rng.random(n_tot) < 0.04) | (tstart < self.t_first_science)

        # Obsid 3552 anchor: rebuild its science window around the real dwell.
        ia = int(np.searchsorted(w_start, anchor0, side="right") - 1)
        sel = np.nonzero(win == ia)[0]
        ws, we = w_start[ia], w_end[ia]
        before = max(1, int(round((anchor0 - ws) / 33000.0)))
        after = max(1, int(round((we - OBS3552_NEXT_TSTART) / 33000.0)))
        ts_list, te_list = [], []
        gap_a = 700.0  # maneuver into obsid 3552
        # Dwells before the anchor fill [ws, anchor0 - gap) exactly, same after the anchor.
        for lo, hi, n in ((ws, anchor0 - gap_a, before), (OBS3552_TSTOP, we, after)):
            xx = 40.0 - 39.0 * rng.beta(1.2, 3.5, n)
            gg = rng.uniform(600.0, 1200.0, n)
            if lo == OBS3552_TSTOP:
                gg[0] = OBS3552_NEXT_TSTART - OBS3552_TSTOP
            dd = xx * (hi - lo - gg.sum()) / xx.sum()
            edges = lo + np.concatenate([[0.0], np.cumsum(dd + gg)])
            ts_list.append(edges[:-1] + gg)
            te_list.append(edges[1:])
        a_ts = np.concatenate([ts_list[0], [OBS3552_TSTART], ts_list[1]])
        a_te = np.concatenate([te_list[0], [OBS3552_TSTOP], te_list[1]])
        a_er = np.zeros(len(a_ts), bool)
        self._anchor_pos = sel[0] + len(ts_list[0])
        tstart = np.concatenate([tstart[: sel[0]], a_ts, tstart[sel[-1] + 1 :]])
        tstop = np.concatenate([tstop[: sel[0]], a_te, tstop[sel[-1] + 1 :]])
        is_er = np.concatenate([is_er[: sel[0]], a_er, is_er[sel[-1] + 1 :]])
        keep = tstop <= t_end
        tstart, tstop, is_er = tstart[keep], tstop[keep], is_er[keep]
        n = len(tstart)
        self.n_obs = n
        self.obs_tstart = tstart
        self.obs_tstop = tstop
        self.obs_is_er = is_er
        # Next dwell start closes each slot timeline (maneuver belongs to the next obsid).
        self.obs_next_tstart = np.concatenate([tstart[1:], [t_end]])

        # Obsids: science roughly chronological 1..N, ERs count down from 65535.
        obsid = np.zeros(n, dtype=np.int64)
        sci = np.nonzero(~is_er)[0]
        ers = np.nonzero(is_er)[0]
        n_s = len(sci)
        if n_s > 29999 or len(ers) > 65535 - 38000:
            raise RuntimeError(f"schedule too dense: {n_s} science, {len(ers)} ER observations")
        order = np.argsort(np.arange(n_s) + rng.normal(0.0, 300.0, n_s), kind="stable")
        sci_obsid = np.empty(n_s, dtype=np.int64)
        sci_obsid[order] = np.arange(1, n_s + 1)
        obsid[sci] = sci_obsid
        obsid[ers] = 65535 - np.arange(len(ers))
        # Place 3552 on the anchor dwell (swap with whoever got it).
        pos = self._anchor_pos
        other = np.nonzero(obsid == 3552)[0][0]
        obsid[other], obsid[pos] = obsid[pos], 3552
        self.obs_obsid = obsid
        self._obsid_index = np.full(65536, -1, dtype=np.int64)
        self._obsid_index[obsid] = np.arange(n)

        # Pointing, dither phases.
        self.obs_ra = rng.uniform(0.0, 360.0, n)
        self.obs_dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
        self.obs_roll = rng.uniform(0.0, 360.0, n)
        self.obs_dither_phase = rng.uniform(0.0, 2 * np.pi, (n, 2))

        # Slots: science = 3 fids (0-2) + 5 guides; variants with 2 fids, a monitor window
        # or an unused slot; ERs = 8 guides (sometimes slot 7 unused).
        role = np.full((n, 8), ROLE_GUIDE, dtype=np.int8)
        role[~is_er, :3] = ROLE_FID
        u = rng.random(n)
        role[~is_er & (u < 0.05), 2] = ROLE_GUIDE
        role[~is_er & (u >= 0.05) & (u < 0.11), 7] = ROLE_MONITOR
        role[~is_er & (u >= 0.11) & (u < 0.14), 7] = ROLE_UNUSED
        role[is_er & (u < 0.10), 7] = ROLE_UNUSED
        mag = 10.3 - 3.6 * rng.beta(1.3, 2.4, (n, 8))
        yag = rng.uniform(-2300.0, 2300.0, (n, 8))
        zag = rng.uniform(-2300.0, 2300.0, (n, 8))
        fid_set = rng.integers(0, len(_FID_SETS), n)
        fid_pos = _FID_SETS[fid_set] + rng.normal(0.0, 8.0, (n, 3, 2))
        fid = role[:, :3] == ROLE_FID
        yag[:, :3] = np.where(fid, fid_pos[:, :, 0], yag[:, :3])
        zag[:, :3] = np.where(fid, fid_pos[:, :, 1], zag[:, :3])
        mag[:, :3] = np.where(fid, rng.uniform(6.7, 7.2, (n, 3)), mag[:, :3])
        mon = role == ROLE_MONITOR
        mag[mon] = rng.uniform(11.5, 13.5, mon.sum())
        for s, (r, mg, y, z) in enumerate(_OBS3552_SLOTS):
            role[pos, s], mag[pos, s], yag[pos, s], zag[pos, s] = r, mg, y, z
        size = np.vectorize(TRACK_SIZE.get, otypes=[np.int8])(role)
        size[is_er[:, None] & (role == ROLE_GUIDE)] = 8
        self.slot_role = role
        self.slot_size = size
        self.slot_mag = mag
        self.slot_yag = yag
        self.slot_zag = zag

    def _build_stream_breaks(self) -> None:
        """Ground decom/processing stream breaks (every 0.75-6 h), at major frames."""
        rng = np.random.default_rng([self.seed, 2])
        span = self.t_end - self.t_begin
        n = int(span / STREAM_BREAK_MIN) + 10
        steps = np.clip(rng.lognormal(np.log(2.2 * 3600.0), 0.55, n), STREAM_BREAK_MIN, None)
        steps = np.minimum(steps, STREAM_BREAK_MAX)
        t = self.t_begin + np.cumsum(steps)
        t = t[t < self.t_end]
        v = np.rint(self.time_to_vcdu(t) / 128.0).astype(np.int64) * 128
        # The real 2003 break at VCDU 47746/0 (all slots restart at 176270372.3 s).
        j0 = int(np.searchsorted(self.clock_btimnull, _CLOCK_ANCHOR_BTIMNULL + 1.0) - 1)
        v_real = (j0 << 24) + OBS3552_BREAK_LOCAL_VCDU
        near = np.abs(v - v_real) < int(3600.0 / VCDU_SECS)
        self.stream_breaks = np.unique(np.concatenate([v[~near], [v_real]]))

    # -----------------------------------------------------------------------------------
    # Schedule queries
    def _make_observation(self, i: int) -> Observation:
        slots = tuple(
            SlotAssignment(
                slot=s,
                role=ROLE_NAMES[int(self.slot_role[i, s])],
                imgsize=int(self.slot_size[i, s]),
                mag=float(self.slot_mag[i, s]),
                yag=float(self.slot_yag[i, s]),
                zag=float(self.slot_zag[i, s]),
            )
            for s in range(8)
        )
        return Observation(
            obsid=int(self.obs_obsid[i]),
            tstart=float(self.obs_tstart[i]),
            tstop=float(self.obs_tstop[i]),
            ra=float(self.obs_ra[i]),
            dec=float(self.obs_dec[i]),
            roll=float(self.obs_roll[i]),
            kind="er" if self.obs_is_er[i] else "science",
            slots=slots,
            index=int(i),
            dither_phase=(float(self.obs_dither_phase[i, 0]), float(self.obs_dither_phase[i, 1])),
        )

    def observations(self, start: CxoTimeLike, stop: CxoTimeLike) -> list[Observation]:
        """Observations whose [tstart, tstop] overlaps [start, stop], in time order."""
        t0, t1 = float(to_secs(start)), float(to_secs(stop))
        i0 = int(np.searchsorted(self.obs_tstop, t0, side="left"))
        i1 = int(np.searchsorted(self.obs_tstart, t1, side="right"))
        return [self._make_observation(i) for i in range(i0, i1)]

    def index_of(self, obsid: int) -> int:
        """Schedule index of `obsid` (KeyError if the mission has no such obsid)."""
        oid = int(obsid)
        i = int(self._obsid_index[oid]) if 0 <= oid < 65536 else -1
        if i < 0:
            raise KeyError(
                f"obsid {obsid} is not in the simulated mission (seed {self.seed}): science "
                f"obsids are 1..{int(self.obs_obsid[~self.obs_is_er].max())}, ER obsids "
                f"{int(self.obs_obsid[self.obs_is_er].min())}..65535"
            )
        return i

    def observation(self, obsid: int) -> Observation:
        """The observation with this obsid (KeyError with a clear message if unknown)."""
        return self._make_observation(self.index_of(obsid))

    def obsid_at(self, time: CxoTimeLike) -> int | np.ndarray:
        """Obsid in effect at `time`; a maneuver belongs to the obsid it goes to.

        Scalar in -> int (ValueError outside the schedule); array in -> int array, -1 outside.
        """
        t = np.asarray(to_secs(time), dtype=np.float64)
        i = np.searchsorted(self.obs_tstop, t, side="left")
        ok = (i < self.n_obs) & (t >= self.t_begin)
        out = np.where(ok, self.obs_obsid[np.minimum(i, self.n_obs - 1)], -1)
        if out.ndim == 0:
            if out < 0:
                raise ValueError(f"time {time!r} is outside the simulated mission schedule")
            return int(out)
        return out

    def perigee_8x8_windows(self, start: float, stop: float) -> np.ndarray:
        """(n, 2) array of [t0, t1] intervals near perigee where guide slots run 8x8."""
        p = self.perigee_times
        w = np.stack([p - PERIGEE_8X8_HALF, p + PERIGEE_8X8_HALF], axis=1)
        return w[(w[:, 1] > start) & (w[:, 0] < stop)]

    @functools.cached_property
    def dark_cals(self) -> tuple[DarkCalPlan, ...]:
        """Every dark calibration of the mission, in time order (`mica.sim.dark_schedule`)."""
        return plan_dark_cals(self)

    @functools.cached_property
    def _dark_cal_replicas(self) -> np.ndarray:
        replicas = [r for plan in self.dark_cals for r in plan.replicas]
        return np.array(replicas, dtype=np.float64).reshape(-1, 2)

    def dark_cal_windows(self, start: float, stop: float) -> np.ndarray:
        """(n, 2) [t0, t1] dark-calibration replicas overlapping [start, stop] (CXC s).

        The ACA is in calibration mode then (no image telemetry); the L0 simulator runs
        slots 6-7 as 8x8 within DARK_CAL_8X8_PAD of each replica, so header-3 ccd_temp
        brackets it.
        """
        reps = self._dark_cal_replicas
        return reps[(reps[:, 1] > start) & (reps[:, 0] < stop)]

    # -----------------------------------------------------------------------------------
    # Physical histories (vectorised functions of CXC time)
    def _build_histories(self) -> None:
        rng = np.random.default_rng([self.seed, 3])
        anchors = [
            "1999:204",
            "2001:001",
            "2003:215",
            "2006:001",
            "2009:001",
            "2012:001",
            "2015:001",
            "2017:001",
            "2019:272",
            "2022:001",
            "2025:001",
            "2030:001",
        ]
        self._h_t = np.asarray(to_secs(np.array(anchors)), dtype=np.float64)
        #                     99    01    03    06    09    12    15    17    19    22    25    30
        self._h_housing = [14.0, 14.8, 15.62, 17.0, 19.0, 21.2, 24.8, 27.8, 31.6, 33.5, 36.0, 39.5]
        self._h_bgd = [0.5, 1.2, 2.3, 4.5, 8.0, 15.0, 27.0, 40.0, 72.0, 90.0, 110.0, 150.0]
        self._h_warm = [0.005, 0.015, 0.03, 0.045, 0.06, 0.08, 0.10, 0.12, 0.15, 0.17, 0.2, 0.25]
        self._h_orbit_amp = [0.1, 0.12, 0.15, 0.4, 0.8, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2]
        s2012, s2019 = self._h_t[5], self._h_t[8]
        self._dtmax_t = np.array([s2012, s2019])
        self._dtmax_v = np.array([39.54, 41.05])
        sp = to_secs(np.array(["2001:001", "2008:001"]))
        self._setpoint_t = np.asarray(sp, dtype=np.float64)
        self._setpoint_v = np.array([-10.0, -15.0, -19.0])
        # Slow wander (days to months) on top of the trends: fixed random sinusoids.
        self._wander_period = np.array([3.1, 11.7, 37.0, 95.0]) * 86400.0
        self._wander_phase = rng.uniform(0.0, 2 * np.pi, (8, 4))

    def _wander(self, t: np.ndarray, k: int, ampl: float) -> np.ndarray:
        arg = 2 * np.pi * t[..., None] / self._wander_period + self._wander_phase[k]
        return ampl * np.sin(arg).mean(axis=-1)

    def _interp(self, t: np.ndarray, values: list[float]) -> np.ndarray:
        return np.interp(t, self._h_t, values)

    def years_since_2003(self, t: np.ndarray) -> np.ndarray:
        """(t - 2003:215) in Julian years: scales slow trends of secondary quantities."""
        return (np.asarray(t, dtype=np.float64) - self._h_t[2]) / (365.25 * 86400.0)

    def orbit_factor(self, t: np.ndarray | float) -> np.ndarray:
        """0..1 bump peaking at perigee (sigma 5 h), mean ~0.2 over an orbit."""
        t = np.asarray(t, dtype=np.float64)
        p0 = self.perigee_times[0]
        dt = np.mod(t - p0 + 0.5 * ORBIT_PERIOD, ORBIT_PERIOD) - 0.5 * ORBIT_PERIOD
        return np.exp(-0.5 * (dt / (5.0 * 3600.0)) ** 2)

    def housing_temp_degc(self, t: np.ndarray | float) -> np.ndarray:
        """AC housing (TEMPHOUS): ~15.6 C in 2003, ~31.6 C in 2019, warmer at perigee."""
        t = np.asarray(t, dtype=np.float64)
        amp = self._interp(t, self._h_orbit_amp)
        return (
            self._interp(t, self._h_housing)
            + amp * (self.orbit_factor(t) - 0.2)
            + self._wander(t, 0, 0.15)
            + 0.02 * _time_normal(t, self.seed * 16 + 1)
        )

    def aca_temp_degc(self, t: np.ndarray | float) -> np.ndarray:
        """Header-3 aca_temp (angle-calibration temperature): housing - 0.15 C."""
        return self.housing_temp_degc(t) - 0.15

    def ccd_setpoint_degc(self, t: np.ndarray | float) -> np.ndarray:
        """TEC set point: -10 C until 2001, -15 C until 2008, then -19 C."""
        t = np.asarray(t, dtype=np.float64)
        return self._setpoint_v[np.searchsorted(self._setpoint_t, t, side="right")]

    def _ccd_uncontrolled(self, t: np.ndarray) -> np.ndarray:
        """CCD temperature with the TEC saturated (DAC 511)."""
        amp = self._interp(t, self._h_orbit_amp)
        dtmax = np.interp(t, self._dtmax_t, self._dtmax_v)
        return self.aca_temp_degc(t) - dtmax + amp * (self.orbit_factor(t) - 0.2)

    def ccd_temp_degc(self, t: np.ndarray | float) -> np.ndarray:
        """CCD temperature: set point while the TEC keeps up, else saturated (warmer).

        About -10 C in 1999-2000, -15 C in 2003, -16.5..-19 C in 2012 (orbital swing,
        warmer at perigee), -9.6 C in 2019, rising afterwards.
        """
        t = np.asarray(t, dtype=np.float64)
        sp = self.ccd_setpoint_degc(t)
        x = self._ccd_uncontrolled(t)
        w = 0.25  # smooth max(): softplus width in C
        ccd = sp + w * np.logaddexp(0.0, (x - sp) / w)
        return ccd + 0.004 * _time_normal(t, self.seed * 16 + 2)

    def dac_counts(self, t: np.ndarray | float) -> np.ndarray:
        """TEC DAC (0..511): ~347 in 2003, 486-511 in 2012, 511 (saturated) later."""
        t = np.asarray(t, dtype=np.float64)
        aca = self.aca_temp_degc(t)
        # The DAC tops out (511) slightly before the TEC's full delta-T is needed, so it
        # wanders 486..511 while the set point is still nearly held (2012 plots).
        headroom = np.maximum(aca - self._ccd_uncontrolled(t), 1.0) + 0.8
        demand = (aca - self.ccd_setpoint_degc(t)) / headroom
        dac = 511.0 * np.clip(demand, 0.0, 1.0) ** 1.4
        return np.clip(np.rint(dac + 0.7 * _time_normal(t, self.seed * 16 + 3)), 0, 511)

    def bgd_level_dn(self, t: np.ndarray | float) -> np.ndarray:
        """Guide-slot background (BGDAVG, DN): 0-4 in 2003, ~72 in 2019; higher at perigee."""
        t = np.asarray(t, dtype=np.float64)
        base = np.exp(self._interp(t, list(np.log(self._h_bgd))))
        return base * (1.0 + 0.15 * self.orbit_factor(t)) * (1.0 + self._wander(t, 1, 0.1))

    def warm_pixel_fraction(self, t: np.ndarray | float) -> np.ndarray:
        """Fraction of CCD pixels that are warm (dark current well above background)."""
        return self._interp(np.asarray(t, dtype=np.float64), self._h_warm)

    def lens_temp_degc(self, t: np.ndarray | float) -> np.ndarray:
        """Lens cell (TEMPPRIM)."""
        return self.housing_temp_degc(t) + 0.02 + self._wander(t, 2, 0.1)

    def secondary_mirror_temp_degc(self, t: np.ndarray | float) -> np.ndarray:
        """Secondary mirror (TEMPSEC)."""
        return self.housing_temp_degc(t) - 0.4 + self._wander(t, 3, 0.1)

    def thermistors_degc(self, t: np.ndarray | float) -> dict[str, np.ndarray]:
        """Header-3 A/D thermistor temperatures (degC, near the real 2003/2019 values)."""
        t = np.asarray(t, dtype=np.float64)
        h = self.housing_temp_degc(t)
        y = np.clip(self.years_since_2003(t), -4.0, 30.0)
        f = 1.0 + y / 16.0  # offsets from the housing roughly double by 2019
        out = {
            "ccd_molyb_therm_1": h + 8.03 + 0.09 * y,
            "ccd_molyb_therm_2": h + 5.30 + 0.12 * y,
            "ccd_det_therm": self.ccd_temp_degc(t) + 0.02,
            "ad_converter_therm": h + 17.2 - 0.04 * y + self._wander(t, 4, 0.2),
            "ad_smhs_therm": h - 0.57 * f,
            "ad_smohs_therm": h - 0.51 * f,
            "ad_pmhs_therm": h - 0.09 * f,
            "ad_pmohs_therm": h - 0.13 * f,
            "ad_achhs_therm": h + 0.17 * f,
            "ad_achohs_therm": h + 0.21 * f,
            "ad_lc_therm": self.lens_temp_degc(t) - 0.09 * f,
        }
        return out

    def voltages_mv(self, t: np.ndarray | float) -> dict[str, np.ndarray]:
        """Header-3 power-supply voltages (mV) and analog ground, drifting 2003 -> 2019."""
        y = np.clip(self.years_since_2003(np.asarray(t, dtype=np.float64)), -4.0, 30.0) / 16.2
        return {
            "ad_5v_ps": 4924.0 - 12.0 * y,
            "ad_15v_ps": 14806.0 - 21.0 * y,
            "ad_m15v_ps": -14886.0 + 6.0 * y,
            "ad_27v_ps": 26559.0 + 30.0 * y,
            "ad_analog_gnd": (-1.0 - 7.5 * y) * 0.30518,
        }


_MISSIONS: dict[int, Mission] = {}


def get_mission(seed: int = 1999) -> Mission:
    """Cached `Mission` for a seed (construction takes ~0.2 s)."""
    m = _MISSIONS.get(int(seed))
    if m is None:
        m = _MISSIONS.setdefault(int(seed), Mission(seed))
    return m


def register_mission(mission: Mission) -> Mission:
    """Make `mission` the cached instance of its seed unless one exists; returns the cached one."""
    return _MISSIONS.setdefault(mission.seed, mission)


def default_mission() -> Mission:
    """The module-level cached mission of the default seed (1999)."""
    return get_mission(1999)
