"""What the engine needs to know about a product: names, validation, index row, layout."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mica._lazy import fits
from mica.config import archive_root
from mica.engine.store_layout import StoreDescription
from mica.errors import RejectedFile

#: A product folder's staging area: files fetched or built there are renamed into place.
STAGING_DIR = "staging"


#: The key of a described row that says whether the file is simulated or real.
KIND = "_kind"


@dataclass(frozen=True)
class IndexColumn:
    name: str
    sqltype: str  # e.g. "text not null"


#: The leading index columns of every time-stamped file product (the engine queries them).
TIME_INDEX_COLUMNS = [
    IndexColumn("filename", "text not null"),
    IndexColumn("filetime", "int not null"),
    IndexColumn("year", "int not null"),
    IndexColumn("doy", "int not null"),
    IndexColumn("tstart", "float not null"),
    IndexColumn("tstop", "float not null"),
]


class FileProduct(ABC):
    """A product archived as one file per record, indexed by a SQLite ``archfiles`` table.

    Subclasses describe the product; the engine (`ingest_files`, `update_archive`,
    `check_archive`) does everything else.
    """

    #: command-line name, e.g. ``aca-l0``
    name: str
    #: folder under the archive root, e.g. ``aca0``
    subdir: str
    #: full-match regex for the archived (gzipped) basename
    filename_re: re.Pattern[str]
    #: columns of the ``archfiles`` table; ``filename`` is the primary key
    index_columns: Sequence[IndexColumn]
    #: extra SQL run when the index is created (indexes)
    index_sql: Sequence[str] = ()
    #: SQL creating temporary views that show the original mica's index of the product as
    #: the tables `index_sql` creates (`mica.engine.index.present_as_own`)
    original_views: Sequence[str] = ()
    #: index columns that, with time, decide whether two files overlap (e.g. the slot)
    stream_columns: Sequence[str] = ()
    #: how far before a query start a file may begin and still overlap it (s)
    max_file_span: float = 10 * 86400.0
    #: bytes a file may inflate to (an L0 file is < 10 MB): more is refused unread
    max_file_bytes: int = 1 << 30
    #: how long before a request's start a file named by its start time may begin (s)
    source_lookback: float = 86400.0

    def original_columns(self, conn: Any, root: Path, missing: Sequence[str]) -> dict[str, str]:
        """SQL values for index columns an original mica's index lacks, read in place.

        `mica.engine.index.present_as_own` shows each ``missing`` column as the expression
        returned for it (over ``main.archfiles``, which may use temporary tables this
        creates on ``conn``), and as NULL when none is returned (the default: all NULL).
        """
        return {}

    def root(self, data_root: str | Path | None = None) -> Path:
        """The product's folder; ``data_root`` names the product folder itself when given."""
        if data_root is not None:
            root = data_root if isinstance(data_root, Path) else Path(data_root)
            return root.expanduser()
        return archive_root() / self.subdir

    def archive_name(self, name: str) -> str:
        """The basename a file gets in the archive (always gzipped)."""
        return name if name.endswith(".gz") else name + ".gz"

    def check_name(self, name: str) -> None:
        """Refuse names with path components or that do not match the product's pattern."""
        if not name.isprintable():
            # NUL, newlines, escape codes: reported (and quarantined) under an escaped name,
            # as the raw one cannot be a file name or be printed safely
            shown = name.encode("unicode_escape").decode("ascii").replace("\\", "%")
            raise RejectedFile(shown, "file name has control characters; refused")
        if "/" in name or "\\" in name or ".." in name or name.startswith("."):
            raise RejectedFile(name, "file name has path components or '..'; refused")
        if not self.filename_re.fullmatch(self.archive_name(name)):
            raise RejectedFile(
                name, f"name does not match the {self.name} pattern {self.filename_re.pattern}"
            )

    @abstractmethod
    def name_time(self, name: str) -> float:
        """CXC seconds encoded in a file name (its start), for sources that filter by name."""

    @abstractmethod
    def describe(self, name: str, hdus: fits.HDUList) -> dict[str, Any]:
        """Check the opened file's structure and return its index row (raise RejectedFile)."""

    @abstractmethod
    def folder(self, row: dict[str, Any]) -> str:
        """Folder of a file relative to the product root, from its index row."""

    #: the index columns `folder` reads (None: any of them), so that a pass over every row
    #: (`mica check`) reads only those and the file name
    folder_columns: Sequence[str] | None = None

    #: the index columns a store chunk build reads of a file's row (`store_arrays`, `path`,
    #: a view's ``derive``, the chunk's file list: filename and checksum); None: every
    #: column. A build asks the index for these alone (`mica.engine.colstore`: a 100-day
    #: header-3 partition's rows cost a sixth of every column's)
    store_row_columns: Sequence[str] | None = None

    #: the columnar store (`mica.engine.colstore`) ingest keeps of the files' rows, if any:
    #: column dtypes, column groups read together and views, from which the engine derives
    #: the partitions and their SQL (`mica.engine.store_layout`)
    store: StoreDescription | None = None

    @property
    def has_store(self) -> bool:
        return self.store is not None

    @property
    def store_groups(self) -> Mapping[str, list[str]]:
        """Column groups read together; one column keeps its dtype, several are byte planes."""
        return self.store.groups if self.store else {}

    @property
    def store_dtypes(self) -> Mapping[str, Any]:
        """The columns `store_arrays` returns, with the dtype of one row's value."""
        return self.store.dtypes if self.store else {}

    def partition(self, row: dict[str, Any], columns: Iterable[str] | None = None) -> str:
        """The store partition that serves ``columns`` (None: all) of a file's rows."""
        return self.store_description.partition(row, columns)

    def partitions(self, row: dict[str, Any]) -> list[str]:
        """Every store partition holding rows of the file (the full view first)."""
        return self.store_description.partitions(row)

    def partition_columns(self, part: str) -> list[str]:
        """The columns a partition holds (a narrower view holds fewer)."""
        return self.store_description.partition_columns(part)

    def partition_epoch(self, row: dict[str, Any]) -> str:
        """Files arrive in time order; once the epoch of incoming files moves on, the
        partitions of earlier epochs are complete and ingest writes them."""
        return self.store_description.partition_epoch(row)

    def partition_where(self, part: str) -> tuple[str, list[Any]]:
        """SQL WHERE clause and parameters selecting a partition's index rows."""
        return self.store_description.partition_where(part)

    @property
    def store_description(self) -> StoreDescription:
        """The description of the product's columnar store (`store`), for code that needs
        one; TypeError for a product that keeps no store."""
        if self.store is None:
            raise TypeError(f"{self.name} keeps no columnar store")
        return self.store

    def store_arrays(self, hdus: fits.HDUList, row: dict[str, Any]) -> dict[str, Any]:
        """An open file's rows as equal-length arrays by column name, as the store keeps them."""
        raise NotImplementedError

    def path(self, row: dict[str, Any], data_root: str | Path | None = None) -> Path:
        return self.root(data_root) / f"{self.folder(row)}/{row['filename']}"

    def same_span(self, a: dict[str, Any], b: dict[str, Any]) -> bool:
        """True when two rows cover the same interval (a reprocessing of the same data)."""
        return abs(a["tstart"] - b["tstart"]) < 1e-3 and abs(a["tstop"] - b["tstop"]) < 1e-3

    #: A product whose files are not FITS (obspar parameter files) reads a staged file
    #: itself: a method ``describe_path(name, path, arrays) -> row`` (``name``: the archive
    #: name; the row with its ``checksum`` and `KIND`; ``arrays`` as in
    #: `mica.engine.describe.describe_file`). None: the engine reads the file as FITS
    #: (`mica.engine.describe.describe_fits`) and calls `describe` or `describe_table`.
    describe_path: Callable[[str, Path, dict[str, Any] | None], dict[str, Any]] | None = None

    #: The product's checks run on `mica.engine.fastfits`' reading as well as astropy's
    #: (it implements `describe_table` and `table_arrays` for either kind of table).
    reads_fast: bool = False

    def describe_table(self, name: str, hdu: Any) -> dict[str, Any]:
        """The index row of the file's table HDU (astropy's or a `mica.engine.fastfits`
        ``FastTable``); products with `reads_fast` implement it."""
        raise NotImplementedError(f"{type(self).__name__} does not read FITS tables fast")

    def table_arrays(self, hdu: Any, row: dict[str, Any]) -> dict[str, Any]:
        """`store_arrays` of one table HDU of either kind; products with `reads_fast` and a
        store implement it."""
        raise NotImplementedError(f"{type(self).__name__} does not read FITS tables fast")

    def check_layout(self, index: Any, repair: bool) -> tuple[list[str], list[str]]:
        """Product-specific checks run by `check_archive`: (problems, repairs made)."""
        return [], []

    #: index columns the layout sets, not a file (`check_archive` does not compare them)
    managed_columns: Sequence[str] = ()

    def owns_link(self, path: Path) -> bool:
        """Whether a symbolic link at ``path`` is one the layout makes (`check_archive`
        reports any other link in the archive)."""
        return False

    def restore_layout(self, index: Any, old: Any) -> list[str]:
        """Fill the layout's own tables of an index rebuilt from the files
        (`mica.engine.index_rebuild`); ``old``: a read-only connection to the index it
        replaces, None when unreadable (its tables may be damaged). Returns what was done."""
        return []
