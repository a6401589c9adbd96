"""The obspar product (``obspar``): the parameter-file format, validation and index rows.

One observation parameter file per obsid, OBI and revision, in ``obspar/<CC>/<OOOOO>_v<RR>/``
(`OBSPAR`, an `mica.engine.obsid_layout.ObsidProduct`); the parser of the IRAF/CXC parameter
format (`parse_obspar_text`, `read_obspar_bytes`, `get_obspar`) is the format, so it lives
here too. The user functions are in `mica.archive.obspar`; the generic per-obsid reads in
`mica.engine.obsid_read`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import re
import zlib
from pathlib import Path
from typing import Any

from astropy.io import fits

from mica.engine.obsid_layout import ObsidProduct
from mica.engine.product import KIND, IndexColumn, RejectedFile
from mica.engine.provenance import REAL, SIMULATED
from mica.engine.validate import check_finite, check_span
from mica.errors import InvalidArgumentError
from mica.time import year_doy

OBSPAR_TEXT_KEYS = (
    "title observer ao object ss_object obs_id seq_num instrume grating detector detnam "
    "si_mode optical_monitor raster_scan dither pre_id uninterrupted date_obs date_end obs_mode "
    "maneuver maneuver_ref timeunit timesys timversn datamode readmode ccdi0_on ccdi1_on "
    "ccdi2_on ccdi3_on ccds0_on ccds1_on ccds2_on ccds3_on ccds4_on ccds5_on onchip_sum "
    "subarray duty_cycle most_efficient eventfilter bias_request mode mission telescop "
    "antico_enable timing_mode zero_block blank_enable width_enable spect_mode timeref tassign "
    "origin ascdsver obi_data obspar_type obspar_stat uld_enable"
).split()
OBSPAR_INT_KEYS = (
    "obi_num seg_max_num dropped_chip_count sumrow sumcol startrow rowcnt dtycycle "
    "py_shutter_position range_switch_level upper_level_disc trigger_level u_blank_hi "
    "u_blank_low v_blank_low v_blank_hi my_shutter_position width_threshold revision "
    "obspar_ver"
).split()
OBSPAR_FLOAT_KEYS = (
    "dither_y_amp dither_y_freq dither_y_phase dither_z_amp dither_z_freq dither_z_phase "
    "ra_pnt dec_pnt roll_pnt ra_targ dec_targ y_det_offset z_det_offset radial_offset defocus "
    "sim_z_offset ra_nom dec_nom roll_nom tstart tstop sched_start sched_stop sched_exp_time "
    "maneuver_v1 maneuver_v2 maneuver_v3 maneuver_angle mjdref timezero subarray_frame_time "
    "exptimea exptimeb phamin pharange sim_x sim_y sim_z foc_len mt_a mt_aop mt_e mt_epoch "
    "mt_i mt_ma mt_raan"
).split()
OBSPAR_KEYS = OBSPAR_TEXT_KEYS + OBSPAR_INT_KEYS + OBSPAR_FLOAT_KEYS
#: (low, high, unit) of the parameters with physical bounds, inclusive: a value outside is
#: a damaged file, refused at ingest (tstart/tstop: `mica.engine.validate.check_span`)
OBSPAR_BOUNDS: dict[str, tuple[float, float, str]] = {
    **dict.fromkeys(("ra_pnt", "ra_targ", "ra_nom"), (0.0, 360.0, "deg")),
    **dict.fromkeys(("dec_pnt", "dec_targ", "dec_nom"), (-90.0, 90.0, "deg")),
    **dict.fromkeys(("roll_pnt", "roll_nom"), (0.0, 360.0, "deg")),
    **dict.fromkeys(("mt_raan", "mt_aop", "mt_ma"), (0.0, 360.0, "deg")),
    "mt_i": (0.0, 180.0, "deg"),
    "mt_e": (0.0, 1.0, ""),
}
_OBSPAR_RE = re.compile(r"axaff(\d{5})_(\d{3})N(\d{3})_obs0a\.par\.gz")
_BOOL_TRUE = {"yes", "y", "true", "t", "1"}
_BOOL_FALSE = {"no", "n", "false", "f", "0"}


def _convert(name: str, ptype: str, value: str) -> Any:
    """A parameter value by its type: i, r, b, s and f (files; ``f`` plus r/w/e/n modes)."""
    kind = ptype.strip().lower()
    text = value.strip()
    if kind in ("i", "r", "b") and (text == "" or text.upper() == "INDEF"):
        return None
    try:
        if kind == "i":
            return int(text)
        if kind == "r":
            return float(text)
    except ValueError as err:
        raise InvalidArgumentError(f"parameter {name}: {text!r} is not of type {ptype}") from err
    if kind == "b":
        low = text.lower()
        if low in _BOOL_TRUE:
            return True
        if low in _BOOL_FALSE:
            return False
        raise InvalidArgumentError(f"parameter {name}: {text!r} is not a boolean")
    return value  # s, f*, and other string-like types (pset, gcur) keep their text


def parse_obspar_text(text: str) -> dict[str, Any]:
    """Parse an IRAF/CXC parameter file (``name,type,mode,value,min,max,prompt`` lines).

    Comment lines (``#``) and blank lines are skipped; ``-`` in names becomes ``_``.
    """
    out: dict[str, Any] = {}
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for row in csv.reader(lines, dialect="excel"):
        if len(row) < 4:
            raise InvalidArgumentError(
                f"malformed parameter line {','.join(row)!r} (fewer than 4 fields)"
            )
        name = row[0].strip().replace("-", "_")
        out[name] = _convert(name, row[1], row[3])
    return out


def read_obspar_bytes(path: Path) -> bytes:
    """The text bytes of a ``.par`` or ``.par.gz`` file (gzip checked end to end)."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as err:
            raise RejectedFile(Path(path).name, f"corrupt or truncated gzip data ({err})") from err
    return raw


def get_obspar(obsparfile: str | Path) -> dict[str, Any]:
    """Parameters of an obspar file (gzipped or plain) as a dict name -> typed value.

    A file that is not a parameter file is an `InvalidArgumentError` naming it.
    """
    text = read_obspar_bytes(Path(obsparfile)).decode("utf-8", "replace")
    try:
        return parse_obspar_text(text)
    except (InvalidArgumentError, csv.Error) as err:
        raise InvalidArgumentError(f"{obsparfile} is not a parameter file: {err}") from err


def check_bounds(name: str, pars: dict[str, Any]) -> None:
    """Refuse parameters outside their physical bounds (`OBSPAR_BOUNDS`), naming the file,
    the keyword and the bounds; an absent (``INDEF``) value passes."""
    for key, (low, high, unit) in OBSPAR_BOUNDS.items():
        value = pars.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RejectedFile(name, f"parameter {key}: {value!r} is not a number")
        if not low <= value <= high:
            bounds = f"{low:g}..{high:g}" + (f" {unit}" if unit else "")
            raise RejectedFile(name, f"parameter {key}: {value} is outside {bounds}")


class ObsparProduct(ObsidProduct):
    """Observation parameter files, one per obsid, OBI and revision, in ``obspar/``."""

    name = "obspar"
    subdir = "obspar"
    filename_re = _OBSPAR_RE
    contents = ("OBSPAR",)
    all_contents = ("OBSPAR",)
    bad_obsids_file = "obspar_bad_obsids.dat"
    stream_columns = ("obsid", "obi_num", "revision")
    index_columns = (
        [IndexColumn("filename", "text not null"), IndexColumn("obsid", "int not null")]
        + [IndexColumn(k, "text") for k in OBSPAR_TEXT_KEYS]
        + [IndexColumn(k, "int") for k in OBSPAR_INT_KEYS]
        + [IndexColumn(k, "float") for k in OBSPAR_FLOAT_KEYS]
        # filetime/year/doy/checksum: absent in the original (flaw 5), needed for re-runs
        + [
            IndexColumn("content", "text default 'OBSPAR'"),
            IndexColumn("isdefault", "int"),
            IndexColumn("filetime", "int not null"),
            IndexColumn("year", "int not null"),
            IndexColumn("doy", "int not null"),
            IndexColumn("checksum", "text"),
        ]
    )
    index_sql = ObsidProduct.index_sql + (
        "CREATE INDEX IF NOT EXISTS idx_archfiles_obsid ON archfiles (obsid, revision)",
        "CREATE INDEX IF NOT EXISTS idx_archfiles_tstart ON archfiles (tstart)",
        "CREATE INDEX IF NOT EXISTS idx_archfiles_filetime ON archfiles (filetime)",
    )

    def name_time(self, name: str) -> float:
        return float("nan")  # obspar names carry no time

    def name_obsid(self, name: str) -> int | None:
        match = _OBSPAR_RE.fullmatch(self.archive_name(name))
        return int(match.group(1)) if match else None

    def describe(self, name: str, hdus: fits.HDUList) -> dict[str, Any]:
        raise RejectedFile(name, "obspar files are parameter files, not FITS")

    def _parse(self, name: str, path: Path) -> tuple[dict[str, Any], bytes]:
        raw = read_obspar_bytes(path)
        try:
            pars = parse_obspar_text(raw.decode("utf-8", "replace"))
        except (ValueError, csv.Error) as err:
            raise RejectedFile(name, f"not a parameter file ({err})") from err
        return pars, raw

    def inspect(self, path: Path) -> tuple[int | None, float | None]:
        pars, _ = self._parse(path.name, path)
        try:
            return int(str(pars["obs_id"]).strip()), float(pars["tstart"])
        except (KeyError, TypeError, ValueError) as err:
            raise RejectedFile(path.name, f"no usable obs_id/tstart ({err})") from err

    def describe_path(
        self, name: str, path: Path, arrays: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        match = _OBSPAR_RE.fullmatch(name)
        pars, raw = self._parse(name, path)
        try:
            obsid = int(str(pars["obs_id"]).strip())
            tstart, tstop = pars["tstart"], pars["tstop"]
        except (KeyError, TypeError, ValueError) as err:
            raise RejectedFile(name, f"missing or bad obs_id/tstart/tstop ({err})") from err
        simulated = pars.get("simulated") is True  # the simulator's marker line
        tstart, tstop = check_span(
            name, tstart, tstop, self.max_file_span, ("tstart", "tstop"), simulated
        )
        for key, value in pars.items():  # the index keeps them: finite, 64-bit at most
            check_finite(name, key, value)
        check_bounds(name, pars)
        if obsid != int(match.group(1)):
            raise RejectedFile(name, f"obs_id {obsid} does not match the name")
        obi = pars.get("obi_num")
        if obi is not None and obi != int(match.group(2)):
            raise RejectedFile(name, f"obi_num {obi} does not match the name")
        revision = int(match.group(3))
        if pars.get("revision") not in (None, revision):
            raise RejectedFile(
                name, f"revision {pars['revision']} does not match the name's N{revision:03d}"
            )
        row = {k: pars.get(k) for k in OBSPAR_KEYS}
        row.update(
            filename=name,
            obsid=obsid,
            obi_num=int(match.group(2)),
            revision=revision,
            content="OBSPAR",
            isdefault=None,
            filetime=int(tstart),
            checksum=hashlib.sha1(raw).hexdigest(),
        )
        row["year"], row["doy"] = year_doy(tstart)
        row[KIND] = SIMULATED if simulated else REAL
        return row


OBSPAR = ObsparProduct()
