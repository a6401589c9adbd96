"""The columnar L0 store: same answers as the file scan, kept consistent through ingest."""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from mica.archive import aca_hdr3, aca_l0
from mica.cli import main
from mica.engine.colstore import ColumnStore
from mica.engine.index import ArchiveIndex
from mica.engine.index_check import check_archive
from mica.engine.time_update import update_archive
from mica.errors import DamagedStoreError, MissingArchiveError, TimeRangeError
from mica.products.aca_l0 import L0
from mica.products.hdr3_items import ITEMS


def assert_same(a: np.ma.MaskedArray, b: np.ma.MaskedArray) -> None:
    assert a.dtype == b.dtype and len(a) == len(b)
    for name in a.dtype.names:
        assert np.array_equal(np.ma.getmaskarray(a[name]), np.ma.getmaskarray(b[name])), name
        assert np.array_equal(a[name].filled(0), b[name].filled(0)), name


def test_store_written_by_ingest(real_l0_archive):
    with ArchiveIndex(L0, real_l0_archive) as index:
        store = ColumnStore(L0, index)
        assert store.stale_parts() == []
        chunks = index.conn.execute("SELECT part, nrows FROM store_chunks").fetchall()
        rows: dict[str, int] = {}
        for r in index.query():
            for part in L0.partitions(r):
                rows[part] = rows.get(part, 0) + r["rows"]
    # one chunk per slot and period, plus the header-3 view of the 8x8 files and the
    # header-3 sample view (every slot's 8x8 files in one chunk per period)
    assert dict(chunks) == rows
    assert {p.split("/")[0] for p in rows} == {"hd3", "hd3s", *map(str, range(8))}
    assert all(p.startswith("hd3/") for p in rows if p.count("/") == 2)


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("slot", range(8))
def test_store_equals_file_scan_real(real_l0_archive, slot, centered):
    kwargs = dict(slot=slot, data_root=real_l0_archive, centered_8x8=centered)
    full = aca_l0.get_slot_data("2003:215", "2003:216", **kwargs)
    assert_same(full, aca_l0.get_slot_data("2003:215", "2003:216", use_store=False, **kwargs))
    t0, t1 = full["TIME"][len(full) // 3], full["TIME"][len(full) // 2]
    for sizes in ([4], [6, 8], None):
        part = aca_l0.get_slot_data(
            t0, t1, imgsize=sizes, columns=["TIME", "IMGRAW", "BGDRMS"], **kwargs
        )
        ref = aca_l0.get_slot_data(
            t0, t1, imgsize=sizes, columns=["TIME", "IMGRAW", "BGDRMS"], use_store=False, **kwargs
        )
        assert_same(part, ref)


@pytest.mark.parametrize("slot", [0, 7])
def test_header3_view_mixed_with_full_view_real(real_l0_archive, slot):
    """Columns held by the header-3 view: its 8x8 rows merge in time order with the other
    sizes' rows from the full view, exactly as the file scan orders them."""
    columns = ["TIME", "HD3TLM73", "FILENAME"]
    kwargs = dict(slot=slot, data_root=real_l0_archive, columns=columns)
    fast = aca_l0.get_slot_data("2003:215", "2003:216", **kwargs)
    assert set(
        np.unique(
            aca_l0.get_slot_data(
                "2003:215", "2003:216", slot=slot, data_root=real_l0_archive, columns=["IMGSIZE"]
            )["IMGSIZE"]
        )
    ) > {8}
    assert_same(fast, aca_l0.get_slot_data("2003:215", "2003:216", use_store=False, **kwargs))
    with ArchiveIndex(L0, real_l0_archive) as index:
        rec = index.query("slot = ? AND imgsize = 8", [slot])[0]
        part = L0.partition(rec, columns[:2])
        assert part.startswith("hd3/") and part in ColumnStore(L0, index).current_chunks([part])


def test_hdr3_items_store_equals_file_scan_real(real_l0_archive):
    names = [item.msid for item in ITEMS.values()]
    fast = aca_hdr3.MSIDset(names, "2003:215", "2003:216", data_root=real_l0_archive)
    slow = aca_hdr3.MSIDset(
        names, "2003:215", "2003:216", data_root=real_l0_archive, use_store=False
    )
    assert np.array_equal(fast.times, slow.times) and len(fast.times) > 3000
    for name in names:
        a, b = fast[name].vals, slow[name].vals
        assert np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b)), name
        assert np.array_equal(np.ma.filled(a, 0), np.ma.filled(b, 0), equal_nan=True), name


def test_ccd_det_therm_agrees_with_tempccd(real_l0_archive):
    therm = aca_hdr3.MSID("ccd_det_therm", "2003:215", "2003:216", data_root=real_l0_archive)
    l0 = aca_l0.get_slot_data(
        "2003:215",
        "2003:216",
        slot=0,
        imgsize=[8],
        columns=["TIME", "TEMPCCD"],
        data_root=real_l0_archive,
    )
    tempc = dict(zip(l0["TIME"].data, l0["TEMPCCD"].data - 273.15))
    good = ~np.ma.getmaskarray(therm.vals)
    diffs = [therm.vals[i] - tempc[t] for i, t in enumerate(therm.times) if good[i]]
    assert len(diffs) > 1000 and np.max(np.abs(diffs)) < 0.5


def test_empty_and_before_any_data(real_l0_archive):
    for start, stop in [("1999:300", "1999:301")]:
        data = aca_l0.get_slot_data(start, stop, slot=0, data_root=real_l0_archive)
        assert len(data) == 0 and data.dtype.names[0] == "TIME"
        msid = aca_hdr3.MSID("ccd_temp", start, stop, data_root=real_l0_archive)
        assert len(msid.vals) == 0 and len(msid.times) == 0
    # stop == start is the instant, as in the original: an empty result of the same type
    start = stop = "2003:215:10:00"
    data = aca_l0.get_slot_data(start, stop, slot=0, data_root=real_l0_archive)
    assert len(data) == 0 and data.dtype.names[0] == "TIME"
    msid = aca_hdr3.MSID("ccd_temp", start, stop, data_root=real_l0_archive)
    assert len(msid.vals) == 0 and len(msid.times) == 0
    # stop before start stays an error
    with pytest.raises(TimeRangeError):
        aca_l0.get_slot_data(stop, "2003:215:09:00", slot=0, data_root=real_l0_archive)


@pytest.fixture
def archive(tmp_path, real_l0_dir) -> Path:
    root = tmp_path / "aca0"
    update_archive(L0, f"dir:{real_l0_dir}", "2003:214", "2003:216", data_root=root)
    return root


def test_revision_replaces_store_rows(archive, tmp_path, real_l0_dir):
    from mica.engine.ingest import ingest_files
    from tests.engine.test_engine_ingest import FILE, rewrite

    def to_rev2(hdus):
        hdus[1].header["REVISION"] = 2
        hdus[1].data["BGDAVG"] += 7

    before = aca_l0.get_slot_data("2003:215", "2003:216", slot=0, data_root=archive)
    rev2 = rewrite(real_l0_dir / FILE, tmp_path / FILE.replace("N001", "N002"), to_rev2)
    ingest_files(L0, [rev2], data_root=archive)
    after = aca_l0.get_slot_data("2003:215", "2003:216", slot=0, data_root=archive)
    assert_same(
        after,
        aca_l0.get_slot_data("2003:215", "2003:216", slot=0, data_root=archive, use_store=False),
    )
    with ArchiveIndex(L0, archive) as index:
        part = L0.partition(index.get(rev2.name))
        assert part in ColumnStore(L0, index).current_chunks([part])  # served by the store
    assert FILE not in set(after["FILENAME"]) and rev2.name in set(after["FILENAME"])
    old = before[before["FILENAME"] == FILE]
    new = after[after["FILENAME"] == rev2.name]
    assert np.array_equal(new["TIME"], old["TIME"])
    assert np.array_equal(new["BGDAVG"], old["BGDAVG"] + 7)


def test_stale_chunk_falls_back_and_is_repaired(archive):
    with ArchiveIndex(L0, archive) as index:
        part = L0.partition(index.query("slot = 3")[0])
        chunk = ColumnStore(L0, index).chunk(part)
        # As if a crash hit between an ingest's commit (which marks the partition dirty)
        # and its store update: the chunk no longer matches the partition's files.
        with index.transaction():
            index.conn.execute("UPDATE store_chunks SET files = '[]' WHERE part = ?", (part,))
            index.mark_dirty([part])
        assert part not in ColumnStore(L0, index).current_chunks([part])
    data = aca_l0.get_slot_data("2003:215", "2003:216", slot=3, data_root=archive)
    assert_same(
        data,
        aca_l0.get_slot_data("2003:215", "2003:216", slot=3, data_root=archive, use_store=False),
    )
    report = check_archive(L0, data_root=archive)
    assert report.problems == [f"store chunk {part} does not match the index"]
    repaired = check_archive(L0, data_root=archive, repair=True)
    # the repair reports what it found beside what it rebuilt (never "0 problems, rebuilt 1")
    assert repaired.problems == report.problems and len(repaired.repairs) == 1
    assert check_archive(L0, data_root=archive).ok
    assert not (archive / chunk["path"]).exists()  # the superseded chunk file is gone


def test_missing_chunk_file_falls_back(archive):
    """A chunk file deleted by hand: readers take the files, check finds it, repair mends."""
    ref = aca_l0.get_slot_data("2003:215", "2003:216", slot=0, data_root=archive, use_store=False)
    hd3 = aca_hdr3.MSID("ccd_det_therm", "2003:215", "2003:216", data_root=archive, use_store=False)
    with ArchiveIndex(L0, archive) as index:
        paths = [r[0] for r in index.conn.execute("SELECT path FROM store_chunks")]
    removed = [p for p in paths if p.startswith("store/0/") or p.startswith("store/hd3/0/")]
    assert len(removed) == 2
    for rel in removed:
        (archive / rel).unlink()
    assert_same(aca_l0.get_slot_data("2003:215", "2003:216", slot=0, data_root=archive), ref)
    fast = aca_hdr3.MSID("ccd_det_therm", "2003:215", "2003:216", data_root=archive)
    assert np.array_equal(fast.vals.filled(0), hd3.vals.filled(0))
    assert np.array_equal(fast.vals.mask, hd3.vals.mask) and fast.vals.count() > 1000
    check_archive(L0, data_root=archive, repair=True)
    assert check_archive(L0, data_root=archive).ok


def _chunk_file(archive: Path, slot: int) -> Path:
    """The one store chunk file of ``slot``'s full view."""
    with ArchiveIndex(L0, archive) as index:
        (rel,) = [
            r[0]
            for r in index.conn.execute("SELECT path FROM store_chunks")
            if r[0].startswith(f"store/{slot}/")
        ]
    return archive / rel


def test_corrupt_chunk_is_named_and_repairable(archive, monkeypatch):
    """A damaged image chunk: the read fails naming the chunk file (MICA_STORE_DAMAGED=raise;
    by default it reads the files, tests/test_store_verify.py); check --verify-store finds it
    and its repair rebuilds it."""
    monkeypatch.setenv("MICA_STORE_DAMAGED", "raise")
    ref = aca_l0.get_slot_data("2003:215", "2003:216", slot=1, data_root=archive, use_store=False)
    chunk = _chunk_file(archive, 1)
    with h5py.File(chunk, "r") as h5:
        offset = h5["IMGRAW"].id.get_chunk_info(0).byte_offset
    with open(chunk, "r+b") as f:  # overwrite the first chunk's Blosc header
        f.seek(offset)
        f.write(bytes(16))
    with pytest.raises(OSError, match=f"{chunk.name}: /IMGRAW chunk at row 0") as err:
        aca_l0.get_slot_data("2003:215", "2003:216", slot=1, data_root=archive)
    # a mica error naming the chunk and the command that repairs it
    assert isinstance(err.value, DamagedStoreError) and err.value.chunk == chunk
    repair = f"'mica --archive {archive.parent} check --verify-store --repair'"
    assert str(err.value).startswith(f"damaged store chunk: {chunk}: /IMGRAW chunk at row 0")
    assert repair in str(err.value)
    assert len(aca_l0.get_slot_data("2003:215", "2003:216", 1, data_root=archive, use_store=False))
    assert check_archive(L0, data_root=archive).ok  # file lists still match
    report = check_archive(L0, data_root=archive, verify_store=True)
    (problem,) = report.problems
    assert problem.startswith("store chunk 1/") and "/IMGRAW chunk at row 0" in problem
    runner = CliRunner()
    fetch = ["fetch", "aca-l0", "--start", "2003:215", "--stop", "2003:216", "--slot", "1"]
    out = runner.invoke(main, ["--archive", str(archive.parent), *fetch, "--columns", "IMGRAW"])
    assert out.exit_code == 1 and repair in out.output and "Traceback" not in out.output
    out = runner.invoke(main, repair.strip("'").split()[1:])  # the command as the error says
    assert "after repair" in out.output, out.output
    assert check_archive(L0, data_root=archive, verify_store=True).ok
    check_archive(L0, data_root=archive, repair=True, verify_store=True)
    assert check_archive(L0, data_root=archive, verify_store=True).ok
    assert_same(aca_l0.get_slot_data("2003:215", "2003:216", slot=1, data_root=archive), ref)


def test_reader_during_ingest(tmp_path, real_l0_dir):
    """A reader never sees part of a file's rows while an ingest appends, nor an error."""
    root = tmp_path / "aca0"
    rows_per_file = {
        p.name: fits.getheader(p, 1)["NAXIS2"] for p in real_l0_dir.glob("*_0_img0.fits.gz")
    }
    done = threading.Event()
    created = threading.Event()  # the first ingest has returned: the archive exists
    seen: list[Counter] = []
    errors: list[BaseException] = []

    def reader():
        while not done.is_set():
            try:
                data = aca_l0.get_slot_data(
                    "2003:215", "2003:216", slot=0, data_root=root, columns=["TIME", "FILENAME"]
                )
                seen.append(Counter(data["FILENAME"].tolist()))
            except MissingArchiveError as err:
                # Only before the first ingest has made the index; never once it exists.
                if created.is_set() or seen:
                    errors.append(err)
            except BaseException as err:  # noqa: BLE001  (any error fails the test)
                errors.append(err)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for hour in range(2, 6):  # several ingests, one after another
            update_archive(
                L0,
                f"dir:{real_l0_dir}",
                f"2003:215:0{hour}:00",
                f"2003:215:0{hour + 1}:00",
                data_root=root,
            )
            created.set()
    finally:
        done.set()
        thread.join()
    assert not errors, errors
    assert len(seen) > 1
    for counts in seen:
        for name, n in counts.items():
            assert n == rows_per_file[name], (name, n)


def test_rebuild_store_command(archive):
    from click.testing import CliRunner

    from mica.cli import main

    shutil.rmtree(archive / "store")
    with ArchiveIndex(L0, archive) as index, index.transaction():
        index.conn.execute("DELETE FROM store_chunks")
    with ArchiveIndex(L0, archive) as index:
        nparts = len({p for r in index.query() for p in L0.partitions(r)})
    # 8 slots x one 10-day period, the header-3 view of the 4 slots with 8x8 files, and
    # their sample tables in one chunk
    assert len(check_archive(L0, data_root=archive).problems) == nparts == 13
    result = CliRunner().invoke(main, ["rebuild", "store", "--data-root", str(archive)])
    assert result.exit_code == 0, result.output
    assert f"rebuilt {nparts} store chunks" in result.output
    assert check_archive(L0, data_root=archive).ok


def test_chunk_with_damaged_hdf5_structure_falls_back(archive, monkeypatch):
    """A chunk whose HDF5 chunk index no longer parses (h5py raises RuntimeError, not an
    OSError): readers take the files, with MICA_STORE_DAMAGED=raise a DamagedStoreError
    names the chunk, and check --verify-store reports it (no traceback) and mends it."""
    ref = aca_l0.get_slot_data("2003:215", "2003:216", slot=2, data_root=archive, use_store=False)
    chunk = _chunk_file(archive, 2)
    image = bytearray(chunk.read_bytes())
    last_tree = image.rfind(b"TREE")  # a dataset's chunk B-tree (the first is the root group's)
    assert last_tree > image.find(b"TREE") > 0
    image[last_tree : last_tree + 4] = b"TRFE"
    chunk.write_bytes(bytes(image))
    monkeypatch.setenv("MICA_STORE_DAMAGED", "raise")
    with pytest.raises(DamagedStoreError, match="B-tree") as err:
        aca_l0.get_slot_data("2003:215", "2003:216", slot=2, data_root=archive)
    assert err.value.chunk == chunk
    monkeypatch.delenv("MICA_STORE_DAMAGED")
    assert_same(aca_l0.get_slot_data("2003:215", "2003:216", slot=2, data_root=archive), ref)
    report = check_archive(L0, data_root=archive, verify_store=True)
    (problem,) = report.problems
    assert problem.startswith("store chunk 2/") and "B-tree" in problem
    check_archive(L0, data_root=archive, repair=True, verify_store=True)
    assert check_archive(L0, data_root=archive, verify_store=True).ok
    assert_same(aca_l0.get_slot_data("2003:215", "2003:216", slot=2, data_root=archive), ref)


def test_damaged_archived_file_is_refused_by_name(archive):
    """A flipped bit in an archived file's gzip data: no reader returns its values, by the
    store or the files; the error names the file, and check --repair moves it aside."""
    from mica.errors import DamagedFileError

    ref = aca_l0.get_slot_data("2003:215", "2003:216", slot=1, data_root=archive, use_store=False)
    with ArchiveIndex(L0, archive) as index:
        row = index.query("slot = 1")[0]
    path = L0.path(row, archive)
    image = bytearray(path.read_bytes())
    image[len(image) // 2] ^= 0x01  # inside the deflate stream
    path.write_bytes(bytes(image))
    with pytest.raises(DamagedFileError, match=f"archived file {path} is damaged") as err:
        aca_l0.get_slot_data("2003:215", "2003:216", slot=1, data_root=archive, use_store=False)
    assert err.value.path == path and "check --repair" in str(err.value)
    assert len(aca_l0.get_slot_data("2003:215", "2003:216", slot=1, data_root=archive))
    with ArchiveIndex(L0, archive) as index:  # the chunk out of date (an ingest interrupted)
        part = L0.partition(row)
        with index.transaction():
            index.conn.execute("UPDATE store_chunks SET files = '[]' WHERE part = ?", (part,))
            index.mark_dirty([part])
    with pytest.raises(DamagedFileError):
        aca_l0.get_slot_data("2003:215", "2003:216", slot=1, data_root=archive)
    report = check_archive(L0, data_root=archive, repair=True)
    assert any(row["filename"] in p and "CRC" in p for p in report.problems)
    # the chunk's build refused the file (counted as such), which is then moved aside
    assert report.repairs[0].startswith("rebuilt 0 store chunks; 1 left dirty"), report.repairs
    assert report.repairs[-1] == "rebuilt 1 store chunks", report.repairs
    assert not path.exists()  # moved aside, dropped from the index ...
    assert check_archive(L0, data_root=archive, verify_store=True).ok
    left = aca_l0.get_slot_data("2003:215", "2003:216", slot=1, data_root=archive)
    assert_same(left, ref[ref["FILENAME"] != row["filename"]])  # ... until fetched again
