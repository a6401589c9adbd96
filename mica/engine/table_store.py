"""The table store of derived products: one HDF5 file written a *generation* at a time.

A `GenerationTable` holds the rows of a derived product (`mica.engine.derived`), laid out by
its `TableSpec`. A generation is the current rows and the new ones merged into a temporary
file beside the table, indexed, fsynced and renamed into place, so a reader never sees a
half-written table and a killed update loses only the units computed since the last
generation (the re-run computes them again: units are keyed, the merge replaces rows by key).
Units that failed are recorded, with their reason, in the same file (node ``/failures``).

Each generation's digests are recorded beside it (`mica.engine.digests.replace_recorded`): the
file's, and its content's (`GenerationTable.content_digest`: the rows but for their columns
meant for hand edits, and the failures), so that ``mica check`` tells a hand edit (the rows
intact: a rewrite from them mends it) from damaged rows (rebuilt from the inputs). A generation
merged from damaged rows says so in its record until the table is rebuilt (``fresh``).

The file is written with h5py and indexed with PyTables, so
``tables.open_file(path).root.data.read_where(...)`` works as users of the original expect.
Booleans are stored as PyTables stores a ``BoolCol`` (8-bit bitfields, H5T_STD_B8LE), as the
original's tables were: PyTables reads them as bool (``stats[~stats['known_bad']]``), plain
h5py and astropy as uint8 0/1 (``dset.astype(dtype)`` gives bool). Tables written before with
h5py's own booleans (an int8 enum, which PyTables reads as int8) are rewritten by the next
update or `GenerationTable.rewrite` (``mica check --repair``).
"""

from __future__ import annotations

import datetime
import os
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import hdf5plugin
import numpy as np

from mica.engine.digests import (
    checked_once,
    digest_bytes,
    file_version,
    record_digests,
    recorded,
    replace_recorded,
    sidecar,
)
from mica.errors import DamagedFileError, MissingArchiveError

if TYPE_CHECKING:
    import h5py

FAILURES = "failures"
#: the root attribute of a table written with a digest record: its record lost is damage, not
#: a table written before digests were (`GenerationTable.damage`)
RECORDED_ATTR = "mica_digest_record"
#: path -> the version (`mica.engine.digests.file_version`) of a table found changed since
#: mica wrote it, its rows not (`GenerationTable.verify`)
_CHANGED: dict[Path, tuple[int, ...]] = {}
#: how the record of a generation merged from damaged rows begins (`GenerationTable.write`)
_MERGED = "holds rows merged from a table"
# Blosc LZ4 with shuffle, the filter PyTables calls "blosc" (id 32001): a 300,000-row table
# reads in 0.1 s against 0.8 s with the original's zlib 5 (about 1.2x the size). Plain h5py
# and astropy read it once `hdf5plugin` is imported (mica imports it).
_CODEC = hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)
_REASON_LEN = 300


@dataclass(frozen=True)
class TableSpec:
    """The table of a derived product.

    Parameters
    ----------
    dtype : numpy.dtype
        Columns, dtypes and order of the rows.
    key : tuple of str
        The columns that identify a unit's rows (``("obsid", "obi")``).
    indexes : tuple of str
        Columns with a standard PyTables index.
    csi : tuple of str
        Columns with a completely sorted PyTables index.
    preserve : tuple of str
        Hand-edited columns (``known_bad``) copied from a unit's old rows into its new ones.
    match : tuple of str
        Columns that pair an old row with a new one within a unit (``("slot",)``).
    node : str
        Name of the table node.
    """

    dtype: np.dtype
    key: tuple[str, ...]
    indexes: tuple[str, ...] = ()
    csi: tuple[str, ...] = ()
    preserve: tuple[str, ...] = ()
    match: tuple[str, ...] = ()
    node: str = "data"

    def label(self, key: tuple) -> str:
        """A unit's key as words for messages (``obsid 2121 obi 0``)."""
        return " ".join(f"{col} {value}" for col, value in zip(self.key, key))

    @property
    def failure_dtype(self) -> np.dtype:
        """Rows of the failures node: the key columns, the unit's start, reason and date."""
        keys = [(k, self.dtype[k]) for k in self.key]
        return np.dtype([*keys, ("tstart", "f8"), ("reason", f"S{_REASON_LEN}"), ("when", "S21")])


@dataclass(frozen=True)
class TableDamage:
    """How a table differs from what its recorded digests say (`GenerationTable.damage`).

    Attributes
    ----------
    detail : str
        What is wrong, as words following the table's path.
    rows_intact : bool
        Whether its rows are as written but for the columns meant for hand edits (a
        rewrite from them mends it); else they are rebuilt from the inputs.
    """

    detail: str
    rows_intact: bool


def _keys(rows: np.ndarray, columns: Iterable[str]) -> list[tuple]:
    cols = [rows[c].tolist() for c in columns]
    return list(zip(*cols)) if cols else [() for _ in range(len(rows))]


class GenerationTable:
    """One derived product's table file (see the module docstring).

    Parameters
    ----------
    path : path-like
        The HDF5 file.
    spec : TableSpec
        Its columns, key and indexes.
    command : str
        The command that fills it (named when it does not exist).
    """

    def __init__(self, path: str | os.PathLike, spec: TableSpec, command: str = ""):
        self.path = Path(path)
        self.spec = spec
        self.command = command

    def exists(self) -> bool:
        """Whether a generation has been written."""
        return self.path.exists()

    def _require(self) -> None:
        if not self.path.exists():
            hint = f"; fill it with `{self.command}`" if self.command else ""
            raise MissingArchiveError(
                f"no table at {self.path}{hint}", product=self.command, folder=self.path.parent
            )

    def read(self, where: str | None = None, verify: bool = True) -> np.ndarray:
        """Every row (table order), or those matching a PyTables condition ``where``; with
        ``verify`` (readers), of a table that `verify` accepts.

        Raises `MissingArchiveError` when no table has been written, `DamagedFileError`
        when the table is damaged.
        """
        self._require()
        as_written = self.verify() if verify else True
        if where is None or not as_written:
            import h5py

            with h5py.File(self.path, "r") as h5:
                rows = h5[self.spec.node][...].astype(self.spec.dtype, copy=False)
            if where is None:
                return rows
            # Changed since mica wrote it, its rows not (a hand edit): its PyTables indexes
            # are not those recorded, so the condition is evaluated on the rows themselves.
            import numexpr

            names = {name: rows[name] for name in rows.dtype.names if name.isidentifier()}
            return rows[numexpr.evaluate(where, local_dict=names)]
        with _open_tables(self.path, "r") as h5:
            rows = h5.get_node("/", self.spec.node).read_where(where)
        return rows.astype(self.spec.dtype, copy=False)

    def failures(self) -> np.ndarray:
        """The recorded failures (empty when none, or no table yet)."""
        if not self.path.exists():
            return np.zeros(0, self.spec.failure_dtype)
        import h5py

        with h5py.File(self.path, "r") as h5:
            if FAILURES not in h5:
                return np.zeros(0, self.spec.failure_dtype)
            return h5[FAILURES][...].astype(self.spec.failure_dtype, copy=False)

    def keys(self) -> set[tuple]:
        """The unit keys that have rows."""
        if not self.path.exists():
            return set()
        import h5py

        with h5py.File(self.path, "r") as h5:
            data = h5[self.spec.node]
            return set(_keys(data.fields(list(self.spec.key))[...], self.spec.key))

    def failed_keys(self) -> set[tuple]:
        """The unit keys recorded as failed."""
        return set(_keys(self.failures(), self.spec.key))

    def max(self, column: str) -> float | None:
        """The largest value of ``column`` (None for an empty or missing table)."""
        if not self.path.exists():
            return None
        import h5py

        with h5py.File(self.path, "r") as h5:
            values = h5[self.spec.node].fields(column)[...]
        return float(values.max()) if len(values) else None

    def old_bool_columns(self) -> list[str]:
        """The bool columns of the table not stored as PyTables' ``BoolCol`` (8-bit
        bitfields): h5py's int8 enums of tables written before, read by PyTables as int8."""
        import h5py

        names = [name for name in self.spec.dtype.names if self.spec.dtype[name] == np.bool_]
        if not names or not self.path.exists():
            return []
        with h5py.File(self.path, "r") as h5:
            stored = h5[self.spec.node].id.get_type()
        kinds = {
            stored.get_member_name(i).decode(): stored.get_member_class(i)
            for i in range(stored.get_nmembers())
        }
        return [name for name in names if kinds.get(name) != h5py.h5t.BITFIELD]

    def content_digest(self) -> str:
        """The digest of the table's content as `read` and `failures` give it: the rows,
        their columns meant for hand edits (``preserve``) left out, and the failures."""
        rows = self.read(verify=False)
        for name in self.spec.preserve:
            rows[name] = np.zeros((), rows.dtype[name])
        return digest_bytes(np.ascontiguousarray(rows), np.ascontiguousarray(self.failures()))

    def verify(self) -> bool:
        """Raise `DamagedFileError` unless the table is as mica wrote it, but for hand edits
        of the columns meant for them (`damage`: rows intact), or was written before
        digests were; whether it is the file as written (False: changed, its rows not). Its
        bytes are read whole on a process's first read of each generation
        (`mica.engine.digests.checked_once`)."""

        def problem() -> str | None:
            try:
                found = self.damage()
            except OSError as err:  # e.g. a link in its place (its digest follows none)
                return f"does not read ({err})"
            if found is not None and found.rows_intact:
                _CHANGED[self.path] = file_version(self.path)
            return None if found is None or found.rows_intact else found.detail

        detail = checked_once(self.path, problem)
        if detail is None:
            return _CHANGED.get(self.path) != file_version(self.path)
        from mica.engine.synced import is_synced

        mend = "`mica check --repair` on its archive rebuilds it from its inputs"
        if is_synced(self.path.parent):
            mend = "the `mica sync` that brought it brings it again"
        raise DamagedFileError.written(self.path, detail, mend)

    def damage(self) -> TableDamage | None:
        """How the table differs from its recorded digests (None: it does not, or none are
        recorded: `mica.engine.digests.recorded`). Every byte is read."""
        record = recorded(self.path)
        if record is None:
            import h5py

            with h5py.File(self.path, "r") as h5:
                lost = RECORDED_ATTR in h5.attrs
            name = sidecar(self.path).name
            detail = (
                f"has lost its digest record {name}, written with it (a copy of the table "
                f"without it, e.g. on a laptop, reads once {name} is copied beside it)"
            )
            return TableDamage(detail, False) if lost else None
        if record.files and record.file_matches(self.path):
            return TableDamage(record.unverified, False) if record.unverified else None
        if not record.files:  # a record that does not read
            return TableDamage(record.unverified, False)
        try:
            intact = _content_digest_apart(self.path, self.spec) in record.contents
        except Exception:  # noqa: BLE001  (a table that does not read: its rows are damaged)
            intact = False
        if intact and not record.unverified:
            edited = ", ".join(self.spec.preserve)
            return TableDamage(
                "has changed since mica wrote it, its rows not"
                + (f" (but for {edited}, meant for hand edits)" if edited else "")
                + ": an edit made outside mica, or damage of what a rewrite from its rows "
                "rebuilds (indexes, HDF5's own structures)",
                True,
            )
        detail = "does not match the digests recorded when mica wrote it, nor do its rows"
        return TableDamage(record.unverified or f"{detail} (damaged or truncated)", False)

    def record_digests(self) -> None:
        """Record the digests of the table as it is (one written before digests were)."""
        record_digests(self.path, self.content_digest())

    def _unverified(self) -> str:
        """What the record of a generation merged from the current rows says of them
        (`mica.engine.digests.Recorded.unverified`): "" when they are intact."""
        damage = self.damage()
        if damage is None or damage.rows_intact:
            return ""
        if damage.detail.startswith(_MERGED):
            return damage.detail  # carried from generation to generation until a rebuild
        return f"{_MERGED} that {damage.detail}"

    def rewrite(self) -> None:
        """A new generation of the same rows and failures, in the current file format."""
        self._require()
        self._write_file(self.read(verify=False), self.failures(), self._unverified())

    def write(
        self,
        rows: dict[tuple, np.ndarray],
        failures: dict[tuple, tuple[float, str]] | None = None,
        fresh: bool = False,
    ) -> list[str]:
        """Write a new generation: the current rows merged with ``rows`` (unit key -> rows).

        A unit's old rows are replaced by its new ones (in place when their number is the
        same, else at the end, with a note); ``preserve`` columns are carried over by key and
        ``match``. Units in ``rows`` leave the failures; ``failures`` (key -> (tstart, reason))
        are recorded. ``fresh``: the first generation of a table rebuilt from its inputs,
        replacing the current rows and failures. Returns the notes.
        """
        spec = self.spec
        failures = failures or {}
        notes: list[str] = []
        current = self.path.exists() and not fresh
        old = self.read(verify=False) if current else np.zeros(0, spec.dtype)
        unverified = self._unverified() if current else ""
        by_key: dict[tuple, list[int]] = defaultdict(list)
        for i, key in enumerate(_keys(old, spec.key)):
            by_key[key].append(i)
        keep = np.ones(len(old), bool)
        merged = old.copy()
        appended: list[np.ndarray] = []
        for key, new in rows.items():
            new = np.asarray(new, spec.dtype).copy()
            where = by_key.get(key, [])
            if where and spec.preserve:
                carry_preserved(old[where], new, spec)
            if where and len(where) == len(new):
                merged[where] = new
                continue
            if where:
                notes.append(
                    f"{spec.label(key)}: {len(where)} rows replaced by {len(new)} "
                    "(the number of slots changed on reprocessing)"
                )
                keep[where] = False
            appended.append(new)
        merged = np.concatenate([merged[keep], *appended]) if appended else merged[keep]

        old_failures = self.failures() if current else np.zeros(0, spec.failure_dtype)
        fail_keys = _keys(old_failures, spec.key)
        done = set(rows) | set(failures)
        kept_failures = old_failures[[k not in done for k in fail_keys]]
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        new_failures = np.zeros(len(failures), spec.failure_dtype)
        for i, (key, (tstart, reason)) in enumerate(failures.items()):
            for col, value in zip(spec.key, key):
                new_failures[col][i] = value
            new_failures["tstart"][i] = tstart
            new_failures["reason"][i] = reason.encode("utf-8", "replace")[:_REASON_LEN]
            new_failures["when"][i] = now.encode()
        self._write_file(merged, np.concatenate([kept_failures, new_failures]), unverified)
        return notes

    def _write_file(self, data: np.ndarray, failures: np.ndarray, unverified: str) -> None:
        """The generation of ``data`` and ``failures`` in place, with its digests and
        ``unverified`` recorded (`mica.engine.digests.replace_recorded`)."""
        import h5py

        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        try:
            with h5py.File(tmp, "w") as h5:
                h5.attrs[RECORDED_ATTR] = sidecar(self.path).name
                for name, rows in ((self.spec.node, data), (FAILURES, failures)):
                    rows = np.ascontiguousarray(rows)
                    stored = _stored_type(rows.dtype)
                    dset = h5.create_dataset(
                        name,
                        shape=rows.shape,
                        dtype=h5py.Datatype(stored),
                        maxshape=(None,),
                        chunks=(max(1, min(len(rows), 4096)),) if len(rows) else (1024,),
                        **_CODEC,
                    )
                    if len(rows):
                        # the rows' bytes as they are: a numpy bool is the bitfield's byte
                        dset.id.write(h5py.h5s.ALL, h5py.h5s.ALL, rows, mtype=stored)
            if len(data):
                with _open_tables(tmp, "a") as h5:
                    table = h5.get_node("/", self.spec.node)
                    for col in self.spec.indexes:
                        table.colinstances[col].create_index()
                    for col in self.spec.csi:
                        table.colinstances[col].create_csindex()
            content = GenerationTable(tmp, self.spec).content_digest()  # as read back
            replace_recorded(tmp, self.path, content, unverified)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


#: what `_content_digest_apart`'s process runs: the digest of the table its input names
_DIGEST_APART = """
import pickle, sys
path, spec, paths = pickle.load(sys.stdin.buffer)
sys.path[:0] = paths
from mica.engine.table_store import GenerationTable
sys.stdout.write(GenerationTable(path, spec).content_digest())
"""


def _content_digest_apart(path: Path, spec: TableSpec) -> str | None:
    """`GenerationTable.content_digest` of a table whose file does not match its record,
    computed in a process of its own: decoding damaged rows can crash HDF5 (a flipped bit in
    its structures crashed the reader with SIGSEGV, measured), which must not take the reader
    with it. None when that process failed. A new interpreter, not `multiprocessing`, whose
    children import the caller's main script again (a user's script without a main guard
    would read the table again in them)."""
    import pickle
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", _DIGEST_APART],
        input=pickle.dumps((str(path), spec, sys.path)),
        capture_output=True,
    )
    return run.stdout.decode() if run.returncode == 0 else None


def _stored_type(dtype: np.dtype) -> h5py.h5t.TypeCompoundID:
    """The HDF5 compound type of rows of ``dtype``: h5py's, but bool fields as 8-bit
    bitfields, the type of a PyTables ``BoolCol`` (h5py's own bool, an int8 enum, PyTables
    reads as int8)."""
    import h5py

    stored = h5py.h5t.create(h5py.h5t.COMPOUND, dtype.itemsize)
    for name in dtype.names:
        field, offset = dtype.fields[name][:2]
        member = h5py.h5t.STD_B8LE if field == np.bool_ else h5py.h5t.py_create(field, logical=True)
        stored.insert(name.encode(), offset, member)
    return stored


@contextmanager
def _open_tables(path: Path, mode: str) -> Iterator:
    """``tables.open_file``, without PyTables' ``NaturalNameWarning`` inside the block.

    The tables keep the original's column names, some of which are not Python identifiers
    (guide statistics' ``f_within_0.3``): PyTables warns of them each time it loads such a
    table, that ``h5.root.data.cols.f_within_0.3`` cannot work. mica names columns by string
    (``colinstances[...]``, ``read_where``), which works, so the warning says nothing to a
    user; it is silenced for these calls only (a user's own PyTables session still gets it).
    """
    import tables

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tables.NaturalNameWarning)
        with tables.open_file(path, mode) as h5:
            yield h5


def carry_preserved(old: np.ndarray, new: np.ndarray, spec: TableSpec) -> None:
    """Copy the hand-edited columns of ``old`` (a unit's rows) into the rows of ``new`` with
    the same ``match``."""
    old_at = {m: i for i, m in enumerate(_keys(old, spec.match))}
    for j, m in enumerate(_keys(new, spec.match)):
        i = old_at.get(m)
        if i is not None:
            for col in spec.preserve:
                new[col][j] = old[col][i]
