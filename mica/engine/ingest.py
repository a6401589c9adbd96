"""Ingest: validate staged files, place them atomically, record them in the index.

Order of a file's ingest, so a crash at any point is finished by `recover_pending`:
1. intent ``add <dest>`` committed;  2. file renamed into place (atomic, same filesystem);
3. one transaction: superseded rows deleted, the new row inserted, intent cleared,
   ``drop`` intents for superseded files recorded;  4. superseded files unlinked, intents cleared.
Readers only look files up through the index, so they never see a file before step 3.
Validation also reads each file's provenance (the simulation marker): a simulated file is
refused by a real archive and a real file by a simulated one (`mica.engine.provenance`).
"""

from __future__ import annotations

import errno
import filecmp
import gzip
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from mica.engine.atomic import (
    make_folders,
    mode_for,
    move_aside,
    real_folder,
    replace_durable,
    set_mode,
    write_atomic,
    write_new,
)
from mica.engine.colstore import ColumnStore, keep_arrays, rebuilt_line
from mica.engine.describe import describe_file
from mica.engine.executors import Executor, UnitError, timed
from mica.engine.executors.base import call_unit
from mica.engine.executors.process import ProcessExecutor
from mica.engine.fsync import fsync_dir, fsync_file
from mica.engine.index import ArchiveIndex
from mica.engine.product import (
    KIND,
    STAGING_DIR,  # noqa: F401  (the engine's name for it)
    FileProduct,
    RejectedFile,
)
from mica.engine.provenance import (
    ARCHIVE_JSON,
    archive_kind,
    check_file,
    settle_kind,
)
from mica.errors import ArchiveBusy

REJECTED_DIR = "rejected"


@dataclass
class IngestReport:
    """What an ingest did, file by file."""

    ingested: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    outdated: list[str] = field(default_factory=list)
    rejected: list[RejectedFile] = field(default_factory=list)
    #: seconds spent waiting for validation results (the rest of an ingest is its commits)
    wait_seconds: float = 0.0

    def merge(self, other: IngestReport) -> None:
        for name in ("ingested", "unchanged", "replaced", "outdated", "rejected"):
            getattr(self, name).extend(getattr(other, name))
        self.wait_seconds += other.wait_seconds

    def summary(self) -> str:
        text = (
            f"{len(self.ingested)} ingested, {len(self.unchanged)} already archived, "
            f"{len(self.replaced)} replaced by newer revisions, "
            f"{len(self.outdated)} older than the archive's revision, "
            f"{len(self.rejected)} rejected"
        )
        lines = [text] + [f"  rejected {err}" for err in self.rejected]
        return "\n".join(lines)


def quarantine(root: Path, src: Path | None, err: RejectedFile) -> None:
    """Keep a rejected file and the reason beside it: nothing offered is silently dropped.

    Nothing outside the archive is touched: a link (``src`` itself, or one found in
    ``rejected/``) is moved or replaced as the link, never followed."""
    qdir = real_folder(root / REJECTED_DIR)
    safe = err.filename.replace("/", "_").replace("\\", "_").lstrip(".") or "unnamed"
    if src is not None and os.path.lexists(src):
        move_aside(src, qdir / safe)
        # a refused file may hold anything: only the archive's owner may read the copy
        set_mode(qdir / safe, 0o600)
    write_new(qdir / (safe + ".reason"), (str(err) + "\n").encode(), 0o600)


#: errors of the archive itself (disk full, read-only, database, an index another process keeps
#: locked): they stop the update with one clear message (`mica.engine.runner`); every other
#: error while archiving a file is the file's
ARCHIVE_ERRORS = (OSError, sqlite3.Error, MemoryError, ArchiveBusy)


@contextmanager
def refusing(name: str, what: str = "could not be archived") -> Iterator[None]:
    """Turn an unexpected error while handling file ``name`` into a `RejectedFile` naming it:
    one malformed file must never stop an update or a repair."""
    try:
        yield
    except (RejectedFile, *ARCHIVE_ERRORS):
        raise
    except Exception as err:  # a readable but malformed file reaches code beyond validation
        raise RejectedFile(name, f"{what} ({type(err).__name__}: {str(err)[:300]})") from err


def _place(
    src: Path, dest: Path, synced: bool = False, made: dict[str, int] | None = None
) -> str | None:
    """Put ``src`` at ``dest`` atomically, gzipping it on the way if it is not gzipped.

    ``synced``: the file's data are already on disk (a validation worker fsynced them); the
    rename is then left for the caller to make durable with one fsync of the folder it
    returns (None: done here). ``made``: folders known to exist, with their device (a batch
    makes and looks at each once).
    """
    folder = os.path.dirname(dest)
    device = None if made is None else made.get(folder)
    if device is None:
        make_folders(folder)
        device = os.stat(folder).st_dev
        if made is not None:
            made[folder] = device
    try:  # a committer's per-file cost: no buffered file object
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as err:
        if err.errno != errno.ELOOP:
            raise
        fd = None  # a link offered as the file: its content is copied, the link left alone
    if fd is None:
        with open(src, "rb") as fh:
            gzipped, same_disk = fh.read(2) == b"\x1f\x8b", False
    else:
        try:
            gzipped = os.read(fd, 2) == b"\x1f\x8b"
            same_disk = os.fstat(fd).st_dev == device
            if gzipped and same_disk:  # renamed into place: the archive's mode, not its source's
                os.fchmod(fd, mode_for(dest))
        finally:
            os.close(fd)
    if gzipped and same_disk:
        if synced:
            os.replace(src, dest)
            return folder
        replace_durable(src, dest)
        return None

    def write(fout: BinaryIO) -> None:
        with open(src, "rb") as fin:
            if gzipped:
                shutil.copyfileobj(fin, fout, 1 << 20)
            else:
                with gzip.GzipFile(fileobj=fout, mode="wb", compresslevel=6, mtime=0) as gz:
                    shutil.copyfileobj(fin, gz, 1 << 20)

    write_atomic(dest, write)
    src.unlink(missing_ok=True)
    return None


@dataclass
class _Placement:
    """A validated file the revision rules let in: where it goes and what it supersedes."""

    row: dict[str, Any]
    src: Path
    dest: Path
    superseded: list[dict[str, Any]]
    #: the row's stream (values of the product's ``stream_columns``)
    stream: tuple = ()
    #: the file is elsewhere than its archive place (staged), so it moves there
    moves: bool = True


def decide_placement(
    product: FileProduct,
    index: ArchiveIndex,
    row: dict[str, Any],
    src: Path,
    report: IngestReport,
    absent: bool = False,
) -> _Placement | None:
    """Apply the revision rules to one validated file against the index: its placement, or
    None when it is already archived or older than the archive's revision (recorded in
    ``report``); `RejectedFile` when it conflicts. ``absent``: the caller knows the index
    holds no file of this name."""
    root = index.root
    name = row["filename"]
    dest = product.path(row, root)
    existing = None if absent else index.get(name)
    if existing is not None:
        if existing["checksum"] != row["checksum"]:
            raise RejectedFile(
                name,
                "differs from the archived file of the same name "
                f"(checksum {row['checksum']} != {existing['checksum']})",
            )
        if src != dest:
            src.unlink(missing_ok=True)
        report.unchanged.append(name)
        return None

    overlaps = index.overlapping(row)
    newer = [o for o in overlaps if o["revision"] > row["revision"]]
    if newer:
        report.outdated.append(name)
        src.unlink(missing_ok=True)
        return None
    same = [o for o in overlaps if o["revision"] == row["revision"]]
    clash = [o["filename"] for o in same if not product.same_span(o, row)]
    if clash:
        raise RejectedFile(
            name,
            f"overlaps {', '.join(clash)} of the same revision "
            f"{row['revision']} (not a reprocessing); refused",
        )
    stream = tuple(row[c] for c in product.stream_columns)
    # supersedes older revisions, reprocessings
    return _Placement(row, src, dest, overlaps, stream, src != dest)


def apply_placements(
    product: FileProduct,
    index: ArchiveIndex,
    batch: list[_Placement],
    report: IngestReport,
    synced: bool = False,
) -> set[str]:
    """Archive a batch of placements in the module docstring's order, each step once for
    the whole batch (one intent transaction, the renames, one index transaction); returns
    the store partitions whose content changed."""
    if not batch:
        return set()
    root = index.root
    drops = [str(product.path(o, root)) for p in batch for o in p.superseded]
    with index.transaction():
        index.add_pending([(str(p.dest), "add") for p in batch])
    folders: set[str] = set()
    made: dict[str, int] = {}
    for p in batch:
        if p.moves:
            folder = _place(p.src, p.dest, synced, made)
            if folder is not None:
                folders.add(folder)
    for folder in folders:
        fsync_dir(folder)
    try:
        with index.transaction():
            parts = index.replace(
                [p.row for p in batch], [o["filename"] for p in batch for o in p.superseded]
            )
            index.clear_pending([str(p.dest) for p in batch])
            index.add_pending([(d, "drop") for d in drops])
    except (RejectedFile, *ARCHIVE_ERRORS):
        raise
    except Exception:
        # a row could not be recorded (a malformed value): take the placed files back out,
        # so the caller can find and quarantine the file and nothing unindexed stays in place
        for p in batch:
            if p.moves and p.dest.exists():
                replace_durable(p.dest, p.src)
        with index.transaction():
            index.clear_pending([str(p.dest) for p in batch])
        raise
    for d in drops:
        Path(d).unlink(missing_ok=True)
    if drops:
        with index.transaction():
            index.clear_pending(drops)
    for p in batch:
        report.ingested.append(p.row["filename"])
        report.replaced.extend(o["filename"] for o in p.superseded)
    return parts


def commit_file(
    product: FileProduct, index: ArchiveIndex, row: dict[str, Any], src: Path, report: IngestReport
) -> set[str]:
    """Apply the revision rules to one validated file and archive it (see module docstring).

    Returns the store partitions whose content changed.
    """
    placement = decide_placement(product, index, row, src, report)
    return apply_placements(product, index, [placement] if placement else [], report)


def _overlaps_batch(
    product: FileProduct, names: set[str], streams: dict[tuple, list[_Placement]], row: dict
) -> bool:
    """Whether ``row`` shares a name or an interval of its stream with a file of a batch
    (its ``names``, its placements by stream): the index does not hold the batch yet, so it
    must be applied first."""
    if row["filename"] in names:
        return True
    lo, hi = row["tstart"] + 1e-3, row["tstop"] - 1e-3
    same = streams.get(tuple(row[c] for c in product.stream_columns), ())
    return any(p.row["tstart"] < hi and p.row["tstop"] > lo for p in same)


#: files committed together (one intent transaction, one index transaction, one folder
#: fsync): what lets one committer keep up with many validation workers
COMMIT_BATCH = 64


def _already_archived(
    product: FileProduct, index: ArchiveIndex, name: str, path: Path, compare: bool = True
) -> bool:
    """True when the archive holds a byte-identical copy (a re-run skips it unopened).

    ``compare=False``: the same size is enough (a file this update's previous unit fetched
    from the same source, under the same name, and archived moments ago).
    """
    if "/" in name or ".." in name:
        return False
    row = index.get(product.archive_name(name))
    if row is None:
        return False
    archived = product.path(row, index.root)
    try:
        if archived.stat().st_size != path.stat().st_size:
            return False
        return not compare or filecmp.cmp(archived, path, shallow=False)
    except OSError:
        return False


def _validate_one(
    product: FileProduct,
    name: str,
    path: Path,
    with_arrays: bool = True,
    cache: Path | None = None,
    sync: bool = True,
) -> tuple[dict[str, Any] | RejectedFile, dict[str, Any], str | None]:
    """(index row or the rejection, store arrays (``with_arrays``), provenance kind); with
    ``cache``, the arrays are kept there instead (`keep_arrays`), not returned. ``sync``:
    the valid file is fsynced here (else the caller does it before anything renames it)."""
    arrays: dict[str, Any] = {}
    try:
        row = describe_file(product, name, path, arrays if with_arrays or cache else None)
        if sync:
            fsync_file(path)  # here, in the worker: the committer only renames it
        if cache is not None and arrays:
            keep_arrays(cache, row, next(iter(arrays.values())))
            arrays = {}
        return row, arrays, row.pop(KIND, None)
    except RejectedFile as err:  # describe_file turns any failure into one
        return err, {}, None


class ValidateStep:
    """`_validate_one` as an executor's step over (name, path) items (picklable); the
    caller fsyncs the valid files (beside the next ones' validation)."""

    def __init__(self, product: FileProduct, with_arrays: bool, cache: Path | None = None):
        self.product = product
        self.with_arrays = with_arrays
        self.cache = cache

    def __call__(self, item: tuple[str, Path]) -> Any:
        return _validate_one(self.product, *item, self.with_arrays, self.cache, sync=False)


#: fsyncs of a unit's files waiting on the disk at once, beside the validation
SYNC_THREADS = 4


def validate_files(
    product: FileProduct,
    files: Iterable[Path | tuple[str, Path]],
    cache: Path | None = None,
    seen: Callable[[str], bool] | None = None,
) -> list[tuple[str, Path, Any]]:
    """Validate a unit's files where they were fetched (a worker): (name, path, result) in
    time order, each result as `_validate_one` gives it or the `UnitError` of the file, for
    `ingest_validated`. One task for a unit's files instead of one per file keeps the
    scheduler's per-task cost off each file; touches nothing but the files (fsync) and
    ``cache``, where a store product's arrays are kept for the chunk builds
    (`mica.engine.colstore.keep_arrays`: the files are decoded once, and no arrays cross
    the wire). Files for which ``seen(name)`` is true came with the previous unit too (a
    source delivering the files that overlap a range): their result is None, and the
    committer, which has that unit committed by then, recognises them as archived (or
    validates them itself)."""
    step = ValidateStep(product, False, cache if product.has_store else None)
    out: list[tuple[str, Path, Any]] = []
    # An fsync waits on the disk, not the CPU: each valid file's runs beside the validation
    # of the next ones, and the unit's results are returned once all are done (a commit only
    # renames files that are on disk). A failed fsync is that file's archive error.
    with ThreadPoolExecutor(SYNC_THREADS) as pool:
        syncs = {}
        for name, path in _items(files):
            result = None if seen is not None and seen(name) else call_unit(step, (name, path))
            if isinstance(result, tuple) and not isinstance(result[0], RejectedFile):
                syncs[len(out)] = pool.submit(fsync_file, path)
            out.append((name, path, result))
        for k, done in syncs.items():
            if done.exception() is not None:
                out[k] = (*out[k][:2], UnitError.capture(done.exception()))
    return out


def _items(files: Iterable[Path | tuple[str, Path]]) -> list[tuple[str, Path]]:
    """(archive name, path) pairs in time order (file names sort by time)."""
    items = [(f.name, f) if isinstance(f, Path) else (f[0], Path(f[1])) for f in files]
    return sorted(items, key=lambda item: item[0])


def ingest_files(
    product: FileProduct,
    files: Iterable[Path | tuple[str, Path]],
    data_root: str | Path | None = None,
    index: ArchiveIndex | None = None,
    workers: int | None = None,
    executor: Executor | None = None,
    store: bool = True,
    on_file: Callable[[int, int, str], None] | None = None,
) -> IngestReport:
    """Validate and archive files; each is ingested, recognised as present, or rejected.

    ``on_file(done, total, name)`` is called as each file is settled (progress per file).

    ``files`` are paths (named by their basename) or (archive name, path) pairs, e.g. names
    as an upstream listed them. Rejected files are kept under ``<product root>/rejected``
    with the reason; nothing already in the archive is changed by a rejected file.
    Validation (decompression, checksums, parsing: the bulk of the work, no shared state)
    runs in ``workers`` processes (default one per CPU), or on ``executor`` (a cluster);
    commits stay here, one at a time, in time order. ``store=False`` leaves the columnar
    store chunks of the touched partitions dirty (served from the files) for a later rebuild,
    e.g. on the cluster (`mica.engine.store_rebuild`).
    """
    with _opened(product, index, data_root) as index, ThreadPoolExecutor(SYNC_THREADS) as pool:
        keep = product.has_store and store

        def validate(todo: list[tuple[str, Path]]) -> Iterable[Any]:
            run = executor or ProcessExecutor(workers, preload=[type(product).__module__])
            # without a store here (built later, on the workers) no arrays travel back
            return run.map(ValidateStep(product, keep), todo)

        return _ingest(product, index, _items(files), validate, keep, on_file, True, pool)


def ingest_validated(
    product: FileProduct,
    validated: list[tuple[str, Path, Any]],
    index: ArchiveIndex,
    on_file: Callable[[int, int, str], None] | None = None,
) -> IngestReport:
    """Archive files `validate_files` validated elsewhere (a cluster's worker), as
    `ingest_files` would: the same revision rules, batches and crash-safe order; here only
    the commits run. The touched store chunks stay dirty: they are built from the arrays
    the workers kept (`mica.engine.colstore.plan_chunks`)."""
    items = [(name, path) for name, path, _ in validated]

    def validate(todo: list[tuple[str, Path]]) -> Iterable[Any]:
        return [result for *_, result in validated]  # no precheck: todo is every item

    return _ingest(product, index, items, validate, False, on_file, precheck=False)


def reindex_files(
    product: FileProduct,
    index: ArchiveIndex,
    files: Iterable[tuple[str, Path]],
    executor: Executor | None = None,
    on_file: Callable[[int, int, str], None] | None = None,
) -> IngestReport:
    """Index files already in their archive places (an index rebuilt from the files,
    `mica.engine.index_rebuild`): validated and decided as `ingest_files` does (a file of an
    older revision than an overlapping one is removed as the ingest would have), nothing is
    moved; a file outside its layout folder is refused and quarantined like any refused file.
    The touched store partitions are left dirty.
    """
    root = index.root

    def validate(todo: list[tuple[str, Path]]) -> Iterable[Any]:
        run = executor or ProcessExecutor(None, preload=[type(product).__module__])
        results = run.map(ValidateStep(product, False), todo)
        try:
            for (name, path), result in zip(todo, results):
                row = result[0] if isinstance(result, tuple) else None
                if isinstance(row, dict) and product.path(row, root) != path:
                    where = product.folder(row)
                    result = (RejectedFile(name, f"is not in its layout folder {where}"), {}, None)
                yield result
        finally:  # a process pool is shut down now, not when collected
            getattr(results, "close", lambda: None)()

    return _ingest(product, index, _items(files), validate, False, on_file, precheck=False)


@contextmanager
def _opened(
    product: FileProduct, index: ArchiveIndex | None, data_root: str | Path | None
) -> Iterator[ArchiveIndex]:
    """``index``, or the product's index opened (and closed) here."""
    if index is not None:
        yield index
        return
    index = ArchiveIndex(product, product.root(data_root))
    try:
        yield index
    finally:
        index.close()


def _ingest(
    product: FileProduct,
    index: ArchiveIndex,
    items: list[tuple[str, Path]],
    validate: Callable[[list[tuple[str, Path]]], Iterable[Any]],
    keep_store: bool,
    on_file: Callable[[int, int, str], None] | None,
    precheck: bool,
    pool: ThreadPoolExecutor | None = None,
) -> IngestReport:
    """The commits of an ingest over ``items`` (time order): ``validate(todo)`` gives each
    file's result in order. ``precheck``: files byte-identical to archived ones are skipped
    before validation (else only a file that fails it is compared, after). ``pool``: the
    validation left the files unsynced; each file let in is fsynced in these threads, beside
    the next files' validation, and its batch renamed once they are done."""
    report = IngestReport()
    touched: set[str] = set()
    loaded: dict[str, Any] = {}
    last_epoch = None
    store = ColumnStore(product, index) if keep_store else None
    kind = archive_kind(index.root)
    todo = []
    settled = 0

    def tick(name: str) -> None:
        nonlocal settled
        settled += 1
        if on_file is not None:
            on_file(settled, len(items), name)

    def unchanged(name: str, path: Path) -> None:
        report.unchanged.append(name)
        path.unlink(missing_ok=True)

    for name, path in items:
        if precheck and _already_archived(product, index, name, path):
            unchanged(name, path)
            tick(name)
        else:
            todo.append((name, path))
    results = validate(todo)
    batch: list[_Placement] = []
    names: set[str] = set()  # the batch's, and its placements by stream (`_overlaps_batch`)
    streams: dict[tuple, list[_Placement]] = {}
    syncs: list[Future] = []
    # One query for the names the index holds now instead of one per file; a name this call
    # inserts or deletes is asked again (`decide_placement`).
    held = index.archived(product.archive_name(name) for name, _ in todo)
    changed: set[str] = set()

    def flush() -> None:
        nonlocal touched
        for done in syncs:
            done.result()  # on disk before renamed (an OSError stops the update)
        syncs.clear()
        for p in batch:
            changed.add(p.row["filename"])
            changed.update(o["filename"] for o in p.superseded)
        try:
            touched |= apply_placements(product, index, batch, report, synced=True)
        except (RejectedFile, *ARCHIVE_ERRORS):
            raise
        except Exception:  # one row cannot be recorded: one file at a time finds it
            for p in batch:
                try:
                    with refusing(p.row["filename"]):
                        touched |= apply_placements(product, index, [p], report, synced=True)
                except RejectedFile as err:
                    report.rejected.append(err)
                    quarantine(index.root, p.src, err)
        batch.clear()
        names.clear()
        streams.clear()

    with closing(timed(results, report)) as validated:
        for (name, path), result in zip(todo, validated):
            tick(name)
            if isinstance(result, UnitError):  # the worker's own failure, not the file's
                if isinstance(result.error, ARCHIVE_ERRORS):
                    raise result.error  # disk full, read-only: stops the update (one message)
                result = (RejectedFile(name, f"not validated: {result}"), {}, None)
            if result is None:  # not validated: the previous unit's file, normally archived
                if _already_archived(product, index, name, path, compare=False):
                    unchanged(name, path)
                    continue
                result = _validate_one(product, name, path, store is not None)
            row, arrays, file_is = result
            if not precheck and isinstance(row, RejectedFile):
                if _already_archived(product, index, name, path):
                    unchanged(name, path)
                    continue
            try:
                if isinstance(row, RejectedFile):
                    raise row
                with refusing(row.get("filename", name)):
                    check_file(row["filename"], file_is, kind, index.root)
                    epoch = product.partition_epoch(row) if store is not None else None
                    apart = bool(batch) and _overlaps_batch(product, names, streams, row)
                    if kind is None and file_is is not None and _provenance_open(index.root):
                        kind = file_is  # the first file of a content-judged source fixes it
                        settle_kind(index.root, kind)
            except RejectedFile as err:
                report.rejected.append(err)
                quarantine(index.root, path, err)
                continue
            new_epoch = store is not None and epoch != last_epoch
            if batch and (len(batch) >= COMMIT_BATCH or apart or new_epoch):
                flush()
            if touched and new_epoch:
                # Files come in time order: partitions of earlier epochs (days) are complete,
                # so write them now and free their arrays (memory: about a day of data).
                store.rebuild(touched, loaded)
                touched.clear()
                loaded = {}
            try:
                with refusing(row["filename"]):
                    named = row["filename"]
                    absent = (
                        named not in held
                        and named not in changed
                        and named == product.archive_name(name)
                    )
                    placement = decide_placement(product, index, row, path, report, absent)
            except RejectedFile as err:
                report.rejected.append(err)
                quarantine(index.root, path, err)
                continue
            if placement is not None:
                if pool is not None:
                    syncs.append(pool.submit(fsync_file, placement.src))
                batch.append(placement)
                names.add(placement.row["filename"])
                streams.setdefault(placement.stream, []).append(placement)
                loaded.update(arrays)
            last_epoch = epoch
    flush()
    if store is not None and touched:
        store.rebuild(touched, loaded)
    return report


def _provenance_open(root: Path) -> bool:
    """True when ``archive.json`` exists with its kind not yet fixed."""
    return (root / ARCHIVE_JSON).exists() and archive_kind(root) is None


def check_provenance(index: ArchiveIndex, row: dict[str, Any]) -> None:
    """Refuse a described file of the other kind (simulated or real) than the archive's; for
    the paths that index one file at a time (recovery, repair)."""
    kind = row.pop(KIND, None)
    if kind is not None:
        check_file(row["filename"], kind, archive_kind(index.root), index.root)


def recover_pending(product: FileProduct, index: ArchiveIndex) -> list[str]:
    """Finish or undo what a crashed ingest left half-done; returns what was done."""
    done = []
    touched: set[str] = set()
    for path_str, action in index.pending():
        path = Path(path_str)
        if action == "drop":
            path.unlink(missing_ok=True)
            done.append(f"removed superseded {path.name}")
        elif action == "scratch":  # derived file whose commit never happened
            path.unlink(missing_ok=True)
            done.append(f"removed uncommitted {path.name}")
        elif index.get(path.name) is None and path.exists():  # placed, not yet committed
            report = IngestReport()
            try:
                with refusing(path.name):
                    row = describe_file(product, path.name, path)
                    check_provenance(index, row)
                    touched |= commit_file(product, index, row, path, report)
                done.append(f"indexed {path.name} left unindexed by an interrupted ingest")
            except RejectedFile as err:
                quarantine(index.root, path, err)
                done.append(f"quarantined {err}")
        partial = path.with_name("." + path.name + ".partial")
        if partial.exists():
            partial.unlink()
            done.append(f"removed partial file {partial.name}")
        with index.transaction():
            index.clear_pending([path_str])
    dirty = touched | set(index.dirty_parts())  # includes chunks a killed ingest never wrote
    if product.has_store and dirty:
        done.append(rebuilt_line(ColumnStore(product, index).rebuild(dirty), len(dirty)))
    if product.has_store:  # a store table a killed update left before deriving it
        ColumnStore(product, index).derive_tables()
    return done
