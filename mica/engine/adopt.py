"""Adopt an archive of the original mica in place: its index made ours, its provenance recorded.

The original kept, in each product folder, an ``archfiles.db3`` holding its ``archfiles``
table alone (`mica.engine.index.is_original_schema`), and its files where this package keeps
them: L0 in ``<year>/<doy>/``, per-obsid products in ``<CC>/<OOOOO>_v<RR>/`` with the
``<OOOOO>`` and ``<OOOOO>_last`` links. Readers use such an archive as it is, writing nothing
(`mica.engine.index.present_as_own`). `adopt_archive` makes it an archive of this package:

1. it reads every indexed file where the layout puts it: each must be a flight file (an
   archive holding a file with the simulation marker is refused before anything is
   written), and the columns the original's index lacks (the aspect L1 ``obi``; the obspar
   ``filetime``, ``year``, ``doy``, ``checksum``) get the values ingest would give
   (`mica.engine.describe.describe_file`);
2. in one transaction: those columns added and filled, this package's tables and indexes
   created, every archived per-obsid revision recorded complete, and each obsid's links
   recorded as intents (default: the revision its link names; last: the newest);
3. the links and ``isdefault`` made to follow the intents (`relink`: links that already
   agree stay as they are; the aspect L1 processing table is filled);
4. ``archive.json`` written: real, source ``arc5gl`` (where the original fetched
   everything), ``adopted`` with the date;
5. the columnar store built, for a product that keeps one.

Files missing or refused in step 1 are reported and left where they are (``mica check
--repair`` deals with them afterwards). Running it again finishes a killed adoption (an index
of ours without ``archive.json``) and builds the store chunks still missing.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from mica.engine.colstore import ColumnStore
from mica.engine.describe import describe_file
from mica.engine.executors import Executor, InlineExecutor, UnitError
from mica.engine.index import (
    INDEX_NAME,
    LOCK_WAIT,
    ArchiveIndex,
    connect_readonly,
    create_tables,
    holds_original_index,
    missing_columns,
)
from mica.engine.lock import UpdateLock
from mica.engine.obsid_layout import ObsidProduct, default_link, link_revision, recover_links
from mica.engine.product import KIND, FileProduct, RejectedFile
from mica.engine.provenance import (
    ARCHIVE_JSON,
    REAL,
    SIMULATED,
    file_kind,
    read_provenance,
    write_provenance,
)
from mica.errors import ProvenanceError

#: where the original fetched every product from: an adopted archive's recorded source
ORIGINAL_SOURCE = "arc5gl"


@dataclass
class AdoptReport:
    """What `adopt_archive` did to one product folder.

    Attributes
    ----------
    product : str
        Product name.
    root : Path
        The product folder.
    files : int
        Files in its index.
    done : list of str
        What was written, in order.
    problems : list of str
        Indexed files missing or refused (left as they are).
    """

    product: str
    root: Path
    files: int = 0
    done: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """First line: what the folder is now; then what was done and the problems."""
        what = "adopted" if self.done else "nothing to adopt"
        lines = [f"{self.product}: {what} in {self.root}, {self.files} indexed files"]
        lines += [f"  {d}" for d in self.done]
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)


def needs_adoption(root: str | Path) -> bool:
    """Whether a product folder holds an index that is the original's, or one without its
    ``archive.json`` (an adoption killed before recording it)."""
    root = Path(root)
    if not (root / INDEX_NAME).is_file():
        return False
    return holds_original_index(root) or read_provenance(root) is None


def _survey_file(product: FileProduct, fill: list[str], item: tuple[str, Path]) -> Any:
    """(kind, values of the ``fill`` columns) of one archived file, or the reason it is
    missing or refused (a string). Reads only; picklable for any executor."""
    name, path = item
    if not path.is_file():
        return f"indexed file missing: {path}"
    if not fill:
        return file_kind(path), {}
    try:
        row = describe_file(product, name, path)
    except RejectedFile as err:
        return f"refused by this package's checks (left as it is): {err}"
    return row[KIND], {c: row[c] for c in fill}


def _survey(
    product: FileProduct, root: Path, executor: Executor, report: AdoptReport
) -> dict[str, dict[str, Any]]:
    """Check every indexed file (step 1): the missing columns' values by filename."""
    conn = connect_readonly(root / INDEX_NAME)
    conn.row_factory = sqlite3.Row
    try:
        fill = [c.name for c in missing_columns(conn, product)]
        rows = [dict(r) for r in conn.execute("SELECT * FROM archfiles ORDER BY filename")]
        if rows and "checksum" in rows[0] and "checksum" not in fill:
            # the original took some products' checksums from another HDU: this package's
            # value is recorded, so that `mica check` compares like with like
            fill.append("checksum")
    finally:
        conn.close()
    items = [(r["filename"], product.path(r, root)) for r in rows]
    values: dict[str, dict[str, Any]] = {}
    results = executor.map(partial(_survey_file, product, fill), items)
    for (name, path), result in zip(items, results):
        if isinstance(result, UnitError):
            report.problems.append(f"{name}: unreadable ({result})")
        elif isinstance(result, str):
            report.problems.append(result)
        elif result[0] == SIMULATED:
            raise ProvenanceError(
                f"{path} carries the simulation marker: an archive of the original mica holds "
                f"flight data only, so {root} is not adopted (its index and files are unchanged)"
            )
        elif fill:
            values[name] = result[1]
    return values


def _migrate(
    product: FileProduct, root: Path, values: dict[str, dict[str, Any]], report: AdoptReport
) -> None:
    """Step 2, in one transaction: the index made ours (columns, tables, revisions, links)."""
    conn = sqlite3.connect(root / INDEX_NAME, timeout=LOCK_WAIT, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        fill = missing_columns(conn, product)
        for col in fill:  # NOT NULL needs a default in ALTER TABLE: the values follow
            sqltype = col.sqltype.lower().replace("not null", "").strip()
            conn.execute(f"ALTER TABLE archfiles ADD COLUMN {col.name} {sqltype}")
        if fill:
            names = [c.name for c in fill]
            sets = ", ".join(f"{n} = ?" for n in names)
            conn.executemany(
                f"UPDATE archfiles SET {sets} WHERE filename = ?",
                [[v[n] for n in names] + [name] for name, v in values.items()],
            )
            report.done.append(f"index columns added: {', '.join(names)}")
        if "checksum" not in {c.name for c in fill} and any(
            "checksum" in v for v in values.values()
        ):
            conn.executemany(
                "UPDATE archfiles SET checksum = ? WHERE filename = ?",
                [[v["checksum"], name] for name, v in values.items() if "checksum" in v],
            )
        create_tables(conn, product)
        if isinstance(product, ObsidProduct):
            _record_revisions(product, conn, root, report)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    report.done.append("index tables of this package created")


def _record_revisions(
    product: ObsidProduct, conn: sqlite3.Connection, root: Path, report: AdoptReport
) -> None:
    """Every archived revision complete; each obsid's links as intents (`relink` applies
    them): default where its link points, last the newest revision."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    counts = conn.execute(
        "SELECT obsid, revision, count(*) FROM archfiles GROUP BY obsid, revision"
    ).fetchall()
    conn.executemany(
        "INSERT OR IGNORE INTO revisions (obsid, revision, nfiles, archived) VALUES (?, ?, ?, ?)",
        [(o, r, n, now) for o, r, n in counts],
    )
    newest: dict[int, int] = {}
    for obsid, rev, _ in counts:
        newest[obsid] = max(rev, newest.get(obsid, rev))
    conn.executemany(
        "INSERT OR REPLACE INTO obsid_links (obsid, default_rev, last_rev, linked) "
        "VALUES (?, ?, ?, 0)",
        [(o, link_revision(default_link(root, o)), last) for o, last in newest.items()],
    )
    report.done.append(f"{len(counts)} revisions of {len(newest)} obsids recorded")


def adopt_archive(
    product: FileProduct,
    data_root: str | Path | None = None,
    build_store: bool = True,
    executor: Executor | None = None,
    wait: float = 0.0,
) -> AdoptReport:
    """Make the original mica's archive of ``product`` an archive of this package, in place
    (see the module docstring); nothing to do on an adopted one but missing store chunks.

    Parameters
    ----------
    product : FileProduct
        The product (``aca-l0``, ``asp-l1``, ``obspar``).
    data_root : path-like, optional
        The product folder (default ``<archive>/<product folder>``).
    build_store : bool
        Build the missing columnar store chunks here (False: the caller does, e.g. on a
        cluster with `mica.engine.store_rebuild.rebuild_store`).
    executor : Executor, optional
        Where the files are read (default: in this process).
    wait : float
        Seconds to wait for a running update of the product.

    Returns
    -------
    AdoptReport

    Raises
    ------
    ProvenanceError
        When an indexed file carries the simulation marker (nothing is written then).
    ArchiveBusy
        When an update of the product runs.
    """
    root = product.root(data_root)
    report = AdoptReport(product.name, root)
    if not (root / INDEX_NAME).is_file():
        return report
    with UpdateLock(root, wait=wait):
        if needs_adoption(root):  # asked again under the lock: another process may have
            original = holds_original_index(root)
            values = _survey(product, root, executor or InlineExecutor(), report)
            if original:
                _migrate(product, root, values, report)
            with ArchiveIndex(product, root) as index:  # in WAL mode from here on
                if isinstance(product, ObsidProduct):
                    changes = recover_links(product, index)
                    report.done += [f"links: {c}" for c in changes if "confirmed" not in c]
            now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            adopted = {"from": "the original mica's layout", "date": now}
            record = {"kind": REAL, "source": ORIGINAL_SOURCE, "adopted": adopted, "created": now}
            write_provenance(root, record)
            report.done.append(f"provenance recorded in {ARCHIVE_JSON}: real, source arc5gl")
        with ArchiveIndex(product, root) as index:
            report.files = len(index.filenames())
            if build_store and product.has_store:
                store = ColumnStore(product, index)
                stale = store.stale_parts()
                if stale:
                    store.rebuild(stale)
                    report.done.append(f"columnar store: {len(stale)} chunks built")
    return report


def adopt_if_original(
    product: FileProduct, root: Path, wait: float = 0.0, executor: Executor | None = None
) -> str | None:
    """What the first update of an archive of the original does first: adopt it (one line
    saying what was done, for the update's report), or None when ``root`` holds none."""
    if not holds_original_index(root):
        return None
    report = adopt_archive(product, root, executor=executor, wait=wait)
    what = "; ".join(report.done + report.problems)
    return f"adopted the original mica's archive {root}: {what}"
