"""What an update tells its user: progress per file with rate and ETA, a line per
unit without a terminal, the size of a large build before it starts, logging, metadata."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

import mica
from mica.cli import main
from mica.engine.time_update import update_archive
from mica.products.aca_l0 import L0
from mica.progress import UpdateProgress
from tests.conftest import REPO_ROOT


def test_progress_per_file_and_a_line_per_unit(tmp_path, caplog):
    out = io.StringIO()
    progress = UpdateProgress("update aca-l0", stream=out, terminal=False)
    seen: list[tuple[int, int]] = []
    real_files = progress.files
    progress.files = lambda done, total, name: (
        seen.append((done, total)),
        real_files(done, total, name),
    )  # noqa: E501
    with caplog.at_level(logging.INFO, logger="mica"):
        report = update_archive(
            L0,
            "sim",
            "2012:125:23:30:00",
            "2012:126:00:30:00",
            days_at_once=1,
            data_root=tmp_path / "aca0",
            progress=progress,
        )
    assert report.ok and len(report.ingested) >= 4
    # every file of both day-chunks was counted, one by one (a file across midnight comes
    # with both chunks: the second time as already archived)
    assert progress.files_done == len(report.ingested) + len(report.ingest.unchanged)
    assert [d for d, _ in seen][:3] == [1, 2, 3] and seen[-1][0] == seen[-1][1]
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines  # one per unit (time chunk), readable in a log file
    assert lines[0].startswith("update aca-l0: 2012:125:23:30:00 .. 2012:126:00:00:00 done;")
    assert "1/2 time chunks done" in lines[0] and "files/s" in lines[0] and "ETA" in lines[0]
    assert "2/2 time chunks done" in lines[1] and f"{progress.files_done} files" in lines[1]
    records = [r for r in caplog.records if r.name == "mica.engine.runner"]
    assert [r.getMessage().split(":")[0] for r in records] == ["aca-l0", "aca-l0"]
    assert "time chunk 2/2" in records[1].getMessage()


def test_large_build_says_its_size_and_needs_yes(tmp_path):
    runner = CliRunner()  # stdin is not a terminal
    args = ["--archive", str(tmp_path), "update", "aca-l0", "--start", "2010:001"]
    args += ["--stop", "2012:001", "--source", f"dir:{tmp_path / 'none'}"]
    result = runner.invoke(main, args)
    assert result.exit_code == 1
    assert "would add about 49.3 GB to the archive (730 days of aca-l0" in result.output
    assert "give --yes" in result.output
    assert not (tmp_path / "aca0" / "archfiles.db3").exists()  # nothing started
    result = runner.invoke(main, [*args, "--yes", "--quiet"])
    assert "would add about 49.3 GB" in result.output and "give --yes" not in result.output
    small = runner.invoke(main, [*args[:5], "2011:365", *args[6:], "--quiet"])
    assert "would add" not in small.output


def _mica(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mica.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | env,
    )


def test_version_and_verbose_logging(tmp_path):
    proc = _mica("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"mica {mica.__version__}"
    update = ["update", "aca-l0", "--source", "sim", "--quiet"]
    update += ["--start", "2012:125:00:00:00", "--stop", "2012:125:00:20:00"]
    quiet = _mica(*update, MICA_ARCHIVE=str(tmp_path / "a"))
    assert quiet.returncode == 0 and "INFO" not in quiet.stderr  # silent by default
    loud = _mica("-v", *update, MICA_ARCHIVE=str(tmp_path / "b"))
    assert loud.returncode == 0, loud.stderr
    assert "mica.engine.runner INFO: aca-l0: time chunk 1/1" in loud.stderr
    code = "import logging, mica; print([type(h).__name__ for h in logging.getLogger('mica').handlers])"  # noqa: E501
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "['NullHandler']"


def test_package_metadata():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    meta = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    project = meta["project"]
    assert project["readme"] == "README.md" and "version" in project["dynamic"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "mica.__version__"}
    assert "py.typed" in meta["tool"]["setuptools"]["package-data"]["mica"]
    assert (REPO_ROOT / "mica" / "py.typed").exists()
    license_text = (REPO_ROOT / "LICENSE").read_text()
    assert "BSD 3-Clause License" in license_text
    assert "Copyright (c) 2026, the mica developers" in license_text
    assert project["license-files"] == ["LICENSE"]
