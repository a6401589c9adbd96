"""The one FITS writer of the simulator: card images, header blocks, checksums, the marker.

The simulated products are written directly (astropy's header and table objects cost
~40 ms per small file, which dominated simulating thousands of files), with cards laid out
like the CXC pipeline's cfitsio (value field of 20 characters, `` / comment``) and
CHECKSUM/DATASUM per the FITS checksum convention (Seaman, Pence & Rots). Every simulated
file says what it is (`sim_cards`): ``ORIGIN = 'mica.sim'``, ``CREATOR`` naming the
`mica.sim` module, and ``SIMULATD = T`` (`mica.engine.provenance`), so it is never taken for
flight data.
"""

from __future__ import annotations

import numpy as np

from mica.engine.provenance import SIM_COMMENT, SIM_KEYWORD, SIM_ORIGIN

BLOCK = 2880
#: the CHECKSUM value while the header is summed (`finish_header` fills in the real one)
CHECKSUM_PLACEHOLDER = "0" * 16


def pad(text: str) -> str:
    """An 80-character card image (refuses longer text)."""
    if len(text) > 80:
        raise ValueError(f"card too long: {text!r}")
    return text.ljust(80)


def raw_card(key: str, value: str, comment: str | None = None, string: bool = False) -> str:
    """A card of an already formatted value (``string``: quoted, padded to 8 characters)."""
    if string:
        field = ("'" + value.replace("'", "''").ljust(8) + "'").ljust(20)
    else:
        field = value.rjust(20)
    text = f"{key:<8}= {field}"
    if comment is not None:
        text += " / " + comment
    return pad(text)


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
    """One card image of a Python value (bool, int, float as ``%.16E``, str); COMMENT and
    HISTORY cards take their text as ``value``; over-long cards are cut at 80 characters."""
    if keyword in ("COMMENT", "HISTORY", ""):
        return f"{keyword:<8}{'' if value is None else str(value)}"[:80].ljust(80)
    text = f"{keyword:<8}= {_value_text(value)}"
    if comment:
        text += f" / {comment}"
    return text[:80].ljust(80)


def sim_cards(creator: str) -> tuple[str, list[str]]:
    """(ORIGIN card, [CREATOR card, SIMULATD card]) of a file written by ``creator``."""
    origin = raw_card("ORIGIN", SIM_ORIGIN, "simulated Chandra, not flight data", string=True)
    return origin, [
        raw_card("CREATOR", creator, "mica.sim writer", string=True),
        raw_card(SIM_KEYWORD, "T", SIM_COMMENT),
    ]


def header_bytes(cards: list[str]) -> bytes:
    """Cards, END and blank padding to whole 2880-byte blocks."""
    text = "".join(cards) + "END".ljust(80)
    text += " " * (-len(text) % BLOCK)
    return text.encode("ascii")


def pad_data(data: bytes) -> bytes:
    """A data unit padded with zeros to whole blocks."""
    return data + b"\0" * (-len(data) % BLOCK)


def ones_sum(data: bytes, start: int = 0) -> int:
    """32-bit ones'-complement sum of big-endian words (data padded to 4 bytes), plus
    ``start``."""
    if len(data) % 4:
        data = data + b"\0" * (4 - len(data) % 4)
    total = int(np.frombuffer(data, dtype=">u4").sum(dtype=np.uint64)) + start
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


_EXCLUDE = frozenset(range(0x3A, 0x41)) | frozenset(range(0x5B, 0x61))


def encode_checksum(value: int) -> str:
    """ASCII encoding of a 32-bit checksum (the FITS standard's)."""
    value &= 0xFFFFFFFF
    asc = [0] * 16
    for i in range(4):
        byte = (value >> (24 - 8 * i)) & 0xFF
        q, r = byte // 4 + 0x30, byte % 4
        chars = [q + r, q, q, q]
        for j in (0, 2):  # the two pairs are independent
            while chars[j] in _EXCLUDE or chars[j + 1] in _EXCLUDE:
                chars[j] += 1
                chars[j + 1] -= 1
        for j in range(4):
            asc[4 * j + i] = chars[j]
    return "".join(chr(asc[(k + 15) % 16]) for k in range(16))


def finish_header(cards: list[str], datasum: int) -> bytes:
    """The header bytes with its CHECKSUM card (holding `CHECKSUM_PLACEHOLDER`) filled in,
    so that header + data (of ones' sum ``datasum``) sum to -0."""
    header = header_bytes(cards)
    placeholder = f"'{CHECKSUM_PLACEHOLDER}'".encode()
    if placeholder not in header:
        raise ValueError("no CHECKSUM card with the placeholder value in the header")
    checksum = encode_checksum(~ones_sum(header, datasum))
    return header.replace(placeholder, f"'{checksum}'".encode(), 1)
