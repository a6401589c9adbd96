"""Where the archive lives: ``data_root=``, else ``MICA_ARCHIVE``, else a per-user folder."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir


def archive_root(data_root: str | os.PathLike | None = None) -> Path:
    """The archive root folder (it holds one sub-folder per product).

    ``MICA_ARCHIVE`` may be a colon-separated list as in the original; the first element is
    used (the original's comment said first but its code took the last).
    """
    if data_root is not None:
        return Path(data_root).expanduser()
    env = os.environ.get("MICA_ARCHIVE")
    if env:
        first = [p for p in env.split(os.pathsep) if p]
        if first:
            return Path(first[0]).expanduser()
    return Path(user_data_dir("mica", appauthor=False)) / "archive"
