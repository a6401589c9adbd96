"""The contract every source of product files follows: `Source` and `SourceError`, defined in
`mica.engine.source` and re-exported here (their public path for source modules)."""

from __future__ import annotations

from mica.engine.source import Source, SourceError

__all__ = ["Source", "SourceError"]
