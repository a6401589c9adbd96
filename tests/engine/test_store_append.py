"""Appending to a store chunk: an update that adds files after a partition's own extends its
chunk (the old stored blocks copied as they are, only the new rows encoded), and the result is
the chunk a build from all the files writes: the same arrays and stored blocks, reads checked
against its own digests, the same answers as the files (`use_store=False`)."""

from __future__ import annotations

import io
import json
import logging
import shutil
import zlib
from pathlib import Path

import google_crc32c
import h5py
import numpy as np
import pytest

from mica.archive import aca_hdr3, aca_l0
from mica.engine import colstore, h5chunks, store_tables
from mica.engine.colstore import ColumnStore
from mica.engine.h5chunks import FILE_HASH, DatasetDigests, block_seed, record_digests
from mica.engine.index import ArchiveIndex
from mica.engine.index_check import check_archive
from mica.engine.store_tables import current_table
from mica.engine.time_update import update_archive
from mica.errors import DamagedStoreError
from mica.products import hdr3_samples, hdr3_stats
from mica.products.aca_l0 import HD3_VIEW_COLUMNS, HD3_VIEW_PERIOD, L0
from mica.products.hdr3_mission import DAILY_TABLE
from tests.engine.test_store_verify import _flip, _same

# Ten minutes after a 10-day (and 100-day) period boundary: the first update's files fill
# each slot's chunk <slot>/520 and the header-3 views' hd3/<slot>/52 and hd3s/52 (and, as they
# reach back, their /519 and /51), the second one adds to them.
BOUNDARY = 449280000.0
START, SPLIT, STOP = BOUNDARY + 600, BOUNDARY + 900, BOUNDARY + 1010
ITEMS = ["ac_status_word", "ad_5v_ps", "ccd_det_therm", "ad_15v_ps"]


def _small_blocks(mp: pytest.MonkeyPatch) -> None:
    """Chunks of several HDF5 blocks each (the store's read the same way: the shapes are in
    the files), so that an extension copies some and encodes the last again."""
    mp.setattr(colstore, "_CHUNK_BYTES", 1 << 10)
    mp.setattr(colstore, "_MIN_CHUNK_ROWS", 64)  # every group: 64 rows a block
    mp.setattr(colstore, "_ALONE_CHUNK_ROWS", 64)  # header-3 views and tables


class _Extended(logging.Handler):
    """The partitions whose chunks an update extended (`ColumnStore._image` logs each)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.parts: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if "extended" in record.getMessage():
            self.parts.add(record.args[0])


def _update(root: Path, start: float, stop: float) -> set[str]:
    """An update of ``root`` over [start, stop] writing chunks of small blocks; the
    partitions whose chunks it extended."""
    log, handler = logging.getLogger(colstore.__name__), _Extended()
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        with pytest.MonkeyPatch.context() as mp:
            _small_blocks(mp)
            update_archive(L0, "sim", start, stop, data_root=root)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    return handler.parts


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[str, Path]:
    """``whole``: one update over the range; ``first``: its first part; ``appended``: a copy
    of ``first`` the next update added the rest to (``extended``: the partitions whose
    chunks it extended)."""
    folder = tmp_path_factory.mktemp("append")
    _update(folder / "whole", START, STOP)
    _update(folder / "first", START, SPLIT)
    shutil.copytree(folder / "first", folder / "appended")
    extended = _update(folder / "appended", SPLIT, STOP)
    return {"extended": extended, **{k: folder / k for k in ("whole", "first", "appended")}}


def _chunks(root: Path) -> dict[str, dict]:
    with ArchiveIndex(L0, root, readonly=True) as index:
        rows = index.conn.execute("SELECT * FROM store_chunks").fetchall()
    return {r["part"]: dict(r) for r in rows}


def _blocks(path: Path | io.BytesIO) -> dict[str, tuple]:
    """Every dataset of a chunk file (or its bytes): its values, HDF5 chunk shape and stored
    blocks."""
    out = {}
    with h5py.File(path, "r") as h5:
        for name, dset in h5.items():
            stored = ()
            if dset.chunks is not None:
                dsid = dset.id
                infos = [dsid.get_chunk_info(k) for k in range(dsid.get_num_chunks())]
                stored = tuple(dsid.read_direct_chunk(i.chunk_offset)[1] for i in infos)
            out[name] = (dset[()], dset.chunks, stored)
    return out


def _reads(root: Path, **kw) -> list[object]:
    return [
        *(aca_l0.get_slot_data(START, STOP, slot, data_root=root, **kw) for slot in range(8)),
        aca_hdr3.MSIDset(ITEMS, START, STOP, data_root=root, **kw),
        aca_hdr3.MSIDset(ITEMS, SPLIT - 100, SPLIT + 100, data_root=root, **kw),
    ]


def test_append_writes_what_a_full_build_writes(archives):
    root, extended = archives["appended"], archives["extended"]
    before, after, whole = _chunks(archives["first"]), _chunks(root), _chunks(archives["whole"])
    grown = {p for p in before if after[p]["files"] != before[p]["files"]}
    # every chunk the second update added files to was extended, in each view
    assert grown and extended == grown
    assert {p.split("/")[0] for p in grown} >= {"hd3", "hd3s", "6"}
    assert set(after) == set(whole)
    for part, chunk in after.items():
        ref = whole[part]
        assert (chunk["files"], chunk["nrows"]) == (ref["files"], ref["nrows"]), part
        assert (chunk["tstart"], chunk["tstop"]) == (ref["tstart"], ref["tstop"]), part
        mine, theirs = _blocks(root / chunk["path"]), _blocks(archives["whole"] / ref["path"])
        assert mine.keys() == theirs.keys(), part
        for name, (values, chunks, stored) in mine.items():
            assert np.array_equal(values, theirs[name][0], equal_nan=True), (part, name)
            assert (chunks, stored) == theirs[name][1:], (part, name)
    # an extended chunk held several blocks before, so some were copied
    big = max(grown, key=lambda p: before[p]["nrows"])
    with h5py.File(archives["first"] / before[big]["path"], "r") as h5:
        assert max(h5[name].id.get_num_chunks() for name in h5 if h5[name].chunks) > 2


def test_extended_chunks_read_as_the_files(archives):
    root = archives["appended"]
    with ArchiveIndex(L0, root, readonly=True) as index:
        store = ColumnStore(L0, index)
        assert store.stale_parts() == [] and store.damaged_chunks() == {}
    assert check_archive(L0, root, verify_store=True).problems == []
    for fast, slow, whole in zip(
        _reads(root), _reads(root, use_store=False), _reads(archives["whole"])
    ):
        assert _same(fast, slow) and _same(fast, whole)


def test_damaged_old_chunk_is_rebuilt_from_the_files(archives, tmp_path, caplog):
    """A block of the chunk an update would extend does not match its digest: that partition
    is built from the files instead (said in the log), and its chunk is the full build's."""
    root = tmp_path / "aca0"
    shutil.copytree(archives["first"], root)
    part = "6/520"
    path = root / _chunks(root)[part]["path"]
    with h5py.File(path, "r") as h5:
        first = h5["IMGRAW"].id.get_chunk_info(0)
    _flip(path, first.byte_offset + first.size // 2)
    with caplog.at_level(logging.WARNING, colstore.__name__):
        extended = _update(root, SPLIT, STOP)
    assert part not in extended and "7/520" in extended
    assert any("rebuilt from the archived files" in r.getMessage() for r in caplog.records)
    chunk, ref = _chunks(root)[part], _chunks(archives["whole"])[part]
    mine, theirs = _blocks(root / chunk["path"]), _blocks(archives["whole"] / ref["path"])
    assert all(mine[k][2] == theirs[k][2] for k in mine)
    assert _same(
        aca_l0.get_slot_data(START, STOP, 6, data_root=root),
        aca_l0.get_slot_data(START, STOP, 6, data_root=root, use_store=False),
    )


def test_files_before_the_chunk_rebuild_it(archives, tmp_path):
    """Files added before a chunk's own (an update of an earlier range after a later one):
    the chunk is built from all the files, in file order, as a full build writes it."""
    root = tmp_path / "aca0"
    _update(root, SPLIT, STOP)
    extended = _update(root, START, SPLIT)
    after, whole = _chunks(root), _chunks(archives["whole"])
    assert "6/520" not in extended
    assert {p: c["files"] for p, c in after.items()} == {p: c["files"] for p, c in whole.items()}
    for part, chunk in after.items():
        mine = _blocks(root / chunk["path"])
        theirs = _blocks(archives["whole"] / whole[part]["path"])
        assert all(mine[k][2] == theirs[k][2] for k in mine), part
    for fast, slow in zip(_reads(root), _reads(root, use_store=False)):
        assert _same(fast, slow)


def _zlib_file_digests(root: Path) -> None:
    """Each chunk's record as written before `FILE_HASH`: ``file`` of two items, the zlib
    crc32 of the file's bytes seeded as `file_digest` seeds it."""
    with ArchiveIndex(L0, root) as index:
        rows = [dict(r) for r in index.conn.execute("SELECT * FROM store_chunks")]
        with index.transaction():
            for row in rows:
                record = json.loads(row["digests"])
                data = (root / row["path"]).read_bytes()
                identity = f"{row['part']}@{record['identity']['generation']}"
                seed = block_seed(identity, "", 0, "crc32")
                record["file"] = [len(data), zlib.crc32(data, seed)]
                index.conn.execute(
                    "UPDATE store_chunks SET digests = ? WHERE part = ?",
                    (json.dumps(record), row["part"]),
                )


def _recorded_the_old_way(archives, tmp_path: Path, rewrite) -> Path:
    """A copy of the first update's archive whose records ``rewrite`` makes as an earlier
    version wrote them; ``mica check --verify-store`` passes it."""
    root = tmp_path / "aca0"
    shutil.copytree(archives["first"], root)
    rewrite(root)
    assert check_archive(L0, root, verify_store=True).problems == []
    return root


def test_zlib_file_digests_are_verified_and_appended_to(archives, tmp_path):
    """Chunks recorded with the zlib crc32 of their file (before CRC-32C) are verified by it:
    ``mica check --verify-store`` passes them and names one with a byte flipped; an update
    appends to them in place (their bytes checked by it) and records CRC-32C."""
    root = _recorded_the_old_way(archives, tmp_path, _zlib_file_digests)
    chunk = _chunks(root)["hd3s/52"]
    with ArchiveIndex(L0, root) as index:
        digests = ColumnStore(L0, index).digests(chunk)
    assert digests is not None and len(digests.file) == 2
    damaged = tmp_path / "damaged.h5"
    shutil.copy(root / chunk["path"], damaged)
    _flip(damaged, 0)  # the superblock's signature: no block, only the file's digest
    with open(damaged, "rb") as fh, pytest.raises(DamagedStoreError, match="hd3s/52"):
        digests.check_bytes(fh.fileno())
    extended = _update(root, SPLIT, STOP)
    assert extended == archives["extended"]
    files = {part: json.loads(c["digests"])["file"] for part, c in _chunks(root).items()}
    assert {part for part, file in files.items() if file[2:] == [FILE_HASH]} == extended
    assert check_archive(L0, root, verify_store=True).problems == []


def test_store_built_now_digests_blocks_in_crc32c(archives):
    """Every store chunk and table written now records ``blocks_hash`` CRC-32C, and a block's
    digest is the CRC-32C of its seed text (partition, dataset, block) and its stored bytes."""
    root = archives["appended"]
    with ArchiveIndex(L0, root, readonly=True) as index:
        records = [
            json.loads(row["digests"])
            for table in ("store_chunks", "store_tables")
            for row in index.conn.execute(f"SELECT digests FROM {table}")
        ]
    assert any("table" in r["identity"] for r in records)
    assert {r["blocks_hash"] for r in records} == {"crc32c"}
    chunk = _chunks(root)["0/520"]
    recorded = DatasetDigests.from_json(json.loads(chunk["digests"])["datasets"]["IMGRAW"])
    with h5py.File(root / chunk["path"], "r") as h5:
        dsid = h5["IMGRAW"].id
        assert dsid.get_num_chunks() == len(recorded.crcs) > 1
        for k in range(dsid.get_num_chunks()):
            origin = dsid.get_chunk_info(k).chunk_offset
            block = origin[0] // recorded.chunks[0]
            text = f"0/520/IMGRAW/{block}".encode() + dsid.read_direct_chunk(origin)[1]
            assert recorded.crcs[block] == google_crc32c.value(text)


def _zlib_block_digests(root: Path) -> None:
    """Each store chunk's and table's record as written before ``blocks_hash``: its blocks'
    digests zlib's crc32 (seeded as `block_seed` seeds them), no ``blocks_hash``."""
    with ArchiveIndex(L0, root) as index, pytest.MonkeyPatch.context() as mp:
        mp.setattr(h5chunks, "BLOCK_HASH", "crc32")
        for table, key in (("store_chunks", "part"), ("store_tables", "name")):
            rows = [dict(r) for r in index.conn.execute(f"SELECT * FROM {table}")]
            with index.transaction():
                for row in rows:
                    record = json.loads(row["digests"])
                    assert record.pop("blocks_hash") == "crc32c"
                    identity = record["identity"]
                    name = identity["table"] if table == "store_tables" else row["part"]
                    seed = record.get("blocks_seed", f"{name}@{identity['generation']}")
                    path = root / row["path"]
                    with h5py.File(path, "r") as h5:
                        datasets = record_digests(h5, path.read_bytes(), seed)
                    record["datasets"] = {n: d.to_json() for n, d in datasets.items()}
                    index.conn.execute(
                        f"UPDATE {table} SET digests = ? WHERE {key} = ?",
                        (json.dumps(record), row[key]),
                    )


def test_zlib_block_digests_are_verified_and_appended_to(archives, tmp_path, monkeypatch):
    """Chunks and tables whose records digest their blocks with zlib's crc32 (written before
    ``blocks_hash``) are checked by it: the store serves the files' answer, ``mica check
    --verify-store`` passes them, a byte flipped in a block is refused on read naming the
    file and named by the check; an update appends to them in place and digests every block
    of the new generations in CRC-32C."""
    root = _recorded_the_old_way(archives, tmp_path, _zlib_block_digests)
    chunk = _chunks(root)["0/520"]
    with ArchiveIndex(L0, root) as index:
        assert ColumnStore(L0, index).digests(chunk).block_hash == "crc32"  # type: ignore
    monkeypatch.setenv("MICA_STORE_DAMAGED", "raise")  # (a read the store refuses raises)
    for read in (
        lambda **kw: aca_l0.get_slot_data(START, SPLIT, 0, data_root=root, **kw),
        lambda **kw: aca_hdr3.MSIDset(ITEMS, START, SPLIT, data_root=root, **kw),
    ):
        assert _same(read(), read(use_store=False))

    path = root / chunk["path"]
    with h5py.File(path, "r") as h5:
        info = h5["IMGRAW"].id.get_chunk_info(0)
    _flip(path, info.byte_offset + info.size // 2)
    with pytest.raises(DamagedStoreError, match="does not match its digest") as err:
        aca_l0.get_slot_data(START, SPLIT, 0, data_root=root)
    assert err.value.chunk == path and str(path) in str(err.value)
    (problem,) = check_archive(L0, root, verify_store=True).problems
    assert problem.startswith("store chunk 0/520 is damaged") and str(path) in problem
    _flip(path, info.byte_offset + info.size // 2)  # (back as it was)

    assert _update(root, SPLIT, STOP) == archives["extended"]
    chunks = _chunks(root)
    for part in archives["extended"]:
        record = json.loads(chunks[part]["digests"])
        assert record["blocks_hash"] == "crc32c" and record.get("free"), part  # in place
    assert check_archive(L0, root, verify_store=True).problems == []


def test_repair_of_many_chunks_derives_the_store_tables_once(archives, tmp_path, monkeypatch):
    """A rebuild of many partitions whose chunks are gone (``mica check --repair``) derives
    each store table once, when its view's last chunk is written, not after each of the
    view's chunks from all of them; the chunks and the table are then current."""
    root = tmp_path / "aca0"
    shutil.copytree(archives["whole"], root)
    for chunk in _chunks(root).values():
        (root / chunk["path"]).unlink()
    derived = []
    rebuild = store_tables._rebuild
    monkeypatch.setattr(
        store_tables, "_rebuild", lambda *a: derived.append(a[1].name) or rebuild(*a)
    )
    with ArchiveIndex(L0, root) as index:
        store = ColumnStore(L0, index)
        stale = store.stale_parts()
        assert len([p for p in stale if p.startswith("hd3s/")]) == 2
        store.rebuild(stale)
        assert not store.stale_parts() and not index.dirty_parts()
        assert current_table(
            index.conn, root, L0.store_description, DAILY_TABLE, colstore.STORE_VERSION
        )
    assert derived == ["hd3d"]


# --- header-3 sample tables and statistics extended from where the new rows change them ----
DAY = 86400.0
MIDNIGHT = BOUNDARY + DAY  # a day's start, 52nd 100-day period of the hd3s view


def _hd3s_files(
    rng: np.random.Generator, t0: float, split: float, t1: float, gap: float = 0.0
) -> tuple[list[dict], list[dict[str, np.ndarray]]]:
    """8x8 files of every slot over [t0, t1), in index order (file start, name): the rows on
    one 4.1 s grid (so slots continue into the next at the same times), each slot with its own
    dropouts (gap tests fail), repeated times (the last one counts), a jitter of a few ms on
    some rows, files of 20-120 rows, a file of slot ``k`` starting at ``split`` + 7 ``k`` s
    (``gap``: no row in [split - gap, split + 8 ``gap``), so the new files' rows change
    nothing before them); header-3 bytes at random."""
    grid = np.arange(t0, t1, 4.1)
    grid = grid[(grid < split - gap) | (grid >= split + 8 * gap)]
    rows, arrays = [], []
    for slot in range(8):
        times = grid[rng.random(len(grid)) > 0.03]
        times = np.sort(np.concatenate([times, rng.choice(times, len(times) // 50)]))
        jitter = rng.random(len(times)) < 0.02
        times[jitter] += rng.uniform(-0.005, 0.005, jitter.sum())
        times.sort()
        at, cut = 0, int(np.searchsorted(times, split + 7 * slot))
        while at < len(times):
            n = int(rng.integers(20, 120))
            n = cut - at if at < cut < at + n else n
            part = times[at : at + n]
            name = f"acaf{part[0]:.3f}N001_{slot}_img0.fits.gz"
            rows.append({"filename": name, "checksum": "x", "slot": slot, "tstart": part[0]})
            bytes_ = {c: rng.integers(0, 256, len(part), dtype=np.uint8) for c in HD3_VIEW_COLUMNS}
            arrays.append({**bytes_, "TIME": part})
            at += n
    order = sorted(range(len(rows)), key=lambda k: (rows[k]["tstart"], rows[k]["filename"]))
    return [rows[k] for k in order], [arrays[k] for k in order]


@pytest.mark.parametrize(
    ("t0", "split", "t1", "gap"),
    [
        # the new files start 60 s after midnight: a 5-minute bin from before it is computed
        # again with the day's first
        (MIDNIGHT - 3000, MIDNIGHT + 60, MIDNIGHT + 2000, 0.0),
        # rows from before the period (its reach) and a join a few minutes into it
        (BOUNDARY - 500, BOUNDARY + 400, BOUNDARY + 1500, 0.0),
        # a day's files after a gap: the day before keeps its daily bin, not computed again
        (MIDNIGHT - 3000, MIDNIGHT + 20, MIDNIGHT + 2000, 20.0),
    ],
)
def test_hd3s_extension_is_the_full_build(tmp_path, monkeypatch, t0, split, t1, gap):
    """A header-3 sample chunk extended with files after its own, whose rows overlap the old
    files' last rows in other slots, holds what a build from all the files holds: the same
    tables (words, gap and next-slot flags, BLOCK0) and statistics (5-minute and daily), in
    the same stored blocks, with the same digests. With the new rows after a gap that leaves
    the old ones as they were, the statistics of the bins before them are not computed
    again."""
    _small_blocks(monkeypatch)
    monkeypatch.setattr(hdr3_samples, "SAMPLE_BLOCK", 64)  # BLOCK0 entries on both sides
    rows, arrays = _hd3s_files(np.random.default_rng(int(split)), t0, split, t1, gap)
    kept = sum(r["tstart"] < split for r in rows)
    store = ColumnStore(L0, colstore._Folder(tmp_path))  # type: ignore[arg-type]
    part = f"hd3s/{int(BOUNDARY // HD3_VIEW_PERIOD)}"  # holding every file (its reach)
    image, built = store._image(part, 1, rows[:kept], arrays[:kept])
    (tmp_path / "old.h5").write_bytes(image)
    old = {
        "part": part,
        "path": "old.h5",
        "files": colstore._file_list(rows[:kept], store._tag(part)),
        **built._asdict(),
    }
    binned: list[np.ndarray] = []  # the sample times of the bins the extension computes
    bin_stats = hdr3_stats.bin_stats
    monkeypatch.setattr(hdr3_stats, "bin_stats", lambda t, *a: binned.append(t) or bin_stats(t, *a))
    extended, ext = store._image(part, 2, rows, arrays[kept:], old)
    if gap:
        assert min(t.min() for t in binned if len(t)) >= split + 8 * gap
    whole, full = store._image(part, 2, rows, arrays)
    assert (ext.nrows, ext.tstart, ext.tstop) == (full.nrows, full.tstart, full.tstop)
    # each dataset's record but where its blocks lie in the file (the write order differs)
    records = [
        {name: item[:4] for name, item in json.loads(b.digests)["datasets"].items()}
        for b in (ext, full)
    ]
    assert records[0] == records[1]
    mine, theirs = _blocks(io.BytesIO(extended)), _blocks(io.BytesIO(whole))
    assert mine.keys() == theirs.keys()
    assert {n for n in mine if n.startswith("ST.")} > {"ST.5min.BINS", "ST.daily.BINS"}
    for name, (values, chunks, stored) in mine.items():
        assert np.array_equal(values, theirs[name][0], equal_nan=True), name
        assert (chunks, stored) == theirs[name][1:], name


def test_append_in_place_keeps_the_old_blocks_where_they_were(archives):
    """An extended chunk is its old file appended to: every block of the old chunk before
    each dataset's last one is at the same offset with the same bytes, and the record carried
    over is the one its file gives when digested whole (blocks seeded with the partition)."""
    before, after = _chunks(archives["first"]), _chunks(archives["appended"])
    kept = 0
    for part in archives["extended"]:
        record = json.loads(after[part]["digests"])
        assert record["blocks_seed"] == part
        old = json.loads(before[part]["digests"])["datasets"]
        with h5py.File(archives["appended"] / after[part]["path"], "r") as h5:
            h5.flush()
            image = (archives["appended"] / after[part]["path"]).read_bytes()
            whole = {n: d.to_json() for n, d in record_digests(h5, image, part).items()}
        assert record["datasets"] == whole, part
        for name, item in old.items():
            if len(item) < 5 or name not in record["datasets"]:
                continue
            mine, theirs = (DatasetDigests.from_json(x) for x in (record["datasets"][name], item))
            full = len(theirs.blocks) - 1  # (the last one was written again)
            assert mine.blocks[:full] == theirs.blocks[:full], (part, name)
            assert mine.crcs[:full] == theirs.crcs[:full], (part, name)
            kept += full
    assert kept > 0


def test_append_in_place_never_changes_the_old_file(archives, tmp_path):
    """The old generation's file (kept here by a second link, as a reader holding it open
    keeps it) has the same bytes after the update appended to its copy; with `COMPACT_FREE`
    below 0 (freed space never allowed) the next generation is written afresh, recording
    none."""
    root = tmp_path / "aca0"
    shutil.copytree(archives["first"], root)
    before = _chunks(root)
    held = {}
    for part, chunk in before.items():
        link = tmp_path / f"held-{len(held)}"
        link.hardlink_to(root / chunk["path"])
        held[part] = (link, link.read_bytes())
    extended = _update(root, SPLIT, STOP)
    assert extended
    for part, (link, data) in held.items():
        assert link.read_bytes() == data, part
    appended = [json.loads(_chunks(root)[p]["digests"]) for p in extended]
    assert any(record.get("free") for record in appended)  # the rewritten last blocks
    again = tmp_path / "again"
    shutil.copytree(archives["first"], again)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(colstore, "COMPACT_FREE", -1.0)
        extended = _update(again, SPLIT, STOP)
    after = _chunks(again)
    assert extended and not any(json.loads(after[p]["digests"]).get("free") for p in extended)
