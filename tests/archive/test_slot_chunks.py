"""`get_slot_data` from the full view's chunks without an index row per file
(`aca_l0._chunk_pieces`) against the file scan (``use_store=False``) at the edges that
decide which rows a read takes: files' starts and stops, gaps, a store period's edge, a
range without data, rows past their file's recorded stop, and an update between reads."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest

from mica.archive import aca_l0
from tests.archive.conftest import BOUNDARY

COLUMNS = [["TIME", "TEMPCCD"], ["TIME", "FILENAME", "IMGSIZE", "IMGRAW"]]


def assert_same_as_files(root, a, b, slot=0, columns=COLUMNS[0]):
    got = aca_l0.get_slot_data(a, b, slot, columns=columns, data_root=root)
    ref = aca_l0.get_slot_data(a, b, slot, columns=columns, data_root=root, use_store=False)
    assert got.dtype == ref.dtype and len(got) == len(ref), (a, b, len(got), len(ref))
    for name in ref.dtype.names:
        assert np.array_equal(got.data[name], ref.data[name]), (a, b, name)
        assert np.array_equal(got.mask[name], ref.mask[name]), (a, b, name)
    return len(ref)


def _files(root, slot):
    with sqlite3.connect(root / "archfiles.db3") as db:
        return db.execute(
            "SELECT filename, tstart, tstop FROM archfiles WHERE slot = ? ORDER BY tstart", (slot,)
        ).fetchall()


@pytest.mark.parametrize("columns", COLUMNS)
def test_edges_of_files_and_periods(boundary_archive, columns):
    files = _files(boundary_archive, 0)
    starts = [f[1] for f in files]
    stops = [f[2] for f in files]
    ranges = [
        (BOUNDARY - 600, BOUNDARY + 600),  # across the store periods' edge
        (BOUNDARY, BOUNDARY + 1800),
        (BOUNDARY - 1800, BOUNDARY),
        (starts[0] - 86400, starts[0] - 3600),  # no data
        (stops[-1] + 10, stops[-1] + 86400),
        (starts[0] - 3600, stops[-1] + 3600),  # everything
    ]
    for i in range(1, len(files)):
        ranges += [
            (stops[i - 1], stops[i]),  # from a file's stop (the query leaves that file out)
            (starts[i], stops[i]),
            (starts[i - 1], starts[i]),
            (stops[i - 1], starts[i]),  # a gap, or the instant between two files
            (starts[i] - 1, starts[i] + 1),
        ]
    total = sum(assert_same_as_files(boundary_archive, a, b, 0, columns) for a, b in ranges)
    assert total > 0


@pytest.fixture
def archive_copy(boundary_archive, tmp_path):
    root = tmp_path / "aca0"
    shutil.copytree(boundary_archive, root)
    return root


def stop_before_last_row(root) -> tuple[str, float]:
    """Slot 0's third file (8x8) recorded to stop 0.5 s before its last row's TIME (the index
    alone: the chunks holding it stay current), as a file's rows may lie up to a second
    after its TSTOP (`check_times`); its name and that TIME."""
    filename, _, _ = _files(root, 0)[2]
    rows = aca_l0.get_slot_data(
        BOUNDARY - 7200, BOUNDARY + 7200, 0, columns=["TIME", "FILENAME"], data_root=root
    )
    last = float(rows["TIME"][rows["FILENAME"] == filename].max())
    with sqlite3.connect(root / "archfiles.db3") as db:
        db.execute("UPDATE archfiles SET tstop = ? WHERE filename = ?", (last - 0.5, filename))
    return filename, last


def test_rows_past_a_recorded_stop(archive_copy):
    """A read from a file's recorded stop leaves the file out (`_get_file_records`) though
    rows of it lie after that stop, so the chunk's rows of it too."""
    filename, last = stop_before_last_row(archive_copy)
    # TEMPCCD: the full view's chunks alone; TIME alone: 8x8 rows from the header-3 view
    for columns in (["TIME", "FILENAME", "TEMPCCD"], ["TIME", "FILENAME"]):
        for a in (last - 0.5, last - 0.2, last - 1.0):
            assert_same_as_files(archive_copy, a, last + 60, 0, columns)
        got = aca_l0.get_slot_data(
            last - 0.5, last + 60, 0, columns=columns, data_root=archive_copy
        )
        assert filename not in set(got["FILENAME"])


def test_update_between_reads(archive_copy):
    from mica.engine.time_update import update_archive
    from mica.products.aca_l0 import L0

    # past the archive's last file (its rows stop about 2.6 h after BOUNDARY): none, then
    # the update's
    a, b = BOUNDARY + 9600, BOUNDARY + 10200
    assert assert_same_as_files(archive_copy, a, b) == 0
    update_archive(L0, "sim", a, b, data_root=archive_copy)
    assert assert_same_as_files(archive_copy, a, b) > 0
    assert assert_same_as_files(archive_copy, a - 3600, b) > 0
