"""Doctest set-up: the Examples of mica's docstrings run on a small simulated archive.

``docs_archive`` (session-wide) builds the documentation's archive of 2012:125-127 with
``mica.sim.build.build_docs_archive``, the way ``mica demo`` builds its own; every doctest runs
with ``MICA_ARCHIVE`` pointing at it, in a scratch working folder (examples may write files).
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import pytest
from _pytest.doctest import DoctestItem

from mica import config

os.environ.setdefault("MPLBACKEND", "Agg")
# Validation inline, in the test processes and the commands they start: a test ingests a few
# dozen files, for which starting a worker pool costs more than it saves with two test
# processes on two cores (a third of the suite's CPU). The tests of the worker path ask for
# workers (``tests.conftest.WITH_WORKERS``); the README's commands run as a user's do.
os.environ.setdefault(config.WORKERS, "1")


@pytest.fixture(scope="session")
def docs_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation's small simulated archive (2012:125-127), built once a session: by
    the first test process that asks for it when pytest-xdist runs several (read only)."""
    from mica.sim.build import build_docs_archive

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.mktemp("docs-archive")
        build_docs_archive(root)
        return root
    root = tmp_path_factory.getbasetemp().parent / "docs-archive"  # the run's, not a worker's
    with open(root.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the others wait for the first one's build
        built = root.with_suffix(".built")
        if not built.exists():
            shutil.rmtree(root, ignore_errors=True)  # a build that failed in another process
            root.mkdir()
            build_docs_archive(root)
            built.touch()
    return root


@pytest.fixture(autouse=True)
def _doctest_archive(request: pytest.FixtureRequest) -> None:
    """Doctests read the documentation's archive and write into a scratch folder."""
    if not isinstance(request.node, DoctestItem):
        return
    archive = request.getfixturevalue("docs_archive")
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("MICA_ARCHIVE", str(archive))
    monkeypatch.chdir(request.getfixturevalue("tmp_path"))
