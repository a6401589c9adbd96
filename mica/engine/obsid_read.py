"""Generic reads of a per-obsid archive: index rows by obsid or time, and their file paths.

Product-agnostic (any `mica.engine.obsid_layout.ObsidProduct`): `content_list` validates
content names, `query_rows` selects index rows of complete revisions, `row_paths` turns them
into paths in the revision folders. The user modules `mica.archive.asp_l1` and
`mica.archive.obspar` build on them.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mica.engine.index import ArchiveIndex
from mica.engine.obsid_layout import ObsidProduct, check_obsid
from mica.engine.synced import require_synced
from mica.errors import InvalidArgumentError
from mica.time import time_range


def content_list(product: ObsidProduct, content: str | Sequence[str] | None) -> list[str]:
    """Validated content names (default: the product's default list)."""
    if content is None:
        return list(product.contents)
    names = [content] if isinstance(content, str) else list(content)
    names = [str(n).upper() for n in names]
    unknown = [n for n in names if n not in product.all_contents]
    if unknown:
        raise InvalidArgumentError(
            f"unknown {product.name} content {unknown}; valid: {', '.join(product.all_contents)}"
        )
    return names


Revision = int | str | None


def query_rows(
    product: ObsidProduct,
    obsid: int | None = None,
    start: Any = None,
    stop: Any = None,
    revision: Revision = None,
    content: str | Sequence[str] | None = None,
    data_root: str | Path | None = None,
    columns: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Index rows by obsid or overlapping [start, stop], ordered by tstart.

    ``revision``: None = the default revision, an int, ``'last'`` (the newest archived) or
    ``'all'``. Only revisions whose files are all archived are returned. ``columns``
    limits the columns read (obspar rows have ~140): filename, obsid and revision always.
    Raises `MissingArchiveError` when the product folder holds no archive, and in a synced
    folder (`mica.engine.synced`) `MissingDataError` for a time range outside what was
    synced, or an obsid it does not hold that no sync brought.
    """
    if obsid is None and (start is None or stop is None):
        raise InvalidArgumentError("Must supply either obsid or start and stop")
    if isinstance(revision, numbers.Integral) and not isinstance(revision, bool):
        revision = int(revision)
    elif not (revision is None or revision in ("all", "last")):
        raise InvalidArgumentError(
            f"revision must be None, an int, 'last' or 'all', not {revision!r}"
        )
    contents = content_list(product, content)
    where: list[str] = []
    params: list[Any] = []
    root = product.root(data_root)
    if obsid is not None:
        where.append("obsid = ?")
        params.append(check_obsid(obsid))
    else:
        tstart, tstop = time_range(start, stop, instant=True)
        require_synced(root, [product.name], tstart, tstop)
        where.append("tstart >= ? AND tstart < ? AND tstop > ?")
        params += [tstart - product.max_file_span, tstop, tstart]
    where.append(f"content IN ({','.join('?' * len(contents))})")
    params += contents
    complete = (
        "EXISTS (SELECT 1 FROM revisions r WHERE r.obsid = archfiles.obsid "
        "AND r.revision = archfiles.revision)"
    )
    if revision is None:
        where.append("isdefault = 1")  # set only once a revision is complete and linked
    else:
        where.append(complete)
        if isinstance(revision, int):
            where.append("revision = ?")
            params.append(int(revision))
        elif revision == "last" and obsid is not None:
            where.append("revision = (SELECT max(revision) FROM revisions WHERE obsid = ?)")
            params.append(check_obsid(obsid))
    cols = (
        "*"
        if columns is None
        else ", ".join(dict.fromkeys(["filename", "obsid", "revision", *columns]))
    )
    sql = f"SELECT {cols} FROM archfiles WHERE {' AND '.join(where)} ORDER BY tstart, filename"
    # MissingArchiveError when the folder holds no archive (not an empty result)
    with ArchiveIndex.open_for_reading(product, root) as index:
        rows = [dict(r) for r in index.conn.execute(sql, params)]
        held = bool(rows) or obsid is None or _holds(index, check_obsid(obsid))
    if not held:  # nothing of the obsid here: in a synced folder, name the sync bringing it
        require_synced(root, [product.name], obsid=check_obsid(obsid))
    if revision == "last" and obsid is None:
        newest: dict[int, int] = {}
        for row in rows:
            newest[row["obsid"]] = max(newest.get(row["obsid"], -1), row["revision"])
        rows = [r for r in rows if r["revision"] == newest[r["obsid"]]]
    return rows


def _holds(index: ArchiveIndex, obsid: int) -> bool:
    """Whether any file of ``obsid`` (any revision, any content) is indexed."""
    sql = "SELECT 1 FROM archfiles WHERE obsid = ? LIMIT 1"
    return index.conn.execute(sql, (obsid,)).fetchone() is not None


def row_paths(
    product: ObsidProduct, rows: list[dict[str, Any]], data_root: str | Path | None = None
) -> list[str]:
    """Paths in the revision folders (never through the default/last links)."""
    root = str(product.root(data_root))
    # plain string formatting: queries return thousands of rows, Path objects cost ~10 us each
    out = []
    for r in rows:
        name = f"{r['obsid']:05d}"
        out.append(f"{root}/{name[:2]}/{name}_v{r['revision']:02d}/{r['filename']}")
    return out
