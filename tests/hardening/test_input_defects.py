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

And issue 29: every public reader's bad inputs (slot 9, a bad date, stop before start, an
unknown column, content or MSID, a bad obsid, ...) raise a `MicaError` subclass that keeps
the built-in base they had (ValueError, TypeError, KeyError).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from mica import vv
from mica.archive import aca_hdr3, aca_l0, asp_l1, obspar
from mica.archive.aca_dark import dark_cal, dark_model
from mica.cli import main
from mica.config import archive_root
from mica.engine.executors import InlineExecutor
from mica.engine.index_check import check_archive
from mica.engine.obsid_update import update_obsid_archive
from mica.engine.time_update import update_archive
from mica.errors import (
    ConfigError,
    InvalidArgumentError,
    InvalidTimeError,
    MicaError,
    MissingDataError,
    MissingFileError,
    ObsidError,
    TimeRangeError,
    VVInputError,
    VVLookupError,
)
from mica.products.aca_l0 import L0
from mica.products.asp_l1 import ASP_L1
from mica.products.obspar import OBSPAR
from mica.sim import asp_l1 as sim_asp_l1
from mica.sim.obspar import write_obspars
from mica.stats import acq_stats, guide_stats
from tests.hardening.test_hostile_files import OBSID as OBSPAR_OBSID
from tests.hardening.test_hostile_files import _obspar_mirror, write_variant
from tests.hardening.test_hostile_sources import _span, l0_files

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
        vv.Obi(asp_obspar, folder)
    assert any(str(p) in str(err.value) for p in paths) and phrase in str(err.value), str(err.value)
    assert isinstance(err.value, MicaError) and isinstance(err.value, ValueError)


def test_vv_inputs_untouched_are_accepted(asp_files, asp_obspar, tmp_path):
    """The control: the same files unedited, and with no fid lights (an ER has none)."""
    folder = _copy(asp_files, tmp_path / "asp")
    assert vv.Obi(asp_obspar, folder).info()["slots"]
    for fidpr in folder.glob("*_fidpr1.fits.gz"):
        write_variant(fidpr, fidpr, _no_rows)
    assert vv.Obi(asp_obspar, folder).info()["slots"]


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


# --- 7. bad inputs of the public readers: MicaError subclasses with their built-in base ---------
T0, T1 = "2012:001:00:00:00", "2012:001:00:10:00"
BAD_DATE = "2012:400"
#: name -> (call, the error class, the built-in base it keeps)
BAD_INPUTS = {
    "aca_l0.get_files slot 9": (
        lambda: aca_l0.get_files(start=T0, stop=T1, slots=[9]), InvalidArgumentError, ValueError),
    "aca_l0.get_files imgsize 7": (
        lambda: aca_l0.get_files(start=T0, stop=T1, imgsize=[7]), InvalidArgumentError, ValueError),
    "aca_l0.get_files no range": (lambda: aca_l0.get_files(), InvalidArgumentError, TypeError),
    "aca_l0.get_files bad date": (
        lambda: aca_l0.get_files(start=BAD_DATE, stop=T1), InvalidTimeError, ValueError),
    "aca_l0.get_files stop<start": (
        lambda: aca_l0.get_files(start=T1, stop=T0), TimeRangeError, ValueError),
    "aca_l0.get_files bad obsid": (lambda: aca_l0.get_files(obsid=-5), ObsidError, ValueError),
    "aca_l0.get_slot_data slot 9": (
        lambda: aca_l0.get_slot_data(T0, T1, slot=9), InvalidArgumentError, ValueError),
    "aca_l0.get_slot_data slot 'x'": (
        lambda: aca_l0.get_slot_data(T0, T1, slot="x"), InvalidArgumentError, ValueError),
    "aca_l0.get_slot_data unknown column": (
        lambda: aca_l0.get_slot_data(T0, T1, slot=1, columns=["NOPE"]),
        InvalidArgumentError, ValueError),
    "aca_l0.get_slot_data bad date": (
        lambda: aca_l0.get_slot_data(BAD_DATE, T1, slot=1), InvalidTimeError, ValueError),
    "aca_l0.get_slot_data stop<start": (
        lambda: aca_l0.get_slot_data(T1, T0, slot=1), TimeRangeError, ValueError),
    "aca_l0.get_slot_data boolean time": (
        lambda: aca_l0.get_slot_data(True, T1, slot=1), InvalidTimeError, ValueError),
    "aca_l0.get_l0_images slot 9": (
        lambda: aca_l0.get_l0_images(T0, T1, slot=9), InvalidArgumentError, ValueError),
    "aca_l0.get_aca_images stop<start": (
        lambda: aca_l0.get_aca_images(T1, T0), TimeRangeError, ValueError),
    "aca_l0.MSID unknown msid": (
        lambda: aca_l0.MSID("NOPE", 1, T0, T1), MissingDataError, ValueError),
    "aca_l0.MSID slot 9": (
        lambda: aca_l0.MSID("TEMPCCD", 9, T0, T1), InvalidArgumentError, ValueError),
    "aca_l0.MSIDset unknown msid": (
        lambda: aca_l0.MSIDset(["NOPE"], T0, T1, slot=1), MissingDataError, ValueError),
    "aca_hdr3.MSID unknown msid": (
        lambda: aca_hdr3.MSID("nope", T0, T1), MissingDataError, KeyError),
    "aca_hdr3.MSID bad date": (
        lambda: aca_hdr3.MSID("dac", BAD_DATE, T1), InvalidTimeError, ValueError),
    "aca_hdr3.MSID stop<start": (
        lambda: aca_hdr3.MSID("dac", T1, T0), TimeRangeError, ValueError),
    "aca_hdr3.MSIDset unknown msid": (
        lambda: aca_hdr3.MSIDset(["nope"], T0, T1), MissingDataError, KeyError),
    "asp_l1.get_files unknown content": (
        lambda: asp_l1.get_files(ASP_OBSID, content="NOPE"), InvalidArgumentError, ValueError),
    "asp_l1.get_files bad revision": (
        lambda: asp_l1.get_files(ASP_OBSID, revision="x"), InvalidArgumentError, ValueError),
    "asp_l1.get_files no range": (lambda: asp_l1.get_files(), InvalidArgumentError, TypeError),
    "asp_l1.get_files stop<start": (
        lambda: asp_l1.get_files(start=T1, stop=T0), TimeRangeError, ValueError),
    "asp_l1.get_files bad obsid": (lambda: asp_l1.get_files(obsid=0), ObsidError, ValueError),
    "asp_l1.get_atts revision all": (
        lambda: asp_l1.get_atts(ASP_OBSID, revision="all"), InvalidArgumentError, ValueError),
    "asp_l1.get_processing bad obsid": (
        lambda: asp_l1.get_processing(99_999_999), ObsidError, ValueError),
    "obspar.get_obspar bad version": (
        lambda: obspar.get_obspar(ASP_OBSID, version="x"), InvalidArgumentError, ValueError),
    "obspar.get_obspar bad obsid": (lambda: obspar.get_obspar(-3), ObsidError, ValueError),
    "obspar.get_obsids stop<start": (
        lambda: obspar.get_obsids(T1, T0), TimeRangeError, ValueError),
    "obspar.get_obsids bad date": (
        lambda: obspar.get_obsids(BAD_DATE, T1), InvalidTimeError, ValueError),
    "obspar.get_files no range": (lambda: obspar.get_files(), InvalidArgumentError, TypeError),
    "obspar.parse_obspar_text malformed": (
        lambda: obspar.parse_obspar_text("a,b\n"), InvalidArgumentError, ValueError),
    "dark_cal.get_dark_cal_id bad select": (
        lambda: dark_cal.get_dark_cal_id("2012:140", select="middle"),
        InvalidArgumentError, ValueError),
    "dark_cal.get_dark_cal_props_table stop<start": (
        lambda: dark_cal.get_dark_cal_props_table("2012:200", "2012:100"),
        TimeRangeError, ValueError),
    "dark_cal.get_dark_cal_dirs two folders": (
        lambda: dark_cal.get_dark_cal_dirs("/a", data_root="/b"), InvalidArgumentError, TypeError),
    "dark_cal.date_to_dark_id bad date": (
        lambda: dark_cal.date_to_dark_id(BAD_DATE), InvalidTimeError, ValueError),
    "dark_cal.dark_temp_scale bad scale": (
        lambda: dark_cal.dark_temp_scale(-10.0, scale_4c=-1), InvalidArgumentError, ValueError),
    "dark_cal.dark_temp_scale text": (
        lambda: dark_cal.dark_temp_scale("warm"), InvalidArgumentError, ValueError),
    "dark_model.get_warm_fracs no date": (
        lambda: dark_model.get_warm_fracs(3.0, None, -10.0), InvalidTimeError, ValueError),
    "acq_stats.get_star_stats bad id": (
        lambda: acq_stats.get_star_stats("x"), InvalidArgumentError, ValueError),
    "guide_stats.get_star_stats bad id": (
        lambda: guide_stats.get_star_stats("x"), InvalidArgumentError, ValueError),
    "vv.get_vv_dir bad version": (
        lambda: vv.get_vv_dir(ASP_OBSID, version="x"), InvalidArgumentError, ValueError),
    "vv.get_vv bad obsid": (lambda: vv.get_vv(70000), ObsidError, ValueError),
    "vv.get_vv_files bad obsid": (lambda: vv.get_vv_files("x"), ObsidError, ValueError),
    "vv.get_arch_vv unknown version": (
        lambda: vv.get_arch_vv(ASP_OBSID, version="x"), VVLookupError, LookupError),
    "vv.Obi missing input": (
        lambda: vv.Obi("/no/such/obspar.par", "/no/such/folder"), VVInputError, ValueError),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_reader_input_is_a_mica_error_with_its_builtin_base(small_archive, monkeypatch, name):
    """Against an archive holding the data (aca0, asp1, obspar), so each call reaches its
    own check; the other products' folders are missing, and their checks come first."""
    monkeypatch.setenv("MICA_ARCHIVE", str(small_archive))
    call, error, base = BAD_INPUTS[name]
    with pytest.raises(error) as err:
        call()
    assert isinstance(err.value, MicaError) and isinstance(err.value, base), type(err.value)
    assert "Traceback" not in str(err.value) and str(err.value)
