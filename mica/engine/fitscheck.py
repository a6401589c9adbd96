"""Open a candidate FITS file fully and check it is whole: gzip, FITS structure, checksums.

Checksums are computed over the bytes on disk, per the FITS checksum convention: the 32-bit
ones'-complement sum of an HDU's 2880-byte blocks (header and data) is -0 (all bits set)
when its CHECKSUM card is right, and the sum of its data blocks is the DATASUM value.
astropy's own verification sums the header it re-serialises, so bytes it normalises
(keyword case, the padding after END) would pass unseen.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from astropy.io import fits

from mica.engine.product import RejectedFile

_BLOCK = 2880
_NEG_ZERO = 0xFFFFFFFF  # -0 in 32-bit ones' complement


_INFLATE_BLOCK = 1 << 20  # bytes inflated per step: memory stays near the announced size
_MAX_HEADER_BLOCKS = 1000  # 2.9 MB of header cards: far beyond any real header
DEFAULT_MAX_FILE_BYTES = 1 << 30


def _card_int(header: bytes | bytearray, key: bytes, default: int | None = None) -> int | None:
    """The integer value of card ``key`` in raw header bytes (``default`` without one)."""
    prefix = key.ljust(8) + b"= "
    for i in range(0, len(header), 80):
        if header[i : i + 10] == prefix:
            return int(bytes(header[i + 10 : i + 80]).split(b"/", 1)[0].strip())
    return default


def _header_end(buf: bytearray, start: int) -> int | None:
    """Offset just past the header block holding END, for a header at ``start``; None if
    the bytes so far hold no END card."""
    for i in range(start, len(buf) - _BLOCK + 1, _BLOCK):
        block = buf[i : i + _BLOCK]
        for j in range(0, _BLOCK, 80):
            if block[j : j + 8] == b"END     ":
                return i + _BLOCK
    return None


def _data_size(header: bytes) -> int:
    """Bytes of an HDU's data (padded to whole blocks) as its header announces them."""
    naxis = _card_int(header, b"NAXIS", 0) or 0
    dims = [_card_int(header, f"NAXIS{i}".encode(), 0) or 0 for i in range(1, naxis + 1)]
    if (
        header[:8] == b"SIMPLE  "
        and dims
        and dims[0] == 0
        and b"GROUPS  =                    T" in header
    ):
        dims = dims[1:]  # random groups: NAXIS1 = 0 is not a dimension
    if not dims:
        return 0
    count = 1
    for d in dims:
        count *= d
    bits = abs(_card_int(header, b"BITPIX", 8) or 8)
    size = (
        bits
        // 8
        * (_card_int(header, b"GCOUNT", 1) or 1)
        * ((_card_int(header, b"PCOUNT", 0) or 0) + count)
    )
    return -(-size // _BLOCK) * _BLOCK


class _Announced:
    """How far the FITS bytes seen so far may extend: each complete header announces its
    data, so any byte beyond the last HDU, or a header that never ends, is found without
    inflating the rest of the stream."""

    def __init__(self, name: str, cap: int):
        self.name, self.cap = name, cap
        self.hdu_start = 0  # offset of the HDU being read
        self.end = 0  # end of the last complete HDU

    def limit(self, buf: bytearray) -> int:
        """Bytes ``buf`` may grow to; raises RejectedFile when it holds more than announced."""
        while True:
            if len(buf) <= self.hdu_start:
                return min(self.hdu_start + _BLOCK, self.cap)
            first = bytes(buf[self.hdu_start : self.hdu_start + 8])
            if len(buf) >= self.hdu_start + 8 and first not in (b"SIMPLE  ", b"XTENSION"):
                if not self.hdu_start:
                    raise RejectedFile(self.name, "not a FITS file (no SIMPLE card at the start)")
                extra = "trailing bytes after the last HDU"
                raise RejectedFile(
                    self.name,
                    f"not a valid FITS file ({extra}: headers announce {self.end} bytes, "
                    f"the file holds at least {len(buf)})",
                )
            end = _header_end(buf, self.hdu_start)
            if end is None:
                if len(buf) - self.hdu_start >= _MAX_HEADER_BLOCKS * _BLOCK:
                    raise RejectedFile(
                        self.name,
                        f"header at byte {self.hdu_start} has no END card in "
                        f"{_MAX_HEADER_BLOCKS} blocks; refused",
                    )
                return min(self.hdu_start + _MAX_HEADER_BLOCKS * _BLOCK, self.cap)
            try:
                size = _data_size(bytes(buf[self.hdu_start : end]))
            except ValueError as err:
                raise RejectedFile(
                    self.name,
                    f"unreadable size keyword in the header at byte {self.hdu_start} ({err})",
                ) from err
            self.end = end + size
            if self.end > self.cap:
                raise RejectedFile(
                    self.name,
                    f"headers announce {self.end} bytes, more than the limit of "
                    f"{self.cap}; refused",
                )
            if len(buf) < self.end:
                return self.end
            self.hdu_start = self.end


def _inflate(fh: BinaryIO, name: str, cap: int) -> bytearray:
    """Inflate gzip members from ``fh`` in blocks, never beyond what the FITS headers announce."""
    out = bytearray()
    seen = _Announced(name, cap)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending = b""
    while True:
        if inflater.eof:
            rest = inflater.unused_data + fh.read()
            if not rest.strip(b"\0"):
                break  # gzip allows zero padding after the last member
            if not rest.startswith(b"\x1f\x8b"):
                raise RejectedFile(name, "corrupt gzip data (trailing bytes after the gzip stream)")
            inflater, pending = zlib.decompressobj(16 + zlib.MAX_WBITS), rest
            fh = io.BytesIO(b"")
        if not pending:
            pending = inflater.unconsumed_tail or fh.read(_INFLATE_BLOCK)
            if not pending:
                raise RejectedFile(
                    name, "corrupt or truncated gzip data (ended before the end-of-stream marker)"
                )
        room = seen.limit(out) - len(out)
        if room <= 0:
            raise RejectedFile(
                name,
                f"gzip data inflate beyond the {seen.end} bytes the headers announce "
                f"(limit {cap}); refused",
            )
        # one byte more than allowed, so a stream that goes on is caught right there
        chunk = inflater.decompress(pending, min(room, _INFLATE_BLOCK) + 1)
        pending = inflater.unconsumed_tail
        out += chunk
        if len(out) > seen.limit(out):
            raise RejectedFile(
                name,
                f"gzip data inflate beyond the {seen.end} bytes the headers announce "
                f"(limit {cap}); refused",
            )
    return out


def read_bytes(path: Path, name: str, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """The file's FITS bytes, decompressing gzip and checking its CRC and length.

    Decompression is streamed and stops as soon as the bytes exceed what the FITS headers
    announce (or ``max_bytes``), so a gzip bomb is refused with bounded memory.
    """
    try:
        with open(path, "rb") as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
            fh.seek(0)
            if gzipped:
                try:
                    raw = bytes(_inflate(fh, name, max_bytes))
                except (EOFError, zlib.error) as err:
                    raise RejectedFile(name, f"corrupt or truncated gzip data ({err})") from err
            else:
                size = os.fstat(fh.fileno()).st_size
                if size > max_bytes:
                    raise RejectedFile(name, f"{size} bytes, more than the limit of {max_bytes}")
                raw = fh.read()
    except OSError as err:
        raise RejectedFile(name, f"cannot read file: {err}") from err
    if not raw.startswith(b"SIMPLE  ="):
        raise RejectedFile(name, "not a FITS file (no SIMPLE card at the start)")
    if len(raw) % _BLOCK:
        raise RejectedFile(name, f"truncated FITS file ({len(raw)} bytes, not a multiple of 2880)")
    return raw


def ones_sum(words: np.ndarray) -> int:
    """32-bit ones'-complement sum of 32-bit words (end-around carry)."""
    # uint64 cannot overflow below 2**32 words (16 GiB); fold the carries back in
    total = int(words.sum(dtype=np.uint64))
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def _card_value(header: bytes, key: bytes) -> str | None:
    """The quoted value of card ``key`` in header bytes as written, or None without one."""
    prefix = key.ljust(8) + b"= "
    for i in range(0, len(header), 80):
        if header[i : i + 10] == prefix:
            text = header[i + 10 : i + 80].decode("ascii", "replace").strip()
            return text[1:].split("'", 1)[0].strip() if text.startswith("'") else text
    return None


def verify_checksums(raw: bytes, hdus: fits.HDUList, name: str) -> None:
    """Check each HDU's DATASUM and CHECKSUM over ``raw``, the bytes ``hdus`` were read from."""
    # astropy's offsets of the HDUs in the bytes read (the data padded to whole blocks)
    verify_spans(
        raw,
        [
            (h._header_offset, h._data_offset, h._data_offset + -(-h._data_size // _BLOCK) * _BLOCK)
            for h in hdus
        ],
        name,
    )


def verify_spans(raw: bytes, hdu_spans: list[tuple[int, int, int]], name: str) -> None:
    """Check the DATASUM and CHECKSUM of the HDUs at ``hdu_spans`` (header start, data
    start, padded data end) over ``raw``.

    A file that carries CHECKSUM in one HDU must carry it in every HDU: a damaged keyword
    would otherwise leave its header unchecked.
    """
    words = np.frombuffer(raw, dtype=">u4")
    spans = []
    for start, data, end in hdu_spans:
        header = raw[start:data]
        spans.append((start, data, end, _card_value(header, b"CHECKSUM")))
        datasum = _card_value(header, b"DATASUM")
        if datasum:
            try:
                expected = int(datasum)
            except ValueError as err:
                raise RejectedFile(
                    name, f"DATASUM {datasum!r} of HDU {len(spans) - 1} is not a number"
                ) from err
            if ones_sum(words[data // 4 : end // 4]) != expected:
                raise RejectedFile(
                    name, f"DATASUM verification failed in HDU {len(spans) - 1} (data corrupted)"
                )
    carried = [i for i, span in enumerate(spans) if span[3] is not None]
    if carried and len(carried) < len(spans):
        missing = [i for i in range(len(spans)) if i not in carried]
        raise RejectedFile(
            name,
            f"no CHECKSUM card in HDU {', '.join(map(str, missing))} while HDU "
            f"{carried[0]} has one (damaged header?)",
        )
    for i, (start, _data, end, checksum) in enumerate(spans):
        if checksum is not None and ones_sum(words[start // 4 : end // 4]) != _NEG_ZERO:
            raise RejectedFile(name, f"CHECKSUM verification failed in HDU {i}")


def open_checked(
    path: Path, name: str, extname: str, max_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> tuple[fits.HDUList, str]:
    """Open ``path`` in memory, verify CHECKSUM/DATASUM where present, return (hdus, checksum).

    The returned checksum is the table HDU's CHECKSUM keyword, or a SHA-1 of the bytes when
    the file has none, so re-deliveries of the same file are recognised either way.
    """
    return open_raw(read_bytes(path, name, max_bytes), name, extname)


def open_bytes(raw: bytes, name: str, strict: bool = True) -> fits.HDUList:
    """The HDUs of the FITS bytes `read_bytes` returned, their checksums verified;
    ``strict``: astropy's warnings refuse them too (a candidate file; an archived one may
    have been archived by the original mica, which let them pass)."""
    try:
        with warnings.catch_warnings():
            if strict:  # (else the caller's filters, as for any astropy call)
                warnings.simplefilter("error")
            hdus = fits.open(io.BytesIO(raw), lazy_load_hdus=False, memmap=False)
    except Exception as err:  # astropy raises many types for malformed input
        raise RejectedFile(name, f"unreadable FITS structure ({err})") from err
    try:
        verify_checksums(raw, hdus, name)
    except RejectedFile:
        hdus.close()
        raise
    return hdus


def open_raw(raw: bytes, name: str, extname: str) -> tuple[fits.HDUList, str]:
    """`open_checked` on the bytes `read_bytes` returned."""
    hdus = open_bytes(raw, name)
    try:
        if extname not in hdus:
            found = [h.name for h in hdus]
            raise RejectedFile(name, f"no {extname} extension (found {found})")
    except RejectedFile:
        hdus.close()
        raise
    return hdus, file_checksum(raw, hdus[extname].header)


def file_checksum(raw: bytes, header: Any) -> str:
    """The table header's CHECKSUM value, or a SHA-1 of the bytes when it has none."""
    return str(header.get("CHECKSUM") or hashlib.sha1(raw).hexdigest())
