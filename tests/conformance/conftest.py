"""The conformance suite: every registered source and product, and the worked examples of
``docs/layout.rst``, pass the same checks (`test_sources`, `test_products`).

The examples live in ``docs/examples``, one file each (a source, a file product, a derived
product), and are imported as the top-level modules their registry targets name
(``example_product:EXAMPLE_TABLE``), the way a plugin's modules are: their folder is put on
``sys.path``, which worker processes inherit. Each test module runs with the examples
registered through the public functions (`register_source`, `register_product`: each
example's ``register()``); afterwards the registries are as they were, so the rest of the
suite sees the built-in ones only.
"""

from __future__ import annotations

import sys

import pytest

import mica.cli  # noqa: F401  (the command line is built from the built-in registry first)
import mica.engine.registry as product_registry
import mica.engine.source as source_registry
from mica._lazy import import_target
from mica.engine.derived import DerivedProduct
from mica.engine.product import FileProduct
from mica.engine.registry import ProductEntry, products
from mica.engine.source import make_source, source_schemes
from tests.conftest import REPO_ROOT

EXAMPLES_DIR = REPO_ROOT / "docs" / "examples"
if str(EXAMPLES_DIR) not in sys.path:
    sys.path.insert(0, str(EXAMPLES_DIR))

import example_derived  # noqa: E402
import example_product  # noqa: E402
import example_source  # noqa: E402

#: the worked examples, each with its ``register()`` (its one registry line)
EXAMPLES = (example_source, example_product, example_derived)
#: every registered product (built-ins and plugins) and the examples, in registration order
ENTRIES: list[ProductEntry] = list(
    {e.name: e for e in [*products(), example_product.ENTRY, example_derived.ENTRY]}.values()
)
#: every registered source scheme and the example's
SCHEMES: list[str] = list(dict.fromkeys([*source_schemes(), example_source.ExampleSource.scheme]))
#: the sources that make their files here, without a network or a CXC binary; the first that
#: delivers a product serves its tiny update (`test_products`)
OFFLINE_SOURCES = ("sim", "example")


@pytest.fixture(scope="module", autouse=True)
def registered_examples():
    """The examples registered for one test module; the registries as before afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(product_registry, "REGISTRY", dict(product_registry.REGISTRY))
        mp.setattr(source_registry, "_PLUGINS", dict(source_registry._PLUGINS))
        for example in EXAMPLES:
            example.register()
        yield


def description(entry: ProductEntry) -> FileProduct | DerivedProduct:
    """What an entry describes: its files' product (a calibration product's: the files its
    update fills), or its derived table."""
    return import_target(entry.product) if entry.layout == "calib" else entry.load()


def folder(entry: ProductEntry) -> str:
    """The entry's folder under the archive root."""
    product = description(entry)
    return product.folder if isinstance(product, DerivedProduct) else product.subdir


def file_products() -> list[FileProduct]:
    """The file products of every entry (the products a source may be asked for)."""
    return [description(e) for e in ENTRIES if e.layout != "derived"]


def offline_source(product: FileProduct) -> str:
    """The first of `OFFLINE_SOURCES` that delivers ``product``."""
    for scheme in OFFLINE_SOURCES:
        source = make_source(scheme)
        if source.can_deliver(product):
            return scheme
    raise LookupError(f"no source of {OFFLINE_SOURCES} delivers {product.name}")


def entry_of_folder(name: str) -> ProductEntry:
    """The file product's entry whose folder is ``name`` (a derived product's input)."""
    return next(e for e in ENTRIES if e.layout != "derived" and folder(e) == name)
