"""Simulated PCAD engineering telemetry, maneuvers, star catalogs and AGASC stars.

The `mica.stats.inputs.Provider` of a simulated archive, consistent with what the simulated
Chandra already writes:

* observations, obsids and slots are the mission's (`mica.sim.mission`), as in the L0 files:
  guide slots are BOT catalog rows (same mag, yag, zag and AGASC id as `asp_l1.star_catalog`),
  the other slots carry ACQ-only stars (fid slots also a FID row, the monitor a MON row);
* the attitude ``AOATTQT1..4`` is the aspect L1 attitude (`asp_l1.aca_attitude`) except before
  the guide transition, where the OBC estimate is off by a small inertial rotation that the
  one-shot update removes two samples after the first ``GUID`` sample;
* ``AACCCDPT`` is the mission CCD temperature (header-3 ``ccd_temp``), and the acquisition
  outcome uses the dark model's N100 warm-pixel fraction at that date and temperature;
* acquisition success is drawn from `mica.sim.acq_model` (fitted to flight); failures take
  the three real forms: NOID with nothing tracked, a spoiler tracked, the star outside its box.

Telemetry is a pure function of time: PCAD MSIDs on the 1.025 s grid ``n * 1.025``, AACCCDPT
every 32.8 s; any [start, stop] gives the same samples. About 1 % of observations have no
star catalog, and 1 % a telemetry gap (bad ``AOACASEQ``) across the guide transition.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mica import quaternion as _quat
from mica.sim.acq_model import p_fail
from mica.sim.asp_l1 import aca_attitude, star_catalog
from mica.sim.mission import (
    ROLE_FID,
    ROLE_GUIDE,
    ROLE_MONITOR,
    default_mission,
    get_mission,
    hash_uniform,
)
from mica.stats.inputs import AGASC_DTYPE, CATALOG_DTYPE, InputError, Maneuver, Series, pm_correct
from mica.time import conversion_scope, frac_year, to_date

__all__ = ["SimProvider", "PCAD_DT", "CCD_DT", "GUIDE_OFFSET", "seeded_problem"]

PCAD_DT = 1.025  # the OBC's ACA telemetry cadence (s)
CCD_DT = 32.8  # AACCCDPT cadence (s)
GUIDE_OFFSET = 61 * PCAD_DT  # first GUID sample after the first AQXN (~V0+244 of the L0 fids)
KALMAN_OFFSET = 20 * PCAD_DT
SLOT_MSIDS = ("AOACQID", "AOACFCT", "AOIMAGE", "AOACMAG", "AOACYAN", "AOACZAN")
FLAG_MSIDS = ("AOACICC", "AOACIDP", "AOACIIR", "AOACIMS", "AOACIQB", "AOACISP")
NO_STAR_MAG = 13.94
_R2A = 180 / np.pi * 3600


def seeded_problem(obsid: int) -> str | None:
    """The seeded input problem of an obsid: 'no catalog', 'telemetry gap' or None."""
    u = float(hash_uniform(np.array([obsid]), 0xAC9)[0])
    return "no catalog" if u < 0.01 else "telemetry gap" if u < 0.02 else None


@dataclass(frozen=True)
class _Star:
    slot: int
    type: str
    idx: int
    yang: float
    zang: float
    halfw: int
    mag: float
    agasc_id: int
    color: float
    eci: np.ndarray
    outcome: str  # 'id' | 'noid' | 'spoiler' | 'outside'
    trak_at: float  # time the OBC starts tracking (inf: never)
    offset: tuple[float, float]  # tracked object minus star (arcsec): spoilers
    pos: int  # position in the ACQ/BOT catalog (idx order): the AOACQID index
    flag_err: tuple[bool, ...]  # FLAG_MSIDS at the transition


@dataclass(frozen=True)
class _Acq:
    obsid: int
    index: int
    manvr: Maneuver
    stars: tuple[_Star, ...]
    others: tuple[tuple[int, str, int, float, float], ...]  # FID/MON rows: slot, type, idx..
    q_error: np.ndarray  # inertial OBC attitude error before the one-shot
    ccd_temp: float
    warm_frac: float


class SimProvider:
    """The simulated inputs (`mica.stats.inputs.Provider`) of an archive."""

    kind = "simulated"

    def __init__(self, archive: str | Path | None = None) -> None:
        self.archive = archive
        self.mission = default_mission()

    # -- observations ------------------------------------------------------------------
    def obsids(self, start: float, stop: float) -> list[tuple[int, float]]:
        m = self.mission
        i0 = int(np.searchsorted(m.obs_tstop, start, side="left"))
        i1 = int(np.searchsorted(m.obs_tstart, stop, side="right"))
        return [(int(m.obs_obsid[i]), float(m.obs_tstart[i])) for i in range(i0, i1)]

    def _index(self, obsid: int) -> int:
        try:
            return self.mission.index_of(obsid)
        except KeyError as err:
            raise InputError(f"obsid {obsid}: no maneuver to it ({err.args[0]})") from None

    def maneuver(self, obsid: int) -> Maneuver:
        return _acq(self.mission.seed, self._index(obsid)).manvr

    def catalog(self, obsid: int, date: float) -> np.ndarray:
        i = self._index(obsid)
        m = self.mission
        if not (m.obs_tstop[i - 1] - 600 <= date <= m.obs_tstop[i]):
            raise InputError(f"obsid {obsid}: no star catalog in effect at {to_date(date)}")
        if seeded_problem(obsid) == "no catalog":
            raise InputError(f"obsid {obsid}: no starcheck catalog for its load (simulated gap)")
        a = _acq(m.seed, i)
        starcat = to_date(a.manvr.start - 10.0)
        rows = [
            (s.slot, s.idx, s.type, s.yang, s.zang, s.halfw, s.mag, s.agasc_id, "6x6", starcat)
            for s in a.stars
        ]
        rows += [(sl, idx, ty, y, z, 25, 7.0, 0, "8x8", starcat) for sl, ty, idx, y, z in a.others]
        out = np.array(rows, dtype=CATALOG_DTYPE)
        return out[np.argsort(out["idx"], kind="stable")]

    def agasc(self, ids: list[int], date: float) -> np.ndarray:
        out = np.zeros(len(ids), AGASC_DTYPE)
        with conversion_scope():
            year = float(frac_year(date))
        for k, agasc_id in enumerate(ids):
            out[k] = _agasc_row(int(agasc_id), year)
        return out

    # -- telemetry ---------------------------------------------------------------------
    def telemetry(self, msids: list[str], start: float, stop: float) -> dict[str, Series]:
        m = self.mission
        t = np.arange(np.ceil(start / PCAD_DT), np.floor(stop / PCAD_DT) + 1) * PCAD_DT
        tc = np.arange(np.ceil(start / CCD_DT), np.floor(stop / CCD_DT) + 1) * CCD_DT
        # each sample belongs to the observation whose maneuver it follows
        owner = np.searchsorted(m.obs_tstop, t, side="left")
        cols: dict[str, np.ndarray] = {}
        for i in np.unique(owner):
            sel = owner == i
            part = _series(m, int(i), t[sel])
            for name, vals in part.items():
                if name not in cols:
                    cols[name] = np.empty(len(t), dtype=vals.dtype)
                cols[name][sel] = vals
        bad = np.zeros(len(t), bool)
        for i in np.unique(owner):
            if seeded_problem(int(m.obs_obsid[i])) == "telemetry gap":
                g = _acq(m.seed, int(i)).manvr.guide_start
                bad |= (t > g - 8.0) & (t < g + 8.0)
        out = {}
        for name in msids:
            if name == "AACCCDPT":
                out[name] = Series(tc, m.ccd_temp_degc(tc), np.zeros(len(tc), bool))
            elif name in cols:
                b = bad if name == "AOACASEQ" else np.zeros(len(t), bool)
                out[name] = Series(t, cols[name], b.copy())
            else:
                raise InputError(f"MSID {name} is not in the simulated engineering archive")
        return out


def scalar_msids() -> list[str]:
    """The scalar PCAD MSIDs the simulator writes."""
    return ["AOACASEQ", "AOPCADMD", "AOFSTAR", "AOATTQT1", "AOATTQT2", "AOATTQT3", "AOATTQT4"]


def slot_msids() -> list[str]:
    """The per-slot MSIDs (suffix 0..7) the simulator writes."""
    return [f"{n}{s}" for n in SLOT_MSIDS + FLAG_MSIDS for s in range(8)]


@functools.lru_cache(maxsize=4096)
def _agasc_row(agasc_id: int, year: float) -> tuple:
    star = _STARS.get(agasc_id)
    if star is None:
        raise InputError(f"AGASC id {agasc_id} is not in the simulated AGASC")
    eci, mag, color = star
    ra_c, dec_c = _quat.eci_to_radec(eci)
    h = [float(hash_uniform(np.array([agasc_id]), 0xA6A5 + k)[0]) for k in range(4)]
    pm_ra = -9999 if h[0] < 0.1 else int(round((h[1] - 0.5) * 120))
    pm_dec = -9999 if h[0] < 0.1 else int(round((h[2] - 0.5) * 120))
    # the catalog (epoch 2000) position is the one that moves to eci at the observation
    dra, ddec = pm_correct(0.0, float(dec_c), pm_ra, pm_dec, 2000.0, year)
    ra = (float(ra_c) - float(dra)) % 360.0
    dec = float(dec_c) - (float(ddec) - float(dec_c))
    ra_p, dec_p = pm_correct(ra, dec, pm_ra, pm_dec, 2000.0, year)
    return (
        agasc_id, color, ra, dec, 2000.0, pm_ra, pm_dec, 0, 100, mag, 3, 8, 1,
        0, 0, 0, 99, 99, 99, float(ra_p), float(dec_p),
    )  # fmt: skip


#: AGASC id -> (eci, mag, color) of every star placed in a simulated catalog so far
_STARS: dict[int, tuple[np.ndarray, float, float]] = {}


@functools.lru_cache(maxsize=512)
def _acq(seed: int, i: int) -> _Acq:
    """Everything drawn for observation ``i``'s acquisition (pure function of seed and i)."""
    from mica.archive.aca_dark.dark_model import get_warm_fracs

    m = get_mission(seed)
    obs = m._make_observation(i)
    obsid = obs.obsid
    # on the telemetry grid n * PCAD_DT exactly (same float products as `telemetry`)
    n0 = float(np.ceil(obs.tstart / PCAD_DT))
    acq_start = n0 * PCAD_DT
    guide = (n0 + round(GUIDE_OFFSET / PCAD_DT)) * PCAD_DT
    kalman = (n0 + round((GUIDE_OFFSET + KALMAN_OFFSET) / PCAD_DT)) * PCAD_DT
    start = float(m.obs_tstop[i - 1]) if i > 0 else obs.tstart - 900.0
    manvr = Maneuver(obsid, start, acq_start, guide, kalman, kalman, float(obs.tstop))
    tgrid = np.arange(guide - 250.0, guide + 250.0, CCD_DT)
    ccd_temp = float(np.mean(m.ccd_temp_degc(tgrid)))
    with conversion_scope():
        warm = float(get_warm_fracs(100, guide, ccd_temp))

    def u(salt: int, n: int = 8) -> np.ndarray:
        return hash_uniform(obsid * 64 + np.arange(n) + 8 * (i % 4096), salt)

    t_nom = _quat.to_transform(_quat.from_equatorial(obs.ra, obs.dec, obs.roll))
    guides = {c["slot"]: c for c in star_catalog(obs) if c["role"] == "guide"}
    u_mag, u_pos, u_box, u_col, u_out, u_kind = (u(0x100 + k) for k in range(6))
    u_trk, u_off, u_ang, u_flag, u_faint = (u(0x200 + k) for k in range(5))
    roles = m.slot_role[i]
    # ACQ-only stars: magnitudes from another observation's guide stars (same distribution)
    donor = (i + 1 + (u_mag * (len(m.obs_obsid) - 2)).astype(int)) % len(m.obs_obsid)
    others, specs = [], []
    idx = 1
    for s in range(8):
        if roles[s] == ROLE_FID:
            others.append((s, "FID", idx, obs.slots[s].yag, obs.slots[s].zag))
            idx += 1
    for s in range(8):
        if roles[s] == ROLE_GUIDE:
            c = guides[s]
            specs.append((s, "BOT", c["mag"], c["yag"], c["zag"], c["agasc_id"], c["eci"]))
    for s in range(8):
        if roles[s] != ROLE_GUIDE:
            mags = m.slot_mag[donor[s]][m.slot_role[donor[s]] == ROLE_GUIDE]
            mag = float(mags[0]) if len(mags) else 9.5
            if u_faint[s] < 0.12:  # acquisition-only stars reach fainter than guide stars
                mag = 10.3 + 0.7 * float(hash_uniform(np.array([obsid * 8 + s]), 0xFA1)[0]) ** 1.6
            yag = float((u_pos[s] - 0.5) * 4400.0)
            zag = float((hash_uniform(np.array([obsid * 8 + s]), 0x3C7)[0] - 0.5) * 4400.0)
            agasc_id = 2_000_000_000 + obsid * 8 + s + 1_000_000 * (i // 65536)
            eci = t_nom @ _quat.yagzag_to_dir(yag, zag)
            specs.append((s, "ACQ", mag, yag, zag, agasc_id, eci))
    for s in range(8):
        if roles[s] == ROLE_MONITOR:
            others.append((s, "MON", 0, obs.slots[s].yag, obs.slots[s].zag))
    stars = []
    # BOT and ACQ rows get idx in slot order after the fids (starcheck lists FIDs first)
    specs.sort(key=lambda r: r[0])
    for pos, (s, typ, mag, yag, zag, agasc_id, eci) in enumerate(specs):
        halfw = int(np.clip(120 + 5 * np.round((u_box[s] - 0.5) * 16), 60, 160))
        color = 1.5 if u_col[s] < 0.03 else round(0.2 + 1.2 * u_col[s], 3)
        pf = float(p_fail(mag, warm, halfw, color))
        fail = u_out[s] < pf
        kind = "id"
        if fail:
            kind = "noid" if u_kind[s] < 0.55 else "spoiler" if u_kind[s] < 0.85 else "outside"
        trak_at = acq_start + 4.0 + u_trk[s] * 40.0 if kind in ("id", "spoiler") else np.inf
        off = (0.0, 0.0)
        if kind == "spoiler":
            r, ang = 10.0 + 50.0 * u_off[s], 2 * np.pi * u_ang[s]
            off = (float(r * np.cos(ang)), float(r * np.sin(ang)))
        flags = tuple(bool(x) for x in (u_flag[s] < np.array([0.01, 0.01, 0.03, 0.02, 0.0, 0.0])))
        flags = flags[:5] + (mag < 6.5,)
        _STARS[int(agasc_id)] = (np.asarray(eci), float(mag), float(color))
        stars.append(
            _Star(
                s,
                typ,
                idx,
                yag,
                zag,
                halfw,
                mag,
                int(agasc_id),
                color,
                np.asarray(eci),
                kind,
                float(trak_at),
                off,
                pos,
                flags,
            )  # fmt: skip
        )
        idx += 1
    others = [(sl, ty, (ix if ty == "FID" else idx), y, z) for sl, ty, ix, y, z in others]
    # the OBC attitude before the one-shot: off by ~10 arcsec per axis, ~30 arcsec in roll
    e = [float(hash_uniform(np.array([obsid * 3 + k]), 0x0B5)[0]) for k in range(3)]
    rx, ry, rz = (e[0] - 0.5) * 60.0, (e[1] - 0.5) * 24.0, (e[2] - 0.5) * 24.0
    q_err = _quat.from_transform(
        _quat.rotation(0, rx / 3600) @ _quat.rotation(1, ry / 3600) @ _quat.rotation(2, rz / 3600)
    )
    return _Acq(obsid, i, manvr, tuple(stars), tuple(others), q_err, ccd_temp, warm)


def _series(m, i: int, t: np.ndarray) -> dict[str, np.ndarray]:
    """All simulated PCAD MSIDs at times ``t`` (all after observation ``i``'s maneuver start)."""
    a = _acq(m.seed, i)
    mv = a.manvr
    obs = m._make_observation(i)
    n = len(t)
    h = 0.5 * PCAD_DT  # grid times and event times may differ in the last bits
    seq = np.where(t < mv.acq_start - h, "KALM", np.where(t < mv.guide_start - h, "AQXN", "GUID"))
    seq = np.where(t >= mv.kalman_start - h, "KALM", seq)
    out: dict[str, np.ndarray] = {"AOACASEQ": seq.astype("U4")}
    out["AOPCADMD"] = np.where((t >= mv.acq_start) & (t < mv.dwell_stop), "NPNT", "NMAN")
    out["AOFSTAR"] = np.where(t >= mv.guide_start, "GUID", "NONE")
    q_true = aca_attitude(obs, t)
    # before the one-shot the OBC estimate is off; the first GUID sample is held one sample
    held = (t >= mv.guide_start - h) & (t < mv.guide_start + 1.5 * PCAD_DT)
    q_hold = aca_attitude(obs, np.array([mv.guide_start]))[0]
    pre = t < mv.guide_start + 1.5 * PCAD_DT
    q = q_true.copy()
    q[held] = q_hold
    q[pre] = _quat.multiply(a.q_error, q[pre])
    for k in range(4):
        out[f"AOATTQT{k + 1}"] = q[:, k]
    t_true = _quat.to_transform(q_true)
    for s in range(8):
        fct = np.full(n, "NONE", dtype="U4")
        mag = np.full(n, NO_STAR_MAG)
        yan = np.zeros(n)
        zan = np.zeros(n)
        qid = np.full(n, "NOID", dtype="U4")
        flags = [np.full(n, "OK ", dtype="U3") for _ in FLAG_MSIDS]
        out.update({f"AOACFCT{s}": fct, f"AOACMAG{s}": mag, f"AOACYAN{s}": yan})
        out.update({f"AOACZAN{s}": zan, f"AOIMAGE{s}": np.zeros(n, np.int64)})
        for name, f in zip(FLAG_MSIDS, flags):
            out[f"{name}{s}"] = f
        out[f"AOACQID{s}"] = qid
    noise = _noise(t, i)
    for star in a.stars:
        s = star.slot
        acq = (t >= mv.acq_start - h) & (t < mv.guide_start - h)
        fct = out[f"AOACFCT{s}"]
        fct[acq] = "SRCH"
        trak = (t >= star.trak_at) & (t < mv.dwell_stop)
        if star.type == "ACQ":  # an ACQ-only slot hands over to its fid/monitor after GUID
            trak &= t < mv.guide_start + h
        fct[trak] = "TRAK"
        if star.outcome == "outside":  # the OBC searched the box and gave up at the end
            fct[acq & (t > mv.acq_start + 30.0)] = "RACQ"
        d = np.einsum("kji,j->ki", t_true, star.eci)
        yag, zag = np.arctan2(d[:, 1], d[:, 0]) * _R2A, np.arctan2(d[:, 2], d[:, 0]) * _R2A
        yag, zag = yag + star.offset[0], zag + star.offset[1]
        sig = 0.3 if star.mag < 9.5 else 0.6
        out[f"AOACYAN{s}"] = np.where(trak, yag + sig * noise[s, 0], star.yang)
        out[f"AOACZAN{s}"] = np.where(trak, zag + sig * noise[s, 1], star.zang)
        mag_obs = star.mag + 0.05 * noise[s, 2] + (1.2 if star.outcome == "spoiler" else 0.0)
        out[f"AOACMAG{s}"] = np.where(trak, mag_obs, NO_STAR_MAG)
        out[f"AOIMAGE{s}"] = np.where(trak, 1, 0)
        # ID flags are indexed by acquisition catalog position (the original's understanding)
        out[f"AOACQID{star.pos}"] = np.where(
            (t >= mv.guide_start - h) & (star.outcome == "id"), "ID  ", "NOID"
        )
        at_guide = t >= mv.guide_start - h
        for k, name in enumerate(FLAG_MSIDS):
            if star.flag_err[k]:
                out[f"{name}{s}"][at_guide & trak] = "ERR"
    return out


def _noise(t: np.ndarray, i: int) -> np.ndarray:
    """Deterministic N(0, 1) per (slot, axis) keyed by time: (8, 3, n)."""
    from mica.sim.mission import _time_normal

    return np.stack(
        [np.stack([_time_normal(t, 0x5EED + 24 * (i % 997) + 3 * s + k) for k in range(3)])
         for s in range(8)]
    )  # fmt: skip
