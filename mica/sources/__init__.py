"""Sources of product files, one module per scheme, chosen by a spec string ``scheme[:arg]``.

Built in: ``sim`` (the simulated Chandra, `mica.sim.source`), ``dir:PATH`` (a local folder,
`mica.sources.directory`), ``arc5gl`` (the CXC client, `mica.sources.arc5gl`), ``cda`` or
``cda:URL`` (the public Chandra Data Archive, `mica.sources.cda`). The contract (`Source`,
`SourceError`) and the registry (`make_source`, `register_source`, ...) are the engine's
(`mica.engine.source`), re-exported here, their public path: importing this package imports
no source module (and never the simulator). There is no default source: an archive's updates
use the source recorded in its ``archive.json`` (`mica.engine.provenance`).
"""

from __future__ import annotations

from mica.engine.source import (
    BUILTIN_SOURCES,
    SOURCE_CHOICES,
    Source,
    SourceError,
    make_source,
    register_source,
    source_class,
    source_schemes,
    sources_for,
)

#: the public name of `source_schemes` (a source's scheme was once called its kind)
source_kinds = source_schemes

__all__ = [
    "BUILTIN_SOURCES",
    "SOURCE_CHOICES",
    "Source",
    "SourceError",
    "make_source",
    "register_source",
    "source_class",
    "source_kinds",
    "source_schemes",
    "sources_for",
]
