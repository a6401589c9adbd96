"""Synced header-3 chunks over their life: their names agree with their recorded identity, a
local update keeps the server's rows, ``mica check --repair`` names the sync that mends a
damaged one, and that sync fetches it again."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import h5py
import numpy as np
import pytest

from mica.archive import aca_hdr3
from mica.cli.sync import republish
from mica.engine.registry import get
from mica.sync.manifest import Selection
from mica.sync.run import sync
from mica.time import to_secs
from tests.sync.conftest import LATER_DAY, _ingest_l0, quick_client
from tests.sync.test_sync import _flip_blocks

EARLY = ("2012:125:00:00:00", "2012:125:06:00:00")
LATER = (f"2012:{LATER_DAY}:00:00:00", f"2012:{LATER_DAY}:06:00:00")


def _chunks(root: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(root / "archfiles.db3") as db:
        return list(db.execute("SELECT part, path, digests FROM store_chunks"))


def _names_agree(root: Path) -> int:
    """Every chunk's file name, recorded identity and file attribute name one generation
    (the seed of its digests); the number of synced chunks."""
    with sqlite3.connect(root / "archfiles.db3") as db:
        synced = {p for (p,) in db.execute("SELECT part FROM synced_parts")}
    for part, path, digests in _chunks(root):
        identity = json.loads(digests)["identity"]
        assert path == f"store/{part}.{identity['generation']}.h5", (path, identity)
        with h5py.File(root / path, "r") as h5:
            assert json.loads(h5.attrs["identity"]) == identity
    assert not get("aca-l0").check(root, verify_store=True).problems
    return len(synced)


def _values(root: Path, span: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    msid = aca_hdr3.MSID("ccd_temp", *span, data_root=root)
    return msid.times, msid.vals


def test_a_local_update_keeps_the_servers_rows(
    server_v1, server_v2, serve, tmp_path, docs_archive
) -> None:
    """Header-3 views synced, then L0 files archived here that the server's chunks lack: the
    chunks stay the server's (warned, naming the sync that brings the partition's files);
    after that sync the chunks are rebuilt here from every file. Names and identities agree
    all along."""
    server = serve(server_v1)
    local = tmp_path / "laptop"
    root = local / "aca0"
    with quick_client(server) as client:
        assert sync(server.url, ["aca-hdr3"], archive=local, client=client).ok
    assert _names_agree(root)
    theirs = _values(server_v1 / "aca0", EARLY)
    later = sorted((docs_archive / "aca0" / "2012" / LATER_DAY).glob("*.fits.gz"))
    named = rf"sync {re.escape(server.url)} --products aca-l0 --start 2012:"
    with pytest.warns(RuntimeWarning, match=named):
        _ingest_l0(later, tmp_path / "upstream", root)
    for ours, expected in zip(_values(root, EARLY), theirs):
        np.testing.assert_array_equal(ours, expected)  # the server's rows kept
    assert _names_agree(root)
    report = get("aca-l0").check(root)  # no problem; noted, with the same command
    assert not report.problems and any(re.search(named, n) for n in report.notes), report.notes
    # the partitions' files from the server: rebuilt here from them all, nothing lost
    with quick_client(server) as client:
        assert sync(server.url, ["aca-l0"], archive=local, client=client).ok
    for ours, expected in zip(_values(root, EARLY), theirs):
        np.testing.assert_array_equal(ours, expected)
    for ours, expected in zip(_values(root, LATER), _values(server_v2 / "aca0", LATER)):
        np.testing.assert_array_equal(ours, expected)
    assert len(_values(root, LATER)[0]) > 500
    _names_agree(root)
    assert not any("installed by a sync" in n for n in get("aca-l0").check(root).notes)


def test_check_names_the_sync_that_fetches_a_damaged_chunk_and_repair_runs_it(
    server_v1, serve, tmp_path
) -> None:
    """A damaged synced chunk: ``mica check --verify-store`` names the sync that fetches it
    again (there are no files here to rebuild it from); ``--repair`` removes it and runs that
    sync from the server the sync record names; after a removal alone, the check and the
    named command do it."""
    from click.testing import CliRunner

    from mica.cli import main

    server = serve(server_v1)
    local = tmp_path / "laptop"
    root = local / "aca0"
    window = Selection(to_secs(EARLY[0]), to_secs(EARLY[1]))
    with quick_client(server) as client:
        assert sync(server.url, ["aca-hdr3"], window, archive=local, client=client).ok
    theirs = _values(server_v1 / "aca0", EARLY)
    paths = [root / path for _, path, _ in _chunks(root)]
    assert sum(_flip_blocks(path, ("TIME", "BLOCK0")) for path in paths)
    report = get("aca-l0").check(root, verify_store=True)
    named = re.compile(
        rf"`mica --archive {re.escape(str(local))} sync {re.escape(server.url)} "
        r"--products aca-hdr3 --start (\S+) --stop (\S+)` fetches it again"
    )
    assert report.problems and all(named.search(p) for p in report.problems), report.problems
    done = CliRunner().invoke(
        main, ["--archive", str(local), "check", "--verify-store", "--repair"]
    )
    assert done.exit_code == 0, done.output
    assert f"sync from {server.url}: transferred" in done.output, done.output
    assert not get("aca-l0").check(root, verify_store=True).problems
    assert _names_agree(root)
    for ours, expected in zip(_values(root, EARLY), theirs):
        np.testing.assert_array_equal(ours, expected)
    # removed by hand (or the server was away during the repair): named, and fetched by it
    removed = root / _chunks(root)[0][1]
    removed.unlink()
    report = get("aca-l0").check(root)
    found = [named.search(p) for p in report.problems]
    assert len(found) == 1 and found[0], report.problems
    sel = Selection(to_secs(found[0].group(1)), to_secs(found[0].group(2)))
    with quick_client(server) as client:
        assert sync(server.url, ["aca-hdr3"], sel, archive=local, client=client).ok
    assert removed.exists() and not get("aca-l0").check(root, verify_store=True).problems


def test_a_kept_chunk_gives_way_to_the_servers_newer_one(
    server_v1, serve, tmp_path, tmp_path_factory, docs_archive
) -> None:
    """A sync's chunk kept beside files archived here (some the server never had) is
    replaced by the server's newer chunk of the partition, not kept for ever."""
    server = serve(server_v1)
    local = tmp_path / "laptop"
    root = local / "aca0"
    with quick_client(server) as client:
        assert sync(server.url, ["aca-hdr3"], archive=local, client=client).ok
    later = sorted((docs_archive / "aca0" / "2012" / LATER_DAY).glob("*.fits.gz"))
    with pytest.warns(RuntimeWarning, match="--products aca-l0"):
        _ingest_l0(later, tmp_path / "upstream", root)  # every slot's files of that day
    # the server archives that day too, but for one 8x8 file (in the samples' partitions):
    # this archive's alone
    with sqlite3.connect(root / "archfiles.db3") as db:
        (alone,) = db.execute(
            "SELECT filename FROM archfiles WHERE imgsize = 8 AND doy = ? ORDER BY filename",
            (int(LATER_DAY),),
        ).fetchone()
    newer = tmp_path_factory.mktemp("sync-v3") / "archive"
    shutil.copytree(server_v1, newer, symlinks=True)
    theirs_files = [p for p in later if p.name != alone]
    assert len(theirs_files) == len(later) - 1
    _ingest_l0(theirs_files, tmp_path / "upstream-server", newer / "aca0")
    republish("aca-l0", None, newer)
    with sqlite3.connect(newer / "aca0" / "archfiles.db3") as db:
        theirs = {
            p: (f, d) for p, f, d in db.execute("SELECT part, files, digests FROM store_chunks")
        }
    samples = [p for p in theirs if p.startswith("hd3s/")]
    assert samples
    newer_server = serve(newer)
    with quick_client(newer_server) as client:
        assert sync(newer_server.url, ["aca-hdr3"], archive=local, client=client).ok
    with sqlite3.connect(root / "archfiles.db3") as db:
        ours = {
            p: (f, d) for p, f, d in db.execute("SELECT part, files, digests FROM store_chunks")
        }
    for part in samples:  # every slot's samples: the server's newer chunk
        assert ours[part] == theirs[part], part
    assert _names_agree(root)
