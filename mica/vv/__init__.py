"""Aspect solution V&V: residuals of guide stars and fid lights, reports, dispositions.

Read API (import paths as in the original)::

    from mica.vv import get_vv_dir, get_vv_files, get_vv, get_rms_data, get_arch_vv, Obi

The archive (``<archive>/vv``) is filled by ``mica update vv``; every function takes
``data_root`` (the ``vv`` folder; default ``<MICA_ARCHIVE>/vv``) and `get_arch_vv` takes
``archive`` (the folder holding ``asp1`` and ``obspar``).
"""

from __future__ import annotations

import json
import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np

from mica.engine.digests import FOLDER_DIGESTS, folder_file_problem
from mica.engine.index import missing_archive
from mica.engine.obsid_layout import check_obsid, default_link, last_link, version_dir
from mica.engine.synced import require_synced
from mica.errors import DamagedFileError, InvalidArgumentError, MissingDataError, VVLookupError
from mica.vv.core import VV_VERSION, AspectInterval, Obi, VVInputError
from mica.vv.report import digests_lost

__all__ = [
    "get_vv_dir",
    "get_vv_files",
    "get_vv",
    "get_rms_data",
    "get_arch_vv",
    "Obi",
    "AspectInterval",
    "VVInputError",
    "VVLookupError",
    "VV_VERSION",
]


def _root(data_root: str | os.PathLike | None) -> Path:
    from mica.vv.product import VV

    return VV.root(data_root)


def _revisions(root: Path, obsid: int) -> list[int]:
    folder = default_link(root, obsid).parent
    prefix = f"{obsid:05d}_v"
    out = []
    if folder.is_dir():
        for path in folder.iterdir():
            if path.name.startswith(prefix) and path.name[len(prefix) :].isdigit():
                out.append(int(path.name[len(prefix) :]))
    return sorted(out)


def _not_held(root: Path, obsid: int, message: str) -> VVLookupError:
    """The error for an obsid's V&V not found in ``root``: `MissingDataError` naming the
    ``mica sync`` that brings it when ``root`` is a synced folder that did not bring it,
    `MissingArchiveError` when there is no V&V archive there at all, else ``message``."""
    require_synced(root, ["vv"], obsid=obsid)
    if not root.is_dir():
        raise missing_archive("vv", root, "no such folder", f"mica update vv --obsid {obsid}")
    return VVLookupError(message)


def get_vv_dir(
    obsid: int, version: str | int = "default", data_root: str | os.PathLike | None = None
) -> str:
    """The V&V folder of an obsid revision: ``<archive>/vv/<CC>/<OOOOO>_v<RR>``.

    ``version``: 'default' (the aspect L1 default revision), 'last' (the highest revision
    V&V'd) or a revision number. `VVLookupError` when there is none.
    """
    obsid = check_obsid(obsid)
    root = _root(data_root)
    if version == "default":
        link = default_link(root, obsid)
        if link.is_symlink() and not link.is_dir():
            raise VVLookupError(
                f"the default V&V link {link} of obsid {obsid} leads nowhere (it points to "
                f"{os.readlink(link)!r}): `mica check --repair` on its archive makes it again"
            )
        if not link.is_dir():
            link = last_link(root, obsid) if last_link(root, obsid).is_dir() else link
        if not link.is_dir():
            raise _not_held(
                root,
                obsid,
                f"no default V&V of obsid {obsid} in {root}: run `mica update vv --obsid {obsid}`",
            )
        return str(link.parent / os.readlink(link))
    revs = _revisions(root, obsid)
    if version == "last":
        if not revs:
            raise _not_held(root, obsid, f"no V&V of obsid {obsid} in {root}")
        rev = revs[-1]
    elif isinstance(version, numbers.Integral) and not isinstance(version, bool):
        rev = int(version)
    elif isinstance(version, str) and version.strip().isdigit():
        rev = int(version)
    else:
        raise InvalidArgumentError(
            f"version must be 'default', 'last' or a revision number, not {version!r}"
        )
    path = version_dir(root, obsid, rev)
    if not path.is_dir():
        raise _not_held(
            root, obsid, f"no V&V of obsid {obsid} revision {rev}: {path} does not exist"
        )
    return str(path)


def get_vv_files(
    obsid: int, version: str | int = "default", data_root: str | os.PathLike | None = None
) -> list[str]:
    """Every file of an obsid revision's V&V folder (report JSON, per-slot HDF5, plots...)."""
    folder = Path(get_vv_dir(obsid, version, data_root))
    return sorted(str(p) for p in folder.iterdir() if p.is_file())


def get_vv(
    obsid: int, version: str | int = "default", data_root: str | os.PathLike | None = None
) -> dict[str, Any]:
    """The V&V report (the info dict, ``vv_report.json``) of an obsid revision."""
    folder = Path(get_vv_dir(obsid, version, data_root))
    # the report's JSON: the original's folders hold one of any name; ours also the digests
    jsons = sorted(p for p in folder.glob("*.json") if p.name != FOLDER_DIGESTS)
    if not jsons:
        raise VVLookupError(f"no report JSON in {folder}")
    problem = folder_file_problem(folder, jsons[0].name, lambda: digests_lost(folder))
    if problem is not None:
        mend = f"`mica update vv --obsid {obsid}` writes it again"
        raise DamagedFileError.written(jsons[0], problem, mend)
    try:
        return json.loads(jsons[0].read_text())
    except ValueError as err:
        raise VVInputError(f"{jsons[0]} is not valid JSON: {err}") from err


def get_rms_data(data_root: str | os.PathLike | None = None) -> np.ndarray:
    """The whole summary table (``vv/vv.h5``, node ``vv``) as a numpy structured array."""
    from mica.vv.product import VV

    return VV.table(data_root).read()


def get_arch_vv(
    obsid: int, version: str | int = "last", archive: str | os.PathLike | None = None
) -> Obi | None:
    """An `Obi` of an archived aspect solution and its obspar (not stored anywhere).

    ``version``: 'last', 'default' or a revision number, which must be archived
    (`VVLookupError` otherwise). None when the processing table has no row of the obsid.
    """
    from mica.archive import asp_l1
    from mica.config import archive_root
    from mica.engine.derived import DerivedFailure
    from mica.vv.product import ASP_FOLDER, revision_inputs

    obsid = check_obsid(obsid)
    archive = archive_root(archive)
    dirs = asp_l1.get_obs_dirs(obsid, archive / ASP_FOLDER)
    if dirs is None or version not in dirs:
        raise VVLookupError(f"obsid {obsid} has no aspect L1 version {version!r} in {archive}")
    rows = asp_l1.get_processing(obsid, archive / ASP_FOLDER)
    if not rows:
        return None
    rev = int(Path(dirs[version]).name.rsplit("_v", 1)[1]) if isinstance(version, str) else version
    mine = [r for r in rows if r["revision"] == rev]
    if not mine:
        return None
    meta = min(mine, key=lambda r: r["obi"])
    try:
        par, folder = revision_inputs(archive, obsid, rev, meta)
    except DerivedFailure as err:
        if isinstance(err.__cause__, MissingDataError):  # outside what a sync brought
            raise err.__cause__ from None
        raise VVLookupError(str(err)) from err
    obi = Obi(par, folder)
    obi.isdefault = int(meta.get("isdefault") or 0)
    return obi
