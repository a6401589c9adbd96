"""Short store reads without HDF5 (`mica.engine.stored_blocks`) and the readers' kept index
connection (`ArchiveIndex.open_for_reading`): the same answers as HDF5's reads and fresh
connections, damage still found, other writers' changes still seen."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from mica.archive import aca_l0
from mica.engine import colstore, stored_blocks
from mica.engine.colstore import ColumnStore
from mica.engine.index import INDEX_NAME, ArchiveIndex, close_kept_readers
from mica.errors import DamagedIndexError, DamagedStoreError, MissingArchiveError
from mica.products.aca_l0 import L0, SLOT_COLUMNS
from tests.engine.test_l0_store import assert_same

DAY = ("2003:215", "2003:216")


@pytest.fixture
def archive(tmp_path, real_l0_archive) -> Path:
    """A copy of the real 2003:215 archive this test may damage."""
    root = tmp_path / "aca0"
    shutil.copytree(real_l0_archive, root)
    return root


def _chunk(root: Path, slot: int) -> dict:
    with ArchiveIndex(L0, root) as index:
        rows = index.conn.execute("SELECT * FROM store_chunks").fetchall()
    (row,) = [dict(r) for r in rows if r["part"].startswith(f"{slot}/")]
    return row


def _read(root: Path, chunk: dict, columns: list[str], t0: float, t1: float, **kw) -> tuple:
    with ArchiveIndex.open_for_reading(L0, root) as index:
        return ColumnStore(L0, index).read(chunk, columns, t0, t1, **kw)


@pytest.mark.parametrize(
    "columns",
    [
        ["TIME", "TEMPCCD"],
        ["TIME", "IMGRAW", "IMGSIZE"],
        [c for c in SLOT_COLUMNS if c != "FILENAME"],
    ],
)
def test_stored_reads_equal_hdf5_reads(real_l0_archive, monkeypatch, columns):
    """Every column group, long and short ranges, a subset of the chunk's files: the stored
    blocks decoded here give HDF5's arrays (its reads: `stored_layout` returning None), and
    the records of the groups read whole hold the same columns."""
    chunk = _chunk(real_l0_archive, 2)
    times = aca_l0.get_slot_data(*DAY, 2, columns="TIME", data_root=real_l0_archive)["TIME"]
    with ArchiveIndex.open_for_reading(L0, real_l0_archive) as index:
        names = colstore._chunk_names(chunk, ColumnStore(L0, index)._tag(chunk["part"]))
    spans = [(times[0], times[-1]), (times[100], times[100] + 600), (times[-50], times[-1] + 9)]
    cases = [(a, b, None) for a, b in spans] + [(times[0], times[-1], set(names[1::2]))]
    for t0, t1, files in cases:
        got, got_names = _read(
            real_l0_archive, chunk, columns, t0, t1, files=files, defer=["IMGRAW"]
        )
        with monkeypatch.context() as m:
            m.setattr(colstore, "stored_layout", lambda path, fd: None)
            ref, ref_names = _read(real_l0_archive, chunk, columns, t0, t1, files=files)
        assert got_names == ref_names and ref.keys() <= got.keys() and len(got["TIME"])
        for name, values in ref.items():
            assert np.array_equal(np.asarray(got[name]), np.asarray(values)), name
        records = {k: v for k, v in got.items() if k not in ref}  # groups read whole
        assert set(records) <= {"KEY", "OTHER"}
        for group, values in records.items():
            assert len(values) == len(got["TIME"]) and values.flags.c_contiguous
            for name in set(values.dtype.names) & set(ref):
                assert np.array_equal(values[name], ref[name]), (group, name)


def test_damage_found_after_layout_learnt(archive, monkeypatch):
    """A block damaged after a read learnt the file's layout: the next read checks the bytes
    it reads, fails naming the block (MICA_STORE_DAMAGED=raise), or serves the files."""
    ref = aca_l0.get_slot_data(*DAY, 3, data_root=archive, use_store=False)
    assert_same(aca_l0.get_slot_data(*DAY, 3, data_root=archive), ref)  # layout learnt
    chunk = archive / _chunk(archive, 3)["path"]
    _flip_a_byte(chunk, "OTHER", 0)
    monkeypatch.setenv("MICA_STORE_DAMAGED", "raise")
    with pytest.raises(DamagedStoreError, match=r"/OTHER chunk at row 0 \(block 0\)"):
        aca_l0.get_slot_data(*DAY, 3, columns=["TIME", "TEMPCCD"], data_root=archive)
    monkeypatch.delenv("MICA_STORE_DAMAGED")
    assert_same(aca_l0.get_slot_data(*DAY, 3, data_root=archive), ref)


def _flip_a_byte(chunk: Path, dataset: str, block: int) -> None:
    """Flip a byte in the middle of a stored block of a chunk file, as bit rot does (the
    file's mtime kept)."""
    fd = os.open(chunk, os.O_RDONLY)
    try:
        offset, size, _ = stored_blocks.stored_layout(chunk, fd).datasets[dataset].blocks[block]
    finally:
        os.close(fd)
    state = chunk.stat()
    with open(chunk, "r+b") as f:
        f.seek(offset + size // 2)
        byte = f.read(1)
        f.seek(offset + size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.utime(chunk, ns=(state.st_atime_ns, state.st_mtime_ns))


def test_replaced_chunk_file_relearnt(archive):
    """A chunk file put in place under the same name (a new inode): its layout is learnt
    again, the answers stay the file scan's."""
    ref = aca_l0.get_slot_data(*DAY, 4, data_root=archive, use_store=False)
    assert_same(aca_l0.get_slot_data(*DAY, 4, data_root=archive), ref)
    chunk = archive / _chunk(archive, 4)["path"]
    before = stored_blocks._LAYOUTS[chunk][1]
    shutil.copy2(chunk, chunk.with_suffix(".new"))
    os.replace(chunk.with_suffix(".new"), chunk)
    assert_same(aca_l0.get_slot_data(*DAY, 4, data_root=archive), ref)
    assert stored_blocks._LAYOUTS[chunk][1].state != before.state


def test_kept_index_connection(archive):
    """One connection per thread serves this thread's readers; another connection's commit
    is seen by the next read; an index replaced under its name is opened again; a missing
    index raises as for a fresh reader."""
    first = ArchiveIndex.open_for_reading(L0, archive)
    first.close()
    again = ArchiveIndex.open_for_reading(L0, archive)
    assert again.conn is first.conn
    other: list[sqlite3.Connection] = []
    thread = threading.Thread(
        target=lambda: other.append(ArchiveIndex.open_for_reading(L0, archive).conn)
    )
    thread.start()
    thread.join()
    assert other[0] is not first.conn

    files = aca_l0.get_files(start=DAY[0], stop=DAY[1], data_root=archive)
    writer = sqlite3.connect(archive / INDEX_NAME, isolation_level=None)
    writer.execute("DELETE FROM archfiles WHERE filename = ?", (Path(files[0]).name,))
    assert aca_l0.get_files(start=DAY[0], stop=DAY[1], data_root=archive) == files[1:]
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # into the file copied below
    writer.close()
    assert aca_l0.get_files(start=DAY[0], stop=DAY[1], data_root=archive) == files[1:]

    copy = archive / "index-copy.db3"
    shutil.copy(archive / INDEX_NAME, copy)
    conn = sqlite3.connect(copy, isolation_level=None)
    conn.execute("DELETE FROM archfiles WHERE filename = ?", (Path(files[1]).name,))
    conn.close()  # the last connection to the copy: its -wal merged and removed
    for suffix in ("-wal", "-shm"):  # aside first, as `mica rebuild index` moves them
        os.replace(archive / f"{INDEX_NAME}{suffix}", archive / f"aside{suffix}")
    os.replace(copy, archive / INDEX_NAME)
    assert aca_l0.get_files(start=DAY[0], stop=DAY[1], data_root=archive) == files[2:]

    (archive / INDEX_NAME).unlink()
    with pytest.raises((MissingArchiveError, DamagedIndexError)) as kept:
        aca_l0.get_files(start=DAY[0], stop=DAY[1], data_root=archive)
    close_kept_readers()
    with pytest.raises(type(kept.value)):
        aca_l0.get_files(start=DAY[0], stop=DAY[1], data_root=archive)


def test_damage_found_in_columns_decoded_later(tmp_path, sim_l0_archive, monkeypatch):
    """A damaged block of a column decoded into the output after the read located it
    (`DeferredPlanes`, here from 2 blocks of a chunk on): the read fails naming the block
    (MICA_STORE_DAMAGED=raise), or serves the files' rows."""
    from tests.conftest import SIM_START, SIM_STOP

    archive = tmp_path / "aca0"
    shutil.copytree(sim_l0_archive, archive)
    monkeypatch.setattr(colstore, "_LATER_BLOCKS", 2)
    span, cols = (SIM_START, SIM_STOP), ["TIME", "TEMPCCD"]
    ref = aca_l0.get_slot_data(*span, 7, columns=cols, data_root=archive, use_store=False)
    assert_same(aca_l0.get_slot_data(*span, 7, columns=cols, data_root=archive), ref)
    chunk = archive / _chunk(archive, 7)["path"]
    _flip_a_byte(chunk, "OTHER", 1)
    monkeypatch.setenv("MICA_STORE_DAMAGED", "raise")
    with pytest.raises(DamagedStoreError, match=r"/OTHER chunk at row 4096 \(block 1\)"):
        aca_l0.get_slot_data(*span, 7, columns=cols, data_root=archive)
    monkeypatch.delenv("MICA_STORE_DAMAGED")
    assert_same(aca_l0.get_slot_data(*span, 7, columns=cols, data_root=archive), ref)
