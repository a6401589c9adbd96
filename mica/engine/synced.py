"""What a synced product folder holds: its sync record, read by the readers.

`mica sync` (`mica.sync.run`) copies a part of a published archive (a time range, some
slots, some obsids) and records in the product folder (``sync.json``, `SYNC_RECORD`) the
server and each selection it synced, per product. A reader asked for a time range or an
obsid outside every selection of such a folder raises `MissingDataError` naming the
``mica sync`` command that brings it (`require_synced`), instead of answering as if the data
did not exist. A folder without a record (an archive updated here) is not concerned; a
product folder missing from an archive whose other folders were synced names the sync that
brings that product.

Imported on the read path: two ``stat`` calls per call when there is no record, one when
its kept parse still holds (and a listing of the archive root when the product folder itself
is missing).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mica.errors import DamagedStoreError, MissingDataError
from mica.time import to_date

#: the record of what a product folder was synced from, and the selections synced
SYNC_RECORD = "sync.json"


def read_record(root: str | Path) -> dict[str, Any]:
    """The sync record of a product folder (empty: never synced, or unreadable)."""
    try:
        record = json.loads((Path(root) / SYNC_RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


#: per sync record path: (its (inode, size, mtime) when read, the record)
_KEPT: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def _kept_record(root: str | Path) -> dict[str, Any] | None:
    """`read_record` of a product folder for reading only (never to change: it is kept),
    parsed again only when the file's (inode, size, mtime) changed (a sync replaces it
    whole, `mica.engine.atomic.write_bytes_atomic`); None when there is none. Every read
    asks (`require_synced`): reading and parsing it, or failing to open a missing one, cost
    a day's read of two columns 25 us, a ``stat`` 2 us (measured)."""
    path = os.path.join(root, SYNC_RECORD)
    try:
        st = os.stat(path)
    except OSError:
        return None
    state = (st.st_ino, st.st_size, st.st_mtime_ns)
    kept = _KEPT.get(path)
    if kept is None or kept[0] != state:
        # (replaced between the stat and the read: kept with the older state, so the next
        # call reads it again)
        kept = _KEPT[path] = (state, read_record(root))
    return kept[1]


def _covered(spans: list[tuple[float, float]], start: float, stop: float) -> bool:
    """Whether the union of ``spans`` covers [start, stop]."""
    reach = start
    for lo, hi in sorted(spans):
        if lo > reach:
            break
        reach = max(reach, hi)
        if reach >= stop:
            return True
    return reach >= stop


def require_synced(
    root: str | Path,
    products: Sequence[str],
    start: float | None = None,
    stop: float | None = None,
    obsid: int | None = None,
) -> None:
    """Raise `MissingDataError` when ``root`` is a synced product folder whose selections
    of ``products`` (any of them) do not cover [start, stop] (or ``obsid``).

    The message names the server and the ``mica sync`` command that brings the asked data.
    A selection with an obsid list covers those obsids; one without covers its time range
    (the whole mission when it had none), and an obsid archived here is covered anyway (the
    caller asks only for obsids it did not find).
    """
    found = _synced_products(root)
    if found is None:
        return
    subject, record = found
    held = {name: record[name] for name in products if isinstance(record.get(name), dict)}
    spans: list[tuple[float, float]] = []
    obsids: set[int] = set()
    for entry in held.values():
        for sel in entry.get("selections", []):
            if sel.get("obsids"):
                obsids.update(int(o) for o in sel["obsids"])
                if sel.get("start") is None and sel.get("stop") is None:
                    continue
            lo = sel.get("start")
            hi = sel.get("stop")
            spans.append((float("-inf") if lo is None else lo, float("inf") if hi is None else hi))
    if obsid is not None:
        if obsid in obsids or any(lo == float("-inf") and hi == float("inf") for lo, hi in spans):
            return
        asked, option = f"obsid {obsid}", f"--obsid {obsid}"
    else:
        lo = float("-inf") if start is None else start
        hi = float("inf") if stop is None else stop
        if _covered(spans, lo, hi):
            return
        asked = f"{_date(start)} to {_date(stop)}"
        option = " ".join(
            f"--{k} {_date(t)[:17]}" for k, t in (("start", start), ("stop", stop)) if t is not None
        )
    name = next(iter(held), products[0])
    server = _server(record, held)
    what = (
        f"holds a part of {name} synced from {server}"
        if held
        else f"holds {', '.join(sorted(record))} synced from {server}, not {name}"
    )
    archive = Path(root).parent
    raise MissingDataError(
        f"{subject} {what}, not {asked}: `mica --archive {archive} sync {server} --products "
        f"{name} {option}` brings it"
    )


def is_synced(root: str | Path) -> bool:
    """Whether `require_synced` has anything to check in ``root``: a product folder a sync
    brought, or one missing from an archive whose other folders a sync brought (a caller
    whose range takes work to compute asks this first)."""
    return _synced_products(root) is not None


def _synced_products(root: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The folder a sync record speaks for and its products: ``root``'s own record, or for a
    product folder missing from a synced archive, the archive and the products synced into
    its other folders; None for a folder updated here."""
    record = (_kept_record(root) or {}).get("products")
    if isinstance(record, dict):
        return Path(root), record
    if os.path.exists(root):
        return None  # a folder updated here
    beside = _synced_beside(Path(root))  # a product no sync brought into a synced archive
    return (Path(root).parent, beside) if beside else None


def _synced_beside(root: Path) -> dict[str, Any]:
    """The products synced into the other folders of the archive holding ``root``."""
    out: dict[str, Any] = {}
    try:
        folders = [p for p in root.parent.iterdir() if p.is_dir()]
    except OSError:
        return out
    for folder in folders:
        products = read_record(folder).get("products")
        if isinstance(products, dict):
            out.update({k: v for k, v in products.items() if isinstance(v, dict)})
    return out


def _server(record: dict[str, Any], held: dict[str, Any]) -> str:
    """The server a product of ``held`` (else any product of ``record``) was synced from."""
    return next((e.get("server") for e in held.values() if e.get("server")), None) or next(
        (e.get("server") for e in record.values() if isinstance(e, dict) and e.get("server")),
        "<server URL>",
    )


def synced_chunk_kept(root: Path, chunk: dict[str, Any], lacking: list[str]) -> str | None:
    """What to say of a store chunk `mica sync` installed (the rows of files of the server's
    archive this one lacks) in a partition whose files ``lacking`` it does not hold: None
    when there are none; else that it is kept (rebuilt from the files here it would lose the
    server's rows) without the rows of those archived here since, and the ``mica sync``
    bringing the partition's files (after which an update rebuilds it whole)."""
    if not lacking:
        return None
    record = read_record(root).get("products")
    record = record if isinstance(record, dict) else {}
    held = {k: record[k] for k in ("aca-hdr3", "aca-l0") if isinstance(record.get(k), dict)}
    first = ", ".join(lacking[:3]) + (f" and {len(lacking) - 3} more" if len(lacking) > 3 else "")
    return (
        f"store chunk {chunk['part']} of {root} was installed by a sync and holds files this "
        f"archive lacks: it is kept, without the rows of {first} archived here since, until "
        f"`mica --archive {root.parent} sync {_server(record, held)} --products aca-l0 "
        f"--start {_date(chunk['tstart'])[:17]} --stop {_date(chunk['tstop'])[:17]}` brings "
        "the partition's files (the chunk is then rebuilt from them all)"
    )


def synced_chunk_lost(
    err: DamagedStoreError, product: str, start: float, stop: float
) -> MissingDataError:
    """The error for a store chunk that `mica sync` installed without its partition's files
    (`ColumnStore.synced_alone`) and that fails its checks: there are no files to read
    instead (`serve_from_files` would answer with nothing), so the reader names the chunk and
    the ``mica sync`` that fetches it again (a sync compares a chunk's size and recorded
    digests, not its bytes: the damaged file is to be removed first)."""
    store = next((p for p in err.chunk.parents if p.name == "store"), err.chunk.parent)
    root = store.parent
    return MissingDataError(
        f"{err.detail}; a sync installed this chunk without its partition's files, so there "
        f"are none to read instead: remove {err.chunk} and run "
        f"{synced_chunk_fetch(root, start, stop, product)} to fetch it again"
    )


def synced_chunk_fetch(
    root: Path, start: float | None, stop: float | None, product: str = "aca-hdr3"
) -> str:
    """The ``mica sync`` command (quoted) fetching again the store chunks of [start, stop]
    a sync of ``product`` installed in the L0 folder ``root`` (a reader and `mica check`
    name it for a damaged one, once removed: a sync compares a chunk's size and digests
    record, not its bytes)."""
    record = read_record(root).get("products")
    record = record if isinstance(record, dict) else {}
    held = {product: record[product]} if isinstance(record.get(product), dict) else {}
    option = f"--start {_date(start)[:17]} --stop {_date(stop)[:17]}"
    return (
        f"`mica --archive {root.parent} sync {_server(record, held)} --products {product} {option}`"
    )


def _date(t: float | None) -> str:
    return "the start" if t is None else to_date(t)
