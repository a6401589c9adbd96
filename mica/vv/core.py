"""Aspect solution V&V of one obsid revision: residuals of every guide star and fid light.

`Obi(obsparfile, obsdir)` finds the aspect intervals of the directory, reads their ASP L1
files, computes per slot the residuals (arcsec) between the centroids (ACACENT, alg 8) and the
positions the aspect solution predicts, combines the intervals, and reports
statistics (`Obi.info`: per-slot statistics, SIM drift and errors, plus ``disposition``).

Differences from the original: a non-overlapping asol file is skipped (the original failed
with TypeError); slots tracked but absent from GSPROPS/FIDPROPS are recorded in
``omitted_slots`` (there is no OCAT outside the CXC to mock them up); a missing or corrupt
input file is one `VVInputError` naming it; files are closed after reading.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from scipy.signal import medfilt

from mica import quaternion
from mica.config import archive_root
from mica.engine.fastfits import header_cards, parse_table
from mica.engine.fitscheck import read_bytes
from mica.engine.table_store import GenerationTable
from mica.errors import InconsistentAspectIntervals, VVInputError
from mica.vv.disposition import DYZ_BIG_LIM
from mica.vv.table import COMMAND, FOLDER, TABLE_NAME, VV_SPEC, table_rows

VV_VERSION = 4
R2A = 206264.81  # arcsec per radian
D2R = 0.017453293
ARCSEC_PER_MM = 20.0
ENC_FRACS = (68, 95)  # percentiles of dr for enc_rad1, enc_rad2
SLOT_KEYS = (
    "qual",
    "dy",
    "dz",
    "dr",
    "mag",
    "time",
    "yag",
    "zag",
    "ang_y_sm",
    "ang_y",
    "ang_z_sm",
    "ang_z",
)
SIM_KEYS = ("time", "medf_dy", "medf_dz", "d_dy", "d_dz")
_AIID_RE = re.compile(r"(pcad\w\d+[^_]*)_")
_LOG_RE = re.compile(r"\w+(\D\d+N\d{3})")


def _medfilt(x: np.ndarray, size: int) -> np.ndarray:
    """scipy's medfilt (zero-padded ends), quiet about arrays shorter than the kernel."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return medfilt(x, size)


def _one(folder: Path, aiid: str, suffix: str) -> Path:
    hits = sorted(folder.glob(f"{aiid}_{suffix}*"))
    if not hits:
        raise VVInputError(
            f"no {aiid}_{suffix} file in {folder}: the aspect interval is incomplete"
        )
    return hits[0]


_HEADER_BYTES = 64 * 2880  # the first read of a file for its header: a few headers' worth


def _file_start(path: Path, limit: int) -> bytes:
    """The first ``limit`` FITS bytes of a file (gunzipped) or all of a shorter one."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if gz else open(path, "rb") as f:
        return f.read(limit)


def read_header(path: Path, hdu: int = 1) -> dict[str, Any]:
    """Header keywords and values of one HDU, decompressing only the start of the file."""
    limit = _HEADER_BYTES
    try:
        while True:
            raw = _file_start(path, limit)
            cards = header_cards(raw, hdu)
            if cards is not None:
                return dict(cards)
            if len(raw) < limit:  # the whole file, and not one the fast reader parses
                with fits.open(io.BytesIO(raw), memmap=False) as hdus:
                    return _keywords(hdus[hdu].header)
            limit *= 8
    except Exception as err:  # noqa: BLE001  (any damage is reported naming the file)
        raise VVInputError(f"cannot read {path}: {err}") from err


def _keywords(header: fits.Header) -> dict[str, Any]:
    return {k: v for k, v in header.items() if k not in ("COMMENT", "HISTORY", "")}


def _native(values: np.ndarray) -> np.ndarray:
    return values.astype(values.dtype.newbyteorder("="))


def read_table(path: Path, hdu: int = 1) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Columns (lower-case names, native byte order) and header keywords of a FITS table.

    Plain binary tables (the ASP L1 products) are read straight into numpy from the file
    decompressed once (`mica.engine.fastfits`); anything else (scaled columns, variable
    arrays, logicals) through astropy. Strings come back stripped, as astropy gives them.
    """
    try:
        # gunzipped once (astropy's seeks in a gzip stream decompress it again from the start),
        # bounded by the sizes the headers announce
        raw = read_bytes(path, path.name)
        table = parse_table(raw, None, any_case=True) if hdu == 1 else None
        if table is not None:
            return {c.lower(): _native(table[c]) for c in table.names}, dict(table.header)
        with warnings.catch_warnings(), fits.open(io.BytesIO(raw), memmap=False) as hdus:
            warnings.simplefilter("ignore", AstropyUserWarning)  # a truncation is raised below
            if len(hdus) <= hdu:
                raise ValueError(f"no HDU {hdu}")
            info = hdus.fileinfo(hdu)
            header = hdus[hdu].header
            size = header.get("NAXIS1", 0) * header.get("NAXIS2", 0) + header.get("PCOUNT", 0)
            if info["datLoc"] + size > len(raw):  # astropy would read what is there
                raise ValueError(f"truncated: {size} data bytes announced, fewer left")
            data = hdus[hdu].data
            return {n.lower(): _native(np.asarray(data[n])) for n in data.columns.names}, (
                _keywords(header)
            )
    except Exception as err:  # noqa: BLE001  (any damage is reported naming the file)
        raise VVInputError(f"cannot read {path}: {err}") from err


def sph_dist(y1: np.ndarray, z1: np.ndarray, y2: np.ndarray, z2: np.ndarray) -> np.ndarray:
    """Haversine distance (deg) with (yag, zag) taken as (lon, lat), all in degrees."""
    y1, z1, y2, z2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (y1, z1, y2, z2))
    h = np.sin((z1 - z2) / 2) ** 2 + np.cos(z1) * np.cos(z2) * np.sin((y1 - y2) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1))))


def _yagzag(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.arctan2(d[:, 1], d[:, 0]) * R2A, np.arctan2(d[:, 2], d[:, 0]) * R2A


def centroid_mag(counts: np.ndarray, integ_time: float) -> np.ma.MaskedArray:
    """Magnitudes of centroids with more than 10 counts, 3-point median filtered."""
    counts = np.asarray(counts, dtype=np.float64)
    ok = counts > 10
    mag = np.ma.masked_all(len(counts), dtype=np.float64)
    if ok.any():
        raw = 10.32 - 2.5 * np.log10(counts[ok] / integ_time / 5263.0)
        mag[ok] = _medfilt(raw, 3)
    return mag


#: the columns the V&V reads from each aspect L1 file (acen: in the rows it uses)
ASOL_COLUMNS = ("time", "q_att", "dy", "dz", "dtheta")
ACAL_COLUMNS = ("aca_misalign", "fts_misalign")
ACEN_COLUMNS = ("time", "slot", "ang_y", "ang_z", "ang_y_sm", "ang_z_sm", "counts", "status")
GSPR_COLUMNS = ("slot", "id_status", "type", "cel_loc_flag", "pos_eci")
FIDPR_COLUMNS = ("slot", "id_status", "p_lsi")


def check_table(
    path: Path,
    table: dict[str, np.ndarray],
    columns: tuple[str, ...],
    rows: np.ndarray | None = None,
    empty_ok: bool = False,
) -> None:
    """Refuse an input table the V&V cannot use, naming the file and the column: a column
    missing, no rows (unless ``empty_ok``), or a NaN or infinite number (in ``rows`` only,
    a boolean selection, when given). Left to the statistics and plots, such values
    surfaced as errors naming neither ("Axis limits cannot be NaN or Inf", an IndexError).
    """
    for name in columns:
        if name not in table:
            raise VVInputError(f"{path} has no {name} column")
        values = table[name]
        if not len(values) and not empty_ok:
            raise VVInputError(f"{path}: column {name} is empty (the file has no rows)")
        if rows is not None:
            values = values[rows]
        if values.dtype.kind not in "fc" or not len(values):
            continue
        bad = ~np.isfinite(values).reshape(len(values), -1).all(axis=1)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            first = first if rows is None else int(np.flatnonzero(rows)[first])  # file's row
            raise VVInputError(
                f"{path}: column {name} holds NaN or infinite values in "
                f"{int(bad.sum())} of {len(values)} rows{' used' if rows is not None else ''} "
                f"(first row {first})"
            )


class AspectInterval:
    """One aspect interval: its ASP L1 files read, residuals per slot and SIM drift.

    Parameters
    ----------
    aiid : str
        The interval's file root (``pcadf084244404N003``).
    aspdir : path-like
        The folder holding its files.
    """

    def __init__(self, aiid: str, aspdir: str | Path, opt: dict | None = None):
        self.aiid = aiid
        self.aspdir = Path(aspdir)
        self.opt = {"alg": 8, "obc": None, "noacal": None, **(opt or {})}
        self._read()
        self.deltas: dict[int, dict[str, Any]] = {}
        self._star_residuals()
        self._fid_residuals()
        self.sim = self._sim_drift()

    # --- reading -------------------------------------------------------------------------
    def _read(self) -> None:
        folder = self.aspdir
        asol_path = _one(folder, self.aiid, "asol")
        asol, self.asol_header = read_table(asol_path)
        if "ady" in asol:  # DS >= 10.8.3: the raw (ACA) solution and the adjusted SIM offsets
            for k in ("dy", "dz", "dtheta", "ra", "dec", "roll", "q_att"):
                asol.pop(k, None)
            for new, old in (
                ("dy", "ady"),
                ("dz", "adz"),
                ("dtheta", "adtheta"),
                ("ra", "ra_raw"),
                ("dec", "dec_raw"),
                ("roll", "roll_raw"),
                ("q_att", "q_att_raw"),
            ):
                asol[new] = asol.pop(old)
        check_table(asol_path, asol, ASOL_COLUMNS)
        self.asol = asol
        self.aqual, _ = read_table(_one(folder, self.aiid, "aqual"))
        acal_path = _one(folder, self.aiid, "acal")
        acal, _ = read_table(acal_path)
        check_table(acal_path, acal, ACAL_COLUMNS)
        self.acal = acal
        self.aca_misalign = np.asarray(acal["aca_misalign"][0], dtype=np.float64).reshape(3, 3)
        self.fts_misalign = np.asarray(acal["fts_misalign"][0], dtype=np.float64).reshape(3, 3)
        cen_path = _one(folder, self.aiid, "acen")
        cen, h_cen = read_table(cen_path)
        check_table(cen_path, cen, ("time", "alg", "slot"))
        t = asol["time"]
        sel = (cen["alg"] == self.opt["alg"]) & (cen["time"] >= t[0]) & (cen["time"] <= t[-1])
        check_table(cen_path, cen, ACEN_COLUMNS, rows=sel)  # the rows the V&V uses
        self.cen = {k: v[sel] for k, v in cen.items()}
        try:
            self.integ_time = float(h_cen["INTGTIME"])
        except (KeyError, TypeError, ValueError) as err:
            raise VVInputError(f"{cen_path}: no usable INTGTIME keyword ({err})") from err
        if not np.isfinite(self.integ_time) or self.integ_time <= 0:
            raise VVInputError(f"{cen_path}: INTGTIME {self.integ_time} is not a duration")
        gspr_path, fidpr_path = (_one(folder, self.aiid, k) for k in ("gspr", "fidpr"))
        self.gsprop, self.h_gspr = read_table(gspr_path)
        check_table(gspr_path, self.gsprop, GSPR_COLUMNS, empty_ok=True)
        self.fidprop, self.h_fidpr = read_table(fidpr_path)
        check_table(fidpr_path, self.fidprop, FIDPR_COLUMNS, empty_ok=True)  # ERs: no fids
        self.gspr_info = self._props_info(self.gsprop, self.h_gspr)
        self.fidpr_info = self._props_info(self.fidprop, self.h_fidpr)
        self.log = self._read_log()

    @staticmethod
    def _props_info(props: dict[str, np.ndarray], header: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for i in range(len(props["slot"])):
            info = {"slot": int(props["slot"][i]), "id_status": _text(props["id_status"][i])}
            if "type" in props:
                info["type"] = _text(props["type"][i])
            info["TSTART"], info["TSTOP"] = header.get("TSTART"), header.get("TSTOP")
            out.append(info)
        return out

    def _read_log(self) -> list[str]:
        m = _LOG_RE.search(self.aiid)
        if not m:
            return []
        for path in sorted(self.aspdir.glob(f"*{m.group(1)}.log*")):
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", errors="replace") as f:  # text mode: lines are str
                return f.read().splitlines()
        return []

    # --- residuals -----------------------------------------------------------------------
    def _q_at(self, times: np.ndarray) -> np.ndarray:
        q = self.asol["q_att"]
        t = self.asol["time"]
        return np.stack([np.interp(times, t, q[:, k]) for k in range(4)], -1)

    def _slot_rows(self, slot: int) -> dict[str, np.ndarray]:
        sel = self.cen["slot"] == slot
        return {k: v[sel] for k, v in self.cen.items()}

    def _store(self, slot: int, c: dict, yag: np.ndarray, zag: np.ndarray, fid: bool) -> None:
        ang_y = c["ang_y_sm"] if fid else c["ang_y"]
        ang_z = c["ang_z_sm"] if fid else c["ang_z"]
        self.deltas[slot] = {
            "time": c["time"],
            "dy": ang_y * 3600 - yag,
            "dz": ang_z * 3600 - zag,
            "dr": sph_dist(yag / 3600, zag / 3600, ang_y, ang_z) * 3600,
            "yag": yag,
            "zag": zag,
            "mag": centroid_mag(c["counts"], self.integ_time),
            "qual": c["status"].astype(np.int32),
            "ang_y_sm": c["ang_y_sm"],
            "ang_z_sm": c["ang_z_sm"],
            "ang_y": c["ang_y"],
            "ang_z": c["ang_z"],
        }

    def _star_residuals(self) -> None:
        props = self.gsprop
        for i, slot in enumerate(props["slot"]):
            c = self._slot_rows(int(slot))
            if len(c["time"]) < 2:
                continue
            tmat = quaternion.to_transform(self._q_at(c["time"]))
            # d = ACA_MISALIGN . T(q)^T . pos_eci per sample
            d = np.einsum("ij,nkj,k->ni", self.aca_misalign, tmat, props["pos_eci"][i])
            yag, zag = _yagzag(d)
            self._store(int(slot), c, yag, zag, fid=False)

    def _fid_residuals(self) -> None:
        props, h = self.fidprop, self.h_fidpr
        lsi = np.array([h.get(f"LSI0STT{k}", 0.0) for k in (1, 2, 3)], dtype=np.float64)
        stf = np.array([h.get(f"STT0STF{k}", 0.0) for k in (1, 2, 3)], dtype=np.float64)
        rrc = float(h.get("RRC0FCX", 10065.5))
        t_sol = self.asol["time"]
        m = self.aca_misalign @ self.fts_misalign
        for i, slot in enumerate(props["slot"]):
            c = self._slot_rows(int(slot))
            if not len(c["time"]):
                continue
            x, y, z = np.asarray(props["p_lsi"][i], dtype=np.float64) + lsi + stf
            dy, dz, dth = (
                np.interp(c["time"], t_sol, self.asol[k].astype(np.float64))
                for k in ("dy", "dz", "dtheta")
            )
            th = dth * D2R
            p_fc = np.stack(
                [
                    np.full_like(th, x),
                    y * np.cos(th) + z * np.sin(th) + dy,
                    -y * np.sin(th) + z * np.cos(th) + dz,
                ],
                -1,
            )
            d_fc = -(p_fc - np.array([rrc, 0.0, 0.0]))
            yag, zag = _yagzag(d_fc @ m.T)
            self._store(int(slot), c, yag, zag, fid=True)

    def _sim_drift(self) -> dict[str, np.ndarray]:
        # in the asol column precision (float32), as the original
        medf_dy = _medfilt(self.asol["dy"].astype(np.float32) * np.float32(ARCSEC_PER_MM), 21)
        medf_dz = _medfilt(self.asol["dz"].astype(np.float32) * np.float32(ARCSEC_PER_MM), 21)
        return {
            "time": self.asol["time"][:-1],
            "medf_dy": medf_dy,
            "medf_dz": medf_dz,
            "d_dy": np.abs(np.diff(medf_dy)),
            "d_dz": np.abs(np.diff(medf_dz)),
        }


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).strip()


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ma.MaskedArray) and value.ndim == 0:
        return None if value.mask else value.item()
    if value is np.ma.masked:
        return None
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return _text(value)
    return value


def _props_rows(props: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    n = len(props["slot"])
    return [{k: _jsonable(v[i]) for k, v in props.items()} for i in range(n)]


def _stat(x: np.ma.MaskedArray) -> tuple[Any, Any, Any, int]:
    """(mean, median, rms about the median, number of large deviations) of unmasked data."""
    good = x.compressed()
    if not len(good):
        return np.ma.masked, np.ma.masked, np.ma.masked, 0
    med = float(np.median(good))
    rms = float(np.sqrt(np.mean((good - med) ** 2)))
    return float(good.mean()), med, rms, int(np.count_nonzero(np.abs(good - med) > DYZ_BIG_LIM))


def slot_stats(data: dict[str, Any], fid: bool) -> dict[str, Any]:
    """The statistics of one slot's combined residuals (bad quality masks dr, dy, dz, not mag)."""
    out: dict[str, Any] = {}
    n = len(data["dy"])
    bad = np.asarray(data["qual"]) != 0
    for ax in ("dr", "dy", "dz", "mag"):
        if ax == "mag":
            x = np.ma.asarray(data["mag"])  # quality not applied, as the original
        else:
            x = np.ma.masked_array(data[ax], mask=bad)
        mean, med, rms, nbig = _stat(x)
        out[f"{ax}_n_samples"] = n
        out[f"{ax}_bad_samples"] = int(np.ma.count_masked(x))
        out[f"{ax}_mean"], out[f"{ax}_med"], out[f"{ax}_rms"] = mean, med, rms
        out[f"frac_{ax}_big"] = nbig / n if n else 0.0
    if out["dy_med"] is np.ma.masked or out["dz_med"] is np.ma.masked:
        out["rad_off"] = np.ma.masked
    else:
        out["rad_off"] = float(np.hypot(out["dy_med"], out["dz_med"]))
    out["n_pts"] = n
    ky, kz = ("ang_y_sm", "ang_z_sm") if fid else ("ang_y", "ang_z")
    out["mean_y"], out["mean_z"] = float(np.mean(data[ky])), float(np.mean(data[kz]))
    out["enc_rad1"], out["enc_rad2"] = (float(v) for v in np.percentile(data["dr"], ENC_FRACS))
    return out


class Obi:
    """The V&V of one obsid revision: all its aspect intervals combined.

    Parameters
    ----------
    obsparfile : path-like or list of path-like
        The obspar of the observation (IRAF parameter file, optionally gzipped), or the
        obspars of all its OBIs (the intervals of every OBI are then V&V'd).
    obsdir : path-like
        The folder of its ASP L1 files (or a pipeline folder with ``ASP_L1_*/out*``).
    temproot : unused
        Kept for the original's signature.
    """

    #: the per-slot arrays kept for each slot (``vv_slots.h5`` holds them)
    SLOT_KEYS = SLOT_KEYS

    def __init__(
        self,
        obsparfile: str | Path | list[str | Path],
        obsdir: str | Path,
        temproot: Any = None,
    ):
        from mica.products.obspar import get_obspar

        files = (
            [Path(f) for f in obsparfile] if isinstance(obsparfile, list) else [Path(obsparfile)]
        )
        pars = []
        for path in files:
            if not path.exists():
                raise VVInputError(f"obspar file {path} does not exist")
            try:
                pars.append(get_obspar(path))
            except Exception as err:  # noqa: BLE001  (any damage is reported naming the file)
                raise VVInputError(f"cannot read obspar {path}: {err}") from err
        if not pars:
            raise VVInputError(f"no obspar file given for {obsdir}")
        # the obspars of every OBI: the V&V covers the whole obsid revision (the original
        # took the first OBI's and so skipped the intervals of the others)
        self.obspar = dict(pars[0])
        self.obspar["tstart"] = min(p["tstart"] for p in pars)
        self.obspar["tstop"] = max(p["tstop"] for p in pars)
        self.obsdir = Path(obsdir)
        if not self.obsdir.is_dir():
            raise VVInputError(f"aspect L1 folder {self.obsdir} does not exist")
        self.isdefault: int | None = None
        self.tempdir: Path | None = None
        self.errors: list[str] = []
        self.omitted_slots: list[int] = []
        self.missing_in_interval: list[tuple[int, int]] = []
        self.aiids = self._find_aiids()
        if not self.aiids:
            raise VVInputError(
                f"no aspect interval of obsid {self.obspar.get('obs_id')} in {self.obsdir}"
            )
        self.aspect_intervals = [AspectInterval(a["id"], a["dir"]) for a in self.aiids]
        self._check_intervals()
        self._label_slots()
        self._combine()
        self.slot_report = {str(s): self._slot_report(s) for s in sorted(self.slots_meta, key=int)}

    # --- intervals -------------------------------------------------------------------------
    def _aiids_in(self, folder: Path) -> list[dict[str, Any]]:
        out = []
        for path in sorted(folder.glob("pcad*asol*")):
            header = read_header(path, 1)
            if str(header.get("CONTENT", "")).strip() == "ASPSOLOBI":
                continue
            if self.obspar["tstart"] >= header["TSTOP"] or self.obspar["tstop"] <= header["TSTART"]:
                continue  # not this observation's (the original failed here)
            m = _AIID_RE.search(path.name)
            if m:
                out.append({"id": m.group(1), "dir": folder})
        return out

    def _find_aiids(self) -> list[dict[str, Any]]:
        out = self._aiids_in(self.obsdir)
        for sub in sorted(self.obsdir.glob("ASP_L1_*")):
            outs = sorted(sub.glob("out*"))
            if outs:
                out += self._aiids_in(outs[-1])
        return out

    def _check_intervals(self) -> None:
        ais = self.aspect_intervals
        ids = {(str(a.asol_header["OBS_ID"]).strip(), int(a.asol_header["REVISION"])) for a in ais}
        if len(ids) > 1:
            raise VVInputError(
                f"aspect intervals in {self.obsdir} differ in OBS_ID/REVISION: {ids}"
            )
        obsid = int(str(ais[0].asol_header["OBS_ID"]).strip())
        types = {i["slot"]: i.get("type") for i in ais[0].gspr_info}
        if types.get(7) == "MONITOR":
            if len(ais) != 2:
                self.errors.append(f"monitor window obsid {obsid} has {len(ais)} aspect intervals")
        elif len(ais) > 1:
            self.errors.append(f"obsid {obsid} has {len(ais)} aspect intervals")
        try:
            for attr, keys in (("gspr_info", ("type",)), ("fidpr_info", ())):
                first = {i["slot"]: i for i in getattr(ais[0], attr)}
                for k, ai in enumerate(ais[1:], start=1):
                    later = {i["slot"]: i for i in getattr(ai, attr)}
                    if sorted(first) != sorted(later):
                        raise InconsistentAspectIntervals(
                            f"{attr[:-5]} slots of interval {k} {sorted(later)} differ "
                            f"from interval 0 {sorted(first)}"
                        )
                    for s, info in first.items():
                        for key in ("id_status", *keys):
                            if info.get(key) != later[s].get(key):
                                raise InconsistentAspectIntervals(
                                    f"slot {s} {key} changes in interval {k}"
                                )
                if attr == "gspr_info":
                    flags0 = dict(zip(ais[0].gsprop["slot"], ais[0].gsprop["cel_loc_flag"]))
                    for k, ai in enumerate(ais[1:], start=1):
                        flags = dict(zip(ai.gsprop["slot"], ai.gsprop["cel_loc_flag"]))
                        if flags != flags0:
                            raise InconsistentAspectIntervals(
                                f"cel_loc_flag changes in interval {k}"
                            )
        except InconsistentAspectIntervals as err:
            self.errors.append(str(err))

    def _label_slots(self) -> None:
        ai0 = self.aspect_intervals[0]
        meta: dict[int, dict[str, Any]] = {}
        for i, s in enumerate(ai0.gsprop["slot"]):
            meta[int(s)] = {
                "slot": int(s),
                "type": _text(ai0.gsprop["type"][i]),
                "id_status": _text(ai0.gsprop["id_status"][i]),
                "cel_loc_flag": int(ai0.gsprop["cel_loc_flag"][i]),
            }
        for i, s in enumerate(ai0.fidprop["slot"]):
            meta[int(s)] = {
                "slot": int(s),
                "type": "FID",
                "id_status": _text(ai0.fidprop["id_status"][i]),
            }
        self.slots_meta = meta
        self.guide_list = [m for m in meta.values() if m["type"] != "FID"]
        self.fid_list = [m for m in meta.values() if m["type"] == "FID"]
        for k, ai in enumerate(self.aspect_intervals):
            tracked = {int(s) for s in np.unique(ai.cen["slot"])}
            props = {int(s) for s in ai.gsprop["slot"]} | {int(s) for s in ai.fidprop["slot"]}
            for s in sorted(tracked - props):
                if s not in self.omitted_slots:
                    self.omitted_slots.append(s)
                    self.errors.append(
                        f"slot {s} has centroids but is in neither GSPROPS nor FIDPROPS "
                        f"(interval {k})"
                    )
            for s in sorted(props):
                if s not in ai.deltas and meta.get(s, {}).get("type") in ("GUIDE", "FID"):
                    self.missing_in_interval.append((s, k))
                    self.errors.append(
                        f"slot {s} has no centroids in interval {k} of "
                        f"{len(self.aspect_intervals)} ({ai.aiid})"
                    )

    def _combine(self) -> None:
        self.all_slot_data: dict[int, dict[str, Any]] = {}
        for slot in range(8):
            parts = [ai.deltas[slot] for ai in self.aspect_intervals if slot in ai.deltas]
            if not parts or not sum(len(p["time"]) for p in parts):
                continue
            data = {}
            for k in SLOT_KEYS:
                cat = np.ma.concatenate if k == "mag" else np.concatenate
                data[k] = cat([p[k] for p in parts])
            data["ai_starts"] = np.array([p["time"][0] for p in parts if len(p["time"])])
            self.all_slot_data[slot] = data
        sims = [ai.sim for ai in self.aspect_intervals]
        self.sim_data = {k: np.concatenate([s[k] for s in sims]) for k in SIM_KEYS}
        sd = self.sim_data
        self.sim_report = {
            "max_medf_dy": _jsonable(np.max(sd["medf_dy"])) if len(sd["medf_dy"]) else None,
            "min_medf_dy": _jsonable(np.min(sd["medf_dy"])) if len(sd["medf_dy"]) else None,
            "max_medf_dz": _jsonable(np.max(sd["medf_dz"])) if len(sd["medf_dz"]) else None,
            "min_medf_dz": _jsonable(np.min(sd["medf_dz"])) if len(sd["medf_dz"]) else None,
            "max_d_dy": _jsonable(np.max(sd["d_dy"])) if len(sd["d_dy"]) else None,
            "max_d_dz": _jsonable(np.max(sd["d_dz"])) if len(sd["d_dz"]) else None,
        }

    def _slot_report(self, slot: int | str) -> dict[str, Any]:
        slot = int(slot)
        report = dict(self.slots_meta[slot])
        data = self.all_slot_data.get(slot)
        if data is not None and {"dy", "dz", "mag"} <= set(data):
            report.update(slot_stats(data, report["type"] == "FID"))
        return report

    # --- results ---------------------------------------------------------------------------
    @property
    def obsid(self) -> int:
        return int(str(self.aspect_intervals[0].asol_header["OBS_ID"]).strip())

    @property
    def revision(self) -> int:
        return int(self.aspect_intervals[0].asol_header["REVISION"])

    def info(self) -> dict[str, Any]:
        """The V&V info dictionary plus ``disposition`` and ``omitted_slots``."""
        from mica.vv.disposition import disposition

        op = self.obspar
        out: dict[str, Any] = {
            "obsid": self.obsid,
            "revision": self.revision,
            "tstart": op["tstart"],
            "tstop": op["tstop"],
            "sim_z": op.get("sim_z"),
            "sim_z_offset": op.get("sim_z_offset"),
            "ra_pnt": op.get("ra_pnt"),
            "dec_pnt": op.get("dec_pnt"),
            "roll_pnt": op.get("roll_pnt"),
            "instrument": op.get("detnam"),
            "fidprops": [_props_rows(ai.fidprop) for ai in self.aspect_intervals],
            "gsprops": [_props_rows(ai.gsprop) for ai in self.aspect_intervals],
            "intervals": [
                {
                    k: _jsonable(ai.asol_header.get(k))
                    for k in (
                        "ASCDSVER",
                        "CALDBVER",
                        "DATE",
                        "OBI_NUM",
                        "OBS_ID",
                        "REVISION",
                        "TSTART",
                        "TSTOP",
                    )
                }
                for ai in self.aspect_intervals
            ],
            "slots": {k: dict(v) for k, v in self.slot_report.items()},
            "sim": dict(self.sim_report),
            "vv_version": VV_VERSION,
            "errors": list(self.errors),
            "omitted_slots": list(self.omitted_slots),
        }
        out.update(self._processing_ids())
        out["disposition"] = disposition(self)
        return out

    def _processing_ids(self) -> dict[str, Any]:
        """aspect_1_id and ap_date from the pipeline log (the CXC database substitute)."""
        out: dict[str, Any] = {}
        for line in self.aspect_intervals[0].log:
            m = re.match(r"\s*(aspect_1_id|ap_date)\s*[=:]\s*(\S+)", line)
            if m:
                out[m.group(1)] = int(m.group(2)) if m.group(1) == "aspect_1_id" else m.group(2)
        return out

    def plot_slot(self, slot_num: int, plotdir: Any = None, save: bool = False,
                  close: bool = False, singles: bool = False) -> dict[str, Any]:  # fmt: skip
        """Residual plots of one slot (matplotlib figures), see `mica.vv.plots.plot_slot`."""
        from mica.vv.plots import plot_slot

        return plot_slot(self, slot_num, plotdir=plotdir, save=save, singles=singles)

    # --- the original's storing methods ----------------------------------------------------
    def save_plots_and_resid(self) -> dict[str, Any]:
        """Write this V&V's files (``vv_report.json``, ``vv_slots.h5``, slot plots,
        ``report.html``) into ``tempdir``, as `mica update vv` writes a revision's folder.

        Returns the info dict. `VVInputError` when ``tempdir`` is not set (the original's
        `process` set it to a fresh temporary folder first).
        """
        from mica.vv.report import write_report

        if self.tempdir is None:
            raise VVInputError("set obi.tempdir to the folder to write the V&V files into")
        return write_report(self, self.tempdir)

    def set_tbl(self, table: Any) -> None:
        """The summary table `slots_to_table` writes: a path of a ``vv.h5`` file or a
        `mica.engine.derived.GenerationTable` (default: the archive's ``vv/vv.h5``).

        A PyTables node (the original's) is refused: the table is written a whole generation
        at a time, renamed into place, never modified in place.
        """
        if isinstance(table, (str, os.PathLike)):
            table = GenerationTable(table, VV_SPEC, command=COMMAND)
        if not isinstance(table, GenerationTable):
            raise VVInputError(
                f"set_tbl takes the path of a vv.h5 file (or a GenerationTable), not "
                f"{type(table).__name__}: the table is never modified in place"
            )
        self.table = table

    def slots_to_table(self) -> None:
        """Write this V&V's rows (one per slot with statistics) into the summary table
        (`set_tbl`, default ``<archive>/vv/vv.h5``), replacing those of its obsid revision.

        Unlike the original, an observation without ``aspect_1_id`` or CCD temperature is
        written too (``aspect_1_id`` -1, ``mean_aacccdpt`` NaN).
        """
        rows = table_rows(self.info(), {"isdefault": self.isdefault})
        table = getattr(self, "table", None) or GenerationTable(
            archive_root() / FOLDER / TABLE_NAME, VV_SPEC, command=COMMAND
        )
        table.write({(self.obsid, self.revision): rows})

    def set_dbh(self, dbhandle: Any, slot_table: str = "vv_slots") -> None:
        """The original's SQL handle for `slots_to_db` (kept; that method is refused)."""
        self.db, self.slot_table = dbhandle, slot_table

    def slots_to_db(self) -> None:
        """Refused: the V&V summary is the HDF5 table (`slots_to_table`), not SQL."""
        raise VVInputError("no SQL table of V&V slots here: slots_to_table writes vv/vv.h5")

    def shelve_info(self, file: Any) -> None:
        """Refused: no pickle or shelve files (``info()`` and ``vv_report.json`` hold it)."""
        raise VVInputError(
            f"not shelving into {file}: V&V info is kept as JSON (info(), vv_report.json)"
        )
