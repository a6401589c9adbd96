"""Aspect solution V&V as a derived product (``mica update vv``).

Unit: one obsid revision of the aspect L1 archive (``asp1``, its ``aspect_1_proc`` table)
not yet in the summary table ``vv/vv.h5`` (node ``vv``: the original's 37 columns plus
``disposition`` and ``reasons``, one row per slot with statistics). ``compute`` runs
`mica.vv.core.Obi` on the revision folder and its obspar and writes the JSON, the per-slot
HDF5, the slot plots, ``report.html`` and the digests of these files
(`mica.engine.digests.FOLDER_DIGESTS`, compared by ``mica check``) into the unit's staging
folder; ``install`` moves them to ``vv/<CC>/<OOOOO>_v<RR>/`` with one rename (an older copy
is swapped out, then removed) and points ``<OOOOO>`` (default revision) and ``<OOOOO>_last``
(last != default) at it, then records ``vv_complete`` in ``aspect_1_proc``. The table, not
``vv_complete``, decides what is done: a killed update is completed by the re-run.

The summary table's columns, folder and name are defined in `mica.vv.table` (read by
`mica.vv.get_rms_data`, `mica.vv.get_vv_dir` and `Obi.slots_to_table`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from mica.engine.atomic import folder_mode, make_folders
from mica.engine.derived import DerivedFailure, DerivedProduct, DerivedUnit
from mica.engine.digests import FOLDER_DIGESTS, record_folder_digests
from mica.engine.fsync import fsync_dir
from mica.engine.index import close_writer, connect_readonly, require_archive
from mica.engine.obsid_layout import (
    REV_DIR_RE,
    default_link,
    last_link,
    remove_link,
    revision_links,
    revision_name,
    set_link,
    version_dir,
)
from mica.engine.synced import require_synced
from mica.errors import MissingArchiveError, MissingDataError
from mica.vv.report import digests_lost
from mica.vv.table import FOLDER, TABLE_NAME, VV_SPEC, table_rows

ASP_FOLDER = "asp1"
OBSPAR_FOLDER = "obspar"


def _index_tstarts(asp_root: Path) -> dict[tuple[int, int], float]:
    """(obsid, revision) -> earliest TSTART of its ASPSOL files, from the archive index."""
    db = asp_root / "archfiles.db3"
    if not db.exists():
        return {}
    conn = connect_readonly(db)
    try:
        cur = conn.execute(
            "SELECT obsid, revision, MIN(tstart) FROM archfiles WHERE content = 'ASPSOL' "
            "GROUP BY obsid, revision"
        )
        return {(int(o), int(r)): float(t) for o, r, t in cur}
    finally:
        conn.close()


def _outside_sync(archive: Path, obsid: int, err: Exception) -> Exception:
    """What to say of obspars not found: a missing obspar folder in an archive whose other
    folders a sync brought is a `MissingDataError` naming the sync bringing the obsid's
    (`mica.engine.synced`), else ``err`` (`mica.vv.get_arch_vv` raises such a cause)."""
    if isinstance(err, MissingArchiveError):
        try:
            require_synced(archive / OBSPAR_FOLDER, ["obspar"], obsid=obsid)
        except MissingDataError as outside:
            return outside
    return err


def revision_inputs(archive: Path, obsid: int, revision: int, meta: dict[str, Any]) -> tuple:
    """(obspar files of every OBI, ASP L1 revision folder) of an obsid revision;
    `DerivedFailure` naming what is missing and the command that fills it."""
    from mica.archive import asp_l1, obspar

    dirs = asp_l1.get_obs_dirs(obsid, archive / ASP_FOLDER)
    if dirs is None or revision not in dirs:
        raise DerivedFailure(
            f"obsid {obsid} revision {revision} is not in {archive / ASP_FOLDER}: "
            f"run `mica update asp-l1 --obsid {obsid}`"
        )
    folder = dirs[revision]
    pars: list[str] = []
    version = meta.get("obspar_version")
    try:
        if version is not None:  # the obspars of every OBI of that obspar revision
            pars = obspar.get_files(obsid, revision=int(version), data_root=archive / OBSPAR_FOLDER)
        if not pars:
            pars = obspar.get_files(obsid, data_root=archive / OBSPAR_FOLDER)
    except (MissingArchiveError, MissingDataError) as err:
        cause = _outside_sync(archive, obsid, err)
        raise DerivedFailure(str(cause)) from cause
    if not pars:
        raise DerivedFailure(
            f"no obspar of obsid {obsid} in {archive / OBSPAR_FOLDER}: "
            f"run `mica update obspar --obsid {obsid}`"
        )
    return pars, folder


class VVProduct(DerivedProduct):
    """V&V of the aspect L1 archive's obsid revisions (see the module docstring)."""

    name = "vv"
    folder = FOLDER
    table_name = TABLE_NAME
    spec = VV_SPEC
    inputs = (ASP_FOLDER, OBSPAR_FOLDER)
    unit = "obsid revision"
    plots = True

    def plan(self, archive, table, *, start, stop, obsids, check_missing):
        from mica.products.asp_l1 import ASP_L1, proc_rows
        from mica.products.obspar import OBSPAR

        asp_root = Path(archive) / ASP_FOLDER
        require_archive(ASP_L1.name, asp_root)
        require_archive(OBSPAR.name, Path(archive) / OBSPAR_FOLDER)
        revs: dict[tuple[int, int], dict[str, Any]] = {}
        for row in proc_rows(asp_root):
            key = (int(row["obsid"]), int(row["revision"]))
            if key not in revs or row["obi"] < revs[key]["obi"]:  # the lowest OBI's row
                revs[key] = row
        done: dict[tuple, int] = {}
        if table.exists():
            rows = table.read(verify=False)
            done = {
                (int(o), int(r)): int(d)
                for o, r, d in zip(rows["obsid"], rows["revision"], rows["isdefault"], strict=True)
            }
        failed = (
            {tuple(int(v) for v in k) for k in table.failed_keys()} if table.exists() else set()
        )
        # Each obsid's default and last revision as of these rows, the ones the table's
        # isdefault comes from: `install` points the links by them, so links and rows agree
        # even when an asp-l1 update moves the default meanwhile (as if V&V had run first).
        default = {o: r for (o, r), row in revs.items() if row["isdefault"]}
        last: dict[int, int] = {}
        for o, r in revs:
            last[o] = max(r, last.get(o, r))
        tstarts = _index_tstarts(asp_root)
        units = []
        for key, row in revs.items():
            obsid = key[0]
            if obsids is not None:
                if obsid not in obsids:
                    continue
            elif key in done:
                if done[key] == int(row["isdefault"] or 0):
                    continue  # done, and still the same default status
            elif key in failed and not check_missing:
                continue
            t = tstarts.get(key, 0.0)
            if (start is not None and t < start) or (stop is not None and t > stop):
                continue
            label = f"obsid {obsid} revision {key[1]}"
            links = {"default_revision": default.get(obsid), "last_revision": last[obsid]}
            units.append(DerivedUnit(key, label, t, {**row, **links}))
        return sorted(units, key=lambda u: (u.tstart, u.key))

    def compute(self, archive, unit, staging):
        from mica.vv.core import Obi, VVInputError
        from mica.vv.report import mark_digested, write_report

        obsid, revision = unit.key
        par, folder = revision_inputs(Path(archive), obsid, revision, unit.data)
        try:
            obi = Obi(par, folder)
        except VVInputError as err:
            raise DerivedFailure(str(err)) from err
        obi.isdefault = int(unit.data.get("isdefault") or 0)
        simulated = self.kind(Path(archive)) == "simulated"
        info = write_report(obi, staging, plots=self.plots, simulated=simulated)
        rows = table_rows(info, unit.data)
        if not len(rows):
            raise DerivedFailure(f"obsid {obsid} revision {revision}: no slot has statistics")
        mark_digested(Path(staging))
        record_folder_digests(Path(staging))  # installed with the folder (`mica check`)
        return rows

    def install(self, archive, unit, rows, staging):
        obsid, revision = unit.key
        root = Path(staging).parent.parent  # staging = <product folder>/staging/u<i>
        dest = version_dir(root, obsid, revision)
        make_folders(dest.parent)
        tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
        old = dest.with_name(f".{dest.name}.old{os.getpid()}")
        for stale in dest.parent.glob(f".{dest.name}.*"):  # left by a killed install
            shutil.rmtree(stale, ignore_errors=True)
        os.rename(staging, tmp)
        os.chmod(tmp, folder_mode(dest))  # the umask's, or the revision folder's it replaces
        if dest.exists():
            os.rename(dest, old)  # swapped out, removed once the new one is in place
        os.rename(tmp, dest)
        fsync_dir(dest.parent)
        shutil.rmtree(old, ignore_errors=True)
        planned = unit.data
        self._links(root, obsid, revision, planned["default_revision"], planned["last_revision"])
        self._mark_complete(Path(archive), unit)

    @staticmethod
    def _links(root: Path, obsid: int, revision: int, default: int | None, last: int) -> None:
        """Point ``<OOOOO>`` (the default revision) and ``<OOOOO>_last`` (the last, when not
        the default) at this revision's folder where it is that revision (as planned)."""
        mine = revision_name(obsid, revision)
        if default == revision:
            set_link(default_link(root, obsid), mine)
        if last == revision:
            if last != default:
                set_link(last_link(root, obsid), mine)
            else:
                remove_link(last_link(root, obsid))

    @staticmethod
    def _mark_complete(archive: Path, unit: DerivedUnit) -> None:
        """``aspect_1_proc.vv_complete`` = VV_VERSION for the revision (informational)."""
        from mica.products.asp_l1 import proc_connect
        from mica.vv.core import VV_VERSION

        conn = proc_connect(archive / ASP_FOLDER)
        try:
            conn.execute(
                "UPDATE aspect_1_proc SET vv_complete = ? WHERE obsid = ? AND revision = ?",
                (VV_VERSION, *unit.key),
            )
        finally:
            close_writer(conn)

    def unit_folders(self, data_root=None):
        folders: dict[int, list[Path]] = {}
        for folder in sorted(self.root(data_root).glob("[0-9][0-9]/[0-9][0-9][0-9][0-9][0-9]_v*")):
            name = folder.name
            if folder.is_dir() and not folder.is_symlink() and name.partition("_v")[2].isdigit():
                folders.setdefault(int(name[:5]), []).append(folder)
        return folders

    def unit_problems(self, data_root=None):
        """The revision links (``<OOOOO>``, ``<OOOOO>_last``) that lead to no V&V folder of
        their obsid (a folder gone, a link to itself), and the folders that lost their
        digests."""
        found: dict[int, list[str]] = {}
        for obsid, link in revision_links(self.root(data_root)):
            target = os.readlink(link)
            of_obsid = REV_DIR_RE.fullmatch(target)
            if not (of_obsid and int(of_obsid.group(1)) == obsid and link.is_dir()):
                found.setdefault(obsid, []).append(
                    f"link {link} points to {target!r}, not a V&V folder of its obsid"
                )
        for obsid, folders in self.unit_folders(data_root).items():
            for folder in folders:
                if not (folder / FOLDER_DIGESTS).exists() and (lost := digests_lost(folder)):
                    found.setdefault(obsid, []).append(f"{folder}: {lost}")
        return found

    def remarks(self, data_root=None):
        notes = super().remarks(data_root)
        table = self.table(data_root)
        if not table.exists():
            return notes
        rows = table.read()
        seen = set()
        for row in rows[rows["disposition"] == b"BAD"]:
            key = (int(row["obsid"]), int(row["revision"]))
            if key not in seen:
                seen.add(key)
                notes.append(f"obsid {key[0]} revision {key[1]} V&V BAD: {row['reasons'].decode()}")
        return notes


VV = VVProduct()
