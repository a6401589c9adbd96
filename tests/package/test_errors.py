"""Every error class lives in `mica.errors`, under `MicaError`, beside a built-in base.

The modules that raise them re-export them, so the import paths of before still give the
same class objects (``except mica.engine.lock.ArchiveBusy`` still catches the error).
"""

from __future__ import annotations

import importlib
import inspect

import pytest

import mica.errors
from mica.errors import MicaError

# The error classes defined in mica.errors (not the names it imports).
ERRORS = {
    name: cls
    for name, cls in vars(mica.errors).items()
    if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == "mica.errors"
}
# No built-in base beside MicaError: the root itself, and DerivedFailure, which had none before
# (it is a derived unit's recorded outcome; a base would change which except clauses catch it).
WITHOUT_BUILTIN_BASE = {"MicaError", "DerivedFailure"}

# Where each class was defined before it moved into mica.errors.
OLD_PATHS = {
    "mica.vv": ["VVLookupError", "VVInputError"],
    "mica.vv.core": ["VVInputError", "InconsistentAspectIntervals"],
    "mica.stats.inputs": ["InputError"],
    "mica.engine.lock": ["ArchiveBusy"],
    "mica.engine.obsid_layout": ["ObsidError"],
    "mica.engine.derived": ["DerivedFailure"],
    "mica.engine.product": ["RejectedFile"],
    "mica.engine.provenance": ["ProvenanceError"],
    "mica.sources.base": ["SourceError"],
    "mica.sources.cda": ["NotPublic"],
    "mica.archive.aca_dark.compute": ["CalibrationRefused"],
}


def _builtin_bases(cls: type) -> list[type]:
    return [
        base
        for base in cls.__mro__
        if base.__module__ == "builtins" and base not in (Exception, BaseException, object)
    ]


def test_every_error_is_listed():
    assert set(ERRORS) == set(mica.errors.__all__)


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_error_is_a_mica_error_with_a_builtin_base(name):
    cls = ERRORS[name]
    assert issubclass(cls, MicaError)
    if name not in WITHOUT_BUILTIN_BASE:
        assert _builtin_bases(cls), f"{name} has no built-in base beside MicaError"


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_error_is_in_the_docstring_tree(name):
    assert f" {name} " in mica.errors.__doc__


@pytest.mark.parametrize("module", sorted(OLD_PATHS))
def test_old_import_paths_give_the_same_class(module):
    mod = importlib.import_module(module)
    for name in OLD_PATHS[module]:
        assert getattr(mod, name) is ERRORS[name], f"{module}.{name}"
