"""The original's ``mica.vv.vv``: the V&V archive's files and readers.

``FILES`` names the original's paths under this archive (read at each access):
``data_root`` (``<archive>/vv``), ``h5_file`` (the summary table ``vv/vv.h5``),
``asp1_proc_table`` (the aspect L1 processing table), ``temp_root``, ``shelf_file``,
``last_file`` and ``bad_obsid_list`` (names the original used; nothing here writes them). The
readers are those of `mica.vv`.
"""

from __future__ import annotations

from typing import Any

from mica.common import computed_attributes
from mica.config import archive_root
from mica.vv import get_rms_data, get_vv, get_vv_dir, get_vv_files

__all__ = ["archive_files", "get_rms_data", "get_vv", "get_vv_dir", "get_vv_files"]


def archive_files() -> dict[str, str]:
    """``FILES``: the original's V&V paths under the archive root in force now."""
    from mica.products.asp_l1 import PROC_DB
    from mica.vv.product import VV

    root = archive_root()
    vv = VV.root(None)
    return {
        "data_root": str(vv),
        "temp_root": str(root / "tempvv"),
        "shelf_file": str(vv / "vv_shelf"),
        "h5_file": str(VV.table(None).path),
        "last_file": str(vv / "last_id.txt"),
        "asp1_proc_table": str(root / "asp1" / PROC_DB),
        "bad_obsid_list": str(vv / "bad_obsids.json"),
    }


__getattr__: Any = computed_attributes(__name__, {"FILES": archive_files})
