"""Consistency of an archive with its index: every row has its file, every file its row."""

from __future__ import annotations

from pathlib import Path

from mica.engine.colstore import ColumnStore
from mica.engine.describe import describe_file
from mica.engine.index import INDEX_NAME, ArchiveIndex, table_problem
from mica.engine.ingest import (
    REJECTED_DIR,
    STAGING_DIR,
    IngestReport,
    check_provenance,
    commit_file,
    quarantine,
    recover_pending,
    refusing,
)
from mica.engine.lock import check_lock
from mica.engine.product import FileProduct, RejectedFile
from mica.engine.provenance import provenance_line
from mica.engine.report import CheckReport


def _archive_files(product: FileProduct, root: Path) -> dict[str, Path]:
    skip = {REJECTED_DIR, STAGING_DIR}
    out = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).parts
        if rel[0] in skip or not path.is_file():
            continue
        if product.filename_re.fullmatch(path.name) or path.name.endswith(".partial"):
            out[str(path)] = path
    return out


def check_archive(
    product: FileProduct,
    data_root: str | Path | None = None,
    repair: bool = False,
    verify_store: bool = False,
) -> CheckReport:
    """Compare index and files; with ``repair`` make them consistent (under the update lock).
    ``verify_store`` also checks every store chunk against its recorded identity and digests
    and decompresses it (damaged ones are rebuilt).

    Without ``repair`` nothing is written, not even the lock (`check_lock`): the index is
    opened read-only, so the check runs on a read-only archive or one of another user."""
    root = product.root(data_root)
    report = CheckReport(product.name, provenance=provenance_line(product, root))
    if not (root / INDEX_NAME).exists():
        return report
    with check_lock(root, repair), ArchiveIndex(product, root, readonly=not repair) as index:
        if table_problem(index.conn) is not None:  # a first update is creating it
            return report
        for path, action in index.pending():
            report.problems.append(f"interrupted ingest left {action} {Path(path).name}")
        if repair:
            report.repairs += recover_pending(product, index)
        rows = index.query()
        report.files = len(rows)
        indexed = {str(product.path(r, root)): r for r in rows}
        on_disk = _archive_files(product, root)
        for path_str, row in indexed.items():
            if path_str not in on_disk:
                report.problems.append(f"index row without file: {row['filename']}")
                if repair:
                    with index.transaction():
                        index.replace([], [row["filename"]])
                    report.repairs.append(
                        f"dropped row of missing {row['filename']} "
                        "(a later update fetches it again)"
                    )
        for path_str, path in sorted(on_disk.items()):
            if path_str in indexed:
                continue
            if path.name.endswith(".partial"):
                report.problems.append(f"partial file {path.name}")
                if repair:
                    path.unlink(missing_ok=True)
                    report.repairs.append(f"removed partial {path.name}")
                continue
            report.problems.append(f"file without index row: {path.name}")
            if repair:
                try:
                    with refusing(path.name):
                        row = describe_file(product, path.name, path)
                        check_provenance(index, row)
                        if product.path(row, root) != path:
                            raise RejectedFile(path.name, "is not in its layout folder")
                        ingest = IngestReport()
                        commit_file(product, index, row, path, ingest)  # store fixed below
                    what = "indexed" if ingest.ingested else "removed outdated"
                    report.repairs.append(f"{what} {path.name}")
                except RejectedFile as err:
                    quarantine(root, path, err)
                    report.repairs.append(f"quarantined {err}")
        if product.has_store:
            store = ColumnStore(product, index)
            if verify_store:
                mend = f"'mica --archive {root.parent} check --verify-store --repair'"
                for part, (path, problem) in store.damaged_chunks().items():
                    report.problems.append(
                        f"store chunk {part} is damaged: {problem}; mend it with {mend}"
                    )
                    if repair:  # derived data: without its file the chunk is rebuilt below
                        path.unlink(missing_ok=True)
            stale = store.stale_parts()
            report.problems += [f"store chunk {part} does not match the index" for part in stale]
            if repair and stale:
                store.rebuild(stale)
                report.repairs.append(f"rebuilt {len(stale)} store chunks")
        problems, repairs = product.check_layout(index, repair)
        report.problems += problems
        report.repairs += repairs
        report.files = len(index.filenames())
    return report
