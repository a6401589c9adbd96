"""Header-3 sample reads at the edges of the sample view's periods: each way a fetch finds a
part's rows in its period's table (the whole table, ``BLOCK0``, the ``BLOCK0`` kept from an
earlier read of the same chunk file, or for a short part at its period's edge, the ``TIME``
block at that edge), in read spans and decode steps of any size, gives the
file scan's answer; a fetch returns arrays of its own (none in a buffer a later read reuses)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mica.archive import hdr3_samples
from mica.archive.aca_hdr3 import MSID, MSIDset
from mica.products.hdr3_items import get_item
from tests.archive.conftest import BOUNDARY
from tests.archive.test_aca_hdr3 import SIM_ITEMS, assert_set_equal, served_by_tables

#: The sample view's period (s): BOUNDARY is the start of period 52.
PERIOD = 100 * 86400.0
#: The longest part at a period's edge read from the edge's TIME block (no BLOCK0).
EDGE = hdr3_samples._EDGE_SECONDS
GRID_SLOTS = len({get_item(name).slot for name in SIM_ITEMS})


def fetch_fresh(a: float, b: float, root) -> tuple[MSIDset, int]:
    """The set as a fresh process reads it (no ``BLOCK0`` kept), and how many slots' ``BLOCK0``
    the read took."""
    hdr3_samples._BLOCK0.clear()
    got = MSIDset(SIM_ITEMS, a, b, data_root=root)
    return got, len(hdr3_samples._BLOCK0)


@pytest.mark.parametrize(
    "a, b, block0_parts",
    [
        # 51 whole; 52 from its start, short: its first TIME block
        (BOUNDARY - PERIOD - 100, BOUNDARY + 3000, 0),
        (BOUNDARY - 3000, BOUNDARY + 3000, 0),  # 51 to its end, 52 from its start: edge blocks
        (BOUNDARY - EDGE, BOUNDARY + 600, 0),  # as long as `_EDGE_SECONDS` still
        (BOUNDARY - EDGE - 600, BOUNDARY + 600, 1),  # 51's part longer: BLOCK0
        (BOUNDARY - 30000, BOUNDARY + 30000, 2),
        (BOUNDARY - 7000, BOUNDARY - 1000, 1),  # inside 51
        (BOUNDARY + 1000, BOUNDARY + 6000, 1),  # inside 52, to the archive's end
    ],
)
def test_every_way_to_a_part_gives_the_file_scan(boundary_archive, a, b, block0_parts):
    slow = MSIDset(SIM_ITEMS, a, b, data_root=boundary_archive, use_store=False)
    first, block0 = fetch_fresh(a, b, boundary_archive)
    assert block0 == block0_parts * GRID_SLOTS
    assert assert_set_equal(first, slow) > 1000
    again = MSIDset(SIM_ITEMS, a, b, data_root=boundary_archive)  # BLOCK0 kept, if read
    assert assert_set_equal(again, slow) > 1000


@pytest.mark.parametrize("read_rows, decode_rows", [(1000, (300, 300)), (4096, (1, 1 << 20))])
def test_any_read_span_and_decode_step_gives_the_file_scan(
    boundary_archive, monkeypatch, read_rows, decode_rows
):
    """Table rows read in spans that cut the HDF5 blocks (1000 rows: each block decoded
    for several spans) or follow them, decoded a few hundred rows at a time or all at once,
    for a set of several grid slots and an item alone (one grid slot: the values decoded
    part by part when they are few)."""
    monkeypatch.setattr(hdr3_samples, "READ_ROWS", read_rows)
    monkeypatch.setattr(hdr3_samples, "DECODE_ROWS", decode_rows)
    a, b = BOUNDARY - 5000, BOUNDARY + 4000
    slow = MSIDset(SIM_ITEMS, a, b, data_root=boundary_archive, use_store=False)
    got = MSIDset(SIM_ITEMS, a, b, data_root=boundary_archive)
    assert assert_set_equal(got, slow, data_root=boundary_archive) > 1000


def test_times_read_into_arrays_of_their_own_give_the_part_s_rows_alone(
    boundary_archive, monkeypatch
):
    """``TIME`` windows too long for the thread's buffer are arrays of their own: a fetch of
    one part returns its rows alone (not a view keeping the window), one of several parts
    their concatenation; both the file scan's."""
    monkeypatch.setattr(hdr3_samples, "_WINDOW_ROWS", 0)
    name = SIM_ITEMS[1]
    for a, b in [(BOUNDARY - 6000, BOUNDARY - 4000), (BOUNDARY - 3000, BOUNDARY + 3000)]:
        got = MSID(name, a, b, data_root=boundary_archive)
        slow = MSID(name, a, b, data_root=boundary_archive, use_store=False)
        assert len(got.times) > 100 and np.array_equal(got.times, slow.times)
        assert np.array_equal(got.vals.filled(0), slow.vals.filled(0))
        assert np.array_equal(got.vals.mask, slow.vals.mask)
        assert got.times.base is None or got.times.base.size == got.times.size


def test_a_fetch_returns_arrays_of_its_own(boundary_archive):
    """Short fetches read ``TIME`` and the tables' columns into buffers of the thread that
    the next read reuses: what a fetch returned is not changed by the next fetch."""
    name = SIM_ITEMS[1]
    fetches = [(BOUNDARY - 6000, BOUNDARY - 4000), (BOUNDARY - 3000, BOUNDARY - 2000)]
    first = MSID(name, *fetches[0], data_root=boundary_archive)
    kept = first.times.copy(), first.vals.copy()
    second = MSID(name, *fetches[1], data_root=boundary_archive)
    assert len(first.times) > 100 and len(second.times) > 100
    assert np.array_equal(first.times, kept[0])
    assert np.array_equal(first.vals.filled(0), kept[1].filled(0))
    assert not np.shares_memory(first.times, second.times)


def test_block0_kept_is_the_chunk_file_s_own(tmp_path, boundary_archive):
    """A period's chunk rebuilt with more files (an update) is a new file with its own
    ``BLOCK0``: the one kept from the earlier file is not used for it."""
    from mica.engine.time_update import update_archive
    from mica.products.aca_l0 import L0

    root = tmp_path / "aca0"
    shutil.copytree(boundary_archive, root)
    a, b = BOUNDARY - 30000, BOUNDARY - 1000
    before, block0 = fetch_fresh(a, b, root)
    assert block0 == GRID_SLOTS
    update_archive(L0, "sim", BOUNDARY - 30000, BOUNDARY - 20000, data_root=root)
    after = MSIDset(SIM_ITEMS, a, b, data_root=root)
    assert len(hdr3_samples._BLOCK0) == 2 * GRID_SLOTS  # the new file's too
    assert len(after.times) > len(before.times) + 500
    assert assert_set_equal(after, MSIDset(SIM_ITEMS, a, b, data_root=root, use_store=False)) > 0


def _recorded_without_locations(root) -> list[str]:
    """The sample tables' chunk records as a store built before block locations were
    recorded has them (the chunk files unchanged); their files."""
    import json
    import sqlite3

    with sqlite3.connect(root / "archfiles.db3") as db:
        rows = db.execute("SELECT part, path, digests FROM store_chunks WHERE part LIKE 'hd3s/%'")
        paths = []
        for part, path, text in rows.fetchall():
            record = json.loads(text)
            assert any(len(item) == 5 for item in record["datasets"].values())
            record["datasets"] = {n: item[:4] for n, item in record["datasets"].items()}
            update = "UPDATE store_chunks SET digests = ? WHERE part = ?"
            db.execute(update, (json.dumps(record), part))
            paths.append(str(root / path))
    return paths


def test_chunks_recorded_with_or_without_block_locations(tmp_path, boundary_archive, monkeypatch):
    """The tables' blocks are read where the chunk's record locates them (no HDF5 file
    opened), or, in a chunk recorded without locations, where HDF5 finds them (kept per
    process for the file): the file scan's answer either way, first call and warm, and
    a chunk file can be opened for writing between reads (no reader holds it open)."""
    import h5py

    from mica.engine import h5chunks, stored_blocks

    a, b = BOUNDARY - 30000, BOUNDARY + 3000
    slow = MSIDset(SIM_ITEMS, a, b, data_root=boundary_archive, use_store=False)
    assert served_by_tables({n: get_item(n) for n in SIM_ITEMS}, a, b, boundary_archive)
    opened: list[str] = []
    real_open = h5chunks.open_h5_id
    for module in (h5chunks, stored_blocks):  # every opener of a chunk file
        monkeypatch.setattr(module, "open_h5_id", lambda p: opened.append(str(p)) or real_open(p))
    for _ in range(2):
        got, _ = fetch_fresh(a, b, boundary_archive)
        assert assert_set_equal(got, slow) > 1000
    assert opened == []  # recorded locations: HDF5 never opened
    root = tmp_path / "aca0"
    shutil.copytree(boundary_archive, root)
    files = _recorded_without_locations(root)
    got, _ = fetch_fresh(a, b, root)
    assert assert_set_equal(got, slow) > 1000
    assert sorted(opened) == sorted(files)  # located by HDF5
    opened.clear()
    assert assert_set_equal(MSIDset(SIM_ITEMS, a, b, data_root=root), slow) > 1000
    assert opened == []  # located before: kept
    for path in files:
        with h5py.File(path, "r+") as h5:
            h5.attrs["opened for writing"] = 1
    assert assert_set_equal(MSIDset(SIM_ITEMS, a, b, data_root=root), slow) > 1000
    assert sorted(opened) == sorted(files)  # changed since: located afresh


def test_current_chunks_read_neither_a_file_list_nor_digests_parsed_before(boundary_archive):
    """A reader of the sample tables asks for no file list; a chunk file's digests, once
    parsed, are not read again (the row holds the text kept with them)."""
    from mica.engine.colstore import ColumnStore
    from mica.engine.index import ArchiveIndex
    from mica.products.aca_l0 import L0
    from mica.products.hdr3_samples import SAMPLES_VIEW

    view = L0.store_description.view_named(SAMPLES_VIEW)
    parts = [view.key({"filetime": k * PERIOD}) for k in (51, 52)]
    with ArchiveIndex.open_for_reading(L0, boundary_archive) as index:
        store = ColumnStore(L0, index)
        first = store.current_chunks(parts, names=False)
        again = store.current_chunks(parts, names=False)
        listed = store.current_chunks(parts)
    assert sorted(first) == sorted(again) == sorted(listed) == sorted(parts)
    for part in parts:
        assert "files" not in first[part] and again[part]["digests"] is first[part]["digests"]
        assert len(listed[part]["files"].splitlines()) > 2  # the tag, then a line per file
        assert store.digests(again[part]) is store.digests(listed[part])


def test_current_chunks_find_their_parsed_files_among_many(boundary_archive):
    """The kept digests of a query's own chunk files are used however many other chunk
    files (of other periods) this process parsed before them."""
    from mica.engine import colstore
    from mica.engine.colstore import ColumnStore
    from mica.engine.index import ArchiveIndex
    from mica.products.aca_l0 import L0
    from mica.products.hdr3_samples import SAMPLES_VIEW

    view = L0.store_description.view_named(SAMPLES_VIEW)
    parts = [view.key({"filetime": k * PERIOD}) for k in (51, 52)]
    root = boundary_archive.resolve()
    colstore._PARSED.pop(root, None)
    with ArchiveIndex.open_for_reading(L0, boundary_archive) as index:
        store = ColumnStore(L0, index)
        parsed = colstore._PARSED.setdefault(index.root, {})
        # parsed before: chunk files of 250 other periods (more than a query binds)
        parsed.update({f"store/hd3s/{k}.1.h5": ("", None) for k in range(250)})
        first = store.current_chunks(parts, names=False)
        again = store.current_chunks(parts, names=False)
    for part in parts:
        assert again[part]["digests"] is first[part]["digests"]


def test_rows_past_a_recorded_stop_of_the_row_path(tmp_path, boundary_archive):
    """A file's rows may lie up to a second after its TSTOP (`check_times`): a fetch from its
    stop leaves the file out (the files' index query), so the header-3 view's chunk rows of
    it too (`aca_l0.hd3_columns`), as the header-3 rows of a set do when its sample tables
    cannot serve (dirty)."""
    from mica.archive import aca_l0
    from mica.engine.index import ArchiveIndex
    from mica.products.aca_l0 import L0
    from tests.archive.test_slot_chunks import stop_before_last_row

    root = tmp_path / "aca0"
    shutil.copytree(boundary_archive, root)
    _, last = stop_before_last_row(root)
    columns = ["TIME", "HD3TLM62", "HD3TLM77"]
    taken = []
    for a in (last - 0.5, last - 0.2, last - 1.0):
        got = aca_l0.hd3_columns(a, last + 600, [0], columns, data_root=root)[0]
        ref = aca_l0.slot_columns(a, last + 600, [0], columns, [8], root, use_store=False)[0]
        for name in columns:
            assert np.array_equal(got[name], ref[name]), (a - last, name)
        taken.append(last in ref["TIME"])
    assert taken == [False, False, True]  # its last row (in range each time) from its stop
    with ArchiveIndex(L0, root) as index, index.transaction():
        index.mark_dirty([f"hd3s/{int(BOUNDARY // PERIOD) - 1}", f"hd3s/{int(BOUNDARY // PERIOD)}"])
    for a in (last - 0.5, last - 0.2):
        assert not served_by_tables({n: get_item(n) for n in SIM_ITEMS}, a, a + 600, root)
        slow = MSIDset(SIM_ITEMS, a, a + 600, data_root=root, use_store=False)
        assert assert_set_equal(MSIDset(SIM_ITEMS, a, a + 600, data_root=root), slow) > 100


def test_a_part_its_edge_block_does_not_hold_is_found_from_block0(tmp_path, monkeypatch):
    """Stored blocks shorter than a part at its period's edge (64 rows here: a table's
    hold 16 k, about 18 hours, `hdr3_samples._EDGE_SECONDS` of rows many times over): the
    edge block does not hold every time of the part, so ``BLOCK0`` finds them, the file
    scan's answer."""
    from mica.engine import colstore
    from mica.engine.time_update import update_archive
    from mica.products.aca_l0 import L0

    monkeypatch.setattr(colstore, "_CHUNK_BYTES", 1 << 10)
    monkeypatch.setattr(colstore, "_MIN_CHUNK_ROWS", 64)
    monkeypatch.setattr(colstore, "_ALONE_CHUNK_ROWS", 64)
    root = tmp_path / "aca0"
    update_archive(L0, "sim", BOUNDARY - 7200, BOUNDARY + 7200, data_root=root)
    for a, b in ((BOUNDARY - 3000, BOUNDARY + 3000), (BOUNDARY - 600, BOUNDARY + 600)):
        slow = MSIDset(SIM_ITEMS, a, b, data_root=root, use_store=False)
        got, block0 = fetch_fresh(a, b, root)
        assert block0 == 2 * GRID_SLOTS  # (the edge blocks alone serve these parts otherwise)
        assert assert_set_equal(got, slow) > 100
