"""Doctest set-up: the Examples of mica's docstrings run on a small simulated archive.

``docs_archive`` (session-wide) builds the documentation's archive of 2012:125-127 with
``mica.sim.build.build_docs_archive``, the way ``mica demo`` builds its own; every doctest runs
with ``MICA_ARCHIVE`` pointing at it, in a scratch working folder (examples may write files).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _pytest.doctest import DoctestItem

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def docs_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation's small simulated archive (2012:125-127), built once a session."""
    from mica.sim.build import build_docs_archive

    root = tmp_path_factory.mktemp("docs-archive")
    build_docs_archive(root)
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
