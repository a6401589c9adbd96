"""The user examples of the L0 and header-3 issues on archives built from the simulated upstream."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from mica.archive import aca_hdr3, aca_l0
from mica.cli import main
from mica.engine.obsid_update import update_obsid_archive
from mica.engine.time_update import update_archive
from mica.products.aca_l0 import L0
from mica.products.hdr3_items import ITEMS
from mica.products.obspar import OBSPAR
from mica.sim.mission import default_mission


@pytest.fixture(scope="module")
def examples_archive(tmp_path_factory, sim_l0_archive) -> Path:
    """A copy of the 6-hour 2012:001 fixture (other modules read it as it is) plus the small
    windows the examples read."""
    root = tmp_path_factory.mktemp("examples") / "aca0"
    shutil.copytree(sim_l0_archive, root)
    obs = default_mission().observation(5438)
    for start, stop in [
        (obs.tstart, min(obs.tstop, obs.tstart + 3600)),
        ("2011:001:00:00:00", "2011:001:01:00:00"),
        (98585849 - 60, 98585884 + 60),
        ("2012:270:02:25:00", "2012:270:02:46:00"),
    ]:
        report = update_archive(L0, "sim", start, stop, data_root=root)
        assert not report.rejected
    return root


def test_get_files_examples(examples_archive):
    root = examples_archive
    obs = default_mission().observation(5438)
    # an obsid's interval comes from its archived obspar (into <MICA_ARCHIVE>/obspar)
    assert update_obsid_archive(OBSPAR, "sim", [5438]).ok
    obsid_files = aca_l0.get_files(obsid=5438, data_root=root)
    assert obsid_files and all(Path(f).exists() for f in obsid_files)
    for path in obsid_files:
        header = fits.getheader(path, 1)
        assert header["TSTART"] < obs.tstop and header["TSTOP"] > obs.tstart
    time_8x8 = aca_l0.get_files(start="2011:001", stop="2011:010", imgsize=[8], data_root=root)
    assert time_8x8 and all(fits.getheader(f, 1)["TFORM33"] == "64E" for f in time_8x8)
    time_files = aca_l0.get_files(
        start="2012:001:00:00:00.000",
        stop="2012:002:00:00:00.000",
        slots=[0],
        imgsize=[6, 8],
        data_root=root,
    )
    assert time_files and all("_0_img0" in f for f in time_files)
    starts = [fits.getheader(f, 1)["TSTART"] for f in time_files]
    assert starts == sorted(starts)


def test_slot_data_examples(examples_archive):
    root = examples_archive
    temp_ccd = aca_l0.get_slot_data(
        "2012:001:00:00:00.000",
        "2012:002:00:00:00.000",
        slot=0,
        imgsize=[6, 8],
        columns=["TIME", "TEMPCCD"],
        data_root=root,
    )
    assert temp_ccd.dtype.names == ("TIME", "TEMPCCD") and len(temp_ccd) > 1000
    assert -20 < np.ma.median(temp_ccd["TEMPCCD"]) - 273.15 < -14  # about -18 C in 2012
    slot_data = aca_l0.get_slot_data(98585849, 98585884, slot=2, data_root=root)
    assert len(slot_data.dtype.names) == len(aca_l0.SLOT_COLUMNS) and len(slot_data) > 0
    assert np.all((slot_data["TIME"] >= 98585849) & (slot_data["TIME"] <= 98585884))
    images = aca_l0.get_l0_images(98585849, 98585884, slot=2, data_root=root)
    assert len(images) == np.count_nonzero(slot_data["QUALITY"] == 0)
    img = images[0]
    assert img.shape == (slot_data["IMGSIZE"][0],) * 2 and {"TIME", "IMGROW0"} <= set(img.meta)
    table = aca_l0.get_aca_images("2012:270:02:25:00", "2012:270:02:46:00", data_root=root)
    assert len(table) > 0 and set(table["IMGNUM"]) == set(range(8))
    assert np.all(np.diff(table["TIME"]) >= 0)


@pytest.mark.parametrize("slot", range(8))
def test_store_equals_file_scan_sim(examples_archive, slot):
    kwargs = dict(data_root=examples_archive)
    for start, stop in [("2012:001:00:00", "2012:001:06:00"), ("2012:270:02:25", "2012:270:02:46")]:
        fast = aca_l0.get_slot_data(start, stop, slot, **kwargs)
        slow = aca_l0.get_slot_data(start, stop, slot, use_store=False, **kwargs)
        assert fast.dtype == slow.dtype and len(fast) == len(slow) > 0
        for name in fast.dtype.names:
            assert np.array_equal(np.ma.getmaskarray(fast[name]), np.ma.getmaskarray(slow[name]))
            assert np.array_equal(fast[name].filled(0), slow[name].filled(0)), name


def test_hdr3_items_store_equals_file_scan_sim(examples_archive):
    names = [item.msid for item in ITEMS.values()]
    args = (names, "2012:001:00:00", "2012:001:06:00")
    fast = aca_hdr3.MSIDset(*args, data_root=examples_archive)
    slow = aca_hdr3.MSIDset(*args, data_root=examples_archive, use_store=False)
    assert np.array_equal(fast.times, slow.times) and len(fast.times) > 1000
    for name in names:
        a, b = fast[name].vals, slow[name].vals
        assert np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b)), name
        assert np.array_equal(np.ma.filled(a, 0), np.ma.filled(b, 0), equal_nan=True), name
    therm = fast["ccd_det_therm"].vals.compressed()
    assert len(therm) and -20 < np.median(therm) < -14


def test_fetch_hdr3_command(examples_archive, tmp_path, monkeypatch):
    monkeypatch.setenv("MICA_ARCHIVE", str(tmp_path))
    (tmp_path / "aca0").symlink_to(examples_archive)
    plot, csv = tmp_path / "t.png", tmp_path / "t.csv"
    result = CliRunner().invoke(
        main,
        [
            "fetch",
            "hdr3",
            "ccd_det_therm",
            "dac",
            "--start",
            "2012:001:00:00",
            "--stop",
            "2012:001:06:00",
            "--plot",
            str(plot),
            "--csv",
            str(csv),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ccd_det_therm (074, degC)" in result.output
    assert plot.stat().st_size > 10000 and csv.read_text().startswith("time,date,")
    from PIL import Image

    with Image.open(plot) as png:  # saved as the report plots are (150 dpi, simulated mark)
        assert round(png.info["dpi"][0]) == 150
    bad = CliRunner().invoke(
        main, ["fetch", "hdr3", "nonsense", "--start", "2012:001", "--stop", "2012:002"]
    )
    assert bad.exit_code != 0 and "ccd_temp" in bad.output  # lists the valid names
