"""The header-3 sample tables: what `mica.archive.aca_hdr3` computes from the 8x8 rows, kept in
the L0 store (the write path; `mica.archive.hdr3_samples` reads them).

A chunk of the store view ``hd3s`` (`SAMPLES_VIEW`: one per 100 days, every slot's 8x8 files
whose span overlaps those days widened by `SAMPLES_REACH` on both sides; `mica.products.aca_l0`
declares it) holds, beside those files' TIME and header-3 bytes, one table per slot: datasets
``S<slot>.<name>`` at the file root (flat, as every chunk):

* ``TIME``: the slot's distinct row times, sorted (the grid `aca_hdr3.MSIDset` builds);
* ``HD3W62`` ... ``HD3W76``: the six big-endian 16-bit words (bytes 62-63 ... 76-77) of the
  row a grid time takes (the last of duplicates, as the reader does);
* ``FLAGS``: bit 0, the gap test of `aca_hdr3` on the slot's time-sorted rows (the
  next row 4.1 s later) for that row; bit 1, for the slots whose items continue into the
  next slot (``zero_off32_quad_c`` 4 -> 5, ``ccd_temp_fine`` 6 -> 7), whether the next slot has a
  row at the same time that passes the gap test, whose word 62-63 is ``NEXT.HD3W62`` (0
  where it has no row);
* ``BLOCK0``: every 4096th ``TIME``, so a short fetch reads a few blocks.

Words and flags rather than bytes: a 32-bit item is read from 3 datasets besides TIME
(`item_datasets`; `table_words` gives an item's words and masks from them).

`sample_table` computes it when the chunk is built (same build path, same files, dirty
marks and rebuilds as every store chunk: the store stays a cache); the chunk also holds the
items' statistics (`mica.products.hdr3_stats`), which need every row within
`SAMPLES_REACH` of the period, whichever file holds it. An update adding files to a chunk
computes the tables again only from where the new rows can change them (`extend_sample_table`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mica.engine.chunk_extend import Extended, HeldChunk
from mica.products.hdr3_items import EXTRA_ITEMS, HD3_COLUMNS, ITEMS, WORD_PAIRS, Hdr3Item

__all__ = [
    "DT_8X8",
    "DT_TOL",
    "SAMPLES_LAYOUT",
    "SAMPLES_REACH",
    "SAMPLES_VIEW",
    "SAMPLE_BLOCK",
    "ItemWords",
    "TableJoin",
    "extend_sample_table",
    "held_rows_from",
    "gap_valid",
    "item_datasets",
    "sample_table",
    "table_words",
    "word_name",
]

#: The gap test's cadence and tolerance (s), shared with `mica.archive.aca_hdr3`.
DT_8X8 = 4.1
DT_TOL = 0.001
#: Rows per entry of ``BLOCK0``.
SAMPLE_BLOCK = 4096
#: The store view holding the tables.
SAMPLES_VIEW = "hd3s"
#: Its layout number (`mica.engine.store_layout.StoreView.layout`): 1 since its chunks hold
#: the files within `SAMPLES_REACH` and the statistics (chunks built before are out of date).
SAMPLES_LAYOUT = 1
#: How far past its 100 days a chunk holds files (s): a statistics bin starting in the period
#: ends up to 328 s after it, its last sample's gap test looks 4.1 s further, and a row lies
#: up to 10 s before its file's TSTART or 1 s after its TSTOP (`mica.engine.validate`).
SAMPLES_REACH = 600.0

#: An item's 16-bit words (most significant first) and one mask per word, as
#: `Hdr3Item.decode_words` takes them.
ItemWords = tuple[list[np.ndarray], list[np.ndarray]]


def word_name(first: int) -> str:
    """The dataset name of a 16-bit word in a slot's table.

    Parameters
    ----------
    first : int
        The word's first (high) byte, one of `WORD_PAIRS`.

    Returns
    -------
    str
        ``HD3W<first>``: the big-endian word of bytes ``first`` and ``first + 1``.
    """
    return f"HD3W{first}"


def item_datasets(item: Hdr3Item, slot: int) -> list[tuple[str, bool]]:
    """Where the table of ``slot`` (the item's grid slot) holds each word of an item.

    Returns
    -------
    list of (str, bool)
        Per word, most significant first: the dataset name without the ``S<slot>.`` prefix
        (``HD3W<first>``, or ``NEXT.HD3W<first>`` for a word of the next slot) and whether
        the word is the slot's own (its mask is then the gap test's, else the next slot's).
    """
    return [
        (word_name(first) if s == slot else f"NEXT.{word_name(first)}", s == slot)
        for s, first in item.word_columns
    ]


def table_words(
    columns: Mapping[str, np.ndarray], where: Mapping[str, list[tuple[str, bool]]]
) -> dict[str, ItemWords]:
    """Each item's words and masks (`Hdr3Item.decode_words`) from one slot's table.

    Parameters
    ----------
    columns : mapping
        The table's ``FLAGS`` and word datasets (names without the ``S<slot>.`` prefix),
        over the same rows.
    where : mapping
        Item name -> `item_datasets` of the item.

    Returns
    -------
    dict
        Item name -> (words, masks); one mask array per slot, shared by that slot's words
        (the decoders combine it once).
    """
    flags = columns["FLAGS"]
    masks = {True: (flags & 1) == 0}
    if any(not own for words in where.values() for _, own in words):
        masks[False] = (flags & 2) == 0
    return {
        name: ([columns[dataset] for dataset, _ in words], [masks[own] for _, own in words])
        for name, words in where.items()
    }


def _pack(cols: Mapping[str, np.ndarray], first: int, rows: Any) -> np.ndarray:
    """The word of bytes ``first``, ``first + 1`` at ``rows`` as uint16 (high byte first)."""
    word = cols[f"HD3TLM{first}"][rows].astype(np.uint16) << 8
    word |= cols[f"HD3TLM{first + 1}"][rows]
    return word


def _continued() -> dict[int, list[int]]:
    """Slot -> the next slot's words (first bytes) its items continue into."""
    out: dict[int, set[int]] = {}
    for item in [*ITEMS.values(), *EXTRA_ITEMS.values()]:
        for slot, first in item.word_columns:
            if slot != item.slot:
                out.setdefault(item.slot, set()).add(first)
    return {slot: sorted(words) for slot, words in out.items()}


def gap_valid(times: np.ndarray, end: float) -> np.ndarray:
    """The gap test: which rows the next row follows 4.1 s later.

    Parameters
    ----------
    times : numpy.ndarray
        Sorted row times of one slot (CXC seconds).
    end : float
        The time after the last row (closes the series: ``inf`` leaves the last row invalid).

    Returns
    -------
    numpy.ndarray
        Bool, True where the next time is `DT_8X8` later within `DT_TOL`.
    """
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
        # The partition's last row has no successor here: invalid. For the rows readers take
        # from the table (the period's own, `mica.archive.hdr3_samples`) and those the
        # statistics use, every row within `SAMPLES_REACH` after them is here: a row without a
        # successor here has none in the whole archive either.
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
            out[f"S{slot}.{word_name(first)}"] = _pack(cols, first, last)
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
                out[f"S{slot}.NEXT.{word_name(first)}"] = packed[first]
        out[f"S{slot}.FLAGS"] = flags
    return out


@dataclass
class TableJoin:
    """Where the sample tables of an extended chunk (`extend_sample_table`) join the old
    chunk's: every slot's rows before ``start`` are the old tables' (their first ``keep``
    rows), the rest, ``tail``, computed again from the old chunk's 8x8 rows from ``start``
    on and the new files' rows."""

    start: float
    #: slot -> rows of its old table before ``start``
    keep: dict[int, int]
    #: `sample_table` of the rows from ``start`` on
    tail: dict[str, np.ndarray]

    def datasets(self) -> dict[str, Extended]:
        """Every table dataset of the new chunk, as the old one's first rows and the rows
        after them (``BLOCK0``: every `SAMPLE_BLOCK`-th TIME of the whole table)."""
        out = {}
        for name, rows in self.tail.items():
            slot = int(name[1:].split(".", 1)[0])
            keep = self.keep.get(slot, 0)
            if name.endswith(".BLOCK0"):
                kept = -(-keep // SAMPLE_BLOCK)  # entries of the old rows' blocks
                times = self.tail[f"S{slot}.TIME"]
                out[name] = Extended(kept, times[kept * SAMPLE_BLOCK - keep :: SAMPLE_BLOCK])
            else:
                out[name] = Extended(keep, rows)
        return out

    def changed_from(self, held: HeldChunk) -> float:
        """The earliest time at which the new tables differ from the ``held`` chunk's: every
        row of every slot before it is the same in both (its time, words and flags), so
        whatever is computed from the rows before it (the statistics of the bins ending
        before it) is the held chunk's. ``start`` when a slot's datasets are not the same
        in both; ``inf`` when nothing differs.

        The rows compared are those computed again, from ``start`` on (a few a slot, the
        last before the new rows, in an append of later files), against the held tables'
        rows after ``keep`` (read checked): the statistics of a bin holding only old rows
        whose gap tests and next-slot matches the new rows did not change are not computed
        again (the previous day's daily bin, in an append of a day)."""
        if not np.isfinite(self.start):
            return self.start
        tables: dict[int, set[str]] = {}
        stored: dict[int, set[str]] = {}
        for name in self.tail:
            if not name.endswith(".BLOCK0"):
                tables.setdefault(int(name[1:].split(".", 1)[0]), set()).add(name)
        for match in held.names(r"S(\d+)\.(?!BLOCK0$).*"):
            stored.setdefault(int(match[1]), set()).add(match[0])
        if tables != stored:  # a dataset only one of them has
            return self.start
        changed = np.inf
        for slot, names in tables.items():
            keep = self.keep.get(slot, 0)
            old = {name: held.read(name, keep) for name in names}
            new = {name: self.tail[name] for name in names}
            times = (old[f"S{slot}.TIME"], new[f"S{slot}.TIME"])
            same = min(len(times[0]), len(times[1]))
            for name in names:
                differs = np.flatnonzero(old[name][:same] != new[name][:same])
                if len(differs):
                    same = int(differs[0])
            # the first row that differs, or the first of one table's rows beyond the other's
            firsts = [float(t[same]) for t in times if same < len(t)]
            changed = min(changed, *firsts) if firsts else changed
        return changed


def held_rows_from(held: HeldChunk, slot: int, t: float) -> tuple[int, np.ndarray]:
    """Where the ``held`` chunk's table of ``slot`` reaches ``t``: its first row at or after
    ``t``, and its TIME from the block holding its last row before ``t`` on."""
    block0 = held.read(f"S{slot}.BLOCK0")
    first = max(int(np.searchsorted(block0, t, "left")) - 1, 0) * SAMPLE_BLOCK
    times = held.read(f"S{slot}.TIME", first)
    return first + int(np.searchsorted(times, t, "left")), times


def extend_sample_table(
    held: HeldChunk, rows: list[Mapping[str, Any]], arrays: list[Mapping[str, np.ndarray]]
) -> TableJoin:
    """The sample tables of a chunk extended with files after those of the ``held`` chunk:
    the old tables up to where the new rows can change them, the rest computed again.

    Parameters
    ----------
    held : HeldChunk
        The old chunk (holding the first of ``rows``).
    rows : list of mapping
        Index rows of every file of the new chunk, in its file order.
    arrays : list of mapping
        The arrays of the files after the held ones.

    Returns
    -------
    TableJoin
        Where the tables join (its ``start``: the time from which rows are computed again).

    Notes
    -----
    With ``first``, the earliest time of the new rows (any slot): a row of a table before
    ``first`` keeps its words (no new row shares its time), and its gap test and next-slot
    match, which look at the following rows of its slot and of the next slot, keep theirs
    while those rows come before ``first`` too. So each slot's rows are kept up to its last
    time before ``first`` (that one included in the recomputation, as its successor may be
    new), and, so that a slot's recomputed rows find the next slot's rows at their times,
    every slot is computed again from the same ``start``: the earliest of those last times.
    A slot whose rows all come at or after ``first`` is computed again whole.
    """
    news = [np.asarray(a["TIME"]) for a in arrays if len(a["TIME"])]
    first = min(float(t.min()) for t in news) if news else np.inf
    slots = [int(m[1]) for m in held.names(r"S(\d+)\.TIME")]
    start = np.inf
    for slot in slots:
        if not held.shape(f"S{slot}.TIME")[0]:
            continue
        at, times = held_rows_from(held, slot, first)
        # its last time before ``first`` (``times`` starts at or before it), else its first
        before = at - held.shape(f"S{slot}.TIME")[0] + len(times) - 1
        start = min(start, float(times[max(before, 0)]))
    if start == np.inf:  # no old row: all computed again
        start = -np.inf
    keep = {slot: held_rows_from(held, slot, start)[0] for slot in slots}
    # The held files without rows from ``start`` on (most of a long period's) add nothing
    # but their slot, whose table the held chunk has: an empty part of the slot puts it in
    # the tail (`sample_table` takes only ``slot`` of a row), so only the index rows of the
    # held files with rows are asked for (the last few: `ColumnStore`'s partition rows read
    # them alone); concatenating the others' empty arrays cost most of an append to a
    # period's end.
    given, seen = [], set()
    since = held.rows_since(start)
    for at, arr in enumerate(since):
        if len(arr["TIME"]):
            given.append((rows[at], arr))
            seen.add(int(rows[at]["slot"]))
    empty = {name: values[:0] for name, values in next(iter(since or arrays), {}).items()}
    given += [({"slot": slot}, empty) for slot in slots if slot not in seen]
    seen.update(slots)
    for row, arr in zip(rows[len(since) :], arrays):
        if len(arr["TIME"]) or int(row["slot"]) not in seen:
            given.append((row, arr))
            seen.add(int(row["slot"]))
    tail = sample_table([row for row, _ in given], [arr for _, arr in given])
    return TableJoin(start, keep, tail)
