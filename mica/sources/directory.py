"""``dir:PATH``: a local folder holding product files under their archive names.

By time (`DirSource.fetch`): every file of the product whose name time falls in the range.
By obsid (`DirCatalog`): the folder holds files of a per-obsid product in any structure.
Each delivered file is assigned to an obsid by, in order: a ``<OOOOO>_v<RR>`` folder in its
path (a copy of a mica archive), the obsid in its name (obspar, per-OBI files), its content
(FITS ``OBS_ID`` / obspar ``obs_id``); unindexed companions (logs, dropped files) take the
obsid of the data files beside them. The default and last revisions are those of
``<OOOOO>`` / ``<OOOOO>_last`` links when the folder has them, else the newest revision
present.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from mica.engine.obsid_layout import REV_DIR_RE, ObsidProduct
from mica.engine.product import FileProduct, RejectedFile
from mica.sources.base import Source, SourceError


def obsid_product(product: FileProduct) -> ObsidProduct:
    if not isinstance(product, ObsidProduct):
        raise SourceError(f"{product.name} is not archived by obsid")
    return product


@dataclass
class _Entry:
    path: Path
    kind: str
    revision: int | None
    obsid: int | None = None
    tstart: float | None = None


@dataclass
class DirCatalog:
    """Which files of ``root`` belong to which obsid and revision (built once, on demand)."""

    product: FileProduct
    root: Path
    files: dict[int, dict[int, list[Path]]] = field(default_factory=dict)
    starts: dict[int, list[float]] = field(default_factory=dict)
    links: dict[int, dict[str, int]] = field(default_factory=dict)
    built: bool = False

    def _build(self) -> None:
        product = obsid_product(self.product)
        by_folder: dict[Path, list[_Entry]] = defaultdict(list)
        for folder, dirs, names in os.walk(self.root):  # does not follow links: no duplicates
            here = Path(folder)
            for name in dirs + names:
                path = here / name
                link = re.fullmatch(r"(\d{5})(_last)?", name)
                if link and path.is_symlink():
                    target = REV_DIR_RE.fullmatch(os.path.basename(os.readlink(path)))
                    if target:
                        key = "last" if link.group(2) else "default"
                        self.links.setdefault(int(link.group(1)), {})[key] = int(target.group(2))
            for name in sorted(names):
                path = here / name
                kind = product.classify(name)
                if kind is None or path.is_symlink():
                    continue
                entry = _Entry(path, kind, product.name_revision(name))
                folder_match = [REV_DIR_RE.fullmatch(p) for p in path.relative_to(self.root).parts]
                folder_match = [m for m in folder_match if m]
                if folder_match:
                    entry.obsid = int(folder_match[-1].group(1))
                else:
                    entry.obsid = product.name_obsid(name)
                if kind == "data" or (kind == "drop" and entry.obsid is None):
                    try:
                        obsid, tstart = product.inspect(path)
                    except (RejectedFile, OSError, NotImplementedError):
                        obsid, tstart = None, None  # delivered as is; ingest judges it
                    entry.obsid = entry.obsid if entry.obsid is not None else obsid
                    entry.tstart = tstart
                by_folder[here].append(entry)
        for entries in by_folder.values():
            known = {e.obsid for e in entries if e.kind == "data" and e.obsid is not None}
            for entry in entries:
                if entry.obsid is None and len(known) == 1:
                    entry.obsid = next(iter(known))
                if entry.obsid is None or entry.revision is None:
                    continue
                self.files.setdefault(entry.obsid, {}).setdefault(entry.revision, []).append(
                    entry.path
                )
                if entry.kind == "data" and entry.tstart is not None:
                    self.starts.setdefault(entry.obsid, []).append(entry.tstart)
        self.built = True

    def obsids(self, start: float, stop: float) -> list[int]:
        if not self.built:
            self._build()
        lookback = getattr(self.product, "source_lookback", 86400.0)
        hits = {
            o: min(ts)
            for o, ts in self.starts.items()
            if any(start - lookback <= t < stop for t in ts)
        }
        return sorted(hits, key=lambda o: hits[o])

    def revisions(self, obsid: int) -> tuple[int | None, int | None]:
        if not self.built:
            self._build()
        revs = sorted(self.files.get(obsid, {}))
        if not revs:
            return None, None
        links = self.links.get(obsid, {})
        default = links.get("default", revs[-1])
        last = links.get("last", default if "default" in links else revs[-1])
        return default, last

    def fetch(self, obsid: int, revision: int, dest: Path) -> list[Path]:
        if not self.built:
            self._build()
        out = []
        for path in self.files.get(obsid, {}).get(revision, []):
            target = dest / path.name
            shutil.copyfile(path, target)
            out.append(target)
        return out


class DirSource(Source):
    """A folder holding product files under their archive names, flat or nested."""

    kind = "dir"
    provenance = None  # a mirror may hold flight or simulated files: the files tell

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.spec = f"dir:{self.path}"
        if not self.path.is_dir():
            raise SourceError(f"source folder {self.path} does not exist")
        self._catalogs: dict[str, DirCatalog] = {}

    @classmethod
    def from_arg(cls, arg: str) -> DirSource:
        if not arg:
            raise SourceError("dir source needs a folder: dir:PATH")
        return cls(arg)

    def product_files(self, product: FileProduct) -> list[Path]:
        """The folder's files of ``product`` (any depth), by name."""
        return [
            path
            for path in sorted(self.path.rglob("*"))
            if path.is_file() and product.filename_re.fullmatch(product.archive_name(path.name))
        ]

    def fetch(self, product: FileProduct, start: float, stop: float, dest: Path) -> list[Path]:
        out = []
        for path in self.product_files(product):
            tfile = product.name_time(path.name)
            # A file named by its start may still overlap the range if it began earlier.
            if start - product.source_lookback <= tfile < stop:
                target = dest / path.name
                shutil.copyfile(path, target)
                out.append(target)
        return out

    def obsids(self, product: FileProduct, start: float, stop: float) -> list[int]:
        return self._catalog(product).obsids(start, stop)

    def revisions(self, product: FileProduct, obsid: int) -> tuple[int | None, int | None]:
        return self._catalog(product).revisions(obsid)

    def fetch_obsid(
        self, product: FileProduct, obsid: int, revision: int, dest: Path
    ) -> list[Path]:
        return self._catalog(product).fetch(obsid, revision, dest)

    def _catalog(self, product: FileProduct) -> DirCatalog:
        if product.name not in self._catalogs:
            self._catalogs[product.name] = DirCatalog(product, self.path)
        return self._catalogs[product.name]
