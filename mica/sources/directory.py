"""``dir:PATH``: a local folder holding product files under their archive names.

By time (`DirSource.fetch`): every file of the product whose name time falls in the range.
By obsid (`DirCatalog`): the folder holds files of a per-obsid product in any structure.
Each delivered file is assigned to an obsid by, in order: a ``<OOOOO>_v<RR>`` folder in its
path (a copy of a mica archive), the obsid in its name (obspar, per-OBI files), its content
(FITS ``OBS_ID`` / obspar ``obs_id``); unindexed companions (logs, dropped files) take the
obsid of the data files beside them. The default and last revisions are those of
``<OOOOO>`` / ``<OOOOO>_last`` links when the folder has them, else the newest revision
present.

Hostile folders: a symbolic link is followed only when it resolves to a regular file inside
the source folder (a link out of it -- e.g. to someone's private file -- is not followed and
is named in the report's notes). Staged copies get the archive's mode (the umask or
``MICA_UMASK``), not their source's: a file private to its owner in the source folder is
archived readable as the archive's other files. One name in several subfolders: identical
copies are delivered once; copies with different contents are delivered not at all: each is
refused naming every copy (the update is not ok and says why) and the other files are
archived.
"""

from __future__ import annotations

import filecmp
import os
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mica.engine.atomic import new_mode
from mica.engine.obsid_layout import REV_DIR_RE, ObsidProduct
from mica.engine.product import FileProduct, RejectedFile
from mica.engine.source import Source, SourceError


def obsid_product(product: FileProduct) -> ObsidProduct:
    if not isinstance(product, ObsidProduct):
        raise SourceError(f"{product.name} is not archived by obsid")
    return product


def inside_file(root: Path, path: Path) -> Path | None:
    """The regular file ``path`` is or links to, when it lies inside ``root``; else None.

    ``root`` is resolved by the caller. A link is followed only within the folder, so a
    source folder never leaks a file it does not hold.
    """
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling link or a loop of links
        return None
    if not real.is_relative_to(root) or not real.is_file():
        return None
    return real


def copy_staged(path: Path, target: Path) -> None:
    """Copy ``path`` to ``target`` with the archive's mode for a new file (`new_mode`: the
    umask or ``MICA_UMASK``), whatever the source's mode bits."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with open(fd, "wb") as out, open(path, "rb") as src:
        os.fchmod(fd, new_mode())
        while block := src.read(1 << 20):
            out.write(block)


def deliver(spec: str, paths: list[Path], dest: Path) -> list[Path | RejectedFile]:
    """Copy ``paths`` into ``dest`` by name; one name found in several places is delivered
    once when the copies are identical. Copies with different contents are all refused
    (none delivered): each comes back as a `RejectedFile` naming it and the other copies,
    beside the paths delivered (the update records the refusals and archives the rest).
    """
    by_name: dict[str, list[Path]] = defaultdict(list)
    for path in paths:
        by_name[path.name].append(path)
    out: list[Path | RejectedFile] = []
    for name, same in by_name.items():
        if any(not filecmp.cmp(same[0], other, shallow=False) for other in same[1:]):
            out += [
                RejectedFile(
                    str(path),
                    f"{name} differs between {', '.join(str(p) for p in same)}: no copy is "
                    f"archived (keep one copy of each file in {spec})",
                )
                for path in same
            ]
            continue
        target = dest / name
        copy_staged(same[0], target)
        out.append(target)
    return out


@dataclass
class _Entry:
    path: Path
    role: str  # the product's classification: 'data', 'drop' or 'extra'
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
                role = product.classify(name)
                if role is None or path.is_symlink():
                    continue
                entry = _Entry(path, role, product.name_revision(name))
                folder_match = [REV_DIR_RE.fullmatch(p) for p in path.relative_to(self.root).parts]
                folder_match = [m for m in folder_match if m]
                if folder_match:
                    entry.obsid = int(folder_match[-1].group(1))
                else:
                    entry.obsid = product.name_obsid(name)
                if role == "data" or (role == "drop" and entry.obsid is None):
                    try:
                        obsid, tstart = product.inspect(path)
                    except (RejectedFile, OSError, NotImplementedError):
                        obsid, tstart = None, None  # delivered as is; ingest judges it
                    entry.obsid = entry.obsid if entry.obsid is not None else obsid
                    entry.tstart = tstart
                by_folder[here].append(entry)
        for entries in by_folder.values():
            known = {e.obsid for e in entries if e.role == "data" and e.obsid is not None}
            for entry in entries:
                if entry.obsid is None and len(known) == 1:
                    entry.obsid = next(iter(known))
                if entry.obsid is None or entry.revision is None:
                    continue
                self.files.setdefault(entry.obsid, {}).setdefault(entry.revision, []).append(
                    entry.path
                )
                if entry.role == "data" and entry.tstart is not None:
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

    def fetch(self, obsid: int, revision: int, dest: Path) -> list[Path | RejectedFile]:
        if not self.built:
            self._build()
        return deliver(f"dir:{self.root}", self.files.get(obsid, {}).get(revision, []), dest)


class DirSource(Source):
    """A folder holding product files under their archive names, flat or nested."""

    scheme = "dir"
    provenance = None  # a mirror may hold flight or simulated files: the files tell

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.spec = f"dir:{self.path}"
        if not self.path.is_dir():
            raise SourceError(f"source folder {self.path} does not exist")
        self.root = self.path.resolve()  # what "inside the folder" means for links
        self._catalogs: dict[str, DirCatalog] = {}
        self.notes: list[str] = []
        self._noted: set[Path] = set()

    @classmethod
    def from_arg(cls, arg: str) -> DirSource:
        if not arg:
            raise SourceError("dir source needs a folder: dir:PATH")
        return cls(arg)

    def product_files(
        self, product: FileProduct, wanted: Callable[[str], bool] | None = None
    ) -> list[Path]:
        """The folder's files of ``product`` (any depth), by name; links only within it.
        ``wanted(name)``: only names it accepts (tested before the links and files are)."""
        out = []
        for path in sorted(self.path.rglob("*")):
            if not product.filename_re.fullmatch(product.archive_name(path.name)):
                continue
            if wanted is not None and not wanted(path.name):
                continue
            if path.is_symlink() and inside_file(self.root, path) is None:
                if path not in self._noted:
                    self._noted.add(path)
                    self.notes.append(
                        f"{path} is a link to {os.readlink(path)}, outside {self.spec} or "
                        "not a file: not followed (copy the file into the folder)"
                    )
                continue
            if path.is_file():
                out.append(path)
        return out

    def fetch(
        self,
        product: FileProduct,
        start: float,
        stop: float,
        dest: Path,
        lookback: float | None = None,
    ) -> list[Path | RejectedFile]:
        # A file named by its start may still overlap the range if it began earlier.
        first = start - (product.source_lookback if lookback is None else lookback)
        paths = self.product_files(product, lambda name: first <= product.name_time(name) < stop)
        return deliver(self.spec, paths, dest)

    def obsids(self, product: FileProduct, start: float, stop: float) -> list[int]:
        return self._catalog(product).obsids(start, stop)

    def revisions(self, product: FileProduct, obsid: int) -> tuple[int | None, int | None]:
        return self._catalog(product).revisions(obsid)

    def fetch_obsid(
        self, product: FileProduct, obsid: int, revision: int, dest: Path
    ) -> list[Path | RejectedFile]:
        return self._catalog(product).fetch(obsid, revision, dest)

    def _catalog(self, product: FileProduct) -> DirCatalog:
        if product.name not in self._catalogs:
            self._catalogs[product.name] = DirCatalog(product, self.path)
        return self._catalogs[product.name]
