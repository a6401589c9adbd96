"""Statistics of every header-3 item over 5-minute and daily bins, as cheta defines them, built
with the sample tables of an ``hd3s`` chunk (`mica.archive.hdr3_stats` reads them).

Bins use cheta's universal index: bin ``k`` of a statistic of width ``dt`` (`STATS_DT`: 328 s
for ``5min``, 86400 s for ``daily``) holds the samples with ``k * dt <= t < (k + 1) * dt``
(CXC seconds, so its origin is cheta's: 1998-01-01T00:00:00 TT); its time is its midpoint
``(k + 0.5) * dt``. Each bin with at least one good sample (unmasked, and finite: a thermistor
outside its calibrated range gives NaN) has, over those samples in time order
(`STATS_FIELDS`):

* ``index`` (k), ``n``; ``min``, ``max``; ``midval``, the sample ``n // 2``;
* ``mean``, time-weighted: a sample weighs half the time between its neighbours in the bin,
  the first and last the time to their one neighbour, each weight clipped to 0.001..300 s,
  and every sample 1 in a bin of one or two;
* ``std``, the square root of the same weighted mean of the squared deviations from ``mean``;
* daily only, ``p01`` ... ``p99``: the 1, 5, 16, 50, 84, 95 and 99 % quantiles of the values,
  Hyndman and Fan's estimator with alpha = beta = 0.4 (the default of
  ``scipy.stats.mstats.mquantiles``, which cheta uses).

cheta keeps ``mean`` as float32 and has no 5-minute ``std``; here every field is float64 and
both statistics have ``std``.

Where they live: a chunk of the view ``hd3s`` (period 100 days, a whole number of days) holds,
for each item and statistic, the bins starting in its period (`owned_bins`: a 5-minute bin may
end up to 328 s after it). Those bins' samples are exactly the archive's, whichever files hold
them: the chunk holds every file with rows within `SAMPLES_REACH` of its period (so every row
a bin's gap test and next-slot match look at), so no bin is split between chunks and nothing
is merged across them, percentiles included. Datasets (``<stat>``: ``5min``, ``daily``):

* ``ST.<stat>.BINS``: the owned bins ``[k0, k1)``, written for every chunk (a chunk without
  it was built before the statistics);
* ``ST.<key>.<stat>``: the (nfields, nbins) float64 columns of an item's bins with samples,
  by ``index`` (an item without samples in the period has none); a field's values are
  contiguous, so a reader takes each as it is.

An update adding files to a chunk computes again only the bins from the one holding the first
time at which its sample tables differ from the old chunk's
(`mica.products.hdr3_samples.TableJoin.changed_from`): the samples of the bins before it do
not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mica.engine.chunk_extend import Extended, HeldChunk
from mica.products.hdr3_items import ITEMS, Hdr3Item
from mica.products.hdr3_samples import (
    TableJoin,
    extend_sample_table,
    held_rows_from,
    item_datasets,
    sample_table,
    table_words,
)

__all__ = [
    "QUANTILES",
    "STATS_DT",
    "STATS_FIELDS",
    "bin_index",
    "bin_stats",
    "bins_between",
    "bins_dataset",
    "hdr3_tables",
    "item_values",
    "owned_bins",
    "stats_dataset",
    "stats_tables",
]

#: Bin width of each statistic (s), cheta's ``STATS_DT``.
STATS_DT = {"5min": 328, "daily": 86400}
#: The daily quantiles (%).
QUANTILES = (1, 5, 16, 50, 84, 95, 99)
_BASE_FIELDS = ("index", "n", "min", "max", "mean", "std", "midval")
#: The columns of a statistic's rows.
STATS_FIELDS = {
    "5min": _BASE_FIELDS,
    "daily": (*_BASE_FIELDS, *(f"p{q:02d}" for q in QUANTILES)),
}
# A weight's bounds (s): cheta's, for identical times and for samples beside a long gap.
_WEIGHT_MIN, _WEIGHT_MAX = 0.001, 300.0
# mquantiles' plotting positions alpha = beta = 0.4
_ALPHAP = _BETAP = 0.4


def stats_dataset(key: str, stat: str) -> str:
    """The dataset of an item's (by key, e.g. ``'676'``) bins of ``stat`` in a chunk."""
    return f"ST.{key}.{stat}"


def bins_dataset(stat: str) -> str:
    """The dataset giving the bins of ``stat`` a chunk owns (``[k0, k1)``)."""
    return f"ST.{stat}.BINS"


def _first_bin(t: float, dt: int, offset: float = 0.0) -> int:
    """The first bin ``k`` with ``(k + offset) * dt >= t`` (exact: for ``offset`` 0 or 0.5
    that product is a float64 without rounding)."""
    k = int(np.floor(t / dt - offset))
    while (k + offset) * dt < t:
        k += 1
    while (k - 1 + offset) * dt >= t:
        k -= 1
    return k


def owned_bins(period: tuple[float, float], stat: str) -> tuple[int, int]:
    """The bins ``[k0, k1)`` a chunk of ``period`` (start, stop) owns: those starting in it."""
    dt = STATS_DT[stat]
    return _first_bin(period[0], dt), _first_bin(period[1], dt)


def bins_between(tstart: float, tstop: float, stat: str) -> tuple[int, int]:
    """The bins ``[k0, k1)`` a fetch of [tstart, tstop) gives: those whose midpoint
    ``(k + 0.5) * dt`` lies in it (cheta's choice)."""
    dt = STATS_DT[stat]
    return _first_bin(tstart, dt, 0.5), _first_bin(tstop, dt, 0.5)


def bin_index(times: np.ndarray, dt: int) -> np.ndarray:
    """Each time's bin ``k`` (``k * dt <= t < (k + 1) * dt``, exactly) as int64."""
    k = np.floor(np.asarray(times, dtype=np.float64) / dt).astype(np.int64)
    # the division may round across a bin edge: compare with the edges themselves
    k -= times < k * float(dt)
    k += times >= (k + 1) * float(dt)
    return k


def bin_stats(times: np.ndarray, values: np.ndarray, stat: str) -> np.ndarray:
    """The columns of ``stat`` (`STATS_FIELDS`) of samples, one value per bin with samples.

    Parameters
    ----------
    times : numpy.ndarray
        Sample times (CXC seconds), increasing.
    values : numpy.ndarray
        The good samples' values (finite), any numeric dtype.
    stat : str
        ``'5min'`` or ``'daily'``.

    Returns
    -------
    numpy.ndarray
        (nfields, nbins) float64, by bin index.
    """
    fields = STATS_FIELDS[stat]
    times = np.asarray(times, dtype=np.float64)
    v = np.asarray(values).astype(np.float64)
    if not len(times):
        return np.zeros((len(fields), 0))
    k = bin_index(times, STATS_DT[stat])
    starts = np.flatnonzero(np.diff(k, prepend=k[0] - 1))
    n = np.diff(starts, append=len(k))
    ends = starts + n - 1
    out = np.empty((len(fields), len(starts)))
    col = {name: i for i, name in enumerate(fields)}
    out[col["index"]] = k[starts]
    out[col["n"]] = n
    out[col["min"]] = np.minimum.reduceat(v, starts)
    out[col["max"]] = np.maximum.reduceat(v, starts)
    out[col["midval"]] = v[starts + n // 2]
    # Weights: half the time between the neighbours ((before + after) / 2, cheta's order of
    # operations), the first and last sample of a bin its one neighbour's time, clipped;
    # every sample 1 in a bin of one or two.
    gaps = np.diff(times)
    before = np.concatenate([[0.0], gaps])
    after = np.concatenate([gaps, [0.0]])
    weights = (before + after) / 2.0
    weights[starts] = after[starts]
    weights[ends] = before[ends]
    np.clip(weights, _WEIGHT_MIN, _WEIGHT_MAX, out=weights)
    few = np.repeat(n <= 2, n)
    weights[few] = 1.0
    total = np.add.reduceat(weights, starts)
    mean = np.add.reduceat(weights * v, starts) / total
    out[col["mean"]] = mean
    deviation = v - np.repeat(mean, n)
    out[col["std"]] = np.sqrt(np.add.reduceat(weights * deviation * deviation, starts) / total)
    if stat == "daily":
        out[col["p01"] :] = _quantiles(v, starts, n)
    return out


def _quantiles(v: np.ndarray, starts: np.ndarray, n: np.ndarray) -> np.ndarray:
    """(len(QUANTILES), nbins): mquantiles' estimate of each bin's values."""
    ordered = np.empty_like(v)
    for a, m in zip(starts.tolist(), n.tolist()):
        ordered[a : a + m] = np.sort(v[a : a + m])
    prob = np.array(QUANTILES) / 100.0
    m = _ALPHAP + prob * (1.0 - _ALPHAP - _BETAP)
    aleph = n[None, :] * prob[:, None] + m[:, None]
    # mquantiles' k = floor(clip(aleph, 1, n - 1)); a bin of one sample gives that sample
    k = np.floor(np.clip(aleph, 1, np.maximum(n - 1, 1)[None, :])).astype(np.int64)
    gamma = np.clip(aleph - k, 0, 1)
    lower = ordered[starts[None, :] + k - 1]
    upper = ordered[np.minimum(starts[None, :] + k, starts[None, :] + n[None, :] - 1)]
    out = (1.0 - gamma) * lower + gamma * upper
    one = n == 1
    out[:, one] = ordered[starts[one]][None, :]
    return out


def item_values(item: Hdr3Item, table: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """An item's good samples (times, values) from the sample tables of a chunk
    (`sample_table`'s datasets): its grid slot's times where the value is unmasked and
    finite, as `mica.archive.aca_hdr3.MSIDset` gives them over the table's rows."""
    base = f"S{item.slot}."
    if base + "TIME" not in table:
        return np.zeros(0), np.zeros(0)
    where = {item.msid: item_datasets(item, item.slot)}
    names = {"FLAGS", *(name for name, _ in where[item.msid])}
    words = table_words({name: table[base + name] for name in names}, where)[item.msid]
    vals = item.decode_words(*words)
    data = np.ma.getdata(vals)
    good = ~np.ma.getmaskarray(vals)
    if data.dtype.kind == "f":
        good &= np.isfinite(data)
    return table[base + "TIME"][good], data[good]


def stats_tables(
    table: Mapping[str, np.ndarray],
    period: tuple[float, float],
    since: float = -np.inf,
    held: HeldChunk | None = None,
) -> dict[str, Any]:
    """The statistics datasets of a chunk of ``period`` from its sample tables (see the
    module description).

    Parameters
    ----------
    table : mapping
        The chunk's `sample_table` datasets (with ``held``: from ``since`` on at least).
    period : (float, float)
        The chunk's period (start, stop), CXC seconds.
    since : float
        The bins holding times before ``since`` are the ``held`` chunk's, the others are
        computed from ``table``.
    held : HeldChunk, optional
        The chunk extended (its statistics before ``since``).

    Returns
    -------
    dict
        Dataset name -> array (the bins owned) or, for an item's statistics,
        `mica.engine.chunk_extend.Extended`: the ``held`` chunk's bins before ``since``
        kept, the later ones computed, along the bins' axis in blocks of `STATS_BLOCK`
        (so an append writes the last blocks, not the period's bins again).
    """
    out: dict[str, Any] = {}
    owned = {stat: owned_bins(period, stat) for stat in STATS_DT}
    for stat, (k0, k1) in owned.items():
        out[bins_dataset(stat)] = np.array([k0, k1], dtype=np.int64)
    held_ends: dict[int, float] = {}
    for key, item in ITEMS.items():
        times, values = item_values(item, table)
        if held is not None and item.slot not in held_ends:
            held_ends[item.slot] = _held_end(held, item.slot)
        for stat, (k0, k1) in owned.items():
            dt = STATS_DT[stat]
            first = k0 if since == -np.inf else max(k0, int(bin_index(np.array([since]), dt)[0]))
            end = held_ends.get(item.slot, np.inf)
            keep = _held_bins(held, stats_dataset(key, stat), stat, first, end)
            # the samples of the bins computed: times in [first * dt, k1 * dt)
            a, b = np.searchsorted(times, [first * float(dt), k1 * float(dt)], side="left")
            rows = bin_stats(times[a:b], values[a:b], stat)
            if keep or rows.shape[1]:
                block = STATS_BLOCK[stat]
                out[stats_dataset(key, stat)] = Extended(keep, rows, axis=1, block=block)
    return out


#: Bins per stored block of an item's statistics: a 100-day period's daily bins in one, its
#: 5-minute bins (26,341) in seven.
STATS_BLOCK = {"5min": 4096, "daily": 128}


def _held_end(held: HeldChunk, slot: int) -> float:
    """The last time of the ``held`` chunk's table of ``slot`` (-inf: none): an item's
    samples are among its slot's times, so none of its held bins starts after it."""
    shape = held.shape(f"S{slot}.TIME")
    if not shape or not shape[0]:
        return -np.inf
    return float(held.read(f"S{slot}.TIME", shape[0] - 1)[-1])


def _held_bins(
    held: HeldChunk | None, name: str, stat: str, first: int, end: float = np.inf
) -> int:
    """How many bins of dataset ``name`` of statistic ``stat`` of the ``held`` chunk come
    before bin ``first`` (0: none, or no such dataset), ``end`` the held chunk's last time of
    the item's slot (`_held_end`). Its bins all do when ``end`` comes before bin ``first``
    (the usual append of later files: nothing read); else their indices are read from the
    last block back, as far as they reach ``first``: an append reads a block or two, not the
    period's bins."""
    shape = None if held is None else held.shape(name)
    if shape is None:
        return 0
    if end < first * float(STATS_DT[stat]):
        return shape[1]
    row = STATS_FIELDS[stat].index("index")
    hi = lo = shape[1]
    while lo > 0:
        lo = max(0, (lo - 1) // STATS_BLOCK[stat] * STATS_BLOCK[stat])
        index = held.read_along(name, lo, hi)[row]  # type: ignore[union-attr]
        if lo == 0 or (len(index) and index[0] < first):
            return lo + int(np.searchsorted(index, first, "left"))
    return 0


def _joined_table(held: HeldChunk, join: TableJoin, since: float) -> dict[str, np.ndarray]:
    """The sample tables of an extended chunk from ``since`` on (from ``join.start`` when
    that is earlier): the held chunk's rows from there to the join, then the rows computed
    again."""
    out = {}
    firsts = {slot: held_rows_from(held, slot, since)[0] for slot in join.keep}
    for name, rows in join.tail.items():
        slot = int(name[1:].split(".", 1)[0])
        keep = join.keep.get(slot, 0)
        lo = firsts.get(slot, 0)
        if name.endswith(".BLOCK0") or lo >= keep:
            out[name] = rows
        else:
            out[name] = np.concatenate([held.read(name, lo, keep), rows])
    return out


def hdr3_tables(
    rows: list[dict[str, Any]],
    arrays: list[dict[str, np.ndarray]],
    period: tuple[float, float],
    held: HeldChunk | None = None,
) -> dict[str, Any]:
    """Every derived dataset of an ``hd3s`` chunk (the view's ``derive``): the sample tables
    `sample_table` computes from the chunk's index rows and files' arrays, and the items'
    statistics `stats_tables` computes from them for the chunk's ``period`` (start, stop).

    With ``held``, the chunk extends that one, which holds the first of ``rows``; ``arrays``
    are the following files': the tables are computed again from where the new rows can change
    them (`extend_sample_table`, given as `mica.engine.chunk_extend.Extended`), the statistics
    of the bins holding the first time at which the tables differ from the held ones
    (`TableJoin.changed_from`) and the later ones, from the held rows of the earliest such bin
    on: an append of a day whose rows leave the previous day's as they were keeps that day's
    daily bin instead of computing it again from its samples."""
    if held is None:
        table = sample_table(rows, arrays)
        return {**table, **stats_tables(table, period)}
    join = extend_sample_table(held, rows, arrays)
    # the bins before the first row that differs from the held tables' keep their statistics
    changed = join.changed_from(held)
    if changed == np.inf:  # no row differs: the bins from the join's on, computed again
        changed = join.start
    since = changed
    if np.isfinite(since):  # the earliest start of the bins holding it
        since = min(float(bin_index(np.array([since]), dt)[0] * dt) for dt in STATS_DT.values())
    table = _joined_table(held, join, since)
    return {**join.datasets(), **stats_tables(table, period, changed, held)}
