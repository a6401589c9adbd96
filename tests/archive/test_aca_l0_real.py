"""The real 2003:215 flight files through the dir: source and back out of the readers."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from mica.archive import aca_l0
from mica.engine.index import ArchiveIndex
from mica.products.aca_l0 import FILE_COLUMNS, L0


def test_all_real_files_indexed(real_l0_archive, real_l0_dir):
    with ArchiveIndex(L0, real_l0_archive) as index:
        rows = index.query()
    assert len(rows) == 36
    by_name = {r["filename"]: r for r in rows}
    for path in real_l0_dir.glob("*.fits.gz"):
        row = by_name[path.name]
        header = fits.getheader(path, 1)
        assert row["tstart"] == header["TSTART"] and row["tstop"] == header["TSTOP"]
        assert row["rows"] == header["NAXIS2"]
        assert row["checksum"] == header["CHECKSUM"]
        assert (row["year"], row["doy"]) == (2003, 215)
        assert (real_l0_archive / "2003" / "215" / path.name).read_bytes() == path.read_bytes()


@pytest.mark.parametrize("slot", range(8))
def test_slot_data_equals_direct_read(real_l0_archive, real_l0_dir, slot):
    """Every column of every row equals astropy's direct read of the same files."""
    data = aca_l0.get_slot_data("2003:215", "2003:216", slot=slot, data_root=real_l0_archive)
    files = sorted(real_l0_dir.glob(f"acaf*_{slot}_img0.fits.gz"))
    assert len(data) == sum(fits.getheader(f, 1)["NAXIS2"] for f in files)
    row = 0
    for path in files:
        direct = fits.getdata(path, 1)
        n = len(direct)
        block = data[row : row + n]
        size = direct["IMGRAW"].shape[-1]
        assert np.all(block["FILENAME"] == path.name)
        assert np.all(block["IMGSIZE"] == size)
        for name in FILE_COLUMNS[size]:
            if name == "IMGRAW":
                img = block["IMGRAW"].data.reshape(-1, 8, 8)[:, :size, :size]
                assert np.array_equal(img, direct["IMGRAW"])
                assert not block["IMGRAW"].mask.reshape(-1, 8, 8)[:, :size, :size].any()
                assert block["IMGRAW"].mask.reshape(-1, 8, 8)[:, size:, :].all()
                continue
            assert np.array_equal(block[name].data, direct[name]), name
            assert not block[name].mask.any(), name
        for name in (
            set(aca_l0.SLOT_COLUMNS)
            - set(FILE_COLUMNS[size])
            - {"IMGSIZE", "FILENAME", "PIXTLM", "BGDTYP"}
        ):
            assert block[name].mask.all(), f"{name} should be masked in {size}x{size} rows"
        assert np.all(block["PIXTLM"] == "ORIG") and np.all(block["BGDTYP"] == "FLAT")
        row += n


def test_unsigned_columns_not_wrapped(real_l0_archive):
    data = aca_l0.get_slot_data("2003:215", "2003:216", slot=3, data_root=real_l0_archive)
    assert data["IMGSCALE"].dtype == np.uint16 and data["BGDAVG"].dtype == np.uint16
    parked = data[data["IMGROW0"] == 511]  # parked 4x4 windows: BGDAVG 511, IMGSCALE 1
    assert len(parked) and np.all(parked["BGDAVG"] == 511)


def test_time_selection_inclusive(real_l0_archive):
    full = aca_l0.get_slot_data("2003:215", "2003:216", slot=0, data_root=real_l0_archive)
    times = full["TIME"].data
    t0, t1 = times[100], times[200]
    part = aca_l0.get_slot_data(t0, t1, slot=0, data_root=real_l0_archive)
    assert part["TIME"][0] == t0 and part["TIME"][-1] == t1
    assert len(part) == np.count_nonzero((times >= t0) & (times <= t1))


def test_masking_rules_and_columns(real_l0_archive):
    data = aca_l0.get_slot_data(
        "2003:215",
        "2003:216",
        slot=0,
        data_root=real_l0_archive,
        columns=["TEMPCCD", "HD3TLM62", "IMGSIZE", "TIME"],
    )
    assert data.dtype.names == ("TIME", "TEMPCCD", "HD3TLM62", "IMGSIZE")  # canonical order
    size = data["IMGSIZE"].data
    assert set(size) == {4, 8}
    assert data["TEMPCCD"].mask[size == 4].all() and not data["TEMPCCD"].mask[size == 8].any()
    assert data["HD3TLM62"].mask[size != 8].all() and not data["HD3TLM62"].mask[size == 8].any()
    tempccd = data["TEMPCCD"][size == 8]
    assert 255 < tempccd.mean() < 260  # -15 C in 2003


def test_centered_8x8(real_l0_archive):
    top = aca_l0.get_slot_data(
        "2003:215", "2003:216", slot=3, data_root=real_l0_archive, columns=["IMGRAW", "IMGSIZE"]
    )
    cen = aca_l0.get_slot_data(
        "2003:215",
        "2003:216",
        slot=3,
        data_root=real_l0_archive,
        columns=["IMGRAW", "IMGSIZE"],
        centered_8x8=True,
    )
    assert cen["IMGRAW"].shape[1:] == (8, 8)
    six = np.flatnonzero(top["IMGSIZE"] == 6)[0]
    four = np.flatnonzero(top["IMGSIZE"] == 4)[0]
    assert np.array_equal(cen["IMGRAW"][six][1:7, 1:7], top["IMGRAW"][six].reshape(8, 8)[:6, :6])
    assert cen["IMGRAW"].mask[six][0].all() and not cen["IMGRAW"].mask[six][1:7, 1:7].any()
    assert np.array_equal(cen["IMGRAW"][four][2:6, 2:6], top["IMGRAW"][four].reshape(8, 8)[:4, :4])


def test_get_files_real(real_l0_archive):
    files = aca_l0.get_files(start="2003:215", stop="2003:216", data_root=real_l0_archive)
    assert len(files) == 36
    eight = aca_l0.get_files(
        start="2003:215", stop="2003:216", imgsize=[8], slots=[0, 1], data_root=real_l0_archive
    )
    assert len(eight) == 6 and all("_0_" in f or "_1_" in f for f in eight)
    assert aca_l0.get_files(start="2003:216", stop="2003:217", data_root=real_l0_archive) == []
    with pytest.raises(TypeError, match="obsid or start and stop"):
        aca_l0.get_files(start="2003:215")
    with pytest.raises(ValueError, match="slots"):
        aca_l0.get_files(start="2003:215", stop="2003:216", slots=[8], data_root=real_l0_archive)


def test_l0_images_real(real_l0_archive):
    columns = ["TIME", "TEMPCCD"]
    images = aca_l0.get_l0_images(
        "2003:215", "2003:216", slot=0, imgsize=[8], columns=columns, data_root=real_l0_archive
    )
    assert columns == ["TIME", "TEMPCCD"]  # the caller's list is not mutated
    img = images[10]
    assert img.shape == (8, 8)
    assert set(img.meta) == {"TIME", "TEMPCCD", "IMGROW0", "IMGCOL0"}
    assert -16 < img.TEMPCCD < -14  # converted to degC
    assert img.aca[img.row0 + 2, img.col0 + 3] == img[2, 3]


def test_aca_images_real(real_l0_archive):
    table = aca_l0.get_aca_images("2003:215:03:00", "2003:215:03:10", data_root=real_l0_archive)
    assert len(table) > 0
    assert np.all(np.diff(table["TIME"]) >= 0)
    assert set(table["IMGSIZE"]) <= {4, 6, 8}
    six = table["IMGSIZE"] == 6
    assert np.all(table["IMGROW_A1"][six] == table["IMGROW0"][six] + 1)
    assert np.all(table["IMGROW0_8X8"][six] == table["IMGROW0"][six] - 1)
    assert np.all(table["VCDUCTR"] == table["MJF"] * 128 + table["MNF"])
    assert table["IMG"].shape[1:] == (8, 8)
    for gone in ("FILENAME", "QUALITY", "IMGNUM1", "IMGRAW"):
        assert gone not in table.colnames
    empty = aca_l0.get_aca_images("2003:216:03:00", "2003:216:03:10", data_root=real_l0_archive)
    assert len(empty) == 0


def test_l0_msid(real_l0_archive):
    msid = aca_l0.MSID("tempccd", 0, "2003:215", "2003:216", data_root=real_l0_archive)
    assert len(msid.vals) == len(msid.times) > 0
    msids = aca_l0.MSIDset(
        ["TEMPCCD", "BGDAVG"], "2003:215", "2003:216", slot=1, data_root=real_l0_archive
    )
    assert np.array_equal(msids["TEMPCCD"].times, msids["BGDAVG"].times)
    with pytest.raises(ValueError, match="not an L0 column"):
        aca_l0.MSID("nonsense", 0, "2003:215", "2003:216", data_root=real_l0_archive)
