"""A derived product (``obs-duration``): one number per obsid, computed from archived obspars.

Its table ``<archive>/obs_duration/obs_duration.h5`` holds a row per obsid: its start and
the length of its observation (all OBIs), read from the obspar archive (`mica.archive.obspar`).
The engine plans, runs and records the units (`mica.engine.derived`): an obsid without an
obspar is recorded as failed with the reason, and retried by ``--check-missing``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mica.archive import obspar
from mica.engine.derived import DerivedFailure, DerivedProduct, DerivedUnit, TableSpec
from mica.engine.index import require_archive
from mica.engine.registry import DERIVED, ProductEntry, register_product

DTYPE = np.dtype([("obsid", "<i4"), ("tstart", "<f8"), ("duration", "<f8")])


class ObsDuration(DerivedProduct):
    """The length of each archived observation (see the module docstring)."""

    name = "obs-duration"
    folder = "obs_duration"
    table_name = "obs_duration.h5"
    spec = TableSpec(DTYPE, key=("obsid",), indexes=("obsid",), csi=("tstart",))
    inputs = ("obspar",)

    def plan(self, archive, table, *, start, stop, obsids, check_missing):
        pars = require_archive("obspar", Path(archive) / "obspar")
        if obsids is None:  # the archived obsids in the range not yet done (or failed)
            skip = table.keys() | (set() if check_missing else table.failed_keys())
            found = obspar.get_obsids(start or 0.0, stop or 2e9, data_root=pars)
            obsids = [obsid for obsid in found if (obsid,) not in skip]
        spans = {obsid: obspar.obsid_interval(obsid, data_root=pars) for obsid in obsids}
        units = [
            DerivedUnit((obsid,), f"obsid {obsid}", span[0] if span else 0.0, obsid)
            for obsid, span in spans.items()
        ]
        return sorted(units, key=lambda unit: unit.tstart)

    def compute(self, archive, unit, staging):
        span = obspar.obsid_interval(unit.data, data_root=Path(archive) / "obspar")
        if span is None:
            raise DerivedFailure(f"obsid {unit.data} has no obspar: run `mica update obspar`")
        return np.array([(unit.data, span[0], span[1] - span[0])], DTYPE)


OBS_DURATION = ObsDuration()

#: The registry line (inside the package: an entry of the table in `mica.engine.registry`).
ENTRY = ProductEntry(
    "obs-duration", "derived", "example_derived:OBS_DURATION",
    "Observation lengths from the obspars into <archive>/obs_duration/obs_duration.h5.",
    DERIVED,
)  # fmt: skip


def register() -> None:
    """Make ``mica update obs-duration`` and ``mica check`` know the product."""
    register_product(ENTRY)
