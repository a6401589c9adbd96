"""The numerics of a dark calibration: replicas checked, combined, temperatures, properties.

1. Replicas: each file checked whole (gzip, FITS, CHECKSUM/DATASUM: `open_checked`) and for
   its structure (`DarkReplicaProduct.describe`); the set must be replicas 1..NREPLICA of one
   calibration (`load_replicas`). Anything wrong refuses the calibration
   (`CalibrationRefused`, naming it and the replica/problem).
2. Map (`combine_replicas`): per pixel, the median of the replicas; samples above it by more
   than ``CR_NSIGMA`` times the pixel's noise (read-noise floor measured from the replicas'
   scatter, plus the shot noise of the median dark current) are cosmic-ray hits and
   dropped; the map is the mean of the remaining samples (a median alone is ~25 % noisier).
3. CCD temperature per replica (`replica_ccd_temps`): before
   2000:001 the original's guess, -10 C (``GUESS``); else the mean header-3 ``ccd_temp``
   within 600 s before and after the replica (it exists around but not during a replica) if
   more than 4 samples (``HDR3``); else a quadratic fit at the replica midpoint to L0
   ``TEMPCCD`` of any slot within 20000 s, given more than 100 samples with some on each side
   (``AACCCDPT``, the on-board sensor that MSID reports); else the calibration is refused,
   naming the replica and the L0 range to update first. ``ccd_temp`` = mean of the replicas.
4. Properties (`build_props`): the classic schema (keys sorted, indent 4) before
   ``ACDC_START``, the ACDC schema from then on. Replica records hold the replica's
   own start/stop (the original copied the event's into each).
5. ``image.fits`` (`image_bytes`): uncompressed big-endian float32, CHECKSUM/DATASUM.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from mica.archive.aca_dark.product import DARK, DIGESTS_CARD, GUESS_BEFORE, HDR3_PAD
from mica.engine.digests import FOLDER_DIGESTS
from mica.engine.fitscheck import open_checked
from mica.engine.index import archive_problem
from mica.engine.product import RejectedFile
from mica.engine.provenance import REAL, SIM_KEYWORD, SIMULATED, check_file
from mica.errors import CalibrationRefused
from mica.time import conversion_scope, to_date, to_secs, to_time

from .dark_cal import dark_id_to_date

ACDC_START = "2019:120:00:00:00.000"  # calibrations from here on get ACDC-schema properties
GUESS_T_CCD = -10.0
HDR3_MIN_SAMPLES = 5  # "more than 4"
AACCCDPT_HALF = 20000.0  # s either side of the replica midpoint
AACCCDPT_MIN_SAMPLES = 101  # "more than 100"
CR_NSIGMA = 6.0


# ---------------------------------------------------------------------------------------
# Combination and temperatures
def combine_replicas(
    images: np.ndarray, integ: float, nsigma: float = CR_NSIGMA
) -> tuple[np.ndarray, np.ndarray]:
    """(map, cosmic-ray samples rejected per replica) from an (N, 1024, 1024) stack (e-/s).

    Median, then the mean of the samples not above it by more than ``nsigma`` times the
    pixel noise ``sqrt(s0**2 + max(median, 0) / integ)``; ``s0`` is the robust scatter of
    all samples about their pixel medians (the read-noise floor).
    """
    stack = np.asarray(images, dtype=np.float32)
    n = len(stack)
    if n == 1:
        return stack[0].copy(), np.zeros(1, dtype=np.int64)
    med = np.median(stack, axis=0)
    resid = stack - med
    sample = np.abs(resid.reshape(-1)[::7])
    # MAD about the median of N samples underestimates sigma by ~sqrt((N-1)/N).
    s0 = 1.4826 * float(np.median(sample)) * np.sqrt(n / (n - 1))
    var = np.maximum(med, 0.0) / np.float32(integ)
    var += np.float32(s0**2)
    hit = resid > np.float32(nsigma) * np.sqrt(var)
    keep = ~hit
    total = np.where(keep, stack, 0.0).sum(axis=0, dtype=np.float32)
    counts = keep.sum(axis=0, dtype=np.float32)
    # counts >= 1 always: the median sample is never above the median.
    out = (total / counts).astype(np.float32)
    return out, hit.reshape(n, -1).sum(axis=1)


def replica_ccd_temps(
    dark_id: str, replicas: list[dict[str, Any]], l0_root: str | Path
) -> tuple[list[tuple[float, str]], float | None]:
    """Per replica (ccd_temp degC, source), and the mean header-3 ccd_temp of the
    calibration (None without header-3 data). Raises CalibrationRefused naming the replica
    whose temperature cannot be found."""
    from mica.archive import aca_hdr3, aca_l0

    t_guess = to_secs(GUESS_BEFORE)
    t0 = min(r["tstart"] for r in replicas) - HDR3_PAD
    t1 = max(r["tstop"] for r in replicas) + HDR3_PAD
    times = vals = np.zeros(0)
    # No L0 archive yet reads as no samples: the refusal below names the L0 range to update.
    have_l0 = archive_problem(Path(l0_root)) is None
    if t1 > t_guess and have_l0:
        msid = aca_hdr3.MSID("ccd_temp_fine", t0, t1, data_root=l0_root, filter_bad=True)
        times, vals = np.asarray(msid.times), np.asarray(msid.vals, dtype=np.float64)
    out = []
    # L0 TEMPCCD over the whole calibration, read when first needed
    tempccd = None if have_l0 else (np.zeros(0), np.zeros(0))
    for rep in replicas:
        if rep["tstart"] < t_guess:
            out.append((GUESS_T_CCD, "GUESS"))
            continue
        sel = (times >= rep["tstart"] - HDR3_PAD) & (times <= rep["tstop"] + HDR3_PAD)
        if np.count_nonzero(sel) >= HDR3_MIN_SAMPLES:
            out.append((float(np.mean(vals[sel])), "HDR3"))
            continue
        mid = 0.5 * (rep["tstart"] + rep["tstop"])
        if tempccd is None:
            tempccd = _tempccd_samples(aca_l0, t0 - AACCCDPT_HALF, t1 + AACCCDPT_HALF, l0_root)
        near = np.abs(tempccd[0] - mid) <= AACCCDPT_HALF
        t_fit, temp = tempccd[0][near], tempccd[1][near]
        if (
            len(t_fit) >= AACCCDPT_MIN_SAMPLES
            and np.any(t_fit < rep["tstart"])
            and np.any(t_fit > rep["tstop"])
        ):
            coef = np.polyfit(t_fit - mid, temp, 2)
            out.append((float(np.polyval(coef, 0.0)), "AACCCDPT"))
            continue
        raise CalibrationRefused(
            dark_id,
            f"replica {rep['replica']} ({to_date(rep['tstart'])[:17]}): cannot determine the "
            f"CCD temperature: no header-3 ccd_temp within {HDR3_PAD:.0f} s of it and too "
            f"little L0 TEMPCCD within {AACCCDPT_HALF:.0f} s in the L0 archive {l0_root}; "
            f"update aca-l0 over {to_date(t0)[:17]} .. {to_date(t1)[:17]} first",
        )
    mean_hdr3 = float(np.mean(vals)) if len(vals) else None
    return out, mean_hdr3


def _tempccd_samples(
    aca_l0: Any, start: float, stop: float, l0_root: str | Path
) -> tuple[np.ndarray, np.ndarray]:
    """(times, degC) of the good TEMPCCD rows of every slot in [start, stop]."""
    ts, vs = [], []
    for slot in range(8):
        rows = aca_l0.get_slot_data(
            start,
            stop,
            slot,
            imgsize=[6, 8],
            columns=["TIME", "QUALITY", "TEMPCCD"],
            data_root=l0_root,
        )
        ok = ~np.ma.getmaskarray(rows["TEMPCCD"]) & (np.ma.getdata(rows["QUALITY"]) == 0)
        ts.append(np.asarray(rows["TIME"].data, dtype=np.float64)[ok])
        vs.append(np.asarray(rows["TEMPCCD"].data, dtype=np.float64)[ok] - 273.15)
    return np.concatenate(ts), np.concatenate(vs)


# ---------------------------------------------------------------------------------------
# Properties
def zodiacal_props(ra: float, dec: float, t: float) -> dict[str, float]:
    """Pointing properties: ecliptic longitude/latitude (true ecliptic of date), solar
    elongation, longitude from the Sun, and a zodiacal-light brightness estimate."""
    import astropy.units as u
    from astropy.coordinates import GeocentricTrueEcliptic, SkyCoord, get_sun

    with conversion_scope():
        time = to_time(t)
        frame = GeocentricTrueEcliptic(equinox=time, obstime=time)
        point = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="icrs").transform_to(frame)
        sun = get_sun(time).transform_to(frame)
    el, eb = float(point.lon.deg), float(point.lat.deg)
    sun_el = float(point.separation(sun).deg)
    l_l0 = float((el - sun.lon.deg) % 360.0)
    return {
        "ra": round(ra, 4),
        "dec": round(dec, 4),
        "el": round(el, 2),
        "eb": round(eb, 2),
        "sun_el": round(sun_el, 2),
        "l_l0": round(l_l0, 2),
        "zodib": round(zodiacal_brightness(eb, sun_el), 1),
    }


def zodiacal_brightness(eb: float, sun_el: float) -> float:
    """Rough zodiacal-light surface brightness (S10 units): brightest in the ecliptic and
    towards the Sun (an estimate with the shape of the Leinert et al. 1998 table, not a fit)."""
    return 60.0 + 200.0 * np.exp(-abs(eb) / 15.0) * (90.0 / max(sun_el, 30.0)) ** 1.3


def build_props(
    dark_id: str,
    reps: list[dict[str, Any]],
    temps: list[tuple[float, str]],
    n_cosmic: np.ndarray,
    mean_hdr3: float | None,
) -> tuple[dict[str, Any], str]:
    """(properties, JSON text) in the classic or the ACDC schema by the calibration's start."""
    t_first = min(r["tstart"] for r in reps)
    t_last = max(r["tstop"] for r in reps)
    records = [
        {
            "count": r["replica"],
            "ccd_temp": round(temp, 4),
            "ccd_temp_source": source,
            "start": to_date(r["tstart"]),
            "stop": to_date(r["tstop"]),
            "downlink": True,  # the replica image itself came down
            "n_cosmic": int(nc),
        }
        for r, (temp, source), nc in zip(reps, temps, n_cosmic, strict=True)
    ]
    ccd_temp = round(float(np.mean([rec["ccd_temp"] for rec in records])), 4)
    if t_first < to_secs(ACDC_START):
        props = {
            "id": dark_id,
            "start": to_date(t_first),
            "stop": to_date(t_last),
            "dur": round(t_last - t_first, 3),
            "ccd_temp": ccd_temp,
            "replicas": records,
            "date": dark_id_to_date(dark_id),
            **zodiacal_props(reps[0]["ra"], reps[0]["dec"], t_first),
        }
        text = json.dumps(props, sort_keys=True, indent=4, separators=(",", ": "))
    else:
        t_ccd = mean_hdr3 if mean_hdr3 is not None else ccd_temp
        props = {
            "date": dark_id_to_date(dark_id),
            "t_ccd": round(t_ccd, 3),
            "n_ccd_img": len(reps),
            "ccd_temp": ccd_temp,
            "datestart": to_date(t_first),
            "datestop": to_date(t_last),
            "filename": f"acadark{dark_id}_r[1-{len(reps)}].fits.gz",
            "replicas": records,
        }
        text = json.dumps(props, indent=4, separators=(",", ": "))
    return props, text + "\n"


def image_bytes(dark_id: str, image: np.ndarray, n_replicas: int, ccd_temp: float) -> bytes:
    """``image.fits``: the map in the primary HDU, big-endian float32, with checksums."""
    hdu = fits.PrimaryHDU(np.asarray(image, dtype=">f4"))
    h = hdu.header
    h["CONTENT"] = ("ACADARK", "ACA dark-current calibration map")
    h["DARKID"] = (dark_id, "calibration id YYYYDOY")
    h["NREPLICA"] = (n_replicas, "replicas combined")
    h["COMBINE"] = ("CLIPMEAN", f"mean after {CR_NSIGMA:g}-sigma cosmic-ray rejection")
    h["CCDTEMP"] = (round(ccd_temp, 4), "[degC] mean CCD temperature of the replicas")
    h["BUNIT"] = ("e-/s", "dark current")
    h["ORIGIN"] = ("mica", "mica update aca-dark")
    h[DIGESTS_CARD] = (FOLDER_DIGESTS, "digests of the folder's files, written with it")
    hdu.add_checksum(when=f"calibration {dark_id}")  # fixed comment: same input, same bytes
    buf = io.BytesIO()
    hdu.writeto(buf)
    return buf.getvalue()


def load_replicas(
    dark_id: str, paths: list[Path], archive: str | None = None, root: Path | None = None
) -> list[dict[str, Any]]:
    """The checked replicas of one calibration, in order; refuse incomplete or bad sets, and
    replicas of another kind (simulated or real) than the ``archive`` kind of ``root``."""
    reps = []
    for path in sorted(paths):
        name = DARK.archive_name(path.name)
        try:
            hdus, _ = open_checked(path, name, "PRIMARY")
            with hdus:
                row = DARK.describe(name, hdus)
                row["kind"] = SIMULATED if hdus[0].header.get(SIM_KEYWORD) is True else REAL
            check_file(name, row["kind"], archive, Path(root or "."))
            reps.append(row)
        except RejectedFile as err:
            raise CalibrationRefused(dark_id, f"replica file {err}") from None
    reps.sort(key=lambda r: r["replica"])
    counts = {r["nreplica"] for r in reps}
    if len(counts) != 1:
        raise CalibrationRefused(dark_id, f"replicas disagree on NREPLICA ({sorted(counts)})")
    n = counts.pop()
    have = [r["replica"] for r in reps]
    missing = sorted(set(range(1, n + 1)) - set(have))
    if missing:
        raise CalibrationRefused(
            dark_id,
            f"replica {', '.join(map(str, missing))} of {n} missing "
            f"(have {', '.join(map(str, have))})",
        )
    if len(have) != len(set(have)):
        raise CalibrationRefused(dark_id, f"duplicate replica numbers {have}")
    for a, b in zip(reps[:-1], reps[1:]):
        if b["tstart"] < a["tstop"]:
            raise CalibrationRefused(
                dark_id, f"replica {b['replica']} starts before replica {a['replica']} ends"
            )
    return reps
