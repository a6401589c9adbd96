"""Every stored byte of the L0 column store is verified: a damaged, swapped or outdated chunk
never gives other data than the files (`use_store=False`), `check --verify-store` names it and
`--repair` mends it."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from mica.archive import aca_hdr3, aca_l0
from mica.cli import main
from mica.engine import colstore
from mica.engine.colstore import ColumnStore
from mica.engine.index import ArchiveIndex
from mica.engine.index_check import check_archive
from mica.engine.time_update import update_archive
from mica.errors import ConfigError, DamagedStoreError
from mica.products.aca_l0 import L0
from mica.products.hdr3_items import get_item
from mica.sync.install import SYNCED_PARTS_SQL
from tests.archive.test_aca_hdr3 import served_by_tables

# A 10-day (and 100-day) period boundary inside two simulated hours: each slot's files fall
# in two full-view partitions (<slot>/519, <slot>/520), the header-3 view's in hd3/<slot>/51
# and /52, the sample tables in hd3s/51 and hd3s/52.
BOUNDARY = 449280000.0
START, STOP = BOUNDARY - 3600, BOUNDARY + 3600
SPLIT = BOUNDARY + 900  # two updates: slot 0's chunk 0/520 is written by both
SLOT0_ITEMS = ["ac_status_word", "ad_5v_ps", "ccd_det_therm"]  # grid slot 0


def _msidset(items: list[str], a: float, b: float) -> Callable[..., aca_hdr3.MSIDset]:
    return lambda root, **kw: aca_hdr3.MSIDset(items, a, b, data_root=root, **kw)


#: The reads compared with the file scan: each full-view column group, the header-3 view
#: (rows merged with the full view's, and the MSID rows path), the sample tables of both
#: periods and of two slots, and the statistics of a period (computed from the file scan's
#: samples with ``use_store=False``).
READS: dict[str, Callable[..., object]] = {
    "slot 0 all columns": lambda root, **kw: aca_l0.get_slot_data(
        START, STOP, 0, data_root=root, **kw
    ),
    "slot 0 header-3 view": lambda root, **kw: aca_l0.get_slot_data(
        START, STOP, 0, data_root=root, columns=["TIME", "HD3TLM73", "FILENAME"], **kw
    ),
    "MSIDs across the boundary": _msidset([*SLOT0_ITEMS, "ad_15v_ps"], START, STOP),
    "MSIDs slot 0 table /51": _msidset(SLOT0_ITEMS, BOUNDARY - 3000, BOUNDARY - 1500),
    "MSID slot 1 table /51": _msidset(["ad_15v_ps"], BOUNDARY - 3000, BOUNDARY - 1500),
    "MSIDs slot 0 table /52": _msidset(SLOT0_ITEMS, BOUNDARY + 1500, BOUNDARY + 3000),
    "5-minute statistics /51": lambda root, **kw: aca_hdr3.MSIDset(
        SLOT0_ITEMS, BOUNDARY - 3000, BOUNDARY - 1500, data_root=root, stat="5min", **kw
    ),
}


def _same(a: object, b: object) -> bool:
    if isinstance(a, aca_hdr3.MSIDset):
        return (
            np.array_equal(a.times, b.times)
            and set(a) == set(b)
            and all(_same(a[k].vals, b[k].vals) for k in a)
        )
    if a.dtype.names is None:
        fields = [
            (np.ma.getmaskarray(a), np.ma.getmaskarray(b), np.ma.filled(a, 0), np.ma.filled(b, 0))
        ]
    else:
        fields = [
            (np.ma.getmaskarray(a[n]), np.ma.getmaskarray(b[n]), a[n].filled(0), b[n].filled(0))
            for n in a.dtype.names
        ]
    return a.dtype == b.dtype and all(
        np.array_equal(ma, mb) and np.array_equal(va, vb, equal_nan=va.dtype.kind in "fc")
        for ma, mb, va, vb in fields
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, Path, dict[str, object]]:
    """The archive, the store as the first update left it (chunks of an older generation),
    and every read's answer from the files.

    Its chunks are written in smaller HDF5 chunks than the store's (read back the same way:
    the shapes are in the files), so that every dataset has one block or several, and the
    shorter reads check some of them."""
    folder = tmp_path_factory.mktemp("verify")
    root = folder / "aca0"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(colstore, "_CHUNK_BYTES", 1 << 14)  # images: 1024 rows a block
        mp.setattr(colstore, "_ALONE_CHUNK_ROWS", 512)  # header-3 view and tables
        update_archive(L0, "sim", START, SPLIT, data_root=root)
        shutil.copytree(root / "store", folder / "older")
        update_archive(L0, "sim", SPLIT, STOP, data_root=root)
    refs = {name: read(root, use_store=False) for name, read in READS.items()}
    return root, folder / "older", refs


@pytest.fixture
def archive(tmp_path, base) -> Path:
    root = tmp_path / "aca0"
    shutil.copytree(base[0], root)
    return root


def _chunk(root: Path, part: str) -> Path:
    with ArchiveIndex(L0, root, readonly=True) as index:
        return root / ColumnStore(L0, index).chunk(part)["path"]


def _flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ 0x5A]))


def _flip_block(dataset: str) -> Callable[[Path], str]:
    """A byte flipped in the middle of the last stored block of a dataset of 0/519 (its
    first rows are before the range read)."""

    def corrupt(root: Path) -> str:
        path = _chunk(root, "0/519")
        with h5py.File(path, "r") as h5:
            dsid = h5[dataset].id
            info = dsid.get_chunk_info(dsid.get_num_chunks() - 1)
        _flip(path, info.byte_offset + info.size // 2)
        return "0/519"

    return corrupt


def _trange(zeroed: bool) -> Callable[[Path], str]:
    """The time-range blocks of 0/519 (the time index of its row blocks, one contiguous
    dataset) zeroed, or a byte of them flipped."""

    def corrupt(root: Path) -> str:
        path = _chunk(root, "0/519")
        with h5py.File(path, "r") as h5:
            offset, size = h5["TRANGE"].id.get_offset(), h5["TRANGE"].id.get_storage_size()
        if not zeroed:
            _flip(path, offset + size // 2)
            return "0/519"
        with open(path, "r+b") as fh:  # the time index says no block holds any time
            fh.seek(offset)
            fh.write(bytes(size))
        return "0/519"

    return corrupt


def _random_flip(seed: int) -> Callable[[Path], str]:
    """A byte of 0/519 flipped anywhere (seeded)."""

    def corrupt(root: Path) -> str:
        path = _chunk(root, "0/519")
        _flip(path, int(np.random.default_rng(seed).integers(path.stat().st_size)))
        return "0/519"

    return corrupt


def _put(source: str, target: str) -> Callable[[Path], str]:
    """The chunk file of partition ``source`` copied over that of ``target``."""

    def corrupt(root: Path) -> str:
        shutil.copyfile(_chunk(root, source), _chunk(root, target))
        return target

    return corrupt


def _swap_tables(root: Path) -> str:
    """The sample tables of slots 0 and 1 swapped inside hd3s/51 (bytes intact)."""
    with h5py.File(_chunk(root, "hd3s/51"), "r+") as h5:
        names = [n for n in h5 if n.startswith("S0.")]
        for name in names:
            other = "S1." + name[3:]
            if other in h5:
                h5.move(name, "swap")
                h5.move(other, name)
                h5.move("swap", other)
    return "hd3s/51"


def _drop_time(root: Path) -> str:
    """Slot 0's sample-table times removed from hd3s/51 (its other datasets intact)."""
    with h5py.File(_chunk(root, "hd3s/51"), "r+") as h5:
        del h5["S0.TIME"]
    return "hd3s/51"


def _older_generation(older: Path) -> Callable[[Path], str]:
    def corrupt(root: Path) -> str:
        path = _chunk(root, "0/520")
        (old,) = (older / "0").glob("520.*.h5")
        assert old.name != path.name  # the second update rebuilt the chunk
        shutil.copyfile(old, path)
        return "0/520"

    return corrupt


CORRUPTIONS: dict[str, Callable[..., Callable[[Path], str]]] = {
    "images": lambda older: _flip_block("IMGRAW"),
    "key group": lambda older: _flip_block("KEY"),
    "other group": lambda older: _flip_block("OTHER"),
    "file index": lambda older: _flip_block("FILEIDX"),
    "time-range blocks": lambda older: _trange(zeroed=False),
    "time-range blocks zeroed": lambda older: _trange(zeroed=True),
    **{f"random flip {seed}": lambda older, seed=seed: _random_flip(seed) for seed in (25, 26, 27)},
    "slot's chunk in another slot": lambda older: _put("1/519", "0/519"),
    "period's chunk in another period": lambda older: _put("0/520", "0/519"),
    "hd3 chunk in another slot": lambda older: _put("hd3/1/51", "hd3/0/51"),
    "hd3s tables swapped between slots": lambda older: _swap_tables,
    "hd3s chunk in another period": lambda older: _put("hd3s/52", "hd3s/51"),
    "hd3s table's times removed": lambda older: _drop_time,
    "older generation put back": _older_generation,
}
#: Corruptions a read may not meet: a random byte may lie outside what the reads decode, and
#: the sample tables' blocks are read where the chunk's record says they are (not through
#: HDF5's links, which these two edit while every block stays in place, intact).
UNSEEN_BY_READS = {name for name in CORRUPTIONS if name.startswith("random flip")} | {
    "hd3s tables swapped between slots",
    "hd3s table's times removed",
}


def test_reads_use_the_store(base):
    """The reads compared below are served by the chunks they are meant to test."""
    root, _, refs = base
    for name, read in READS.items():
        assert _same(read(root), refs[name]), name
    items = {n: get_item(n) for n in SLOT0_ITEMS}
    assert served_by_tables(items, BOUNDARY - 3000, BOUNDARY - 1500, root)
    assert served_by_tables(items, BOUNDARY + 1500, BOUNDARY + 3000, root)
    with ArchiveIndex(L0, root, readonly=True) as index:
        parts = ["0/519", "0/520", "1/519", "hd3/0/51", "hd3/1/51", "hd3s/51", "hd3s/52"]
        assert set(ColumnStore(L0, index).current_chunks(parts)) == set(parts)
    with h5py.File(_chunk(root, "0/519"), "r") as h5:  # several blocks, and one
        assert h5["IMGRAW"].id.get_num_chunks() > 1 and h5["KEY"].id.get_num_chunks() > 1
        assert h5["FILEIDX"].id.get_num_chunks() == 1
    with h5py.File(_chunk(root, "hd3s/51"), "r") as h5:
        assert h5["S0.TIME"].id.get_num_chunks() > 1
    assert check_archive(L0, data_root=root, verify_store=True).ok


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_corruption_detected_and_mended(case, archive, base, monkeypatch, caplog):
    _, older, refs = base
    part = CORRUPTIONS[case](older)(archive)
    chunk = _chunk(archive, part)

    # MICA_STORE_DAMAGED=raise: each read gives the files' answer or names the chunk
    monkeypatch.setenv("MICA_STORE_DAMAGED", "raise")
    raised = []
    for name, read in READS.items():
        try:
            got = read(archive)
        except DamagedStoreError as err:
            raised.append(name)
            assert err.chunk == chunk and str(chunk) in str(err), name
            assert f"store chunk {part}" in str(err) and "period" in str(err), str(err)
        else:
            assert _same(got, refs[name]), name
    assert raised or case in UNSEEN_BY_READS

    # by default: the files' answer, and the chunk named once in the log
    monkeypatch.delenv("MICA_STORE_DAMAGED")
    for name, read in READS.items():
        assert _same(read(archive), refs[name]), name
        assert _same(read(archive), refs[name]), name  # again, now without the chunk
    damaged = [r for r in caplog.records if "damaged store chunk" in r.getMessage()]
    assert len(damaged) == (1 if raised else 0)
    assert all(str(chunk) in r.getMessage() for r in damaged)

    # check --verify-store names it, with the command that mends it
    runner = CliRunner()
    out = runner.invoke(main, ["--archive", str(archive.parent), "check", "--verify-store"])
    assert out.exit_code == 1, out.output
    assert f"store chunk {part} is damaged" in out.output
    assert f"'mica --archive {archive.parent} check --verify-store --repair'" in out.output
    report = check_archive(L0, data_root=archive, verify_store=True)
    assert [p.split(" is damaged")[0] for p in report.problems] == [f"store chunk {part}"]

    # --repair rebuilds it from the files: the store serves the files' answer again
    repair = ["--archive", str(archive.parent), "check", "--verify-store", "--repair"]
    out = runner.invoke(main, repair)
    assert out.exit_code == 0 and "after repair" in out.output, out.output
    assert check_archive(L0, data_root=archive, verify_store=True).ok
    assert _chunk(archive, part) != chunk  # a new generation
    with ArchiveIndex(L0, archive, readonly=True) as index:
        assert part in ColumnStore(L0, index).current_chunks([part])
    monkeypatch.setenv("MICA_STORE_DAMAGED", "raise")
    for name, read in READS.items():
        assert _same(read(archive), refs[name]), name


def test_chunk_without_digests_is_stale(archive, base, caplog):
    """A chunk recorded before digests existed (an archive of an earlier version): readers
    read its files and say once which command brings it up to date; check lists it and
    `mica rebuild store` (or check --repair) rewrites it with digests."""
    refs = base[2]
    with sqlite3.connect(archive / "archfiles.db3") as db:  # the table as it was before
        db.execute("ALTER TABLE store_chunks DROP COLUMN digests")
    for name, read in READS.items():
        assert _same(read(archive), refs[name]), name
    stale = [r for r in caplog.records if "without digests" in r.getMessage()]
    assert len(stale) == 1 and "mica rebuild store" in stale[0].getMessage()
    report = check_archive(L0, data_root=archive)
    assert len(report.problems) == 24 and all("does not match" in p for p in report.problems)
    out = CliRunner().invoke(main, ["rebuild", "store", "--data-root", str(archive)])
    assert out.exit_code == 0 and "rebuilt 24 store chunks" in out.output, out.output
    assert check_archive(L0, data_root=archive, verify_store=True).ok
    with sqlite3.connect(archive / "archfiles.db3") as db:
        rows = db.execute("SELECT part, digests FROM store_chunks").fetchall()
    assert len(rows) == 24 and all(json.loads(d)["identity"]["part"] == p for p, d in rows)


def test_an_index_error_is_not_taken_for_an_older_archive(archive):
    """The store's queries take "no such table" for an archive written before the store (no
    chunks, no sync): a missing table still reads so. Any other error of the index (here
    every statement interrupted) is raised, not taken for that: an update would otherwise
    see no chunk, nothing a sync brought, and rebuild from the files."""
    with ArchiveIndex(L0, archive) as index:
        store = ColumnStore(L0, index)
        assert store.synced_alone() == set()  # no sync here: no synced_parts table
        index.conn.execute(SYNCED_PARTS_SQL)  # as a sync makes it: its query runs now
        assert store.chunk("hd3/2/52") is not None
        index.conn.set_progress_handler(lambda: 1, 1)  # every statement interrupted
        calls = {
            "chunk": lambda: store.chunk("hd3/2/52"),
            "current_chunks": lambda: store.current_chunks(["hd3/2/52"]),
            "damaged_chunks": store.damaged_chunks,
            "stale_parts": store.stale_parts,
            "synced_alone": store.synced_alone,
        }
        for name, call in calls.items():
            try:
                call()
            except sqlite3.OperationalError as exc:
                assert "interrupted" in str(exc), (name, exc)
            else:
                pytest.fail(f"{name}: the interrupted query was taken for an older archive")
        index.conn.set_progress_handler(None, 1)


def test_identity_in_the_chunk_file(archive):
    """The file names what it holds: its partition (view, slot, period) and generation."""
    with ArchiveIndex(L0, archive, readonly=True) as index:
        chunk = ColumnStore(L0, index).chunk("hd3/2/52")
    with h5py.File(archive / chunk["path"], "r") as h5:
        identity = json.loads(h5.attrs["identity"])
    gen = int(chunk["path"].rsplit(".", 2)[1])
    assert identity == {
        "part": "hd3/2/52",
        "view": "hd3",
        "slot": 2,
        "period": 52,
        "generation": gen,
    }
    assert json.loads(chunk["digests"])["identity"] == identity


def test_bad_setting_is_refused(archive, monkeypatch):
    monkeypatch.setenv("MICA_STORE_DAMAGED", "ignore")
    _flip_block("KEY")(archive)
    with pytest.raises(ConfigError, match="MICA_STORE_DAMAGED='ignore'"):
        READS["slot 0 all columns"](archive)
