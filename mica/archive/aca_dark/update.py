"""`mica update aca-dark`: build dark-current calibrations from their replicas.

For each calibration whose first replica starts in [start, stop]:

1. The replica files (``acadark<YYYYDOY>_r<n>.fits.gz``, format in `mica.sim.aca_dark`) come
   from a source (``sim``, ``dir:PATH``; `mica.sources`) into a staging folder; each is
   checked whole (gzip, FITS, CHECKSUM/DATASUM: `open_checked`) and for its structure
   (`DarkReplicaProduct.describe`). The set must be replicas 1..NREPLICA of one calibration.
   Anything wrong refuses the calibration with a message naming it and the replica/problem.
2. Map: per pixel, the median of the replicas; samples above it by more than
   ``CR_NSIGMA`` times the pixel's noise (read-noise floor measured from the replicas'
   scatter, plus the shot noise of the median dark current) are cosmic-ray hits and
   dropped; the map is the mean of the remaining samples (a median alone is ~25 % noisier).
3. CCD temperature per replica (spec aca_dark.md section 6): before 2000:001 the
   original's guess, -10 C (``GUESS``); else the mean header-3 ``ccd_temp`` within 600 s
   before and after the replica (it exists around but not during a replica) if more than 4
   samples (``HDR3``); else a quadratic fit at the replica midpoint to L0 ``TEMPCCD`` of any
   slot within 20000 s, given more than 100 samples with some on each side (``AACCCDPT``,
   the on-board sensor that MSID reports); else the calibration is refused, naming the
   replica and the L0 range to update first. ``ccd_temp`` = mean of the replica values.
4. Properties: the classic schema (keys sorted, indent 4) before ``ACDC_START``, the ACDC
   schema from then on (spec 3). Replica records hold the replica's own start/stop (the
   original copied the event's into each: spec 8.2).
5. Written atomically: ``image.fits`` (uncompressed big-endian float32, CHECKSUM/DATASUM) and
   ``properties.json`` go into ``.<id>.tmp-<pid>`` beside the final folder, are fsynced, and the
   folder is renamed to ``<id>``. Readers list only ``YYYYDOY`` names, so a crash leaves
   nothing half-visible; the next update (or `check_dark_archive` with ``repair``) removes
   the leftovers. A whole calibration already archived is skipped: re-runs change nothing.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
from astropy.io import fits

from mica.config import archive_root
from mica.engine.fitscheck import open_checked
from mica.engine.fsync import fsync_dir
from mica.engine.lock import UpdateLock
from mica.engine.product import FileProduct, RejectedFile
from mica.engine.provenance import resolve_source
from mica.sources import Source
from mica.time import CxoTimeLike, day_end, day_start, to_date, to_secs, to_time

from .dark_cal import (
    DARK_ID_RE,
    IMAGE_NAME,
    IMAGE_SHAPE,
    PROPS_NAME,
    _header_length,
    dark_cals_root,
    dark_id_to_date,
    get_dark_cal_dirs,
)

__all__ = [
    "ACDC_START",
    "CalibrationRefused",
    "DARK",
    "DarkReplicaProduct",
    "DarkUpdateReport",
    "check_dark_archive",
    "combine_replicas",
    "register_cli",
    "replica_ccd_temps",
    "update_aca_dark",
]

ACDC_START = "2019:120:00:00:00.000"  # calibrations from here on get ACDC-schema properties
GUESS_BEFORE = "2000:001:00:00:00.000"  # the original guessed -10 C before this
GUESS_T_CCD = -10.0
HDR3_PAD = 600.0  # s before and after a replica searched for header-3 ccd_temp
HDR3_MIN_SAMPLES = 5  # "more than 4"
AACCCDPT_HALF = 20000.0  # s either side of the replica midpoint
AACCCDPT_MIN_SAMPLES = 101  # "more than 100"
CR_NSIGMA = 6.0
STAGING = ".staging"
REJECTED = "rejected"
_LEFTOVER_RE = re.compile(r"^\.[12]\d{6}\.(tmp|old)-\d+$")
_DAY = 86400.0

Progress = Callable[[int, int, str], None]


class CalibrationRefused(ValueError):
    """A calibration that cannot be built; the message names it and the problem."""

    def __init__(self, dark_id: str, problem: str):
        super().__init__(f"dark calibration {dark_id} refused: {problem}")
        self.dark_id = dark_id
        self.problem = problem


# ---------------------------------------------------------------------------------------
# The replica files as an engine product (so sources deliver them)
@functools.lru_cache(maxsize=4096)
def _id_day_secs(dark_id: str) -> float:
    return float(to_secs(dark_id_to_date(dark_id)))


class DarkReplicaProduct(FileProduct):
    """Dark-calibration replica files, delivered by sources; not indexed (the archive holds
    the combined calibrations). A file's name time is 00:00 of its calibration's day."""

    name = "aca-dark"
    subdir = "aca_dark"
    extname = "PRIMARY"
    filename_re = re.compile(r"acadark([12]\d{6})_r(\d{1,2})\.fits\.gz")
    index_columns = ()
    source_lookback = 0.0  # the name holds the calibration's day: nothing starts earlier

    def name_time(self, name: str) -> float:
        return _id_day_secs(self.filename_re.fullmatch(self.archive_name(name)).group(1))

    def folder(self, row: dict[str, Any]) -> str:
        return row["dark_id"]

    def describe(self, name: str, hdus: fits.HDUList) -> dict[str, Any]:
        """Check one replica's structure; the row carries its image (native float32)."""
        match = self.filename_re.fullmatch(name)
        if match is None:
            raise RejectedFile(name, f"name does not match {self.filename_re.pattern}")
        hdu = hdus[0]
        h = hdu.header
        if h.get("BITPIX") != -32 or hdu.data is None or hdu.data.shape != IMAGE_SHAPE:
            shape = None if hdu.data is None else hdu.data.shape
            raise RejectedFile(
                name,
                f"primary HDU is not a 1024x1024 float32 image (BITPIX "
                f"{h.get('BITPIX')}, shape {shape})",
            )
        try:
            row = {
                "filename": name,
                "dark_id": str(h["DARKID"]).strip(),
                "replica": int(h["REPLICA"]),
                "nreplica": int(h["NREPLICA"]),
                "tstart": float(h["TSTART"]),
                "tstop": float(h["TSTOP"]),
                "integ": float(h["INTEG"]),
                "ra": float(h["RA_PNT"]),
                "dec": float(h["DEC_PNT"]),
            }
        except (KeyError, ValueError, TypeError) as err:
            raise RejectedFile(name, f"bad or missing header keyword ({err})") from err
        if row["dark_id"] != match.group(1) or row["replica"] != int(match.group(2)):
            raise RejectedFile(
                name,
                f"header says calibration {row['dark_id']} replica {row['replica']}, "
                "not what the name says",
            )
        if not 1 <= row["replica"] <= row["nreplica"]:
            raise RejectedFile(name, f"REPLICA {row['replica']} outside 1..{row['nreplica']}")
        if not row["tstop"] > row["tstart"] or not row["integ"] > 0:
            raise RejectedFile(name, "TSTOP not after TSTART or INTEG not positive")
        image = np.asarray(hdu.data, dtype=np.float32)  # native byte order
        bad = int(np.count_nonzero(~np.isfinite(image)))
        if bad:
            raise RejectedFile(name, f"{bad} non-finite pixel values")
        row["image"] = image
        return row


DARK = DarkReplicaProduct()


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
    if t1 > t_guess:
        msid = aca_hdr3.MSID("ccd_temp", t0, t1, data_root=l0_root, filter_bad=True)
        times, vals = np.asarray(msid.times), np.asarray(msid.vals, dtype=np.float64)
    out = []
    tempccd = None  # L0 TEMPCCD over the whole calibration, read when first needed
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
    hdu.add_checksum(when=f"calibration {dark_id}")  # fixed comment: same input, same bytes
    buf = io.BytesIO()
    hdu.writeto(buf)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------
# Writing
def _crash_point(name: str) -> None:
    """Crash-test hook: ``MICA_DARK_CRASH_AT=<name>`` kills the process here (kill -9)."""
    if os.environ.get("MICA_DARK_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _write_durable(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def install_calibration(root: Path, dark_id: str, image: bytes, props_text: str) -> Path:
    """Write a calibration folder beside its final name, then rename it into place."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{dark_id}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        _write_durable(tmp / IMAGE_NAME, image)
        _crash_point("image-written")
        _write_durable(tmp / PROPS_NAME, props_text.encode())
        fsync_dir(tmp)
        _crash_point("tmp-complete")
        final = root / dark_id
        old = None
        if final.exists():  # a broken calibration being rebuilt: keep it until replaced
            old = root / f".{dark_id}.old-{os.getpid()}"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(final, old)
        os.rename(tmp, final)
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def calibration_problem(folder: Path, verify_data: bool = False) -> str | None:
    """Why an archived calibration folder is not whole (None when it is)."""
    dark_id = folder.name
    image, props_path = folder / IMAGE_NAME, folder / PROPS_NAME
    if not folder.is_dir():
        return "not a folder"
    for path in (image, props_path):
        if not path.is_file():
            return f"no {path.name}"
    try:
        props = json.loads(props_path.read_text())
    except (OSError, ValueError) as err:
        return f"{PROPS_NAME} unreadable ({err})"
    if not isinstance(props, dict):
        return f"{PROPS_NAME} does not hold a JSON object"
    if not isinstance(props.get("ccd_temp"), (int, float)):
        return f"{PROPS_NAME} has no numeric ccd_temp"
    datestart = str(props.get("datestart", ""))
    named = props.get("id") or datestart[:4] + datestart[5:8]
    if named and named != dark_id:
        return f"{PROPS_NAME} describes calibration {named}"
    try:
        with open(image, "rb") as fh:
            header = _header_length(fh, image)
    except OSError as err:
        return str(err)
    size = header + -(-4 * IMAGE_SHAPE[0] * IMAGE_SHAPE[1] // 2880) * 2880
    if image.stat().st_size != size:
        return f"{IMAGE_NAME} is {image.stat().st_size} bytes, expected {size}"
    if verify_data:
        try:
            hdus, _ = open_checked(image, f"{dark_id}/{IMAGE_NAME}", "PRIMARY")
            hdus.close()
        except RejectedFile as err:
            return err.problem
    return None


def _clean_leftovers(root: Path) -> list[str]:
    """Remove what an interrupted update left (temporary folders, staging)."""
    done = []
    if not root.is_dir():
        return done
    for entry in sorted(root.iterdir()):
        if _LEFTOVER_RE.match(entry.name) or entry.name == STAGING:
            shutil.rmtree(entry, ignore_errors=True)
            done.append(f"removed {entry.name} left by an interrupted update")
    return done


# ---------------------------------------------------------------------------------------
# The update
@dataclass
class DarkUpdateReport:
    """What an update did, calibration by calibration."""

    archived: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)
    refused: list[CalibrationRefused] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{len(self.archived)} dark calibrations archived, {len(self.unchanged)} already "
            f"archived, {len(self.refused)} refused"
        )
        lines = [text]
        lines += [f"  rebuilt broken calibration {i}" for i in self.rebuilt]
        lines += [f"  {err}" for err in self.refused]
        lines += [f"  {c}" for c in self.cleaned]
        return "\n".join(lines)


def default_l0_root(data_root: str | Path | None = None) -> Path:
    """The L0 archive beside the dark archive (``<archive>/aca0``)."""
    if data_root is not None:
        return Path(data_root).expanduser().parent / "aca0"
    return archive_root() / "aca0"


def update_aca_dark(
    start: CxoTimeLike = None,
    stop: CxoTimeLike = None,
    source: str | Source | None = None,
    data_root: str | Path | None = None,
    l0_root: str | Path | None = None,
    days_at_once: float = 90.0,
    progress: Progress | None = None,
    wait: float = 0.0,
) -> DarkUpdateReport:
    """Archive the calibrations whose first replica starts in [start, stop].

    ``start`` defaults to the day of the last archived calibration, ``stop`` to now;
    ``data_root`` is the ``aca_dark`` folder, ``l0_root`` the L0 archive used for the CCD
    temperatures (default: ``aca0`` beside ``data_root``). Refused calibrations are in the
    report; the others are archived regardless.
    """
    src = resolve_source(source, DARK, dark_cals_root(data_root))
    root = dark_cals_root(data_root)
    l0 = Path(l0_root).expanduser() if l0_root is not None else default_l0_root(data_root)
    report = DarkUpdateReport()
    with UpdateLock(root, wait=wait):
        report.cleaned += _clean_leftovers(root)
        if start is None:
            ids = list(get_dark_cal_dirs(data_root=root))
            if not ids:
                raise ValueError(f"the aca-dark archive at {root} is empty: give a start time")
            start = dark_id_to_date(ids[-1])
        tstart, tstop = to_secs(start), to_secs(stop)
        if tstop <= tstart:
            raise ValueError(f"stop {to_date(tstop)} is not after start {to_date(tstart)}")
        t0s = np.arange(day_start(tstart), day_end(tstop), days_at_once * _DAY)
        staging = root / STAGING
        for i, c0 in enumerate(t0s):
            c1 = min(c0 + days_at_once * _DAY, day_end(tstop))
            if progress:
                progress(i, len(t0s), f"{to_date(c0)[:8]} .. {to_date(c1)[:8]}")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            files = src.fetch(DARK, c0, c1, staging)
            for dark_id, paths in sorted(_group(files).items()):
                if not c0 <= _id_day_secs(dark_id) < c1:
                    continue  # delivered extra: its own chunk handles it
                _update_one(dark_id, paths, root, l0, tstart, tstop, report)
            shutil.rmtree(staging, ignore_errors=True)
        if progress:
            progress(len(t0s), len(t0s), "done")
    return report


def _group(files: list[Path]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for path in files:
        match = DARK.filename_re.fullmatch(DARK.archive_name(path.name))
        if match:
            out.setdefault(match.group(1), []).append(path)
    return out


def _update_one(
    dark_id: str,
    paths: list[Path],
    root: Path,
    l0_root: Path,
    tstart: float,
    tstop: float,
    report: DarkUpdateReport,
) -> None:
    folder = root / dark_id
    broken = folder.exists() and calibration_problem(folder) is not None
    if folder.exists() and not broken:
        report.unchanged.append(dark_id)
        return
    try:
        reps = _load_replicas(dark_id, paths)
        t_first = reps[0]["tstart"]
        if not tstart <= t_first <= tstop:
            return  # starts outside the requested range (same day, earlier or later)
        _crash_point("replicas-read")
        temps, mean_hdr3 = replica_ccd_temps(dark_id, reps, l0_root)
        integ = float(np.mean([r["integ"] for r in reps]))
        image, n_cosmic = combine_replicas(np.stack([r.pop("image") for r in reps]), integ)
        props, text = build_props(dark_id, reps, temps, n_cosmic, mean_hdr3)
        data = image_bytes(dark_id, image, len(reps), props["ccd_temp"])
    except CalibrationRefused as err:
        report.refused.append(err)
        return
    install_calibration(root, dark_id, data, text)
    (report.rebuilt if broken else report.archived).append(dark_id)


def _load_replicas(dark_id: str, paths: list[Path]) -> list[dict[str, Any]]:
    """The checked replicas of one calibration, in order; refuse incomplete or bad sets."""
    reps = []
    for path in sorted(paths):
        name = DARK.archive_name(path.name)
        try:
            hdus, _ = open_checked(path, name, "PRIMARY")
            with hdus:
                reps.append(DARK.describe(name, hdus))
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


# ---------------------------------------------------------------------------------------
# Check
def check_dark_archive(
    data_root: str | Path | None = None, repair: bool = False
) -> tuple[list[str], list[str]]:
    """(problems, repairs made) of the dark archive: leftovers of interrupted updates and
    calibration folders that are not whole (files, JSON, image size, checksums). ``repair``
    removes leftovers and moves broken calibrations to ``rejected/`` so an update rebuilds
    them."""
    root = dark_cals_root(data_root)
    problems: list[str] = []
    repairs: list[str] = []
    if not root.is_dir():
        return problems, repairs
    with UpdateLock(root):
        for entry in sorted(root.iterdir()):
            if _LEFTOVER_RE.match(entry.name) or entry.name == STAGING:
                problems.append(f"interrupted update left {entry.name}")
                if repair:
                    shutil.rmtree(entry, ignore_errors=True)
                    repairs.append(f"removed {entry.name}")
            elif DARK_ID_RE.match(entry.name):
                problem = calibration_problem(entry, verify_data=True)
                if problem is None:
                    continue
                problems.append(f"calibration {entry.name}: {problem}")
                if repair:
                    qdir = root / REJECTED
                    qdir.mkdir(exist_ok=True)
                    k = 1
                    while (qdir / f"{entry.name}-{k}").exists():
                        k += 1
                    os.rename(entry, qdir / f"{entry.name}-{k}")
                    (qdir / f"{entry.name}-{k}.reason").write_text(problem + "\n")
                    day = dark_id_to_date(entry.name)
                    next_day = to_date(to_secs(day) + _DAY)[:8]
                    repairs.append(
                        f"moved broken calibration {entry.name} to {REJECTED}/{entry.name}-{k} "
                        f"(`mica update aca-dark --start {day} --stop {next_day}` rebuilds it)"
                    )
    return problems, repairs


# ---------------------------------------------------------------------------------------
# Command line
def register_cli(update_group: click.Group) -> click.Command:
    """Add the ``aca-dark`` command to a click group (``mica update``)."""

    @update_group.command("aca-dark")
    @click.option("--start", default=None, help="Start (default: the last archived calibration).")
    @click.option("--stop", default=None, help="Stop time (default: now).")
    @click.option("--source", default=None, help="sim or dir:PATH (default: the recorded one).")
    @click.option(
        "--data-root",
        type=click.Path(file_okay=False),
        default=None,
        help="The aca_dark folder (default: <archive>/aca_dark).",
    )
    @click.option(
        "--l0-root",
        type=click.Path(file_okay=False),
        default=None,
        help="L0 archive for CCD temperatures (default: aca0 beside the aca_dark folder).",
    )
    @click.option("--wait", type=float, default=0.0, help="Seconds to wait for a running update.")
    @click.option("--quiet", is_flag=True, help="No progress bar.")
    def update_aca_dark_cmd(start, stop, source, data_root, l0_root, wait, quiet) -> None:
        """ACA dark-current calibrations into <archive>/aca_dark."""
        from mica.progress import run_update_command

        run_update_command(
            "update aca-dark",
            quiet,
            lambda bar: update_aca_dark(
                start, stop, source, data_root, l0_root, progress=bar, wait=wait
            ),
            failed=lambda report: bool(report.refused),
        )

    return update_aca_dark_cmd


@click.group()
def _main() -> None:
    """Stand-alone entry (``python -m mica.archive.aca_dark.update aca-dark ...``)."""


register_cli(_main)

if __name__ == "__main__":
    _main()
