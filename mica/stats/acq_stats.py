"""Acquisition statistics: one row per acquisition star (ACQ/BOT) per observation.

Read API of the original ``mica.stats.acq_stats``::

    from mica.stats.acq_stats import get_stats, get_star_stats
    stats = get_stats()                 # numpy structured array, known_bad rows dropped
    get_star_stats(stats['agasc_id'][0])

The table is a PyTables table at node ``/data`` of ``<archive>/acq_stats/acq_stats.h5``
(`table_path`), with indexes on obsid, agasc_id and a completely sorted one on guide_tstart;
``mica update acq-stats`` writes it (`mica.products.acq_stats`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mica.common import computed_attributes

__all__ = ["DTYPE", "TABLE_NAME", "FOLDER", "table_path", "get_stats", "get_star_stats"]

FOLDER = "acq_stats"
TABLE_NAME = "acq_stats.h5"

_OBS = [("obsid", "i8"), ("obi", "i8"), ("acq_start", "S21"), ("guide_start", "S21"),
        ("guide_tstart", "f8"), ("one_shot_length", "f8"), ("revision", "S15")]  # fmt: skip
_CAT = [("slot", "i8"), ("idx", "i8"), ("type", "S5"), ("yang", "f8"), ("zang", "f8"),
        ("halfw", "i8"), ("mag", "f8")]  # fmt: skip
_STAT = [("acqid", "?"), ("star_tracked", "?"), ("spoiler_tracked", "?"), ("img_func", "S7"),
         ("n_trak_interv", "i8"), ("max_trak_cdy", "f8"), ("min_trak_cdy", "f8"),
         ("mean_trak_cdy", "f8"), ("max_trak_cdz", "f8"), ("min_trak_cdz", "f8"),
         ("mean_trak_cdz", "f8"), ("max_trak_mag", "f8"), ("min_trak_mag", "f8"),
         ("mean_trak_mag", "f8"), ("cdy", "f8"), ("cdz", "f8"), ("dy", "f8"), ("dz", "f8"),
         ("ion_rad", "?"), ("def_pix", "?"), ("mult_star", "?"), ("sat_pix", "?"),
         ("mag_obs", "f8"), ("yang_obs", "f8"), ("zang_obs", "f8")]  # fmt: skip
_AGASC = [("agasc_id", "i8"), ("color1", "f8"), ("ra", "f8"), ("dec", "f8"), ("epoch", "f8"),
          ("pm_ra", "i8"), ("pm_dec", "i8"), ("var", "i8"), ("pos_err", "i8"),
          ("mag_aca", "f8"), ("mag_err", "i8"), ("mag_band", "i8"), ("pos_catid", "i8"),
          ("aspq1", "i8"), ("aspq2", "i8"), ("aspq3", "i8"), ("acqq1", "i8"), ("acqq2", "i8"),
          ("acqq4", "i8")]  # fmt: skip
_TEMP = [("n100_warm_frac", "f8"), ("ccd_temp", "f8")]
_BAD = [("known_bad", "?"), ("bad_comment", "S15")]

#: the 62 columns of the spec (acq_stats.md 4), in order; little-endian, 476 bytes a row
DTYPE = np.dtype([(n, "<" + t if t[0] in "if" else t) for n, t in
                  _OBS + _CAT + _STAT + _AGASC + _TEMP + _BAD])  # fmt: skip


def table_path(data_root: str | os.PathLike | None = None) -> Path:
    """The table file: ``<data_root>/acq_stats.h5``; default ``<archive>/acq_stats/``."""
    from mica.products.acq_stats import ACQ_STATS

    return ACQ_STATS.table(data_root).path


def get_stats(filter: bool = True, data_root: str | os.PathLike | None = None) -> np.ndarray:
    """Every row of the table (``filter=True``: without the ``known_bad`` ones)."""
    from mica.products.acq_stats import ACQ_STATS

    rows = ACQ_STATS.table(data_root).read()
    return rows[~rows["known_bad"]] if filter else rows


def get_star_stats(
    id: int, filter: bool = True, data_root: str | os.PathLike | None = None
) -> np.ndarray:
    """Every acquisition of the AGASC star ``id`` (in-kernel indexed search)."""
    from mica.products.acq_stats import ACQ_STATS

    rows = ACQ_STATS.table(data_root).read(f"agasc_id == {int(id)}")
    return rows[~rows["known_bad"]] if filter else rows


#: The original's ``TABLE_FILE``: `table_path` as a string, under the archive root in force
#: at each access.
__getattr__ = computed_attributes(__name__, {"TABLE_FILE": lambda: str(table_path())})
