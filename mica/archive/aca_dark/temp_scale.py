"""Dark-current temperature scaling.

* ``dark_temp_scale``: one global factor, dark current x ``DARK_SCALE_4C`` per +4 degC.
* ``dark_temp_scale_img``: the 2023 per-pixel model, where the temperature coefficient
  depends on the pixel's dark current.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mica.errors import InvalidArgumentError

__all__ = ["DARK_SCALE_4C", "dark_temp_scale", "dark_temp_scale_img"]

# Dark current grows by this factor per +4 degC (best global fit; was 1 / 0.62 before ~2013).
DARK_SCALE_4C = 1.0 / 0.70

# 2023 per-pixel model coefficients.
_T0 = 265.15  # K, fixed reference of the fit
_A = -4.88802057e00
_B = -1.66791619e-04
_C = -2.22596103e-01
_D = -2.45720364e-03
_E = 1.90718453e-01
# The fit was only constrained for these dark-current levels; the slope is frozen outside.
_I_MIN, _I_MAX = 20.0, 1.0e4


def _as_output(value: np.ndarray, scalar: bool) -> Any:
    return float(value) if scalar else value


def _numbers(value: ArrayLike, name: str) -> np.ndarray:
    """``value`` as a float64 array; `InvalidArgumentError` naming ``name`` if not numbers."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be numeric, got {value!r}") from None


def dark_temp_scale(
    t_ccd: ArrayLike, t_ccd_ref: ArrayLike = -19.0, scale_4c: float | None = None
) -> Any:
    """Factor converting dark current measured at ``t_ccd`` to ``t_ccd_ref`` (degC).

    ``scale = scale_4c ** ((t_ccd_ref - t_ccd) / 4)``; multiply a map taken at ``t_ccd`` by it.

    Parameters
    ----------
    t_ccd : float or array_like
        CCD temperature of the measurement, degC.
    t_ccd_ref : float or array_like, optional
        CCD temperature to scale to, degC.
    scale_4c : float, optional
        Dark-current factor per 4 degC (default ``DARK_SCALE_4C``).

    Returns
    -------
    float or numpy.ndarray
        Dimensionless factor (scalars give a float, arrays broadcast).

    Examples
    --------
    >>> from mica.archive.aca_dark.temp_scale import dark_temp_scale
    >>> round(dark_temp_scale(-10.0, -15.0), 4)
    0.6403
    """
    if scale_4c is None:
        scale_4c = DARK_SCALE_4C
    scale = _numbers(scale_4c, "scale_4c")
    if scale.ndim or not np.isfinite(scale) or scale <= 0:
        raise InvalidArgumentError(f"scale_4c must be a positive finite number, got {scale_4c!r}")
    scale_4c = float(scale)
    t = _numbers(t_ccd, "t_ccd")
    t_ref = _numbers(t_ccd_ref, "t_ccd_ref")
    out = np.power(scale_4c, (t_ref - t) / 4.0)
    return _as_output(out, out.ndim == 0)


def dark_temp_scale_img(img: ArrayLike, t_ccd: ArrayLike, t_ccd_ref: ArrayLike) -> Any:
    """Scale dark current ``img`` (e-/s) from ``t_ccd`` to ``t_ccd_ref`` (degC), per pixel.

    2023 model: ``out = I * exp(s * (t_ccd_ref - t_ccd))`` with ``s`` a quadratic in
    ``y = ln(clip(I, 20, 1e4)) - e * T0``.  Scalar in -> float out; arrays keep a floating
    input dtype (float32 maps stay float32), otherwise float64.  NaN stays NaN.

    Parameters
    ----------
    img : array_like
        Dark current, e-/s.
    t_ccd, t_ccd_ref : float or array_like
        CCD temperature of the measurement and the one to scale to, degC.

    Returns
    -------
    float or numpy.ndarray
        Dark current at ``t_ccd_ref``, e-/s.

    Examples
    --------
    >>> import numpy as np
    >>> from mica.archive.aca_dark.temp_scale import dark_temp_scale_img
    >>> out = dark_temp_scale_img(np.array([50.0, 500.0], dtype=np.float32), -10.0, -15.0)
    >>> out.dtype, bool(np.all(out < [50.0, 500.0]))
    (dtype('float32'), True)
    """
    arr = np.asarray(img)
    if arr.dtype.kind not in "iuf":
        raise InvalidArgumentError(f"img must be numeric, got dtype {arr.dtype}")
    scalar = arr.ndim == 0 and np.ndim(t_ccd) == 0 and np.ndim(t_ccd_ref) == 0
    out_dtype = arr.dtype if arr.dtype.kind == "f" else np.dtype(np.float64)
    values = arr.astype(np.float64, copy=False)
    # Compute in float64 so float32 maps do not lose precision in exp().
    y = np.log(np.clip(values, _I_MIN, _I_MAX)) - _E * _T0
    slope = _A + _B * _T0 + _C * y + _D * y**2
    dt = _numbers(t_ccd_ref, "t_ccd_ref") - _numbers(t_ccd, "t_ccd")
    out = values * np.exp(slope * dt)
    if scalar:
        return float(out)
    return np.asarray(out, dtype=out_dtype)
