"""Dark-calibration readers on an archive built by the real updater from the simulated upstream.

The archive holds the known real ids: 1999223, 2006329, the four
2007 calibrations, three in 2019:001-160 (the last in the ACDC era) and 2022069/104/133.
Their CCD temperatures come from header-3 ccd_temp in an L0 archive holding only what they
need (slots 6-7 in 8x8 around each calibration, ingested through the dir: source).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import MaskedColumn

from mica.archive.aca_dark import dark_cal, dark_model
from mica.archive.aca_dark.update import update_aca_dark
from mica.engine.time_update import update_archive
from mica.errors import MissingArchiveError
from mica.products.aca_l0 import L0
from mica.sim import aca_dark as sim
from mica.time import to_secs
from tests.conftest import REALDATA

IDS = [
    "1999223",
    "2006329",
    "2007006",
    "2007069",
    "2007251",
    "2007340",
    "2019015",
    "2019085",
    "2019155",
    "2022069",
    "2022104",
    "2022133",
]
RANGES = [
    ("1999:223", "1999:224"),
    ("2006:329", "2007:341"),
    ("2019:015", "2019:156"),
    ("2022:069", "2022:134"),
]
CLASSIC = ["ccd_temp", "date", "dec", "dur", "eb", "el", "id", "l_l0", "ra", "start", "stop"]
CLASSIC += ["sun_el", "zodib"]
ACDC = ["date", "t_ccd", "n_ccd_img", "ccd_temp", "datestart", "datestop", "filename"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """<tmp>/archive with aca0 (slots 6-7 near the calibrations) and aca_dark."""
    top = tmp_path_factory.mktemp("dark-archive")
    root = top / "archive"
    plans = [sim.dark_cal_plan(i) for i in IDS if i != "1999223"]  # 1999: guessed, no L0
    upstream = top / "upstream-l0"
    sim.write_hdr3_l0_files(plans, upstream)
    t0, t1 = plans[0].tstart - 3600, plans[-1].tstop + 3600
    report = update_archive(
        L0, f"dir:{upstream}", t0, t1, days_at_once=(t1 - t0) / 86400 + 2, data_root=root / "aca0"
    )
    assert report.ingested and not report.rejected
    for start, stop in RANGES:
        rep = update_aca_dark(start, stop, source="sim", data_root=root / "aca_dark")
        assert not rep.failed, rep.summary()
    assert list(dark_cal.get_dark_cal_dirs(data_root=root / "aca_dark")) == IDS
    return root


@pytest.fixture
def dark_root(archive, monkeypatch) -> Path:
    """The aca_dark folder, also the default through MICA_ARCHIVE."""
    monkeypatch.setenv("MICA_ARCHIVE", str(archive))
    return archive / "aca_dark"


# ---------------------------------------------------------------------------------------
def test_id_date_conversions():
    assert dark_cal.date_to_dark_id("2011-01-15T12:00:00") == "2011015"
    assert dark_cal.dark_id_to_date("2011015") == "2011:015"
    ids = dark_cal.date_to_dark_id(np.array(["2011-01-15T12:00:00", "2012:366:23:00:00"]))
    assert ids.dtype == np.dtype("<U7") and ids.tolist() == ["2011015", "2012366"]
    dates = dark_cal.dark_id_to_date(np.array(["2011015", "1999223"]))
    assert dates.dtype == np.dtype("<U8") and dates.tolist() == ["2011:015", "1999:223"]


def test_dirs_and_ids(dark_root):
    dirs = dark_cal.get_dark_cal_dirs()  # default root: <MICA_ARCHIVE>/aca_dark, read now
    assert list(dirs) == IDS
    assert all(Path(p).is_absolute() and Path(p).name == i for i, p in dirs.items())
    ids = dark_cal.get_dark_cal_ids(data_root=dark_root)
    assert list(ids.items())[2] == ("2007:006:00:00:00.000", "2007006")
    # Temporary folders of an update in progress are not calibrations.
    (dark_root / ".2099001.tmp-1").mkdir()
    try:
        assert list(dark_cal.get_dark_cal_dirs(dark_root)) == IDS
    finally:
        (dark_root / ".2099001.tmp-1").rmdir()


def test_get_dark_cal_id_spec_values(dark_root):
    date = "2007:008:12:00:00"
    assert dark_cal.get_dark_cal_id(date, "nearest") == "2007006"
    assert dark_cal.get_dark_cal_id(date, "before") == "2007006"
    assert dark_cal.get_dark_cal_id(date, "after") == "2007069"
    ids = [i for i in dark_cal.get_dark_cal_ids().values() if i not in ("2007006", "2007069")]
    assert dark_cal.get_dark_cal_id(date, "nearest", dark_cal_ids=ids) == "2006329"
    assert dark_cal.get_dark_cal_id(date, "before", dark_cal_ids=ids) == "2006329"
    assert dark_cal.get_dark_cal_id(date, "after", dark_cal_ids=ids) == "2007251"
    assert dark_cal.get_dark_cal_id("2022:100", "before") == "2022069"
    dates = ["2022:100", "2022:105", "2022:127"]
    expect = {
        "before": ["2022069", "2022104", "2022104"],
        "after": ["2022104", "2022133", "2022133"],
        "nearest": ["2022104", "2022104", "2022133"],
    }
    for select, want in expect.items():
        got = dark_cal.get_dark_cal_id(dates, select, data_root=dark_root)
        assert isinstance(got, np.ndarray) and got.tolist() == want
    # An exact day wins whatever select.
    assert dark_cal.get_dark_cal_id("2007:069:23:00:00", "after") == "2007069"


def test_get_dark_cal_id_errors(dark_root):
    with pytest.raises(ValueError, match='select arg must be one of "nearest", "before", or'):
        dark_cal.get_dark_cal_id("2007:008", "closest")
    with pytest.raises(dark_cal.MissingDataError) as err:
        dark_cal.get_dark_cal_id("1999:100", "before")
    assert str(err.value).startswith("No dark cal found before 1999:223 (requested dark cal on")
    with pytest.raises(dark_cal.MissingDataError, match="No dark cal found after 2023:001"):
        dark_cal.get_dark_cal_id("2023:001", "after")
    # An id that does not exist is named, with its neighbours.
    with pytest.raises(dark_cal.MissingDataError, match="no dark calibration with id 2007007"):
        dark_cal.get_dark_cal_props("2007007")
    with pytest.raises(dark_cal.MissingDataError, match="2028001.*nearest ids: 2022133"):
        dark_cal.get_dark_cal_image("2028001")
    with pytest.raises(MissingArchiveError, match="no aca-dark archive in .*nowhere"):
        dark_cal.get_dark_cal_id("2007:008", data_root=dark_root / "nowhere")


def test_props_spec_values(dark_root):
    props = dark_cal.get_dark_cal_props("2007:008:12:00:00")
    assert len(props["replicas"]) == 5
    assert props["start"] == "2007:006:01:56:46.817"
    assert props["id"] == "2007006" and props["date"] == "2007:006"
    assert sorted(props) == sorted(CLASSIC + ["replicas"])
    # Each replica record has its own times (the original copied the event's), in order.
    starts = [r["start"] for r in props["replicas"]]
    assert starts[0] == props["start"] and starts == sorted(starts) and len(set(starts)) == 5
    assert props["replicas"][-1]["stop"] == props["stop"]
    assert {r["ccd_temp_source"] for r in props["replicas"]} == {"HDR3"}
    assert props["ccd_temp"] == pytest.approx(-15.0, abs=0.05)  # the 2007 set point
    assert dark_cal.get_dark_cal_props("1999223")["replicas"][0]["ccd_temp_source"] == "GUESS"
    acdc = dark_cal.get_dark_cal_props("2019155")
    assert list(acdc)[:7] == ACDC and isinstance(acdc["replicas"], list)
    assert acdc["n_ccd_img"] == 5 and isinstance(acdc["t_ccd"], float)


def test_props_loop_of_the_docs(dark_root):
    """The documentation's loop: every calibration with its image, scaled to -15 C."""
    fracs = {}
    for dark_id in dark_cal.get_dark_cal_dirs():
        props = dark_cal.get_dark_cal_props(dark_id, include_image=True)
        scale = dark_cal.dark_temp_scale(props["ccd_temp"], -15.0)
        image = props["image"]
        assert image.shape == (1024, 1024) and image.dtype == np.float32
        fracs[dark_id] = np.count_nonzero(image * scale > 100.0) / 1024**2
    # The simulated CCD follows the model (and the observed trend before 2007).
    assert fracs["1999223"] == pytest.approx(0.02, abs=0.005)
    assert fracs["2007006"] == pytest.approx(
        dark_model.get_warm_fracs(100, "2007:006", -15), rel=0.03
    )
    assert fracs["2022133"] == pytest.approx(
        dark_model.get_warm_fracs(100, "2022:133", -15), rel=0.03
    )


def test_image(dark_root):
    img = dark_cal.get_dark_cal_image("2012:100", select="nearest")  # 2007340
    assert img.shape == (1024, 1024) and img.dtype == np.float32 and img.dtype.isnative
    assert img.min() >= 0
    raw = dark_cal.get_dark_cal_image("2007:006", allow_negative=True)
    assert raw.min() < 0  # noise around zero in the cool pixels
    on_disk = fits.getdata(dark_root / "2007006" / "image.fits")
    assert on_disk.dtype.byteorder == ">" and np.array_equal(raw, on_disk)
    props = dark_cal.get_dark_cal_props("2007:006")
    scaled = dark_cal.get_dark_cal_image("2007:006", t_ccd_ref=-10.0, allow_negative=True)
    factor = np.float32(dark_cal.dark_temp_scale(props["ccd_temp"], -10.0))
    assert np.array_equal(scaled, raw * factor)
    aca = dark_cal.get_dark_cal_image("2007:006", aca_image=True)
    assert aca.row0 == -512 and aca.col0 == -512
    assert aca.aca[-511, -511] == aca[1, 1] and aca.aca[511, 0] == aca[1023, 512]


def test_props_table_classic_acdc_mixed(dark_root):
    t2007 = dark_cal.get_dark_cal_props_table("2007:001", "2008:001")
    assert t2007.colnames == CLASSIC and len(t2007) == 4
    assert t2007["id"].dtype.kind == "U" and list(t2007["id"]) == IDS[2:6]  # real types
    assert t2007["eb"].tolist() == [24.6, 25.89, 51.13, 1.9]
    assert t2007["dur"].dtype == np.float64 and not t2007.masked
    acdc = dark_cal.get_dark_cal_props_table("2019:150", "2019:160")
    assert acdc.colnames == ACDC and len(acdc) == 1
    assert not any(isinstance(acdc[c], MaskedColumn) for c in acdc.colnames)
    assert acdc["n_ccd_img"].dtype == np.int64
    mixed = dark_cal.get_dark_cal_props_table("2019:001", "2019:160")
    assert mixed.colnames == CLASSIC + [c for c in ACDC if c not in CLASSIC]
    assert mixed["eb"].mask.tolist() == [False, False, True]
    assert mixed["eb"][:2].tolist() == [1.82, -49.53]
    assert mixed["t_ccd"].mask.tolist() == [True, True, False]
    assert -12.0 < mixed["t_ccd"][2] < -9.0  # the simulated CCD in mid-2019
    assert mixed["id"].mask.tolist() == [False, False, True]


def test_props_table_images_and_list(dark_root):
    table = dark_cal.get_dark_cal_props_table("2022:001", "2022:200", include_image=True)
    assert table["image"].shape == (3, 1024, 1024)
    one = dark_cal.get_dark_cal_image("2022:104")
    assert np.array_equal(table["image"][1], one)
    rows = dark_cal.get_dark_cal_props_table("2022:001", "2022:200", as_table=False)
    assert [r["date"] for r in rows] == ["2022:069", "2022:104", "2022:133"]  # ACDC: no id
    assert isinstance(rows[0]["replicas"], list)
    assert len(dark_cal.get_dark_cal_props_table()) == len(IDS)  # defaults: 1999 .. now
    assert len(dark_cal.get_dark_cal_props_table("2025:001", "2026:001")) == 0


def test_synthetic_dark_image_from_archive(dark_root):
    """dark_model's base map is the archived 1999:223 calibration (read lazily)."""
    dark_model._archive_base.cache_clear()
    try:
        img = dark_model.synthetic_dark_image(
            "2017:010:12:00:00", -13.55, base_image="archive", rng=100
        )
    finally:
        dark_model._archive_base.cache_clear()
    n100 = np.count_nonzero(img > 100)
    assert img.shape == (1024, 1024) and 200_000 < n100 < 260_000


def test_sim_trend_and_replica_statistics():
    """Simulated maps: the observed trend (0.023 in 2000, 0.145 by 2014 at -15 C)."""
    scale = dark_cal.dark_temp_scale(-14.0, -15.0)
    f2000 = np.mean([np.mean(sim.true_dark_map(i) * scale > 100) for i in ("1999320", "2000043")])
    f2014 = np.mean([np.mean(sim.true_dark_map(i) * scale > 100) for i in ("2013319", "2014031")])
    assert f2000 == pytest.approx(0.023, abs=0.003)
    assert f2014 == pytest.approx(0.145, abs=0.01)


def test_sim_against_real_excerpt():
    """A simulated 2024 map at -3 C beside the real 2024-era excerpt."""
    real = fits.getdata(REALDATA / "dark_excerpt_100x100.fits.gz").astype(np.float64)
    assert np.percentile(real, [0, 50, 100]) == pytest.approx([17.5, 138, 5054], rel=0.01)
    simulated = sim.true_dark_map("2024229") * dark_cal.dark_temp_scale(-14.0, -3.0)
    # The model (fitted 2007-2017) extrapolated to 2024 holds fewer warm pixels than the
    # real map: about 0.78 of its median, 0.52 above 100 e-/s against 0.60 (reported).
    assert np.median(simulated) / np.median(real) == pytest.approx(0.78, abs=0.1)
    assert np.mean(simulated > 100) == pytest.approx(np.mean(real > 100), abs=0.12)
    assert np.percentile(simulated, 95) == pytest.approx(np.percentile(real, 95), rel=0.15)


def test_time_of_id_argument(dark_root):
    """An id argument means that calibration (not CXC seconds 2007006)."""
    assert dark_cal.get_dark_cal_id("2007006", "after") == "2007006"
    assert dark_cal._dates_as_secs("2007006") == to_secs("2007:006")
