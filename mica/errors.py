"""The errors mica raises on purpose, under one base class `MicaError`.

``except MicaError`` catches every failure mica diagnoses itself (bad input, a missing
archive, missing data, a busy archive, a refused file); each class also keeps the built-in
base it had before (``KeyError``, ``ValueError``, ``FileNotFoundError``, ...), so code
written against those keeps working.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["MicaError", "MissingArchiveError", "MissingDataError"]


class MicaError(Exception):
    """Base of every error mica raises on purpose; the message says what to do."""


class MissingArchiveError(MicaError, FileNotFoundError):
    """A reader was pointed at a folder that holds no archive of its product.

    Not to be confused with an archive that holds no data in the asked range (an empty
    result). The message names the folder and the ``mica update`` command that fills it;
    ``product`` and ``folder`` are also attributes.
    """

    def __init__(self, message: str, product: str = "", folder: str | Path = ""):
        # One argument only: OSError's (errno, strerror, filename) form would reformat it.
        super().__init__(message)
        self.product = product
        self.folder = Path(folder)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple:  # keeps product/folder across process boundaries
        return (type(self), (str(self), self.product, str(self.folder)))


class MissingDataError(MicaError, KeyError, ValueError):
    """Asked-for data that does not exist: an unknown header-3 pseudo-MSID, no dark
    calibration for a date or id (a KeyError for dict-style code, a ValueError too)."""

    def __str__(self) -> str:
        # KeyError would repr() the message and show it in quotes.
        return str(self.args[0]) if self.args else ""
