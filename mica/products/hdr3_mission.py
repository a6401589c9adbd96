"""The header-3 items' daily statistics over the whole mission: one store table (``hd3d``).

Each ``hd3s`` chunk holds the daily bins of every item starting in its 100 days
(`mica.products.hdr3_stats`); 25 years of them are 92 chunks, and a reader opening each paid
most of a 25-year daily read in the opens. This table holds the same bins, every period's
after the one before, one dataset an item, so a daily read of any range opens one file and
reads one dataset (`mica.archive.hdr3_stats` reads it).

Datasets: ``ST.<key>.daily``, the (nfields, nbins) float64 columns of an item's daily bins
(`mica.products.hdr3_stats.STATS_FIELDS`), by bin index, exactly the chunks' (an item
without samples in the mission has none). The engine (`mica.engine.store_tables`) derives it
from the chunks when the store is built or updated, records it with digests and serves it
only while it is derived from the chunks now recorded; otherwise readers read the chunks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mica.engine.store_layout import StoreTable
from mica.products.hdr3_items import ITEMS
from mica.products.hdr3_samples import SAMPLES_VIEW
from mica.products.hdr3_stats import stats_dataset

if TYPE_CHECKING:  # the engine's readers are imported when the table is derived
    from mica.engine.h5chunks import ChunkDigests

__all__ = ["DAILY_TABLE", "DAILY_TABLE_STAT", "daily_table"]

#: The statistic the table holds.
DAILY_TABLE_STAT = "daily"


def daily_table(chunks: list[tuple[str, Path, ChunkDigests]]) -> dict[str, np.ndarray]:
    """The table's datasets from the ``hd3s`` chunks, in period order (each block read
    checked against the chunk's digests).

    Parameters
    ----------
    chunks : list of (str, Path, ChunkDigests)
        Every current chunk of the view: partition, file, digests.

    Returns
    -------
    dict
        ``ST.<key>.daily`` -> (nfields, nbins) float64, for the items with bins.
    """
    from mica.engine.colstore import read_slab
    from mica.engine.h5chunks import one_blosc_thread, open_h5_id

    pieces: dict[str, list[np.ndarray]] = {}
    for _, path, digests in chunks:
        fid = open_h5_id(path)
        try:
            with one_blosc_thread, digests.reading():
                for key in ITEMS:
                    name = stats_dataset(key, DAILY_TABLE_STAT)
                    if name in digests.datasets:
                        pieces.setdefault(name, []).append(read_slab(fid, name, digests=digests))
        finally:
            fid.close()  # not left to the collector: a later writer's open of the file
    return {name: np.concatenate(parts, axis=1) for name, parts in pieces.items()}


#: The table, as `mica.products.aca_l0`'s store description lists it.
DAILY_TABLE = StoreTable("hd3d", SAMPLES_VIEW, daily_table, layout=1)
