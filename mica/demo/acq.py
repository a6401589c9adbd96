"""The acquisition-statistics part of `mica demo`: two plots.

* acquisition failure rate against magnitude: the statistics of a sample of the simulated
  mission 2000-2014 (binomial 1-sigma intervals; an upper limit for a bin without failures)
  beside the real 2000-2014 flight table
  (``tests/data/acq_outcomes_2000_2014.fits.gz``, drawn when the repository holds it);
* the dy/dz distribution of identified stars at the guide transition, against the OBC attitude
  before (dy, dz) and after (cdy, cdz) the one-shot correction.

Rows come from the archive's acq-stats table when ``<data_root>/acq_stats/acq_stats.h5``
exists, else from the sample computed here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from mica.plot import save_figure

__all__ = ["demo_acq", "wilson_interval", "FLIGHT_TABLE", "MAG_EDGES"]

FLIGHT_TABLE = Path(__file__).resolve().parents[2] / "tests/data/acq_outcomes_2000_2014.fits.gz"
MAG_EDGES = np.array([6.0, 8.0, 8.5, 9.0, 9.5, 9.75, 10.0, 10.15, 10.3, 10.45, 10.6, 11.0])


def _sample(every: int) -> np.ndarray:
    from mica.sim.pcad import SimProvider
    from mica.stats._acq import calc_acq_stats
    from mica.stats.inputs import InputError
    from mica.time import to_secs

    p = SimProvider()
    rows = []
    for obsid, _ in p.obsids(float(to_secs("2000:110")), float(to_secs("2014:180")))[::every]:
        try:
            rows.append(calc_acq_stats(p, obsid, 0))
        except InputError:
            continue
    return np.concatenate(rows)


def _rates(mag: np.ndarray, fail: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per magnitude bin (of at least 5 stars): the mean magnitude, the number of stars
    and of failures."""
    k = np.digitize(mag, MAG_EDGES) - 1
    centre, stars, failures = [], [], []
    for b in range(len(MAG_EDGES) - 1):
        f = fail[k == b]
        if len(f) < 5:
            continue
        centre.append(np.mean(mag[k == b]))
        stars.append(len(f))
        failures.append(int(np.count_nonzero(f)))
    return np.array(centre), np.array(stars), np.array(failures)


def wilson_interval(failures: np.ndarray, n: np.ndarray, z: float = 1.0) -> tuple[np.ndarray, ...]:
    """The binomial rate ``failures / n`` and its Wilson score interval (``z`` sigma).

    Unlike rate +- sqrt(rate (1 - rate) / n), the interval never reaches below 0 while a
    failure was seen, so every error bar has an end on a log axis; with no failure its
    lower end is 0 and its upper end, 1 / (n + 1) at 1 sigma, is the bin's upper limit.
    """
    failures, n = np.asarray(failures, dtype=float), np.asarray(n, dtype=float)
    rate = failures / n
    z2n = z * z / n
    centre = (rate + z2n / 2) / (1 + z2n)
    half = z * np.sqrt(rate * (1 - rate) / n + z2n / (4 * n)) / (1 + z2n)
    return rate, np.clip(centre - half, 0.0, None), centre + half


def _plot_rates(
    ax: Any, mag: np.ndarray, fail: np.ndarray, label: str, shift: float = 0.0, **style: Any
) -> None:
    """Failure rates (%) per magnitude bin with 1-sigma error bars, drawn ``shift`` mag to
    the right; a bin without failures (rate 0, off a log axis) is drawn as its upper
    limit, a downward triangle."""
    centre, n, failures = _rates(mag, fail)
    centre = centre + shift
    rate, lo, hi = wilson_interval(failures, n)
    seen = failures > 0
    bars = ax.errorbar(centre[seen], 100 * rate[seen],
                       100 * np.array([rate[seen] - lo[seen], hi[seen] - rate[seen]]),
                       label=f"{label}: rate, 1-sigma interval", **style)  # fmt: skip
    if np.any(~seen):
        ax.plot(centre[~seen], 100 * hi[~seen], "v", color=bars.lines[0].get_color(),
                mfc="none", label=f"{label}: no failure, 1-sigma upper limit")  # fmt: skip


def demo_acq(data_root: Path, out: Path, every: int = 40, keep: list | None = None) -> list[Path]:
    """Write ``acq_fail_vs_mag.png`` and ``acq_dy_dz.png`` into ``out`` (150 dpi).

    Parameters
    ----------
    data_root : Path
        The archive (its ``acq_stats/`` table, when present, gives the dy/dz rows).
    out : Path
        Folder of the plots (created).
    every : int
        One observation in ``every`` of 2000-2014 for the failure-rate sample.
    keep : list, optional
        Receives the figures, left open (else they are closed once saved).
    """
    from mica.stats.acq_product import ACQ_STATS

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sample = _sample(every)
    table = ACQ_STATS.table(Path(data_root) / ACQ_STATS.folder)
    rows = table.read() if table.exists() else sample
    paths = []

    fig, ax = plt.subplots(figsize=(7, 4.8), layout="tight")  # below the simulated mark
    _plot_rates(ax, sample["mag_aca"], ~sample["acqid"],
                f"simulated ({len(sample)} acquisitions)", fmt="o")  # fmt: skip
    if FLIGHT_TABLE.exists():
        from astropy.table import Table

        t = Table.read(FLIGHT_TABLE)
        label = f"flight 2000-2014 ({len(t)} acquisitions)"
        mag, fail = np.asarray(t["mag"]), np.asarray(t["fail"], bool)
        _plot_rates(ax, mag, fail, label, shift=0.03, fmt="s", mfc="none")
    ax.set_yscale("log")
    ax.set_xlabel("star magnitude (ACA)")
    ax.set_ylabel("acquisition failure rate (%)")
    ax.set_title("Acquisition failures (not identified) against magnitude, 2000-2014")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    paths.append(save_figure(fig, out / "acq_fail_vs_mag.png", simulated=True, keep=keep))

    ok = rows[rows["acqid"] & (rows["img_func"] == b"star")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), sharey=True, layout="tight")
    for ax, (a, b, label) in zip(
        axes, (("dy", "dz", "OBC attitude before the one-shot"), ("cdy", "cdz", "corrected"))
    ):
        lim = max(5.0, float(np.percentile(np.abs(np.r_[ok[a], ok[b]]), 99)))
        bins = np.linspace(-lim, lim, 61)
        ax.hist(ok[a], bins, histtype="step", label=a)
        ax.hist(ok[b], bins, histtype="step", label=b)
        ax.set_xlabel("residual at the guide transition (arcsec)")
        ax.set_title(label)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel(f"identified stars ({len(ok)})")
    paths.append(save_figure(fig, out / "acq_dy_dz.png", simulated=True, keep=keep))
    return paths
