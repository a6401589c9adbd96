"""The mission table of the header-3 daily statistics (``hd3d``, `mica.products.hdr3_mission`).

Built through the store's real chunk build path (`mica.sim.hdr3_store`: slots 6-7, ``ccd_temp``
and the other items of their words, a thinned cadence) over three ``hd3s`` periods. The table
must give exactly the periods' chunks' bins and the bins computed from the samples; it is
derived again when a period's statistics change; a stale, damaged or missing table is not
read (the chunks serve, the answer unchanged); ``mica check`` names it and ``--repair``
derives it again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from mica.archive import aca_hdr3, hdr3_stats
from mica.engine.colstore import STORE_VERSION, ColumnStore
from mica.engine.index import ArchiveIndex
from mica.engine.index_check import check_archive
from mica.engine.store_tables import check_tables, current_table
from mica.products.aca_l0 import L0
from mica.products.hdr3_items import get_item
from mica.products.hdr3_mission import DAILY_TABLE
from mica.products.hdr3_samples import SAMPLES_VIEW
from mica.products.hdr3_stats import bins_between
from mica.sim.hdr3_store import Hdr3File, file_times, store_hdr3_files

DAY = 86400.0
PERIOD = L0.store_description.view_named(SAMPLES_VIEW).period
#: From a day before period 50's end, over the whole of 51, into 52.
START = 51 * PERIOD - 40 * DAY
DAYS = 140
#: Read across both period boundaries, starting and ending inside a day.
RANGE = (START + 3.5 * DAY, START + (DAYS - 2.5) * DAY)
ITEM = get_item("ccd_temp")


def _files(first: int, days: int) -> list[Hdr3File]:
    """Slots 6-7, a file a day from 3000 s into it, a pair of rows every 328 s."""
    files = []
    for day in range(first, first + days):
        a = START + day * DAY + 3000.25
        times = file_times(a, a + DAY, every=80, pair=True)
        files += [Hdr3File(6, times), Hdr3File(7, times)]
    return files


@pytest.fixture(scope="module")
def mission(tmp_path_factory):
    """The archive, built in two batches (the table derived after each)."""
    root = tmp_path_factory.mktemp("hdr3-mission") / "aca0"
    store_hdr3_files(root, _files(0, DAYS - 10))
    store_hdr3_files(root, _files(DAYS - 10, 10))
    return root


def _table(root):
    with ArchiveIndex.open_for_reading(L0, root) as index:
        return current_table(index.conn, root, L0.store_description, DAILY_TABLE, STORE_VERSION)


def _samples(root):
    return lambda a, b: aca_hdr3._good_samples(ITEM, a, b, root, True)


def _from_chunks(root, t0=RANGE[0], t1=RANGE[1]):
    """The daily bins of [t0, t1) from the periods' chunks (the reader without the table)."""
    k0, k1 = bins_between(t0, t1, "daily")
    pieces = hdr3_stats._from_store(ITEM, "daily", k0, k1, root)
    return hdr3_stats._assemble(pieces, "daily", k0, k1, _samples(root))


def _read(root, t0=RANGE[0], t1=RANGE[1], use_store=True):
    return hdr3_stats.read_stats(ITEM, "daily", t0, t1, _samples(root), root, use_store)


def test_table_is_the_chunks_and_the_samples(mission):
    """Served from the table (one file), the bins are exactly the periods' chunks' and
    those computed from the samples, at any range, also of an item without samples."""
    digests = _table(mission)
    assert digests is not None and digests.path.name.startswith("hd3d.")
    got = _read(mission)
    whole = hdr3_stats._from_table(ITEM, mission)  # the table serves (not the chunks)
    assert whole is not None and np.array_equal(got, whole[:, np.isin(whole[0], got[0])])
    assert got.shape[1] == DAYS - 6  # the days whose midpoint lies in RANGE, all with samples
    assert np.array_equal(got, _from_chunks(mission))
    assert np.array_equal(got, _read(mission, use_store=False))
    for t0, t1 in ((START - 9 * DAY, START + 2 * DAY), (RANGE[0], RANGE[0] + 0.4 * DAY)):
        assert np.array_equal(_read(mission, t0, t1), _from_chunks(mission, t0, t1))
    msid = aca_hdr3.MSID("ccd_temp", *RANGE, data_root=mission, stat="daily")
    assert got.dtype.byteorder == msid.p50s.dtype.byteorder == "="  # as the chunks' come
    assert np.array_equal(msid.maxes, got[3]) and np.array_equal(msid.times, (got[0] + 0.5) * DAY)
    none = aca_hdr3.MSID("ccd_det_therm", *RANGE, data_root=mission, stat="daily")  # slot 0
    assert len(none.times) == 0


def test_table_follows_the_periods(mission, tmp_path):
    """Another day appended: the chunk of its period is rebuilt and the table derived again
    (a new generation) with that day's samples; while a period is dirty the table is not read."""
    root = tmp_path / "aca0"
    shutil.copytree(mission, root)
    before = _table(root).path
    store_hdr3_files(root, _files(DAYS, 1))
    after = _table(root)
    assert after is not None and after.path != before and not before.exists()
    end = START + (DAYS + 1) * DAY
    assert np.array_equal(_read(root, RANGE[0], end), _from_chunks(root, RANGE[0], end))
    # the last day's bin had the previous file's last 3000 s; now the whole day
    grown, old = _read(root, RANGE[0], end), _read(mission, RANGE[0], end)
    assert np.array_equal(grown[:, :-1], old[:, :-1]) and grown[1, -1] > old[1, -1]
    with ArchiveIndex(L0, root) as index, index.transaction():
        index.mark_dirty([f"{SAMPLES_VIEW}/51"])
    assert _table(root) is None


def test_stale_damaged_or_missing_table_is_not_read(mission, tmp_path, caplog):
    """A table not derived from the chunks now recorded, one failing its digests, or one
    whose file is gone: the chunks serve, the answer unchanged; ``mica check`` names the
    stale or (``--verify-store``) damaged table, ``--repair`` derives it again."""
    root = tmp_path / "aca0"
    shutil.copytree(mission, root)
    want = _read(mission)

    def check(verify, repair):
        with ArchiveIndex(L0, root) as index:
            return check_tables(ColumnStore(L0, index), STORE_VERSION, verify, repair)

    assert check(True, False) == ([], [])
    # stale: another chunk in a period's place since the table was derived
    with ArchiveIndex(L0, root) as index, index.transaction():
        index.conn.execute("UPDATE store_tables SET sources = sources || 'x'")
    assert _table(root) is None and np.array_equal(_read(root), want)
    problems, repairs = check(False, True)
    assert "store table hd3d is not derived from the current store chunks" in problems[0]
    assert repairs == ["derived store table hd3d again"] and _table(root) is not None
    # damaged: a flipped byte in the item's block
    path = _table(root).path
    data = bytearray(path.read_bytes())
    with h5py.File(path, "r") as h5:
        offset = h5[f"ST.{ITEM.key}.daily"].id.get_chunk_info(0).byte_offset
    data[offset + 100] ^= 0xFF
    path.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="mica.engine.colstore"):
        assert np.array_equal(_read(root), want)
    assert "does not match its digest" in caplog.text
    assert check(False, False) == ([], [])  # current: only --verify-store decodes it
    report = check_archive(L0, root, verify_store=True)
    assert any(p.startswith("store table hd3d is damaged") for p in report.problems)
    problems, repairs = check(True, True)
    assert repairs == ["derived store table hd3d again"] and check(True, False) == ([], [])
    assert np.array_equal(_read(root), want)
    # missing: the file removed
    _table(root).path.unlink()
    assert np.array_equal(_read(root), want)
    assert "not derived" in check(False, True)[0][0] and _table(root).path.exists()


@pytest.mark.parametrize(
    "t0, t1",
    [
        RANGE,  # two parts: 50's last days, 51 but its last
        (51 * PERIOD + 10 * DAY + 100.5, 51 * PERIOD + 60 * DAY),  # one part, inside 51
        (START - DAY, START + DAYS * DAY + DAY),  # beyond the archive's ends
    ],
)
def test_long_parts_times_read_into_the_output(mission, monkeypatch, t0, t1):
    """A part of more than a few ``BLOCK0`` blocks has its rows found from ``BLOCK0`` and the
    blocks at its edges, its times read later where the fetch's output holds them: the same
    samples as a fetch reading each part's times first (every part's times read whole),
    with ``BLOCK0`` read now or kept, for an item alone and a set on one grid slot."""
    from mica.archive import hdr3_samples

    names = ["ccd_temp", "dsn_hdr2"]  # (both on slot 6)
    unread = []
    real = hdr3_samples._unread_rows
    monkeypatch.setattr(
        hdr3_samples, "_unread_rows", lambda *a: unread.append(real(*a)) or unread[-1]
    )
    hdr3_samples._BLOCK0.clear()
    got = [aca_hdr3.MSIDset(names, t0, t1, data_root=mission) for _ in range(2)]  # BLOCK0 kept
    single = aca_hdr3.MSID("ccd_temp", t0, t1, data_root=mission)
    assert sum(t is not None for t in unread) >= len(got) + 1  # a part of each fetch
    monkeypatch.setattr(hdr3_samples, "_WINDOW_ROWS", 1 << 40)  # never left unread
    hdr3_samples._BLOCK0.clear()
    eager = aca_hdr3.MSIDset(names, t0, t1, data_root=mission)
    assert len(eager.times) > 20000
    for fetched in [*got, {"ccd_temp": single}]:
        for name, msid in fetched.items():
            assert np.array_equal(msid.times, eager.times)
            assert np.array_equal(msid.vals.filled(0), eager[name].vals.filled(0))
            assert np.array_equal(msid.vals.mask, eager[name].vals.mask)
    assert single.times.base is None or single.times.base.size == single.times.size


def test_long_part_read_after_its_chunk_file_is_removed(mission, tmp_path, monkeypatch):
    """A long part's times are read after the snapshot: in a chunk recorded without block
    locations (located by HDF5, which opens the file by its name) its ``TIME`` is located
    while the snapshot holds, so a rebuild removing the file meanwhile does not fail the
    read."""
    from mica.archive import hdr3_samples
    from mica.engine import stored_blocks
    from tests.archive.test_hdr3_reads import _recorded_without_locations

    root = tmp_path / "aca0"
    shutil.copytree(mission, root)
    want = aca_hdr3.MSID("ccd_temp", *RANGE, data_root=root)
    _recorded_without_locations(root)
    real = hdr3_samples.Part.read_grid

    removed = []

    def removed_first(part, out):
        if part.unread is not None:
            path = Path(part.unread.chunk.path)
            path.rename(path.with_name(f"{path.name}.gone"))
            removed.append(path)
        return real(part, out)

    monkeypatch.setattr(hdr3_samples.Part, "read_grid", removed_first)
    monkeypatch.setattr(stored_blocks, "stored_layout", lambda path, fd: None)  # HDF5 locates
    hdr3_samples._BLOCK0.clear()
    got = aca_hdr3.MSID("ccd_temp", *RANGE, data_root=root)
    assert len(removed) == 2 and not any(path.exists() for path in removed)  # (both parts)
    assert len(got.times) > 20000 and np.array_equal(got.times, want.times)
    assert np.array_equal(got.vals.filled(0), want.vals.filled(0))
