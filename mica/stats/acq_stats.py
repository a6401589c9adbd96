"""Acquisition statistics: one row per acquisition star (ACQ/BOT) per observation.

Read API of the original ``mica.stats.acq_stats``::

    from mica.stats.acq_stats import get_stats, get_star_stats
    stats = get_stats()                 # numpy structured array, known_bad rows dropped
    get_star_stats(stats['agasc_id'][0])

The table is a PyTables table at node ``/data`` of ``<archive>/acq_stats/acq_stats.h5``
(`table_path`), with indexes on obsid, agasc_id and a completely sorted one on guide_tstart;
``mica update acq-stats`` writes it. The table's columns (`DTYPE`), folder and file name are
the product's, `mica.stats.acq_product`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mica.common import computed_attributes
from mica.stats.acq_product import ACQ_STATS, DTYPE, FOLDER, TABLE_NAME, star_condition

__all__ = ["DTYPE", "TABLE_NAME", "FOLDER", "table_path", "get_stats", "get_star_stats"]


def table_path(data_root: str | os.PathLike | None = None) -> Path:
    """The table file: ``<data_root>/acq_stats.h5``; default ``<archive>/acq_stats/``."""
    return ACQ_STATS.table(data_root).path


def get_stats(filter: bool = True, data_root: str | os.PathLike | None = None) -> np.ndarray:
    """Every row of the table (``filter=True``: without the ``known_bad`` ones)."""
    rows = ACQ_STATS.table(data_root).read()
    return rows[~rows["known_bad"]] if filter else rows


def get_star_stats(
    id: int, filter: bool = True, data_root: str | os.PathLike | None = None
) -> np.ndarray:
    """Every acquisition of the AGASC star ``id`` (in-kernel indexed search)."""
    rows = ACQ_STATS.table(data_root).read(star_condition(id))
    return rows[~rows["known_bad"]] if filter else rows


#: The original's ``TABLE_FILE``: `table_path` as a string, under the archive root in force
#: at each access.
__getattr__ = computed_attributes(__name__, {"TABLE_FILE": lambda: str(table_path())})
