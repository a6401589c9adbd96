"""The contract every source of product files follows (`Source`, `SourceError`) and the
registry that makes a source from a spec string ``scheme[:arg]``.

A source delivers a product's files into a staging folder: by time range (`Source.fetch`) or,
for per-obsid products (`mica.engine.obsid_layout`), by obsid and revision (`obsids`,
`revisions`, `fetch_obsid`). Each source declares the products it can deliver
(`can_deliver`); asking it for another raises `SourceError` naming the sources that can.

Built-in schemes: ``sim`` (the simulated Chandra, `mica.sim.source`), ``dir:PATH`` (a local
folder, `mica.sources.directory`), ``arc5gl`` (the CXC client, `mica.sources.arc5gl`),
``cda`` or ``cda:URL`` (the public Chandra Data Archive, `mica.sources.cda`). The table
`BUILTIN_SOURCES` names each scheme's class as ``"module:Class"``; `make_source` imports it
only when asked for it, so the engine imports no source module (and never the simulator).
Plugins add schemes with `register_source`. There is no default source: an archive's updates
use the source recorded in its ``archive.json`` (`mica.engine.provenance`). The public path
of these names is `mica.sources`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar, TypeVar

from mica._lazy import import_target
from mica.engine.product import FileProduct
from mica.errors import RejectedFile, SourceError

_Item = TypeVar("_Item")


def split_delivery(
    items: Iterable[_Item | RejectedFile],
) -> tuple[list[_Item], list[RejectedFile]]:
    """A fetch's result as (the files delivered, the files the source refused).

    A source may refuse a file it cannot deliver faithfully (a ``dir:`` folder holding two
    different files under one name): it returns a `RejectedFile` naming it among the paths,
    and the update records it as refused while it archives the rest.
    """
    kept: list[_Item] = []
    refused: list[RejectedFile] = []
    for item in items:
        (refused if isinstance(item, RejectedFile) else kept).append(item)
    return kept, refused


class Source(ABC):
    """Delivers a product's files overlapping a time range into a staging folder."""

    #: the registry scheme (``sim``, ``dir``, ``arc5gl``, ``cda``, or a plugin's)
    scheme: ClassVar[str] = ""
    #: what the delivered files are: ``"real"`` (flight data), ``"simulated"``, or None when
    #: only the files can tell (a local mirror may hold either)
    provenance: ClassVar[str | None] = "real"
    #: names of the products the source delivers; None: any product
    products: ClassVar[frozenset[str] | None] = None
    #: the spec that re-creates the source (recorded in an archive's ``archive.json``)
    spec: str

    @classmethod
    def from_arg(cls, arg: str) -> Source:
        """The source of a spec ``scheme[:arg]`` (``arg`` is the text after the colon)."""
        if arg:
            raise SourceError(f"source {cls.scheme} takes no argument (got {cls.scheme}:{arg})")
        return cls()

    @classmethod
    def can_deliver(cls, product: FileProduct | str) -> bool:
        """Whether the source has files of ``product`` (a product or its name)."""
        name = product if isinstance(product, str) else product.name
        return cls.products is None or name in cls.products

    def require(self, product: FileProduct) -> None:
        """Raise `SourceError` when the source cannot deliver ``product``."""
        if not self.can_deliver(product):
            raise self.cannot_deliver(product)

    def cannot_deliver(self, product: FileProduct) -> SourceError:
        """The error for a product the source does not deliver (sources may refine it)."""
        able = sources_for(product.name)
        return SourceError(
            f"source {self.spec} cannot deliver {product.name}; sources that can: "
            + (", ".join(able) if able else "none registered")
        )

    @abstractmethod
    def fetch(
        self,
        product: FileProduct,
        start: float,
        stop: float,
        dest: Path,
        lookback: float | None = None,
    ) -> list[Path | RejectedFile]:
        """Write the files overlapping [start, stop] into ``dest`` (under their archive names).

        Returns their paths, and a `RejectedFile` for each file the source refuses to
        deliver (`split_delivery`). A source that selects files by their start also delivers
        those that began up to ``lookback`` seconds before ``start`` (None: the product's
        ``source_lookback``), since they may reach into the range; an update's later time
        chunks pass 0, the chunk before having fetched them. Delivering a few more files than
        needed is harmless: ingest recognises files it already holds.
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
    ) -> list[Path | RejectedFile]:
        """Write every file of one obsid and revision into ``dest``; return their paths (and
        refusals, as `fetch` does)."""
        raise SourceError(f"source {self.spec} cannot fetch {product.name} by obsid")

    def obsid_interval(self, obsid: int) -> tuple[float, float] | None:
        """(tstart, tstop) in CXC seconds of an observation as the source knows it; None when
        the source has no schedule (then only an archived obspar gives the interval)."""
        return None

    def __str__(self) -> str:
        return self.spec


#: scheme -> "module:Class" of the built-in sources (imported on first use)
BUILTIN_SOURCES: dict[str, str] = {
    "sim": "mica.sim.source:SimSource",
    "dir": "mica.sources.directory:DirSource",
    "arc5gl": "mica.sources.arc5gl:Arc5glSource",
    "cda": "mica.sources.cda:CDASource",
}
#: scheme -> factory of the plugins (it receives the text after ``scheme:``)
_PLUGINS: dict[str, Callable[[str], Source]] = {}

#: how the choices are shown in messages
SOURCE_CHOICES = "--source sim | dir:PATH | arc5gl | cda"


def register_source(scheme: str, factory: Callable[[str], Source]) -> None:
    """Add (or replace) a source scheme; ``factory`` receives the text after ``scheme:``."""
    _PLUGINS[scheme] = factory


def source_schemes() -> list[str]:
    """Every scheme `make_source` knows."""
    return list(dict.fromkeys([*BUILTIN_SOURCES, *_PLUGINS]))


def source_class(scheme: str) -> type[Source]:
    """The class of a built-in scheme (imports its module)."""
    return import_target(BUILTIN_SOURCES[scheme])


def sources_for(product: str) -> list[str]:
    """The schemes whose sources declare they can deliver ``product``: the built-in ones,
    then the plugins registered with a `Source` class (a plain factory cannot be asked)."""
    able = [scheme for scheme in BUILTIN_SOURCES if source_class(scheme).can_deliver(product)]
    for scheme, factory in _PLUGINS.items():
        asked = isinstance(factory, type) and issubclass(factory, Source)
        if asked and scheme not in able and factory.can_deliver(product):
            able.append(scheme)
    return able


def make_source(spec: str | Source | None) -> Source:
    """The source of a spec: ``sim`` | ``dir:PATH`` | ``arc5gl`` | ``cda[:URL]`` | a plugin's."""
    if isinstance(spec, Source):
        return spec
    if not spec:
        raise SourceError(f"no source given: choose one ({SOURCE_CHOICES})")
    scheme, _, arg = spec.partition(":")
    if scheme in _PLUGINS:
        return _PLUGINS[scheme](arg)
    if scheme not in BUILTIN_SOURCES:
        raise SourceError(
            f"unknown source {spec!r}; choose one of "
            + ", ".join(s + (":PATH" if s == "dir" else "") for s in source_schemes())
        )
    return source_class(scheme).from_arg(arg)
