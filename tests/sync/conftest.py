"""A published archive in two states and a web server on 127.0.0.1 that injects faults.

``server_v1``: the documentation's archive (L0 of 2012:124-125 re-ingested through a ``dir:``
source, obspars, aspect L1 of obsid 10369, a dark calibration, acq-stats, V&V), published.
``server_v2``: the same after a second update (the L0 files of 2012:131 near the calibration,
which also rewrites the header-3 store chunks under new names), published again by the hook
``mica update`` runs after an update of a published archive (`mica.cli.sync.republish`). Both are
built once a session through the real update and publish paths.

`ArchiveServer` serves a folder as a static web server does (a ``Range`` request, ``a-`` or
``a-b``, answered with 206; with ``closed_ranges`` False ``a-b`` is answered to the file's end,
as by a server that knows only resumed downloads), counts the bytes it sends, and applies the
faults queued for a path (`ArchiveServer.fail`): ``500``, ``404``, ``timeout`` (no answer for
longer than the client waits), ``truncate`` (half the body, then the connection drops),
``garbage`` (the right length, wrong bytes), and calls ``on_request`` (e.g. to publish anew in
the middle of a sync).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mica.cli.sync import republish
from mica.engine.time_update import update_archive
from mica.products.aca_l0 import L0
from mica.sync.client import SyncClient
from mica.sync.publish import publish
from tests.hardening.test_disk_full import tmpfs  # noqa: F401  (a small disk, for test_faults)

#: the L0 files the first state leaves out, ingested by the second update
LATER_DAY = "131"


def _ingest_l0(files: list[Path], work: Path, root: Path) -> None:
    """Archive ``files`` into ``root`` through a ``dir:`` source (the real ingest path)."""
    work.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, work / f.name)
    report = update_archive(
        L0, f"dir:{work}", "2012:120", "2012:135", days_at_once=20.0, data_root=root
    )
    assert report.ok and not report.ingest.rejected, report.summary()


@pytest.fixture(scope="session")
def server_v1(docs_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation's archive without its 2012:131 L0 files, published."""
    base = tmp_path_factory.mktemp("sync-v1")
    root = base / "archive"
    shutil.copytree(docs_archive, root, symlinks=True, ignore=shutil.ignore_patterns("aca0"))
    files = sorted(p for p in (docs_archive / "aca0").glob("2012/*/*.fits.gz"))
    early = [p for p in files if p.parent.name != LATER_DAY]
    _ingest_l0(early, base / "upstream", root / "aca0")
    publish(root)
    return root


@pytest.fixture(scope="session")
def server_v2(
    server_v1: Path, docs_archive: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """``server_v1`` after an update adding the 2012:131 L0 files, published again."""
    base = tmp_path_factory.mktemp("sync-v2")
    root = base / "archive"
    shutil.copytree(server_v1, root, symlinks=True)
    later = sorted((docs_archive / "aca0" / "2012" / LATER_DAY).glob("*.fits.gz"))
    _ingest_l0(later, base / "upstream", root / "aca0")
    republish("aca-l0", None, root)  # what `mica update aca-l0` runs after its update
    return root


class ArchiveServer:
    """A static web server of ``root`` on 127.0.0.1 with fault injection (module doc)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.faults: dict[str, list[str]] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.sent = 0
        self.delay = 0.0  # seconds before each answer (latency)
        self.timeout_pause = 2.0
        self.closed_ranges = True  # False: "bytes=a-b" answered from a to the end
        self.on_request: Callable[[str], None] | None = None
        self.lock = threading.Lock()
        self.url = ""

    def fail(self, fragment: str, *faults: str) -> None:
        """Queue ``faults`` for the next requests of a path containing ``fragment``."""
        self.faults.setdefault(fragment, []).extend(faults)

    def take_fault(self, path: str) -> str | None:
        with self.lock:
            for fragment, queued in self.faults.items():
                if fragment in path and queued:
                    return queued.pop(0)
        return None

    def count(self, n: int) -> None:
        with self.lock:
            self.sent += n

    def reset(self) -> None:
        with self.lock:
            self.sent = 0
            self.requests.clear()
            self.faults.clear()


class _Handler(BaseHTTPRequestHandler):
    server_state: ArchiveServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as nginx (a small range: 40 ms else)

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        state = self.server_state
        path = self.path.split("?", 1)[0].lstrip("/")
        with state.lock:
            state.requests.append((path, self.headers.get("Range")))
        if state.on_request is not None:
            state.on_request(path)
        if state.delay:
            time.sleep(state.delay)
        fault = state.take_fault(path)
        if fault == "500":
            return self._plain(500, b"server error")
        if fault == "timeout":
            time.sleep(state.timeout_pause)
            self.close_connection = True
            return
        file = state.root / path
        if fault == "404" or not file.is_file():
            return self._plain(404, b"not found")
        data = file.read_bytes()
        start, stop = 0, len(data)
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):  # one range: "a-" or "a-b" (b included)
            first, last = rng[6:].split("-", 1)
            start = int(first)
            if last and state.closed_ranges:
                stop = min(int(last) + 1, len(data))
            if start >= len(data) or stop <= start:
                return self._plain(416, b"")
        body = data[start:stop]
        if fault == "garbage":
            body = bytes(b ^ 0x5A for b in body)
        ranged = (start, stop) != (0, len(data))
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Length", str(len(body)))
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if fault == "truncate":
            body = body[: len(body) // 2]
            self.close_connection = True
        for k in range(0, len(body), 1 << 16):
            try:
                self.wfile.write(body[k : k + (1 << 16)])
            except OSError:  # the client went away (a stopped sync)
                return
            state.count(len(body[k : k + (1 << 16)]))

    def _plain(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def serve() -> Iterator[Callable[[Path], ArchiveServer]]:
    """``serve(root)``: an `ArchiveServer` of ``root`` running until the test ends."""
    running: list[ThreadingHTTPServer] = []

    def start(root: Path) -> ArchiveServer:
        state = ArchiveServer(root)
        handler = type("Handler", (_Handler,), {"server_state": state})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        running.append(httpd)
        return state

    yield start
    for httpd in running:
        httpd.shutdown()
        httpd.server_close()


def quick_client(server: ArchiveServer, **kwargs) -> SyncClient:
    """A client that retries fast (the faults' tests wait milliseconds, not seconds)."""
    opts = {"transfers": 4, "retries": 3, "backoff": 0.01, "timeout": 1.0, **kwargs}
    return SyncClient(server.url, **opts)


def archive_files(root: Path) -> set[str]:
    """Every file and link under ``root`` but the sync's own folder and SQLite's journals."""
    out = set()
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".sync"]
        for name in names:
            if not name.endswith(("-wal", "-shm")):
                out.add(str(Path(folder, name).relative_to(root)))
    return out


#: where nginx is installed (its tests are skipped without it)
NGINX = Path("/usr/sbin/nginx")


@contextlib.contextmanager
def nginx_serving(root: Path, work: Path) -> Iterator[str]:
    """nginx serving ``root`` as it lies on a free port of 127.0.0.1 (its files in ``work``);
    yields the URL."""
    work.mkdir(parents=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = work / "nginx.conf"
    conf.write_text(
        f"""daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""
    )
    user = ["-g", "user root;"] if os.geteuid() == 0 else []
    proc = subprocess.Popen(
        [str(NGINX), "-c", str(conf), "-p", str(work), *user],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.communicate(timeout=20)  # (its pipes closed here, not left to the collector)
        shutil.rmtree(work / "body", ignore_errors=True)
