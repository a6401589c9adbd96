"""Resolve an obsid to its time interval."""

from __future__ import annotations

from pathlib import Path


def obsid_interval(obsid: int, data_root: str | Path | None = None) -> tuple[float, float]:
    """(tstart, tstop) in CXC seconds of an observation.

    From the obspar archive when it holds the obsid (``data_root`` names the obspar folder;
    default ``<archive>/obspar``; all OBIs of the default revision), else from the mission
    schedule of the simulated upstream (the original used kadi dwells, unavailable outside
    the CXC).
    """
    from mica.archive.obspar import obsid_interval as obspar_interval
    from mica.engine.obsid_layout import check_obsid
    from mica.errors import MissingArchiveError

    obsid = check_obsid(obsid)
    try:
        interval = obspar_interval(obsid, data_root=data_root)
    except MissingArchiveError:  # no obspar archive yet: as one without the obsid
        interval = None
    if interval is not None:
        return interval
    from mica.sim.mission import default_mission

    try:
        obs = default_mission().observation(obsid)
    except KeyError:
        raise ValueError(
            f"obsid {obsid} is neither in the obspar archive nor a known observation"
        ) from None
    return obs.tstart, obs.tstop
