"""A folder without an archive is an error naming it and the command that fills it, never an
empty result; an archive without data in the range still gives an empty result.

Also: one error hierarchy (`mica.errors`): every deliberate error is a `MicaError` and keeps
its built-in base.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mica.archive.aca_dark as aca_dark
from mica.archive import aca_hdr3, aca_l0, asp_l1, obspar
from mica.archive.aca_dark import dark_cal, dark_model
from mica.archive.aca_dark.update import update_aca_dark
from mica.engine.index import INDEX_NAME, archive_problem
from mica.engine.lock import ArchiveBusy, UpdateLock
from mica.engine.obsid_layout import ObsidError, check_obsid
from mica.engine.obsid_update import update_obsid_archive
from mica.engine.product import RejectedFile
from mica.errors import MicaError, MissingArchiveError, MissingDataError
from mica.products import hdr3_items
from mica.products.aca_l0 import L0
from mica.products.asp_l1 import ASP_L1
from mica.products.obspar import OBSPAR
from mica.sim import aca_dark as sim_dark

# A range in the sim L0 archive (conftest: 2012:001 00-06 h) and one it holds nothing of
# (test_examples_sim adds 2011:001, obsid 5438 in 2006 and small windows of 2001 and 2012).
IN = ("2012:001:00:00:00", "2012:001:00:10:00")
OUT = ("2008:301:07:00:00", "2008:301:08:00:00")
OUT_OBSID = 7000  # observed during OUT
GUESS_ID = "1999223"  # a calibration the updater builds without L0 (guessed temperature)

Reader = Callable[[Path], Any]

L0_READERS: dict[str, Reader] = {
    "get_files": lambda root: aca_l0.get_files(start=IN[0], stop=IN[1], data_root=root),
    "get_files(obsid)": lambda root: aca_l0.get_files(obsid=5438, data_root=root),
    "get_slot_data": lambda root: aca_l0.get_slot_data(*IN, slot=3, data_root=root),
    "get_slot_data(files)": lambda root: aca_l0.get_slot_data(
        *IN, slot=3, data_root=root, use_store=False
    ),
    "get_l0_images": lambda root: aca_l0.get_l0_images(*IN, slot=3, data_root=root),
    "get_aca_images": lambda root: aca_l0.get_aca_images(*IN, data_root=root),
    "MSID": lambda root: aca_l0.MSID("TEMPCCD", 3, *IN, data_root=root),
    "MSIDset": lambda root: aca_l0.MSIDset(["TEMPCCD", "BGDAVG"], *IN, slot=3, data_root=root),
    "hdr3.MSID": lambda root: aca_hdr3.MSID("ccd_temp", *IN, data_root=root),
    "hdr3.MSID(files)": lambda root: aca_hdr3.MSID(
        "ccd_temp", *IN, data_root=root, use_store=False
    ),
    "hdr3.MSIDset": lambda root: aca_hdr3.MSIDset(["ccd_temp", "dac"], *IN, data_root=root),
    "hdr3.MSIDset(files)": lambda root: aca_hdr3.MSIDset(
        ["ccd_temp", "dac"], *IN, data_root=root, use_store=False
    ),
    "hdr3.Msid": lambda root: aca_hdr3.Msid("dac", *IN, data_root=root),
}
ASP_READERS: dict[str, Reader] = {
    "get_dir": lambda root: asp_l1.get_dir(6000, data_root=root),
    "get_obs_dirs": lambda root: asp_l1.get_obs_dirs(6000, data_root=root),
    "get_files": lambda root: asp_l1.get_files(6000, data_root=root),
    "get_files(time)": lambda root: asp_l1.get_files(start=IN[0], stop=IN[1], data_root=root),
    "get_processing": lambda root: asp_l1.get_processing(6000, data_root=root),
    "get_atts": lambda root: asp_l1.get_atts(6000, data_root=root),
}
OBSPAR_READERS: dict[str, Reader] = {
    "get_obspar": lambda root: obspar.get_obspar(7000, data_root=root),
    "get_obspar_file": lambda root: obspar.get_obspar_file(7000, data_root=root),
    "get_obspar_file(last)": lambda root: obspar.get_obspar_file(7000, "last", data_root=root),
    "get_files": lambda root: obspar.get_files(7000, data_root=root),
    "get_files(time)": lambda root: obspar.get_files(start=IN[0], stop=IN[1], data_root=root),
    "obsid_interval": lambda root: obspar.obsid_interval(7000, data_root=root),
    "get_obsids": lambda root: obspar.get_obsids(*IN, data_root=root),
    "get_dir": lambda root: obspar.get_dir(7000, data_root=root),
    "get_obs_dirs": lambda root: obspar.get_obs_dirs(7000, data_root=root),
}
DARK_READERS: dict[str, Reader] = {
    "get_dark_cal_dirs": lambda root: dark_cal.get_dark_cal_dirs(data_root=root),
    "get_dark_cal_dirs(dir)": lambda root: dark_cal.get_dark_cal_dirs(root),
    "get_dark_cal_ids": lambda root: dark_cal.get_dark_cal_ids(data_root=root),
    "get_dark_cal_id": lambda root: dark_cal.get_dark_cal_id("2007:008", data_root=root),
    "get_dark_cal_id(id)": lambda root: dark_cal.get_dark_cal_id(GUESS_ID, data_root=root),
    "get_dark_cal_image": lambda root: dark_cal.get_dark_cal_image("2007:008", data_root=root),
    "get_dark_cal_props": lambda root: dark_cal.get_dark_cal_props(
        "2007:008", include_image=True, data_root=root
    ),
    "get_dark_cal_props_table": lambda root: dark_cal.get_dark_cal_props_table(data_root=root),
}
READERS = {
    "aca-l0": L0_READERS,
    "asp-l1": ASP_READERS,
    "obspar": OBSPAR_READERS,
    "aca-dark": DARK_READERS,
}
CASES = [(product, name) for product, readers in READERS.items() for name in readers]


def _call_missing(product: str, name: str, root: Path) -> MissingArchiveError:
    """Call a reader on a folder without an archive: the error, checked for its message."""
    with pytest.raises(MissingArchiveError) as err:
        READERS[product][name](root)
    message = str(err.value)
    assert message.startswith(f"no {product} archive in {root} (")
    assert f"'mica update {product} --start ... --stop ... --source ...'" in message
    assert "data_root=/MICA_ARCHIVE" in message
    assert err.value.product == product and err.value.folder == root
    return err.value


@pytest.mark.parametrize(("product", "name"), CASES, ids=[f"{p}:{n}" for p, n in CASES])
def test_nonexistent_folder_raises_and_creates_nothing(tmp_path, product, name):
    root = tmp_path / "typo" / "aca0"
    err = _call_missing(product, name, root)
    assert "(no such folder)" in str(err)
    assert str(err).endswith(f"; {tmp_path / 'typo'} does not exist either")  # (its parent)
    assert isinstance(err, MicaError) and isinstance(err, FileNotFoundError)
    assert not (tmp_path / "typo").exists()  # neither the folder nor an index was created


@pytest.mark.parametrize(("product", "name"), CASES, ids=[f"{p}:{n}" for p, n in CASES])
def test_empty_folder_raises_and_stays_empty(tmp_path, product, name):
    root = tmp_path / "empty"
    root.mkdir()
    err = _call_missing(product, name, root)
    want = "no update has written there" if product == "aca-dark" else f"no {INDEX_NAME}"
    assert f"({want})" in str(err)
    assert list(root.iterdir()) == []  # no archfiles.db3 left behind in a wrong folder


def test_index_without_its_table_is_no_archive(tmp_path):
    """What a first update shows for an instant: the index file before its tables."""
    root = tmp_path / "aca0"
    root.mkdir()
    (root / INDEX_NAME).write_bytes(b"")  # an empty file is an empty SQLite database
    with pytest.raises(MissingArchiveError, match="archfiles.db3 has no archfiles table yet"):
        aca_l0.get_slot_data(*IN, slot=3, data_root=root)
    assert archive_problem(root) == f"{INDEX_NAME} has no archfiles table yet"
    assert sorted(p.name for p in root.iterdir()) == [INDEX_NAME]


def test_a_file_is_not_an_archive_folder(tmp_path):
    path = tmp_path / "aca0"
    path.write_text("not a folder")
    with pytest.raises(MissingArchiveError, match=r"\(not a folder\)"):
        aca_l0.get_files(start=IN[0], stop=IN[1], data_root=path)


def test_default_root_typo_in_mica_archive(tmp_path, monkeypatch):
    """MICA_ARCHIVE naming no archive: the error names the product folder under it."""
    typo = tmp_path / "mica-archvie"
    monkeypatch.setenv("MICA_ARCHIVE", str(typo))
    with pytest.raises(MissingArchiveError, match=f"no aca-l0 archive in {typo / 'aca0'} "):
        aca_l0.get_slot_data(*IN, slot=0)
    with pytest.raises(MissingArchiveError, match=f"no obspar archive in {typo / 'obspar'} "):
        obspar.get_obspar(7000)
    with pytest.raises(MissingArchiveError, match=f"no aca-dark archive in {typo / 'aca_dark'} "):
        dark_cal.get_dark_cal_image("2007:008")
    assert not typo.exists()


def test_dark_model_archive_base_needs_the_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("MICA_ARCHIVE", str(tmp_path / "nowhere"))
    dark_model._archive_base.cache_clear()
    try:
        with pytest.raises(MissingArchiveError, match="no aca-dark archive in .*nowhere"):
            dark_model.synthetic_dark_image("2017:010", base_image="archive", rng=1)
    finally:
        dark_model._archive_base.cache_clear()
    # the synthetic base needs no archive
    assert dark_model.synthetic_dark_image("2017:010", rng=1).shape == (1024, 1024)


# --- archives that exist: nothing in the range is an empty result -------------------------------
def test_l0_archive_without_data_in_range_is_empty(sim_l0_archive):
    root = sim_l0_archive
    assert len(aca_l0.get_files(start=IN[0], stop=IN[1], data_root=root)) > 0  # holds data
    assert aca_l0.get_files(start=OUT[0], stop=OUT[1], data_root=root) == []
    for use_store in (True, False):
        data = aca_l0.get_slot_data(*OUT, slot=3, data_root=root, use_store=use_store)
        assert len(data) == 0 and "IMGRAW" in data.dtype.names
        hdr3 = aca_hdr3.MSIDset(["ccd_temp", "dac"], *OUT, data_root=root, use_store=use_store)
        assert len(hdr3.times) == 0 and all(len(m.vals) == 0 for m in hdr3.values())
    assert aca_l0.get_l0_images(*OUT, slot=3, data_root=root) == []
    assert len(aca_l0.get_aca_images(*OUT, data_root=root)) == 0
    assert len(aca_l0.MSID("TEMPCCD", 3, *OUT, data_root=root).vals) == 0
    assert len(aca_hdr3.Msid("dac", *OUT, data_root=root)) == 0
    assert len(aca_l0.get_slot_data(*IN, slot=3, data_root=root)) > 0


@pytest.fixture(scope="module")
def obsid_archives(tmp_path_factory) -> dict[str, Path]:
    """asp1 and obspar archives of obsid 7000 only, through the real updater."""
    top = tmp_path_factory.mktemp("obsid-archives")
    roots = {"asp-l1": top / "asp1", "obspar": top / "obspar"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MICA_SIM_L1_DECIMATE", "20")  # every 20th sample: quick
        for product in (ASP_L1, OBSPAR):
            report = update_obsid_archive(product, "sim", [7000], data_root=roots[product.name])
            assert report.ok and report.done, report.summary()
    return roots


def test_asp_l1_archive_without_the_obsid_is_none_or_empty(obsid_archives):
    root = obsid_archives["asp-l1"]
    assert asp_l1.get_dir(7000, data_root=root) is not None  # holds data
    assert asp_l1.get_dir(3, data_root=root) is None  # callers rely on None
    assert asp_l1.get_obs_dirs(3, data_root=root) is None
    assert asp_l1.get_files(3, data_root=root) == []
    assert asp_l1.get_files(start=IN[0], stop=IN[1], data_root=root) == []  # 7000 is in 2008
    assert asp_l1.get_processing(3, data_root=root) == []
    quats, times, headers = asp_l1.get_atts(3, data_root=root)
    assert quats.shape == (0, 4) and len(times) == 0 and headers == []


def test_obspar_archive_without_the_obsid_is_none_or_empty(obsid_archives):
    root = obsid_archives["obspar"]
    assert obspar.obsid_interval(7000, data_root=root) is not None  # holds data
    assert obspar.obsid_interval(3, data_root=root) is None  # callers rely on None
    assert obspar.get_obspar(3, data_root=root) is None
    assert obspar.get_obspar_file(3, data_root=root) is None
    assert obspar.get_dir(3, data_root=root) is None
    assert obspar.get_files(3, data_root=root) == []
    assert obspar.get_obsids(*IN, data_root=root) == []  # 7000 is in 2008
    assert obspar.get_files(start=IN[0], stop=IN[1], data_root=root) == []
    assert obspar.get_obsids(*OUT, data_root=root) == [7000]


def test_aca_l0_by_obsid_without_obspar_archive_names_the_obspar_update(
    sim_l0_archive, tmp_path, monkeypatch
):
    """No obspar archive at all: the obsid is unknown (not a missing-archive error), and the
    message names the update that archives its obspar; nothing is created."""
    monkeypatch.setenv("MICA_ARCHIVE", str(tmp_path / "no-obspar-here"))
    with pytest.raises(MissingDataError, match=f"mica update obspar --obsid {OUT_OBSID}"):
        aca_l0.get_files(obsid=OUT_OBSID, data_root=sim_l0_archive)
    with pytest.raises(MissingArchiveError, match="no aca-l0 archive in"):
        aca_l0.get_files(obsid=OUT_OBSID)  # the L0 archive itself is missing: an error
    assert not (tmp_path / "no-obspar-here").exists()


@pytest.fixture(scope="module")
def dark_archive(tmp_path_factory) -> Path:
    """An aca_dark archive of the 1999:223 calibration, through the real updater."""
    root = tmp_path_factory.mktemp("dark") / "aca_dark"
    report = update_aca_dark("1999:223", "1999:224", source="sim", data_root=root)
    assert list(report.done) == [GUESS_ID], report.summary()
    return root


def test_dark_archive_without_data_in_range_is_empty(dark_archive):
    assert list(dark_cal.get_dark_cal_dirs(data_root=dark_archive)) == [GUESS_ID]
    table = dark_cal.get_dark_cal_props_table("2025:001", "2026:001", data_root=dark_archive)
    assert len(table) == 0
    rows = dark_cal.get_dark_cal_props_table("2025:001", as_table=False, data_root=dark_archive)
    assert rows == []
    assert dark_cal.get_dark_cal_id("2007:008", data_root=dark_archive) == GUESS_ID


def test_dark_archive_after_an_update_that_found_nothing(tmp_path):
    """An update over days without calibrations leaves an empty archive, not a missing one."""
    root = tmp_path / "aca_dark"
    assert not sim_dark.dark_cals_between("1999:225", "1999:226")
    report = update_aca_dark("1999:225", "1999:226", source="sim", data_root=root)
    assert not report.done and not report.failed
    assert archive_problem(root, holds=lambda _: False) is None  # the updater's lock is there
    assert dark_cal.get_dark_cal_dirs(data_root=root) == {}
    assert len(dark_cal.get_dark_cal_props_table(data_root=root)) == 0
    with pytest.raises(MissingDataError, match=f"no dark calibrations in {root}$"):
        dark_cal.get_dark_cal_id("2007:008", data_root=root)


def test_dark_archive_copied_without_the_lock(dark_archive, tmp_path):
    """Calibration folders alone (copied by hand) are an archive too."""
    root = tmp_path / "copied"
    root.mkdir()
    os.symlink(dark_archive / GUESS_ID, root / GUESS_ID)
    assert not UpdateLock(root).path.exists()
    assert dark_cal.get_dark_cal_id("1999:300", data_root=root) == GUESS_ID


# --- one error hierarchy ------------------------------------------------------------------------
def test_missing_data_error_is_one_class():
    assert MissingDataError is hdr3_items.MissingDataError
    assert MissingDataError is aca_hdr3.MissingDataError
    assert MissingDataError is dark_cal.MissingDataError is aca_dark.MissingDataError
    from mica.archive.aca_dark.dark_cal import MissingDataError as old_path

    assert old_path is MissingDataError
    for catch in (KeyError, ValueError, MicaError, MissingDataError):
        with pytest.raises(catch) as err:
            aca_hdr3.MSID("no_such_item", *IN)
        # the message as written, without the quotes KeyError would add
        assert str(err.value).startswith("msid no_such_item not found; valid names: ")


def test_missing_data_error_from_dark_cal(dark_archive):
    with pytest.raises(KeyError) as err:
        dark_cal.get_dark_cal_image("1999:100", data_root=dark_archive)
    assert isinstance(err.value, (MissingDataError, ValueError, MicaError))
    assert str(err.value).startswith("No dark cal found before 1999:223")


def test_existing_error_classes_share_the_base(tmp_path):
    with pytest.raises(ObsidError) as obsid_err:
        check_obsid(0)
    assert isinstance(obsid_err.value, (MicaError, ValueError))
    with pytest.raises(RejectedFile) as rejected:
        L0.check_name("../acaf123.fits.gz")
    assert isinstance(rejected.value, MicaError) and isinstance(rejected.value, ValueError)
    with UpdateLock(tmp_path), pytest.raises(ArchiveBusy) as busy:  # flock: per open file
        with UpdateLock(tmp_path):
            pass
    assert isinstance(busy.value, MicaError) and isinstance(busy.value, RuntimeError)


def test_missing_archive_error_crosses_processes(tmp_path):
    with pytest.raises(MissingArchiveError) as err:
        obspar.get_files(7000, data_root=tmp_path / "x")
    copy = pickle.loads(pickle.dumps(err.value))
    assert type(copy) is MissingArchiveError and str(copy) == str(err.value)
    assert copy.product == "obspar" and copy.folder == tmp_path / "x"


# --- the command line ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["fetch", "aca-l0", "--start", IN[0], "--stop", IN[1], "--slot", "3"],
        ["fetch", "hdr3", "ccd_temp", "--start", IN[0], "--stop", IN[1]],
        ["fetch", "hdr3", "ccd_temp", "--start", IN[0], "--stop", IN[1], "--files"],
    ],
    ids=["aca-l0", "hdr3", "hdr3-files"],
)
def test_cli_fetch_prints_the_missing_archive_error(tmp_path, args):
    archive = tmp_path / "archive"
    archive.mkdir()
    env = {**os.environ, "MICA_ARCHIVE": str(archive), "MPLBACKEND": "Agg"}
    run = subprocess.run(
        [sys.executable, "-m", "mica.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert f"Error: no aca-l0 archive in {archive / 'aca0'} (no such folder)" in run.stderr
    assert "'mica update aca-l0 --start ... --stop ... --source ...'" in run.stderr
    assert list(archive.iterdir()) == []


def test_cli_fetch_of_an_empty_range_is_not_an_error(sim_l0_archive, tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "aca0").symlink_to(sim_l0_archive)
    env = {**os.environ, "MICA_ARCHIVE": str(archive)}
    args = ["fetch", "aca-l0", "--start", OUT[0], "--stop", OUT[1], "--slot", "3"]
    csv = tmp_path / "out.csv"
    run = subprocess.run(
        [sys.executable, "-m", "mica.cli", *args, "--csv", str(csv)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "0 rows written" in run.stdout
    assert np.size(csv.read_text().splitlines()) == 1  # the header line only


@pytest.mark.parametrize("version", ["default", "last", 1])
def test_vv_readers_without_an_archive_raise_missing_archive(tmp_path, version):
    """The V&V readers pointed at a folder holding no V&V archive raise `MissingArchiveError`
    naming it (as every other reader does), not the lookup error of an obsid not V&V'd yet;
    the CLI exits 1 (no archive), naming both archives it looked in, not 2 (nothing to
    report)."""
    from mica import vv

    root = tmp_path / "typo" / "vv"
    for read in (vv.get_vv, vv.get_vv_dir, vv.get_vv_files):
        with pytest.raises(MissingArchiveError, match=f"no vv archive in {root} ") as err:
            read(10369, version, data_root=root)
        assert err.value.folder == root and "'mica update vv --obsid 10369'" in str(err.value)
    assert not (tmp_path / "typo").exists()
    if version != "default":
        return
    env = {**os.environ, "MICA_ARCHIVE": str(tmp_path / "typo")}
    run = subprocess.run(
        [sys.executable, "-m", "mica.cli", "vv", "--obsid", "10369"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"no V&V archive in {root}, and no asp-l1 archive in" in run.stderr
    assert "point --archive or MICA_ARCHIVE at an archive" in run.stderr


def test_vv_archive_without_the_obsid_is_a_lookup_error(tmp_path):
    """A V&V folder that holds other obsids: the obsid's V&V is missing, not the archive."""
    from mica import vv
    from mica.errors import VVLookupError

    root = tmp_path / "vv"
    root.mkdir()
    with pytest.raises(VVLookupError, match="mica update vv --obsid 10369"):
        vv.get_vv(10369, data_root=root)


def test_archive_root_given_as_data_root_names_its_product_folders(tmp_path):
    """``data_root`` takes a product's folder; given the archive's root (what MICA_ARCHIVE
    takes), the error names the product folders it holds."""
    from mica.engine.index import ArchiveIndex

    root = tmp_path / "archive"
    for product, folder in ((L0, "aca0"), (OBSPAR, "obspar")):
        ArchiveIndex(product, root / folder).close()  # an (empty) archive of each
    (root / "notes").mkdir()
    for read in (
        lambda: aca_l0.get_slot_data(*IN, slot=3, data_root=root),
        lambda: obspar.get_obspar(7000, data_root=root),
    ):
        with pytest.raises(MissingArchiveError, match=f"no archfiles.db3\\).*; {root} holds the"):
            read()
    with pytest.raises(MissingArchiveError) as err:
        asp_l1.get_files(6000, data_root=root)
    assert str(err.value).endswith(
        f"{root} holds the product folders aca0, obspar: data_root takes one of them, "
        "MICA_ARCHIVE the folder holding them"
    )
