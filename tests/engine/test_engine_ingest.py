"""Ingest rules on real files: idempotence, revisions, overlaps, bad input, recovery, locking."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from mica import config
from mica.archive import aca_l0
from mica.engine.executors.process import default_workers, workers_can_start
from mica.engine.index import ArchiveIndex
from mica.engine.index_check import check_archive
from mica.engine.ingest import _place, ingest_files, recover_pending
from mica.engine.lock import ArchiveBusy, UpdateLock
from mica.engine.time_update import update_archive
from mica.products.aca_l0 import L0

FILE = "acaf176267383N001_0_img0.fits.gz"  # 8x8, slot 0, 729 rows


def snapshot(root: Path) -> dict[str, str]:
    """Every archived file (and the index rows) by content hash."""
    out = {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.fits.gz"))
        if "rejected" not in p.parts
    }
    with ArchiveIndex(L0, root) as index:
        out["rows"] = repr(sorted(tuple(sorted(r.items())) for r in index.query()))
    return out


def rewrite(src: Path, dest: Path, edit=None, checksum: bool = True) -> Path:
    """Copy a FITS file with an edit applied to its HDUs, written with fresh checksums."""
    with fits.open(src) as hdus:
        hdus = fits.HDUList([h.copy() for h in hdus])
    if edit:
        hdus = edit(hdus) or hdus
    raw = dest.with_suffix("")
    hdus.writeto(raw, checksum=checksum, overwrite=True)
    with open(raw, "rb") as fin, gzip.open(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    raw.unlink()
    return dest


@pytest.fixture
def archive(tmp_path, real_l0_dir) -> Path:
    root = tmp_path / "aca0"
    report = update_archive(L0, f"dir:{real_l0_dir}", "2003:214", "2003:216", data_root=root)
    assert len(report.ingested) == 36
    return root


def test_rerun_is_idempotent(archive, real_l0_dir):
    before = snapshot(archive)
    report = update_archive(L0, f"dir:{real_l0_dir}", "2003:214", "2003:216", data_root=archive)
    assert report.ingested == [] and len(report.ingest.unchanged) == 36 and report.rejected == []
    assert snapshot(archive) == before


def test_worker_processes_archive_what_one_process_does(archive, tmp_path, real_l0_dir):
    """The suite validates inline (the repository's conftest.py); a user's update validates in
    worker processes, whose results (rows, the store's arrays) travel back to be committed."""
    root = tmp_path / "with-workers" / "aca0"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(config.WORKERS, "2")
        assert default_workers() == 2 and workers_can_start()  # a pool, not the inline path
        report = update_archive(L0, f"dir:{real_l0_dir}", "2003:214", "2003:216", data_root=root)
    assert len(report.ingested) == 36 and not report.rejected
    assert snapshot(root) == snapshot(archive)
    for slot in range(8):
        mine, theirs = (
            aca_l0.get_slot_data("2003:215", "2003:216", slot, data_root=r) for r in (root, archive)
        )
        assert mine.dtype == theirs.dtype and len(mine) == len(theirs) > 0
        assert (mine.mask == theirs.mask).all() and (mine.data == theirs.data).all()


def test_resume_from_last_ingested(tmp_path, real_l0_dir):
    root = tmp_path / "aca0"
    with pytest.raises(ValueError, match="empty"):
        update_archive(L0, f"dir:{real_l0_dir}", data_root=root, stop="2003:216")
    update_archive(L0, f"dir:{real_l0_dir}", "2003:215:03:00", "2003:215:03:30", data_root=root)
    first = set(ArchiveIndex(L0, root).filenames())
    assert 0 < len(first) < 36
    report = update_archive(L0, f"dir:{real_l0_dir}", None, "2003:216", data_root=root)
    assert len(ArchiveIndex(L0, root).filenames()) == 36
    assert not set(report.ingested) & first


def test_newer_revision_replaces_older(archive, tmp_path, real_l0_dir):
    def to_rev2(hdus):
        hdus[1].header["REVISION"] = 2
        hdus[1].data["IMGRAW"] += 1.0  # reprocessed content

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    rev2 = rewrite(real_l0_dir / FILE, incoming / FILE.replace("N001", "N002"), to_rev2)
    report = ingest_files(L0, [rev2], data_root=archive)
    assert report.ingested == [rev2.name] and report.replaced == [FILE]
    assert not (archive / "2003/215" / FILE).exists()
    files = aca_l0.get_files(start="2003:215", stop="2003:216", slots=[0], data_root=archive)
    assert [Path(f).name for f in files].count(rev2.name) == 1
    assert FILE not in {Path(f).name for f in files}
    data = aca_l0.get_slot_data("2003:215", "2003:216", slot=0, data_root=archive)
    assert len(np.unique(data["TIME"])) == len(data)  # no duplicate rows
    direct = fits.getdata(real_l0_dir / FILE, 1)
    mine = data[data["FILENAME"] == rev2.name]
    assert np.allclose(mine["IMGRAW"].reshape(-1, 8, 8), direct["IMGRAW"] + 1.0)

    # The older revision offered again is recognised as outdated and not ingested.
    again = incoming / FILE
    shutil.copy(real_l0_dir / FILE, again)
    before = snapshot(archive)
    report = ingest_files(L0, [again], data_root=archive)
    assert report.outdated == [FILE] and report.ingested == []
    assert snapshot(archive) == before


def test_same_revision_overlap_refused(archive, tmp_path, real_l0_dir):
    def shift(hdus):
        for key in ("TSTART", "TSTOP"):
            hdus[1].header[key] += 100.0
        hdus[1].data["TIME"] += 100.0

    tstart = fits.getheader(real_l0_dir / FILE, 1)["TSTART"] + 100
    name = f"acaf{int(tstart):09d}N001_0_img0.fits.gz"
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    before = snapshot(archive)
    report = ingest_files(
        L0, [rewrite(real_l0_dir / FILE, incoming / name, shift)], data_root=archive
    )
    assert len(report.rejected) == 1
    message = str(report.rejected[0])
    assert name in message and FILE in message and "same revision" in message
    assert snapshot(archive) == before
    assert (archive / "rejected" / name).exists()
    assert "same revision" in (archive / "rejected" / (name + ".reason")).read_text()


def _bad_files(src: Path, where: Path) -> dict[str, tuple[Path | tuple[str, Path], str]]:
    """Hostile inputs, each with the phrase its rejection must contain."""
    where.mkdir()
    out = {}
    full = src.read_bytes()
    trunc = where / "acaf176267383N001_1_img0.fits.gz"
    trunc.write_bytes(full[: len(full) // 2])
    out["truncated"] = (trunc, "truncated gzip")

    raw = bytearray(gzip.decompress(full))
    raw[-3000] ^= 0xFF  # one flipped byte in the table data
    bad_sum = where / "acaf176267383N001_2_img0.fits.gz"
    bad_sum.write_bytes(gzip.compress(bytes(raw)))
    out["checksum"] = (bad_sum, "DATASUM verification failed")

    dotted = where / "evil.fits.gz"
    shutil.copy(src, dotted)
    out["dotdot"] = (("../acaf176267383N001_0_img0.fits.gz", dotted), "path components")

    notfits = where / "acaf176267383N001_3_img0.fits.gz"
    notfits.write_bytes(gzip.compress(b"<html>Service unavailable</html>" * 100))
    out["notfits"] = (notfits, "not a FITS file")

    def drop_column(hdus):
        cols = [c for c in hdus[1].columns if c.name != "TEMPCCD"]
        hdus[1] = fits.BinTableHDU.from_columns(cols, header=hdus[1].header, name="ACA_IMG0")

    missing = rewrite(src, where / "acaf176267383N001_4_img0.fits.gz", drop_column)
    out["missing"] = (missing, "missing columns for 8x8 data: TEMPCCD")
    return out


@pytest.mark.parametrize("case", ["truncated", "checksum", "dotdot", "notfits", "missing"])
def test_bad_input_refused(archive, tmp_path, real_l0_dir, case):
    item, phrase = _bad_files(real_l0_dir / FILE, tmp_path / "bad")[case]
    before = snapshot(archive)
    report = ingest_files(L0, [item], data_root=archive)
    assert report.ingested == [] and len(report.rejected) == 1
    err = report.rejected[0]
    name = item[0] if isinstance(item, tuple) else item.name
    assert name in str(err) and phrase in str(err), str(err)
    assert snapshot(archive) == before
    kept = list((archive / "rejected").glob("*.reason"))
    assert len(kept) == 1 and phrase in kept[0].read_text()


def test_bad_files_in_dir_source_reported(archive, tmp_path, real_l0_dir):
    bad = _bad_files(real_l0_dir / FILE, tmp_path / "bad")
    before = snapshot(archive)
    report = update_archive(
        L0, f"dir:{tmp_path / 'bad'}", "2003:215", "2003:216", data_root=archive
    )
    # evil.fits.gz does not match the product's pattern: a dir source never offers it.
    assert len(report.rejected) == len(bad) - 1
    assert snapshot(archive) == before


def test_recovery_of_interrupted_ingest(archive, tmp_path, real_l0_dir):
    """State after a crash between placing a file and committing its row, then repair."""
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    rev2 = rewrite(
        real_l0_dir / FILE,
        incoming / FILE.replace("N001", "N002"),
        lambda h: h[1].header.__setitem__("REVISION", 2),
    )
    dest = archive / "2003/215" / rev2.name
    with ArchiveIndex(L0, archive) as index:
        with index.transaction():
            index.add_pending([(str(dest), "add")])
        _place(rev2, dest)  # ... and the process dies here
    report = check_archive(L0, data_root=archive)
    assert not report.ok and any("interrupted" in p for p in report.problems)
    assert (
        aca_l0.get_files(start="2003:215", stop="2003:216", slots=[0], data_root=archive).count(
            str(dest)
        )
        == 0
    )  # readers don't see it
    with ArchiveIndex(L0, archive) as index:
        done = recover_pending(L0, index)
    assert any(rev2.name in line for line in done)
    assert check_archive(L0, data_root=archive).ok
    names = {
        Path(f).name
        for f in aca_l0.get_files(start="2003:215", stop="2003:216", slots=[0], data_root=archive)
    }
    assert rev2.name in names and FILE not in names


def test_check_repairs_missing_and_stray_files(archive):
    victim = archive / "2003/215" / FILE
    victim.unlink()
    stray_src = archive / "2003/215" / "acaf176267340N001_4_img0.fits.gz"
    with ArchiveIndex(L0, archive) as index, index.transaction():
        index.replace([], [stray_src.name])  # a file whose row was lost
    (archive / "2003/215" / ".x.partial").write_bytes(b"half")
    report = check_archive(L0, data_root=archive)
    problems = "\n".join(report.problems)
    assert f"index row without file: {FILE}" in problems
    assert f"file without index row: {stray_src.name}" in problems
    assert "partial file .x.partial" in problems
    part = L0.partition({"slot": 4, "imgsize": 4, "filetime": 176267340})
    assert f"store chunk {part} does not match" in problems  # its rows changed underneath
    check_archive(L0, data_root=archive, repair=True)
    final = check_archive(L0, data_root=archive)
    assert final.ok and final.files == 35
    with ArchiveIndex(L0, archive) as index:
        assert index.get(stray_src.name) is not None and index.get(FILE) is None


def test_second_updater_refused(archive, real_l0_dir):
    with UpdateLock(archive):
        with pytest.raises(ArchiveBusy, match="another update"):
            update_archive(L0, f"dir:{real_l0_dir}", "2003:215", "2003:216", data_root=archive)
    update_archive(L0, f"dir:{real_l0_dir}", "2003:215", "2003:216", data_root=archive)


@contextmanager
def _locked(db: Path) -> Iterator[None]:
    """An SQLite database held in an exclusive transaction by another connection: readers
    go on (WAL), writers wait for it."""
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.rollback()
        holder.close()


def test_an_index_locked_past_the_wait_names_the_file_and_changes_nothing(
    tmp_path, real_l0_dir, monkeypatch
):
    """Another process holding the index's lock (stopped, say) past the wait: the update
    raises `ArchiveBusy` naming the index, not SQLite's bare "database is locked", and
    archives nothing; it runs once the lock is let go."""
    from mica.engine import index as index_module

    monkeypatch.setattr(index_module, "LOCK_WAIT", 0.2)
    root = tmp_path / "aca0"
    ArchiveIndex(L0, root).close()
    with _locked(root / "archfiles.db3"):
        with pytest.raises(ArchiveBusy, match="archfiles.db3 stayed locked by another process"):
            update_archive(L0, f"dir:{real_l0_dir}", "2003:214", "2003:216", data_root=root)
    assert snapshot(root) == {"rows": "[]"} and not (root / "rejected").exists()
    report = update_archive(L0, f"dir:{real_l0_dir}", "2003:214", "2003:216", data_root=root)
    assert len(report.ingested) == 36


def test_an_index_locked_while_files_are_placed_loses_and_rejects_nothing(
    tmp_path, real_l0_dir, monkeypatch
):
    """The lock taken by another process after the ingest opened the index: the placements'
    transaction raises `ArchiveBusy`, which stops the ingest like any error of the archive
    itself; no file is rejected as if it were the file's fault, none is lost."""
    from mica.engine import index as index_module

    monkeypatch.setattr(index_module, "LOCK_WAIT", 0.2)
    incoming = tmp_path / "incoming"
    shutil.copytree(real_l0_dir, incoming)
    files = sorted(incoming.glob("*.fits.gz"))
    root = tmp_path / "aca0"
    with ArchiveIndex(L0, root) as index, _locked(root / "archfiles.db3"):
        with pytest.raises(ArchiveBusy, match="stayed locked by another process"):
            # (store=False: the store's tables, made first, would meet the lock before)
            ingest_files(L0, files, index=index, workers=1, store=False)
    assert not (root / "rejected").exists() and all(f.exists() for f in files)
    assert snapshot(root) == {"rows": "[]"}
    assert len(ingest_files(L0, files, data_root=root, workers=1).ingested) == 36


def test_overlap_lookup_visits_the_files_ending_after_a_new_files_start(archive):
    """An ingest asks the index, per file, for the files of its slot that overlap it: the
    query is served by the (slot, tstop) index, so in time order it visits the few files
    ending after the new file's start, not the ten days of files before it; it finds the
    same files as a scan of the whole table."""
    with ArchiveIndex(L0, archive) as index:
        rows = index.query()
        seen: list[str] = []
        index.conn.set_trace_callback(seen.append)
        for row in rows:
            later = {**row, "filename": "new", "tstart": row["tstart"] + 5.0}
            got = {r["filename"] for r in index.overlapping(later)}
            scan = {
                r["filename"]
                for r in rows
                if r["slot"] == row["slot"]
                and r["tstart"] < later["tstop"] - 1e-3
                and r["tstop"] > later["tstart"] + 1e-3
            }
            assert got == scan and row["filename"] in got
        index.conn.set_trace_callback(None)
        plan = index.conn.execute(f"EXPLAIN QUERY PLAN {seen[-1]}").fetchall()
    assert "idx_archfiles_slot_tstop" in " ".join(str(step[3]) for step in plan)
