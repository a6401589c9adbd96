"""Columnar store: a table product's rows as per-partition HDF5 chunk files.

A partition (e.g. one slot-day of L0) is one immutable chunk file holding every column of the
rows of that partition's archived files, in file order, plus a per-row file index. It is
rebuilt whole, written beside and renamed into place, and recorded in ``store_chunks`` with the
exact file list (name + checksum) it was built from. A reader uses a chunk only when that list
equals the partition's current index rows; otherwise it reads those files, so a crash between
an ingest and its store update can never give wrong answers, and the next update, ``mica check
--repair`` or ``mica rebuild store`` brings the chunk up to date.

Format (chosen by measurement, see benchmarks/bench_hdr3_store.py): HDF5 via h5py, Blosc2/zstd
with byte shuffle (hdf5plugin): fast decompression and a good ratio on slowly changing columns.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

# Blosc2 otherwise starts a thread per CPU it sees, which on a small machine made writes 6x
# and reads up to 8x slower (measured); one thread per call, parallelism comes from callers.
os.environ.setdefault("BLOSC_NTHREADS", "1")

import h5py  # noqa: E402
import hdf5plugin  # noqa: E402
import numpy as np  # noqa: E402
from astropy.io import fits  # noqa: E402

from mica.engine.fsync import fsync_file  # noqa: E402
from mica.engine.index import ArchiveIndex  # noqa: E402
from mica.engine.product import FileProduct  # noqa: E402

STORE_DIR = "store"
_CODEC = hdf5plugin.Blosc2(cname="zstd", clevel=1, filters=hdf5plugin.Blosc2.SHUFFLE)
_PARTS_PER_QUERY = 200
_CHUNK_BYTES = 1 << 20  # HDF5 chunk size: big enough that per-chunk overhead is small

_CHUNKS_SQL = """
CREATE TABLE IF NOT EXISTS store_chunks (
    part text PRIMARY KEY,
    path text NOT NULL,
    files text NOT NULL,      -- 'v<version>' then '<filename> <checksum>' lines, row order
    nrows int NOT NULL,
    tstart float,
    tstop float
)
"""


# Bumped when the chunk layout changes: chunks of another version count as out of date.
STORE_VERSION = 6


def _file_list(rows: Sequence[dict[str, Any]]) -> str:
    """What a chunk was built from: layout version, then filename and checksum per file in
    row order (plain text: readers compare it on every fetch)."""
    return f"v{STORE_VERSION}\n" + "\n".join(f"{r['filename']} {r['checksum']}" for r in rows)


@functools.lru_cache(maxsize=64)
def _dtype(descr: str) -> np.dtype:
    return np.dtype(ast.literal_eval(descr))


def _read_group(h5: h5py.File, group: str, i0: int = 0, i1: int | None = None) -> np.ndarray:
    """Records [i0, i1) of a column group (see `ColumnStore._write`) as a structured array."""
    dset = h5[group]
    dtype = _dtype(dset.attrs["dtype"])
    planes = dset[:, i0:i1]
    return np.ascontiguousarray(planes.T).view(dtype).reshape(-1)


class ColumnStore:
    """The store of one product archive (``<product root>/store``)."""

    def __init__(self, product: FileProduct, index: ArchiveIndex):
        self.product = product
        self.index = index
        self.dir = index.root / STORE_DIR
        if not index.readonly:
            index.conn.execute(_CHUNKS_SQL)

    # --- reading -------------------------------------------------------------------------
    def chunk(self, part: str) -> dict[str, Any] | None:
        try:
            rows = self.index.conn.execute(
                "SELECT * FROM store_chunks WHERE part = ?", (part,)
            ).fetchall()
        except sqlite3.OperationalError:  # an archive written before the store existed
            return None
        return dict(rows[0]) if rows else None

    def current_chunks(self, parts: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The chunks of ``parts`` that match their partitions' indexed files (two queries
        per batch; batches keep the SQL within SQLite's expression-depth limit)."""
        parts = sorted(set(parts))
        if len(parts) > _PARTS_PER_QUERY:
            out: dict[str, dict[str, Any]] = {}
            for k in range(0, len(parts), _PARTS_PER_QUERY):
                out.update(self.current_chunks(parts[k : k + _PARTS_PER_QUERY]))
            return out
        if not parts:
            return {}
        marks = ",".join("?" * len(parts))
        try:
            rows = self.index.conn.execute(
                f"SELECT * FROM store_chunks WHERE part IN ({marks})", parts
            ).fetchall()
        except sqlite3.OperationalError:  # an archive written before the store existed
            return {}
        chunks = {r["part"]: dict(r) for r in rows}
        wheres = [self.product.partition_where(p) for p in chunks]
        if not wheres:
            return {}
        clause = " OR ".join(f"({w})" for w, _ in wheres)
        files: dict[str, list[dict[str, Any]]] = {p: [] for p in chunks}
        for row in self.index.query(clause, [x for _, ps in wheres for x in ps]):
            files.setdefault(self.product.partition(row), []).append(row)
        return {p: c for p, c in chunks.items() if c["files"] == _file_list(files[p])}

    def read(
        self,
        chunk: dict[str, Any],
        columns: Sequence[str],
        tstart: float,
        tstop: float,
        files: set[str],
    ) -> tuple[dict[str, np.ndarray], list[str]]:
        """Rows of a chunk from ``files`` with tstart <= TIME <= tstop, asked columns only.

        Returns (columns by name, plus FILEIDX into the chunk's file names; those names).
        Only the column groups holding asked columns are read (one dataset each).
        """
        with h5py.File(self.index.root / chunk["path"], "r") as h5:
            names = json.loads(h5.attrs["files"])
            groups: dict[str, list[str]] = json.loads(h5.attrs["groups"])
            key = next(g for g, cols in groups.items() if "TIME" in cols)
            keyrec = _read_group(h5, key)
            times, fileidx = keyrec["TIME"], keyrec["FILEIDX"]
            wanted = np.array([n in files for n in names] + [False])
            keep = (times >= tstart) & (times <= tstop) & wanted[fileidx]
            hits = np.flatnonzero(keep)
            if len(hits) == 0:
                return {}, names
            i0, i1 = hits[0], hits[-1] + 1
            sel = keep[i0:i1]
            out: dict[str, np.ndarray] = {}
            for group, cols in groups.items():
                asked = [c for c in cols if c in columns or c == "FILEIDX"]
                if not asked:
                    continue
                values = keyrec[i0:i1] if group == key else _read_group(h5, group, i0, i1)
                for col in asked:
                    out[col] = values[col][sel]
            return out, names

    # --- writing -------------------------------------------------------------------------
    def rebuild(
        self, parts: Iterable[str], loaded: dict[str, dict[str, np.ndarray]] | None = None
    ) -> None:
        """Rewrite the chunks of ``parts`` from their current files (``loaded`` may hold the
        arrays of files already in memory, by filename)."""
        loaded = loaded or {}
        for part in sorted(set(parts)):
            try:
                where, params = self.product.partition_where(part)
                rows = self.index.query(where, params)
            except ValueError:  # a partition key of an older store layout: drop its chunk
                rows = []
            old = self.chunk(part)
            if old is not None and old["files"] == _file_list(rows):
                with self.index.transaction():
                    self.index.clear_dirty([part])
                continue
            reuse = self._chunk_arrays(old) if old is not None else {}
            arrays = [
                loaded.get(r["filename"]) or reuse.get(r["filename"]) or self._load(r) for r in rows
            ]
            self._replace_chunk(part, rows, arrays, old)

    def _chunk_arrays(self, chunk: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
        """Every file's arrays held by a chunk (by filename), so a rebuild that adds files
        to a partition decompresses the chunk instead of re-reading its FITS files."""
        path = self.index.root / chunk["path"]
        try:
            h5 = h5py.File(path, "r")
        except OSError:
            return {}
        with h5:
            if h5.attrs.get("version") != STORE_VERSION:
                return {}
            names = json.loads(h5.attrs["files"])
            groups = json.loads(h5.attrs["groups"])
            columns: dict[str, np.ndarray] = {}
            for group, cols in groups.items():
                values = _read_group(h5, group)
                for col in cols:
                    columns[col] = values[col]
        fileidx = columns.pop("FILEIDX")
        bounds = np.searchsorted(fileidx, np.arange(len(names) + 1))
        return {
            name: {c: v[bounds[i] : bounds[i + 1]] for c, v in columns.items()}
            for i, name in enumerate(names)
        }

    def _load(self, row: dict[str, Any]) -> dict[str, np.ndarray]:
        with fits.open(self.product.path(row, self.index.root), memmap=False) as hdus:
            return self.product.store_arrays(hdus, row)

    def _replace_chunk(
        self,
        part: str,
        rows: list[dict[str, Any]],
        arrays: list[dict[str, np.ndarray]],
        old: dict[str, Any] | None,
    ) -> None:
        drops = [str(self.index.root / old["path"])] if old else []
        if not rows:
            with self.index.transaction():
                self.index.conn.execute("DELETE FROM store_chunks WHERE part = ?", (part,))
                self.index.add_pending([(p, "drop") for p in drops])
                self.index.clear_dirty([part])
        else:
            rel = f"{STORE_DIR}/{part}.{time.time_ns()}.h5"
            dest = self.index.root / rel
            with self.index.transaction():  # a crash before the commit below deletes it
                self.index.add_pending([(str(dest), "scratch")])
            self._write(dest, rows, arrays)
            times = np.concatenate([a["TIME"] for a in arrays])
            with self.index.transaction():
                self.index.conn.execute(
                    "INSERT OR REPLACE INTO store_chunks VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        part,
                        rel,
                        _file_list(rows),
                        len(times),
                        float(times.min()) if len(times) else None,
                        float(times.max()) if len(times) else None,
                    ),
                )
                self.index.clear_pending([str(dest)])
                self.index.add_pending([(p, "drop") for p in drops])
                self.index.clear_dirty([part])
        for p in drops:
            Path(p).unlink(missing_ok=True)
        if drops:
            with self.index.transaction():
                self.index.clear_pending(drops)

    def _write(
        self, dest: Path, rows: list[dict[str, Any]], arrays: list[dict[str, np.ndarray]]
    ) -> None:
        """One dataset per column group, so a fetch of a few columns reads a few datasets.

        A group is stored as byte planes: its packed records viewed as bytes and transposed
        to (record size, rows), so each byte of a field is contiguous (what shuffle does)
        and a read is a plain byte copy, without HDF5 compound-type conversion (measured
        several times slower).
        """
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name("." + dest.name + ".partial")
        columns = {name: np.concatenate([a[name] for a in arrays]) for name in arrays[0]}
        columns["FILEIDX"] = np.concatenate(
            [np.full(len(a["TIME"]), i, dtype=np.uint16) for i, a in enumerate(arrays)]
        )
        groups = self._groups(list(columns))
        n = len(columns["TIME"])
        with h5py.File(tmp, "w") as h5:
            h5.attrs["version"] = STORE_VERSION
            h5.attrs["files"] = json.dumps([r["filename"] for r in rows])
            h5.attrs["groups"] = json.dumps(groups)
            for group, cols in groups.items():
                dtype = np.dtype([(c, columns[c].dtype, columns[c].shape[1:]) for c in cols])
                values = np.empty(n, dtype=dtype)
                for c in cols:
                    values[c] = columns[c]
                planes = np.ascontiguousarray(values.view(np.uint8).reshape(n, dtype.itemsize).T)
                chunk_rows = min(max(n, 1), max(1024, _CHUNK_BYTES // dtype.itemsize))
                dset = h5.create_dataset(
                    group, data=planes, chunks=(dtype.itemsize, chunk_rows), **_CODEC
                )
                dset.attrs["dtype"] = repr(dtype.descr)
        fsync_file(tmp)
        os.replace(tmp, dest)

    def _groups(self, names: list[str]) -> dict[str, list[str]]:
        """The product's column groups; FILEIDX joins TIME, leftovers form a group."""
        groups: dict[str, list[str]] = {}
        for group, cols in self.product.store_groups.items():
            groups[group] = [c for c in cols if c in names]
        key = next(g for g, cols in groups.items() if "TIME" in cols)
        groups[key].append("FILEIDX")
        placed = {c for cols in groups.values() for c in cols}
        rest = [c for c in names if c not in placed]
        if rest:
            groups["OTHER"] = rest
        return {g: cols for g, cols in groups.items() if cols}

    def stale_parts(self) -> list[str]:
        """Partitions whose chunk is missing or does not match the index."""
        parts = {self.product.partition(r) for r in self.index.query()}
        try:
            chunked = {r[0] for r in self.index.conn.execute("SELECT part FROM store_chunks")}
        except sqlite3.OperationalError:
            chunked = set()
        current = self.current_chunks(parts)
        stale = [p for p in parts if p not in current]
        return sorted(set(stale) | (chunked - parts))
