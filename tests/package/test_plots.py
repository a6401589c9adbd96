"""Plots for a report: day-of-year time axes, labels, colour bars, the simulated-data mark."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from mica.engine.provenance import write_provenance  # noqa: E402
from mica.plot import (  # noqa: E402
    SIM_MARK_GID,
    archive_is_simulated,
    mark_simulated,
    plot_cxctime,
)
from mica.time import to_secs  # noqa: E402
from tests.package.test_demo_figures import (  # noqa: E402
    assert_mark_clear,
    check_image_grid_ticks,
)

DATE = re.compile(r"^\d{4}:\d{3}$")
DATE_TIME = re.compile(r"^\d{4}:\d{3}\n\d{2}:\d{2}$")  # below a day: the time on a 2nd line
DATE_SECONDS = re.compile(r"^\d{4}:\d{3}\n\d{2}:\d{2}:\d{2}$")


def _labels(ax) -> list[str]:
    ax.figure.canvas.draw()
    return [t.get_text() for t in ax.get_xticklabels() if t.get_text()]


@pytest.mark.parametrize(
    ("span_s", "pattern"),
    [
        (60.0, DATE_SECONDS),  # seconds
        (600.0, DATE_TIME),  # minutes
        (3 * 3600.0, DATE_TIME),  # hours
        (86400.0, DATE_TIME),  # one day: hours
        (5 * 86400.0, DATE),  # days
        (40 * 86400.0, DATE),
        (400 * 86400.0, DATE),
        (25 * 365.25 * 86400.0, DATE),  # the mission: years
    ],
)
def test_plot_cxctime_day_of_year_ticks(span_s: float, pattern: re.Pattern) -> None:
    t0 = to_secs("2012:125:03:17:00")
    t = np.linspace(t0, t0 + span_s, 50)
    fig, ax = plt.subplots()
    ticks, _, _ = plot_cxctime(t, np.arange(50.0), ".", ax=ax)
    labels = _labels(ax)
    plt.close(fig)
    assert 2 <= len(labels) <= 7, labels
    assert all(pattern.match(s) for s in labels), labels
    assert len(set(labels)) == len(labels), labels  # no repeated label: each tick distinct
    assert ax.get_xlabel() == "Date (UTC, YYYY:DOY)"


def test_plot_cxctime_day_ticks_count_from_day_001() -> None:
    fig, ax = plt.subplots()
    plot_cxctime([to_secs("2012:100"), to_secs("2012:160")], [0, 1], ax=ax)
    labels = _labels(ax)
    plt.close(fig)
    days = [int(s.split(":")[1]) for s in labels]
    steps = {b - a for a, b in zip(days, days[1:])}
    assert len(steps) == 1, labels
    step = steps.pop()
    assert step in (10, 20) and all((d - 1) % step == 0 for d in days), labels


def test_plot_cxctime_day_ticks_across_new_year() -> None:
    """The count restarts at day 001: a year's last tick closer than a step to it is dropped."""
    fig, ax = plt.subplots()
    plot_cxctime([to_secs("2012:300"), to_secs("2013:040")], [0, 1], ax=ax)
    labels = _labels(ax)
    plt.close(fig)
    assert "2013:001" in labels, labels
    dates = [to_secs(s) for s in labels]
    gaps = {round((b - a) / 86400) for a, b in zip(dates, dates[1:])}
    assert min(gaps) >= max(gaps) - 6, labels  # 2012:361 (6 days before 001) is not a tick


def test_plot_cxctime_takes_dates_and_errorbars() -> None:
    fig, ax = plt.subplots()
    plot_cxctime(["2012:125", "2012:126", "2012:127"], [1.0, 2.0, 3.0], "o", ax=ax, yerr=0.1)
    labels = _labels(ax)
    plt.close(fig)
    assert "2012:126\n00:00" in labels or "2012:126" in labels, labels


def test_archive_is_simulated_reads_provenance(tmp_path: Path) -> None:
    sim, real = tmp_path / "sim", tmp_path / "real"
    (sim / "aca0").mkdir(parents=True)
    (real / "aca0").mkdir(parents=True)
    write_provenance(sim / "aca0", {"kind": "simulated", "source": "sim"})
    write_provenance(real / "aca0", {"kind": "real", "source": "cda"})
    assert archive_is_simulated(sim) and archive_is_simulated(sim / "aca0")
    assert not archive_is_simulated(real)
    assert not archive_is_simulated(tmp_path / "missing")


def test_mark_simulated_is_drawn(tmp_path: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    mark = mark_simulated(fig)
    fig.savefig(tmp_path / "m.png", dpi=50)
    bbox = mark.get_window_extent()
    plt.close(fig)
    assert mark.get_gid() == SIM_MARK_GID and "SIMULATED" in mark.get_text()
    assert mark.get_visible() and bbox.width > 20 and bbox.height > 5


def _marks(fig) -> list:
    return [t for t in fig.texts if t.get_gid() == SIM_MARK_GID]


def _check_axes(fig) -> None:
    """Every data axes has x and y labels with units (or is an image panel of a grid)."""
    for ax in fig.axes:
        if ax.images or ax.get_label() == "<colorbar>":
            continue
        assert ax.get_ylabel(), ax
        shared = ax.get_shared_x_axes().get_siblings(ax)
        assert any(a.get_xlabel() for a in shared), ax
        assert re.search(r"\(.+\)", ax.get_ylabel()), ax.get_ylabel()  # a unit in brackets


def test_demo_plots(docs_archive: Path, tmp_path: Path, monkeypatch) -> None:
    """The demo's plot functions on the documentation's archive: titles, labels with units,
    day-of-year ticks, a shared colour scale and colour bar on the image grid, integer DAC
    ticks with a density colour bar, a visible fit, the simulated mark, 150 dpi."""
    from mica.demo import plot_hdr3, plot_image_grid, plot_tempccd
    from mica.demo.dark import plot_model, plot_warm_fraction, warm_fractions
    from mica.sim.build import DOCS_L0_WINDOW, DOCS_WINDOW

    monkeypatch.setenv("MICA_ARCHIVE", str(docs_archive))
    figs: list = []
    paths = [
        plot_tempccd(docs_archive, tmp_path, DOCS_L0_WINDOW, keep=figs),
        plot_image_grid(docs_archive, tmp_path, DOCS_L0_WINDOW, keep=figs),
        *plot_hdr3(docs_archive, tmp_path, DOCS_WINDOW, keep=figs),
    ]
    wf = warm_fractions(docs_archive / "aca_dark")
    paths.append(plot_warm_fraction(wf, tmp_path, archive_is_simulated(docs_archive), figs))
    path, fit = plot_model(wf, tmp_path, archive_is_simulated(docs_archive), figs)
    paths.append(path)
    try:
        assert len(figs) == len(paths) == 6
        for fig, path in zip(figs, paths):
            assert len(_marks(fig)) == 1, path
            title = fig._suptitle.get_text() if fig._suptitle else ""
            assert title or fig.axes[0].get_title(), path  # the figure's title
            _check_axes(fig)
            with Image.open(path) as png:
                assert round(png.info["dpi"][0]) == 150, path
        tempccd, grid, ccd_temp, dac, warm, model = figs
        for fig, path in zip(figs, paths):
            assert_mark_clear(fig, path.name)
        check_image_grid_ticks(grid)
        for fig in (tempccd, ccd_temp, warm, model):
            labels = _labels(fig.axes[-1])
            assert labels and all(DATE.match(s) or DATE_TIME.match(s) for s in labels), labels
        # Image grid: one colour scale for every panel and a colour bar with units.
        panels = [a for a in grid.axes if a.images]
        assert len(panels) >= 2
        assert len({a.images[0].get_clim() for a in panels}) == 1
        bars = [a for a in grid.axes if a.get_label() == "<colorbar>"]
        assert len(bars) == 1 and "DN" in bars[0].get_ylabel()
        assert all(re.match(r"^\d{2}:\d{2}:\d{2}", a.get_title()) for a in panels)
        # DAC: integer ticks, density as a 2-d histogram with its colour bar.
        dac_ax = [a for a in dac.axes if a.get_label() != "<colorbar>"][0]
        dac.canvas.draw()
        yt = [t for t in dac_ax.get_yticks() if dac_ax.get_ylim()[0] <= t <= dac_ax.get_ylim()[1]]
        assert yt and all(float(t).is_integer() for t in yt), yt
        assert dac_ax.collections and any(a.get_label() == "<colorbar>" for a in dac.axes)
        # Several series: legends.
        for fig in (warm, model):
            assert all(a.get_legend() for a in fig.axes), fig
        # The fit is visible: its level in the ratio panel is drawn apart from the model's 1.
        ratio_ax = model.axes[1]
        levels = [ln.get_ydata()[0] for ln in ratio_ax.get_lines() if ln.get_label() != "_"]
        assert any(abs(v - fit.factor) < 1e-12 for v in levels)
        lo, hi = ratio_ax.get_ylim()
        assert lo < fit.factor < hi and (hi - lo) < 20 * max(abs(fit.factor - 1), 0.01)
    finally:
        for fig in figs:
            plt.close(fig)
