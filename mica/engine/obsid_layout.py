"""Per-obsid layout: revision folders ``<CC>/<OOOOO>_v<RR>/`` with default/last links.

A product kept per obsid and processing revision (aspect L1, obspar) is a `FileProduct`
whose `folder` is the revision folder. The index gains three tables, created with it:

* ``revisions``: one row per (obsid, revision) whose files are all archived; readers list
  only these, so a revision folder that a killed update left half-filled is never served;
* ``obsid_links``: the default and last revision of every obsid and whether the links on
  disk already show them (``linked = 0`` is an intent that recovery applies);
* the ``isdefault`` column of ``archfiles`` mirrors ``obsid_links.default_rev``.

Links are relative symlinks replaced atomically (symlink to a temp name, then rename), so a
reader resolving ``<OOOOO>`` sees the old or the new revision, never a missing link.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mica.engine.atomic import make_folders
from mica.engine.fsync import fsync_dir
from mica.engine.index import INDEX_NAME, ArchiveIndex
from mica.engine.product import FileProduct
from mica.engine.synced import require_synced
from mica.errors import ObsidError

OBSID_MIN, OBSID_MAX = 1, 65535
#: a revision folder name
REV_DIR_RE = re.compile(r"(\d{5})_v(\d{2,})")

LAYOUT_SQL = [
    """CREATE TABLE IF NOT EXISTS revisions (
        obsid int NOT NULL,
        revision int NOT NULL,
        nfiles int NOT NULL,
        archived text NOT NULL,   -- UTC time the revision was completed
        PRIMARY KEY (obsid, revision)
    )""",
    """CREATE TABLE IF NOT EXISTS obsid_links (
        obsid int PRIMARY KEY,
        default_rev int,          -- NULL: the upstream has released no revision yet
        last_rev int,
        linked int NOT NULL DEFAULT 0   -- 0: links on disk not yet made to match
    )""",
]


#: The original mica kept neither table: a reader of its index sees them as views of its rows.
#: Every archived revision is complete (the original served whatever its folders held); the
#: default revision is the one ``isdefault`` marks (its updater set it with the link), the
#: last the newest (as its ``revision='last'`` queries took it).
ORIGINAL_LAYOUT_VIEWS = (
    "CREATE TEMP VIEW revisions AS SELECT obsid, revision, count(*) AS nfiles, "
    "NULL AS archived FROM archfiles GROUP BY obsid, revision",
    "CREATE TEMP VIEW obsid_links AS SELECT obsid, "
    "MAX(CASE WHEN isdefault = 1 THEN revision END) AS default_rev, "
    "MAX(revision) AS last_rev, 1 AS linked FROM archfiles GROUP BY obsid",
)


def check_obsid(obsid: Any) -> int:
    """The obsid as an int, refusing values that cannot be Chandra obsids."""
    try:
        value = int(obsid)
    except (TypeError, ValueError):
        raise ObsidError(f"obsid must be an integer, got {obsid!r}") from None
    if value != obsid and not isinstance(obsid, str):
        raise ObsidError(f"obsid must be an integer, got {obsid!r}")
    if not OBSID_MIN <= value <= OBSID_MAX:
        raise ObsidError(f"obsid {value} is outside {OBSID_MIN}..{OBSID_MAX}")
    return value


def obsid_name(obsid: int) -> str:
    """``%05d`` obsid: the link name and the prefix of revision folders."""
    return f"{int(obsid):05d}"


def revision_name(obsid: int, revision: int) -> str:
    return f"{obsid_name(obsid)}_v{int(revision):02d}"


def chunk_dir(root: Path, obsid: int) -> Path:
    """``<root>/<CC>``: the first two characters of the padded obsid."""
    return Path(root) / obsid_name(obsid)[:2]


def version_dir(root: Path, obsid: int, revision: int) -> Path:
    return chunk_dir(root, obsid) / revision_name(obsid, revision)


def default_link(root: Path, obsid: int) -> Path:
    return chunk_dir(root, obsid) / obsid_name(obsid)


def last_link(root: Path, obsid: int) -> Path:
    return chunk_dir(root, obsid) / f"{obsid_name(obsid)}_last"


def revision_links(root: Path) -> list[tuple[int, Path]]:
    """(obsid, link) of every ``<OOOOO>`` and ``<OOOOO>_last`` link under ``root``, sorted."""
    found = []
    for link in sorted(root.glob("[0-9][0-9]/[0-9][0-9][0-9][0-9][0-9]*")):
        match = re.fullmatch(r"(\d{5})(_last)?", link.name)
        if match and link.is_symlink():
            found.append((int(match.group(1)), link))
    return found


def link_revision(link: Path) -> int | None:
    """Revision a link points at (from its target's name), or None if absent or foreign."""
    if not link.is_symlink():
        return None
    match = REV_DIR_RE.fullmatch(os.path.basename(os.readlink(link)))
    return int(match.group(2)) if match else None


def set_link(link: Path, target_name: str) -> bool:
    """Point ``link`` at the sibling ``target_name`` atomically; False if it already did."""
    if link.is_symlink() and os.readlink(link) == target_name:
        return False
    if link.exists() and not link.is_symlink():
        raise OSError(f"{link} is a real file or folder, not a link: the layout is damaged")
    make_folders(link.parent)
    # One name per link, so a writer killed before the rename leaves one its rerun replaces
    # without listing the folder (a thousand obsids: 1.3 ms a link). Writers of one link do
    # not run at once (the update lock; a V&V revision's links are its own).
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target_name, tmp)
    os.replace(tmp, link)  # rename(2) swaps the link itself: readers never see it missing
    fsync_dir(link.parent)
    return True


def remove_link(link: Path) -> bool:
    """Remove a link (checked with islink, so broken links go too); False if none."""
    if link.is_symlink():
        link.unlink()
        fsync_dir(link.parent)
        return True
    return False


class ObsidProduct(FileProduct):
    """A product archived per obsid and revision (see the module docstring).

    Subclasses set `contents` and the name patterns and implement `name_revision`,
    `inspect`; sources (`mica.sources`) deliver the files.
    """

    #: content types returned by default by ``get_files``
    contents: Sequence[str] = ()
    #: every content type the archive may hold
    all_contents: Sequence[str] = ()
    #: content type by file-name type suffix (``gspr1`` -> ``GSPROPS``), for listings
    suffix_contents: Mapping[str, str] = {}
    #: delivered files that ingest drops (not archived), e.g. L1 ACA images
    drop_re: re.Pattern[str] | None = None
    #: delivered files copied beside the data without an index row (pipeline logs)
    extra_re: re.Pattern[str] | None = None
    #: file in the product folder listing obsids never re-checked for new revisions
    bad_obsids_file: str = "bad_obsids.dat"
    #: its content when an update creates the archive (the original shipped such a list)
    default_bad_obsids: tuple[int, ...] = ()
    index_sql = tuple(LAYOUT_SQL)
    original_views = ORIGINAL_LAYOUT_VIEWS
    folder_columns = ("obsid", "revision")

    def folder(self, row: dict[str, Any]) -> str:
        return f"{obsid_name(row['obsid'])[:2]}/{revision_name(row['obsid'], row['revision'])}"

    def classify(self, name: str) -> str | None:
        """'data' (archived, indexed), 'drop', 'extra' (copied unindexed) or None (foreign)."""
        base = name if name.endswith(".gz") else name + ".gz"
        if self.filename_re.fullmatch(base):
            return "data"
        if self.drop_re is not None and self.drop_re.fullmatch(name):
            return "drop"
        if self.extra_re is not None and self.extra_re.fullmatch(name):
            return "extra"
        return None

    def name_revision(self, name: str) -> int | None:
        """Processing revision written in a delivered file's name (``N<rev:03d>``)."""
        match = re.search(r"N(\d{3})[_.]", name)
        return int(match.group(1)) if match else None

    def name_obsid(self, name: str) -> int | None:
        """Obsid written in a file's name, when the naming carries it."""
        return None

    def inspect(self, path: Path) -> tuple[int | None, float | None]:
        """(obsid, tstart) of a delivered data file, read from its content."""
        raise NotImplementedError

    def after_relink(self, index: ArchiveIndex, obsid: int) -> None:
        """Derived tables to refresh once an obsid's revisions and links changed."""

    # --- engine hooks ------------------------------------------------------------------
    def check_layout(self, index: ArchiveIndex, repair: bool) -> tuple[list[str], list[str]]:
        """Links and revision table against the index (see `check_obsid_layout`)."""
        return check_obsid_layout(self, index, repair)

    managed_columns = ("isdefault",)  # set by `relink`

    def original_columns(
        self, conn: sqlite3.Connection, root: Path, missing: Sequence[str]
    ) -> dict[str, str]:
        """``isdefault`` of an original index older than that column: the revision the
        obsid's ``<OOOOO>`` link names, as the original's readers of that time took it."""
        if "isdefault" not in missing:
            return {}
        conn.execute(
            "CREATE TEMP TABLE original_default_links (obsid int PRIMARY KEY, revision int)"
        )
        obsids = [row[0] for row in conn.execute("SELECT DISTINCT obsid FROM main.archfiles")]
        conn.executemany(
            "INSERT INTO temp.original_default_links VALUES (?, ?)",
            [(o, link_revision(default_link(root, o))) for o in obsids if o is not None],
        )
        return {
            "isdefault": "(SELECT 1 FROM temp.original_default_links d "
            "WHERE d.obsid = main.archfiles.obsid AND d.revision = main.archfiles.revision)"
        }

    def owns_link(self, path: Path) -> bool:
        """The default and last links (and a killed relink's temporary links) of a
        ``<CC>`` folder; `check_obsid_layout` checks them."""
        return bool(_LINK_NAME_RE.fullmatch(path.name)) and path.parent.name == path.name[:2]

    def restore_layout(self, index: ArchiveIndex, old: Any) -> list[str]:
        """The revision and link tables of a rebuilt index (see `restore_obsid_tables`)."""
        return restore_obsid_tables(self, index, old)


#: the default and last links of an obsid, and their temporary names (`set_link`; with a pid
#: when written before)
_LINK_NAME_RE = re.compile(r"\d{5}(_last)?|\.\d{5}(_last)?\.tmp\d*")


# --- reading -------------------------------------------------------------------------------
@dataclass
class LinkState:
    default_rev: int | None
    last_rev: int | None


def archived_revisions(index: ArchiveIndex, obsid: int) -> list[int]:
    """Revisions of an obsid whose files are all archived, sorted."""
    rows = index.conn.execute(
        "SELECT revision FROM revisions WHERE obsid = ? ORDER BY revision", (obsid,)
    )
    return [r[0] for r in rows]


def obs_dirs(product: ObsidProduct, obsid: int, root: Path) -> dict[Any, Any] | None:
    """``{'default': dir, rev: dir, ..., 'last': dir, 'revisions': [...]}`` or None.

    Revisions are sorted and limited to complete ones; 'default' and 'last' are the
    revision folders the links resolve to (absent keys when there is no such link).
    """
    obsid = check_obsid(obsid)
    if not (root / INDEX_NAME).exists():
        return None
    # The links before the index: an update marks a revision complete, then links it, so a
    # link read first names a revision the index read after it holds (read the other way
    # round, a new default linked in between was missing from the answer).
    default = link_revision(default_link(root, obsid))
    last = link_revision(last_link(root, obsid))
    with ArchiveIndex(product, root, readonly=True) as index:
        revs = archived_revisions(index, obsid)
    if not revs:
        require_synced(root, [product.name], obsid=obsid)  # a synced part of an archive
        return None
    out: dict[Any, Any] = {rev: str(version_dir(root, obsid, rev)) for rev in revs}
    out["revisions"] = revs
    if default in revs:
        out["default"] = out[default]
    if last in revs:
        out["last"] = out[last]
    elif "default" in out:
        out["last"] = out["default"]
    return out


# --- writing ---------------------------------------------------------------------------------
def mark_revision(index: ArchiveIndex, obsid: int, revision: int, nfiles: int) -> None:
    """Record that every file of (obsid, revision) is archived."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with index.transaction():
        index.conn.execute(
            "INSERT OR REPLACE INTO revisions (obsid, revision, nfiles, archived) "
            "VALUES (?, ?, ?, ?)",
            (obsid, revision, nfiles, now),
        )


def revision_complete(index: ArchiveIndex, obsid: int, revision: int) -> bool:
    row = index.conn.execute(
        "SELECT 1 FROM revisions WHERE obsid = ? AND revision = ?", (obsid, revision)
    ).fetchone()
    return row is not None


def relink(
    product: ObsidProduct, index: ArchiveIndex, obsid: int, default: int | None, last: int | None
) -> list[str]:
    """Make links and ``isdefault`` show (default, last); returns what changed.

    The intent (``obsid_links`` row with ``linked = 0``) and ``isdefault`` are committed in
    one transaction first, then the links are made and the intent marked done; a crash
    in between is finished by `recover_links`.
    """
    revs = set(archived_revisions(index, obsid))
    default = default if default in revs else None
    last = last if last in revs else None
    with index.transaction():
        index.conn.execute(
            "INSERT OR REPLACE INTO obsid_links (obsid, default_rev, last_rev, linked)"
            " VALUES (?, ?, ?, 0)",
            (obsid, default, last),
        )
        index.conn.execute(
            "UPDATE archfiles SET isdefault = CASE WHEN revision = ? THEN 1 END WHERE obsid = ?",
            (default, obsid),
        )
    changes = _apply_links(index.root, obsid, default, last)
    with index.transaction():
        index.conn.execute("UPDATE obsid_links SET linked = 1 WHERE obsid = ?", (obsid,))
    product.after_relink(index, obsid)
    return changes


def _apply_links(root: Path, obsid: int, default: int | None, last: int | None) -> list[str]:
    changes = []
    dlink, llink = default_link(root, obsid), last_link(root, obsid)
    for tmp in chunk_dir(root, obsid).glob(f".{obsid_name(obsid)}*.tmp*"):
        tmp.unlink(missing_ok=True)  # a killed relink's temp link (or one named with its pid)
    if default is None:
        if remove_link(dlink):
            changes.append(f"{obsid}: removed default link (no released revision)")
    elif set_link(dlink, revision_name(obsid, default)):
        changes.append(f"{obsid}: default -> v{default:02d}")
    if last is None or last == default:
        if remove_link(llink):
            changes.append(f"{obsid}: removed {llink.name} (last == default)")
    elif set_link(llink, revision_name(obsid, last)):
        changes.append(f"{obsid}: last -> v{last:02d}")
    return changes


def recover_links(product: ObsidProduct, index: ArchiveIndex) -> list[str]:
    """Apply link intents a killed update left (``linked = 0``)."""
    done = []
    rows = index.conn.execute(
        "SELECT obsid, default_rev, last_rev FROM obsid_links WHERE linked = 0"
    ).fetchall()
    for obsid, default, last in rows:
        done += relink(product, index, obsid, default, last) or [f"{obsid}: links confirmed"]
    return done


def link_state(index: ArchiveIndex, obsid: int) -> LinkState | None:
    row = index.conn.execute(
        "SELECT default_rev, last_rev FROM obsid_links WHERE obsid = ?", (obsid,)
    ).fetchone()
    return None if row is None else LinkState(row[0], row[1])


def restore_obsid_tables(product: ObsidProduct, index: ArchiveIndex, old: Any) -> list[str]:
    """Fill ``revisions`` and ``obsid_links`` of an index rebuilt from the files.

    A revision is complete when a link on disk shows it (only complete revisions are ever
    linked) or when the ``old`` index (a read-only connection, None when unreadable) listed
    it complete with as many files as found now; any other revision folder is left
    incomplete, so the next update fetches it again if it is still a default or last
    revision. The default and last revisions are the links on disk (else the old index's),
    recorded as intents (``linked = 0``) and applied (`recover_links`: ``isdefault``, the
    links, the product's derived tables). Returns what was done.
    """
    root, conn = index.root, index.conn
    counts: dict[int, dict[int, int]] = {}
    for obsid, rev, n in conn.execute(
        "SELECT obsid, revision, count(*) FROM archfiles GROUP BY obsid, revision"
    ):
        counts.setdefault(obsid, {})[rev] = n
    known = _old_rows(old, "SELECT obsid, revision, nfiles, archived FROM revisions")
    known_complete = {(o, r): (n, when) for o, r, n, when in known}
    old_links = {
        o: (d, la)
        for o, d, la in _old_rows(old, "SELECT obsid, default_rev, last_rev FROM obsid_links")
    }
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    done = []
    with index.transaction():
        for obsid in sorted(set(counts) | set(old_links)):
            default = link_revision(default_link(root, obsid))
            last = link_revision(last_link(root, obsid))
            complete = set()
            for rev, n in sorted(counts.get(obsid, {}).items()):
                nfiles, when = known_complete.get((obsid, rev), (None, now))
                if rev in (default, last) or nfiles == n:
                    complete.add(rev)
                    conn.execute(
                        "INSERT INTO revisions (obsid, revision, nfiles, archived) "
                        "VALUES (?, ?, ?, ?)",
                        (obsid, rev, n, when),
                    )
                else:
                    done.append(
                        f"obsid {obsid} v{rev:02d}: {n} files, not known complete: left "
                        "incomplete (an update fetches it again)"
                    )
            if default is None and last is None and obsid in old_links:
                default, last = old_links[obsid]
            last = default if last is None else last  # no last link: last is the default
            default = default if default in complete else None
            last = last if last in complete else default
            if default is None and last is None and obsid not in old_links:
                continue
            conn.execute(
                "INSERT INTO obsid_links (obsid, default_rev, last_rev, linked) "
                "VALUES (?, ?, ?, 0)",
                (obsid, default, last),
            )
    changed = [line for line in recover_links(product, index) if "confirmed" not in line]
    return done + changed


def _old_rows(old: Any, sql: str) -> list[tuple]:
    """The rows of ``sql`` in the replaced index, none when it cannot give them."""
    if old is None:
        return []
    try:
        return [tuple(r) for r in old.execute(sql)]
    except (sqlite3.Error, OSError):  # damaged (`DamagedIndexError`) or without the table
        return []


# --- check -----------------------------------------------------------------------------------
def check_obsid_layout(
    product: ObsidProduct, index: ArchiveIndex, repair: bool
) -> tuple[list[str], list[str]]:
    """Links, ``isdefault`` and the revision table against the index rows and the folders."""
    root = index.root
    problems: list[str] = []
    repairs: list[str] = []
    conn = index.conn
    # Revisions marked complete must still have their files (rows checked by the engine).
    counts = {
        (o, r): n
        for o, r, n in conn.execute(
            "SELECT obsid, revision, count(*) FROM archfiles GROUP BY obsid, revision"
        )
    }
    for obsid, rev, nfiles in conn.execute(
        "SELECT obsid, revision, nfiles FROM revisions"
    ).fetchall():
        have = counts.get((obsid, rev), 0)
        if have < nfiles:
            problems.append(f"obsid {obsid} v{rev:02d}: {have} of {nfiles} files indexed")
            if repair:
                with index.transaction():
                    conn.execute(
                        "DELETE FROM revisions WHERE obsid = ? AND revision = ?", (obsid, rev)
                    )
                repairs.append(
                    f"obsid {obsid} v{rev:02d} marked incomplete (the next update fetches it again)"
                )
    links = {
        o: (d, la, k)
        for o, d, la, k in conn.execute(
            "SELECT obsid, default_rev, last_rev, linked FROM obsid_links"
        )
    }
    complete = {}
    for obsid, rev in conn.execute("SELECT obsid, revision FROM revisions"):
        complete.setdefault(obsid, set()).add(rev)
    for obsid, (default, last, linked) in sorted(links.items()):
        bad = []
        if not linked:
            bad.append("link update interrupted")
        if link_revision(default_link(root, obsid)) != default:
            bad.append(f"default link is not v{default}")
        want_last = None if last == default else last
        if link_revision(last_link(root, obsid)) != want_last:
            bad.append(f"last link is not v{want_last}")
        for rev in (default, last):
            if rev is not None and rev not in complete.get(obsid, set()):
                bad.append(f"v{rev:02d} is linked but incomplete")
        isdef = {
            r
            for (r,) in conn.execute(
                "SELECT DISTINCT revision FROM archfiles WHERE obsid = ? AND isdefault = 1",
                (obsid,),
            )
        }
        if isdef - ({default} if default is not None else set()):
            bad.append(f"isdefault set on revisions {sorted(isdef)}")
        unset = conn.execute(
            "SELECT count(*) FROM archfiles WHERE obsid = ? AND revision = ? "
            "AND isdefault IS NOT 1",
            (obsid, default),
        ).fetchone()[0]
        if unset:
            bad.append(f"isdefault unset on {unset} files of the default v{default:02d}")
        if bad:
            problems.append(f"obsid {obsid}: " + "; ".join(bad))
            if repair:
                revs = complete.get(obsid, set())
                d = default if default in revs else None
                la = last if last in revs else (max(revs) if revs else None)
                relink(product, index, obsid, d, la)
                repairs.append(f"obsid {obsid}: links and isdefault set to default {d}, last {la}")
    # Links on disk for obsids the table does not know (e.g. hand-made) are reported.
    for obsid, link in revision_links(root):
        if obsid not in links:
            problems.append(f"link {link.relative_to(root)} has no obsid_links row")
            if repair:
                link.unlink()
                repairs.append(f"removed stray link {link.relative_to(root)}")
    for tmp in sorted(root.glob("[0-9][0-9]/.*.tmp*")):
        problems.append(f"temporary link {tmp.name} of an interrupted relink")
        if repair:
            tmp.unlink(missing_ok=True)
            repairs.append(f"removed temporary link {tmp.name}")
    return problems, repairs
