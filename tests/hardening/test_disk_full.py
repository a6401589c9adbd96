"""A full disk or a read-only archive ends an update with one message and exit status 1.

Each test mounts a small tmpfs (root only; skipped with the reason otherwise), runs the real
``mica update aca-l0`` in a subprocess (so a segfault shows as -11, a hang as a timeout),
then gives the space or the write permission back and re-runs: the archive completes,
`check_archive` is clean and the store serves what the files hold.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from mica.archive import aca_l0
from mica.engine.index import ArchiveIndex
from mica.engine.index_check import check_archive
from mica.engine.time_update import update_archive
from mica.errors import ArchiveWriteError, MicaError
from mica.products.aca_l0 import L0
from tests.conftest import REALDATA

REAL_DATA = REALDATA / "aca_l0_2003"
SPAN = ("2012:001:00:00:00", "2012:001:06:00:00")  # about 10 MB of simulated L0
TIMEOUT = 600  # seconds: a hang fails the test instead of blocking the suite


@pytest.fixture
def tmpfs(tmp_path: Path):
    """A mounted 30 MB tmpfs; unmounted afterwards."""
    where = tmp_path / f"mnt-{uuid.uuid4().hex[:8]}"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=30m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(path: Path) -> None:
    """Take every free byte of ``path``'s disk."""
    with open(path, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * (1 << 20))
                fh.flush()
        except OSError:
            pass


def _remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)


def _mica(*args: str, archive: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if archive is not None:
        env["MICA_ARCHIVE"] = str(archive)
    return subprocess.run(
        [str(Path(sys.executable).parent / "mica"), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
    )


def _assert_clean_failure(run: subprocess.CompletedProcess, root: Path, reason: str) -> None:
    """Exit 1 (not a signal), one message naming the folder and the fix, no traceback."""
    assert run.returncode == 1, (run.returncode, run.stderr[-3000:])
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    error = [line for line in run.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1, run.stderr[-3000:]
    assert f"cannot write the archive at {root}" in error[0]
    assert reason in error[0] and "re-run the same command" in error[0]


def _assert_complete(root: Path, start: str, stop: str) -> None:
    report = check_archive(L0, data_root=root)
    assert report.ok and report.files > 0, report.summary()
    with ArchiveIndex(L0, root) as index:
        assert index.dirty_parts() == [] and index.pending() == []
    for slot in (0, 3):
        stored = aca_l0.get_slot_data(start, stop, slot, data_root=root)
        direct = aca_l0.get_slot_data(start, stop, slot, data_root=root, use_store=False)
        assert len(stored) > 0
        assert stored.dtype == direct.dtype
        for name in stored.dtype.names:
            np.testing.assert_array_equal(stored[name], direct[name], err_msg=name)


def test_full_disk_update_exits_1_then_completes(tmpfs: Path) -> None:
    root = tmpfs / "aca0"
    update = ["update", "aca-l0", "--source", "sim", "--start", SPAN[0], "--stop", SPAN[1]]
    update += ["--days-at-once", "0.125"]  # 3-hour chunks: the first one fits
    _remount(tmpfs, "size=10m")
    full = _mica(*update, "--data-root", str(root), "--quiet")
    _assert_clean_failure(full, root, "the disk is full")
    with ArchiveIndex(L0, root) as index:
        archived = len(index.filenames())
    assert archived > 0  # what fitted is archived, not rolled back

    # mica check on the full disk: a report or one message, never a traceback
    _fill(tmpfs / "filler")
    checked = _mica("check", "--repair", archive=tmpfs)
    assert checked.returncode in (0, 1) and "Traceback" not in checked.stderr, checked.stderr
    (tmpfs / "filler").unlink()

    _remount(tmpfs, "size=200m")
    again = _mica(*update, "--data-root", str(root), "--quiet")
    assert again.returncode == 0, again.stderr[-3000:]
    _assert_complete(root, *SPAN)
    with ArchiveIndex(L0, root) as index:
        assert len(index.filenames()) > archived


def test_read_only_archive_exits_1_then_completes(tmpfs: Path) -> None:
    files = sorted(REAL_DATA.glob("*.fits.gz"))
    first, rest = tmpfs / "up1", tmpfs / "up2"
    for folder, part in ((first, files[:12]), (rest, files)):
        folder.mkdir()
        for path in part:
            (folder / path.name).write_bytes(path.read_bytes())
    root = tmpfs / "aca0"
    span = ["--start", "2003:215", "--stop", "2003:216", "--data-root", str(root), "--quiet"]
    built = _mica("update", "aca-l0", "--source", f"dir:{first}", *span)
    assert built.returncode == 0, built.stderr[-3000:]

    _remount(tmpfs, "ro")
    try:
        refused = _mica("update", "aca-l0", "--source", f"dir:{rest}", *span)
        _assert_clean_failure(refused, root, "read-only")
        # the Python API: the same condition as one ArchiveWriteError naming the folder
        t0, t1 = (L0.name_time(p.name) for p in (files[0], files[-1]))
        with pytest.raises(ArchiveWriteError, match="read-only") as raised:
            update_archive(L0, f"dir:{rest}", t0 - 10, t1 + 10, data_root=root)
        assert raised.value.folder == root and isinstance(raised.value, (MicaError, OSError))
        checked = _mica("check", "--repair", archive=tmpfs)
        assert checked.returncode in (0, 1) and "Traceback" not in checked.stderr
        # publishing it (its manifests written under the archive) is refused the same way
        _assert_clean_failure(_mica("publish", archive=tmpfs), tmpfs, "read-only")
    finally:
        _remount(tmpfs, "rw")

    again = _mica("update", "aca-l0", "--source", f"dir:{rest}", *span)
    assert again.returncode == 0, again.stderr[-3000:]
    with ArchiveIndex(L0, root) as index:
        assert len(index.filenames()) == len(files)
    _assert_complete(root, "2003:215", "2003:216")


def test_store_that_does_not_fit_leaves_ingest_done_and_partitions_dirty(tmpfs: Path) -> None:
    # 9 MB: the 1.6 MB of real files fit, a store chunk would eat the index's reserve
    _remount(tmpfs, "size=9m")
    files = sorted(REAL_DATA.glob("*.fits.gz"))
    up = tmpfs / "up"
    up.mkdir()
    for path in files:
        (up / path.name).write_bytes(path.read_bytes())
    root = tmpfs / "aca0"
    t0, t1 = (L0.name_time(p.name) for p in (files[0], files[-1]))
    with pytest.warns(RuntimeWarning, match="not written.*the disk is full"):
        report = update_archive(L0, f"dir:{up}", t0 - 10, t1 + 10, data_root=root)
    assert len(report.ingested) == len(files) and not report.rejected
    with ArchiveIndex(L0, root) as index:
        assert index.dirty_parts()  # served from the files until written
        assert index.pending() == []
    assert not list((root / "store").rglob("*.partial"))
    for slot in (0, 3):
        stored = aca_l0.get_slot_data("2003:215", "2003:216", slot, data_root=root)
        direct = aca_l0.get_slot_data("2003:215", "2003:216", slot, data_root=root, use_store=False)
        assert len(stored) > 0
        for name in stored.dtype.names:
            np.testing.assert_array_equal(stored[name], direct[name], err_msg=name)

    _remount(tmpfs, "size=100m")
    update_archive(L0, f"dir:{up}", t0 - 10, t1 + 10, data_root=root)  # writes the store
    _assert_complete(root, "2003:215", "2003:216")
