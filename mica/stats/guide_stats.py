"""Guide-star statistics: one row per guide star (GUI/BOT) per observation.

Same read API as `mica.stats.acq_stats`; the table is ``<archive>/guide_stats/guide_stats.h5``
(node ``/data``, indexes obsid, agasc_id, CSI kalman_tstart), written by
``mica update guide-stats``. The table's columns (`DTYPE`), folder and file name are the
product's, `mica.stats.guide_product`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mica.common import computed_attributes
from mica.stats.acq_product import star_condition
from mica.stats.guide_product import DTYPE, FOLDER, GUIDE_STATS, TABLE_NAME

__all__ = ["DTYPE", "TABLE_NAME", "FOLDER", "table_path", "get_stats", "get_star_stats"]


def table_path(data_root: str | os.PathLike | None = None) -> Path:
    """The table file: ``<data_root>/guide_stats.h5``; default ``<archive>/guide_stats/``."""
    return GUIDE_STATS.table(data_root).path


def get_stats(filter: bool = True, data_root: str | os.PathLike | None = None) -> np.ndarray:
    """Every row of the table (``filter=True``: without the ``known_bad`` ones)."""
    rows = GUIDE_STATS.table(data_root).read()
    return rows[~rows["known_bad"]] if filter else rows


def get_star_stats(
    id: int, filter: bool = True, data_root: str | os.PathLike | None = None
) -> np.ndarray:
    """Every guide-star row of the AGASC star ``id`` (in-kernel indexed search)."""
    rows = GUIDE_STATS.table(data_root).read(star_condition(id))
    return rows[~rows["known_bad"]] if filter else rows


#: The original's ``TABLE_FILE``: `table_path` as a string, under the archive root in force
#: at each access.
__getattr__ = computed_attributes(__name__, {"TABLE_FILE": lambda: str(table_path())})
