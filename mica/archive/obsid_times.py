"""Resolve an obsid to its time interval, from archived data only.

The interval is that of the obsid's default obspars in the obspar archive (all OBIs:
`mica.archive.obspar.obsid_interval`). The other archives cannot stand in: the L0 index
holds no obsid, and the aspect L1 files span the aspect solution rather than the
observation. A reader never asks a source: an obsid the obspar archive does not hold is a
`MissingDataError` naming the update that archives its obspar.
"""

from __future__ import annotations

from pathlib import Path

from mica.errors import MissingArchiveError, MissingDataError

__all__ = ["obsid_interval"]


def obsid_interval(obsid: int, data_root: str | Path | None = None) -> tuple[float, float]:
    """(tstart, tstop) in CXC seconds of an observation, from the obspar archive.

    Parameters
    ----------
    obsid : int
        Observation id.
    data_root : str or Path, optional
        The obspar folder (default ``$MICA_ARCHIVE/obspar``).

    Returns
    -------
    tuple of float
        ``(tstart, tstop)`` in CXC seconds: the span of the obsid's default obspars.

    Raises
    ------
    MissingDataError
        (a KeyError and a ValueError) When the obspar archive does not hold the obsid, or
        there is no obspar archive; the message names the command that archives its obspar.

    Examples
    --------
    >>> from mica.archive.obsid_times import obsid_interval
    >>> [round(t) for t in obsid_interval(10369)]
    [452486958, 452518702]
    """
    # imported here: the obspar reader loads astropy.io.fits, which a time-range fetch of
    # `aca_l0` or `aca_hdr3` (importing this module) does not need
    from mica.archive.obspar import obsid_interval as obspar_interval
    from mica.engine.obsid_layout import check_obsid
    from mica.products.obspar import OBSPAR

    obsid = check_obsid(obsid)
    try:
        interval = obspar_interval(obsid, data_root=data_root)
    except MissingArchiveError:  # no obspar archive yet: as one without the obsid
        interval = None
    if interval is None:
        raise MissingDataError(
            f"obsid {obsid} is not in the obspar archive at {OBSPAR.root(data_root)}: "
            f"archive its obspar first with `mica update obspar --obsid {obsid}` (with "
            "`--source SPEC`, e.g. cda, arc5gl, dir:PATH or sim, when the archive records none)"
        )
    return interval
