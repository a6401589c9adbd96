"""The aspect L1 layout on the simulator's FITS writer (`mica.sim.fits_writer`).

Writes a primary HDU without data and one binary table, with cards formatted like the CXC
pipeline's (``TSTART  = 2.3377374114662626E+08``), column keywords first and TDIM after
them as in real files, and CHECKSUM/DATASUM right after the configuration keys.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mica.sim.fits_writer import (
    CHECKSUM_PLACEHOLDER,
    card,
    finish_header,
    ones_sum,
    pad_data,
)

__all__ = ["Col", "card", "table_bytes", "write_l1_file"]
Card = tuple[str, object, str | None]  # (keyword, value, comment); keyword COMMENT/HISTORY


@dataclass
class Col:
    """One binary-table column: name, TFORM (``1D``, ``36E``, ``8A``...), unit, data."""

    name: str
    tform: str
    array: object
    unit: str | None = None
    comment: str | None = None
    dim: str | None = None


_DTYPE = {"D": ">f8", "E": ">f4", "J": ">i4", "I": ">i2", "K": ">i8", "B": "u1", "L": "i1"}
_FORM_TEXT = {
    "D": "8-byte DOUBLE",
    "E": "4-byte REAL",
    "J": "4-byte INTEGER",
    "I": "2-byte INTEGER",
    "B": "BYTE",
    "A": "CHARACTER",
    "K": "8-byte INTEGER",
}


def _hdu_bytes(cards: list[str], data: bytes, date: str, blank_datasum: bool = False) -> bytes:
    """Header + data with CHECKSUM (and DATASUM) filled in."""
    pad = pad_data(data)
    datasum = ones_sum(pad)
    ds_text = "" if blank_datasum else str(datasum)
    ds_comment = (
        "Data unit checksum in ASCII" if blank_datasum else f"data unit checksum updated {date}"
    )
    sums = [
        card("CHECKSUM", CHECKSUM_PLACEHOLDER, f"HDU checksum updated {date}"),
        card("DATASUM", ds_text, ds_comment),
    ]
    # Keep the pipeline's order: CHECKSUM/DATASUM right after the configuration keys.
    at = next((i for i, c in enumerate(cards) if c.startswith("CONTENT ")), None)
    if at is None:
        at = next((i for i, c in enumerate(cards) if c.startswith("CREATOR ")), len(cards) - 1)
        at += 1
    return finish_header(cards[:at] + sums + cards[at:], datasum) + pad


def table_bytes(cols: list[Col]) -> tuple[list[str], bytes, int]:
    """(column cards, big-endian row data, row count) of a binary table."""
    fields = []
    arrays = []
    n = None
    for col in cols:
        repeat = int(col.tform[:-1] or 1)
        code = col.tform[-1]
        arr = np.asarray(col.array)
        if code == "A":
            dt = f"S{repeat}"
            arr = np.char.encode(arr.astype(str), "ascii") if arr.dtype.kind == "U" else arr
            shape = ()
        else:
            dt = _DTYPE[code]
            shape = () if repeat == 1 else (repeat,)
        rows = len(arr)
        n = rows if n is None else n
        if rows != n:
            raise ValueError(f"column {col.name} has {rows} rows, expected {n}")
        fields.append((col.name, dt, shape))
        arrays.append(arr.reshape((rows,) + shape) if shape else arr)
    rec = np.zeros(n or 0, dtype=fields)
    for (name, _, _), arr in zip(fields, arrays, strict=True):
        rec[name] = arr
    cards = []
    for k, col in enumerate(cols, start=1):
        cards.append(card(f"TTYPE{k}", col.name, col.comment))
        code = col.tform[-1]
        cards.append(
            card(f"TFORM{k}", col.tform, f"data format of field: {_FORM_TEXT.get(code, code)}")
        )
        if col.unit:
            cards.append(card(f"TUNIT{k}", col.unit, "physical unit of field"))
    return cards, rec.tobytes(), n or 0


def write_l1_file(
    path: Path,
    primary: list[str],
    table_cols: list[Col],
    extname: str,
    table_cards: list[str],
    date: str,
    compresslevel: int = 4,
) -> Path:
    """Write ``path`` (gzipped): an empty primary HDU and one binary table."""
    col_cards, data, nrows = table_bytes(table_cols)
    rowbytes = len(data) // nrows if nrows else sum(_width(c) for c in table_cols)
    head = [
        card("SIMPLE", True, "file does conform to FITS standard"),
        card("BITPIX", 32, "number of bits per data pixel"),
        card("NAXIS", 0, "number of data axes"),
        card("EXTEND", True, "FITS dataset may contain extensions"),
    ]
    prim = _hdu_bytes(head + primary, b"", date, blank_datasum=True)
    thead = [
        card("XTENSION", "BINTABLE", "binary table extension"),
        card("BITPIX", 8, "8-bit bytes"),
        card("NAXIS", 2, "2-dimensional binary table"),
        card("NAXIS1", rowbytes, "width of table in bytes"),
        card("NAXIS2", nrows, "number of rows in table"),
        card("PCOUNT", 0, "size of special data area"),
        card("GCOUNT", 1, "one data group (required keyword)"),
        card("TFIELDS", len(table_cols), "number of fields in each row"),
        *col_cards,
        card("EXTNAME", extname, "name of this binary table extension"),
    ]
    thead += [
        card(f"TDIM{k}", c.dim, "size of the multidimensional array")
        for k, c in enumerate(table_cols, start=1)
        if c.dim
    ]
    tab = _hdu_bytes(thead + table_cards, data, date)
    with (
        open(path, "wb") as fh,
        gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=compresslevel, mtime=0) as gz,
    ):
        gz.write(prim)
        gz.write(tab)
    return Path(path)


def _width(col: Col) -> int:
    repeat = int(col.tform[:-1] or 1)
    code = col.tform[-1]
    return repeat * (1 if code in "ABL" else int(_DTYPE[code][-1]))
