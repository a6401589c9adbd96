"""Chandra time (CXC seconds since 1998-01-01 TT) through astropy's cxcsec/yday formats.

Every archive index keeps float64 CXC seconds; conversions here are vectorised.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Union

import numpy as np
from astropy.time import Time, TimeDelta
from erfa import ErfaWarning

from mica._lazy import LazyModule

CxoTimeLike = Union[str, float, int, np.ndarray, Time, None, list]  # noqa: UP007

# Imported at the first conversion only: it brings astropy.table and astropy.io.fits (180 ms
# of a reader's start-up), which a fetch given CXC seconds never needs.
iers: Any = LazyModule("astropy.utils.iers")
_DAY = 86400.0

# Conversions change no setting of the user's process: warnings filters and astropy's IERS
# configuration are changed inside mica's own calls only (`conversion_scope`).
_LOCK = threading.RLock()
_depth = 0  # conversions of this module in progress (in the thread holding _LOCK)
_leap_checked = False


@contextmanager
def conversion_scope() -> Iterator[None]:
    """Scope of this module's astropy conversions.

    ERFA calls dates past its leap-second table "dubious" (from 2029 with pyerfa 2.0.1); the
    simulated mission runs to 2030 and Chandra time needs no future leap seconds, so that
    warning is ignored here. UTC<->TT needs only the bundled leap-second table: astropy checks
    it once per process, at its first UTC conversion, and could then download a newer one;
    that check is made here once, with ``iers.conf.auto_download`` off for its duration only
    (``set_temp`` costs 14 us, too much for every call, and no later conversion downloads).

    ``warnings.catch_warnings`` swaps the process-wide filter list (not thread-safe before
    Python 3.14's context-aware warnings): one lock serializes these scopes, so mica's
    threads never interleave them and leave the filter behind; nested calls reuse the
    outer scope.
    """
    global _depth, _leap_checked
    with _LOCK:
        if _depth:
            yield
            return
        _depth = 1
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*dubious year", category=ErfaWarning)
                if not _leap_checked:
                    with iers.conf.set_temp("auto_download", False):
                        _ = Time(0.0, format="cxcsec").utc  # astropy's once-a-process check
                    _leap_checked = True
                yield
        finally:
            _depth = 0


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
    if isinstance(value, Time):
        return value
    with conversion_scope():
        return _to_time(value)


def _to_time(value: CxoTimeLike) -> Time:
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
            return Time([_to_time(v) for v in arr.ravel()]).reshape(arr.shape)
    if arr.dtype.kind == "O":
        return Time([_to_time(v) for v in arr.ravel()]).reshape(arr.shape)
    raise TypeError(f"cannot interpret {value!r} as a Chandra time")


def to_secs(value: CxoTimeLike) -> Any:
    """CXC seconds (float, or float64 array for array input)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return value.astype(np.float64)
    with conversion_scope():
        secs = _to_time(value).cxcsec
    return float(secs) if np.ndim(secs) == 0 else np.asarray(secs, dtype=np.float64)


def to_date(value: CxoTimeLike) -> Any:
    """Chandra date string(s) 'YYYY:DDD:hh:mm:ss.sss' in UTC."""
    with conversion_scope():
        t = _to_time(value).utc
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
    with conversion_scope():
        return _to_time(value).utc.decimalyear
