"""A strict reader of the plain FITS files ingest sees: one primary HDU without data and one
binary table, read from the bytes on disk with numpy instead of astropy objects.

Building astropy's ``Header``/``ColDefs``/``FITS_rec`` objects is most of the cost of
validating an L0 file; here the header cards are parsed once and the table is a structured
numpy view of the inflated bytes. The reader is deliberately narrow: any feature it does not
parse (a heap or variable-length arrays, TSCAL other than 1, a TZERO that is not an unsigned
offset, TFORMs other than B/I/J/K/E/D/A, CONTINUE or HIERARCH cards, lower-case or repeated
keywords, extra HDUs, non-ASCII bytes, column keywords it does not know) makes `parse_table`
return None, and the caller reads the file with astropy: it falls back, never accepts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_BLOCK = 2880
_CARD = 80
#: Keywords without a value indicator whose text astropy keeps as commentary.
_COMMENTARY = (b"COMMENT ", b"HISTORY ", b"        ")
_KEYWORD_RE = re.compile(rb"[A-Z0-9_-]{1,8} *")
# A value field (bytes 11-80): a quoted string ('' is a quote) or one token, then a comment.
_VALUE_RE = re.compile(rb" *(?:'((?:[^']|'')*)'|([^ /']+)) *(?:/.*)?")
_INT_RE = re.compile(rb"[+-]?[0-9]+")
_FLOAT_RE = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[EeDd][+-]?[0-9]+)?")
_TFORM_RE = re.compile(r"([0-9]*)([BIJKEDA])")
_TDIM_RE = re.compile(r"\( *([0-9]+(?: *, *[0-9]+)*) *\)")
_NAME_RE = re.compile(r"[A-Z][A-Z0-9_]*")
_ANY_CASE_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_COLKEY_RE = re.compile(r"(T[A-Z]{3,5})([0-9]+)")
#: Column keywords read here; any other ``T....n`` keyword (TDISP, TBCOL, WCS) falls back.
_COLUMN_KEYS = {"TTYPE", "TFORM", "TUNIT", "TDIM", "TZERO", "TSCAL", "TNULL", "TLMIN", "TLMAX"}
#: Big-endian dtype of each TFORM code.
_CODES = {"B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8", "A": "S1"}
_TABLE_KEYS = ["XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT", "GCOUNT", "TFIELDS"]
#: TZERO that makes a signed column unsigned, as astropy reads it (``uint=True``).
_UNSIGNED = {"I": (1 << 15, np.uint16), "J": (1 << 31, np.uint32), "K": (1 << 63, np.uint64)}


class HeaderCards(dict):
    """A header's keyword values; a missing keyword raises astropy's KeyError text."""

    def __missing__(self, key: str) -> Any:
        raise KeyError(f"Keyword {key!r} not found.")


class TForm(str):
    """A TFORM value as written (e.g. '1D'), with its repeat count (astropy's ``format``)."""

    repeat: int


@dataclass(frozen=True)
class FastColumn:
    """A table column as its cards define it (the attributes `check_columns` reads)."""

    name: str
    format: TForm
    dim: str | None  # the TDIM value as written
    bzero: int | float | None
    bscale: int | float | None
    code: str  # TFORM letter

    @property
    def repeat(self) -> int:
        return self.format.repeat


class FastColumns(list):
    """The columns in file order; also by name, as astropy's ``ColDefs``."""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            for col in self:
                if col.name == key:
                    return col
            raise KeyError(key)
        return super().__getitem__(key)


@dataclass
class FastTable:
    """A primary header and a binary table read from raw FITS bytes."""

    primary: HeaderCards
    header: HeaderCards
    columns: FastColumns
    rows: np.ndarray  # structured view of the rows, file byte order
    #: (header start, data start, data end padded to whole blocks) of each HDU
    spans: list[tuple[int, int, int]]
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    # astropy's BinTableHDU and FITS_rec attributes the L0 validation reads
    @property
    def data(self) -> FastTable:
        return self

    @property
    def names(self) -> list[str]:
        return self.columns.names

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, name: str) -> np.ndarray:
        """A column's values as astropy's ``FITS_rec`` gives them (unsigned offsets applied,
        strings with trailing blanks removed)."""
        if name not in self._cache:
            col = self.columns[name]
            values = self.rows[name]
            if col.code == "A":
                values = _strip_text(values, col.repeat)
            elif col.bzero:
                offset, unsigned = _UNSIGNED[col.code]
                values = (values.astype(values.dtype.newbyteorder("=")) ^ -offset).view(unsigned)
            self._cache[name] = values
        return self._cache[name]


def _strip_text(values: np.ndarray, width: int) -> np.ndarray:
    """Text as astropy's ``FITS_rec`` gives it: blanks before the end (or before trailing
    NULs) removed, except a first character, then decoded (`parse_table` checked ASCII).
    The same passes as astropy's ``_rstrip_inplace``, so every edge case agrees."""
    chars = np.ascontiguousarray(values).view("u1").reshape(len(values), width).copy()
    blank = np.ones(len(values), dtype=bool)
    for i in range(-1, -width, -1):
        blank &= chars[:, i] == 32
        chars[blank, i] = 0
        blank = chars[:, i] == 0
    return chars.view(f"S{width}")[:, 0].astype(f"U{width}")


def _value(field_bytes: bytes) -> tuple[bool, Any]:
    """(parsed, value) of a card's value field; parsed is False for anything unusual."""
    match = _VALUE_RE.fullmatch(field_bytes)
    if not match:
        return False, None
    text, token = match.groups()
    if text is not None:
        return True, text.replace(b"''", b"'").decode("ascii").rstrip(" ")
    if token in (b"T", b"F"):
        return True, token == b"T"
    if _INT_RE.fullmatch(token):
        return True, int(token)
    if _FLOAT_RE.fullmatch(token):
        return True, float(token.replace(b"D", b"E").replace(b"d", b"e"))
    return False, None


def _header(raw: bytes, start: int) -> tuple[HeaderCards, int] | None:
    """The cards of the header at ``start`` and the offset of its data; None when a card is
    not plainly ``KEYWORD = value / comment`` or commentary."""
    cards = HeaderCards()
    pos = start
    limit = len(raw) - _CARD
    while True:
        if pos > limit:
            return None
        card = raw[pos : pos + _CARD]
        pos += _CARD
        if card[:8] == b"END     ":
            end = -(-pos // _BLOCK) * _BLOCK
            # blanks to the end of the card and the block, as the standard writes them
            if end > len(raw) or raw[pos - 77 : end].strip(b" "):
                return None
            return cards, end
        if card[:8] in _COMMENTARY:
            continue
        if card[8:10] != b"= " or not _KEYWORD_RE.fullmatch(card[:8]):
            return None  # CONTINUE, HIERARCH, lower case, no value indicator
        key = card[:8].rstrip(b" ").decode("ascii")
        parsed, value = _value(card[10:])
        if not parsed or key in cards:
            return None
        cards[key] = value


def header_cards(raw: bytes, hdu: int) -> HeaderCards | None:
    """The cards of HDU ``hdu`` (0: the primary) of FITS bytes holding at least that header
    (e.g. the start of a file); None when they do not, or a header is one this reader does not
    parse (read it with astropy)."""
    pos = 0
    for k in range(hdu + 1):
        got = _header(raw, pos)
        if got is None:
            return None
        cards, data_start = got
        if k == hdu:
            return cards
        naxis = cards.get("NAXIS", 0)
        shape = [cards.get(f"NAXIS{i}") for i in range(1, naxis + 1)] if _is_int(naxis) else None
        values = [cards.get("BITPIX"), cards.get("GCOUNT", 1), cards.get("PCOUNT", 0)]
        if shape is None or not all(_is_int(v) and v >= 0 for v in shape + values[1:]):
            return None
        size = abs(values[0]) // 8 * values[1] * (values[2] + int(np.prod(shape) if naxis else 0))
        pos = data_start + -(-size // _BLOCK) * _BLOCK
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _columns(header: HeaderCards, name_re: re.Pattern) -> FastColumns | None:
    """The table's columns, or None for a definition this reader does not parse."""
    nfields = header.get("TFIELDS")
    if not _is_int(nfields) or not 0 < nfields <= 999:
        return None
    keys: dict[int, dict[str, Any]] = {}
    for key, value in header.items():
        match = _COLKEY_RE.fullmatch(key)
        if match:
            base, n = match.group(1), int(match.group(2))
            if base not in _COLUMN_KEYS or not 1 <= n <= nfields:
                return None
            keys.setdefault(n, {})[base] = value
    out = []
    for n in range(1, nfields + 1):
        col = keys.get(n, {})
        name, tform = col.get("TTYPE"), col.get("TFORM")
        if not isinstance(name, str) or not isinstance(tform, str):
            return None
        form = _TFORM_RE.fullmatch(tform)
        if not name_re.fullmatch(name) or not form:
            return None
        repeat, code = int(form.group(1) or 1), form.group(2)
        dim, zero, scale = col.get("TDIM"), col.get("TZERO"), col.get("TSCAL")
        if repeat < 1 or not isinstance(col.get("TUNIT", ""), str):
            return None
        if dim is not None:
            dims = _TDIM_RE.fullmatch(dim) if isinstance(dim, str) else None
            shape = [int(d) for d in dims.group(1).split(",")] if dims else []
            if code == "A" or not shape or int(np.prod(shape)) != repeat:
                return None
        if scale is not None and (isinstance(scale, bool) or scale != 1):
            return None
        if zero is not None and (isinstance(zero, bool) or not isinstance(zero, (int, float))):
            return None
        if zero and (code not in _UNSIGNED or zero != _UNSIGNED[code][0]):
            return None
        null = col.get("TNULL")
        if null is not None and (code not in "BIJK" or not _is_int(null)):
            return None
        form_text = TForm(tform)
        form_text.repeat = repeat
        out.append(FastColumn(name, form_text, dim, zero, scale, code))
    if len({c.name.upper() for c in out}) < len(out):  # astropy finds names in any case
        return None
    return FastColumns(out)


def _dtype(columns: list[FastColumn]) -> np.dtype:
    fields = []
    for col in columns:
        base = _CODES[col.code]
        if col.code == "A":
            fields.append((col.name, f"S{col.repeat}"))
        elif col.dim is not None:
            dims = _TDIM_RE.fullmatch(col.dim).group(1).split(",")
            fields.append((col.name, base, tuple(int(d) for d in reversed(dims))))
        elif col.repeat > 1:
            fields.append((col.name, base, (col.repeat,)))
        else:
            fields.append((col.name, base))
    return np.dtype(fields)


def parse_table(
    raw: bytes, extname: str | None, any_case: bool = False, headers_only: bool = False
) -> FastTable | None:
    """A file of a data-less primary HDU and one binary table ``extname`` (None: any), or None
    when the bytes hold anything else or anything this reader does not parse (read it with
    astropy). Column names are upper case unless ``any_case`` (e.g. the aspect L1 products).
    ``headers_only``: ``raw`` is the start of the file, up to the table's header at least;
    the table then has no rows (its headers tell what they hold) and no spans.

    Nothing is checked here beyond what reading needs: the caller validates the columns,
    values and checksums (`FastTable.spans`) as it does for astropy's reading.
    """
    try:
        name_re = _ANY_CASE_NAME_RE if any_case else _NAME_RE
        return _parse_table(raw, extname, name_re, headers_only)
    except Exception:  # noqa: BLE001 -- any doubt while parsing: astropy reads the file
        return None


def _parse_table(
    raw: bytes, extname: str | None, name_re: re.Pattern, headers_only: bool = False
) -> FastTable | None:
    first = _header(raw, 0)
    if first is None:
        return None
    primary, ext_start = first
    if not (
        list(primary)[:3] == ["SIMPLE", "BITPIX", "NAXIS"]
        and primary["SIMPLE"] is True
        and _is_int(primary["BITPIX"])
        and _is_int(primary["NAXIS"])
        and primary["NAXIS"] == 0
    ):
        return None
    second = _header(raw, ext_start)
    if second is None:
        return None
    header, data_start = second
    if not _printable(raw[:ext_start]) or not _printable(raw[ext_start:data_start]):
        return None
    if (
        list(header)[:8] != _TABLE_KEYS
        or header["XTENSION"] != "BINTABLE"
        or (extname is not None and header.get("EXTNAME") != extname)
        or any(not _is_int(header[k]) for k in _TABLE_KEYS[1:])
        or (header["BITPIX"], header["NAXIS"], header["PCOUNT"], header["GCOUNT"]) != (8, 2, 0, 1)
        or header["NAXIS1"] < 0
        or header["NAXIS2"] < 0
        or "THEAP" in header
    ):
        return None
    columns = _columns(header, name_re)
    if columns is None:
        return None
    dtype = _dtype(columns)
    rows, width = header["NAXIS2"], header["NAXIS1"]
    if headers_only:
        return FastTable(primary, header, columns, np.zeros(0, dtype), [])
    data_end = data_start + -(-(rows * width) // _BLOCK) * _BLOCK
    if dtype.itemsize != width or data_end != len(raw):
        return None  # padded rows, or more HDUs than the two this reader knows
    data = np.frombuffer(raw, dtype=dtype, count=rows, offset=data_start)
    for col in columns:
        text = np.ascontiguousarray(data[col.name]).view("u1") if col.code == "A" else None
        if text is not None and (text > 127).any():
            return None  # astropy's decoding decides what non-ASCII text does
    spans = [(0, ext_start, ext_start), (ext_start, data_start, data_end)]
    return FastTable(primary, header, columns, data, spans)


def _printable(header: bytes) -> bool:
    """Only the ASCII text characters the standard allows in a header."""
    return not header.translate(None, bytes(range(0x20, 0x7F)))
