"""`mica sync` under faults, each injected by a real server on 127.0.0.1: server errors,
timeouts, truncated and wrong bodies, a manifest replaced in the middle, a part gone, Ctrl-C,
a full disk, and the same sync from nginx where it is installed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mica.archive import aca_hdr3, aca_l0
from mica.errors import SyncError
from mica.sync.manifest import HEAD_NAME, PUBLISH_DIR
from mica.sync.run import sync
from tests.conftest import REPO_ROOT, popen_interruptible
from tests.hardening.test_disk_full import _remount
from tests.sync.conftest import NGINX, archive_files, nginx_serving, quick_client

HDR3 = ("2012:125:00:00:00", "2012:132:00:00:00")
#: an L0 file of the first state (the faults' target)
L0_FILE = "acaf452475478N001_3_img0.fits.gz"


def _names(root: Path) -> list[str]:
    files = aca_l0.get_files(start="2012:120", stop="2012:135", data_root=root / "aca0")
    return sorted(Path(p).name for p in files)


@pytest.mark.parametrize("faults", [("500", "500"), ("timeout",), ("truncate", "truncate")])
def test_transient_faults_are_retried(server_v1, serve, tmp_path, faults) -> None:
    server = serve(server_v1)
    server.timeout_pause = 1.5  # longer than the client's 1 s
    server.fail(L0_FILE, *faults)
    local = tmp_path / "laptop"
    with quick_client(server) as client:
        report = sync(server.url, ["aca-l0"], archive=local, client=client)
    assert report.ok
    assert _names(local) == _names(server_v1)
    tries = [rng for path, rng in server.requests if path.endswith(L0_FILE)]
    assert len(tries) == len(faults) + 1
    if faults[0] == "truncate":  # resumed where the dropped connection left it
        assert tries[1] is not None and tries[1].startswith("bytes=")


def test_wrong_bytes_once_are_fetched_again(server_v1, serve, tmp_path) -> None:
    server = serve(server_v1)
    server.fail(L0_FILE, "garbage")
    local = tmp_path / "laptop"
    with quick_client(server) as client:
        assert sync(server.url, ["aca-l0"], archive=local, client=client).ok
    assert _names(local) == _names(server_v1)


def test_bytes_that_keep_differing_stop_the_sync_naming_file_and_server(
    server_v1, serve, tmp_path
) -> None:
    server = serve(server_v1)
    server.fail(L0_FILE, *["garbage"] * 10)
    local = tmp_path / "laptop"
    with quick_client(server) as client, pytest.raises(SyncError) as err:
        sync(server.url, ["aca-l0"], archive=local, client=client)
    message = str(err.value)
    assert L0_FILE in message and server.url in message and "mica publish" in message
    assert not (local / "aca0").exists()  # nothing installed
    server.reset()
    with quick_client(server) as client:  # the next sync completes
        assert sync(server.url, ["aca-l0"], archive=local, client=client).ok
    assert _names(local) == _names(server_v1)


def test_a_part_gone_from_the_server_is_named(server_v1, serve, tmp_path) -> None:
    server = serve(server_v1)
    server.fail("parts/aca-l0/", "404")
    with quick_client(server) as client, pytest.raises(SyncError) as err:
        sync(server.url, ["aca-l0"], archive=tmp_path / "laptop", client=client)
    assert "parts/aca-l0/" in str(err.value) and server.url in str(err.value)
    assert "404" in str(err.value)


def test_a_publish_in_the_middle_of_a_sync_is_followed(
    server_v1, server_v2, serve, tmp_path
) -> None:
    """The server publishes (its header-3 chunks renamed) while the sync downloads them: the
    sync reads the new head, plans again and installs the new state."""
    server = serve(server_v1)

    def publish_now(path: str) -> None:
        if path.startswith("aca0/store/"):
            server.root = server_v2  # the update and its publish, done at once
            server.on_request = None

    server.on_request = publish_now
    local = tmp_path / "laptop"
    with quick_client(server, transfers=1) as client:
        report = sync(server.url, ["aca-hdr3"], archive=local, client=client)
    assert report.ok
    heads = [p for p, _ in server.requests if p == f"{PUBLISH_DIR}/{HEAD_NAME}"]
    assert len(heads) == 2
    ours = aca_hdr3.MSID("ccd_temp", *HDR3, data_root=local / "aca0")
    theirs = aca_hdr3.MSID("ccd_temp", *HDR3, data_root=server_v2 / "aca0")
    assert list(ours.times) == list(theirs.times) and len(ours.times)


def _mica(*args: str, archive: Path, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), MICA_SYNC_BACKOFF="0.01")
    return popen_interruptible(
        [sys.executable, "-m", "mica.cli", "--archive", str(archive), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )  # fmt: skip


def test_ctrl_c_leaves_nothing_partial_and_the_next_sync_completes(
    server_v1, serve, tmp_path
) -> None:
    server = serve(server_v1)
    # slow: interrupted as its fifth file is asked for (three received whole), the sync has
    # 20 more to fetch, 4 s or more
    server.delay = 0.4
    local = tmp_path / "laptop"
    proc = _mica("sync", server.url, "--products", "aca-l0", "--transfers", "2", archive=local)
    deadline = time.monotonic() + 60
    while sum(p.startswith("aca0/") for p, _ in server.requests) < 5:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("sync:")]
    assert len(lines) == 1 and "interrupted" in lines[0], err
    assert not (local / "aca0").exists() or not _names(local)  # nothing visible
    server.delay = 0.0
    server.reset()
    with quick_client(server) as client:  # the next sync (in this process) completes
        assert sync(server.url, ["aca-l0"], archive=local, client=client).ok
    assert _names(local) == _names(server_v1)
    again = [p for p, _ in server.requests if p.startswith("aca0/")]
    assert len(again) < len(_names(server_v1))  # what came before Ctrl-C does not come again


def test_full_disk_stops_cleanly_then_the_next_sync_completes(server_v1, serve, tmpfs) -> None:
    _remount(tmpfs, "size=4m")  # less than the L0 files
    server = serve(server_v1)
    local = tmpfs / "archive"
    proc = _mica("sync", server.url, "--products", "aca-l0", "--quiet", archive=local)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)
    assert server.url in err and "the disk is full" in err, err  # the file, the server
    assert not (local / "aca0").exists() or not _names(local)
    _remount(tmpfs, "size=64m")
    with quick_client(server) as client:  # the next sync (in this process) completes
        assert sync(server.url, ["aca-l0"], archive=local, client=client).ok
    assert _names(local) == _names(server_v1)


@pytest.mark.skipif(not NGINX.exists(), reason="nginx is not installed (/usr/sbin/nginx)")
def test_sync_from_nginx(server_v1, tmp_path) -> None:
    """The published archive served as it lies by nginx on 127.0.0.1 (a non-root port)."""
    with nginx_serving(server_v1, tmp_path / "nginx") as url:
        local = tmp_path / "laptop"
        report = sync(url, ["aca-l0", "aca-hdr3", "asp-l1"], archive=local)
        assert report.ok
        assert _names(local) == _names(server_v1)
        again = sync(url, ["aca-l0", "aca-hdr3", "asp-l1"], archive=local)
        assert not any(p.needed for p in again.plans)
    assert archive_files(local)
