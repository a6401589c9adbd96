"""The archive engine shared by every product: sources, validation, layout, index, ingest, check."""

from mica.engine.index import ArchiveIndex
from mica.engine.ingest import IngestReport, ingest_files
from mica.engine.product import FileProduct, RejectedFile
from mica.engine.sources import Source, make_source

__all__ = [
    "ArchiveIndex",
    "FileProduct",
    "IngestReport",
    "RejectedFile",
    "Source",
    "ingest_files",
    "make_source",
]
