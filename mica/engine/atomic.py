"""The one atomic write of the engine: temp name beside the target, fsync, rename, fsync folder.

A reader (or a crash) sees either the old content or the new one, never a half-written file:
the data reach the disk before the rename, and the rename before the function returns.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from mica.engine.fsync import fsync_dir, fsync_file


def partial_name(dest: Path) -> Path:
    """The temporary name beside ``dest`` (``.<name>.partial``; recovery removes leftovers)."""
    return dest.with_name("." + dest.name + ".partial")


def write_atomic(dest: Path, write: Callable[[BinaryIO], Any]) -> Path:
    """Write through ``write(fh)`` to the temporary name, fsync, rename, fsync the folder."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(dest)
    try:
        with open(tmp, "wb") as fh:
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
    tmp.write_bytes(data)
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
    with open(path, "wb") as fh:
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
