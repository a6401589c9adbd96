"""Aspect level-1 products archived per obsid and revision (``<archive>/asp1``).

Layout ``asp1/<CC>/<OOOOO>_v<RR>/`` with ``<OOOOO>`` (default) and ``<OOOOO>_last`` links;
`mica update asp-l1` fills it. Every function takes ``data_root`` (the ``asp1`` folder).

Differences from the original: an obsid with nothing archived gives ``None`` from
`get_dir`/`get_obs_dirs` (the original raised TypeError), while a folder holding no archive
raises `mica.errors.MissingArchiveError`; revisions are sorted; 'default'
and 'last' are the revision folders the links resolve to; `get_files` paths are always the
revision folders; unknown content names raise ValueError; only complete revisions are served.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

from mica.archive import _quat
from mica.engine.index import require_archive
from mica.engine.obsid_layout import obs_dirs
from mica.engine.obsid_read import Revision, query_rows, row_paths
from mica.products.asp_l1 import ASP_ALL_CONTENTS, ASP_DEFAULT_CONTENTS, ASP_L1, proc_rows
from mica.time import CxoTimeLike

__all__ = [
    "get_obs_dirs",
    "get_dir",
    "get_files",
    "get_atts",
    "get_processing",
    "ASP_L1",
    "ASP_DEFAULT_CONTENTS",
    "ASP_ALL_CONTENTS",
]


def get_obs_dirs(obsid: int, data_root: str | Path | None = None) -> dict[Any, Any] | None:
    """``{'default': dir, <rev>: dir, ..., 'last': dir, 'revisions': [sorted revs]}``.

    None when nothing of the obsid is archived. 'default' is absent when the upstream has
    released no revision yet (only a provisional 'last'). `MissingArchiveError` when the
    folder holds no aspect L1 archive at all.
    """
    return obs_dirs(ASP_L1, obsid, require_archive(ASP_L1.name, ASP_L1.root(data_root)))


def get_dir(obsid: int, data_root: str | Path | None = None) -> str | None:
    """The default revision's folder of an obsid, or None when there is none."""
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

    ``revision``: None (default revision), an int, 'last' or 'all'. ``content``: a name or
    list of names (default: ``ASP_DEFAULT_CONTENTS``; 'ASPSOLOBI' must be asked for).
    """
    rows = query_rows(ASP_L1, obsid, start, stop, revision, content, data_root, columns=())
    return row_paths(ASP_L1, rows, data_root)


def get_processing(
    obsid: int | None = None, data_root: str | Path | None = None
) -> list[dict[str, Any]]:
    """Rows of the ``aspect_1_proc`` processing table (all, or one obsid's)."""
    return proc_rows(ASP_L1.root(data_root), obsid)


def _read_table(path: str) -> tuple[Table, dict[str, Any]]:
    with fits.open(path, memmap=False) as hdus:
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
    """ACA-frame attitude quaternions from ASPSOL files: ``(quats N x 4, times, headers)``.

    ``q_att`` (or ``q_att_raw`` when present, DS >= 10.8.3) times the inverse ACA
    misalignment of the matching ACACAL file. With ``filter``, samples within 1.025 s of an
    ASPQUAL sample with ``asp_sol_status != 0`` are removed.
    """
    if revision == "all":
        raise ValueError("get_atts needs one revision per interval; revision='all' is refused")
    kwargs = dict(obsid=obsid, start=start, stop=stop, revision=revision, data_root=data_root)
    asols = get_files(content=["ASPSOL"], **kwargs)
    acals = get_files(content=["ACACAL"], **kwargs)
    aquals = get_files(content=["ASPQUAL"], **kwargs)
    if len(asols) != len(acals) or len(asols) != len(aquals):
        raise ValueError(
            f"found {len(asols)} ASPSOL, {len(acals)} ACACAL and {len(aquals)} "
            "ASPQUAL files: cannot pair them"
        )
    quats, times, headers = [], [], []
    for asol_path, acal_path, aqual_path in zip(asols, acals, aquals):
        asol, header = _read_table(asol_path)
        acal, acal_header = _read_table(acal_path)
        for key in ("TSTART", "TSTOP"):
            if abs(header[key] - acal_header[key]) > 10:
                raise ValueError(
                    f"{Path(asol_path).name} and {Path(acal_path).name} {key} "
                    "differ by more than 10 s"
                )
        q_att = np.asarray(asol["q_att_raw"] if "q_att_raw" in asol.colnames else asol["q_att"])
        t = np.asarray(asol["time"], dtype=np.float64)
        if filter:
            aqual, _ = _read_table(aqual_path)
            bad_t = np.asarray(aqual["time"])[np.asarray(aqual["asp_sol_status"]) != 0]
            if len(bad_t):
                near = np.searchsorted(bad_t, t)
                lo = np.abs(t - bad_t[np.clip(near - 1, 0, len(bad_t) - 1)])
                hi = np.abs(t - bad_t[np.clip(near, 0, len(bad_t) - 1)])
                keep = np.minimum(lo, hi) > 1.025
                q_att, t = q_att[keep], t[keep]
        misalign = np.asarray(acal["aca_misalign"][0], dtype=np.float64).reshape(3, 3)
        inv = _quat.from_transform(misalign)  # Quat(transform = ACA_MISALIGN^T) = its inverse
        inv = inv * np.array([-1, -1, -1, 1])
        quats.append(_quat.multiply(q_att, inv))
        times.append(t)
        headers.append(header)
    if not quats:
        return np.zeros((0, 4)), np.zeros(0), []
    return np.concatenate(quats), np.concatenate(times), headers
