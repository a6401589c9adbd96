"""The product registry: every archived product by command name, imported only when used.

An entry says which layout the product has, where its description lives (a module of
`mica.products`; for ``calib`` the update module that runs it), and which of the one set of
update options apply to it. The layout decides how the product is updated and checked, from
one table (`LAYOUTS`): ``time``, time-ordered files in an index (`mica.engine.time_update`,
checked by `mica.engine.index_check`); ``obsid``, revision folders per obsid
(`mica.engine.obsid_update`, checked the same way); ``calib``, calibration folders
(`mica.engine.calib_layout`, updated and checked by the product's own update module);
``derived``, tables computed per observation from other products (`mica.engine.derived`).
Every check returns a `mica.engine.report.CheckReport`, every update an
`mica.engine.report.UpdateReport`. The command line (`mica.cli`) builds
``mica update <product>`` and ``mica check`` from it; a new product is one description module
(in `mica.products`, or beside its reader for a derived product) plus one entry here, or one
`register_product` call for a product described outside the package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mica._lazy import import_target
from mica.errors import InvalidArgumentError, MissingDataError

if TYPE_CHECKING:  # the engine is imported when an update runs, not for `mica --help`
    from mica.engine.report import CheckReport, UpdateReport
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
    layout : str
        ``time``, ``obsid``, ``calib`` or ``derived`` (a key of `LAYOUTS`).
    target : str
        ``module:attribute`` of the product description (``time``, ``obsid``, ``derived``), or
        the module of a ``calib`` product (exposing ``update(**options)`` and
        ``check(data_root, repair)`` returning ``(problems, repairs)``).
    help : str
        One line for ``mica update --help``.
    options : tuple of str
        The update options that apply (names as in `update`).
    start_help : str
        What ``--start`` defaults to.
    data_root_help : str
        What ``--data-root`` names.
    product : str
        ``calib`` only: ``module:attribute`` of the file product whose folder the update
        fills (its name and folder give the check's provenance line).
    """

    name: str
    layout: str
    target: str
    help: str
    options: tuple[str, ...] = COMMON
    start_help: str = "the newest archived data"
    data_root_help: str = "the product folder"
    product: str = ""

    def load(self) -> Any:
        """The product description (a module for ``calib`` products)."""
        return import_target(self.target)

    def update(
        self, progress: Progress | None = None, executor: Any = None, **options: Any
    ) -> UpdateReport:
        """Run this product's update with the given options (those that apply); ``executor``
        (e.g. a `DaskExecutor`) where its units run, for the products that take one."""
        opts = {k: v for k, v in options.items() if k in self.options and k != "quiet"}
        opts = {k: v for k, v in opts.items() if k not in CLUSTER}
        if executor is not None:
            if "scheduler" not in self.options:
                raise InvalidArgumentError(f"{self.name} does not run on a cluster")
            opts["executor"] = executor
        return LAYOUTS[self.layout].update(self, progress=progress, **opts)

    def check(
        self, data_root: str | Path | None = None, repair: bool = False, verify_store: bool = False
    ) -> CheckReport:
        """The product's archive check (``verify_store``: also decompress every store chunk)."""
        return LAYOUTS[self.layout].check(
            self, data_root=data_root, repair=repair, verify_store=verify_store
        )


@dataclass(frozen=True)
class Layout:
    """How the products of one layout are updated and checked.

    Parameters
    ----------
    update : callable
        ``update(entry, progress=..., **options) -> UpdateReport``.
    check : callable
        ``check(entry, data_root=..., repair=..., verify_store=...) -> CheckReport``.
    """

    update: Callable[..., UpdateReport]
    check: Callable[..., CheckReport]


def _with_description(target: str) -> Callable[..., Any]:
    """The engine function ``target`` (``module:function``, imported when called) applied to
    an entry's product description."""

    def call(entry: ProductEntry, **options: Any) -> Any:
        return import_target(target)(entry.load(), **options)

    return call


def _update_calibrations(entry: ProductEntry, **options: Any) -> UpdateReport:
    """A calibration product's update: its update module's ``update``."""
    return entry.load().update(**options)


def _check_calibrations(
    entry: ProductEntry,
    data_root: str | Path | None = None,
    repair: bool = False,
    verify_store: bool = False,
) -> CheckReport:
    """A calibration product's check: its update module's ``check`` (``verify_store``
    changes nothing: each folder's data are verified anyway), with the provenance of the
    file product it fills."""
    from mica.engine.provenance import provenance_line
    from mica.engine.report import CheckReport

    problems, repairs = entry.load().check(data_root, repair=repair)
    product = import_target(entry.product)
    provenance = provenance_line(product, product.root(data_root))
    return CheckReport(entry.name, None, problems, repairs, provenance)


#: layout -> how its products are updated and checked
LAYOUTS: dict[str, Layout] = {
    "time": Layout(
        _with_description("mica.engine.time_update:update_archive"),
        _with_description("mica.engine.index_check:check_archive"),
    ),
    "obsid": Layout(
        _with_description("mica.engine.obsid_update:update_obsid_archive"),
        _with_description("mica.engine.index_check:check_archive"),
    ),
    "calib": Layout(_update_calibrations, _check_calibrations),
    "derived": Layout(
        _with_description("mica.engine.derived:update_derived"),
        _with_description("mica.engine.derived:check_derived"),
    ),
}


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
        data_root_help="the aca_dark folder",
        product="mica.archive.aca_dark.product:DARK",
    ),
    ProductEntry(
        "acq-stats",
        "derived",
        "mica.stats.acq_product:ACQ_STATS",
        "Acquisition statistics into <archive>/acq_stats/acq_stats.h5, by obsid.",
        DERIVED,
    ),
    ProductEntry(
        "guide-stats",
        "derived",
        "mica.stats.guide_product:GUIDE_STATS",
        "Guide-star statistics into <archive>/guide_stats/guide_stats.h5, by obsid.",
        DERIVED,
    ),
    ProductEntry(
        "vv",
        "derived",
        "mica.vv.product:VV",
        "Aspect solution V&V into <archive>/vv, per obsid revision.",
        DERIVED,
    ),
)

#: name -> entry of every registered product: the built-in ones, then `register_product`'s
REGISTRY: dict[str, ProductEntry] = {e.name: e for e in _ENTRIES}


def register_product(entry: ProductEntry) -> None:
    """Add (or replace) a product: its updates, checks and command line come from ``entry``.

    A product of the package is one line of the built-in table of this module; a product
    described outside the package (a plugin) is registered with this function. The command
    line (``mica update <name>``, ``mica check``), `ProductEntry.update` and
    `ProductEntry.check` see the entry at once. ``docs/layout.rst`` shows a worked example
    of each kind.

    Parameters
    ----------
    entry : ProductEntry
        The product's entry; its ``layout`` must be a key of `LAYOUTS`.

    Raises
    ------
    ValueError
        When the layout is not one of `LAYOUTS`.
    """
    if entry.layout not in LAYOUTS:
        raise ValueError(
            f"product {entry.name!r} has layout {entry.layout!r}; layouts: {', '.join(LAYOUTS)}"
        )
    REGISTRY[entry.name] = entry


def products(layout: str | None = None) -> list[ProductEntry]:
    """The registered products (of one layout), in registration order."""
    return [e for e in REGISTRY.values() if layout is None or e.layout == layout]


def get(name: str) -> ProductEntry:
    """The entry of a product name; KeyError listing the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise MissingDataError(f"no product {name!r}; known: {', '.join(REGISTRY)}") from None
