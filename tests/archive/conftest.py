"""Archives shared by the archive tests of several modules (built once per session)."""

from __future__ import annotations

import pytest

# The hd3 view's 100-day period boundary 2012:088:00:00 (449280000 s) inside a simulated
# 4 hours: each slot's 8x8 files fall in two partitions, chunks hd3/<slot>/51 and /52 (and
# the header-3 sample view's hd3s/51 and /52).
BOUNDARY = 449280000.0


@pytest.fixture(scope="session")
def boundary_archive(tmp_path_factory):
    """Read only: a test that changes it works on a copy."""
    from mica.engine.time_update import update_archive
    from mica.products.aca_l0 import L0

    root = tmp_path_factory.mktemp("boundary") / "aca0"
    update_archive(L0, "sim", BOUNDARY - 7200, BOUNDARY + 7200, data_root=root)
    return root
