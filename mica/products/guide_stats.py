"""The guide-star statistics product (``guide-stats``): a derived table, one unit per obsid/OBI.

Same inputs and planning as `mica.products.acq_stats`; the table is
``<archive>/guide_stats/guide_stats.h5`` (`mica.stats.guide_stats`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mica.engine.derived import DerivedFailure, DerivedProduct, DerivedUnit, TableSpec
from mica.products.acq_stats import obspar_obi, plan_observations
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


class GuideStats(DerivedProduct):
    """Guide statistics (acq_stats.md 8): one row per GUI/BOT star per observation."""

    name = "guide-stats"
    folder = FOLDER
    table_name = TABLE_NAME
    spec = SPEC
    inputs = ("obspar", "aca0")

    def plan(self, archive, table, *, start, stop, obsids, check_missing):
        return plan_observations(
            archive, table, "kalman_tstart", start=start, stop=stop, obsids=obsids,
            check_missing=check_missing,
        )  # fmt: skip

    def compute(self, archive: Path, unit: DerivedUnit, staging: Path) -> np.ndarray:
        from mica.stats._guide import calc_guide_stats
        from mica.stats.inputs import InputError, provider_for

        obsid = int(unit.data)
        obi = obspar_obi(archive, obsid)
        try:
            return calc_guide_stats(provider_for(archive), obsid, obi)
        except InputError as err:
            raise DerivedFailure(str(err)) from err


GUIDE_STATS = GuideStats()
