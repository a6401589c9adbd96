"""ACA header-3 pseudo-MSIDs (CCD temperature, TEC DAC, voltages, thermistors, ...).

Values come from the diagnostic bytes of 8x8 L0 rows
(`mica.products.hdr3_items` decodes them). Public API:

* ``MSIDset(msids, start, stop, data_root=None)``: ordered dict name -> `MSID`, all on one
  time grid (``.times``): the sorted union of the TIME values of the slots carrying the
  requested items; each item is masked where its slot had no (good) 8x8 row at that time.
* ``MSID(msid, start, stop, msid_data=None, filter_bad=False, data_root=None)``: one item,
  attributes ``msid, hdr3_msid, vals, times, desc, longdesc, unit, bits, tstart, tstop,
  datestart, datestop``; ``filter_bad(copy=False)``, ``copy()``.
* ``Msid(...)``: `MSID` with ``filter_bad=True``.
* ``stat='5min'`` or ``'daily'`` (`MSID`, `MSIDset`): cheta's statistics of an item instead
  of its samples, one per bin whose midpoint lies in [start, stop): ``vals`` (= ``means``),
  ``mins``, ``maxes``, ``stds``, ``midvals``, ``samples``, ``indexes`` and, daily,
  ``p01s`` ... ``p99s`` (definitions: `mica.products.hdr3_stats`), read from the store or
  computed from the samples, with the same result.

Values, units and dtypes are the original's for the same bytes (voltages in mV, ``avg_bkg``
in electrons, ``ccd_setpoint`` and ``dac`` int16 counts, ``ccd_temp`` the high word in 0.01 C
steps), but for three fixes its item ``desc`` names (``ad_5v_ps``, ``ad_analog_gnd``,
``avg_bkg``); other units are other names (``ad_5v_ps_volts``, ``ccd_setpoint_degc``,
``avg_bkg_adc``, ``ccd_temp_fine``: `mica.products.hdr3_items.EXTRA_ITEMS`).

Names (case-insensitive) and 3-character keys are accepted; anything else raises
`MissingDataError` (a KeyError and a ValueError) listing the valid names. A ``data_root``
holding no L0 archive raises `mica.errors.MissingArchiveError` (a range without data
gives empty MSIDs).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from mica.archive import aca_l0, hdr3_samples, hdr3_stats
from mica.archive import msid as msid_api
from mica.engine.colstore import serve_from_files
from mica.errors import DamagedStoreError
from mica.products.hdr3_calib import ad_to_degc
from mica.products.hdr3_items import (
    EXTRA_ITEMS,
    HD3_COLUMNS,
    ITEMS,
    MSID_ALIASES,
    Hdr3Item,
    MissingDataError,
    get_item,
    s16,
)
from mica.products.hdr3_samples import gap_valid
from mica.products.hdr3_stats import STATS_DT, STATS_FIELDS
from mica.time import CxoTimeLike, time_range, to_secs

__all__ = [
    "MSID",
    "MSIDset",
    "Msid",
    "MissingDataError",
    "EXTRA_ITEMS",
    "ITEMS",
    "MSID_ALIASES",
    "ACA_DTYPE",
    "ACA_DTYPE_NAMES",
    "HDR3_DEF",
    "ad_temp",
    "confirm_msid",
    "slot_for_msid",
    "two_byte_sum",
]

#: One major frame of padding read past ``stop`` so the gap test sees the next row.
PAD = 33.0


class SlotRows(NamedTuple):
    """One slot's 8x8 rows as plain arrays: times (n,), the 12 HD3 byte columns by name
    (n,) each, and a per-row validity flag (False where the bytes are not to be trusted)."""

    times: np.ndarray
    cols: dict[str, np.ndarray]
    valid: np.ndarray


def _slot_hdr3_rows(
    start: float,
    stop: float,
    slots: list[int],
    data_root: str | Path | None,
    use_store: bool = True,
    columns: Iterable[str] = HD3_COLUMNS,
) -> dict[int, SlotRows]:
    """8x8 rows of each slot with ``start <= TIME <= stop``: TIME and the header-3 byte
    ``columns`` (the single point of data access).

    Served from the header-3 view of the L0 columnar store, or with ``use_store=False`` by
    scanning the FITS files.
    """
    if use_store:
        by_slot = aca_l0.hd3_columns(start, stop, slots, ["TIME", *columns], data_root)
    else:
        by_slot = aca_l0.slot_columns(
            start, stop, slots, ["TIME", *columns], [8], data_root=data_root, use_store=False
        )
    out = {}
    for slot, cols in by_slot.items():
        times = cols.pop("TIME").astype(np.float64, copy=False)
        # Every 8x8 row carries the header-3 bytes: all valid until the gap test.
        out[slot] = SlotRows(times, cols, np.ones(len(times), dtype=bool))
    return out


def _mask_gaps(rows: SlotRows, tstop: float) -> SlotRows:
    """Gap masking and cut at ``tstop`` of one slot's rows.

    A row not followed by the next one 4.1 s later precedes a decom break and may carry stale
    header-3 bytes: it is marked invalid. The padded stop ``tstop + PAD`` closes the series,
    so a final row is invalid unless data continues past the padding.
    """
    times, cols, valid = rows
    if len(times) > 1 and np.any(times[1:] < times[:-1]):
        # Rows come file by file; order them (stably, so the last duplicate stays last).
        order = np.argsort(times, kind="stable")
        times, valid = times[order], valid[order]
        cols = {name: col[order] for name, col in cols.items()}
    valid = valid & gap_valid(times, tstop + PAD)
    keep = np.searchsorted(times, tstop, side="right")
    return SlotRows(times[:keep], {k: v[:keep] for k, v in cols.items()}, valid[:keep])


def _union(grids: list[np.ndarray]) -> np.ndarray:
    """Sorted union of sorted time arrays (one array without repeats is returned as is)."""
    if len(grids) == 1 and (len(grids[0]) < 2 or np.all(grids[0][1:] > grids[0][:-1])):
        return grids[0]
    return np.unique(np.concatenate(grids)) if grids else np.zeros(0)


Placement = tuple[np.ndarray | slice, np.ndarray | slice]


def _place(rows: SlotRows, grid: np.ndarray) -> Placement:
    """(target, source): ``grid[target] == rows.times[source]`` (exact time match)."""
    if rows.times is grid:  # the grid is this slot's own times
        return slice(None), slice(None)
    if len(rows.times) == len(grid) and np.array_equal(rows.times, grid):
        # Slots 6 and 7 usually read out together: the same times, row for row (the grid
        # has no repeats, so neither have these rows), and a search would cost 10x this test.
        return slice(None), slice(None)
    if not len(rows.times) or not len(grid):
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    # For each grid time the last row at or before it: with duplicate TIMEs (overlapping
    # files) the last row wins (rows are time-sorted, stably).
    last = np.searchsorted(rows.times, grid, side="right") - 1
    target = np.flatnonzero(rows.times[np.maximum(last, 0)] == grid)
    return target, last[target]


def _item_bytes(
    item: Hdr3Item, rows: Mapping[int, SlotRows], placed: Mapping[int, Placement], n: int
) -> np.ma.MaskedArray:
    """(n, nbytes) masked uint8 array of the item's bytes on the shared grid."""
    # Column-major: each byte is written and then decoded as one contiguous column.
    data = np.zeros((item.nbytes, n), dtype=np.uint8).T
    mask = np.ones((item.nbytes, n), dtype=bool).T
    for k, (slot, name) in enumerate(item.byte_columns):
        if slot in rows:
            target, source = placed[slot]
            data[target, k] = rows[slot].cols[name][source]
            mask[target, k] = ~rows[slot].valid[source]
    return np.ma.masked_array(data, mask=mask)


class MSIDset(msid_api.MSIDset):
    """Header-3 pseudo-MSIDs on one shared time grid: name (as given) -> `MSID`.

    ``times`` is the sorted union of the TIME values of the items' first slots (the slot
    of the key's first digit); a continuation slot (slot 7 for ``ccd_temp_fine``, 5 for
    ``zero_off32_quad_c``) is read and matched onto that grid but does not extend it.

    Each item is an `MSID` whose ``unit`` says what its values are: temperatures
    (``ccd_temp``, ``aca_temp``, the ``*_therm`` items) in **degC**, voltages in mV (V for
    the ``*_volts`` names), ``avg_bkg`` in electrons, ``dac`` and ``ccd_setpoint`` in
    counts, status words unitless (see ``ITEMS`` and ``EXTRA_ITEMS``).

    Parameters
    ----------
    msids : str or iterable of str
        Item names (any case, e.g. ``"ccd_temp"``, ``"dac"``, ``"ad_5v_ps_volts"``) or
        3-character keys (``"676"``); see ``MSID_ALIASES`` and ``EXTRA_ITEMS``.
    start, stop : CxoTimeLike
        Time range, inclusive (``stop`` after ``start``).
    data_root : str or Path, optional
        The ``aca0`` folder (default: ``<archive>/aca0``).
    use_store : bool
        Read the header-3 view of the columnar store (False: scan the FITS files).
    stat : str, optional
        ``'5min'`` or ``'daily'``: each item's statistics (`MSID` with ``stat``), not its
        samples.

    Attributes
    ----------
    times : numpy.ndarray
        The shared grid, CXC seconds (s); with ``stat``, the bins any item has.
    tstart, tstop : float
        The asked range, CXC seconds; ``datestart``/``datestop`` as dates.

    Raises
    ------
    MissingDataError
        An unknown name (the message lists the valid ones).
    MissingArchiveError
        When ``data_root`` holds no L0 archive.

    Examples
    --------
    >>> from mica.archive import aca_hdr3
    >>> s = aca_hdr3.MSIDset(["ccd_temp", "dac"], "2012:125:00:00", "2012:126:00:00")
    >>> [(name, m.unit) for name, m in s.items()]
    [('ccd_temp', 'degC'), ('dac', 'counts')]
    >>> len(s["ccd_temp"]) == len(s["dac"]) == len(s.times)
    True
    >>> grid = s.interpolate(dt=328.0)  # cheta-style: one 328 s grid, bad samples dropped
    >>> bool(s["ccd_temp"].bads.any())
    False
    """

    def __init__(
        self,
        msids: Iterable[str],
        start: CxoTimeLike,
        stop: CxoTimeLike,
        data_root: str | Path | None = None,
        use_store: bool = True,
        stat: str | None = None,
    ):
        super().__init__()
        if isinstance(msids, str):
            msids = [msids]
        items = {msid: get_item(msid) for msid in msids}  # fail early on unknown names
        self.tstart, self.tstop = time_range(start, stop, instant=True)
        if stat is not None:
            for msid in items:
                self[msid] = MSID(
                    msid,
                    self.tstart,
                    self.tstop,
                    data_root=data_root,
                    use_store=use_store,
                    stat=stat,
                )
            self.times = _union([m.times for m in self.values()]) if items else np.zeros(0)
            return
        self.times, decoded = _samples(items, self.tstart, self.tstop, data_root, use_store)
        for msid, item in items.items():  # (every item's times the set's grid, as the
            # original's: no copy of a grid of millions of rows per item)
            data = _msid_data(item, decoded[msid], self.times)
            self[msid] = MSID(msid, self.tstart, self.tstop, msid_data=data)


Values = dict[str, np.ma.MaskedArray]


def _samples(
    items: Mapping[str, Hdr3Item],
    tstart: float,
    tstop: float,
    data_root: str | Path | None,
    use_store: bool,
) -> tuple[np.ndarray, Values]:
    """The shared grid of [tstart, tstop] and each item's values on it: from the store's
    sample tables, period by period, and the rows of the periods they cannot serve (or with
    ``use_store=False``, of the whole range, from the files)."""
    if not items:
        return np.zeros(0), {}
    if not use_store:
        return _rows_values(items, tstart, tstop, True, data_root, use_store=False)
    try:
        with hdr3_samples.open_tables(items, tstart, tstop, data_root) as parts:
            return _from_parts(items, parts, data_root)
    except DamagedStoreError as err:  # a block decoded after its part was planned
        serve_from_files(err)  # or raise; its chunk is left out from now on
        return _samples(items, tstart, tstop, data_root, use_store)


def _from_parts(
    items: Mapping[str, Hdr3Item], parts: list[hdr3_samples.Part], data_root: str | Path | None
) -> tuple[np.ndarray, Values]:
    """The grid and values of a range's parts (`hdr3_samples.open_tables`), in one output:
    the parts' grids concatenated (sorted and disjoint already; a part's times not read yet
    are read into their place), then each part's values decoded into place."""
    rows: dict[int, Values] = {}  # parts read from the files
    grids = []
    for k, part in enumerate(parts):
        if part.tables is None:
            times, rows[k] = _rows_values(
                items, part.lo, part.hi, part.closed, data_root, use_store=True
            )
            grids.append(times)
        elif part.unread is not None and len(parts) == 1:  # (into an array of its own)
            grid = np.empty(part.grid_rows())
            grid.resize(part.read_grid(grid), refcheck=False)  # (a fresh array: no view)
            part.grid = grid
            grids.append(grid)
        else:
            grids.append(part.grid)  # (empty while not read: `Part.read_grid`)
    if len(parts) == 1 and 0 in rows:  # no output to gather into
        return grids[0], rows[0]
    if len(grids) == 1:  # returned: the part's own times (not a window of its table's)
        grids[0] = _own(grids[0])
    sizes = [len(grids[k]) if k in rows else part.grid_rows() for k, part in enumerate(parts)]
    if not any(sizes):  # no sample: nothing to read nor decode
        return grids[0], {
            name: np.ma.masked_array(np.zeros(0, _unavailable(item).dtype), mask=np.zeros(0, bool))
            for name, item in items.items()
        }
    if sum(sizes) <= hdr3_samples.DECODE_ROWS[0] and all(
        k in rows or (len(part.tables or ()) == 1 and part.covers_grid())
        for k, part in enumerate(parts)
    ):  # a few rows: each part's decoded as they are (no output to fill, no unavailable value)
        decoded = [rows[k] if k in rows else part.decode(items) for k, part in enumerate(parts)]
        if len(parts) == 1:
            return grids[0], decoded[0]
        return np.concatenate(grids), {name: _joined([d[name] for d in decoded]) for name in items}
    if len(grids) == 1:
        times = grids[0]
    else:  # each part's times into their place (a part's not read yet: read there)
        times = np.empty(sum(sizes))
        at = 0
        for k, part in enumerate(parts):
            if k in rows:
                times[at : at + sizes[k]] = grids[k]
            else:  # (an unread part's window may hold more rows than its own)
                sizes[k] = part.read_grid(times[at : at + sizes[k]])
            at += sizes[k]
        times.resize(at, refcheck=False)  # (a fresh array: no view of it yet)
    del grids
    for part in parts:
        part.grid = times[:0]  # the parts' times are in ``times`` now: free them
    n = len(times)
    missing = {name: _unavailable(item) for name, item in items.items()}
    outs = {name: (np.empty(n, missing[name].dtype), np.empty(n, bool)) for name in items}
    at = 0
    for k, (part, size) in enumerate(zip(parts, sizes)):
        here = slice(at, at + size)
        if k in rows:
            for name, values in rows.pop(k).items():
                outs[name][0][here] = np.ma.getdata(values)
                outs[name][1][here] = np.ma.getmaskarray(values)
        else:
            if not part.covers_grid():  # grid times some item's slot has no row at
                for name, (data, mask) in outs.items():
                    data[here], mask[here] = missing[name], True
            part.fill(items, outs, at)
        at += size
    return times, {
        name: np.ma.masked_array(data, mask=mask, keep_mask=False)
        for name, (data, mask) in outs.items()
    }


def _own(times: np.ndarray) -> np.ndarray:
    """``times``, copied when it is a view of a longer array (which it would keep)."""
    return times.copy() if times.base is not None and times.base.size > times.size else times


def _joined(values: list[np.ma.MaskedArray]) -> np.ma.MaskedArray:
    """Masked arrays end to end, with a mask array as a filled output's (``np.ma.concatenate``
    drops a mask that is all False)."""
    data = np.concatenate([np.ma.getdata(v) for v in values])
    return np.ma.masked_array(data, mask=np.concatenate([np.ma.getmaskarray(v) for v in values]))


def _rows_values(
    items: Mapping[str, Hdr3Item],
    tstart: float,
    tstop: float,
    closed: bool,
    data_root: str | Path | None,
    use_store: bool,
) -> tuple[np.ndarray, Values]:
    """The grid and each item's values from the 8x8 rows with ``tstart <= TIME <= tstop``
    (``< tstop`` unless ``closed``)."""
    grid_slots = sorted({item.slot for item in items.values()})
    read_slots = sorted({s for item in items.values() for s in item.slots})
    # Only TIME and the byte columns the items use (ccd_temp_fine: 2 of slot 6, 2 of 7);
    # QUALITY and FILENAME, read by the original but unused, are not.
    columns = sorted({name for item in items.values() for _, name in item.byte_columns})
    read = _slot_hdr3_rows(tstart, tstop + PAD, read_slots, data_root, use_store, columns)
    rows = {slot: _mask_gaps(read[slot], tstop) for slot in read_slots}
    times = _union([rows[s].times for s in grid_slots])
    placed = {slot: _place(r, times) for slot, r in rows.items()}
    values = {
        msid: item.decode(_item_bytes(item, rows, placed, len(times)))
        for msid, item in items.items()
    }
    if not closed:  # the next part's first time
        keep = int(np.searchsorted(times, tstop, "left"))
        times, values = times[:keep], {k: v[:keep] for k, v in values.items()}
    return times, values


@functools.cache
def _unavailable(item: Hdr3Item) -> np.ndarray:
    """An item's value where its words are missing (what the rows path decodes from masked
    zero bytes, e.g. NaN for a thermistor): one element, of the item's dtype (read-only;
    once per item: a decoder's call costs a short fetch 90 us)."""
    words = [np.zeros(1, np.uint16)] * len(item.word_columns)
    value = np.ma.getdata(item.decode_words(words, [np.ones(1, bool)] * len(words)))
    value.flags.writeable = False
    return value


def _msid_data(item: Hdr3Item, vals: np.ma.MaskedArray, times: np.ndarray) -> dict[str, Any]:
    """The ``msid_data`` of an item's samples."""
    return {
        "hdr3_msid": item.key,
        "vals": vals,
        "times": times,
        "desc": item.desc,
        "longdesc": item.longdesc,
        "unit": item.unit,
        "bits": item.bits(vals),
    }


def _item_of(msid: str, key: str | None) -> Hdr3Item | None:
    """The item of key ``key``: the one ``msid`` names when it has that key (an
    `EXTRA_ITEMS` name), else the original's."""
    extra = EXTRA_ITEMS.get(str(msid).strip().lower())
    if extra is not None and extra.key == key:
        return extra
    return ITEMS.get(key) if key else None


class MSID(msid_api.MSID):
    """One header-3 pseudo-MSID over [start, stop]; ``vals`` is masked where unavailable.

    ``bits`` maps field name -> array for the status/packed words (062, 064, 362, 672) and
    is empty otherwise. ``msid_data`` (dict or object with ``hdr3_msid, vals, times, desc,
    longdesc``) skips the archive read.

    Parameters
    ----------
    msid : str
        Item name (any case) or 3-character key; see ``MSID_ALIASES``.
    start, stop : CxoTimeLike
        Time range, inclusive (``stop`` after ``start``).
    msid_data : mapping or object, optional
        Values already read (skips the archive).
    filter_bad : bool
        Drop the masked samples at once (see `Msid`).
    data_root : str or Path, optional
        The ``aca0`` folder (default: ``<archive>/aca0``).
    use_store : bool
        Read the columnar store (False: scan the FITS files, or with ``stat`` compute the
        statistics from the samples they give).
    stat : str, optional
        ``'5min'`` (328 s bins) or ``'daily'``: the item's statistics over the bins whose
        midpoint lies in [start, stop), as cheta's (`mica.products.hdr3_stats`).
    clear_cache : bool
        Taken for code written for later versions of the original, and ignored: no slot
        data is kept between calls.

    Attributes
    ----------
    vals : numpy.ma.MaskedArray
        Decoded values in ``unit``: degC for temperatures, mV for voltages (V for the
        ``*_volts`` names), counts for ``dac`` and counters, none for status words. With
        ``stat``: the bins' means (a plain array).
    times : numpy.ndarray
        CXC seconds (s); with ``stat``, the bins' midpoints.
    bads : numpy.ndarray
        True where a value is masked (no 8x8 row, or a row before a decom break).
    hdr3_msid, desc, longdesc, unit : str
        Item key and descriptions.
    stat : str or None
        The statistic, or None for samples.
    mins, maxes, means, stds, midvals, samples, indexes : numpy.ndarray
        With ``stat``: per bin, the extremes, time-weighted mean and standard deviation,
        the middle sample, the number of samples and the bin index (cheta's names).
    p01s, p05s, p16s, p50s, p84s, p95s, p99s : numpy.ndarray
        With ``stat='daily'``: the percentiles of each day's samples.

    Examples
    --------
    >>> from mica.archive import aca_hdr3
    >>> m = aca_hdr3.MSID("ccd_temp", "2012:125:00:00", "2012:126:00:00")
    >>> m.unit, m.hdr3_msid, m.times.dtype.name
    ('degC', '676', 'float64')
    >>> repr(m).startswith("<MSID ccd_temp (676) [")
    True
    >>> good = m.filter_bad(copy=True)
    >>> bool(good.bads.any()), len(good) <= len(m)
    (False, True)
    >>> five = aca_hdr3.MSID("ccd_temp", "2012:125:00:00", "2012:126:00:00", stat="5min")
    >>> five.stat, bool((five.mins <= five.means).all() and (five.means <= five.maxes).all())
    ('5min', True)
    >>> bool(((five.times - 164) % 328 == 0).all())  # midpoints of 328 s bins from CXC 0
    True
    """

    def __init__(
        self,
        msid: str,
        start: CxoTimeLike,
        stop: CxoTimeLike,
        msid_data: Mapping[str, Any] | Any | None = None,
        filter_bad: bool = False,
        data_root: str | Path | None = None,
        use_store: bool = True,
        stat: str | None = None,
        clear_cache: bool = True,
    ):
        if msid_data is None and stat is not None:
            msid_data = _stats_data(msid, start, stop, stat, data_root, use_store)
        elif msid_data is None:
            item = get_item(msid)
            # the set's grid itself (a set gives each of its items a copy)
            times, values = _samples(
                {msid: item}, *time_range(start, stop, instant=True), data_root, use_store
            )
            msid_data = _msid_data(item, values[msid], times)

        def get(name: str, default: Any = None) -> Any:
            if isinstance(msid_data, Mapping):
                return msid_data.get(name, default)
            return getattr(msid_data, name, default)

        self.hdr3_msid: str = get("hdr3_msid")
        item = _item_of(msid, self.hdr3_msid)
        super().__init__(
            msid,
            get("vals"),
            get("times"),
            unit=get("unit", item.unit if item else ""),
            desc=get("desc", item.desc if item else ""),
            tstart=to_secs(start),
            tstop=to_secs(stop),
            stat=get("stat"),
            columns=get("columns"),
        )
        self.longdesc: str = get("longdesc", item.longdesc if item else "")
        bits = get("bits")
        if bits is None:
            bits = item.bits(self.vals) if item and not self.stat else {}
        self.bits: dict[str, np.ndarray] = dict(bits)
        if filter_bad:
            self.filter_bad()

    def _label(self) -> str:
        return f"{self.msid} ({self.hdr3_msid})"

    def _keep(self, good: np.ndarray) -> None:
        """``vals``, ``times`` and ``bits`` keep the good samples (as plain arrays)."""
        super()._keep(good)
        self.bits = {k: np.asarray(np.ma.getdata(v))[good] for k, v in self.bits.items()}

    def _after_interpolate(self, keep: np.ndarray) -> None:
        item = _item_of(self.msid, self.hdr3_msid)
        self.bits = dict(item.bits(self.vals)) if item and not self.stat else {}


#: A statistic's rows' columns (`STATS_FIELDS`) -> cheta's attribute names.
_STAT_ATTRS = {
    "index": "indexes",
    "n": "samples",
    "midval": "midvals",
    "min": "mins",
    "max": "maxes",
    "mean": "means",
    "std": "stds",
    **{f"p{q}": f"p{q}s" for q in ("01", "05", "16", "50", "84", "95", "99")},
}


def _good_samples(
    item: Hdr3Item, start: float, stop: float, data_root: str | Path | None, use_store: bool
) -> tuple[np.ndarray, np.ndarray]:
    """An item's good samples (unmasked, finite values) with ``start <= t < stop``: what its
    statistics are computed from."""
    times, values = _samples({item.msid: item}, start, stop, data_root, use_store)
    vals = np.ma.getdata(values[item.msid])
    good = ~np.ma.getmaskarray(values[item.msid]) & (times < stop)
    if vals.dtype.kind == "f":
        good &= np.isfinite(vals)
    return times[good], vals[good]


def _stats_data(
    msid: str,
    start: CxoTimeLike,
    stop: CxoTimeLike,
    stat: str,
    data_root: str | Path | None,
    use_store: bool,
) -> dict[str, Any]:
    """The ``msid_data`` of a statistics `MSID` (see `mica.archive.hdr3_stats`)."""
    item = get_item(msid)
    tstart, tstop = time_range(start, stop, instant=True)

    def samples(a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
        return _good_samples(item, a, b, data_root, use_store)

    fields = hdr3_stats.read_stats(item, stat, tstart, tstop, samples, data_root, use_store)
    dtype = _unavailable(item).dtype  # the item's, for its extremes and middle samples
    columns = {}
    for values, field in zip(fields, STATS_FIELDS[stat]):
        if field in ("index", "n"):
            values = values.astype(np.int64)
        elif field in ("min", "max", "midval"):
            values = values.astype(dtype, copy=False)
        columns[_STAT_ATTRS[field]] = values
    return {
        "hdr3_msid": item.key,
        "vals": columns["means"],
        "times": (fields[0] + 0.5) * STATS_DT[stat],
        "desc": item.desc,
        "longdesc": item.longdesc,
        "unit": item.unit,
        "bits": {},
        "stat": stat,
        "columns": columns,
    }


class Msid(MSID):
    """`MSID` with masked samples removed (``filter_bad=True``), as the original's subclass.

    Parameters
    ----------
    msid : str
        Item name or key.
    start, stop : CxoTimeLike
        Time range, inclusive.
    data_root : str or Path, optional
        The ``aca0`` folder.

    Attributes
    ----------
    vals : numpy.ndarray
        Plain (unmasked) values in the item's unit; ``times`` their CXC seconds.

    Examples
    --------
    >>> from mica.archive import aca_hdr3
    >>> m = aca_hdr3.Msid("aca_temp", "2012:125:00:00", "2012:126:00:00")
    >>> type(m.vals).__name__, m.unit, isinstance(m, aca_hdr3.MSID)
    ('ndarray', 'degC', True)
    """

    def __init__(
        self,
        msid: str,
        start: CxoTimeLike,
        stop: CxoTimeLike,
        data_root: str | Path | None = None,
    ):
        super().__init__(msid, start, stop, filter_bad=True, data_root=data_root)


# --- The original's module-level names ---------------------------------------------------

#: The 8x8 header columns the original read per slot (``(name, dtype)``, as `aca_l0` gives).
ACA_DTYPE = [
    field
    for field in aca_l0.ACA_DTYPE
    if field[0] in ("TIME", "QUALITY", "IMGSIZE", "FILENAME") or field[0] in HD3_COLUMNS
]
ACA_DTYPE_NAMES = [field[0] for field in ACA_DTYPE]

SlotValue = Callable[[Any], np.ma.MaskedArray]


def two_byte_sum(byte_msids: Sequence[str], scale: float = 1) -> SlotValue:
    """A function of a slot's rows giving the signed 16-bit words of two byte columns.

    Parameters
    ----------
    byte_msids : pair of str
        The high and low byte columns (e.g. ``["HD3TLM76", "HD3TLM77"]``).
    scale : float
        Multiplies the words.

    Returns
    -------
    callable
        ``func(slot_data)`` (a structured or masked array, or a dict of columns) -> masked
        array, masked where either byte is: int16 for an integer ``scale`` (which wraps
        around as the original's did), float64 for a float.

    Examples
    --------
    >>> import numpy as np
    >>> from mica.archive import aca_hdr3
    >>> rows = {"HD3TLM76": np.array([0, 0xF0], np.uint8), "HD3TLM77": np.array([1, 15], np.uint8)}
    >>> aca_hdr3.two_byte_sum(["HD3TLM76", "HD3TLM77"])(rows).tolist()
    [1, -4081]
    """

    def func(slot_data: Any) -> np.ma.MaskedArray:
        words = s16(slot_data[byte_msids[0]], slot_data[byte_msids[1]])
        # numpy's types, as the original's int16 words times scale (on the plain data: a
        # masked array would take the scale as an int64 array)
        values = np.ma.getdata(words).astype(np.int16) * scale
        return np.ma.masked_array(values, mask=np.ma.getmaskarray(words))

    return func


def ad_temp(msids: Sequence[str]) -> SlotValue:
    """A function of a slot's rows giving the thermistor temperature (degC) of two byte
    columns, through the A/D calibration (`mica.products.hdr3_calib.ad_to_degc`).

    Counts outside the calibrated range give NaN; masked bytes give masked values.
    """

    def func(slot_data: Any) -> np.ma.MaskedArray:
        counts = two_byte_sum(msids)(slot_data)
        mask = np.ma.getmaskarray(counts)
        return np.ma.masked_array(ad_to_degc(counts.filled(16000)), mask=mask)

    return func


def _slot_value(item: Hdr3Item) -> SlotValue:
    """``HDR3_DEF[key]['value']``: the item decoded from one slot's rows (bytes it takes from
    the next slot are masked, so 32-bit items spanning two slots give their high word)."""

    def value(slot_data: Any) -> np.ma.MaskedArray:
        own = [name for slot, name in item.byte_columns if slot == item.slot]
        n = len(slot_data[own[0]])
        raw = np.ma.masked_all((n, item.nbytes), dtype=np.uint8)
        for k, (slot, name) in enumerate(item.byte_columns):
            if slot == item.slot:
                raw[:, k] = slot_data[name]
        return item.decode(raw)

    return value


def _hdr3_def() -> dict[str, dict[str, Any]]:
    out = {}
    for key, item in ITEMS.items():
        entry = {"desc": item.desc, "msid": item.msid, "longdesc": item.longdesc}
        if item.size != 2:
            entry["nbytes"] = item.size
        entry["value"] = _slot_value(item)
        out[key] = entry
    return out


#: The original's item table: key -> ``desc``, ``msid``, ``longdesc``, ``nbytes`` (items of
#: other than 2 bytes) and ``value`` (a function of one slot's 8x8 rows, as the original's);
#: every item here has a ``value`` (the original decoded 21 of the 38).
HDR3_DEF = _hdr3_def()


def confirm_msid(req_msid: str) -> str:
    """The item key (``'676'``) of a name or key; `MissingDataError` for an unknown one.

    Examples
    --------
    >>> from mica.archive import aca_hdr3
    >>> aca_hdr3.confirm_msid("ccd_temp"), aca_hdr3.confirm_msid("676")
    ('676', '676')
    """
    return get_item(req_msid).key


def slot_for_msid(msid: str) -> int:
    """The slot carrying an item's (first) bytes, from its key or name.

    Examples
    --------
    >>> from mica.archive import aca_hdr3
    >>> aca_hdr3.slot_for_msid("676"), aca_hdr3.slot_for_msid("dac")
    (6, 7)
    """
    return get_item(msid).slot
