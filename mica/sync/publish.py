"""`mica publish`: write the manifests that let `mica sync` copy parts of this archive.

For each product (the registry's, and the store-view products of
`mica.sync.manifest.VIEW_PRODUCTS`) the entries are listed from what readers trust: the index
rows of a time or obsid product (and the files beside an obsid revision, its links), the
current store chunks of a view product (``store_chunks``, not dirty), the folders of a
calibration or derived product (and a derived product's table). Each entry's digest is reused
from the previous manifest while the file's size and modification time stay, so a publish
after an update digests only the new files.

The entries are split into parts by period (`mica.sync.manifest.period_of`); each part is
written under a name holding its digest, then the head is replaced (one atomic rename), then
the parts neither the new nor the previous head names are removed: a sync that read the
previous head still finds its parts. Publishing twice without a change writes nothing.
Nothing is locked: a file an update removes while it is listed makes the product's listing
start again from a fresh snapshot.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mica.config import archive_root
from mica.engine.atomic import write_bytes_atomic
from mica.engine.colstore import STORE_VERSION
from mica.engine.index import ArchiveIndex, archive_problem
from mica.engine.provenance import read_provenance
from mica.errors import SyncError
from mica.sync.manifest import (
    HEAD_NAME,
    PARTS_DIR,
    PUBLISH_DIR,
    UNDATED,
    Entry,
    Head,
    PartInfo,
    ProductHead,
    SyncProduct,
    chosen_products,
    day_of,
    decode_part,
    digest_file,
    digest_file_and_pieces,
    encode_part,
    is_private,
    obsid_of,
    period_of,
)
from mica.time import SECONDS_PER_DAY, to_secs

#: listings of a product started again when a file vanished under them (an update running)
_ATTEMPTS = 3


@dataclass
class PublishReport:
    """What a publish did, per product: entries, bytes, parts written and kept."""

    head: Path
    changed: bool = False
    lines: list[str] = field(default_factory=list)

    def summary(self) -> str:
        state = "published" if self.changed else "already published, nothing changed"
        return "\n".join([f"{state}: {self.head}", *(f"  {line}" for line in self.lines)])


class _Digests:
    """Digests of a product's files, reused from its previous manifest while a file's size
    and modification time are those it had then."""

    def __init__(self, previous: Iterable[Entry]):
        self.known = {e.path: e for e in previous}
        self.computed = 0

    def entry(self, root: Path, rel: str, kind: str, **meta: Any) -> Entry:
        """The entry of the file ``rel``; a store chunk's with its piece checksums (a sync
        holding an older generation fetches the pieces that differ, `mica.sync.patch`)."""
        path = root / rel
        st = path.lstat()  # FileNotFoundError: removed by an update (the listing restarts)
        old = self.known.get(rel)
        chunk = kind == "chunk"
        if (
            old is not None
            and old.size == st.st_size
            and old.mtime_ns == st.st_mtime_ns
            and (old.pieces is not None or not chunk)
        ):
            digest, pieces = old.sha256, old.pieces
        elif chunk:
            digest, found = digest_file_and_pieces(path)
            pieces = found.to_text()
            self.computed += 1
        else:
            digest, pieces = digest_file(path), None
            self.computed += 1
        return Entry(rel, kind, st.st_size, digest, mtime_ns=st.st_mtime_ns, pieces=pieces, **meta)


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _walk(root: Path) -> Iterator[tuple[str, bool]]:
    """(relative path, is a link) of every published file and link under ``root``."""
    for folder, dirs, names in os.walk(root):
        base = Path(folder)
        for name in sorted(names + [d for d in dirs if (base / d).is_symlink()]):
            rel = _rel(base / name, root)
            if not is_private(rel):
                yield rel, (base / name).is_symlink()
        dirs[:] = sorted(d for d in dirs if not (base / d).is_symlink())
        dirs[:] = [d for d in dirs if not is_private(_rel(base / d, root))]


def _time_entries(product: SyncProduct, root: Path, digests: _Digests) -> list[Entry]:
    """The indexed files of a time product."""
    desc = product.description()
    with ArchiveIndex.open_for_reading(desc, root) as index, index.snapshot():
        rows = index.query()
    return [
        digests.entry(
            root,
            _rel(desc.path(row, root), root),
            "file",
            tstart=row["tstart"],
            tstop=row["tstop"],
            revision=row.get("revision"),
            slot=row.get("slot"),
            obsid=row.get("obsid"),
        )  # fmt: skip
        for row in rows
    ]


def _view_entries(product: SyncProduct, root: Path, digests: _Digests) -> list[Entry]:
    """The current store chunks of a view product's views."""
    desc = product.description()
    layout = desc.store_description
    with ArchiveIndex.open_for_reading(desc, root) as index, index.snapshot():
        rows = index.conn.execute(
            "SELECT part, path, files, nrows, tstart, tstop, digests FROM store_chunks "
            "WHERE part NOT IN (SELECT part FROM dirty_parts) AND digests IS NOT NULL "
            "ORDER BY part"
        ).fetchall()
    out = []
    for part, rel, files, nrows, tstart, tstop, recorded in rows:
        view = part.split("/", 1)[0]
        if view not in product.views:
            continue
        keys = dict(zip(layout.view_named(view).keys, part.split("/")[1:-1]))
        slot = int(keys["slot"]) if "slot" in keys else None
        out.append(
            digests.entry(
                root,
                rel,
                "chunk",
                part=part,
                files=files,
                nrows=nrows,
                digests=recorded,
                tstart=tstart,
                tstop=tstop,
                slot=slot,
            )  # fmt: skip
        )
    return out


def _obsid_entries(product: SyncProduct, root: Path, digests: _Digests) -> list[Entry]:
    """The indexed files of an obsid product's complete revisions, the files beside them
    (pipeline logs) and the obsids' links."""
    desc = product.description()
    with ArchiveIndex.open_for_reading(desc, root) as index, index.snapshot():
        rows = index.query()
        complete = set(index.conn.execute("SELECT obsid, revision FROM revisions").fetchall())
    complete = {tuple(r) for r in complete}
    out, folders, spans = [], {}, {}
    for row in rows:
        key = (row["obsid"], row["revision"])
        if key not in complete:
            continue  # a revision a running update is filling: published once complete
        path = desc.path(row, root)
        folders.setdefault(path.parent, key)
        lo, hi = spans.get(row["obsid"], (row["tstart"], row["tstop"]))
        spans[row["obsid"]] = (min(lo, row["tstart"]), max(hi, row["tstop"]))
        out.append(
            digests.entry(
                root,
                _rel(path, root),
                "file",
                tstart=row["tstart"],
                tstop=row["tstop"],
                obsid=row["obsid"],
                revision=row["revision"],
            )  # fmt: skip
        )
    indexed = {e.path for e in out}
    for folder, (obsid, revision) in sorted(folders.items()):
        for path in sorted(folder.iterdir()):
            rel = _rel(path, root)
            if rel not in indexed and path.is_file() and not is_private(rel):
                out.append(
                    digests.entry(
                        root,
                        rel,
                        "extra",
                        tstart=spans[obsid][0],
                        tstop=spans[obsid][1],
                        obsid=obsid,
                        revision=revision,
                    )  # fmt: skip
                )
    out += _links(root, spans)
    return out


def _links(root: Path, spans: dict[int, tuple[float, float]]) -> list[Entry]:
    """The links of obsid folders (``<OOOOO>``, ``<OOOOO>_last``) of the obsids in ``spans``
    (their time spans; an obsid without one: no time)."""
    out = []
    for link in sorted(root.glob("[0-9][0-9]/*")):
        rel = _rel(link, root)
        obsid, _ = obsid_of(rel)
        if link.is_symlink() and obsid is not None and not is_private(rel):
            target = os.readlink(link)
            span = spans.get(obsid, (None, None))
            out.append(Entry(rel, "link", 0, "", span[0], span[1], obsid, target=target))
    return out


def _calib_entries(product: SyncProduct, root: Path, digests: _Digests) -> list[Entry]:
    """The files of a calibration product's folders, dated by their id (``YYYYDDD``)."""
    out = []
    for rel, is_link in _walk(root):
        day = day_of(rel)
        if is_link or day is None or "/" not in rel:
            continue
        t0 = to_secs(day)
        out.append(digests.entry(root, rel, "tree", tstart=t0, tstop=t0 + SECONDS_PER_DAY))
    return out


def _derived_entries(product: SyncProduct, root: Path, digests: _Digests) -> list[Entry]:
    """A derived product's table and its folders (by obsid and revision, dated from the
    table's ``tstart``/``tstop`` where it has them)."""
    desc = product.description()
    spans: dict[int, tuple[float, float]] = {}
    table = desc.table(root)
    if table.exists():
        rows = table.read()
        names = rows.dtype.names or ()
        if {"obsid", "tstart", "tstop"} <= set(names):
            for obsid, t0, t1 in zip(rows["obsid"], rows["tstart"], rows["tstop"]):
                lo, hi = spans.get(int(obsid), (float(t0), float(t1)))
                spans[int(obsid)] = (min(lo, float(t0)), max(hi, float(t1)))
    out = []
    for rel, is_link in _walk(root):
        if is_link:
            continue
        if rel == desc.table_name:
            out.append(digests.entry(root, rel, "table"))
            continue
        obsid, revision = obsid_of(rel)
        lo, hi = spans.get(obsid, (None, None)) if obsid is not None else (None, None)
        out.append(
            digests.entry(root, rel, "tree", tstart=lo, tstop=hi, obsid=obsid, revision=revision)
        )
    return out + _links(root, spans)


#: layout -> the lister of a product's entries
LISTERS: dict[str, Callable[[SyncProduct, Path, _Digests], list[Entry]]] = {
    "time": _time_entries,
    "views": _view_entries,
    "obsid": _obsid_entries,
    "calib": _calib_entries,
    "derived": _derived_entries,
}


def publish_dir(archive: Path) -> Path:
    return Path(archive) / PUBLISH_DIR


def read_head(archive: Path) -> Head | None:
    """The archive's published head (None: never published)."""
    path = publish_dir(archive) / HEAD_NAME
    try:
        return Head.decode(path.read_bytes(), str(path))
    except FileNotFoundError:
        return None


def _previous_entries(archive: Path, head: Head | None, name: str) -> list[Entry]:
    if head is None or name not in head.products:
        return []
    out: list[Entry] = []
    for part in head.products[name].parts:
        path = publish_dir(archive) / part.name
        try:
            out += decode_part(path.read_bytes(), str(path))
        except (FileNotFoundError, SyncError):
            pass  # digested again
    return out


def _list(product: SyncProduct, root: Path, digests: _Digests) -> list[Entry]:
    for attempt in range(_ATTEMPTS):
        try:
            return LISTERS[product.layout](product, root, digests)
        except FileNotFoundError:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _parts(archive: Path, name: str, entries: list[Entry]) -> list[tuple[PartInfo, bytes]]:
    """The parts of a product's entries, one per period, with their content."""
    by_period: dict[str, list[Entry]] = {}
    for entry in sorted(entries, key=lambda e: e.path):
        by_period.setdefault(period_of(entry), []).append(entry)
    out = []
    for period, group in sorted(by_period.items()):
        data = encode_part(group)
        digest = hashlib.sha256(data).hexdigest()
        times = [e for e in group if e.tstart is not None and e.tstop is not None]
        obsids = [e.obsid for e in group if e.obsid is not None]
        info = PartInfo(
            period,
            f"{PARTS_DIR}/{name}/{period}.{digest[:16]}.json.gz",
            digest,
            len(data),
            len(group),
            sum(e.size for e in group),
            min((e.tstart for e in times), default=None) if period != UNDATED else None,
            max((e.tstop for e in times), default=None) if period != UNDATED else None,
            min(obsids, default=None),
            max(obsids, default=None),
        )
        out.append((info, data))
    return out


def publish(
    archive: str | Path | None = None,
    products: Iterable[str] | None = None,
    on_product: Callable[[str], None] | None = None,
) -> PublishReport:
    """Publish the archive's products (None: every product it holds) for `mica sync`.

    Parameters
    ----------
    archive : path, optional
        The archive root (default: `mica.config.archive_root`).
    products : iterable of str, optional
        Product names (registry names, ``aca-hdr3``); a product the archive does not hold
        is left out of the head, the products not named stay as published before.
    on_product : callable, optional
        Called with each product's name before it is listed (progress).

    Returns
    -------
    PublishReport
        The head written and one line per product.
    """
    archive = archive_root(archive)
    old = read_head(archive)
    heads: dict[str, ProductHead] = {}
    report = PublishReport(publish_dir(archive) / HEAD_NAME)
    written = kept = 0
    chosen = {p.name for p in chosen_products(products)}
    for product in chosen_products(products):
        root = archive / product.folder
        if not root.is_dir() or (
            product.layout in ("time", "obsid", "views")
            and archive_problem(root, product=product.entry.name) is not None
        ):
            continue
        if on_product is not None:
            on_product(product.name)
        digests = _Digests(_previous_entries(archive, old, product.name))
        entries = _list(product, root, digests)
        if product.layout == "views" and not entries:
            continue  # an L0 archive without header-3 chunks: nothing to offer
        parts = _parts(archive, product.name, entries)
        for info, data in parts:
            path = publish_dir(archive) / info.name
            if path.exists() and path.stat().st_size == info.size:
                kept += 1
                continue
            write_bytes_atomic(path, data)
            written += 1
        version = STORE_VERSION if product.layout == "views" else None
        heads[product.name] = ProductHead(
            product.name, product.layout, product.folder, read_provenance(root),
            [info for info, _ in parts], version,
        )  # fmt: skip
        report.lines.append(
            f"{product.name}: {len(entries)} entries, {sum(e.size for e in entries) / 1e6:.1f} MB"
            f" in {len(parts)} parts ({digests.computed} files digested)"
        )
    if products and old is not None:  # the products not asked for stay as published
        heads = {**{n: p for n, p in old.products.items() if n not in chosen}, **heads}
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    head = Head(heads, now)
    if head.same_parts(old):
        return report  # nothing changed: the head (and its date) stay
    write_bytes_atomic(report.head, head.encode())
    report.changed = True
    _remove_unnamed(archive, head, old)
    report.lines.append(f"{written} parts written, {kept} kept")
    return report


def _remove_unnamed(archive: Path, head: Head, old: Head | None) -> None:
    """Remove the parts neither ``head`` nor the previous head ``old`` names."""
    named = {
        p.name for h in (head, old) if h is not None for ph in h.products.values() for p in ph.parts
    }
    parts = publish_dir(archive) / PARTS_DIR
    for path in parts.glob("*/*.json.gz") if parts.is_dir() else ():
        if _rel(path, publish_dir(archive)) not in named:
            path.unlink(missing_ok=True)
