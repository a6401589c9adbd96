"""A/D thermistor calibration of the ACA header-3 words (spec aca_hdr3.md section 3.2).

Shared by the decoder (`aca_hdr3`) and the simulator's encoder, so both use one table.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline

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
# Not-a-knot cubic spline: identical (1e-13) to the original's interp1d(kind='cubic').
_COUNTS_TO_DEGC = CubicSpline(AD_COUNTS, AD_DEGC, bc_type="not-a-knot", extrapolate=False)
# Dense inverse table for the simulator (the spline is monotonic over the valid range).
_GRID = np.arange(AD_COUNTS[0], AD_COUNTS[-1] + 1.0)
_GRID_DEGC = _COUNTS_TO_DEGC(_GRID)


def ad_to_degc(counts: np.ndarray | float) -> np.ndarray:
    """Signed A/D word -> degC; NaN outside 2085..15728 counts (no extrapolation)."""
    return _COUNTS_TO_DEGC(np.asarray(counts, dtype=np.float64))


def degc_to_ad(degc: np.ndarray | float) -> np.ndarray:
    """degC -> nearest A/D count (int32), clipped to the calibrated range (-40 .. 80 C)."""
    t = np.clip(np.asarray(degc, dtype=np.float64), -40.0, 80.0)
    # _GRID_DEGC decreases with count: interpolate on the reversed arrays.
    counts = np.interp(t, _GRID_DEGC[::-1], _GRID[::-1])
    return np.rint(counts).astype(np.int32)
