"""A/D thermistor calibration of the ACA header-3 words (cubic spline, NaN out of range).

Shared by the decoder (`aca_hdr3`) and the simulator's encoder, so both use one table.
"""

from __future__ import annotations

import functools

import numpy as np

# (A/D count, degC) points of the ACA thermistor calibration; counts fall as temperature rises.
_AD_POINTS = np.array(
    [
        (15728, -40),
        (15518, -35),
        (15256, -30),
        (14933, -25),
        (14541, -20),
        (14077, -15),
        (13537, -10),
        (12921, -5),
        (12235, 0),
        (11487, 5),
        (10693, 10),
        (9864, 15),
        (9024, 20),
        (8192, 25),
        (7379, 30),
        (6604, 35),
        (5876, 40),
        (5204, 45),
        (4591, 50),
        (4037, 55),
        (3544, 60),
        (3106, 65),
        (2719, 70),
        (2381, 75),
        (2085, 80),
    ],
    dtype=np.float64,
)
_order = np.argsort(_AD_POINTS[:, 0])
AD_COUNTS = _AD_POINTS[_order, 0]
AD_DEGC = _AD_POINTS[_order, 1]


@functools.cache
def _spline() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients (y, b, c, d) per interval of the not-a-knot cubic spline through the
    calibration points: ``y + b t + c t**2 + d t**3`` with ``t = counts - AD_COUNTS[i]``.

    The same spline as scipy's ``CubicSpline(bc_type="not-a-knot")`` (and so the original's
    ``interp1d(kind="cubic")``, to 1e-13), solved here in numpy on first use: scipy's import
    (about 230 ms) was most of a one-shot header-3 script's start-up.
    """
    x, y = AD_COUNTS, AD_DEGC
    n, h = len(x), np.diff(x)
    slope = np.diff(y) / h
    # Second derivatives m: continuity of the first derivative at the interior points, and
    # a continuous third derivative at the second and the last-but-one point (not-a-knot).
    a, rhs = np.zeros((n, n)), np.zeros(n)
    for i in range(1, n - 1):
        a[i, i - 1 : i + 2] = h[i - 1], 2.0 * (h[i - 1] + h[i]), h[i]
        rhs[i] = 6.0 * (slope[i] - slope[i - 1])
    a[0, :3] = h[1], -(h[0] + h[1]), h[0]
    a[-1, -3:] = h[-1], -(h[-2] + h[-1]), h[-2]
    m = np.linalg.solve(a, rhs)
    b = slope - h * (2.0 * m[:-1] + m[1:]) / 6.0
    return y[:-1], b, m[:-1] / 2.0, np.diff(m) / (6.0 * h)


@functools.cache
def _inverse_table() -> tuple[np.ndarray, np.ndarray]:
    """(counts, degC) at every count of the calibrated range: a dense inverse table for the
    simulator (the spline is monotonic over the valid range)."""
    grid = np.arange(AD_COUNTS[0], AD_COUNTS[-1] + 1.0)
    return grid, ad_to_degc(grid)


def ad_to_degc(counts: np.ndarray | float) -> np.ndarray:
    """Signed A/D word -> degC; NaN outside 2085..15728 counts (no extrapolation)."""
    x = np.asarray(counts, dtype=np.float64)
    y, b, c, d = _spline()
    i = np.clip(np.searchsorted(AD_COUNTS, x, side="right") - 1, 0, len(b) - 1)
    t = x - AD_COUNTS[i]
    out = y[i] + t * (b[i] + t * (c[i] + t * d[i]))
    return np.where((x >= AD_COUNTS[0]) & (x <= AD_COUNTS[-1]), out, np.nan)


def degc_to_ad(degc: np.ndarray | float) -> np.ndarray:
    """degC -> nearest A/D count (int32), clipped to the calibrated range (-40 .. 80 C)."""
    t = np.clip(np.asarray(degc, dtype=np.float64), -40.0, 80.0)
    grid, grid_degc = _inverse_table()
    # degC decreases with count: interpolate on the reversed arrays.
    counts = np.interp(t, grid_degc[::-1], grid[::-1])
    return np.rint(counts).astype(np.int32)
