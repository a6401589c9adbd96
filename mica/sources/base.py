"""The contract every source of product files follows (`Source`) and its error (`SourceError`).

A source delivers a product's files into a staging folder: by time range (`Source.fetch`) or,
for per-obsid products (`mica.engine.obsid_layout`), by obsid and revision (`obsids`,
`revisions`, `fetch_obsid`). Each source declares the products it can deliver
(`can_deliver`); asking it for another raises `SourceError` naming the sources that can.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from mica.engine.product import FileProduct
from mica.errors import SourceError


class Source(ABC):
    """Delivers a product's files overlapping a time range into a staging folder."""

    #: the registry kind (``sim``, ``dir``, ``arc5gl``, ``cda``, or a plugin's)
    kind: ClassVar[str] = ""
    #: what the delivered files are: ``"real"`` (flight data), ``"simulated"``, or None when
    #: only the files can tell (a local mirror may hold either)
    provenance: ClassVar[str | None] = "real"
    #: names of the products the source delivers; None: any product
    products: ClassVar[frozenset[str] | None] = None
    #: the spec that re-creates the source (recorded in an archive's ``archive.json``)
    spec: str

    @classmethod
    def from_arg(cls, arg: str) -> Source:
        """The source of a spec ``kind[:arg]`` (``arg`` is the text after the colon)."""
        if arg:
            raise SourceError(f"source {cls.kind} takes no argument (got {cls.kind}:{arg})")
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
        from mica.sources import sources_for

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
    ) -> list[Path]:
        """Write the files overlapping [start, stop] into ``dest`` (under their archive names).

        Returns their paths. A source that selects files by their start also delivers those
        that began up to ``lookback`` seconds before ``start`` (None: the product's
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
    ) -> list[Path]:
        """Write every file of one obsid and revision into ``dest``; return their paths."""
        raise SourceError(f"source {self.spec} cannot fetch {product.name} by obsid")

    def obsid_interval(self, obsid: int) -> tuple[float, float] | None:
        """(tstart, tstop) in CXC seconds of an observation as the source knows it; None when
        the source has no schedule (then only an archived obspar gives the interval)."""
        return None

    def __str__(self) -> str:
        return self.spec
