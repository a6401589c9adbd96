"""What a person sees: figures pyplot knows, tick labels that do not overlap and stay inside
the figure, Ska.Matplotlib's keywords, V&V slot plots that explain what they draw, and the
simulated-data mark on plots of simulated data only."""

from __future__ import annotations

import gzip
import itertools
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from mica.archive import aca_hdr3, aca_l0, asp_l1, obspar  # noqa: E402
from mica.plot import SIM_MARK_GID, plot_cxctime  # noqa: E402
from mica.time import to_secs  # noqa: E402
from mica.vv import Obi, get_arch_vv  # noqa: E402
from mica.vv.plots import plot_slot, save_slot_plots  # noqa: E402

SPANS = {"1 h": 3600.0, "1 d": 86400.0, "30 d": 30 * 86400.0, "10 years": 3652.5 * 86400.0}
SIZES = [(5, 3.5), (6.4, 4.8), (12, 4)]
UNIT = re.compile(r"\(.+\)")
TIME_LABEL = re.compile(r"^time \(ks since (\d{4}:\d{3}:\d{2}:\d{2}:\d{2})\)$")
VV_OBSID = 10369  # the aspect solution of the documentation's archive


@pytest.fixture(autouse=True)
def _no_figures_left():
    plt.close("all")
    yield
    plt.close("all")


def _has_mark(fig) -> bool:
    return any(t.get_gid() == SIM_MARK_GID for t in fig.texts)


def _drawn_boxes(fig, texts) -> list:
    """Window extents (pixels) of the non-empty texts, as the renderer drew them."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in texts if t.get_visible() and t.get_text()]


def _inside(box, fig) -> bool:
    return box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1


def _not_blank(path: Path) -> bool:
    with Image.open(path) as png:
        lo, hi = png.convert("L").getextrema()
    return hi - lo > 100


# --- plot_cxctime ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("span", SPANS.values(), ids=SPANS)
def test_tick_labels_do_not_overlap(size, span) -> None:
    """No two x tick labels intersect (their renderer extents), and they and the x label lie
    inside the figure; the 30-day and 10-year spans cross new years."""
    t0 = to_secs("2012:360:03:17:00")
    fig = plt.figure(figsize=size)
    _, _, ax = plot_cxctime(np.linspace(t0, t0 + span, 100), np.arange(100.0), ".")
    ticks = _drawn_boxes(fig, ax.get_xticklabels())
    (xlabel,) = _drawn_boxes(fig, [ax.xaxis.label])
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert len(ticks) >= 2, labels
    for a, b in itertools.combinations(ticks, 2):
        assert not a.overlaps(b), labels
    assert all(_inside(box, fig) for box in [*ticks, xlabel]), labels


def test_plot_cxctime_figure_known_to_pyplot(tmp_path) -> None:
    ticks, fig, ax = plot_cxctime(["2012:125", "2012:126"], [1.0, 2.0], ".-")
    assert fig.number in plt.get_fignums() and plt.gcf() is fig and plt.gca() is ax
    plt.savefig(tmp_path / "p.png")
    assert _not_blank(tmp_path / "p.png")


def test_ska_keywords_state_codes_and_interactive() -> None:
    """``state_codes`` labels the y ticks with the states; ``interactive`` draws once in
    pyplot's interactive mode, or not at all."""
    states = [(0, "OFF"), (1, "STBY"), (2, "ON")]
    t = np.linspace(to_secs("2012:125"), to_secs("2012:126"), 30)
    _, fig, ax = plot_cxctime(t, np.arange(30) % 3, "o", state_codes=states, interactive=False)
    boxes = _drawn_boxes(fig, ax.get_yticklabels())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["OFF", "STBY", "ON"]
    assert list(ax.get_yticks()) == [0, 1, 2] and len(boxes) == 3
    plt.ion()
    try:
        for interactive, draws in ((True, 1), (False, 0)):
            fig = plt.figure()
            drawn = []
            fig.canvas.mpl_connect("draw_event", drawn.append)
            plot_cxctime(t, np.arange(30.0), interactive=interactive)
            assert len(drawn) == draws, interactive
    finally:
        plt.ioff()


# --- the simulated mark ----------------------------------------------------------------------


def test_mark_follows_the_archive(docs_archive, real_l0_archive, monkeypatch) -> None:
    """plot_cxctime and MSID.plot mark figures when MICA_ARCHIVE is simulated, not when it
    holds flight data; ``simulated=`` overrides."""
    monkeypatch.setenv("MICA_ARCHIVE", str(docs_archive))
    _, fig, _ = plot_cxctime(["2012:125", "2012:126"], [1.0, 2.0])
    assert _has_mark(fig)
    plot_cxctime(["2012:125", "2012:126"], [2.0, 3.0], fig=fig)
    assert sum(t.get_gid() == SIM_MARK_GID for t in fig.texts) == 1  # one mark a figure
    ccd = aca_hdr3.MSID("ccd_temp", "2012:125:00:00", "2012:126:00:00")
    fig, ax = plt.subplots()
    assert ccd.plot(ax=ax) is ax and _has_mark(fig)
    fig, ax = plt.subplots()
    ccd.plot(ax=ax, simulated=False)
    assert not _has_mark(fig)

    monkeypatch.setenv("MICA_ARCHIVE", str(real_l0_archive))
    _, fig, _ = plot_cxctime(["2003:215", "2003:216"], [1.0, 2.0], fig=plt.figure())
    assert not _has_mark(fig)
    temp = aca_l0.MSID("TEMPCCD", 0, "2003:215", "2003:216", data_root=real_l0_archive)
    fig, ax = plt.subplots()
    temp.plot(ax=ax)
    assert not _has_mark(fig) and ax.get_ylabel() == "TEMPCCD (K)"
    fig, ax = plt.subplots()
    temp.plot(ax=ax, simulated=True)
    assert _has_mark(fig)


# --- V&V slot plots -------------------------------------------------------------------------


@pytest.fixture
def obi(docs_archive) -> Obi:
    return get_arch_vv(VV_OBSID, archive=docs_archive)


def test_plot_slot_figures_known_to_pyplot(obi, tmp_path) -> None:
    figs = obi.plot_slot(4)
    assert plt.get_fignums() == [figs["all"].number] and plt.gcf() is figs["all"]
    plt.savefig(tmp_path / "slot.png")
    assert _not_blank(tmp_path / "slot.png")
    singles = obi.plot_slot(4, singles=True)
    assert sorted(plt.get_fignums()) == sorted(f.number for f in [figs["all"], *singles.values()])
    plt.close("all")
    closed = plot_slot(obi, 4, close=True)
    assert plt.get_fignums() == [] and closed["all"].axes
    # the report's batch figure is not pyplot's: nothing stays open
    assert len(save_slot_plots(obi, tmp_path, simulated=True)) == len(obi.all_slot_data)
    assert plt.get_fignums() == []


@pytest.mark.parametrize("slot", [1, 4], ids=["fid", "guide"])
def test_slot_plots_explain_what_they_draw(obi, slot) -> None:
    """Every figure: a legend for the green and red points, the dashed interval starts and
    the circle; every axis labelled with a unit; time from a stated origin (the first
    sample); every point inside its panel; the simulated mark."""
    data = obi.all_slot_data[slot]
    assert len(data["ai_starts"]) > 1  # several intervals: dashed lines drawn
    fid = slot == 1
    figs = {**obi.plot_slot(slot), **obi.plot_slot(slot, singles=True)}
    assert set(figs) == {"all", "ayz", "ayzf", "ay", "az", "am"}
    for key, fig in figs.items():
        assert _has_mark(fig), key
        (legend,) = fig.legends
        entries = [t.get_text() for t in legend.get_texts()]
        assert {"good centroid (status 0)", "bad centroid (status not 0)"} <= set(entries), key
        if key in ("all", "ay", "az", "am"):
            assert "aspect interval start" in entries, key
        if key in ("all", "ayzf"):
            circle = '0.05" around the median (fid rms limit)' if fid else '0.7" around'
            assert any(e.startswith(circle) for e in entries), (key, entries)
        fig.canvas.draw()
        for ax in fig.axes:
            assert UNIT.search(ax.get_ylabel()), (key, ax.get_ylabel())
            xlabel = next(a.get_xlabel() for a in ax.get_shared_x_axes().get_siblings(ax)
                          if a.get_xlabel())  # fmt: skip
            assert UNIT.search(xlabel), (key, xlabel)
            time = TIME_LABEL.match(xlabel)
            if time:
                origin = to_secs(time.group(1))
                assert origin <= data["time"][0] < origin + 1, (key, xlabel)
            (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
            for line in ax.get_lines():
                if line.get_marker() != ".":
                    continue  # the interval starts
                x, y = line.get_xdata(), line.get_ydata()
                assert np.all((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)), (key, ax)
    # every sample with a bad status is drawn in red, in the scatter panel too
    scatter = figs["all"].axes[0]
    red = [ln for ln in scatter.get_lines() if ln.get_color() == "red"]
    assert len(red[0].get_xdata()) == np.count_nonzero(np.asarray(data["qual"]) != 0)


def test_slot_plot_of_flight_obspar_not_marked(obi, docs_archive, tmp_path) -> None:
    """A flight obspar has no ``simulated`` parameter: its V&V plots carry no mark."""
    par = Path(obspar.get_obspar_file(VV_OBSID, data_root=docs_archive / "obspar"))
    text = (gzip.decompress(par.read_bytes()) if par.suffix == ".gz" else par.read_bytes()).decode()
    flight = tmp_path / "axaff_obs0a.par"
    flight.write_text("".join(ln for ln in text.splitlines(True) if not ln.startswith("simulated")))
    aspect = asp_l1.get_obs_dirs(VV_OBSID, docs_archive / "asp1")["last"]
    figs = Obi(str(flight), aspect).plot_slot(4)
    assert figs["all"].axes and not _has_mark(figs["all"])
    assert _has_mark(obi.plot_slot(4)["all"])
