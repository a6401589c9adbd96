"""The original mica's public names, signatures and range semantics (issue 26).

The oracle: the parameter names, in order, of the original's functions, written down from
its source (sot/mica, ``mica/archive/*.py``, ``mica/stats/*.py``, ``mica/vv/*.py``). This
mica's functions take them in that order; keywords of its own (``data_root``, ``use_store``)
come after them. Ranges: ``stop == start`` is the instant (an empty result of the right
type, as the original's SQL gave), ``stop`` before ``start`` a `TimeRangeError`.
"""

from __future__ import annotations

import importlib
import inspect
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from mica.errors import MicaError, TimeRangeError

#: module -> names the original's users import from it
NAMES = {
    "mica.common": ["MICA_ARCHIVE", "MICA_ARCHIVE_PATH", "FLIGHT_MICA_ARCHIVE", "MissingDataError"],
    "mica.archive.aca_l0": [
        "CONFIG", "ACA_DTYPE", "ACA_DTYPE_NAMES", "GLBSTAT_NAMES", "IMGSTAT_NAMES",
        "obsid_times", "get_slot_data", "get_files", "get_l0_images", "get_aca_images",
        "MSID", "MSIDset",
    ],
    "mica.archive.aca_hdr3": [
        "HDR3_DEF", "MSID_ALIASES", "ACA_DTYPE", "ACA_DTYPE_NAMES", "two_byte_sum", "ad_temp",
        "confirm_msid", "slot_for_msid", "MSID", "Msid", "MSIDset",
    ],
    "mica.archive.asp_l1": [
        "CONFIG", "get_dir", "get_obs_dirs", "get_files", "get_atts", "get_atts_from_files",
    ],
    "mica.archive.obspar": [
        "CONFIG", "get_dir", "get_obs_dirs", "get_obspar_file", "get_obspar", "get_files",
        "get_obsids",
    ],
    "mica.archive.obsid_archive": [
        "ObsArchive", "ProductVersionError", "parse_obspar", "get_obspar",
    ],
    "mica.archive.aca_dark.file_defs": ["MICA_FILES", "SKA_FILES"],
    "mica.archive.aca_dark.dark_cal": [
        "MICA_FILES", "DARK_CAL", "date_to_dark_id", "dark_id_to_date", "get_dark_cal_dirs",
        "get_dark_cal_ids", "get_dark_cal_id", "get_dark_cal_image", "get_dark_cal_props",
        "get_dark_cal_props_table", "dark_temp_scale", "DARK_SCALE_4C",
    ],
    "mica.stats.acq_stats": ["TABLE_FILE", "get_stats", "get_star_stats"],
    "mica.stats.guide_stats": ["TABLE_FILE", "get_stats", "get_star_stats"],
    "mica.stats.update_acq_stats": ["table_file", "get_options", "update", "main"],
    "mica.stats.update_guide_stats": ["get_options", "update", "main"],
    "mica.vv": ["get_vv_dir", "get_vv_files", "get_vv", "get_rms_data", "get_arch_vv", "Obi"],
    "mica.vv.vv": ["FILES", "get_vv_dir", "get_vv_files", "get_vv", "get_rms_data"],
    "mica.vv.process": [
        "FILES", "VV_DTYPE", "get_arch_vv", "process", "update", "asp_l1_arch", "obspar_arch",
        "obsid_archive",
    ],
    "mica.starcheck": [
        "get_starcheck_catalog", "get_starcheck_catalog_at_date", "get_mp_dir",
        "get_monitor_windows", "get_dither", "get_att", "get_starcat",
    ],
    "mica.starcheck.starcheck": [
        "FILES", "DEFAULT_CONFIG", "get_mp_dir_from_starcheck_db", "get_starcheck_db_obsid",
    ],
}  # fmt: skip

#: (module, callable) -> the original's parameter names, in order
SIGNATURES = {
    ("mica.archive.aca_l0", "get_slot_data"): [
        "start", "stop", "slot", "imgsize", "db", "data_root", "columns", "centered_8x8",
    ],
    ("mica.archive.aca_l0", "get_files"): [
        "obsid", "start", "stop", "slots", "imgsize", "db", "data_root",
    ],
    ("mica.archive.aca_l0", "get_l0_images"): ["start", "stop", "slot", "imgsize", "columns"],
    ("mica.starcheck", "get_starcheck_catalog"): ["obsid", "mp_dir", "starcheck_db"],
    ("mica.starcheck", "get_starcheck_catalog_at_date"): ["date", "starcheck_db"],
    ("mica.starcheck", "get_mp_dir"): ["obsid", "starcheck_db"],
    ("mica.starcheck", "get_monitor_windows"): ["start", "stop", "min_obsid", "config"],
    ("mica.starcheck", "get_dither"): ["obsid", "mp_dir"],
    ("mica.starcheck", "get_att"): ["obsid", "mp_dir"],
    ("mica.starcheck", "get_starcat"): ["obsid", "mp_dir"],
    ("mica.starcheck.starcheck", "get_starcheck_db_obsid"): [
        "mp_starcat_time", "mp_dir", "starcheck_db",
    ],
    ("mica.archive.aca_l0", "get_aca_images"): ["start", "stop"],
    ("mica.archive.aca_l0", "obsid_times"): ["obsid"],
    ("mica.archive.aca_l0", "MSID"): ["msid", "slot", "start", "stop"],
    ("mica.archive.aca_l0", "MSIDset"): ["msids", "start", "stop"],
    ("mica.archive.aca_hdr3", "MSID"): ["msid", "start", "stop", "msid_data", "filter_bad"],
    ("mica.archive.aca_hdr3", "Msid"): ["msid", "start", "stop"],
    ("mica.archive.aca_hdr3", "MSIDset"): ["msids", "start", "stop"],
    ("mica.archive.aca_hdr3", "two_byte_sum"): ["byte_msids", "scale"],
    ("mica.archive.aca_hdr3", "ad_temp"): ["msids"],
    ("mica.archive.aca_hdr3", "confirm_msid"): ["req_msid"],
    ("mica.archive.aca_hdr3", "slot_for_msid"): ["msid"],
    ("mica.archive.asp_l1", "get_dir"): ["obsid"],
    ("mica.archive.asp_l1", "get_obs_dirs"): ["obsid"],
    ("mica.archive.asp_l1", "get_files"): ["obsid", "start", "stop", "revision", "content"],
    ("mica.archive.asp_l1", "get_atts"): ["obsid", "start", "stop", "revision", "filter"],
    ("mica.archive.asp_l1", "get_atts_from_files"): [
        "asol_files", "acal_files", "aqual_files", "filter",
    ],
    ("mica.archive.obspar", "get_dir"): ["obsid"],
    ("mica.archive.obspar", "get_obs_dirs"): ["obsid"],
    ("mica.archive.obspar", "get_obspar_file"): ["obsid", "version"],
    ("mica.archive.obspar", "get_obspar"): ["obsid", "version"],
    ("mica.archive.obspar", "get_files"): ["obsid", "start", "stop", "revision"],
    ("mica.archive.obspar", "get_obsids"): ["start", "stop", "revision"],
    ("mica.archive.obsid_archive", "ObsArchive"): ["config"],
    ("mica.archive.aca_dark.dark_cal", "date_to_dark_id"): ["date"],
    ("mica.archive.aca_dark.dark_cal", "dark_id_to_date"): ["dark_id"],
    ("mica.archive.aca_dark.dark_cal", "get_dark_cal_dirs"): ["dark_cals_dir"],
    ("mica.archive.aca_dark.dark_cal", "get_dark_cal_ids"): ["dark_cals_dir"],
    ("mica.archive.aca_dark.dark_cal", "get_dark_cal_id"): ["date", "select", "dark_cal_ids"],
    ("mica.archive.aca_dark.dark_cal", "get_dark_cal_image"): [
        "date", "select", "t_ccd_ref", "aca_image", "allow_negative",
    ],
    ("mica.archive.aca_dark.dark_cal", "get_dark_cal_props"): [
        "date", "select", "include_image", "t_ccd_ref", "aca_image", "allow_negative",
    ],
    ("mica.archive.aca_dark.dark_cal", "get_dark_cal_props_table"): [
        "start", "stop", "include_image", "as_table",
    ],
    ("mica.archive.aca_dark.dark_cal", "dark_temp_scale"): ["t_ccd", "t_ccd_ref", "scale_4c"],
    ("mica.stats.acq_stats", "get_stats"): ["filter"],
    ("mica.stats.acq_stats", "get_star_stats"): ["id", "filter"],
    ("mica.stats.guide_stats", "get_stats"): ["filter"],
    ("mica.stats.guide_stats", "get_star_stats"): ["id", "filter"],
    ("mica.stats.update_acq_stats", "update"): ["opt"],
    ("mica.stats.update_guide_stats", "update"): ["opt"],
    ("mica.vv.vv", "get_vv_dir"): ["obsid", "version"],
    ("mica.vv.vv", "get_vv_files"): ["obsid", "version"],
    ("mica.vv.vv", "get_vv"): ["obsid", "version"],
    ("mica.vv.vv", "get_rms_data"): [],
    ("mica.vv.process", "get_arch_vv"): ["obsid", "version"],
    ("mica.vv.process", "process"): ["obsid", "version"],
    ("mica.vv.process", "update"): ["obsids"],
}  # fmt: skip

#: Obi method -> the original's parameter names (after self)
OBI_METHODS = {
    "__init__": ["obsparfile", "obsdir", "temproot"],
    "save_plots_and_resid": [],
    "set_dbh": ["dbhandle", "slot_table"],
    "set_tbl": ["table"],
    "info": [],
    "shelve_info": ["file"],
    "slots_to_db": [],
    "slots_to_table": [],
    "plot_slot": ["slot_num", "plotdir", "save", "close", "singles"],
}

#: keywords of this mica's own, allowed after the original's (``slot``: aca_l0.MSIDset
#: passes it on, the original forgot it; ``clear_cache``: aca_hdr3.MSID's in the original's
#: later versions)
OWN_KEYWORDS = {"data_root", "use_store", "obi", "archive", "slot", "stat", "clear_cache"}


@pytest.fixture
def archive(docs_archive: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The documentation's archive as ``MICA_ARCHIVE`` (read only)."""
    monkeypatch.setenv("MICA_ARCHIVE", str(docs_archive))
    return docs_archive


@pytest.fixture
def archive_copy(docs_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of the documentation's archive (25 MB) as ``MICA_ARCHIVE``."""
    root = tmp_path / "archive"
    shutil.copytree(docs_archive, root, symlinks=True)
    monkeypatch.setenv("MICA_ARCHIVE", str(root))
    return root


@pytest.mark.parametrize("module", sorted(NAMES))
def test_every_name_imports(module, archive):
    mod = importlib.import_module(module)
    missing = [name for name in NAMES[module] if not hasattr(mod, name)]
    assert not missing, f"{module} lacks {missing}"
    for name in NAMES[module]:  # from-imports too (computed attributes included)
        exec(f"from {module} import {name}", {})


def _params(func) -> list[str]:
    return [p for p in inspect.signature(func).parameters if p != "self"]


@pytest.mark.parametrize("module,name", sorted(SIGNATURES))
def test_signatures_start_with_the_originals(module, name):
    got = _params(getattr(importlib.import_module(module), name))
    original = SIGNATURES[module, name]
    assert got[: len(original)] == original, (got, original)
    assert set(got[len(original) :]) <= OWN_KEYWORDS, got


@pytest.mark.parametrize("method", sorted(OBI_METHODS))
def test_obi_methods(method):
    from mica.vv import Obi

    assert _params(getattr(Obi, method)) == OBI_METHODS[method]


def test_db_is_accepted_and_warns(archive):
    from mica.archive import aca_l0

    start, stop = "2012:125:00:10:00", "2012:125:00:11:00"
    with pytest.warns(DeprecationWarning, match="db= is ignored"):
        files = aca_l0.get_files(start=start, stop=stop, db={"dbi": "sqlite"})
    assert files == aca_l0.get_files(start=start, stop=stop)
    with pytest.warns(DeprecationWarning, match="db= is ignored"):
        data = aca_l0.get_slot_data(start, stop, 0, None, "handle", columns=["TIME"])
    assert len(data) > 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aca_l0.get_slot_data(start, stop, 0, columns=["TIME"])  # no db: no warning
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning)]


T0 = "2012:125:00:30:00"  # inside the archive's L0 hour, at no readout time
T1 = "2012:125:00:31:00"


def test_empty_ranges_give_empty_typed_results(archive):
    from mica.archive import aca_hdr3, aca_l0, obspar

    full = aca_l0.get_slot_data(T0, T1, 0)
    empty = aca_l0.get_slot_data(T0, T0, 0)
    assert isinstance(empty, np.ma.MaskedArray) and len(empty) == 0 and len(full) > 0
    assert empty.dtype == full.dtype
    assert aca_l0.get_l0_images(T0, T0, 0) == []
    table, ref = aca_l0.get_aca_images(T0, T0), aca_l0.get_aca_images(T0, T1)
    assert type(table) is Table and len(table) == 0 and len(ref) > 0
    assert table.colnames == ref.colnames
    assert [table[c].dtype for c in table.colnames] == [ref[c].dtype for c in ref.colnames]
    # files: those holding the instant (the original's SQL), a list of paths
    files = aca_l0.get_files(start=T0, stop=T0)
    assert isinstance(files, list) and set(files) <= set(aca_l0.get_files(start=T0, stop=T1))
    msid = aca_hdr3.MSID("ccd_temp", T0, T0)
    assert len(msid.vals) == len(msid.times) == 0 and isinstance(msid.vals, np.ma.MaskedArray)
    assert msid.vals.dtype == aca_hdr3.MSID("ccd_temp", T0, T1).vals.dtype
    before = "2012:100:00:00:00"  # before every archived obspar
    assert obspar.get_obsids(before, before) == []
    assert set(obspar.get_obsids(T0, T0)) <= set(obspar.get_obsids(T0, T1))


def test_stop_before_start_raises_a_mica_error(archive):
    from mica.archive import aca_hdr3, aca_l0, asp_l1, obspar

    calls = [
        lambda: aca_l0.get_slot_data(T1, T0, 0),
        lambda: aca_l0.get_files(start=T1, stop=T0),
        lambda: aca_l0.get_l0_images(T1, T0, 0),
        lambda: aca_l0.get_aca_images(T1, T0),
        lambda: aca_hdr3.MSID("ccd_temp", T1, T0),
        lambda: asp_l1.get_files(start=T1, stop=T0),
        lambda: obspar.get_obsids(T1, T0),
    ]
    for call in calls:
        with pytest.raises(TimeRangeError, match="is not after start") as err:
            call()
        assert isinstance(err.value, MicaError) and isinstance(err.value, ValueError)


def test_values_point_at_this_archive(archive):
    from mica import common
    from mica.archive import aca_hdr3, aca_l0, asp_l1, obspar
    from mica.archive.aca_dark import dark_cal
    from mica.stats import acq_stats, guide_stats
    from mica.vv import process, vv

    assert common.MICA_ARCHIVE == str(archive)
    assert aca_l0.CONFIG["data_root"] == str(archive / "aca0")
    assert asp_l1.CONFIG["data_root"] == str(archive / "asp1")
    assert obspar.CONFIG["data_root"] == str(archive / "obspar")
    assert dark_cal.MICA_FILES["dark_cals_dir"].abs == str(archive / "aca_dark")
    assert acq_stats.TABLE_FILE == str(archive / "acq_stats" / "acq_stats.h5")
    assert guide_stats.TABLE_FILE == str(archive / "guide_stats" / "guide_stats.h5")
    assert vv.FILES["h5_file"] == process.FILES["h5_file"] == str(archive / "vv" / "vv.h5")
    assert Path(vv.FILES["asp1_proc_table"]).exists()
    assert aca_l0.ACA_DTYPE_NAMES == tuple(aca_l0.get_slot_data(T0, T1, 0).dtype.names)
    assert [f[0] for f in aca_l0.ACA_DTYPE] == list(aca_l0.ACA_DTYPE_NAMES)
    # every HDR3_DEF item decodes one slot's rows as the MSID does (where it has its bytes)
    assert aca_hdr3.confirm_msid("ccd_temp") == "676" and aca_hdr3.slot_for_msid("676") == 6
    start, stop = "2012:125:00:00:00", "2012:125:12:00:00"
    rows = aca_l0.get_slot_data(start, stop, 7, imgsize=[8], columns=aca_hdr3.ACA_DTYPE_NAMES)
    dac = aca_hdr3.MSID("dac", start, stop)
    good = ~np.ma.getmaskarray(dac.vals)
    got = aca_hdr3.HDR3_DEF["776"]["value"](rows)
    assert np.array_equal(np.asarray(got)[np.isin(rows["TIME"], dac.times[good])], dac.vals[good])


def test_msid_is_a_class(archive):
    from mica.archive import aca_hdr3

    m = aca_hdr3.Msid("ccd_temp", "2012:125:00:00:00", "2012:125:12:00:00")
    assert isinstance(m, aca_hdr3.Msid) and isinstance(m, aca_hdr3.MSID)
    assert not np.ma.isMaskedArray(m.vals) and len(m) > 0


def test_obs_archive_reads_and_updates(archive_copy):
    from mica.archive import asp_l1, obspar
    from mica.archive.obsid_archive import ObsArchive, ObsArchiveConfigError

    assert ObsArchive(asp_l1.CONFIG).get_obs_dirs(10369) == asp_l1.get_obs_dirs(10369)
    folder = archive_copy / "obspar-new"
    config = dict(obspar.CONFIG, data_root=str(folder), obsid=10369, source="sim")
    assert ObsArchive(config).update() == [10369]
    assert obspar.get_obspar(10369, data_root=folder) == obspar.get_obspar(10369)
    for bad, word in (
        ({"version": 3}, "revision"),
        ({"small_glob": "*"}, "cannot be changed"),
        ({"nosuch": 1}, "not an option"),
        ({"label": "aca0"}, "label"),
    ):
        with pytest.raises(ObsArchiveConfigError, match=word):
            ObsArchive({**obspar.CONFIG, **bad})


def test_stats_updaters_drive_the_derived_update(archive_copy):
    from mica.stats import guide_stats, update_acq_stats, update_guide_stats

    assert not Path(guide_stats.TABLE_FILE).exists()
    update_guide_stats.update(update_guide_stats.get_options(["--obsid", "10369"]))
    assert set(guide_stats.get_stats()["obsid"]) == {10369}
    report = update_acq_stats.update(update_acq_stats.get_options(["--obsid", "10369"]))
    assert list(report.done) == [(10369, 0)]
    with pytest.raises(MicaError, match="guide_stats.h5"):
        update_guide_stats.update(update_guide_stats.get_options(["--datafile", "gs.h5"]))


def test_obi_stores_as_the_original(archive, tmp_path):
    from mica.vv import process

    obi = process.get_arch_vv(10369, version=1)
    obi.tempdir = tmp_path / "files"
    obi.save_plots_and_resid()
    assert (obi.tempdir / "vv_report.json").exists()
    obi.set_tbl(tmp_path / "vv.h5")
    obi.slots_to_table()
    obi.slots_to_table()  # replaces the revision's rows
    rows = obi.table.read()
    assert set(rows["obsid"]) == {10369} and len(rows) == len(obi.info()["slots"])
    with pytest.raises(MicaError, match="JSON"):
        obi.shelve_info(tmp_path / "shelf")
    with pytest.raises(MicaError, match="vv.h5"):
        obi.slots_to_db()
