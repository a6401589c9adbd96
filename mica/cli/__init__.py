"""The ``mica`` command line: update, check, fetch, rebuild, demo.

``mica update <product>`` and ``mica check`` come from the product registry
(`mica.engine.registry`); the other commands read the archive (`mica.cli.fetch`).
"""

from mica.cli import check, fetch, update, vv  # noqa: F401  (each adds its commands to main)
from mica.cli._group import main

__all__ = ["main"]
