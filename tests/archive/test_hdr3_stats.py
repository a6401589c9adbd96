"""Header-3 statistics (5-minute and daily bins, cheta's definitions).

Read from the store, they must be exactly a computation from the full-resolution samples (the
file scan): n, min, max and the middle sample exactly, the means, standard deviations and
percentiles to float rounding, around a boundary of the store's periods (bins there take
samples from files of both periods), across a gap, and the same computed from the samples
(``use_store=False``, a dirty chunk, a chunk built before the statistics).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from scipy.stats.mstats import mquantiles

from mica.archive import aca_hdr3
from mica.engine.colstore import STORE_VERSION, ColumnStore
from mica.engine.index import ArchiveIndex
from mica.engine.store_rebuild import rebuild_store
from mica.errors import InvalidArgumentError
from mica.products.aca_l0 import L0
from mica.products.hdr3_items import ITEMS
from mica.products.hdr3_samples import SAMPLES_LAYOUT, SAMPLES_REACH, SAMPLES_VIEW
from mica.products.hdr3_stats import (
    QUANTILES,
    STATS_DT,
    STATS_FIELDS,
    bin_index,
    bin_stats,
    bins_between,
    owned_bins,
)

PERIOD = L0.store_description.view_named(SAMPLES_VIEW).period
#: A boundary of the sample view's periods (2012:088): a file of the simulated slots 0-2 runs
#: across it, slots 3-7 read 8x8 only after it.
B = 52 * PERIOD
SPAN = (B - 20 * 3600.0, B + 20 * 3600.0)
#: Files wholly inside this window are left out: slots 0-2 have no row from B - 5.11 h to
#: B - 3.02 h.
GAP = (B - 5.2 * 3600.0, B - 3.0 * 3600.0)
#: The range the tests read: the two days around the boundary.
RANGE = (B - 86400.0, B + 86400.0)


@pytest.fixture(scope="module")
def stats_archive(tmp_path_factory):
    """The simulated 8x8 files of every slot over SPAN, but those in GAP, ingested through
    the real path (a ``dir:`` source)."""
    from mica.engine.time_update import update_archive
    from mica.sim.aca_l0 import plan_l0_files, write_l0_file

    work = tmp_path_factory.mktemp("hdr3-stats")
    upstream = work / "upstream"
    for plan in plan_l0_files(*SPAN):
        if plan.imgsize == 8 and not (GAP[0] < plan.tstart and plan.tstop < GAP[1]):
            write_l0_file(plan, upstream)
    root = work / "aca0"
    update_archive(L0, f"dir:{upstream}", *SPAN, data_root=root)
    return root


@pytest.fixture(scope="module")
def full_resolution(stats_archive):
    """Every item's good samples (unmasked, finite) over the bins RANGE reads, from the
    file scan."""
    k0 = min(bins_between(*RANGE, stat)[0] * STATS_DT[stat] for stat in STATS_DT)
    k1 = max(bins_between(*RANGE, stat)[1] * STATS_DT[stat] for stat in STATS_DT)
    names = [item.msid for item in ITEMS.values()]
    scan = aca_hdr3.MSIDset(names, k0, k1, data_root=stats_archive, use_store=False)
    out = {}
    for name, msid in scan.items():
        vals = np.ma.getdata(msid.vals)
        good = ~np.ma.getmaskarray(msid.vals)
        if vals.dtype.kind == "f":
            good &= np.isfinite(vals)
        out[name] = (msid.times[good], vals[good])
    return out


def cheta_rows(times: np.ndarray, vals: np.ndarray, stat: str, k0: int, k1: int) -> np.ndarray:
    """The bins [k0, k1) of ``stat`` as cheta's update computes them, bin by bin: rows cut
    at ``k * dt`` by a sorted search, weights from the neighbours' times, mquantiles."""
    dt = STATS_DT[stat]
    indexes = np.arange(k0, k1 + 1)
    cuts = np.searchsorted(times, indexes * float(dt))
    out = []
    for index, r0, r1 in zip(indexes[:-1], cuts[:-1], cuts[1:]):
        t, v = times[r0:r1], vals[r0:r1].astype(np.float64)
        n = len(v)
        if n == 0:
            continue
        if n <= 2:
            dts = np.ones(n)
        else:
            dts = np.empty(n)
            dts[0] = t[1] - t[0]
            dts[-1] = t[-1] - t[-2]
            dts[1:-1] = ((t[1:-1] - t[:-2]) + (t[2:] - t[1:-1])) / 2.0
            dts = dts.clip(0.001, 300.0)
        mean = np.sum(dts * v) / np.sum(dts)
        std = np.sqrt(np.sum(dts * (v - mean) ** 2) / np.sum(dts))
        row = [index, n, v.min(), v.max(), mean, std, v[n // 2]]
        if stat == "daily":
            row += list(mquantiles(v, np.array(QUANTILES) / 100.0))
        out.append(row)
    return np.array(out).reshape(-1, len(STATS_FIELDS[stat]))


def assert_rows_equal(got: np.ndarray, want: np.ndarray, stat: str, label: str) -> None:
    """index, n, min, max, midval exactly; the rest to float rounding of the values' size."""
    fields = STATS_FIELDS[stat]
    assert got.shape == want.shape, label
    exact = [fields.index(f) for f in ("index", "n", "min", "max", "midval")]
    assert np.array_equal(got[:, exact], want[:, exact]), label
    rest = [k for k in range(len(fields)) if k not in exact]
    scale = max(1.0, float(np.max(np.abs(want[:, exact[2:]])))) if len(want) else 1.0
    np.testing.assert_allclose(got[:, rest], want[:, rest], rtol=1e-12, atol=1e-12 * scale)


def msid_rows(msid: aca_hdr3.MSID) -> np.ndarray:
    """A statistics MSID's columns back as rows of `STATS_FIELDS`."""
    names = {"index": "indexes", "n": "samples", "midval": "midvals", "min": "mins"}
    names.update(max="maxes", mean="means", std="stds")
    names.update({f"p{q:02d}": f"p{q:02d}s" for q in QUANTILES})
    columns = [getattr(msid, names[field]) for field in STATS_FIELDS[msid.stat]]
    return np.column_stack(columns).astype(np.float64) if len(msid) else np.zeros((0, 7))


# ---------------------------------------------------------------------------------------
# The definitions


def test_bin_stats_is_chetas_definition():
    """Bins of one and two samples (weights 1), identical times (weight 0.001), gaps longer
    than 300 s (weight 300), negative and integer values: cheta's numbers."""
    rng = np.random.default_rng(5)
    steps = rng.choice([0.0, 4.1, 4.1, 4.1, 8.2, 700.0, 3000.0], 20000)
    times = 441763266.0 + np.cumsum(steps)
    for vals in (rng.normal(-10, 3, len(times)), rng.integers(-500, 500, len(times))):
        for stat in STATS_DT:
            k = bin_index(times, STATS_DT[stat])
            got = bin_stats(times, vals, stat).T
            want = cheta_rows(times, vals, stat, int(k[0]), int(k[-1]) + 1)
            assert_rows_equal(got, want, stat, stat)
            counts = got[:, STATS_FIELDS[stat].index("n")]
            if stat == "5min":
                assert {1, 2} <= set(counts.tolist()) and counts.max() > 2


def test_bin_edges_are_exact():
    """A time one float step below a bin's start is in the bin before (division rounds)."""
    for dt in STATS_DT.values():
        edges = np.array([1369756, 5200, 123457]) * float(dt)
        below = np.nextafter(edges, 0)
        assert bin_index(edges, dt).tolist() == (edges // dt).astype(int).tolist()
        assert bin_index(below, dt).tolist() == (edges // dt - 1).astype(int).tolist()


def test_bins_between_take_the_midpoints_in_the_range():
    """cheta's fetch: the bins whose midpoint (k + 0.5) dt lies in [tstart, tstop)."""
    k = 1369756
    mid = (k + 0.5) * 328
    assert bins_between(mid, mid + 328, "5min") == (k, k + 1)
    assert bins_between(mid - 1e-6, mid, "5min") == (k, k)
    assert bins_between(np.nextafter(mid, 0), np.nextafter(mid, np.inf), "5min") == (k, k + 1)
    assert bins_between(B, B + 86400, "daily") == (5200, 5201)
    assert bins_between(B - 0.5 * 86400, B + 0.5 * 86400, "daily") == (5199, 5200)
    assert bins_between(B - 0.5 * 86400 + 1, B + 0.5 * 86400 + 1, "daily") == (5200, 5201)
    # a chunk owns the bins starting in its period: daily bins align with it
    assert owned_bins((B, B + PERIOD), "daily") == (5200, 5300)
    k0, k1 = owned_bins((B, B + PERIOD), "5min")
    assert (k0 - 1) * 328 < B <= k0 * 328 and (k1 - 1) * 328 < B + PERIOD <= k1 * 328


def test_reach_covers_a_bin_past_the_period():
    """A 5-minute bin starting in a period ends up to 328 s after it, its last sample's gap
    test looks 4.1 s further, and rows lie up to 10 s before their file's TSTART."""
    from mica.engine.validate import TIME_AFTER_TSTOP, TIME_BEFORE_TSTART
    from mica.products.hdr3_samples import DT_8X8, DT_TOL

    need = STATS_DT["5min"] + DT_8X8 + DT_TOL + TIME_BEFORE_TSTART + TIME_AFTER_TSTOP
    assert SAMPLES_REACH > need


# ---------------------------------------------------------------------------------------
# The store against the samples


def test_store_stats_are_the_full_resolution_ones(stats_archive, full_resolution, monkeypatch):
    """Every item, both statistics, over two days around the period boundary and the gap,
    from the chunks alone (no sample is read): the file scan's samples' statistics."""
    monkeypatch.setattr(aca_hdr3, "_good_samples", _no_samples)
    seen = {"straddle": 0, "both": 0, "rows": 0}
    straddle = int(B // 328)  # the 5-minute bin across the boundary
    for item in ITEMS.values():
        times, vals = full_resolution[item.msid]
        for stat in STATS_DT:
            msid = aca_hdr3.MSID(item.msid, *RANGE, data_root=stats_archive, stat=stat)
            got = msid_rows(msid)
            want = cheta_rows(times, vals, stat, *bins_between(*RANGE, stat))
            assert_rows_equal(got, want, stat, f"{item.msid} {stat}")
            seen["rows"] += len(got)
            seen["straddle"] += straddle in msid.indexes.tolist()
            if stat == "daily" and 5200 in msid.indexes.tolist():
                # the day after the boundary holds samples of a file started before it
                day = (times >= B) & (times < B + 86400)
                seen["both"] += bool(np.any(times[day] < B + 700))
            assert msid.vals is msid.means and msid.times.tolist() == [
                (k + 0.5) * STATS_DT[stat] for k in msid.indexes
            ]
    assert seen["straddle"] >= 18 and seen["both"] >= 18 and seen["rows"] > 9000
    # the gap: no 5-minute bin of the slot 0 items inside it, bins on both sides
    ccd = aca_hdr3.MSID(
        "ccd_det_therm", B - 6 * 3600, B - 2 * 3600, data_root=stats_archive, stat="5min"
    )
    assert len(ccd) > 15 and np.diff(ccd.times).max() > 2 * 3600 - 2 * 328


def _no_samples(*args, **kwargs):
    raise AssertionError("a current chunk's bins were computed from samples")


def test_computed_from_samples_is_the_same(stats_archive):
    """``use_store=False`` computes every bin from the file scan's samples: the same rows,
    bit for bit, and for a set."""
    names = ["ccd_det_therm", "ad_5v_ps", "ccd_temp", "dac", "dsn_hdr1"]
    for stat in STATS_DT:
        fast = aca_hdr3.MSIDset(names, *RANGE, data_root=stats_archive, stat=stat)
        slow = aca_hdr3.MSIDset(names, *RANGE, data_root=stats_archive, stat=stat, use_store=False)
        for name in names:
            assert np.array_equal(msid_rows(fast[name]), msid_rows(slow[name])), (name, stat)
            assert fast[name].mins.dtype == fast[name].midvals.dtype == ITEMS_DTYPES[name]
        assert np.array_equal(
            fast.times, np.unique(np.concatenate([m.times for m in fast.values()]))
        )


ITEMS_DTYPES = {
    "ccd_det_therm": np.float64,
    "ad_5v_ps": np.float64,
    "ccd_temp": np.float64,
    "dac": np.int16,  # the original's dtype
    "dsn_hdr1": np.int64,
}


def test_chunks_not_current_are_computed_from_samples(stats_archive, monkeypatch, caplog, tmp_path):
    """A dirty chunk, one of the layout before the statistics, or one that cannot be read is
    not read: its bins come from the samples, the answer unchanged; ``mica rebuild store``
    makes the chunk serve again."""
    part = f"{SAMPLES_VIEW}/52"
    want = {
        s: msid_rows(aca_hdr3.MSID("ccd_det_therm", *RANGE, data_root=stats_archive, stat=s))
        for s in STATS_DT
    }
    calls = []
    good_samples = aca_hdr3._good_samples

    def counted(item, a, b, *args):
        calls.append((a, b))
        return good_samples(item, a, b, *args)

    monkeypatch.setattr(aca_hdr3, "_good_samples", counted)
    with ArchiveIndex(L0, stats_archive) as index, index.transaction():
        index.mark_dirty([part])
    try:
        for stat in STATS_DT:
            got = aca_hdr3.MSID("ccd_det_therm", *RANGE, data_root=stats_archive, stat=stat)
            assert np.array_equal(msid_rows(got), want[stat])
        # only the dirty period's bins came from samples: from its start on
        assert calls and all(a >= B - 328 for a, _ in calls)
    finally:
        rebuild_store(L0, stats_archive)
    # a chunk of the layout before (its file list's tag without the view's layout number);
    # without the mission table, which would serve the daily bins (tests/archive/
    # test_hdr3_mission.py): a layout's change changes the table's layout line too
    with ArchiveIndex(L0, stats_archive) as index, index.transaction():
        index.conn.execute("DELETE FROM store_tables")
        (files,) = index.conn.execute("SELECT files FROM store_chunks WHERE part = ?", (part,))
        old = files[0].replace(f"v{STORE_VERSION}a.{SAMPLES_LAYOUT}\n", f"v{STORE_VERSION}a\n")
        assert old != files[0]
        index.conn.execute("UPDATE store_chunks SET files = ? WHERE part = ?", (old, part))
    calls.clear()
    try:
        got = aca_hdr3.MSID("ccd_det_therm", *RANGE, data_root=stats_archive, stat="daily")
        assert np.array_equal(msid_rows(got), want["daily"]) and len(calls) == 1
        with ArchiveIndex.open_for_reading(L0, stats_archive) as index:
            assert ColumnStore(L0, index).stale_parts() == [part]
    finally:
        assert part in rebuild_store(L0, stats_archive).done
    calls.clear()
    copy = tmp_path / "aca0"  # a chunk file gone since the reader's snapshot (replaced)
    shutil.copytree(stats_archive, copy)
    with ArchiveIndex(L0, copy) as index, index.transaction():
        index.conn.execute("DELETE FROM store_tables")  # the periods' chunks serve
    with ArchiveIndex.open_for_reading(L0, copy) as index:
        (copy / ColumnStore(L0, index).chunk(part)["path"]).unlink()
    with caplog.at_level("WARNING", logger="mica.archive.hdr3_stats"):
        got = aca_hdr3.MSID("ccd_det_therm", *RANGE, data_root=copy, stat="daily")
    assert np.array_equal(msid_rows(got), want["daily"]) and len(calls) == 1
    assert "could not be read for the header-3 statistics" in caplog.text


def test_partitions_near_the_boundary(stats_archive):
    """Files across the boundary belong to both periods' sample chunks, and each
    partition's SQL selects exactly the files `partitions` gives it."""
    with ArchiveIndex.open_for_reading(L0, stats_archive) as index:
        expected: dict[str, set[str]] = {}
        for row in index.query():
            for part in L0.partitions(row):
                expected.setdefault(part, set()).add(row["filename"])
        for part, names in expected.items():
            where, params = L0.partition_where(part)
            assert {r["filename"] for r in index.query(where, params)} == names, part
    both = expected[f"{SAMPLES_VIEW}/51"] & expected[f"{SAMPLES_VIEW}/52"]
    assert len(both) >= 3


def test_bins_at_the_end_of_a_period_take_the_next_periods_files(tmp_path):
    """The last 5-minute bin of a period ends after it: files started after the boundary
    hold some of its samples (slot 6 continuing a file of the period before, whose last
    row's gap test looks at the next file; slot 7 after a gap, giving ``ccd_temp`` its low
    word again). The chunk of the period before holds them (its reach): its bins are the
    samples' (read from the store's rows: no FITS file exists here)."""
    from mica.sim.hdr3_store import Hdr3File, store_hdr3_files

    grid = (B - 3000.0) + 4.1 * np.arange(1500)

    def at(t: float) -> int:
        return int(np.searchsorted(grid, t))

    files = [
        Hdr3File(6, grid[: at(B + 100)]),
        Hdr3File(6, grid[at(B + 100) : at(B + 900)]),
        Hdr3File(6, grid[at(B + 1200) :]),
        Hdr3File(7, grid[: at(B - 100)]),
        Hdr3File(7, grid[at(B + 40) :]),
    ]
    root = tmp_path / "aca0"
    built = store_hdr3_files(root, files)
    assert f"{SAMPLES_VIEW}/51" in built and f"{SAMPLES_VIEW}/52" in built
    k = int(B // 328)  # the bin across the boundary: [B - 32, B + 296)
    for name in ("ccd_temp", "dac", "aca_temp"):
        item = next(i for i in ITEMS.values() if i.msid == name)
        times, vals = aca_hdr3._good_samples(item, B - 3000.0, B + 3000.0, root, True)
        msid = aca_hdr3.MSID(name, B - 3000.0, B + 3000.0, data_root=root, stat="5min")
        want = cheta_rows(times, vals, "5min", *bins_between(B - 3000.0, B + 3000.0, "5min"))
        assert_rows_equal(msid_rows(msid), want, "5min", name)
        assert k in msid.indexes.tolist()


# ---------------------------------------------------------------------------------------
# The API


def test_msid_stat_api(stats_archive):
    """cheta's attributes; filter_bad, copy, interpolate and plot keep the bins together."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    daily = aca_hdr3.MSID("ccd_det_therm", *RANGE, data_root=stats_archive, stat="daily")
    assert daily.stat == "daily" and daily.unit == "degC" and len(daily) == 2
    assert daily.samples.dtype == np.int64 and daily.indexes.tolist() == [5199, 5200]
    assert not daily.bads.any() and daily.bits == {}
    assert np.all(daily.p01s <= daily.p50s) and np.all(daily.p50s <= daily.p99s)
    assert "2 daily bins" in repr(daily)
    five = aca_hdr3.MSID("ccd_det_therm", *RANGE, data_root=stats_archive, stat="5min")
    assert not hasattr(five, "p50s") and five.stat_columns[:3] == ["indexes", "samples", "midvals"]
    assert len(five.filter_bad(copy=True)) == len(five)
    copy = five.copy()
    copy._keep(np.arange(len(copy)) % 2 == 0)
    assert len(copy.mins) == len(copy.times) == len(copy.vals) == (len(five) + 1) // 2
    fig, ax = plt.subplots()
    try:
        five.plot(ax=ax, simulated=True)
        assert ax.collections  # the min..max band
    finally:
        plt.close(fig)
    both = aca_hdr3.MSIDset(
        ["ccd_det_therm", "ad_5v_ps"], *RANGE, data_root=stats_archive, stat="5min"
    )
    both.interpolate(dt=3600.0)
    m = both["ccd_det_therm"]
    assert len(m.mins) == len(m.vals) == len(both.times) and np.all(m.mins <= m.vals)
    with pytest.raises(InvalidArgumentError, match="stat must be one of"):  # a ValueError
        aca_hdr3.MSID("ccd_det_therm", *RANGE, data_root=stats_archive, stat="hourly")


@pytest.mark.parametrize("use_store", [True, False])
def test_no_archive(tmp_path, use_store):
    from mica.errors import MissingArchiveError

    with pytest.raises(MissingArchiveError):
        aca_hdr3.MSID("ccd_temp", *RANGE, data_root=tmp_path, stat="daily", use_store=use_store)


def test_cli_fetch_stat(stats_archive, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from mica.cli import main

    monkeypatch.setenv("MICA_ARCHIVE", str(stats_archive.parent))
    csv = tmp_path / "daily.csv"
    args = ["fetch", "hdr3", "ccd_det_therm", "dac", "--start", "2012:087", "--stop", "2012:089"]
    result = CliRunner().invoke(main, [*args, "--stat", "daily", "--csv", str(csv)])
    assert result.exit_code == 0, result.output
    assert "ccd_det_therm (074, degC): 2 daily bins" in result.output
    header = csv.read_text().splitlines()[0]
    assert header.startswith("time,date,ccd_det_therm_mean,ccd_det_therm_min,ccd_det_therm_max")
    result = CliRunner().invoke(main, [*args, "--stat", "5min", "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p.png").stat().st_size > 0
