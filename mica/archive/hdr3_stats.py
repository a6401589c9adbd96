"""Reads the header-3 items' 5-minute and daily statistics of the L0 store (their definitions,
layout and builder: `mica.products.hdr3_stats`).

`read_stats` takes each period's bins from its ``hd3s`` chunk when the chunk is current (not
dirty, of this layout: built with the statistics), and computes the bins of any other period from
the item's samples (`mica.archive.aca_hdr3` reads them: the store's sample tables or rows, or
the files): the answer is the same either way, as for every store view.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mica.products.hdr3_items import Hdr3Item
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

_log = logging.getLogger(__name__)

#: archives whose unreadable chunks a reader reported (once per process)
_UNREAD_NOTED: set[Path] = set()

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
        raise ValueError(f"stat must be one of {', '.join(STATS_DT)}, not {stat!r}")
    k0, k1 = bins_between(tstart, tstop, stat)
    if k1 <= k0:
        return np.zeros((len(STATS_FIELDS[stat]), 0))
    pieces = _from_store(item, stat, k0, k1, data_root) if use_store else {}
    return _assemble(pieces, stat, k0, k1, samples)


def _periods(stat: str, k0: int, k1: int) -> list[int]:
    """The ``hd3s`` periods owning the bins [k0, k1) (each owns the bins starting in it)."""
    from mica.products.aca_l0 import L0

    period = int(L0.store_description.view_named(SAMPLES_VIEW).period)
    dt = STATS_DT[stat]
    return list(range(k0 * dt // period, (k1 - 1) * dt // period + 1))


def _from_store(
    item: Hdr3Item, stat: str, k0: int, k1: int, data_root: str | Path | None
) -> dict[int, np.ndarray]:
    """Period number -> its rows of bins [k0, k1), for the periods whose chunk serves them."""
    from mica.engine.colstore import ColumnStore
    from mica.engine.h5chunks import one_blosc_thread
    from mica.engine.read import snapshot_read
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
        chunks = ColumnStore(L0, index).current_chunks(parts.values())
        for number, part in parts.items():
            chunk = chunks.get(part)
            rows = None if chunk is None else _read_chunk(root / chunk["path"], item, stat)
            if rows is not None:
                found[number] = rows
            elif chunk is not None and root not in _UNREAD_NOTED:
                _UNREAD_NOTED.add(root)
                _log.warning(
                    "store chunk %s of %s could not be read for the header-3 statistics "
                    "(replaced meanwhile, or damaged): they are computed from the samples; "
                    "`mica check --verify-store --data-root %s` tells a damaged chunk",
                    part,
                    root,
                    root,
                )
        return []

    snapshot_read(L0, root, lambda index: [], from_store, lambda rec: None)
    return found


def _read_chunk(path: Path, item: Hdr3Item, stat: str) -> np.ndarray | None:
    """An item's columns of ``stat`` in a chunk file (no bins: no samples in its period), or
    None when the chunk holds no statistics (built before them) or cannot be read."""
    from mica.engine.h5chunks import open_h5_id

    try:
        # the file closes when ``fid`` goes (its last identifier): h5py's FileID.close looks
        # for other open objects first, a third of a 25-year daily read
        fid = open_h5_id(path)
        try:
            return _read_whole(fid, stats_dataset(item.key, stat))
        except KeyError:  # no sample of the item in the chunk's period, or no statistics
            _read_whole(fid, bins_dataset(stat))  # written in every chunk with statistics
            return np.zeros((len(STATS_FIELDS[stat]), 0))
    except (OSError, KeyError):  # replaced since, or damaged
        return None


def _read_whole(fid: Any, name: str) -> np.ndarray:
    """A whole dataset of an open file (``h5py.h5f`` id); KeyError when there is none."""
    import h5py

    dset = h5py.h5d.open(fid, name.encode())
    try:
        out = np.empty(dset.shape, dtype=dset.dtype)
        dset.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
        return out
    finally:
        dset.close()


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
