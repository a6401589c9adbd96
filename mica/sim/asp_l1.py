"""Simulated aspect level-1 products for every science observation of the mission schedule.

Per obsid and processing revision, one product set per aspect interval (Kalman lock between
ground stream breaks): ASPSOL, ASPQUAL, ACACAL, ACACENT, GSPROPS, FIDPROPS, GYROCAL,
ACA_BADPIX, the per-slot ACADATA images (which ingest drops), a pipeline log, and for
processing with DS >= 10.8.3 the per-OBI ASPSOLOBI and the ``*_raw`` asol columns.

Physical model (all deterministic):

* ACA-frame attitude ``q_aca(t) = q_nom * q_dither(t)``, ``q_nom`` from the observation's
  (ra, dec, roll), dither a yaw/pitch Lissajous of the observation's amplitudes, periods
  and phases (`dither_offsets`); a star at catalogue (yag, zag) therefore appears at
  ``(yag - dither_y(t), zag - dither_z(t))`` (small-angle).
* Aspect frame ``q_att = q_aca * Quat(transform=ACA_MISALIGN)``, SIM drift
  ``dy, dz`` (mm) and ``dtheta`` slow sinusoids; fid lights placed so that the V&V fid
  model puts them at the mission's fid (yag, zag).
* Centroids = the model + noise growing with magnitude (~0.1" bright, ~0.3" faint;
  fids 0.04"); smoothed centroids carry a fifth of it; a few samples have status 1. These
  are the ACACENT alg 8 rows (what V&V uses). As in the real products, every alg 8 row has
  an alg 1 row of the same time and slot: the background-subtracted (BGDAVG) first-moment
  centroid of the very L0 image of that time (`mica.sim.aca_l0.track_images`), status 1
  where the image has no usable signal (fid off). ``cent_i``/``cent_j`` are CCD row/col in
  the pixel-centre convention (L0 pixel [i, j] at IMGROW0 + i, IMGCOL0 + j).

Revisions: N001 about 2 days after the observation, released ~10 days later; reprocessing
campaigns add revisions; a few obsids keep a provisional last revision that is never
released (default != last). Obsid 6000 has revisions 2 and 3, obsid 2121 revisions 1-3
with 3 provisional. Nothing exists for processing later than "now" (``CXOTIME_NOW``).

Seeded faults (`seeded_problem`, `FAULT_KINDS`: per-obsid rates summing to 1 % of science
obsids, every revision of the obsid carries it; ``MICA_SIM_FAULT_SCALE`` multiplies the rates
for V&V scoring runs), each described by `ground_truth` and written by `write_ground_truth`:

* 'bad_star' (0.2 %): the faintest guide star's centroids 0.9"/-0.4" off with 0.6" noise;
* 'fid_jump' (0.2 %): the first fid jumps 0.6" in Y mid-interval;
* 'momentum_dump' (0.2 %): the solution loses ~1.5" during a ~210 s stretch flagged in
  ASPQUAL (the centroids follow the true attitude);
* 'missing_slot' (0.15 %): the brightest guide star has no ACACENT rows in the last interval;
* 'wrong_catalog' (0.15 %): GSPROPS positions from a wrong star catalog: every guide and
  monitor star's pos_eci 2-3" off in a random direction;
* 'omitted_slot' (0.1 %): a tracked guide star missing from GSPROPS.

Cadence: ``MICA_SIM_L1_DECIMATE`` (int, default 1) keeps every k-th asol sample and image,
for tests and benchmarks that need many obsids quickly (TIMEDEL says so); a `SimSource`
made with ``l1_decimate`` sets it for its own files.
"""

from __future__ import annotations

import functools
import gzip
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from scipy.special import erf

from mica import config
from mica import quaternion as _quat
from mica.engine.provenance import SIM_COMMENT, SIM_KEYWORD
from mica.sim.fits_writer import sim_cards
from mica.sim.l1_fits import Col, card, write_l1_file
from mica.sim.mission import Observation, default_mission, pixel_to_yagzag, yagzag_to_pixel
from mica.sim.obspar import (
    now as sim_now,
)
from mica.sim.obspar import (
    obis,
    observation,
    obspar_revisions,
    release_at,
    unit_hash,
)
from mica.time import conversion_scope, to_date, to_secs, to_time

ASOL_STEP = 0.25625  # s, one minor frame
INTEG = 1.696  # s
ACQ_TIME = 240.0  # s from observation start to Kalman lock
IMAGE_LAG = 2.0  # s from an interval's solution start to its first ACADATA image
MIN_INTERVAL = 30.0  # s: shorter Kalman stretches produce no aspect interval
RRC0FCX = 10065.5  # mm
ARCSEC_PER_MM = 20.0
DS_RAW_COLUMNS = (10, 8, 3)  # DS version from which asol carries *_raw columns

#: fixed ACA misalignment (small rotations, arcsec about x, y, z) and FTS misalignment
ACA_MISALIGN = (
    _quat.rotation(0, 30 / 3600) @ _quat.rotation(1, -12 / 3600) @ _quat.rotation(2, 8 / 3600)
)
FTS_MISALIGN = _quat.rotation(0, -50 / 3600) @ _quat.rotation(1, 4 / 3600)
LSI0STT = (-0.7815, 0.0, 0.0)
STT0STF = (0.0, 0.0, 0.0)

#: seeded fault kinds and their rates (fraction of science obsids)
FAULT_KINDS = {
    "bad_star": 0.002,
    "fid_jump": 0.002,
    "momentum_dump": 0.002,
    "missing_slot": 0.0015,
    "wrong_catalog": 0.0015,
    "omitted_slot": 0.001,
}
PROBLEM_KINDS = tuple(FAULT_KINDS)
PROBLEM_RATE = sum(FAULT_KINDS.values())
# (campaign start, fraction of earlier obsids reprocessed)
REPRO_CAMPAIGNS = [("2006:060", 0.45), ("2012:120", 0.35), ("2020:300", 0.3)]
_REPRO_T = [(to_secs(d), f) for d, f in REPRO_CAMPAIGNS]
PROVISIONAL_RATE = 0.03


def decimation() -> int:
    """Keep every k-th sample (``MICA_SIM_L1_DECIMATE``, default 1 = real cadence)."""
    return config.sim_l1_decimate()


# --- revisions --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Processing:
    """One processing revision of an obsid."""

    revision: int
    processed: float
    released: float | None  # None: provisional, never released
    ascdsver: str
    caldbver: str


def revision_history(obsid: int) -> list[Processing]:
    """Every aspect L1 processing of a science obsid, whatever "now" is."""
    obs = observation(obsid)
    if obs is None or obs.kind != "science":
        return []
    t_first = obs.tstop + 2 * 86400.0
    times = [t_first]
    first_rev = 2 if obsid == 6000 else 1  # 6000: first processing came out as N002
    for i, (t_camp, frac) in enumerate(_REPRO_T):
        forced = obsid == 6000 and i == 1 or obsid == 2121 and i in (0, 1)
        if t_camp > t_first + 60 * 86400.0 and (forced or unit_hash(obsid, f"repro{i}") < frac):
            times.append(t_camp + 200 * 86400.0 * unit_hash(obsid, f"repro-t{i}"))
    if obsid == 2121:
        times = times[:3]
    provisional = obsid == 2121 or (
        len(times) > 1 and obsid != 6000 and unit_hash(obsid, "provisional") < PROVISIONAL_RATE
    )
    out = []
    for k, t in enumerate(times):
        last = k == len(times) - 1
        released = None if (last and provisional) else t + 10 * 86400.0
        out.append(Processing(first_rev + k, t, released, *release_at(t)))
    return out


def available(obsid: int) -> list[Processing]:
    """Processings that exist at "now"."""
    t_now = sim_now()
    return [p for p in revision_history(obsid) if p.processed <= t_now]


def sim_revisions(obsid: int) -> tuple[int | None, int | None]:
    """(default, last) revision at "now": default = newest released, last = newest."""
    revs = available(obsid)
    if not revs:
        return None, None
    t_now = sim_now()
    released = [p.revision for p in revs if p.released is not None and p.released <= t_now]
    return (released[-1] if released else None), revs[-1].revision


def sim_obsids(start: float, stop: float) -> list[int]:
    """Science obsids overlapping [start, stop] with aspect L1 data at "now"."""
    obs = default_mission().observations(start, stop)
    return [o.obsid for o in obs if o.kind == "science" and available(o.obsid)]


def fault_scale() -> float:
    """Multiplier of the fault rates (``MICA_SIM_FAULT_SCALE``, default 1; capped so that
    every obsid is faulty at most)."""
    return min(max(config.sim_fault_scale(), 0.0), 1.0 / PROBLEM_RATE)


def seeded_problem(obsid: int) -> str | None:
    """The fault kind seeded into an obsid's aspect L1 data (`FAULT_KINDS`), or None."""
    obs = observation(obsid)
    if obs is None or obs.kind != "science":
        return None
    if unit_hash(obsid, "problem") >= PROBLEM_RATE * fault_scale():
        return None
    # the kind is drawn independently, weighted by the rates
    u = unit_hash(obsid, "problem-kind") * PROBLEM_RATE
    for kind, rate in FAULT_KINDS.items():
        if u < rate:
            return kind
        u -= rate
    return PROBLEM_KINDS[-1]


def _guides(obs: Observation) -> list[dict]:
    """Guide stars, faintest last."""
    stars = [s for s in star_catalog(obs) if s["role"] == "guide"]
    return sorted(stars, key=lambda s: s["mag"])


def fault_slot(obs: Observation, kind: str | None) -> int | None:
    """The slot a fault affects (None: no fault, or a fault of no one slot)."""
    guides = _guides(obs)
    fids = sorted(f["slot"] for f in fid_positions(obs))
    if kind == "bad_star" and guides:
        return guides[-1]["slot"]
    if kind == "missing_slot" and guides:
        return guides[0]["slot"]
    if kind == "fid_jump" and fids:
        return fids[0]
    if kind == "omitted_slot" and guides:
        return min(s["slot"] for s in guides)
    return None


def ground_truth(obsid: int) -> dict:
    """What the simulator seeded into an obsid (every revision): ``{"obsid", "fault"
    (kind or None), "slot" (affected slot or None), "interval" (index or None)}``."""
    obs = observation(obsid)
    kind = seeded_problem(obsid)
    out = {"obsid": int(obsid), "fault": kind, "slot": None, "interval": None}
    if kind is None or obs is None:
        return out
    out["slot"] = fault_slot(obs, kind)
    if kind == "missing_slot":
        out["interval"] = len(aspect_intervals(obs)) - 1
    return out


def write_ground_truth(path: str | os.PathLike, obsids: list[int]) -> Path:
    """Write the ground truth of ``obsids`` as JSON (``{"<obsid>": ground_truth(obsid)}``,
    with the fault kinds and rates used) and return its path."""
    import json

    path = Path(path)
    data = {
        "fault_kinds": FAULT_KINDS,
        "fault_scale": fault_scale(),
        "obsids": {str(o): ground_truth(o) for o in obsids},
    }
    path.write_text(json.dumps(data, indent=1, sort_keys=True))
    return path


def problem_obsids(start: float, stop: float) -> dict[int, str]:
    """Seeded problems of the science obsids overlapping [start, stop]."""
    out = {}
    for obs in default_mission().observations(start, stop):
        kind = seeded_problem(obs.obsid)
        if kind:
            out[obs.obsid] = kind
    return out


# --- geometry ---------------------------------------------------------------------------------
def dither_offsets(obs: Observation, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apparent dither offset (arcsec) of a star image in ACA y and z at times ``t``.

    ``ampl * sin(2 pi t / period + phase)`` per axis with CXC time ``t`` and the
    observation's amplitudes, periods and phases: the convention of the L0 simulator
    (`mica.sim.aca_l0`), whose star images sit at (yag + dy, zag + dz). The obspar dither
    keys carry the same numbers (phase at CXC time 0).
    """
    t = np.asarray(t, dtype=np.float64)
    (ay, az), (py, pz), (fy, fz) = obs.dither_ampl, obs.dither_period, obs.dither_phase
    return (ay * np.sin(2 * np.pi * t / py + fy), az * np.sin(2 * np.pi * t / pz + fz))


def _axis_quat(axis: int, angle_rad: np.ndarray) -> np.ndarray:
    q = np.zeros(np.shape(angle_rad) + (4,))
    q[..., axis] = np.sin(np.asarray(angle_rad) / 2)
    q[..., 3] = np.cos(np.asarray(angle_rad) / 2)
    return q


def aca_attitude(
    obs: Observation,
    t: np.ndarray,
    extra_y: np.ndarray | float = 0.0,
    extra_z: np.ndarray | float = 0.0,
) -> np.ndarray:
    """ACA-frame attitude quaternions at ``t``: the nominal pointing, dithered.

    The boresight moves by minus the apparent dither, so a fixed star appears at
    (yag + dy, zag + dz) as in the L0 images; ``extra_*`` (arcsec) move the boresight more.
    """
    dy, dz = dither_offsets(obs, t)
    by, bz = -dy + extra_y, -dz + extra_z
    to_rad = np.pi / 180 / 3600
    q_yaw = _axis_quat(2, by * to_rad)  # about +Z: boresight toward +Y
    q_pitch = _axis_quat(1, -bz * to_rad)  # about -Y: boresight toward +Z
    q_nom = _quat.from_equatorial(obs.ra, obs.dec, obs.roll)
    return _quat.multiply(q_nom, _quat.multiply(q_yaw, q_pitch))


def star_catalog(obs: Observation) -> list[dict]:
    """Guide and monitor stars: their sky positions put them at the slot's (yag, zag)."""
    t_nom = _quat.to_transform(_quat.from_equatorial(obs.ra, obs.dec, obs.roll))
    out = []
    for s in obs.slots:
        if s.role not in ("guide", "monitor"):
            continue
        eci = t_nom @ _quat.yagzag_to_dir(s.yag, s.zag)
        ra, dec = _quat.eci_to_radec(eci)
        agasc = 1000 + int(unit_hash(obs.obsid * 8 + s.slot, "agasc") * 2e9)
        out.append(
            {
                "slot": s.slot,
                "role": s.role,
                "mag": s.mag,
                "yag": s.yag,
                "zag": s.zag,
                "ra": float(ra),
                "dec": float(dec),
                "eci": eci,
                "agasc_id": agasc,
                "imgsize": s.imgsize,
            }
        )
    return out


def fid_model(
    p_stf: np.ndarray, dy: np.ndarray, dz: np.ndarray, dtheta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fid (yag, zag) arcsec from its STF position (mm) and SIM offsets (mm; dtheta deg)."""
    th = np.radians(np.asarray(dtheta, dtype=np.float64))
    x, y, z = p_stf
    p_fc = np.stack(
        [
            np.full_like(th, x),
            y * np.cos(th) + z * np.sin(th) + dy,
            -y * np.sin(th) + z * np.cos(th) + dz,
        ],
        axis=-1,
    )
    d_fc = -(p_fc - np.array([RRC0FCX, 0.0, 0.0]))
    d_aca = d_fc @ (ACA_MISALIGN @ FTS_MISALIGN).T
    return _quat.dir_to_yagzag(d_aca)


def fid_positions(obs: Observation) -> list[dict]:
    """Fid lights: STF positions (mm) putting them at the slot's (yag, zag) at the
    observation's mean SIM offsets (the L0 simulator draws fids fixed there)."""
    dy0, dz0, dth0 = (
        float(np.mean(v)) for v in sim_drift(obs, np.linspace(obs.tstart, obs.tstop, 64))
    )
    out = []
    for s in obs.slots:
        if s.role != "fid":
            continue
        u = _quat.yagzag_to_dir(s.yag, s.zag)
        v = (ACA_MISALIGN @ FTS_MISALIGN).T @ u
        d_fc = v * (RRC0FCX / v[0])
        # invert p_fc = Rx(dth)^T p_stf + (0, dy, dz) with p_fc = (RRC, 0, 0) - d_fc
        p_fc = np.array([RRC0FCX, 0.0, 0.0]) - d_fc
        y, z = p_fc[1] - dy0, p_fc[2] - dz0
        th = np.radians(dth0)
        p_stf = np.array(
            [p_fc[0], y * np.cos(th) - z * np.sin(th), y * np.sin(th) + z * np.cos(th)]
        )
        p_lsi = p_stf - np.array(LSI0STT) - np.array(STT0STF)
        out.append(
            {
                "slot": s.slot,
                "mag": s.mag,
                "yag": s.yag,
                "zag": s.zag,
                "p_stf": p_stf,
                "p_lsi": p_lsi,
                "id_num": s.slot + 1,
            }
        )
    return out


def sim_drift(obs: Observation, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SIM translation (dy, dz mm) and rotation (dtheta deg): offsets of ~3" and ~7" that
    drift by a few tenths of an arcsec over an observation (V&V reference values)."""
    x = (np.asarray(t, dtype=np.float64) - obs.tstart) / 3600.0
    u = unit_hash(obs.obsid, "simdrift")
    dy = 0.155 + 0.01 * u + 0.005 * np.sin(2 * np.pi * x / 9.0 + 6 * u) + 0.0004 * x
    dz = 0.33 + 0.02 * u + 0.007 * np.cos(2 * np.pi * x / 13.0 + 3 * u) - 0.0003 * x
    dtheta = 0.0005 * np.sin(2 * np.pi * x / 20.0 + u)
    return dy, dz, dtheta


# --- aspect intervals -----------------------------------------------------------------------
@dataclass(frozen=True)
class AspectInterval:
    obi: int
    tstart: float
    tstop: float


def aspect_intervals(obs: Observation) -> list[AspectInterval]:
    """Kalman stretches of an observation, split at OBI boundaries and ground stream breaks."""
    mission = default_mission()
    t0 = obs.tstart + ACQ_TIME
    breaks = mission.vcdu_to_time(mission.stream_breaks)
    out = []
    for obi in obis(obs):
        lo, hi = max(obi.tstart, t0), obi.tstop
        cuts = breaks[(breaks > lo) & (breaks < hi)]
        edges = [lo, *cuts.tolist(), hi]
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            if b - a >= MIN_INTERVAL:
                out.append(AspectInterval(obi.obi, float(a), float(b)))
    return out


@functools.lru_cache(maxsize=64)
def _track_plans(obsid: int) -> tuple:
    """The simulated L0 tracking files of an observation (their rows are the images)."""
    from mica.sim.aca_l0 import plan_l0_files

    obs = observation(obsid)
    plans = plan_l0_files(obs.tstart, obs.tstop)
    return tuple(p for p in plans if p.obsid == obsid and p.kind == "track")


def slot_runs(
    obs: Observation, slot: int, t0: float, t1: float, decim: int = 1
) -> list[tuple[np.ndarray, int]]:
    """(image times, image size) of a slot's L0 tracking rows in [t0, t1), one run per
    image size: ACACENT rows and ACADATA files follow the L0 images (every decim-th)."""
    runs: list[tuple[np.ndarray, int]] = []
    for plan in _track_plans(obs.obsid):
        if plan.slot != slot:
            continue
        times = plan.row_times()
        times = times[(times >= t0) & (times < t1)]
        if not len(times):
            continue
        if runs and runs[-1][1] == plan.imgsize:
            runs[-1] = (np.concatenate([runs[-1][0], times]), plan.imgsize)
        else:
            runs.append((times, plan.imgsize))
    return [(t[::decim], size) for t, size in runs]


@functools.lru_cache(maxsize=64)
def _plan_first_moments(plan) -> tuple[np.ndarray, ...]:
    """First-moment centroids of every row of one simulated L0 tracking file (see
    `first_moment_centroids`): (TIME, row, col, net DN, usable)."""
    from mica.sim.aca_l0 import track_images

    img = track_images(plan)
    row, col, net = first_moment_centroids(
        img["IMGRAW"], img["IMGROW0"], img["IMGCOL0"], img["BGDAVG"]
    )
    # fid light off (IMGFUNC 3) or no net signal: the ground pipeline flags the centroid
    usable = (img["IMGFUNC1"] != 3) & (net > 0)
    return img["TIME"], row, col, net, usable


def first_moment_centroids(
    img: np.ndarray, row0: np.ndarray, col0: np.ndarray, bgd: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background-subtracted first-moment centroids of ACA images (the ground pipeline's
    alg 1).

    Parameters
    ----------
    img : ndarray
        (n, N, N) pixel values in DN; index [i, j] is CCD row ``row0 + i``, column
        ``col0 + j``. The four 6x6 corners are not telemetered and are left out.
    row0, col0 : ndarray
        IMGROW0, IMGCOL0 of each image.
    bgd : ndarray
        Background (BGDAVG, DN) subtracted from every pixel.

    Returns
    -------
    row, col : ndarray
        Centroid in CCD pixels, centre convention (integer at a pixel centre; the plate
        scale's edge convention is ``+ 0.5``); NaN when the net signal is not positive.
    net : ndarray
        Net (background-subtracted) DN in the image.
    """
    img = np.asarray(img, dtype=np.float64)
    size = img.shape[-1]
    net_img = img - np.asarray(bgd, dtype=np.float64)[:, None, None]
    if size == 6:
        net_img[:, [0, 0, -1, -1], [0, -1, 0, -1]] = 0.0
    net = net_img.sum(axis=(1, 2))
    idx = np.arange(size, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = net > 0
        row = np.where(ok, net_img.sum(axis=2) @ idx / net, np.nan) + row0
        col = np.where(ok, net_img.sum(axis=1) @ idx / net, np.nan) + col0
    return row, col, net


def l0_first_moments(
    obs: Observation, slot: int, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First-moment centroids of a slot's simulated L0 images at ``times`` (image TIMEs
    from `slot_runs`): (row, col, net DN, usable), row/col in the centre convention."""
    times = np.asarray(times, dtype=np.float64)
    out = [np.full(len(times), np.nan) for _ in range(3)] + [np.zeros(len(times), bool)]
    for plan in _track_plans(obs.obsid):
        if plan.slot != slot:
            continue
        t, *vals = _plan_first_moments(plan)
        k = np.clip(np.searchsorted(t, times), 0, len(t) - 1)
        hit = t[k] == times  # the very rows: TIME values are copied, not recomputed
        for dst, src in zip(out, vals, strict=True):
            dst[hit] = src[k[hit]]
    return tuple(out)


# --- FITS writing ---------------------------------------------------------------------------
_HDU_SPEC = {
    "ASPSOL": "ASPSOL ICD V2.4",
    "ASPSOLOBI": "ASPSOL ICD V2.4",
    "ASPQUAL": "ASPQUAL ICD V1.2",
    "ACACAL": "ACACAL ICD V1.1",
    "ACACENT": "ACACENT ICD V2.1",
    "GSPROPS": "GSPROPS ICD V2.1",
    "FIDPROPS": "FIDPROPS ICD V2.1",
    "GYROCAL": "GYROCAL ICD V1.0",
    "ACA_BADPIX": "ACA_BADPIX ICD V1.0",
    "ACADATA": "ACADATA ICD V2.2",
}


@dataclass
class _Context:
    obs: Observation
    proc: Processing
    obi: int
    decim: int


@functools.lru_cache(maxsize=4096)
def _date(t: float) -> str:
    """UTC ISO date of a CXC time (file creation dates)."""
    with conversion_scope():
        return to_time(t).utc.isot[:19]


_TT0 = datetime(1998, 1, 1)


def _tt_date(t: float) -> str:
    """TT ISO date of a CXC time: CXC seconds count TT seconds from 1998-01-01T00:00:00 TT,
    so no leap-second table is needed (and astropy's per-call cost is avoided)."""
    return (_TT0 + timedelta(seconds=float(t))).isoformat(timespec="seconds")


def _block(title: str) -> list[str]:
    return [
        card("COMMENT", ""),
        card("COMMENT", f"########## {title} ##########"),
        card("COMMENT", ""),
    ]


def _common_cards(ctx: _Context, tstart: float, tstop: float, primary: bool) -> list[str]:
    obs = ctx.obs
    cards = (
        _block("Timing info keywords")
        + [
            card("DATE", _date(ctx.proc.processed), "Date and time of file creation"),
            card("DATE-OBS", _tt_date(tstart), "Date and time of observation start"),
            card("DATE-END", _tt_date(tstop), "Date and time of observation stop"),
            card("TIMESYS", "TT", "AXAF time will be TT (Terrestrial Time)"),
            card("MJDREF", 5.0814e04, "1998-01-01T00:00:00 (TT) expressed in MJD"),
            card("TIMEZERO", 0.0, "Cumulative clock correction"),
            card("TIMEUNIT", "s"),
            card("CLOCKAPP", True, "Clock correction appllied"),
            card("TSTART", float(tstart), "As in TIME column: raw S/C clock"),
            card("TSTOP", float(tstop), "  add TIMEZERO and MJDREF for absolute TT"),
        ]
        + _block("Observation info keywords")
    )
    seq = f"{100000 + (obs.obsid * 37) % 900000:06d}"
    if primary:
        return cards + [
            card("SEQ_NUM", seq, "Sequence number"),
            card("MISSION", "AXAF", "Mission"),
            card("TELESCOP", "CHANDRA", "Telescope"),
            card("INSTRUME", "PCAD", "Aspect Camera"),
            card("OBS_ID", str(obs.obsid), "Observation id"),  # a string, as in real files
            card("OBI_NUM", ctx.obi, "Obi number"),
        ]
    cards += [
        card("MISSION", "AXAF", "Mission"),
        card("TELESCOP", "CHANDRA", "Telescope"),
        card("INSTRUME", "PCAD", "Aspect Camera"),
        card("DETNAM", "ACA-P", "Detector"),
        card("GRATING", "NONE", "Grating"),
        card("OBJECT", f"SIM-{obs.obsid:05d}", "Source name"),
        card("DTYPE1", "SS_OBJECT", "Long key name - value in DVALn"),
        card("DVAL1", "NONE", "Solar system object"),
        card("TITLE", f"Simulated science observation {obs.obsid}", "Proposal title"),
        card("OBSERVER", "Sim Observer", "Principal investigator"),
        card("OBS_ID", str(obs.obsid), "Observation id"),
        card("OBI_NUM", ctx.obi, "Obi number"),
        card("SEQ_NUM", seq, "Sequence number"),
        card("SIM_X", 0.0, "SIM offset, mm"),
        card("SIM_Y", 0.0, "SIM offset, mm"),
        card("SIM_Z", 0.0, "SIM offset, mm"),
        card("DEFOCUS", 0.0, "Defocus"),
        card("OBS_MODE", "POINTING", "Observation mode"),
        card("DATAMODE", "FAINT", "Data mode"),
        card("CYCLE", "", "events from which exps? Prim/Second/Both"),
        card("RA_NOM", round(obs.ra, 11), "Nominal RA"),
        card("DEC_NOM", round(obs.dec, 11), "Nominal Dec"),
        card("ROLL_NOM", round(obs.roll, 11), "Nominal Roll"),
        card("RA_PNT", 0.0, "Pointing RA"),
        card("DEC_PNT", 0.0, "Pointing DEC"),
        card("ROLL_PNT", 0.0, "Pointing ROLL"),
        card("RA_TARG", 0.0, "Target RA"),
        card("DEC_TARG", 0.0, "Target DEC"),
        card("EQUINOX", 2000.0, "J2000.0"),
        card("RADECSYS", "ICRS", "Julian coordinate reference frame"),
        card("DATACLAS", "OBSERVED", "default is OBSERVED"),
    ]
    return cards


def _write(
    path: Path,
    ctx: _Context,
    content: str,
    cols: list[Col],
    tstart: float,
    tstop: float,
    product_keys: list[tuple[str, object, str]],
) -> Path:
    """One product file: primary and table headers in the real pipeline's order."""
    comment = [
        card("COMMENT", "  FITS (Flexible Image Transport System) format is defined in 'Astronomy"),
        card("COMMENT", "  and Astrophysics', volume 376, page 359; bibcode: 2001A&A...376..359H"),
    ]
    # The flight files say ORIGIN 'ASC', CREATOR 'sciops': these say mica.sim (SIMULATD = T).
    origin, creator = sim_cards("mica.sim.asp_l1")
    primary = (
        comment
        + _block("Configuration control keywords")
        + [origin, card("HISTNUM", 1), *creator]
        + _common_cards(ctx, tstart, tstop, primary=True)
        + [card("HISTORY", " TOOL  :simulated ASP L1 pipeline (mica.sim.asp_l1)")]
    )
    table = (
        _block("Configuration control keywords")
        + [
            origin,
            *creator,
            card("REVISION", ctx.proc.revision, "Processing system revision number"),
            card("ASCDSVER", ctx.proc.ascdsver, "ASC-DS processing system revision (release)"),
            card("CONTENT", content, "What data product"),
            card("HDUSPEC", _HDU_SPEC[content]),
            card("HDUDOC", "ASC-FITS-2.0", "ASC FITS Designers Guide"),
            card("HDUVERS", "1.0.0", ""),
            card("HDUNAME", content),
            card("HDUCLASS", "ASC"),
            card("HDUCLAS1", "TEMPORALDATA"),
            card("HDUCLAS2", content),
            card("LONGSTRN", "OGIP 1.0", "The OGIP long string convention may be used."),
        ]
        + _common_cards(ctx, tstart, tstop, primary=False)
    )
    table += _block("Additional Principle Header keywords")
    table += [card(k, v, c) for k, v, c in product_keys]
    table += [card("HISTNUM", 0), card("CALDBVER", ctx.proc.caldbver)]
    return write_l1_file(path, primary, cols, content, table, _date(ctx.proc.processed))


def _ds_version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


# --- products ------------------------------------------------------------------------------------
def _noise(ctx: _Context, salt: str, n: int | tuple) -> np.ndarray:
    seed = int(unit_hash(ctx.obs.obsid * 131 + ctx.proc.revision, salt) * 2**63)
    return np.random.default_rng(seed).standard_normal(n)


def momentum_dump_start(obs: Observation) -> float:
    """Start of the seeded momentum dump: inside the observation's longest interval."""
    longest = max(aspect_intervals(obs), key=lambda a: a.tstop - a.tstart)
    return longest.tstart + 0.45 * (longest.tstop - longest.tstart)


def _asol_solution(ctx: _Context, ai: AspectInterval, problem: str | None) -> dict[str, np.ndarray]:
    """The aspect solution of an interval and the true attitude behind it."""
    obs = ctx.obs
    step = ASOL_STEP * ctx.decim
    t = ai.tstart + step * np.arange(int(np.floor((ai.tstop - ai.tstart) / step)))
    bump = np.zeros_like(t)
    bad = np.zeros(len(t), dtype=np.int32)
    if problem == "momentum_dump":
        # The solution loses ~1.5" during a ~210 s momentum unload, flagged in ASPQUAL
        # (the true attitude, hence the L0 star images and centroids, do not show it).
        tm = momentum_dump_start(obs)
        inside = (t >= tm) & (t < tm + 210.0)
        bump = 1.5 * np.sin(np.pi * np.clip((t - tm) / 210.0, 0, 1)) * inside
        bad[inside] = 1
    q_true = aca_attitude(obs, t)
    q_sol_aca = aca_attitude(obs, t, bump, -0.5 * bump)
    # Kalman estimate noise: ~0.02" slow wander
    wobble = 0.02 * np.sin(2 * np.pi * (t - obs.tstart) / 370.0 + ctx.proc.revision)
    q_sol_aca = _quat.multiply(q_sol_aca, _axis_quat(2, wobble * np.pi / 180 / 3600))
    q_misalign = _quat.from_transform(ACA_MISALIGN)
    q_att = _quat.multiply(q_sol_aca, q_misalign)
    dy, dz, dtheta = sim_drift(obs, t)
    return {
        "time": t,
        "q_att": q_att,
        "q_true": q_true,
        "dy": dy,
        "dz": dz,
        "dtheta": dtheta,
        "status": bad,
    }


def _asol_columns(ctx: _Context, sol: dict[str, np.ndarray]) -> list[Col]:
    t, q_att = sol["time"], sol["q_att"]
    ra, dec, roll = _quat.to_equatorial(q_att)
    n = len(t)
    err = 1.2e-5 + 2e-6 * np.abs(_noise(ctx, "asol-err", n))
    cols = [Col("time", "1D", unit="s", array=t)]
    raw = _ds_version(ctx.proc.ascdsver) >= DS_RAW_COLUMNS
    if raw:
        # DS >= 10.8.3: plain columns are the SIM-adjusted solution, *_raw the ACA one
        adj = _quat.multiply(
            q_att, _axis_quat(1, sol["dz"] * ARCSEC_PER_MM * np.pi / 180 / 3600 * 0.01)
        )
        ra_a, dec_a, roll_a = _quat.to_equatorial(adj)
        cols += [
            Col("ra", "1D", unit="deg", array=ra_a),
            Col("dec", "1D", unit="deg", array=dec_a),
            Col("roll", "1D", unit="deg", array=roll_a),
        ]
    else:
        cols += [
            Col("ra", "1D", unit="deg", array=ra),
            Col("dec", "1D", unit="deg", array=dec),
            Col("roll", "1D", unit="deg", array=roll),
        ]
    cols += [
        Col("ra_err", "1E", unit="deg", array=err),
        Col("dec_err", "1E", unit="deg", array=err),
        Col("roll_err", "1E", unit="deg", array=err * 12),
        Col("dy", "1E", unit="mm", array=sol["dy"]),
        Col("dz", "1E", unit="mm", array=sol["dz"]),
        Col("dtheta", "1E", unit="deg", array=sol["dtheta"]),
    ]
    cols.append(Col("q_att", "4D", array=adj if raw else q_att))
    if raw:
        cols += [
            Col("ady", "1E", unit="mm", array=sol["dy"]),
            Col("adz", "1E", unit="mm", array=sol["dz"]),
            Col("adtheta", "1E", unit="deg", array=sol["dtheta"]),
            Col("ra_raw", "1D", unit="deg", array=ra),
            Col("dec_raw", "1D", unit="deg", array=dec),
            Col("roll_raw", "1D", unit="deg", array=roll),
            Col("q_att_raw", "4D", array=q_att),
        ]
    return cols


def _centroid_sigma(mag: float) -> float:
    return 0.08 + 0.22 * np.clip((mag - 6.5) / 4.0, 0, 1.2)


def _counts(mag: float, n: int, ctx: _Context, salt: str) -> np.ndarray:
    mean = INTEG * 5263.0 * 10 ** ((10.32 - mag) / 2.5)
    return np.maximum(mean + np.sqrt(mean) * _noise(ctx, salt, n), 1.0)


@dataclass
class _SlotTrack:
    slot: int
    role: str
    imgsize: int
    times: np.ndarray
    yag: np.ndarray  # true apparent position (arcsec)
    zag: np.ndarray
    ang_y: np.ndarray  # measured centroid (arcsec)
    ang_z: np.ndarray
    ang_y_sm: np.ndarray
    ang_z_sm: np.ndarray
    counts: np.ndarray
    status: np.ndarray
    mag: float
    runs: list[tuple[int, int, int]]  # (first row, end row, image size) per ACADATA file
    fm_row: np.ndarray  # alg 1: first-moment centroid of the L0 image (pixels, centre conv.)
    fm_col: np.ndarray
    fm_net: np.ndarray  # net DN of the L0 image
    fm_ok: np.ndarray  # usable (fid on, positive net signal)


def _tracks(
    ctx: _Context, ai: AspectInterval, sol: dict[str, np.ndarray], problem: str | None
) -> list[_SlotTrack]:
    obs = ctx.obs
    stars = {s["slot"]: s for s in star_catalog(obs)}
    fids = {f["slot"]: f for f in fid_positions(obs)}
    bad_slot = fault_slot(obs, problem) if problem == "bad_star" else None
    jump_slot = fault_slot(obs, problem) if problem == "fid_jump" else None
    # missing slot: the pipeline lost the star's centroids in the observation's last interval
    missing = None
    if problem == "missing_slot" and ai == aspect_intervals(obs)[-1]:
        missing = fault_slot(obs, problem)
    tracks = []
    for s in obs.slots:
        if s.role == "unused" or s.slot == missing:
            continue
        # images start ~2 s after the interval's solution (real ACADATA vs ACACAL names)
        pieces = slot_runs(obs, s.slot, ai.tstart + IMAGE_LAG, ai.tstop, ctx.decim)
        if not pieces:
            continue
        times = np.concatenate([t for t, _ in pieces])
        bounds = np.cumsum([0] + [len(t) for t, _ in pieces])
        runs = [
            (int(a), int(b), size)
            for a, b, (_, size) in zip(bounds[:-1], bounds[1:], pieces, strict=True)
        ]
        n = len(times)
        # true attitude at image times (interpolated like the V&V does)
        q = np.stack([np.interp(times, sol["time"], sol["q_true"][:, k]) for k in range(4)], -1)
        q = _quat.normalize(q)
        if s.slot in stars:
            d = np.einsum("nji,j->ni", _quat.to_transform(q), stars[s.slot]["eci"])
            yag, zag = _quat.dir_to_yagzag(d)
            sigma = _centroid_sigma(s.mag)
        else:
            dy, dz, dth = (np.interp(times, sol["time"], sol[k]) for k in ("dy", "dz", "dtheta"))
            yag, zag = fid_model(fids[s.slot]["p_stf"], dy, dz, dth)
            sigma = 0.04
        ny, nz = _noise(ctx, f"cy{s.slot}{ai.tstart}", n), _noise(ctx, f"cz{s.slot}{ai.tstart}", n)
        off_y = np.zeros(n)
        off_z = np.zeros(n)
        if s.slot == bad_slot:
            off_y, off_z, sigma = off_y + 0.9, off_z - 0.4, 0.6
        if s.slot == jump_slot:
            off_y = np.where(times > 0.5 * (ai.tstart + ai.tstop), 0.6, 0.0)
        status = (np.abs(_noise(ctx, f"st{s.slot}{ai.tstart}", n)) > 2.9).astype(np.int16)
        spikes = status.astype(float) * 3.0
        fm_row, fm_col, fm_net, fm_ok = l0_first_moments(obs, s.slot, times)
        tracks.append(
            _SlotTrack(
                slot=s.slot,
                role=s.role,
                imgsize=s.imgsize,
                times=times,
                yag=yag,
                zag=zag,
                ang_y=yag + off_y + sigma * ny + spikes,
                ang_z=zag + off_z + sigma * nz,
                ang_y_sm=yag + off_y + 0.2 * sigma * ny,
                ang_z_sm=zag + off_z + 0.2 * sigma * nz,
                counts=_counts(s.mag, n, ctx, f"counts{s.slot}{ai.tstart}"),
                status=status,
                mag=s.mag,
                runs=runs,
                fm_row=fm_row,
                fm_col=fm_col,
                fm_net=fm_net,
                fm_ok=fm_ok,
            )
        )
    return tracks


def _smooth(x: np.ndarray, width: int = 5) -> np.ndarray:
    """Centred running mean (shorter at the ends): the alg 1 smoothed centroids."""
    n = len(x)
    csum = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    i = np.arange(n)
    lo, hi = np.clip(i - width // 2, 0, n), np.clip(i + width // 2 + 1, 0, n)
    return (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)


def _acen_columns(tracks: list[_SlotTrack]) -> list[Col]:
    """ACACENT rows of both algorithms, sorted by (time, slot, alg) as one table.

    alg 8 rows: the centroid model (noise, seeded faults) the V&V uses. alg 1 rows: the
    background-subtracted first moments of the L0 images of the same times (`first_moment_
    centroids`), flagged (status 1) where the image has no usable signal. ``cent_i/cent_j``
    are CCD row/col in the centre convention for both (the L0 images' ``IMGROW0 + i``).
    """
    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("time", "slot", "alg", "status", "y", "z", "y_sm", "z_sm", "counts")
    }
    for tr in tracks:
        n = len(tr.times)
        ok = tr.fm_ok
        # unusable images: the slot's median centroid, so the file holds no NaN (status 1)
        fill_row, fill_col = (np.median(v[ok]) if ok.any() else 0.0 for v in (tr.fm_row, tr.fm_col))
        fm_row = np.where(ok, tr.fm_row, fill_row)
        fm_col = np.where(ok, tr.fm_col, fill_col)
        y1, z1 = pixel_to_yagzag(fm_row + 0.5, fm_col + 0.5)  # plate scale: edge convention
        good = np.nonzero(ok)[0]
        y1_sm, z1_sm = y1.copy(), z1.copy()
        y1_sm[good], z1_sm[good] = _smooth(y1[good]), _smooth(z1[good])
        for alg, y, z, y_sm, z_sm, counts, status in (
            (1, y1, z1, y1_sm, z1_sm, np.maximum(tr.fm_net, 0) * 5.0, (~ok).astype(np.int16)),
            (8, tr.ang_y, tr.ang_z, tr.ang_y_sm, tr.ang_z_sm, tr.counts, tr.status),
        ):
            cols["time"].append(tr.times)
            cols["slot"].append(np.full(n, tr.slot, np.int16))
            cols["alg"].append(np.full(n, alg, np.int16))
            cols["status"].append(np.asarray(status, np.int16))
            cols["y"].append(y)
            cols["z"].append(z)
            cols["y_sm"].append(y_sm)
            cols["z_sm"].append(z_sm)
            cols["counts"].append(counts)
    if tracks:
        c = {k: np.concatenate(v) for k, v in cols.items()}
    else:
        c = {k: np.zeros(0) for k in cols}
    order = np.lexsort((c["alg"], c["slot"], c["time"]))
    c = {k: v[order] for k, v in c.items()}
    row, col = yagzag_to_pixel(c["y"], c["z"])
    return [
        Col("time", "1D", unit="s", array=c["time"]),
        Col("slot", "1I", array=c["slot"].astype(np.int16)),
        Col("alg", "1I", array=c["alg"].astype(np.int16)),
        Col("status", "1I", array=c["status"].astype(np.int16)),
        Col("ang_y", "1D", unit="deg", array=c["y"] / 3600.0),
        Col("ang_z", "1D", unit="deg", array=c["z"] / 3600.0),
        Col("ang_y_sm", "1D", unit="deg", array=c["y_sm"] / 3600.0),
        Col("ang_z_sm", "1D", unit="deg", array=c["z_sm"] / 3600.0),
        Col("counts", "1E", unit="count", array=c["counts"]),
        # yagzag_to_pixel is the edge convention; cent_i/cent_j are pixel-centre values
        Col("cent_i", "1E", unit="pixel", array=row - 0.5),
        Col("cent_j", "1E", unit="pixel", array=col - 0.5),
    ]


def _gspr_columns(ctx: _Context, problem: str | None) -> list[Col]:
    stars = star_catalog(ctx.obs)
    if problem == "omitted_slot":
        guides = [s for s in stars if s["role"] == "guide"]
        if guides:
            stars = [s for s in stars if s is not guides[0]]
    n = len(stars)
    eci = np.array([s["eci"] for s in stars]).reshape(n, 3)
    if problem == "wrong_catalog":
        eci = _wrong_catalog(ctx, eci)
    mags = np.array([s["mag"] for s in stars], dtype=np.float32)
    return [
        Col("slot", "1I", array=[s["slot"] for s in stars]),
        Col("id_status", "8A", array=["GOOD"] * n),
        Col("type", "8A", array=[s["role"].upper() for s in stars]),
        Col("cel_loc_flag", "1I", array=[1 if s["role"] == "guide" else 0 for s in stars]),
        Col("agasc_id", "1J", array=[s["agasc_id"] for s in stars]),
        Col("ra", "1D", unit="deg", array=[s["ra"] for s in stars]),
        Col("dec", "1D", unit="deg", array=[s["dec"] for s in stars]),
        Col("pos_eci", "3D", array=eci),
        Col("ra_corr", "1D", unit="deg", array=[s["ra"] for s in stars]),
        Col("dec_corr", "1D", unit="deg", array=[s["dec"] for s in stars]),
        Col("pos_err", "1I", unit="mas", array=[40] * n),
        Col("pm_ra", "1J", unit="mas/yr", array=[-9999] * n),
        Col("pm_dec", "1J", unit="mas/yr", array=[-9999] * n),
        Col("mag_aca", "1E", unit="mag", array=mags),
        Col("mag_aca_err", "1E", unit="mag", array=np.full(n, 0.03, np.float32)),
        Col("mag_aca_avg", "1E", unit="mag", array=mags + 0.02),
        Col("mag_aca_min", "1E", unit="mag", array=mags - 0.05),
        Col("mag_aca_max", "1E", unit="mag", array=mags + 0.08),
        Col("color1", "1E", unit="mag", array=np.full(n, 0.7, np.float32)),
        Col("class", "1I", array=[0] * n),
        Col("aspq1", "1I", array=[0] * n),
        Col("aspq2", "1I", array=[0] * n),
        Col("aspq3", "1I", array=[0] * n),
        Col("var", "1I", array=[-9999] * n),
        Col("spectral_type", "8A", array=["NONE"] * n),
    ]


def _wrong_catalog(ctx: _Context, eci: np.ndarray) -> np.ndarray:
    """Star positions of a wrong catalog: each 2-3" off in a random direction."""
    rng = np.random.default_rng(int(unit_hash(ctx.obs.obsid, "wrong-catalog") * 2**63))
    out = []
    for e in eci:
        a = rng.uniform(0, 2 * np.pi)
        r = np.radians(rng.uniform(2.0, 3.0) / 3600)
        u = np.cross(e, [0.0, 0.0, 1.0])
        u /= np.linalg.norm(u)
        v = np.cross(e, u)
        d = e + r * (np.cos(a) * u + np.sin(a) * v)
        out.append(d / np.linalg.norm(d))
    return np.array(out).reshape(eci.shape)


def _fid_id(det: str, k: int) -> str:
    return {"ACIS-I": "I", "ACIS-S": "S", "HRC-I": "H-I-", "HRC-S": "H-S-"}[det] + str(k)


def _fidpr_columns(ctx: _Context) -> list[Col]:
    from mica.sim.obspar import detector

    fids = fid_positions(ctx.obs)
    n = len(fids)
    det = detector(ctx.obs)
    mags = np.array([f["mag"] for f in fids], dtype=np.float32)
    return [
        Col("slot", "1I", array=[f["slot"] for f in fids]),
        Col("id_status", "8A", array=["GOOD"] * n),
        Col("id_string", "8A", array=[_fid_id(det, f["id_num"]) for f in fids]),
        Col("id_num", "1I", array=[f["id_num"] for f in fids]),
        Col("p_lsi", "3D", unit="mm", array=np.array([f["p_lsi"] for f in fids]).reshape(n, 3)),
        Col("ang_y_nom", "1D", unit="deg", array=[f["yag"] / 3600 for f in fids]),
        Col("ang_z_nom", "1D", unit="deg", array=[f["zag"] / 3600 for f in fids]),
        Col("mag_i_cmd", "1E", unit="mag", array=mags),
        Col("mag_i_avg", "1E", unit="mag", array=mags + 0.01),
        Col("mag_i_min", "1E", unit="mag", array=mags - 0.03),
        Col("mag_i_max", "1E", unit="mag", array=mags + 0.04),
    ]


def _psf_images(
    row_c: np.ndarray,
    col_c: np.ndarray,
    row0: np.ndarray,
    col0: np.ndarray,
    size: int,
    counts: np.ndarray,
) -> np.ndarray:
    """Gaussian star images (e-) integrated over pixels: (n, size, size)."""
    sig = 0.75 * np.sqrt(2)
    edges = np.arange(size + 1)
    fr = 0.5 * erf((row0[:, None] + edges[None, :] - row_c[:, None]) / sig)
    fc = 0.5 * erf((col0[:, None] + edges[None, :] - col_c[:, None]) / sig)
    pr, pc = np.diff(fr, axis=1), np.diff(fc, axis=1)
    return counts[:, None, None] * pr[:, :, None] * pc[:, None, :]


def _adat(
    ctx: _Context, track: _SlotTrack, q_start: np.ndarray, calfile: str, dest: Path
) -> list[Path]:
    """ACADATA images of a slot: one file per image size segment (real naming)."""
    mission = default_mission()
    out = []
    for i0, i1, size in track.runs:
        sel = slice(i0, i1)
        times = track.times[sel]
        n = len(times)
        a = float(times[0])
        row_c, col_c = yagzag_to_pixel(track.yag[sel], track.zag[sel])
        row0 = np.floor(row_c - size / 2 + 0.5).astype(np.int16)
        col0 = np.floor(col_c - size / 2 + 0.5).astype(np.int16)
        bkg = float(mission.bgd_level_dn(a))
        electrons = _psf_images(row_c, col_c, row0, col0, size, track.counts[sel])
        noise = _noise(ctx, f"img{track.slot}{a}", (n, size, size)).astype(np.float32)
        raw = np.rint(electrons / 5.0 + bkg + np.sqrt(bkg + 1) * noise).astype(np.float32)
        corr = ((raw - bkg) * 5.0).astype(np.float32)
        resid = (corr - electrons).astype(np.float32)
        excl = np.zeros((n, size, size), dtype=np.uint8)
        if size == 6:
            excl[:, [0, 0, -1, -1], [0, -1, 0, -1]] = 255  # 6x6 corners are not read out
        temps = (
            np.stack(
                [
                    mission.ccd_temp_degc(times),
                    mission.housing_temp_degc(times),
                    mission.lens_temp_degc(times),
                    mission.secondary_mirror_temp_degc(times),
                ],
                -1,
            )
            + 273.15
        )
        t_start = times - INTEG / 2  # start of integration
        mag_i = 10.32 - 2.5 * np.log10(track.counts[sel] / INTEG / 5263.0)
        dim = f"({size},{size})"
        npix = size * size
        cols = [
            Col("time", "1D", unit="sec", array=t_start),
            Col("obc_mag_i", "1E", unit="mag", array=mag_i),
            Col("obc_ang_y", "1E", unit="deg", array=track.ang_y[sel] / 3600),
            Col("obc_ang_z", "1E", unit="deg", array=track.ang_z[sel] / 3600),
            Col("bkg_rms", "1E", unit="adu", array=np.full(n, np.sqrt(bkg + 1))),
            Col("bkg_avg", "1E", unit="adu", array=np.full(n, round(bkg))),
            Col("aca_comp_bkg_avg", "1E", unit="count", array=np.full(n, 5 * bkg)),
            Col("img_raw", f"{npix}E", unit="adu", dim=dim, array=raw),
            Col("img_corr", f"{npix}E", unit="count", dim=dim, array=corr),
            Col("fit_resid", f"{npix}E", unit="count", dim=dim, array=resid),
            Col("temperatures", "4E", unit="K", array=temps.astype(np.float32)),
            Col("cent_i_true", "1E", unit="pixel", array=np.zeros(n)),
            Col("cent_j_true", "1E", unit="pixel", array=np.zeros(n)),
            Col("q_sc_true", "4D", array=np.zeros((n, 4))),
            Col("cmd_count", "1J", array=np.zeros(n, dtype=np.int32)),
            Col("cmd_progress", "1J", array=np.zeros(n, dtype=np.int32)),
            Col("img_row0", "1I", unit="pixel", array=row0),
            Col("img_col0", "1I", unit="pixel", array=col0),
            Col("img_excl", f"{npix}B", dim=dim, array=excl),
            Col("img_func_stat", "1B", array=np.full(n, 64, dtype=np.uint8)),
            Col("global_status", "1B", array=np.zeros(n, dtype=np.uint8)),
            Col("bkg_outliers", "1B", array=np.zeros(n, dtype=np.uint8)),
        ]
        for col in cols:
            col.comment = ADAT_COMMENTS.get(col.name)
        step = {4: 1.025, 6: 2.05, 8: 4.1}[size] * ctx.decim
        imgtype = {"guide": 0, "fid": 1, "monitor": 2}[track.role]
        keys = [
            ("IMGSIZE", size, "Image size (4, 6, or 8)"),
            ("INTGTIME", INTEG, "Integration time"),
            ("IMGNUM", track.slot, "Image number (0 to 7)"),
            ("IMGTYPE", imgtype, "Image type (fid, guide, etc)"),
        ]
        keys += [(f"QUATINT{k + 1}", float(q_start[k]), "Initial S/C quaternion") for k in range(4)]
        keys += [
            ("BKGMETH", "map_add", "Background subtraction method"),
            ("COMPMETH", "none", "Star compensation method"),
            ("CALFILE", calfile, "Calibration file used"),
            ("TIMEDEL", step, "Delta T for file records"),
            ("TIMEPIXR", 0.0, "Timestamp location in interval"),
        ]
        name = f"pcadf{int(t_start[0]):09d}N{ctx.proc.revision:03d}_adat{track.slot}1.fits.gz"
        out.append(
            _write(
                dest / name,
                ctx,
                "ACADATA",
                cols,
                float(t_start[0]),
                float(times[-1] + step / 2),
                keys,
            )
        )
    return out


#: TTYPE comments of the real ACADATA files
ADAT_COMMENTS = {
    "time": "Start of integration",
    "obc_mag_i": "OBC est. image instr. magn.",
    "obc_ang_y": "OBC centroid angle in ACA y",
    "obc_ang_z": "OBC centroid angle in ACA z",
    "bkg_rms": "Bacgkround RMS",
    "bkg_avg": "Average background",
    "aca_comp_bkg_avg": "Compensated average bkgd (e-)",
    "img_raw": "Raw image",
    "img_corr": "Corrected image (e-)",
    "fit_resid": "PSF or gauss fit residuals (e-)",
    "temperatures": "Satellite Temperatures",
    "cent_i_true": "True centroid from GADSOOCS",
    "cent_j_true": "True centroid from GADSOOCS",
    "q_sc_true": "True S/C attitude quaternion",
    "cmd_count": "Command count",
    "cmd_progress": "Command progress",
    "img_row0": "Row pos of lower left pixel",
    "img_col0": "Col pos of lower left pixel",
    "img_excl": "(BYTE) Exclude pixel flag",
    "img_func_stat": "(BYTE) Image funct. and status bits",
    "global_status": "(BYTE) global status",
    "bkg_outliers": "(BYTE) bgd outliers that got tossed",
}


def _log_text(ctx: _Context, ai: AspectInterval, prefix: str) -> str:
    obsid = ctx.obs.obsid
    obspar_rev = max((r for r, t in obspar_revisions(obsid) if t <= ctx.proc.processed), default=1)
    return "\n".join(
        [
            f"ASP_L1 pipeline (simulated) for obsid {obsid} obi {ctx.obi} revision "
            f"{ctx.proc.revision}",
            f"{SIM_KEYWORD} = T / {SIM_COMMENT}",
            f"aspect_1_id = {obsid * 1000 + ctx.proc.revision * 10 + ctx.obi}",
            f"ap_date = {_date(ctx.proc.processed)}",
            f"ASCDSVER = {ctx.proc.ascdsver}  CALDBVER = {ctx.proc.caldbver}",
            f"obspar: axaff{obsid:05d}_{ctx.obi:03d}N{obspar_rev:03d}_obs0a.par",
            f"aspect interval {prefix}: {to_date(ai.tstart)} - {to_date(ai.tstop)}",
            "Kalman filter converged; aspect solution written.",
            "",
        ]
    )


def write_asp_l1(obsid: int, revision: int, dest: Path, decimate: int | None = None) -> list[Path]:
    """Write every file of (obsid, revision) into ``dest``; [] when it does not exist.

    ``decimate`` keeps every k-th asol sample and image (None: `decimation`).
    """
    procs = {p.revision: p for p in available(obsid)}
    if revision not in procs:
        return []
    obs = observation(obsid)
    problem = seeded_problem(obsid)
    dest = Path(dest)
    decim = decimation() if decimate is None else max(1, int(decimate))
    out: list[Path] = []
    per_obi: dict[int, list[tuple[dict[str, np.ndarray], AspectInterval]]] = {}
    for ai in aspect_intervals(obs):
        ctx = _Context(obs, procs[revision], ai.obi, decim)
        rev = revision
        sol = _asol_solution(ctx, ai, problem)
        if len(sol["time"]) < 2:
            continue
        per_obi.setdefault(ai.obi, []).append((sol, ai))
        tracks = _tracks(ctx, ai, sol, problem)
        prefix = f"pcadf{int(ai.tstart):09d}N{rev:03d}"
        step = ASOL_STEP * decim
        t0, tstop = float(ai.tstart), float(sol["time"][-1] + step)
        products = {
            "asol1": (
                "ASPSOL",
                _asol_columns(ctx, sol),
                [
                    ("TIMEDEL", step, "Delta T"),
                    ("DTASPSOL", step, "Aspect solution step"),
                    ("ASPTYPE", "KALMAN", "Aspect solution type"),
                ],
            ),
            "aqual1": (
                "ASPQUAL",
                [
                    Col("time", "1D", unit="s", array=sol["time"]),
                    Col("asp_sol_status", "1I", array=sol["status"]),
                ],
                [("TIMEDEL", step, "Delta T")],
            ),
            "acal1": (
                "ACACAL",
                [
                    Col("aca_misalign", "9D", dim="(3,3)", array=ACA_MISALIGN.reshape(1, 3, 3)),
                    Col("fts_misalign", "9D", dim="(3,3)", array=FTS_MISALIGN.reshape(1, 3, 3)),
                ],
                [],
            ),
            "acen1": ("ACACENT", _acen_columns(tracks), [("INTGTIME", INTEG, "Integration time")]),
            "gspr1": ("GSPROPS", _gspr_columns(ctx, problem), []),
            "fidpr1": (
                "FIDPROPS",
                _fidpr_columns(ctx),
                [(f"LSI0STT{k + 1}", LSI0STT[k], "LSI to STT offset (mm)") for k in range(3)]
                + [(f"STT0STF{k + 1}", STT0STF[k], "STT to STF offset (mm)") for k in range(3)]
                + [("RRC0FCX", RRC0FCX, "Focal length to fid plane (mm)")],
            ),
            "gcal1": (
                "GYROCAL",
                [
                    Col("gyro_scale", "3D", array=np.ones((1, 3))),
                    Col(
                        "gyro_bias", "3D", unit="arcsec/s", array=np.array([[0.012, -0.004, 0.021]])
                    ),
                    Col("gyro_align", "9D", dim="(3,3)", array=np.eye(3).reshape(1, 3, 3)),
                ],
                [],
            ),
            "bpix1": ("ACA_BADPIX", _bpix_columns(ctx), []),
        }
        for suffix, (content, cols, keys) in products.items():
            out.append(
                _write(dest / f"{prefix}_{suffix}.fits.gz", ctx, content, cols, t0, tstop, keys)
            )
        calfile = f"{prefix}_acal1.fits"
        for track in tracks:
            out += _adat(ctx, track, sol["q_true"][0], calfile, dest)
        log = dest / f"asp_l1_f{int(ai.tstart):09d}N{rev:03d}.log.gz"
        log.write_bytes(gzip.compress(_log_text(ctx, ai, prefix).encode(), mtime=0))
        out.append(log)
    if _ds_version(procs[revision].ascdsver) >= DS_RAW_COLUMNS:
        for obi, pieces in per_obi.items():
            ctx = _Context(obs, procs[revision], obi, decim)
            sol = {k: np.concatenate([p[0][k] for p in pieces]) for k in pieces[0][0]}
            name = f"pcadf{obsid:05d}_{obi:03d}N{revision:03d}_asol1.fits.gz"
            out.append(
                _write(
                    dest / name,
                    ctx,
                    "ASPSOLOBI",
                    _asol_columns(ctx, sol),
                    float(pieces[0][1].tstart),
                    float(pieces[-1][1].tstop),
                    [("ASPTYPE", "KALMAN", "Solution type")],
                )
            )
    return out


def _bpix_columns(ctx: _Context) -> list[Col]:
    n = 40
    u = np.random.default_rng(ctx.obs.obsid // 500).random((n, 3))  # changes slowly
    return [
        Col("row", "1I", unit="pixel", array=(u[:, 0] * 1024 - 512).astype(int)),
        Col("col", "1I", unit="pixel", array=(u[:, 1] * 1024 - 512).astype(int)),
        Col("dark_current", "1E", unit="e-/s", array=200 + 2000 * u[:, 2]),
    ]
