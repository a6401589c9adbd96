"""Nothing outside the archive is touched through a link, and files get the modes their owner
set: the umask (or ``MICA_UMASK``) for new files and folders, the replaced file's mode for a
rewritten one."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from mica.engine.atomic import write_atomic
from mica.engine.index_check import check_archive
from mica.engine.ingest import REJECTED_DIR, ingest_files, quarantine
from mica.errors import RejectedFile
from mica.products.aca_l0 import L0

SLOT0 = "acaf176267165N001_0_img0.fits.gz"


def _state(path: Path) -> tuple[int, bytes]:
    """What must not change of a file outside the archive: its mode and content."""
    return stat.S_IMODE(os.stat(path).st_mode), path.read_bytes()


@pytest.fixture
def outside(tmp_path) -> Path:
    """A file outside the archive, as a link planted in it would point at (/etc/passwd)."""
    path = tmp_path / "outside" / "passwd"
    path.parent.mkdir()
    path.write_bytes(b"root:x:0:0::/root:/bin/sh\n")
    path.chmod(0o644)
    return path


@pytest.fixture
def l0(tmp_path, real_l0_archive) -> Path:
    root = tmp_path / "aca0"
    shutil.copytree(real_l0_archive, root, symlinks=True)
    return root


def test_check_repair_moves_a_planted_link_aside(l0, outside):
    before = _state(outside)
    link = l0 / "2003" / "215" / "acaf176267999N001_0_img0.fits.gz"
    link.symlink_to(outside)
    report = check_archive(L0, data_root=l0)
    assert any("symbolic link 2003/215/" in p for p in report.problems), report.summary()
    report = check_archive(L0, data_root=l0, repair=True)
    assert any("its target is untouched" in r for r in report.repairs), report.summary()
    moved = l0 / REJECTED_DIR / link.name
    assert moved.is_symlink() and os.readlink(moved) == str(outside)
    assert not os.path.lexists(link)
    assert _state(outside) == before
    assert check_archive(L0, data_root=l0).ok


def test_check_repair_of_an_archived_file_replaced_by_a_link(l0, outside):
    """The link is moved aside (never read), its row dropped: a later update fetches the
    file again."""
    archived = l0 / "2003" / "215" / SLOT0
    archived.unlink()
    archived.symlink_to(outside)
    before = _state(outside)
    report = check_archive(L0, data_root=l0, repair=True)
    assert any(f"dropped row of missing {SLOT0}" in r for r in report.repairs), report.summary()
    assert (l0 / REJECTED_DIR / SLOT0).is_symlink()
    assert _state(outside) == before
    after = check_archive(L0, data_root=l0)
    assert after.ok and after.files == 35, after.summary()


def test_quarantine_of_a_link_moves_the_link(tmp_path, outside):
    """A refused file offered as a link is kept as the link: its target keeps its mode."""
    before = _state(outside)
    staged = tmp_path / "staging" / "acaf176267999N001_0_img0.fits.gz"
    staged.parent.mkdir()
    staged.symlink_to(outside)
    root = tmp_path / "aca0"
    report = ingest_files(L0, [staged], data_root=root, workers=1)
    assert len(report.rejected) == 1
    kept = root / REJECTED_DIR / staged.name
    assert kept.is_symlink()
    assert _state(outside) == before


def test_quarantine_never_writes_through_links_in_rejected(tmp_path, outside):
    root = tmp_path / "aca0"
    (root / REJECTED_DIR).mkdir(parents=True)
    reason = root / REJECTED_DIR / "a.fits.reason"
    reason.symlink_to(outside)
    before = _state(outside)
    quarantine(root, None, RejectedFile("a.fits", "refused"))
    assert not reason.is_symlink() and "refused" in reason.read_text()
    assert _state(outside) == before


def test_rejected_folder_as_a_link_is_moved_aside(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root = tmp_path / "aca0"
    root.mkdir()
    (root / REJECTED_DIR).symlink_to(elsewhere)
    src = root / "bad.fits"
    src.write_bytes(b"x")
    quarantine(root, src, RejectedFile("bad.fits", "refused"))
    assert list(elsewhere.iterdir()) == []
    assert not (root / REJECTED_DIR).is_symlink()
    assert (root / REJECTED_DIR / "bad.fits").read_bytes() == b"x"
    assert [p.name.startswith(f"{REJECTED_DIR}.link-") for p in root.iterdir()].count(True) == 1


def test_atomic_write_never_follows_a_planted_temporary_name(tmp_path, outside):
    before = _state(outside)
    dest = tmp_path / "archive" / "table.h5"
    dest.parent.mkdir()
    (dest.parent / f".{dest.name}.partial").symlink_to(outside)
    write_atomic(dest, lambda fh: fh.write(b"new"))
    assert dest.read_bytes() == b"new" and not dest.is_symlink()
    assert _state(outside) == before
