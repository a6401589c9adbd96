"""What a person sees on the command line is right: an interrupted update says what it did
and what it left, summaries agree with the lines under them, progress counts the work's
unit, every ``mica check`` problem comes with what mends it.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mica.cli import main
from mica.engine.report import CheckReport, UpdateReport
from mica.progress import UpdateProgress


def _mica(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mica.cli", *args], capture_output=True, text=True, timeout=600
    )


def _indexed(root: Path) -> int:
    """Files in the L0 index (0 before it exists); read-only, beside a running update."""
    db = root / "aca0" / "archfiles.db3"
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM archfiles").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.fixture
def archive_copy(docs_archive: Path, tmp_path: Path) -> Path:
    """A copy of the documentation's archive a test may update (obsid links kept)."""
    root = tmp_path / "archive"
    shutil.copytree(docs_archive, root, symlinks=True)
    return root


# --- 1. an interrupted update; `mica check` names what mends each problem ------------------


def test_interrupted_update_says_what_it_finished_and_left(tmp_path):
    root = tmp_path / "archive"
    args = ["--archive", str(root), "update", "aca-l0", "--source", "sim", "--quiet"]
    args += ["--start", "2012:210", "--stop", "2012:211"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mica.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while proc.poll() is None and _indexed(root) < 30:
            time.sleep(0.1)
        assert proc.poll() is None, "the update ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, err)
    assert "Aborted!" not in out + err and "Traceback" not in err, err
    lines = out.splitlines()
    assert lines[0].startswith(
        "aca-l0: interrupted in 2012:210:00:00:00 .. 2012:211:00:00:00 (time chunk 1 of 1), "
    ), out
    assert "files processed" in lines[0]
    assert lines[1].startswith("  finished before it: 0 time chunks fetched")
    assert lines[2] == "  left: the rest of 2012:210:00:00:00 .. 2012:211:00:00:00"
    assert "run the same update again to complete it" in lines[3]
    assert "`mica check --repair`" in lines[3]

    # what it left half-done: each problem with the command that mends it
    check = CliRunner().invoke(main, ["--archive", str(root), "check"])
    assert check.exit_code == 1, check.output
    l0 = check.output.split("\nasp-l1:")[0]
    assert "problem: store chunk" in l0
    assert l0.splitlines()[-1] == f"  to mend: run `mica --archive {root} check --repair`"
    repair = CliRunner().invoke(main, ["--archive", str(root), "check", "--repair"])
    assert repair.exit_code == 0, repair.output
    assert "to mend" not in repair.output
    again = CliRunner().invoke(main, ["--archive", str(root), "check"])
    assert again.exit_code == 0 and "problem:" not in again.output, again.output


def test_check_summary_names_the_mending_command():
    report = CheckReport("aca-l0", files=3, problems=["store chunk 0/5 does not match"])
    assert report.summary().splitlines()[-1] == "  to mend: run `mica check --repair`"
    assert "to mend" not in report.summary(None)  # after a repair
    report.remedy = "move t.h5 away; `mica update vv` then writes a new one from the inputs"
    assert report.summary().splitlines()[-1] == f"  to mend: {report.remedy}"
    assert "to mend" not in CheckReport("aca-l0", files=3).summary()


def test_derived_interrupted_keeps_only_what_the_table_keeps():
    from mica.engine.derived import DerivedJob

    job = DerivedJob.__new__(DerivedJob)  # only the interrupt bookkeeping is exercised
    job.unit, job.rows, job.failures = "observation", {(1, 0): [], (2, 0): []}, {}
    report = UpdateReport("t", "observation", "computed", files_based=False)
    report.done = {(0, 0): "3 rows", (1, 0): "2 rows", (2, 0): "1 rows"}
    left = DerivedJob.interrupted(job, report)
    assert list(report.done) == [(0, 0)]  # written in a generation before the interrupt
    assert left == ["2 observations computed but not yet written to the table"]


# --- 2. summaries agree with the lines under them; progress in the unit of the work --------


def test_rerun_summary_counts_what_its_lines_say(archive_copy):
    args = ["--archive", str(archive_copy), "update", "obspar", "--quiet"]
    args += ["--start", "2012:125", "--stop", "2012:127"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    head, *lines = result.output.splitlines()
    assert head.startswith("obspar: 0 obsids updated, 9 already archived, 0 failed;")
    assert len(lines) == 1 and lines[0].startswith("  already archived (obsids): 9745, ")
    assert len(lines[0].split(":")[1].split(",")) == 9


def test_summary_of_one_unit_and_of_a_derived_table():
    report = UpdateReport("aca-l0", "time chunk", "fetched")
    report.done["2012:210 .. 2012:211"] = "3 ingested"
    assert report.summary().startswith("aca-l0: 1 time chunk fetched, 0 already archived,")
    derived = UpdateReport("acq-stats", "observation", "computed", files_based=False)
    # a derived update plans only what its table lacks: no "already archived" count
    assert derived.summary() == "acq-stats: 0 observations computed, 0 failed"


def test_progress_counts_the_unit_of_the_work():
    import io

    out = io.StringIO()
    progress = UpdateProgress("update guide-stats", stream=out, terminal=False)
    progress.units_named("observation")
    progress(0, 2, "obsid 9745")
    progress(1, 2, "obsid 10369")
    progress(2, 2, "done")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("update guide-stats: obsid 9745 done; 1/2 observations done, ")
    assert "observation" in lines[0].split(", ")[1]  # "x observations/s" or "x s/observation"
    assert "files" not in out.getvalue()
    files = UpdateProgress("update aca-l0", stream=out, terminal=False)
    files.units_named("time chunk")
    files(0, 1, "2012:125")
    files.files(2, 3, "f.fits")
    assert files.status().startswith("0/1 time chunks done, 2/3 files, ")
    assert "files/s" in files.status()


def test_update_progress_lines_of_a_derived_update(archive_copy):
    env = dict(os.environ, MICA_ARCHIVE=str(archive_copy))
    proc = subprocess.run(
        [sys.executable, "-m", "mica.cli", "update", "acq-stats", "--obsid", "9745"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "1/1 observations done" in proc.stderr and "files" not in proc.stderr
    assert proc.stdout.startswith("acq-stats: 1 observation computed, 0 failed")
