"""The header-3 sample table: what `aca_hdr3` computes from the 8x8 rows, kept in the store.

A chunk of the store view ``hd3s`` (one per 100 days of file start times, every slot's 8x8
files) holds, beside those files' TIME and header-3 bytes, one table per slot: datasets
``S<slot>.<name>`` at the file root (flat, as every chunk):

* ``TIME``: the slot's distinct row times, sorted (the grid `aca_hdr3.MSIDset` builds);
* ``HD3W62`` ... ``HD3W76``: the six big-endian 16-bit words (bytes 62-63 ... 76-77) of the
  row a grid time takes (the last of duplicates, as the reader does);
* ``FLAGS``: bit 0, the gap test of spec 5.1 step 3 on the slot's time-sorted rows (the
  next row 4.1 s later) for that row; bit 1, for the slots whose items continue into the
  next slot (``zero_off32_quad_c`` 4 -> 5, ``ccd_temp`` 6 -> 7), whether the next slot has a
  row at the same time that passes the gap test, whose word 62-63 is ``NEXT.HD3W62`` (0
  where it has no row);
* ``BLOCK0``: every 4096th ``TIME``, so a short fetch reads a few blocks.

Words and flags rather than bytes: a 32-bit item is read from 3 datasets besides TIME.

`sample_table` computes it when the chunk is built (same build path, same files, dirty
marks and rebuilds as every store chunk: the store stays a cache). `read_samples` serves a
fetch from it when that gives exactly the file scan's answer: the items share one grid slot,
every 8x8 file of their slots whose rows reach the padded range belongs to the one
partition whose chunk is current (then the gap test and the slot match of the partition
are those of the whole archive). Otherwise it returns None and `aca_hdr3` reads the rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mica.archive.hdr3_items import ITEMS, WORD_PAIRS, Hdr3Item

#: The gap test (spec 5.1 step 3), shared with `aca_hdr3`.
DT_8X8 = 4.1
DT_TOL = 0.001
#: Rows per entry of ``BLOCK0``.
SAMPLE_BLOCK = 4096
#: The store view holding the tables.
SAMPLES_VIEW = "hd3s"
#: An item's 16-bit words (most significant first) and one mask per word, as
#: `Hdr3Item.decode_words` takes them.
ItemWords = tuple[list[np.ndarray], list[np.ndarray]]


def _word(first: int) -> str:
    """Dataset name of the big-endian 16-bit word of bytes ``first``, ``first + 1``."""
    return f"HD3W{first}"


def _pack(cols: Mapping[str, np.ndarray], first: int, rows: Any) -> np.ndarray:
    """The word of bytes ``first``, ``first + 1`` at ``rows`` as uint16 (high byte first)."""
    word = cols[f"HD3TLM{first}"][rows].astype(np.uint16) << 8
    word |= cols[f"HD3TLM{first + 1}"][rows]
    return word


def _continued() -> dict[int, list[int]]:
    """Slot -> the next slot's words (first bytes) its items continue into."""
    out: dict[int, set[int]] = {}
    for item in ITEMS.values():
        for slot, first in item.word_columns:
            if slot != item.slot:
                out.setdefault(item.slot, set()).add(first)
    return {slot: sorted(words) for slot, words in out.items()}


def gap_valid(times: np.ndarray, end: float) -> np.ndarray:
    """Rows of sorted ``times`` followed by the next 4.1 s later (``end`` closes the series)."""
    dt = np.diff(times, append=end)
    dt -= DT_8X8  # in place: |dt - 4.1| <= tol without temporaries
    np.abs(dt, out=dt)
    return dt <= DT_TOL


def sample_table(
    rows: list[Mapping[str, Any]], arrays: list[Mapping[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """The tables of one ``hd3s`` chunk from its files' index rows and arrays (row order).

    Parameters
    ----------
    rows : list of mapping
        Index rows (``slot`` is used), in the chunk's file order.
    arrays : list of mapping
        Each file's TIME and ``HD3TLM*`` arrays.

    Returns
    -------
    dict
        Dataset path -> array (see the module description).
    """
    from mica.products.aca_l0 import HD3_COLUMNS

    by_slot: dict[int, list[Mapping[str, np.ndarray]]] = {}
    for row, arr in zip(rows, arrays):
        by_slot.setdefault(int(row["slot"]), []).append(arr)
    series = {}
    for slot, parts in sorted(by_slot.items()):
        times = np.concatenate([np.asarray(p["TIME"], dtype=np.float64) for p in parts])
        order = np.argsort(times, kind="stable")  # stable: the last duplicate stays last
        times = times[order]
        cols = {
            c: np.concatenate([p[c] for p in parts]).astype(np.uint8)[order] for c in HD3_COLUMNS
        }
        # The partition's last row has no successor here: invalid, as in the whole archive
        # whenever `read_samples` uses the table (no other partition's rows near it).
        series[slot] = (times, cols, gap_valid(times, np.inf))
    out: dict[str, np.ndarray] = {}
    for slot, (times, cols, valid) in series.items():
        last = np.ones(len(times), dtype=bool)
        last[:-1] = times[1:] != times[:-1]
        grid = times[last]
        out[f"S{slot}.TIME"] = grid
        out[f"S{slot}.BLOCK0"] = grid[::SAMPLE_BLOCK]
        flags = valid[last].astype(np.uint8)
        for first in WORD_PAIRS:
            out[f"S{slot}.{_word(first)}"] = _pack(cols, first, last)
        words = _continued().get(slot, [])
        if words:
            nvalid = np.zeros(len(grid), dtype=bool)
            packed = {first: np.zeros(len(grid), dtype=np.uint16) for first in words}
            if slot + 1 in series and len(grid) and len(series[slot + 1][0]):
                t2, c2, v2 = series[slot + 1]
                at = np.maximum(np.searchsorted(t2, grid, side="right") - 1, 0)
                hit = t2[at] == grid  # the last next-slot row at this time
                nvalid = hit & v2[at]
                for first in words:
                    packed[first] = np.where(hit, _pack(c2, first, at), 0).astype(np.uint16)
            flags |= nvalid.astype(np.uint8) << 1
            for first in words:
                out[f"S{slot}.NEXT.{_word(first)}"] = packed[first]
        out[f"S{slot}.FLAGS"] = flags
    return out


def read_samples(
    items: Mapping[str, Hdr3Item],
    tstart: float,
    tstop: float,
    pad: float,
    data_root: str | Path | None,
) -> tuple[np.ndarray, dict[str, ItemWords]] | None:
    """The grid and each item's words and masks (`Hdr3Item.decode_words`) from the sample
    table, or None when the table cannot give the file scan's answer (see the module
    description).

    Parameters
    ----------
    items : mapping
        Name -> item.
    tstart, tstop : float
        The range, CXC seconds; ``pad`` past ``tstop`` is what the gap test looks at.
    data_root : str or Path, optional
        The ``aca0`` folder.

    Raises
    ------
    MissingArchiveError
        When ``data_root`` holds no L0 archive.
    """
    from mica.engine.colstore import ColumnStore
    from mica.engine.read import snapshot_read
    from mica.engine.validate import TIME_AFTER_TSTOP, TIME_BEFORE_TSTART
    from mica.products.aca_l0 import L0

    grid_slots = {item.slot for item in items.values()}
    if len(grid_slots) != 1:
        return None
    slot = grid_slots.pop()
    need = sorted({s for item in items.values() for s in item.slots})
    root = L0.root(data_root)
    view = L0._store().view_named(SAMPLES_VIEW)
    lo, hi = tstart, tstop + pad
    found: list[Any] = []

    def from_store(index: Any, _: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found.clear()  # a retry starts again
        # The partitions of every 8x8 file of these slots whose rows reach [lo, hi] (a
        # file's rows lie within its span widened by the validation's tolerances): files
        # with a start time in [first, last].
        first = lo - TIME_AFTER_TSTOP - L0.max_file_span
        last = hi + TIME_BEFORE_TSTART
        period = int(first // view.period)
        if period != int(last // view.period):
            # Near a period boundary: ask the index (one query, its rows counted in SQLite).
            sql = (
                "SELECT DISTINCT CAST(filetime / ? AS INTEGER) FROM archfiles WHERE "
                f"imgsize = 8 AND slot IN ({','.join('?' * len(need))}) AND tstart >= ? "
                "AND tstart <= ? AND tstop >= ?"
            )
            params = [view.period, *need, first, last, lo - TIME_AFTER_TSTOP]
            periods = [r[0] for r in index.conn.execute(sql, params).fetchall()]
            if len(periods) != 1:
                found.append(None if periods else "empty")
                return []
            period = periods[0]
        # Otherwise no query: an L0 file's partition is that of its start time (ingest
        # refuses a name time other than int(TSTART)), so all lie in this one; were there
        # none, the table has no row in the range either (the same spans bound its rows).
        # A third of a 19-day fetch went into that query.
        part = view.key({"filetime": period * view.period})
        chunk = ColumnStore(L0, index).current_chunks([part]).get(part)
        if chunk is None:
            found.append(None)
            return []
        try:
            found.append(_read_table(root / chunk["path"], slot, items, tstart, tstop))
        except (OSError, KeyError):  # chunk replaced, damaged or without this slot
            found.append(None)
        return []

    snapshot_read(L0, root, lambda index: [], from_store, lambda rec: None)
    got = found[-1] if found else None
    if got == "empty":
        return np.zeros(0), _no_words(items, 0)
    return got


def _read_table(
    path: Path, slot: int, items: Mapping[str, Hdr3Item], tstart: float, tstop: float
) -> tuple[np.ndarray, dict[str, ItemWords]]:
    """Grid and item words of ``slot``'s table in a chunk file over [tstart, tstop]."""
    from mica.engine.colstore import read_slab
    from mica.engine.h5chunks import open_h5_id

    # Dataset of each word of each item, and whether it is in the grid slot.
    where = {
        msid: [
            (_word(first) if s == slot else f"NEXT.{_word(first)}", s == slot)
            for s, first in item.word_columns
        ]
        for msid, item in items.items()
    }
    fid = open_h5_id(path)
    try:
        base = f"S{slot}."
        try:
            block0 = read_slab(fid, base + "BLOCK0")
        except KeyError:  # no 8x8 file of this slot in the partition
            block0 = np.zeros(0)
        grid = np.zeros(0)
        cols: dict[str, np.ndarray] = {}
        if len(block0):
            first = max(int(np.searchsorted(block0, tstart, "left")) - 1, 0) * SAMPLE_BLOCK
            last = int(np.searchsorted(block0, tstop, "right")) * SAMPLE_BLOCK
            times = read_slab(fid, base + "TIME", first, last)
            a = int(np.searchsorted(times, tstart, "left"))
            b = int(np.searchsorted(times, tstop, "right"))
            grid = times[a:b]
            if b > a:
                names = {"FLAGS", *(name for words in where.values() for name, _ in words)}
                cols = {n: read_slab(fid, base + n, first + a, first + b) for n in names}
    finally:
        fid.close()
    if not cols:
        return grid, _no_words(items, len(grid))
    # One mask per slot, shared by that slot's words (the decoders combine it once).
    flags = cols["FLAGS"]
    masks = {True: (flags & 1) == 0}
    if any(not own for words in where.values() for _, own in words):
        masks[False] = (flags & 2) == 0
    out = {
        msid: ([cols[name] for name, _ in words], [masks[own] for _, own in words])
        for msid, words in where.items()
    }
    return grid, out


def _no_words(items: Mapping[str, Hdr3Item], n: int) -> dict[str, ItemWords]:
    """Every item's words, all masked, for a grid of ``n`` times without samples."""
    word, mask = np.zeros(n, dtype=np.uint16), np.ones(n, dtype=bool)
    return {
        msid: ([word] * len(item.word_columns), [mask] * len(item.word_columns))
        for msid, item in items.items()
    }
