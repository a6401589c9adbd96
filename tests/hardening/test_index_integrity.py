"""The index is rebuilt from the files: a damaged or missing index is a `DamagedIndexError`
for readers, a problem for ``mica check``, and ``mica check --repair`` or ``mica rebuild
index`` rebuild it from the archived files; edited rows are found by the check (each file's
own headers say otherwise) and never trusted by the repair."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mica.archive import aca_l0, obspar
from mica.cli import main
from mica.engine.index import INDEX_NAME
from mica.engine.index_check import check_archive
from mica.engine.index_rebuild import rebuild_index
from mica.engine.obsid_update import update_obsid_archive
from mica.errors import DamagedIndexError, MicaError
from mica.products.aca_l0 import L0
from mica.products.obspar import OBSPAR
from mica.time import to_secs

START, STOP = "2003:215", "2003:216"
# two files of the same start time, slots 0 and 1
SLOT0, SLOT1 = "acaf176267165N001_0_img0.fits.gz", "acaf176267165N001_1_img0.fits.gz"


@pytest.fixture
def l0(tmp_path, real_l0_archive) -> Path:
    """A copy of the real 2003:215 L0 archive this test may damage."""
    root = tmp_path / "aca0"
    shutil.copytree(real_l0_archive, root, symlinks=True)
    return root


def _reads(root: Path) -> dict[int, np.ndarray]:
    return {slot: aca_l0.get_slot_data(START, STOP, slot, data_root=root) for slot in range(8)}


@pytest.fixture(scope="module")
def reference(real_l0_archive) -> dict[int, np.ndarray]:
    return _reads(real_l0_archive)


def _assert_reads(root: Path, reference: dict[int, np.ndarray]) -> None:
    got = _reads(root)
    for slot, ref in reference.items():
        assert len(got[slot]) == len(ref)
        for name in ("TIME", "IMGRAW", "FILENAME"):
            assert np.array_equal(got[slot][name].filled(0), ref[name].filled(0)), (slot, name)


def _damage(root: Path, kind: str) -> None:
    """Damage the index as a disk, a crash or a careless hand would."""
    db = root / INDEX_NAME
    if kind == "missing":
        db.unlink()
        return
    if kind == "not utf-8":  # a flipped byte in a file name: SQLite's own check passes it
        with sqlite3.connect(db) as conn:  # a file the reads below list
            sql = "SELECT filename FROM archfiles WHERE slot = 3 AND tstop > ? ORDER BY tstart"
            (name,) = conn.execute(sql, (to_secs(START),)).fetchone()
        conn.close()
        raw = db.read_bytes()  # its name in the table's row and in the key's index
        db.write_bytes(raw.replace(name.encode(), name.encode()[:-1] + b"\xff"))
        return
    conn = sqlite3.connect(db)
    (page,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'archfiles'").fetchone()
    (size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    raw = bytearray(db.read_bytes())
    if kind == "truncated":
        raw = raw[: len(raw) // 2]
    elif kind == "emptied":  # 0 bytes: SQLite opens it as a new, empty database
        raw = bytearray()
    elif kind == "header":
        raw[:100] = bytes(100)
    elif kind == "garbage page":  # the archfiles table's root page
        raw[(page - 1) * size : page * size] = np.random.default_rng(1).bytes(size)
    db.write_bytes(bytes(raw))


DAMAGES = ["truncated", "emptied", "header", "garbage page", "not utf-8", "missing"]


@pytest.mark.parametrize("kind", DAMAGES)
def test_readers_raise_damaged_index_error(l0, kind):
    _damage(l0, kind)
    for read in (
        lambda: aca_l0.get_slot_data(START, STOP, 3, data_root=l0),
        lambda: aca_l0.get_files(start=START, stop=STOP, data_root=l0),
    ):
        with pytest.raises(DamagedIndexError) as info:
            read()
        assert isinstance(info.value, MicaError) and isinstance(info.value, OSError)
        assert not isinstance(info.value, sqlite3.Error)
        text = str(info.value)
        assert str(l0 / INDEX_NAME) in text
        assert "check --repair" in text and "mica rebuild index aca-l0" in text


@pytest.mark.parametrize("kind", DAMAGES)
def test_check_reports_and_repair_rebuilds(l0, kind, reference):
    _damage(l0, kind)
    report = check_archive(L0, data_root=l0)
    found = [p for p in report.problems if "index archfiles.db3 is" in p]
    assert not report.ok and found, report.summary()
    report = check_archive(L0, data_root=l0, repair=True)
    rebuilt = "rebuilt archfiles.db3 from the 36 archived files"
    assert any(r.startswith(rebuilt) for r in report.repairs), report.summary()
    after = check_archive(L0, data_root=l0)
    assert after.ok and after.files == 36, after.summary()
    _assert_reads(l0, reference)
    aside = [p for p in l0.glob(f"{INDEX_NAME}.*") if not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == (kind != "missing")  # the damaged file kept, with a timestamp


def test_rebuild_index_command(l0, reference):
    _damage(l0, "header")
    damaged = (l0 / INDEX_NAME).read_bytes()
    result = CliRunner().invoke(main, ["check"], env={"MICA_ARCHIVE": str(l0.parent)})
    assert result.exit_code == 1 and "damaged" in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    result = CliRunner().invoke(main, ["rebuild", "index", "aca-l0", "--data-root", str(l0)])
    assert result.exit_code == 0, result.output
    assert "rebuilt archfiles.db3 from the 36 archived files" in result.output
    (aside,) = [p for p in l0.glob(f"{INDEX_NAME}.*") if not p.name.endswith(("-wal", "-shm"))]
    assert aside.read_bytes() == damaged
    assert check_archive(L0, data_root=l0).ok
    _assert_reads(l0, reference)


def test_rebuild_keeps_store_chunks_built_from_the_same_files(l0):
    """A rebuild of a readable index marks every chunk dirty and keeps those still built
    from the same files (no chunk file written again)."""
    chunks = sorted(p.name for p in (l0 / "store").rglob("*.h5"))
    done = rebuild_index(L0, data_root=l0)
    assert done[0].startswith("rebuilt archfiles.db3 from the 36 archived files")
    assert sorted(p.name for p in (l0 / "store").rglob("*.h5")) == chunks
    assert check_archive(L0, data_root=l0).ok


def _edit(root: Path, sql: str) -> None:
    conn = sqlite3.connect(root / INDEX_NAME)
    conn.executescript(sql)
    conn.close()


EDITS = {
    "shifted times": (
        f"UPDATE archfiles SET tstart = tstart + 100, tstop = tstop + 100 "
        f"WHERE filename = '{SLOT0}'",
        ["tstart", "tstop"],
    ),
    "another slot's file": (
        f"UPDATE archfiles SET filename = 'x' WHERE filename = '{SLOT0}'; "
        f"UPDATE archfiles SET filename = '{SLOT0}' WHERE filename = '{SLOT1}'; "
        f"UPDATE archfiles SET filename = '{SLOT1}' WHERE filename = 'x'",
        ["slot", "checksum"],
    ),
    "slot": (f"UPDATE archfiles SET slot = 5 WHERE filename = '{SLOT0}'", ["slot"]),
    "revision": (f"UPDATE archfiles SET revision = 7 WHERE filename = '{SLOT0}'", ["revision"]),
    "checksum": (f"UPDATE archfiles SET checksum = 'x' WHERE filename = '{SLOT0}'", ["checksum"]),
    "folder": (f"UPDATE archfiles SET doy = 'x' WHERE filename = '{SLOT0}'", ["doy"]),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_edited_rows_found_and_not_trusted(l0, edit, reference):
    sql, columns = EDITS[edit]
    _edit(l0, sql)
    report = check_archive(L0, data_root=l0)
    found = [p for p in report.problems if p.startswith(f"index row of {SLOT0} differs")]
    assert found, report.summary()
    assert all(f"{c} " in found[0] for c in columns), found
    report = check_archive(L0, data_root=l0, repair=True)
    assert f"rewrote the index row of {SLOT0} from the file" in report.repairs
    after = check_archive(L0, data_root=l0)
    assert after.ok and after.files == 36, after.summary()
    _assert_reads(l0, reference)


def test_rebuild_never_reads_edited_rows(l0, reference):
    _edit(l0, EDITS["another slot's file"][0])
    rebuild_index(L0, data_root=l0)
    assert check_archive(L0, data_root=l0).ok
    _assert_reads(l0, reference)


def test_check_on_a_clean_archive_finds_nothing(l0):
    report = check_archive(L0, data_root=l0)
    assert report.ok and report.files == 36, report.summary()


# --- a per-obsid layout -------------------------------------------------------------------
OBSIDS = [7000, 5438]


@pytest.fixture(scope="module")
def obspar_archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("obspar") / "obspar"
    report = update_obsid_archive(OBSPAR, "sim", OBSIDS, data_root=root)
    assert report.ok, report.summary()
    return root


def _tables(root: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(root / INDEX_NAME)
    try:
        return {
            "archfiles": sorted(map(tuple, conn.execute("SELECT * FROM archfiles"))),
            "links": sorted(map(tuple, conn.execute("SELECT * FROM obsid_links"))),
            "revisions": sorted(
                map(tuple, conn.execute("SELECT obsid, revision, nfiles FROM revisions"))
            ),
        }
    finally:
        conn.close()


def _links(root: Path) -> list[tuple[str, str]]:
    return sorted(
        (str(p.relative_to(root)), os.readlink(p)) for p in root.rglob("[0-9]*/*") if p.is_symlink()
    )


@pytest.mark.parametrize("kind", ["header", "missing"])
def test_obsid_index_rebuilt_with_its_layout(tmp_path, obspar_archive, kind):
    root = tmp_path / "obspar"
    shutil.copytree(obspar_archive, root, symlinks=True)
    before, links = _tables(root), _links(root)
    _damage(root, kind)
    with pytest.raises(DamagedIndexError):
        obspar.get_obs_dirs(OBSIDS[0], data_root=root)
    assert not check_archive(OBSPAR, data_root=root).ok
    check_archive(OBSPAR, data_root=root, repair=True)
    assert check_archive(OBSPAR, data_root=root).ok
    assert _tables(root) == before and _links(root) == links
    assert obspar.get_obs_dirs(OBSIDS[0], data_root=root)


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        (f"UPDATE archfiles SET tstart = tstart + 1000 WHERE obsid = {OBSIDS[0]}", "tstart"),
        (f"UPDATE archfiles SET isdefault = NULL WHERE obsid = {OBSIDS[0]}", "isdefault unset"),
    ],
)
def test_obsid_edited_row_found_and_rewritten(tmp_path, obspar_archive, sql, found):
    root = tmp_path / "obspar"
    shutil.copytree(obspar_archive, root, symlinks=True)
    before = _tables(root)
    _edit(root, sql)
    report = check_archive(OBSPAR, data_root=root)
    assert any(found in p for p in report.problems), report.summary()
    check_archive(OBSPAR, data_root=root, repair=True)
    assert check_archive(OBSPAR, data_root=root).ok
    assert _tables(root) == before
