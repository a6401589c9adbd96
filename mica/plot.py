"""Plot against Chandra time with day-of-year axes, as Ska users read them, and mark simulated data.

``plot_cxctime`` draws with ``%Y:%j`` tick labels (with ``%H:%M`` or ``%H:%M:%S`` on a second
line when the ticks are less than a day apart), at steps chosen from seconds to decades and
no more ticks than the axis has room for, so the labels never overlap. ``mark_simulated``
puts a visible "SIMULATED DATA" stamp on a figure; ``archive_is_simulated`` reads an
archive's provenance to decide whether it is needed.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.layout_engine import ConstrainedLayoutEngine, TightLayoutEngine
from matplotlib.ticker import FixedFormatter, FixedLocator, FuncFormatter, Locator
from matplotlib.transforms import ScaledTranslation

from mica.time import CxoTimeLike, conversion_scope, to_time

#: Tick steps in days, shortest first: seconds, minutes, hours, days; years are handled apart.
#: Every step below a day divides a day, so sub-day ticks fall at the same clock times daily.
_DAY_STEPS = (
    [s / 86400.0 for s in (1, 2, 5, 10, 15, 30)]
    + [m / 1440.0 for m in (1, 2, 5, 10, 15, 30)]
    + [h / 24.0 for h in (1, 2, 3, 6, 12)]
    + [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
)
_YEAR_STEPS = (1, 2, 5, 10, 20, 50)
#: The label formats: date only for steps of a day or more; below a day the clock time goes
#: on a second line, so no label is wider than ``YYYY:DDD``.
DATE_FORMAT = "%Y:%j"
TIME_FORMAT = "%Y:%j\n%H:%M"
SECONDS_FORMAT = "%Y:%j\n%H:%M:%S"
#: The widest tick label (``YYYY:DDD``) in ems of its font, with a margin over DejaVu Sans'
#: 4.8 for other fonts, and the least gap between two labels, in ems.
_LABEL_EMS = 5.0
_GAP_EMS = 1.0
SIM_MARK_GID = "mica-simulated-mark"
SIM_MARK_TEXT = "SIMULATED DATA"
#: The height the mark takes at the top of a figure (its 11 pt text, box and inset), points.
SIM_MARK_HEIGHT_PT = 26.0
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
    """Ticks at round day-of-year times: seconds, minutes, hours, days counted from day 001,
    or years.

    The step is the shortest one that gives at most ``maxticks`` ticks over the view and
    leaves room for the widest label between two ticks along the axis, at the tick labels'
    font size, so the same axis reads well from a minute to the whole mission, in a small
    figure or a large one.
    """

    def __init__(self, maxticks: int = 7) -> None:
        self.maxticks = maxticks
        self.step_days = 1.0  # the last step chosen, read by DoyFormatter

    def __call__(self) -> list[float]:
        vmin, vmax = self.axis.get_view_interval()
        return self.tick_values(vmin, vmax)

    def _least_step(self, span: float) -> float:
        """The least step (days) that leaves room for a label between two ticks: the
        widest label and a gap, at the tick labels' font size, along the axis' length."""
        axis = getattr(self, "axis", None)
        if axis is None or axis.axes is None or axis.axes.figure is None:
            return 0.0
        axes = axis.axes
        length_pt = axes.get_window_extent().width * 72.0 / axes.figure.dpi
        # the first tick's label has the labels' font (asking for all labels would ask us)
        size_pt = axis.get_major_ticks(numticks=1)[0].label1.get_size()
        return span * (_LABEL_EMS + _GAP_EMS) * size_pt / max(length_pt, 1.0)

    def tick_values(self, vmin: float, vmax: float) -> list[float]:
        vmin, vmax = sorted((float(vmin), float(vmax)))
        span = max(vmax - vmin, 1e-9)
        least = self._least_step(span)
        for step in _DAY_STEPS:
            # at least span / step - 1 multiples of the step lie in the view
            if step < least or span / step - 1 > self.maxticks:
                continue
            ticks = self._day_ticks(vmin, vmax, step)
            if len(ticks) <= self.maxticks:
                self.step_days = step
                return ticks
        for years in _YEAR_STEPS:
            if 365.25 * years >= least and span / (365.25 * years) + 1 <= self.maxticks:
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
        # The count restarts at each day 001, so a year's last tick can be closer than a step
        # to the next 001: it is dropped, so no two labels are closer than a step.
        return [t for t, nxt in zip(ticks, [*ticks[1:], np.inf]) if nxt - t >= step]


class DoyFormatter(FuncFormatter):
    """``%Y:%j`` labels for day steps and longer; below a day the clock time (``%H:%M``,
    or ``%H:%M:%S`` for steps under a minute) on a second line."""

    def __init__(self, locator: DoyLocator) -> None:
        self.locator = locator
        super().__init__(self._format)

    def _format(self, x: float, pos: int | None = None) -> str:
        step = self.locator.step_days
        fmt = DATE_FORMAT if step >= 1.0 else TIME_FORMAT if step >= 1 / 1440 else SECONDS_FORMAT
        return _to_datetime(x).strftime(fmt)


def set_time_axis(ax: Any, maxticks: int = 7, xlabel: str | None = "Date (UTC, YYYY:DOY)") -> None:
    """Give ``ax`` day-of-year ticks and an x label (None: keep the current one).

    The ticks follow the view: panning or zooming picks new ones at the next draw.
    """
    locator = DoyLocator(maxticks=maxticks)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(DoyFormatter(locator))
    if xlabel is not None:
        ax.set_xlabel(xlabel)


def _fit_labels(fig: Any) -> None:
    """Give ``fig`` matplotlib's tight layout, redone at every draw, so the two-line tick
    labels and the axis labels stay inside the figure at any size; a figure that has
    another layout engine, or axes placed by hand, is left as it is."""
    if fig.get_layout_engine() is None and all(a.get_subplotspec() for a in fig.axes):
        fig.set_layout_engine("tight")


def plot_cxctime(
    times: CxoTimeLike,
    y: Any,
    fmt: str = "-b",
    fig: Any = None,
    ax: Any = None,
    yerr: Any = None,
    xerr: Any = None,
    state_codes: Sequence[tuple[Any, str]] | None = None,
    interactive: bool = True,
    simulated: bool | None = None,
    **kwargs: Any,
) -> tuple[Any, Any, Any]:
    """Plot ``y`` against Chandra ``times`` with day-of-year tick labels.

    The x axis gets ``%Y:%j`` labels at steps chosen from seconds to decades (with the
    clock time on a second line when the ticks are less than a day apart), no more ticks
    than the axis has room for, and the x label ``Date (UTC, YYYY:DOY)``, as
    Ska.Matplotlib's ``plot_cxctime`` does. A figure without a layout engine gets
    matplotlib's tight layout, so the labels stay inside it at any size (call
    ``fig.set_layout_engine("none")`` to place the axes by hand). The figure is stamped
    "SIMULATED DATA" when the data are simulated.

    Parameters
    ----------
    times : CxoTimeLike
        Times as CXC seconds, date strings or an astropy ``Time``.
    y : array_like
        Values, one per time (masked values are not drawn).
    fmt : str, optional
        Matplotlib format string.
    fig, ax : optional
        Figure or axes to draw on (default: the current axes of pyplot).
    yerr, xerr : array_like, optional
        Error bars (``xerr`` in days).
    state_codes : sequence of (value, name), optional
        Label the y ticks with state names instead of numbers: a tick at each ``value``
        labelled ``name`` (as Ska.Matplotlib; e.g. ``[(0, "OFF"), (1, "ON")]``).
    interactive : bool, optional
        In pyplot's interactive mode (``plt.ion()``, IPython's ``%matplotlib``): draw the
        figure once at the end, so an open window shows the new data at once. False draws
        nothing (pyplot's own redraws are held during the call too): faster when making
        several plots; then ``plt.draw()``, ``plt.show()`` or ``savefig`` draws. The ticks
        follow panning and zooming either way (they are chosen at each draw).
    simulated : bool, optional
        Stamp the figure "SIMULATED DATA". None (default): when the archive that
        ``MICA_ARCHIVE`` names is simulated (`archive_is_simulated`), where mica's
        readers take the data from unless given another ``data_root``.
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
    ['2012:125\\n00:00', '2012:125\\n06:00']
    >>> _ = plot_cxctime(["2012:125", "2012:126"], [0, 1], "o", ax=ax,
    ...                  state_codes=[(0, "OFF"), (1, "ON")], interactive=False)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['OFF', 'ON']
    >>> plt.close(fig)
    """
    if ax is None:
        fig = fig or plt.gcf()  # made (and shown, in interactive mode) as pyplot does
        ax = fig.gca()
    else:
        fig = ax.figure
    redraw = interactive and plt.isinteractive()
    # pyplot's interactive mode would redraw at each step: one draw at the end, or none
    with plt.ioff():
        x = cxctime2plotdate(times)
        y = np.ma.asarray(y)
        if yerr is not None or xerr is not None:
            ax.errorbar(x, y, yerr=yerr, xerr=xerr, fmt=fmt, **kwargs)
        else:
            ax.plot(x, y, fmt, **kwargs)
        set_time_axis(ax)
        if state_codes is not None:
            values, names = zip(*state_codes)
            ax.yaxis.set_major_locator(FixedLocator(values))
            ax.yaxis.set_major_formatter(FixedFormatter(names))
        _fit_labels(fig)
        if simulated is None:
            from mica.config import archive_root

            simulated = archive_is_simulated(archive_root())
        if simulated:
            mark_simulated(fig)
    if redraw:
        fig.canvas.draw_idle()
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

    A figure carries one mark: stamping it again returns the mark it has. A figure laid out
    by a tight or constrained layout engine keeps its axes below the mark; others keep
    their layout (leave room at the top: e.g. ``fig.tight_layout(rect=(0, 0, 1, 0.95))``).

    Returns
    -------
    matplotlib.text.Text
        The mark.
    """
    for mark in fig.texts:
        if mark.get_gid() == SIM_MARK_GID:
            return mark
    engine = fig.get_layout_engine()
    if isinstance(engine, (TightLayoutEngine, ConstrainedLayoutEngine)):
        engine.set(rect=(0, 0, 1, 1 - SIM_MARK_HEIGHT_PT / 72.0 / fig.get_figheight()))
    # 4 points in from the top right corner, whatever the figure's size
    inset = ScaledTranslation(-4 / 72.0, -4 / 72.0, fig.dpi_scale_trans)
    return fig.text(
        1.0,
        1.0,
        text,
        transform=fig.transFigure + inset,
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
