"""Reads the header-3 sample tables of the L0 store (their layout and builder:
`mica.products.hdr3_samples`).

A fetch over any range is cut at the sample view's period boundaries: the times of period
``k`` (``k * period <= t < (k + 1) * period``) are served by that period's table, which holds
every row within `SAMPLES_REACH` of the period (so its gap test and slot match are those of the
whole archive for the period's own times). `open_tables` gives the parts of a range in time
order: a part whose chunk is current comes with its grid (the tables' TIME over the part,
merged over the items' grid slots; a long part of one grid slot with its rows only, its times
read where the caller's output holds them, `Part.read_grid`) and `fill` decodes its items'
values block by block into the caller's output; a part whose chunk is dirty, missing, out of
date or damaged has no tables and `mica.archive.aca_hdr3` reads its rows from the files. The
parts' grids are disjoint and sorted, so the whole grid is their concatenation.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mica.engine.h5chunks import thread_buffer
from mica.products.hdr3_items import Hdr3Item
from mica.products.hdr3_samples import SAMPLE_BLOCK, SAMPLES_VIEW, item_datasets, table_words

if TYPE_CHECKING:
    from mica.engine.h5chunks import ChunkDigests
    from mica.engine.stored_blocks import StoredBlocks

#: Table rows read at a time, from a multiple of it (so of the tables' HDF5 block rows: each
#: block is decoded once), into buffers of the thread kept for its next read (`_borrow`):
#: 3-7 bytes a row, the words and flags of a few items, that a fetch would otherwise
#: allocate beside its output.
READ_ROWS = 1 << 16
#: Table rows decoded at a time into a fetch's output, at most and at least: a sixth of the
#: fetch's rows between the two, so the decoders' temporaries (about 26 bytes a row) stay
#: small beside the output (17 bytes a row for ``ccd_temp``) and in the CPU's cache. Of the
#: fetch's, not the part's: a 25-year fetch of 100-day parts decoded 8k rows at a time spent
#: a sixth of its time in the decoders' per-call costs (measured). At least 1k: a 2-day
#: fetch (7k rows) decoded 8k rows at a time peaked at 2.6 times its output, now 1.4.
DECODE_ROWS = (1 << 10, 1 << 16)
#: ``S<slot>.BLOCK0`` of the chunk files read lately, by (file, slot): a chunk file is never
#: changed under its name (a rebuild writes a new one), so a fetch's next read of the file
#: needs only its rows; those rows are checked against the digests as always.
_BLOCK0: dict[tuple[str, int], np.ndarray] = {}
_BLOCK0_MAX = 1024
#: Rows of ``TIME`` read at most into a buffer of the thread (kept for its next read) rather
#: than a new array: a short part's rows are a few of the blocks' around them, copied out.
_WINDOW_ROWS = 1 << 14
#: Parts of at most this long (s) at one edge of their period are looked for first in the
#: ``TIME`` block at that edge (`_edge_times`): a table gains a row every 4.1 s or so, so
#: its first or last HDF5 block (16k rows, about 18 h) holds them, and the chunk file's
#: ``BLOCK0`` need not be read (on a first call across a period edge, one dataset read less
#: per chunk file: its record built, its block read, checked and decoded).
_EDGE_SECONDS = 4 * 3600.0
#: Rows of the longest grid merged at a time when a part's grid slots' times differ
#: (`_merge`): the block's temporaries (about 33 bytes a time, 1 MB for two grids) are reused
#: from block to block; fewer rows cost more Python calls (8192 or 4096 rows: slower warm).
MERGE_ROWS = 1 << 14

#: Where a slot's rows go in a part's grid: all of it in order, or these positions.
Placement = slice | np.ndarray


@dataclass
class SlotTable:
    """The rows [lo, hi) of one grid slot's table in an open chunk file, and where they go
    in the part's grid."""

    chunk: StoredBlocks
    digests: ChunkDigests | None
    slot: int
    lo: int
    hi: int
    placed: Placement = field(default_factory=lambda: slice(None))


@dataclass
class Part:
    """The times ``lo <= t < hi`` (``t <= hi`` when ``closed``) of one period of a fetch.

    ``tables`` (grid slot -> `SlotTable`) is None when the part is to be read from the
    files; else ``grid`` holds its times (the union of its grid slots' times), or ``unread``
    says where they are (`read_grid`). A ``synced``
    part's damaged chunk raises `MissingDataError` naming the ``mica sync`` that fetches it
    again (`mica.engine.synced.synced_chunk_lost`).
    """

    lo: float
    hi: float
    closed: bool
    tables: dict[int, SlotTable] | None = None
    grid: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: its chunk was installed by a sync without the period's files: none to read instead
    synced: bool = False
    #: the part starts where its period does, and ends where it does (the fetch goes on
    #: before and after it)
    starts: bool = False
    ends: bool = False
    #: the table whose ``TIME`` rows [lo, hi) (a window of `SAMPLE_BLOCK` blocks: ``BLOCK0``
    #: says they hold the part's times) hold the part's grid, not read yet (``grid`` is then
    #: empty): a long part's times are read where the fetch's output holds them
    #: (`read_grid`), not into an array of their own first
    unread: SlotTable | None = None

    def grid_rows(self) -> int:
        """The number of times of the part's grid, or while it is `unread`, of its window
        (at least as many)."""
        if self.unread is None:
            return len(self.grid)
        return min(self.unread.hi, self.unread.chunk.rows(f"S{self.unread.slot}.TIME")) - (
            self.unread.lo
        )

    def read_grid(self, out: np.ndarray) -> int:
        """Put the part's grid at the start of ``out`` (`grid_rows` long, contiguous);
        returns its length. An `unread` part's window is read there (each stored block
        decoded once, no array of its own), its times moved to the start (from the cache);
        its table's rows are then the part's own."""
        table = self.unread
        if table is None:
            out[: len(self.grid)] = self.grid
            return len(self.grid)
        name = f"S{table.slot}.TIME"
        window = out[: self.grid_rows()]
        with _reading(table.digests, self):
            if table.chunk.map(name).blosc:
                table.chunk.read(name, table.lo, table.lo + len(window), out=window)
            else:
                window[:] = _read(table.chunk, name, table.lo, table.lo + len(window))
        a = int(np.searchsorted(window, self.lo, "left"))
        b = max(a, int(np.searchsorted(window, self.hi, "right" if self.closed else "left")))
        if a:  # (memmove: numpy would copy overlapping rows through a new array)
            at, size = window.ctypes.data, window.itemsize
            ctypes.memmove(at, at + a * size, (b - a) * size)
        table.lo, table.hi = table.lo + a, table.lo + b
        self.unread = None
        return table.hi - table.lo

    def covers_grid(self) -> bool:
        """Whether one grid slot's rows are the whole grid, in order (values need no
        placing)."""
        return self.tables is not None and all(
            isinstance(t.placed, slice) for t in self.tables.values()
        )

    def fill(
        self,
        items: Mapping[str, Hdr3Item],
        outs: Mapping[str, tuple[np.ndarray, np.ndarray]],
        at: int,
    ) -> None:
        """Decode each item's values of this part into ``outs[name]`` (data, mask) from
        position ``at``: the table's datasets are read `READ_ROWS` rows at a time (every
        block read checked against the chunk's digests) and decoded a block of rows at a time
        (`DECODE_ROWS`: the decoders' temporaries stay small and in the CPU's cache). Grid
        positions an item's slot has no row at are left as they are (the caller fills them)."""
        assert self.tables is not None
        least, most = DECODE_ROWS  # (np.clip of a number: 0.12 ms on a first call)
        step = min(max(len(next(iter(outs.values()))[0]) // 6, least), most)
        for slot, table in self.tables.items():
            mine = {n: item for n, item in items.items() if item.slot == slot}
            where, names = _table_datasets(mine, slot)
            base = f"S{slot}."
            for lo, hi in _spans(table.lo, table.hi, READ_ROWS):
                with _reading(table.digests, self):
                    cols = {n: _borrow(table.chunk, base + n, lo, hi, n) for n in names}
                for a in range(0, hi - lo, step):
                    b = min(a + step, hi - lo)
                    words = table_words({n: c[a:b] for n, c in cols.items()}, where)
                    first = lo - table.lo + a  # of these rows in the part's rows
                    if isinstance(table.placed, slice):
                        target: Placement = slice(at + first, at + first + b - a)
                    else:
                        target = np.add(table.placed[first : first + b - a], at, dtype=np.intp)
                    for name, item in mine.items():
                        values = item.decode_words(*words[name])
                        data, mask = outs[name]
                        data[target] = np.ma.getdata(values)
                        mask[target] = np.ma.getmaskarray(values)

    def decode(self, items: Mapping[str, Hdr3Item]) -> dict[str, np.ma.MaskedArray]:
        """Each item's values over the part's grid as the decoders give them, for a part one
        grid slot covers (no output to copy them into: for a part of a few blocks' rows)."""
        assert self.tables is not None and len(self.tables) == 1 and self.covers_grid()
        ((slot, table),) = self.tables.items()
        where, names = _table_datasets(items, slot)
        with _reading(table.digests, self):
            cols = {n: _read(table.chunk, f"S{slot}.{n}", table.lo, table.hi) for n in names}
        words = table_words(cols, where)
        return {name: item.decode_words(*words[name]) for name, item in items.items()}


def _table_datasets(
    items: Mapping[str, Hdr3Item], slot: int
) -> tuple[dict[str, list[tuple[str, bool]]], set[str]]:
    """Where the table of grid slot ``slot`` holds each of those ``items`` whose grid slot
    it is (`item_datasets`), and the datasets read for them (names without the ``S<slot>.``
    prefix, ``FLAGS`` first among them)."""
    where = {n: item_datasets(item, slot) for n, item in items.items() if item.slot == slot}
    return where, {"FLAGS", *(name for words in where.values() for name, _ in words)}


@contextlib.contextmanager
def _reading(digests: ChunkDigests | None, part: Part) -> Iterator[None]:
    """HDF5's failures to read a checked chunk raised as `DamagedStoreError` (for a
    ``synced`` part: as the `MissingDataError` naming the sync that fetches it again)."""
    from mica.engine.synced import synced_chunk_lost
    from mica.errors import DamagedStoreError

    try:
        with digests.reading() if digests is not None else contextlib.nullcontext():
            yield
    except DamagedStoreError as err:
        if not part.synced:
            raise
        raise synced_chunk_lost(err, "aca-hdr3", part.lo, part.hi) from None


@contextlib.contextmanager
def open_tables(
    items: Mapping[str, Hdr3Item],
    tstart: float,
    tstop: float,
    data_root: str | Path | None,
) -> Iterator[list[Part]]:
    """The parts of [tstart, tstop], one per period of the sample view it crosses, in time
    order (see the module description); the chunk files of the parts with tables stay open
    until the context ends (a chunk replaced meanwhile stays readable).

    Parameters
    ----------
    items : mapping
        Name -> item.
    tstart, tstop : float
        The range, CXC seconds, inclusive.
    data_root : str or Path, optional
        The ``aca0`` folder.

    Raises
    ------
    MissingArchiveError
        When ``data_root`` holds no L0 archive.
    DamagedStoreError
        A chunk failed its checks and ``MICA_STORE_DAMAGED=raise`` (with the default,
        its part is read from the files).
    MissingDataError
        A chunk a sync installed without its period's files failed its checks (it names
        the ``mica sync`` that fetches it again), or the range lies outside what was synced.
    """
    from mica.engine.read import snapshot_read
    from mica.engine.synced import require_synced
    from mica.products.aca_l0 import L0

    root = L0.root(data_root)
    require_synced(root, ["aca-hdr3", "aca-l0"], tstart, tstop)
    view = L0.store_description.view_named(SAMPLES_VIEW)
    slots = sorted({item.slot for item in items.values()})
    # per grid slot, the datasets the items read from its table (besides TIME)
    reads = {s: _table_datasets(items, s)[1] for s in slots}
    first, last = int(tstart // view.period), int(tstop // view.period)
    opened: list[Any] = []
    parts: list[Part] = []

    def from_store(index: Any, _: list[dict[str, Any]]) -> list[dict[str, Any]]:
        _close(opened)  # a retry starts again from a fresh snapshot
        parts.clear()
        # Only the periods' chunks are looked up: one query (`current_chunks`), no index row.
        keys = {k: view.key({"filetime": k * view.period}) for k in range(first, last + 1)}
        current, synced = _current(index, keys.values())
        for k, key in keys.items():
            lo, hi = max(tstart, k * view.period), min(tstop, (k + 1) * view.period)
            part = Part(lo, hi, closed=k == last, synced=key in synced)
            part.starts, part.ends = lo == k * view.period, hi == (k + 1) * view.period
            chunk = current.get(key)
            if chunk is not None:
                _open_part(part, index, chunk, reads, opened)
            parts.append(part)
        return []

    try:
        snapshot_read(L0, root, lambda index: [], from_store, lambda rec: None)
        yield parts
    finally:
        _close(opened)


def _current(index: Any, keys: Any) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """The current chunks of partitions ``keys``, and which of them a sync installed."""
    from mica.engine.colstore import ColumnStore
    from mica.products.aca_l0 import L0

    store = ColumnStore(L0, index)
    current = store.current_chunks(keys, names=False)  # its datasets, not its files
    return current, store.synced_alone(current) if current else set()


def _close(opened: list[Any]) -> None:
    while opened:
        opened.pop().close()


def _open_part(
    part: Part, index: Any, chunk: dict[str, Any], reads: dict[int, set[str]], opened: list[Any]
) -> None:
    """Give ``part`` its tables and grid from ``chunk`` (left without: read from the files,
    when the chunk is gone or fails its checks, `serve_from_files`). A ``synced`` part has
    no files to read instead: its chunk gone makes the read start again from a fresh
    snapshot (`snapshot_read`), a damaged one raises (`synced_chunk_lost`).

    ``reads`` (grid slot -> the datasets of its table `Part.fill` reads) are located here,
    while the snapshot holds: in a chunk recorded without block locations, HDF5 opens the
    file by its name, which a rebuild may remove once the snapshot ends."""
    from mica.engine.colstore import ColumnStore, serve_from_files
    from mica.engine.stored_blocks import StoredBlocks
    from mica.engine.synced import synced_chunk_lost
    from mica.errors import DamagedStoreError
    from mica.products.aca_l0 import L0

    store = ColumnStore(L0, index)
    try:
        with store.checking(chunk) as digests:
            blocks = StoredBlocks(index.root / chunk["path"], digests)
            opened.append(blocks)
            if len(reads) == 1:  # one grid slot: a long part's times are read later
                ((slot, _),) = reads.items()
                unread = _unread_rows(blocks, slot, part)
                if unread is not None:  # (its TIME located now too: read after the snapshot)
                    for name in {"TIME", *reads[slot]}:
                        blocks.map(f"S{slot}.{name}")
                    part.unread, part.tables = unread, {slot: unread}
                    return
            grids = {s: _slot_rows(blocks, s, part) for s in reads}
            for slot, (_, table) in grids.items():
                for name in reads[slot] if table.hi > table.lo else ():
                    blocks.map(f"S{slot}.{name}")
    except DamagedStoreError as err:
        if part.synced:
            raise synced_chunk_lost(err, "aca-hdr3", part.lo, part.hi) from None
        serve_from_files(err)  # or raise; else the part's rows are read from the files
        return
    except (OSError, KeyError) as err:  # chunk replaced since the snapshot
        if isinstance(err, FileNotFoundError) and part.synced:
            raise
        return
    part.tables = {s: table for s, (_, table) in grids.items()}
    part.grid = _merge(part.tables, {s: times for s, (times, _) in grids.items()})


def _slot_rows(chunk: StoredBlocks, slot: int, part: Part) -> tuple[np.ndarray, SlotTable]:
    """The times of ``slot``'s table within the part, and its rows."""
    name = f"S{slot}.TIME"
    digests = chunk.digests
    try:
        if digests is not None and name not in digests.datasets:
            raise KeyError(name)  # (StoredBlocks says so for a chunk without digests)
        times, first = _time_window(chunk, slot, part)
    except KeyError:  # no 8x8 file of this slot in the partition (none recorded either)
        return np.zeros(0), SlotTable(chunk, digests, slot, 0, 0)
    a = int(np.searchsorted(times, part.lo, "left"))
    b = int(np.searchsorted(times, part.hi, "right" if part.closed else "left"))
    # a window in a buffer of the thread is copied out (the next read reuses it); a window of
    # its own stays (a fetch of several parts copies the grids into one, of one part keeps
    # the part's rows alone: `mica.archive.aca_hdr3`)
    times = times[a:b] if times.flags.owndata else times[a:b].copy()
    return times, SlotTable(chunk, digests, slot, first + a, first + b)


def _unread_rows(chunk: StoredBlocks, slot: int, part: Part) -> SlotTable | None:
    """The window of ``slot``'s table holding the part's times (`_window`; for a part that is
    its whole period, on the file's first read, the whole table: each ``BLOCK0`` read cost a
    25-year fetch's first call 0.18 ms a period), left to be read into the fetch's output
    (`Part.read_grid`) when it is more than `_WINDOW_ROWS` rows (else None: `_slot_rows`
    reads it).

    A 25-year fetch read each 100-day part's times into an array of its own (under the size
    numpy asks huge pages for), then copied them into its output: 9.4k of its 12.8k page
    faults, 23-28 ms of system time that varied with the machine's memory (measured)."""
    name = f"S{slot}.TIME"
    digests = chunk.digests
    if digests is not None and name not in digests.datasets:
        return None  # (`_slot_rows`: no row of this slot)
    if _at_edge(part) and (chunk.path, slot) not in _BLOCK0:
        return None  # (`_slot_rows`: its edge block, at most `_WINDOW_ROWS` rows)
    if part.starts and part.ends and (chunk.path, slot) not in _BLOCK0:
        first, last = 0, chunk.rows(name)  # the whole table (as `_time_window`: no BLOCK0)
    else:
        first, last = _window(_block0(chunk, slot), part)
    if last - first <= _WINDOW_ROWS:
        return None
    return SlotTable(chunk, digests, slot, first, last)


def _block0(chunk: StoredBlocks, slot: int) -> np.ndarray:
    """``S<slot>.BLOCK0`` of the chunk file, kept in `_BLOCK0`."""
    block0 = _BLOCK0.get((chunk.path, slot))
    if block0 is None:
        block0 = _read(chunk, f"S{slot}.BLOCK0")
        if len(_BLOCK0) >= _BLOCK0_MAX:
            _BLOCK0.clear()
        _BLOCK0[chunk.path, slot] = block0
    return block0


def _read(chunk: StoredBlocks, name: str, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Rows [lo, hi) of a table dataset, its blocks checked against the chunk's digests (by
    `StoredBlocks`, or by HDF5's read for a dataset not filtered by Blosc alone)."""
    from mica.engine.h5chunks import read_slab

    if chunk.map(name).blosc:
        return chunk.read(name, lo, hi)
    return read_slab(chunk.h5(), name, lo, hi, chunk.digests)


def _spans(lo: int, hi: int, size: int) -> Iterator[tuple[int, int]]:
    """[lo, hi) cut at the multiples of ``size``."""
    while lo < hi:
        end = min((lo // size + 1) * size, hi)
        yield lo, end
        lo = end


def _borrow(chunk: StoredBlocks, name: str, lo: int, hi: int | None, buffer: str) -> np.ndarray:
    """Rows [lo, hi) (None: to the end) of a table dataset (`_read`), in this thread's buffer
    named ``buffer``, valid until its next use (a dataset HDF5 reads: in a new array)."""
    bmap = chunk.map(name)
    if not bmap.blosc:
        return _read(chunk, name, lo, hi)
    hi = bmap.shape[0] if hi is None else min(hi, bmap.shape[0])
    shape = (hi - min(lo, hi), *bmap.shape[1:])
    nbytes = bmap.dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    out = thread_buffer(f"hdr3 {buffer}", nbytes).view(bmap.dtype).reshape(shape)
    return chunk.read(name, lo, hi, out=out)


def _read_times(chunk: StoredBlocks, name: str, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Rows [lo, hi) of a ``TIME`` dataset: up to `_WINDOW_ROWS` of them borrowed (`_borrow`:
    not an array of their own), more in a new array."""
    if (chunk.rows(name) if hi is None else hi) - lo > _WINDOW_ROWS:
        return _read(chunk, name, lo, hi)
    return _borrow(chunk, name, lo, hi, "TIME")


def _time_window(chunk: StoredBlocks, slot: int, part: Part) -> tuple[np.ndarray, int]:
    """Rows [first, first + n) of the slot's ``TIME``, holding every time of the part, and
    ``first``: the blocks of `SAMPLE_BLOCK` rows ``BLOCK0`` (kept in `_BLOCK0`) says hold
    them, or on a file's first read, for a part that is its whole period, ``TIME`` whole.

    ``BLOCK0`` (a few hundred bytes, stored as they are) costs a short part less than
    guessing its rows from the end of ``TIME`` nearest to it: a guess long enough to hold
    the rows a table keeps past its period's edge may reach into one more HDF5 block of
    ``TIME``, decoded whole (an hour across a period edge: three blocks, now two)."""
    name = f"S{slot}.TIME"
    block0 = _BLOCK0.get((chunk.path, slot))
    if block0 is None and part.starts and part.ends:  # the whole table
        return _read_times(chunk, name), 0
    if block0 is None and _at_edge(part):
        found = _edge_times(chunk, name, part)
        if found is not None:
            return found
    if block0 is None:
        block0 = _block0(chunk, slot)
    if not len(block0):
        return np.zeros(0), 0
    first, last = _window(block0, part)
    return _read_times(chunk, name, first, last), first


def _at_edge(part: Part) -> bool:
    """Whether the part is short and at one edge of its period (`_edge_times`)."""
    return part.starts != part.ends and part.hi - part.lo <= _EDGE_SECONDS


def _edge_times(chunk: StoredBlocks, name: str, part: Part) -> tuple[np.ndarray, int] | None:
    """Rows [first, first + n) of ``TIME`` (``name``) and ``first``: the stored block at the
    part's edge of the table (its first for a part that starts its period, else its last)
    when it holds every time of the part; None when it may not (``BLOCK0`` says where they
    are) or ``TIME`` is not stored in blocks of at most `_WINDOW_ROWS` rows.

    The table's times are sorted and distinct: a block whose last time is past the part's
    end (first block) or whose first time is not past the part's start (last block) holds
    every time of the part the table holds, as the table's other edge does."""
    bmap = chunk.map(name)
    rows, n = bmap.rows, bmap.shape[0]
    if not bmap.blosc or not 0 < rows <= _WINDOW_ROWS:
        return None
    if not n:
        return np.zeros(0), 0
    first = 0 if part.starts else (n - 1) // rows * rows
    last = min(first + rows, n)
    times = _read_times(chunk, name, first, last)
    if part.starts and (last == n or times[-1] > part.hi):
        return times, first
    if part.ends and (first == 0 or times[0] <= part.lo):
        return times, first
    return None


def _window(block0: np.ndarray, part: Part) -> tuple[int, int]:
    """Rows [first, last) of a table (``last`` may pass its end) holding every time of the
    part: the `SAMPLE_BLOCK` blocks ``block0`` (their first times) says do."""
    first = max(int(np.searchsorted(block0, part.lo, "left")) - 1, 0) * SAMPLE_BLOCK
    last = int(np.searchsorted(block0, part.hi, "right")) * SAMPLE_BLOCK
    return first, last


def _merge(tables: dict[int, SlotTable], times: dict[int, np.ndarray]) -> np.ndarray:
    """The part's grid: the sorted union of its grid slots' times (each without repeats);
    sets each table's placement in it.

    Grids that differ are merged `MERGE_ROWS` rows of the longest at a time (`_merge_block`):
    every grid is cut at the same times, so a time of several grids falls in one block.
    Merged whole, a 100-day part's two grids (290 k times) made 12 MB of temporaries the
    system had to fault in page by page: 11-12.6 ms of a first call, 6-6.4 ms in blocks;
    warm, 3-8 ms whole (as the allocator kept the memory or not), 4.6-5.7 ms in blocks. A
    99-day part of 755 k times: 22-27 ms first and 12-17.6 ms warm whole, 15.6-16 and
    12.6-14 ms in blocks (CPU times, 4 rounds on a loaded machine).
    """
    grids = list(times.values())
    if len(grids) == 1 or all(np.array_equal(grids[0], g) for g in grids[1:]):
        # Slots usually read out together: the same times, row for row.
        return grids[0]
    longest = max(grids, key=len)
    edges = longest[MERGE_ROWS::MERGE_ROWS]
    cuts = [[0, *np.searchsorted(grid, edges, "left").tolist(), len(grid)] for grid in grids]
    union = np.empty(sum(len(grid) for grid in grids))
    # positions are int32: a part holds far fewer rows than 2**31
    placed = [np.empty(len(grid), dtype=np.int32) for grid in grids]
    at = 0
    for k in range(len(edges) + 1):
        pieces = [(grid, cut[k], cut[k + 1]) for grid, cut in zip(grids, cuts)]
        at = _merge_block(pieces, placed, union, at)
    for slot, positions in zip(times, placed):
        tables[slot].placed = positions
    union.resize(at, refcheck=False)  # the union's own buffer, freshly made: no other view
    return union


def _merge_block(
    pieces: list[tuple[np.ndarray, int, int]], placed: list[np.ndarray], union: np.ndarray, at: int
) -> int:
    """Merge rows [lo, hi) of each grid (``pieces``: (grid, lo, hi), the same times cut from
    each): their union goes to ``union`` from ``at``, each row's position in ``union`` to
    ``placed`` (per grid, at the row's own index); returns where the union now ends.

    A merge of sorted runs (timsort: linear in the rows for a few runs), then each row's
    position in the union from the ranks of the distinct times: no search."""
    every = np.concatenate([grid[lo:hi] for grid, lo, hi in pieces])
    if not len(every):
        return at
    order = np.argsort(every, kind="stable")
    merged = every[order]
    new = np.ones(len(merged), dtype=bool)
    np.not_equal(merged[1:], merged[:-1], out=new[1:])
    rank = np.cumsum(new, dtype=np.int32)
    rank += at - 1
    position = np.empty(len(merged), dtype=np.int32)
    position[order] = rank
    first = 0
    for positions, (_, lo, hi) in zip(placed, pieces):
        positions[lo:hi] = position[first : first + hi - lo]
        first += hi - lo
    end = int(rank[-1]) + 1
    union[at:end] = merged[new]  # (np.compress with ``out`` took 6x as long)
    return end
