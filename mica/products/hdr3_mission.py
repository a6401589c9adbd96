"""The header-3 items' daily statistics over the whole mission: one store table (``hd3d``).

Each ``hd3s`` chunk holds the daily bins of every item starting in its 100 days
(`mica.products.hdr3_stats`); 25 years of them are 92 chunks, and a reader opening each paid
most of a 25-year daily read in the opens. This table holds the same bins, every period's
after the one before, one dataset an item, so a daily read of any range opens one file and
reads one dataset (`mica.archive.hdr3_stats` reads it).

Datasets: ``ST.<key>.daily``, the (nfields, nbins) float64 columns of an item's daily bins
(`mica.products.hdr3_stats.STATS_FIELDS`), by bin index, exactly the chunks' (an item
without samples in the mission has none), and the engine's ``PIECES`` (where each period's
bins lie). The engine (`mica.engine.store_tables`) derives it from the chunks when the store
is built or updated (reading only the periods' chunks that changed), records it with digests
and serves it only while it is derived from the chunks now recorded; otherwise readers read
the chunks.
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

__all__ = ["DAILY_TABLE", "DAILY_TABLE_STAT", "period_daily_bins"]

#: The statistic the table holds.
DAILY_TABLE_STAT = "daily"


def period_daily_bins(part: str, path: Path, digests: ChunkDigests) -> dict[str, np.ndarray]:
    """The table's pieces from one ``hd3s`` chunk: its items' daily bins, each block read
    checked against the chunk's digests.

    Parameters
    ----------
    part : str
        The chunk's partition.
    path : Path
        The chunk file.
    digests : ChunkDigests
        Its recorded digests.

    Returns
    -------
    dict
        ``ST.<key>.daily`` -> (nfields, nbins) float64, for the items with bins in the
        chunk's period.
    """
    from mica.engine.h5chunks import one_blosc_thread, open_h5_id, read_slab

    fid = open_h5_id(path)
    try:
        with one_blosc_thread, digests.reading():
            names = [stats_dataset(key, DAILY_TABLE_STAT) for key in ITEMS]
            return {
                name: read_slab(fid, name, digests=digests)
                for name in names
                if name in digests.datasets
            }
    finally:
        fid.close()  # not left to the collector: a later writer's open of the file


#: The table, as `mica.products.aca_l0`'s store description lists it.
#: (layout 2: with the engine's `mica.engine.store_tables.PIECES`, so that an update reads
#: only the chunks that changed)
DAILY_TABLE = StoreTable("hd3d", SAMPLES_VIEW, period_daily_bins, layout=2)
