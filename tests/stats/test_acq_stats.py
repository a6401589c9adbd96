"""Acquisition statistics on a small simulated archive, through the real update path."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import tables

from mica.engine.derived import check_derived, update_derived
from mica.engine.obsid_update import update_obsid_archive
from mica.errors import DamagedFileError
from mica.products.obspar import OBSPAR
from mica.sim.pcad import SimProvider, seeded_problem
from mica.stats import acq_stats
from mica.stats._acq import calc_acq_stats
from mica.stats.acq_product import ACQ_STATS
from tests.engine.test_derived import _flip_stored_rows

START, STOP = "2012:001", "2012:002"
NO_CATALOG, GAP = 9866, 9921  # seeded problems of the simulated inputs (2012:02x)

# The 62 columns of the acquisition table, in order.
SPEC_COLUMNS = (
    "obsid obi acq_start guide_start guide_tstart one_shot_length revision slot idx type yang "
    "zang halfw mag acqid star_tracked spoiler_tracked img_func n_trak_interv max_trak_cdy "
    "min_trak_cdy mean_trak_cdy max_trak_cdz min_trak_cdz mean_trak_cdz max_trak_mag "
    "min_trak_mag mean_trak_mag cdy cdz dy dz ion_rad def_pix mult_star sat_pix mag_obs yang_obs "
    "zang_obs agasc_id color1 ra dec epoch pm_ra pm_dec var pos_err mag_aca mag_err mag_band "
    "pos_catid aspq1 aspq2 aspq3 acqq1 acqq2 acqq4 n100_warm_frac ccd_temp known_bad bad_comment"
).split()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """Obspars of one simulated day plus 5438 and the two seeded problems; acq-stats over them."""
    root = tmp_path_factory.mktemp("acq-archive")
    assert seeded_problem(NO_CATALOG) == "no catalog" and seeded_problem(GAP) == "telemetry gap"
    update_obsid_archive(OBSPAR, "sim", start=START, stop=STOP, data_root=root / "obspar")
    update_obsid_archive(OBSPAR, "sim", [5438, NO_CATALOG, GAP], data_root=root / "obspar")
    update_derived(ACQ_STATS, archive=root, data_root=root / "acq_stats", start=START, stop=STOP)
    update_derived(
        ACQ_STATS, archive=root, data_root=root / "acq_stats", obsids=[5438, NO_CATALOG, GAP]
    )
    return root


def test_the_seed_example_runs(archive, monkeypatch):
    monkeypatch.setenv("MICA_ARCHIVE", str(archive))
    stats = acq_stats.get_stats()
    dy = stats[(stats["obsid"] == 5438) & (stats["slot"] == 1)][0]["dy"]
    assert 0 < abs(dy) < 60  # the OBC attitude before the one-shot is off by tens of arcsec
    star = acq_stats.get_star_stats(stats["agasc_id"][0])
    assert len(star) >= 1 and set(star["agasc_id"]) == {stats["agasc_id"][0]}
    with tables.open_file(acq_stats.table_path()) as h5:
        rows = h5.root.data.read_where("(obsid == 5438) & (slot == 1)")
    assert len(rows) == 1 and rows["dy"][0] == dy


def test_columns_dtypes_order_and_indexes_equal_the_spec(archive):
    path = acq_stats.table_path(archive / "acq_stats")
    rows = acq_stats.get_stats(data_root=archive / "acq_stats")
    assert list(rows.dtype.names) == SPEC_COLUMNS and rows.dtype.itemsize == 476
    assert rows.dtype["obsid"] == np.int64 and rows.dtype["halfw"] == np.int64
    assert rows.dtype["acq_start"] == np.dtype("S21") and rows.dtype["img_func"] == "S7"
    with h5py.File(path) as h5:  # PyTables' BoolCol, as the original's: uint8 to h5py
        assert h5["data"].dtype["acqid"] == np.uint8
        assert h5["data"].astype(rows.dtype)[...].dtype["acqid"] == np.bool_
    with tables.open_file(path) as h5:
        assert h5.root.data.coldtypes["acqid"] == np.bool_
        cols = h5.root.data.cols
        assert cols.obsid.is_indexed and cols.agasc_id.is_indexed
        assert cols.guide_tstart.index.is_csi


def test_read_where_finds_what_a_numpy_filter_finds(archive):
    rows = acq_stats.get_stats(filter=False, data_root=archive / "acq_stats")
    with tables.open_file(acq_stats.table_path(archive / "acq_stats")) as h5:
        for obsid in set(rows["obsid"].tolist()):
            found = h5.root.data.read_where(f"obsid == {obsid}")
            assert np.array_equal(found, rows[rows["obsid"] == obsid])


def test_statistics_are_those_the_simulator_drew(archive):
    """ID flags, tracking and the one-shot follow the simulated outcomes and attitude error."""
    rows = acq_stats.get_stats(data_root=archive / "acq_stats")
    assert len(set(rows["obsid"].tolist())) >= 4
    # one row per ACQ/BOT catalog slot; identified stars tracked within 5" after the one-shot
    ok = rows[rows["acqid"]]
    assert len(ok) > 0.8 * len(rows)
    assert np.all(np.hypot(ok["cdy"], ok["cdz"]) < 5) and set(ok["img_func"]) == {b"star"}
    assert np.all(ok["one_shot_length"] > 0) and np.all(ok["n_trak_interv"] == 1)
    # the residuals against the uncorrected OBC attitude are the one-shot's size
    big = np.hypot(ok["dy"], ok["dz"])
    assert np.median(big) > 3 * np.median(np.hypot(ok["cdy"], ok["cdz"]))
    # ccd_temp is the mission CCD temperature (header-3), the warm fraction the dark model's
    from mica.archive.aca_dark.dark_model import get_warm_fracs
    from mica.sim.mission import default_mission

    r = rows[0]
    t = r["guide_tstart"]
    assert abs(r["ccd_temp"] - default_mission().ccd_temp_degc(np.array([t]))[0]) < 0.2
    assert np.isclose(r["n100_warm_frac"], get_warm_fracs(100, t, r["ccd_temp"]))


def test_failed_observations_are_recorded_with_their_reason(archive):
    table = ACQ_STATS.table(archive / "acq_stats")
    failures = {int(f["obsid"]): f["reason"].decode() for f in table.failures()}
    assert "no starcheck catalog" in failures[NO_CATALOG]
    assert "telemetry gap" in failures[GAP] and "guide transition" in failures[GAP]
    # an obsid without obspar: failed, naming the obspar folder
    missing = SimProvider().obsids(5e8, 5.001e8)[0][0]
    report = update_derived(
        ACQ_STATS, archive=archive, data_root=archive / "acq_stats", obsids=[missing]
    )
    assert "no obspar" in report.failed[(missing, 0)]
    remarks = ACQ_STATS.remarks(archive / "acq_stats")
    assert any(str(NO_CATALOG) in r for r in remarks)
    # --check-missing retries them (still failing: recorded again, not forgotten)
    again = update_derived(
        ACQ_STATS, archive=archive, data_root=archive / "acq_stats", check_missing=True
    )
    assert (NO_CATALOG, 0) in again.failed and (GAP, 0) in again.failed


def test_reprocessing_keeps_known_bad(archive):
    path = acq_stats.table_path(archive / "acq_stats")
    with h5py.File(path, "a") as h5:
        data = h5["data"][...]
        i = np.flatnonzero((data["obsid"] == 5438) & (data["slot"] == 2))[0]
        data["known_bad"][i], data["bad_comment"][i] = True, b"hand edit"
        h5["data"][...] = data
    report = update_derived(
        ACQ_STATS, archive=archive, data_root=archive / "acq_stats", obsids=[5438]
    )
    assert report.ok
    rows = acq_stats.get_stats(filter=False, data_root=archive / "acq_stats")
    kept = rows[(rows["obsid"] == 5438) & (rows["slot"] == 2)]
    assert kept["known_bad"].tolist() == [True] and kept["bad_comment"][0] == b"hand edit"
    filtered = acq_stats.get_stats(data_root=archive / "acq_stats")
    assert len(filtered) == len(rows) - 1


_KILL = """
import time
import mica.stats._acq as acq
from mica.engine.derived import update_derived
from mica.stats.acq_product import ACQ_STATS
real = acq.calc_acq_stats
def slow(*a, **k):
    time.sleep(0.3)
    return real(*a, **k)
acq.calc_acq_stats = slow
update_derived(ACQ_STATS, archive={archive!r}, data_root={archive!r} + "/acq_stats", checkpoint=2)
"""


def test_a_killed_update_leaves_the_table_readable_and_the_rerun_completes(tmp_path):
    update_obsid_archive(
        OBSPAR, "sim", start="2012:001", stop="2012:004", data_root=tmp_path / "obspar"
    )
    update_derived(
        ACQ_STATS,
        archive=tmp_path,
        data_root=tmp_path / "acq_stats",
        start="2012:001",
        stop="2012:001:12:00:00",
    )
    table = ACQ_STATS.table(tmp_path / "acq_stats")
    before = table.read()
    proc = subprocess.Popen([sys.executable, "-c", _KILL.format(archive=str(tmp_path))])
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        rows = table.read()
        assert np.array_equal(rows[: len(before)], before)
        if len(rows) > len(before):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    partial = table.read()
    report = update_derived(ACQ_STATS, archive=tmp_path, data_root=tmp_path / "acq_stats")
    assert report.ok and report.done
    rows = table.read()
    check = check_derived(ACQ_STATS, tmp_path / "acq_stats")
    assert len(rows) > len(partial) and check.ok and not check.repairs, check.summary()
    expect = calc_acq_stats(SimProvider(), int(rows["obsid"][-1]), 0)
    assert np.array_equal(rows[rows["obsid"] == rows["obsid"][-1]]["dy"], expect["dy"])
    assert not list((tmp_path / "acq_stats").glob(".acq_stats.h5.tmp-*"))


def test_cli_update_fetch_and_check(archive, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from mica.cli import main

    monkeypatch.setenv("MICA_ARCHIVE", str(archive))
    runner = CliRunner()
    result = runner.invoke(main, ["update", "acq-stats", "--obsid", "5438", "--quiet"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "5438.csv"
    result = runner.invoke(main, ["fetch", "acq-stats", "--obsid", "5438", "--csv", str(out)])
    assert result.exit_code == 0, result.output
    from astropy.table import Table

    csv = Table.read(out, format="ascii.csv")
    rows = acq_stats.get_stats(data_root=archive / "acq_stats")
    assert sorted(csv["slot"]) == sorted(rows[rows["obsid"] == 5438]["slot"])
    result = runner.invoke(main, ["fetch", "acq-stats", "--obsid", "1"])
    assert result.exit_code != 0 and "mica update acq-stats --obsid 1" in result.output
    result = runner.invoke(main, ["check"])
    assert f"obsid {NO_CATALOG}" in result.output and "no starcheck catalog" in result.output


def test_demo_writes_the_two_plots(archive, tmp_path):
    from PIL import Image

    from mica.demo.acq import demo_acq

    paths = demo_acq(archive, tmp_path / "plots", every=400)
    assert [p.name for p in paths] == ["acq_fail_vs_mag.png", "acq_dy_dz.png"]
    for p in paths:
        with Image.open(p) as im:
            assert im.size[0] >= 1000 and round(im.info["dpi"][0]) == 150


def test_a_damaged_table_is_refused_by_name_and_a_hand_edit_is_not(archive, tmp_path):
    """Readers check the table against the digests recorded with it: a hand edit of the
    columns meant for it still reads; a flipped bit in its rows, found after the process
    has read the table once, raises DamagedFileError naming the file and the repair."""
    root = tmp_path / "acq_stats"
    shutil.copytree(archive / "acq_stats", root)
    path = acq_stats.table_path(root)
    rows = acq_stats.get_stats(filter=False, data_root=root)
    with tables.open_file(path, "a") as h5:  # the original's hand edit
        h5.root.data.modify_column(0, 1, column=[True], colname="known_bad")
    edited = acq_stats.get_stats(filter=False, data_root=root)
    assert edited["known_bad"][0] and len(edited) == len(rows)
    script = tmp_path / "trend.py"  # a user's script, without a main guard
    script.write_text(
        "from mica.stats import acq_stats\n"
        f"print(len(acq_stats.get_stats(filter=False, data_root={str(root)!r})))\n"
    )
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout == f"{len(rows)}\n", run.stderr[-2000:]

    _flip_stored_rows(path)
    for read in (
        lambda: acq_stats.get_stats(data_root=root),
        lambda: acq_stats.get_star_stats(int(rows["agasc_id"][0]), data_root=root),
    ):
        with pytest.raises(DamagedFileError) as err:
            read()
        assert err.value.path == path and str(path) in str(err.value)
        assert "mica check --repair" in str(err.value)
    (problem,) = check_derived(ACQ_STATS, root).problems
    assert str(path) in problem


def test_a_damaged_index_does_not_change_what_readers_find(archive, tmp_path):
    """A flipped bit in a PyTables index of the table (not in its rows): the file no longer
    matches its record, its rows do, so the readers evaluate their condition on the rows
    instead of the index and find what they found before; the check names the table."""
    root = tmp_path / "acq_stats"
    shutil.copytree(archive / "acq_stats", root)
    path = acq_stats.table_path(root)
    stars = sorted(set(acq_stats.get_stats(filter=False, data_root=root)["agasc_id"].tolist()))
    before = {star: acq_stats.get_star_stats(star, filter=False, data_root=root) for star in stars}
    with h5py.File(path, "r") as h5:
        info = h5["_i_data/agasc_id/indicesLR"].id.get_chunk_info(0)
    with open(path, "r+b") as fh:  # the row numbers of the sorted ids
        fh.seek(info.byte_offset + 4)
        byte = fh.read(1)[0]
        fh.seek(-1, 1)
        fh.write(bytes([byte ^ 0x01]))
    for star in stars:
        got = acq_stats.get_star_stats(star, filter=False, data_root=root)
        np.testing.assert_array_equal(got, before[star])
    (problem,) = check_derived(ACQ_STATS, root).problems
    assert str(path) in problem and "its rows not" in problem
