"""Reads the header-3 sample tables of the L0 store (their layout and builder:
`mica.products.hdr3_samples`).

`read_samples` serves a fetch from the tables when that gives exactly the file scan's answer:
the items share one grid slot, every 8x8 file of their slots whose rows reach the padded range
belongs to the one partition whose chunk is current (then the gap test and the slot match of
the partition are those of the whole archive). Otherwise it returns None and `aca_hdr3` reads
the rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mica.products.hdr3_items import Hdr3Item
from mica.products.hdr3_samples import (
    SAMPLE_BLOCK,
    SAMPLES_VIEW,
    ItemWords,
    item_datasets,
    table_words,
)


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
    from mica.engine.synced import require_synced
    from mica.engine.validate import TIME_AFTER_TSTOP, TIME_BEFORE_TSTART
    from mica.products.aca_l0 import L0

    grid_slots = {item.slot for item in items.values()}
    if len(grid_slots) != 1:
        return None
    slot = grid_slots.pop()
    need = sorted({s for item in items.values() for s in item.slots})
    root = L0.root(data_root)
    require_synced(root, ["aca-hdr3", "aca-l0"], tstart, tstop)
    view = L0.store_description.view_named(SAMPLES_VIEW)
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
            if len(periods) != 1:  # no file: no row, unless a sync brought the chunks alone
                synced = ColumnStore(L0, index).synced_alone()
                found.append(None if periods or synced else "empty")
                return []
            period = periods[0]
        # Otherwise no query: an L0 file's partition is that of its start time (ingest
        # refuses a name time other than int(TSTART)), so all lie in this one; were there
        # none, the table has no row in the range either (the same spans bound its rows).
        # The chunk also holds files of the next or previous period within its reach
        # (`SAMPLES_REACH`): by the same spans none has rows in [lo, hi].
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
    where = {msid: item_datasets(item, slot) for msid, item in items.items()}
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
    return grid, table_words(cols, where)


def _no_words(items: Mapping[str, Hdr3Item], n: int) -> dict[str, ItemWords]:
    """Every item's words, all masked, for a grid of ``n`` times without samples."""
    word, mask = np.zeros(n, dtype=np.uint16), np.ones(n, dtype=bool)
    return {
        msid: ([word] * len(item.word_columns), [mask] * len(item.word_columns))
        for msid, item in items.items()
    }
