"""Guide-star statistics: one row per guide star (GUI/BOT) per observation (acq_stats.md 8).

Same read API as `mica.stats.acq_stats`; the table is ``<archive>/guide_stats/guide_stats.h5``
(node ``/data``, indexes obsid, agasc_id, CSI kalman_tstart), written by
``mica update guide-stats`` (`mica.products.guide_stats`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mica.common import computed_attributes

__all__ = ["DTYPE", "TABLE_NAME", "FOLDER", "table_path", "get_stats", "get_star_stats"]

FOLDER = "guide_stats"
TABLE_NAME = "guide_stats.h5"
_F, _I = "<f8", "<i8"
_OBS = [("obsid", _I), ("obi", _I), ("kalman_tstart", _F), ("npnt_tstop", _F),
        ("kalman_datestart", "S21"), ("npnt_datestop", "S21"), ("revision", "S15")]  # fmt: skip
_CAT = [("slot", _I), ("idx", _I), ("type", "S5"), ("yang", _F), ("zang", _F), ("sz", "S4"),
        ("mag", _F)]  # fmt: skip
_STAT = (
    [("n_samples", _I), ("n_track", _I), ("f_track", _F), ("f_racq", _F), ("f_srch", _F),
     ("f_none", _F), ("n_kalman", _I), ("no_track", _F)]
    + [(f"f_within_{x}", _F) for x in ("0.3", "1", "3", "5")]
    + [(n, _F) for n in ("f_outside_5 f_obc_bad f_common_col f_quad_bound f_sat_pix f_def_pix "
                         "f_ion_rad f_mult_star aoacmag_min aoacmag_mean aoacmag_max aoacmag_5th "
                         "aoacmag_16th aoacmag_50th aoacmag_84th aoacmag_95th aoacmag_std "
                         "aoacyan_mean aoaczan_mean dy_min dy_mean dy_std dy_max dz_min dz_mean "
                         "dz_std dz_max dr_min dr_mean dr_std dr_5th dr_95th dr_max").split()]
    + [(n, _I) for n in ("n_track_interv n_long_track_interv n_long_no_track_interv "
                         "n_racq_interv n_srch_interv").split()]
)  # fmt: skip
_AGASC = [("agasc_id", _I), ("color", _F), ("ra", _F), ("dec", _F), ("epoch", _F)] + [
    (n, _F if n == "mag_aca" else _I)
    for n in ("pm_ra pm_dec var pos_err mag_aca mag_aca_err mag_band pos_catid aspq1 aspq2 "
              "aspq3 acqq1 acqq2 acqq4").split()
]  # fmt: skip
_TEMP = [("n100_warm_frac", _F), ("tccd_mean", _F), ("tccd_max", _F)]
_BAD = [("known_bad", "?"), ("bad_comment", "S15")]

#: the 88 columns of acq_stats.md 8.3, in order (730 bytes a row)
DTYPE = np.dtype(_OBS + _CAT + _STAT + _AGASC + _TEMP + _BAD)


def table_path(data_root: str | os.PathLike | None = None) -> Path:
    """The table file: ``<data_root>/guide_stats.h5``; default ``<archive>/guide_stats/``."""
    from mica.products.guide_stats import GUIDE_STATS

    return GUIDE_STATS.table(data_root).path


def get_stats(filter: bool = True, data_root: str | os.PathLike | None = None) -> np.ndarray:
    """Every row of the table (``filter=True``: without the ``known_bad`` ones)."""
    from mica.products.guide_stats import GUIDE_STATS

    rows = GUIDE_STATS.table(data_root).read()
    return rows[~rows["known_bad"]] if filter else rows


def get_star_stats(
    id: int, filter: bool = True, data_root: str | os.PathLike | None = None
) -> np.ndarray:
    """Every guide-star row of the AGASC star ``id`` (in-kernel indexed search)."""
    from mica.products.guide_stats import GUIDE_STATS

    rows = GUIDE_STATS.table(data_root).read(f"agasc_id == {int(id)}")
    return rows[~rows["known_bad"]] if filter else rows


#: The original's ``TABLE_FILE``: `table_path` as a string, under the archive root in force
#: at each access.
__getattr__ = computed_attributes(__name__, {"TABLE_FILE": lambda: str(table_path())})
