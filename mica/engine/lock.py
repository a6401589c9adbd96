"""One updater per product at a time: an advisory lock file in the product folder."""

from __future__ import annotations

import fcntl
import os
import time
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
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                    os.close(fd)
                    raise ArchiveBusy(
                        f"another update of {self.path.parent} is running (pid {holder}); "
                        "try again when it has finished"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None
