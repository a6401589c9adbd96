"""Reading a staged file into its index row: the one place the engine reads a product file.

A product description (`mica.engine.product.FileProduct`) holds data and the checks of its
own files (`check_name`, `describe` or `describe_table`, `store_arrays` or `table_arrays`);
this module reads the file and calls them: the bytes inflated and checked whole
(`mica.engine.fitscheck`), the table parsed by `mica.engine.fastfits` where the product
reads that way (`reads_fast`), else by astropy, and the row finished with the file's checksum
and kind (simulated or real, `mica.engine.provenance`). A product whose files are not FITS
(obspar parameter files) reads them itself (`FileProduct.describe_path`).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mica.engine.fastfits import parse_table
from mica.engine.fitscheck import file_checksum, open_raw, read_bytes, verify_spans
from mica.engine.product import KIND, FileProduct, RejectedFile
from mica.engine.provenance import REAL, SIM_KEYWORD, SIMULATED


def describe_file(
    product: FileProduct, name: str, path: Path, arrays: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Validate one staged file (name, gzip, FITS, checksums, structure); its index row.

    With ``arrays`` (a dict), a store product also puts the file's store arrays there under
    its archive name, so the store is fed from this one decompression. Any failure is a
    `RejectedFile` naming the file.
    """
    product.check_name(name)
    try:
        if product.describe_path is not None:  # not a FITS file: the product reads it
            return product.describe_path(product.archive_name(name), path, arrays)
        return describe_fits(product, product.archive_name(name), path, arrays)
    except RejectedFile:
        raise
    except Exception as err:  # astropy and numpy raise many types for malformed input
        raise RejectedFile(
            name, f"malformed file ({type(err).__name__}: {str(err)[:300]})"
        ) from err


def describe_fits(
    product: FileProduct, name: str, path: Path, arrays: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The index row of a checked FITS file (``name``: its archive name; ``arrays`` as in
    `describe_file`): read by `describe_fast` where it can, else by astropy."""
    raw = read_bytes(path, name, product.max_file_bytes)
    fast = describe_fast(product, name, raw, arrays)
    if fast is not None:
        return fast
    hdus, checksum = open_raw(raw, name, getattr(product, "extname", "PRIMARY"))
    with hdus:
        row = product.describe(name, hdus)
        finish_row(row, checksum, hdus[0].header)
        if arrays is not None and product.has_store:
            arrays[name] = product.store_arrays(hdus, row)
    return row


def describe_fast(
    product: FileProduct, name: str, raw: bytes, arrays: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """`describe_fits` on the file's bytes with `mica.engine.fastfits` instead of astropy;
    None when the product does not read that way, the reader cannot parse the file, or a
    check refuses it (astropy's reading then decides and words the refusal)."""
    if not product.reads_fast:
        return None
    table = parse_table(raw, getattr(product, "extname", "PRIMARY"))
    if table is None:
        return None
    try:
        verify_spans(raw, table.spans, name)
        row = product.describe_table(name, table)
    except RejectedFile:
        return None
    finish_row(row, file_checksum(raw, table.header), table.primary)
    if arrays is not None and product.has_store:
        arrays[name] = product.table_arrays(table, row)
    return row


#: bytes of a file's start inflated at first to read its headers (an L0 file's two headers
#: take 4 blocks), and at most (a header of 1000 blocks is refused at ingest too)
_HEAD_BYTES = 16 * 2880
_MAX_HEAD_BYTES = 1000 * 2880


def describe_headers(product: FileProduct, name: str, path: Path) -> dict[str, Any] | None:
    """The index row the headers of an archived file give, read without its data: what
    ``mica check`` compares each index row with (the file's start is inflated only).

    The product's checks of the rows' values are not run (the table has no rows here). None
    when the product does not read tables fast (`FileProduct.reads_fast`), the headers are
    not plainly written, or the table header holds no CHECKSUM (the row's checksum is then
    one of the whole file): `describe_file` tells those. A link is not followed
    (``OSError``); the product's refusals are `RejectedFile`.
    """
    if not product.reads_fast or product.describe_path is not None:
        return None
    name = product.archive_name(name)
    extname = getattr(product, "extname", "PRIMARY")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with open(fd, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
        fh.seek(0)
        stream = gzip.GzipFile(fileobj=fh, mode="rb") if gzipped else fh
        raw, want = b"", _HEAD_BYTES
        try:
            while True:  # a longer header than expected: inflate more
                raw += stream.read(want - len(raw))
                table = parse_table(raw, extname, headers_only=True)
                if table is not None or len(raw) < want or want >= _MAX_HEAD_BYTES:
                    break
                want = min(8 * want, _MAX_HEAD_BYTES)
        except (OSError, EOFError, zlib.error) as err:
            raise RejectedFile(name, f"unreadable start of the file ({err})") from err
    if table is None or not table.header.get("CHECKSUM"):
        return None
    row = product.describe_table(name, table)
    finish_row(row, file_checksum(raw, table.header), table.primary)
    return row


def finish_row(row: dict[str, Any], checksum: str, primary: Mapping[str, Any]) -> None:
    """Add the file's checksum and kind (from its primary header) to a described row."""
    row["checksum"] = checksum
    # What the file is, from the header read anyway (not an index column: ingest checks it
    # against the archive's provenance).
    row[KIND] = SIMULATED if primary.get(SIM_KEYWORD) is True else REAL
