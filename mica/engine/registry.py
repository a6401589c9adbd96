"""The product registry: every archived product by command name, imported only when used.

An entry says what kind of layout the product has (``time``: time-ordered files in an index,
`mica.engine.time_update`; ``obsid``: revision folders per obsid, `mica.engine.obsid_update`;
``calib``: calibration folders, `mica.engine.calib_layout`; ``derived``: tables computed per
observation from other products, `mica.engine.derived`), where its description lives
(a module of `mica.products`; for ``calib`` the update module that runs it), and which of the
one set of update options apply to it. The command line (`mica.cli`) builds
``mica update <product>`` and ``mica check`` from it; a new product is one description module
in `mica.products` plus one entry here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the engine is imported when an update runs, not for `mica --help`
    from mica.engine.report import UpdateReport
    from mica.engine.runner import Progress

#: the update options every product may take (the CLI shows each where it applies)
COMMON = ("start", "stop", "source", "data_root", "wait", "quiet")
#: where the work runs (a dask.distributed cluster); for the products whose jobs take one
CLUSTER = ("scheduler", "workers")
#: the options of a derived product (its inputs are other archives: no source)
DERIVED = ("start", "stop", "obsids", "check_missing", "data_root", "wait", "quiet", *CLUSTER)


@dataclass(frozen=True)
class ProductEntry:
    """One registered product.

    Parameters
    ----------
    name : str
        Command name (``mica update <name>``).
    kind : str
        ``time``, ``obsid``, ``calib`` or ``derived``.
    target : str
        ``module:attribute`` of the product description (``time``, ``obsid``, ``derived``), or
        the module of a ``calib`` product (exposing ``update(**options)`` and
        ``check(data_root, repair)``).
    help : str
        One line for ``mica update --help``.
    options : tuple of str
        The update options that apply (names as in `update`).
    start_help : str
        What ``--start`` defaults to.
    """

    name: str
    kind: str
    target: str
    help: str
    options: tuple[str, ...] = COMMON
    start_help: str = "the newest archived data"

    def load(self) -> Any:
        """The product description (a module for ``calib`` products)."""
        module, _, attr = self.target.partition(":")
        mod = importlib.import_module(module)
        return getattr(mod, attr) if attr else mod

    def update(
        self, progress: Progress | None = None, executor: Any = None, **options: Any
    ) -> UpdateReport:
        """Run this product's update with the given options (those that apply); ``executor``
        (e.g. a `DaskExecutor`) where its units run, for the products that take one."""
        opts = {k: v for k, v in options.items() if k in self.options and k != "quiet"}
        opts = {k: v for k, v in opts.items() if k not in CLUSTER}
        if executor is not None:
            if "scheduler" not in self.options:
                raise ValueError(f"{self.name} does not run on a cluster")
            opts["executor"] = executor
        product = self.load()
        if self.kind == "time":
            from mica.engine.time_update import update_archive

            return update_archive(product, progress=progress, **opts)
        if self.kind == "obsid":
            from mica.engine.obsid_update import update_obsid_archive

            return update_obsid_archive(product, progress=progress, **opts)
        if self.kind == "derived":
            from mica.engine.derived import update_derived

            return update_derived(product, progress=progress, **opts)
        return product.update(progress=progress, **opts)

    def check(self, data_root: str | Path | None = None, repair: bool = False, **kw: Any) -> Any:
        """The product's archive check: a `CheckReport` (time, obsid) or (problems, repairs)
        (calib, derived)."""
        product = self.load()
        if self.kind == "calib":
            return product.check(data_root, repair=repair)
        if self.kind == "derived":
            from mica.engine.derived import check_derived

            return check_derived(product, data_root, repair=repair)
        from mica.engine.index_check import check_archive

        return check_archive(product, data_root=data_root, repair=repair, **kw)


_ENTRIES = (
    ProductEntry(
        "aca-l0",
        "time",
        "mica.products.aca_l0:L0",
        "ACA level-0 image files into <archive>/aca0.",
        (*COMMON, "days_at_once", *CLUSTER),
        start_help="continue from the last ingested time",
    ),
    ProductEntry(
        "asp-l1",
        "obsid",
        "mica.products.asp_l1:ASP_L1",
        "Aspect L1 products into <archive>/asp1, by obsid and revision.",
        (*COMMON, "obsids", "refresh", *CLUSTER),
    ),
    ProductEntry(
        "obspar",
        "obsid",
        "mica.products.obspar:OBSPAR",
        "Obspar files into <archive>/obspar, by obsid and revision.",
        (*COMMON, "obsids", "refresh", *CLUSTER),
    ),
    ProductEntry(
        "aca-dark",
        "calib",
        "mica.archive.aca_dark.update",
        "ACA dark-current calibrations into <archive>/aca_dark.",
        (*COMMON, "with_inputs", "l0_root"),
        start_help="the last archived calibration",
    ),
    ProductEntry(
        "acq-stats",
        "derived",
        "mica.products.acq_stats:ACQ_STATS",
        "Acquisition statistics into <archive>/acq_stats/acq_stats.h5, by obsid.",
        DERIVED,
    ),
    ProductEntry(
        "guide-stats",
        "derived",
        "mica.products.guide_stats:GUIDE_STATS",
        "Guide-star statistics into <archive>/guide_stats/guide_stats.h5, by obsid.",
        DERIVED,
    ),
    ProductEntry(
        "vv",
        "derived",
        "mica.products.vv:VV",
        "Aspect solution V&V into <archive>/vv, per obsid revision.",
        DERIVED,
    ),
)

REGISTRY: dict[str, ProductEntry] = {e.name: e for e in _ENTRIES}


def products(kind: str | None = None) -> list[ProductEntry]:
    """The registered products (of one layout kind), in registration order."""
    return [e for e in _ENTRIES if kind is None or e.kind == kind]


def get(name: str) -> ProductEntry:
    """The entry of a product name; KeyError listing the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no product {name!r}; known: {', '.join(REGISTRY)}") from None
