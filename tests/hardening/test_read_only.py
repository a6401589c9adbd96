"""Readers never write: a shared archive read by users who cannot write it.

One small simulated archive is built through the real ``mica update`` commands, and read
as an unprivileged user (uid/gid 65534) from a forked child that dropped its privileges
once every module was imported (root ignores file modes): the archive as a finished update
leaves it (0755, owned by root, no ``-wal``/``-shm``), then made read-only (``chmod -R
a-w``). The child sends its results back through a pipe; they must equal the same calls
made by the owner on a writable copy, and the archive must not change. Without root the
cases that need another user are skipped; the others then read as this user, to whom the
``chmod``-ed archive is read-only too.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from mica.archive import aca_hdr3, aca_l0, asp_l1, obspar
from mica.cli import main
from mica.engine.index import INDEX_NAME, ArchiveIndex, close_kept_readers
from mica.products.aca_l0 import L0
from mica.stats import acq_stats

START, STOP = "2012:001:00:00:00", "2012:001:02:00:00"
READ = ("2012:001:00:20:00", "2012:001:01:10:00")
SLOT = 3
NOBODY = 65534
IS_ROOT = os.getuid() == 0

Results = dict[str, Any]


def _cli(root: Path, *args: str) -> tuple[int, str]:
    """Exit code and output of ``mica <args>`` on the archive ``root``."""
    env = {"MICA_ARCHIVE": str(root), "MICA_SIM_L1_DECIMATE": "50"}
    result = CliRunner().invoke(main, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return -1, f"{type(result.exception).__name__}: {result.exception}"
    return result.exit_code, result.output.replace(str(root), "<archive>")


def _reads(root: Path) -> Results:
    """Every reader on the archive ``root`` (an error is a result too, shown by the diff)."""
    aca0 = root / "aca0"
    obsid = obspar.get_obsids(START, STOP, data_root=root / "obspar")[0]
    calls: dict[str, Callable[[], Any]] = {
        "get_files": lambda: _l0_files(aca0),
        "get_slot_data": lambda: aca_l0.get_slot_data(*READ, SLOT, data_root=aca0),
        "get_aca_images": lambda: aca_l0.get_aca_images(*READ, data_root=aca0),
        "hdr3_msid": lambda: aca_hdr3.MSID("ccd_det_therm", *READ, data_root=aca0).vals,
        "asp_l1_files": lambda: [
            Path(p).name for p in asp_l1.get_files(obsid, content="ASPSOL", data_root=root / "asp1")
        ],
        "asp_l1_processing": lambda: asp_l1.get_processing(obsid, data_root=root / "asp1"),
        "asp_l1_atts": lambda: asp_l1.get_atts(obsid, data_root=root / "asp1")[0],
        "obspar": lambda: obspar.get_obspar(obsid, data_root=root / "obspar"),
        "fetch_aca_l0": lambda: _cli(
            root, "fetch", "aca-l0", "--start", READ[0], "--stop", READ[1], "--slot", str(SLOT)
        ),
        "fetch_hdr3": lambda: _cli(
            root, "fetch", "hdr3", "ccd_det_therm", "--start", READ[0], "--stop", READ[1]
        ),
        "acq_stats": lambda: acq_stats.get_stats(data_root=root / "acq_stats"),
        "fetch_acq_stats": lambda: _cli(root, "fetch", "acq-stats", "--obsid", str(obsid)),
        "check": lambda: _cli(root, "check"),
        "check_store": lambda: _cli(root, "check", "--verify-store"),
    }
    out: Results = {}
    for name, call in calls.items():
        try:
            out[name] = call()
        except Exception as err:  # noqa: BLE001  (compared with the owner's result)
            out[name] = f"{type(err).__name__}: {err}"
    return out


def _l0_files(aca0: Path, slots: list[int] | None = None) -> list[str]:
    """`aca_l0.get_files` over `READ`, as paths in the product folder."""
    paths = aca_l0.get_files(start=READ[0], stop=READ[1], slots=slots, data_root=aca0)
    return [str(Path(p).relative_to(aca0)) for p in paths]


@dataclass
class ForkedCall:
    """``call()`` in a child forked from this process (every module already imported, so it
    costs what the call costs); its return value comes back pickled through a pipe."""

    pid: int
    pipe: int

    @classmethod
    def start(cls, call: Callable[[], Any]) -> ForkedCall:
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            status = 1
            try:
                os.close(rfd)
                try:
                    payload = pickle.dumps((True, call()))
                except Exception:  # noqa: BLE001  (shown by the parent)
                    payload = pickle.dumps((False, traceback.format_exc()))
                with os.fdopen(wfd, "wb") as fh:
                    fh.write(payload)
                status = 0
            finally:
                os._exit(status)
        os.close(wfd)
        return cls(pid, rfd)

    def result(self) -> Any:
        """What ``call()`` returned, once the child ended (a test failure if it raised)."""
        with os.fdopen(self.pipe, "rb") as fh:
            data = fh.read()
        _, status = os.waitpid(self.pid, 0)
        assert status == 0 and data, "the forked child died"
        done, value = pickle.loads(data)
        assert done, f"the forked child failed:\n{value}"
        return value


def _as_nobody(reads: Callable[[], Results]) -> tuple[Results, list[str]]:
    """``reads()`` in a forked child running as uid/gid 65534 (as this user when not root),
    and the warnings mica logged there."""

    def unprivileged() -> tuple[Results, list[str]]:
        logged: list[str] = []
        handler = logging.Handler(logging.WARNING)
        handler.emit = lambda record: logged.append(record.getMessage())  # type: ignore
        logging.getLogger("mica").addHandler(handler)
        if IS_ROOT:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        os.chdir("/")  # a stray relative write fails too
        return reads(), logged

    return ForkedCall.start(unprivileged).result()


def _listing(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under ``root``: (mode, size, mtime) of the entry itself (links unfollowed)."""
    out = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.lstat()
        out[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def _assert_same(got: Results, want: Results) -> None:
    assert got.keys() == want.keys()
    for name, value in want.items():
        if isinstance(value, np.ndarray):  # bit for bit (NaN too), mask and all
            assert isinstance(got[name], np.ndarray), (name, got[name])
            assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
            assert np.ma.getdata(got[name]).tobytes() == np.ma.getdata(value).tobytes(), name
            assert np.array_equal(np.ma.getmaskarray(got[name]), np.ma.getmaskarray(value)), name
        elif hasattr(value, "colnames"):  # an astropy Table
            assert got[name].colnames == value.colnames, name
            for col in value.colnames:
                assert np.array_equal(np.asarray(got[name][col]), np.asarray(value[col])), col
        else:
            assert got[name] == value, name


def _chmod_tree(root: Path, writable: bool) -> None:
    subprocess.run(["chmod", "-R", "u+w" if writable else "a-w", str(root)], check=True)


@pytest.fixture(scope="module")
def shared() -> Iterator[dict[str, Any]]:
    """The archive (in a world-readable folder), a writable copy and the owner's reads."""
    base = Path(tempfile.mkdtemp(prefix="mica-read-only-", dir="/tmp"))
    try:
        base.chmod(0o755)  # mkdtemp makes it 0700: others could not even enter
        archive = base / "archive"
        for product in ("aca-l0", "obspar", "asp-l1", "acq-stats"):
            source = [] if product == "acq-stats" else ["--source", "sim"]  # derived: none
            code, output = _cli(
                archive, "update", product, *source, "--start", START, "--stop", STOP, "--quiet"
            )
            assert code == 0, output
        archive.chmod(0o755)
        # The acq-stats update read the other indexes as their owner: SQLite left their -wal
        # and -shm (readers of other users follow them, `test_reader_follows_running_writer`).
        # The owner's next write merges and removes them, as here, once this process's
        # readers closed theirs.
        close_kept_readers()
        for db in archive.rglob("*.db3"):
            conn = sqlite3.connect(db)
            conn.execute("SELECT 1 FROM sqlite_master").fetchall()
            conn.close()
        assert not list(archive.rglob("*.db3-*"))  # as a finished update leaves it
        owner = base / "owner"
        shutil.copytree(archive, owner, symlinks=True)
        yield {
            "base": base,
            "archive": archive,
            "owner": owner,
            "reads": _reads(owner),  # also imports every module the child needs
            "listing": _listing(archive),
        }
    finally:
        _chmod_tree(base, writable=True)
        shutil.rmtree(base)


def test_owner_reads_work(shared):
    """The reference itself: no reader failed on the owner's writable copy."""
    errors = {k: v for k, v in shared["reads"].items() if isinstance(v, str)}
    assert not errors
    codes = {k: v[0] for k, v in shared["reads"].items() if isinstance(v, tuple)}
    assert set(codes.values()) == {0}, shared["reads"]
    for name in ("get_files", "get_slot_data", "hdr3_msid", "asp_l1_files", "acq_stats"):
        assert len(shared["reads"][name]), name


@pytest.mark.skipif(not IS_ROOT, reason="reading an archive of another user needs root")
def test_archive_of_another_user(shared):
    """(b) 0755, owned by root, read by uid 65534; (c) nothing in it changes."""
    archive = shared["archive"]
    got, logged = _as_nobody(lambda: _reads(archive))
    _assert_same(got, shared["reads"])
    assert not logged
    assert _listing(archive) == shared["listing"]


def test_read_only_archive(shared):
    """(a) ``chmod -R a-w``, read by an unprivileged user; (c) nothing in it changes;
    (d) ``mica check`` reports as on the writable archive."""
    archive = shared["archive"]
    _chmod_tree(archive, writable=False)
    try:
        if not IS_ROOT and os.access(archive, os.W_OK):
            pytest.skip("this user writes the archive even after chmod -R a-w")
        before = _listing(archive)
        got, logged = _as_nobody(lambda: _reads(archive))
        _assert_same(got, shared["reads"])
        assert got["check"][0] == 0
        assert not logged
        after = _listing(archive)
        assert after == before
        assert not [name for name in after if name.endswith(("-wal", "-shm"))]
    finally:
        _chmod_tree(archive, writable=True)


@pytest.mark.skipif(not IS_ROOT, reason="a writer of another user needs root")
def test_reader_follows_running_writer(shared):
    """While the owner's update holds the index open (its -wal and -shm there), a reader that
    cannot write reads through them (``mode=ro``): it sees what the writer committed."""
    root = shared["base"] / "writing"
    shutil.copytree(shared["archive"], root, symlinks=True)
    aca0 = root / "aca0"
    conn = sqlite3.connect(aca0 / INDEX_NAME, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_autocheckpoint=0")  # the commit stays in the -wal
        gone = _l0_files(aca0, [SLOT])[0]
        conn.execute("DELETE FROM archfiles WHERE filename = ?", (Path(gone).name,))
        assert (aca0 / f"{INDEX_NAME}-shm").exists()
        got, logged = _as_nobody(lambda: _l0_files(aca0, [SLOT]))
    finally:
        conn.close()
    assert got and gone not in got
    assert not logged


def test_unmerged_wal_is_named(shared):
    """A ``-wal`` holding committed changes without its ``-shm`` (a writer killed, its -shm
    lost) cannot be read without write access: the reader serves the index as of its last
    checkpoint and names the command that merges the rest."""
    writing, root = shared["base"] / "killed", shared["base"] / "unmerged"
    shutil.copytree(shared["archive"], writing, symlinks=True)
    conn = sqlite3.connect(writing / "aca0" / INDEX_NAME, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_autocheckpoint=0")  # the commit stays in the -wal
        conn.execute("DELETE FROM archfiles")
        shutil.copytree(writing, root, symlinks=True)  # as the writer was killed now
    finally:
        conn.close()
    aca0 = root / "aca0"
    (aca0 / f"{INDEX_NAME}-shm").unlink()
    assert (aca0 / f"{INDEX_NAME}-wal").stat().st_size > 0
    _chmod_tree(root, writable=False)  # read-only to this process too when not root
    got, logged = _as_nobody(lambda: _l0_files(aca0))
    assert got == shared["reads"]["get_files"]
    assert len(logged) == 1 and "mica check --repair" in logged[0], logged


def _slot_data_twice(aca0: Path, want: np.ma.MaskedArray) -> list[str]:
    """`SLOT`'s rows over `READ` read twice by the unprivileged reader, each equal to
    ``want``; what it logged."""

    def twice() -> Results:
        first = aca_l0.get_slot_data(*READ, SLOT, data_root=aca0)
        return {"get_slot_data": aca_l0.get_slot_data(*READ, SLOT, data_root=aca0), "1": first}

    got, logged = _as_nobody(twice)
    _assert_same(got, {"get_slot_data": want, "1": want})
    return logged


def test_dirty_partition_served_from_files(shared):
    """(e) A partition whose chunk is out of date is read from its files, and the reader
    names once the command that rebuilds it; it repairs nothing."""
    root = shared["base"] / "dirty"
    shutil.copytree(shared["archive"], root, symlinks=True)
    aca0 = root / "aca0"
    conn = sqlite3.connect(aca0 / INDEX_NAME, isolation_level=None)
    try:
        rows = conn.execute("SELECT * FROM archfiles WHERE slot = ?", (SLOT,))
        names = [c[0] for c in rows.description]
        parts = {p for row in rows for p in L0.partitions(dict(zip(names, row)))}
        conn.executemany("INSERT INTO dirty_parts (part) VALUES (?)", [(p,) for p in parts])
    finally:
        conn.close()  # the last connection: checkpointed, -wal and -shm removed
    _chmod_tree(root, writable=False)
    try:
        before = _listing(root)
        logged = _slot_data_twice(aca0, shared["reads"]["get_slot_data"])
        assert len(logged) == 1, logged
        assert f"mica rebuild store --data-root {aca0}" in logged[0]
        assert _listing(root) == before
    finally:
        _chmod_tree(root, writable=True)


def _damage_images(aca0: Path) -> tuple[str, Path]:
    """A byte flipped in every stored block of the images of `SLOT`'s full-view chunk; its
    partition and file."""
    with ArchiveIndex(L0, aca0, readonly=True) as index:
        rows = index.conn.execute("SELECT part, path FROM store_chunks").fetchall()
    ((part, rel),) = [(p, r) for p, r in rows if p.startswith(f"{SLOT}/")]
    path = aca0 / rel
    with h5py.File(path, "r") as h5:
        dsid = h5["IMGRAW"].id
        blocks = [dsid.get_chunk_info(k) for k in range(dsid.get_num_chunks())]
    with open(path, "r+b") as fh:
        for info in blocks:
            fh.seek(info.byte_offset + info.size // 2)
            byte = fh.read(1)[0]
            fh.seek(-1, os.SEEK_CUR)
            fh.write(bytes([byte ^ 0x5A]))
    return part, path


def test_damaged_chunk_served_from_files(shared):
    """A store chunk failing its digests on a read-only archive: the unprivileged reader
    serves the files (the owner's answer), logs once the command that mends the chunk and
    writes nothing; ``mica check --verify-store`` names the chunk there too."""
    root = shared["base"] / "damaged"
    shutil.copytree(shared["archive"], root, symlinks=True)
    aca0 = root / "aca0"
    part, chunk = _damage_images(aca0)
    _chmod_tree(root, writable=False)
    try:
        before = _listing(root)
        logged = _slot_data_twice(aca0, shared["reads"]["get_slot_data"])
        assert len(logged) == 1 and f"damaged store chunk: {chunk}: /IMGRAW" in logged[0]
        assert f"'mica --archive {root} check --verify-store --repair'" in logged[0]
        (code, output), logged = _as_nobody(lambda: _cli(root, "check", "--verify-store"))
        assert code == 1 and f"problem: store chunk {part} is damaged: " in output, output
        assert "check --verify-store --repair" in output and not logged
        assert _listing(root) == before
    finally:
        _chmod_tree(root, writable=True)


def test_check_takes_no_lock_without_repair(tmp_path):
    """``mica check`` without ``--repair`` leaves no lock file where no update ran, and
    refuses while an update holds the lock (with ``--repair`` it takes it as before)."""
    from mica.engine.lock import ArchiveBusy, UpdateLock, check_lock

    with check_lock(tmp_path, repair=False):
        pass
    assert not (tmp_path / "update.lock").exists()
    with UpdateLock(tmp_path):
        with pytest.raises(ArchiveBusy), check_lock(tmp_path, repair=False):
            pass
        with pytest.raises(ArchiveBusy), check_lock(tmp_path, repair=True):
            pass
    with check_lock(tmp_path, repair=False):  # released: passes again
        pass
    assert stat.S_ISREG((tmp_path / "update.lock").stat().st_mode)


def test_read_without_locks_notices_a_writer(shared, monkeypatch):
    """An index opened ``immutable=1`` tells when its file changed since (a writer began and
    checkpointed under the read), so `snapshot_read` reads again."""

    root = shared["base"] / "touched"
    shutil.copytree(shared["archive"], root, symlinks=True)
    db = root / "aca0" / INDEX_NAME
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)  # as a reader who may not
    with ArchiveIndex(L0, root / "aca0", readonly=True) as index:
        assert index.immutable and not index.changed()
        st = db.stat()
        os.utime(db, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
        assert index.changed()


def test_owner_reads_a_quiet_index_alone_then_follows_a_writer(shared):
    """A snapshot read (which reads again when the file changed) by a reader who may write
    the index but finds its ``-wal`` empty reads the file alone (``immutable=1``: no ``-wal``
    nor ``-shm`` made, nothing written); a reader that does not read again never does; once
    a writer's commit waits in the ``-wal``, the next snapshot read follows it."""
    root = shared["base"] / "quiet"
    shutil.copytree(shared["archive"], root, symlinks=True)
    aca0 = root / "aca0"
    conn = sqlite3.connect(aca0 / INDEX_NAME, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()  # the last connection: its -wal and -shm removed
    close_kept_readers()
    before = _listing(root)
    assert not [name for name in before if name.endswith(("-wal", "-shm"))]
    want = shared["reads"]["get_slot_data"]
    _assert_same({"x": aca_l0.get_slot_data(*READ, SLOT, data_root=aca0)}, {"x": want})
    index = ArchiveIndex.open_for_reading(L0, aca0, rechecked=True)  # the read's kept one
    assert index.immutable and index.kept
    assert _listing(root) == before
    assert not ArchiveIndex.open_for_reading(L0, aca0).immutable  # (it replaces the kept one)
    close_kept_readers()
    conn = sqlite3.connect(aca0 / INDEX_NAME, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_autocheckpoint=0")  # the commit stays in the -wal
        gone = _l0_files(aca0, [SLOT])[0]
        conn.execute("DELETE FROM archfiles WHERE filename = ?", (Path(gone).name,))
        got = _l0_files(aca0, [SLOT])
        assert not ArchiveIndex.open_for_reading(L0, aca0, rechecked=True).immutable
    finally:
        conn.close()
        close_kept_readers()
    assert got and gone not in got


def test_update_leaves_its_commits_in_the_index_file_beside_a_reader(tmp_path):
    """An update that ends while a reader is still connected (one this process keeps for
    its next read, or another user's) leaves every commit in ``archfiles.db3`` itself, its
    ``-wal`` empty: SQLite merges the log only as the last connection closes, and a reader's
    read-only close cannot. A reader without write access that finds the ``-wal`` without
    its ``-shm``, and a copy of the file alone, would not see those rows."""
    root = tmp_path / "archive"
    code, output = _cli(root, "update", "obspar", "--obsid", "10369", "--source", "sim")
    assert code == 0, output
    index = root / "obspar" / INDEX_NAME
    try:
        assert obspar.get_obspar(10369, data_root=index.parent)["obs_id"] == "10369"  # kept
        code, output = _cli(root, "update", "obspar", "--obsid", "10370", "--source", "sim")
        assert code == 0, output
        assert Path(f"{index}-wal").stat().st_size == 0
    finally:
        close_kept_readers()
    alone = sqlite3.connect(f"file:{index}?mode=ro&immutable=1", uri=True)
    try:
        obsids = alone.execute("SELECT DISTINCT obsid FROM archfiles ORDER BY obsid").fetchall()
    finally:
        alone.close()
    assert obsids == [(10369,), (10370,)]


@pytest.mark.skipif(not IS_ROOT, reason="a reader of another user needs root")
def test_reader_update_is_refused_naming_the_owner(shared):
    """A reader who runs an update of the shared archive gets one line, exit status 1: the
    write it was refused, and that the archive's owner re-runs it; nothing changes."""
    archive = shared["archive"]
    before = _listing(archive)
    update = ("update", "obspar", "--obsid", "10370", "--source", "sim", "--quiet")
    (code, output), _ = _as_nobody(lambda: _cli(archive, *update))
    assert code == 1, output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "permission denied" in errors[0], output
    assert "re-run the same command as a user who may write it (the archive's owner)" in output
    assert _listing(archive) == before
