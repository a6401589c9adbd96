"""The errors mica raises on purpose, under one base class `MicaError`.

``except MicaError`` catches every failure mica diagnoses itself (bad input, a missing
archive, missing data, a busy archive, a refused file); each class also keeps the built-in
base it had before (``KeyError``, ``ValueError``, ``FileNotFoundError``, ...), so code
written against those keeps working. Every class is defined here; the modules that raise
them re-export them under their old import paths (``mica.engine.lock.ArchiveBusy`` is
``mica.errors.ArchiveBusy``).

The tree (built-in bases in brackets), with when each is raised::

    MicaError [Exception]            an unknown input-archive kind; base of all below
    |-- MissingArchiveError [FileNotFoundError]
    |                                a reader pointed at a folder with no archive of its product
    |-- MissingFileError [FileNotFoundError]
    |                                an archived file the index lists but that is gone
    |-- DamagedFileError [OSError]   an archived file that no longer reads back as archived
    |-- MissingDataError [KeyError, ValueError]
    |                                asked-for data that does not exist (pseudo-MSID, dark cal)
    |-- TimeRangeError [ValueError]  a time range whose stop comes before its start (or, where an
    |                                instant is not accepted, is not after it)
    |-- InvalidArgumentError [ValueError, TypeError]
    |   |                            an argument a reader cannot take (slot 9, revision 'x')
    |   `-- InvalidTimeError         a time that cannot be read or does not exist (2013:366)
    |-- DamagedStoreError [OSError]  a store chunk failing its checks (MICA_STORE_DAMAGED=raise)
    |-- DamagedIndexError [OSError]  an archive index that is damaged, or missing beside its files
    |-- ArchiveWriteError [OSError]  an archive folder that cannot be written (disk full ...)
    |-- ConfigError [ValueError]     a setting with a bad value (`mica.config`): an environment
    |                                variable, an archive root that is a file
    |-- ObsidError [ValueError]      an obsid that is not an integer in 1..65535
    |-- ProvenanceError [ValueError] a source contradicting the archive's archive.json;
    |                                an archive of the original mica written before adopted
    |-- RejectedFile [ValueError]    a file failing validation during an ingest
    |-- ArchiveBusy [RuntimeError]   another update holds the product's lock
    |-- DerivedFailure [none]        a derived unit that cannot be computed (recorded, retried)
    |-- SourceError [RuntimeError]   a source that cannot deliver (not installed, unreachable)
    |   `-- NotPublic                the public archive does not hold the product at all
    |-- SyncError [ConnectionError]  a published archive that cannot be synced (server errors,
    |                                a file differing from its manifest); names file and server
    |-- CalibrationRefused [ValueError]
    |                                a dark calibration that cannot be built
    |-- InputError [ValueError]      a missing or unusable input of one observation's statistics
    |-- VVInputError [ValueError]    a missing or unreadable input file of the V&V
    |-- InconsistentAspectIntervals [ValueError]
    |                                later aspect intervals listing other slots than the first
    `-- VVLookupError [LookupError]  no V&V (or aspect L1 revision) of an obsid and version

`DerivedFailure` alone has no built-in base: it is a recorded outcome of a derived unit,
caught by the derived-product runner, never by code expecting a built-in error.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

__all__ = [
    "ArchiveBusy",
    "ArchiveWriteError",
    "CalibrationRefused",
    "ConfigError",
    "DamagedFileError",
    "DamagedIndexError",
    "DamagedStoreError",
    "DerivedFailure",
    "InconsistentAspectIntervals",
    "InputError",
    "InvalidArgumentError",
    "InvalidTimeError",
    "MicaError",
    "MissingArchiveError",
    "MissingDataError",
    "MissingFileError",
    "NotPublic",
    "ObsidError",
    "ProvenanceError",
    "RejectedFile",
    "SourceError",
    "SyncError",
    "TimeRangeError",
    "VVInputError",
    "VVLookupError",
]


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


class _ArchivedFile:
    """Mixed into the errors about one archived file: one message, and the file as
    ``path`` (kept across process boundaries)."""

    def __init__(self, message: str, path: str | Path = ""):
        super().__init__(message)  # one argument: see MissingArchiveError
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple:
        return (type(self), (str(self), str(self.path)))


class MissingFileError(_ArchivedFile, MicaError, FileNotFoundError):
    """An archived file that the archive's index lists but that is gone (deleted or moved
    outside mica). The message names the file and ``mica check --repair``, which drops it
    from the index; ``path`` is also an attribute.
    """

    @classmethod
    def at(cls, path: str | Path, root: str | Path) -> MissingFileError:
        """The error for ``path``, a file of the product folder ``root``."""
        root = Path(root)
        return cls(
            f"archived file {path} is missing: the index of {root} lists it, but it was "
            f"deleted or moved outside mica. 'mica --archive {root.parent} check --repair' "
            "drops it from the index; an update of its time range or obsid then fetches it "
            "again",
            path,
        )


class DamagedFileError(_ArchivedFile, MicaError, OSError):
    """An archived file that no longer reads back as it was archived: its gzip data, gzip
    checksum or length, a FITS checksum or its FITS structure fails (a flipped bit, a
    truncation, a directory in its place); or a file mica wrote whole (a derived table, a
    dark calibration's files) that no longer matches the digests recorded with it. The
    message names the file, the problem and the repair; ``path`` is also an attribute.
    """

    @classmethod
    def written(cls, path: str | Path, problem: str, mend: str) -> DamagedFileError:
        """The error for ``path``, a file mica wrote whole: ``problem``; ``mend``: what its
        archive's owner runs to write it again."""
        return cls(
            f"{path} is damaged: {problem}. Nothing was read from it. Its archive's owner "
            f"can write it again: {mend}",
            path,
        )

    @classmethod
    def at(cls, path: str | Path, root: str | Path, problem: str) -> DamagedFileError:
        """The error for ``path``, a file of the product folder ``root``: ``problem``."""
        root = Path(root)
        return cls(
            f"archived file {path} is damaged: {problem}. Nothing was read from it. Its "
            f"archive's owner can delete it, run 'mica --archive {root.parent} check "
            "--repair' (which drops it from the index) and update its time range or obsid "
            "again, which fetches it again",
            path,
        )


class MissingDataError(MicaError, KeyError, ValueError):
    """Asked-for data that does not exist: an unknown header-3 pseudo-MSID, no dark
    calibration for a date or id (a KeyError for dict-style code, a ValueError too)."""

    def __str__(self) -> str:
        # KeyError would repr() the message and show it in quotes.
        return str(self.args[0]) if self.args else ""


class TimeRangeError(MicaError, ValueError):
    """A time range whose ``stop`` is before its ``start`` (or, where an instant is not
    accepted, not after it); a ValueError as before."""


class DamagedStoreError(MicaError, OSError):
    """A columnar store chunk that fails its checks: truncated, does not decompress, or not
    what its index row recorded (a block not matching its digest, another chunk's file).

    The store is a cache of the archived FITS files, which are not affected: the message
    names the chunk file, its slot, view, period and the block, and the command that rebuilds
    it. ``chunk`` (the file) and ``detail`` (what is wrong, without the advice) are also
    attributes. Readers raise it with ``MICA_STORE_DAMAGED=raise``; by default they read the
    chunk's partition from the files instead (`mica.engine.colstore.serve_from_files`).
    """

    def __init__(self, message: str, chunk: str | Path = "", detail: str = ""):
        super().__init__(message)  # one argument: see MissingArchiveError
        self.chunk = Path(chunk)
        self.detail = detail or message

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple:
        return (type(self), (str(self), str(self.chunk), self.detail))

    @classmethod
    def at(cls, chunk: str | Path, detail: str) -> DamagedStoreError:
        """The error for ``chunk`` (a file under ``<archive>/<product>/store``)."""
        chunk = Path(chunk)
        store = next((p for p in chunk.parents if p.name == "store"), chunk.parent)
        archive = store.parent.parent
        return cls(
            f"damaged store chunk: {detail}. The archived FITS files are intact (the store "
            f"is their cache): rebuild the chunk with "
            f"'mica --archive {archive} check --verify-store --repair', or read with "
            "use_store=False meanwhile",
            chunk,
            detail,
        )


class DamagedIndexError(MicaError, OSError):
    """An archive index (``archfiles.db3``) that cannot be read: truncated, overwritten, with
    a damaged page, or missing while the product folder holds archived files.

    The index is a lookup table of the archived files, which are not affected: the message
    names the index file and the commands that rebuild it from them. ``index`` (the file)
    and ``detail`` (what is wrong, without the advice) are also attributes.
    """

    def __init__(self, message: str, index: str | Path = "", detail: str = ""):
        super().__init__(message)  # one argument: see MissingArchiveError
        self.index = Path(index)
        self.detail = detail or message

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple:
        return (type(self), (str(self), str(self.index), self.detail))

    @classmethod
    def at(cls, index: str | Path, detail: str, product: str = "") -> DamagedIndexError:
        """The error for the index file ``index`` of ``product`` (its command name)."""
        index = Path(os.path.abspath(index))
        name = product or "<product>"
        return cls(
            f"damaged archive index {index}: {detail}. The archived files are intact (the "
            f"index is their lookup table): rebuild it from them with "
            f"'mica --archive {index.parent.parent} check --repair' or "
            f"'mica rebuild index {name} --data-root {index.parent}'",
            index,
            detail,
        )


class ConfigError(MicaError, ValueError):
    """A setting read by `mica.config` with a bad value: an environment variable, an archive
    root that is a file (the message names it)."""


class InvalidArgumentError(MicaError, ValueError, TypeError):
    """An argument a reader or command cannot take: a value outside its choices (``slot=9``,
    ``revision='x'``, ``select='middle'``: a ValueError, as before) or of the wrong kind or
    missing (neither ``obsid`` nor ``start`` and ``stop``: a TypeError, as before). The
    message names the argument and what it may be."""


class InvalidTimeError(InvalidArgumentError):
    """A time that cannot be read (``'20120101'``, an object that is no time, a boolean) or
    that does not exist (``'2013:366'``, ``'2013-02-29'``, 23:59:60 on a day without a
    leap second). A ValueError for text, a TypeError for other objects, as before."""


class ObsidError(MicaError, ValueError):
    """An obsid outside 1..65535 or not an integer."""


class ProvenanceError(MicaError, ValueError):
    """An update whose source contradicts the archive's provenance, or names none; a write
    into an archive of the original mica not adopted yet, or holding simulated files."""


class RejectedFile(MicaError, ValueError):
    """A file that failed validation; the message names the file and the problem."""

    def __init__(self, filename: str, problem: str):
        super().__init__(f"{filename}: {problem}")
        self.filename = filename
        self.problem = problem

    def __reduce__(self) -> tuple:  # crosses process boundaries from validation workers
        return (type(self), (self.filename, self.problem))


class ArchiveBusy(MicaError, RuntimeError):
    """Another update holds the product's lock."""


class DerivedFailure(MicaError):
    """A unit that cannot be computed (missing input, telemetry gap): recorded with this
    message as its reason and retried by ``check_missing``."""


class SourceError(MicaError, RuntimeError):
    """The source cannot deliver (not installed, unreachable, refused)."""


class NotPublic(SourceError):
    """The public archive does not hold this product at all (abort, do not retry)."""

    fatal = True


class SyncError(MicaError, ConnectionError):
    """A published archive that cannot be synced (`mica.sync`): the server keeps failing, a
    file differs from its manifest, a manifest is malformed. The message names the file and
    the server; nothing partial is installed and the next sync goes on from what came."""


class CalibrationRefused(MicaError, ValueError):
    """A calibration that cannot be built; the message names it and the problem."""

    def __init__(self, dark_id: str, problem: str):
        super().__init__(f"dark calibration {dark_id} refused: {problem}")
        self.dark_id = dark_id
        self.problem = problem


class InputError(MicaError, ValueError):
    """An input of one observation is missing or unusable (recorded as that unit's failure)."""


class VVInputError(MicaError, ValueError):
    """An input file of the V&V is missing or unreadable (the message names it)."""


class InconsistentAspectIntervals(MicaError, ValueError):
    """Later aspect intervals list other slots or statuses than the first."""


class VVLookupError(MicaError, LookupError):
    """No V&V (or no aspect L1 revision) of the asked obsid and version."""


# errno values that mean "this folder cannot take more writes" (not a bug, not bad input)
_WRITE_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EFBIG: "the file system refuses a file this large",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}
# SQLite's wording of the same conditions (it reports no errno)
_SQLITE_WRITE = {
    "database or disk is full": "the disk is full",
    "attempt to write a readonly database": "the archive index is read-only",
    "unable to open database file": "the archive index cannot be opened for writing",
    "disk i/o error": "the disk refused a write",
}


class ArchiveWriteError(MicaError, OSError):
    """An archive folder cannot be written: disk full, read-only file system, permission.

    What was archived before stays archived (every step is atomic); freeing space or making
    the folder writable and re-running the same command completes the archive. ``folder``
    and ``reason`` are also attributes.
    """

    def __init__(self, message: str, folder: str | Path = "", reason: str = ""):
        super().__init__(message)  # one argument: see MissingArchiveError
        self.folder = Path(folder)
        self.reason = reason

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple:
        return (type(self), (str(self), str(self.folder), self.reason))

    @classmethod
    def from_error(cls, exc: BaseException, folder: str | Path) -> ArchiveWriteError | None:
        """The write error behind ``exc`` (itself, its cause or context, or the error a
        runner unit carried), as an `ArchiveWriteError` naming ``folder``; None when
        ``exc`` is not a failed write."""
        seen: set[int] = set()
        todo: list[BaseException | None] = [exc]
        while todo:
            err = todo.pop(0)
            if err is None or id(err) in seen:
                continue
            seen.add(id(err))
            if isinstance(err, ArchiveWriteError):
                return err
            reason = None
            if isinstance(err, OSError) and err.errno in _WRITE_ERRNOS:
                # Only a write inside the archive: an unreadable source is not the archive's
                reason = _WRITE_ERRNOS[err.errno] if _inside(err.filename, folder) else None
            elif isinstance(err, sqlite3.Error):
                text = str(err).lower()
                reason = next((r for k, r in _SQLITE_WRITE.items() if k in text), None)
            if reason is not None:
                return cls(_write_message(folder, reason, err), folder, reason)
            inner = getattr(err, "error", None)  # mica.engine.runner.UnitError
            todo += [inner if isinstance(inner, BaseException) else None]
            todo += [err.__cause__, err.__context__]
        return None


def _inside(filename: object, folder: str | Path) -> bool:
    """True when ``filename`` (None: unknown) is ``folder`` or below it."""
    if not isinstance(filename, (str, Path)):
        return True
    try:
        Path(filename).resolve().relative_to(Path(folder).resolve())
    except ValueError:
        return False
    return True


def _write_message(folder: str | Path, reason: str, err: BaseException) -> str:
    where = getattr(err, "filename", None)
    detail = f"{err.strerror or err} writing {where}" if where else str(err)
    if "full" in reason or "quota" in reason or "large" in reason:
        fix = "free space on that disk and re-run the same command"
    elif "permission" in reason:  # (a shared archive: its readers may not write it)
        fix = "re-run the same command as a user who may write it (the archive's owner)"
    else:
        fix = "make the folder writable and re-run the same command"
    return (
        f"cannot write the archive at {folder}: {reason} ({detail}). Everything archived "
        f"before is kept; {fix} to complete the archive."
    )
