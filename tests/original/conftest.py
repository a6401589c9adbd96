"""The simulated archive the original mica's tests run on (see README.md beside this file).

``original_archive`` (session-wide): a copy of the documentation's archive
(``docs_archive``, built by `mica.sim.build.build_docs_archive` through the real update
paths: L0 of 2012:125, header-3 rows of 2012:125-127, the obspars of that window, the dark
calibration 2012131, acquisition statistics), plus, through the same update paths:

* obsid 10369's aspect L1 products at the full cadence, every image's ACACENT rows (the
  documentation's keep every 4th), and its V&V;
* 20 minutes of L0 of every slot in it (`CENTROID_WINDOW`): the original's centroid tests
  compare each L0 image's first moments with the ACACENT alg 1 row of the same image;
* the guide statistics computed by the original's entry point
  (`mica.stats.update_guide_stats.update`).

Every test here sees it as ``MICA_ARCHIVE``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

#: the L0 window of obsid 10369 the centroid tests of test_aca_l0 read (the original's
#: 2007:002:06:00-06:20 of obsid 8008)
CENTROID_WINDOW = ("2012:125:03:00:00", "2012:125:03:20:00")


@pytest.fixture(scope="session")
def original_archive(docs_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation's archive (copied: these tests add to it), its aspect L1 products at
    the full cadence and what they make, the L0 of `CENTROID_WINDOW` and guide statistics."""
    from mica.engine.derived import update_derived
    from mica.engine.obsid_update import update_obsid_archive
    from mica.engine.time_update import update_archive
    from mica.products.aca_l0 import L0
    from mica.products.asp_l1 import ASP_L1
    from mica.sim.build import DOCS_ASP_OBSIDS
    from mica.sim.source import SimSource
    from mica.stats import guide_stats, update_guide_stats
    from mica.vv.product import VV

    root = tmp_path_factory.mktemp("original") / "archive"
    decimated = (ASP_L1.subdir, VV.folder)  # the aspect L1 products and their V&V
    shutil.copytree(
        docs_archive,
        root,
        symlinks=True,
        ignore=lambda folder, names: decimated if Path(folder) == docs_archive else (),
    )
    full_cadence = SimSource(l1_decimate=1)
    for report in (
        update_obsid_archive(
            ASP_L1, full_cadence, data_root=root / ASP_L1.subdir, obsids=DOCS_ASP_OBSIDS
        ),
        update_archive(L0, "sim", *CENTROID_WINDOW, data_root=root / L0.subdir),
        update_derived(VV, data_root=root / VV.folder, archive=root),
    ):
        assert report.done and not report.failed, report.summary()
    opt = argparse.Namespace(obsid=None, check_missing=False, start=None, stop=None)
    opt.datafile = str(guide_stats.table_path(root / guide_stats.FOLDER))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MICA_ARCHIVE", str(root))
        report = update_guide_stats.update(opt)
    assert report.done and not report.failed, report.summary()
    return root


@pytest.fixture(autouse=True)
def _original_archive(original_archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICA_ARCHIVE", str(original_archive))
