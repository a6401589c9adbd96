"""Dark-current temperature scaling."""

import numpy as np
import pytest

from mica.archive.aca_dark.temp_scale import DARK_SCALE_4C, dark_temp_scale, dark_temp_scale_img


def test_dark_temp_scale_spec_values():
    assert np.isclose(dark_temp_scale(-10, -14), 0.70, rtol=1e-12)
    assert dark_temp_scale(-10.0, -14, scale_4c=2.0) == 0.5  # exact, as the reference test
    assert dark_temp_scale(t_ccd=-18, t_ccd_ref=-10, scale_4c=2.0) == 4.0
    assert DARK_SCALE_4C == 1 / 0.70
    assert dark_temp_scale(-19.0) == 1.0  # default reference -19 C


def test_dark_temp_scale_types_and_vectors():
    assert isinstance(dark_temp_scale(-10, -14), float)
    out = dark_temp_scale([-10, -14, -18], -14)
    assert isinstance(out, np.ndarray)
    assert np.allclose(out, [0.70, 1.0, 1 / 0.70])
    # Both arguments broadcast.
    grid = dark_temp_scale(np.array([-10.0, -14.0])[:, None], np.array([-14.0, -10.0, -6.0]))
    assert grid.shape == (2, 3)
    assert np.allclose(grid[0], [0.70, 1.0, 1 / 0.70])
    # Round trip.
    assert np.isclose(dark_temp_scale(-5, -12) * dark_temp_scale(-12, -5), 1.0)


@pytest.mark.parametrize("scale_4c", [0.0, -1.4, np.nan, np.inf])
def test_dark_temp_scale_bad_scale(scale_4c):
    with pytest.raises(ValueError, match="scale_4c"):
        dark_temp_scale(-10, -14, scale_4c=scale_4c)


def test_dark_temp_scale_bad_temperature():
    with pytest.raises(ValueError):
        dark_temp_scale("warm", -14)


@pytest.mark.parametrize(
    "img, t_ccd, t_ref, expected",
    [
        ([100, 1000, 500], -10, -5, [171.47, 1668.62, 852.79]),
        ([100, 1000, 500], -10, -15, [58.31, 599.29, 293.15]),
        ([200, 2000, 600], -6, 2, [478.16, 4299.02, 1399.40]),
    ],
)
def test_dark_temp_scale_img_spec_values(img, t_ccd, t_ref, expected):
    out = dark_temp_scale_img(img, t_ccd, t_ref)
    assert isinstance(out, np.ndarray)
    assert np.allclose(out, expected, atol=0.1, rtol=0)


def test_dark_temp_scale_img_same_temperature_and_scalar():
    img = np.array([[0.0, 15.0], [300.0, 2e4]])
    assert np.array_equal(dark_temp_scale_img(img, -7.5, -7.5), img)
    out = dark_temp_scale_img(100, -10, -5)
    assert isinstance(out, float)
    assert abs(out - 171.47) < 0.1


def test_dark_temp_scale_img_dtype_nan_and_clip():
    img32 = np.array([np.nan, 5.0, 20.0, 1e4, 5e4], dtype=np.float32)
    out32 = dark_temp_scale_img(img32, -10, -5)
    assert out32.dtype == np.float32 and out32.shape == img32.shape
    assert np.isnan(out32[0])
    # Outside 20 .. 1e4 e-/s the slope is frozen at the clip value: equal scale factors.
    factor = out32[1:].astype(float) / img32[1:]
    assert np.isclose(factor[0], factor[1], rtol=1e-6)
    assert np.isclose(factor[2], factor[3], rtol=1e-6)
    # Integer maps come back as float64.
    assert dark_temp_scale_img(np.array([100, 1000]), -10, -5).dtype == np.float64
    # Warmer pixels have a smaller temperature coefficient in this model.
    assert factor[0] > factor[2]


def test_dark_temp_scale_img_broadcast_temperatures():
    out = dark_temp_scale_img(np.array([100.0, 1000.0, 500.0]), -10, np.array([[-5.0], [-15.0]]))
    assert out.shape == (2, 3)
    assert np.allclose(out[0], [171.47, 1668.62, 852.79], atol=0.1)
    assert np.allclose(out[1], [58.31, 599.29, 293.15], atol=0.1)


def test_dark_temp_scale_img_bad_input():
    with pytest.raises(TypeError, match="numeric"):
        dark_temp_scale_img(np.array(["a", "b"]), -10, -5)
