"""Resolve an obsid to its time interval, from archived data only.

In order: the obspar archive (all OBIs of the default revision); else the archive's source
when it knows the mission schedule: the public Ocat (``ocatDetails``: start date and
exposure) when the archives were filled from ``cda``, the simulated schedule when they are
simulated (``archive.json`` says so; `mica.engine.provenance`). Otherwise an error naming the
command that archives the obsid's obspar. A real archive never gets a simulated interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _records(root: Path, near: Path | None) -> list[dict[str, Any]]:
    """The provenance of the obspar folder and of ``near``, else of the product folders
    beside the obspar folder."""
    from mica.engine.provenance import ARCHIVE_JSON, read_provenance

    folders = [root] + ([near] if near is not None else [])
    found = [r for f in folders if (r := read_provenance(f)) is not None]
    if found or not root.parent.is_dir():
        return found
    return [
        r for p in sorted(root.parent.glob(f"*/{ARCHIVE_JSON}")) if (r := read_provenance(p.parent))
    ]


def _source_spec(records: list[dict[str, Any]]) -> str | None:
    """The source whose schedule may be asked: ``sim`` for simulated archives, ``cda[:URL]``
    for real ones filled from the public archive, else None."""
    from mica.engine.provenance import SIMULATED

    kinds = {r.get("kind") for r in records}
    if kinds == {SIMULATED}:
        return "sim"
    if SIMULATED in kinds:
        return None  # mixed folders: never a simulated interval for real data
    cda = [str(r.get("source")) for r in records if str(r.get("source", "")).startswith("cda")]
    return cda[0] if cda else None


def obsid_interval(
    obsid: int, data_root: str | Path | None = None, near: str | Path | None = None
) -> tuple[float, float]:
    """(tstart, tstop) in CXC seconds of an observation.

    See the module docstring for the order of the look-ups.

    Parameters
    ----------
    obsid : int
        Observation id.
    data_root : str or Path, optional
        The obspar folder (default ``$MICA_ARCHIVE/obspar``).
    near : str or Path, optional
        The product folder asking (e.g. the L0 archive), whose provenance counts too.

    Returns
    -------
    tuple of float
        ``(tstart, tstop)`` in CXC seconds.

    Raises
    ------
    MissingDataError
        (a ValueError) When neither the obspar archive nor the archive's source knows the
        obsid; the message names the command that archives its obspar.

    Examples
    --------
    >>> from mica.archive.obsid_times import obsid_interval
    >>> [round(t) for t in obsid_interval(10369)]
    [452486958, 452518702]
    """
    from mica.archive.obspar import obsid_interval as obspar_interval
    from mica.engine.obsid_layout import check_obsid
    from mica.errors import MissingArchiveError, MissingDataError
    from mica.products.obspar import OBSPAR

    obsid = check_obsid(obsid)
    try:
        interval = obspar_interval(obsid, data_root=data_root)
    except MissingArchiveError:  # no obspar archive yet: as one without the obsid
        interval = None
    if interval is not None:
        return interval
    root = OBSPAR.root(data_root)
    spec = _source_spec(_records(root, Path(near).expanduser() if near else None))
    if spec is not None:
        from mica.engine.source import make_source

        # The registry imports the simulator only here, for a simulated archive.
        interval = make_source(spec).obsid_interval(obsid)
        if interval is not None:
            return interval
    known = f"the {spec} schedule" if spec else "a schedule of the archive's source"
    raise MissingDataError(
        f"obsid {obsid} is neither in the obspar archive at {root} nor in {known}: "
        f"archive its obspar first with `mica update obspar --obsid {obsid} --source SPEC` "
        "(sim | dir:PATH | arc5gl)"
    )
