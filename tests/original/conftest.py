"""The simulated archive the original mica's tests run on (see README.md beside this file).

``original_archive`` (session-wide): a copy of the documentation's archive
(``docs_archive``, built by `mica.demo.build_docs_archive` through the real update paths:
L0 of 2012:125, header-3 rows of 2012:125-127, the obspars of that window, aspect L1 and
V&V of obsid 10369, the dark calibration 2012131, acquisition statistics), plus the guide
statistics computed by the original's entry point (`mica.stats.update_guide_stats.update`).
Every test here sees it as ``MICA_ARCHIVE``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def original_archive(docs_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation's archive (copied: these tests add to it) plus guide statistics."""
    from mica.stats import guide_stats, update_guide_stats

    root = tmp_path_factory.mktemp("original") / "archive"
    shutil.copytree(docs_archive, root, symlinks=True)
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
