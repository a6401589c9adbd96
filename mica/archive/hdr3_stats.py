"""Reads the header-3 items' 5-minute and daily statistics of the L0 store (their definitions,
layout and builder: `mica.products.hdr3_stats`).

`read_stats` takes daily bins from the mission table (`mica.products.hdr3_mission`: one file,
one dataset an item) while it is current; else, and for 5-minute bins, each period's bins from
its ``hd3s`` chunk when the chunk is current (not dirty, of this layout: built with the
statistics), and computes the bins of any other period from the item's samples
(`mica.archive.aca_hdr3` reads them: the store's sample tables or rows, or the files): the
answer is the same either way, as for every store view.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mica.errors import InvalidArgumentError
from mica.products.hdr3_items import Hdr3Item
from mica.products.hdr3_mission import DAILY_TABLE, DAILY_TABLE_STAT
from mica.products.hdr3_samples import SAMPLES_VIEW
from mica.products.hdr3_stats import (
    STATS_DT,
    STATS_FIELDS,
    bin_stats,
    bins_between,
    bins_dataset,
    owned_bins,
    stats_dataset,
)

if TYPE_CHECKING:
    from mica.engine.h5chunks import ChunkDigests

_log = logging.getLogger(__name__)

#: archives whose unreadable chunks a reader reported (once per process)
_UNREAD_NOTED: set[Path] = set()
#: mission table files found damaged by this process (`_from_table`): not read again
_TABLES_DAMAGED: set[Path] = set()

#: ``samples(start, stop)``: an item's good samples (times, values) with start <= t < stop.
Samples = Callable[[float, float], tuple[np.ndarray, np.ndarray]]


def read_stats(
    item: Hdr3Item,
    stat: str,
    tstart: float,
    tstop: float,
    samples: Samples,
    data_root: str | Path | None = None,
    use_store: bool = True,
) -> np.ndarray:
    """The rows of an item's bins of ``stat`` whose midpoint lies in [tstart, tstop).

    Parameters
    ----------
    item : Hdr3Item
        The item.
    stat : str
        ``'5min'`` or ``'daily'``.
    tstart, tstop : float
        The range, CXC seconds.
    samples : callable
        ``samples(start, stop)``: the item's good samples with ``start <= t < stop``, for the
        bins no current chunk holds (all of them with ``use_store=False``).
    data_root : str or Path, optional
        The ``aca0`` folder.
    use_store : bool
        Read the store's statistics (False: compute every bin from ``samples``).

    Returns
    -------
    numpy.ndarray
        (nfields, nbins) float64: each field (`mica.products.hdr3_stats.STATS_FIELDS`) of
        the bins with samples, by bin.

    Raises
    ------
    MissingArchiveError
        When ``data_root`` holds no L0 archive (``use_store``; else ``samples`` says so).
    """
    if stat not in STATS_DT:
        raise InvalidArgumentError(f"stat must be one of {', '.join(STATS_DT)}, not {stat!r}")
    k0, k1 = bins_between(tstart, tstop, stat)
    if k1 <= k0:
        return np.zeros((len(STATS_FIELDS[stat]), 0))
    if use_store and stat == DAILY_TABLE_STAT:
        table = _from_table(item, data_root)
        if table is not None:  # the mission's bins: those of [k0, k1)
            lo, hi = np.searchsorted(table[0], [k0, k1])
            return table[:, lo:hi]
    pieces = _from_store(item, stat, k0, k1, data_root) if use_store else {}
    return _assemble(pieces, stat, k0, k1, samples)


def _from_table(item: Hdr3Item, data_root: str | Path | None) -> np.ndarray | None:
    """The item's daily bins over the mission from the mission table, checked against its
    digests (its rows of `read_stats`, every bin); None when the table is not current (then
    the periods' chunks serve) or fails its checks (`serve_from_files`, or raised)."""
    from mica.engine.colstore import STORE_VERSION, serve_from_files
    from mica.engine.h5chunks import one_blosc_thread, open_h5_id, read_slab
    from mica.engine.read import snapshot_read
    from mica.engine.store_tables import current_table
    from mica.errors import DamagedStoreError
    from mica.products.aca_l0 import L0

    root = L0.root(data_root)
    found: list[np.ndarray | None] = [None]

    @one_blosc_thread
    def from_table(index: Any, _: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found[0] = None  # a retry starts again
        digests = current_table(
            index.conn, index.root, L0.store_description, DAILY_TABLE, STORE_VERSION
        )
        if digests is None or digests.path in _TABLES_DAMAGED:
            return []
        name = stats_dataset(item.key, DAILY_TABLE_STAT)
        try:
            with digests.reading():
                if name in digests.datasets:
                    table = read_slab(open_h5_id(digests.path), name, digests=digests)
                    # in the native byte order's dtype, as the chunks' bins come (h5py
                    # names it little-endian: structured arrays of both would mix them)
                    found[0] = table.view(table.dtype.newbyteorder("="))
                else:  # no bins of the item in the mission
                    found[0] = np.zeros((len(STATS_FIELDS[DAILY_TABLE_STAT]), 0))
        except DamagedStoreError as err:
            _TABLES_DAMAGED.add(digests.path)
            serve_from_files(err)  # or raise; else the chunks serve
        except OSError:  # gone: replaced since the snapshot, or removed; the chunks serve
            _log.info("store table %s could not be read: the chunks serve", digests.path)
        return []

    snapshot_read(L0, root, lambda index: [], from_table, lambda rec: None)
    return found[0]


def _periods(stat: str, k0: int, k1: int) -> list[int]:
    """The ``hd3s`` periods owning the bins [k0, k1) (each owns the bins starting in it)."""
    from mica.products.aca_l0 import L0

    period = int(L0.store_description.view_named(SAMPLES_VIEW).period)
    dt = STATS_DT[stat]
    return list(range(k0 * dt // period, (k1 - 1) * dt // period + 1))


def _from_store(
    item: Hdr3Item, stat: str, k0: int, k1: int, data_root: str | Path | None
) -> dict[int, np.ndarray]:
    """Period number -> its rows of bins [k0, k1), for the periods whose chunk serves them.

    Every block read is checked against the chunk's digests (a chunk of another period or
    generation put in its place, or a flipped byte, gave other bins unnoticed before): a
    chunk failing them is `serve_from_files` (or raises), its bins computed from the samples;
    one a sync installed without its files raises `synced_chunk_lost`."""
    from mica.engine.colstore import ColumnStore, serve_from_files
    from mica.engine.h5chunks import one_blosc_thread
    from mica.engine.read import snapshot_read
    from mica.engine.synced import synced_chunk_lost
    from mica.errors import DamagedStoreError
    from mica.products.aca_l0 import L0

    view = L0.store_description.view_named(SAMPLES_VIEW)
    root = L0.root(data_root)
    parts = {
        number: view.key({"filetime": number * view.period}) for number in _periods(stat, k0, k1)
    }
    found: dict[int, np.ndarray] = {}

    @one_blosc_thread
    def from_store(index: Any, _: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found.clear()  # a retry starts again
        store = ColumnStore(L0, index)
        chunks = store.current_chunks(parts.values())
        synced = store.synced_alone(chunks) if chunks else set()
        for number, part in parts.items():
            chunk = chunks.get(part)
            if chunk is None:
                continue
            try:
                with store.checking(chunk) as digests:
                    found[number] = _read_chunk(root / chunk["path"], item, stat, digests)
            except DamagedStoreError as err:
                if part in synced:
                    raise synced_chunk_lost(err, "aca-hdr3", *view.period_range(number)) from None
                serve_from_files(err)  # or raise; else computed from the samples
            except (OSError, KeyError):  # replaced since the snapshot
                if root not in _UNREAD_NOTED:
                    _UNREAD_NOTED.add(root)
                    _log.warning(
                        "store chunk %s of %s could not be read for the header-3 statistics "
                        "(replaced meanwhile): they are computed from the samples",
                        part,
                        root,
                    )
        return []

    snapshot_read(L0, root, lambda index: [], from_store, lambda rec: None)
    return found


def _read_chunk(path: Path, item: Hdr3Item, stat: str, digests: ChunkDigests) -> np.ndarray:
    """An item's columns of ``stat`` in a chunk file, checked against its ``digests`` (no
    bins: no samples of the item in its period).

    Raises
    ------
    DamagedStoreError
        The chunk fails its checks (`mica.engine.h5chunks.read_slab`).
    OSError, KeyError
        The file cannot be opened (gone: replaced since the caller's snapshot).
    """
    from mica.engine.h5chunks import open_h5_id, read_slab

    # the file closes when ``fid`` goes (its last identifier): h5py's FileID.close looks
    # for other open objects first, a third of a 25-year daily read
    fid = open_h5_id(path)
    name = stats_dataset(item.key, stat)
    if name in digests.datasets:
        return read_slab(fid, name, digests=digests)
    # no sample of the item in the chunk's period; the bins, written in every chunk with
    # statistics, say the chunk is of this layout (read_slab: damaged if missing)
    read_slab(fid, bins_dataset(stat), digests=digests)
    return np.zeros((len(STATS_FIELDS[stat]), 0))


def _assemble(
    pieces: dict[int, np.ndarray], stat: str, k0: int, k1: int, samples: Samples
) -> np.ndarray:
    """The rows of bins [k0, k1): each period's from ``pieces``, or computed from ``samples``
    (one read per run of periods without a piece)."""
    from mica.products.aca_l0 import L0

    view = L0.store_description.view_named(SAMPLES_VIEW)
    dt = STATS_DT[stat]
    out: list[np.ndarray] = []
    missing: list[int] = []

    def compute() -> None:
        # the bins of these periods within [k0, k1), from the samples of their time range
        lo = max(k0, owned_bins(view.period_range(missing[0]), stat)[0])
        hi = min(k1, owned_bins(view.period_range(missing[-1]), stat)[1])
        times, values = samples(lo * float(dt), hi * float(dt))
        out.append(bin_stats(times, values, stat))
        missing.clear()

    for number in _periods(stat, k0, k1):
        if number in pieces:
            if missing:
                compute()
            out.append(pieces[number])
        else:
            missing.append(number)
    if missing:
        compute()
    # the first and last pieces may hold bins outside [k0, k1): cut them, copy once
    for at in {0, len(out) - 1} if out else ():
        index = out[at][0]
        out[at] = out[at][:, np.searchsorted(index, k0) : np.searchsorted(index, k1)]
    return np.concatenate(out, axis=1) if out else np.zeros((len(STATS_FIELDS[stat]), 0))
