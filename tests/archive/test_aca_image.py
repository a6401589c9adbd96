"""ACAImage behaves as chandra_aca's for the members users call on L0 images and dark maps."""

from __future__ import annotations

import numpy as np
import pytest

from mica.archive import aca_l0
from mica.archive.aca_image import EIGHT_LABELS, ACAImage, centroid_fm

IM6 = np.arange(36).reshape(6, 6)
IM8 = np.arange(64).reshape(8, 8)


def _first_moment(img: np.ndarray, bgd: float = 0.0) -> tuple[float, float, float]:
    """The on-board first moment written out pixel by pixel: the oracle of these tests."""
    size = img.shape[0]
    lo, hi = (1, 7) if size == 8 else (0, size)
    total = row_sum = col_sum = 0.0
    for r in range(lo, hi):
        for c in range(lo, hi):
            corner = size in (6, 8) and r in (lo, hi - 1) and c in (lo, hi - 1)
            if corner:
                continue
            value = float(img[r, c]) - bgd
            total += value
            row_sum += r * value
            col_sum += c * value
    return row_sum / total, col_sum / total, total


def _gaussian_spot(size: int, row: float, col: float, sigma: float = 0.8) -> np.ndarray:
    rr, cc = np.mgrid[0:size, 0:size]
    return 5000.0 * np.exp(-((rr - row) ** 2 + (cc - col) ** 2) / (2 * sigma**2))


def test_init_and_place():
    img = ACAImage([[1, 2], [3, 4]])
    assert img.shape == (2, 2) and img.row0 == 0 and img.col0 == 0
    img = ACAImage(IM6, row0=1, col0=2)
    assert img.meta == {"IMGROW0": 1, "IMGCOL0": 2}
    zeros = ACAImage(shape=(1024, 1024), row0=-512.0, col0=-512.0)
    assert not zeros.any() and type(zeros.row0) is np.int64 and type(zeros.col0) is np.int64
    from_meta = ACAImage(IM6, meta={"IMGROW0": 1, "IMGCOL0": 2})
    assert (from_meta.row0, from_meta.col0) == (1, 2)
    with pytest.raises(ValueError, match="2-d"):
        ACAImage(np.arange(4))
    img.row0, img.col0 = -10.0, -20.0
    assert (img.row0, img.col0) == (-10, -20) and type(img.row0) is np.int64


def test_meta_attributes():
    img = ACAImage(IM6, meta={"BGDAVG": 5.2, "lower": 1})
    assert img.BGDAVG == 5.2 and "BGDAVG" in dir(img)
    img.ATTR = 10
    assert img.meta["ATTR"] == 10
    img.meta["ATTR"] = 20
    assert img.ATTR == 20
    with pytest.raises(AttributeError):
        _ = img.lower  # only upper-case keys are attributes, as in chandra_aca
    assert img.aca.meta is img.meta
    assert img[1:, 2:].meta is not img.meta


def test_slicing_keeps_place():
    img = ACAImage(IM6, row0=1, col0=2)
    assert np.all(img[1] == IM6[1]) and img[1, 2] == IM6[1, 2]
    sub = img[2:, 3:]
    assert (sub.row0, sub.col0) == (3, 5)
    assert (img[-3:-1, :].row0, img[-3, :].row0) == (img[3:5, :].row0, img[3, :].row0)
    assert img[...].row0 == 1 and img[1, ...].row0 == 2 and img[..., 2].col0 == 4
    with pytest.raises(IndexError):
        img[..., ...]
    with pytest.raises(IndexError, match="index -10 is out of bounds for axis 0 with size 6"):
        img[[-10, -1, 2], :]


def test_aca_indexing():
    img = ACAImage(IM6, row0=1, col0=2)
    assert np.all(img.aca[1] == IM6[0]) and np.all(img.aca[np.int64(1)] == IM6[0])
    assert np.all(img.aca[:, 2] == IM6[:, 0]) and img.aca[1, 2] == IM6[0, 0]
    assert np.all(img.aca[4:, 2:4] == IM6[3:, 0:2])
    sub = img.aca[2:, 3:]
    assert (sub.row0, sub.col0) == (2, 3) and sub._aca_coords is False
    assert sub[1, 2] == IM6[2, 3]
    whole = img.aca[:, :]
    assert (whole.row0, whole.col0) == (1, 2)
    rows, cols = [1, 2, 3], [3, 4, 5]
    assert np.all(img.aca[rows, cols] == IM6[np.array(rows) - 1, np.array(cols) - 2])
    assert np.all(img.aca[img.row0 + 1, ...] == IM6[1]) and img.aca[..., 4].col0 == 4

    eight = ACAImage(IM8, row0=11, col0=-22)
    clipped = eight.aca[10:13, -24:-20]  # a slice is clipped to the image
    assert (clipped.row0, clipped.col0, clipped.shape) == (11, -22, (2, 2))
    with pytest.raises(IndexError, match="index 10 is out of bounds for axis 0 with limits 11:19"):
        eight.aca[10, :]
    with pytest.raises(IndexError, match="axis 1 with limits -22:-14"):
        eight.aca[:, 10]


def test_masks_and_pickling():
    import pickle

    img = ACAImage(IM6.copy(), row0=1, col0=2, meta={"TIME": 5.0})
    assert img[img > 30].tolist() == [31, 32, 33, 34, 35]  # a boolean image is a mask
    img[img > 30] = 0
    assert int(img.sum()) == sum(range(31)) and img.aca[img.aca < 1].size == 6
    back = pickle.loads(pickle.dumps(img[1:, 2:]))
    assert (back.row0, back.col0, back.TIME) == (2, 4, 5.0) and np.all(back == img[1:, 2:])


def test_aca_assignment_and_views():
    img = ACAImage(IM6.copy(), row0=1, col0=2)
    img.aca[2:, 4:] = 0
    expect = IM6.copy()
    expect[1:, 2:] = 0
    assert np.all(img == expect)
    img.aca[2:, 4:][()] = 10  # a slice is a view
    expect[1:, 2:] = 10
    assert np.all(img == expect)
    big = ACAImage(IM8.copy(), row0=1.0, col0=1.0)
    assert np.all(big[img] == IM8[0:6, 1:7])  # an image indexes by its CCD footprint
    big[img] = 0
    assert not big[0:6, 1:7].any() and big[6:, :].all()


def test_operators_in_ccd_coordinates():
    a = ACAImage(shape=(4, 4), row0=10, col0=20) + 2
    b = ACAImage(np.arange(1, 17).reshape(4, 4), row0=8, col0=19) * 10
    assert np.all(a + b == np.arange(1, 17).reshape(4, 4) * 10 + 2)  # plain numpy
    overlap = [[102, 112, 122, 2], [142, 152, 162, 2], [2, 2, 2, 2], [2, 2, 2, 2]]
    for left, right in ((a, b.aca), (a.aca, b), (a.aca, b.aca)):
        assert np.all(left + right == overlap)
    inplace = ACAImage(shape=(4, 4), row0=10, col0=20) + 2
    inplace += b.aca
    assert np.all(inplace == overlap)
    c = ACAImage(np.arange(16).reshape(4, 4), row0=10, col0=20) + 2
    d = ACAImage([[100, 200], [300, 400]], row0=11, col0=21)
    with pytest.raises(ValueError):
        c + d  # numpy broadcasting
    out = c + d.aca
    assert out[1:3, 1:3].tolist() == [[107, 208], [311, 412]] and (out.row0, out.col0) == (10, 20)
    out = d + c.aca
    assert out.tolist() == [[107, 208], [311, 412]] and (out.row0, out.col0) == (11, 21)
    assert (c - d.aca)[1:3, 1:3].tolist() == [[-93, -192], [-289, -388]]
    far = ACAImage([[1]], row0=500, col0=500)
    assert np.all(c + far.aca == c)  # no overlap: unchanged


@pytest.mark.parametrize("size", [6, 8])
@pytest.mark.parametrize("where", [(2.3, 3.1), (3.5, 2.5), (2.8, 2.2)])
def test_centroid_of_gaussian_spot(size, where):
    spot_row, spot_col = (w + (1 if size == 8 else 0) for w in where)
    img = _gaussian_spot(size, spot_row, spot_col) + 40.0
    kept = img.copy()
    row, col, norm = centroid_fm(img, bgd=40.0)
    assert np.allclose((row, col, norm), _first_moment(img, bgd=40.0))
    assert np.all(img == kept)  # the caller's image is not modified
    # a well-contained spot's first moment is near its true centre
    assert abs(row - spot_row) < 0.15 and abs(col - spot_col) < 0.15
    edge = centroid_fm(img, bgd=40.0, pix_zero_loc="edge")
    assert np.allclose(edge, (row + 0.5, col + 0.5, norm))
    aca = ACAImage(img, row0=-150, col0=200)
    assert np.allclose(aca.centroid_fm(bgd=40.0), (row, col, norm))
    assert np.allclose(aca.aca.centroid_fm(bgd=40.0), (row - 150, col + 200, norm))
    bgd_map = np.full((size, size), 40.0)
    assert np.allclose(aca.centroid_fm(bgd=bgd_map), (row, col, norm))


def test_centroid_rules():
    img = np.zeros((6, 6))
    img[0, 0] = 1000  # a corner: left out
    img[2, 2] = 100
    assert centroid_fm(img) == (2.0, 2.0, 100.0)
    img8 = np.full((8, 8), 10.0)
    img8[0, 0] = img8[1, 1] = 1000  # outside the core and a core corner
    img8[3, 3] = 100
    assert np.allclose(centroid_fm(img8, bgd=10), (3.0, 3.0, 90.0))
    four = np.zeros((4, 4))
    four[1, 2] = 50.0
    four[3, 3] = 50.0  # a 4x4 keeps its corners
    assert np.allclose(centroid_fm(four), (2.0, 2.5, 100.0))
    with pytest.raises(ValueError, match="non-positive"):
        centroid_fm(img8, bgd=1000)
    with pytest.raises(ValueError, match="pix_zero_loc"):
        centroid_fm(img8, pix_zero_loc="FAIL")
    with pytest.raises(ValueError, match="square"):
        centroid_fm(np.ones((6, 8)))
    # a clipped norm gives chandra_aca's (meaningless) value instead of an error
    flat = np.full((8, 8), 10.0)
    flat[3, 3] += 100
    flat[4, 4] += 100
    row, col, norm = centroid_fm(flat, bgd=100, pix_zero_loc="edge", norm_clip=1.0)
    assert (row, col, norm) == (-9379.5, -9379.5, 1.0)


def test_eight_labels():
    assert EIGHT_LABELS[0].tolist() == ["A1", "B1", "C1", "D1", "E1", "F1", "G1", "H1"]
    assert EIGHT_LABELS[1, 0] == "I1" and EIGHT_LABELS[7, 0] == "I4" and EIGHT_LABELS[0, 7] == "H1"


def test_real_l0_centroids(real_l0_archive):
    images = aca_l0.get_l0_images(
        "2003:215", "2003:216", slot=0, imgsize=[6, 8], data_root=real_l0_archive
    )
    assert len(images) > 10
    checked = 0
    for img in images:
        bgd = float(img.BGDAVG)
        pixels = np.asarray(img)
        try:
            oracle = _first_moment(pixels, bgd)
        except ZeroDivisionError:
            continue
        if oracle[2] <= 0:
            continue
        row, col, norm = img.centroid_fm(bgd=bgd)
        assert np.allclose((row, col, norm), oracle)
        ccd_row, ccd_col, _ = img.aca.centroid_fm(bgd=bgd)
        assert np.isclose(ccd_row, row + img.row0) and np.isclose(ccd_col, col + img.col0)
        # a tracked star sits in the image core
        assert 0.5 < row < img.shape[0] - 1.5 and 0.5 < col < img.shape[1] - 1.5
        checked += 1
    assert checked > 10
