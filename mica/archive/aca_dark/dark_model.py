"""ACA dark-current model and star acquisition probabilities.

The model is a smoothed twice-broken power law fitted to dark-current histograms (pixels
per log bin) of maps scaled to -14 C, with parameters linear in time on either side of
2012.0 (fits of 2007-2017 calibrations).  Names follow chandra_aca ``dark_model``,
``darkbins`` and ``star_probs`` so callers of the original find the same API.

Dates are anything ``mica.time`` understands (date strings, CXC seconds, astropy Time),
scalar or array.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.interpolate import CubicSpline
from scipy.optimize import least_squares
from scipy.stats import norm

from mica.errors import InvalidArgumentError, InvalidTimeError
from mica.time import CxoTimeLike, frac_year

from .temp_scale import DARK_SCALE_4C, dark_temp_scale

__all__ = [
    "DARK_SCALE_4C",
    "NPIX",
    "MIN_ACQ_PROB",
    "MAX_ACQ_PROB",
    "WARM_THRESHOLD",
    "AmplitudeFit",
    "acq_success_prob",
    "bin_centers",
    "dark_temp_scale",
    "fit_model_amplitude",
    "get_box_delta",
    "get_dark_hist",
    "get_sbp_pars",
    "get_sbp_pars_2013",
    "get_warm_fracs",
    "guide_count",
    "log_bins",
    "mica_2013_acq_prob",
    "smooth_broken_pow",
    "smooth_twice_broken_pow",
    "snr_mag_for_t_ccd",
    "sota_model_acq_prob",
    "spline_model_acq_prob",
    "synthetic_dark_image",
    "temp_scalefac",
    "warm_threshold",
    "xall",
    "xbins",
]

# ---------------------------------------------------------------------------------------
# 7.1 Binning (chandra_aca ``darkbins``)
# ---------------------------------------------------------------------------------------
log_bins = np.arange(np.log10(2), np.log10(11000), 0.05)  # 75 edges, 2.0 .. 10023.7 e-/s
bins = 10**log_bins
bin_centers = 10 ** ((log_bins[1:] + log_bins[:-1]) / 2)  # 74 geometric centres
xbins = bins
xall = bin_centers

NPIX = 1024**2
CCD_SHAPE = (1024, 1024)
warm_threshold = 100.0  # e-/s, the N100 threshold the acquisition models were fitted with
WARM_THRESHOLD = warm_threshold

# Histogram model reference temperature (degC): all fits used maps scaled to -14 C.
T_CCD_MODEL = -14.0

# Gaussian smoothing kernel in log10 space.  arange(-2.5 sigma, 2.5 sigma, dx) stops at
# +0.65, so the kernel is slightly asymmetric: kept, the reference values depend on it.
_SIGMA = 0.30
_DX = 0.1
xg = np.arange(-2.5 * _SIGMA, 2.5 * _SIGMA, _DX)
yg = np.exp(-0.5 * (xg / _SIGMA) ** 2)
yg /= yg.sum()

# Fixed normalisation point and second break of the twice-broken power law (e-/s).
_X_R = 50.0
_X_B2 = 1000.0

# (mid value at 2012.0, slope before, slope after) per parameter g1, g2, g3, x_b, ampl1.
_SBP_MID_YEAR = 2012.0
_SBP_PAR_FITS = np.array(
    [
        (0.075, -0.00692, -0.0207),  # g1
        (3.32, 0.0203, 0.0),  # g2
        (2.40, 0.061, 0.061),  # g3
        (192.0, 0.1, 0.1),  # x_b
        (18400.0, 1450.0, 742.0),  # ampl1
    ]
)

# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _years(dates: CxoTimeLike) -> np.ndarray:
    """Decimal years of ``dates`` as a float array (0-d for a scalar date)."""
    if dates is None:
        raise InvalidTimeError("date is required (None is ambiguous here: pass a date)")
    if isinstance(dates, (bool, np.bool_)):
        raise InvalidTimeError(f"cannot interpret {dates!r} as a date")
    return np.asarray(frac_year(dates), dtype=np.float64)


def _float_array(value: ArrayLike, name: str) -> np.ndarray:
    """``value`` as a float64 array, with a clear error for non-numeric input."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise InvalidArgumentError(f"{name} must be numeric (scalar or array), got {value!r}")
    return arr.astype(np.float64)


# ---------------------------------------------------------------------------------------
# 7.2 / 7.6 power laws
# ---------------------------------------------------------------------------------------


def _cut(y_full: np.ndarray, x: ArrayLike) -> np.ndarray:
    """Cut a model on ``xall`` to the range covered by ``x`` (which must be drawn from xall)."""
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    imin = np.searchsorted(xall, x[0] - 1e-3)
    imax = np.searchsorted(xall, x[-1] + 1e-3)
    return y_full[..., imin:imax]


def _smooth(y: np.ndarray) -> np.ndarray:
    if y.ndim == 1:
        return np.convolve(y, yg, mode="same")
    return np.array([np.convolve(row, yg, mode="same") for row in y])


def smooth_twice_broken_pow(pars: ArrayLike, x: ArrayLike = xall) -> np.ndarray:
    """Twice-broken power law (pixels per bin at -14 C), smoothed, on the ``xall`` bins.

    ``pars = (g1, g2, g3, x_b, ampl1)``, or an (N, 5) array for N histograms; breaks at
    ``x_b`` and 1000 e-/s, normalised at 50 e-/s.  Returns the part within ``x``'s range.
    """
    p = np.asarray(pars, dtype=np.float64)
    if p.shape[-1:] != (5,) or p.ndim > 2:
        raise InvalidArgumentError(
            f"pars must be (g1, g2, g3, x_b, ampl1) or (N, 5), got shape {p.shape}"
        )
    p2 = np.atleast_2d(p)
    out = np.empty((len(p2), len(xall)))
    for k, (g1, g2, g3, x_b, ampl1) in enumerate(p2):
        y = ampl1 * (xall / _X_R) ** (-g1)
        i0, i1 = np.searchsorted(xall, [x_b, _X_B2])
        ampl2 = ampl1 * (x_b / _X_R) ** (g2 - g1)
        y[i0:i1] = ampl2 * (xall[i0:i1] / _X_R) ** (-g2)
        ampl3 = ampl2 * (_X_B2 / _X_R) ** (g3 - g2)
        y[i1:] = ampl3 * (xall[i1:] / _X_R) ** (-g3)
        out[k] = y
    out = _cut(_smooth(out), x)
    return out[0] if p.ndim == 1 else out


def smooth_broken_pow(pars: ArrayLike, x: ArrayLike = xall) -> np.ndarray:
    """Once-broken power law of the 2013-2016 model, smoothed; ``pars = (g1, g2, x_b, x_r, ampl1)``.

    Returns the part within ``x``'s range of the ``xall`` bins.
    """
    g1, g2, x_b, x_r, ampl1 = (float(v) for v in np.asarray(pars, dtype=np.float64))
    ampl2 = ampl1 * (x_b / x_r) ** (g2 - g1)
    y = ampl1 * (xall / x_r) ** (-g1)
    above = xall > x_b
    y[above] = ampl2 * (xall[above] / x_r) ** (-g2)
    return _cut(_smooth(y), x)


# ---------------------------------------------------------------------------------------
# 7.3 / 7.6 parameters versus time
# ---------------------------------------------------------------------------------------


def get_sbp_pars(dates: CxoTimeLike) -> np.ndarray:
    """Smoothed twice-broken power-law parameters ``(g1, g2, g3, x_b, ampl1)`` at ``dates``.

    Each parameter is linear in ``frac_year - 2012`` with separate slopes before and after
    2012.0.  Fitted to 2007-2017 calibrations: earlier dates are extrapolations (the
    amplitude drops to ~1000 by 2000).  Returns shape (5,) for a scalar date, else (..., 5).
    """
    dyears = _years(dates) - _SBP_MID_YEAR
    mid, pre, post = _SBP_PAR_FITS.T
    slopes = np.where(dyears[..., None] < 0, pre, post)
    return mid + slopes * dyears[..., None]


# 2013 model: x_b linear in year through these points (flat outside them).
_BPL_2013_XB = np.array(
    [
        (1999.0, 125.0),
        (2000.9, 125.0),
        (2003.5, 110.0),
        (2007.0, 117.8),
        (2007.01, 111.5),
        (2011.5, 125.0),
        (2011.51, 108.8),
        (2013.7, 115.0),
    ]
)


def get_sbp_pars_2013(dates: CxoTimeLike) -> np.ndarray:
    """Once-broken power-law parameters ``(g1, g2, x_b, x_r, ampl)`` of the 2013 model.

    Referenced to -19 C (use with ``temp_scalefac``); kept for comparison with old analyses.
    """
    years = _years(dates)
    x_b = np.interp(years, _BPL_2013_XB[:, 0], _BPL_2013_XB[:, 1])
    ampl = (years - 2000.0) * 1390.2 + 1666.4
    ones = np.ones_like(years)
    return np.stack([0.05 * ones, 3.15 * ones, x_b, _X_R * ones, ampl], axis=-1)


def temp_scalefac(T_ccd: ArrayLike) -> Any:  # noqa: N803 (original name)
    """Deprecated: factor from the nominal -19 C to ``T_ccd``; use ``dark_temp_scale(-19, T)``."""
    warnings.warn(
        "temp_scalefac is deprecated; use dark_temp_scale(-19, t_ccd)",
        DeprecationWarning,
        stacklevel=2,
    )
    return dark_temp_scale(-19.0, T_ccd)


# ---------------------------------------------------------------------------------------
# 7.4 histogram at a temperature and warm fractions
# ---------------------------------------------------------------------------------------


def get_dark_hist(
    date: CxoTimeLike, t_ccd: float, scale_4c: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model dark-current histogram at ``date`` and ``t_ccd`` (degC).

    Returns ``(bin_centers, bin_edges, pixels_per_bin)``: the -14 C histogram with its
    e-/s axis multiplied by ``dark_temp_scale(-14, t_ccd, scale_4c)``.  For array dates
    the counts have shape (N, 74).
    """
    y = smooth_twice_broken_pow(get_sbp_pars(date), xall)
    t = _float_array(t_ccd, "t_ccd")
    if t.ndim != 0:
        raise InvalidArgumentError(
            "get_dark_hist takes a scalar t_ccd (use get_warm_fracs for arrays)"
        )
    scale = dark_temp_scale(T_CCD_MODEL, float(t), scale_4c)
    return xall * scale, xbins * scale, y


def _warm_pixels(thr: np.ndarray, edges: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pixels above ``thr`` for 1-d ``thr``, ``y`` (n, 74) and ``edges`` (n, 75) per row."""
    n_edges = edges.shape[-1]
    # Number of edges below the threshold == searchsorted(side='left'), for every row at once.
    ii = np.count_nonzero(edges < thr[:, None], axis=1)
    # The partial-bin term needs edges ii-1 and ii: the threshold must lie inside the model.
    bad = (ii < 1) | (ii > n_edges - 2)
    if np.any(bad):
        k = int(np.flatnonzero(bad)[0])
        raise InvalidArgumentError(
            f"warm threshold {thr[k]:g} e-/s is outside the model histogram range "
            f"({edges[k, 0]:.3g} .. {edges[k, -2]:.4g} e-/s at that temperature)"
        )
    rows = np.arange(len(thr))
    # Full bins from ii upwards.
    cum = np.cumsum(y[:, ::-1], axis=1)[:, ::-1]
    n = cum[rows, ii]
    # Partial-bin term exactly as the reference: the count of bin ii with the edges of bin
    # ii-1, and logarithms raised to the power m.  The reference values depend on it.
    lx = np.log(thr)
    lx0 = np.log(edges[rows, ii - 1])
    lx1 = np.log(edges[rows, ii])
    y0 = y[rows, ii - 1]
    y1 = y[rows, ii]
    m = (np.log(y1) - np.log(y0)) / (lx1 - lx0)
    partial = y1 * (lx1**m - lx**m) / (lx1**m - lx0**m)
    return n + partial


def _warm_fracs_years(
    thr: np.ndarray, years: np.ndarray, t: np.ndarray, scale_4c: float | None
) -> np.ndarray:
    """Warm fractions for broadcastable thresholds, decimal years and temperatures."""
    shape = np.broadcast_shapes(thr.shape, t.shape, years.shape)
    # Evaluate the histogram once per distinct date, not once per output element.
    uyears, inverse = np.unique(years.ravel(), return_inverse=True)
    mid, pre, post = _SBP_PAR_FITS.T
    dy = uyears[:, None] - _SBP_MID_YEAR
    y_u = np.atleast_2d(smooth_twice_broken_pow(mid + np.where(dy < 0, pre, post) * dy, xall))
    year_idx = np.broadcast_to(inverse.reshape(years.shape), shape).ravel()
    t_b = np.broadcast_to(t, shape).ravel()
    thr_b = np.broadcast_to(thr, shape).ravel()
    scale = np.atleast_1d(dark_temp_scale(T_CCD_MODEL, t_b, scale_4c))
    out = _warm_pixels(thr_b, xbins[None, :] * scale[:, None], y_u[year_idx]) / NPIX
    return out.reshape(shape)


def get_warm_fracs(
    warm_threshold: ArrayLike,
    date: CxoTimeLike = "2013:001:12:00:00",
    t_ccd: ArrayLike = -19.0,
    *,
    T_ccd: ArrayLike | None = None,  # noqa: N803 (chandra_aca keyword name)
    scale_4c: float | None = None,
) -> Any:
    """Model fraction of CCD pixels above ``warm_threshold`` (e-/s) at ``date`` and ``t_ccd``.

    Threshold, date and temperature broadcast together: all scalar -> float, else ndarray.

    Parameters
    ----------
    warm_threshold : float or array_like
        Dark-current threshold, e-/s.
    date : CxoTimeLike, optional
        Date(s) (CXC seconds, date strings, ``Time``).
    t_ccd : float or array_like, optional
        CCD temperature, degC.
    T_ccd : float or array_like, optional
        The original's name for ``t_ccd``.
    scale_4c : float, optional
        Dark-current factor per 4 degC (default ``DARK_SCALE_4C``).

    Returns
    -------
    float or numpy.ndarray
        Fraction of the CCD's pixels above the threshold (0-1).

    Examples
    --------
    >>> from mica.archive.aca_dark import dark_model
    >>> round(dark_model.get_warm_fracs(100, '2012:131', -15.0), 4)
    0.132
    """
    if T_ccd is not None:
        t_ccd = T_ccd
    thr = _check_thresholds(warm_threshold)
    out = _warm_fracs_years(thr, _years(date), _float_array(t_ccd, "t_ccd"), scale_4c)
    return float(out) if out.ndim == 0 else out


def _check_thresholds(warm_threshold: ArrayLike) -> np.ndarray:
    thr = _float_array(warm_threshold, "warm_threshold")
    if np.any(~np.isfinite(thr)) or np.any(thr <= 0):
        raise InvalidArgumentError(
            f"warm_threshold must be positive and finite, got {warm_threshold!r}"
        )
    return thr


# ---------------------------------------------------------------------------------------
# 7.5 synthetic dark map
# ---------------------------------------------------------------------------------------

# Cool (non-warm) population at -14 C for maps generated without the 1999:223 calibration:
# a lognormal (median COOL_MEDIAN e-/s, log-sigma COOL_LOG_SIGMA) plus Gaussian noise,
# clipped at 0 as the archive reader clips.  These are estimates, chosen on a small grid so
# that the mean over seeds of the 2017:010 / -13.55 C counts above 100..3000 e-/s lies within
# ~2 sigma of the reference counts 229413, 89239, 675, 84, 27 (from the real base map).
COOL_MEDIAN = 7.5
COOL_LOG_SIGMA = 0.9
COOL_NOISE = 2.0
# Pixels above this value (e-/s, -14 C) in the base map are warm and get refilled.
_BASE_WARM_LIMIT = 40.0


def _cool_base(rng: np.random.Generator) -> np.ndarray:
    base = COOL_MEDIAN * np.exp(COOL_LOG_SIGMA * rng.standard_normal(NPIX))
    base += COOL_NOISE * rng.standard_normal(NPIX)
    return np.clip(base, 0.0, None)


@functools.lru_cache(maxsize=1)
def _archive_base() -> np.ndarray:
    """The 1999:223 calibration at -14 C, read once per process (read-only; callers copy).

    `MissingArchiveError` when the default dark archive is missing (nothing is cached then).
    """
    # Lazy import: the reader is an optional collaborator, never needed for the model itself.
    from mica.archive.aca_dark.dark_cal import get_dark_cal_image

    img = np.array(
        get_dark_cal_image("1999:223", select="nearest", t_ccd_ref=T_CCD_MODEL), dtype=np.float64
    )
    img.flags.writeable = False
    return img


def synthetic_dark_image(
    date: CxoTimeLike,
    t_ccd_ref: float | None = None,
    *,
    base_image: np.ndarray | Literal["archive"] | None = None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Random 1024x1024 dark map (e-/s) drawn from the model at ``date``.

    The map is at -14 C, or scaled to ``t_ccd_ref`` (degC) if given.  ``base_image`` is the
    cool-pixel background at -14 C: an array of 1024**2 values, ``"archive"`` for the
    1999:223 calibration (the original's choice, needs the archive: `MissingArchiveError`
    without one), or None for a synthetic cool population (``COOL_*``).  Base pixels above
    40 e-/s are refilled from randomly chosen cool pixels; then Poisson counts of the model
    histogram, log-uniform within each bin, are added and the pixels shuffled.  ``rng``: a
    Generator or seed (default: fresh entropy).
    """
    model = smooth_twice_broken_pow(get_sbp_pars(date), xall)
    if model.ndim != 1:
        raise InvalidArgumentError("synthetic_dark_image takes a single date")
    rng = np.random.default_rng(rng)
    if base_image is None:
        dark = _cool_base(rng)
    else:
        raw = (
            _archive_base()
            if isinstance(base_image, str) and base_image == "archive"
            else base_image
        )
        if isinstance(raw, str):
            raise InvalidArgumentError(
                f"base_image must be an array, 'archive' or None, got {raw!r}"
            )
        dark = np.array(raw, dtype=np.float64).ravel()
        if dark.size != NPIX:
            raise InvalidArgumentError(f"base_image must hold {NPIX} pixels, got {dark.size}")

    warm = dark > _BASE_WARM_LIMIT
    cool_idx = np.flatnonzero(~warm)
    if warm.any():
        if cool_idx.size == 0:
            raise InvalidArgumentError("base_image has no cool pixels (<= 40 e-/s) to refill from")
        dark[warm] = dark[cool_idx[rng.integers(0, cool_idx.size, int(warm.sum()))]]

    n_bin = rng.poisson(model)
    excess = int(n_bin.sum()) - NPIX
    if excess > 0:
        # Past ~2025 the extrapolated model holds more pixels than the CCD: drop the excess
        # from the faintest bins (at the background level anyway) so the warm tail is kept.
        warnings.warn(
            f"model histogram at {date!r} holds {excess} more pixels than the CCD; "
            "dropping them from the faintest bins",
            stacklevel=2,
        )
        for i in range(len(n_bin)):
            drop = min(excess, int(n_bin[i]))
            n_bin[i] -= drop
            excess -= drop
            if excess == 0:
                break

    # Bin i contributes n_bin[i] log-uniform values between its edges.
    lo = np.repeat(np.log(xbins[:-1]), n_bin)
    hi = np.repeat(np.log(xbins[1:]), n_bin)
    dark[: lo.size] += np.exp(rng.uniform(lo, hi))

    rng.shuffle(dark)
    dark = dark.reshape(CCD_SHAPE)
    if t_ccd_ref is not None:
        dark *= dark_temp_scale(T_CCD_MODEL, t_ccd_ref)
    return dark


# ---------------------------------------------------------------------------------------
# Fitting the model amplitude to archived calibrations
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AmplitudeFit:
    """Result of ``fit_model_amplitude``.

    ``factor`` multiplies the model amplitude (and so every warm fraction); ``scale_4c`` is
    the temperature factor used (fitted if requested); ``residuals`` are observed minus
    fitted warm fractions and ``rel_residuals`` are observed / fitted - 1, per point.
    """

    factor: float
    factor_err: float
    scale_4c: float
    scale_4c_err: float | None
    predicted: np.ndarray
    observed: np.ndarray
    residuals: np.ndarray
    rel_residuals: np.ndarray


def _points_columns(points: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray | None]:
    """(dates, t_ccd, warm_frac, thresholds-or-None) from a table/mapping or tuple rows."""
    names = None
    if isinstance(points, Mapping):
        names = list(points.keys())
    elif hasattr(points, "colnames"):  # astropy Table
        names = list(points.colnames)
    elif getattr(getattr(points, "dtype", None), "names", None):  # structured array
        names = list(points.dtype.names)
    if names is not None:
        missing = {"date", "t_ccd", "warm_frac"} - set(names)
        if missing:
            raise InvalidArgumentError(f"dark_cal_points lacks column(s) {sorted(missing)}")
        thr = points["warm_threshold"] if "warm_threshold" in names else None
        return points["date"], points["t_ccd"], points["warm_frac"], thr
    if isinstance(points, (str, bytes)) or not isinstance(points, (Sequence, np.ndarray)):
        raise InvalidArgumentError(
            "dark_cal_points must be a table/mapping with date, t_ccd, warm_frac columns "
            "or a sequence of (date, t_ccd, warm_frac[, warm_threshold]) rows"
        )
    rows = list(points)
    widths = {len(r) for r in rows}
    if not rows or not widths <= {3, 4} or len(widths) != 1:
        raise InvalidArgumentError(
            "dark_cal_points rows must all be (date, t_ccd, warm_frac[, threshold])"
        )
    cols = list(zip(*rows, strict=True))
    thr = np.asarray(cols[3], dtype=np.float64) if len(cols) == 4 else None
    return np.asarray(cols[0]), cols[1], cols[2], thr


def fit_model_amplitude(
    dark_cal_points: Any,
    warm_threshold: ArrayLike = 100.0,
    *,
    fit_scale_4c: bool = False,
    scale_4c: float | None = None,
) -> AmplitudeFit:
    """Fit a multiplicative factor on the model amplitude to measured warm fractions.

    ``dark_cal_points``: (date, t_ccd, warm fraction above ``warm_threshold``) per
    calibration, as an astropy Table / mapping / structured array with columns ``date``,
    ``t_ccd``, ``warm_frac`` (optional ``warm_threshold``) or a sequence of tuples.  The
    fit minimises relative residuals (warm fractions span a decade over the mission), so
    the factor is the geometric mean of observed / model.  ``fit_scale_4c`` also fits the
    per-4-degC temperature factor (needs points at different temperatures).
    """
    dates, t_ccd, obs, thr_col = _points_columns(dark_cal_points)
    t = _float_array(t_ccd, "t_ccd").ravel()
    observed = _float_array(obs, "warm_frac").ravel()
    thr = thr_col if thr_col is not None else warm_threshold
    thr = np.broadcast_to(_check_thresholds(thr), observed.shape)
    if not (t.size == observed.size == np.size(np.asarray(dates))):
        raise InvalidArgumentError("date, t_ccd and warm_frac must have the same length")
    if observed.size == 0:
        raise InvalidArgumentError("no dark-cal points to fit")
    if np.any(~np.isfinite(observed)) or np.any(observed <= 0):
        raise InvalidArgumentError("warm fractions must be positive and finite")
    years = _years(np.asarray(dates).ravel()) if np.ndim(dates) else _years(dates).reshape(1)
    s4c0 = DARK_SCALE_4C if scale_4c is None else float(scale_4c)

    def model(s4c: float) -> np.ndarray:
        return _warm_fracs_years(thr, years, t, s4c)

    if not fit_scale_4c:
        pred = model(s4c0)
        log_ratio = np.log(observed / pred)
        factor = float(np.exp(log_ratio.mean()))
        n = observed.size
        err = factor * float(log_ratio.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        s4c, s4c_err = s4c0, None
    else:
        if np.ptp(t) == 0:
            raise InvalidArgumentError("fitting scale_4c needs points at different temperatures")
        if observed.size < 3:
            raise InvalidArgumentError("fitting scale_4c needs at least 3 points")

        def resid(p: np.ndarray) -> np.ndarray:
            return np.log(observed) - (p[0] + np.log(model(float(np.exp(p[1])))))

        sol = least_squares(resid, x0=[0.0, np.log(s4c0)], x_scale=[0.1, 0.1])
        dof = max(observed.size - 2, 1)
        s2 = float(np.sum(sol.fun**2) / dof)
        try:
            cov = np.linalg.inv(sol.jac.T @ sol.jac) * s2
            perr = np.sqrt(np.diag(cov))
        except np.linalg.LinAlgError:
            perr = np.array([np.nan, np.nan])
        factor = float(np.exp(sol.x[0]))
        s4c = float(np.exp(sol.x[1]))
        err, s4c_err = factor * float(perr[0]), s4c * float(perr[1])
        pred = model(s4c)

    fitted = factor * pred
    return AmplitudeFit(
        factor=factor,
        factor_err=err,
        scale_4c=s4c,
        scale_4c_err=s4c_err,
        predicted=fitted,
        observed=observed,
        residuals=observed - fitted,
        rel_residuals=observed / fitted - 1.0,
    )


# ---------------------------------------------------------------------------------------
# 7.7 star acquisition probability
# ---------------------------------------------------------------------------------------

# Any model's success probability is clipped to this range.
MIN_ACQ_PROB = 1e-6
MAX_ACQ_PROB = 0.985
# Failure probability of stars brighter than 8.5 mag in the SOTA model (best fit ~0.006,
# set higher for conservatism).
_SOTA_BRIGHT_P_FAIL = 0.015

# Flight SOTA coefficients, multiple-star filter disabled (FEB0816 loads on):
# (scale s0, s1, s2, offset o0, o1, o2) in m10 = mag - 10.
SOTA_FIT_NO_1P5 = (4.38145, 6.22480, 2.20862, -2.24494, 0.32180, 0.08306)
SOTA_FIT_ONLY_1P5 = (4.73283, 7.63540, 4.56612, -1.49046, 0.53391, -0.37074)
# Historical coefficients for the multiple-star (MS) filter era (before FEB0816 loads), when
# stars flagged MS were rejected and so counted as failures; fit to 2007-2015 (chandra_aca
# ``SOTA_FIT_*_WITH_MS``).  Use them to compare with acquisitions from that era.
SOTA_FIT_NO_1P5_WITH_MS = (
    9.6887121605441173,
    9.1613040261776177,
    -0.41919343599067715,
    -2.3829996965532048,
    0.54998934814773903,
    0.47839260691599156,
)
SOTA_FIT_ONLY_1P5_WITH_MS = (
    8.541709287866361,
    0.44482688155644085,
    -3.5137852251178465,
    -1.3505424393223699,
    1.5278061271148755,
    0.30973569068842272,
)

# 2018 spline model: P0, P1, P2 values at the spline magnitudes.
SPLINE_MAGS = np.array([8.5, 9.25, 10.0, 10.4, 10.7])
SPLINE_FIT_NO_1P5 = np.array(
    [
        [-2.69826, -1.96063, -1.20245, -0.01713, 1.23724],
        [0.07135, 0.12711, 0.14508, 0.59646, 0.64262],
        [0.02341, 0.0, 0.00704, 0.06926, 0.05629],
    ]
)
SPLINE_FIT_1P5 = np.array(
    [
        [-2.56169, -1.65157, -0.26794, 1.00488, 3.52181],
        [0.0, 0.09193, 0.23026, 0.61243, 0.94157],
        [0.00471, 0.00637, 0.01118, 0.07461, 0.09556],
    ]
)
# Zero slope at the bright end, zero curvature at the faint end.
_SPLINES = {
    label: [CubicSpline(SPLINE_MAGS, vals, bc_type=((1, 0.0), (2, 0.0))) for vals in fit]
    for label, fit in (("no_1p5", SPLINE_FIT_NO_1P5), ("1p5", SPLINE_FIT_1P5))
}
SPLINE_T_CCD_MIN = -16.0  # degC, coldest temperature of the spline model's calibration data


def _broadcast(*args: ArrayLike) -> tuple[bool, list[np.ndarray]]:
    scalar = all(np.ndim(a) == 0 for a in args)
    return scalar, [np.atleast_1d(a) for a in np.broadcast_arrays(*args)]


def _is_1p5(color: np.ndarray) -> np.ndarray:
    return np.isclose(color, 1.5, atol=1e-6, rtol=0)


def get_box_delta(halfwidth: ArrayLike) -> Any:
    """Probit failure offset for a search box of ``halfwidth`` arcsec (0 at 120 arcsec)."""
    hw = _float_array(halfwidth, "halfwidth")
    if np.any(hw <= 0):
        raise InvalidArgumentError("halfwidth must be positive (arcsec)")
    b = (hw - 120.0) / 120.0
    out = 0.96 * b - 0.30 * b**2
    return float(out) if out.ndim == 0 else out


def sota_model_acq_prob(
    mag: ArrayLike,
    warm_frac: ArrayLike,
    color: ArrayLike = 0.6,
    halfwidth: ArrayLike = 120,
    ms_filter: bool = False,
) -> Any:
    """SOTA (2017 flight) acquisition success probability from magnitude and N100 warm fraction.

    ``p_fail = Phi(offset(m10) + scale(m10) * warm_frac + box(halfwidth))`` with quadratic
    offset/scale in ``m10 = mag - 10``, separate coefficients for B-V = 1.5 stars; stars
    brighter than 8.5 mag fail at 1.5 %.  Result clipped to [1e-6, 0.985].  ``ms_filter``
    selects the pre-2016 coefficients (multiple-star filter on) instead of the flight ones.
    """
    mag_a = _float_array(mag, "mag")
    wf_a = _float_array(warm_frac, "warm_frac")
    col_a = _float_array(color, "color")
    box = np.asarray(get_box_delta(halfwidth), dtype=np.float64)
    scalar, (mag_a, wf_a, col_a, box) = _broadcast(mag_a, wf_a, col_a, box)
    m10 = mag_a - 10.0
    probit = np.empty_like(m10)
    red = _is_1p5(col_a)
    fit_red, fit_normal = (
        (SOTA_FIT_ONLY_1P5_WITH_MS, SOTA_FIT_NO_1P5_WITH_MS)
        if ms_filter
        else (SOTA_FIT_ONLY_1P5, SOTA_FIT_NO_1P5)
    )
    for mask, c in ((red, fit_red), (~red, fit_normal)):
        scale = c[0] + c[1] * m10[mask] + c[2] * m10[mask] ** 2
        offset = c[3] + c[4] * m10[mask] + c[5] * m10[mask] ** 2
        probit[mask] = offset + scale * wf_a[mask] + box[mask]
    p_fail = norm.cdf(probit)
    p_fail[mag_a < 8.5] = _SOTA_BRIGHT_P_FAIL
    p = np.clip(1.0 - p_fail, MIN_ACQ_PROB, MAX_ACQ_PROB)
    return float(p[0]) if scalar else p


def mica_2013_acq_prob(mag: ArrayLike, warm_frac: ArrayLike) -> Any:
    """Deprecated 2013 mica model: success = 1 - (offset(m10) + scale(m10) * warm_frac).

    ``log10(scale) = -0.491 m10**2 + 0.990 m10 + 0.185``, ``log10(offset) = 0.280 m10**2 +
    0.999 m10 - 1.489`` (the code's 0.999, not the docstring's 0.888).  Not clipped: it
    goes negative for faint stars on a warm CCD, as the original did.
    """
    m10 = _float_array(mag, "mag") - 10.0
    wf = _float_array(warm_frac, "warm_frac")
    scale = 10.0 ** (-0.491 * m10**2 + 0.990 * m10 + 0.185)
    offset = 10.0 ** (0.280 * m10**2 + 0.999 * m10 - 1.489)
    out = 1.0 - (offset + scale * wf)
    return float(out) if np.ndim(out) == 0 else out


def spline_model_acq_prob(
    mag: ArrayLike,
    t_ccd: ArrayLike,
    color: ArrayLike = 0.6,
    halfwidth: ArrayLike = 120,
    probit: bool = False,
) -> Any:
    """2018 spline model acquisition success probability (uses ``t_ccd`` directly).

    ``p_fail = P0 + P1 (t_ccd + 12) + P2 (t_ccd + 12)**2 + box - bright`` (probit), with
    ``P0..P2`` cubic splines in magnitude (clipped below at 8.5); ``probit=True`` returns
    ``-p_fail`` instead of ``Phi(-p_fail)``.  Warns below -16 C (outside its calibration).
    """
    mag_a = _float_array(mag, "mag")
    t_a = _float_array(t_ccd, "t_ccd")
    col_a = _float_array(color, "color")
    box = np.asarray(get_box_delta(halfwidth), dtype=np.float64)
    scalar, (mag_a, t_a, col_a, box) = _broadcast(mag_a, t_a, col_a, box)
    if np.any(t_a < SPLINE_T_CCD_MIN):
        warnings.warn(
            "spline acquisition model is not calibrated below -16 C; use the SOTA model",
            stacklevel=2,
        )
    tc12 = t_a + 12.0
    magc = np.clip(mag_a, 8.5, None)
    # Let a 6th-mag star rank above an 8.5-mag one: up to 0.25 in probit at 6.0 mag.
    bright = (8.5 - np.clip(mag_a, None, 8.5)) / 10.0
    p_fail = np.empty_like(magc)
    red = _is_1p5(col_a)
    for mask, label in ((red, "1p5"), (~red, "no_1p5")):
        if np.any(mask):
            p0, p1, p2 = (f(magc[mask]) for f in _SPLINES[label])
            p_fail[mask] = p0 + p1 * tc12[mask] + p2 * tc12[mask] ** 2 + box[mask] - bright[mask]
    out = -p_fail if probit else norm.cdf(-p_fail)
    return float(out[0]) if scalar else out


def acq_success_prob(
    date: CxoTimeLike,
    t_ccd: ArrayLike,
    mag: ArrayLike,
    halfwidth: ArrayLike = 120,
    color: ArrayLike = 0.6,
    model: Literal["sota", "spline"] = "sota",
    ms_filter: bool = False,
) -> Any:
    """Acquisition success probability of a star at ``date``, CCD temperature and magnitude.

    ``model='sota'`` (default): SOTA model with the N100 warm fraction of the dark model at
    ``date`` and ``t_ccd``; ``'spline'``: 2018 spline model (``date`` unused).  Inputs
    broadcast together; all scalar -> float.  Clipped to [1e-6, 0.985].  ``ms_filter``: SOTA
    coefficients of the multiple-star-filter era (before Feb 2016).
    """
    if model not in ("sota", "spline"):
        raise InvalidArgumentError(f"model must be 'sota' or 'spline', got {model!r}")
    years = _years(date)
    t_a = _float_array(t_ccd, "t_ccd")
    mag_a = _float_array(mag, "mag")
    if model == "sota":
        wf = _warm_fracs_years(np.asarray(WARM_THRESHOLD), years, t_a, None)
        shape = np.broadcast_shapes(np.shape(wf), mag_a.shape, np.shape(halfwidth), np.shape(color))
        p = sota_model_acq_prob(mag_a, wf, color, halfwidth, ms_filter=ms_filter)
    else:
        shape = np.broadcast_shapes(
            years.shape, t_a.shape, mag_a.shape, np.shape(halfwidth), np.shape(color)
        )
        p = spline_model_acq_prob(mag_a, t_a, color, halfwidth)
    p = np.clip(np.broadcast_to(p, shape), MIN_ACQ_PROB, MAX_ACQ_PROB)
    return float(p) if p.ndim == 0 else np.array(p)


# ---------------------------------------------------------------------------------------
# 7.7 guide-star count
# ---------------------------------------------------------------------------------------


def snr_mag_for_t_ccd(
    t_ccd: ArrayLike, ref_mag: ArrayLike, ref_t_ccd: float, scale_4c: float | None = None
) -> Any:
    """Magnitude at ``t_ccd`` with the same signal-to-dark-noise as ``ref_mag`` at ``ref_t_ccd``.

    ``ref_mag - (t_ccd - ref_t_ccd) * log10(scale_4c) / 1.6``.
    """
    s4c = DARK_SCALE_4C if scale_4c is None else float(scale_4c)
    t = _float_array(t_ccd, "t_ccd")
    out = _float_array(ref_mag, "ref_mag") - (t - ref_t_ccd) * np.log10(s4c) / 1.6
    return float(out) if np.ndim(out) == 0 else out


def guide_count(mags: ArrayLike, t_ccd: float, count_9th: bool = False) -> float:
    """Fractional guide-star count of a catalogue at ``t_ccd`` (2018/2019 definition).

    Each star counts 1 between 5.35 mag and a temperature-dependent limit, tapering to 0
    by ~10.35 mag at -10.9 C (9.4 mag with ``count_9th``).
    """
    mags_a = np.atleast_1d(_float_array(mags, "mags"))
    base = 9.0 if count_9th else 9.95
    faint = snr_mag_for_t_ccd(float(t_ccd), base + np.array([0.0, 0.2, 0.3, 0.4]), -10.9)
    ref_mags = np.concatenate([[5.25, 5.35], faint])
    ref_counts = [0.0, 1.0005, 1.0, 0.75, 0.5, 0.0]
    return float(np.sum(np.interp(mags_a, ref_mags, ref_counts)))
