"""Chandra time (CXC seconds since 1998-01-01 TT) through astropy's cxcsec/yday formats.

Every archive index keeps float64 CXC seconds; conversions here are vectorised.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Union

import numpy as np
from astropy.time import Time, TimeDelta
from astropy.utils import iers
from erfa import ErfaWarning

# UTC<->TT needs only the bundled leap-second table; never reach for IERS downloads.
iers.conf.auto_download = False
# ERFA calls dates past its leap-second table "dubious"; the simulated mission runs to 2030
# and Chandra time needs no future leap seconds, so the warning says nothing useful here.
warnings.filterwarnings("ignore", message=".*dubious year", category=ErfaWarning)

CxoTimeLike = Union[str, float, int, np.ndarray, Time, None, list]  # noqa: UP007

_DAY = 86400.0


def _now() -> Time:
    fixed = os.environ.get("CXOTIME_NOW")
    return to_time(fixed) if fixed else Time.now()


def _parse_string(value: str) -> Time:
    text = value.strip()
    # A bare YYYY:DDD:hh is not a Chandra date form; astropy would also refuse it.
    for fmt in ("yday", "isot", "iso"):
        try:
            return Time(text, format=fmt, scale="utc")
        except ValueError:
            continue
    try:
        return Time(float(text), format="cxcsec")
    except ValueError:
        pass
    try:
        return _now() + TimeDelta(text)  # relative forms such as "-2d 12hr"
    except Exception:
        pass
    raise ValueError(
        f"cannot interpret {value!r} as a Chandra time (try 'YYYY:DDD', ISO or CXC secs)"
    )


def to_time(value: CxoTimeLike) -> Time:
    """Return an astropy Time for any CxoTimeLike value (numbers are CXC seconds, None is now)."""
    if value is None:
        return _now()
    if isinstance(value, Time):
        return value
    if isinstance(value, (str, np.str_)):
        return _parse_string(str(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return Time(float(value), format="cxcsec")
    arr = np.asarray(value)
    if arr.dtype.kind in "iuf":
        return Time(arr.astype(np.float64), format="cxcsec")
    if arr.dtype.kind in "US":
        # Homogeneous string arrays convert in one call; mixed forms fall back per element.
        try:
            return Time(arr.astype(str), scale="utc")
        except ValueError:
            return Time([to_time(v) for v in arr.ravel()]).reshape(arr.shape)
    if arr.dtype.kind == "O":
        return Time([to_time(v) for v in arr.ravel()]).reshape(arr.shape)
    raise TypeError(f"cannot interpret {value!r} as a Chandra time")


def to_secs(value: CxoTimeLike) -> Any:
    """CXC seconds (float, or float64 array for array input)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return value.astype(np.float64)
    secs = to_time(value).cxcsec
    return float(secs) if np.ndim(secs) == 0 else np.asarray(secs, dtype=np.float64)


def to_date(value: CxoTimeLike) -> Any:
    """Chandra date string(s) 'YYYY:DDD:hh:mm:ss.sss' in UTC."""
    t = to_time(value).utc
    t.precision = 3
    out = t.yday
    return str(out) if np.ndim(out) == 0 else np.asarray(out)


def year_doy(value: CxoTimeLike) -> tuple[int, int]:
    """UTC (year, day-of-year) of a time: the archive's directory names."""
    date = to_date(value)
    return int(date[:4]), int(date[5:8])


def day_start(value: CxoTimeLike) -> float:
    """CXC seconds of 00:00 UTC of the day holding `value`."""
    return to_secs(to_date(value)[:8])


def day_end(value: CxoTimeLike) -> float:
    """CXC seconds of 00:00 UTC of the next day (from seconds, not by string arithmetic)."""
    return day_start(day_start(value) + _DAY + 1.5)


def frac_year(value: CxoTimeLike) -> Any:
    """Decimal (UTC calendar) year, as the dark-current model uses."""
    return to_time(value).utc.decimalyear
