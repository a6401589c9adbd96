"""Aspect level-1 products archived per obsid and revision (``<archive>/asp1``).

Layout ``asp1/<CC>/<OOOOO>_v<RR>/`` with ``<OOOOO>`` (default) and ``<OOOOO>_last`` links;
`mica update asp-l1` fills it. Every function takes ``data_root`` (the ``asp1`` folder;
default ``$MICA_ARCHIVE/asp1``). Where this differs from the original mica, see the migration
notes of the documentation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from mica import quaternion
from mica.common import computed_attributes
from mica.config import archive_root
from mica.engine.index import require_archive
from mica.engine.obsid_layout import check_obsid, obs_dirs
from mica.engine.obsid_read import Revision, query_rows, row_paths
from mica.engine.read import archived_fits
from mica.errors import InvalidArgumentError, MissingDataError
from mica.products.asp_l1 import ASP_ALL_CONTENTS, ASP_DEFAULT_CONTENTS, ASP_L1, proc_rows
from mica.time import CxoTimeLike

__all__ = [
    "get_obs_dirs",
    "get_dir",
    "get_files",
    "get_atts",
    "get_atts_from_files",
    "get_processing",
    "ASP_L1",
    "ASP_DEFAULT_CONTENTS",
    "ASP_ALL_CONTENTS",
]


def get_obs_dirs(obsid: int, data_root: str | Path | None = None) -> dict[Any, Any] | None:
    """The archived revision folders of an obsid.

    Parameters
    ----------
    obsid : int
        Observation id.
    data_root : str or Path, optional
        The ``asp1`` folder (default ``$MICA_ARCHIVE/asp1``).

    Returns
    -------
    dict or None
        ``{'default': dir, <rev>: dir, ..., 'last': dir, 'revisions': [sorted revs]}``;
        None when nothing of the obsid is archived. 'default' is absent when the upstream
        has released no revision yet (only a provisional 'last').

    Raises
    ------
    mica.errors.MissingArchiveError
        The folder holds no aspect L1 archive at all.

    Examples
    --------
    >>> from mica.archive import asp_l1
    >>> dirs = asp_l1.get_obs_dirs(10369)
    >>> dirs['revisions'], dirs['default']
    ([1], '.../asp1/10/10369_v01')
    >>> asp_l1.get_obs_dirs(3) is None
    True
    """
    return obs_dirs(ASP_L1, obsid, require_archive(ASP_L1.name, ASP_L1.root(data_root)))


def get_dir(obsid: int, data_root: str | Path | None = None) -> str | None:
    """The default revision's folder of an obsid.

    Parameters
    ----------
    obsid : int
        Observation id.
    data_root : str or Path, optional
        The ``asp1`` folder (default ``$MICA_ARCHIVE/asp1``).

    Returns
    -------
    str or None
        The folder, or None when the obsid has no default revision archived.

    Examples
    --------
    >>> from mica.archive import asp_l1
    >>> asp_l1.get_dir(10369)
    '.../asp1/10/10369_v01'
    """
    dirs = get_obs_dirs(obsid, data_root)
    return None if dirs is None else dirs.get("default")


def get_files(
    obsid: int | None = None,
    start: CxoTimeLike = None,
    stop: CxoTimeLike = None,
    revision: Revision = None,
    content: str | Sequence[str] | None = None,
    data_root: str | Path | None = None,
) -> list[str]:
    """Paths of aspect L1 files by obsid or overlapping [start, stop], ordered by tstart.

    Parameters
    ----------
    obsid : int, optional
        Observation id (or give ``start``/``stop``).
    start, stop : CxoTimeLike, optional
        Time range (CXC seconds or dates); files overlapping it are returned.
    revision : None, int, 'last' or 'all', optional
        None: the default revision.
    content : str or list of str, optional
        Content names (default ``ASP_DEFAULT_CONTENTS``; 'ASPSOLOBI' must be asked for).
    data_root : str or Path, optional
        The ``asp1`` folder (default ``$MICA_ARCHIVE/asp1``).

    Returns
    -------
    list of str
        Absolute paths of the gzipped FITS files, in the revision folders.

    Examples
    --------
    >>> from mica.archive import asp_l1
    >>> files = asp_l1.get_files(10369, content=['GSPROPS'])
    >>> len(files), files[0]
    (3, '.../asp1/10/10369_v01/pcadf452487198N001_gspr1.fits.gz')
    >>> len(asp_l1.get_files(start='2012:125', stop='2012:127', content='FIDPROPS'))
    3
    """
    rows = query_rows(ASP_L1, obsid, start, stop, revision, content, data_root, columns=())
    return row_paths(ASP_L1, rows, data_root)


def get_processing(
    obsid: int | None = None, data_root: str | Path | None = None
) -> list[dict[str, Any]]:
    """Rows of the ``aspect_1_proc`` processing table (all, or one obsid's).

    Parameters
    ----------
    obsid : int, optional
        Observation id (default: every row).
    data_root : str or Path, optional
        The ``asp1`` folder (default ``$MICA_ARCHIVE/asp1``).

    Returns
    -------
    list of dict
        One dict per processing: ``aspect_1_id``, ``obsid``, ``obi``, ``revision``,
        ``ap_date`` (ISO, UTC), ``isdefault``, ``obspar_version``, ``vv_complete``.

    Examples
    --------
    >>> from mica.archive import asp_l1
    >>> row = asp_l1.get_processing(10369)[0]
    >>> row['obsid'], row['revision'], row['isdefault']
    (10369, 1, 1)
    """
    return proc_rows(ASP_L1.root(data_root), None if obsid is None else check_obsid(obsid))


def _read_table(path: str, root: Path) -> tuple[Table, dict[str, Any]]:
    """An archived table of the ``asp1`` folder ``root`` and its header."""
    with archived_fits(path, root) as hdus:
        table = Table(hdus[1].data)
        header = {k: v for k, v in hdus[1].header.items() if k not in ("COMMENT", "HISTORY")}
    table.rename_columns(table.colnames, [c.lower() for c in table.colnames])
    return table, header


def get_atts(
    obsid: int | None = None,
    start: CxoTimeLike = None,
    stop: CxoTimeLike = None,
    revision: Revision = None,
    filter: bool = True,  # noqa: A002 (original name)
    data_root: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """ACA-frame attitude quaternions from the ASPSOL files.

    ``q_att`` (or ``q_att_raw`` when present, DS >= 10.8.3) times the inverse ACA
    misalignment of the matching ACACAL file.

    Parameters
    ----------
    obsid : int, optional
        Observation id (or give ``start``/``stop``).
    start, stop : CxoTimeLike, optional
        Time range of the files to read.
    revision : None, int or 'last', optional
        None: the default revision ('all' is refused: one revision per interval).
    filter : bool, optional
        Remove samples within 1.025 s of an ASPQUAL sample with ``asp_sol_status != 0``.
    data_root : str or Path, optional
        The ``asp1`` folder (default ``$MICA_ARCHIVE/asp1``).

    Returns
    -------
    quats : numpy.ndarray
        (N, 4) quaternions (x, y, z, scalar), dimensionless.
    times : numpy.ndarray
        (N,) CXC seconds.
    headers : list of dict
        The ASPSOL header of each file read.

    Examples
    --------
    >>> from mica.archive import asp_l1
    >>> quats, times, headers = asp_l1.get_atts(10369)
    >>> quats.shape[1], len(times) == len(quats), len(headers)
    (4, True, 3)
    """
    if revision == "all":
        raise InvalidArgumentError(
            "get_atts needs one revision per interval; revision='all' is refused"
        )
    kinds = ("ASPSOL", "ACACAL", "ASPQUAL")
    rows = query_rows(
        ASP_L1, obsid, start, stop, revision, list(kinds), data_root, columns=("content",)
    )
    asols, acals, aquals = (
        row_paths(ASP_L1, [r for r in rows if r["content"] == kind], data_root) for kind in kinds
    )
    return get_atts_from_files(asols, acals, aquals, filter=filter, data_root=data_root)


def get_atts_from_files(
    asol_files: Sequence[str],
    acal_files: Sequence[str],
    aqual_files: Sequence[str],
    filter: bool = True,  # noqa: A002 (original name)
    data_root: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """ACA-frame attitude quaternions from given ASPSOL, ACACAL and ASPQUAL files (one of
    each per aspect interval, in the same order), as `get_atts` reads them.

    Parameters
    ----------
    asol_files, acal_files, aqual_files : sequence of str
        The files, paired by position (e.g. from `get_files` or a pipeline folder).
    filter : bool, optional
        Remove samples within 1.025 s of an ASPQUAL sample with ``asp_sol_status != 0``.
    data_root : path-like, optional
        The aspect L1 archive the files belong to (named when one of them is gone); default
        ``<archive>/asp1``.

    Returns
    -------
    quats : numpy.ndarray
        (N, 4) quaternions (x, y, z, scalar), dimensionless.
    times : numpy.ndarray
        (N,) CXC seconds.
    headers : list of dict
        The ASPSOL header of each file read.

    Examples
    --------
    >>> from mica.archive import asp_l1
    >>> files = [asp_l1.get_files(10369, content=[c]) for c in ("ASPSOL", "ACACAL", "ASPQUAL")]
    >>> quats, times, headers = asp_l1.get_atts_from_files(*files)
    >>> quats.shape[1], len(headers)
    (4, 3)
    """
    asols, acals, aquals = list(asol_files), list(acal_files), list(aqual_files)
    if len(asols) != len(acals) or len(asols) != len(aquals):
        raise MissingDataError(
            f"found {len(asols)} ASPSOL, {len(acals)} ACACAL and {len(aquals)} "
            "ASPQUAL files: cannot pair them"
        )
    root = ASP_L1.root(data_root)
    quats, times, headers = [], [], []
    for asol_path, acal_path, aqual_path in zip(asols, acals, aquals):
        asol, header = _read_table(asol_path, root)
        acal, acal_header = _read_table(acal_path, root)
        for key in ("TSTART", "TSTOP"):
            if abs(header[key] - acal_header[key]) > 10:
                raise MissingDataError(
                    f"{Path(asol_path).name} and {Path(acal_path).name} {key} "
                    "differ by more than 10 s"
                )
        q_att = np.asarray(asol["q_att_raw"] if "q_att_raw" in asol.colnames else asol["q_att"])
        t = np.asarray(asol["time"], dtype=np.float64)
        if filter:
            aqual, _ = _read_table(aqual_path, root)
            bad_t = np.asarray(aqual["time"])[np.asarray(aqual["asp_sol_status"]) != 0]
            if len(bad_t):
                near = np.searchsorted(bad_t, t)
                lo = np.abs(t - bad_t[np.clip(near - 1, 0, len(bad_t) - 1)])
                hi = np.abs(t - bad_t[np.clip(near, 0, len(bad_t) - 1)])
                keep = np.minimum(lo, hi) > 1.025
                q_att, t = q_att[keep], t[keep]
        misalign = np.asarray(acal["aca_misalign"][0], dtype=np.float64).reshape(3, 3)
        inv = quaternion.from_transform(misalign)  # Quat(transform = ACA_MISALIGN^T) = its inverse
        inv = inv * np.array([-1, -1, -1, 1])
        quats.append(quaternion.multiply(q_att, inv))
        times.append(t)
        headers.append(header)
    if not quats:
        return np.zeros((0, 4)), np.zeros(0), []
    return np.concatenate(quats), np.concatenate(times), headers


# --- The original's module-level names ---------------------------------------------------


def _config() -> dict[str, Any]:
    """The original's ``CONFIG`` keys, with this archive's folders (read at each access);
    `mica.archive.obsid_archive.ObsArchive` takes it."""
    root = ASP_L1.root(None)
    return {
        "data_root": str(root),
        "temp_root": str(archive_root() / "temp"),
        "bad_obsids": str(root / ASP_L1.bad_obsids_file),
        "sql_def": "archfiles_asp_l1_def.sql",
        "apstat_table": "aspect_1",
        "apstat_id": "aspect_1_id",
        "label": "asp_l1",
        "small": "asp1{fidprops}",
        "small_glob": "*fidpr*",
        "small_ver_regex": r"pcadf\d+N(\d{3})_",
        "delete": ["kalm1", "gdat", "adat"],
        "full": "asp1",
        "filecheck": False,
        "cols": ARCHFILES_HDR_COLS,
        "content_types": list(ASP_DEFAULT_CONTENTS),
    }


#: The index columns the original took from the headers (`CONFIG` ``cols``).
ARCHFILES_HDR_COLS = ("tstart", "tstop", "caldbver", "content", "ascdsver", "revision", "date")

__getattr__ = computed_attributes(__name__, {"CONFIG": _config})
