"""`mica publish` and `mica sync` against a real HTTP server on 127.0.0.1: what moves, what
the synced archive holds, and that a reader never sees it between."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from mica.archive import aca_hdr3, aca_l0, asp_l1, obspar
from mica.engine.provenance import read_provenance, write_provenance
from mica.engine.registry import get
from mica.engine.synced import read_record
from mica.errors import MicaError, MissingArchiveError, MissingDataError, ProvenanceError
from mica.sync.manifest import HEAD_NAME, PUBLISH_DIR, Head, Selection, decode_part
from mica.sync.publish import publish
from mica.sync.run import sync
from mica.time import to_secs
from tests.sync.conftest import archive_files, quick_client

EVERYTHING = ["aca-l0", "asp-l1", "obspar", "aca-dark", "acq-stats", "vv"]
HDR3 = ("2012:125:00:00:00", "2012:126:00:00:00")


def _head(root: Path) -> Head:
    path = root / PUBLISH_DIR / HEAD_NAME
    return Head.decode(path.read_bytes(), str(path))


def _check(root: Path, names: list[str]) -> None:
    for name in names:
        report = get(name).check(root / _folder(name))
        assert not report.problems, (name, report.problems)


def _folder(name: str) -> str:
    from mica.sync.manifest import sync_products

    return sync_products()[name].folder


def test_publish_writes_content_named_parts_and_is_idempotent(server_v1: Path) -> None:
    head = _head(server_v1)
    assert set(head.products) >= {*EVERYTHING, "aca-hdr3"}
    assert head.products["aca-l0"].provenance["kind"] == "simulated"
    for product in head.products.values():
        for part in product.parts:
            data = (server_v1 / PUBLISH_DIR / part.name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == part.sha256
            assert part.sha256[:16] in part.name
            for entry in decode_part(data, part.name):
                if entry.kind != "link":
                    folder = server_v1 / product.folder
                    assert (folder / entry.path).stat().st_size == entry.size
    before = (server_v1 / PUBLISH_DIR / HEAD_NAME).stat().st_mtime_ns
    again = publish(server_v1)
    assert not again.changed
    assert (server_v1 / PUBLISH_DIR / HEAD_NAME).stat().st_mtime_ns == before


def test_sync_everything_then_up_to_date(server_v1, serve, tmp_path) -> None:
    server = serve(server_v1)
    local = tmp_path / "laptop"
    with quick_client(server) as client:
        report = sync(server.url, [*EVERYTHING, "aca-hdr3"], archive=local, client=client)
    assert report.ok, report.summary()
    # the same answers as the server's archive
    start, stop = "2012:125:00:00:00", "2012:125:01:00:00"
    ours = aca_l0.get_files(start=start, stop=stop, data_root=local / "aca0")
    theirs = aca_l0.get_files(start=start, stop=stop, data_root=server_v1 / "aca0")
    assert [Path(p).name for p in ours] == [Path(p).name for p in theirs] and ours
    assert asp_l1.get_obs_dirs(10369, data_root=local / "asp1")["revisions"] == [1]
    ours_par = obspar.get_obspar(10369, data_root=local / "obspar")
    assert ours_par == obspar.get_obspar(10369, data_root=server_v1 / "obspar") and ours_par
    assert sorted(obspar.get_obsids("2012:125", "2012:127", data_root=local / "obspar")) == sorted(
        obspar.get_obsids("2012:125", "2012:127", data_root=server_v1 / "obspar")
    )
    assert (local / "vv" / "10" / "10369").is_symlink()
    assert read_provenance(local / "aca0")["kind"] == "simulated"
    _check(local, EVERYTHING)
    record = read_record(local / "asp1")
    assert record["products"]["asp-l1"]["server"] == server.url
    # again: the head alone moves (its parts are kept locally by content name)
    server.reset()
    with quick_client(server) as client:
        again = sync(server.url, [*EVERYTHING, "aca-hdr3"], archive=local, client=client)
    assert not any(p.needed for p in again.plans)
    assert [path for path, _ in server.requests] == [f"{PUBLISH_DIR}/{HEAD_NAME}"]
    assert server.sent == (server_v1 / PUBLISH_DIR / HEAD_NAME).stat().st_size


def test_hdr3_views_alone(server_v1, serve, tmp_path) -> None:
    """aca-hdr3: the header-3 store views, no L0 file; reads, checks like any archive."""
    server = serve(server_v1)
    local = tmp_path / "hdr3"
    sel = Selection(to_secs(HDR3[0]), to_secs(HDR3[1]))
    with quick_client(server) as client:
        report = sync(server.url, ["aca-hdr3"], sel, archive=local, client=client)
    assert report.ok
    assert not list((local / "aca0").glob("2012/*/*.fits.gz"))  # no L0 file
    ours = aca_hdr3.MSID("ccd_temp", *HDR3, data_root=local / "aca0")
    theirs = aca_hdr3.MSID("ccd_temp", *HDR3, data_root=server_v1 / "aca0")
    assert len(ours.vals) > 1000
    np.testing.assert_array_equal(ours.times, theirs.times)
    np.testing.assert_array_equal(ours.vals, theirs.vals)
    report = get("aca-l0").check(local / "aca0", verify_store=True)
    assert not report.problems, report.problems
    # asked for what it does not hold: the command that brings it
    with pytest.raises(MissingDataError, match=r"sync .* --products aca-hdr3 --start 2012:127"):
        aca_hdr3.MSID("ccd_temp", "2012:127", "2012:128", data_root=local / "aca0")
    with pytest.raises(MissingDataError, match=r"--products aca-l0 --start 2012:125"):
        aca_l0.get_files(start="2012:125", stop="2012:125:01:00:00", data_root=local / "aca0")


def test_obsid_selection_moves_that_obsid_only(server_v1, serve, tmp_path) -> None:
    server = serve(server_v1)
    local = tmp_path / "one-obsid"
    sel = Selection(obsids=(10369,))
    with quick_client(server) as client:
        report = sync(server.url, ["obspar", "asp-l1"], sel, archive=local, client=client)
    assert report.ok
    assert obspar.get_files(obsid=10369, data_root=local / "obspar")
    with pytest.raises(MissingDataError, match="--products obspar --start 2012:120"):
        obspar.get_obsids("2012:120", "2012:130", data_root=local / "obspar")  # not synced
    assert asp_l1.get_obs_dirs(10369, data_root=local / "asp1")["revisions"] == [1]
    with pytest.raises(MissingDataError, match=f"{server.url} --products obspar --obsid 9326"):
        obspar.get_obs_dirs(9326, data_root=local / "obspar")


def test_dry_run_says_what_would_move_and_changes_nothing(server_v1, serve, tmp_path) -> None:
    server = serve(server_v1)
    local = tmp_path / "dry"
    with quick_client(server) as client:
        report = sync(server.url, ["aca-l0"], archive=local, client=client, dry_run=True)
    files = [e for e in report.plans[0].needed]
    assert files and "would transfer" in report.summary()
    assert f"would transfer {sum(e.size for e in files) / 1e6:.1f} MB" in report.summary()
    assert not (local / "aca0").exists()
    assert not any(path.startswith("aca0/") for path, _ in server.requests)


def test_incremental_sync_moves_only_the_new_parts(server_v1, server_v2, serve, tmp_path) -> None:
    """A second update on the server, published: the next sync moves only what is new."""
    local = tmp_path / "incremental"
    server = serve(server_v1)
    with quick_client(server) as client:
        assert sync(server.url, ["aca-l0", "aca-hdr3"], archive=local, client=client).ok
    server.root = server_v2
    server.reset()
    with quick_client(server) as client:
        report = sync(server.url, ["aca-l0", "aca-hdr3"], archive=local, client=client)
    assert report.ok, report.summary()
    new = {e.path for p in report.plans for e in p.needed}
    assert new and all(p.startswith(("2012/131/", "store/")) for p in new), new
    moved = sum(e.size for p in report.plans for e in p.needed)
    manifests = sum(
        (server_v2 / PUBLISH_DIR / path.split(PUBLISH_DIR + "/", 1)[1]).stat().st_size
        for path, _ in server.requests
        if path.startswith(PUBLISH_DIR)
    )
    assert server.sent == moved + manifests  # nothing else, nothing twice
    names = {Path(p).name for p in _files(local, "2012:131", "2012:132")}
    assert names == {p.name for p in (server_v2 / "aca0" / "2012" / "131").iterdir()}
    _check(local, ["aca-l0"])


def _files(root: Path, start: str = "2012:120", stop: str = "2012:135") -> list[str]:
    return aca_l0.get_files(start=start, stop=stop, data_root=root / "aca0")


def test_reader_never_sees_the_archive_between(server_v1, serve, tmp_path) -> None:
    """get_files in a loop during a sync: no archive or no file, or all of them."""
    server = serve(server_v1)
    server.delay = 0.01
    local = tmp_path / "reader"
    expected = len(_files(server_v1))

    def count() -> int:
        try:
            return len(_files(local))
        except MissingArchiveError:  # no archive yet: the state before
            return 0

    def during() -> None:
        with quick_client(server) as client:
            assert sync(server.url, ["aca-l0"], archive=local, client=client).ok

    assert _reads_during(count, during) == {0, expected}


def _reads_during(read: Callable[[], int], during: Callable[[], None]) -> set[int]:
    """What ``read()`` returned, in a loop in a thread while ``during()`` ran and a moment
    after (the state after too); any exception it raised is a torn state: the test fails."""
    seen: set[int] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                seen.add(read())
            except BaseException as err:
                errors.append(err)

    reader = threading.Thread(target=loop)
    reader.start()
    try:
        during()
        time.sleep(0.2)
    finally:
        stop.set()
        reader.join()
    assert not errors, errors[:3]
    return seen


def test_mixing_simulated_into_real_is_refused(server_v1, serve, tmp_path) -> None:
    local = tmp_path / "real"
    (local / "obspar").mkdir(parents=True)
    record = dict(read_provenance(server_v1 / "obspar"), kind="real", source="arc5gl")
    write_provenance(local / "obspar", record)
    server = serve(server_v1)
    with quick_client(server) as client, pytest.raises(ProvenanceError, match="real"):
        sync(server.url, ["obspar"], archive=local, client=client)
    assert not any(path.startswith("obspar/") for path, _ in server.requests)


def test_a_manifest_naming_a_path_outside_its_folder_is_refused(server_v1, serve, tmp_path):
    """The manifest is the server's word: an entry escaping its folder stops the sync."""
    root = tmp_path / "evil"
    shutil.copytree(server_v1 / PUBLISH_DIR, root / PUBLISH_DIR)
    head = json.loads((root / PUBLISH_DIR / HEAD_NAME).read_text())
    part = head["products"]["acq-stats"]["parts"][0]
    evil = {"path": "../../etc/x", "kind": "table", "size": 1, "sha256": "0" * 64}
    bad = gzip.compress((json.dumps(evil) + "\n").encode(), mtime=0)
    (root / PUBLISH_DIR / part["name"]).write_bytes(bad)
    part["sha256"] = hashlib.sha256(bad).hexdigest()
    (root / PUBLISH_DIR / HEAD_NAME).write_text(json.dumps(head))
    server = serve(root)
    with quick_client(server) as client, pytest.raises(MicaError, match="outside its product"):
        sync(server.url, ["acq-stats"], archive=tmp_path / "victim", client=client)
    assert not archive_files(tmp_path / "victim") - {"acq_stats/archive.json"}


@pytest.mark.parametrize("first", ["aca-hdr3", "aca-l0"])
def test_hdr3_views_and_a_few_l0_files_in_either_order(server_v1, serve, tmp_path, first) -> None:
    """Header-3 views of two days and the L0 files of six hours of slots 6-7 (the same store
    partitions): the header-3 rows of the whole two days stay, whichever came first."""
    server = serve(server_v1)
    local = tmp_path / "mixed"
    hdr3 = Selection(to_secs("2012:125"), to_secs("2012:127"))
    l0 = Selection(to_secs("2012:125:00:00:00"), to_secs("2012:125:06:00:00"), (6, 7))
    order = [("aca-hdr3", hdr3), ("aca-l0", l0)]
    for name, sel in order if first == "aca-hdr3" else order[::-1]:
        with quick_client(server) as client:
            assert sync(server.url, [name], sel, archive=local, client=client).ok
    six_hours = ("2012:125:00:00:00", "2012:125:06:00:00")
    assert 0 < len(_files(local, *six_hours)) < len(_files(server_v1, *six_hours))
    window = ("2012:125:00:00:00", "2012:127:00:00:00")
    ours = aca_hdr3.MSID("ccd_temp", *window, data_root=local / "aca0")
    theirs = aca_hdr3.MSID("ccd_temp", *window, data_root=server_v1 / "aca0")
    np.testing.assert_array_equal(ours.times, theirs.times)
    report = get("aca-l0").check(local / "aca0")
    assert not report.problems, report.problems


def test_the_commands(server_v1, serve, tmp_path) -> None:
    """`mica publish` and `mica sync --dry-run` as a user types them."""
    from click.testing import CliRunner

    from mica.cli import main

    runner = CliRunner()
    done = runner.invoke(main, ["--archive", str(server_v1), "publish"])
    assert done.exit_code == 0, done.output
    assert done.output.startswith("already published, nothing changed")
    server = serve(server_v1)
    local = tmp_path / "cli"
    args = ["sync", server.url, "--products", "obspar,aca-l0", "--start", "2012:125"]
    args += ["--stop", "2012:126", "--archive", str(local), "--dry-run"]
    done = runner.invoke(main, args)
    assert done.exit_code == 0, done.output
    assert re.search(r"would transfer \d+\.\d MB", done.output), done.output
    assert re.search(r"obspar: \d+ entries selected, \d+ files", done.output), done.output
    assert not local.joinpath("aca0").exists()
    done = runner.invoke(main, ["sync", server.url, "--products", "nothing", "--archive", "x"])
    assert done.exit_code == 1 and "no product nothing" in done.output


def test_header3_reader_during_an_incremental_sync(server_v1, server_v2, serve, tmp_path):
    """Header-3 views alone, their chunks replaced by a second sync while a reader reads:
    every read gives the whole answer (a replaced chunk makes the read start again)."""
    local = tmp_path / "hdr3-reader"
    server = serve(server_v1)
    with quick_client(server) as client:
        assert sync(server.url, ["aca-hdr3"], archive=local, client=client).ok
    window = ("2012:125:00:00:00", "2012:127:00:00:00")

    def count() -> int:
        return len(aca_hdr3.MSID("ccd_temp", *window, data_root=local / "aca0").vals)

    def during() -> None:
        server.root = server_v2
        with quick_client(server) as client:
            report = sync(server.url, ["aca-hdr3"], archive=local, client=client)
        assert report.ok and any(p.needed for p in report.plans)  # chunks replaced

    expected = count()
    assert _reads_during(count, during) == {expected}


def _flip_blocks(chunk: Path, keep: tuple[str, ...]) -> int:
    """A byte flipped in the middle of every stored block of the chunk's datasets whose
    names do not end with one of ``keep``; how many were flipped."""
    spots: list[int] = []

    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset) and obj.chunks and not name.endswith(keep):
            for k in range(obj.id.get_num_chunks()):
                info = obj.id.get_chunk_info(k)
                spots.append(info.byte_offset + info.size // 2)

    with h5py.File(chunk, "r") as h5:
        h5.visititems(visit)
    with open(chunk, "r+b") as fh:
        for offset in spots:
            fh.seek(offset)
            byte = fh.read(1)[0]
            fh.seek(offset)
            fh.write(bytes([byte ^ 0x5A]))
    return len(spots)


def test_synced_chunks_carry_digests_and_a_damaged_one_names_the_sync(
    server_v1, serve, tmp_path
) -> None:
    """A sync records each chunk with the server's digests (read back checked like a chunk
    built here); a damaged synced chunk, which has no files to be read from instead, raises
    the error naming it and the sync that fetches it again, never an empty answer."""
    server = serve(server_v1)
    local = tmp_path / "hdr3"
    sel = Selection(to_secs(HDR3[0]), to_secs(HDR3[1]))
    with quick_client(server) as client:
        assert sync(server.url, ["aca-hdr3"], sel, archive=local, client=client).ok
    root = local / "aca0"
    with sqlite3.connect(server_v1 / "aca0" / "archfiles.db3") as db:
        theirs = dict(db.execute("SELECT part, digests FROM store_chunks"))
    with sqlite3.connect(root / "archfiles.db3") as db:
        ours = dict(db.execute("SELECT part, digests FROM store_chunks"))
        paths = [root / p for (p,) in db.execute("SELECT path FROM store_chunks")]
    assert ours and all(ours[p] and ours[p] == theirs[p] for p in ours)
    assert aca_hdr3.MSID("ccd_temp", *HDR3, data_root=root).vals.size > 1000
    # the values' blocks damaged (times intact): met while decoding the sample tables
    assert sum(_flip_blocks(path, ("TIME", "BLOCK0")) for path in paths)
    named = rf"remove {re.escape(str(root))}/store/.* sync {server.url} --products aca-hdr3"
    with pytest.raises(MissingDataError, match=named):
        aca_hdr3.MSID("ccd_temp", *HDR3, data_root=root)
    with pytest.raises(MissingDataError, match=named):
        aca_l0.hd3_columns(*HDR3, [0], ["TIME", "HD3TLM62"], data_root=root)
    assert get("aca-l0").check(root, verify_store=True).problems  # named by check
    # the times' blocks damaged too: met while the read plans its parts
    assert sum(_flip_blocks(path, ("BLOCK0",)) for path in paths)
    with pytest.raises(MissingDataError, match=named):
        aca_hdr3.MSID("ccd_temp", *HDR3, data_root=root)
