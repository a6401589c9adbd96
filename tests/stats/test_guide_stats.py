"""Guide-star statistics on a small simulated archive, through the real update path."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tables
from click.testing import CliRunner

from mica.engine.derived import check_derived, update_derived
from mica.engine.obsid_update import update_obsid_archive
from mica.products.obspar import OBSPAR
from mica.stats import guide_stats
from mica.stats._guide import runs
from mica.stats.guide_product import GUIDE_STATS

# the column name f_within_0.3 is not a Python identifier: PyTables says so
pytestmark = pytest.mark.filterwarnings("ignore:object name is not a valid Python identifier")
NO_CATALOG = 9866  # seeded: no star catalog (mica.sim.pcad.seeded_problem)


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("guide-archive")
    update_obsid_archive(OBSPAR, "sim", [5438, NO_CATALOG], data_root=root / "obspar")
    update_derived(GUIDE_STATS, archive=root, data_root=root / "guide_stats")
    return root


def test_table_columns_indexes_and_the_seed_example(archive, monkeypatch):
    monkeypatch.setenv("MICA_ARCHIVE", str(archive))
    stats = guide_stats.get_stats()
    assert len(stats.dtype) == 88 and stats.dtype.itemsize == 730
    assert stats.dtype.names[:3] == ("obsid", "obi", "kalman_tstart")
    assert "f_within_0.3" in stats.dtype.names and stats.dtype.names[-1] == "bad_comment"
    row = stats[(stats["obsid"] == 5438) & (stats["slot"] == 3)][0]
    # a tracked 6x6 guide star: sub-arcsec scatter about the OBC attitude, all within 5"
    assert 0.1 < row["dy_std"] < 1 and row["f_within_5"] == 1.0 and row["f_track"] == 1.0
    assert row["n_racq_interv"] == 0 and row["aoacmag_mean"] < 12
    with tables.open_file(guide_stats.table_path()) as h5:
        cols = h5.root.data.cols
        assert cols.obsid.is_indexed and cols.agasc_id.is_indexed
        assert cols.kalman_tstart.index.is_csi
        found = h5.root.data.read_where("(obsid == 5438) & (slot == 3)")
    assert np.array_equal(found, stats[(stats["obsid"] == 5438) & (stats["slot"] == 3)])
    with h5py.File(guide_stats.table_path()) as h5:  # PyTables' BoolCol: uint8 to h5py
        assert h5["data"].dtype["known_bad"] == np.uint8
    assert found.dtype["known_bad"] == np.bool_
    star = guide_stats.get_star_stats(row["agasc_id"])
    assert len(star) == 1 and star["slot"][0] == 3


def test_failure_recorded_and_cli(archive, monkeypatch, tmp_path):
    from mica.cli import main

    failures = {int(f["obsid"]): f["reason"].decode() for f in GUIDE_STATS.table(
        archive / "guide_stats").failures()}  # fmt: skip
    assert "no starcheck catalog" in failures[NO_CATALOG]
    monkeypatch.setenv("MICA_ARCHIVE", str(archive))
    out = tmp_path / "g.csv"
    result = CliRunner().invoke(
        main, ["fetch", "guide-stats", "--obsid", "5438", "--csv", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.exists() and "rows written" in result.output


def test_runs_count_no_run_as_zero():
    assert runs(np.array([], bool)).tolist() == []
    assert runs(np.array([0, 1, 1, 0, 1], bool)).tolist() == [2, 1]


def test_a_table_whose_damage_crashes_hdf5_is_refused_by_name(archive, tmp_path):
    """One bit flipped in HDF5's own structures of the table: a plain h5py read of the file
    dies of a segmentation fault (HDF5 1.14, measured). The readers' check decodes a table
    that does not match its record only in a process of its own, so they and the check
    report the damaged file instead of dying."""
    root = tmp_path / "guide_stats"
    shutil.copytree(archive / "guide_stats", root)
    path = guide_stats.table_path(root)
    data = bytearray(path.read_bytes())
    data[10721] ^= 0x20
    path.write_bytes(bytes(data))
    read = "import sys; from mica.stats import guide_stats as g; g.get_stats(data_root=sys.argv[1])"
    run = subprocess.run([sys.executable, "-c", read, str(root)], capture_output=True, text=True)
    assert run.returncode == 1, (run.returncode, run.stderr[-2000:])
    assert f"DamagedFileError: {path} is damaged" in run.stderr
    (problem,) = check_derived(GUIDE_STATS, root).problems
    assert problem.startswith(f"{path} does not match the digests recorded")
