"""The derived-product engine: table generations, upsert by key, failures, kill safety.

The product here is a small real one: per "observation" folder of JSON inputs under the
archive, one row per slot; a unit whose input is missing or corrupt fails with its reason.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import tables

from mica.engine import digests
from mica.engine.atomic import partial_name
from mica.engine.derived import (
    DerivedFailure,
    DerivedProduct,
    DerivedUnit,
    check_derived,
    update_derived,
)
from mica.engine.digests import digest_file, recorded
from mica.engine.table_store import RECORDED_ATTR, GenerationTable, TableSpec
from mica.errors import DamagedFileError, MissingArchiveError
from tests.conftest import REPO_ROOT

DTYPE = np.dtype(
    [
        ("obsid", "<i4"),
        ("obi", "<i4"),
        ("slot", "<i4"),
        ("tstart", "<f8"),
        ("mag", "<f4"),
        ("acqid", "?"),
        ("known_bad", "?"),
        ("bad_comment", "S80"),
    ]
)
SPEC = TableSpec(
    DTYPE,
    key=("obsid", "obi"),
    indexes=("obsid",),
    csi=("tstart",),
    preserve=("known_bad", "bad_comment"),
    match=("slot",),
)


class SlotTable(DerivedProduct):
    """One row per slot of each ``inputs/<obsid>.json`` ({"tstart": t, "mags": [...]})."""

    name = "slot-table"
    folder = "slot_table"
    table_name = "slot_table.h5"
    spec = SPEC
    inputs = ("inputs",)

    def plan(self, archive, table, *, start, stop, obsids, check_missing):
        done = table.keys()
        failed = table.failed_keys()
        units = []
        for path in sorted((archive / "inputs").glob("*.json")):
            obsid = int(path.stem)
            key = (obsid, 0)
            if obsids is not None:
                if obsid not in obsids:
                    continue
            elif key in done or (key in failed and not check_missing):
                continue
            units.append(DerivedUnit(key, f"obsid {obsid}", float(obsid), path))
        return units

    def compute(self, archive, unit, staging):
        delay = float(os.environ.get("SLOT_TABLE_DELAY", "0"))
        time.sleep(delay)
        try:
            data = json.loads(unit.data.read_text())
        except (OSError, ValueError) as err:
            raise DerivedFailure(f"{unit.data}: {err}") from err
        mags = data["mags"]
        rows = np.zeros(len(mags), DTYPE)
        rows["obsid"], rows["obi"] = unit.key
        rows["slot"] = np.arange(len(mags))
        rows["tstart"] = data["tstart"]
        rows["mag"] = mags
        rows["acqid"] = np.asarray(mags) < 10.5
        return rows


SLOT_TABLE = SlotTable()


def _inputs(archive: Path, obsids, nslots=3) -> None:
    folder = archive / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    for obsid in obsids:
        mags = [9.0 + 0.5 * s + obsid % 3 for s in range(nslots)]
        (folder / f"{obsid}.json").write_text(json.dumps({"tstart": obsid * 10.0, "mags": mags}))


def test_update_writes_an_indexed_table_readers_agree_on(tmp_path):
    _inputs(tmp_path, range(100, 140))
    report = update_derived(SLOT_TABLE, archive=tmp_path, data_root=tmp_path / "slot_table")
    assert len(report.done) == 40 and report.ok
    table = SLOT_TABLE.table(tmp_path / "slot_table")
    rows = table.read()
    assert rows.dtype == DTYPE and len(rows) == 120
    # booleans as PyTables' BoolCol: h5py (and so astropy) read uint8 0/1, bool by astype
    with h5py.File(table.path) as h5:
        assert h5["data"].dtype["acqid"] == np.uint8
        assert np.array_equal(h5["data"].astype(DTYPE)[...]["acqid"], rows["acqid"])
    # PyTables' in-kernel search finds what a numpy filter finds, through the indexes
    with tables.open_file(table.path) as h5:
        node = h5.root.data
        assert node.cols.obsid.is_indexed and node.cols.tstart.index.is_csi
        found = node.read_where("(obsid == 117) & (slot == 1)")
    assert found.dtype["acqid"] == np.bool_
    expect = rows[(rows["obsid"] == 117) & (rows["slot"] == 1)]
    assert len(found) == 1 and found["mag"][0] == expect["mag"][0]
    assert np.array_equal(table.read("obsid == 117"), rows[rows["obsid"] == 117])
    assert table.max("tstart") == 1390.0
    # nothing new: no unit computed, the table untouched
    mtime = table.path.stat().st_mtime_ns
    again = update_derived(SLOT_TABLE, archive=tmp_path, data_root=tmp_path / "slot_table")
    assert not again.done and table.path.stat().st_mtime_ns == mtime


def test_reprocessing_keeps_hand_edits_and_reports_a_slot_count_change(tmp_path):
    root = tmp_path / "slot_table"
    _inputs(tmp_path, [200, 201, 202])
    update_derived(SLOT_TABLE, archive=tmp_path, data_root=root)
    table = SLOT_TABLE.table(root)
    # a hand edit of the kind users make (known_bad on one row)
    with h5py.File(table.path, "a") as h5:
        data = h5["data"][...]
        i = np.flatnonzero((data["obsid"] == 201) & (data["slot"] == 2))[0]
        data["known_bad"][i] = True
        data["bad_comment"][i] = b"spoiler"
        h5["data"][...] = data
    _inputs(tmp_path, [201], nslots=3)
    _inputs(tmp_path, [202], nslots=4)
    report = update_derived(SLOT_TABLE, archive=tmp_path, data_root=root, obsids=[201, 202])
    rows = table.read()
    kept = rows[(rows["obsid"] == 201) & (rows["slot"] == 2)]
    assert kept["known_bad"].tolist() == [True] and kept["bad_comment"][0] == b"spoiler"
    assert (rows["obsid"] == 202).sum() == 4 and len(rows) == 10
    assert any("obsid 202" in n and "3 rows replaced by 4" in n for n in report.notes)
    # row order of an unchanged unit is kept (in place), the changed one moves to the end
    assert rows["obsid"][:3].tolist() == [200, 200, 200] and rows["obsid"][-1] == 202


def test_failures_are_recorded_listed_and_retried(tmp_path):
    root = tmp_path / "slot_table"
    _inputs(tmp_path, [300, 301])
    (tmp_path / "inputs" / "302.json").write_text("{not json")
    report = update_derived(SLOT_TABLE, archive=tmp_path, data_root=root)
    assert not report.ok and list(report.failed) == [(302, 0)]
    assert "302.json" in report.failed[(302, 0)]
    table = SLOT_TABLE.table(root)
    fails = table.failures()
    assert fails["obsid"].tolist() == [302] and b"302.json" in fails["reason"][0]
    assert SLOT_TABLE.remarks(root) == [f"obsid 302 obi 0 failed: {fails['reason'][0].decode()}"]
    check = check_derived(SLOT_TABLE, root)  # a failure is listed, not a problem
    assert check.ok and not check.repairs and check.notes == SLOT_TABLE.remarks(root)
    # a regular run does not retry it; --check-missing does, and success clears it
    assert not update_derived(SLOT_TABLE, archive=tmp_path, data_root=root).failed
    _inputs(tmp_path, [302])
    report = update_derived(SLOT_TABLE, archive=tmp_path, data_root=root, check_missing=True)
    assert list(report.done) == [(302, 0)] and report.ok
    assert len(table.failures()) == 0 and (302, 0) in table.keys()


def test_no_table_is_a_missing_archive_not_an_empty_one(tmp_path):
    table = GenerationTable(tmp_path / "x.h5", SPEC, "mica update slot-table")
    with pytest.raises(MissingArchiveError, match="mica update slot-table"):
        table.read()
    assert not (tmp_path / "x.h5").exists()


_KILL_SCRIPT = """
import sys
sys.path.insert(0, {repo!r})
from tests.engine.test_derived import SLOT_TABLE
from mica.engine.derived import update_derived
update_derived(SLOT_TABLE, archive={archive!r}, data_root={root!r}, checkpoint=5)
"""


def test_a_killed_update_leaves_the_previous_table_and_the_rerun_completes(tmp_path):
    root = tmp_path / "slot_table"
    _inputs(tmp_path, range(400, 410))
    update_derived(SLOT_TABLE, archive=tmp_path, data_root=root)
    before = SLOT_TABLE.table(root).read()
    _inputs(tmp_path, range(410, 440))
    script = _KILL_SCRIPT.format(repo=str(REPO_ROOT), archive=str(tmp_path), root=str(root))
    env = {**os.environ, "SLOT_TABLE_DELAY": "0.1"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    table = SLOT_TABLE.table(root)
    deadline = time.monotonic() + 60
    # readers see a whole generation at every moment of the run
    while proc.poll() is None and time.monotonic() < deadline:
        rows = table.read()
        assert len(rows) % 3 == 0 and np.array_equal(rows[: len(before)], before)
        if len(rows) > len(before):  # one checkpoint written: kill mid-run
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    partial = table.read()
    assert len(before) < len(partial) < 3 * 40
    report = update_derived(SLOT_TABLE, archive=tmp_path, data_root=root)
    assert report.ok
    rows = table.read()
    assert sorted(set(rows["obsid"].tolist())) == list(range(400, 440)) and len(rows) == 120
    check = check_derived(SLOT_TABLE, root)
    assert check.ok and not check.repairs, check.summary()
    assert not list(root.glob(".slot_table.h5.tmp-*"))


# --- digests: each generation's file and rows recorded, compared by the check -------------


def _flip_stored_rows(path: Path) -> None:
    """A byte flipped in the middle of the first stored (compressed) block of the rows."""
    with h5py.File(path, "r") as h5:
        info = h5["data"].id.get_chunk_info(0)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        byte = fh.read(1)[0]
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte ^ 0x5A]))


def _edit(path: Path, obsid: int, slot: int, **values: object) -> None:
    """Columns of one row changed in place with h5py, as a user's hand edit is made."""
    with h5py.File(path, "a") as h5:
        data = h5["data"][...]
        i = np.flatnonzero((data["obsid"] == obsid) & (data["slot"] == slot))[0]
        for name, value in values.items():
            data[name][i] = value
        h5["data"][...] = data


def test_check_tells_a_hand_edit_from_damaged_rows(tmp_path):
    """A hand edit leaves the rows intact (`--repair` rewrites the table from them); a damaged
    byte does not (`--repair` rebuilds the table from the inputs, the hand edit kept)."""
    root = tmp_path / "slot_table"
    _inputs(tmp_path, range(500, 506))
    update_derived(SLOT_TABLE, archive=tmp_path, data_root=root)
    table = SLOT_TABLE.table(root)
    record = recorded(table.path)
    assert record is not None and record.files == (digest_file(table.path),)
    assert len(record.contents) == 1 and not record.unverified
    assert check_derived(SLOT_TABLE, root).ok

    _edit(table.path, 503, 1, known_bad=True, bad_comment=b"spoiler")
    edited = table.read()
    check = check_derived(SLOT_TABLE, root)
    assert check.problems == [
        f"{table.path} has changed since mica wrote it, its rows not (but for known_bad, "
        "bad_comment, meant for hand edits): an edit made outside mica, or damage of what a "
        "rewrite from its rows rebuilds (indexes, HDF5's own structures)"
    ]
    check = check_derived(SLOT_TABLE, root, repair=True)
    assert check.repairs == ["rewrote slot_table.h5 with its rows as they are, digests recorded"]
    assert np.array_equal(table.read(), edited) and check_derived(SLOT_TABLE, root).ok

    _flip_stored_rows(table.path)
    (problem,) = check_derived(SLOT_TABLE, root).problems
    assert problem.startswith(f"{table.path} does not ")  # open, or match its digests
    check = check_derived(SLOT_TABLE, root, repair=True)
    assert check.repairs[-1].startswith("rebuilt slot_table.h5 from the inputs"), check.repairs
    (aside,) = root.glob("slot_table.h5.2*")  # the damaged table, kept
    assert f"the old one is kept as {aside}" in check.repairs[0]
    assert np.array_equal(table.read(), edited)  # the hand edit carried over
    assert check_derived(SLOT_TABLE, root).ok


def test_rows_merged_from_a_damaged_table_are_reported_until_rebuilt(tmp_path):
    """An update merges the rows it finds; when they do not match their digest (a value
    changed without breaking the file), its table's record says so, and the check reports it
    until `--repair` has rebuilt the table from the inputs."""
    root = tmp_path / "slot_table"
    _inputs(tmp_path, range(600, 604))
    update_derived(SLOT_TABLE, archive=tmp_path, data_root=root)
    table = SLOT_TABLE.table(root)
    clean = table.read()
    _edit(table.path, 601, 2, mag=99.0)
    (problem,) = check_derived(SLOT_TABLE, root).problems
    assert problem.endswith(
        "does not match the digests recorded when mica wrote it, nor do its rows "
        "(damaged or truncated)"
    )
    _inputs(tmp_path, [604])
    assert update_derived(SLOT_TABLE, archive=tmp_path, data_root=root).ok
    assert recorded(table.path).unverified.startswith("holds rows merged from a table that does")
    for _ in range(2):  # the record carried on by the next generation
        (problem,) = check_derived(SLOT_TABLE, root).problems
        assert problem.startswith(f"{table.path} holds rows merged from a table that does not")
        _inputs(tmp_path, [605])
        update_derived(SLOT_TABLE, archive=tmp_path, data_root=root, obsids=[605])
    assert check_derived(SLOT_TABLE, root, repair=True).repairs
    rows = table.read()
    assert np.array_equal(rows[: len(clean)], clean) and len(rows) == len(clean) + 6
    assert check_derived(SLOT_TABLE, root).ok and not recorded(table.path).unverified


class _Killed(Exception):
    """A kill of the writer, at a chosen point."""


@pytest.mark.parametrize("killed", ["before the rename", "after the rename"])
def test_a_write_killed_between_its_records_leaves_an_accepted_table(tmp_path, monkeypatch, killed):
    """The record accepts the old file and the new one while the new one is renamed in."""
    root = tmp_path / "slot_table"
    _inputs(tmp_path, range(700, 703))
    update_derived(SLOT_TABLE, archive=tmp_path, data_root=root)
    _inputs(tmp_path, [703])

    def rename_then_die(tmp: Path, dest: Path) -> None:
        if killed == "after the rename":
            os.replace(tmp, dest)
        raise _Killed

    monkeypatch.setattr(digests, "replace_durable", rename_then_die)
    with pytest.raises(_Killed):
        update_derived(SLOT_TABLE, archive=tmp_path, data_root=root)
    monkeypatch.undo()
    table = SLOT_TABLE.table(root)
    assert len(recorded(table.path).files) == 2
    assert (
        (703, 0) in table.keys() if killed == "after the rename" else (703, 0) not in table.keys()
    )
    check = check_derived(SLOT_TABLE, root)
    assert check.ok and not check.repairs, check.summary()
    assert update_derived(SLOT_TABLE, archive=tmp_path, data_root=root, obsids=[703]).ok
    assert len(recorded(table.path).files) == 1 and check_derived(SLOT_TABLE, root).ok


def test_table_without_digests_and_an_unfinished_record(tmp_path):
    """A table written before digests were is noted and gets them recorded by `--repair`;
    a record a killed write left half-written is an unfinished generation."""
    root = tmp_path / "slot_table"
    _inputs(tmp_path, range(800, 802))
    update_derived(SLOT_TABLE, archive=tmp_path, data_root=root)
    table = SLOT_TABLE.table(root)
    digests.sidecar(table.path).unlink()  # lost: its table says it was written with one
    (problem,) = check_derived(SLOT_TABLE, root).problems
    assert (
        problem == f"{table.path} has lost its digest record slot_table.h5.digest, written with it "
        "(a copy of the table without it, e.g. on a laptop, reads once slot_table.h5.digest is "
        "copied beside it)"
    )
    with pytest.raises(DamagedFileError, match="has lost its digest record"):
        table.read()
    repairs = check_derived(SLOT_TABLE, root, repair=True).repairs
    assert repairs[-1].startswith("rebuilt slot_table.h5 from the inputs"), repairs
    assert check_derived(SLOT_TABLE, root).ok and len(table.read()) > 0
    digests.sidecar(table.path).unlink()
    with h5py.File(table.path, "r+") as h5:  # as a table written before digests were
        del h5.attrs[RECORDED_ATTR]
    check = check_derived(SLOT_TABLE, root)
    assert check.ok and check.notes == [
        f"no digests recorded for {table.path} (written before digests were): "
        "`mica check --repair` or the next update that writes it records them"
    ]
    check = check_derived(SLOT_TABLE, root, repair=True)
    assert check.repairs == ["recorded the digests of slot_table.h5"]
    assert recorded(table.path).files == (digest_file(table.path),)
    partial = partial_name(digests.sidecar(table.path))
    partial.write_text("{")
    assert check_derived(SLOT_TABLE, root).problems == [
        f"unfinished table generation {partial} (a killed update)"
    ]
    assert check_derived(SLOT_TABLE, root, repair=True).repairs
    assert not partial.exists() and check_derived(SLOT_TABLE, root).ok


def test_a_check_that_failed_while_its_file_was_replaced_looks_again(tmp_path):
    """A reader's check that fails on a file a writer replaced meanwhile (the record read
    before the rename, the bytes after) looks again at the file now there; a file that did
    not change keeps its problem, and one found intact is not read again."""
    path = tmp_path / "acq_stats.h5"
    path.write_bytes(b"generation 1")
    seen = []

    def problem() -> str | None:
        seen.append(path.read_bytes())
        if len(seen) == 1:  # a new generation renamed into place during the check
            (tmp_path / "new").write_bytes(b"generation 2")
            os.replace(tmp_path / "new", path)
            return "does not match its record"
        return None

    assert digests.checked_once(path, problem) is None
    assert seen == [b"generation 1", b"generation 2"]
    assert digests.checked_once(path, problem) is None and len(seen) == 2  # not read again
    damaged = tmp_path / "guide_stats.h5"
    damaged.write_bytes(b"rows")
    found = []
    assert digests.checked_once(damaged, lambda: found.append(1) or "damaged") == "damaged"
    assert found == [1]
