"""Readers of a synced archive asked for what the sync did not bring name the ``mica sync``
that brings it (`mica.engine.synced`): obspars, dark calibrations, V&V; the derived tables
come whole whatever the selection, so they have no outside."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mica.archive import obspar
from mica.archive.aca_dark import dark_cal
from mica.errors import MissingDataError
from mica.stats import acq_stats
from mica.sync.manifest import Selection
from mica.sync.run import sync
from mica.time import to_secs
from mica.vv import get_arch_vv, get_vv, get_vv_dir
from tests.sync.conftest import quick_client

#: the documentation archive's obsid with aspect L1, V&V and obspar
OBSID = 10369


def _sync(server, local: Path, products: list[str], selection: Selection) -> None:
    with quick_client(server) as client:
        report = sync(server.url, products, selection, archive=local, client=client)
    assert report.ok, report.summary()


def _names(url: str, product: str, option: str) -> str:
    """The pattern of the error naming the sync that brings the asked data."""
    return rf"sync {re.escape(url)} --products {product} {option}"


@pytest.fixture(scope="module")
def window() -> tuple[float, float]:
    return to_secs("2012:125:00:00:00"), to_secs("2012:126:00:00:00")


def test_obspar_outside_a_time_range(server_v1, serve, tmp_path, window) -> None:
    server = serve(server_v1)
    local = tmp_path / "laptop"
    _sync(server, local, ["obspar"], Selection(*window))
    root = local / "obspar"
    inside = obspar.get_obsids("2012:125:01:00:00", "2012:125:20:00:00", data_root=root)
    theirs = obspar.get_obsids(
        "2012:125:01:00:00", "2012:125:20:00:00", data_root=server_v1 / "obspar"
    )
    assert inside == theirs and inside
    named = _names(server.url, "obspar", "--start 2012:124:00:00:00 --stop 2012:127")
    with pytest.raises(MissingDataError, match=named):
        obspar.get_obsids("2012:124", "2012:127", data_root=root)
    with pytest.raises(MissingDataError, match=named):
        obspar.get_files(start="2012:124", stop="2012:127", data_root=root)
    # an obsid of the server's archive the sync did not bring
    held = set(obspar.get_obsids("2012:124", "2012:132", data_root=server_v1 / "obspar"))
    other = min(held - set(obspar.get_obsids(*window, data_root=root)))
    with pytest.raises(MissingDataError, match=_names(server.url, "obspar", f"--obsid {other}")):
        obspar.get_obspar(other, data_root=root)
    with pytest.raises(MissingDataError, match=f"--obsid {other}"):
        obspar.get_obspar_file(other, version=1, data_root=root)
    with pytest.raises(MissingDataError, match=f"--obsid {other}"):
        obspar.obsid_interval(other, data_root=root)
    # an obsid it holds, asked for a revision it lacks: none, as in any archive
    assert obspar.get_obspar_file(inside[0], version=7, data_root=root) is None


def test_obspar_of_some_obsids_has_no_time_range(server_v1, serve, tmp_path) -> None:
    server = serve(server_v1)
    local = tmp_path / "laptop"
    _sync(server, local, ["obspar"], Selection(obsids=(OBSID,)))
    root = local / "obspar"
    ours = obspar.get_obspar(OBSID, data_root=root)
    assert ours and ours == obspar.get_obspar(OBSID, data_root=server_v1 / "obspar")
    assert obspar.get_files(obsid=OBSID, data_root=root)
    # the sync brought one obsid, not the range's others: the range is outside it
    with pytest.raises(MissingDataError, match=_names(server.url, "obspar", "--start 2012:120")):
        obspar.get_obsids("2012:120", "2012:130", data_root=root)


def test_dark_calibrations_outside_the_sync(server_v1, serve, tmp_path) -> None:
    """A choice among the calibrations held is refused when one the sync did not bring could
    be the answer (before, after or nearer than the one held)."""
    server = serve(server_v1)
    local = tmp_path / "laptop"
    assert list(dark_cal.get_dark_cal_dirs(data_root=server_v1 / "aca_dark")) == ["2012131"]
    _sync(server, local, ["aca-dark"], Selection(to_secs("2012:130"), to_secs("2012:135")))
    root = local / "aca_dark"
    assert dark_cal.get_dark_cal_id("2012:133", data_root=root) == "2012131"
    assert dark_cal.get_dark_cal_id("2012:131:12:00:00", "nearest", data_root=root) == "2012131"
    image = dark_cal.get_dark_cal_image("2012:132", data_root=root)
    np.testing.assert_array_equal(
        image, dark_cal.get_dark_cal_image("2012:132", data_root=server_v1 / "aca_dark")
    )
    # a later calibration, not synced, would be the one before 2012:140
    named = _names(server.url, "aca-dark", "--start 2012:131:00:00:00 --stop 2012:140")
    with pytest.raises(MissingDataError, match=named):
        dark_cal.get_dark_cal_id("2012:140", data_root=root)
    # the dark current model's reference map (the nearest to 1999:223)
    with pytest.raises(MissingDataError, match=_names(server.url, "aca-dark", "--start 1999")):
        dark_cal.get_dark_cal_image("1999:223", select="nearest", data_root=root)
    # none held before 2012:100: was any synced? the sync did not look there
    with pytest.raises(MissingDataError, match=r"--products aca-dark --stop 2012:100"):
        dark_cal.get_dark_cal_id("2012:100", data_root=root)
    with pytest.raises(MissingDataError, match=r"--products aca-dark --start 2012:001"):
        dark_cal.get_dark_cal_props_table("2012:001", "2013:001", data_root=root)
    table = dark_cal.get_dark_cal_props_table("2012:131", "2012:134", data_root=root)
    assert list(table["id"]) == ["2012131"]
    # an id named by the caller
    with pytest.raises(MissingDataError, match=r"--start 2012:200"):
        dark_cal.get_dark_cal_id("2012200", data_root=root)


def test_vv_outside_the_sync(server_v1, serve, tmp_path) -> None:
    server = serve(server_v1)
    local = tmp_path / "laptop"
    _sync(server, local, ["vv", "asp-l1"], Selection(obsids=(OBSID,)))
    assert get_vv(OBSID, data_root=local / "vv")["obsid"] == OBSID
    with pytest.raises(MissingDataError, match=_names(server.url, "vv", "--obsid 2121")):
        get_vv_dir(2121, data_root=local / "vv")
    with pytest.raises(MissingDataError, match=_names(server.url, "vv", "--obsid 2121")):
        get_vv(2121, "last", data_root=local / "vv")
    # the aspect solution is here, its obspar is not: the obspar's sync is named
    with pytest.raises(MissingDataError, match=_names(server.url, "obspar", f"--obsid {OBSID}")):
        get_arch_vv(OBSID, archive=local)  # no obspar folder: the sync brought none
    _sync(server, local, ["obspar"], Selection(obsids=(2121,)))
    with pytest.raises(MissingDataError, match=_names(server.url, "obspar", f"--obsid {OBSID}")):
        get_arch_vv(OBSID, archive=local)  # the obspars of another obsid
    _sync(server, local, ["obspar"], Selection(obsids=(OBSID,)))
    assert get_arch_vv(OBSID, archive=local).obsid == OBSID


def test_derived_tables_come_whole_whatever_the_selection(server_v1, serve, tmp_path) -> None:
    """A derived table is one file of a few hundred bytes per row: a sync of any selection
    brings it whole (its rows of every obsid), byte for byte the server's."""
    server = serve(server_v1)
    local = tmp_path / "laptop"
    _sync(server, local, ["acq-stats"], Selection(obsids=(2121,)))
    ours = acq_stats.get_stats(filter=False, data_root=local / "acq_stats")
    theirs = acq_stats.get_stats(filter=False, data_root=server_v1 / "acq_stats")
    assert len(ours) == len(theirs) > 0
    np.testing.assert_array_equal(ours, theirs)
    assert (local / "acq_stats" / acq_stats.TABLE_NAME).read_bytes() == (
        server_v1 / "acq_stats" / acq_stats.TABLE_NAME
    ).read_bytes()


# The sync runs in a subprocess killed (SIGKILL) right after it renamed the new table into
# place; production code has no hook.
KILLED_SYNC = """
import os, signal, sys
import mica.engine.atomic as atomic

replace = atomic.replace_durable

def replace_then_die(tmp, dest):
    replace(tmp, dest)
    if str(dest).endswith("acq_stats.h5"):
        os.kill(os.getpid(), signal.SIGKILL)

atomic.replace_durable = replace_then_die
from mica.sync.manifest import Selection
from mica.sync.run import sync
sync(sys.argv[1], ["acq-stats"], Selection(obsids=(2121,)), archive=sys.argv[2])
"""


def test_a_new_table_generation_comes_with_its_digest_record(server_v1, serve, tmp_path) -> None:
    """A table is installed with its digest record, the record first accepting the file
    there (if any) and the new one: a sync killed right after the table's rename, the first
    or a later one, leaves a table its readers accept; the next sync completes, its record
    byte for byte the server's."""
    from mica.cli.sync import republish
    from mica.engine.derived import check_derived
    from mica.engine.digests import sidecar
    from mica.stats.acq_product import ACQ_STATS

    root = tmp_path / "server"
    shutil.copytree(server_v1, root, symlinks=True)
    local = tmp_path / "laptop"
    server = serve(root)
    killed = subprocess.run(  # the first sync, killed between the two renames
        [sys.executable, "-c", KILLED_SYNC, server.url, str(local)], capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    first = acq_stats.get_stats(filter=False, data_root=local / "acq_stats")
    np.testing.assert_array_equal(first, ACQ_STATS.table(root / "acq_stats").read())
    _sync(server, local, ["acq-stats"], Selection(obsids=(2121,)))
    table = ACQ_STATS.table(root / "acq_stats")
    rows = table.read()
    added = rows[rows["obsid"] == rows["obsid"][0]].copy()
    added["obsid"] = 99999
    table.write({(99999, 0): added}, {})  # a new generation, as an update writes
    republish("acq-stats", None, root)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_SYNC, server.url, str(local)], capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    mine = local / "acq_stats" / acq_stats.TABLE_NAME
    assert mine.read_bytes() == table.path.read_bytes()  # the new table, the old record
    np.testing.assert_array_equal(
        acq_stats.get_stats(filter=False, data_root=mine.parent), table.read()
    )
    _sync(server, local, ["acq-stats"], Selection(obsids=(2121,)))
    ours = acq_stats.get_stats(filter=False, data_root=local / "acq_stats")
    np.testing.assert_array_equal(ours, table.read())
    assert 99999 in ours["obsid"]
    assert sidecar(mine).read_bytes() == sidecar(table.path).read_bytes()
    assert check_derived(ACQ_STATS, local / "acq_stats", verify_store=True).ok
