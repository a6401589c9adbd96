"""What a person sees in the demo's figures and ``mica fetch hdr3 --plot``'s (issue 29): the
simulated-data mark clear of every title and panel, no bare error bar on a log axis for a
bin without failures, ticks on the 8x8 readouts, one time label under panels sharing a time
axis, every statistics bin drawn, the V&V circle over the points. (The L0, header-3 and dark
figures are drawn once, by `tests.package.test_plots.test_demo_plots`, which checks them
with `assert_mark_clear` and `check_image_grid_ticks`.)"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402

from mica.plot import SIM_MARK_GID  # noqa: E402


@pytest.fixture(autouse=True)
def _no_figures_left():
    plt.close("all")
    yield
    plt.close("all")


def assert_mark_clear(fig, name: str = "") -> None:
    """The "SIMULATED DATA" mark overlaps no panel (with its title, tick and axis labels),
    no figure title and no figure legend."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (mark,) = [t for t in fig.texts if t.get_gid() == SIM_MARK_GID]
    box = mark.get_bbox_patch().get_window_extent(renderer)
    others = [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()]
    others += [t.get_window_extent(renderer) for t in fig.texts if t is not mark and t.get_text()]
    others += [legend.get_window_extent(renderer) for legend in fig.legends]
    for other in others:
        assert not box.overlaps(other), (name, box, other)


def test_wilson_interval_has_a_positive_lower_end_once_a_failure_is_seen() -> None:
    from mica.demo.acq import wilson_interval

    rate, lo, hi = wilson_interval(np.array([0, 1, 5, 40]), np.array([46, 36, 50, 40]))
    assert rate.tolist() == [0.0, 1 / 36, 0.1, 1.0]
    assert lo[0] == 0.0 and hi[0] == pytest.approx(1 / 47)  # no failure: an upper limit
    assert np.all(lo[1:] > 0) and np.all(lo <= rate) and np.all(rate <= hi) and hi[-1] <= 1


def test_acq_failure_plot_draws_limits_not_bare_error_bars(tmp_path: Path, monkeypatch) -> None:
    """On the log axis every error bar has its point and both ends above 0; a bin without
    failures is its upper limit (a triangle, in the legend); the mark clears the title."""
    from mica.demo import acq
    from mica.demo.acq import _rates, demo_acq

    sample = acq._sample(400)
    monkeypatch.setattr(acq, "_sample", lambda every: sample)  # computed once, here
    figs: list = []
    demo_acq(tmp_path, tmp_path / "plots", every=400, keep=figs)
    fail_fig, dy_dz_fig = figs
    (ax,) = fail_fig.axes
    assert ax.get_yscale() == "log"
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert bars
    for bar in bars:
        assert np.all(bar.lines[0].get_ydata() > 0)
        for segments in bar.lines[2]:
            assert all(np.min(seg[:, 1]) > 0 for seg in segments.get_segments())
    _, _, failures = _rates(sample["mag_aca"], ~sample["acqid"])
    assert np.any(failures == 0)  # the case drawn: bins without a failure
    limits = [ln for ln in ax.get_lines() if ln.get_marker() == "v"]
    simulated = [ln for ln in limits if ln.get_label().startswith("simulated")]
    assert len(simulated) == 1 and len(simulated[0].get_xdata()) == np.count_nonzero(failures == 0)
    assert len(bars[0].lines[0].get_xdata()) == np.count_nonzero(failures)
    entries = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("upper limit" in e for e in entries), entries
    for fig, name in ((fail_fig, "acq_fail_vs_mag"), (dy_dz_fig, "acq_dy_dz")):
        assert_mark_clear(fig, name)


def check_image_grid_ticks(grid) -> None:
    """The 8x8 readouts have pixel ticks on every panel, numbered on the grid's edges
    (`tests.package.test_plots.test_demo_plots` draws the demo's figures and checks them
    with this and `assert_mark_clear`)."""
    panels = [a for a in grid.axes if a.images]
    assert len(panels) >= 12
    for ax in panels:
        assert list(ax.get_xticks()) == [0, 2, 4, 6] and list(ax.get_yticks()) == [0, 2, 4, 6]
    grid.canvas.draw()
    numbered_x = [a for a in panels if any(t.get_text() for t in a.get_xticklabels())]
    numbered_y = [a for a in panels if any(t.get_text() for t in a.get_yticklabels())]
    rows = {a.get_subplotspec().rowspan.start for a in panels}
    cols = {a.get_subplotspec().colspan.start for a in panels}
    assert {a.get_subplotspec().rowspan.start for a in numbered_x} == {max(rows)}
    assert {a.get_subplotspec().colspan.start for a in numbered_y} == {min(cols)}
    assert len(numbered_y) == len(rows)


@pytest.mark.parametrize("stat", [None, "5min"])
def test_fetch_hdr3_figure(docs_archive: Path, monkeypatch, stat) -> None:
    """Panels sharing the time axis carry its label once, under the lower one; each
    statistics bin is drawn (a box per bin, the isolated ones too); the mark clears the
    title."""
    from mica.archive import aca_hdr3
    from mica.cli.fetch import hdr3_figure
    from mica.plot import mark_simulated

    monkeypatch.setenv("MICA_ARCHIVE", str(docs_archive))
    names = ("ccd_temp", "dac")
    start, stop = "2012:125", "2012:127"
    msids = aca_hdr3.MSIDset(list(names), start, stop, stat=stat)
    fig = hdr3_figure(msids, names, start, stop, stat)
    top, bottom = fig.axes
    assert top.get_xlabel() == "" and bottom.get_xlabel() == "Date (UTC, YYYY:DOY)"
    mark_simulated(fig)
    assert_mark_clear(fig, f"fetch hdr3 --stat {stat}")
    if stat:
        for ax, name in zip(fig.axes, names):
            (boxes,) = ax.collections
            assert len(boxes.get_paths()) == len(msids[name].times) >= 2
            (means,) = ax.get_lines()
            assert means.get_marker() == "."  # a bin between gaps shows as a point


def test_vv_circle_is_drawn_over_the_points(docs_archive: Path) -> None:
    from matplotlib.patches import Circle

    from mica.vv import get_arch_vv

    obi = get_arch_vv(10369, archive=docs_archive)
    figs = {**obi.plot_slot(4), **obi.plot_slot(4, singles=True)}
    for key in ("all", "ayzf"):
        scatter = figs[key].axes[0]
        (circle,) = [p for p in scatter.patches if isinstance(p, Circle)]
        assert all(circle.get_zorder() > ln.get_zorder() for ln in scatter.get_lines()), key
