"""Checks of decoded values shared by the products' validation: times, columns, integers.

Each check raises `RejectedFile` naming the file and the problem. Checks of column values
are vectorised numpy on arrays already decoded, so validation stays a small part of ingest.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mica.engine.product import RejectedFile

#: 1999:204:00:00:00 UTC (1999-07-23, launch day) in CXC seconds: no data is older.
MISSION_START = 49075264.184
#: How far past the present (this machine's clock) a time may lie: clocks off by hours,
#: never data from the future.
FUTURE_MARGIN = 30 * 86400.0
# Unix time minus CXC seconds, with the leap seconds to date (the last one was in 2017; a
# new one would move "now" by a second, nothing against the margin).
_UNIX_MINUS_CXC = 883612730.816

#: How far a row's TIME may lie before the file's TSTART (s). TIME is mid-integration:
#: TIME[0] = TSTART - 1.025 - INTEG/2, measured 1.873 s in all 36 real 2003 files and the
#: simulated ones; 10 s allows INTEG up to 17.9 s (the post-2023 10-bit count: 16.4 s).
TIME_BEFORE_TSTART = 10.0
#: How far a row's TIME may lie after the file's TSTOP (s): TSTOP follows the last row's
#: frames, so the last TIME is 2.9-6.0 s before it in real and simulated files; the margin
#: only absorbs rounding of the header values.
TIME_AFTER_TSTOP = 1.0


#: The simulated mission's end (`mica.sim.mission.MISSION_END`, 2030:001): simulated files
#: may lie in the future of this machine's clock, flight files may not.
SIM_MISSION_END = 1009843269.184


def mission_now() -> float:
    """The present in CXC seconds from this machine's clock (not ``CXOTIME_NOW``: that
    rewinds the simulated upstream, not the calendar)."""
    return time.time() - _UNIX_MINUS_CXC


def rows_text(n: int) -> str:
    """'1 row', '5 rows'."""
    return f"{n} row" if n == 1 else f"{n} rows"


def check_span(
    name: str,
    tstart: Any,
    tstop: Any,
    max_span: float,
    keys: tuple[str, str] = ("TSTART", "TSTOP"),
    simulated: bool = False,
) -> tuple[float, float]:
    """Refuse start/stop times that are not finite mission times or span more than
    ``max_span`` seconds (the engine finds overlapping files by looking back that far, so a
    longer file would escape its overlap checks or hide later files); returns them as floats.
    A ``simulated`` file (it carries the simulation marker) may lie up to the end of the
    simulated mission, a flight file up to now (plus a margin for clocks).
    """
    latest = SIM_MISSION_END + FUTURE_MARGIN if simulated else mission_now() + FUTURE_MARGIN
    values = []
    for key, value in zip(keys, (tstart, tstop)):
        try:
            secs = float(value)
        except (TypeError, ValueError) as err:
            raise RejectedFile(name, f"{key} {value!r} is not a number") from err
        if not MISSION_START <= secs <= latest:  # False for NaN
            end = "the simulated mission's end" if simulated else "now"
            raise RejectedFile(
                name,
                f"{key} {secs} is not a time of the mission (CXC seconds from 1999-07-23 to {end})",
            )
        values.append(secs)
    start, stop = values
    if not stop > start:
        raise RejectedFile(name, f"{keys[1]} {stop} is not after {keys[0]} {start}")
    if stop - start > max_span:
        raise RejectedFile(
            name,
            f"{keys[0]}..{keys[1]} spans {(stop - start) / 86400:.1f} days, longer than "
            f"{max_span / 86400:g} days (no file of this product is that long)",
        )
    return start, stop


def check_times(
    name: str,
    times: np.ndarray,
    tstart: float,
    tstop: float,
    before: float = TIME_BEFORE_TSTART,
    after: float = TIME_AFTER_TSTOP,
    column: str = "TIME",
    ordered: bool = True,
) -> None:
    """Refuse row times that are not finite, decrease (when ``ordered``), or lie outside the
    file's span [tstart - before, tstop + after]: readers find rows through the files' spans,
    so rows outside it would never be served, and a NaN hides the slot's rows from the store.
    """
    t = np.asarray(times)
    if t.dtype.kind not in "fiu" or t.ndim != 1:
        raise RejectedFile(name, f"{column} is not a column of numbers ({t.dtype}, {t.ndim}-D)")
    if not len(t):
        return
    finite = np.isfinite(t)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise RejectedFile(
            name, f"{column} is not finite in {rows_text(len(bad))} (first row {bad[0]})"
        )
    if ordered:
        down = np.flatnonzero(t[1:] < t[:-1])
        if len(down):
            i = down[0]
            raise RejectedFile(name, f"{column} decreases at row {i + 1} ({t[i]} -> {t[i + 1]})")
    # sorted, the first and last rows bound the others (no pass over the rows)
    first, last = (t[0], t[-1]) if ordered else (t.min(), t.max())
    if first < tstart - before:
        n = int(np.count_nonzero(t < tstart - before))
        raise RejectedFile(
            name,
            f"{rows_text(n)} with {column} before TSTART {tstart} - {before:g} s (first {first})",
        )
    if last > tstop + after:
        n = int(np.count_nonzero(t > tstop + after))
        raise RejectedFile(
            name, f"{rows_text(n)} with {column} after TSTOP {tstop} + {after:g} s (last {last})"
        )


def check_int(name: str, key: str, value: Any, lo: int, hi: int) -> int:
    """An integer header value within [lo, hi] (a float, bool or text is refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise RejectedFile(name, f"{key} {value!r} is not an integer")
    if not lo <= value <= hi:
        raise RejectedFile(name, f"{key} {value} is outside {lo}..{hi}")
    return int(value)


def check_finite(name: str, key: str, value: Any) -> None:
    """Refuse a parsed number that is NaN or infinite, or an integer beyond 64 bits (the
    index keeps them in SQLite, whose integers are 64-bit)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise RejectedFile(name, f"parameter {key}: {value} is not a finite number")
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise RejectedFile(name, f"parameter {key}: {value} is outside the 64-bit integers")


@dataclass(frozen=True)
class ColumnFormat:
    """A table column's definition as the product's files write it."""

    tform: str  # e.g. '1D', '64E', '4A' (a repeat of 1 may be left out in the file)
    tdim: tuple[int, ...] | None = None
    tzero: float = 0.0
    tscal: float = 1.0


_TFORM_RE = re.compile(r"\s*(\d*)\s*([A-Za-z])\s*(.*?)\s*")
_TDIM_RE = re.compile(r"\s*\(\s*(\d+(?:\s*,\s*\d+)*)\s*\)\s*")


def _tform(text: str) -> str:
    """TFORM with its repeat made explicit ('D' -> '1D'); unparseable text as it is."""
    match = _TFORM_RE.fullmatch(text)
    if not match:
        return text
    repeat, code, rest = match.groups()
    return f"{int(repeat) if repeat else 1}{code.upper()}{rest}"


def _tdim(text: str) -> tuple[int, ...] | str:
    match = _TDIM_RE.fullmatch(text)
    return tuple(int(x) for x in match.group(1).split(",")) if match else text


def _show(key: str, value: Any) -> str:
    if isinstance(value, tuple):
        value = "(" + ",".join(map(str, value)) + ")"
    return f"{key} {value}" if value is not None else f"no {key}"


def check_columns(name: str, hdu: Any, formats: Mapping[str, ColumnFormat]) -> None:
    """Refuse a table whose columns (those in ``formats``) are defined otherwise: astropy
    converts silently what a wrong TFORM/TZERO/TSCAL says (a 32-bit 40000 read as 16-bit
    is -25536), and a wrong shape breaks the readers. TZERO 0 and TSCAL 1 are the same
    as absent. ``hdu`` is astropy's ``BinTableHDU`` or a `mica.engine.fastfits.FastTable`
    (its ``columns``: the TFORM/TDIM/TZERO/TSCAL cards as parsed)."""
    cols = hdu.columns
    names = list(cols.names)
    if len(set(names)) < len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise RejectedFile(name, f"duplicate columns {', '.join(dupes)}")
    for col in cols:
        want = formats.get(col.name)
        if want is None:
            continue
        found = {
            "TFORM": _tform(str(col.format)),
            "TDIM": None if col.dim is None else _tdim(str(col.dim)),
            "TZERO": col.bzero or None,
            "TSCAL": None if col.bscale in (None, 1) else col.bscale,
        }
        expected = {
            "TFORM": want.tform,
            "TDIM": want.tdim,
            "TZERO": want.tzero or None,
            "TSCAL": None if want.tscal == 1 else want.tscal,
        }
        for key, got in found.items():
            if got != expected[key]:
                wanted = _show(key, expected[key])
                raise RejectedFile(
                    name, f"column {col.name} has {_show(key, got)}, expected {wanted}"
                )
