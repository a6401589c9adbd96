"""Plot against Chandra time with day-of-year axes, as Ska users read them, and mark simulated data.

``plot_cxctime`` draws with the ``%Y:%j`` (and ``%Y:%j:%H:%M`` for spans of a day or less) tick
labels of Ska.Matplotlib, with tick steps chosen from minutes to decades. ``mark_simulated``
puts a visible "SIMULATED DATA" stamp on a figure; ``archive_is_simulated`` reads an archive's
provenance to decide whether it is needed.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, Locator

from mica.time import CxoTimeLike, conversion_scope, to_time

#: Tick steps in days, shortest first: minutes, hours, days; years are handled apart.
_DAY_STEPS = (
    [m / 1440.0 for m in (1, 2, 5, 10, 15, 30)]
    + [h / 24.0 for h in (1, 2, 3, 6, 12)]
    + [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
)
_YEAR_STEPS = (1, 2, 5, 10, 20, 50)
#: The label formats: date only for steps of a day or more, with hours below.
DATE_FORMAT = "%Y:%j"
TIME_FORMAT = "%Y:%j:%H:%M"
SIM_MARK_GID = "mica-simulated-mark"
SIM_MARK_TEXT = "SIMULATED DATA"
DPI = 150


def _epoch_offset() -> float:
    """Matplotlib date number of 1970-01-01 (0 unless the user moved matplotlib's epoch)."""
    return float(mdates.date2num(np.datetime64("1970-01-01T00:00:00")))


def cxctime2plotdate(times: CxoTimeLike) -> np.ndarray:
    """Matplotlib date numbers (UTC days) for Chandra times.

    Parameters
    ----------
    times : CxoTimeLike
        CXC seconds, date strings or an astropy ``Time`` (scalar or sequence).

    Returns
    -------
    numpy.ndarray
        Matplotlib date numbers (days since matplotlib's epoch, UTC), at least 1-d.

    Examples
    --------
    >>> from mica.plot import cxctime2plotdate
    >>> float(cxctime2plotdate("2012:001:00:00:00")[0])
    15340.0
    """
    from astropy.time import Time

    if not isinstance(times, (str, Time)):
        arr = np.asarray(times)
        # Numbers are CXC seconds; a sequence of dates goes to astropy as it is.
        times = np.atleast_1d(arr.astype(np.float64) if arr.dtype.kind in "iuf" else arr)
    with conversion_scope():
        t = to_time(times)
        return np.atleast_1d(t.utc.jd - 2440587.5) + _epoch_offset()


def _to_datetime(num: float) -> _dt.datetime:
    return mdates.num2date(num, tz=_dt.timezone.utc)


class DoyLocator(Locator):
    """Ticks at round day-of-year times: minutes, hours, days counted from day 001, or years.

    The step is the shortest one that gives at most ``maxticks`` ticks over the view, so the
    same axis reads well from an hour to the whole mission.
    """

    def __init__(self, maxticks: int = 7) -> None:
        self.maxticks = maxticks
        self.step_days = 1.0  # the last step chosen, read by DoyFormatter

    def __call__(self) -> list[float]:
        vmin, vmax = self.axis.get_view_interval()
        return self.tick_values(vmin, vmax)

    def tick_values(self, vmin: float, vmax: float) -> list[float]:
        vmin, vmax = sorted((float(vmin), float(vmax)))
        span = max(vmax - vmin, 1e-6)
        for step in _DAY_STEPS:
            if span / step <= self.maxticks:
                self.step_days = step
                return self._day_ticks(vmin, vmax, step)
        for years in _YEAR_STEPS:
            if span / (365.25 * years) <= self.maxticks:
                break
        self.step_days = 365.25 * years
        y0, y1 = _to_datetime(vmin).year, _to_datetime(vmax).year
        first = y0 - y0 % years
        return [
            float(mdates.date2num(_dt.datetime(y, 1, 1, tzinfo=_dt.timezone.utc)))
            for y in range(first, y1 + 1, years)
            if vmin <= mdates.date2num(_dt.datetime(y, 1, 1, tzinfo=_dt.timezone.utc)) <= vmax
        ]

    @staticmethod
    def _day_ticks(vmin: float, vmax: float, step: float) -> list[float]:
        if step < 1.0:
            # Below a day: multiples of the step from midnight (date numbers are whole at 00:00).
            k0, k1 = np.ceil(vmin / step - 1e-9), np.floor(vmax / step + 1e-9)
            return [float(k * step) for k in np.arange(k0, k1 + 1)]
        # Days: day-of-year 001, 001 + step, ... within each year, as users count them.
        ticks = []
        day = np.floor(vmin)
        while day <= vmax:
            if day >= vmin - 1e-9 and (_to_datetime(day).timetuple().tm_yday - 1) % step == 0:
                ticks.append(float(day))
            day += 1.0
        return ticks


class DoyFormatter(FuncFormatter):
    """``%Y:%j`` labels for day steps and longer, ``%Y:%j:%H:%M`` below a day."""

    def __init__(self, locator: DoyLocator) -> None:
        self.locator = locator
        super().__init__(self._format)

    def _format(self, x: float, pos: int | None = None) -> str:
        fmt = TIME_FORMAT if self.locator.step_days < 1.0 else DATE_FORMAT
        return _to_datetime(x).strftime(fmt)


def set_time_axis(ax: Any, maxticks: int = 7, xlabel: str | None = "Date (UTC, YYYY:DOY)") -> None:
    """Give ``ax`` day-of-year ticks and an x label (None: keep the current one)."""
    locator = DoyLocator(maxticks=maxticks)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(DoyFormatter(locator))
    if xlabel is not None:
        ax.set_xlabel(xlabel)


def plot_cxctime(
    times: CxoTimeLike,
    y: Any,
    fmt: str = "-b",
    fig: Any = None,
    ax: Any = None,
    yerr: Any = None,
    xerr: Any = None,
    **kwargs: Any,
) -> tuple[Any, Any, Any]:
    """Plot ``y`` against Chandra ``times`` with day-of-year tick labels.

    The x axis gets ``%Y:%j`` labels (``%Y:%j:%H:%M`` when the ticks are less than a day
    apart), at steps chosen from minutes to decades, and the x label
    ``Date (UTC, YYYY:DOY)``, as Ska.Matplotlib's ``plot_cxctime`` does.

    Parameters
    ----------
    times : CxoTimeLike
        Times as CXC seconds, date strings or an astropy ``Time``.
    y : array_like
        Values, one per time (masked values are not drawn).
    fmt : str, optional
        Matplotlib format string.
    fig, ax : optional
        Figure or axes to draw on (default: the current axes).
    yerr, xerr : array_like, optional
        Error bars (``xerr`` in days).
    **kwargs
        Passed to ``Axes.plot`` (or ``Axes.errorbar``).

    Returns
    -------
    ticks : numpy.ndarray
        The x tick positions (matplotlib date numbers, days).
    fig : matplotlib.figure.Figure
    ax : matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from mica.plot import plot_cxctime
    >>> fig, ax = plt.subplots()
    >>> ticks, fig, ax = plot_cxctime(["2012:125", "2012:126"], [1.0, 2.0], ".", ax=ax)
    >>> fig.canvas.draw()
    >>> [t.get_text() for t in ax.get_xticklabels()][:2]
    ['2012:125:00:00', '2012:125:06:00']
    >>> plt.close(fig)
    """
    if ax is None:
        fig = fig or plt.gcf()
        ax = fig.gca()
    else:
        fig = ax.figure
    x = cxctime2plotdate(times)
    y = np.ma.asarray(y)
    if yerr is not None or xerr is not None:
        ax.errorbar(x, y, yerr=yerr, xerr=xerr, fmt=fmt, **kwargs)
    else:
        ax.plot(x, y, fmt, **kwargs)
    set_time_axis(ax)
    return ax.get_xticks(), fig, ax


def archive_is_simulated(archive_root: str | Path) -> bool:
    """True when any product folder under ``archive_root`` records simulated provenance.

    Parameters
    ----------
    archive_root : str or Path
        The archive root (the folder holding ``aca0/``, ``asp1/``, ...) or one product folder.

    Returns
    -------
    bool
        Whether the ``archive.json`` of the folder or of one of its product folders says
        ``"kind": "simulated"``.
    """
    from mica.engine.provenance import SIMULATED, archive_kind

    root = Path(archive_root)
    folders = [root, *(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else []
    return any(archive_kind(f) == SIMULATED for f in folders)


def mark_simulated(fig: Any, text: str = SIM_MARK_TEXT) -> Any:
    """Stamp ``fig`` with a visible red "SIMULATED DATA" mark (a figure text, gid
    ``mica-simulated-mark``), so a plot of simulated data cannot pass for flight data.

    Returns
    -------
    matplotlib.text.Text
        The mark.
    """
    return fig.text(
        0.99,
        0.995,
        text,
        ha="right",
        va="top",
        color="red",
        fontsize=11,
        fontweight="bold",
        alpha=0.85,
        gid=SIM_MARK_GID,
        bbox={"boxstyle": "round", "fc": "white", "ec": "red", "alpha": 0.8},
    )


def save_figure(fig: Any, path: str | Path, simulated: bool, keep: list | None = None) -> Path:
    """Mark ``fig`` if the data are ``simulated`` and save it at 150 dpi; return the path.

    The figure is closed, unless ``keep`` is a list: then it is appended there (for callers
    that inspect the figures afterwards).
    """
    if simulated:
        mark_simulated(fig)
    fig.savefig(path, dpi=DPI)
    if keep is None:
        plt.close(fig)
    else:
        keep.append(fig)
    return Path(path)
