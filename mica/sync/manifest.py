"""Manifests of a published archive: what `mica publish` writes and `mica sync` reads.

A published archive is the archive folder as it lies on disk, served by any static web
server, plus a ``publish/`` folder at its root:

* ``publish/head.json``: the one small file a sync always reads. Per product: its layout,
  folder, provenance (``archive.json``) and the *parts* of its manifest, each named by the
  digest of its content, with the period it covers, its time and obsid span, its number of
  entries and the bytes they hold;
* ``publish/parts/<product>/<period>.<digest>.json.gz``: one period's entries (a year of a
  time product, the undated files in ``all``). An entry is one file, store chunk, table or
  link of the product folder with its size, SHA-256 digest (measured here 3x faster than
  BLAKE2b, which has no hardware help on this machine's CPUs), time span, obsid and revision.

Parts are written under their content names first and the head replaced last
(`mica.engine.atomic`), so a syncer reads a head whose parts all exist; a part whose digest is
unchanged keeps its name, so an up-to-date sync fetches the head alone (its parts are kept in
the synced archive, `PARTS_CACHE`). The products come from the registry
(`mica.engine.registry`): a new product of a registered layout needs no sync code. Besides
them, `VIEW_PRODUCTS` names products made of store views alone (``aca-hdr3``: the header-3
views of the L0 store, without the L0 files).
"""

from __future__ import annotations

import bisect
import functools
import gzip
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from mica._lazy import import_target
from mica.engine.registry import ProductEntry, products
from mica.errors import InvalidArgumentError, SyncError
from mica.sync.patch import PIECE_BYTES, Pieces
from mica.time import to_date, to_secs

#: the folder at the archive root holding the head and the parts
PUBLISH_DIR = "publish"
HEAD_NAME = "head.json"
PARTS_DIR = "parts"
#: where a synced archive keeps the parts it read (by content name: never read twice)
PARTS_CACHE = ".sync/parts"
#: the manifest format: a sync refuses another one, naming both
FORMAT = 1
#: the digest of every entry and part
DIGEST = "sha256"
#: the period of entries without a time (tables, undated files)
UNDATED = "all"
#: products made of store views alone: name -> (the time product, its view names)
VIEW_PRODUCTS: dict[str, tuple[str, tuple[str, ...]]] = {"aca-hdr3": ("aca-l0", ("hd3", "hd3s"))}
#: the bookkeeping of a product folder, never published (locks, SQLite's journal, staging)
_PRIVATE = re.compile(
    r"(^|/)(\.[^/]*|update\.lock|staging|rejected|archive\.json|sync\.json|upstream-[^/]*)(/|$)"
    r"|\.db3(-wal|-shm|-journal)?$"
)
_OBSID_DIR = re.compile(r"(?:^|/)(\d{5})(?:_v(\d{2}))?(?:_last)?(?:/|$)")
_DAY_DIR = re.compile(r"^([12]\d{3})(\d{3})(?:/|$)")


def digest_file(path: str | Path) -> str:
    """The SHA-256 digest of a file, in hex (read in blocks of 512 kB)."""
    return _digest(path, False)[0]


def digest_file_and_pieces(path: str | Path) -> tuple[str, Pieces]:
    """The SHA-256 digest of a file and its `mica.sync.patch.Pieces`, in one read."""
    digest, pieces = _digest(path, True)
    assert pieces is not None
    return digest, pieces


def _digest(path: str | Path, with_pieces: bool) -> tuple[str, Pieces | None]:
    h, crcs = hashlib.sha256(), []
    with open(path, "rb") as fh:
        while block := fh.read(64 * PIECE_BYTES):
            h.update(block)
            if with_pieces:
                crcs.append(Pieces.of(np.frombuffer(block, np.uint8)).crcs)
    if not with_pieces:
        return h.hexdigest(), None
    return h.hexdigest(), Pieces(PIECE_BYTES, np.concatenate([np.zeros(0, np.uint32), *crcs]))


class _Record:
    """A dataclass written as a JSON object: its fields that are not None."""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Any:
        """An instance from a JSON object (keys this version does not know are left out)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Entry(_Record):
    """One published file (or link) of a product folder.

    Parameters
    ----------
    path : str
        Relative to the product folder, ``/``-separated.
    kind : str
        ``file`` (an indexed product file), ``extra`` (a file beside an indexed revision,
        e.g. a pipeline log), ``chunk`` (a store chunk), ``table`` (a derived product's
        table), ``tree`` (any other file of a folder product), ``link`` (a symbolic link).
    size, sha256 : int, str
        The file's size and digest (a link: 0 and its target's name).
    tstart, tstop : float or None
        Time span (CXC seconds) of the data, when known.
    obsid, revision, slot : int or None
        What the entry belongs to, when it does.
    part, files, nrows : str, str, int or None
        A store chunk's partition, the file list it was built from (the index's
        ``store_chunks.files``) and its row count.
    digests : str or None
        A store chunk's recorded identity and per-block CRC digests (the index's
        ``store_chunks.digests``): the sync records them with the chunk, so readers check
        its blocks as they check a chunk built here.
    target : str or None
        A link's target (a sibling name).
    mtime_ns : int
        The file's modification time when digested (publish reuses the digest while the
        size and time stay).
    pieces : str or None
        A store chunk's piece checksums (`mica.sync.patch.Pieces.to_text`): a sync holding
        an older generation of the chunk fetches only the pieces that differ.
    """

    path: str
    kind: str
    size: int
    sha256: str
    tstart: float | None = None
    tstop: float | None = None
    obsid: int | None = None
    revision: int | None = None
    slot: int | None = None
    part: str | None = None
    files: str | None = None
    nrows: int | None = None
    digests: str | None = None
    target: str | None = None
    mtime_ns: int = 0
    pieces: str | None = None


@dataclass(frozen=True)
class PartInfo(_Record):
    """One part of a product's manifest as the head names it."""

    period: str
    name: str
    sha256: str
    size: int
    entries: int
    bytes: int
    tstart: float | None = None
    tstop: float | None = None
    obsid_min: int | None = None
    obsid_max: int | None = None


@dataclass(frozen=True)
class ProductHead:
    """A product's section of the head."""

    name: str
    layout: str
    folder: str
    provenance: dict[str, Any] | None
    parts: list[PartInfo] = field(default_factory=list)
    store_version: int | None = None

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "parts" and v is not None}
        out["parts"] = [p.to_json() for p in self.parts]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProductHead:
        return cls(
            data["name"],
            data["layout"],
            data["folder"],
            data.get("provenance"),
            [PartInfo.from_json(p) for p in data.get("parts", [])],
            data.get("store_version"),
        )


@dataclass(frozen=True)
class Head:
    """The head of a published archive: every product's parts."""

    products: dict[str, ProductHead]
    published: str = ""
    format: int = FORMAT

    def encode(self) -> bytes:
        data = {
            "format": self.format,
            "digest": DIGEST,
            "published": self.published,
            "products": {n: p.to_json() for n, p in sorted(self.products.items())},
        }
        return (json.dumps(data, indent=1) + "\n").encode()

    @classmethod
    def decode(cls, data: bytes, where: str) -> Head:
        """The head in ``data`` (read from ``where``); `SyncError` when it is not one."""
        try:
            doc = json.loads(data)
            if doc.get("format") != FORMAT:
                raise SyncError(
                    f"{where} is a manifest of format {doc.get('format')!r}; this mica reads "
                    f"format {FORMAT}: update mica here or on the server"
                )
            return cls(
                {n: ProductHead.from_json(p) for n, p in doc["products"].items()},
                doc.get("published", ""),
                doc["format"],
            )
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise SyncError(f"{where} is not a mica manifest head ({err})") from err

    def same_parts(self, other: Head | None) -> bool:
        """Whether ``other`` names the same parts and provenance (its date aside)."""
        if other is None:
            return False
        return {n: p.to_json() for n, p in self.products.items()} == {
            n: p.to_json() for n, p in other.products.items()
        }


def encode_part(entries: Iterable[Entry]) -> bytes:
    """A part's file content: gzipped JSON lines, written the same way for the same entries
    (mtime 0), so the digest of unchanged entries is unchanged."""
    text = "".join(json.dumps(e.to_json(), sort_keys=True) + "\n" for e in entries)
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


def decode_part(data: bytes, where: str) -> list[Entry]:
    """The entries of a part's content (read from ``where``); `SyncError` if malformed."""
    try:
        text = gzip.decompress(data).decode()
        return [Entry.from_json(json.loads(line)) for line in text.splitlines() if line]
    except (OSError, ValueError, TypeError, KeyError, EOFError) as err:
        raise SyncError(f"{where} is not a manifest part ({err})") from err


@functools.lru_cache(maxsize=1)
def _year_starts() -> tuple[list[float], list[int]]:
    """CXC seconds of 1 January of each year 1995-2100, and the years (one conversion each,
    not one per entry: a mission's manifest lists millions)."""
    years = list(range(1995, 2101))
    return [float(to_secs(f"{y}:001:00:00:00")) for y in years], years


def period_of(entry: Entry) -> str:
    """The period (part) an entry goes in: the UTC year of its start, else `UNDATED`."""
    if entry.tstart is None:
        return UNDATED
    starts, years = _year_starts()
    k = bisect.bisect_right(starts, entry.tstart) - 1
    return str(years[k]) if 0 <= k < len(years) - 1 else to_date(entry.tstart)[:4]


def obsid_of(path: str) -> tuple[int | None, int | None]:
    """(obsid, revision) a path's ``<OOOOO>[_v<RR>]`` folder names (None: none)."""
    match = _OBSID_DIR.search(path)
    if match is None:
        return None, None
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


def day_of(path: str) -> str | None:
    """``YYYY:DDD`` of a path under a ``YYYYDDD`` folder (a calibration id), else None."""
    match = _DAY_DIR.match(path)
    return None if match is None else f"{match.group(1)}:{match.group(2)}"


def is_private(path: str) -> bool:
    """Whether a path of a product folder is bookkeeping that is never published."""
    return _PRIVATE.search(path) is not None


@dataclass(frozen=True)
class SyncProduct:
    """A product as publish and sync see it.

    Parameters
    ----------
    name : str
        The name on the command line (a registry name, or a `VIEW_PRODUCTS` name).
    layout : str
        The registry layout (``time``, ``obsid``, ``calib``, ``derived``) or ``views``.
    entry : ProductEntry
        The registry entry (for ``views``, the time product's).
    views : tuple of str
        ``views`` only: the store views it holds.
    """

    name: str
    layout: str
    entry: ProductEntry
    views: tuple[str, ...] = ()

    def description(self) -> Any:
        """The product's description: a `FileProduct` (time, obsid, views, and the file
        product a calibration product fills) or a `DerivedProduct`."""
        if self.layout == "calib":
            return import_target(self.entry.product)
        return self.entry.load()

    @property
    def folder(self) -> str:
        """The product folder's name under the archive root."""
        desc = self.description()
        return desc.folder if self.layout == "derived" else desc.subdir


def sync_products() -> dict[str, SyncProduct]:
    """Every product publish and sync know: the registry's, then `VIEW_PRODUCTS`."""
    out = {e.name: SyncProduct(e.name, e.layout, e) for e in products()}
    for name, (of, views) in VIEW_PRODUCTS.items():
        if of in out:
            out[name] = SyncProduct(name, "views", out[of].entry, views)
    return out


def chosen_products(names: Iterable[str] | None) -> list[SyncProduct]:
    """The products named (None or empty: all), in registry order; an unknown name is an
    `InvalidArgumentError` listing the known ones."""
    known = sync_products()
    names = [n.strip() for n in (names or []) if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidArgumentError(
            f"no product {', '.join(unknown)} to publish or sync; known: {', '.join(known)}"
        )
    return [p for n, p in known.items() if not names or n in names]


@dataclass(frozen=True)
class Selection:
    """What a sync asks for: a time range, slots, obsids (None: no limit).

    An entry with an obsid is selected by its obsid when obsids are given, else by its time;
    an entry with a time only (L0 files, store chunks) by its time and slot; an entry with
    neither (a derived product's table) always.
    """

    start: float | None = None
    stop: float | None = None
    slots: tuple[int, ...] | None = None
    obsids: tuple[int, ...] | None = None

    def _in_time(self, tstart: float | None, tstop: float | None) -> bool:
        if tstart is None or tstop is None:
            return True
        return (self.stop is None or tstart < self.stop) and (
            self.start is None or tstop > self.start
        )

    def wants_part(self, part: PartInfo) -> bool:
        """Whether a part may hold selected entries (from the head alone)."""
        if self.obsids is not None and part.obsid_min is not None:
            return any(part.obsid_min <= o <= part.obsid_max for o in self.obsids) or (
                part.tstart is None
            )
        return self._in_time(part.tstart, part.tstop)

    def wants(self, entry: Entry) -> bool:
        """Whether an entry is selected."""
        if entry.obsid is not None and self.obsids is not None:
            return entry.obsid in self.obsids
        if self.slots is not None and entry.slot is not None and entry.slot not in self.slots:
            return False
        if self.obsids is not None and self.start is None and self.stop is None:
            return entry.tstart is None  # obsids asked: dated entries without one are not
        return self._in_time(entry.tstart, entry.tstop)

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Selection:
        def tup(v: Any) -> tuple[int, ...] | None:
            return None if v is None else tuple(int(x) for x in v)

        slots, obsids = tup(data.get("slots")), tup(data.get("obsids"))
        return cls(data.get("start"), data.get("stop"), slots, obsids)
