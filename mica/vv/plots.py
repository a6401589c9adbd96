"""Residual plots of a V&V slot (matplotlib, Agg, no pyplot state).

`plot_slot` gives the original's five single figures (``ayz``, ``ayzf``, ``ay``, ``az``,
``am``) with ``singles``, else one figure ``all`` holding the same panels; the archive keeps
that one per slot (``slot_<n>.png``), which is what keeps a report within its time budget
(the original wrote five PNGs per slot).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from matplotlib.ticker import MaxNLocator

from mica.plot import mark_simulated

if TYPE_CHECKING:
    from mica.vv.core import Obi

MAX_POINTS = 3000  # plotted samples per slot (evenly decimated: same look, bounded time)
DPI = 72


def _few_ticks(ax: Any) -> None:
    """At most 5 ticks per axis: drawing the ticks is most of a plot's cost."""
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))


def _thin(n: int) -> slice:
    return slice(None, None, max(1, int(np.ceil(n / MAX_POINTS))))


def _yz(ax: Any, dy: np.ndarray, dz: np.ndarray, good: np.ndarray, fid: bool, fixed: bool) -> None:
    ax.plot(dy[good], dz[good], ".", color="green", ms=2)
    ax.plot(dy[~good], dz[~good], ".", color="red", ms=2)
    if fixed:
        cy, cz = (float(np.median(v)) if len(v) else 0.0 for v in (dy, dz))
        half = 0.1 if fid else 1.0
        ax.add_patch(Circle((cy, cz), 0.05 if fid else 0.7, fill=False, color="k"))
    else:
        gy, gz = (dy[good], dz[good]) if good.any() else (dy, dz)
        cy, cz = (float(np.ptp(v) / 2 + np.min(v)) if len(v) else 0.0 for v in (gy, gz))
        half = max(
            1.1
            * max(float(np.ptp(gy)) / 2 if len(gy) else 0, float(np.ptp(gz)) / 2 if len(gz) else 0),
            0.05 if fid else 0.5,
        )
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlim(cy - half, cy + half)
    ax.set_ylim(cz - half, cz + half)
    ax.set_xlabel('dy (")')
    ax.set_ylabel('dz (")')
    _few_ticks(ax)


def _vs_time(ax: Any, t: np.ndarray, v: np.ndarray, good: np.ndarray, label: str,
             ai_starts: np.ndarray, t0: float) -> None:  # fmt: skip
    ks = (t - t0) / 1000.0
    ax.plot(ks[good], v[good], ".", color="green", ms=2)
    ax.plot(ks[~good], v[~good], ".", color="red", ms=2)
    if len(ai_starts) > 1:
        for start in ai_starts:
            ax.axvline((start - t0) / 1000.0, color="blue", ls="--")
    ax.set_ylabel(label)
    ax.set_xlabel("time (ks)")
    _few_ticks(ax)


def _mag(ax: Any, t: np.ndarray, mag: np.ma.MaskedArray, t0: float) -> None:
    ks = (t - t0) / 1000.0
    m = np.ma.getdata(mag).astype(float)
    ok = ~np.ma.getmaskarray(mag)
    ax.plot(ks[ok], m[ok], ".", color="green", ms=2)
    ax.invert_yaxis()
    ax.set_ylabel("mag")
    ax.set_xlabel("time (ks)")
    _few_ticks(ax)


def plot_slot(
    obi: Obi,
    slot_num: int,
    plotdir: str | Path | None = None,
    save: bool = False,
    singles: bool = False,
) -> dict[str, Figure]:
    """Figures of one slot's residuals.

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

    Returns
    -------
    dict
        ``{'all': Figure}`` or ``{'ayz', 'ayzf', 'ay', 'az', 'am'}``; empty when the slot has
        no data (the original returned ``(None, None)``).
    """
    data = obi.all_slot_data.get(int(slot_num))
    meta = obi.slots_meta.get(int(slot_num))
    if data is None or meta is None:
        return {}
    fid = meta["type"] == "FID"
    sel = _thin(len(data["time"]))
    t, dy, dz = data["time"][sel], data["dy"][sel], data["dz"][sel]
    mag = data["mag"][sel]
    good = np.asarray(data["qual"])[sel] == 0
    t0 = float(data["time"][0])
    starts = data.get("ai_starts", np.zeros(0))
    title = f"Obsid {obi.obsid} Slot {slot_num} Residuals"
    figs: dict[str, Figure] = {}
    if singles:
        wide = 7.9 if fid else 7.0
        specs = {"ayz": (3, 3), "ayzf": (3, 3), "ay": (wide, 2.5), "az": (wide, 2.5), "am": (7, 3)}
        for key, size in specs.items():
            fig = Figure(figsize=size, dpi=DPI)
            ax = fig.add_subplot(111)
            if key in ("ayz", "ayzf"):
                _yz(ax, dy, dz, good, fid, fixed=key == "ayzf")
            elif key == "am":
                _mag(ax, t, mag, t0)
            else:
                _vs_time(ax, t, dy if key == "ay" else dz, good, f'{key[1]} (")', starts, t0)
            fig.tight_layout()
            figs[key] = fig
    else:
        # four panels (the fixed-window dz vs dy, magnitude, dy and dz vs time): every
        # panel costs ~40 ms to draw, and a report has 8 slots
        fig = Figure(figsize=(10, 6), dpi=DPI)
        fig.suptitle(title)
        grid = fig.add_gridspec(2, 3)
        _yz(fig.add_subplot(grid[:, 0]), dy, dz, good, fid, fixed=True)
        _vs_time(fig.add_subplot(grid[0, 1:]), t, dy, good, 'dy (")', starts, t0)
        _vs_time(fig.add_subplot(grid[1, 1:]), t, dz, good, 'dz (")', starts, t0)
        fig.subplots_adjust(hspace=0.35, wspace=0.4, left=0.07, right=0.98)
        figs["all"] = fig
    if save:
        out = Path(plotdir) if plotdir is not None else Path.cwd()
        names = {"all": "", "ayz": "_yz", "ayzf": "_yzf", "ay": "_y", "az": "_z", "am": "_m"}
        for key, fig in figs.items():
            fig.savefig(out / f"slot_{slot_num}{names[key]}.png")
    return figs


class _SlotFigure:
    """One figure reused for every slot of a report: its axes, ticks and lines are made
    once and only their data change (making them is half of a plot's cost)."""

    def __init__(self, simulated: bool = False) -> None:
        self.fig = Figure(figsize=(10, 6), dpi=DPI)
        if simulated:
            mark_simulated(self.fig)
        grid = self.fig.add_gridspec(2, 3)
        self.ayz = self.fig.add_subplot(grid[:, 0])
        self.ay = self.fig.add_subplot(grid[0, 1:])
        self.az = self.fig.add_subplot(grid[1, 1:])
        self.fig.subplots_adjust(hspace=0.35, wspace=0.4, left=0.07, right=0.98)
        self.lines = {}
        for name, ax in (("yz", self.ayz), ("y", self.ay), ("z", self.az)):
            good = ax.plot([], [], ".", color="green", ms=2)[0]
            bad = ax.plot([], [], ".", color="red", ms=2)[0]
            self.lines[name] = (good, bad)
            _few_ticks(ax)
        self.circle = Circle((0, 0), 1, fill=False, color="k")
        self.ayz.add_patch(self.circle)
        self.ayz.set_aspect("equal", adjustable="box")
        self.ayz.set_xlabel('dy (")')
        self.ayz.set_ylabel('dz (")')
        for ax, label in ((self.ay, 'dy (")'), (self.az, 'dz (")')):
            ax.set_ylabel(label)
            ax.set_xlabel("time (ks)")
        self.ai_lines: list[Any] = []
        self.title = self.fig.suptitle("")

    def draw(self, obi: Obi, slot: int, path: Path) -> None:
        data = obi.all_slot_data[slot]
        fid = obi.slots_meta[slot]["type"] == "FID"
        sel = _thin(len(data["time"]))
        t, dy, dz = data["time"][sel], data["dy"][sel], data["dz"][sel]
        good = np.asarray(data["qual"])[sel] == 0
        t0 = float(data["time"][0])
        ks = (t - t0) / 1000.0
        self.title.set_text(f"Obsid {obi.obsid} Slot {slot} Residuals")
        for name, (x, y) in (("yz", (dy, dz)), ("y", (ks, dy)), ("z", (ks, dz))):
            g, b = self.lines[name]
            g.set_data(x[good], y[good])
            b.set_data(x[~good], y[~good])
        cy, cz = (float(np.median(v)) if len(v) else 0.0 for v in (dy, dz))
        half = 0.1 if fid else 1.0
        self.circle.set_center((cy, cz))
        self.circle.set_radius(0.05 if fid else 0.7)
        self.ayz.set_xlim(cy - half, cy + half)
        self.ayz.set_ylim(cz - half, cz + half)
        for line in self.ai_lines:
            line.remove()
        self.ai_lines = []
        starts = data.get("ai_starts", np.zeros(0))
        for ax, v in ((self.ay, dy), (self.az, dz)):
            if len(starts) > 1:
                self.ai_lines += [
                    ax.axvline((s0 - t0) / 1000.0, color="blue", ls="--") for s0 in starts
                ]
            span = float(ks[-1]) if len(ks) else 1.0
            ax.set_xlim(-0.02 * span - 0.01, 1.02 * span + 0.01)
            lo, hi = (float(np.min(v)), float(np.max(v))) if len(v) else (-1.0, 1.0)
            pad = 0.05 * (hi - lo) + 1e-3
            ax.set_ylim(lo - pad, hi + pad)
        self.fig.savefig(path)


def save_slot_plots(obi: Obi, folder: Path, simulated: bool = False) -> list[Path]:
    """``slot_<n>.png`` of every slot with data into ``folder`` (the fixed-window dz vs dy,
    dy and dz vs time; `plot_slot` draws the same for one slot), marked when ``simulated``."""
    out = []
    fig = None
    for slot in sorted(obi.all_slot_data):
        if slot not in obi.slots_meta:
            continue
        fig = fig or _SlotFigure(simulated)
        path = folder / f"slot_{slot}.png"
        fig.draw(obi, slot, path)
        out.append(path)
    return out
