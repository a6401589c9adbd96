"""A small direct FITS writer for the simulated aspect L1 products.

Writes a primary HDU without data and one binary table, with cards formatted like the CXC
pipeline's (``TSTART  = 2.3377374114662626E+08``), column keywords first and TDIM after
them as in real files, and CHECKSUM/DATASUM per the FITS checksum convention. It exists
because astropy's header and table objects cost ~40 ms per small file, which dominated
simulating thousands of files.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BLOCK = 2880
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


def _value_text(value: object) -> str:
    if isinstance(value, bool):
        return f"{'T' if value else 'F':>20}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):>20}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.16E}".rjust(20)
    text = str(value).replace("'", "''")[:68]  # one card: longer strings are cut
    return f"'{text:<8}'".ljust(20)


def card(keyword: str, value: object = None, comment: str | None = None) -> str:
    """One 80-character card image."""
    if keyword in ("COMMENT", "HISTORY", ""):
        return f"{keyword:<8}{'' if value is None else str(value)}"[:80].ljust(80)
    text = f"{keyword:<8}= {_value_text(value)}"
    if comment:
        text += f" / {comment}"
    return text[:80].ljust(80)


def _header_bytes(cards: list[str]) -> bytes:
    text = "".join(cards) + "END".ljust(80)
    text += " " * (-len(text) % BLOCK)
    return text.encode("ascii")


def _ones_sum(data: bytes) -> int:
    """32-bit ones'-complement sum of big-endian words (data padded to 4 bytes)."""
    if len(data) % 4:
        data = data + b"\0" * (4 - len(data) % 4)
    total = int(np.frombuffer(data, dtype=">u4").sum(dtype=np.uint64))
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def _add(a: int, b: int) -> int:
    total = a + b
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


_EXCLUDE = set(range(0x3A, 0x41)) | set(range(0x5B, 0x61))


def _encode(value: int) -> str:
    """ASCII encoding of a 32-bit checksum (Seaman, Pence & Rots; the FITS standard)."""
    asc = [0] * 16
    for i in range(4):
        byte = (value >> (24 - 8 * i)) & 0xFF
        chars = [byte // 4 + 0x30] * 4
        chars[0] += byte % 4
        changed = True
        while changed:
            changed = False
            for j in (0, 2):
                if chars[j] in _EXCLUDE or chars[j + 1] in _EXCLUDE:
                    chars[j] += 1
                    chars[j + 1] -= 1
                    changed = True
        for j in range(4):
            asc[4 * j + i] = chars[j]
    asc = asc[15:] + asc[:15]
    return "".join(chr(c) for c in asc)


def _hdu_bytes(cards: list[str], data: bytes, date: str, blank_datasum: bool = False) -> bytes:
    """Header + data with CHECKSUM (and DATASUM) filled in."""
    pad = data + b"\0" * (-len(data) % BLOCK)
    datasum = _ones_sum(pad)
    ds_text = "" if blank_datasum else str(datasum)
    ds_comment = (
        "Data unit checksum in ASCII" if blank_datasum else f"data unit checksum updated {date}"
    )
    full = cards + [
        card("CHECKSUM", "0000000000000000", f"HDU checksum updated {date}"),
        card("DATASUM", ds_text, ds_comment),
    ]
    # Keep the pipeline's order: CHECKSUM/DATASUM right after the configuration keys.
    at = next((i for i, c in enumerate(cards) if c.startswith("CONTENT ")), None)
    if at is None:
        at = next((i for i, c in enumerate(cards) if c.startswith("CREATOR ")), len(cards) - 1)
        at += 1
    full = cards[:at] + full[len(cards) :] + cards[at:]
    header = _header_bytes(full)
    total = _add(_ones_sum(header), datasum)
    checksum = _encode(~total & 0xFFFFFFFF)
    header = header.replace(b"'0000000000000000'", f"'{checksum}'".encode(), 1)
    return header + pad


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
