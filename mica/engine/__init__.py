"""The archive engine shared by every product: validation, layout, index, ingest, check.

Sources of files are in `mica.sources`.
"""

from mica.engine.index import ArchiveIndex
from mica.engine.ingest import IngestReport, ingest_files
from mica.engine.product import FileProduct, RejectedFile

__all__ = [
    "ArchiveIndex",
    "FileProduct",
    "IngestReport",
    "RejectedFile",
    "ingest_files",
]
