"""Update a per-obsid archive: fetch each obsid's default and last revisions, relink.

For every obsid: ask the source for its default and last revision; fetch each revision the
archive does not hold completely into staging; drop the files the product does not keep;
ingest the rest through the engine (intent, atomic rename, one transaction); copy the
pipeline logs beside them; mark the revision complete; then move the links
(`obsid_layout.relink`). Re-runs skip complete revisions, so they are idempotent; a killed
run is finished by the next one (pending intents, link intents, incomplete revisions).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mica.engine.index import ArchiveIndex
from mica.engine.ingest import STAGING_DIR, IngestReport, ingest_files, quarantine, recover_pending
from mica.engine.lock import UpdateLock
from mica.engine.obsid_layout import (
    ObsidProduct,
    check_obsid,
    link_state,
    mark_revision,
    recover_links,
    relink,
    revision_complete,
    version_dir,
)
from mica.engine.product import RejectedFile
from mica.engine.provenance import resolve_source
from mica.engine.update import update_range
from mica.sources import Source, SourceError
from mica.time import CxoTimeLike

Progress = Callable[[int, int, str], None]


@dataclass
class ObsidUpdateReport:
    """What an update did, obsid by obsid, and what failed."""

    product: str
    ingest: IngestReport = field(default_factory=IngestReport)
    done: dict[int, str] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    no_data: list[int] = field(default_factory=list)
    skipped_bad: list[int] = field(default_factory=list)
    dropped: int = 0
    recovered: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.ingest.rejected

    def summary(self) -> str:
        lines = [
            f"{self.product}: {len(self.done)} obsids updated, {len(self.no_data)} without "
            f"data upstream, {len(self.failed)} failed, {len(self.skipped_bad)} skipped "
            f"(bad-obsid list); files: {self.ingest.summary().splitlines()[0]}, "
            f"{self.dropped} dropped by product rules"
        ]
        lines += [f"  recovered: {r}" for r in self.recovered]
        lines += [f"  obsid {o}: {msg}" for o, msg in sorted(self.done.items())]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  FAILED obsid {o}: {msg}" for o, msg in sorted(self.failed.items())]
        lines += [f"  rejected {err}" for err in self.ingest.rejected]
        if self.no_data:
            lines.append("  no data upstream for obsids " + ", ".join(map(str, self.no_data)))
        return "\n".join(lines)


def read_bad_obsids(path: Path) -> set[int]:
    """Obsids of an ASCII list with an ``obsid`` header line (``#`` starts a comment)."""
    if not path.exists():
        return set()
    out = set()
    for line in path.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text and text.lower() != "obsid":
            out.add(check_obsid(text))
    return out


def _bad_list(product: ObsidProduct, root: Path) -> Path:
    """The product's bad-obsid list, written with its default content when absent."""
    path = root / product.bad_obsids_file
    if not path.exists() and product.default_bad_obsids:
        tmp = path.with_name("." + path.name + ".partial")
        tmp.write_text("obsid\n" + "".join(f"{o}\n" for o in product.default_bad_obsids))
        os.replace(tmp, path)
    return path


def _copy_atomic(src: Path, dest: Path) -> None:
    """Copy through a ``.partial`` name and rename, so a half-copied log is never in place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name("." + dest.name + ".partial")
    with open(src, "rb") as fin, open(tmp, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
        fout.flush()
        os.fsync(fout.fileno())
    os.replace(tmp, dest)


def _provisional(index: ArchiveIndex) -> list[int]:
    """Obsids whose newest revision is not (yet) the default: candidates for a re-check."""
    rows = index.conn.execute(
        "SELECT obsid FROM obsid_links WHERE default_rev IS NULL OR "
        "last_rev != default_rev ORDER BY obsid"
    )
    return [r[0] for r in rows]


def update_obsid_archive(
    product: ObsidProduct,
    source: str | Source | None = None,
    obsids: Iterable[int] | None = None,
    start: CxoTimeLike = None,
    stop: CxoTimeLike = None,
    data_root: str | Path | None = None,
    progress: Progress | None = None,
    wait: float = 0.0,
    refresh: bool = False,
) -> ObsidUpdateReport:
    """Archive the default and last revisions of obsids from ``source``.

    ``obsids`` selects obsids explicitly; otherwise the obsids the source has in
    [start, stop] (start defaults to the newest archived data, stop to now) plus the
    obsids whose last revision is provisional, except those on the bad-obsid list
    (``<product folder>/<product.bad_obsids_file>``). ``refresh`` re-fetches revisions
    already complete (files already archived are recognised and kept).
    """
    src = resolve_source(source, product, product.root(data_root))
    root = product.root(data_root)
    report = ObsidUpdateReport(product.name)
    with UpdateLock(root, wait=wait), ArchiveIndex(product, root) as index:
        report.recovered += recover_pending(product, index)
        report.recovered += recover_links(product, index)
        if obsids is not None:
            todo = list(dict.fromkeys(check_obsid(o) for o in obsids))
        else:
            todo = _obsids_for_range(product, src, index, start, stop)
            bad = read_bad_obsids(_bad_list(product, root))
            for obsid in _provisional(index):
                if obsid in todo:
                    continue
                if obsid in bad:
                    report.skipped_bad.append(obsid)
                else:
                    todo.append(obsid)
        staging = root / STAGING_DIR
        for i, obsid in enumerate(todo):
            if progress:
                progress(i, len(todo), f"obsid {obsid}")
            try:
                _update_one(product, src, index, obsid, staging, report, refresh)
            except SourceError as err:
                if getattr(err, "fatal", False):  # e.g. the source never holds this product
                    raise
                report.failed[obsid] = str(err)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
                notes = getattr(src, "notes", None)
                if notes:
                    report.notes += notes
                    notes.clear()
        if progress:
            progress(len(todo), len(todo), "done")
    return report


def _obsids_for_range(
    product: ObsidProduct, src: Source, index: ArchiveIndex, start: CxoTimeLike, stop: CxoTimeLike
) -> list[int]:
    def latest() -> float | None:
        return index.conn.execute("SELECT MAX(tstart) FROM archfiles").fetchone()[0]

    tstart, tstop = update_range(
        product, index.root, start, stop, latest, alternative="a start time or obsids"
    )
    return list(dict.fromkeys(check_obsid(o) for o in src.obsids(product, tstart, tstop)))


def _update_one(
    product: ObsidProduct,
    src: Source,
    index: ArchiveIndex,
    obsid: int,
    staging: Path,
    report: ObsidUpdateReport,
    refresh: bool,
) -> None:
    default, last = src.revisions(product, obsid)
    if default is None and last is None:
        report.no_data.append(obsid)
        return
    fetched, problems = [], []
    for rev in sorted({r for r in (default, last) if r is not None}):
        if not refresh and revision_complete(index, obsid, rev):
            continue
        shutil.rmtree(staging, ignore_errors=True)  # leftovers of a killed run
        staging.mkdir(parents=True)
        files = src.fetch_obsid(product, obsid, rev, staging)
        data, extras = [], []
        for path in files:
            kind = product.classify(path.name)
            if kind == "drop":
                report.dropped += 1
                path.unlink(missing_ok=True)
            elif kind == "extra":
                extras.append(path)
            elif kind == "data":
                data.append(path)
            # anything else the source delivered is not part of this product: left in staging
        if not data:
            raise SourceError(
                f"{src} retrieved no {product.name} files for obsid {obsid} revision {rev}"
            )
        accepted = []
        for path in data:
            try:
                _check_belongs(product, path, obsid, rev)
                accepted.append(path)
            except RejectedFile as err:
                report.ingest.rejected.append(err)
                quarantine(index.root, path, err)
        ingest = ingest_files(product, accepted, index=index)
        report.ingest.merge(ingest)
        if len(accepted) < len(data) or ingest.rejected:
            problems.append(f"v{rev:02d} had rejected files: not marked complete")
            continue
        for path in extras:
            _copy_atomic(path, version_dir(index.root, obsid, rev) / path.name)
        mark_revision(index, obsid, rev, len(accepted))
        fetched.append(f"v{rev:02d} ({len(accepted)} files)")
    # A revision that could not be completed keeps the links it had (never drop a link).
    before = link_state(index, obsid)
    if default is not None and not revision_complete(index, obsid, default):
        default = before.default_rev if before else None
    if last is not None and not revision_complete(index, obsid, last):
        last = before.last_rev if before else default
    changes = relink(product, index, obsid, default, last)
    if problems:
        report.failed[obsid] = "; ".join(problems)
    text = (f"default v{default:02d}" if default is not None else "no default") + (
        f", last v{last:02d}" if last not in (None, default) else ""
    )
    text += "; fetched " + ", ".join(fetched) if fetched else "; already archived"
    if changes:
        text += "; " + "; ".join(c.split(": ", 1)[1] for c in changes)
    report.done[obsid] = text


def _check_belongs(product: ObsidProduct, path: Path, obsid: int, rev: int) -> None:
    """Refuse a delivered file of another obsid or revision than requested."""
    name_rev = product.name_revision(path.name)
    if name_rev != rev:
        raise RejectedFile(
            path.name,
            f"revision {name_rev} delivered for a request of obsid {obsid} revision {rev}",
        )
    try:
        file_obsid, _ = product.inspect(path)
    except RejectedFile:
        return  # unreadable: ingest rejects it with the precise reason
    if file_obsid is not None and file_obsid != obsid:
        raise RejectedFile(path.name, f"belongs to obsid {file_obsid}, delivered for obsid {obsid}")
