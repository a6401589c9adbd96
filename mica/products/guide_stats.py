"""The guide-star statistics product (``guide-stats``): a derived table, one unit per obsid/OBI.

Same inputs and planning as `mica.products.acq_stats`; the table is
``<archive>/guide_stats/guide_stats.h5`` (`mica.stats.guide_stats`).
"""

from __future__ import annotations

from mica.engine.derived import TableSpec
from mica.products.acq_stats import ObservationStats
from mica.stats.guide_stats import DTYPE, FOLDER, TABLE_NAME

__all__ = ["GUIDE_STATS", "GuideStats", "SPEC"]

SPEC = TableSpec(
    DTYPE,
    key=("obsid", "obi"),
    indexes=("obsid", "agasc_id"),
    csi=("kalman_tstart",),
    preserve=("known_bad", "bad_comment"),
    match=("slot",),
)


class GuideStats(ObservationStats):
    """Guide statistics: one row per GUI/BOT star per observation (its own
    type, so the registry finds each description in its product module)."""


GUIDE_STATS = GuideStats(
    "guide-stats", FOLDER, TABLE_NAME, SPEC, "kalman_tstart", "mica.stats._guide:calc_guide_stats"
)
