"""A store chunk's newer generation fetched as the pieces that differ from the one held here
(`mica.sync.patch`), from a server on 127.0.0.1.

The server's archive holds 20 days of header-3 store of slots 6-7 (`store_hdr3_files`: the
store's real build path, no FITS files), published; its second state appends a day, which
extends the period's chunks, and is published again."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mica.archive import aca_hdr3
from mica.errors import SyncError
from mica.sim.hdr3_store import Hdr3File, day_files, store_hdr3_files
from mica.sync.client import Interrupted
from mica.sync.install import synced_chunk_path
from mica.sync.manifest import HEAD_NAME, PUBLISH_DIR, Entry, Head, decode_part, digest_file
from mica.sync.patch import PIECE_BYTES, Pieces, changed_ranges
from mica.sync.publish import publish
from mica.sync.run import STAGING, sync
from tests.hardening.test_disk_full import _remount
from tests.sync.conftest import NGINX, nginx_serving, quick_client

DAY = 86400.0
#: the first day of a header-3 period (100 days: the chunks grow with every day of it)
START = 52 * 100 * DAY
DAYS = 20


def _day(day: int) -> list[Hdr3File]:
    return day_files(START + day * DAY, slots=(6, 7))  # (the slots of ccd_temp)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the archive of days 0-19, the same with day 20 appended), each published."""
    base = tmp_path_factory.mktemp("patch")
    first = base / "first"
    for day in range(DAYS):
        store_hdr3_files(first / "aca0", _day(day))
    publish(first, ["aca-hdr3"])
    second = base / "second"
    shutil.copytree(first, second)  # (times kept: the unchanged files' digests are reused)
    store_hdr3_files(second / "aca0", _day(DAYS))
    publish(second, ["aca-hdr3"])
    return first, second


def _chunks(root: Path) -> dict[str, Entry]:
    head = Head.decode((root / PUBLISH_DIR / HEAD_NAME).read_bytes(), "head")
    parts = head.products["aca-hdr3"].parts
    return {
        e.part: e
        for info in parts
        for e in decode_part((root / PUBLISH_DIR / info.name).read_bytes(), info.name)
    }


def _first_sync(serve, first: Path, local: Path):
    """The server of the first state, and ``local`` synced from it."""
    server = serve(first)
    with quick_client(server) as client:
        assert sync(server.url, ["aca-hdr3"], archive=local, client=client).ok
    return server


def _synced_then_second(servers, serve, local: Path, fault=(), **settings):
    """Sync from the first state, then from the second (``fault``: a path's fragment and
    the faults queued for it, ``settings``: `ArchiveServer` attributes, for the second);
    returns the second sync's report and the server."""
    first, second = servers
    server = _first_sync(serve, first, local)
    server.root = second
    server.reset()
    if fault:
        server.fail(*fault)
    for name, value in settings.items():
        setattr(server, name, value)
    with quick_client(server) as client:
        report = sync(server.url, ["aca-hdr3"], archive=local, client=client)
    assert report.ok, report.summary()
    return report, server


def _same_as_server(local: Path, second: Path) -> None:
    """The local chunks are the server's, byte for byte, and read as the server's do."""
    for entry in _chunks(second).values():
        assert digest_file(local / "aca0" / synced_chunk_path(entry)) == entry.sha256
    t0, t1 = START + (DAYS - 1) * DAY, START + (DAYS + 1) * DAY
    here = aca_hdr3.MSID("ccd_temp", t0, t1, data_root=local / "aca0")
    there = aca_hdr3.MSID("ccd_temp", t0, t1, data_root=second / "aca0")
    assert len(here.vals) > 0
    np.testing.assert_array_equal(here.times, there.times)
    np.testing.assert_array_equal(here.vals, there.vals)


def test_publish_records_each_chunks_pieces(servers) -> None:
    first, second = servers
    for root in servers:
        for entry in _chunks(root).values():
            data = np.fromfile(root / "aca0" / entry.path, np.uint8)
            pieces = Pieces.from_text(entry.pieces, entry.size)
            assert pieces.size == PIECE_BYTES
            np.testing.assert_array_equal(pieces.crcs, Pieces.of(data).crcs)
    # the chunks the day extended have new pieces; the others keep theirs
    before, after = _chunks(first), _chunks(second)
    extended = {part for part in after if after[part].sha256 != before[part].sha256}
    assert {"hd3/6/52", "hd3/7/52", "hd3s/52"} <= extended
    for part, entry in after.items():
        assert (entry.pieces != before[part].pieces) == (part in extended)


def test_a_day_appended_is_fetched_as_the_pieces_that_differ(servers, serve, tmp_path) -> None:
    first, second = servers
    local = tmp_path / "local"
    report, server = _synced_then_second(servers, serve, local)
    chunks = [e for plan in report.plans for e in plan.needed]
    assert chunks and all(e.kind == "chunk" for e in chunks)
    assert len(report.patched) == len(chunks), report.summary()
    fetched, size = report.patched_bytes
    assert size == sum(e.size for e in chunks)
    assert fetched < size / 2, report.summary()  # (0.21 when written)
    ranges = [rng for path, rng in server.requests if path.startswith("aca0/store/")]
    assert ranges and all(rng and rng[6:].split("-")[1] for rng in ranges), ranges
    manifests = sum(
        (second / PUBLISH_DIR / path.split(PUBLISH_DIR + "/", 1)[1]).stat().st_size
        for path, _ in server.requests
        if path.startswith(PUBLISH_DIR)
    )
    assert server.sent == fetched + manifests  # the pieces held here were not sent
    assert "store chunks made from their older generation here" in report.summary()
    _same_as_server(local, second)


def test_a_server_without_closed_ranges_sends_whole_chunks(servers, serve, tmp_path) -> None:
    """A server that answers ``bytes=a-b`` to the file's end: each chunk fetched whole."""
    local = tmp_path / "local"
    report, server = _synced_then_second(servers, serve, local, closed_ranges=False)
    assert not report.patched
    assert server.sent >= sum(e.size for plan in report.plans for e in plan.needed)
    _same_as_server(local, servers[1])


def test_wrong_bytes_for_a_piece_give_the_whole_chunk(servers, serve, tmp_path) -> None:
    """A piece that comes back wrong fails the patched file's digest: that chunk is fetched
    whole, the others are patched."""
    local = tmp_path / "local"
    report, server = _synced_then_second(
        servers, serve, local, fault=("aca0/store/hd3s/", "garbage")
    )
    assert len(report.patched) == len(report.plans[0].needed) - 1, report.summary()
    whole = [rng for path, rng in server.requests if path.startswith("aca0/store/hd3s/")]
    assert whole[-1] is None  # after the patch failed: one request for the whole file
    _same_as_server(local, servers[1])


def test_changed_ranges(servers, tmp_path) -> None:
    """The ranges of a file that an older one lacks, on the chunks' real files."""
    first, second = servers
    part = "hd3s/52"
    old, new = _chunks(first)[part], _chunks(second)[part]
    base, target = first / "aca0" / old.path, second / "aca0" / new.path
    pieces = Pieces.from_text(new.pieces, new.size)
    ranges = changed_ranges(base, new.size, pieces)
    assert ranges
    made = np.fromfile(base, np.uint8).copy()
    made.resize(new.size)
    want = np.fromfile(target, np.uint8)
    for start, stop in ranges:
        assert start % PIECE_BYTES == 0 and start < stop <= new.size
        made[start:stop] = want[start:stop]
    np.testing.assert_array_equal(made, want)  # outside the ranges the base holds them
    assert changed_ranges(target, new.size, pieces) == []  # the file itself: nothing
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert changed_ranges(empty, new.size, pieces) is None
    other = tmp_path / "other"
    other.write_bytes(bytes(new.size))
    assert changed_ranges(other, new.size, pieces) is None  # most of it: fetched whole
    with pytest.raises(ValueError, match="piece checksums"):
        Pieces.from_text(new.pieces, new.size + PIECE_BYTES)
    with pytest.raises(ValueError, match="a piece of"):
        Pieces.from_text("3:00000000", 3)


@pytest.mark.skipif(not NGINX.exists(), reason="nginx is not installed (/usr/sbin/nginx)")
def test_pieces_from_nginx(servers, tmp_path) -> None:
    """nginx answers the pieces' ranges as the sync asks for them."""
    first, second = servers
    local = tmp_path / "local"
    with nginx_serving(first.parent, tmp_path / "nginx") as url:
        assert sync(f"{url}/{first.name}", ["aca-hdr3"], archive=local).ok
        report = sync(f"{url}/{second.name}", ["aca-hdr3"], archive=local)
    assert report.ok, report.summary()
    assert len(report.patched) == len(report.plans[0].needed) > 0, report.summary()
    fetched, size = report.patched_bytes
    assert fetched < size / 2
    _same_as_server(local, second)


def _staged(local: Path) -> list[str]:
    staging = local / STAGING
    return sorted(p.name for p in staging.iterdir()) if staging.is_dir() else []


def test_ctrl_c_in_a_patch_leaves_the_held_chunks_and_no_piece_file(servers, serve, tmp_path):
    """Stopped while pieces come (Ctrl-C in a sync stops its transfers at their next block):
    the archive keeps the older chunks, staging keeps no patched file, the next sync
    completes."""
    first, second = servers
    local = tmp_path / "local"
    server = _first_sync(serve, first, local)
    server.root = second
    server.reset()
    with quick_client(server) as client:

        def stop_at_a_piece(path: str) -> None:
            if path.startswith("aca0/store/hd3s/"):
                client.stop.set()

        server.on_request = stop_at_a_piece
        with pytest.raises(Interrupted):
            sync(server.url, ["aca-hdr3"], archive=local, client=client)
    server.on_request = None
    assert not [name for name in _staged(local) if name.endswith(".patched")]
    for entry in _chunks(first).values():  # the first state's chunks, as they were
        assert digest_file(local / "aca0" / synced_chunk_path(entry)) == entry.sha256
    with quick_client(server) as client:
        report = sync(server.url, ["aca-hdr3"], archive=local, client=client)
    assert report.ok and report.patched, report.summary()
    _same_as_server(local, second)


def test_a_full_disk_in_a_patch_stops_cleanly(servers, serve, tmpfs) -> None:
    """No room for the copy of a held chunk: the sync stops as any full disk stops it, the
    archive keeps its chunks, and with room the next sync patches them."""
    first, second = servers
    local = tmpfs / "archive"
    server = _first_sync(serve, first, local)
    used = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
    _remount(tmpfs, f"size={used + (2 << 20)}")  # less than a copy of the period's chunk
    server.root = second
    server.reset()
    with quick_client(server) as client, pytest.raises(SyncError, match="disk is full"):
        sync(server.url, ["aca-hdr3"], archive=local, client=client)
    for entry in _chunks(first).values():
        assert digest_file(local / "aca0" / synced_chunk_path(entry)) == entry.sha256
    _remount(tmpfs, "size=128m")
    with quick_client(server) as client:
        report = sync(server.url, ["aca-hdr3"], archive=local, client=client)
    assert report.ok, report.summary()
    # the sample view's chunk, which had no room, patched (whatever of it came whole)
    assert _chunks(second)["hd3s/52"].size in {size for _, size in report.patched}
    assert not _staged(local)
    _same_as_server(local, second)


def test_a_whole_download_begun_before_gives_way_to_the_pieces(servers, serve, tmp_path):
    """A sync that began a chunk's whole download (stopped by a full disk, a lost
    connection) left its partial file: the next sync still patches the chunk."""
    first, second = servers
    local = tmp_path / "local"
    server = _first_sync(serve, first, local)
    entry = _chunks(second)["hd3s/52"]
    begun = local / STAGING / f"{entry.sha256}.partial"
    begun.parent.mkdir(parents=True)
    begun.write_bytes((second / "aca0" / entry.path).read_bytes()[: 1 << 20])
    server.root = second
    server.reset()
    with quick_client(server) as client:
        report = sync(server.url, ["aca-hdr3"], archive=local, client=client)
    assert report.ok, report.summary()
    assert entry.size in {size for _, size in report.patched}, report.summary()
    assert not _staged(local)
    _same_as_server(local, second)
