"""The ``cda`` source against a real HTTP server on 127.0.0.1 serving the public layout.

The server (http.server in a thread) serves the archive file-list service, the Ocat list
and the bulk-download tree ``/pub/byobsid/<d>/<obsid>/{primary,secondary/aspect}/`` built
from the simulated upstream, with Range support and injected faults: HTTP 500, 404, a
connection dropped mid-file, a truncated body and slow responses.
"""

from __future__ import annotations

import gzip
import re
import shutil
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from mica.archive import asp_l1
from mica.engine.index_check import check_archive
from mica.engine.obsid_update import NO_DATA, update_obsid_archive
from mica.engine.time_update import update_archive
from mica.products.aca_l0 import L0
from mica.products.asp_l1 import ASP_L1
from mica.products.obspar import OBSPAR
from mica.sim import asp_l1 as sim
from mica.sim.mission import default_mission
from mica.sources import SourceError, make_source
from mica.sources.cda import CDASource, NotPublic
from mica.sources.cda_lists import parse_file_list, parse_rdb

OBSID = 6000
PUBLIC = re.compile(r"pcadf\d+N\d{3}_(asol1|aqual1|adat\d1)\.fits")  # what the tree holds


class Tree:
    """The simulated public archive: files by URL path, faults by file name."""

    def __init__(self, root: Path):
        self.files: dict[str, Path] = {}  # URL path -> gzipped file
        self.sizes: dict[int, list[tuple[str, int | None]]] = defaultdict(list)  # obsid -> list
        self.faults: dict[str, list[str]] = defaultdict(list)  # name -> faults, used in order
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        self.root = root
        self.ocat: list[int] = []

    def add(self, obsid: int, path: Path) -> None:
        name = path.name[:-3]  # listed uncompressed
        folder = "primary" if "_asol1" in name else "secondary/aspect"
        self.files[f"/pub/byobsid/{obsid % 10}/{obsid}/{folder}/{path.name}"] = path
        self.sizes[obsid].append((name, len(gzip.decompress(path.read_bytes()))))


class Handler(BaseHTTPRequestHandler):
    tree: Tree
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        tree = self.tree
        url = urlparse(self.path)
        with tree.lock:
            tree.requests.append((url.path, self.headers.get("Range")))
            tree.active += 1
            tree.max_active = max(tree.max_active, tree.active)
        try:
            self._serve(url)
        finally:
            with tree.lock:
                tree.active -= 1

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _serve(self, url) -> None:
        tree = self.tree
        query = parse_qs(url.query)
        if url.path == "/srservices/archiveFileList.do":
            obsid = int(query["obsid"][0])
            fault = tree.faults["LIST"].pop(0) if tree.faults["LIST"] else None
            if fault == "500":
                return self._send(500, b"Internal Server Error")
            lines = ["Filename\tFilesize\tTimestamp"] + [
                f"{name}\t{'' if size is None else f'{size:,}'}\t2012-08-23 01:59:39"
                for name, size in tree.sizes[obsid]
            ]
            return self._send(200, ("\n".join(lines) + "\n").encode())
        if url.path == "/srservices/ocatList.do":
            text = "# Ocat summary (simulated)\nSeq Num\tObs ID\tInstrument\n20N\t20N\t20\n"
            text += "".join(f"{100000 + o}\t{o}\tACIS\n" for o in tree.ocat)
            return self._send(200, text.encode())
        path = tree.files.get(url.path)
        name = Path(url.path).name[:-3]
        fault = tree.faults[name].pop(0) if tree.faults.get(name) else None
        if path is None or fault == "404":
            return self._send(404, b"Not Found")
        if fault == "500":
            return self._send(500, b"Internal Server Error")
        data = path.read_bytes()
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(re.match(r"bytes=(\d+)-", rng).group(1))
        body = data[start:]
        headers = {"Content-Type": "application/gzip", "Accept-Ranges": "bytes"}
        code = 200
        if rng:
            code = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if fault == "truncate":  # a complete response whose body is a cut gzip stream
            body = body[: len(body) // 2]
            headers.pop("Content-Range", None)
            code = 200
        if fault and fault.startswith("slow"):
            time.sleep(float(fault[4:] or 0.3))
        self.send_response(code)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault == "drop":  # connection lost after half the promised bytes
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """The public files of obsid 6000 (revision 3), simulated once."""
    folder = tmp_path_factory.mktemp("public")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MICA_SIM_L1_DECIMATE", "40")
        files = sim.write_asp_l1(OBSID, 3, folder)
    for path in files:
        if not PUBLIC.fullmatch(path.name[:-3]):
            path.unlink()
    return folder


@pytest.fixture()
def server(published, tmp_path):
    yield from serve(published, tmp_path, Handler)


def serve(published: Path, tmp_path: Path, handler_class: type[Handler]):
    """Serve the published files with ``handler_class`` on 127.0.0.1 until closed."""
    tree = Tree(tmp_path)
    for path in sorted(published.iterdir()):
        tree.add(OBSID, path)
    handler = type("H", (handler_class,), {"tree": tree})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    tree.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield tree
    httpd.shutdown()
    httpd.server_close()


def source(tree: Tree, tmp_path: Path, **kwargs) -> CDASource:
    opts = {
        "backoff": 0.01,
        "timeout": 5.0,
        "progress": False,
        "cache_dir": tmp_path / "cache",
        **kwargs,
    }
    return CDASource(tree.url, **opts)


def asol_names(tree: Tree) -> list[str]:
    return [n for n, _ in tree.sizes[OBSID] if "_asol1" in n]


# --- tests ---------------------------------------------------------------------------------------
def test_clean_download_and_ingest(server, tmp_path):
    root = tmp_path / "asp1"
    src = source(server, tmp_path, workers=4)
    for name, _ in server.sizes[OBSID][:8]:
        server.faults[name] = ["slow0.15"]  # long enough for transfers to overlap
    report = update_obsid_archive(ASP_L1, src, [OBSID], data_root=root)
    assert report.ok, report.summary()
    assert "v03" in report.done[OBSID] and report.dropped > 0  # ADAT files fetched, dropped
    names = [
        Path(f).name for f in asp_l1.get_files(OBSID, content=["ASPSOL", "ASPQUAL"], data_root=root)
    ]
    assert sorted(n[:-3] for n in names) == sorted(
        n for n, _ in server.sizes[OBSID] if "adat" not in n
    )
    for name in names:  # byte-identical to what the server holds
        served = next(p for p in server.files.values() if p.name == name)
        archived = Path(asp_l1.get_dir(OBSID, data_root=root)) / name
        assert archived.read_bytes() == served.read_bytes()
    # what the public archive does not hold is said clearly
    assert any("does not hold ACACAL, ACACENT, GSPROPS, FIDPROPS" in n for n in report.notes)
    assert "note: obsid 6000" in report.summary()
    assert not list((tmp_path / "cache").rglob("*.gz*"))  # cache emptied into the archive
    assert 1 < server.max_active <= 4  # parallel, bounded by the pool
    assert check_archive(ASP_L1, data_root=root).ok


def test_500_is_retried(server, tmp_path):
    name = asol_names(server)[0]
    server.faults[name] = ["500", "500"]
    server.faults["LIST"] = ["500"]
    report = update_obsid_archive(
        ASP_L1, source(server, tmp_path), [OBSID], data_root=tmp_path / "asp1"
    )
    assert report.ok, report.summary()
    hits = [p for p, _ in server.requests if p.endswith(name + ".gz")]
    assert len(hits) == 3
    assert len([p for p, _ in server.requests if "archiveFileList" in p]) == 2


def test_persistent_500_fails_with_the_status(server, tmp_path):
    name = asol_names(server)[0]
    server.faults[name] = ["500"] * 10
    report = update_obsid_archive(
        ASP_L1, source(server, tmp_path, retries=2), [OBSID], data_root=tmp_path / "asp1"
    )
    assert not report.ok
    text = report.failed[OBSID]
    assert name in text and "HTTP 500" in text and "3 attempts" in text


def test_404_fails_the_obsid_and_nothing_partial_is_archived(server, tmp_path):
    root = tmp_path / "asp1"
    name = asol_names(server)[1]
    server.faults[name] = ["404", "404"]  # absent in both candidate folders
    report = update_obsid_archive(ASP_L1, source(server, tmp_path), [OBSID], data_root=root)
    assert not report.ok
    summary = report.summary()
    assert f"FAILED obsid {OBSID}" in summary and name in summary and "404" in summary
    assert asp_l1.get_obs_dirs(OBSID, data_root=root) is None
    assert not list(root.glob("*/*_v*/*"))  # not a single file of the revision placed
    # the fault clears: the next run archives everything, reusing completed downloads
    server.requests.clear()
    report = update_obsid_archive(ASP_L1, source(server, tmp_path), [OBSID], data_root=root)
    assert report.ok, report.summary()
    fetched = {Path(p).name for p, _ in server.requests if p.startswith("/pub/")}
    assert fetched == {name + ".gz"}  # only the missing file was downloaded again
    assert check_archive(ASP_L1, data_root=root).ok


def test_dropped_connection_is_resumed_with_a_range_request(server, tmp_path):
    name = asol_names(server)[0]
    server.faults[name] = ["drop"]
    report = update_obsid_archive(
        ASP_L1, source(server, tmp_path), [OBSID], data_root=tmp_path / "asp1"
    )
    assert report.ok, report.summary()
    ranges = [r for p, r in server.requests if p.endswith(name + ".gz")]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert int(ranges[1][6:-1]) > 0


def test_truncated_body_is_detected_and_fetched_again(server, tmp_path):
    name = asol_names(server)[0]
    server.faults[name] = ["truncate"]
    report = update_obsid_archive(
        ASP_L1, source(server, tmp_path), [OBSID], data_root=tmp_path / "asp1"
    )
    assert report.ok, report.summary()
    assert len([p for p, _ in server.requests if p.endswith(name + ".gz")]) == 2
    server.faults[name] = ["truncate"] * 10
    bad = source(server, tmp_path / "other", retries=1)
    listed = [f for f in bad.file_list(ASP_L1, OBSID) if f.name == name]
    result = bad.download_all(OBSID, listed, tmp_path / "dl")
    assert "truncated" in result[0].error and result[0].path is None
    assert not list((tmp_path / "dl").glob("*.gz"))  # nothing unverified kept as complete


def test_slow_responses(server, tmp_path):
    names = asol_names(server)
    server.faults[names[0]] = ["slow0.3"]  # slow but within the timeout
    server.faults[names[1]] = ["slow2.0"]  # longer than the timeout: retried
    report = update_obsid_archive(
        ASP_L1, source(server, tmp_path, timeout=0.8), [OBSID], data_root=tmp_path / "asp1"
    )
    assert report.ok, report.summary()
    assert len([p for p, _ in server.requests if p.endswith(names[1] + ".gz")]) == 2


def test_partial_file_from_an_earlier_run_is_resumed(server, tmp_path):
    name = asol_names(server)[0]
    served = next(p for p in server.files.values() if p.name == name + ".gz")
    cache = tmp_path / "cache" / "asp-l1"
    cache.mkdir(parents=True)
    half = served.read_bytes()[: served.stat().st_size // 2]
    (cache / (name + ".gz.partial")).write_bytes(half)
    report = update_obsid_archive(
        ASP_L1, source(server, tmp_path), [OBSID], data_root=tmp_path / "asp1"
    )
    assert report.ok
    assert [r for p, r in server.requests if p.endswith(name + ".gz")] == [f"bytes={len(half)}-"]


def test_what_the_public_archive_does_not_hold(server, tmp_path):
    src = source(server, tmp_path)
    with pytest.raises(NotPublic, match="does not distribute obspar"):
        update_obsid_archive(OBSPAR, src, [7000], data_root=tmp_path / "obspar")
    with pytest.raises(NotPublic, match="level-0"):
        update_archive(L0, src, "2012:001", "2012:002", data_root=tmp_path / "aca0")
    report = update_obsid_archive(ASP_L1, src, [2121], data_root=tmp_path / "asp1")
    assert report.skipped == {2121: NO_DATA}  # the public list has nothing for it


def test_obsids_by_time_through_the_ocat(server, tmp_path):
    server.ocat = [OBSID]
    obs = default_mission().observation(OBSID)
    report = update_obsid_archive(
        ASP_L1,
        source(server, tmp_path),
        start=obs.tstart,
        stop=obs.tstop,
        data_root=tmp_path / "asp1",
    )
    assert report.ok and list(report.done) == [OBSID]
    assert any("ocatList.do" in p for p, _ in server.requests)


def test_parsers_and_spec():
    listed = parse_file_list(
        "Filename\tFilesize\tTimestamp\n"
        "pcadf126690624N007_asol1.fits\t7,300,800\t2010-01-01\n"
        "pcadf02365_002N001_asol1.fits\t4,728,960\t2010-01-01\n"
    )
    assert [(f.name, f.size) for f in listed] == [
        ("pcadf126690624N007_asol1.fits", 7300800),
        ("pcadf02365_002N001_asol1.fits", 4728960),
    ]
    with pytest.raises(SourceError, match="header"):
        parse_file_list("<html>error</html>\n")
    rows = parse_rdb("# c\nSeq Num\tObs ID\tExposure (ks)\n20N\t20N\t20N\n1\t2\t3.5\n")
    assert rows == [{"seq_num": "1", "obsid": "2", "exp_time": "3.5"}]  # the original's names
    src = make_source("cda")
    assert str(src) == "cda" and src.tree == "https://cdaftp.cfa.harvard.edu/pub"
    assert src.urls(2365, "pcadf126690624N007_asol1.fits")[0] == (
        "https://cdaftp.cfa.harvard.edu/pub/byobsid/5/2365/primary/pcadf126690624N007_asol1.fits.gz"
    )
    assert "secondary/aspect" in src.urls(2365, "pcadf126695890N007_adat61.fits")[0]
    src.close()


def test_progress_bar_runs(server, tmp_path):
    src = source(server, tmp_path, progress=True)
    listed = src.file_list(ASP_L1, OBSID)[:3]
    results = src.download_all(OBSID, listed, tmp_path / "dl")
    assert all(r.path is not None and r.path.exists() for r in results)
    shutil.rmtree(tmp_path / "dl")
