"""An archive's index rebuilt from its files (``mica rebuild index``, ``mica check --repair``).

The index (``archfiles.db3``) is a lookup table of the archived files: each file's own headers
and checksums tell its row. A rebuild, under the update lock:

1. indexes every archived file anew, into a new database in a folder of its own beside the
   index (`mica.engine.ingest.reindex_files`: the ingest's validation and revision rules; a
   refused file is quarantined, a file outside its layout folder too). No file row of the
   index it replaces is read: an edited row is never carried over;
2. fills the layout's own tables (`FileProduct.restore_layout`: the links on disk say which
   revisions are complete and linked) and copies the store chunk rows the old index still
   gives, every store partition marked dirty;
3. moves the old database and its ``-wal`` and ``-shm`` files aside, with a timestamp suffix
   (``archfiles.db3.20250102T030405``), and renames the new one into place;
4. brings the store up to date (a chunk still built from the same files is kept, others
   are rebuilt) and removes the chunk files no row names.

A rebuild killed before step 3 leaves the old index as it was (and its work folder, which the
next rebuild removes); after it, the next update finishes steps 4.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from mica.engine.atomic import mode_for, set_mode
from mica.engine.colstore import STORE_DIR, ColumnStore
from mica.engine.executors import Executor
from mica.engine.fsync import fsync_dir
from mica.engine.index import INDEX_NAME, ArchiveIndex, connect_readonly, missing_archive
from mica.engine.ingest import REJECTED_DIR, IngestReport, recover_pending, reindex_files
from mica.engine.lock import UpdateLock
from mica.engine.product import STAGING_DIR, FileProduct

#: the work folder of a rebuild (``<name>-<pid>``), beside the index
REBUILD_DIR = ".index-rebuild"
#: files validated in one process map of a rebuild (a map starts its worker processes)
FILES_PER_MAP = 4096
#: folders of a product folder that hold no archived files
NOT_ARCHIVED = {REJECTED_DIR, STAGING_DIR, STORE_DIR}


def walk_archive(root: Path) -> Iterator[tuple[Path, list[os.DirEntry]]]:
    """Every folder of a product's archive and its entries, folders and entries in name
    order (time order for the files of a time-ordered product), without the folders that
    hold no archived files (`NOT_ARCHIVED`, hidden ones). Links are not followed."""
    stack = [Path(root)]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda e: e.name)
        yield folder, entries
        below = [
            Path(e.path)
            for e in entries
            if e.is_dir(follow_symlinks=False)
            and not e.name.startswith(".")
            and not (folder == root and e.name in NOT_ARCHIVED)
        ]
        stack.extend(reversed(below))


def archived_files(product: FileProduct, entries: list[os.DirEntry]) -> list[tuple[str, Path]]:
    """The product's files among a folder's entries (regular files named as the product's
    archived files), as (name, path)."""
    return [
        (e.name, Path(e.path))
        for e in entries
        if product.filename_re.fullmatch(e.name) and e.is_file(follow_symlinks=False)
    ]


def holds_files(product: FileProduct, root: Path) -> bool:
    """Whether ``root`` holds at least one of the product's archived files."""
    return any(archived_files(product, entries) for _, entries in walk_archive(root))


def rebuild_index(
    product: FileProduct,
    data_root: str | Path | None = None,
    executor: Executor | None = None,
    on_file: Callable[[int, int, str], None] | None = None,
    wait: float = 0.0,
) -> list[str]:
    """Rebuild the product's index from its archived files (see the module docstring).

    Parameters
    ----------
    product : FileProduct
        A product kept with an index (``aca-l0``, ``asp-l1``, ``obspar``).
    data_root : path-like, optional
        The product folder (default ``<archive>/<product folder>``).
    executor : Executor, optional
        Where the files are validated (default: worker processes of this machine).
    on_file : callable, optional
        ``on_file(done, total, name)`` as each file of a batch is settled.
    wait : float
        Seconds to wait for a running update of the product (then `ArchiveBusy`).

    Returns
    -------
    list of str
        What was done.

    Raises
    ------
    MissingArchiveError
        When the product folder does not exist.
    """
    root = product.root(data_root)
    if not root.is_dir():
        raise missing_archive(product.name, root, "no such folder")
    with UpdateLock(root, wait=wait):
        return rebuild_locked(product, root, executor, on_file)


def rebuild_locked(
    product: FileProduct,
    root: Path,
    executor: Executor | None = None,
    on_file: Callable[[int, int, str], None] | None = None,
) -> list[str]:
    """`rebuild_index` for a caller that holds the update lock of ``root``."""
    for stale in root.glob(f"{REBUILD_DIR}-*"):  # a killed rebuild's
        shutil.rmtree(stale, ignore_errors=True)
    work = root / f"{REBUILD_DIR}-{os.getpid()}"
    work.mkdir()
    done: list[str] = []
    try:
        report = IngestReport()
        with ArchiveIndex(product, root, path=work / INDEX_NAME) as index:
            for files in _batches(product, root):
                report.merge(reindex_files(product, index, files, executor, on_file))
            old = _open_old(product, root)
            try:
                done += product.restore_layout(index, old)
                done += _copy_chunk_rows(product, index, old)
            finally:
                if old is not None:
                    old.close()
            files = index.count()
        aside = _swap(root, work / INDEX_NAME)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    kept = f"; the index it replaces is kept as {aside.name}" if aside else ""
    done.insert(0, f"rebuilt {INDEX_NAME} from the {files} archived files{kept}")
    done += [f"  quarantined {err}" for err in report.rejected]
    if report.outdated or report.replaced:
        removed = len(report.outdated) + len(report.replaced)
        done.append(f"  removed {removed} files superseded by newer revisions")
    with ArchiveIndex(product, root) as index:
        done += recover_pending(product, index)  # the store chunks
        if product.has_store:
            done += _drop_unnamed_chunks(index)
    return done


def _batches(product: FileProduct, root: Path) -> Iterator[list[tuple[str, Path]]]:
    """The archived files in folder order, `FILES_PER_MAP` or a few more at a time."""
    batch: list[tuple[str, Path]] = []
    for _, entries in walk_archive(root):
        batch += archived_files(product, entries)
        if len(batch) >= FILES_PER_MAP:
            yield batch
            batch = []
    if batch:
        yield batch


def _open_old(product: FileProduct, root: Path) -> sqlite3.Connection | None:
    """A read-only connection to the index being replaced, None when there is none (its
    queries may still raise `DamagedIndexError`: readers of it catch that)."""
    path = root / INDEX_NAME
    if not path.is_file():
        return None
    return connect_readonly(path, product=product.name)


def _copy_chunk_rows(
    product: FileProduct, index: ArchiveIndex, old: sqlite3.Connection | None
) -> list[str]:
    """Copy the store chunk rows the old index gives, their partitions dirty (as are those
    of every indexed file): the store's rebuild then keeps a chunk built from the same files,
    rebuilds the others and drops those of partitions without files."""
    if not product.has_store:
        return []
    ColumnStore(product, index)  # its table
    if old is None:
        return []
    try:
        parts = []
        for table in ("store_chunks", "store_tables"):  # the chunks, the tables derived
            rows, names = _copy_rows(index, old, table)
            if table == "store_chunks" and rows:
                parts = [r[names.index("part")] for r in rows]
        with index.transaction():
            index.mark_dirty(parts)
    except (sqlite3.Error, OSError) as exc:  # damaged (`DamagedIndexError`), another layout
        why = getattr(exc, "detail", exc)
        return [f"the replaced index gives no store chunk rows ({why}): the chunks are rebuilt"]
    return []


def _copy_rows(
    index: ArchiveIndex, old: sqlite3.Connection, table: str
) -> tuple[list[tuple], list[str]]:
    """Copy the rows of ``table`` the old index gives (the columns both know; none when the
    old index has no such table); the rows and their column names."""
    if not old.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone():
        return [], []
    cur = old.execute(f"SELECT * FROM {table}")
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    have = {r[1] for r in index.conn.execute(f"PRAGMA table_info({table})")}
    keep = [i for i, n in enumerate(names) if n in have]
    if not keep:
        return [], []
    sql = (
        f"INSERT OR REPLACE INTO {table} ({', '.join(names[i] for i in keep)}) "
        f"VALUES ({', '.join('?' * len(keep))})"
    )
    with index.transaction():
        index.conn.executemany(sql, [tuple(r[i] for i in keep) for r in rows])
    return rows, names


def _swap(root: Path, new: Path) -> Path | None:
    """Move the index of ``root`` (with its ``-wal`` and ``-shm``) aside under a timestamp
    suffix and rename ``new`` into its place; the aside name (None: there was none). The
    write-ahead files go first: SQLite would apply an old ``-wal`` to the new database."""
    main = root / INDEX_NAME
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    aside = root / f"{INDEX_NAME}.{stamp}"
    for suffix in ("-wal", "-shm"):
        path = root / (INDEX_NAME + suffix)
        if os.path.lexists(path):
            os.replace(path, root / f"{aside.name}{suffix}")
    set_mode(new, mode_for(main))  # the mode its owner gave the index it replaces
    moved = os.path.lexists(main)
    if moved:
        try:  # a second name: readers find an index until the new one replaces it
            os.link(main, aside, follow_symlinks=False)
        except OSError:
            os.replace(main, aside)
    os.replace(new, main)
    fsync_dir(root)
    return aside if moved else None


def _drop_unnamed_chunks(index: ArchiveIndex) -> list[str]:
    """Remove the store's chunk files that no row of ``store_chunks`` (or ``store_tables``)
    names (the chunks of a replaced index that could not be read)."""
    sql = "SELECT path FROM store_chunks UNION ALL SELECT path FROM store_tables"
    named = {index.root / r[0] for r in index.conn.execute(sql)}
    gone = 0
    store = index.root / STORE_DIR
    for folder, entries in walk_archive(store) if store.is_dir() else ():
        for entry in entries:
            path = folder / entry.name
            if entry.name.endswith(".h5") and entry.is_file(follow_symlinks=False):
                if path not in named:
                    path.unlink()
                    gone += 1
    return [f"removed {gone} store chunk files no index row names"] if gone else []
