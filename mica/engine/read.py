"""Reads inside one index snapshot: rows from the column store where it is current, else files.

The product-agnostic skeleton of a store-backed reader (`mica.archive.aca_l0` is one): the
index rows to read, the pieces the column store serves for them, and a piece of each file the
store did not serve, all in one snapshot of the index, so that the rows, the chunks and the
files agree. What a piece is (its arrays, its row order) is the reader's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mica.engine.index import ArchiveIndex
from mica.engine.product import FileProduct
from mica.errors import (
    DamagedFileError,
    DamagedIndexError,
    MicaError,
    MissingFileError,
    RejectedFile,
)

Record = dict[str, Any]
Piece = dict[str, Any]


def snapshot_read(
    product: FileProduct,
    root: Path,
    records: Callable[[ArchiveIndex], list[Record]],
    from_store: Callable[[ArchiveIndex, list[Record]], list[Piece]] | None,
    from_file: Callable[[Record], Piece | None],
    attempts: int = 3,
) -> tuple[list[Record], list[Piece]]:
    """The index rows and their pieces, read in one snapshot of the product's index.

    Parameters
    ----------
    product : FileProduct
        The product whose index is read.
    root : Path
        Its archive folder.
    records : callable
        ``records(index)``: the index rows to read.
    from_store : callable or None
        ``from_store(index, rows)``: pieces served from current store chunks, each naming the
        files whose rows it holds in ``piece["files"]`` (None: read the files only).
    from_file : callable
        ``from_file(row)``: the piece of one file the store did not serve (None: no rows).
    attempts : int
        How many snapshots to try: a read starts again when a file it needs was removed
        by a concurrent update, or when an update began writing an index read without
        locks (`ArchiveIndex.changed`).

    Returns
    -------
    (rows, pieces)
        The index rows and the pieces (store pieces first, then file pieces in row order).

    Raises
    ------
    MissingArchiveError
        When ``root`` holds no archive of the product.
    MissingFileError
        When a file kept disappearing (a FileNotFoundError): a concurrent update removing a
        superseded file makes the read start again from a fresh snapshot, up to ``attempts``
        times; a file deleted by hand is named with the repair that drops it.
    """
    for attempt in range(attempts):
        # MissingArchiveError: no archive; read again below when a writer changed the file
        index = ArchiveIndex.open_for_reading(product, root, rechecked=True)
        try:
            with index, index.snapshot():
                rows = records(index)
                pieces = from_store(index, rows) if from_store is not None else []
                served = {name for piece in pieces for name in piece["files"]}
                for row in rows:
                    if row["filename"] not in served:
                        piece = from_file(row)
                        if piece is not None:
                            pieces.append(piece)
        except DamagedIndexError:
            if attempt < attempts - 1 and index.changed():
                continue  # read without locks while a writer's checkpoint changed the file
            raise
        except FileNotFoundError as err:
            if attempt < attempts - 1:
                continue  # removed by a concurrent update: again, from a fresh snapshot
            if isinstance(err, MicaError):
                raise
            raise MissingFileError.at(err.filename, root) from err
        if index.changed() and attempt < attempts - 1:
            continue  # read without locks (`connect_readonly`) while an update began: again
        return rows, pieces
    raise AssertionError("unreachable")


@contextmanager
def archived_file(path: str | Path | None, root: str | Path) -> Iterator[None]:
    """Reading ``path``, an archived file of the product folder ``root``: a file the index
    lists but that is gone is a `MissingFileError` naming it and the repair (a plain
    FileNotFoundError would name neither the archive nor what to do)."""
    try:
        yield
    except FileNotFoundError as err:
        if isinstance(err, MicaError):  # already says what is missing (MissingArchiveError)
            raise
        raise MissingFileError.at(err.filename or path, root) from err


@contextmanager
def archived_fits(path: str | Path, root: str | Path) -> Iterator[Any]:
    """The archived FITS file ``path`` of the product folder ``root``, open in memory
    (an ``HDUList``) after the checks its ingest made: its gzip data, checksum and length,
    and its FITS checksums where it has them. A file changed since (a flipped bit, a
    truncation) raises `DamagedFileError` naming it, so no reader returns its values and no
    store chunk is built from them; one gone raises `MissingFileError` (`archived_file`)."""
    from mica.engine import fitscheck

    path = Path(path)
    with archived_file(path, root):
        try:
            raw = fitscheck.read_bytes(path, path.name)
            hdus = fitscheck.open_bytes(raw, path.name, strict=False)
        except RejectedFile as err:
            if isinstance(err.__cause__, FileNotFoundError):  # removed meanwhile
                raise err.__cause__ from None
            raise DamagedFileError.at(path, root, err.problem) from err
        with hdus:
            yield hdus
