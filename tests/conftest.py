"""Shared fixtures: archives built through the real ingest path."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from astropy.utils import iers

from mica import config

os.environ.setdefault("MPLBACKEND", "Agg")
#: The environment of a command that validates in worker processes, as a user's does (the
#: suite validates inline: the repository's conftest.py).
WITH_WORKERS = {config.WORKERS: "2"}
# The test process never downloads IERS tables (CI may be offline); mica itself changes this
# setting only inside its own conversions (tests/package/test_import_state.py runs fresh processes).
iers.conf.auto_download = False

#: The repository's root (README.md, pyproject.toml, benchmarks/, docs/).
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Real flight files kept in the repository (provenance in tests/data/README.md); test modules
#: in any folder import this one path (``from tests.conftest import REALDATA``).
REALDATA = Path(__file__).resolve().parent / "data"


def popen_interruptible(args: list[str], **kwargs) -> subprocess.Popen:
    """``subprocess.Popen(args, **kwargs)`` of a command a test interrupts with SIGINT (what
    Ctrl-C sends), started with SIGINT's default action even where this process ignores it:
    a shell starts a background job (``pytest ... &``) ignoring SIGINT, and a child inherits
    an ignored signal across exec, so the command would run to its end."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # (SIG_DFL after exec)
    try:
        return subprocess.Popen(args, **kwargs)
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.fixture(autouse=True)
def _isolated_archive(tmp_path_factory, monkeypatch):
    """No test writes to the user's archive: MICA_ARCHIVE points at a scratch folder."""
    monkeypatch.setenv("MICA_ARCHIVE", str(tmp_path_factory.mktemp("default-archive")))


@pytest.fixture(scope="session")
def real_l0_dir() -> Path:
    """The 36 real 2003:215 L0 files (obsid 3552)."""
    return REALDATA / "aca_l0_2003"


@pytest.fixture(scope="session")
def real_l0_archive(tmp_path_factory, real_l0_dir) -> Path:
    """The 36 real 2003:215 L0 files ingested through the dir: source."""
    from mica.engine.time_update import update_archive
    from mica.products.aca_l0 import L0

    root = tmp_path_factory.mktemp("real-aca0")
    report = update_archive(L0, f"dir:{real_l0_dir}", "2003:214", "2003:216", data_root=root)
    assert len(report.ingested) == 36 and not report.rejected
    return root


# Six hours of simulated mission on 2012:001: tracking and file breaks on all slots.
SIM_START, SIM_STOP = "2012:001:00:00:00", "2012:001:06:00:00"


@pytest.fixture(scope="session")
def sim_l0_archive(tmp_path_factory) -> Path:
    """Six hours of the simulated upstream, ingested through the sim source."""
    from mica.engine.time_update import update_archive
    from mica.products.aca_l0 import L0

    root = tmp_path_factory.mktemp("sim-aca0")
    report = update_archive(L0, "sim", SIM_START, SIM_STOP, data_root=root)
    assert report.ingested and not report.rejected
    return root
