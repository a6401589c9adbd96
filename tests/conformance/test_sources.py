"""Every registered source scheme (built-in, plugin, the example of ``docs/layout.rst``)
follows the `mica.engine.source.Source` contract.

All of it is checked offline: the class (its scheme, provenance and declared products,
`Source.can_deliver`, `Source.from_arg`), the spec a source records and re-creates it from,
and the refusal of each registered product it does not deliver, naming the sources that do.
A source that cannot be made here (``arc5gl`` without its CXC binary) must say why when asked
for (a `SourceError` naming it); the checks of an instance are then skipped for it. Fetching
is checked by each source's own tests and, for the sources that make files here, by the
tiny archives of `test_products`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mica.engine.obsid_layout import ObsidProduct
from mica.engine.provenance import REAL, SIMULATED
from mica.engine.registry import products
from mica.engine.source import BUILTIN_SOURCES, Source, make_source, source_class, sources_for
from mica.errors import SourceError
from tests.conformance.conftest import SCHEMES, file_products

#: the argument of the schemes that need one (the others are made from the bare scheme)
SPEC_ARGS = {"dir": "{tmp}"}


def spec_of(scheme: str, tmp: Path) -> str:
    """A spec of ``scheme`` that makes a source here."""
    arg = SPEC_ARGS.get(scheme)
    return scheme if arg is None else f"{scheme}:{arg.format(tmp=tmp)}"


@pytest.fixture(params=SCHEMES)
def scheme(request) -> str:
    return request.param


@pytest.fixture
def spec(scheme: str, tmp_path: Path) -> str:
    return spec_of(scheme, tmp_path)


@pytest.fixture
def source(spec: str, scheme: str):
    """The source of ``spec``, closed afterwards; skipped (after checking the refusal names
    the scheme) when it cannot be made here."""
    try:
        src = make_source(spec)
    except SourceError as err:
        assert scheme in str(err), f"the refusal to make {spec} does not name it: {err}"
        pytest.skip(f"{scheme} cannot be made here: {err}")
    yield src
    close = getattr(src, "close", None)
    if close is not None:
        close()


@pytest.fixture
def source_type(scheme: str, request: pytest.FixtureRequest) -> type[Source]:
    """The class of the scheme: a built-in's from the table (imported, nothing made), a
    plugin's from the source its factory makes."""
    if scheme in BUILTIN_SOURCES:
        return source_class(scheme)
    return type(request.getfixturevalue("source"))


def test_made_from_its_spec_or_refused_with_a_reason(spec: str, scheme: str):
    try:
        src = make_source(spec)
    except SourceError as err:  # a binary or service missing here
        assert scheme in str(err) and ("use" in str(err) or "--source" in str(err)), err
        return
    try:
        assert isinstance(src, Source) and src.spec == spec and str(src) == spec
    finally:
        if hasattr(src, "close"):
            src.close()


def test_class_declares_scheme_provenance_and_products(scheme: str, source_type):
    cls = source_type
    assert issubclass(cls, Source) and cls.scheme == scheme
    assert cls.provenance in (REAL, SIMULATED, None)
    assert cls.products is None or (
        isinstance(cls.products, frozenset) and all(isinstance(n, str) for n in cls.products)
    )


def test_instance_contract(source, source_type, spec: str):
    assert isinstance(source, source_type)
    assert source.provenance in (REAL, SIMULATED, None)
    assert source.spec == spec and str(source) == spec


def test_spec_round_trip(source, source_type, spec: str):
    """The spec an archive records (``archive.json``) makes the same source again."""
    again = make_source(source.spec)
    try:
        assert type(again) is source_type and again.spec == spec
    finally:
        if hasattr(again, "close"):
            again.close()
    assert make_source(source) is source
    _, _, arg = spec.partition(":")
    made = source_type.from_arg(arg)
    assert type(made) is source_type and made.spec == spec
    if hasattr(made, "close"):
        made.close()


def test_no_argument_where_none_is_taken(source_type):
    if source_type.from_arg.__func__ is not Source.from_arg.__func__:
        pytest.skip("the source reads its own argument")
    with pytest.raises(SourceError, match="takes no argument"):
        source_type.from_arg("unexpected")


def test_declared_products_are_registered(source_type):
    assert source_type.products is None or source_type.products <= {e.name for e in products()}


def test_can_deliver_follows_the_declared_products(source_type):
    for product in file_products():
        declared = source_type.products is None or product.name in source_type.products
        assert source_type.can_deliver(product) is declared, product.name
        assert source_type.can_deliver(product.name) is declared, product.name


def test_refuses_what_it_cannot_deliver_naming_the_sources_that_can(source):
    for product in file_products():
        if source.can_deliver(product):
            source.require(product)  # no error
            continue
        with pytest.raises(SourceError) as err:
            source.require(product)
        able = sources_for(product.name)
        assert (", ".join(able) if able else "none registered") in str(err.value), product.name


def test_per_obsid_products_are_served_by_obsid(source_type):
    """A source delivering a per-obsid product implements the per-obsid requests (the base
    class's versions only say it cannot)."""
    for product in file_products():
        if isinstance(product, ObsidProduct) and source_type.can_deliver(product):
            for method in ("obsids", "revisions", "fetch_obsid"):
                assert getattr(source_type, method) is not getattr(Source, method), (
                    f"{source_type.__name__} delivers {product.name} but not its {method}"
                )
