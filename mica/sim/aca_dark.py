"""Simulated ACA dark-current calibrations: true maps and replica files.

Schedule: the mission's (`Mission.dark_cals`, built by `mica.sim.dark_schedule`), read here
through `dark_cal_schedule`, `dark_cals_between` and `dark_cal_plan`. The L0 simulator leaves
the replicas empty and runs slots 6-7 as 8x8 within ``DARK_CAL_8X8_PAD`` of them
(`Mission.dark_cal_windows`), so header-3 ``ccd_temp`` exists just before and after each
replica, never during.

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
from pathlib import Path

import numpy as np
from astropy.io import fits

from mica.archive.aca_dark import dark_model as dm
from mica.archive.aca_dark.temp_scale import dark_temp_scale
from mica.engine.atomic import write_bytes_atomic
from mica.engine.provenance import SIM_COMMENT, SIM_KEYWORD, SIM_ORIGIN
from mica.sim.dark_schedule import DarkCalPlan
from mica.sim.mission import Mission, default_mission, get_mission, register_mission
from mica.time import CxoTimeLike, conversion_scope, frac_year, to_date, to_secs, to_time

__all__ = [
    "INTEG",
    "dark_cal_schedule",
    "dark_cals_between",
    "dark_cal_plan",
    "replica_filename",
    "true_dark_map",
    "replica_image",
    "write_replicas",
    "early_amplitude_factor",
]

INTEG = 8.0  # s of dark integration per replica
# Pixels outside the model histogram (below its 2 e-/s lower edge at -14 C): lognormal.
COOL_MEDIAN = 1.0
COOL_LOG_SIGMA = 0.6
READ_NOISE = 20.0  # e- per pixel and readout
CR_RATE = 400.0  # cosmic-ray events per second over the CCD (~3200 per replica)
CR_MEDIAN_E = 1500.0  # e- deposited by a typical event
GZIP_LEVEL = 1  # as the L0 simulator: fast, and whole-electron values still halve the size

# Observed trend before the model's validity: ~0.023 of pixels above
# 100 e-/s at -15 C in 2000, rising to meet the model in 2007.
_EARLY_ANCHOR = (2000.0, 0.023)
_MODEL_VALID_FROM = 2007.0


def _mission(mission: Mission | None) -> Mission:
    return register_mission(mission) if mission is not None else default_mission()


def dark_cal_schedule(mission: Mission | None = None) -> tuple[DarkCalPlan, ...]:
    """Every simulated calibration of the mission (default: the default mission), in time
    order."""
    return _mission(mission).dark_cals


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
