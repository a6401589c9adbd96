"""Chandra time (CXC seconds since 1998-01-01 TT) through astropy's cxcsec/yday formats.

Every archive index keeps float64 CXC seconds; conversions here are vectorised. Every reader
and command takes its times through `to_secs`, so they all accept what CxoTime accepts:

* numbers (int, float, numpy scalars and arrays): CXC seconds;
* strings: ``YYYY:DDD[:hh:mm[:ss[.sss]]]`` (Chandra date, UTC), ISO ``YYYY-MM-DD[ hh:mm:ss]``
  or ISO-T, CXC seconds written with a decimal point or at least 9 digits (``'441763266.184'``),
  or a time relative to now (``'-2d'``, astropy `TimeDelta` text);
* `astropy.time.Time` (and ``CxoTime``), `datetime.datetime`, `datetime.date`,
  `numpy.datetime64` (naive values are UTC), lists and arrays of any of these;
* ``None``: now (or ``$CXOTIME_NOW``).

A string of 7 or 8 bare digits starting with a year (``'20120101'``, ``'2012001'``) is
refused as ambiguous, with the date form to write instead. A date that does not exist is
refused, not rolled over: ``'2013:366'``, ``'2013-02-29'``, and ``23:59:60`` on a day that
ends without a leap second (``'2012:182:23:59:60'`` and ``'2016:366:23:59:60'`` exist).
Booleans are not times. Every refusal is an `InvalidTimeError` (a `mica.errors.MicaError`
and a ValueError, or a TypeError for an object that is no time).

Examples
--------
>>> from mica.time import to_secs, to_date, time_range
>>> to_secs("2012:001")
441763266.184
>>> to_date(441763266.184)
'2012:001:00:00:00.000'
>>> import datetime
>>> to_date(datetime.datetime(2012, 5, 4, 12, 0))
'2012:125:12:00:00.000'
>>> time_range("2012:125", "2012:126")
(452476866.184, 452563266.184)
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Union

import numpy as np
from astropy.time import Time, TimeDelta
from erfa import ErfaWarning

from mica import config
from mica._lazy import LazyModule
from mica.errors import ConfigError, InvalidTimeError, TimeRangeError

CxoTimeLike = Union[  # noqa: UP007
    str, float, int, np.ndarray, np.datetime64, Time, _dt.datetime, _dt.date, None, list
]

# Imported at the first conversion only: it brings astropy.table and astropy.io.fits (180 ms
# of a reader's start-up), which a fetch given CXC seconds never needs.
iers: Any = LazyModule("astropy.utils.iers")
#: Seconds in a day of 86400 SI seconds (a UTC day with a leap second lasts one more).
SECONDS_PER_DAY = 86400.0

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
    warning is ignored here, as is ERFA's for 23:59:60 on a day without a leap second (this
    module refuses such a time itself). UTC<->TT needs only the bundled leap-second table:
    astropy checks it once per process, at its first UTC conversion, and could then download
    a newer one; that check is made here once, with ``iers.conf.auto_download`` off for its
    duration only (``set_temp`` costs 14 us, too much for every call, and no later conversion
    downloads).

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
                # 23:59:60 of a day without a leap second: refused here (`_check_exists`)
                for message in (".*dubious year", ".*after end of day"):
                    warnings.filterwarnings("ignore", message=message, category=ErfaWarning)
                if not _leap_checked:
                    with iers.conf.set_temp("auto_download", False):
                        _ = Time(0.0, format="cxcsec").utc  # astropy's once-a-process check
                    _leap_checked = True
                yield
        finally:
            _depth = 0


def _now() -> Time:
    fixed = config.now_override()
    if fixed is None:
        return Time.now()
    try:
        return to_time(fixed)
    except ValueError as err:
        raise ConfigError(f"{config.NOW}={fixed!r} is not a time: {err}") from None


# 7 or 8 bare digits starting with a plausible year: a compact date, or CXC seconds?
_AMBIGUOUS = re.compile(r"^(19[89]\d|20\d\d)(\d{3,4})$")


def _ambiguous(text: str) -> str | None:
    """The date form to suggest for a compact-date-looking string, or None."""
    match = _AMBIGUOUS.match(text)
    if not match:
        return None
    year, rest = match.groups()
    if len(rest) == 3:
        return f"{year}:{rest}"
    try:
        day = _dt.date(int(year), int(rest[:2]), int(rest[2:])).timetuple().tm_yday
    except ValueError:
        return f"{year}:DDD"
    return f"{year}:{day:03d}' or '{year}-{rest[:2]}-{rest[2:]}"


# The date a text time names: Chandra (year, day of year) or ISO (year, month, day).
_YDAY_DATE = re.compile(r"\s*(\d{4}):(\d{3})")
_ISO_DATE = re.compile(r"\s*(\d{4})-(\d{2})-(\d{2})")


def _missing_date(text: str, year: int, month: int, day: int) -> str | None:
    """Why ``text`` names no existing time, given the UTC date astropy made of it (astropy
    rolls ``2013:366`` over to 2014:001 and a 23:59:60 without a leap second over to the
    next midnight); None when it names that date (or no date this module checks)."""
    got = _dt.date(year, month, day)
    match = _YDAY_DATE.match(text)
    if match:
        named_year, doy = int(match.group(1)), int(match.group(2))
        days = 366 if _dt.date(named_year, 12, 31).timetuple().tm_yday == 366 else 365
        if doy > days:
            return f"{named_year} has {days} days"
        if (got.year, got.timetuple().tm_yday) != (named_year, doy):
            return f"{text[:8]} ends without a leap second (no 23:59:60)"
        return None
    match = _ISO_DATE.match(text)
    if match and (got.year, got.month, got.day) != tuple(int(g) for g in match.groups()):
        return f"{text[:10]} ends without a leap second (no 23:59:60)"
    return None


def _check_exists(texts: np.ndarray, t: Time) -> None:
    """Refuse the first of ``texts`` (parsed into ``t``, same shape) naming a time that does
    not exist. Only a day 366 or a 23:59:60 can have been rolled over: only those texts are
    looked at (parsing a text array costs no Python loop over its elements)."""
    texts = np.char.strip(np.atleast_1d(texts).astype(str).ravel())
    suspect = np.flatnonzero((np.char.find(texts, ":60") >= 0) | (np.char.find(texts, ":366") >= 0))
    if not len(suspect):
        return
    when = np.atleast_1d(t.ravel()[suspect].ymdhms)
    for text, day in zip(texts[suspect], when):
        why = _missing_date(str(text), int(day["year"]), int(day["month"]), int(day["day"]))
        if why:
            raise InvalidTimeError(f"{str(text)!r} is not a time: {why}")


def _parse_string(value: str) -> Time:
    text = value.strip()
    suggestion = _ambiguous(text)
    if suggestion:
        raise InvalidTimeError(
            f"ambiguous Chandra time {value!r}: a compact date or CXC seconds? "
            f"Write the date as '{suggestion}', or seconds with a point ('{text}.0')"
        )
    # A bare YYYY:DDD:hh is not a Chandra date form; astropy would also refuse it.
    for fmt in ("yday", "isot", "iso"):
        try:
            parsed = Time(text, format=fmt, scale="utc")
        except ValueError:
            continue
        _check_exists(np.array([text]), parsed.reshape(1))
        return parsed
    try:
        return Time(float(text), format="cxcsec")
    except ValueError:
        pass
    try:
        return _now() + TimeDelta(text)  # relative forms such as "-2d 12hr"
    except Exception:
        pass
    raise InvalidTimeError(
        f"cannot interpret {value!r} as a Chandra time (try 'YYYY:DDD', ISO or CXC secs)"
    )


def to_time(value: CxoTimeLike) -> Time:
    """An astropy `Time` for any time form of this module (numbers are CXC seconds).

    Parameters
    ----------
    value : CxoTimeLike
        See the module docstring; ``None`` is now.

    Returns
    -------
    astropy.time.Time
        ``value`` itself when it is a `Time`.

    Raises
    ------
    InvalidTimeError
        A string that is no time form, a date that does not exist, or an ambiguous compact
        date (``'20120101'``): a ValueError; a boolean or an object that is no time at all:
        a ValueError and a TypeError.

    Examples
    --------
    >>> to_time("2012:125:12:00:00").isot
    '2012-05-04T12:00:00.000'
    >>> to_time(452520066.184).utc.yday
    '2012:125:12:00:00.000'
    """
    if isinstance(value, Time):
        return value
    with conversion_scope():
        return _to_time(value)


def _to_time(value: CxoTimeLike) -> Time:
    if value is None:
        return _now()
    if isinstance(value, Time):
        return value
    if isinstance(value, (bool, np.bool_)):  # an int to Python, never a time
        raise InvalidTimeError(f"{value!r} is not a time (a boolean)")
    if isinstance(value, (str, np.str_)):
        return _parse_string(str(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return Time(float(value), format="cxcsec")
    if isinstance(value, (_dt.datetime, np.datetime64)):
        return Time(value)  # naive: UTC; aware: converted by its offset (astropy)
    if isinstance(value, _dt.date):  # a date alone: its 00:00 UTC
        return Time(value.isoformat(), format="iso", scale="utc")
    arr = np.asarray(value)
    if arr.dtype.kind == "M":
        return Time(arr)
    if arr.dtype.kind in "iuf":
        return Time(arr.astype(np.float64), format="cxcsec")
    if arr.dtype.kind in "US":
        # Homogeneous string arrays convert in one call; mixed forms fall back per element.
        texts = arr.astype(str)
        try:
            parsed = Time(texts, scale="utc")
        except ValueError:
            return Time([_to_time(v) for v in arr.ravel()]).reshape(arr.shape)
        _check_exists(texts, parsed)
        return parsed
    if arr.dtype.kind == "O":
        if arr.ndim == 0:  # an unknown object: not to be iterated (that recursed)
            raise InvalidTimeError(f"cannot interpret {value!r} as a Chandra time")
        return Time([_to_time(v) for v in arr.ravel()]).reshape(arr.shape)
    raise InvalidTimeError(f"cannot interpret {value!r} as a Chandra time")


def time_range(start: CxoTimeLike, stop: CxoTimeLike, instant: bool = False) -> tuple[float, float]:
    """(tstart, tstop) in CXC seconds, refusing a ``stop`` not after ``start``.

    Parameters
    ----------
    start, stop : CxoTimeLike
        Any time form `to_secs` accepts.
    instant : bool
        Accept ``stop == start`` (the readers' inclusive range of one instant, as the
        original mica took it); ``stop`` before ``start`` is refused all the same.

    Returns
    -------
    tuple of float
        CXC seconds (s) of ``start`` and ``stop``.

    Raises
    ------
    TimeRangeError
        When ``stop <= start`` (``stop < start`` with ``instant``); the message gives both as
        dates. A `mica.errors.MicaError` and a ValueError.
    InvalidTimeError
        A time not understood, or an array where one time is needed.

    Examples
    --------
    >>> time_range("2012:125:00:00:00", "2012:125:01:00:00")
    (452476866.184, 452480466.184)
    >>> time_range("2012:126", "2012:125")
    Traceback (most recent call last):
    ...
    mica.errors.TimeRangeError: stop 2012:125:00:00:00.000 is not after start 2012:126:00:00:00.000
    """
    tstart, tstop = to_secs(start), to_secs(stop)
    if np.ndim(tstart) or np.ndim(tstop):
        raise InvalidTimeError("start and stop must each be one time, not an array")
    if not (tstop >= tstart if instant else tstop > tstart):
        raise TimeRangeError(f"stop {to_date(tstop)} is not after start {to_date(tstart)}")
    return float(tstart), float(tstop)


def to_secs(value: CxoTimeLike) -> Any:
    """CXC seconds (seconds since 1998-01-01T00:00:00 TT) of any time form.

    Parameters
    ----------
    value : CxoTimeLike
        See the module docstring.

    Returns
    -------
    float or numpy.ndarray
        CXC seconds (s); a float64 array for array or list input.

    Examples
    --------
    >>> to_secs("2012:125")
    452476866.184
    >>> to_secs(["2012:125", "2012-05-05T00:00:00"]).tolist()
    [452476866.184, 452563266.184]
    """
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return value.astype(np.float64)
    with conversion_scope():
        secs = _to_time(value).cxcsec
    return float(secs) if np.ndim(secs) == 0 else np.asarray(secs, dtype=np.float64)


def to_date(value: CxoTimeLike) -> Any:
    """Chandra date string(s) ``'YYYY:DDD:hh:mm:ss.sss'`` (UTC, day of year).

    Parameters
    ----------
    value : CxoTimeLike
        One time or several, in any form of the module docstring.

    Returns
    -------
    str or numpy.ndarray
        One date, or an array of dates for array input.

    Examples
    --------
    >>> to_date(452476866.184)
    '2012:125:00:00:00.000'
    """
    with conversion_scope():
        t = _to_time(value).utc
        t.precision = 3
        out = t.yday
    return str(out) if np.ndim(out) == 0 else np.asarray(out)


def year_doy(value: CxoTimeLike) -> tuple[int, int]:
    """UTC (year, day-of-year) of a time: the archive's directory names.

    Examples
    --------
    >>> year_doy("2012-05-04T23:00:00")
    (2012, 125)
    """
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        secs = float(value)
        if math.isfinite(secs):
            # every file of an ingest asks this: one conversion per day, not per call
            first, boundary, second = _day_window(int(secs // SECONDS_PER_DAY))
            if abs(secs - boundary) > 1.0:  # near midnight, the exact (rounded) date decides
                return first if secs < boundary else second
    return _exact_year_doy(value)


def _exact_year_doy(value: CxoTimeLike) -> tuple[int, int]:
    date = to_date(value)
    return int(date[:4]), int(date[5:8])


@functools.lru_cache(maxsize=4096)
def _day_window(k: int) -> tuple[tuple[int, int], float, tuple[int, int]]:
    """(year, doy) at ``k`` days of seconds, the next UTC midnight and (year, doy) after it:
    UTC days last at least 86400 s, so a window of 86400 s holds at most one midnight."""
    start = k * SECONDS_PER_DAY
    boundary = day_end(start)
    return _exact_year_doy(start), boundary, _exact_year_doy(boundary)


def day_start(value: CxoTimeLike) -> float:
    """CXC seconds (s) of 00:00 UTC of the day holding ``value``.

    Examples
    --------
    >>> to_date(day_start("2012:125:13:14:15"))
    '2012:125:00:00:00.000'
    """
    return to_secs(to_date(value)[:8])


def day_end(value: CxoTimeLike) -> float:
    """CXC seconds (s) of 00:00 UTC of the next day (from seconds, not string arithmetic).

    Examples
    --------
    >>> to_date(day_end("2012:366:23:00:00"))
    '2013:001:00:00:00.000'
    """
    return day_start(day_start(value) + SECONDS_PER_DAY + 1.5)


def frac_year(value: CxoTimeLike) -> Any:
    """Decimal (UTC calendar) year, as the dark-current model uses.

    Returns
    -------
    float or numpy.ndarray
        Years (a), e.g. 2012.34 for early May 2012.

    Examples
    --------
    >>> round(float(frac_year("2012:125")), 3)
    2012.339
    """
    with conversion_scope():
        return _to_time(value).utc.decimalyear
