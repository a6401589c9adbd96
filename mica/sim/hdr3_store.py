"""Header-3 rows of simulated 8x8 files straight into an L0 archive's index and store, without
writing the FITS files: years of header-3 data for the store's benchmarks and tests.

`store_hdr3_files` inserts the files' index rows (marking their partitions dirty, as an ingest
does) and builds the chunks of the header-3 views (``hd3``, ``hd3s``) through the store's own
build path (`mica.engine.colstore.plan_chunks`, `build_chunk`, `record_chunk`), from the
files' arrays kept as a validating worker keeps them. The full view's chunks are not built
(they need every column): its partitions stay dirty, and a reader of other columns, or of a
dirty header-3 partition, would look for the missing files.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mica.engine.colstore import ColumnStore, build_chunk, drop_kept, keep_arrays
from mica.engine.index import ArchiveIndex
from mica.products.aca_l0 import HD3_VIEW, L0
from mica.products.hdr3_items import HD3_COLUMNS
from mica.products.hdr3_samples import SAMPLES_VIEW
from mica.sim.aca_l0 import TIMEDEL, l0_filename
from mica.sim.hdr3 import hdr3_bytes
from mica.sim.mission import VCDU_SECS
from mica.time import year_doy

__all__ = ["Hdr3File", "day_files", "file_times", "store_hdr3_files"]


@dataclass(frozen=True)
class Hdr3File:
    """One simulated 8x8 file of ``slot``: its row times (CXC seconds, increasing)."""

    slot: int
    times: np.ndarray


def file_times(tstart: float, tstop: float, every: int = 1, pair: bool = False) -> np.ndarray:
    """Row times of an 8x8 file from ``tstart`` before ``tstop``: the 4.1 s grid, or with
    ``every`` > 1 one grid time in ``every`` (with ``pair``, each followed by the next grid
    time, so it passes the gap test and is a good sample)."""
    step = float(TIMEDEL[8])
    grid = tstart + step * np.arange(int(np.ceil((tstop - tstart) / step)))
    if every <= 1:
        return grid
    keep = np.zeros(len(grid), dtype=bool)
    keep[::every] = True
    if pair:
        keep[1::every] = True
    return grid[keep]


def day_files(
    t0: float, slots: Iterable[int] = range(8), file_secs: float = 5000.0
) -> list[Hdr3File]:
    """The 8x8 files of ``slots`` over the day from ``t0`` (CXC seconds) at the full cadence:
    one of each slot every ``file_secs``, the last cut at the day's end.

    Examples
    --------
    >>> files = day_files(52 * 100 * 86400.0, slots=(6, 7))
    >>> len(files), files[0].slot, len(files[0].times), len(files[-1].times)
    (36, 6, 1220, 342)
    """
    t1 = t0 + 86400.0
    return [
        Hdr3File(slot, file_times(a, min(a + file_secs, t1)))
        for a in np.arange(t0, t1, file_secs)
        for slot in slots
    ]


def _index_row(f: Hdr3File, revision: int) -> dict:
    filetime = int(f.times[0])
    year, doy = year_doy(filetime)
    return {
        "filename": l0_filename(filetime, revision, f.slot),
        "filetime": filetime,
        "year": year,
        "doy": doy,
        "tstart": float(f.times[0]),
        "tstop": float(f.times[-1]) + float(TIMEDEL[8]),
        "startmjf": 0,
        "startmnf": 0,
        "stopmjf": 0,
        "stopmnf": 0,
        "checksum": f"sim{len(f.times)}",
        "tlmver": "",
        "ascdsver": "",
        "revision": revision,
        "date": "",
        "rows": len(f.times),
        "imgsize": 8,
        "slot": f.slot,
    }


def _arrays(f: Hdr3File) -> dict[str, np.ndarray]:
    vcdu = np.rint(f.times / VCDU_SECS).astype(np.int64)
    raw = hdr3_bytes(f.slot, f.times, vcdu)
    return {"TIME": f.times, **{name: raw[:, k] for k, name in enumerate(HD3_COLUMNS)}}


def store_hdr3_files(root: Path, files: Iterable[Hdr3File], revision: int = 1) -> list[str]:
    """Index and build the header-3 store chunks of ``files`` in the L0 archive ``root``.

    Parameters
    ----------
    root : Path
        The ``aca0`` folder (created if needed).
    files : iterable of Hdr3File
        The files, each with at least one row.
    revision : int
        Their revision (the file names carry it).

    Returns
    -------
    list of str
        The header-3 partitions built.
    """
    root = Path(root)
    cache = root / "staging-hdr3-sim" / "arrays"
    with ArchiveIndex(L0, root) as index:
        rows = []
        for f in files:
            row = _index_row(f, revision)
            keep_arrays(cache, row, _arrays(f))
            rows.append(row)
        with index.transaction():
            index.replace(rows, [])
        views = (f"{HD3_VIEW}/", f"{SAMPLES_VIEW}/")
        store = ColumnStore(L0, index)
        dirty = index.dirty_parts(prefix=HD3_VIEW)  # (the full view's stay dirty: no files)
        tasks = store.plan_chunks([p for p in dirty if p.startswith(views)], cache)
        for task in tasks:
            store.record_chunk(task, build_chunk(task))
        drop_kept(cache, rows)
    return [t.part for t in tasks]
