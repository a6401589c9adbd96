"""The acquisition-statistics part of `mica demo`: two plots.

* acquisition failure rate against magnitude: the statistics of a sample of the simulated
  mission 2000-2014 (binomial error bars) beside the real 2000-2014 flight table
  (``tests/data/acq_outcomes_2000_2014.fits.gz``, drawn when the repository holds it);
* the dy/dz distribution of identified stars at the guide transition, against the OBC attitude
  before (dy, dz) and after (cdy, cdz) the one-shot correction.

Rows come from the archive's acq-stats table when ``<data_root>/acq_stats/acq_stats.h5``
exists, else from the sample computed here.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from mica.plot import save_figure

__all__ = ["demo_acq", "FLIGHT_TABLE", "MAG_EDGES"]

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
    k = np.digitize(mag, MAG_EDGES) - 1
    centre, rate, err = [], [], []
    for b in range(len(MAG_EDGES) - 1):
        f = fail[k == b]
        if len(f) < 5:
            continue
        r = f.mean()
        centre.append(np.mean(mag[k == b]))
        rate.append(r)
        err.append(np.sqrt(max(r * (1 - r), 1 / len(f)) / len(f)))
    return np.array(centre), np.array(rate), np.array(err)


def demo_acq(data_root: Path, out: Path, every: int = 40) -> list[Path]:
    """Write ``acq_fail_vs_mag.png`` and ``acq_dy_dz.png`` into ``out`` (150 dpi).

    Parameters
    ----------
    data_root : Path
        The archive (its ``acq_stats/`` table, when present, gives the dy/dz rows).
    out : Path
        Folder of the plots (created).
    every : int
        One observation in ``every`` of 2000-2014 for the failure-rate sample.
    """
    from mica.stats.acq_product import ACQ_STATS

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sample = _sample(every)
    table = ACQ_STATS.table(Path(data_root) / ACQ_STATS.folder)
    rows = table.read() if table.exists() else sample
    paths = []

    fig, ax = plt.subplots(figsize=(7, 4.5))
    c, r, e = _rates(sample["mag_aca"], ~sample["acqid"])
    ax.errorbar(c, 100 * r, 100 * e, fmt="o", label=f"simulated ({len(sample)} acquisitions)")
    if FLIGHT_TABLE.exists():
        from astropy.table import Table

        t = Table.read(FLIGHT_TABLE)
        c, r, e = _rates(np.asarray(t["mag"]), np.asarray(t["fail"], bool))
        ax.errorbar(c + 0.03, 100 * r, 100 * e, fmt="s", mfc="none",
                    label=f"flight 2000-2014 ({len(t)} acquisitions)")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("star magnitude (ACA)")
    ax.set_ylabel("acquisition failure rate (%)")
    ax.set_title("Acquisition failures (not identified) against magnitude, 2000-2014")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    paths.append(save_figure(fig, out / "acq_fail_vs_mag.png", simulated=True))

    ok = rows[rows["acqid"] & (rows["img_func"] == b"star")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharey=True)
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
    fig.tight_layout()
    paths.append(save_figure(fig, out / "acq_dy_dz.png", simulated=True))
    return paths
