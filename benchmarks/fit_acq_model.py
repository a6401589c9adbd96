"""Fit the simulated acquisition-success model to the real 2000-2014 acquisitions.

Reads ``tests/data/acq_outcomes_2000_2014.fits.gz`` (166,373 flight acquisitions: mag,
warm_pix, fail) and fits, by maximum likelihood, the probit model of `mica.sim.acq_model`:
``p_fail = Phi(offset(m10) + scale(m10) * warm_frac)`` with quadratic offset/scale in
``m10 = mag - 10`` (the SOTA form; the box and colour terms are fixed, the table has neither).
Prints the parameters to paste into ``mica/sim/acq_model.py`` (``FIT_PARS``).

Run: ``python benchmarks/fit_acq_model.py``
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.table import Table
from scipy.optimize import minimize
from scipy.stats import norm

from mica.sim.acq_model import probit_fail

TABLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "acq_outcomes_2000_2014.fits.gz"


def load(path: Path = TABLE) -> Table:
    """The flight table (mag, warm_pix, fail), rows with finite values."""
    t = Table.read(path)
    ok = np.isfinite(t["mag"]) & np.isfinite(t["warm_pix"])
    return t[ok]


def fit(t: Table) -> np.ndarray:
    """Maximum-likelihood parameters of `probit_fail` (box 120", normal colour)."""
    mag = np.asarray(t["mag"], float)
    wf = np.asarray(t["warm_pix"], float)
    fail = np.asarray(t["fail"], bool)

    def nll(p: np.ndarray) -> float:
        x = probit_fail(p, mag, wf)
        return -float(np.sum(norm.logcdf(np.where(fail, x, -x))))

    p0 = np.array([-2.0, 1.0, 0.3, 5.0, 5.0, 0.0])
    res = minimize(nll, p0, method="Nelder-Mead", options={"maxiter": 20000, "xatol": 1e-5})
    res = minimize(nll, res.x, method="BFGS")
    return res.x


def main() -> None:
    t = load()
    pars = fit(t)
    print(f"{len(t)} flight acquisitions, fail rate {np.mean(t['fail']):.4f}")
    print("FIT_PARS = (" + ", ".join(f"{p:.5f}" for p in pars) + ")")


if __name__ == "__main__":
    main()
