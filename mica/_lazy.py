"""Modules imported on first attribute access.

``astropy.io.fits`` (about 120 ms) and ``astropy.table`` (60 ms) are needed only to read or
validate FITS files and to build tables, not to serve a fetch from the store: the modules of
the read path name them through `LazyModule` so a user's script pays for them only when it
uses them.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module ``name``, imported at the first attribute access.

    Parameters
    ----------
    name : str
        Dotted module name, e.g. ``"astropy.io.fits"``.
    """

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        # Only called for names not set in __init__: the module's own attributes.
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not yet imported"
        return f"<lazy module {self._name!r} ({state})>"


#: ``astropy.io.fits``, imported on first use.
fits: Any = LazyModule("astropy.io.fits")
#: ``astropy.table``, imported on first use.
astropy_table: Any = LazyModule("astropy.table")
