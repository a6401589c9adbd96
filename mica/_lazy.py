"""Imports made at first use: lazy modules, ``"module:attribute"`` targets, lazy packages.

``astropy.io.fits`` (about 120 ms) and ``astropy.table`` (60 ms) are needed only to read or
validate FITS files and to build tables, not to serve a fetch from the store: the modules of
the read path name them through `LazyModule` so a user's script pays for them only when it
uses them. Registries (products, sources, input providers) name what they hold by
``"module:attribute"`` text, resolved by `import_target` when used; a package's names are
imported at first access by the ``__getattr__`` that `lazy_getattr` makes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
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


def import_target(spec: str) -> Any:
    """The object ``spec`` names, importing its module now.

    Parameters
    ----------
    spec : str
        ``"module:attribute"`` (e.g. ``"mica.sources.cda:CDASource"``), or ``"module"`` for
        the module itself.
    """
    module, _, attr = spec.partition(":")
    mod = importlib.import_module(module)
    return getattr(mod, attr) if attr else mod


def lazy_getattr(module_name: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A package's module ``__getattr__`` (PEP 562) importing each name at its first access.

    Parameters
    ----------
    module_name : str
        The package's ``__name__`` (for the `AttributeError` of an unknown name).
    where : mapping of str to str
        Name -> the module that defines it.
    """

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        return getattr(importlib.import_module(where[name]), name)

    return __getattr__


#: ``astropy.io.fits``, imported on first use.
fits: Any = LazyModule("astropy.io.fits")
#: ``astropy.table``, imported on first use.
astropy_table: Any = LazyModule("astropy.table")
