"""The simulated mission's dark-current calibrations: when they happen and where they point.

A pure function of the mission seed (`plan_dark_cals`, held by `Mission.dark_cals`): about
four calibrations a year from 1999:223 to the mission end, with the known real ids
(1999223, 2006329, 2007006, 2007069, 2007251, 2022069, 2022104,
2022133; four in 2007; three in 2019:001-160, the last one in the ACDC era). A calibration is
``N_REPLICAS`` replicas of 800-1000 s (ACA in calibration mode: no image telemetry) whose
starts are 1900-2300 s apart, so an event lasts ~2.5 h (kadi's minimum is 8000 s). Generic
calibrations keep away from the days and obsids the examples and tests use. The replica
simulator (`mica.sim.aca_dark`) and the L0 simulator (`Mission.dark_cal_windows`) read the
schedule from the mission.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from erfa import ErfaWarning

from mica.time import SECONDS_PER_DAY as _DAY
from mica.time import to_date, to_secs

if TYPE_CHECKING:
    from mica.sim.mission import Mission

__all__ = ["DarkCalPlan", "N_REPLICAS", "plan_dark_cals"]

N_REPLICAS = 5

# Known real ids and the full day lists of the years holding them, so that
# the id selection tests hold (e.g. no calibration between 2007069 and 2007251).
_KNOWN_YEARS = {
    1999: (223, 320),
    2006: (35, 125, 215, 329),
    2007: (6, 69, 251, 340),
    2019: (15, 85, 155, 245, 335),
    2022: (10, 69, 104, 133, 220, 310),
}
_KNOWN_START = {"2007006": "2007:006:01:56:46.817"}  # the real event start, a test value
# Ecliptic latitudes of the classic test calibrations (real 2007 and 2019 'eb').
_KNOWN_EB = {
    "2007006": 24.6,
    "2007069": 25.89,
    "2007251": 51.13,
    "2007340": 1.9,
    "2019015": 1.82,
    "2019085": -49.53,
}
# Days used by the L0/hdr3/demo examples and tests: generic calibrations keep away from them
# (a calibration reshapes the L0 files of the observations it overlaps).
_PROTECTED_DAYS = (
    "1999:300", "2001:046", "2003:100", "2003:215", "2005:001", "2005:100", "2005:200",
    "2008:100", "2008:200", "2010:001", "2010:100", "2011:001", "2011:010", "2012:001",
    "2012:005", "2012:020", "2012:030", "2012:100", "2012:125", "2012:270", "2012:366",
    "2013:001", "2014:001", "2014:100", "2015:001", "2016:001", "2016:100", "2017:001",
    "2017:010", "2017:185", "2018:001", "2018:100", "2019:272",
)  # fmt: skip
_PROTECTED_OBSIDS = (3552, 5438, 2121, 6000, 7000, 7001)
_GENERIC_DOYS = (40, 130, 220, 310)


@dataclass(frozen=True)
class DarkCalPlan:
    """One simulated calibration: id, replica intervals (CXC s) and pointing choice."""

    dark_id: str
    replicas: tuple[tuple[float, float], ...]
    el: float  # ecliptic longitude (deg) of the pointing
    eb: float  # ecliptic latitude (deg)
    mission_seed: int
    day: float  # CXC seconds of 00:00 UTC of the id's day (a replica file's name time)

    @property
    def tstart(self) -> float:
        return self.replicas[0][0]

    @property
    def tstop(self) -> float:
        return self.replicas[-1][1]


def _protected(mission: Mission) -> np.ndarray:
    """(n, 2) CXC-second intervals a generic calibration must not touch."""
    days = np.asarray(to_secs(np.array(_PROTECTED_DAYS)), dtype=np.float64)
    spans = [np.stack([days - 2 * _DAY, days + 3 * _DAY], axis=1)]
    for obsid in _PROTECTED_OBSIDS:
        try:
            obs = mission.observation(obsid)
        except KeyError:
            continue
        spans.append(np.array([[obs.tstart - 2 * _DAY, obs.tstop + 2 * _DAY]]))
    return np.concatenate(spans)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def plan_dark_cals(mission: Mission) -> tuple[DarkCalPlan, ...]:
    """Every calibration of ``mission``, in time order: a pure function of its seed.

    `Mission.dark_cals` holds the result (computed once per mission).
    """
    seed = mission.seed
    rng = np.random.default_rng([seed, 11])
    protected = _protected(mission)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ErfaWarning)  # dates past the leap-second table
        first_year = int(to_date(mission.t_begin)[:4])
        last_year = int(to_date(mission.t_end - _DAY)[:4])
        years = np.arange(first_year, last_year + 2)
        jan1 = dict(zip(years.tolist(), to_secs(np.array([f"{y}:001" for y in years]))))
    # Candidates (year, doy, draws) first; dates become CXC seconds in one vectorised call.
    cands = []
    for year in range(first_year, last_year + 1):
        known = year in _KNOWN_YEARS
        for doy in _KNOWN_YEARS.get(year, _GENERIC_DOYS):
            jitter = 0 if known else int(rng.integers(-15, 16))
            draws = (
                float(rng.uniform(0.05, 0.55)),  # start time within the day
                rng.uniform(1900.0, 2300.0, N_REPLICAS - 1),  # replica start spacing
                rng.uniform(800.0, 1000.0, N_REPLICAS),  # replica durations
                float(rng.uniform(0.0, 360.0)),
                float(np.degrees(np.arcsin(rng.uniform(-1.0, 1.0)))),
            )
            y, d = year, min(max(doy + jitter, 1), 365)
            if not known:
                # Step a week at a time out of protected spans (tests and examples use them).
                while True:
                    t = jan1[y] + (d - 1) * _DAY  # to within leap seconds: enough here
                    if not np.any((t + _DAY > protected[:, 0]) & (t < protected[:, 1])):
                        break
                    d += 7
                    if d > (366 if _is_leap(y) else 365):
                        d -= 366 if _is_leap(y) else 365
                        y += 1
            cands.append((f"{y}{d:03d}", f"{y}:{d:03d}", draws))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ErfaWarning)
        days = to_secs(np.array([c[1] for c in cands]))
        known_t0 = {k: to_secs(v) for k, v in _KNOWN_START.items()}
    plans = []
    for (dark_id, _, (fraction, gaps, durs, el, eb)), day in zip(cands, days, strict=True):
        t0 = known_t0.get(dark_id, round(float(day) + fraction * _DAY, 3))
        if t0 < mission.t_begin + 10 * _DAY or t0 > mission.t_end - _DAY:
            continue
        starts = t0 + np.concatenate([[0.0], np.cumsum(gaps)])
        reps = tuple(
            (float(round(s, 3)), float(round(s + d, 3))) for s, d in zip(starts, durs, strict=True)
        )
        eb = _KNOWN_EB.get(dark_id, eb)
        plans.append(DarkCalPlan(dark_id, reps, el, eb, seed, float(day)))
    plans.sort(key=lambda p: p.tstart)
    ids = [p.dark_id for p in plans]
    if len(set(ids)) != len(ids):
        raise RuntimeError("simulated dark-cal schedule has duplicate ids")
    return tuple(plans)
