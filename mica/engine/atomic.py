"""The one atomic write of the engine: temp name beside the target, fsync, rename, fsync folder.

A reader (or a crash) sees either the old content or the new one, never a half-written file:
the data reach the disk before the rename, and the rename before the function returns.

Nothing outside the archive is touched through a link: a temporary file is created anew
(``O_EXCL | O_NOFOLLOW``, a leftover or a link at its name removed first), a rename moves a
link itself, and the helpers for refused files (`real_folder`, `write_new`,
`make_private`) never follow one.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from mica.engine.fsync import fsync_dir, fsync_file


def partial_name(dest: Path) -> Path:
    """The temporary name beside ``dest`` (``.<name>.partial``; recovery removes leftovers)."""
    return dest.with_name("." + dest.name + ".partial")


def _create(path: Path, mode: int = 0o666) -> int:
    """A descriptor of a new file at ``path``: whatever was there (a killed write's leftover,
    a link planted there) is removed first, and a link is never followed."""
    Path(path).unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(path, flags, mode)


def write_atomic(dest: Path, write: Callable[[BinaryIO], Any]) -> Path:
    """Write through ``write(fh)`` to the temporary name, fsync, rename, fsync the folder."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(dest)
    try:
        with open(_create(tmp), "wb") as fh:
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
    with open(_create(tmp), "wb") as fh:
        fh.write(data)
    os.replace(tmp, dest)
    return dest


def replace_durable(tmp: Path, dest: Path) -> Path:
    """Move a file another writer made complete at ``tmp`` (an HDF5 chunk, a verified
    download, a staged file) into place: fsync it, rename it over ``dest``, fsync the folder."""
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
    """Write a file inside a folder that is itself renamed into place later (no own rename)."""
    with open(_create(path), "wb") as fh:
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
    root = dest.parent
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    old = None
    try:
        for name, data in files.items():
            write_file_durable(tmp / name, data)
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


def make_private(path: Path) -> None:
    """Make a regular file readable by its owner only (0600) without following a link: a
    link, or anything but a regular file, is left as it is (its target untouched)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # a link (ELOOP), or gone
        return
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def write_new(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Write a small file anew, replacing whatever is at ``path`` (a file, a link: never
    written through); ``mode`` as `os.open` takes it (the umask applies)."""
    with open(_create(path, mode), "wb") as fh:
        fh.write(data)
