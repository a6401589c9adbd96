"""Where an archive's data come from: ``archive.json`` in each product folder.

``{"kind": "real" | "simulated", "source": "<spec>", "simulator": {"seed", "version"}
(simulated by ``sim`` only), "created": "<UTC date>"}`` is written atomically at the first
update of a new archive (`resolve_source`). Its ``kind`` is fixed from then on:

* an update with a source spec whose kind contradicts it is refused (``--source sim`` into
  a real archive, ``cda``/``arc5gl`` into a simulated one); an update without a spec uses
  the recorded source; a new archive without a spec is an error listing the choices;
* ingest refuses each simulated file into a real archive and each real file into a
  simulated one (`check_file`). Simulated files say so in their headers: FITS files carry
  ``SIMULATD = T`` in the primary header (`SIM_CARD`), obspar files a ``simulated``
  parameter line (`SIM_OBSPAR_LINE`); flight files carry neither.

A ``dir:PATH`` folder, or a CDA mirror at another URL, may hold either kind: the kind is
read from the folder's first file of the product, or left open (``"kind": null``) until the
first file ingested fixes it.

An archive of the original mica (its ``archfiles.db3`` without this package's tables, see
`mica.engine.index.is_original_schema`) has no ``archive.json``: it is real (the original
archived flight data only) and `provenance_line` says so, until `mica.engine.adopt` records
it (``"adopted"`` then says when and from what).
"""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mica.engine.atomic import write_bytes_atomic
from mica.engine.index import holds_original_index
from mica.engine.product import FileProduct, RejectedFile
from mica.engine.source import SOURCE_CHOICES, Source, make_source
from mica.errors import ProvenanceError

ARCHIVE_JSON = "archive.json"
REAL, SIMULATED = "real", "simulated"
#: the primary-header keyword of simulated FITS files
SIM_KEYWORD = "SIMULATD"
SIM_COMMENT = "simulated by mica.sim, not flight data"
SIM_ORIGIN = "mica.sim"
#: the parameter line of simulated obspar files (a boolean the obspar parser reads)
SIM_OBSPAR_LINE = f'simulated,b,h,yes,,,"{SIM_COMMENT}"'
_FITS_BLOCK = 2880
_MAX_HEADER_BLOCKS = 200


def read_provenance(root: str | Path) -> dict[str, Any] | None:
    """The ``archive.json`` record of a product folder (None: none written yet)."""
    path = Path(root) / ARCHIVE_JSON
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise ProvenanceError(f"{path} is not valid JSON ({err}): fix or remove it") from err
    if not isinstance(record, dict) or record.get("kind") not in (REAL, SIMULATED, None):
        raise ProvenanceError(f"{path} has no valid kind ('real' or 'simulated')")
    return record


def write_provenance(root: str | Path, record: dict[str, Any]) -> None:
    """Write ``archive.json`` atomically (temp file, fsync, rename)."""
    write_bytes_atomic(Path(root) / ARCHIVE_JSON, (json.dumps(record, indent=2) + "\n").encode())


def archive_kind(root: str | Path) -> str | None:
    """``'real'``, ``'simulated'`` or None (no record, or not fixed yet); an archive of the
    original mica, not adopted yet, is real."""
    record = read_provenance(root)
    if record is None:
        return REAL if holds_original_index(root) else None
    return record.get("kind")


def settle_kind(root: str | Path, kind: str) -> None:
    """Fix the kind of an archive whose record left it open (its first ingested file's)."""
    record = read_provenance(root)
    if record is not None and record.get("kind") is None:
        write_provenance(root, {**record, "kind": kind})


def file_is_simulated(path: str | Path) -> bool:
    """Whether a product file (FITS or obspar, gzipped or not) carries the simulation marker.

    Raises `RejectedFile` naming the file when its gzip data do not decompress.
    """
    path = Path(path)
    try:
        return _has_sim_marker(path)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise RejectedFile(path.name, f"corrupt or truncated gzip data ({err})") from err


def _has_sim_marker(path: Path) -> bool:
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    with opener(path, "rb") as fh:
        first = fh.read(_FITS_BLOCK)
        if first.startswith(b"SIMPLE  ="):
            block = first
            for _ in range(_MAX_HEADER_BLOCKS):
                for k in range(0, len(block) - 79, 80):
                    card = block[k : k + 80]
                    if card.startswith(SIM_KEYWORD.encode().ljust(8) + b"="):
                        return card[10:].split(b"/")[0].strip() == b"T"
                    if card.rstrip() == b"END":
                        return False
                block = fh.read(_FITS_BLOCK)
                if not block:
                    return False
            return False
        text = first + fh.read()
    marker = SIM_OBSPAR_LINE.split(",", 1)[0].encode() + b","
    return any(line.strip().startswith(marker) for line in text.splitlines())


def file_kind(path: str | Path) -> str:
    """``'simulated'`` when the file carries the marker, else ``'real'``."""
    return SIMULATED if file_is_simulated(path) else REAL


def check_file(name: str, kind: str, archive: str | None, root: Path) -> None:
    """Refuse a file of another kind than the archive's (``archive`` None: anything goes)."""
    if archive is None or kind == archive:
        return
    what = "simulated (mica.sim)" if kind == SIMULATED else "real (flight, no simulation marker)"
    raise RejectedFile(
        name,
        f"is a {what} file but the archive at {root} is {archive} ({root / ARCHIVE_JSON}): "
        "simulated and real data never mix; refused",
    )


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _source_kind(src: Source, product: FileProduct) -> str | None:
    """What the source delivers: its declared provenance, else its first local file's."""
    if src.provenance is not None:
        return src.provenance
    files = getattr(src, "product_files", None)
    if files is None:
        return None
    for path in files(product):
        try:
            return file_kind(path)
        except (OSError, RejectedFile):
            continue  # unreadable: ingest will reject it with the reason
    return None


def resolve_source(spec: str | Source | None, product: FileProduct, root: str | Path) -> Source:
    """The source of an update of ``product`` in ``root``, checked against its provenance.

    With ``spec``: that source, refused when its kind contradicts the archive's. Without:
    the source recorded in ``root/archive.json``; on a new archive, an error listing the
    choices. The first update of a new archive writes its ``archive.json``.
    """
    root = Path(root)
    record = read_provenance(root)
    if spec is None:
        if record is None or not record.get("source"):
            raise ProvenanceError(
                f"the {product.name} archive at {root} has no recorded source "
                f"({ARCHIVE_JSON}): choose one with {SOURCE_CHOICES}"
            )
        spec = record["source"]
    src = make_source(spec)
    src.require(product)
    kind = record.get("kind") if record else None
    if kind is not None and src.provenance is not None and src.provenance != kind:
        raise ProvenanceError(
            f"source {src.spec} delivers {src.provenance} data but the {product.name} archive "
            f"at {root} is {kind} (recorded in {root / ARCHIVE_JSON}, source "
            f"{record.get('source')}): simulated and real data never mix; use another "
            "archive folder (--data-root) for it"
        )
    if record is None:
        record = {"kind": _source_kind(src, product), "source": src.spec}
        simulator = getattr(src, "simulator", None)
        if simulator is not None:
            record["simulator"] = simulator()
        record["created"] = _now()
        write_provenance(root, record)
    elif kind is None and src.provenance is not None:
        settle_kind(root, src.provenance)
    return src


def provenance_line(product: FileProduct, root: str | Path) -> str:
    """One line on where an archive's data come from (for `mica check`)."""
    root = Path(root)
    try:
        record = read_provenance(root)
    except ProvenanceError as err:
        return f"{product.name} provenance: {err}"
    if record is None:
        if holds_original_index(root):
            return (
                f"{product.name} provenance: real, an archive of the original mica's layout "
                f"(its index schema, no {ARCHIVE_JSON}): read as it is; `mica adopt` records "
                "it and builds what this package adds"
            )
        return f"{product.name} provenance: unknown (no {ARCHIVE_JSON} in {root})"
    kind = record.get("kind") or "not fixed yet (no file ingested)"
    text = f"{product.name} provenance: {kind}, source {record.get('source')}"
    adopted = record.get("adopted")
    if adopted:
        text += f", adopted from the original mica's layout {adopted.get('date')}"
    sim = record.get("simulator")
    if sim:
        text += f", simulator seed {sim.get('seed')} version {sim.get('version')}"
    if record.get("created"):
        text += f", created {record['created']}"
    return text
