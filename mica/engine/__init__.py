"""The archive engine shared by every product: validation, layout, index, ingest, check.

The contract of a source of files and its registry are `mica.engine.source`; the sources are
in `mica.sources`. The names below are imported on first use, so that reading a store module
(``mica.engine.colstore``) does not import the ingest machinery.
"""

from __future__ import annotations

from mica._lazy import lazy_getattr

_WHERE = {
    "ArchiveIndex": "mica.engine.index",
    "FileProduct": "mica.engine.product",
    "IngestReport": "mica.engine.ingest",
    "RejectedFile": "mica.errors",
    "ingest_files": "mica.engine.ingest",
}

__all__ = sorted(_WHERE)

__getattr__ = lazy_getattr(__name__, _WHERE)
