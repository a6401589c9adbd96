"""Digests of the files the archive writes whole: derived tables and calibration folders.

The columnar store's chunks carry their own digests, a CRC-32C per stored block checked by
every read (`mica.engine.h5chunks`). A file written whole and read by other tools as well (a
derived product's PyTables table, a calibration's FITS image and JSON) is digested whole
instead: BLAKE2b of its bytes (`digest_file`, `digest_bytes`: the one digest of these files),
recorded when it is written and compared by ``mica check``, which reads every byte.

- A table (``acq_stats.h5``, ``guide_stats.h5``, ``vv.h5``) is recorded in a sidecar
  ``<name>.digest`` beside it (`replace_recorded`): the digest of the file and one of its
  content (the table's rows, which the writer gives: `mica.engine.table_store`), so that a
  change of the file that leaves the rows as they were (a hand edit of the columns meant for
  it) is told from damage of the rows. While a new file is renamed into place the sidecar
  accepts both it and the one it replaces, so a crash at any point leaves a file its sidecar
  accepts. ``unverified``, when set, says that the rows were merged from a file whose rows
  did not match: the check reports it until the table is rebuilt from its inputs.
- A calibration folder, and a derived product's per-unit folder (a V&V's report, plots and
  slot table), holds ``digests.json`` (`FOLDER_DIGESTS`) naming each of its files' digests,
  installed with the folder in one rename (`with_folder_digests`, `record_folder_digests`,
  `folder_problem`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mica.engine.atomic import replace_durable, write_atomic

#: the digest of a file written whole (`digest_file`, `digest_bytes`)
ALGORITHM = "blake2b"
#: the file of a calibration folder naming its other files' digests
FOLDER_DIGESTS = "digests.json"


def digest_bytes(*pieces: bytes | memoryview) -> str:
    """The `ALGORITHM` digest (hex) of ``pieces`` one after the other."""
    digest = hashlib.blake2b()
    for piece in pieces:
        digest.update(piece)
    return digest.hexdigest()


def digest_file(path: Path) -> str:
    """The `ALGORITHM` digest (hex) of the file at ``path``, read in pieces (a table may be
    hundreds of MB; a link is not followed)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with open(fd, "rb") as fh:
        return hashlib.file_digest(fh, hashlib.blake2b).hexdigest()


#: path -> the version (`file_version`) of the file last found as its digests record it
_MATCHED: dict[Path, tuple[int, ...]] = {}


def file_version(path: Path) -> tuple[int, ...]:
    """What tells one version of the file at ``path`` from another: its device, inode, size
    and change times."""
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def checked_once(path: Path, problem: Callable[[], str | None]) -> str | None:
    """``problem()``: why the file at ``path`` is not what its digests record (None: it is),
    found once per process for each version of the file (its inode, size and change times),
    so that a reader pays for reading a file whole on its first read of it, not on every one.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "table.h5"
    >>> _ = path.write_bytes(b"rows")
    >>> calls = []
    >>> checked_once(path, lambda: calls.append(1)), checked_once(path, lambda: calls.append(1))
    (None, None)
    >>> len(calls)
    1
    """
    path = Path(path)
    version = file_version(path)
    if _MATCHED.get(path) == version:
        return None
    for _ in range(3):
        found = problem()
        if found is None:
            _MATCHED[path] = version
            return None
        # A writer may have replaced the file between the reads of its record and of its
        # bytes (a new generation renamed into place): found again on the one there now.
        now = file_version(path)
        if now == version:
            return found
        version = now
    return found


# --- a file and its sidecar --------------------------------------------------------------
#: what a sidecar's name adds to its file's
SIDECAR_SUFFIX = ".digest"


def sidecar(path: Path) -> Path:
    """The file recording the digests of ``path`` (``<name>.digest`` beside it)."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


@dataclass(frozen=True)
class Recorded:
    """What a sidecar says of its file.

    Attributes
    ----------
    files : tuple of str
        The digests the file may have (two while a new one is renamed into place).
    contents : tuple of str
        The digests its content may have (in the same order).
    unverified : str
        Why its content is not trusted although the file matches ("" when it is).
    """

    files: tuple[str, ...]
    contents: tuple[str, ...]
    unverified: str = ""

    def file_matches(self, path: Path) -> bool:
        """Whether the file at ``path`` is one of those recorded."""
        return digest_file(path) in self.files


def recorded(path: Path) -> Recorded | None:
    """The record of ``path``'s digests; None when there is none (a table written before
    digests were, or by the original mica). A sidecar that does not parse, or of another
    algorithm, records nothing that matches, and says so in ``unverified``."""
    try:
        text = sidecar(path).read_text()
    except FileNotFoundError:
        return None
    except OSError as err:  # e.g. a reader not allowed to: nothing it can compare
        return Recorded(
            (), (), f"has a digest record {sidecar(path).name} that does not read ({err.strerror})"
        )
    return recorded_in(sidecar(path), text)


def recorded_in(record: Path, text: str) -> Recorded:
    """What the sidecar ``record`` says (its ``text``); see `recorded`."""
    try:
        fields = json.loads(text)
        if fields["algorithm"] != ALGORITHM:
            raise ValueError(f"its algorithm is {fields['algorithm']!r}, not {ALGORITHM}")
        return Recorded(
            tuple(map(str, fields["files"])),
            tuple(map(str, fields["contents"])),
            str(fields.get("unverified", "")),
        )
    except (ValueError, KeyError, TypeError) as err:
        return Recorded((), (), f"has a digest record {record.name} that does not parse ({err})")


def _write_record(path: Path, record: Recorded) -> None:
    fields = {"algorithm": ALGORITHM, "files": record.files, "contents": record.contents}
    if record.unverified:
        fields["unverified"] = record.unverified
    text = json.dumps(fields, indent=1) + "\n"
    # with the file's mode: whoever may read the file may compare it
    write_atomic(sidecar(path), lambda fh: fh.write(text.encode()), replaces=path)


def replace_recorded(tmp: Path, dest: Path, content: str, unverified: str = "") -> None:
    """Move the complete file ``tmp`` over ``dest`` (`replace_durable`), its digest, the
    digest of its ``content`` and ``unverified`` (`Recorded`) in ``dest``'s sidecar.

    The sidecar first accepts both the file there and the new one, then the new one alone."""
    new = digest_file(tmp)
    before = recorded(dest)
    files, contents = (before.files, before.contents) if before is not None else ((), ())
    _write_record(dest, Recorded((*files, new), (*contents, content), unverified))
    replace_durable(tmp, dest)
    _write_record(dest, Recorded((new,), (content,), unverified))


def replace_with_record(tmp: Path, dest: Path, record: Path) -> None:
    """Move the complete file ``tmp`` over ``dest`` and the sidecar ``record`` (another
    archive's record of it, e.g. a sync's) over ``dest``'s, as `replace_recorded` does: the
    sidecar first accepts both files, so a reader never finds the file and its record apart."""
    new = recorded_in(record, record.read_text())
    before = recorded(dest)
    if before is None and os.path.isfile(dest):  # a file written before digests were
        before = Recorded((digest_file(dest),), ("",))
    files, contents = (before.files, before.contents) if before is not None else ((), ())
    _write_record(dest, Recorded((*files, *new.files), (*contents, *new.contents)))
    replace_durable(tmp, dest)
    replace_durable(record, sidecar(dest))


def record_digests(path: Path, content: str) -> None:
    """Record the digests of the file at ``path`` as it is now (a table written before
    digests were, accepted by ``mica check --repair`` once it reads whole)."""
    _write_record(path, Recorded((digest_file(path),), (content,)))


# --- calibration folders: a file inside the folder ------------------------------------------
def _folder_record(digests: dict[str, str]) -> bytes:
    return (json.dumps({"algorithm": ALGORITHM, "files": digests}, indent=1) + "\n").encode()


def with_folder_digests(files: dict[str, bytes]) -> dict[str, bytes]:
    """The files of a calibration folder and `FOLDER_DIGESTS` naming each one's digest."""
    digests = {name: digest_bytes(data) for name, data in sorted(files.items())}
    return {**files, FOLDER_DIGESTS: _folder_record(digests)}


def record_folder_digests(folder: Path) -> None:
    """Write `FOLDER_DIGESTS` into ``folder`` (a staging folder, complete, before it is
    renamed into place) naming the digest of each of its files."""
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != FOLDER_DIGESTS)
    record = _folder_record({name: digest_file(folder / name) for name in names})
    write_atomic(folder / FOLDER_DIGESTS, lambda fh: fh.write(record))


def _folder_digests(folder: Path) -> dict[str, str] | str | None:
    """The file name -> digest mapping of ``folder``'s `FOLDER_DIGESTS`; None when it has
    none, or why it does not read."""
    path = folder / FOLDER_DIGESTS
    try:
        record = json.loads(path.read_text())
        algorithm, digests = record["algorithm"], record["files"]
        if not isinstance(digests, dict):
            raise TypeError("no mapping of file names")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"{FOLDER_DIGESTS} does not read ({err})"
    if algorithm != ALGORITHM:
        return f"{FOLDER_DIGESTS} records {algorithm}, not {ALGORITHM}"
    return digests


def folder_file_problem(
    folder: Path, name: str, lost: Callable[[], str | None] | None = None
) -> str | None:
    """Why file ``name`` of ``folder`` is not the one its `FOLDER_DIGESTS` names (None: it
    is, or the folder has no digests: see `folder_problem`, unless ``lost()`` says why it
    should have them); what a reader checks of the files it reads (`checked_once`)."""

    def problem() -> str | None:
        digests = _folder_digests(folder)
        if digests is None:
            return lost() if lost is not None else None
        if isinstance(digests, str):
            return digests
        if name not in digests:
            return f"{FOLDER_DIGESTS} does not name it"
        try:
            found = digest_file(folder / name)
        except OSError as err:  # e.g. a link in its place (a digest follows none)
            return f"it does not read ({err.strerror or err})"
        if found != digests[name]:
            return f"it does not match its digest in {FOLDER_DIGESTS} (damaged or truncated)"
        return None

    return checked_once(folder / name, problem)


def folder_problem(folder: Path, read: bool = True) -> str | None:
    """Why a folder's files are not those its `FOLDER_DIGESTS` names (None: they are, or
    the folder has none: written before digests were, or by the original mica, it is
    checked by its product's own checks alone). ``read=False``: only that each named file
    is there (its bytes are not read)."""
    digests = _folder_digests(folder)
    if digests is None or isinstance(digests, str):
        return digests
    for name, digest in sorted(digests.items()):
        if Path(name).name != name:
            return f"{FOLDER_DIGESTS} names {name!r}, not a file of the folder"
        try:
            if not read:
                (folder / name).lstat()  # there: its bytes are compared when read
                continue
            found = digest_file(folder / name)
        except OSError as err:
            return f"{name} does not read ({err.strerror or err})"
        if found != digest:
            return f"{name} does not match its digest in {FOLDER_DIGESTS} (a damaged byte)"
    return None
