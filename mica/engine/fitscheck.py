"""Open a candidate FITS file fully and check it is whole: gzip, FITS structure, checksums."""

from __future__ import annotations

import gzip
import hashlib
import io
import warnings
import zlib
from pathlib import Path

from astropy.io import fits

from mica.engine.product import RejectedFile


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
    if len(raw) % 2880:
        raise RejectedFile(name, f"truncated FITS file ({len(raw)} bytes, not a multiple of 2880)")
    return raw


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
    for i, hdu in enumerate(hdus):
        datasum = str(hdu.header.get("DATASUM", "")).strip()
        if datasum and hdu.verify_datasum() != 1:
            raise RejectedFile(name, f"DATASUM verification failed in HDU {i} (data corrupted)")
        if "CHECKSUM" in hdu.header and hdu.verify_checksum() != 1:
            raise RejectedFile(name, f"CHECKSUM verification failed in HDU {i}")
    if extname not in hdus:
        found = [h.name for h in hdus]
        raise RejectedFile(name, f"no {extname} extension (found {found})")
    checksum = hdus[extname].header.get("CHECKSUM") or hashlib.sha1(raw).hexdigest()
    return hdus, str(checksum)
