"""`mica sync`: plan, transfer and install what a published archive holds and this one lacks.

A sync reads the server's head, the parts of the asked products that may hold selected
entries (kept in ``<archive>/.sync/parts`` by content name: an up-to-date sync reads the head
alone), selects the entries, compares them with the local archive (`mica.sync.install.missing`)
and downloads what is missing or changed (`mica.sync.client`) into ``<archive>/.sync/staging``
before installing anything. A file the server no longer has as its manifest says (a publish
since the head was read) makes the sync read the head again and plan again (a few times);
a server whose files differ from the head it serves is a `SyncError` naming the file and
asking for ``mica publish`` there. Interrupted (Ctrl-C, a lost connection), a sync leaves
verified files and partial downloads in staging, nothing in the archive; the next one
resumes them.

The archive records what it was synced from and what it asked for, per product
(``sync.json`` in the product folder, `mica.engine.synced`), so that a reader asked for data
outside it names the ``mica sync`` command that brings them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mica.config import archive_root
from mica.engine.atomic import make_folders, write_bytes_atomic
from mica.engine.colstore import STORE_VERSION, ColumnStore
from mica.engine.index import ArchiveIndex, archive_problem
from mica.engine.lock import UpdateLock
from mica.engine.synced import SYNC_RECORD, read_record
from mica.errors import SyncError
from mica.sync.client import ServerChanged, SyncClient, Transfer, TransferProgress
from mica.sync.install import (
    Installer,
    check_provenance,
    ensure_provenance,
    held_chunks,
    missing,
)
from mica.sync.manifest import (
    HEAD_NAME,
    PARTS_CACHE,
    PUBLISH_DIR,
    Entry,
    Head,
    PartInfo,
    Selection,
    SyncProduct,
    chosen_products,
    decode_part,
    is_private,
)

#: plans made again when the server published during a sync
PLAN_ATTEMPTS = 3
#: the sync's own folder in the archive (its lock, the parts read, the staging folder)
SYNC_DIR = ".sync"
STAGING = f"{SYNC_DIR}/staging"


@dataclass
class ProductPlan:
    """One product's part of a sync: its selected entries and those to transfer."""

    product: SyncProduct
    root: Path
    provenance: dict[str, Any] | None
    selected: list[Entry]
    needed: list[Entry]
    #: part -> the chunk file held here for it (its pieces are reused, `mica.sync.patch`)
    held: dict[str, Path] = field(default_factory=dict)

    def transfers(self) -> list[Transfer]:
        folder = self.product.folder
        return [
            Transfer(
                f"{self.product.name}/{e.path}",
                f"{folder}/{e.path}",
                e.size,
                e.sha256,
                self.held.get(e.part) if e.part is not None and e.pieces else None,
                e.pieces,
            )
            for e in self.needed
            if e.kind != "link"
        ]


@dataclass
class SyncReport:
    """What a sync did (or, dry, would do)."""

    url: str
    plans: list[ProductPlan] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    received: int = 0
    #: (bytes fetched, size) of each store chunk made from its older generation here
    patched: list[tuple[int, int]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.refused

    @property
    def patched_bytes(self) -> tuple[int, int]:
        """(bytes fetched, bytes made) over the store chunks made from their older generation
        here."""
        return sum(f for f, _ in self.patched), sum(size for _, size in self.patched)

    def plan_lines(self) -> list[str]:
        out = []
        for plan in self.plans:
            moving = [e for e in plan.needed if e.kind != "link"]
            nbytes = sum(e.size for e in moving)
            links = len(plan.needed) - len(moving)
            out.append(
                f"{plan.product.name}: {len(plan.selected)} entries selected, "
                f"{len(moving)} files to transfer ({_size(nbytes)})"
                + (f", {links} links to set" if links else "")
            )
        return out

    def summary(self) -> str:
        what = "would transfer" if self.dry_run else "transferred"
        nbytes = sum(e.size for p in self.plans for e in p.needed if e.kind != "link")
        head = f"sync from {self.url}: {what} {_size(nbytes)}" + (
            "" if self.dry_run else f" ({_size(self.received)} received in all)"
        )
        lines = self.plan_lines() + self.lines
        if self.patched:
            fetched, size = self.patched_bytes
            lines.append(
                f"{len(self.patched)} store chunks made from their older generation here: "
                f"{_size(fetched)} fetched of {_size(size)}"
            )
        return "\n".join(
            [head, *(f"  {line}" for line in lines)] + [f"  refused: {r}" for r in self.refused]
        )


def _size(nbytes: int) -> str:
    """``'512 B'``, ``'12.3 kB'``, ``'4.5 MB'``, ``'1.20 GB'``."""
    if nbytes < 1000:
        return f"{nbytes} B"
    if nbytes < 1e6:
        return f"{nbytes / 1e3:.1f} kB"
    return f"{nbytes / 1e6:.1f} MB" if nbytes < 1e9 else f"{nbytes / 1e9:.2f} GB"


def _safe(entry: Entry, where: str) -> Entry:
    """``entry`` when its path stays inside its product folder (a manifest is the server's
    word, not ours); `SyncError` otherwise."""
    parts = entry.path.split("/")
    bad = entry.path.startswith("/") or any(p in ("", ".", "..") for p in parts)
    bad = bad or is_private(entry.path)  # the index, a lock, archive.json: never the server's
    if entry.kind == "link":
        bad = bad or not entry.target or "/" in entry.target or entry.target in (".", "..")
    if entry.kind == "chunk":
        bad = bad or not entry.part or ".." in entry.part.split("/")
    if bad:
        raise SyncError(f"{where} names {entry.path!r}, outside its product folder: refused")
    return entry


class _Planner:
    def __init__(self, client: SyncClient, archive: Path):
        self.client = client
        self.archive = archive
        self.cache = archive / PARTS_CACHE

    def head(self) -> Head:
        rel = f"{PUBLISH_DIR}/{HEAD_NAME}"
        return Head.decode(self.client.get_bytes(rel, "the manifest head"), self.client.where(rel))

    def part(self, info: PartInfo) -> list[Entry]:
        """A part's entries: from the cache when it holds this digest, else the server."""
        cached = self.cache / info.name
        where = self.client.where(f"{PUBLISH_DIR}/{info.name}")
        if cached.exists():
            data = cached.read_bytes()
            if hashlib.sha256(data).hexdigest() == info.sha256:
                return [_safe(e, where) for e in decode_part(data, str(cached))]
        data = self.client.get_bytes(f"{PUBLISH_DIR}/{info.name}", f"manifest part {info.name}")
        if hashlib.sha256(data).hexdigest() != info.sha256:
            raise ServerChanged(f"manifest part {info.name}", where, "its digest is not the head's")
        entries = decode_part(data, where)
        write_bytes_atomic(cached, data)
        return [_safe(e, where) for e in entries]

    def forget_parts(self, head: Head) -> None:
        """Remove the kept parts ``head`` no longer names (replaced on the server)."""
        named = {p.name for ph in head.products.values() for p in ph.parts}
        for path in self.cache.glob("*/*/*") if self.cache.is_dir() else ():
            if path.relative_to(self.cache).as_posix() not in named:
                path.unlink(missing_ok=True)

    def plan(
        self, head: Head, products: list[SyncProduct], selection: Selection
    ) -> list[ProductPlan]:
        plans = []
        for product in products:
            ph = head.products.get(product.name)
            if ph is None:
                raise SyncError(
                    f"{self.client.url} publishes no {product.name}; it publishes "
                    f"{', '.join(sorted(head.products)) or 'nothing'}"
                )
            if ph.store_version is not None and ph.store_version != STORE_VERSION:
                raise SyncError(
                    f"the store chunks of {product.name} at {self.client.url} are of layout "
                    f"v{ph.store_version}, this mica's are v{STORE_VERSION}: run the same mica "
                    "version on both sides"
                )
            root = self.archive / product.folder
            check_provenance(product, root, ph.provenance)
            selected = [
                e for info in ph.parts if selection.wants_part(info) for e in self.part(info)
                if selection.wants(e)
            ]  # fmt: skip
            if any(e.kind == "chunk" and not e.digests for e in selected):
                raise SyncError(
                    f"the store chunks of {product.name} at {self.client.url} come without "
                    "their digests (a mica from before store digests publishes them): run the "
                    "same mica version on both sides"
                )
            needed = missing(product, root, selected)
            held = held_chunks(product, root) if any(e.pieces for e in needed) else {}
            plans.append(ProductPlan(product, root, ph.provenance, selected, needed, held))
        return plans


def sync(
    url: str,
    products: Iterable[str],
    selection: Selection | None = None,
    archive: str | Path | None = None,
    transfers: int = 4,
    dry_run: bool = False,
    progress: bool = False,
    client: SyncClient | None = None,
    on_plan: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    """Bring the asked products of the archive published at ``url`` into ``archive``.

    Parameters
    ----------
    url : str
        Where the published archive's root is served.
    products : iterable of str
        Product names (``aca-l0``, ``aca-hdr3``, ``asp-l1``, ...).
    selection : Selection, optional
        The time range, slots and obsids (default: everything).
    archive : path, optional
        The local archive root (default: `mica.config.archive_root`).
    transfers : int
        Files downloaded at a time.
    dry_run : bool
        Plan only: the report says what would move and how big.
    progress : bool
        Show the transfer's progress (bytes, files, rate, ETA) on stderr.
    client : SyncClient, optional
        The client to use (tests: its retries and backoff); closed by the caller.
    on_plan : callable, optional
        Called with the report once planned (before any transfer).

    Returns
    -------
    SyncReport
    """
    selection = selection or Selection()
    archive = archive_root(archive)
    chosen = chosen_products(products)
    if not chosen:
        raise SyncError("no product to sync: name them with --products")
    own = client is None
    client = client or SyncClient(url, transfers)
    report = SyncReport(client.url, dry_run=dry_run)
    try:
        with UpdateLock(archive / SYNC_DIR):  # one sync of an archive at a time
            _run(client, report, archive, chosen, selection, dry_run, progress, on_plan)
    finally:
        report.received = client.received
        report.patched = list(client.patched)
        if own:
            client.close()
    return report


def _run(
    client: SyncClient,
    report: SyncReport,
    archive: Path,
    chosen: list[SyncProduct],
    selection: Selection,
    dry_run: bool,
    progress: bool,
    on_plan: Callable[[SyncReport], None] | None,
) -> None:
    """`sync`'s steps: plan (again when the server published meanwhile), transfer, install."""
    planner = _Planner(client, archive)
    staging = archive / STAGING
    head = planner.head()
    for attempt in range(PLAN_ATTEMPTS):
        try:
            report.plans = planner.plan(head, chosen, selection)
            if on_plan is not None:
                on_plan(report)
            if dry_run:
                return
            staged = _transfer(client, report, staging, progress)
            break
        except ServerChanged as changed:
            newer = planner.head()
            if newer.same_parts(head) or attempt == PLAN_ATTEMPTS - 1:
                raise SyncError(
                    f"{changed}: the server's files differ from its manifest "
                    f"({client.where(PUBLISH_DIR + '/' + HEAD_NAME)}); run `mica publish` "
                    "there, then sync again"
                ) from changed
            head = newer  # published meanwhile: plan again on the new head
    for plan in report.plans:
        if not plan.needed:
            continue
        make_folders(plan.root)
        ensure_provenance(plan.root, plan.provenance, client.url)
        installer = Installer(plan.product, plan.root, staged)
        report.lines += installer.install(plan.needed)
        report.refused += installer.rejected
    for plan in report.plans:
        _record(plan, client.url, selection)
    if report.ok:  # all installed: partial files of earlier plans are of no more use
        shutil.rmtree(staging, ignore_errors=True)
        planner.forget_parts(head)


def _transfer(
    client: SyncClient, report: SyncReport, staging: Path, progress: bool
) -> dict[str, Path]:
    items = {t.sha256: t for p in report.plans for t in p.transfers()}  # one per digest
    bar = None
    if progress and items:
        bar = TransferProgress("sync", len(items), sum(t.size for t in items.values()))
    if bar is None:
        return client.fetch_all(items.values(), staging)
    with bar.shown():
        return client.fetch_all(items.values(), staging, bar)


def _record(plan: ProductPlan, url: str, selection: Selection) -> None:
    """Add this sync's selection to the product folder's record."""
    if not plan.root.exists():
        return
    record = read_record(plan.root)
    entry = record.setdefault("products", {}).setdefault(plan.product.name, {})
    entry["server"] = url
    selections = entry.setdefault("selections", [])
    if selection.to_json() not in selections:
        selections.append(selection.to_json())
    entry["synced"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_bytes_atomic(plan.root / SYNC_RECORD, (json.dumps(record, indent=1) + "\n").encode())


def fetch_removed_chunks(archive: str | Path | None, product: str) -> list[str]:
    """Fetch again the store chunks a sync installed in ``product``'s folder that have no
    file any more (``mica check --repair`` removes a damaged one: there are no files here to
    rebuild it from), from the server the folder's sync record names.

    Parameters
    ----------
    archive : path or None
        The archive root (None: `mica.config.archive_root`).
    product : str
        A registry product name (``aca-l0``: its header-3 views' chunks).

    Returns
    -------
    list of str
        What was done, one line each (none: nothing to fetch). A sync that fails is said,
        not raised: the check reports the chunk and the command that fetches it.
    """
    archive = archive_root(archive)
    lines = []
    for view in chosen_products(None):
        if view.layout != "views" or view.entry.name != product:
            continue
        root = archive / view.folder
        server = read_record(root).get("products", {}).get(view.name, {}).get("server")
        gone = _removed_chunks(view, root)
        if not server or not gone:
            continue
        selection = Selection(min(t for t, _ in gone), max(t for _, t in gone))
        try:
            report = sync(server, [view.name], selection, archive=archive)
        except (SyncError, OSError) as err:
            lines.append(f"{len(gone)} store chunks of {view.name} not fetched again: {err}")
            continue
        lines += report.summary().splitlines()
    return lines


def _removed_chunks(view: SyncProduct, root: Path) -> list[tuple[float, float]]:
    """The time spans of the chunks a sync installed in ``root`` whose file is gone."""
    if archive_problem(root, product=view.entry.name) is not None:
        return []
    product = view.description()
    with ArchiveIndex.open_for_reading(product, root) as index:
        gone = ColumnStore(product, index).synced_gone()
    return [(chunk["tstart"], chunk["tstop"]) for chunk in gone.values()]
