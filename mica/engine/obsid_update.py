"""Update a per-obsid archive: fetch each obsid's default and last revisions, relink.

For every obsid: ask the source for its default and last revision; fetch each revision the
archive does not hold completely into staging; drop the files the product does not keep;
ingest the rest through the engine (intent, atomic rename, one transaction); copy the
pipeline logs beside them; mark the revision complete; then move the links
(`obsid_layout.relink`). Each obsid is one unit of the runner (`mica.engine.runner`): its
step asks and fetches, its commit ingests and relinks. Re-runs skip complete revisions, so
they are idempotent; a killed run is finished by the next one (pending intents, link
intents, incomplete revisions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from mica.engine.atomic import copy_atomic, write_bytes_atomic
from mica.engine.executors import Executor, UnitError
from mica.engine.index import ArchiveIndex
from mica.engine.ingest import STAGING_DIR, ingest_files, quarantine, recover_pending
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
from mica.engine.report import UpdateReport
from mica.engine.runner import Job, Progress, Unit, run_update
from mica.engine.source import Source, SourceError, split_delivery
from mica.engine.time_update import update_range
from mica.time import CxoTimeLike

#: reasons of skipped obsids in the report
NO_DATA = "no data upstream"
BAD_LIST = "bad-obsid list"


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
        text = "obsid\n" + "".join(f"{o}\n" for o in product.default_bad_obsids)
        write_bytes_atomic(path, text.encode())
    return path


def _provisional(index: ArchiveIndex) -> list[int]:
    """Obsids whose newest revision is not (yet) the default: candidates for a re-check."""
    rows = index.conn.execute(
        "SELECT obsid FROM obsid_links WHERE default_rev IS NULL OR "
        "last_rev != default_rev ORDER BY obsid"
    )
    return [r[0] for r in rows]


@dataclass
class RevisionFetch:
    """One revision staged by a unit's step: files to ingest, refused, pipeline logs."""

    rev: int
    accepted: list[Path] = field(default_factory=list)
    rejected: list[tuple[RejectedFile, Path | None]] = field(default_factory=list)
    extras: list[Path] = field(default_factory=list)
    dropped: int = 0


@dataclass
class ObsidFetch:
    """The result of one obsid's step: upstream revisions and what was staged of them."""

    default: int | None
    last: int | None
    revisions: list[RevisionFetch] = field(default_factory=list)
    error: str | None = None  # a revision could not be fetched: the ones before it commit


def _fetch_obsid(src: Source, product: ObsidProduct, refresh: bool, unit: Unit) -> ObsidFetch:
    """Ask the source for the obsid's revisions and stage those not archived complete."""
    obsid, complete = unit.data
    default, last = src.revisions(product, obsid)
    out = ObsidFetch(default, last)
    for rev in sorted({r for r in (default, last) if r is not None}):
        if not refresh and rev in complete:
            continue
        try:
            out.revisions.append(_fetch_revision(src, product, obsid, rev, unit.staging))
        except SourceError as err:
            if getattr(err, "fatal", False):  # e.g. the source never holds this product
                raise
            out.error = str(err)
            break
    return out


def _fetch_revision(
    src: Source, product: ObsidProduct, obsid: int, rev: int, staging: Path
) -> RevisionFetch:
    dest = staging / f"v{rev:02d}"
    dest.mkdir(parents=True)
    out = RevisionFetch(rev)
    data = []
    delivered, refused = split_delivery(src.fetch_obsid(product, obsid, rev, dest))
    out.rejected += [(err, None) for err in refused]  # refused by the source itself
    for path in delivered:
        kind = product.classify(path.name)
        if kind == "drop":
            out.dropped += 1
            path.unlink(missing_ok=True)
        elif kind == "extra":
            out.extras.append(path)
        elif kind == "data":
            data.append(path)
        # anything else the source delivered is not part of this product: left in staging
    if not data and not refused:
        raise SourceError(
            f"{src} retrieved no {product.name} files for obsid {obsid} revision {rev}"
        )
    for path in data:
        try:
            _check_belongs(product, path, obsid, rev)
            out.accepted.append(path)
        except RejectedFile as err:
            out.rejected.append((err, path))
    return out


class ObsidJob(Job):
    """Default and last revisions of obsids, one obsid per unit (see the module docstring)."""

    unit = "obsid"
    verb = "updated"
    staging_name = STAGING_DIR

    def __init__(
        self,
        product: ObsidProduct,
        obsids: Iterable[int] | None = None,
        start: CxoTimeLike = None,
        stop: CxoTimeLike = None,
        data_root: str | Path | None = None,
        refresh: bool = False,
    ):
        self.product = product
        self.name = product.name
        self.root = product.root(data_root)
        self.obsids, self.start, self.stop, self.refresh = obsids, start, stop, refresh
        self.index: ArchiveIndex | None = None

    def session(self) -> AbstractContextManager:
        self.index = ArchiveIndex(self.product, self.root)
        return self.index

    def recover(self) -> list[str]:
        return recover_pending(self.product, self.index) + recover_links(self.product, self.index)

    def plan(self, source: Source, report: UpdateReport) -> Iterator[Unit]:
        if self.obsids is not None:
            todo = list(dict.fromkeys(check_obsid(o) for o in self.obsids))
        else:
            todo = _obsids_for_range(self.product, source, self.index, self.start, self.stop)
            bad = read_bad_obsids(_bad_list(self.product, self.root))
            for obsid in _provisional(self.index):
                if obsid in todo:
                    continue
                if obsid in bad:
                    report.skipped[obsid] = BAD_LIST
                else:
                    todo.append(obsid)
        for i, obsid in enumerate(todo):
            yield Unit(obsid, f"obsid {obsid}", self.staging(i), (obsid, self._complete(obsid)))

    def _complete(self, obsid: int) -> set[int]:
        """Revisions of the obsid archived complete (the step skips them)."""
        rows = self.index.conn.execute("SELECT revision FROM revisions WHERE obsid = ?", (obsid,))
        return {r[0] for r in rows}

    def step(self, source: Source) -> Callable[[Unit], ObsidFetch]:
        return partial(_fetch_obsid, source, self.product, self.refresh)

    def failed(self, unit: Unit, error: UnitError, report: UpdateReport) -> None:
        if not isinstance(error.error, SourceError) or getattr(error.error, "fatal", False):
            raise error.error
        report.failed[unit.key] = str(error)

    def commit(self, unit: Unit, result: ObsidFetch, report: UpdateReport) -> None:
        obsid, index = unit.key, self.index
        default, last = result.default, result.last
        if default is None and last is None:
            report.skipped[obsid] = NO_DATA
            return
        fetched, problems = [], []
        for rf in result.revisions:
            report.dropped += rf.dropped
            for err, path in rf.rejected:
                report.ingest.rejected.append(err)
                quarantine(index.root, path, err)
            ingest = ingest_files(self.product, rf.accepted, index=index)
            report.ingest.merge(ingest)
            if rf.rejected or ingest.rejected:
                problems.append(f"v{rf.rev:02d} had rejected files: not marked complete")
                continue
            for path in rf.extras:
                copy_atomic(path, version_dir(index.root, obsid, rf.rev) / path.name)
            mark_revision(index, obsid, rf.rev, len(rf.accepted))
            fetched.append(f"v{rf.rev:02d} ({len(rf.accepted)} files)")
        if result.error is not None:
            report.failed[obsid] = result.error
            return
        # A revision that could not be completed keeps the links it had (never drop a link).
        before = link_state(index, obsid)
        if default is not None and not revision_complete(index, obsid, default):
            default = before.default_rev if before else None
        if last is not None and not revision_complete(index, obsid, last):
            last = before.last_rev if before else default
        changes = relink(self.product, index, obsid, default, last)
        if problems:
            report.failed[obsid] = "; ".join(problems)
        if not (fetched or changes or problems):  # nothing written: counted as such
            report.unchanged.append(obsid)
            return
        text = (f"default v{default:02d}" if default is not None else "no default") + (
            f", last v{last:02d}" if last not in (None, default) else ""
        )
        text += "; fetched " + ", ".join(fetched) if fetched else "; already archived"
        if changes:
            text += "; " + "; ".join(c.split(": ", 1)[1] for c in changes)
        report.done[obsid] = text


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
    executor: Executor | None = None,
) -> UpdateReport:
    """Archive the default and last revisions of obsids from ``source``.

    ``obsids`` selects obsids explicitly; otherwise the obsids the source has in
    [start, stop] (start defaults to the newest archived data, stop to now) plus the
    obsids whose last revision is provisional, except those on the bad-obsid list
    (``<product folder>/<product.bad_obsids_file>``). ``refresh`` re-fetches revisions
    already complete (files already archived are recognised and kept). Obsids without data
    upstream or on the bad-obsid list are in the report's ``skipped``.
    """
    job = ObsidJob(product, obsids, start, stop, data_root, refresh)
    return run_update(job, source, progress=progress, wait=wait, executor=executor)


def _obsids_for_range(
    product: ObsidProduct, src: Source, index: ArchiveIndex, start: CxoTimeLike, stop: CxoTimeLike
) -> list[int]:
    def latest() -> float | None:
        return index.conn.execute("SELECT MAX(tstart) FROM archfiles").fetchone()[0]

    tstart, tstop = update_range(
        product, index.root, start, stop, latest, alternative="a start time or obsids"
    )
    return list(dict.fromkeys(check_obsid(o) for o in src.obsids(product, tstart, tstop)))


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
    except Exception:  # unreadable or malformed: ingest rejects it with the precise reason
        return
    if file_obsid is not None and file_obsid != obsid:
        raise RejectedFile(path.name, f"belongs to obsid {file_obsid}, delivered for obsid {obsid}")
