"""Smaller input defects: each bad input is refused or reported with what is wrong, by name.

* a ``dir:`` folder holding two different files under one name: both copies refused (each
  naming both paths), the other files archived;
* a flipped byte inside a gzipped obspar, L0 or aspect L1 file: the file refused by name,
  never a ``zlib.error`` out of the update;
* an obspar value outside its physical bounds (``ra_pnt=725.59``): refused at ingest naming
  the file and the keyword;
* NaN, infinite or empty aspect L1 columns: the V&V's `VVInputError` names the file and the
  column (not "Axis limits cannot be NaN or Inf" from a plot, nor an IndexError);
* the archive root: ``MICA_ARCHIVE`` naming a file is one `ConfigError` line; a relative one
  still gives absolute paths; an archived file deleted by hand is a `MissingFileError` naming
  it and ``mica check --repair``; ``mica check`` of a folder holding no archive fails.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner
from test_hostile_files import OBSID as OBSPAR_OBSID
from test_hostile_files import _obspar_mirror, write_variant
from test_hostile_sources import _span, l0_files

from mica.archive import aca_l0, asp_l1, obspar
from mica.cli import main
from mica.config import archive_root
from mica.engine.executors import InlineExecutor
from mica.engine.index_check import check_archive
from mica.engine.obsid_update import update_obsid_archive
from mica.engine.time_update import update_archive
from mica.errors import ConfigError, MicaError, MissingFileError, VVInputError
from mica.products.aca_l0 import L0
from mica.products.asp_l1 import ASP_L1
from mica.products.obspar import OBSPAR
from mica.sim import asp_l1 as sim_asp_l1
from mica.sim.obspar import write_obspars
from mica.vv import Obi

__all__ = ["l0_files"]  # the simulated L0 files of tests/test_hostile_sources.py

ASP_OBSID, ASP_REV = 2121, 2


@pytest.fixture(scope="module")
def asp_files(tmp_path_factory) -> list[Path]:
    dest = tmp_path_factory.mktemp("asp")
    sim_asp_l1.write_asp_l1(ASP_OBSID, ASP_REV, dest, decimate=40)
    return sorted(dest.glob("*.fits.gz"))


def _copy(files: list[Path], folder: Path) -> Path:
    folder.mkdir(parents=True)
    for path in files:
        shutil.copyfile(path, folder / path.name)
    return folder


def _other_bytes(path: Path) -> bytes:
    """The same FITS bytes plus one zero byte: another file under the same name."""
    return gzip.compress(gzip.decompress(path.read_bytes()) + b"\0", mtime=0)


# --- 1. dir: one name, two different files ---------------------------------------------------
def _assert_both_refused(rejected: list, copies: list[Path]) -> None:
    names = [str(p) for p in copies]
    assert sorted(e.filename for e in rejected) == sorted(names)
    for err in rejected:
        assert all(n in str(err) for n in names) and "differs" in str(err), str(err)


def test_dir_clash_on_an_executor_refuses_both_archives_the_rest(l0_files, tmp_path):
    """The executor path (fetch and validation in one task) refuses the same way."""
    folder = _copy(l0_files, tmp_path / "up" / "a")
    clash = tmp_path / "up" / "b" / l0_files[0].name
    clash.parent.mkdir()
    clash.write_bytes(_other_bytes(l0_files[0]))
    root = tmp_path / "aca0"
    report = update_archive(
        L0, f"dir:{tmp_path / 'up'}", *_span(l0_files), data_root=root, executor=InlineExecutor()
    )
    _assert_both_refused(report.rejected, [folder / l0_files[0].name, clash])
    assert sorted(report.ingested) == sorted(p.name for p in l0_files[1:]), report.summary()
    assert not report.ok and not list(root.rglob(l0_files[0].name))
    assert check_archive(L0, data_root=root).ok


def test_dir_clash_in_an_obsid_revision(asp_files, tmp_path):
    """An aspect L1 revision with one clashing file: both copies refused, the others
    archived, the revision not marked complete (a later update completes it)."""
    folder = _copy(asp_files, tmp_path / "up" / "a")
    clash = tmp_path / "up" / "b" / asp_files[0].name
    clash.parent.mkdir()
    clash.write_bytes(_other_bytes(asp_files[0]))
    root = tmp_path / "asp1"
    report = update_obsid_archive(ASP_L1, f"dir:{tmp_path / 'up'}", [ASP_OBSID], data_root=root)
    _assert_both_refused(report.ingest.rejected, [folder / asp_files[0].name, clash])
    assert "not marked complete" in report.failed[ASP_OBSID], report.summary()
    data = {p.name for p in asp_files if ASP_L1.classify(p.name) == "data"}
    assert set(report.ingest.ingested) == data - {asp_files[0].name}, report.summary()
    assert check_archive(ASP_L1, data_root=root).ok
    clash.unlink()  # the folder fixed: the next update completes the revision
    again = update_obsid_archive(ASP_L1, f"dir:{tmp_path / 'up'}", [ASP_OBSID], data_root=root)
    assert again.ok, again.summary()


# --- 2. a flipped byte inside gzip data ------------------------------------------------------
def _flip(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("offset", [12, 40, -6])
def test_flipped_byte_in_gzipped_obspar_is_refused(tmp_path, offset):
    path = _obspar_mirror(tmp_path / "up", {})
    _flip(path, offset)
    root = tmp_path / "obspar"
    report = update_obsid_archive(OBSPAR, f"dir:{tmp_path / 'up'}", [OBSPAR_OBSID], data_root=root)
    (err,) = report.ingest.rejected
    assert err.filename == path.name and "corrupt or truncated gzip data" in err.problem
    assert not report.ok and (root / "rejected" / (path.name + ".reason")).exists()


@pytest.mark.parametrize("offset", [100, 1000, -6])
@pytest.mark.parametrize("which", [0, 1])  # the first file is read for the folder's kind
def test_flipped_byte_in_gzipped_l0_is_refused(l0_files, tmp_path, offset, which):
    folder = _copy(l0_files, tmp_path / "up")
    target = folder / l0_files[which].name
    _flip(target, offset)
    report = update_archive(L0, f"dir:{folder}", *_span(l0_files), data_root=tmp_path / "aca0")
    (err,) = report.rejected
    assert err.filename == target.name and "corrupt or truncated gzip data" in err.problem
    assert len(report.ingested) == len(l0_files) - 1


@pytest.mark.parametrize("offset", [100, -6])
@pytest.mark.parametrize("which", [0, 1])
def test_flipped_byte_in_gzipped_asp_l1_is_refused(asp_files, tmp_path, offset, which):
    folder = _copy(asp_files, tmp_path / "up")
    target = folder / asp_files[which].name
    _flip(target, offset)
    root = tmp_path / "asp1"
    report = update_obsid_archive(ASP_L1, f"dir:{folder}", [ASP_OBSID], data_root=root)
    (err,) = report.ingest.rejected
    assert err.filename == target.name and "corrupt or truncated gzip data" in err.problem
    assert ASP_OBSID in report.failed


# --- 3. obspar values out of bounds ----------------------------------------------------------
OBSPAR_BOUNDS_CASES = {
    "ra": ({"ra_pnt": "725.59"}, "parameter ra_pnt: 725.59 is outside 0..360 deg"),
    "ra-negative": ({"ra_targ": "-0.5"}, "parameter ra_targ: -0.5 is outside 0..360 deg"),
    "dec": ({"dec_nom": "-90.5"}, "parameter dec_nom: -90.5 is outside -90..90 deg"),
    "roll": ({"roll_pnt": "361"}, "parameter roll_pnt: 361.0 is outside 0..360 deg"),
    "eccentricity": ({"mt_e": "1.5"}, "parameter mt_e: 1.5 is outside 0..1"),
    "tstop-before-tstart": ({"tstop": "300000000.0"}, "tstop 300000000.0 is not after tstart"),
    "tstart-future": ({"tstart": "3e9"}, "tstart 3000000000.0 is not a time of the mission"),
}


@pytest.mark.parametrize("variant", sorted(OBSPAR_BOUNDS_CASES))
def test_obspar_value_out_of_bounds_is_refused(tmp_path, variant):
    replace, phrase = OBSPAR_BOUNDS_CASES[variant]
    path = _obspar_mirror(tmp_path / "up", replace)
    root = tmp_path / "obspar"
    report = update_obsid_archive(OBSPAR, f"dir:{tmp_path / 'up'}", [OBSPAR_OBSID], data_root=root)
    (err,) = report.ingest.rejected
    assert err.filename == path.name and phrase in err.problem, str(err)
    assert not report.ok and obspar.get_obs_dirs(OBSPAR_OBSID, data_root=root) is None


def test_obspar_values_on_the_bounds_are_accepted(tmp_path):
    edges = {"ra_pnt": "0.0", "ra_nom": "360.0", "dec_pnt": "-90.0", "dec_targ": "90"}
    _obspar_mirror(tmp_path / "up", {**edges, "roll_nom": "INDEF"})
    root = tmp_path / "obspar"
    report = update_obsid_archive(OBSPAR, f"dir:{tmp_path / 'up'}", [OBSPAR_OBSID], data_root=root)
    assert report.ok, report.summary()


# --- 5. V&V inputs with NaN, infinite or no values ---------------------------------------------
def _set_rows(column: str, value: float, rows: slice = slice(None)):
    def edit(hdus: fits.HDUList) -> None:
        hdus[1].data[column][rows] = value

    return edit


def _no_rows(hdus: fits.HDUList) -> None:
    hdus[1] = fits.BinTableHDU(data=hdus[1].data[:0], header=hdus[1].header)


VV_CASES = {
    "asol-q_att-nan": ("asol1", _set_rows("q_att", np.nan, slice(3, 5)), "column q_att holds NaN"),
    "asol-dy-inf": ("asol1", _set_rows("dy", np.inf, slice(3, 5)), "column dy holds NaN"),
    "acen-ang_y-nan": ("acen1", _set_rows("ang_y", np.nan), "column ang_y holds NaN"),
    "acen-counts-inf": ("acen1", _set_rows("counts", -np.inf), "column counts holds NaN"),
    "gspr-pos_eci-nan": ("gspr1", _set_rows("pos_eci", np.nan), "column pos_eci holds NaN"),
    "fidpr-p_lsi-nan": ("fidpr1", _set_rows("p_lsi", np.nan), "column p_lsi holds NaN"),
    "acal-nan": ("acal1", _set_rows("aca_misalign", np.nan), "column aca_misalign holds NaN"),
    "asol-empty": ("asol1", _no_rows, "column time is empty"),
    "acen-empty": ("acen1", _no_rows, "column time is empty"),
    "acal-empty": ("acal1", _no_rows, "column aca_misalign is empty"),
}


@pytest.fixture(scope="module")
def asp_obspar(tmp_path_factory) -> Path:
    (path,) = write_obspars(ASP_OBSID, 1, tmp_path_factory.mktemp("obspar"))
    return path


@pytest.mark.parametrize("variant", sorted(VV_CASES))
def test_vv_input_with_bad_values_names_file_and_column(asp_files, asp_obspar, tmp_path, variant):
    suffix, edit, phrase = VV_CASES[variant]
    folder = _copy(asp_files, tmp_path / "asp")
    paths = sorted(folder.glob(f"*_{suffix}.fits.gz"))  # one per aspect interval
    for path in paths:
        write_variant(path, path, edit)
    with pytest.raises(VVInputError) as err:
        Obi(asp_obspar, folder)
    assert any(str(p) in str(err.value) for p in paths) and phrase in str(err.value), str(err.value)
    assert isinstance(err.value, MicaError) and isinstance(err.value, ValueError)


def test_vv_inputs_untouched_are_accepted(asp_files, asp_obspar, tmp_path):
    """The control: the same files unedited, and with no fid lights (an ER has none)."""
    folder = _copy(asp_files, tmp_path / "asp")
    assert Obi(asp_obspar, folder).info()["slots"]
    for fidpr in folder.glob("*_fidpr1.fits.gz"):
        write_variant(fidpr, fidpr, _no_rows)
    assert Obi(asp_obspar, folder).info()["slots"]


# --- 6. the archive root and archived files ----------------------------------------------------
def test_mica_archive_naming_a_file_is_one_line(tmp_path, monkeypatch):
    afile = tmp_path / "archive.txt"
    afile.write_text("not a folder")
    monkeypatch.setenv("MICA_ARCHIVE", str(afile))
    with pytest.raises(ConfigError, match="MICA_ARCHIVE=.*is a file, not a folder"):
        aca_l0.get_files(start="2012:001", stop="2012:002")
    for args in (["check"], ["fetch", "aca-l0", "--start", "2012:001", "--stop", "2012:002"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert str(afile) in result.output and "is a file, not a folder" in result.output


def test_relative_mica_archive_gives_absolute_paths(l0_files, tmp_path, monkeypatch):
    report = update_archive(L0, f"dir:{_copy(l0_files, tmp_path / 'up')}", *_span(l0_files),
                            data_root=tmp_path / "arch" / "aca0")  # fmt: skip
    assert report.ok, report.summary()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MICA_ARCHIVE", "arch")
    assert archive_root() == tmp_path / "arch"
    start, stop = _span(l0_files)
    files = aca_l0.get_files(start=start, stop=stop)
    assert len(files) == len(l0_files) and all(Path(f).is_absolute() for f in files)
    monkeypatch.chdir("/")  # still valid from elsewhere
    assert all(Path(f).exists() for f in files)


@pytest.fixture(scope="module")
def small_archive(l0_files, tmp_path_factory) -> Path:
    """aca0 (the L0 files), asp1 and obspar (obsid 2121, simulated, decimated)."""
    root = tmp_path_factory.mktemp("arch")
    up = _copy(l0_files, root.parent / f"{root.name}-up")
    assert update_archive(L0, f"dir:{up}", *_span(l0_files), data_root=root / "aca0").ok
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MICA_SIM_L1_DECIMATE", "40")
        for product in (ASP_L1, OBSPAR):
            folder = root / product.subdir
            report = update_obsid_archive(product, "sim", [ASP_OBSID], data_root=folder)
            assert report.ok, report.summary()
    return root


#: per product: (the path of one archived file, a read that needs it), given the L0 span
READERS = {
    "aca-l0": (
        lambda span: aca_l0.get_files(start=span[0], stop=span[1], slots=[1])[0],
        lambda span: aca_l0.get_slot_data(*span, slot=1, use_store=False),
    ),
    "asp-l1": (
        lambda span: asp_l1.get_files(ASP_OBSID, content=["ACACAL"])[0],
        lambda span: asp_l1.get_atts(ASP_OBSID),
    ),
    "obspar": (
        lambda span: obspar.get_obspar_file(ASP_OBSID),
        lambda span: obspar.get_obspar(ASP_OBSID),
    ),
}


@pytest.mark.parametrize("product", sorted(READERS))
def test_deleted_archive_file_names_file_and_repair(small_archive, l0_files, tmp_path,
                                                    monkeypatch, product):  # fmt: skip
    root = tmp_path / "arch"
    shutil.copytree(small_archive, root, symlinks=True)
    monkeypatch.setenv("MICA_ARCHIVE", str(root))
    path, read = READERS[product]
    span = _span(l0_files)
    deleted = path(span)
    Path(deleted).unlink()
    with pytest.raises(MissingFileError) as err:
        read(span)
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, MicaError)
    text = str(err.value)
    assert deleted in text and f"mica --archive {root} check --repair" in text, text


def test_check_of_a_folder_without_archive_fails(tmp_path):
    missing = tmp_path / "does" / "not" / "exist"
    for folder in (missing, tmp_path):  # no folder; an empty folder
        result = CliRunner().invoke(main, ["--archive", str(folder), "check"])
        assert result.exit_code == 1, result.output
        assert f"no archive in {folder}" in result.output, result.output
        assert f"mica --archive {folder} update aca-l0" in result.output
