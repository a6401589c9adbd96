"""Open a candidate FITS file fully and check it is whole: gzip, FITS structure, checksums.

Checksums are computed over the bytes on disk, per the FITS checksum convention: the 32-bit
ones'-complement sum of an HDU's 2880-byte blocks (header and data) is -0 (all bits set)
when its CHECKSUM card is right, and the sum of its data blocks is the DATASUM value.
astropy's own verification sums the header it re-serialises, so bytes it normalises
(keyword case, the padding after END) would pass unseen.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import warnings
import zlib
from pathlib import Path

import numpy as np
from astropy.io import fits

from mica.engine.product import RejectedFile

_BLOCK = 2880
_NEG_ZERO = 0xFFFFFFFF  # -0 in 32-bit ones' complement


def read_bytes(path: Path, name: str) -> bytes:
    """The file's FITS bytes, decompressing gzip and checking its CRC and length."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise RejectedFile(name, f"cannot read file: {err}") from err
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as err:
            raise RejectedFile(name, f"corrupt or truncated gzip data ({err})") from err
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
    """Check each HDU's DATASUM and CHECKSUM over ``raw``, the bytes ``hdus`` were read from.

    A file that carries CHECKSUM in one HDU must carry it in every HDU: a damaged keyword
    would otherwise leave its header unchecked.
    """
    words = np.frombuffer(raw, dtype=">u4")
    spans = []
    for hdu in hdus:
        # astropy's offsets of the HDU in the bytes read (the data padded to whole blocks)
        start, data = hdu._header_offset, hdu._data_offset
        end = data + -(-hdu._data_size // _BLOCK) * _BLOCK
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


def open_checked(path: Path, name: str, extname: str) -> tuple[fits.HDUList, str]:
    """Open ``path`` in memory, verify CHECKSUM/DATASUM where present, return (hdus, checksum).

    The returned checksum is the table HDU's CHECKSUM keyword, or a SHA-1 of the bytes when
    the file has none, so re-deliveries of the same file are recognised either way.
    """
    raw = read_bytes(path, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            hdus = fits.open(io.BytesIO(raw), lazy_load_hdus=False, memmap=False)
    except Exception as err:  # astropy raises many types for malformed input
        raise RejectedFile(name, f"unreadable FITS structure ({err})") from err
    try:
        verify_checksums(raw, hdus, name)
        if extname not in hdus:
            found = [h.name for h in hdus]
            raise RejectedFile(name, f"no {extname} extension (found {found})")
    except RejectedFile:
        hdus.close()
        raise
    checksum = hdus[extname].header.get("CHECKSUM") or hashlib.sha1(raw).hexdigest()
    return hdus, str(checksum)
