"""kill -9 in the middle of an L0 ingest, then a re-run: the archive ends complete, consistent.

The killed update runs in a subprocess (``python -m mica.cli``); the re-run through the CLI's
entry point in this process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mica.archive import aca_l0
from mica.cli import main
from mica.engine.index import ArchiveIndex
from mica.engine.index_check import check_archive
from mica.products.aca_l0 import L0
from tests.conftest import WITH_WORKERS

UPDATE = [
    sys.executable,
    "-m",
    "mica.cli",
    "update",
    "aca-l0",
    "--quiet",
    "--start",
    "2003:214",
    "--stop",
    "2003:216",
]


def _start_update(source: str, root: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*UPDATE, "--source", source, "--data-root", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=os.environ | WITH_WORKERS,  # killed with its worker processes running
    )


def _rows_indexed(root: Path) -> int:
    try:
        with ArchiveIndex(L0, root) as index:
            return len(index.filenames())
    except Exception:  # noqa: BLE001  (index still being created)
        return 0


@pytest.mark.parametrize("kill_after_files", [1, 9, 20, 33])
def test_kill_during_ingest_then_rerun(tmp_path, real_l0_dir, real_l0_archive, kill_after_files):
    root = tmp_path / "aca0"
    proc = _start_update(f"dir:{real_l0_dir}", root)
    deadline = time.monotonic() + 60
    while _rows_indexed(root) < kill_after_files and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()  # (its pipe closed here, not left to the collector)

    # Whatever state the kill left, readers see only whole, indexed files.
    for path in aca_l0.get_files(start="2003:215", stop="2003:216", data_root=root):
        assert Path(path).exists()
    assert not list(root.rglob("*.partial")) or not check_archive(L0, data_root=root).ok

    # the re-run is a user's next command: the CLI's entry point, here (no process to kill)
    rerun = CliRunner().invoke(
        main, [*UPDATE[3:], "--source", f"dir:{real_l0_dir}", "--data-root", str(root)]
    )
    assert rerun.exception is None or isinstance(rerun.exception, SystemExit), rerun.exception
    assert rerun.exit_code == 0, rerun.output
    report = check_archive(L0, data_root=root)
    assert report.ok, report.summary()
    assert report.files == 36
    for slot in range(8):
        got = aca_l0.get_slot_data("2003:215", "2003:216", slot, data_root=root)
        ref = aca_l0.get_slot_data("2003:215", "2003:216", slot, data_root=real_l0_archive)
        assert len(got) == len(ref)
        for name in ("TIME", "IMGRAW", "FILENAME"):
            assert np.array_equal(got[name].filled(0), ref[name].filled(0))
    assert not list((root / "staging").glob("*")) if (root / "staging").exists() else True


def test_second_updater_exits_with_message(tmp_path, real_l0_dir):
    from mica.engine.lock import UpdateLock

    root = tmp_path / "aca0"
    with UpdateLock(root):
        proc = subprocess.run(
            [*UPDATE, "--source", f"dir:{real_l0_dir}", "--data-root", str(root)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode != 0
    assert "another update" in proc.stderr and "running" in proc.stderr
    assert _rows_indexed(root) == 0
