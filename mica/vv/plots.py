"""Residual plots of a V&V slot.

What the plots show: each centroid's offset from where the aspect solution puts its star or
fid light (dy, dz, arcsec), green where the centroid's status is 0, red where it is not
(samples the dy, dz and dr statistics leave out); blue dashed lines where an aspect interval
starts (when there are several); in the dz vs dy panel, which holds every point, a circle
(drawn over the points) around the median offset whose radius is the V&V's large-offset
limit (0.7", guide stars) or a fid light's rms limit (0.05"). Time is in ks from the slot's
first sample, whose date the axis label gives. A legend says all this on each figure, and
plots of simulated data carry the "SIMULATED DATA" mark. Long slots are decimated to
``MAX_POINTS`` samples, plus every bad one.

Two ways to draw them:

* `plot_slot` (what users call, as ``Obi.plot_slot``) makes pyplot figures (``plt.figure``,
  as the original did): ``plt.show()`` shows them, ``plt.savefig`` writes the current one,
  and they stay open until closed (``plt.close(fig)``, or ``close=True``). One figure
  ``all`` of three panels (dz vs dy, dy and dz vs time), or with ``singles`` the original's
  five figures (``ayz``, ``ayzf``, ``ay``, ``az``, ``am``).
* `save_slot_plots` (the report's ``slot_<n>.png``) draws every slot on one
  ``matplotlib.figure.Figure`` that pyplot does not know: nothing stays open in the
  process that writes reports, and the figure, its axes and lines are made once for the
  eight slots, which keeps a report within its time budget (the original wrote five PNGs
  per slot). It draws the same panels as `plot_slot`'s ``all``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle
from matplotlib.ticker import MaxNLocator

from mica.plot import mark_simulated
from mica.time import to_date, to_secs
from mica.vv.disposition import DYZ_BIG_LIM, FID_LIMITS

if TYPE_CHECKING:
    from mica.vv.core import Obi

MAX_POINTS = 3000  # plotted samples per slot (evenly decimated: same look, bounded time)
DPI = 72  # of the report's PNGs and of the files plot_slot(save=True) writes
#: Keyed by "is a fid light": the half-width of the dz vs dy window around the median
#: (arcsec) when every point is inside it, and the circle's radius (arcsec).
FIXED_HALF = {True: 0.1, False: 1.0}
CIRCLE_RADIUS = {True: FID_LIMITS["dy_rms"], False: DYZ_BIG_LIM}
GOOD_COLOR, BAD_COLOR, START_COLOR = "green", "red", "blue"
#: The circle is drawn over the points (lines are at zorder 2): a star's thousands of
#: points would hide it.
CIRCLE_STYLE = {"fill": False, "color": "k", "lw": 1.5, "zorder": 3}


@dataclass
class _Slot:
    """One slot's samples as plotted (decimated, every bad one kept), with the time origin."""

    fid: bool
    ks: np.ndarray  # time since the origin, ks
    dy: np.ndarray
    dz: np.ndarray
    mag: np.ma.MaskedArray
    good: np.ndarray  # centroid status 0
    starts_ks: np.ndarray  # aspect interval starts, ks since the origin (when several)
    origin: str  # date of the first sample, to the second

    @property
    def time_label(self) -> str:
        return f"time (ks since {self.origin})"


def _every(n: int) -> int:
    return max(1, int(np.ceil(n / MAX_POINTS)))


def _shown(bad: np.ndarray) -> np.ndarray:
    """Which samples are plotted: every n-th, to at most ``MAX_POINTS``, and every one with a
    bad status (rare, and what a reader looks for), to at most ``MAX_POINTS`` more."""
    keep = np.zeros(len(bad), dtype=bool)
    keep[:: _every(len(bad))] = True
    bad_at = np.flatnonzero(bad)
    keep[bad_at[:: _every(len(bad_at))]] = True
    return keep


def _slot(obi: Obi, slot: int) -> _Slot | None:
    data = obi.all_slot_data.get(int(slot))
    meta = obi.slots_meta.get(int(slot))
    if data is None or meta is None:
        return None
    keep = _shown(np.asarray(data["qual"]) != 0)
    # the origin is the first sample's date to the second, so the label states it exactly
    origin = to_date(float(data["time"][0]))[:17]
    t0 = to_secs(origin)
    starts = np.asarray(data.get("ai_starts", np.zeros(0)), dtype=float)
    return _Slot(
        fid=meta["type"] == "FID",
        ks=(np.asarray(data["time"], dtype=float)[keep] - t0) / 1000.0,
        dy=np.asarray(data["dy"], dtype=float)[keep],
        dz=np.asarray(data["dz"], dtype=float)[keep],
        mag=np.ma.asarray(data["mag"])[keep],
        good=np.asarray(data["qual"])[keep] == 0,
        starts_ks=(starts - t0) / 1000.0 if len(starts) > 1 else np.zeros(0),
        origin=origin,
    )


def _title(obi: Obi, slot: int) -> str:
    return f"Obsid {obi.obsid} Slot {slot} Residuals"


def obi_is_simulated(obi: Obi) -> bool:
    """Simulated obspars say so in a ``simulated`` parameter (flight obspars have none)."""
    return bool(obi.obspar.get("simulated", False))


def _window(s: _Slot, fixed: bool) -> tuple[float, float, float]:
    """Centre (dy, dz) and half-width (arcsec) of a square dz vs dy window holding every
    point: around the median, at least the fixed half-width (``fixed``), else around the
    middle of the points' range."""
    if not len(s.dy):
        return 0.0, 0.0, FIXED_HALF[s.fid]
    if fixed:
        cy, cz = float(np.median(s.dy)), float(np.median(s.dz))
        least = FIXED_HALF[s.fid]
    else:
        cy, cz = (float(np.ptp(v) / 2 + np.min(v)) for v in (s.dy, s.dz))
        least = FIXED_HALF[s.fid] / 2
    reach = max(float(np.max(np.abs(s.dy - cy))), float(np.max(np.abs(s.dz - cz))))
    return cy, cz, max(least, 1.05 * reach)


def _circle_label(fid: bool) -> str:
    limit = "fid rms limit" if fid else "large-offset limit"
    return f'{CIRCLE_RADIUS[fid]:g}" around the median ({limit})'


def _legend_handles(s: _Slot, circle: bool, starts: bool = True) -> list[Any]:
    """Legend entries for what a figure draws: status 0 and other samples, the interval
    starts (when drawn: there are several), the circle."""
    handles = [
        Line2D([], [], ls="", marker=".", color=GOOD_COLOR, label="good centroid (status 0)"),
        Line2D([], [], ls="", marker=".", color=BAD_COLOR, label="bad centroid (status not 0)"),
    ]
    if starts and len(s.starts_ks):
        handles.append(Line2D([], [], color=START_COLOR, ls="--", label="aspect interval start"))
    if circle:
        handles.append(Circle((0, 0), 1, **CIRCLE_STYLE, label=_circle_label(s.fid)))
    return handles


def _few_ticks(ax: Any) -> None:
    """At most 5 ticks per axis: drawing the ticks is most of a plot's cost."""
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))


def _scatter(ax: Any, s: _Slot, fixed: bool) -> None:
    """dz vs dy of every sample; with ``fixed`` the circle and the window around the median."""
    ax.plot(s.dy[s.good], s.dz[s.good], ".", color=GOOD_COLOR, ms=2)
    ax.plot(s.dy[~s.good], s.dz[~s.good], ".", color=BAD_COLOR, ms=2)
    cy, cz, half = _window(s, fixed)
    if fixed:
        ax.add_patch(Circle((cy, cz), CIRCLE_RADIUS[s.fid], **CIRCLE_STYLE))
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlim(cy - half, cy + half)
    ax.set_ylim(cz - half, cz + half)
    ax.set_xlabel("dy (arcsec)")
    ax.set_ylabel("dz (arcsec)")
    _few_ticks(ax)


def _vs_time(ax: Any, s: _Slot, values: np.ndarray, label: str, keep: Any = slice(None)) -> None:
    """``values`` (of the samples ``keep`` selects) against time, with the interval starts."""
    ks, good = s.ks[keep], s.good[keep]
    ax.plot(ks[good], values[good], ".", color=GOOD_COLOR, ms=2)
    ax.plot(ks[~good], values[~good], ".", color=BAD_COLOR, ms=2)
    for start in s.starts_ks:
        ax.axvline(start, color=START_COLOR, ls="--")
    ax.set_ylabel(label)
    ax.set_xlabel(s.time_label)
    _few_ticks(ax)


def _singles(s: _Slot, title: str, simulated: bool) -> dict[str, Any]:
    """The original's five figures, each with its title and its legend below the panel."""
    wide = 7.9 if s.fid else 7.0
    specs = {"ayz": (3.6, 4.4), "ayzf": (3.6, 4.6), "ay": (wide, 3.2), "az": (wide, 3.2),
             "am": (7, 3.6)}  # fmt: skip
    figs = {}
    for key, size in specs.items():
        fig = plt.figure(figsize=size, layout="constrained")
        if simulated:
            mark_simulated(fig)  # with the layout engine set: the panel stays below it
        ax = fig.add_subplot(111)
        ax.set_title(title, fontsize="medium")
        if key in ("ayz", "ayzf"):
            _scatter(ax, s, fixed=key == "ayzf")
        elif key == "am":
            shown = ~np.ma.getmaskarray(s.mag)  # magnitudes of no counts are masked
            _vs_time(ax, s, np.ma.getdata(s.mag)[shown], "magnitude (mag)", shown)
            ax.invert_yaxis()
        else:
            _vs_time(ax, s, s.dy if key == "ay" else s.dz, f"d{key[1]} (arcsec)")
        scatter = key in ("ayz", "ayzf")
        handles = _legend_handles(s, circle=key == "ayzf", starts=not scatter)
        ncol = 1 if scatter else 2  # the scatter figures are narrow
        fig.legend(handles=handles, loc="outside lower center", ncol=ncol, fontsize="small")
        figs[key] = fig
    return figs


class _SlotFigure:
    """The three panels of a slot (dz vs dy in a window around the median, dy and dz vs
    time) on ``fig``, reusable for every slot of a report: its axes, ticks and lines are
    made once and only their data change (making them is half of a plot's cost)."""

    def __init__(self, fig: Figure, simulated: bool = False) -> None:
        self.fig = fig
        if simulated:
            mark_simulated(fig)
        grid = fig.add_gridspec(2, 3)
        self.ayz = fig.add_subplot(grid[:, 0])
        self.ay = fig.add_subplot(grid[0, 1:])
        self.az = fig.add_subplot(grid[1, 1:], sharex=self.ay)
        self.ay.tick_params(labelbottom=False)  # the time panels share the lower's x axis
        fig.subplots_adjust(hspace=0.12, wspace=0.4, left=0.09, right=0.98, top=0.88)
        self.lines = {}
        for name, ax in (("yz", self.ayz), ("y", self.ay), ("z", self.az)):
            good = ax.plot([], [], ".", color=GOOD_COLOR, ms=2)[0]
            bad = ax.plot([], [], ".", color=BAD_COLOR, ms=2)[0]
            self.lines[name] = (good, bad)
            _few_ticks(ax)
        self.circle = Circle((0, 0), 1, **CIRCLE_STYLE)
        self.ayz.add_patch(self.circle)
        self.ayz.set_aspect("equal", adjustable="box")
        self.ayz.set_xlabel("dy (arcsec)")
        self.ayz.set_ylabel("dz (arcsec)")
        self.ay.set_ylabel("dy (arcsec)")
        self.az.set_ylabel("dz (arcsec)")
        self.ai_lines: list[Any] = []
        self.legend: Any = None
        self.title = fig.suptitle("")

    def draw(self, s: _Slot, title: str) -> None:
        """Put a slot's samples on the panels."""
        self.title.set_text(title)
        for name, (x, y) in (("yz", (s.dy, s.dz)), ("y", (s.ks, s.dy)), ("z", (s.ks, s.dz))):
            good, bad = self.lines[name]
            good.set_data(x[s.good], y[s.good])
            bad.set_data(x[~s.good], y[~s.good])
        cy, cz, half = _window(s, fixed=True)
        self.circle.set_center((cy, cz))
        self.circle.set_radius(CIRCLE_RADIUS[s.fid])
        self.ayz.set_xlim(cy - half, cy + half)
        self.ayz.set_ylim(cz - half, cz + half)
        for line in self.ai_lines:
            line.remove()
        self.ai_lines = [
            ax.axvline(start, color=START_COLOR, ls="--")
            for ax in (self.ay, self.az)
            for start in s.starts_ks
        ]
        lo_t, hi_t = (float(s.ks[0]), float(s.ks[-1])) if len(s.ks) else (0.0, 1.0)
        pad_t = 0.02 * (hi_t - lo_t) + 0.01
        self.az.set_xlim(lo_t - pad_t, hi_t + pad_t)
        self.az.set_xlabel(s.time_label)
        for ax, v in ((self.ay, s.dy), (self.az, s.dz)):
            lo, hi = (float(np.min(v)), float(np.max(v))) if len(v) else (-1.0, 1.0)
            pad = 0.05 * (hi - lo) + 1e-3
            ax.set_ylim(lo - pad, hi + pad)
        if self.legend is not None:
            self.legend.remove()
        # below the dz vs dy panel, which is square and so leaves its column's foot free
        self.legend = self.fig.legend(
            handles=_legend_handles(s, circle=True),
            loc="lower left",
            bbox_to_anchor=(0.005, 0.005),
            fontsize="small",
        )


def plot_slot(
    obi: Obi,
    slot_num: int,
    plotdir: str | Path | None = None,
    save: bool = False,
    singles: bool = False,
    close: bool = False,
) -> dict[str, Any]:
    """Figures of one slot's residuals, made with pyplot (``plt.figure``) as the original.

    Parameters
    ----------
    obi : Obi
        The V&V.
    slot_num : int
        The slot.
    plotdir : path-like, optional
        Where ``save`` writes the PNGs (default: the current folder).
    save : bool
        Write ``slot_<n>.png`` (or the five ``slot_<n>_{yz,yzf,y,z,m}.png`` with ``singles``).
    singles : bool
        Five figures instead of one.
    close : bool
        Close the figures in pyplot once made (and saved): they stay usable as objects but
        ``plt.show()`` no longer shows them (for making many).

    Returns
    -------
    dict
        ``{'all': Figure}`` or ``{'ayz', 'ayzf', 'ay', 'az', 'am'}``, pyplot figures (see
        the module's description of what they show); empty when the slot has no data (the
        original returned ``(None, None)``).
    """
    s = _slot(obi, slot_num)
    if s is None:
        return {}
    simulated = obi_is_simulated(obi)
    if singles:
        figs = _singles(s, _title(obi, slot_num), simulated)
    else:
        panels = _SlotFigure(plt.figure(figsize=(10, 6)), simulated)
        panels.draw(s, _title(obi, slot_num))
        figs = {"all": panels.fig}
    if save:
        out = Path(plotdir) if plotdir is not None else Path.cwd()
        names = {"all": "", "ayz": "_yz", "ayzf": "_yzf", "ay": "_y", "az": "_z", "am": "_m"}
        for key, fig in figs.items():
            fig.savefig(out / f"slot_{slot_num}{names[key]}.png", dpi=DPI)
    if close:
        for fig in figs.values():
            plt.close(fig)
    return figs


def save_slot_plots(obi: Obi, folder: Path, simulated: bool = False) -> list[Path]:
    """``slot_<n>.png`` of every slot with data into ``folder`` (the panels of
    `plot_slot`'s ``all``), marked when ``simulated``.

    The figure is a ``matplotlib.figure.Figure`` pyplot does not know, made once for all
    slots: nothing stays open in the process, and a report keeps within its time budget.
    """
    out = []
    panels = None
    for slot in sorted(obi.all_slot_data):
        s = _slot(obi, slot)
        if s is None:
            continue
        panels = panels or _SlotFigure(Figure(figsize=(10, 6), dpi=DPI), simulated)
        panels.draw(s, _title(obi, slot))
        path = folder / f"slot_{slot}.png"
        panels.fig.savefig(path)
        out.append(path)
    return out
