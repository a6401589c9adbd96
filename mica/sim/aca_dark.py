"""Simulated ACA dark-current calibrations: schedule, true maps and replica files.

Schedule (a pure function of the mission seed, `dark_cal_schedule`): about four calibrations a
year from 1999:223 to the mission end, with the spec's known ids (aca_dark.md section 2:
1999223, 2006329, 2007006, 2007069, 2007251, 2022069, 2022104, 2022133; four in 2007; three in
2019:001-160, the last one in the ACDC era). A calibration is ``N_REPLICAS`` replicas of
800-1000 s (ACA in calibration mode: no image telemetry) whose starts are 1900-2300 s apart,
so an event lasts ~2.5 h (kadi's minimum is 8000 s). The L0 simulator leaves the replicas
empty and runs slots 6-7 as 8x8 within ``DARK_CAL_8X8_PAD`` of them (`Mission.dark_cal_windows`),
so header-3 ``ccd_temp`` exists just before and after each replica, never during.

True map (`true_dark_map`, e-/s at -14 C): each pixel joins a bin of the dark-current model
histogram (``dark_model.smooth_twice_broken_pow`` with ``get_sbp_pars``: pixels per bin from
2 e-/s up) with probability count / 1024**2 and takes a log-uniform value in it; the rest are
cool pixels below the model's range (lognormal, median ``COOL_MEDIAN``). So the map's warm
fractions are the model's (the model's own ``synthetic_dark_image`` adds the drawn values to a
cool base instead, which puts ~10 % more pixels above 100 e-/s). The model was fitted to
2007-2017 calibrations; before 2007 its extrapolation falls below the observed trend (0.011
instead of ~0.023 of pixels above 100 e-/s at -15 C in 2000), so the amplitude is raised
there to follow the observed trend (`early_amplitude_factor`).

Replica (`replica_image`): the true map scaled to the CCD temperature of the mission at the
replica (``dark_temp_scale(-14, T)``), integrated over ``INTEG`` s, with shot and read noise,
cosmic-ray hits, rounded to whole electrons and divided by ``INTEG`` (e-/s).

Replica file format (``acadark<YYYYDOY>_r<n>.fits.gz``): gzipped FITS, primary HDU only,
``BITPIX = -32``, 1024 x 1024 big-endian float32 e-/s, index ``[i, j]`` = CCD row ``i - 512``,
column ``j - 512``; keywords ``CONTENT = 'ACADARK'``, ``DARKID`` (calibration id),
``REPLICA`` (1..N), ``NREPLICA`` (N), ``TSTART``/``TSTOP`` (CXC s) and ``DATE-OBS``/``DATE-END``
of the replica, ``INTEG`` (s), ``RA_PNT``/``DEC_PNT`` (deg, pointing during the calibration),
``BUNIT``, and ``CHECKSUM``/``DATASUM``.
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from erfa import ErfaWarning

from mica.archive.aca_dark import dark_model as dm
from mica.archive.aca_dark.temp_scale import dark_temp_scale
from mica.engine.atomic import write_bytes_atomic
from mica.engine.provenance import SIM_COMMENT, SIM_KEYWORD, SIM_ORIGIN
from mica.sim.mission import Mission, default_mission, get_mission, register_mission
from mica.time import SECONDS_PER_DAY as _DAY
from mica.time import CxoTimeLike, conversion_scope, frac_year, to_date, to_secs, to_time

__all__ = [
    "DarkCalPlan",
    "N_REPLICAS",
    "INTEG",
    "dark_cal_schedule",
    "dark_cals_between",
    "replica_intervals",
    "replica_filename",
    "true_dark_map",
    "replica_image",
    "write_replicas",
    "early_amplitude_factor",
]

N_REPLICAS = 5
INTEG = 8.0  # s of dark integration per replica
# Pixels outside the model histogram (below its 2 e-/s lower edge at -14 C): lognormal.
COOL_MEDIAN = 1.0
COOL_LOG_SIGMA = 0.6
READ_NOISE = 20.0  # e- per pixel and readout
CR_RATE = 400.0  # cosmic-ray events per second over the CCD (~3200 per replica)
CR_MEDIAN_E = 1500.0  # e- deposited by a typical event
GZIP_LEVEL = 1  # as the L0 simulator: fast, and whole-electron values still halve the size

# Observed trend before the model's validity (aca_dark.md 7.4): ~0.023 of pixels above
# 100 e-/s at -15 C in 2000, rising to meet the model in 2007.
_EARLY_ANCHOR = (2000.0, 0.023)
_MODEL_VALID_FROM = 2007.0

# Spec ids (aca_dark.md section 2) and the full day lists of the years holding them, so that
# the spec's selection tests hold (e.g. no calibration between 2007069 and 2007251).
_KNOWN_YEARS = {
    1999: (223, 320),
    2006: (35, 125, 215, 329),
    2007: (6, 69, 251, 340),
    2019: (15, 85, 155, 245, 335),
    2022: (10, 69, 104, 133, 220, 310),
}
_KNOWN_START = {"2007006": "2007:006:01:56:46.817"}  # spec test value of the event start
# Ecliptic latitudes of the classic test calibrations (aca_dark.md 3: 2007 and 2019 'eb').
_KNOWN_EB = {
    "2007006": 24.6,
    "2007069": 25.89,
    "2007251": 51.13,
    "2007340": 1.9,
    "2019015": 1.82,
    "2019085": -49.53,
}
# Days used by the L0/hdr3/demo examples and tests: generic calibrations keep away from them
# (a calibration reshapes the L0 files of the observations it overlaps).
_PROTECTED_DAYS = (
    "1999:300", "2001:046", "2003:100", "2003:215", "2005:001", "2005:100", "2005:200",
    "2008:100", "2008:200", "2010:001", "2010:100", "2011:001", "2011:010", "2012:001",
    "2012:005", "2012:020", "2012:030", "2012:100", "2012:125", "2012:270", "2012:366",
    "2013:001", "2014:001", "2014:100", "2015:001", "2016:001", "2016:100", "2017:001",
    "2017:010", "2017:185", "2018:001", "2018:100", "2019:272",
)  # fmt: skip
_PROTECTED_OBSIDS = (3552, 5438, 2121, 6000, 7000, 7001)
_GENERIC_DOYS = (40, 130, 220, 310)


@dataclass(frozen=True)
class DarkCalPlan:
    """One simulated calibration: id, replica intervals (CXC s) and pointing choice."""

    dark_id: str
    replicas: tuple[tuple[float, float], ...]
    el: float  # ecliptic longitude (deg) of the pointing
    eb: float  # ecliptic latitude (deg)
    mission_seed: int
    day: float  # CXC seconds of 00:00 UTC of the id's day (a replica file's name time)

    @property
    def tstart(self) -> float:
        return self.replicas[0][0]

    @property
    def tstop(self) -> float:
        return self.replicas[-1][1]

    @property
    def acdc(self) -> bool:
        """True for calibrations of the ACDC era (their properties use the ACDC schema)."""
        return self.tstart >= _acdc_start()


@functools.cache
def _acdc_start() -> float:
    from mica.archive.aca_dark.update import ACDC_START  # the updater decides the schema

    return float(to_secs(ACDC_START))


def _mission(mission: Mission | None) -> Mission:
    return register_mission(mission) if mission is not None else default_mission()


def _protected(m: Mission) -> np.ndarray:
    """(n, 2) CXC-second intervals a generic calibration must not touch."""
    days = np.asarray(to_secs(np.array(_PROTECTED_DAYS)), dtype=np.float64)
    spans = [np.stack([days - 2 * _DAY, days + 3 * _DAY], axis=1)]
    for obsid in _PROTECTED_OBSIDS:
        try:
            obs = m.observation(obsid)
        except KeyError:
            continue
        spans.append(np.array([[obs.tstart - 2 * _DAY, obs.tstop + 2 * _DAY]]))
    return np.concatenate(spans)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


@functools.cache
def _schedule(seed: int) -> tuple[DarkCalPlan, ...]:
    m = get_mission(seed)
    rng = np.random.default_rng([seed, 11])
    protected = _protected(m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ErfaWarning)  # dates past the leap-second table
        first_year = int(to_date(m.t_begin)[:4])
        last_year = int(to_date(m.t_end - _DAY)[:4])
        years = np.arange(first_year, last_year + 2)
        jan1 = dict(zip(years.tolist(), to_secs(np.array([f"{y}:001" for y in years]))))
    # Candidates (year, doy, draws) first; dates become CXC seconds in one vectorised call.
    cands = []
    for year in range(first_year, last_year + 1):
        known = year in _KNOWN_YEARS
        for doy in _KNOWN_YEARS.get(year, _GENERIC_DOYS):
            jitter = 0 if known else int(rng.integers(-15, 16))
            draws = (
                float(rng.uniform(0.05, 0.55)),  # start time within the day
                rng.uniform(1900.0, 2300.0, N_REPLICAS - 1),  # replica start spacing
                rng.uniform(800.0, 1000.0, N_REPLICAS),  # replica durations
                float(rng.uniform(0.0, 360.0)),
                float(np.degrees(np.arcsin(rng.uniform(-1.0, 1.0)))),
            )
            y, d = year, min(max(doy + jitter, 1), 365)
            if not known:
                # Step a week at a time out of protected spans (tests and examples use them).
                while True:
                    t = jan1[y] + (d - 1) * _DAY  # to within leap seconds: enough here
                    if not np.any((t + _DAY > protected[:, 0]) & (t < protected[:, 1])):
                        break
                    d += 7
                    if d > (366 if _is_leap(y) else 365):
                        d -= 366 if _is_leap(y) else 365
                        y += 1
            cands.append((f"{y}{d:03d}", f"{y}:{d:03d}", draws))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ErfaWarning)
        days = to_secs(np.array([c[1] for c in cands]))
        known_t0 = {k: to_secs(v) for k, v in _KNOWN_START.items()}
    plans = []
    for (dark_id, _, (fraction, gaps, durs, el, eb)), day in zip(cands, days, strict=True):
        t0 = known_t0.get(dark_id, round(float(day) + fraction * _DAY, 3))
        if t0 < m.t_begin + 10 * _DAY or t0 > m.t_end - _DAY:
            continue
        starts = t0 + np.concatenate([[0.0], np.cumsum(gaps)])
        reps = tuple(
            (float(round(s, 3)), float(round(s + d, 3))) for s, d in zip(starts, durs, strict=True)
        )
        eb = _KNOWN_EB.get(dark_id, eb)
        plans.append(DarkCalPlan(dark_id, reps, el, eb, seed, float(day)))
    plans.sort(key=lambda p: p.tstart)
    ids = [p.dark_id for p in plans]
    if len(set(ids)) != len(ids):
        raise RuntimeError("simulated dark-cal schedule has duplicate ids")
    return tuple(plans)


def dark_cal_schedule(mission: Mission | None = None) -> tuple[DarkCalPlan, ...]:
    """Every simulated calibration of the mission, in time order (cached per seed)."""
    return _schedule(_mission(mission).seed)


def dark_cals_between(
    start: CxoTimeLike, stop: CxoTimeLike, mission: Mission | None = None, by_day: bool = False
) -> list[DarkCalPlan]:
    """Calibrations whose first replica (``by_day``: whose id's day) starts in [start, stop)."""
    t0, t1 = to_secs(start), to_secs(stop)
    return [p for p in dark_cal_schedule(mission) if t0 <= (p.day if by_day else p.tstart) < t1]


def dark_cal_plan(dark_id: str, mission: Mission | None = None) -> DarkCalPlan:
    """The calibration with this id (KeyError naming it if the schedule has none)."""
    for plan in dark_cal_schedule(mission):
        if plan.dark_id == str(dark_id):
            return plan
    raise KeyError(f"the simulated mission has no dark calibration {dark_id}")


def replica_intervals(mission: Mission, start: float, stop: float) -> np.ndarray:
    """(n, 2) replica [t0, t1] intervals (CXC s) overlapping [start, stop]."""
    reps = _replica_array(_mission(mission).seed)
    return reps[(reps[:, 1] > start) & (reps[:, 0] < stop)]


@functools.cache
def _replica_array(seed: int) -> np.ndarray:
    plans = _schedule(seed)
    return np.array([r for p in plans for r in p.replicas], dtype=np.float64).reshape(-1, 2)


def replica_filename(dark_id: str, replica: int) -> str:
    """``acadark<YYYYDOY>_r<n>.fits.gz``."""
    return f"acadark{dark_id}_r{int(replica)}.fits.gz"


# ---------------------------------------------------------------------------------------
# Maps
def early_amplitude_factor(year: float) -> float:
    """Factor on the model amplitude that makes the warm fraction follow the observed trend
    before 2007 (the model's fit range starts there); 1 from 2007 on."""
    if year >= _MODEL_VALID_FROM:
        return 1.0
    y0, f0 = _EARLY_ANCHOR
    f_valid = dm.get_warm_fracs(100.0, _year_date(_MODEL_VALID_FROM), -15.0)
    target = f0 + (f_valid - f0) * (year - y0) / (_MODEL_VALID_FROM - y0)
    return float(target / dm.get_warm_fracs(100.0, _year_date(year), -15.0))


def _year_date(year: float) -> str:
    whole = int(np.floor(year))
    doy = 1 + int((year - whole) * 365.0)
    return f"{whole}:{doy:03d}:12:00:00"


@functools.lru_cache(maxsize=4)
def true_dark_map(dark_id: str, seed: int = 1999) -> np.ndarray:
    """The calibration's true dark current (e-/s at -14 C), 1024x1024 float32 (read-only)."""
    plan = dark_cal_plan(dark_id, get_mission(seed))
    rng = np.random.default_rng([seed, 12, int(dark_id)])
    year = float(frac_year(plan.tstart))
    pars = np.array(dm.get_sbp_pars(plan.tstart), dtype=np.float64)
    pars[4] *= early_amplitude_factor(year)
    model = dm.smooth_twice_broken_pow(pars, dm.xall)
    # Each pixel independently joins a model bin with probability model[i] / NPIX (a
    # multinomial draw of the model histogram, no shuffle needed); past ~2025 the
    # extrapolated model holds more pixels than the CCD: then every pixel joins one.
    prob = np.cumsum(model) / dm.NPIX
    if prob[-1] > 1.0:
        prob /= prob[-1]
    u = rng.random(dm.NPIX)
    ibin = np.searchsorted(prob, u)
    warm = ibin < len(model)
    lo = np.log(dm.xbins[:-1])[ibin[warm]]
    hi = np.log(dm.xbins[1:])[ibin[warm]]
    # The model is the histogram of whole pixel values from 2 e-/s up: a pixel drawn from it
    # takes the drawn value; the others are below its range.
    out = COOL_MEDIAN * np.exp(COOL_LOG_SIGMA * rng.standard_normal(dm.NPIX))
    out[warm] = np.exp(lo + (hi - lo) * rng.random(int(warm.sum())))
    out = out.astype(np.float32).reshape(dm.CCD_SHAPE)
    out.flags.writeable = False
    return out


def replica_image(plan: DarkCalPlan, replica: int, mission: Mission | None = None) -> np.ndarray:
    """Replica ``replica`` (1..N) of a calibration: e-/s, float32, noise and cosmic rays."""
    m = _mission(mission)
    t0, t1 = plan.replicas[replica - 1]
    t_ccd = float(np.ravel(m.ccd_temp_degc(0.5 * (t0 + t1)))[0])
    rng = np.random.default_rng([plan.mission_seed, 13, int(plan.dark_id), replica])
    electrons = true_dark_map(plan.dark_id, plan.mission_seed) * np.float32(
        dark_temp_scale(-14.0, t_ccd) * INTEG
    )
    sigma = np.sqrt(np.maximum(electrons, 0.0) + np.float32(READ_NOISE**2))
    img = electrons + sigma * rng.standard_normal(electrons.shape, dtype=np.float32)
    # Cosmic rays: a hit pixel and, for a third of the events, a neighbour with a share.
    n_cr = int(rng.poisson(CR_RATE * INTEG))
    rows = rng.integers(0, 1024, n_cr)
    cols = rng.integers(0, 1024, n_cr)
    dep = (CR_MEDIAN_E * rng.lognormal(0.0, 0.8, n_cr)).astype(np.float32)
    np.add.at(img, (rows, cols), dep)
    two = rng.random(n_cr) < 1.0 / 3.0
    np.add.at(img, (rows[two], np.minimum(cols[two] + 1, 1023)), 0.3 * dep[two])
    # Whole electrons (the CCD counts them), then e-/s.
    return (np.rint(img) / np.float32(INTEG)).astype(np.float32)


def _pointing_radec(plan: DarkCalPlan) -> tuple[float, float]:
    """ICRS (ra, dec) of the calibration's ecliptic pointing (true ecliptic of date)."""
    import astropy.units as u
    from astropy.coordinates import ICRS, GeocentricTrueEcliptic, SkyCoord

    with conversion_scope():
        t = to_time(plan.tstart)
        frame = GeocentricTrueEcliptic(equinox=t, obstime=t)
        icrs = SkyCoord(lon=plan.el * u.deg, lat=plan.eb * u.deg, frame=frame).transform_to(ICRS())
    return float(icrs.ra.deg), float(icrs.dec.deg)


def replica_bytes(plan: DarkCalPlan, replica: int, mission: Mission | None = None) -> bytes:
    """The gzipped FITS file of one replica (same plan -> same bytes)."""
    t0, t1 = plan.replicas[replica - 1]
    ra, dec = _pointing_radec(plan)
    hdu = fits.PrimaryHDU(replica_image(plan, replica, mission).astype(">f4"))
    h = hdu.header
    h["CONTENT"] = ("ACADARK", "ACA dark-current calibration replica")
    h["DARKID"] = (plan.dark_id, "calibration id YYYYDOY (start day)")
    h["REPLICA"] = (int(replica), "replica number")
    h["NREPLICA"] = (len(plan.replicas), "replicas in the calibration")
    h["TSTART"] = (t0, "replica start (CXC s)")
    h["TSTOP"] = (t1, "replica stop (CXC s)")
    h["DATE-OBS"] = (to_date(t0), "replica start (UTC)")
    h["DATE-END"] = (to_date(t1), "replica stop (UTC)")
    h["INTEG"] = (INTEG, "[s] integration time")
    h["RA_PNT"] = (ra, "[deg] pointing RA")
    h["DEC_PNT"] = (dec, "[deg] pointing Dec")
    h["BUNIT"] = ("e-/s", "dark current")
    h["ORIGIN"] = (SIM_ORIGIN, "simulated Chandra, not flight data")
    h["CREATOR"] = ("mica.sim.aca_dark", "mica.sim writer")
    h[SIM_KEYWORD] = (True, SIM_COMMENT)
    # A fixed checksum comment keeps the bytes a pure function of the plan.
    hdu.add_checksum(when=f"data of {to_date(t1)[:17]}")
    buf = io.BytesIO()
    hdu.writeto(buf)
    return gzip.compress(buf.getvalue(), compresslevel=GZIP_LEVEL, mtime=0)


def write_replicas(
    plan: DarkCalPlan, dest: str | os.PathLike, mission: Mission | None = None
) -> list[Path]:
    """Write every replica file of ``plan`` into ``dest``; returns their paths."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for n in range(1, len(plan.replicas) + 1):
        path = dest / replica_filename(plan.dark_id, n)
        out.append(write_bytes_atomic(path, replica_bytes(plan, n, mission), durable=False))
    return out


def simulate_replicas(
    start: CxoTimeLike, stop: CxoTimeLike, dest: str | os.PathLike, mission: Mission | None = None
) -> list[Path]:
    """Replica files of the calibrations whose day starts in [start, stop), as a dir: source
    selects them by name (the sim source's hook)."""
    out = []
    for plan in dark_cals_between(start, stop, mission, by_day=True):
        out.extend(write_replicas(plan, dest, mission))
    return out


def write_hdr3_l0_files(
    plans: list[DarkCalPlan], dest: str | os.PathLike, pad: float = 660.0
) -> list[Path]:
    """The simulated L0 files of slots 6-7 in 8x8 within ``pad`` s of each calibration: the
    header-3 ``ccd_temp`` its temperatures need, without the other slots' data."""
    from mica.sim.aca_l0 import plan_l0_files, write_l0_file

    out: dict[str, Path] = {}
    for plan in plans:
        for p in plan_l0_files(plan.tstart - pad, plan.tstop + pad):
            if p.slot in (6, 7) and p.imgsize == 8 and p.filename not in out:
                out[p.filename] = write_l0_file(p, dest)
    return sorted(out.values())
