"""`mica.engine.read.snapshot_read` on a real L0 archive: one snapshot, retried when a file
that the snapshot lists is removed by a concurrent update."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits

from mica.engine.index import INDEX_NAME, ArchiveIndex
from mica.engine.read import snapshot_read
from mica.errors import MissingArchiveError
from mica.products.aca_l0 import L0


@pytest.fixture
def root(tmp_path: Path, real_l0_archive: Path) -> Path:
    """A private copy of the real 2003:215 archive (the tests remove files)."""
    out = tmp_path / "aca0"
    shutil.copytree(real_l0_archive, out)
    return out


def _slot0(index: ArchiveIndex) -> list[dict[str, Any]]:
    return index.query("slot = 0", order="filetime, filename")


def _rows_of(root: Path):
    def read(rec: dict[str, Any]) -> dict[str, Any]:
        with fits.open(L0.path(rec, root)) as hdus:
            return {"files": {rec["filename"]}, "n": len(hdus[1].data)}

    return read


def test_files_only_read_gives_every_listed_file(root):
    rows, pieces = snapshot_read(L0, root, _slot0, None, _rows_of(root))
    assert len(rows) > 1 and [p["files"] for p in pieces] == [{r["filename"]} for r in rows]
    assert [p["n"] for p in pieces] == [r["rows"] for r in rows]


def test_store_pieces_are_not_read_again_from_files(root):
    first = {}

    def from_store(index: ArchiveIndex, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        first.update(rows[0])
        return [{"files": {rows[0]["filename"]}, "n": -1}]

    read_files: list[str] = []

    def from_file(rec: dict[str, Any]) -> dict[str, Any]:
        read_files.append(rec["filename"])
        return _rows_of(root)(rec)

    rows, pieces = snapshot_read(L0, root, _slot0, from_store, from_file)
    assert first["filename"] not in read_files
    assert read_files == [r["filename"] for r in rows[1:]]
    assert pieces[0]["n"] == -1 and len(pieces) == len(rows)


def test_file_removed_by_a_concurrent_update_restarts_from_a_fresh_snapshot(root):
    snapshots: list[list[str]] = []

    def records(index: ArchiveIndex) -> list[dict[str, Any]]:
        rows = _slot0(index)
        snapshots.append([r["filename"] for r in rows])
        if len(snapshots) == 1:
            # What a concurrent update superseding the first file does: remove its row (its
            # own transaction, invisible to this snapshot) and then the file.
            victim = rows[0]
            with sqlite3.connect(root / INDEX_NAME) as conn:
                conn.execute("DELETE FROM archfiles WHERE filename = ?", (victim["filename"],))
            L0.path(victim, root).unlink()
        return rows

    rows, pieces = snapshot_read(L0, root, records, None, _rows_of(root))
    assert len(snapshots) == 2
    assert snapshots[1] == snapshots[0][1:]  # the fresh snapshot no longer lists it
    assert [r["filename"] for r in rows] == snapshots[1] and len(pieces) == len(rows)


def test_file_missing_in_every_snapshot_is_an_error(root):
    calls = []

    def records(index: ArchiveIndex) -> list[dict[str, Any]]:
        calls.append(1)
        return _slot0(index)

    victim = ArchiveIndex.open_for_reading(L0, root)
    with victim:
        path = L0.path(_slot0(victim)[0], root)
    path.unlink()  # gone without its index row: every snapshot still lists it
    with pytest.raises(FileNotFoundError):
        snapshot_read(L0, root, records, None, _rows_of(root), attempts=2)
    assert len(calls) == 2


def test_folder_without_archive(tmp_path):
    with pytest.raises(MissingArchiveError):
        snapshot_read(L0, tmp_path, _slot0, None, _rows_of(tmp_path))
