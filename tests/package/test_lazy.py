"""The lazy resolvers of `mica._lazy`: ``"module:attribute"`` targets and package attributes."""

from __future__ import annotations

import pytest

import mica.engine
import mica.errors
from mica._lazy import import_target


def test_import_target():
    assert import_target("mica.errors:MicaError") is mica.errors.MicaError
    assert import_target("mica.errors") is mica.errors
    with pytest.raises(AttributeError):
        import_target("mica.errors:NoSuchError")


def test_lazy_package_attributes():
    assert mica.engine.RejectedFile is mica.errors.RejectedFile
    from mica.engine.index import ArchiveIndex

    assert mica.engine.ArchiveIndex is ArchiveIndex
    with pytest.raises(AttributeError, match="mica.engine"):
        _ = mica.engine.no_such_name
