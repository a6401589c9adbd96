"""Sources of product files, one module per kind, chosen by a spec string ``kind[:arg]``.

Built in: ``sim`` (the simulated Chandra, `mica.sim.source`), ``dir:PATH`` (a local folder,
`mica.sources.directory`), ``arc5gl`` (the CXC client, `mica.sources.arc5gl`), ``cda`` or
``cda:URL`` (the public Chandra Data Archive, `mica.sources.cda`). The table below names each
kind's class; `make_source` imports it only when asked for it, so importing this package
imports no source module (and never the simulator). Plugins add kinds with
`register_source`. There is no default source: an archive's updates use the source recorded
in its ``archive.json`` (`mica.engine.provenance`).
"""

from __future__ import annotations

from collections.abc import Callable

from mica._lazy import import_target
from mica.sources.base import Source, SourceError

#: kind -> "module:Class" of the built-in sources (imported on first use)
BUILTIN_SOURCES: dict[str, str] = {
    "sim": "mica.sim.source:SimSource",
    "dir": "mica.sources.directory:DirSource",
    "arc5gl": "mica.sources.arc5gl:Arc5glSource",
    "cda": "mica.sources.cda:CDASource",
}
#: kind -> factory of the plugins (it receives the text after ``kind:``)
_PLUGINS: dict[str, Callable[[str], Source]] = {}

#: how the choices are shown in messages
SOURCE_CHOICES = "--source sim | dir:PATH | arc5gl | cda"


def register_source(kind: str, factory: Callable[[str], Source]) -> None:
    """Add (or replace) a source kind; ``factory`` receives the text after ``kind:``."""
    _PLUGINS[kind] = factory


def source_kinds() -> list[str]:
    """Every kind `make_source` knows."""
    return list(dict.fromkeys([*BUILTIN_SOURCES, *_PLUGINS]))


def source_class(kind: str) -> type[Source]:
    """The class of a built-in kind (imports its module)."""
    return import_target(BUILTIN_SOURCES[kind])


def sources_for(product: str) -> list[str]:
    """The built-in kinds whose sources declare they can deliver ``product``."""
    return [kind for kind in BUILTIN_SOURCES if source_class(kind).can_deliver(product)]


def make_source(spec: str | Source | None) -> Source:
    """The source of a spec: ``sim`` | ``dir:PATH`` | ``arc5gl`` | ``cda[:URL]`` | a plugin's."""
    if isinstance(spec, Source):
        return spec
    if not spec:
        raise SourceError(f"no source given: choose one ({SOURCE_CHOICES})")
    kind, _, arg = spec.partition(":")
    if kind in _PLUGINS:
        return _PLUGINS[kind](arg)
    if kind not in BUILTIN_SOURCES:
        raise SourceError(
            f"unknown source {spec!r}; choose one of "
            + ", ".join(k + (":PATH" if k == "dir" else "") for k in source_kinds())
        )
    return source_class(kind).from_arg(arg)


__all__ = [
    "BUILTIN_SOURCES",
    "SOURCE_CHOICES",
    "Source",
    "SourceError",
    "make_source",
    "register_source",
    "source_class",
    "source_kinds",
    "sources_for",
]
