"""Observation parameters (obspar files) archived per obsid and revision (``<archive>/obspar``).

Layout ``obspar/<CC>/<OOOOO>_v<RR>/axaff<OOOOO>_<OBI>N<RRR>_obs0a.par.gz`` with default and
last links; `mica update obspar` fills it. Every function takes ``data_root`` (the
``obspar`` folder). Unknown obsids give ``None`` (never TypeError), a folder holding no
archive raises `mica.errors.MissingArchiveError`; multi-OBI obsids have
one file per OBI (``obi=`` selects one; the default is the lowest OBI).
"""

from __future__ import annotations

import numbers
import re
from pathlib import Path
from typing import Any

from mica.common import computed_attributes
from mica.config import archive_root
from mica.engine.index import ArchiveIndex, require_archive
from mica.engine.obsid_layout import check_obsid, link_state, obs_dirs
from mica.engine.obsid_read import Revision, query_rows, row_paths
from mica.engine.read import archived_file
from mica.errors import InvalidArgumentError
from mica.products.obspar import OBSPAR, OBSPAR_KEYS, parse_obspar_text
from mica.products.obspar import get_obspar as read_obspar
from mica.time import CxoTimeLike

__all__ = [
    "get_obs_dirs",
    "get_dir",
    "get_obspar_file",
    "get_obspar",
    "get_files",
    "get_obsids",
    "read_obspar",
    "parse_obspar_text",
    "OBSPAR",
]

_CCD_ON = re.compile(r"^ccd[is]\d_on$")


def get_obs_dirs(obsid: int, data_root: str | Path | None = None) -> dict[Any, Any] | None:
    """Revision folders of an obsid, as `mica.archive.asp_l1.get_obs_dirs`.

    Parameters
    ----------
    obsid : int
        Observation id.
    data_root : str or Path, optional
        The ``obspar`` folder (default ``$MICA_ARCHIVE/obspar``).

    Returns
    -------
    dict or None
        ``{'default': dir, <rev>: dir, ..., 'last': dir, 'revisions': [sorted revs]}``, or
        None when nothing of the obsid is archived.

    Examples
    --------
    >>> from mica.archive import obspar
    >>> obspar.get_obs_dirs(10369)['revisions']
    [1]
    """
    return obs_dirs(OBSPAR, obsid, require_archive(OBSPAR.name, OBSPAR.root(data_root)))


def get_dir(obsid: int, data_root: str | Path | None = None) -> str | None:
    """The default revision's folder of an obsid.

    Parameters
    ----------
    obsid : int
        Observation id.
    data_root : str or Path, optional
        The ``obspar`` folder (default ``$MICA_ARCHIVE/obspar``).

    Returns
    -------
    str or None
        The folder, or None when the obsid has no default revision archived.

    Examples
    --------
    >>> from mica.archive import obspar
    >>> obspar.get_dir(10369)
    '.../obspar/10/10369_v01'
    """
    dirs = get_obs_dirs(obsid, data_root)
    return None if dirs is None else dirs.get("default")


def _revision(obsid: int, version: Revision, data_root: str | Path | None) -> int | None:
    """The revision number meant by 'default', 'last' or an int (None: not archived)."""
    if isinstance(version, numbers.Integral) and not isinstance(version, bool):
        version = int(version)
    elif version not in ("default", "last"):
        raise InvalidArgumentError(f"version must be 'default', 'last' or an int, not {version!r}")
    with ArchiveIndex.open_for_reading(OBSPAR, OBSPAR.root(data_root)) as index:
        state = link_state(index, obsid)
        if version == "default":
            return state.default_rev if state else None
        if version == "last":
            return (state.last_rev or state.default_rev) if state else None
        done = index.conn.execute(
            "SELECT 1 FROM revisions WHERE obsid = ? AND revision = ?", (obsid, int(version))
        ).fetchone()
        return int(version) if done else None


def get_obspar_file(
    obsid: int,
    version: Revision = "default",
    obi: int | None = None,
    data_root: str | Path | None = None,
) -> str | None:
    """Path of the obspar file of an obsid.

    Parameters
    ----------
    obsid : int
        Observation id.
    version : 'default', 'last' or int, optional
        The revision.
    obi : int, optional
        The OBI of a multi-OBI obsid (default: the lowest).
    data_root : str or Path, optional
        The ``obspar`` folder (default ``$MICA_ARCHIVE/obspar``).

    Returns
    -------
    str or None
        The gzipped ``.par`` file, or None when not archived.

    Examples
    --------
    >>> from mica.archive import obspar
    >>> obspar.get_obspar_file(10369)
    '.../obspar/10/10369_v01/axaff10369_000N001_obs0a.par.gz'
    """
    obsid = check_obsid(obsid)
    rev = _revision(obsid, version, data_root)
    if rev is None:
        # outside a synced part of the archive: `query_rows` names the sync bringing it
        query_rows(OBSPAR, obsid=obsid, revision="all", data_root=data_root, columns=())
        return None
    rows = query_rows(OBSPAR, obsid=obsid, revision=rev, data_root=data_root, columns=("obi_num",))
    if obi is not None:
        rows = [r for r in rows if r["obi_num"] == int(obi)]
    rows.sort(key=lambda r: (r["obi_num"], r["filename"]))
    return row_paths(OBSPAR, rows[:1], data_root)[0] if rows else None


def get_obspar(
    obsid: int,
    version: Revision = "default",
    obi: int | None = None,
    data_root: str | Path | None = None,
) -> dict[str, Any] | None:
    """Parameters of an obsid's obspar, with typed values, plus ``num_ccd_on``.

    Parameters
    ----------
    obsid : int
        Observation id.
    version : 'default', 'last' or int, optional
        The revision.
    obi : int, optional
        The OBI of a multi-OBI obsid (default: the lowest).
    data_root : str or Path, optional
        The ``obspar`` folder (default ``$MICA_ARCHIVE/obspar``).

    Returns
    -------
    dict or None
        Parameter name -> value (``r`` parameters float, ``i`` int, ``b`` bool, strings
        otherwise; times such as ``tstart`` in CXC seconds, ``ra_nom``/``dec_nom`` in
        degrees), plus ``num_ccd_on`` (count of ACIS CCDs on); None when not archived.

    Examples
    --------
    >>> from mica.archive import obspar
    >>> pars = obspar.get_obspar(10369)
    >>> pars['detector'], pars['num_ccd_on'], round(pars['tstart'])
    ('HRC-S', 0, 452486958)
    """
    path = get_obspar_file(obsid, version, obi, data_root)
    if path is None:
        return None
    with archived_file(path, OBSPAR.root(data_root)):
        pars = read_obspar(path)
    pars["num_ccd_on"] = sum(1 for k, v in pars.items() if _CCD_ON.match(k) and v == "Y")
    return pars


def get_files(
    obsid: int | None = None,
    start: CxoTimeLike = None,
    stop: CxoTimeLike = None,
    revision: Revision = None,
    data_root: str | Path | None = None,
) -> list[str]:
    """Paths of obspar files by obsid or overlapping [start, stop], ordered by tstart.

    Parameters
    ----------
    obsid : int, optional
        Observation id (or give ``start``/``stop``).
    start, stop : CxoTimeLike, optional
        Time range (CXC seconds or dates).
    revision : None, int, 'last' or 'all', optional
        None: the default revision.
    data_root : str or Path, optional
        The ``obspar`` folder (default ``$MICA_ARCHIVE/obspar``).

    Returns
    -------
    list of str
        Paths of the gzipped ``.par`` files.

    Examples
    --------
    >>> from mica.archive import obspar
    >>> len(obspar.get_files(start='2012:125', stop='2012:127'))
    9
    """
    rows = query_rows(OBSPAR, obsid, start, stop, revision, None, data_root, columns=())
    return row_paths(OBSPAR, rows, data_root)


def get_obsids(
    start: CxoTimeLike,
    stop: CxoTimeLike,
    revision: Revision = None,
    data_root: str | Path | None = None,
) -> list[int]:
    """Obsids with an obspar overlapping [start, stop], by tstart, each once (even multi-OBI).

    Parameters
    ----------
    start, stop : CxoTimeLike
        Time range (CXC seconds or dates).
    revision : None, int, 'last' or 'all', optional
        None: the default revision.
    data_root : str or Path, optional
        The ``obspar`` folder (default ``$MICA_ARCHIVE/obspar``).

    Returns
    -------
    list of int

    Examples
    --------
    >>> from mica.archive import obspar
    >>> obspar.get_obsids('2012:125', '2012:127')[:3]
    [9745, 10369, 59723]
    """
    rows = query_rows(OBSPAR, None, start, stop, revision, None, data_root, columns=())
    return list(dict.fromkeys(r["obsid"] for r in rows))


def obsid_interval(obsid: int, data_root: str | Path | None = None) -> tuple[float, float] | None:
    """Time interval of the obsid's default obspars (all OBIs).

    Parameters
    ----------
    obsid : int
        Observation id.
    data_root : str or Path, optional
        The ``obspar`` folder (default ``$MICA_ARCHIVE/obspar``).

    Returns
    -------
    tuple of float or None
        ``(tstart, tstop)`` in CXC seconds, or None when not archived.

    Examples
    --------
    >>> from mica.archive import obspar
    >>> [round(t) for t in obspar.obsid_interval(10369)]
    [452486958, 452518702]
    """
    rows = query_rows(
        OBSPAR, obsid=check_obsid(obsid), data_root=data_root, columns=("tstart", "tstop")
    )
    if not rows:
        return None
    return min(r["tstart"] for r in rows), max(r["tstop"] for r in rows)


# --- The original's module-level names ---------------------------------------------------

#: The index columns the original took from each obspar (`CONFIG` ``cols``).
ARCHFILES_HDR_COLS = ["filename", "obsid", *OBSPAR_KEYS]


def _config() -> dict[str, Any]:
    """The original's ``CONFIG`` keys, with this archive's folders (read at each access);
    `mica.archive.obsid_archive.ObsArchive` takes it."""
    return {
        "data_root": str(OBSPAR.root(None)),
        "temp_root": str(archive_root() / "tempobs"),
        "sql_def": "obspar_def.sql",
        "apstat_table": "obidet_0_5",
        "apstat_id": "obidet_0_5_id",
        "label": "obspar",
        "small": "obspar",
        "small_glob": "axaff*par*",
        "small_ver_regex": r"axaff\d{5}_\d{3}N(\d{3}).*",
        "full": "obspar",
        "filecheck": True,
        "cols": ARCHFILES_HDR_COLS,
        "content_types": ["OBSPAR"],
    }


__getattr__ = computed_attributes(__name__, {"CONFIG": _config})
