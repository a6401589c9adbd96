"""Hostile sources: ``dir:`` links and duplicate names, ``cda`` redirects, deadlines and sizes.

``dir:`` folders are real folders of simulated L0 files pushed through the real update path;
the ``cda`` cases run the real `CDASource` against the fault-injecting HTTP server of
``tests/sources/test_cda_source.py`` on 127.0.0.1, extended here with redirects, a dripping body,
dripping response headers (raw bytes on the socket) and an unlisted size. Deadlines are short
so each case runs in seconds.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mica.cli import main
from mica.engine.index import ArchiveIndex
from mica.engine.index_check import check_archive
from mica.engine.obsid_update import update_obsid_archive
from mica.engine.time_update import update_archive
from mica.errors import ConfigError
from mica.products.aca_l0 import L0
from mica.products.asp_l1 import ASP_L1
from mica.sim.aca_l0 import plan_l0_files, write_l0_file
from mica.sources.cda import CDASource
from mica.sources.directory import DirSource
from tests.sources.test_cda_source import (
    OBSID,
    Handler,
    Tree,
    asol_names,
    published,
    serve,
    server,
    source,
)

__all__ = ["published", "server"]  # fixtures shared with the cda tests

WINDOW = ("2012:001:00:00:00", "2012:001:00:20:00")


@pytest.fixture(scope="module")
def l0_files(tmp_path_factory) -> list[Path]:
    dest = tmp_path_factory.mktemp("l0")
    for plan in plan_l0_files(*WINDOW):
        write_l0_file(plan, dest)
    return sorted(dest.glob("acaf*.fits.gz"))


def _span(files: list[Path]) -> tuple[float, float]:
    times = [L0.name_time(p.name) for p in files]
    return min(times) - 10, max(times) + 10


# --- dir: links (defect 9) ------------------------------------------------------------------
def test_dir_link_out_of_the_folder_is_not_followed(l0_files, tmp_path):
    folder = tmp_path / "upstream"
    folder.mkdir()
    for path in l0_files[1:]:
        shutil.copyfile(path, folder / path.name)
    private = tmp_path / "private" / "secret"
    private.parent.mkdir()
    private.write_bytes(l0_files[0].read_bytes())  # what a link could leak
    private.chmod(0o600)
    (folder / l0_files[0].name).symlink_to(private)
    root = tmp_path / "aca0"
    report = update_archive(L0, f"dir:{folder}", *_span(l0_files), data_root=root)
    assert l0_files[0].name not in report.ingested
    assert len(report.ingested) == len(l0_files) - 1 and report.ok, report.summary()
    assert not list(root.rglob(l0_files[0].name))  # no copy of the private file anywhere
    assert any("not followed" in n and l0_files[0].name in n for n in report.notes)
    assert check_archive(L0, data_root=root).ok


def test_dir_link_inside_the_folder_is_followed(l0_files, tmp_path):
    folder = tmp_path / "upstream"
    (folder / "real").mkdir(parents=True)
    shutil.copyfile(l0_files[0], folder / "real" / l0_files[0].name)
    (folder / "links").mkdir()
    (folder / "links" / l0_files[0].name).symlink_to(f"../real/{l0_files[0].name}")
    src = DirSource(folder)
    dest = tmp_path / "dest"
    dest.mkdir()
    got = src.fetch(L0, *_span(l0_files[:1]), dest)
    assert [p.name for p in got] == [l0_files[0].name]  # same bytes twice: delivered once
    assert got[0].read_bytes() == l0_files[0].read_bytes() and not src.notes


def test_dir_staged_copy_follows_the_umask(l0_files, tmp_path):
    """A file private to its owner in the source folder is staged (and archived) with the
    archive's mode, so that the archive's readers can read it."""
    folder = tmp_path / "upstream"
    folder.mkdir()
    mine = folder / l0_files[0].name
    shutil.copyfile(l0_files[0], mine)
    mine.chmod(0o600)
    dest = tmp_path / "dest"
    dest.mkdir()
    old = os.umask(0o022)
    try:
        (got,) = DirSource(folder).fetch(L0, *_span(l0_files[:1]), dest)
    finally:
        os.umask(old)
    assert stat.S_IMODE(got.stat().st_mode) == 0o644


# --- dir: one name in two subfolders (defect 12) ------------------------------------------
def _two_copies(l0_files: list[Path], tmp_path: Path, second: bytes | None) -> Path:
    folder = tmp_path / "upstream"
    for sub in ("a", "b"):
        (folder / sub).mkdir(parents=True)
    for path in l0_files:
        shutil.copyfile(path, folder / "a" / path.name)
    (folder / "b" / l0_files[0].name).write_bytes(second or l0_files[0].read_bytes())
    return folder


def test_dir_identical_copies_delivered_once_quietly(l0_files, tmp_path):
    folder = _two_copies(l0_files, tmp_path, None)
    root = tmp_path / "aca0"
    report = update_archive(L0, f"dir:{folder}", *_span(l0_files), data_root=root)
    assert report.ok and not report.rejected and not report.notes, report.summary()
    assert sorted(report.ingested) == sorted(p.name for p in l0_files)


def test_dir_different_copies_under_one_name_are_refused(l0_files, tmp_path):
    """Both copies are refused, each naming both paths; the other files are archived."""
    other = gzip.compress(gzip.decompress(l0_files[0].read_bytes()) + b"\0", mtime=0)
    folder = _two_copies(l0_files, tmp_path, other)
    root = tmp_path / "aca0"
    report = update_archive(L0, f"dir:{folder}", *_span(l0_files), data_root=root)
    name = l0_files[0].name
    copies = [str(folder / "a" / name), str(folder / "b" / name)]
    assert sorted(e.filename for e in report.rejected) == copies, report.summary()
    for err in report.rejected:
        assert all(c in str(err) for c in copies) and "differs" in str(err), str(err)
    assert not report.ok
    assert sorted(report.ingested) == sorted(p.name for p in l0_files[1:]), report.summary()
    assert not list(root.rglob(name))  # neither copy archived
    assert len(list((root / "rejected").glob("*.reason"))) == 2
    assert check_archive(L0, data_root=root).ok


# --- cda: redirects, deadlines, sizes (defect 10) -----------------------------------------
class Hostile(Handler):
    """The cda test server plus redirects (``REDIRECT`` faults) and a dripping body."""

    def _serve(self, url) -> None:
        tree = self.tree
        plan = getattr(tree, "hostile", {}).get(url.path)
        if plan is None:
            return super()._serve(url)
        kind, arg = plan
        if kind == "redirect":  # to arg (an absolute URL or a path on this server)
            self.send_response(302)
            self.send_header("Location", arg)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if kind == "drip":  # one byte every ``arg`` seconds, forever (until the client goes)
            self.send_response(200)
            self.send_header("Content-Length", "50000")
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"\x1f")
                    self.wfile.flush()
                    time.sleep(arg)
            except OSError:
                return None
        if kind == "drip-headers":  # a status line, then one header byte every ``arg`` s
            self.close_connection = True
            try:  # raw on the socket: http.server would send the headers at once
                self.connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Drip: ")
                for _ in range(int(60 / arg)):  # bounded: a regression fails, never hangs
                    self.connection.sendall(b"a")
                    time.sleep(arg)
            except OSError:  # the client gave up: what is tested
                pass
            return None
        if kind == "big":  # a body of ``arg`` bytes (no size in the list)
            self.send_response(200)
            self.end_headers()  # no Content-Length: read until the connection closes
            self.close_connection = True
            try:
                for _ in range(arg // 65536):
                    self.wfile.write(b"\0" * 65536)
            except OSError:
                pass
            return None
        return super()._serve(url)


@pytest.fixture()
def hostile(published, tmp_path):
    for tree in serve(published, tmp_path, Hostile):
        tree.hostile = {}
        yield tree


def _path_of(tree: Tree, name: str) -> str:
    return next(p for p in tree.files if p.endswith(name + ".gz"))


def test_cda_redirect_within_the_host_is_followed(hostile, tmp_path):
    name = asol_names(hostile)[0]
    real = _path_of(hostile, name)
    moved = real.replace("/pub/", "/pub/moved/")
    hostile.files[moved] = hostile.files[real]
    hostile.hostile[real] = ("redirect", moved)
    report = update_obsid_archive(
        ASP_L1, source(hostile, tmp_path), [OBSID], data_root=tmp_path / "asp1"
    )
    assert report.ok, report.summary()
    assert any(p == moved for p, _ in hostile.requests)


def test_cda_redirect_loop_is_a_clean_failure(hostile, tmp_path):
    name = asol_names(hostile)[0]
    hostile.hostile[_path_of(hostile, name)] = ("redirect", _path_of(hostile, name))  # to itself
    start = time.monotonic()
    report = update_obsid_archive(
        ASP_L1, source(hostile, tmp_path, retries=1), [OBSID], data_root=tmp_path / "asp1"
    )
    assert time.monotonic() - start < 20
    text = report.failed[OBSID]
    assert "redirect" in text and name in text and "Traceback" not in text, text
    assert "TooManyRedirects" not in text


def test_cda_redirect_to_another_host_is_refused(hostile, tmp_path):
    name = asol_names(hostile)[0]
    # another port on this host: a different server, whatever answers there
    hostile.hostile[_path_of(hostile, name)] = (
        "redirect",
        "http://127.0.0.1:9/evil/" + name + ".gz",
    )
    report = update_obsid_archive(
        ASP_L1, source(hostile, tmp_path), [OBSID], data_root=tmp_path / "asp1"
    )
    text = report.failed[OBSID]
    assert "127.0.0.1:9" in text and "not followed" in text, text


def test_cda_dripping_server_meets_the_file_deadline(hostile, tmp_path):
    name = asol_names(hostile)[0]
    hostile.hostile[_path_of(hostile, name)] = ("drip", 0.2)
    start = time.monotonic()
    report = update_obsid_archive(
        ASP_L1,
        source(hostile, tmp_path, file_deadline=1.5, timeout=1.0),
        [OBSID],
        data_root=tmp_path / "asp1",
    )
    took = time.monotonic() - start
    assert took < 10, took  # the drip would hold it for ever
    text = report.failed[OBSID]
    assert "deadline" in text and name in text, text


def test_cda_run_deadline_fails_the_rest_cleanly(hostile, tmp_path):
    name = asol_names(hostile)[0]
    hostile.hostile[_path_of(hostile, name)] = ("drip", 0.2)
    src = source(hostile, tmp_path, file_deadline=60, run_deadline=1.5, timeout=1.0)
    start = time.monotonic()
    report = update_obsid_archive(ASP_L1, src, [OBSID, 6001], data_root=tmp_path / "asp1")
    assert time.monotonic() - start < 10
    assert "run deadline" in report.failed[OBSID], report.summary()
    assert "run deadline" in report.failed[6001], report.summary()


def test_cda_deadlines_from_the_environment(monkeypatch):
    monkeypatch.setenv("MICA_CDA_FILE_DEADLINE", "12.5")
    monkeypatch.setenv("MICA_CDA_RUN_DEADLINE", "99")
    monkeypatch.setenv("MICA_CDA_MAX_FILE_BYTES", "1000")
    from mica.sources.cda import CDASource

    src = CDASource(progress=False)
    assert (src.file_deadline, src.run_deadline, src.max_file_bytes) == (12.5, 99.0, 1000)
    src.close()
    monkeypatch.setenv("MICA_CDA_FILE_DEADLINE", "soon")
    with pytest.raises(ConfigError, match="MICA_CDA_FILE_DEADLINE"):
        CDASource(progress=False)


def test_cda_unlisted_size_is_capped(hostile, tmp_path):
    name = asol_names(hostile)[0]
    hostile.sizes[OBSID] = [(n, None if n == name else s) for n, s in hostile.sizes[OBSID]]
    hostile.hostile[_path_of(hostile, name)] = ("big", 1 << 20)  # 1 MB where the cap is 200 kB
    report = update_obsid_archive(
        ASP_L1,
        source(hostile, tmp_path, max_file_bytes=200_000),
        [OBSID],
        data_root=tmp_path / "asp1",
    )
    text = report.failed[OBSID]
    assert "200000" in text and name in text, text
    partials = list((tmp_path / "cache").rglob(name + "*"))
    assert all(p.stat().st_size <= 200_000 + 65536 for p in partials)
    assert not (tmp_path / "asp1").exists() or not list((tmp_path / "asp1").rglob(name + "*"))


#: the file deadline of the dripping-server cases and what an update may take beyond it
DRIP_DEADLINE, DRIP_SLACK = 2.0, 3.0


def _archived(root: Path) -> dict[str, str]:
    """The archive's files by content hash and its index rows (what an update may change)."""
    out = {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix == ".gz" and "staging" not in p.relative_to(root).parts
    }
    with ArchiveIndex(ASP_L1, root) as index:
        out["rows"] = repr(sorted(tuple(sorted(r.items())) for r in index.query()))
    return out


@pytest.mark.parametrize("drip", ["drip-headers", "drip"])
def test_cda_dripping_server_is_cut_at_the_file_deadline(hostile, tmp_path, monkeypatch, drip):
    """A server dripping the response headers (or the body) one byte every 0.2 s, well inside
    the 30 s read timeout: ``mica update`` returns by the file deadline plus a little, exits
    non-zero naming the file and its deadline, and the archive is unchanged and clean."""
    root = tmp_path / "asp1"
    monkeypatch.setenv("MICA_CDA_FILE_DEADLINE", str(DRIP_DEADLINE))
    args = ["update", "asp-l1", "--source", f"cda:{hostile.url}", "--obsid", str(OBSID)]
    args += ["--data-root", str(root)]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    before = _archived(root)
    assert len(before) > 1  # files and rows to keep
    name = asol_names(hostile)[0]
    hostile.hostile[_path_of(hostile, name)] = (drip, 0.2)
    asked = len(hostile.requests)
    start = time.monotonic()
    result = CliRunner().invoke(main, [*args, "--refresh"])  # fetch the revision again
    took = time.monotonic() - start
    print(f"{drip}: update returned after {took:.2f} s (file deadline {DRIP_DEADLINE:g} s)")
    assert took < DRIP_DEADLINE + DRIP_SLACK, took
    assert result.exit_code != 0, result.output
    assert name in result.output and "file deadline of 2 s" in result.output, result.output
    assert "Traceback" not in result.output
    assert any(p.endswith(name + ".gz") for p, _ in hostile.requests[asked:])
    assert _archived(root) == before
    assert not (root / "staging").exists() or not any((root / "staging").rglob("*"))
    assert check_archive(ASP_L1, data_root=root).ok


def test_cda_service_dripping_headers_meets_the_run_deadline(hostile, tmp_path):
    """The file-list service drips its headers: the run deadline ends the update, each
    obsid failed with one message naming the deadline."""
    hostile.hostile["/srservices/archiveFileList.do"] = ("drip-headers", 0.2)
    src = source(hostile, tmp_path, file_deadline=60, run_deadline=1.5, timeout=5.0)
    root = tmp_path / "asp1"
    start = time.monotonic()
    report = update_obsid_archive(ASP_L1, src, [OBSID, 6001], data_root=root)
    took = time.monotonic() - start
    assert took < 1.5 + DRIP_SLACK, took
    text = report.failed[OBSID]
    assert "archiveFileList.do" in text and "run deadline of 1.5 s" in text, text
    assert text.count("MICA_CDA_RUN_DEADLINE") == 1, text
    assert "run deadline" in report.failed[6001], report.summary()
    assert not report.ok and not report.done
    assert check_archive(ASP_L1, data_root=root).ok


def test_cda_default_cache_is_resumed_by_the_next_run(hostile, tmp_path):
    """Without a ``cache_dir`` the downloads wait beside the product folder, not in its
    staging folder (which every run wipes): a file cut by a dropped connection is resumed
    with a Range request by the next run, and the files that did arrive are not fetched
    again."""
    name = asol_names(hostile)[0]
    hostile.faults[name] = ["drop"]
    root = tmp_path / "asp1"
    opts = {"backoff": 0.01, "progress": False}
    first = update_obsid_archive(
        ASP_L1, CDASource(hostile.url, retries=0, **opts), [OBSID], data_root=root
    )
    assert name in first.failed[OBSID], first.summary()
    (kept,) = (tmp_path / ".cda-downloads").rglob(name + ".gz.partial")
    have = kept.stat().st_size
    assert have > 0
    asked = len(hostile.requests)
    second = update_obsid_archive(ASP_L1, CDASource(hostile.url, **opts), [OBSID], data_root=root)
    assert second.ok, second.summary()
    fetched = [(Path(p).name, r) for p, r in hostile.requests[asked:] if p.startswith("/pub/")]
    assert fetched == [(name + ".gz", f"bytes={have}-")]
    assert check_archive(ASP_L1, data_root=root).ok
