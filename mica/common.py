"""The original mica's common definitions, as this archive gives them.

``MICA_ARCHIVE`` (the archive root as a string), ``MICA_ARCHIVE_PATH`` (``$MICA_ARCHIVE`` as
set, possibly a colon-separated list) and ``FLIGHT_MICA_ARCHIVE`` keep their original
names; ``MissingDataError`` is `mica.errors.MissingDataError`. The two paths are read from
the environment at every access (`mica.config.archive_root`), never bound at import, so
``from mica.common import MICA_ARCHIVE`` gives the archive in force at that moment.

Examples
--------
>>> from mica import common
>>> from mica.config import archive_root
>>> common.MICA_ARCHIVE == str(archive_root())
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mica import config
from mica.config import archive_root
from mica.errors import MissingDataError

__all__ = [
    "FLIGHT_MICA_ARCHIVE",
    "MissingDataError",
    "computed_attributes",
]

#: Where the archive lives on the flight (HEAD) systems; this mica never writes there.
FLIGHT_MICA_ARCHIVE = "/data/aca/archive"


def computed_attributes(
    module: str, builders: Mapping[str, Callable[[], Any]]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` computing each name of ``builders`` at every access.

    The original bound its paths (``CONFIG``, ``TABLE_FILE``, ...) when it was imported;
    here they follow ``MICA_ARCHIVE`` as it is when read. An assignment to the module
    attribute (``module.CONFIG = ...``) shadows the computed value, as it did in the original.

    Parameters
    ----------
    module : str
        The module's ``__name__`` (for the AttributeError of other names).
    builders : mapping of str to callable
        Name -> function of no argument giving its current value.

    Returns
    -------
    callable
        The ``__getattr__`` to assign at module level.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807 (the module hook's name)
        if name in builders:
            return builders[name]()
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


def _mica_archive_path() -> str:
    return config.archive_path_setting() or str(config.archive_root())


__getattr__ = computed_attributes(
    __name__,
    {"MICA_ARCHIVE": lambda: str(archive_root()), "MICA_ARCHIVE_PATH": _mica_archive_path},
)
