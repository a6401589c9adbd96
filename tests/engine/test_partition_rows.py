"""A partition's rows after its chunk's files (`mica.engine.colstore.PartitionRows`): an update
appending files to a partition reads the index rows of the files after the chunk's alone, and
the held files' rows only from the first one a build asks for; every way of reading them gives
the partition's rows, and a chunk extended from them is the one a build from every file
writes."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from mica.engine import colstore
from mica.engine.colstore import ColumnStore, PartitionRows
from mica.engine.index import ArchiveIndex
from mica.products.aca_l0 import HD3_VIEW_PERIOD, L0
from mica.sim.hdr3_store import Hdr3File, file_times, store_hdr3_files
from tests.engine.test_store_append import (
    BOUNDARY,
    MIDNIGHT,
    _blocks,
    _hd3s_files,
    _small_blocks,
)


def _rows(n: int) -> list[dict]:
    return [{"filename": f"f{k:03d}", "checksum": f"c{k}", "slot": k % 3} for k in range(n)]


def _partition_rows(rows: list[dict], held: int) -> tuple[PartitionRows, list[int]]:
    """``rows`` as the partition rows of a chunk holding the first ``held``, and the offsets
    of the reads of the index."""
    asked: list[int] = []

    def fetch(offset: int) -> list[dict]:
        asked.append(offset)
        return [dict(r) for r in rows[offset:]]

    body = colstore._file_list(rows[:held], "")
    return PartitionRows(body, held, fetch(held), fetch), asked


def test_every_read_gives_the_partition_rows():
    """Items, slices, iteration, a pickle and the file list are those of the plain list; the
    rows after the held ones are read once, the held ones from the first asked for on."""
    rows = _rows(20)
    lazy, asked = _partition_rows(rows, 12)
    assert len(lazy) == 20 and asked == [12]
    assert lazy[12:] == rows[12:] and lazy[-1] == rows[-1] and lazy[15] == rows[15]
    assert colstore._file_list(lazy, "v\n") == colstore._file_list(rows, "v\n")
    assert asked == [12]  # nothing held read yet
    assert lazy[9] == rows[9] and lazy[10:14] == rows[10:14] and asked == [12, 9]
    assert lazy[9:3] == [] and lazy[11:2:-1] == rows[11:2:-1] and asked == [12, 9, 0]
    for at in [slice(None), slice(3, 17, 4), slice(-5, None), slice(0, 0)]:
        assert lazy[at] == rows[at]
    assert list(lazy) == rows and pickle.loads(pickle.dumps(lazy)) == rows
    with pytest.raises(IndexError):
        lazy[20]
    assert colstore._file_list(lazy, "v\n") == colstore._file_list(rows, "v\n")


def test_hd3s_extension_reads_the_last_held_rows_alone(tmp_path, monkeypatch):
    """A header-3 sample chunk extended with the partition's rows as `PartitionRows` is the
    chunk a build from every file writes, and only the index rows of the held files holding
    rows the tables are computed again from are read (the last few of each slot)."""
    _small_blocks(monkeypatch)
    rows, arrays = _hd3s_files(
        np.random.default_rng(5), MIDNIGHT - 3000, MIDNIGHT + 60, MIDNIGHT + 2000
    )
    kept = sum(r["tstart"] < MIDNIGHT + 60 for r in rows)
    store = ColumnStore(L0, colstore._Folder(tmp_path))  # type: ignore[arg-type]
    part = f"hd3s/{int(BOUNDARY // HD3_VIEW_PERIOD)}"
    image, built = store._image(part, 1, rows[:kept], arrays[:kept])
    (tmp_path / "old.h5").write_bytes(image)
    tag = store._tag(part)
    old = {"part": part, "path": "old.h5", "files": colstore._file_list(rows[:kept], tag)}
    old.update(built._asdict())
    lazy, asked = _partition_rows(rows, kept)
    extended, ext = store._image(part, 2, lazy, arrays[kept:], old)
    whole, full = store._image(part, 2, rows, arrays)
    assert (ext.nrows, ext.tstart, ext.tstop) == (full.nrows, full.tstart, full.tstop)
    records = [  # each dataset's record but where its blocks lie in the file
        {name: item[:4] for name, item in json.loads(b.digests)["datasets"].items()}
        for b in (ext, full)
    ]
    assert records[0] == records[1]
    mine, theirs = _blocks(io.BytesIO(extended)), _blocks(io.BytesIO(whole))
    assert mine.keys() == theirs.keys()
    for name, (values, *_) in mine.items():
        assert np.array_equal(values, theirs[name][0], equal_nan=True), name
    assert len(asked) == 2 and kept - 3 * 8 < asked[1] < kept  # a few a slot


def _day(day: int, slots: int = 2) -> list[Hdr3File]:
    t0 = BOUNDARY + 7200 + day * 3000.0
    return [
        Hdr3File(s, file_times(t0 + k * 400, t0 + k * 400 + 300))
        for k in range(3)
        for s in range(slots)
    ]


def test_an_update_reads_the_rows_after_the_chunks_files(tmp_path: Path, monkeypatch):
    """An update of partitions whose chunks hold their first files reads the rows after
    them (`PartitionRows`, the same rows as the index's); one whose chunk's file was
    replaced reads every row."""
    root = tmp_path / "aca0"
    store_hdr3_files(root, _day(0))
    todo = ColumnStore._part_todo
    seen: dict[str, object] = {}

    def recording(self, part):
        found = todo(self, part)
        if found is not None:
            where, params = L0.partition_where(part)
            cols = ", ".join(L0.store_row_columns)
            assert list(found[0]) == self.index.query(where, params, columns=cols), part
            seen[part] = type(found[0])
        return found

    monkeypatch.setattr(ColumnStore, "_part_todo", recording)
    store_hdr3_files(root, _day(1))
    assert seen and set(seen.values()) == {PartitionRows}
    with ArchiveIndex(L0, root) as index, index.transaction():
        name = index.conn.execute("SELECT min(filename) FROM archfiles").fetchone()[0]
        index.conn.execute("UPDATE archfiles SET checksum = 'other' WHERE filename = ?", (name,))
    seen.clear()
    store_hdr3_files(root, _day(2))
    slot = int(name.split("_")[1])
    assert seen[f"hd3/{slot}/52"] is list and seen["hd3s/52"] is list
