"""The archive engine shared by every product: validation, layout, index, ingest, check.

The contract of a source of files and its registry are `mica.engine.source`; the sources are
in `mica.sources`. The names below are imported on first use, so that reading a store module
(``mica.engine.colstore``) does not import the ingest machinery.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ArchiveIndex": "mica.engine.index",
    "FileProduct": "mica.engine.product",
    "IngestReport": "mica.engine.ingest",
    "RejectedFile": "mica.engine.product",
    "ingest_files": "mica.engine.ingest",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
