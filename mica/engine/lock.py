"""One updater per product at a time: an advisory lock file in the product folder.

While an update holds it, the process's umask is ``MICA_UMASK`` when that is set
(`mica.config.umask`), so that every file and folder the update writes, by whatever library,
gets the archive's modes (`mica.engine.atomic` sets them explicitly too).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mica.config import umask
from mica.engine.atomic import make_folders, new_mode
from mica.errors import ArchiveBusy

#: How long taking the lock retries against a shared lock (a reader's probe, `refuse_if_busy`:
#: microseconds) before it counts as another update's (s)
PROBE_GRACE = 0.05
_UMASK_LOCK = threading.Lock()
#: locks held in this process while ``MICA_UMASK`` is applied, and the umask before them
_UMASK_HELD: list[int] = []


def _apply_umask() -> bool:
    """Make ``MICA_UMASK`` the process's umask (when set); True when it was applied."""
    mask = umask()
    if mask is None:
        return False
    with _UMASK_LOCK:
        before = os.umask(mask)
        _UMASK_HELD.append(before if not _UMASK_HELD else _UMASK_HELD[0])
    return True


def _restore_umask() -> None:
    """Give the process back its umask when the last lock applying ``MICA_UMASK`` goes."""
    with _UMASK_LOCK:
        before = _UMASK_HELD.pop()
        if not _UMASK_HELD:
            os.umask(before)


class UpdateLock:
    """``fcntl`` lock released by the kernel when the holder dies, even by kill -9."""

    def __init__(self, root: Path, wait: float = 0.0):
        self.path = Path(root) / "update.lock"
        self.wait = wait
        self.fd: int | None = None
        self._umask = False

    def __enter__(self) -> UpdateLock:
        self._umask = _apply_umask()
        try:
            return self._take()
        except BaseException:
            self.__exit__()
            raise

    def _take(self) -> UpdateLock:
        make_folders(self.path.parent)
        if self.path.is_symlink():  # written below: never through a link
            self.path.unlink()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, new_mode())
        start = time.monotonic()
        # a reader's probe (`refuse_if_busy`) holds a shared lock for microseconds: tried
        # again within `PROBE_GRACE` before the lock counts as another update's
        deadline = start + max(self.wait, PROBE_GRACE)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                if now >= deadline:
                    err = self._busy(fd)
                    os.close(fd)
                    raise err from None
                step = 0.2 if now - start >= PROBE_GRACE else PROBE_GRACE / 10
                time.sleep(min(step, deadline - now))
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def stamped(self) -> bool:
        """Whether the lock file holds an update's pid: an update has held it (an empty one
        is being taken, or was never held)."""
        try:
            return os.lstat(self.path).st_size > 0
        except OSError:
            return False

    def refuse_if_busy(self) -> None:
        """Raise `ArchiveBusy` when an update holds the lock now, without taking it (for a
        check that only reads): writes nothing, so it runs on a read-only archive or one of
        another user. A missing lock file (no update ever ran) or a mount without locks
        tells nothing and passes."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:  # none, or a link (not an update's lock)
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
        if self._umask:
            _restore_umask()
            self._umask = False


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
