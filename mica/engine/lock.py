"""One updater per product at a time: an advisory lock file in the product folder."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mica.errors import ArchiveBusy


class UpdateLock:
    """``fcntl`` lock released by the kernel when the holder dies, even by kill -9."""

    def __init__(self, root: Path, wait: float = 0.0):
        self.path = Path(root) / "update.lock"
        self.wait = wait
        self.fd: int | None = None

    def __enter__(self) -> UpdateLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o664)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    err = self._busy(fd)
                    os.close(fd)
                    raise err from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def refuse_if_busy(self) -> None:
        """Raise `ArchiveBusy` when an update holds the lock now, without taking it (for a
        check that only reads): writes nothing, so it runs on a read-only archive or one of
        another user. A missing lock file (no update ever ran) or a mount without locks
        tells nothing and passes."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            # shared and released at once: only an update's exclusive lock conflicts
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise self._busy(fd) from None
        except OSError:  # no locks on this mount
            pass
        finally:
            os.close(fd)

    def _busy(self, fd: int) -> ArchiveBusy:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
        return ArchiveBusy(
            f"another update of {self.path.parent} is running (pid {holder}); "
            "try again when it has finished"
        )

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


@contextmanager
def check_lock(root: Path, repair: bool) -> Iterator[None]:
    """What a check of ``root`` holds: the update lock when it repairs; when it only reads,
    nothing (it writes nothing, so it runs on a read-only archive or one of another user),
    after refusing while an update runs (its files in flight would read as problems)."""
    if repair:
        with UpdateLock(root):
            yield
    else:
        UpdateLock(root).refuse_if_busy()
        yield
