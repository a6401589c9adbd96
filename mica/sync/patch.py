"""A store chunk's new generation fetched as the pieces that differ from the one held here.

An update that appends to a partition writes the chunk's next generation as a byte copy of
the last one that HDF5 then appends to (`mica.engine.chunk_extend`): its old blocks stay
where they were, and only the rewritten last blocks, the new ones and HDF5's own records
differ. A sync that holds the older generation therefore needs only those bytes, not the
whole file again (a 100-day header-3 chunk is about 190 MB for a day's 2 MB).

`mica publish` records, beside each chunk's SHA-256 digest, the CRC-32C of each of its
`PIECE_BYTES` pieces (`Pieces`). `mica sync` computes the same over the chunk of the same
partition it holds (`changed_ranges`), copies that file, fetches the pieces whose checksums
differ with HTTP ``Range`` requests (nearby ones in one request, `_GAP_PIECES`), and checks
the result against the SHA-256 digest as every download is checked: a piece that matched
only by its checksum, or a damaged local file, fails that check, and the file is then
fetched whole (`mica.sync.client.SyncClient.fetch`).
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import numpy as np

#: the piece a chunk is compared in (bytes): HDF5 rewrites its records (object headers,
#: chunk index nodes) in places across the file, each change costing a piece, and the list
#: costs 4 bytes a piece in the manifest (hex: 8 characters). With day 100 of a header-3
#: period appended, its 281 MB of chunks differ in 6.8 MB of 4 kB pieces, 7.9 MB of 8 kB and
#: 10.0 MB of 16 kB (measured; rsync's delta transfer sent 8.4 MB).
PIECE_BYTES = 8 << 10
#: changed pieces this close fetched in one request, the pieces between them with them: for
#: those chunks 9.1 MB in 160 requests, against 7.9 MB in 257 one piece apart
_GAP_PIECES = 2
#: fetching more than this fraction of the file in pieces is no gain: fetched whole
_MOST = 0.5


@dataclass(frozen=True)
class Pieces:
    """The CRC-32C of each ``size``-byte piece of a file (the last one may be shorter)."""

    size: int
    crcs: np.ndarray  # uint32, one a piece

    def to_text(self) -> str:
        """``<piece size>:<hex of the CRCs, little-endian>`` (a manifest entry's field)."""
        return f"{self.size}:{self.crcs.astype('<u4').tobytes().hex()}"

    @classmethod
    def from_text(cls, text: str, file_size: int) -> Pieces:
        """The pieces a manifest gives for a file of ``file_size`` bytes; ValueError when the
        text is not such a list (a server's word: checked)."""
        size, _, digits = text.partition(":")
        piece = int(size)
        if not 512 <= piece <= 1 << 26:
            raise ValueError(f"a piece of {piece} bytes")
        count = -(-file_size // piece)
        if len(digits) != 8 * count:
            raise ValueError(f"{len(digits) // 8} piece checksums for {count} pieces")
        return cls(piece, np.frombuffer(bytes.fromhex(digits), "<u4"))

    @classmethod
    def of(cls, data: np.ndarray, size: int = PIECE_BYTES) -> Pieces:
        """The pieces of ``data`` (a file's bytes, uint8; google-crc32c reads arrays and
        bytes, not maps or memoryviews)."""
        crcs = [google_crc32c.value(data[k : k + size]) for k in range(0, len(data), size)]
        return cls(size, np.array(crcs, dtype=np.uint32))


def changed_ranges(base: Path, size: int, pieces: Pieces) -> list[tuple[int, int]] | None:
    """The byte ranges ``[start, stop)`` of a file of ``size`` bytes with these ``pieces``
    that ``base`` (an older generation of it) does not hold as they are, nearby ones
    joined; None when they add up to most of the file (fetched whole)."""
    with open(base, "rb") as fh:
        held = min(fh.seek(0, 2), size)
        if held == 0:
            return None
        with mmap.mmap(fh.fileno(), held, access=mmap.ACCESS_READ) as mapped:
            data = np.frombuffer(mapped, np.uint8)
            local = Pieces.of(data, pieces.size).crcs
            del data  # (the map closes only once no array holds it)
    count = len(pieces.crcs)
    # a piece the base holds only in part (its end) differs unless the file ends there too
    whole = held // pieces.size if held < size else len(local)
    same = np.zeros(count, dtype=bool)
    same[:whole] = local[:whole] == pieces.crcs[:whole]
    changed = np.flatnonzero(~same)
    if len(changed) * pieces.size > _MOST * size:
        return None
    runs: list[list[int]] = []
    for k in changed.tolist():
        if runs and k - runs[-1][1] <= _GAP_PIECES + 1:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    return [(a * pieces.size, min((b + 1) * pieces.size, size)) for a, b in runs]
