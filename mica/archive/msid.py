"""A cheta-like time series of one ACA pseudo-MSID, shared by header-3 and L0 columns.

`MSID` holds ``msid, vals, times, bads, unit, desc, tstart, tstop, datestart, datestop``,
with ``filter_bad()``, ``copy()``, ``plot()`` and a repr giving name, range, count and unit;
`MSIDset` is an ordered dict name -> `MSID` with ``interpolate(dt)`` onto one time grid.
A statistics MSID (``stat`` ``'5min'`` or ``'daily'``, as cheta's) holds one sample per bin:
``times`` the bins' midpoints, ``vals`` their means, and cheta's other columns
(`STAT_COLUMNS`: ``mins``, ``maxes``, ``samples``, ...).
`mica.archive.aca_hdr3.MSID` (header-3 items) and `mica.archive.aca_l0.MSID` (columns of one
slot) are this class, filled from their archives.

Examples
--------
>>> import numpy as np
>>> from mica.archive.msid import MSID, MSIDset
>>> vals = np.ma.masked_array([1.0, 2.0, 3.0, 4.0], mask=[False, True, False, False])
>>> m = MSID("demo", vals, [0.0, 4.1, 8.2, 12.3], unit="degC", desc="a demo")
>>> m
<MSID demo [a demo] 1997:365:23:58:56.816 .. 1997:365:23:59:09.116: 4 samples (1 bad), unit 'degC'>
>>> m.bads.tolist()
[False, True, False, False]
>>> m.filter_bad(copy=True).vals.tolist()
[1.0, 3.0, 4.0]
"""

from __future__ import annotations

import copy as _copy
from collections import OrderedDict
from typing import Any

import numpy as np

from mica.errors import InvalidArgumentError
from mica.time import to_date

__all__ = ["MSID", "MSIDset", "STAT_COLUMNS"]

#: cheta's names of a statistics MSID's per-bin columns, besides ``times`` (the bins'
#: midpoints) and ``vals`` (``means``); the percentiles are those of daily bins only.
STAT_COLUMNS = (
    "indexes",
    "samples",
    "midvals",
    "mins",
    "maxes",
    "means",
    "stds",
    "p01s",
    "p05s",
    "p16s",
    "p50s",
    "p84s",
    "p95s",
    "p99s",
)


class _Span:
    """``datestart``/``datestop`` of ``tstart``/``tstop``, formatted when asked (a date
    conversion costs more than the rest of a short fetch)."""

    tstart: float
    tstop: float

    @property
    def datestart(self) -> str:
        """``tstart`` as a Chandra date (UTC), 'YYYY:DDD:hh:mm:ss.sss'."""
        return to_date(self.tstart)

    @property
    def datestop(self) -> str:
        """``tstop`` as a Chandra date (UTC)."""
        return to_date(self.tstop)


class MSID(_Span):
    """One pseudo-MSID's samples: values, CXC-second times and which samples are bad.

    Parameters
    ----------
    msid : str
        Name as asked (e.g. ``"ccd_temp"``, ``"TEMPCCD"``).
    vals : array-like
        Values, one per time (a masked array: masked samples are bad).
    times : array-like
        Sample times, CXC seconds (s).
    unit : str, optional
        Unit of ``vals`` (``""`` for counts, flags and status words).
    desc : str, optional
        One-line description.
    tstart, tstop : float, optional
        The asked range, CXC seconds (default: the first and last time).
    stat : str, optional
        ``'5min'`` or ``'daily'`` for statistics (the samples are bins); None for samples.
    columns : mapping, optional
        A statistics MSID's per-bin columns by name (`STAT_COLUMNS`), one value per time.

    Attributes
    ----------
    vals : numpy.ma.MaskedArray or numpy.ndarray
        Values (plain once `filter_bad` dropped the bad ones); a statistics MSID's means.
    times : numpy.ndarray
        float64 CXC seconds (s); a statistics MSID's bin midpoints.
    bads : numpy.ndarray
        bool per sample, True where the value is not available (masked).
    unit, desc : str
        Unit and description.
    stat : str or None
        The statistic, or None.
    indexes, samples, midvals, mins, maxes, means, stds, p01s ... p99s : numpy.ndarray
        A statistics MSID's columns (`STAT_COLUMNS`), as cheta names them: bin index,
        number of samples, the middle sample, extremes, time-weighted mean and standard
        deviation, and (daily) percentiles.
    """

    def __init__(
        self,
        msid: str,
        vals: Any,
        times: Any,
        unit: str = "",
        desc: str = "",
        tstart: float | None = None,
        tstop: float | None = None,
        stat: str | None = None,
        columns: dict[str, np.ndarray] | None = None,
    ):
        self.msid = msid
        self.vals = vals
        self.times = np.asarray(times, dtype=np.float64)
        self.unit = unit
        self.desc = desc
        first, last = (float(self.times[0]), float(self.times[-1])) if len(self.times) else (0, 0)
        self.tstart = first if tstart is None else float(tstart)
        self.tstop = last if tstop is None else float(tstop)
        self.stat = stat
        for name, values in (columns or {}).items():
            if name not in STAT_COLUMNS:
                raise ValueError(f"not a statistics column: {name!r} (one of {STAT_COLUMNS})")
            setattr(self, name, values)

    @property
    def stat_columns(self) -> list[str]:
        """The statistics columns this MSID holds (`STAT_COLUMNS`; none for samples)."""
        return [name for name in STAT_COLUMNS if name in self.__dict__]

    @property
    def bads(self) -> np.ndarray:
        """True where a sample is bad (masked); all False after `filter_bad`."""
        mask = np.ma.getmaskarray(self.vals)
        return mask.reshape(len(mask), -1).any(axis=1) if mask.ndim > 1 else mask.copy()

    def __len__(self) -> int:
        return len(self.times)

    def _label(self) -> str:
        return self.msid

    def __repr__(self) -> str:
        desc = f" [{self.desc}]" if self.desc else ""
        nbad = int(np.count_nonzero(self.bads))
        stat = f" {self.stat} bins" if self.stat else " samples"
        return (
            f"<MSID {self._label()}{desc} {self.datestart} .. {self.datestop}: "
            f"{len(self)}{stat} ({nbad} bad), unit {self.unit!r}>"
        )

    def _after_interpolate(self, keep: np.ndarray) -> None:
        """Other per-sample arrays follow ``vals`` onto the new grid (none here)."""

    def _keep(self, good: np.ndarray) -> None:
        """Keep the samples where ``good`` (subclasses narrow their other arrays too)."""
        self.vals = np.asarray(np.ma.getdata(self.vals))[good]
        self.times = self.times[good]
        for name in self.stat_columns:
            setattr(self, name, getattr(self, name)[good])

    def filter_bad(self, copy: bool = False) -> MSID:
        """Drop bad samples (``vals`` becomes a plain array); return the result.

        Parameters
        ----------
        copy : bool
            Filter a copy and leave this MSID unchanged.

        Returns
        -------
        MSID
            This MSID (or the copy) with good samples only.
        """
        obj = self.copy() if copy else self
        obj._keep(~obj.bads)
        return obj

    def copy(self) -> MSID:
        """Deep copy."""
        return _copy.deepcopy(self)

    def _bin_boxes(self, times: np.ndarray, mins: np.ndarray, maxes: Any) -> list:
        """The min..max box of each statistics bin centred at ``times`` (plot date units)."""
        from mica.plot import cxctime2plotdate
        from mica.products.hdr3_stats import STATS_DT

        half = STATS_DT[self.stat] / 86400.0 / 2
        x = cxctime2plotdate(times) if len(times) else np.zeros(0)
        lo, hi = np.asarray(mins, dtype=float), np.asarray(maxes, dtype=float)
        return [[(c - half, a), (c + half, a), (c + half, b), (c - half, b)]
                for c, a, b in zip(x, lo, hi)]  # fmt: skip

    def plot(
        self, fmt: str = ".", ax: Any = None, simulated: bool | None = None, **kwargs: Any
    ) -> Any:
        """Plot the good samples against time (day-of-year axis); returns the axes.

        The y label gives the name and unit, the title the description. The figure is
        stamped "SIMULATED DATA" when the samples are simulated. A statistics MSID draws its
        means at the bins' midpoints over a box per bin, as wide as the bin, from its
        minimum to its maximum.

        Parameters
        ----------
        fmt : str
            Matplotlib format string.
        ax : matplotlib.axes.Axes, optional
            Where to draw (default: the current axes of pyplot).
        simulated : bool, optional
            Stamp the figure "SIMULATED DATA". None (default): when the archive that
            ``MICA_ARCHIVE`` names is simulated, where the readers took the samples from
            unless given another ``data_root`` (then say which).
        **kwargs
            Passed on to `mica.plot.plot_cxctime` (e.g. ``ms=2``, ``interactive=False``).
        """
        from mica.plot import plot_cxctime

        good = ~self.bads
        times = self.times[good]
        vals = np.asarray(np.ma.getdata(self.vals)[good], dtype=float)
        band = self.stat and {"mins", "maxes"} <= set(self.stat_columns)
        if band:
            boxes = self._bin_boxes(times, np.asarray(self.mins)[good], self.maxes[good])
        if self.stat and "indexes" in self.stat_columns:
            # a gap between bins breaks the line (NaN is not drawn)
            gaps = np.flatnonzero(np.diff(np.asarray(self.indexes)[good]) > 1) + 1
            times = np.insert(times, gaps, (times[gaps - 1] + times[gaps]) / 2)
            vals = np.insert(vals, gaps, np.nan)
        kwargs.setdefault("label", f"{self.msid} {self.stat} means" if self.stat else self.msid)
        _, _, ax = plot_cxctime(times, vals, fmt, ax=ax, simulated=simulated, **kwargs)
        if band and len(times):
            from matplotlib.collections import PolyCollection

            # one box per bin, as wide as the bin: a bin between gaps shows too
            color = ax.get_lines()[-1].get_color()
            label = f"{self.stat} min..max"
            ax.add_collection(
                PolyCollection(boxes, facecolor=color, alpha=0.25, linewidth=0, label=label)
            )
            ax.autoscale_view()
        ax.set_ylabel(f"{self.msid} ({self.unit})" if self.unit else self.msid)
        if not ax.get_title():
            ax.set_title(self.desc or self.msid)
        return ax


class MSIDset(_Span, OrderedDict):
    """Ordered dict of pseudo-MSIDs (name -> `MSID`) over one time range.

    ``times`` is set where the items share one grid (header-3 sets, after `interpolate`).
    """

    times: np.ndarray

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {list(self)} {self.datestart} .. {self.datestop}: "
            f"{', '.join(f'{k} {len(v)} samples' for k, v in self.items())}>"
        )

    def interpolate(self, dt: float = 32.8, filter_bad: bool = True) -> MSIDset:
        """Put every MSID on one grid ``tstart, tstart + dt, ...`` (nearest good sample).

        Each grid time takes the value of the MSID's nearest good sample; it is bad when
        the MSID has no good sample within ``max(dt, its median sample spacing)``. With
        ``filter_bad`` the grid times where any MSID is bad are dropped from all of them.
        Changes the set in place (as cheta does) and returns it; a statistics MSID's other
        columns take the same bins as its ``vals``.

        Parameters
        ----------
        dt : float
            Grid spacing, seconds (s).
        filter_bad : bool
            Drop grid times where any MSID is bad (else they stay, flagged in ``bads``).

        Returns
        -------
        MSIDset
            This set, each `MSID` with ``times`` the grid and plain ``vals``.
        """
        if not dt > 0:
            raise InvalidArgumentError(f"dt must be a positive number of seconds, not {dt!r}")
        grid = np.arange(self.tstart, self.tstop, float(dt))
        bad = np.zeros(len(grid), dtype=bool)
        filled: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, msid in self.items():
            good = ~msid.bads
            times = msid.times[good]
            vals = np.asarray(np.ma.getdata(msid.vals))[good]
            if not len(times):
                shape = (len(grid), *np.shape(vals)[1:])
                filled[name] = (np.zeros(shape, dtype=vals.dtype), np.ones(len(grid), bool))
                bad[:] = True
                for column in msid.stat_columns:  # no bin to take
                    values = getattr(msid, column)
                    setattr(msid, column, np.zeros(len(grid), dtype=values.dtype))
                continue
            order = np.argsort(times, kind="stable")
            times, vals = times[order], vals[order]
            picked = np.flatnonzero(good)[order]  # the samples ``times`` and ``vals`` are
            right = np.clip(np.searchsorted(times, grid), 1, max(len(times) - 1, 1))
            left = right - 1 if len(times) > 1 else np.zeros_like(right)
            right = np.minimum(right, len(times) - 1)
            near = np.where(np.abs(times[left] - grid) <= np.abs(times[right] - grid), left, right)
            spacing = float(np.median(np.diff(times))) if len(times) > 1 else float(dt)
            far = np.abs(times[near] - grid) > max(float(dt), spacing)
            filled[name] = (vals[near], far)
            bad |= far
            for column in msid.stat_columns:
                setattr(msid, column, np.asarray(getattr(msid, column))[picked[near]])
        keep = ~bad if filter_bad else np.ones(len(grid), dtype=bool)
        self.times = grid[keep]
        for name, msid in self.items():
            for column in msid.stat_columns:
                setattr(msid, column, getattr(msid, column)[keep])
            vals, far = filled[name]
            if filter_bad:
                msid.vals = vals[keep]
            else:
                msid.vals = np.ma.masked_array(vals, mask=_rows(far, vals))
            msid.times = self.times.copy()
            msid._after_interpolate(keep)
        return self


def _rows(flags: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """A per-row flag broadcast to the shape of ``vals``."""
    return np.broadcast_to(flags.reshape(len(flags), *([1] * (np.ndim(vals) - 1))), np.shape(vals))
