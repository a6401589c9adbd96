"""The simulated acquisition-success model, fitted to real flight acquisitions.

``p_fail = Phi(offset(m10) + scale(m10) * warm_frac + box(halfw) + red)``: the SOTA form
(`mica.archive.aca_dark.dark_model.sota_model_acq_prob`) with quadratic offset and scale in
``m10 = max(mag, 8.5) - 10``. ``FIT_PARS`` come from ``benchmarks/fit_acq_model.py`` on the 166,373
acquisitions 2000-2014 of ``tests/data/acq_outcomes_2000_2014.fits.gz`` (that table holds
neither box size nor colour: the box term is the flight `get_box_delta`, 0 at 120 arcsec, and
B-V = 1.5 stars get a fixed probit offset).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from mica.archive.aca_dark.dark_model import get_box_delta

__all__ = ["FIT_PARS", "RED_DELTA", "probit_fail", "p_fail"]

#: (offset c0, c1, c2, scale s0, s1, s2), fitted by benchmarks/fit_acq_model.py
FIT_PARS = (-2.10973, 0.83116, 0.42895, 8.83058, 5.86229, -0.67773)
#: probit offset of B-V = 1.5 stars (unknown colour, often red: their mags are less certain)
RED_DELTA = 0.35


def probit_fail(pars, mag, warm_frac) -> np.ndarray:
    """The probit of the failure probability (box 120 arcsec, normal colour)."""
    c0, c1, c2, s0, s1, s2 = pars
    # stars brighter than 8.5 mag fail as 8.5 mag ones (no quadratic upturn where few are)
    m10 = np.clip(np.asarray(mag, dtype=float), 8.5, None) - 10.0
    wf = np.asarray(warm_frac, dtype=float)
    return c0 + c1 * m10 + c2 * m10**2 + (s0 + s1 * m10 + s2 * m10**2) * wf


def p_fail(mag, warm_frac, halfw=120, color=0.6) -> np.ndarray:
    """Probability that the OBC does not identify a star of ``mag`` (ACA) in its search box.

    Parameters
    ----------
    mag, warm_frac, halfw, color : array-like
        ACA magnitude, N100 warm-pixel fraction, search-box half-width (arcsec), AGASC COLOR1.
    """
    x = probit_fail(FIT_PARS, mag, warm_frac) + np.asarray(get_box_delta(halfw), dtype=float)
    x = x + np.where(np.isclose(color, 1.5), RED_DELTA, 0.0)
    return norm.cdf(x)
