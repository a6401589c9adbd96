"""The ``mica`` command line: update, check, adopt, fetch, rebuild, demo.

``mica update <product>`` and ``mica check`` come from the product registry
(`mica.engine.registry`); each other command is one module here (`mica.cli.adopt`,
`mica.cli.fetch`, `mica.cli.rebuild`, `mica.cli.vv`, `mica.cli.demo`).
"""

from mica.cli import adopt, check, demo, fetch, rebuild, sync, update, vv  # noqa: F401  (each adds its commands to main)
from mica.cli._group import main

__all__ = ["main"]
