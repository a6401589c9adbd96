"""The one atomic write of the engine: temp name beside the target, fsync, rename, fsync folder.

A reader (or a crash) sees either the old content or the new one, never a half-written file:
the data reach the disk before the rename, and the rename before the function returns.

Modes (the one rule of every writer): a file that replaces another keeps that file's mode,
so an update never takes away what the archive's owner allowed; a new file or folder gets
``666`` or ``777`` less the archive's umask (`archive_umask`: ``MICA_UMASK``, else the
process's), set explicitly, so that workers on other machines write the same modes.

Nothing outside the archive is touched through a link: a temporary file is created anew
(``O_EXCL | O_NOFOLLOW``, a leftover or a link at its name removed first), a rename moves a
link itself, and the helpers for refused files (`real_folder`, `move_aside`, `write_new`,
`set_mode`) never follow one.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from mica import config
from mica.engine.fsync import fsync_dir, fsync_file

_UMASK_LOCK = threading.Lock()


def process_umask() -> int:
    """This process's umask (read from ``/proc``; else set and restored under a lock)."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def archive_umask() -> int:
    """The umask of what the archive writes: ``MICA_UMASK`` when set, else the process's."""
    mask = config.umask()
    return process_umask() if mask is None else mask


def new_mode(folder: bool = False) -> int:
    """The mode of a new file (``666``) or folder (``777``) less `archive_umask`."""
    return (0o777 if folder else 0o666) & ~archive_umask()


def mode_for(dest: Path) -> int:
    """The mode of a file written at ``dest``: that of the regular file it replaces, else
    `new_mode` (a link there is not followed)."""
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        return new_mode()
    return stat.S_IMODE(st.st_mode) & 0o777 if stat.S_ISREG(st.st_mode) else new_mode()


def make_folders(folder: Path) -> Path:
    """``folder`` and its missing parents, each new one with `new_mode` (existing folders
    keep theirs)."""
    folder = Path(folder)
    missing = []
    for path in (folder, *folder.parents):
        if os.path.isdir(path):
            break
        missing.append(path)
    folder.mkdir(parents=True, exist_ok=True)
    mode = new_mode(folder=True)
    for path in missing:
        os.chmod(path, mode)  # just made by this process: a folder, not a link
    return folder


def make_file(path: Path) -> None:
    """An empty file at ``path`` with `new_mode`, unless something is there already: for
    writers that create their files with a fixed mode (SQLite creates a database ``644``
    whatever the umask; its ``-wal`` and ``-shm`` then take the database's mode)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        return
    os.chmod(path, new_mode())  # just made by this process: a file, not a link


def set_mode(path: Path, mode: int) -> None:
    """Give the regular file ``path`` the mode ``mode`` without following a link (a link,
    or anything but a regular file, is left as it is)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # a link (ELOOP), or gone
        return
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def partial_name(dest: Path) -> Path:
    """The temporary name beside ``dest`` (``.<name>.partial``; recovery removes leftovers)."""
    return dest.with_name("." + dest.name + ".partial")


def _create(path: Path, mode: int) -> int:
    """A descriptor of a new file at ``path`` with mode ``mode``: whatever was there (a
    killed write's leftover, a link planted there) is removed first, and a link is never
    followed."""
    Path(path).unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, mode)  # exactly: the process's umask may differ from the archive's
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_atomic(
    dest: Path, write: Callable[[BinaryIO], Any], replaces: Path | None = None
) -> Path:
    """Write through ``write(fh)`` to the temporary name, fsync, rename, fsync the folder.

    The mode is `mode_for` ``dest``, or ``replaces``: the file this one replaces under
    another name (a store chunk's new generation), whose mode it keeps."""
    dest = Path(dest)
    make_folders(dest.parent)
    tmp = partial_name(dest)
    try:
        with open(_create(tmp, mode_for(replaces or dest)), "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)
    return dest


def write_bytes_atomic(dest: Path, data: bytes, durable: bool = True) -> Path:
    """Write ``data`` to ``dest`` atomically and durably; returns ``dest``.

    ``durable=False`` skips the fsyncs, for files written into a staging folder that ingest
    validates (and places durably) anyway, such as the simulator's output.
    """
    if durable:
        return write_atomic(dest, lambda fh: fh.write(data))
    dest = Path(dest)
    tmp = partial_name(dest)
    with open(_create(tmp, mode_for(dest)), "wb") as fh:
        fh.write(data)
    os.replace(tmp, dest)
    return dest


def replace_durable(tmp: Path, dest: Path) -> Path:
    """Move a file another writer made complete at ``tmp`` (an HDF5 table, a verified
    download, a staged file) into place: give it the mode of the file it replaces (else a
    new file's), fsync it, rename it over ``dest``, fsync the folder."""
    set_mode(tmp, mode_for(dest))
    fsync_file(tmp)
    os.replace(tmp, dest)
    fsync_dir(Path(dest).parent)
    return Path(dest)


def copy_atomic(src: Path, dest: Path) -> Path:
    """Copy ``src`` to ``dest`` atomically and durably (a half copy is never in place)."""

    def copy(fout: BinaryIO) -> None:
        with open(src, "rb") as fin:
            shutil.copyfileobj(fin, fout, 1 << 20)

    return write_atomic(dest, copy)


def write_file_durable(path: Path, data: bytes) -> None:
    """Write a file inside a folder that is itself renamed into place later (no own rename),
    with `new_mode`."""
    with open(_create(path, new_mode()), "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_folder_atomic(dest: Path, files: dict[str, bytes]) -> Path:
    """Make folder ``dest`` holding ``files`` (name -> bytes) appear whole or not at all.

    The files go into ``.<name>.tmp-<pid>`` beside ``dest``, are fsynced, and the folder is
    renamed to ``dest``; an existing ``dest`` is moved to ``.<name>.old-<pid>`` first and
    removed once replaced. A crash leaves only those dot-names (see `is_leftover`).
    """
    dest = Path(dest)
    root = make_folders(dest.parent)
    tmp = root / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    old = None
    try:  # a folder rebuilt keeps its mode and its files' (modes of rewritten files)
        os.chmod(tmp, folder_mode(dest))
        for name, data in files.items():
            write_file_durable(tmp / name, data)
            set_mode(tmp / name, mode_for(dest / name))
        fsync_dir(tmp)
        if dest.exists():  # being rebuilt: keep the old one until replaced
            old = root / f".{dest.name}.old-{os.getpid()}"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(dest, old)
        os.rename(tmp, dest)
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return dest


def folder_mode(folder: Path) -> int:
    """The mode of a folder written at ``folder``: the existing one's, else a new folder's."""
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return new_mode(folder=True)
    return stat.S_IMODE(st.st_mode) if stat.S_ISDIR(st.st_mode) else new_mode(folder=True)


_LEFTOVER_RE = re.compile(r"^\.(?P<name>.+)\.(tmp|old)-\d+$")


def is_leftover(name: str) -> str | None:
    """The target name of a folder `write_folder_atomic` left when killed (else None)."""
    match = _LEFTOVER_RE.match(name)
    return match.group("name") if match else None


def real_folder(path: Path) -> Path:
    """``path`` as a folder of its own, made when missing: a link found there, which would
    lead what is written into it out of the archive, is moved aside first (the link itself,
    renamed ``<name>.link-<seconds>``)."""
    path = Path(path)
    if path.is_symlink():
        os.replace(path, path.with_name(f"{path.name}.link-{int(time.time())}"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def move_aside(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest`` as it is: a link moves as the link (never followed); a link
    or file at ``dest`` is replaced, not written through."""
    try:
        os.replace(src, dest)
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
        Path(dest).unlink(missing_ok=True)  # another file system: copied (a link as a link)
        shutil.move(str(src), str(dest))


def write_new(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write a small file anew, replacing whatever is at ``path`` (a file, a link: never
    written through), with ``mode`` (default `new_mode`)."""
    with open(_create(path, new_mode() if mode is None else mode), "wb") as fh:
        fh.write(data)
