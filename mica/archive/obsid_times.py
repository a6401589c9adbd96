"""Resolve an obsid to its time interval."""

from __future__ import annotations

from pathlib import Path


def obsid_interval(obsid: int, data_root: str | Path | None = None) -> tuple[float, float]:
    """(tstart, tstop) in CXC seconds of an observation.

    Taken from the mission schedule of the simulated upstream, which is this package's
    record of observations (the original used kadi dwells, unavailable outside the CXC).
    """
    from mica.sim.mission import default_mission

    try:
        obs = default_mission().observation(int(obsid))
    except KeyError:
        raise ValueError(f"obsid {obsid} is not a known observation") from None
    return obs.tstart, obs.tstop
