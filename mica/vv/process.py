"""The original's ``mica.vv.process``: run and store the V&V of archived observations.

``update(obsids)`` and ``process(obsid, version)`` run ``mica update vv`` (the derived
product `mica.vv.product`, through the engine's runner, `update_derived`): every aspect L1
revision of the obsids (or every revision not yet V&V'd) gets its folder
``vv/<CC>/<OOOOO>_v<RR>`` and its rows in ``vv/vv.h5``. ``process`` then returns the `Obi`
of the asked version (computed again from the archive: the stored V&V is JSON and HDF5,
`mica.vv.get_vv`).
``get_arch_vv`` is `mica.vv.get_arch_vv`; ``VV_DTYPE`` the summary table's row
(the original's 37 columns, then ``disposition`` and ``reasons``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import mica.archive.asp_l1 as asp_l1_arch
import mica.archive.obspar as obspar_arch
from mica.archive import obsid_archive
from mica.common import computed_attributes
from mica.engine.report import UpdateReport
from mica.vv import get_arch_vv
from mica.vv.core import VV_VERSION, Obi
from mica.vv.table import VV_DTYPE
from mica.vv.vv import archive_files

__all__ = [
    "VV_DTYPE",
    "VV_VERSION",
    "Obi",
    "asp_l1_arch",
    "get_arch_vv",
    "obsid_archive",
    "obspar_arch",
    "process",
    "update",
]


def update(obsids: Iterable[int] | None = None) -> UpdateReport:
    """V&V the revisions of ``obsids`` (again), or every archived revision not yet done.

    Returns the update's report; failures are recorded (``mica check`` lists them) rather
    than raised, as the original logged and skipped them.
    """
    from mica.engine.derived import update_derived
    from mica.vv.product import VV

    chosen = None if obsids is None else [int(o) for o in obsids]
    return update_derived(VV, obsids=chosen)


def process(obsid: int, version: str | int = "last") -> Obi | None:
    """V&V the obsid's archived revisions into the archive and return the `Obi` of
    ``version`` ('last', 'default' or a revision number); None when the aspect L1
    processing table has no row of it."""
    update([obsid])
    return get_arch_vv(obsid, version)


#: ``FILES`` as `mica.vv.vv` gives it (computed at each access).
__getattr__: Any = computed_attributes(__name__, {"FILES": archive_files})
