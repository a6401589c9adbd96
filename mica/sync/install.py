"""Verified files into the local archive, so that a reader sees it before or after a sync.

Every file reaching this module lies in the staging folder under its digest, verified
(`mica.sync.client`). Each layout installs the way its own updates do:

* ``time`` (L0): every file validated as any ingest validates it (the product's checks, the
  provenance marker), then placed under its final name with an intent row and indexed in
  *one* transaction for the whole sync (the engine's ingest order, `mica.engine.ingest`,
  with one batch): a reader's snapshot holds none or all of the new files. The store
  chunks of the touched partitions are then rebuilt from the files, as after an update;
* ``obsid`` (aspect L1, obspars): each revision ingested (validated, one transaction), the
  files beside it copied, the revision marked complete, then the links moved to the
  server's default and last revisions (`mica.engine.obsid_layout`);
* ``views`` (``aca-hdr3``): each chunk written under the generation its identity names
  (`synced_chunk_path`), then one transaction records them all in ``store_chunks`` with
  the identity and block digests the server's row recorded (readers check the chunk's
  blocks as they check one built here), and in ``synced_parts`` (chunks held without their
  files, which `mica check` takes as current), and drops the old ones, as the store's own
  commit does (`mica.engine.colstore`).
  The server's chunk holds the rows of every file of its partition there, so it also
  serves the L0 files of the partition this archive holds (an ``aca-l0`` sync of a few
  days keeps the header-3 rows of the others);
  only a partition with files the server's chunk lacks (an update here) keeps its own;
* ``calib`` and ``derived``: each folder installed whole by one rename, then a derived
  product's table renamed over the old one, then the links.

`missing` compares a product's selected entries with what the archive holds, so a sync
transfers only what is missing or changed.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mica.engine.atomic import make_folders, replace_durable, write_folder_atomic
from mica.engine.colstore import STORE_DIR, ColumnStore
from mica.engine.digests import SIDECAR_SUFFIX, replace_with_record, sidecar
from mica.engine.executors.process import ProcessExecutor
from mica.engine.index import ArchiveIndex, OlderArchiveTable, archive_problem

# One batch for the whole sync (the engine's steps, in its order): `ValidateStep` is the
# ingest's validation step, `decide_placement` applies the revision rules to a validated file,
# `apply_placements` places and indexes a batch in one transaction.
from mica.engine.ingest import (
    IngestReport,
    ValidateStep,
    apply_placements,
    decide_placement,
    ingest_files,
    quarantine,
    recover_pending,
)
from mica.engine.lock import UpdateLock
from mica.engine.obsid_layout import (
    default_link,
    last_link,
    mark_revision,
    recover_links,
    relink,
    revision_complete,
    set_link,
    version_dir,
)
from mica.engine.product import RejectedFile
from mica.engine.provenance import archive_kind, check_file, read_provenance, write_provenance
from mica.errors import ProvenanceError, SyncError
from mica.sync.manifest import Entry, SyncProduct, digest_file, obsid_of

#: the table of partitions whose chunk a sync installed without the partition's files
SYNCED_PARTS_SQL = "CREATE TABLE IF NOT EXISTS synced_parts (part text PRIMARY KEY)"


def check_provenance(product: SyncProduct, root: Path, record: dict[str, Any] | None) -> None:
    """Refuse a server's product of another kind (real, simulated) than the local one."""
    theirs = (record or {}).get("kind")
    ours = archive_kind(root) if root.exists() else None
    if theirs and ours and theirs != ours:
        raise ProvenanceError(
            f"{root} holds {ours} data and the server's {product.name} is {theirs}: "
            "mixing them is refused; sync into another archive (--archive)"
        )


def ensure_provenance(root: Path, record: dict[str, Any] | None, url: str) -> None:
    """Write the server's ``archive.json`` where the product folder has none, with the URL
    it was synced from (``synced_from``)."""
    if record is not None and read_provenance(root) is None:
        write_provenance(root, {**record, "synced_from": url})


def _index(product: SyncProduct, root: Path) -> ArchiveIndex | None:
    """The product's index opened read-only (None: no archive there yet)."""
    if archive_problem(root, product=product.entry.name) is not None:
        return None
    return ArchiveIndex.open_for_reading(product.description(), root)


def _same_file(path: Path, entry: Entry, digest: bool) -> bool:
    try:
        if path.is_symlink() or path.stat().st_size != entry.size:
            return False
    except OSError:
        return False
    return not digest or digest_file(path) == entry.sha256


def missing(product: SyncProduct, root: Path, entries: list[Entry]) -> list[Entry]:
    """The entries the archive does not hold as the manifest says (links included)."""
    layout = product.layout
    index = _index(product, root) if layout in ("time", "obsid", "views") else None
    try:
        if layout == "time":
            held = index.archived(Path(e.path).name for e in entries) if index else set()
            return [
                e
                for e in entries
                if Path(e.path).name not in held or not _same_file(root / e.path, e, False)
            ]
        if layout == "views":
            chunks = _chunks(index) if index else {}
            return [
                e
                for e in entries
                if (
                    chunks.get(e.part, (None, None, None))[::2] != (e.files, e.digests)
                    or not _same_size(root / chunks[e.part][1], e.size)
                )
                and not (index and _local_only(product, index, e))
            ]
        out = []
        for e in entries:
            path = root / e.path
            if e.kind == "link":
                if not (path.is_symlink() and os.readlink(path) == e.target):
                    out.append(e)
            elif layout == "obsid":
                complete = index is not None and revision_complete(index, e.obsid, e.revision)
                if not complete or not _same_file(path, e, False):
                    out.append(e)
            elif not _same_file(path, e, True):
                out.append(e)
        return out
    finally:
        if index is not None:
            index.close()


def _same_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def _local_only(product: SyncProduct, index: ArchiveIndex, entry: Entry) -> bool:
    """Whether the archive holds files of a chunk's partition that the server's chunk was
    not built from (an update here): the chunk built here from them stays. Unless the chunk
    there is itself a sync's, kept beside those files (`ColumnStore._serves`: it holds files
    this archive lacks): the server's newer chunk replaces it."""
    sql, params = product.description().partition_where(entry.part)
    rows = index.query(sql, params, columns="filename, checksum")
    listed = set((entry.files or "").splitlines()[1:])
    here = {f"{r['filename']} {r['checksum']}" for r in rows}
    if here <= listed:
        return False
    try:
        current = index.conn.execute(
            "SELECT files FROM store_chunks WHERE part = ? AND part IN "
            "(SELECT part FROM synced_parts)",
            (entry.part,),
        ).fetchone()
    except OlderArchiveTable:  # no sync installed a chunk here yet
        current = None
    if current is None:
        return True
    names = {line.split(" ", 1)[0] for line in here}
    return all(line.split(" ", 1)[0] in names for line in current[0].splitlines()[1:])


def held_chunks(product: SyncProduct, root: Path) -> dict[str, Path]:
    """part -> the file of the store chunk the archive records for it (a view product's):
    an older generation of a chunk a sync brings, whose pieces it reuses
    (`mica.sync.patch`)."""
    index = _index(product, root) if product.layout == "views" else None
    if index is None:
        return {}
    with index:  # (paths alone: the file lists and digests `_chunks` reads are megabytes)
        try:
            rows = index.conn.execute("SELECT part, path FROM store_chunks").fetchall()
        except sqlite3.OperationalError:  # no store table yet
            return {}
    return {part: root / path for part, path in rows}


def _chunks(index: ArchiveIndex) -> dict[str, tuple[str, str, str | None]]:
    """part -> (file list, path, digests) of the index's store chunks."""
    try:
        rows = index.conn.execute("SELECT part, files, path, digests FROM store_chunks")
        return {part: (files, path, digests) for part, files, path, digests in rows}
    except sqlite3.OperationalError:  # an index without a store table (or its digests) yet
        return {}


def synced_chunk_path(entry: Entry) -> str:
    """Where a synced chunk is installed (relative to the product folder): under the
    generation its recorded identity names, as a chunk built here is
    (`ColumnStore.new_chunk_path`), so its name, its identity and the seed of its digests
    agree."""
    try:
        generation = int(json.loads(entry.digests or "")["identity"]["generation"])
    except (ValueError, KeyError, TypeError) as err:
        raise SyncError(f"store chunk {entry.part} comes with unreadable digests ({err})") from err
    return f"{STORE_DIR}/{entry.part}.{generation}.h5"


class Installer:
    """Installs one product's verified files (see the module docstring).

    Parameters
    ----------
    product : SyncProduct
        The product.
    root : Path
        Its local folder.
    staged : dict
        digest -> verified file in the staging folder.
    """

    def __init__(self, product: SyncProduct, root: Path, staged: dict[str, Path]):
        self.product = product
        self.root = root
        self.staged = staged
        self.lines: list[str] = []
        self.rejected: list[str] = []
        self._named = root.parent / ".sync" / "named"

    def _file(self, entry: Entry) -> Path:
        """The staged file of ``entry`` under the entry's own name (a hard link: two entries
        may share a digest, and the ingest moves what it is given)."""
        folder = self._named / entry.sha256[:16]
        make_folders(folder)
        path = folder / Path(entry.path).name
        path.unlink(missing_ok=True)
        os.link(self.staged[entry.sha256], path)
        return path

    def install(self, entries: list[Entry]) -> list[str]:
        """Install ``entries`` (those `missing` found); returns lines of what was done."""
        make_folders(self.root)
        with UpdateLock(self.root):
            try:
                getattr(self, f"_install_{self.product.layout}")(entries)
            finally:
                shutil.rmtree(self._named, ignore_errors=True)
        return self.lines

    # --- time: one batch, one index transaction ------------------------------------------
    def _install_time(self, entries: list[Entry]) -> None:
        desc = self.product.description()
        files = [e for e in entries if e.kind == "file"]
        with ArchiveIndex(desc, self.root) as index:
            recover_pending(desc, index)
            items = sorted((Path(e.path).name, self._file(e)) for e in files)
            # validated in worker processes, the arrays kept for the store chunks built below
            run = ProcessExecutor(None, preload=[type(desc).__module__])
            results = run.map(ValidateStep(desc, desc.has_store), items)
            kind = archive_kind(self.root)
            placements, report, loaded = [], IngestReport(), {}
            for (name, path), result in zip(items, results):
                try:
                    row, arrays, file_is = _validated(name, result)
                    check_file(row["filename"], file_is, kind, self.root)
                    placement = decide_placement(desc, index, row, path, report)
                except RejectedFile as err:
                    quarantine(self.root, path, err)
                    self.rejected.append(str(err))
                    continue
                if placement is not None:
                    placements.append(placement)
                    loaded.update(arrays)
            parts = apply_placements(desc, index, placements, report)
            if desc.has_store and (parts or index.dirty_parts()):
                ColumnStore(desc, index).rebuild(parts | set(index.dirty_parts()), loaded)
        self.lines.append(
            f"{self.product.name}: {len(report.ingested)} files installed"
            + (f", {len(self.rejected)} refused" if self.rejected else "")
        )

    # --- obsid: revision by revision, then the links -------------------------------------
    def _install_obsid(self, entries: list[Entry]) -> None:
        desc = self.product.description()
        revisions: dict[tuple[int, int], list[Entry]] = {}
        links: dict[int, dict[str, int]] = {}
        for e in entries:
            if e.kind == "link":
                _, rev = obsid_of(e.target or "")
                which = "last" if e.path.endswith("_last") else "default"
                links.setdefault(e.obsid, {})[which] = rev
            else:
                revisions.setdefault((e.obsid, e.revision), []).append(e)
        done = 0
        with ArchiveIndex(desc, self.root) as index:
            recover_pending(desc, index)
            recover_links(desc, index)
            for (obsid, rev), group in sorted(revisions.items()):
                indexed = [e for e in group if e.kind == "file"]
                report = ingest_files(
                    desc, [(Path(e.path).name, self._file(e)) for e in indexed], index=index
                )
                if report.rejected:
                    self.rejected += [str(r) for r in report.rejected]
                    continue  # not marked complete: readers never list it
                for e in group:
                    if e.kind == "extra":
                        dest = version_dir(self.root, obsid, rev) / Path(e.path).name
                        replace_durable(self._file(e), dest)
                held = index.query("obsid = ? AND revision = ?", (obsid, rev))
                mark_revision(index, obsid, rev, len(held))
                done += 1
            for obsid in sorted({o for o, _ in revisions} | set(links)):
                server = links.get(obsid, {})
                state = _links_now(self.root, obsid)
                default = server.get("default", state.get("default"))
                last = server.get("last", default)
                relink(desc, index, obsid, default, last)
        self.lines.append(
            f"{self.product.name}: {done} obsid revisions installed"
            + (f", {len(self.rejected)} files refused" if self.rejected else "")
        )

    # --- views: chunks under new names, one transaction ----------------------------------
    def _install_views(self, entries: list[Entry]) -> None:
        desc = self.product.description()
        with ArchiveIndex(desc, self.root) as index:
            recover_pending(desc, index)
            store = ColumnStore(desc, index)  # makes the store table
            index.conn.execute(SYNCED_PARTS_SQL)
            old = _chunks(index)
            todo = []
            for e in entries:
                if not _local_only(self.product, index, e):
                    todo.append((e, synced_chunk_path(e)))
            with index.transaction():
                index.add_pending([(str(self.root / rel), "scratch") for _, rel in todo])
            for e, rel in todo:
                make_folders((self.root / rel).parent)
                replace_durable(self._file(e), self.root / rel)
            # the old chunks' files, but one whose name the new chunk took (fetched again)
            replaced = {e.part: rel for e, rel in todo if e.part in old}
            drops = [str(self.root / old[p][1]) for p, rel in replaced.items() if old[p][1] != rel]
            with index.transaction():
                for e, rel in todo:
                    index.conn.execute(
                        "INSERT OR REPLACE INTO store_chunks (part, path, files, nrows, "
                        "tstart, tstop, digests) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (e.part, rel, e.files, e.nrows, e.tstart, e.tstop, e.digests),
                    )
                    index.conn.execute("INSERT OR IGNORE INTO synced_parts VALUES (?)", (e.part,))
                index.clear_pending([str(self.root / rel) for _, rel in todo])
                index.add_pending([(d, "drop") for d in drops])
                index.clear_dirty([e.part for e, _ in todo])
            for d in drops:
                Path(d).unlink(missing_ok=True)
            with index.transaction():
                index.clear_pending(drops)
            store.derive_tables(e.part for e, _ in todo)  # e.g. the mission's daily statistics
            del store
        self.lines.append(f"{self.product.name}: {len(todo)} store chunks installed")

    # --- calib, derived: folders whole, then the table, then links ------------------------
    def _install_tree(self, entries: list[Entry]) -> None:
        folders: dict[str, list[Entry]] = {}
        tables, links = [], []
        for e in entries:
            if e.kind == "link":
                links.append(e)
            elif e.kind == "table" or "/" not in e.path:
                tables.append(e)
            else:
                folders.setdefault(e.path.rsplit("/", 1)[0], []).append(e)
        for folder, group in sorted(folders.items()):
            files = {Path(e.path).name: self.staged[e.sha256].read_bytes() for e in group}
            here = self.root / folder
            if here.is_dir():  # files of the folder the manifest did not list as changed
                for path in here.iterdir():
                    if path.is_file() and path.name not in files:
                        files[path.name] = path.read_bytes()
            write_folder_atomic(here, files)
        # a table with its digest record, the record first accepting both (a reader checks
        # the one against the other)
        records = {e.path: e for e in tables if e.path.endswith(SIDECAR_SUFFIX)}
        for e in tables:
            record = records.pop(str(sidecar(Path(e.path))), None)
            if e.path.endswith(SIDECAR_SUFFIX):
                continue
            if record is None:
                replace_durable(self._file(e), self.root / e.path)
            else:
                replace_with_record(self._file(e), self.root / e.path, self._file(record))
        for e in records.values():  # a record whose table did not change
            replace_durable(self._file(e), self.root / e.path)
        for e in links:
            set_link(self.root / e.path, e.target or "")
        self.lines.append(
            f"{self.product.name}: {len(folders)} folders, {len(tables)} tables, "
            f"{len(links)} links installed"
        )

    _install_calib = _install_tree
    _install_derived = _install_tree


def _validated(name: str, result: Any) -> tuple[dict[str, Any], Any, str | None]:
    """A `validate_files` result as (row, arrays, kind); `RejectedFile` when refused."""
    if result is None or not isinstance(result, tuple):
        raise RejectedFile(name, f"not validated: {result}")
    row, arrays, kind = result
    if isinstance(row, RejectedFile):
        raise row
    return row, arrays, kind


def _links_now(root: Path, obsid: int) -> dict[str, int]:
    """The revisions the local links of ``obsid`` show."""
    out = {}
    for which, link in (("default", default_link(root, obsid)), ("last", last_link(root, obsid))):
        if link.is_symlink():
            _, rev = obsid_of(os.readlink(link))
            if rev is not None:
                out[which] = rev
    return out


def remove_staged(staged: Iterable[Path]) -> None:
    for path in staged:
        Path(path).unlink(missing_ok=True)
