"""Upstream sources of product files: one contract, several kinds, chosen by a spec string.

``sim`` (the simulated Chandra, default), ``dir:PATH`` (a local mirror), ``arc5gl`` (the CXC
client, where installed). Later kinds plug in through `register_source`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

from mica.engine.product import FileProduct
from mica.time import to_date


class SourceError(RuntimeError):
    """The source cannot deliver (not installed, unreachable, refused)."""


class Source(ABC):
    """Delivers a product's files overlapping a time range into a staging folder."""

    spec: str

    @abstractmethod
    def fetch(self, product: FileProduct, start: float, stop: float, dest: Path) -> list[Path]:
        """Write the files overlapping [start, stop] into ``dest`` (under their archive names).

        Returns their paths. Delivering a few more files than needed is harmless: ingest
        recognises files it already holds.
        """

    # Per-obsid products (aspect L1, obspar; `mica.engine.obsid_layout`). Sources that cannot
    # serve them keep these defaults, which say so.
    def obsids(self, product: FileProduct, start: float, stop: float) -> list[int]:
        """Obsids with files of a per-obsid product in [start, stop] (CXC seconds)."""
        raise SourceError(
            f"source {self.spec} cannot list {product.name} obsids by time; give obsids"
        )

    def revisions(self, product: FileProduct, obsid: int) -> tuple[int | None, int | None]:
        """(default, last) processing revision of an obsid upstream; (None, None): no data."""
        raise SourceError(f"source {self.spec} cannot look up {product.name} by obsid")

    def fetch_obsid(
        self, product: FileProduct, obsid: int, revision: int, dest: Path
    ) -> list[Path]:
        """Write every file of one obsid and revision into ``dest``; return their paths."""
        raise SourceError(f"source {self.spec} cannot fetch {product.name} by obsid")

    def __str__(self) -> str:
        return self.spec


class SimSource(Source):
    """The simulated Chandra: deterministic files written by the product's simulator."""

    spec = "sim"

    def fetch(self, product: FileProduct, start: float, stop: float, dest: Path) -> list[Path]:
        return product.simulate(start, stop, dest)

    def obsids(self, product: FileProduct, start: float, stop: float) -> list[int]:
        return _sim_hook(product, "simulate_obsids")(start, stop)

    def revisions(self, product: FileProduct, obsid: int) -> tuple[int | None, int | None]:
        return _sim_hook(product, "simulate_revisions")(obsid)

    def fetch_obsid(
        self, product: FileProduct, obsid: int, revision: int, dest: Path
    ) -> list[Path]:
        return _sim_hook(product, "simulate_obsid")(obsid, revision, dest)


def _sim_hook(product: FileProduct, name: str) -> Callable:
    hook = getattr(product, name, None)
    if hook is None:
        raise SourceError(f"the simulated upstream has no per-obsid {product.name} files")
    return hook


class DirSource(Source):
    """A folder holding product files under their archive names, flat or nested."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.spec = f"dir:{self.path}"
        if not self.path.is_dir():
            raise SourceError(f"source folder {self.path} does not exist")

    def fetch(self, product: FileProduct, start: float, stop: float, dest: Path) -> list[Path]:
        out = []
        for path in sorted(self.path.rglob("*")):
            if not path.is_file() or not product.filename_re.fullmatch(
                product.archive_name(path.name)
            ):
                continue
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

    def _catalog(self, product: FileProduct):  # noqa: ANN202 (type lives in obsid_sources)
        from mica.engine.obsid_sources import DirCatalog

        cache = self.__dict__.setdefault("_catalogs", {})
        if product.name not in cache:
            cache[product.name] = DirCatalog(product, self.path)
        return cache[product.name]


class Arc5glSource(Source):
    """The CXC ``arc5gl`` client, driven with a small script per request."""

    spec = "arc5gl"

    def __init__(self) -> None:
        self.exe = shutil.which("arc5gl")
        if self.exe is None:
            raise SourceError(
                "arc5gl is not on PATH: it exists only inside the CXC network; "
                "use --source sim, dir:PATH or cda"
            )

    def fetch(self, product: FileProduct, start: float, stop: float, dest: Path) -> list[Path]:
        if not product.arc5gl_name:
            raise SourceError(f"arc5gl does not serve {product.name}")
        # arc5gl selects by file start: reach back so files straddling `start` come too.
        start -= product.source_lookback
        script = f"tstart={to_date(start)}\ntstop={to_date(stop)}\nget {product.arc5gl_name}\n"
        proc = subprocess.run(
            [self.exe, "-stdin"],
            input=script,
            text=True,
            cwd=dest,
            capture_output=True,
            timeout=3600,
        )
        if proc.returncode != 0:
            raise SourceError(f"arc5gl failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
        return sorted(p for p in dest.iterdir() if p.is_file())

    def obsids(self, product: FileProduct, start: float, stop: float) -> list[int]:
        from mica.engine.obsid_sources import arc5gl_obsids

        return arc5gl_obsids(self.exe, product, start, stop)

    def revisions(self, product: FileProduct, obsid: int) -> tuple[int | None, int | None]:
        from mica.engine.obsid_sources import arc5gl_revisions

        return arc5gl_revisions(self.exe, product, obsid)

    def fetch_obsid(
        self, product: FileProduct, obsid: int, revision: int, dest: Path
    ) -> list[Path]:
        from mica.engine.obsid_sources import arc5gl_fetch_obsid

        return arc5gl_fetch_obsid(self.exe, product, obsid, revision, dest)


_FACTORIES: dict[str, Callable[[str], Source]] = {
    "sim": lambda arg: SimSource(),
    "dir": lambda arg: DirSource(arg),
    "arc5gl": lambda arg: Arc5glSource(),
}


def register_source(kind: str, factory: Callable[[str], Source]) -> None:
    """Add a source kind (the factory receives the text after ``kind:``)."""
    _FACTORIES[kind] = factory


def make_source(spec: str | Source | None = None) -> Source:
    """``sim`` | ``dir:PATH`` | ``arc5gl`` (default: ``MICA_SOURCE`` or ``sim``)."""
    if isinstance(spec, Source):
        return spec
    spec = spec or os.environ.get("MICA_SOURCE") or "sim"
    kind, _, arg = spec.partition(":")
    if kind not in _FACTORIES:
        raise SourceError(
            f"unknown source {spec!r}; choose one of "
            + ", ".join(f"{k}" + (":PATH" if k == "dir" else "") for k in _FACTORIES)
        )
    if kind == "dir" and not arg:
        raise SourceError("dir source needs a folder: dir:PATH")
    return _FACTORIES[kind](arg)
