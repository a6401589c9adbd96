"""Simulated ACA level-0 image files (acaf<tstart>N<rev>_<slot>_img0.fits.gz), real format.

`plan_l0_files` lists, as the upstream archive would, every L0 file overlapping an interval;
file boundaries derive from the mission alone (observation timeline, stream breaks, perigee
8x8 windows, dropouts), never from the query window. `write_l0_file` writes one planned file
byte-for-byte deterministically: headers follow the real 2003 files card by card (both
HDUs) except the simulation marker (ORIGIN, CREATOR, SIMULATD: `sim_cards`),
the table is one numpy structured array, cards and checksums come from
`mica.sim.fits_writer`.

Per observation and slot (VCDU offsets from the acquisition start V0 mimic obsid 3552):

* every slot: a 4x4 parked acquisition file (IMGFUNC 0, rows 1-2 with INTEG 0.704 s);
* guide slots: 6x6 tracking (8x8 in ERs and near perigee) from V0+100+16k (k = order of
  acquisition), about half of them with a short 4x4 re-acquisition at V0+684; at the end
  of the dwell they drop to 4x4 idle (IMGFUNC 0, one row lost every 101 packets) until the
  next acquisition;
* fid slots: 8x8 from V0+244 through the maneuver, IMGFUNC 3 in the last 150 s;
* monitor slots: 6x6 then 8x8 IMGFUNC 2 windows from V0+284 (phase 8 in the 16-VCDU cycle);
* files also break at the mission's stream breaks (row kept in the file holding its last
  sub-image) and rows go missing in occasional telemetry dropouts.
"""

from __future__ import annotations

import functools
import gzip
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from erfa import ErfaWarning
from scipy.special import ndtr

from mica.engine.atomic import write_bytes_atomic
from mica.sim import hdr3
from mica.sim.fits_writer import (
    CHECKSUM_PLACEHOLDER,
    finish_header,
    ones_sum,
    pad,
    raw_card,
    sim_cards,
)
from mica.sim.mission import (
    DARK_CAL_8X8_PAD,
    ROLE_FID,
    ROLE_GUIDE,
    ROLE_MONITOR,
    ROLE_NAMES,
    ROLE_UNUSED,
    VCDU_SECS,
    Mission,
    default_mission,
    get_mission,
    hash_uniform,
    register_mission,
    yagzag_to_pixel,
)
from mica.time import CxoTimeLike, to_secs, to_time

__all__ = [
    "L0FilePlan",
    "plan_l0_files",
    "write_l0_file",
    "l0_dtype",
    "l0_filename",
    "track_images",
    "COLUMNS",
    "GZIP_LEVEL",
]

# zlib level 1: ~75 MB/s and ratio 2.3-2.7 on these files; level 6 is ~5x slower (~14 MB/s)
# for files ~20 % smaller (measured on a simulated day and on the real 2003 files).
GZIP_LEVEL = 1
STEP = {4: 4, 6: 8, 8: 16}  # VCDU per image
SUBIMAGES = {4: 1, 6: 2, 8: 4}
TIMEDEL = {4: "1.025", 6: "2.05", 8: "4.1"}
INTEG_NOMINAL = 1.696
INTEG_SHORT = 0.704
PARKED_PIXEL = 682 * 1 / 32 - 50  # raw 682 at IMGSCALE 1 = -28.6875 DN
ACA_CNT_RATE_MAG0 = 5263.0  # e-/s for a mag 10 star
GAIN = 5.0  # e-/DN

# name, TFORM code, unit, (tlmin, tlmax), unsigned (TZERO 32768), TTYPE comment, sizes
_C = (
    ("TIME", "D", "s", None, False, "Time-tag of the data record", 4),
    ("QUALITY", "J", None, None, False, "Data quality flag; 0 - good, 1 - bad", 4),
    ("MJF", "J", None, (0, 131071), False, "Major frame ctr value", 4),
    ("MNF", "J", None, None, False, "Minor frame ctr value", 4),
    ("END_INTEG_TIME", "D", "s", None, False, "end integration time", 4),
    ("INTEG", "E", "s", None, False, "integration time", 4),
    ("GLBSTAT", "B", None, (0, 255), False, "global status", 4),
    ("COMMCNT", "B", None, (0, 63), False, "command count", 4),
    ("COMMPROG", "B", None, (0, 63), False, "command progress", 4),
    ("IMGFID1", "B", None, (0, 1), False, "image type", 4),
    ("IMGNUM1", "B", None, (0, 7), False, "image number (of 8)", 4),
    ("IMGFUNC1", "B", None, (0, 3), False, "image function", 4),
    ("IMGSTAT", "B", None, (0, 255), False, "image status", 4),
    ("IMGROW0", "I", None, (-511, 512), False, "row of lowerleft image pixel", 4),
    ("IMGCOL0", "I", None, (-511, 512), False, "col of lowerleft image pixel", 4),
    ("IMGSCALE", "I", None, (0, 1023), True, "pixel scaling factor", 4),
    ("BGDAVG", "I", "DN", None, True, "average background", 4),
    ("IMGFID2", "B", None, (0, 1), False, "image type", 6),
    ("IMGNUM2", "B", None, (0, 7), False, "image number (of 8)", 6),
    ("IMGFUNC2", "B", None, (0, 3), False, "image function", 6),
    ("BGDRMS", "I", "DN", None, True, "background RMS", 6),
    ("TEMPCCD", "E", "K", None, False, "temp 1 - CCD", 6),
    ("TEMPHOUS", "E", "K", None, False, "temp 2 - AC housing", 6),
    ("TEMPPRIM", "E", "K", None, False, "temp 3 - lens cell", 6),
    ("TEMPSEC", "E", "K", None, False, "temp 4 - secondary mirror", 6),
    ("BGDSTAT", "B", None, (0, 255), False, "bgd pixel status", 6),
    ("IMGFID3", "B", None, (0, 1), False, "image type", 8),
    ("IMGNUM3", "B", None, (0, 7), False, "image number (of 8)", 8),
    ("IMGFUNC3", "B", None, (0, 3), False, "image function", 8),
    ("IMGFID4", "B", None, (0, 1), False, "image type", 8),
    ("IMGNUM4", "B", None, (0, 7), False, "image number (of 8)", 8),
    ("IMGFUNC4", "B", None, (0, 3), False, "image function", 8),
    ("IMGRAW", "E", "DN", None, False, "aspect camera image", 4),
) + tuple(
    (name, "B", None, None, False, f"Hdr 3 tlm. imgtype={name[6]} word={name[7]}", 8)
    for name in hdr3.HD3_COLUMNS
)
COLUMNS = _C
_NUMPY = {"D": ">f8", "J": ">i4", "E": ">f4", "B": "u1", "I": ">i2"}


def _columns(size: int) -> list[tuple]:
    return [c for c in COLUMNS if c[6] <= size]


@functools.cache
def l0_dtype(size: int) -> np.dtype:
    """On-disk (big-endian, unpadded) row dtype of an L0 file of image size 4, 6 or 8."""
    fields = []
    for name, code, *_ in _columns(size):
        if name == "IMGRAW":
            fields.append((name, ">f4", (size * size,)))
        else:
            fields.append((name, _NUMPY[code]))
    return np.dtype(fields)


def l0_filename(filetime: int, revision: int, slot: int) -> str:
    """`acaf<filetime:09d>N<rev:03d>_<slot>_img0.fits.gz`."""
    return f"acaf{int(filetime):09d}N{int(revision):03d}_{int(slot)}_img0.fits.gz"


# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class L0FilePlan:
    """Everything that defines one L0 file; rows are a VCDU grid minus dropped rows."""

    filename: str
    slot: int
    imgsize: int
    revision: int
    tstart: float  # header TSTART = t(start VCDU)
    tstop: float  # header TSTOP = t(stop VCDU) + 0.25625
    startmjf: int
    startmnf: int
    stopmjf: int
    stopmnf: int
    rows: int
    first_vcdu: int  # global unwrapped VCDU of grid row 0 (always kept)
    n_grid: int
    dropped: tuple[int, ...]  # grid indices without a row (gaps)
    func_changes: tuple[tuple[int, int], ...]  # (grid index, IMGFUNC), first at 0
    short_integ: tuple[int, ...]  # grid indices with INTEG 0.704 s
    role: str
    kind: str  # 'acq' | 'track' | 'reacq' | 'idle' | 'park'
    obsid: int
    obs_index: int
    clock_cycle: int
    btimnull: float
    btimrate: float
    btimdrft: float
    mission_seed: int

    @property
    def filetime(self) -> int:
        """int(TSTART), the name's time."""
        return int(self.tstart)

    @property
    def start_vcdu(self) -> int:
        """24-bit VCDU counter of the first row (STARTMJF*128 + STARTMNF)."""
        return self.startmjf * 128 + self.startmnf

    @property
    def stop_vcdu(self) -> int:
        """24-bit VCDU counter at the end of the data (STOPMJF*128 + STOPMNF)."""
        return self.stopmjf * 128 + self.stopmnf

    @property
    def step(self) -> int:
        """VCDU counts between rows (4, 8, 16)."""
        return STEP[self.imgsize]

    def grid_index(self) -> np.ndarray:
        """Grid indices of the rows present."""
        keep = np.ones(self.n_grid, bool)
        keep[list(self.dropped)] = False
        return np.nonzero(keep)[0]

    def row_vcdu(self) -> np.ndarray:
        """Global (unwrapped) VCDU of each row's first sub-image."""
        return self.first_vcdu + self.step * self.grid_index().astype(np.int64)

    def row_integ(self) -> np.ndarray:
        """INTEG (s) per row."""
        integ = np.full(self.n_grid, INTEG_NOMINAL)
        integ[list(self.short_integ)] = INTEG_SHORT
        return integ[self.grid_index()]

    def row_func(self) -> np.ndarray:
        """IMGFUNC per row."""
        func = np.zeros(self.n_grid, np.uint8)
        for k, f in self.func_changes:
            func[k:] = f
        return func[self.grid_index()]

    def row_times(self) -> np.ndarray:
        """Row TIME: t(VCDU) - 1.025 - INTEG/2 with this file's clock correlation."""
        x = (self.row_vcdu() - (self.clock_cycle << 24)).astype(np.float64)
        t = self.btimnull + self.btimrate * x + self.btimdrft * x * x
        return t - 1.025 - self.row_integ() / 2.0


# ---------------------------------------------------------------------------------------
# Planning
@dataclass
class _Seg:
    slot: int
    size: int
    start: int  # first VCDU allowed (rows start at the next phase-aligned count)
    end: int  # rows must end (last sub-image) before this VCDU
    funcs: list  # [(vcdu, func)]
    kind: str
    phase: int = 0
    short_integ: bool = False
    periodic_drop: int = -1  # idle files: one row lost per 101 packets (phase), -1 none


def _align(v: int, step: int, phase: int = 0) -> int:
    return v + ((phase - v) % step)


def _obs_vcdu(m: Mission, t: float) -> int:
    return _align(int(np.ceil(float(m.time_to_vcdu(t)))), 4)


# Obsid 3552 acquisition details read off the real files (guide order, 4x4 lengths, ...).
_OBS3552 = {
    "order": [3, 5, 7, 4, 6],
    "offset": [0, 0, 8, 0, 0, 0, 0, 0],
    "acq_len": [31, 43, 37, 25, 25, 25, 25, 25],
    "reacq": [True, True, True, False, True, False, True, True],
    "reacq_len": [10, 22, 18, 0, 18, 0, 22, 14],
    "drop_stagger": [0, 0, 0, 280, 48, 56, 0, 0],
}


def _obs_segments(m: Mission, i: int) -> tuple[list[_Seg], list]:
    """Mode segments of all slots for observation `i` (acquisition to next acquisition)."""
    rng = np.random.default_rng([m.seed, 7, i])
    v0 = _obs_vcdu(m, m.obs_tstart[i])
    v1 = _obs_vcdu(m, m.obs_tstop[i])
    vn = _obs_vcdu(m, m.obs_next_tstart[i])
    roles = m.slot_role[i]
    sizes = m.slot_size[i]
    tracked = [s for s in range(8) if roles[s] in (ROLE_GUIDE, ROLE_MONITOR)]
    order = list(rng.permutation(tracked))
    offset = 4 * rng.integers(0, 3, 8)
    acq_len = rng.integers(24, 44, 8)
    reacq = rng.random(8) < 0.5
    reacq[roles == ROLE_FID] = rng.random() < 0.6
    reacq_len = rng.integers(10, 23, 8)
    stagger = 4 * rng.integers(0, 20, 8)
    idle_phase = rng.integers(0, 101, 8)
    if m.obs_obsid[i] == 3552:
        o = _OBS3552
        order = [s for s in o["order"] if s in tracked]
        offset, acq_len = np.array(o["offset"]), np.array(o["acq_len"])
        reacq, reacq_len = np.array(o["reacq"]), np.array(o["reacq_len"])
        stagger = np.array(o["drop_stagger"])
    segs: list[_Seg] = []
    for s in range(8):
        role = int(roles[s])
        size = int(sizes[s])
        a = v0 + int(offset[s])
        if role == ROLE_UNUSED:
            segs.append(_Seg(s, 4, a, vn, [(a, 0)], "park"))
            continue
        if role == ROLE_FID:
            acq_end = a + 4 * int(acq_len[s])
            segs.append(_Seg(s, 4, a, acq_end, [(a, 0)], "acq", short_integ=True))
            g = v0 + 244
            f3 = vn - 584  # fid lights off 150 s before the next acquisition
            if reacq[s]:
                r0 = v0 + 692
                r1 = r0 + 4 * int(reacq_len[s])
                segs.append(_Seg(s, 8, g, r0, [(g, 1)], "track"))
                segs.append(_Seg(s, 4, r0, r1, [(r0, 0)], "reacq"))
                g = max(r1 + 16, v0 + 852)  # fids restart together (real: 47654/112)
            funcs = [(g, 1)] + ([(f3, 3)] if f3 > g + 64 else [])
            segs.append(_Seg(s, 8, g, vn, funcs, "track"))
            continue
        k = order.index(s)
        g = v0 + 100 + 16 * k
        segs.append(_Seg(s, 4, a, g, [(a, 0)], "acq", short_integ=True))
        drop = v1 + int(stagger[s])
        if role == ROLE_MONITOR:
            mstart = v0 + 284
            segs.append(_Seg(s, 6, g, mstart, [(g, 1)], "track"))
            g, func, phase = mstart, 2, 8
        else:
            func, phase = 1, 0
        if reacq[s]:
            r0 = v0 + 684
            r1 = r0 + 4 * int(reacq_len[s])
            segs.append(_Seg(s, size, g, r0, [(g, func)], "track", phase=phase))
            segs.append(_Seg(s, 4, r0, r1, [(r0, 0)], "reacq"))
            g = r1 + (152 if size == 8 else 0)
        segs.append(_Seg(s, size, g, drop, [(g, func)], "track", phase=phase))
        # One packet without a row between tracking and idle (real: 47821/31 -> /36).
        idle = drop + 4
        segs.append(_Seg(s, 4, idle, vn, [(idle, 0)], "idle", periodic_drop=int(idle_phase[s])))

    # Perigee passes: guide slots of science dwells switch 6x6 -> 8x8 (new files).
    win = m.perigee_8x8_windows(m.obs_tstart[i], m.obs_tstop[i] + 1200.0)
    if len(win) and not m.obs_is_er[i]:
        wv = [(_obs_vcdu(m, w0), _obs_vcdu(m, w1)) for w0, w1 in win]
        out = []
        for seg in segs:
            if seg.size != 6 or seg.kind != "track" or roles[seg.slot] != ROLE_GUIDE:
                out.append(seg)
                continue
            cuts = sorted({c for w in wv for c in w if seg.start < c < seg.end})
            edges = [seg.start, *cuts, seg.end]
            for lo, hi in zip(edges[:-1], edges[1:], strict=True):
                inside = any(w0 <= lo < w1 for w0, w1 in wv)
                out.append(_Seg(seg.slot, 8 if inside else 6, lo, hi, [(lo, 1)], "track"))
        segs = out

    # Telemetry dropouts (common to a random subset of slots), about one per 3 h.
    n_drop = rng.poisson((vn - v0) * VCDU_SECS / (3 * 3600.0))
    d0 = rng.integers(v0 + 1000, max(vn, v0 + 1001), n_drop)
    dl = 8 * rng.integers(1, 7, n_drop)
    hit = rng.random((n_drop, 8)) < 0.5
    dropouts = [(int(a), int(a + b), h) for a, b, h in zip(d0, dl, hit, strict=True)]
    # Dark calibrations (after all random draws, so other observations keep their bytes).
    return _dark_cal_segments(m, i, segs), dropouts


def _dark_cal_segments(m: Mission, i: int, segs: list[_Seg]) -> list[_Seg]:
    """No rows during dark-cal replicas; slots 6-7 in 8x8 within DARK_CAL_8X8_PAD of them,
    so that header-3 ccd_temp is telemetered just before and after each replica."""
    pad = DARK_CAL_8X8_PAD
    reps = m.dark_cal_windows(m.obs_tstart[i] - 2 * pad, m.obs_next_tstart[i] + 2 * pad)
    if not len(reps):
        return segs
    # Row TIMEs precede their VCDU by up to ~2 s: end the gap 4 s late so none falls inside.
    gaps = [(_obs_vcdu(m, a), _obs_vcdu(m, b + 4.0)) for a, b in reps]
    wide = [(_obs_vcdu(m, a - pad), _obs_vcdu(m, b + pad)) for a, b in reps]
    out = []
    for seg in segs:
        for lo, hi in _subtract(seg.start, seg.end, gaps):
            pieces = [(lo, hi, seg.size)]
            if seg.slot in (6, 7):
                cuts = sorted({c for w in wide for c in w if lo < c < hi})
                edges = [lo, *cuts, hi]
                pieces = []
                for a, b in zip(edges[:-1], edges[1:], strict=True):
                    size = 8 if any(w0 <= a < w1 for w0, w1 in wide) else seg.size
                    if pieces and pieces[-1][2] == size:
                        pieces[-1] = (pieces[-1][0], b, size)
                    else:
                        pieces.append((a, b, size))
            out.extend(_seg_piece(seg, a, b, size) for a, b, size in pieces)
    return out


def _subtract(lo: int, hi: int, gaps: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """[lo, hi) minus the gap intervals."""
    out = [(lo, hi)]
    for g0, g1 in gaps:
        out = [p for a, b in out for p in ((a, min(b, g0)), (max(a, g1), b)) if p[1] > p[0]]
    return out


def _seg_piece(seg: _Seg, lo: int, hi: int, size: int) -> _Seg:
    if (lo, hi, size) == (seg.start, seg.end, seg.size):
        return seg
    before = [f for v, f in seg.funcs if v <= lo]
    funcs = [(lo, before[-1] if before else seg.funcs[0][1])]
    funcs += [(v, f) for v, f in seg.funcs if lo < v < hi]
    return _Seg(
        seg.slot,
        size,
        lo,
        hi,
        funcs,
        seg.kind,
        phase=seg.phase,
        short_integ=seg.short_integ and lo == seg.start,
        periodic_drop=seg.periodic_drop if size == 4 else -1,
    )


def _file_plans_from_segment(
    m: Mission, i: int, seg: _Seg, dropouts: list, revision: int
) -> list[L0FilePlan]:
    step = STEP[seg.size]
    first = _align(seg.start, step, seg.phase)
    n = (seg.end - first) // step
    if n <= 0:
        return []
    v = first + step * np.arange(n, dtype=np.int64)
    drop = np.zeros(n, bool)
    if seg.kind == "track":
        for a, b, hit in dropouts:
            if hit[seg.slot]:
                drop |= (v >= a) & (v < b)
    if seg.periodic_drop >= 0:
        drop |= ((v >> 2) + seg.periodic_drop) % 101 == 0
    # Stream breaks: a row stays in the file that holds its last sub-image.
    br = m.stream_breaks
    ends = v + step - 1  # VCDU of each row's last sub-image
    b = br[np.searchsorted(br, ends[0], side="right") : np.searchsorted(br, ends[-1], "right")]
    cut = np.searchsorted(ends, b, side="left")
    edges = [0, *[int(c) for c in cut if 0 < c < n], n]
    fchg = [(max(0, -(-(fv - first) // step)), f) for fv, f in seg.funcs]
    short = [1, 2] if seg.short_integ else []
    plans = []
    for ka, kb in zip(edges[:-1], edges[1:], strict=True):
        keep = np.nonzero(~drop[ka:kb])[0]
        if len(keep) == 0:
            continue
        ka2 = ka + int(keep[0])
        kb2 = ka + int(keep[-1]) + 1
        dropped = tuple(int(k - ka2) for k in range(ka2, kb2) if drop[k])
        func0 = [f for k, f in fchg if k <= ka2][-1]
        changes = ((0, func0),) + tuple((k - ka2, f) for k, f in fchg if ka2 < k < kb2)
        plans.append(
            _make_plan(
                m, i, seg, first + step * ka2, kb2 - ka2, dropped, changes, short, ka2, revision
            )
        )
    return plans


def _make_plan(m, i, seg, v_first, n_grid, dropped, changes, short, k_off, revision):
    size = seg.size
    step = STEP[size]
    cycle = int(v_first >> 24)
    bnull, brate, bdrft = m.clock_params(cycle)
    v_last = v_first + step * (n_grid - 1)
    v_stop = v_last + 4 * (SUBIMAGES[size] - 1) + 3

    def t(vv: int) -> float:
        x = float(vv - (cycle << 24))
        return bnull + brate * x + bdrft * x * x

    tstart = t(v_first)
    tstop = t(v_stop) + VCDU_SECS
    loc0 = v_first & 0xFFFFFF
    loc1 = v_stop & 0xFFFFFF
    short_rel = tuple(
        k - k_off for k in short if 0 <= k - k_off < n_grid and k - k_off not in dropped
    )
    return L0FilePlan(
        filename=l0_filename(int(tstart), revision, seg.slot),
        slot=seg.slot,
        imgsize=size,
        revision=revision,
        tstart=tstart,
        tstop=tstop,
        startmjf=loc0 >> 7,
        startmnf=loc0 & 127,
        stopmjf=loc1 >> 7,
        stopmnf=loc1 & 127,
        rows=n_grid - len(dropped),
        first_vcdu=int(v_first),
        n_grid=int(n_grid),
        dropped=dropped,
        func_changes=changes,
        short_integ=short_rel,
        role=ROLE_NAMES[int(m.slot_role[i, seg.slot])],
        kind=seg.kind,
        obsid=int(m.obs_obsid[i]),
        obs_index=int(i),
        clock_cycle=cycle,
        btimnull=bnull,
        btimrate=brate,
        btimdrft=bdrft,
        mission_seed=m.seed,
    )


@functools.lru_cache(maxsize=2048)
def _obs_file_plans(seed: int, i: int, revision: int) -> tuple[L0FilePlan, ...]:
    m = get_mission(seed)
    segs, dropouts = _obs_segments(m, i)
    plans = []
    for seg in segs:
        plans.extend(_file_plans_from_segment(m, i, seg, dropouts, revision))
    return tuple(plans)


def plan_l0_files(
    start: CxoTimeLike,
    stop: CxoTimeLike,
    mission: Mission | None = None,
    revision: int = 1,
) -> list[L0FilePlan]:
    """Every L0 file (slots 0-7) whose data overlap [start, stop], sorted by (tstart, slot).

    Boundaries depend only on the mission: overlapping queries plan identical files.
    Plans are cached per (seed, observation); a Mission is a pure function of its seed,
    so any instance of the same seed gives the same plans.
    """
    m = register_mission(mission) if mission is not None else default_mission()
    t0, t1 = float(to_secs(start)), float(to_secs(stop))
    pad = 120.0
    i0 = int(np.searchsorted(m.obs_next_tstart, t0 - pad, side="right"))
    i1 = int(np.searchsorted(m.obs_tstart, t1 + pad, side="right"))
    out = []
    for i in range(i0, i1):
        for p in _obs_file_plans(m.seed, i, int(revision)):
            if p.tstart < t1 and p.tstop > t0:
                out.append(p)
    out.sort(key=lambda p: (p.tstart, p.slot))
    return out


# ---------------------------------------------------------------------------------------
# Header text
_pad = pad
_kv = raw_card


def _ks(key: str, value: str, comment: str | None = None) -> str:
    return raw_card(key, value, comment, string=True)


def _comment(text: str = "") -> str:
    return _pad(("COMMENT " + text) if text else "COMMENT")


def _block(name: str) -> list[str]:
    head = ("COMMENT" + " " * 24 + f"/ {name} block").ljust(80, "-")
    return [_comment(), head, _comment()]


_BANNER = [
    _comment("                              +------------------+"),
    _comment("                              | AXAF FITS   File |"),
    _comment("                              +------------------+"),
    _comment(" *********************************************************"),
    _comment(" >    This file is written following certain AXAF-ASC    <"),
    _comment(" >    conventions which are documented in ASC-FITS-2.0   <"),
    _comment(" *********************************************************"),
]
_FITS_COMMENT = [
    _comment("  FITS (Flexible Image Transport System) format defined in Astronomy and"),
    _comment("  Astrophysics Supplement Series v44/p363, v44/p371, v73/p359, v73/p365."),
    _comment("  Contact the NASA Science Office of Standards and Technology for the"),
    _comment("  FITS Definition document #100 and other FITS information."),
]
_LONGSTRN_COMMENT = [
    _comment("This FITS file may contain long string keyword values that are"),
    _comment("continued over multiple keywords.  This convention uses the  '&'"),
    _comment("character at the end of a string which is then continued"),
    _comment("on subsequent keywords whose name = 'CONTINUE'"),
]
_TEMPLATES = (
    "aids.strip@@/main/3",
    "aids_file_info.dat@@/main/5",
    "aise_file_info.dat@@/main/6",
    "aise_group_info.dat@@/main/3",
    "aise_dp_info.dat@@/main/5",
    "common_dp_info.dat@@/main/19",
    "aise_decom_info.dat@@/main/8",
)

# (processing date, ASCDSVER) and (data date, TLMVER): real 2003 = 6.13.4/P008, 2019 =
# 10.8/P014; the others are plausible fill-ins.
_ASCDSVER = (
    ("1999:204", "4.5"),
    ("2000:200", "5.0.2"),
    ("2001:250", "6.4.0"),
    ("2003:001", "6.13.4"),
    ("2004:100", "7.2.1"),
    ("2006:300", "7.6.9"),
    ("2008:100", "8.0"),
    ("2010:200", "8.3"),
    ("2012:300", "8.4.5"),
    ("2015:100", "10.4"),
    ("2018:100", "10.7"),
    ("2019:100", "10.8"),
    ("2020:300", "10.9.3"),
    ("2022:200", "10.11.2"),
    ("2024:100", "10.13"),
    ("2026:001", "10.14"),
)
_TLMVER = (
    ("1999:204", "P006"),
    ("2001:100", "P007"),
    ("2002:300", "P008"),
    ("2006:001", "P009"),
    ("2009:001", "P010"),
    ("2011:200", "P011"),
    ("2014:001", "P012"),
    ("2016:200", "P013"),
    ("2018:300", "P014"),
    ("2021:100", "P015"),
    ("2024:001", "P016"),
)


@functools.cache
def _version_times() -> tuple[np.ndarray, np.ndarray, float]:
    a = np.asarray(to_secs(np.array([d for d, _ in _ASCDSVER])), dtype=np.float64)
    b = np.asarray(to_secs(np.array([d for d, _ in _TLMVER])), dtype=np.float64)
    return a, b, float(to_secs("2010:001"))


def _lookup(table: tuple, times: np.ndarray, t: float) -> str:
    k = max(0, int(np.searchsorted(times, t, side="right")) - 1)
    return table[k][1]


def _fmt_e(x: float) -> str:
    """TSTART/TSTOP style: 15 significant digits, E format (1.76267383398562E+08)."""
    return f"{x:.14E}"


def _fmt_g(x: float) -> str:
    """BTIMNULL/BTIMRATE style (%.15G); exponent form with trailing zeros stripped."""
    s = f"{x:.15G}"
    if "E" in s:
        mant, exp = s.split("E")
        s = f"{x:.14E}"
        mant, exp = s.split("E")
        mant = mant.rstrip("0")
        s = f"{mant}E{exp}"
    elif "." not in s:
        s += "."
    return s


def _history(plan: L0FilePlan, job: int, counter: int) -> list[str]:
    infile = (
        f"infile=/dsops/ap/sdp.9/opus/prs_run/tmp//TP_AIDE{plan.slot}__{job}n{counter:03d}"
        f"/input/acaf{plan.filetime:09d}N{plan.revision:03d}_img{plan.imgsize}_{plan.slot}0.strip"
    )
    entries = [("TOOL", "aise")] + [("PARM", infile)]
    entries += [
        ("PARM", "template=/vobs/ASC_DR_TLM/src/dr/tlm/template_dir/" + t) for t in _TEMPLATES
    ]
    lines = []
    for tag, text in entries:
        chunks = [text[k : k + 56] for k in range(0, len(text), 56)]
        for n, chunk in enumerate(chunks):
            lines.append((tag if n == 0 else "CONT", chunk))
    cards = [_pad("HISTNUM = " + str(len(lines)))]
    for k, (tag, chunk) in enumerate(lines, start=1):
        cards.append(_pad(f"HISTORY  {tag:<6}:{chunk:<56}ASC{k:05d}"))
    return cards


def _column_cards(size: int) -> list[str]:
    cards = []
    for n, (name, code, unit, lim, unsigned, comment, _) in enumerate(_columns(size), start=1):
        repeat = size * size if name == "IMGRAW" else 1
        cards.append(_ks(f"TTYPE{n}", name, comment))
        cards.append(_ks(f"TFORM{n}", f"{repeat}{code}", "Data format"))
        if unit:
            cards.append(_ks(f"TUNIT{n}", unit, "Units"))
        if lim:
            cards.append(_kv(f"TLMIN{n}", str(lim[0]), "Minimum field value"))
            cards.append(_kv(f"TLMAX{n}", str(lim[1]), "Maximum field value"))
        if unsigned:
            cards.append(_kv(f"TZERO{n}", "32768", "offset for unsigned integers"))
            cards.append(_kv(f"TSCAL{n}", "1", "data are not scaled"))
        if name == "IMGRAW":
            cards.append(_ks(f"TDIM{n}", f"({size},{size})", "size of the multidimensional array"))
    return cards


# ---------------------------------------------------------------------------------------
# Content
@functools.lru_cache(maxsize=2)
def _ccd_maps(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed per-pixel maps (1024x1024): exp(1) dark shape, warm onset, warm amplitude (DN)."""
    keys = np.arange(1024 * 1024, dtype=np.uint64)
    e = (-np.log1p(-hash_uniform(keys, seed * 31 + 1) * 0.999)).astype(np.float32)
    onset = hash_uniform(keys, seed * 31 + 2).astype(np.float32)
    amp = (12.0 * hash_uniform(keys, seed * 31 + 3) ** -0.75).clip(0, 3000).astype(np.float32)
    return e, onset, amp


def _psf_1d(edges: np.ndarray, sigma: float) -> np.ndarray:
    c = ndtr(edges / sigma)
    return c[:, 1:] - c[:, :-1]


def _images(plan, m, obs_i, times, integ, func, rng):
    """Pixel arrays (n, N, N) DN and window origins for tracked rows."""
    size = plan.imgsize
    slot = plan.slot
    n = len(times)
    yag = m.slot_yag[obs_i, slot]
    zag = m.slot_zag[obs_i, slot]
    mag = m.slot_mag[obs_i, slot]
    if plan.role == "fid":
        dy = dz = np.zeros(n)
    else:
        ph = m.obs_dither_phase[obs_i]
        dy = 8.0 * np.sin(2 * np.pi * times / 1000.0 + ph[0])
        dz = 8.0 * np.sin(2 * np.pi * times / 707.1 + ph[1])
    r, c = yagzag_to_pixel(yag + dy, zag + dz)
    row0 = np.clip(np.rint(r - size / 2.0), -512, 512 - size).astype(np.int64)
    col0 = np.clip(np.rint(c - size / 2.0), -512, 512 - size).astype(np.int64)
    ar = np.arange(size + 1)
    er = row0[:, None] + ar - r[:, None]
    ec = col0[:, None] + ar - c[:, None]
    psf = 0.88 * np.einsum("ni,nj->nij", _psf_1d(er, 0.75), _psf_1d(ec, 0.75))
    psf += 0.12 * np.einsum("ni,nj->nij", _psf_1d(er, 2.2), _psf_1d(ec, 2.2))
    flux = ACA_CNT_RATE_MAG0 * 10 ** (-0.4 * (mag - 10.0)) * integ / GAIN
    flux = flux * (1.0 + 0.01 * rng.standard_normal(n))
    flux[func == 3] = 0.0  # fid light off
    # Dark current from fixed CCD maps: exponential floor + warm pixels.
    emap, onset, amp = _ccd_maps(m.seed)
    rr = (row0[:, None, None] + np.arange(size)[None, :, None] + 512).clip(0, 1023)
    cc = (col0[:, None, None] + np.arange(size)[None, None, :] + 512).clip(0, 1023)
    idx = rr * 1024 + cc
    bgd = m.bgd_level_dn(times)[:, None, None]
    wfrac = m.warm_pixel_fraction(times)[:, None, None]
    dark = bgd * emap[idx] + np.where(onset[idx] < wfrac, amp[idx], 0.0)
    dark *= (integ / INTEG_NOMINAL)[:, None, None]
    signal = flux[:, None, None] * psf + dark
    sigma = np.sqrt(np.maximum(signal, 0.0) / GAIN + 1.5**2)
    img = signal + sigma * rng.standard_normal(signal.shape)
    return img, row0, col0


def _quantise(img: np.ndarray, size: int, min_scale: int) -> tuple[np.ndarray, np.ndarray]:
    """IMGSCALE per row and pixel values raw10 * IMGSCALE/32 - 50 (raw10 integral 0..1023)."""
    if size == 6:
        img = img.copy()
        img[:, [0, 0, 5, 5], [0, 5, 0, 5]] = -50.0  # corners are not telemetered
    peak = img.reshape(len(img), -1).max(axis=1)
    scale = np.maximum(min_scale, np.ceil((peak + 50.0) * 32.0 / 1023.0)).astype(np.int64)
    raw = np.clip(np.rint((img + 50.0) * 32.0 / scale[:, None, None]), 0, 1023)
    vals = raw * scale[:, None, None] / 32.0 - 50.0
    if size == 6:
        vals[:, [0, 0, 5, 5], [0, 5, 0, 5]] = 0.0
    return vals, scale


def _temps_k(degc: np.ndarray) -> np.ndarray:
    """Signed-byte temperature telemetry: 0.4 K steps, 0.4 * b + 273.15."""
    b = np.clip(np.rint(degc / 0.4), -128, 127)
    return (0.4 * b + 273.15).astype(np.float32)


def _table(plan: L0FilePlan, m: Mission, rng: np.random.Generator) -> np.ndarray:
    size = plan.imgsize
    slot = plan.slot
    i = plan.obs_index
    v = plan.row_vcdu()
    n = len(v)
    integ = plan.row_integ()
    func = plan.row_func()
    times = plan.row_times()
    arr = np.zeros(n, dtype=l0_dtype(size))
    arr["TIME"] = times
    arr["END_INTEG_TIME"] = times + integ / 2.0
    arr["INTEG"] = integ
    loc = v & 0xFFFFFF
    arr["MJF"] = loc >> 7
    arr["MNF"] = loc & 127
    arr["QUALITY"] = rng.random(n) < 2e-5  # a handful of bad rows per day
    parked = func == 0
    tracked = ~parked

    # Command bytes: parked windows alternate the repeat bits; rare command counts and
    # countdown bursts of COMMPROG (values seen in the real files).
    commprog = np.where(parked, (v >> 2) & 1, 0).astype(np.int64)
    nb = rng.poisson(n / 900.0)
    for k in rng.integers(0, n, nb):
        seq = np.repeat(np.arange(7, -1, -1) * 8 + 4, 2)
        commprog[k : k + len(seq)] = seq[: n - k]
    arr["COMMPROG"] = commprog
    commcnt = np.zeros(n, np.uint8)
    hits = rng.random(n) < 1.0 / 600.0
    commcnt[hits] = rng.choice(np.array([16, 40, 96, 100], np.uint8), hits.sum())
    arr["COMMCNT"] = commcnt
    glb = np.where(rng.random(n) < 1e-4, 128, 0)
    arr["GLBSTAT"] = glb
    is_fid = plan.role == "fid"
    imgfid = np.where(tracked & is_fid, 1, 0)
    for k in range(1, SUBIMAGES[size] + 1):
        arr[f"IMGFID{k}"] = imgfid
        arr[f"IMGNUM{k}"] = slot
        arr[f"IMGFUNC{k}"] = func
    stat = np.zeros(n, np.uint8)
    rare = tracked & (rng.random(n) < 2e-3)
    stat[rare] = rng.choice(np.array([1, 2, 3], np.uint8), rare.sum())
    arr["IMGSTAT"] = stat

    row0 = np.full(n, 511, np.int64)
    col0 = np.full(n, 511, np.int64)
    scale = np.ones(n, np.int64)
    bgdavg = np.full(n, 511, np.int64)
    bgdrms = np.zeros(n, np.int64)
    pix = np.full((n, size, size), PARKED_PIXEL, np.float64)
    if tracked.any():
        tt = times[tracked]
        ft = func[tracked]
        img, r0, c0 = _images(plan, m, i, tt, integ[tracked], ft, rng)
        vals, sc = _quantise(img, size, 32)
        pix[tracked] = vals
        row0[tracked], col0[tracked], scale[tracked] = r0, c0, sc
        bl = m.bgd_level_dn(tt)
        nt = len(tt)
        if is_fid:
            years = m.years_since_2003(tt)
            avg = 20.0 + 0.3 * years + rng.normal(0.0, 1.5, nt)
            rms = 5.0 + rng.normal(0.0, 1.3, nt)
            off = ft == 3
            avg[off] = 0.0
            rms[off] = np.abs(rng.normal(0.0, 1.0, off.sum()))
            scale[np.nonzero(tracked)[0][off]] = 32
        else:
            avg = bl + rng.normal(0.0, 0.8, nt)
            rms = 0.73 * bl + 1.5 + rng.normal(0.0, 0.8, nt)
        bgdavg[tracked] = np.clip(np.rint(avg), 0, 1023)
        bgdrms[tracked] = np.clip(np.rint(rms), 0, 1023)
        if is_fid and (ft == 3).any():
            # Fid off: re-quantise the background-only image at IMGSCALE 32.
            sel = np.nonzero(tracked)[0][ft == 3]
            raw = np.clip(np.rint(pix[sel] + 50.0), 0, 1023)
            pix[sel] = raw - 50.0
    arr["IMGROW0"] = row0
    arr["IMGCOL0"] = col0
    # TZERO 32768: stored value = value - 32768.
    arr["IMGSCALE"] = scale - 32768
    arr["BGDAVG"] = bgdavg - 32768
    arr["IMGRAW"] = pix.reshape(n, -1)

    if size >= 6:
        arr["BGDRMS"] = bgdrms - 32768
        # TEMPCCD is its own sensor: a small offset and noise make it flip between codes.
        ccd = m.ccd_temp_degc(times) + 0.04 + rng.normal(0.0, 0.03, n)
        arr["TEMPCCD"] = _temps_k(ccd)
        arr["TEMPHOUS"] = _temps_k(m.housing_temp_degc(times) + rng.normal(0.0, 0.03, n))
        arr["TEMPPRIM"] = _temps_k(m.lens_temp_degc(times) + rng.normal(0.0, 0.03, n))
        arr["TEMPSEC"] = _temps_k(m.secondary_mirror_temp_degc(times) + rng.normal(0.0, 0.03, n))
        base = 255 & ~(1 << int(rng.integers(0, 8))) if rng.random() < 0.7 else 255
        extra = rng.random(n) < 0.15
        bstat = np.full(n, base, np.int64)
        bstat[extra] &= ~(1 << rng.integers(0, 8, extra.sum()))
        arr["BGDSTAT"] = bstat
    if size == 8:
        b = hdr3.hdr3_bytes(slot, times, v, m, rng)
        for k, name in enumerate(hdr3.HD3_COLUMNS):
            arr[name] = b[:, k]
    return arr


def _file_rng(plan: L0FilePlan, revision: int) -> np.random.Generator:
    """The one random stream of a file: its table first, then its header values."""
    return np.random.default_rng([plan.mission_seed, plan.filetime, plan.slot, int(revision)])


def track_images(plan: L0FilePlan, revision: int | None = None) -> dict[str, np.ndarray]:
    """The image rows `write_l0_file` writes for ``plan``, without writing the file.

    The simulated aspect pipeline centroids these very pixels (ACACENT alg 1 rows), so the
    two products agree; values are the file's (same random stream), not a re-draw.

    Parameters
    ----------
    plan : L0FilePlan
        A planned file.
    revision : int, optional
        L0 revision (default: the plan's, as `write_l0_file`).

    Returns
    -------
    dict
        ``TIME`` (n,), ``IMGRAW`` (n, N, N) DN as stored (6x6 corners 0.0), ``IMGROW0``,
        ``IMGCOL0``, ``BGDAVG`` (DN, unsigned), ``IMGFUNC1``.
    """
    rev = int(plan.revision if revision is None else revision)
    arr = _table(plan, get_mission(plan.mission_seed), _file_rng(plan, rev))
    size = plan.imgsize
    return {
        "TIME": arr["TIME"].astype(np.float64),
        "IMGRAW": arr["IMGRAW"].astype(np.float64).reshape(-1, size, size),
        "IMGROW0": arr["IMGROW0"].astype(np.int64),
        "IMGCOL0": arr["IMGCOL0"].astype(np.int64),
        "BGDAVG": arr["BGDAVG"].astype(np.int64) + 32768,  # stored with TZERO 32768
        "IMGFUNC1": arr["IMGFUNC1"].astype(np.int64),
    }


# ---------------------------------------------------------------------------------------
def _isot(secs: list[float], scale: str) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ErfaWarning)  # dates past the leap-second table
        t = to_time(np.asarray(secs, dtype=np.float64))  # astropy's leap-second check offline
        t = t.tt if scale == "tt" else t.utc
        t.precision = 0
        return [str(x)[:19] for x in t.isot]


def write_l0_file(
    plan: L0FilePlan,
    dest_dir: str | os.PathLike,
    *,
    revision: int | None = None,
    compresslevel: int = GZIP_LEVEL,
) -> Path:
    """Write the gzipped FITS file of `plan` into `dest_dir`; returns its path.

    Same plan (and revision) -> same bytes. `revision` > 1 renames to N00<rev>, sets
    REVISION, a later DATE/ASCDSVER and slightly different content (new noise draw).
    """
    rev = int(plan.revision if revision is None else revision)
    rng = _file_rng(plan, rev)
    size = plan.imgsize

    arr = _table(plan, get_mission(plan.mission_seed), rng)
    data = arr.tobytes()
    data += b"\0" * ((-len(data)) % 2880)
    datasum = ones_sum(data)

    created = plan.tstop + 3.3 * 86400.0 + rng.uniform(0.0, 0.6 * 86400.0)
    created += 365.0 * 86400.0 * (rev - 1)
    date_obs, date_end = _isot([round(plan.tstart), round(plan.tstop)], "tt")
    date, date_cs = _isot([created, created + 16.0 + rng.uniform(0.0, 20.0)], "utc")
    asc_t, tlm_t, t2010 = _version_times()
    ascdsver = _lookup(_ASCDSVER, asc_t, created)
    tlmver = _lookup(_TLMVER, tlm_t, plan.tstart)
    tierabso = "0.0001" if plan.tstart < t2010 else "5.0E-05"
    job = int(created) - int(rng.integers(3600, 40000))
    counter = int(rng.integers(600, 1000))

    time_cards = [
        _ks("DATE", date, "Date and time of file creation (UTC)"),
        _ks("DATE-OBS", date_obs, "TT, with clock correction if clockapp"),
        _ks("DATE-END", date_end, "TT, with clock correction if clockapp"),
        _ks("TIMESYS", "TT", "Time system"),
    ]
    tstart_s, tstop_s = _fmt_e(plan.tstart), _fmt_e(plan.tstop)
    cs_comment = f"HDU checksum updated {date_cs}"
    # The flight files say ORIGIN 'ASC', CREATOR 'aise': these say mica.sim (SIMULATD = T).
    sim_origin, sim_creator = sim_cards("mica.sim.aca_l0")
    ds_comment = f"data unit checksum updated {date_cs}"

    cards = [
        _ks("XTENSION", "BINTABLE", "binary table extension"),
        _kv("BITPIX", "8", "8-bit bytes"),
        _kv("NAXIS", "2", "2-dimensional binary table"),
        _kv("NAXIS1", str(arr.dtype.itemsize), "width of table in bytes"),
        _kv("NAXIS2", str(len(arr)), "number of rows in table"),
        _kv("PCOUNT", "0", "size of special data area"),
        _kv("GCOUNT", "1", "one data group (required keyword)"),
        _kv("TFIELDS", str(len(arr.dtype.names)), "number of fields in each row"),
        _ks("EXTNAME", "ACA_IMG0", "ACA Image Number 0"),
        *_BANNER,
        *_block("Configuration control"),
        sim_origin,
        *sim_creator,
        _ks("ASCDSVER", ascdsver, "ASC-DS processing system revision (release)"),
        _ks("TLMVER", tlmver, "Telemetry revision number (IP&CL)"),
        _kv("REVISION", str(rev), "Processing system revision number"),
        _ks("CHECKSUM", CHECKSUM_PLACEHOLDER, cs_comment),
        _ks("DATASUM", str(datasum), ds_comment),
        _ks("CONTENT", "ACAIMG", "What data product"),
        _ks("HDUNAME", "ACADATA", "If no EXTNAME"),
        _ks("HDUSPEC", "ACA Level 0 Data Products ICD Version 1.0", "ICD reference"),
        _ks("HDUDOC", "ASC-FITS-2.0: McDowell, Rots: ASC FITS File Designers Guide", ""),
        _ks("HDUVERS", "1.0.0", ""),
        _ks("HDUCLASS", "ASC", ""),
        _ks("HDUCLAS1", "TEMPORALDATA", ""),
        _ks("HDUCLAS2", "ACADATA", ""),
        _ks("LONGSTRN", "OGIP 1.0", "The OGIP long string convention man be used."),
        *_LONGSTRN_COMMENT,
        *_block("Time information"),
        *time_cards,
        _kv("MJDREF", "50814.", "Modified Julian Day reference time"),
        _kv("TIMEZERO", "0.", "Clock correction (if not zero)"),
        _ks("TIMEUNIT", "s", "Unit for time measures"),
        _kv("BTIMNULL", _fmt_g(plan.btimnull), "Basic Time offset (s)"),
        _kv("BTIMRATE", _fmt_g(plan.btimrate), "Basic Time clock rate (s/VCDUcount)"),
        _kv("BTIMDRFT", _fmt_g(plan.btimdrft), "Basic Time clock drift (s/VCDUcount^2)"),
        _kv("BTIMCORR", "0.", "Correction applied to basic time rate (s)"),
        _ks("TIMEREF", "LOCAL", "No pathlength corrections"),
        _ks("TASSIGN", "SATELLITE", "Spacecraft clock"),
        _kv("CLOCKAPP", "T", "Clock correction applied"),
        _kv("TIERRELA", "1.0E-09", "Short-term clock stability"),
        _kv("TIERABSO", tierabso, "Absolute precision of clock correction"),
        _ks("TIMVERSN", "ASC-FITS-2.0", "AXAF FITS design document"),
        _kv("TSTART", tstart_s, "Data file start time"),
        _kv("TSTOP", tstop_s, "Data file stop time"),
        _kv("STARTMJF", str(plan.startmjf), "Major frame ctr value at start of data"),
        _kv("STARTMNF", str(plan.startmnf), "Start minor frame ctr at start of data"),
        _kv("STARTOBT", "0.", "On-Board MET close to STARTMJF and STARTMNF"),
        _kv("STOPMJF", str(plan.stopmjf), "Major frame ctr value at stop of data"),
        _kv("STOPMNF", str(plan.stopmnf), "Stop minor frame ctr at end of data"),
        _kv("TIMEPIXR", "0.", "Time stamp reference as bin fraction"),
        _kv("TIMEDEL", TIMEDEL[size], "Time resolution of data (in seconds)"),
        *_block("Observation information"),
        _ks("MISSION", "AXAF", "Advanced X-Ray Astrophysics Facility"),
        _ks("TELESCOP", "CHANDRA", "Telescope used"),
        _ks("INSTRUME", "PCAD", "Instrument"),
        _kv("TLM_FMT", "2", "Format in which this data was telemetered"),
        *_block("Column format information"),
        *_column_cards(size),
        *_block("History information"),
        *_history(plan, job, counter),
    ]
    table_header = finish_header(cards, datasum)

    primary = [
        _kv("SIMPLE", "T", "file does conform to FITS standard"),
        _kv("BITPIX", "8", "number of bits per data pixel"),
        _kv("NAXIS", "0", "number of data axes"),
        _kv("EXTEND", "T", "FITS dataset may contain extensions"),
        *_FITS_COMMENT,
        *_BANNER,
        *_block("Observation information"),
        _ks("MISSION", "AXAF", "Advanced X-Ray Astrophysics Facility"),
        _ks("TELESCOP", "CHANDRA", "Telescope used"),
        _ks("INSTRUME", "PCAD", "Instrument"),
        *_block("Time information"),
        *_block("Time information"),
        time_cards[0],
        time_cards[1],
        time_cards[2],
        time_cards[3],
        _kv("CLOCKAPP", "T", "Clock correction applied"),
        _kv("TIMEZERO", "0.", "Clock correction (if not zero)"),
        _ks("TIMEUNIT", "s", "Unit for time measures"),
        _kv("MJDREF", "50814.", "Modified Julian Day reference time"),
        _kv("TSTART", tstart_s, "Data file start time"),
        _kv("TSTOP", tstop_s, "Data file stop time"),
        *_block("Configuration control"),
        *_block("Configuration control"),
        sim_origin,
        *sim_creator,
        _ks("CHECKSUM", CHECKSUM_PLACEHOLDER, cs_comment),
        # The real files leave this blank; '0' (no data) keeps astropy's verification happy.
        _ks("DATASUM", "0", ds_comment),
    ]
    primary_header = finish_header(primary, 0)

    name = l0_filename(plan.filetime, rev, plan.slot)
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / name
    blob = gzip.compress(primary_header + table_header + data, compresslevel=compresslevel, mtime=0)
    return write_bytes_atomic(path, blob, durable=False)
