"""Nothing outside the archive is touched through a link, and files get the modes their owner
set: the umask (or ``MICA_UMASK``) for new files and folders, the replaced file's mode for a
rewritten one."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mica.engine.atomic import write_atomic
from mica.engine.derived import update_derived
from mica.engine.index import INDEX_NAME
from mica.engine.index_check import check_archive
from mica.engine.ingest import REJECTED_DIR, ingest_files, quarantine
from mica.engine.obsid_update import update_obsid_archive
from mica.engine.time_update import update_archive
from mica.errors import RejectedFile
from mica.products.aca_l0 import L0
from mica.products.asp_l1 import ASP_L1
from mica.products.obspar import OBSPAR
from mica.stats.acq_product import ACQ_STATS
from mica.vv.product import VV

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


# --- modes --------------------------------------------------------------------------------
UMASKS = [0o022, 0o002, 0o077]


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _wrong_modes(root: Path, mask: int, skip: tuple[str, ...] = (REJECTED_DIR,)) -> dict:
    """The files and folders under ``root`` (itself included) whose mode is not a new one's
    under ``mask`` (links have none)."""
    wrong = {}
    for path in [root, *root.rglob("*")]:
        if path.is_symlink() or path.relative_to(root).parts[:1] in [(s,) for s in skip]:
            continue
        want = (0o777 if path.is_dir() else 0o666) & ~mask
        got = stat.S_IMODE(path.lstat().st_mode)
        if got != want:
            wrong[str(path.relative_to(root))] = oct(got)
    return wrong


def _l0_source(tmp_path: Path, real_l0_dir: Path, slot: int, first: int, last: int) -> Path:
    """A dir: source of some of the real L0 files of one slot, private to their owner."""
    src = tmp_path / f"src-{first}-{last}"
    src.mkdir()
    for path in sorted(real_l0_dir.glob(f"*_{slot}_img0.fits.gz"))[first:last]:
        shutil.copyfile(path, src / path.name)
        (src / path.name).chmod(0o600)  # archived as the umask says, not as the source
    return src


def _update_l0(root: Path, source: Path) -> None:
    report = update_archive(L0, f"dir:{source}", "2003:214", "2003:216", data_root=root)
    assert report.ingested and not report.rejected, report.summary()


@pytest.mark.parametrize("mask", UMASKS)
def test_l0_update_follows_the_umask(tmp_path, real_l0_dir, mask):
    root = tmp_path / "aca0"
    with _umask(mask):
        _update_l0(root, _l0_source(tmp_path, real_l0_dir, 0, 0, 5))
    assert (root / INDEX_NAME).exists() and list((root / "store").rglob("*.h5"))
    assert _wrong_modes(root, mask) == {}


@pytest.mark.parametrize("mask", UMASKS)
def test_obspar_update_follows_the_umask(tmp_path, mask):
    root = tmp_path / "obspar"
    with _umask(mask):
        report = update_obsid_archive(OBSPAR, "sim", [7000], data_root=root)
    assert report.ok, report.summary()
    assert _wrong_modes(root, mask) == {}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Aspect L1 and obspar of obsid 5438 (simulated), the inputs of V&V and acq-stats."""
    root = tmp_path_factory.mktemp("inputs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MICA_SIM_L1_DECIMATE", "20")
        for product in (ASP_L1, OBSPAR):
            report = update_obsid_archive(product, "sim", [5438], data_root=root / product.subdir)
            assert report.ok, report.summary()
    return root


@pytest.mark.parametrize("mask", UMASKS)
def test_asp_l1_update_follows_the_umask(tmp_path, inputs, mask):
    root = tmp_path / "asp1"
    with _umask(mask):
        report = update_obsid_archive(ASP_L1, f"dir:{inputs / 'asp1'}", [5438], data_root=root)
    assert report.ok and report.ingested, report.summary()
    assert _wrong_modes(root, mask) == {}


def _derived_archive(tmp_path: Path, inputs: Path) -> Path:
    archive = tmp_path / "archive"
    for name in ("asp1", "obspar"):
        shutil.copytree(inputs / name, archive / name, symlinks=True)
    return archive


@pytest.mark.parametrize("mask", UMASKS)
def test_vv_update_follows_the_umask(tmp_path, inputs, mask, monkeypatch):
    """V&V revision folders were always 0775: now the umask's."""
    monkeypatch.setattr(VV, "plots", False)
    archive = _derived_archive(tmp_path, inputs)
    with _umask(mask):
        report = update_derived(VV, archive=archive, data_root=archive / "vv")
    assert report.ok and report.done, report.summary()
    assert _wrong_modes(archive / "vv", mask) == {}


@pytest.mark.parametrize("mask", UMASKS)
def test_acq_stats_update_follows_the_umask(tmp_path, inputs, mask):
    archive = _derived_archive(tmp_path, inputs)
    with _umask(mask):
        report = update_derived(
            ACQ_STATS, archive=archive, data_root=archive / "acq_stats", obsids=[5438]
        )
    assert report.ok and report.done, report.summary()
    assert _wrong_modes(archive / "acq_stats", mask) == {}


def _group_writable(root: Path) -> dict[str, int]:
    """Make every file and folder under ``root`` group-writable, as an owner sharing it
    would; their modes."""
    modes = {}
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o775 if path.is_dir() else 0o664)
            modes[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return modes


def test_rewritten_files_keep_their_mode(tmp_path, real_l0_dir, inputs):
    """An update under umask 077 rewrites the store chunks of the partition it adds to and
    the acq-stats table: they keep the mode the owner gave them; new files take the umask's."""
    root = tmp_path / "aca0"
    with _umask(0o022):
        _update_l0(root, _l0_source(tmp_path, real_l0_dir, 0, 0, 2))
    before = _group_writable(root)
    with _umask(0o077):
        _update_l0(root, _l0_source(tmp_path, real_l0_dir, 0, 2, 5))
    for name, mode in before.items():
        path = root / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == mode, name
    chunks = [p for p in (root / "store").rglob("*.h5") if str(p.relative_to(root)) not in before]
    assert chunks  # the partitions' chunks were rewritten (under new names)
    for chunk in chunks:  # ... each replacing a chunk of the owner's mode
        assert stat.S_IMODE(chunk.stat().st_mode) == 0o664, chunk
    new_files = [p for p in (root / "2003").rglob("*.gz") if str(p.relative_to(root)) not in before]
    assert len(new_files) == 3
    assert {stat.S_IMODE(p.stat().st_mode) for p in new_files} == {0o600}

    archive = _derived_archive(tmp_path, inputs)
    table = archive / "acq_stats" / "acq_stats.h5"
    with _umask(0o022):
        update_derived(ACQ_STATS, archive=archive, data_root=table.parent, obsids=[5438])
    table.chmod(0o664)
    inode = table.stat().st_ino
    with _umask(0o077):  # an obsid without inputs: recorded as failed, the table rewritten
        update_derived(ACQ_STATS, archive=archive, data_root=table.parent, obsids=[7000])
    assert table.stat().st_ino != inode
    assert stat.S_IMODE(table.stat().st_mode) == 0o664


def test_mica_umask_sets_the_modes_of_a_shared_archive(tmp_path, real_l0_dir, monkeypatch):
    """``MICA_UMASK=002`` under a private process umask: the group may read and write what
    the update writes; the process's umask is its own again afterwards."""
    monkeypatch.setenv("MICA_UMASK", "002")
    root = tmp_path / "aca0"
    with _umask(0o077):
        _update_l0(root, _l0_source(tmp_path, real_l0_dir, 0, 0, 5))
        report = update_obsid_archive(OBSPAR, "sim", [7000], data_root=tmp_path / "obspar")
        assert report.ok
        assert os.umask(0o077) == 0o077  # restored after the update
    assert _wrong_modes(root, 0o002) == {}
    assert _wrong_modes(tmp_path / "obspar", 0o002) == {}
