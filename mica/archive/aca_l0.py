"""ACA level-0 image telemetry archive: file lookup and per-slot readers.

Files live in ``<archive>/aca0/<YYYY>/<DDD>/`` with the lookup table ``archfiles.db3``;
`mica update aca-l0` fills it. Every reader takes ``data_root`` (the ``aca0`` folder) and
raises `mica.errors.MissingArchiveError` when that folder holds no L0 archive; an archive
without data in the asked range gives an empty result.

Times are anything `mica.time.to_secs` takes (CXC seconds, ``'YYYY:DDD[:hh:mm:ss]'``, ISO,
`astropy.time.Time`, `datetime.datetime`, `numpy.datetime64`); ``stop`` must be after
``start``. ``slots`` and ``imgsize`` take one value or several; column names are
case-insensitive and one name may be given as a string.

Units of the columns (as in the FITS files): TIME and END_INTEG_TIME are CXC seconds (s),
INTEG seconds (s), BGDAVG, BGDRMS and IMGRAW DN (ADC counts, after IMGSCALE), TEMPCCD,
TEMPHOUS, TEMPPRIM and TEMPSEC kelvin (K) -- but degC in `get_l0_images` meta and in the
header-3 items of `mica.archive.aca_hdr3`; IMGROW0/IMGCOL0 are CCD pixel row/column of the
image's lower-left pixel; the others are counts, indices, flags and status bytes.
"""

from __future__ import annotations

import functools
import math
import operator
import warnings
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mica._lazy import astropy_table, fits
from mica.archive import msid as msid_api
from mica.archive.aca_image import ACAImage
from mica.archive.obsid_times import obsid_interval
from mica.common import computed_attributes
from mica.config import archive_root
from mica.engine.colstore import ColumnStore, serve_from_files
from mica.engine.h5chunks import one_blosc_thread
from mica.engine.index import ArchiveIndex, require_archive
from mica.engine.read import archived_fits, snapshot_read
from mica.engine.stored_blocks import ChunkedRows, DeferredColumn, as_records, decode_deferred
from mica.engine.synced import require_synced, synced_chunk_lost
from mica.engine.validate import TIME_AFTER_TSTOP, TIME_BEFORE_TSTART
from mica.errors import DamagedStoreError, InvalidArgumentError, MissingDataError
from mica.products.aca_l0 import (
    COLUMN_SIZES,
    HD3_VIEW_COLUMNS,
    L0,
    OPTIONAL_DEFAULTS,
    SLOT_COLUMNS,
    slot_dtype,
)
from mica.time import CxoTimeLike, time_range

__all__ = [
    "get_files",
    "get_slot_data",
    "get_l0_images",
    "get_aca_images",
    "obsid_times",
    "MSID",
    "MSIDset",
    "L0",
    "ACA_DTYPE",
    "ACA_DTYPE_NAMES",
    "GLBSTAT_NAMES",
    "IMGSTAT_NAMES",
]

ALL_SLOTS = list(range(8))
ALL_SIZES = [4, 6, 8]
# First row TIME is TSTART - 1.025 - INTEG/2: look this far past a query's stop for files.
_ROW_LEAD = 10.0
# What readers need of an index row: its path and partition (each column more cost a day's
# 32-row query 5 us, measured; the query selects by time span itself).
_RECORD_COLUMNS = "filename, filetime, year, doy, slot, imgsize"


def _as_list(values: int | Sequence[int] | None, default: list[int], what: str) -> list[int]:
    if values is None:
        return list(default)
    if isinstance(values, list) and all(type(v) is int and v in default for v in values):
        return list(values)  # (already checked: a reader passes its list on, three times)
    out = [_whole(v, default, what, values) for v in np.atleast_1d(np.asarray(values, object))]
    bad = [v for v in out if v not in default]
    if bad:
        raise InvalidArgumentError(f"{what} must be among {default}, got {bad}")
    return out


def _whole(value: Any, default: list[int], what: str, given: Any) -> int:
    """``value`` as an int when it is a whole number (a bool or a fraction is refused, never
    truncated into another slot or size)."""
    number = None
    if isinstance(value, (float, np.floating)):
        number = int(value) if float(value).is_integer() else None
    elif not isinstance(value, (bool, np.bool_)):
        try:
            number = operator.index(value)
        except TypeError:
            pass
    if number is None:
        raise InvalidArgumentError(f"{what} must be among {default}, got {given!r}")
    return number


def _one_slot(slot: Any) -> int:
    """The one slot a reader of a slot's rows is given (a list or None is refused: they read
    one slot, and a list's first alone would be read as if it were all of them)."""
    if slot is None or np.ndim(slot) != 0:
        raise InvalidArgumentError(
            f"slot must be one slot number among {ALL_SLOTS}, got {slot!r} "
            "(several slots: one call a slot)"
        )
    return _as_list(slot, ALL_SLOTS, "slot")[0]


def _column_list(columns: str | Sequence[str] | None, default: Sequence[str]) -> list[str]:
    """Column names as a list: one name or several, in any case (as the CLI takes them)."""
    if columns is None:
        return list(default)
    names = [columns] if isinstance(columns, str) else list(columns)
    out = [str(c).strip().upper() for c in names]
    unknown = [c for c, u in zip(names, out) if u not in SLOT_COLUMNS]
    if unknown:
        raise InvalidArgumentError(f"unknown L0 columns {unknown}; valid: {SLOT_COLUMNS}")
    return out


def _get_file_records(
    start: CxoTimeLike,
    stop: CxoTimeLike = None,
    slots: Sequence[int] | None = None,
    imgsize: Sequence[int] | None = None,
    data_root: str | Path | None = None,
    lead: float = 0.0,
    index: ArchiveIndex | None = None,
) -> list[dict[str, Any]]:
    """Index rows of files overlapping [start, stop], ordered by filetime (queried through
    ``index`` when given, e.g. inside a reader's snapshot)."""
    tstart, tstop = time_range(start, stop, instant=True)
    slots = _as_list(slots, ALL_SLOTS, "slots")
    sizes = _as_list(imgsize, ALL_SIZES, "imgsize")
    require_synced(L0.root(data_root) if index is None else index.root, ["aca-l0"], tstart, tstop)
    if index is None:
        with ArchiveIndex.open_for_reading(L0, L0.root(data_root)) as opened:
            return _get_file_records(tstart, tstop, slots, sizes, lead=lead, index=opened)
    where = (
        f"tstart >= ? AND tstart < ? AND tstop > ? "
        f"AND slot IN ({','.join('?' * len(slots))}) "
        f"AND imgsize IN ({','.join('?' * len(sizes))})"
    )
    params = [tstart - L0.max_file_span, tstop + lead, tstart, *slots, *sizes]
    return index.query(where, params, order="filetime, slot, filename", columns=_RECORD_COLUMNS)


def get_files(
    obsid: int | None = None,
    start: CxoTimeLike = None,
    stop: CxoTimeLike = None,
    slots: Sequence[int] | None = None,
    imgsize: Sequence[int] | None = None,
    db: Any = None,
    data_root: str | Path | None = None,
) -> list[str]:
    """Paths of archived L0 files for an obsid or a time range.

    Parameters
    ----------
    obsid : int, optional
        An observation: its start to stop, from the obspar archive
        (`mica.archive.obsid_times.obsid_interval`).
    start, stop : CxoTimeLike, optional
        Time range instead of ``obsid``; files overlapping it are listed.
    slots : int or sequence of int, optional
        ACA slots 0-7 (default: all).
    imgsize : int or sequence of int, optional
        Image sizes 4, 6, 8 (default: all).
    db : optional
        The original's lookup-table handle: ignored, with a DeprecationWarning (the table
        is ``data_root``'s).
    data_root : str or Path, optional
        The ``aca0`` folder (default: ``<archive>/aca0``).

    Returns
    -------
    list of str
        Absolute paths of the FITS files, ordered by file time, then slot. ``stop ==
        start`` lists the files holding that instant.

    Raises
    ------
    MissingArchiveError
        When ``data_root`` holds no L0 archive.
    MissingDataError
        For an ``obsid`` the obspar archive does not hold (the message names the update).
    TimeRangeError
        (a ValueError) ``stop`` before ``start``.
    ValueError
        For a slot or size out of range.

    Examples
    --------
    >>> from mica.archive import aca_l0
    >>> files = aca_l0.get_files(start="2012:125:00:00", stop="2012:125:06:00", slots=0, imgsize=8)
    >>> len(files) > 0, files[0].endswith("_0_img0.fits.gz")
    (True, True)
    """
    _ignore_db(db)
    if obsid is not None:
        # A missing L0 archive is the first thing to say, before resolving the obsid.
        require_archive(L0.name, L0.root(data_root))
        start, stop = obsid_interval(obsid)
    elif start is None or stop is None:
        raise InvalidArgumentError("Must supply either obsid or start and stop")
    records = _get_file_records(start, stop, slots, imgsize, data_root)
    return [str(L0.path(r, L0.root(data_root))) for r in records]


def _read_table(path: Path, root: Path) -> fits.FITS_rec:
    with archived_fits(path, root) as hdus:
        data = hdus[1].data
        data.columns  # noqa: B018  (touch columns while the file is open)
        return data


def get_slot_data(
    start: CxoTimeLike,
    stop: CxoTimeLike,
    slot: int,
    imgsize: Sequence[int] | None = None,
    db: Any = None,
    data_root: str | Path | None = None,
    columns: Sequence[str] | None = None,
    centered_8x8: bool = False,
    use_store: bool = True,
) -> np.ma.MaskedArray:
    """Rows of one slot with ``start <= TIME <= stop`` as a masked structured array.

    Columns are returned in canonical order (see ``SLOT_COLUMNS``), each masked where the
    row's image size does not carry it (TEMPCCD in 4x4, HD3TLM* outside 8x8). ``IMGRAW`` is
    a 64-vector with an NxN image in its top-left corner, or with ``centered_8x8`` an (8, 8)
    field with 6x6/4x4 images centred. Rows are not sorted or de-duplicated; ``QUALITY``
    is not filtered.

    Data come from the columnar store where its chunks match the index, else from the FITS
    files; ``use_store=False`` always reads the files (the reference path). Both give
    identical values, masks and times: a store chunk that fails its checks is read from the
    files instead, or raises `DamagedStoreError` (``MICA_STORE_DAMAGED``).

    Parameters
    ----------
    start, stop : CxoTimeLike
        Time range, inclusive (``stop == start``: the rows of that instant, usually none).
    slot : int
        ACA slot, 0-7.
    imgsize : int or sequence of int, optional
        Image sizes to read, among 4, 6, 8 (default: all).
    db : optional
        The original's lookup-table handle: ignored, with a DeprecationWarning.
    data_root : str or Path, optional
        The ``aca0`` folder (default: ``<archive>/aca0``).
    columns : str or sequence of str, optional
        Column names, any case (default: all of ``SLOT_COLUMNS``).
    centered_8x8 : bool
        IMGRAW as (8, 8) with smaller images centred (else 64 values, image top-left).
    use_store : bool
        Read the columnar store where current (False: always the FITS files).

    Returns
    -------
    numpy.ma.MaskedArray
        Structured, one row per readout. Units: TIME, END_INTEG_TIME CXC seconds (s); INTEG
        s; BGDAVG, BGDRMS, IMGRAW DN; TEMPCCD, TEMPHOUS, TEMPPRIM, TEMPSEC **K** (kelvin);
        IMGROW0, IMGCOL0 CCD pixels; IMGSIZE 4, 6 or 8; FILENAME the source file; QUALITY
        0 for good rows; the rest counts, flags and status bytes (no unit).

    Raises
    ------
    MissingArchiveError
        When ``data_root`` holds no L0 archive.
    TimeRangeError
        (a ValueError) ``stop`` before ``start``.
    ValueError
        An unknown column, a slot or size out of range.
    DamagedStoreError
        A store chunk failed its checks and ``MICA_STORE_DAMAGED=raise``.

    Examples
    --------
    >>> from mica.archive import aca_l0
    >>> data = aca_l0.get_slot_data("2012:125:00:00", "2012:125:01:00", 0, columns="TEMPCCD")
    >>> data.dtype.names, bool(230 < data["TEMPCCD"].mean() < 300)  # kelvin
    (('TEMPCCD',), True)
    >>> data = aca_l0.get_slot_data(
    ...     "2012:125:00:00", "2012:125:01:00", slot=0, imgsize=8, columns=["time", "imgraw"]
    ... )
    >>> data.dtype.names, data["IMGRAW"].shape[1:]
    (('TIME', 'IMGRAW'), (64,))
    """
    _ignore_db(db)
    slot = _one_slot(slot)
    columns = _column_list(columns, SLOT_COLUMNS)
    data, mask = _slots_data(
        start, stop, [slot], imgsize, columns, centered_8x8, data_root, use_store
    )[slot]
    return _masked(data, mask)


def _masked(data: np.ndarray, mask: np.ndarray) -> np.ma.MaskedArray:
    """The structured ``data`` (one dimension, contiguous) with its ``mask`` taken as is, as
    ``np.ma.masked_array(data, mask=mask, keep_mask=False)`` gives it (``keep_mask=False``:
    the default ORs the mask into a fresh one, field by field, which cost as much as filling
    the output).

    Made from a byte view of ``data``: a view of a structured array as a masked array first
    makes an all-False mask of its own (numpy's ``__array_finalize__``), then replaced: 60-100
    us of a 1.5 ms day's read of two columns (measured)."""
    out = data.view(np.uint8).view(np.ma.MaskedArray)
    out.dtype = data.dtype  # (a MaskedArray's dtype setter: its mask is still nomask)
    out._mask = mask
    out._sharedmask = True  # as masked_array's (copy=False): a later change unshares it
    return out


def _slots_data(
    start: CxoTimeLike,
    stop: CxoTimeLike,
    slots: list[int],
    imgsize: Sequence[int] | None,
    columns: list[str],
    centered_8x8: bool,
    data_root: str | Path | None,
    use_store: bool,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """`get_slot_data`'s rows of each of ``slots`` (read in one snapshot of the index) as
    (structured data, its mask)."""
    dtype, mask_dtype = _output_dtypes(tuple(columns), centered_8x8)
    # images decoded into the output, and numbers over many rows (`DeferredPlanes`): no
    # array of their rows beside the output
    later = [c for c in [*dtype.names, "IMGSIZE"] if c not in _READ_NOW]
    by_slot = _pieces(
        start, stop, slots, imgsize, dtype.names, data_root, use_store, ["IMGRAW"], later
    )
    out = {}
    for slot, (pieces, order) in by_slot.items():
        total = sum(p["n"] for p in pieces)
        # zeros where `_put_images` and `_put_names` write into the output (the kernel maps
        # a large one's pages on first touch), else every field of every row is written
        # (`_fill`: a day's read of two columns spent 2% setting them to zero first)
        alloc = np.zeros if _WRITTEN_IN_PART & set(dtype.names) else np.empty
        data = alloc(total, dtype=dtype)
        mask = np.zeros(total, dtype=mask_dtype)  # `_fill` sets only what is masked
        row = 0
        try:
            for piece in pieces:
                rows = slice(row, row + piece["n"])
                _fill(data[rows], mask[rows], piece, centered_8x8)
                row += piece["n"]
        except DamagedStoreError as err:  # in images decoded only now (`ChunkedRows`)
            serve_from_files(err)  # or raise: from now on this process reads its files instead
            return _slots_data(start, stop, slots, imgsize, columns, centered_8x8, data_root, True)
        out[slot] = (data, mask) if order is None else (data[order], mask[order])
    return out


@functools.lru_cache(maxsize=64)
def _output_dtypes(columns: tuple[str, ...], centered_8x8: bool) -> tuple[np.dtype, np.dtype]:
    """`get_slot_data`'s dtype of ``columns`` and its mask's, made once (20 us a call)."""
    dtype = slot_dtype(list(columns), centered_8x8)
    return dtype, np.ma.make_mask_descr(dtype)


#: output fields whose writers rely on a zeroed output (`_put_images`: the pixels outside a
#: smaller image; `_put_names`)
_WRITTEN_IN_PART = {"IMGRAW", "FILENAME"}

#: columns `_slots_data` reads at once: file names, strings (`_column_source`), images
_READ_NOW = {"FILENAME", "FILEIDX", "IMGRAW", *OPTIONAL_DEFAULTS}


def slot_columns(
    start: CxoTimeLike,
    stop: CxoTimeLike,
    slots: Sequence[int],
    columns: Sequence[str],
    imgsize: Sequence[int],
    data_root: str | Path | None = None,
    use_store: bool = True,
) -> dict[int, dict[str, np.ndarray]]:
    """Plain arrays of columns that every requested image size carries (nothing to mask),
    for rows with ``start <= TIME <= stop``, in `get_slot_data`'s row order, by slot.

    The fast path for callers such as `aca_hdr3` that need a few columns of one size.
    """
    sizes = _as_list(imgsize, ALL_SIZES, "imgsize")
    uncarried = [c for c in columns if not set(sizes) <= set(COLUMN_SIZES.get(c, ()))]
    if uncarried or "FILENAME" in columns:
        raise InvalidArgumentError(
            f"columns {uncarried or ['FILENAME']} are not plain for sizes {sizes}"
        )
    dtype = slot_dtype(list(columns))
    out: dict[int, dict[str, np.ndarray]] = {}
    for slot, (pieces, order) in _pieces(
        start, stop, slots, sizes, columns, data_root, use_store
    ).items():
        cols = {}
        for name in columns:
            parts = [np.asarray(p["arrays"][name]) for p in pieces]
            if len(parts) == 1:  # one chunk's rows (a month of header-3): no copy
                values = parts[0]
            else:
                values = np.concatenate(parts) if parts else np.zeros(0, dtype[name])
            cols[name] = values.astype(dtype[name], copy=False)
        out[slot] = cols if order is None else {k: v[order] for k, v in cols.items()}
    return out


def hd3_columns(
    start: CxoTimeLike,
    stop: CxoTimeLike,
    slots: Sequence[int],
    columns: Sequence[str],
    data_root: str | Path | None = None,
) -> dict[int, dict[str, np.ndarray]]:
    """`slot_columns` of 8x8 rows for columns of the header-3 view (``HD3_VIEW_COLUMNS``),
    read chunk by chunk: identical arrays, without an index row per file.

    The header-3 fetch's path (`aca_hdr3`): the view's partitions of the range follow from
    the slots and the time span alone, so one query finds their current chunks; only the
    files of partitions without one (or whose chunk cannot be read) are looked up in the
    index and read. Rows come partition after partition, each in file order, as
    `slot_columns` gives them; a chunk's rows of files the index query leaves out though
    rows of theirs lie in range (`_escaping`) are left out too.
    """
    slots = _as_list(slots, ALL_SLOTS, "slot")
    tstart, tstop = time_range(start, stop, instant=True)
    names = list(dict.fromkeys(["TIME", *columns]))
    if not set(names) <= set(HD3_VIEW_COLUMNS):
        return slot_columns(tstart, tstop, slots, names, [8], data_root)
    root = L0.root(data_root)
    require_synced(root, ["aca-hdr3", "aca-l0"], tstart, tstop)
    layout = L0.store_description
    # partitions of the files `_get_file_records` would list: start times in this span
    first, last = tstart - L0.max_file_span, tstop + _ROW_LEAD
    parts = {
        s: layout.view_partitions({"slot": s, "imgsize": 8}, names, first, last) for s in slots
    }
    got: dict[int, list[dict[str, np.ndarray]]] = {}

    def from_store(index: ArchiveIndex, _: list[dict[str, Any]]) -> list[dict[str, Any]]:
        got.clear()  # a retry starts again from a fresh snapshot
        store = ColumnStore(L0, index)
        current = store.current_chunks([p for ps in parts.values() for p in ps])
        synced = store.synced_alone(current) if current else set()
        leave_out = _escaping(index, slots, tstart, tstop, names) if current else {}
        for slot, slot_parts in parts.items():
            blocks = got.setdefault(slot, [])
            records = None
            for part in slot_parts:
                chunk = current.get(part)
                if chunk is not None:
                    try:
                        only = _kept_files(store, chunk, leave_out)
                        if only is None:
                            arrays = store.read_alone(chunk, names, tstart, tstop)
                        else:
                            arrays = _listed_rows(store, chunk, names, tstart, tstop, only)
                    except DamagedStoreError as err:
                        if part in synced:  # a sync's chunk: no files to read instead
                            raise synced_chunk_lost(err, "aca-hdr3", tstart, tstop) from None
                        serve_from_files(err)  # or raise; else read the files instead
                    except OSError as err:  # chunk file replaced: read the files instead,
                        if isinstance(err, FileNotFoundError) and part in synced:
                            raise  # or, for a sync's chunk (no file here), a fresh snapshot
                    else:
                        if arrays:
                            blocks.append(arrays)
                        continue
                if records is None:  # the slot's files in range, queried once
                    records = _get_file_records(
                        tstart, tstop, [slot], [8], lead=_ROW_LEAD, index=index
                    )
                for rec in records:
                    if L0.partition(rec, names) == part:
                        piece = _file_piece(rec, root, tstart, tstop)
                        if piece is not None:
                            blocks.append({n: piece["arrays"][n] for n in names})
        return []

    snapshot_read(L0, root, lambda index: [], from_store, lambda rec: None)
    dtype = slot_dtype(names)
    out = {}
    for slot in slots:
        blocks = got.get(slot, [])
        cols = {}
        for name in names:
            parts_ = [np.asarray(b[name]) for b in blocks]
            values = parts_[0] if len(parts_) == 1 else np.concatenate(parts_ or [np.zeros(0)])
            cols[name] = values.astype(dtype[name], copy=False)
        out[slot] = cols
    return out


def _kept_files(
    store: ColumnStore, chunk: dict[str, Any], leave_out: dict[str, set[str]]
) -> set[str] | None:
    """A chunk's files but those `_escaping` found in its partition (None: every file)."""
    out = leave_out.get(chunk["part"])
    return None if out is None else set(store.chunk_files(chunk)) - out


def _listed_rows(
    store: ColumnStore,
    chunk: dict[str, Any],
    names: list[str],
    tstart: float,
    tstop: float,
    files: set[str],
) -> dict[str, np.ndarray]:
    """A chunk's rows of ``names`` in [tstart, tstop] from ``files`` alone ({}: none)."""
    if not files:
        return {}
    arrays = store.read(chunk, names, tstart, tstop, files)[0]
    return {n: arrays[n] for n in names} if len(arrays.get("TIME", ())) else {}


Pieces = tuple[list[dict[str, Any]], np.ndarray | None]


def _pieces(
    start: CxoTimeLike,
    stop: CxoTimeLike,
    slots: Sequence[int],
    imgsize: Sequence[int] | None,
    names: Sequence[str],
    data_root: str | Path | None,
    use_store: bool,
    defer: Sequence[str] = (),
    later: Sequence[str] = (),
) -> dict[int, Pieces]:
    """Per slot: row blocks in the time range (store chunks, else files), and the row
    order that puts their concatenation in output order (files by start time), or None
    when it already is (the usual case: chunks hold whole partitions in file order).
    ``defer`` and ``later``: columns that may come as `ChunkedRows` and `DeferredColumn`
    (`ColumnStore.read`).

    The index is read in one snapshot (`snapshot_read`); a file removed by a concurrent
    update (a superseded revision) makes the read start again from a fresh snapshot.
    """
    slots = _as_list(slots, ALL_SLOTS, "slot")
    imgsize = None if imgsize is None else _as_list(imgsize, ALL_SIZES, "imgsize")
    tstart, tstop = time_range(start, stop, instant=True)
    root = L0.root(data_root)
    if use_store and _full_view_only(tuple(names), imgsize):
        by_chunks = _chunk_pieces(root, slots, names, tstart, tstop, defer, later)
        if by_chunks is not None:
            return by_chunks
    records, pieces = snapshot_read(
        L0,
        root,
        lambda index: _get_file_records(tstart, tstop, slots, imgsize, lead=_ROW_LEAD, index=index),
        (
            (
                lambda index, recs: _store_pieces(
                    index, recs, names, imgsize, tstart, tstop, defer, later
                )
            )
            if use_store
            else None
        ),
        lambda rec: _file_piece(rec, root, tstart, tstop),
    )
    return {
        slot: _in_order(
            [p for p in pieces if p["slot"] == slot],
            [r for r in records if r["slot"] == slot],
        )
        for slot in slots
    }


def _full_view_only(names: tuple[str, ...], imgsize: Sequence[int] | None) -> bool:
    """Whether a read of ``names`` from files of ``imgsize`` (None: every size) takes every
    file of the range, each from its full-view partition (no size left out, none served by
    the header-3 view): then the partitions follow from slots and times (`_chunk_pieces`)."""
    return (imgsize is None or set(imgsize) == set(ALL_SIZES)) and _full_view_names(names)


@functools.lru_cache(maxsize=64)
def _full_view_names(names: tuple[str, ...]) -> bool:
    """Whether the full view serves ``names`` of files of every image size."""
    stored = [n for n in names if n != "FILENAME"]
    probe = {"slot": 0, "filetime": 0}
    full = L0.store_description.views[0].key(probe)
    return all(L0.partition({**probe, "imgsize": s}, stored) == full for s in ALL_SIZES)


def _chunk_pieces(
    root: Path,
    slots: list[int],
    names: Sequence[str],
    tstart: float,
    tstop: float,
    defer: Sequence[str],
    later: Sequence[str],
) -> dict[int, Pieces] | None:
    """`_pieces` from the full view's chunks without an index row per file (a read of
    columns the full view serves, every image size: `_full_view_only`), or None when a
    chunk failed to read (damaged, replaced): then the caller reads as `_pieces` does.

    The partitions of the files `_get_file_records` lists follow from the slots and the time
    span, so one query finds their current chunks; only the files of partitions without one
    are looked up in the index (by those partitions' file times) and read. A current chunk
    holds the rows of every file its partition has in the index (any change marks it dirty),
    so its rows in range are those the files give, but for the files the index query leaves
    out though rows of theirs lie in range (`_escaping`): left out of the chunk's rows too.
    Rows come partition after partition, each in file order: pieces in output order.
    """
    view = L0.store_description.views[0]
    periods = range(
        int((tstart - L0.max_file_span) // view.period), int((tstop + _ROW_LEAD) // view.period) + 1
    )
    parts = {
        view.key({"slot": slot, "filetime": k * view.period}): (slot, k)
        for slot in slots
        for k in periods
    }
    current: dict[str, dict[str, Any]] = {}
    failed = []

    def records(index: ArchiveIndex) -> list[dict[str, Any]]:
        require_synced(index.root, ["aca-l0"], tstart, tstop)
        current.clear()  # a retry starts again from a fresh snapshot
        # Periods ending by the range's start included: their chunks' rows' last TIME says
        # whether they reach into it (usually not: `from_store` skips them unread). A query of
        # their files reaching into it instead scans every file of the look-back (10 days of
        # index rows: 0.4 ms, a twentieth of a 10-minute `get_aca_images`, measured).
        current.update(ColumnStore(L0, index).current_chunks(parts))
        missing = [sk for p, sk in parts.items() if p not in current]
        return _period_records(index, missing, view.period, tstart, tstop)

    def from_store(index: ArchiveIndex, _: list[dict[str, Any]]) -> list[dict[str, Any]]:
        store = ColumnStore(L0, index)
        leave_out = _escaping(index, slots, tstart, tstop, names)
        ask = [*names, "IMGSIZE", *(["FILEIDX"] if "FILENAME" in names else [])]
        pieces = []
        for part, chunk in current.items():
            if chunk["tstart"] is None or chunk["tstop"] < tstart or chunk["tstart"] > tstop:
                continue  # no row of the chunk in range (its rows' first and last TIME)
            only = _kept_files(store, chunk, leave_out)
            try:
                arrays, chunk_names = store.read(chunk, ask, tstart, tstop, only, defer, later)
            except DamagedStoreError as err:
                serve_from_files(err)  # or raise; else the caller reads the files instead
                failed.append(part)
                return []
            except OSError:  # chunk file replaced or removed: the caller reads again
                failed.append(part)
                return []
            slot, period = parts[part]
            # (sizes: none when no row is in range; files: the records listed are of
            # partitions without a chunk, none of these)
            piece = _piece(slot, arrays, arrays.get("IMGSIZE"), (), chunk_names)
            pieces.append({**piece, "at": period * view.period})
        return pieces

    def from_file(rec: dict[str, Any]) -> dict[str, Any] | None:
        piece = _file_piece(rec, root, tstart, tstop)
        if piece is not None:
            piece["at"] = rec["filetime"]  # within its partition's period
        return piece

    _, pieces = snapshot_read(L0, root, records, from_store, from_file)
    if failed:
        return None
    pieces.sort(key=operator.itemgetter("at"))  # stable: files of a period in index order
    return {slot: ([p for p in pieces if p["slot"] == slot and p["n"]], None) for slot in slots}


def _period_records(
    index: ArchiveIndex,
    missing: list[tuple[int, int]],
    period: float,
    tstart: float,
    tstop: float,
) -> list[dict[str, Any]]:
    """`_get_file_records` (every image size) of the files in ``missing``, (slot, period
    number) pairs of the full view: one query, by the file times of those periods."""
    if not missing:
        return []
    by_period: dict[int, list[int]] = {}
    for slot, k in missing:
        by_period.setdefault(k, []).append(slot)
    terms, params = [], []
    for k, slots in by_period.items():
        terms.append(f"(slot IN ({','.join('?' * len(slots))}) AND filetime >= ? AND filetime < ?)")
        params += [*slots, k * period, (k + 1) * period]
    where = f"tstart >= ? AND tstart < ? AND tstop > ? AND ({' OR '.join(terms)})"
    return index.query(
        where,
        [tstart - L0.max_file_span, tstop + _ROW_LEAD, tstart, *params],
        order="filetime, slot, filename",
        columns=_RECORD_COLUMNS,
    )


def _escaping(
    index: ArchiveIndex, slots: list[int], tstart: float, tstop: float, names: Sequence[str]
) -> dict[str, set[str]]:
    """Files of ``slots`` that `_get_file_records` leaves out of [tstart, tstop] although
    rows of theirs may lie in it, by the partition serving ``names`` of them (usually none).

    A file's rows lie from ``TIME_BEFORE_TSTART`` before its start to ``TIME_AFTER_TSTOP``
    after its stop (`mica.engine.validate.check_times`, at ingest): those of a file stopping
    at the range's start or up to that margin before it, of one starting `_ROW_LEAD` or more
    after its stop, and of one starting just before the look-back (``max_file_span``) may.
    One query, each term on an index of (slot, time)."""
    back = tstart - L0.max_file_span
    stopping = (tstart - TIME_AFTER_TSTOP, tstart)
    terms = [
        ("tstop >= ? AND tstop <= ?", stopping),
        ("tstart >= ? AND tstart <= ?", (tstop + _ROW_LEAD, tstop + TIME_BEFORE_TSTART)),
        ("tstart >= ? AND tstart < ?", (back - TIME_AFTER_TSTOP, back)),
    ]
    which = f"slot IN ({','.join('?' * len(slots))})"
    sql = " UNION ALL ".join(
        f"SELECT filename, filetime, slot, imgsize FROM archfiles WHERE {which} AND {term}"
        for term, _ in terms
    )
    cursor = index.conn.cursor()
    cursor.row_factory = None
    rows = cursor.execute(sql, [x for _, bounds in terms for x in (*slots, *bounds)]).fetchall()
    stored = [n for n in names if n != "FILENAME"]
    out: dict[str, set[str]] = {}
    for filename, filetime, slot, size in rows:
        rec = {"slot": slot, "filetime": filetime, "imgsize": size}
        out.setdefault(L0.partition(rec, stored), set()).add(filename)
    return out


def _in_order(
    pieces: list[dict[str, Any]], records: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], np.ndarray | None]:
    """Pieces sorted by the rank of their first file, and a row order if they interleave."""
    nonempty = [p for p in pieces if p["n"]]
    if len(nonempty) < 2:  # (one chunk's rows, the usual short read: nothing to order)
        return nonempty, None
    rank = {r["filename"]: i for i, r in enumerate(records)}

    def span(piece: dict[str, Any]) -> tuple[int, int]:
        names, fileidx = piece["names"], piece["fileidx"]
        if fileidx is None:  # a chunk read whole: rows in file order, from files in range
            ranks = [rank[n] for n in names if n in rank] or [-1]
        else:
            ranks = [rank.get(names[fileidx[0]], -1), rank.get(names[fileidx[-1]], -1)]
        return min(ranks), max(ranks)

    ordered = sorted((span(p), i) for i, p in enumerate(pieces) if p["n"])
    spans = [sp for sp, _ in ordered]
    pieces = [pieces[i] for _, i in ordered]
    if all(a[1] <= b[0] for a, b in zip(spans, spans[1:])):
        return pieces, None
    # Pieces interleave in time (the header-3 view's 8x8 rows among 4x4 rows of the full
    # view; `_store_pieces` then reads FILEIDX): order the rows by file rank, stably.
    assert all(p["fileidx"] is not None for p in pieces), "interleaved pieces need FILEIDX"
    ranks = [np.array([rank.get(n, -1) for n in p["names"]])[p["fileidx"]] for p in pieces]
    return pieces, np.argsort(np.concatenate(ranks), kind="stable")


def _time_slice(times: np.ndarray, tstart: float, tstop: float) -> slice | np.ndarray:
    if len(times) > 1 and np.any(np.diff(times) < 0):  # out-of-order rows: select by mask
        return np.flatnonzero((times >= tstart) & (times <= tstop))
    return slice(np.searchsorted(times, tstart, "left"), np.searchsorted(times, tstop, "right"))


def _file_piece(
    rec: dict[str, Any], root: Path, tstart: float, tstop: float
) -> dict[str, Any] | None:
    """Rows of one FITS file in the time range (the reference, file-scan path)."""
    data = _read_table(L0.path(rec, root), root)
    keep = _time_slice(data["TIME"], tstart, tstop)
    n = len(data["TIME"][keep])
    if n == 0:
        return None
    size = rec["imgsize"]
    arrays = {name: data[name][keep] for name in data.columns.names}
    if "IMGRAW" in arrays:
        frame = np.zeros((n, 8, 8), dtype=np.float32)
        frame[:, :size, :size] = arrays["IMGRAW"]
        arrays["IMGRAW"] = frame.reshape(n, 64)
    arrays["IMGSIZE"] = np.full(n, size)
    return _piece(
        rec["slot"], arrays, size, {rec["filename"]}, [rec["filename"]], np.zeros(n, np.intp)
    )


def _piece(
    slot: int,
    arrays: dict[str, Any],
    sizes: Any,
    files: Any,
    names: Sequence[str],
    fileidx: np.ndarray | None = None,
) -> dict[str, Any]:
    """A piece of a read (`_pieces`): one slot's rows, from a store chunk or a file.

    ``sizes``: the rows' image sizes (an array, or one size for all); ``files``: the names
    of the listed files it serves; ``names``: the file names ``fileidx`` (each row's index
    into them; None: the arrays' FILEIDX) points into.
    """
    return {
        "slot": slot,
        "arrays": arrays,
        "sizes": sizes,
        "n": len(arrays.get("TIME", ())),
        "files": files,
        "names": names,
        "fileidx": arrays.get("FILEIDX") if fileidx is None else fileidx,
    }


#: What a file's store partitions depend on: the index columns that key or select the views,
#: and its start time in periods of the largest length dividing every view's period (a file's
#: period in each view follows from it): files alike in these share their partitions.
_PARTITION_FIELDS = sorted({k for v in L0.store_description.views for k in (*v.keys, *v.only)})
_PARTITION_QUANTUM = functools.reduce(math.gcd, [int(v.period) for v in L0.store_description.views])
#: a record's ``_PARTITION_FIELDS`` and file time, in one call (a list of them a record cost
#: a warm day's read of two columns 2% more)
_partition_fields = operator.itemgetter(*_PARTITION_FIELDS, "filetime")


@one_blosc_thread  # once for its chunks' reads (each would set and restore it: 8 us)
def _store_pieces(
    index: ArchiveIndex,
    records: list[dict[str, Any]],
    names: Sequence[str],
    imgsize: Sequence[int] | None,
    tstart: float,
    tstop: float,
    defer: Sequence[str] = (),
    later: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Rows served from current store chunks, one piece per partition (the narrowest view
    holding ``names``); files of other partitions are left to the caller. Columns in
    ``defer`` may come as `ChunkedRows`, in ``later`` as `DeferredColumn` (see
    `ColumnStore.read`)."""
    store = ColumnStore(L0, index)
    by_part: dict[str, list[dict[str, Any]]] = {}
    narrow = set()
    stored = [n for n in names if n != "FILENAME"]  # names come with any chunk's FILEIDX
    seen: dict[tuple[Any, ...], tuple[str, bool]] = {}  # files of one period share theirs
    last, into = None, []  # the last record's key and its partition's records
    for rec in records:
        values = _partition_fields(rec)
        key = (*values[:-1], values[-1] // _PARTITION_QUANTUM)
        if key != last:  # (files in time order: runs of one partition)
            if key not in seen:
                part = L0.partition(rec, stored)
                seen[key] = (part, part != L0.partition(rec))
            part, narrower = seen[key]
            into = by_part.setdefault(part, [])
            narrow.add(narrower)
            last = key
        into.append(rec)
    # Per-row file indices: for FILENAME, or to merge rows of two views (see `_in_order`).
    ask = [*names, "IMGSIZE", *(["FILEIDX"] if "FILENAME" in names or len(narrow) > 1 else [])]
    # A full-view chunk holds rows of files to leave out when image sizes were picked or
    # when its 8x8 files are served by the header-3 view.
    picked = (imgsize is not None and set(imgsize) != set(ALL_SIZES)) or len(narrow) > 1
    current = store.current_chunks(by_part)
    slots = sorted({r["slot"] for r in records})
    leave_out = _escaping(index, slots, tstart, tstop, names) if current else {}
    pieces = []
    for part, recs in by_part.items():
        chunk = current.get(part)
        if chunk is None:
            continue  # missing or out of date: these files are read directly
        files = {r["filename"] for r in recs}
        # a chunk's rows of files the index query left out (`_escaping`): left out too
        only = files if (picked and part == L0.partition(recs[0])) or part in leave_out else None
        try:
            arrays, chunk_names = store.read(chunk, ask, tstart, tstop, only, defer, later)
        except DamagedStoreError as err:
            serve_from_files(err)  # or raise; else read the files instead
            continue
        except OSError:  # chunk file replaced or removed: read the files instead
            continue
        # (sizes: the header-3 view holds 8x8 rows only, without an IMGSIZE column)
        sizes = arrays.get("IMGSIZE", recs[0]["imgsize"])
        pieces.append(_piece(recs[0]["slot"], arrays, sizes, files, chunk_names))
    return pieces


def _fill(out: np.ndarray, mask: np.ndarray, piece: dict[str, Any], centered: bool) -> None:
    """Copy a piece's arrays into the output and mask rows whose image size lacks the
    column (``mask`` is all False on entry; ``out`` may hold anything but in IMGRAW and
    FILENAME, which are zeros); deferred columns (`DeferredColumn`) are decoded into their
    fields first, with the rows' image sizes if they are deferred too."""
    piece = {**piece, "sizes": _decode_deferred(out, piece)}
    masks: dict[tuple[int, ...], Any] = {}  # per set of carrying sizes, computed once
    # (field, values, mask values or None): an array of one value per row, or one value
    plan: list[tuple[str, Any, Any]] = []
    for name in out.dtype.names:
        if name == "FILENAME":
            _put_names(out[name], piece["names"], piece["fileidx"])
            continue
        if name == "IMGRAW" and name in piece["arrays"]:
            # Images first: the first write to the fresh output faults its pages in, and the
            # image copy overlaps that with decompression (see `ChunkedRows.each_chunk`).
            _put_images(out[name], mask[name], piece["arrays"][name], piece["sizes"], centered)
            continue
        values, lacks = _column_source(piece, name, out.dtype[name], masks)
        if isinstance(values, DeferredColumn):
            values = None  # decoded into the output already
        elif values is None:
            values = 0  # absent in this image size: zeros
        plan.append((name, values, lacks))
    # Row blocks, every column of a block in turn: a field written over all rows at once
    # strides through the whole output once per column (each row's cache line fetched once
    # per field); a block stays in cache while its fields are written (1.5-1.9x, measured).
    n = len(out)
    step = max(_FILL_ROWS, _FILL_BYTES // max(1, out.itemsize))
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        block, mblock = out[lo:hi], mask[lo:hi]
        for name, values, lacks in plan:
            if values is not None:
                block[name] = _rows(values, lo, hi, n)
            if lacks is not None:
                mblock[name] = _rows(lacks, lo, hi, n)


def _decode_deferred(out: np.ndarray, piece: dict[str, Any]) -> Any:
    """Decode a piece's deferred columns into their fields of ``out`` and give the rows'
    image sizes (`piece`'s ``sizes``, decoded now if deferred: into the output's IMGSIZE
    when asked, else into an array of their own)."""
    arrays, sizes = piece["arrays"], piece["sizes"]
    later = [
        (arrays[n], out[n]) for n in out.dtype.names if isinstance(arrays.get(n), DeferredColumn)
    ]
    if isinstance(sizes, DeferredColumn):
        if "IMGSIZE" in out.dtype.names:
            sizes = out["IMGSIZE"]
        else:
            later.append((sizes, np.empty(len(sizes), sizes.dtype)))
            sizes = later[-1][1]
    decode_deferred(later)
    return sizes


def _column_source(
    piece: dict[str, Any], name: str, dtype: np.dtype, masks: dict[tuple[int, ...], Any]
) -> tuple[Any, Any]:
    """(values, lacks) of column ``name`` (not FILENAME or IMGRAW) of a piece: values per
    row, one value for all rows, or None (absent in this image size: zeros); lacks per row,
    True for all rows, or None (every row carries it). ``masks`` keeps the per-row lacks of
    each set of carrying sizes, computed once per piece."""
    arrays, sizes = piece["arrays"], piece["sizes"]
    if name in arrays:
        values = arrays[name]
        if name in OPTIONAL_DEFAULTS and len(values) and _all_first(values):
            values = values[0]  # one string for all rows: no per-row decoding
        elif isinstance(values, np.ndarray) and values.dtype.kind == "S":
            values = _widen(values, dtype)
    elif name in OPTIONAL_DEFAULTS:
        values = OPTIONAL_DEFAULTS[name]
    else:
        return None, True  # absent in this file's image size
    return values, _lacking(name, sizes, masks)


def _all_first(values: Any) -> bool:
    """Whether every row of ``values`` (one dimension) equals its first: byte strings of
    an integer's width compared as those integers (the same bytes; numpy's comparison of
    strings cost 3x as much, measured)."""
    if (
        isinstance(values, np.ndarray)
        and values.dtype.kind == "S"
        and values.dtype.itemsize in (1, 2, 4, 8)
    ):
        values = values.view(f"u{values.dtype.itemsize}")
    return bool(np.all(values == values[0]))


def _widen(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """ASCII bytes (``S<k>``) as the ``U<k>`` strings of the output, by widening each byte
    to its code point: numpy's own S -> U cast decodes row by row, which made the two
    4-character columns a third of a no-image fill (measured). Others: numpy's cast."""
    width = values.dtype.itemsize
    if dtype.kind != "U" or dtype.itemsize != 4 * width or not values.flags.c_contiguous:
        return values
    raw = values.view(np.uint8).reshape(-1, width)
    if len(raw) and raw.max() >= 128:  # not ASCII: numpy's cast (and its error)
        return values
    return raw.astype(np.uint32).view(dtype).reshape(values.shape)


def _put_names(out: np.ndarray, names: Sequence[str], fileidx: np.ndarray) -> None:
    """Each row's file name, one run of rows of the same file at a time: no per-row array
    of names in between (160 bytes a row as U40: half of a no-image row, and its temporary
    cost as much as the copy)."""
    if not len(fileidx):
        return
    starts = np.flatnonzero(np.diff(fileidx)) + 1
    bounds = [0, *starts.tolist(), len(fileidx)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        out[a:b] = names[int(fileidx[a])]


#: rows per block of `_fill` at least (about 0.6 MB of output without images: within L2),
#: and bytes of output a block holds at least (rows of a few columns: fewer blocks, each a
#: call per field)
_FILL_ROWS = 8192
_FILL_BYTES = 512 << 10


def _rows(values: Any, lo: int, hi: int, n: int) -> Any:
    """Rows [lo, hi) of per-row ``values`` (length ``n``), or the one value for all rows."""
    if isinstance(values, np.ndarray) and values.ndim and len(values) == n:
        return values[lo:hi]
    return values


# _OUTSIDE[size]: the pixels of an 8x8 frame outside its top-left size x size image;
# _CENTRED_OUTSIDE[size]: outside its centred image
_OUTSIDE = np.ones((9, 8, 8), dtype=bool)
_CENTRED_OUTSIDE = np.ones((9, 8, 8), dtype=bool)
for _size in ALL_SIZES:
    _OUTSIDE[_size, :_size, :_size] = False
    _lo = (8 - _size) // 2
    _CENTRED_OUTSIDE[_size, _lo : _lo + _size, _lo : _lo + _size] = False


def _put_images(
    out: np.ndarray,
    mask: np.ndarray,
    images: np.ndarray,
    sizes: int | np.ndarray,
    centered: bool,
    picked: np.ndarray | None = None,
) -> None:
    """Copy top-left 8x8 frames (zeros outside the image, as
    `mica.products.aca_l0.table_arrays` and `_file_piece` make them) into the output (zeros
    on entry), centring 6x6/4x4 if asked, and mask the pixels outside each image (``mask``
    is all False on entry); ``picked``: the rows of ``images`` to copy, in the output's
    order (centred only; None: all)."""
    frame = out.reshape(-1, 8, 8)
    fmask = mask.reshape(-1, 8, 8)
    row_sizes = np.broadcast_to(sizes, len(out))
    if not centered:  # frames hold zeros outside the image: one copy, mask 6x6/4x4 rows only
        small = np.flatnonzero(row_sizes != 8)
        fmask[small] = _OUTSIDE[row_sizes[small]]
        if isinstance(images, ChunkedRows):  # from the decompression buffer, no copy between

            def put(values: np.ndarray, at: int) -> None:
                out[at : at + len(values)] = values.reshape(out[at : at + len(values)].shape)

            images.each_block(put)
        else:
            frame[...] = np.asarray(images).reshape(-1, 8, 8)
        return
    # Frames hold zeros outside the image (as above): a frame moved by (8 - size) // 2 rows
    # and columns, a shift of its pixels in row-major order, is the centred image. One run
    # of pixels a row (a copy of its size x size block, with each row's sizes found by
    # `np.unique`, cost twice as much, measured).
    src = np.asarray(images).reshape(-1, 64)
    flat = out.reshape(-1, 64)
    fmask[...] = _CENTRED_OUTSIDE[row_sizes]
    for size in ALL_SIZES:
        shift = (8 - size) // 2 * 9
        if np.ndim(sizes) == 0:
            if size == sizes:
                flat[:, shift:] = src[slice(None) if picked is None else picked, : 64 - shift]
            continue
        rows = np.flatnonzero(row_sizes == size)
        if len(rows):
            flat[rows, shift:] = src[rows if picked is None else picked[rows], : 64 - shift]


DEFAULT_IMAGE_META = ["TIME", "BGDAVG", "IMGSTAT", "IMGFUNC1", "IMGSIZE", "IMGSCALE", "INTEG"]
_TEMPS = ["TEMPCCD", "TEMPHOUS", "TEMPPRIM", "TEMPSEC"]


def get_l0_images(
    start: CxoTimeLike,
    stop: CxoTimeLike,
    slot: int,
    imgsize: Sequence[int] | None = None,
    columns: Sequence[str] | None = None,
    data_root: str | Path | None = None,
) -> list[ACAImage]:
    """Good-quality (QUALITY == 0) images of one slot as `ACAImage` objects.

    Parameters
    ----------
    start, stop : CxoTimeLike
        Readout times to take, ``start <= TIME <= stop``.
    slot : int
        The slot (0 to 7).
    imgsize : int or sequence of int, optional
        Only these image sizes (4, 6 and/or 8; default all).
    columns : str or sequence of str, optional
        Meta columns, any case (default ``DEFAULT_IMAGE_META``); IMGROW0 and IMGCOL0 are
        always included.
    data_root : str or Path, optional
        The ``aca0`` folder (default: ``<archive>/aca0``).

    Returns
    -------
    list of ACAImage
        One per readout, the NxN image in DN with ``meta``: TIME CXC seconds (s), INTEG s,
        BGDAVG DN, temperatures in **degC** (converted from the files' K), IMGROW0/IMGCOL0
        (``row0``/``col0``) CCD pixels, the rest as in `get_slot_data`.

    Examples
    --------
    >>> from mica.archive import aca_l0
    >>> imgs = aca_l0.get_l0_images("2012:125:00:00", "2012:125:00:10", slot=0, imgsize=8)
    >>> imgs[0].shape, sorted(imgs[0].meta)[:3]
    ((8, 8), ['BGDAVG', 'IMGCOL0', 'IMGFUNC1'])
    >>> temps = aca_l0.get_l0_images("2012:125:00:00", "2012:125:00:10", 0, columns="tempccd")
    >>> bool(-40 < temps[0].meta["TEMPCCD"] < 20)  # degC here
    True
    """
    meta_cols = [c for c in _column_list(columns or None, DEFAULT_IMAGE_META) if c != "IMGRAW"]
    meta_cols += [c for c in ("IMGROW0", "IMGCOL0") if c not in meta_cols]
    read = list(dict.fromkeys(meta_cols + ["QUALITY", "IMGRAW", "IMGSIZE"]))
    data = get_slot_data(start, stop, slot, imgsize=imgsize, columns=read, data_root=data_root)
    data = data[data["QUALITY"] == 0]
    images = []
    raw = data["IMGRAW"].filled(-9999.0)
    for i, row in enumerate(data):
        size = int(row["IMGSIZE"])
        meta = {}
        for name in meta_cols:
            if data[name].mask[i]:
                continue
            value = row[name]
            value = value.item() if hasattr(value, "item") else value
            meta[name] = value - 273.15 if name in _TEMPS else value
        images.append(ACAImage(raw[i].reshape(8, 8)[:size, :size], meta=meta))
    return images


#: GLBSTAT bit names, bit 7 first (`get_aca_images` splits the byte into these columns)
GLBSTAT_NAMES = [
    "HIGH_BGD",
    "RAM_FAIL",
    "ROM_FAIL",
    "POWER_FAIL",
    "CAL_FAIL",
    "COMM_CHECKSUM_FAIL",
    "RESET",
    "SYNTAX_ERROR",
]  # bit 7 .. bit 0
#: IMGSTAT bit names, bit 5 first
IMGSTAT_NAMES = ["SAT_PIXEL", "DEF_PIXEL", "QUAD_BOUND", "COMMON_COL", "MULTI_STAR", "ION_RAD"]


def get_aca_images(
    start: CxoTimeLike, stop: CxoTimeLike, data_root: str | Path | None = None
) -> astropy_table.Table:
    """All slots' good images in one maude-compatible Table, sorted by (TIME, IMGNUM).

    Parameters
    ----------
    start, stop : CxoTimeLike
        Time range, inclusive (``stop`` after ``start``).
    data_root : str or Path, optional
        The ``aca0`` folder (default: ``<archive>/aca0``).

    Returns
    -------
    astropy.table.Table
        One row per good readout of any slot. IMG is (8, 8) DN with smaller images centred;
        TIME, END_INTEG_TIME CXC seconds (s); INTEG s; BGDAVG, BGDRMS DN; TEMPCCD,
        TEMPHOUS, TEMPPRIM, TEMPSEC K; IMGROW0/IMGCOL0 and IMGROW0_8X8/IMGCOL0_8X8,
        IMGROW_A1/IMGCOL_A1 CCD pixels; IMGFID, IMGFUNC, IMGNUM (from the ``1`` columns);
        IMGTYPE (0: 4x4, 1: 6x6, 4: 8x8); VCDUCTR, IMG_VCDUCTR minor-frame counters; the
        status bytes split into booleans (HIGH_BGD ... SYNTAX_ERROR, SAT_PIXEL ... ION_RAD,
        COMMCNT_*, COMMPROG_REPEAT).

    Examples
    --------
    >>> from mica.archive import aca_l0
    >>> table = aca_l0.get_aca_images("2012:125:00:00", "2012:125:00:05")
    >>> table["IMG"].shape[1:], "SAT_PIXEL" in table.colnames
    ((8, 8), True)
    """
    dtype = slot_dtype(_IMAGE_COLUMNS, True)
    try:
        pieces = _pieces(start, stop, ALL_SLOTS, None, dtype.names, data_root, True, ["IMGRAW"])
        values, masks = _image_columns(pieces, dtype)
    except DamagedStoreError as err:  # in images decoded only now (`ChunkedRows`)
        serve_from_files(err)  # or raise: from now on this process reads its files instead
        return get_aca_images(start, stop, data_root)
    return _images_table(values, masks)


def _image_columns(
    by_slot: dict[int, Pieces], dtype: np.dtype
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | None]]:
    """`get_aca_images`'s good rows of every slot, sorted by (TIME, IMGNUM1), column by
    column (``dtype``'s fields, images centred) with each column's mask (None: no row lacks
    it; IMGRAW's always).

    Each column is gathered once from the pieces' arrays into its final order: a table per
    slot, vstack, a structured array filled and sorted, then split into columns cost 9
    times the read of a 10-minute range (and a sort of (TIME, IMGNUM) records 10 times a
    lexsort)."""
    pieces = [p for slot_pieces, _ in by_slot.values() for p in slot_pieces]
    # the rows of every slot in output order, as indices into the pieces' concatenation
    at, order = 0, []
    for slot_pieces, slot_order in by_slot.values():
        n = sum(p["n"] for p in slot_pieces)
        order.append(at + (np.arange(n) if slot_order is None else slot_order))
        at += n
    rows = np.concatenate(order) if order else np.zeros(0, dtype=np.intp)
    masks_of: list[dict[tuple[int, ...], Any]] = [{} for _ in pieces]

    def gathered(name: str, picked: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        field = dtype[name]
        sources = [_column_source(p, name, field, m) for p, m in zip(pieces, masks_of)]
        if sources and all(
            isinstance(part, np.ndarray) and part.dtype == field and len(part) == p["n"]
            for p, (part, _) in zip(pieces, sources)
        ):  # the usual case: every piece's rows in the output's dtype, taken in one call
            values = np.concatenate([part for part, _ in sources])[picked]
        else:
            values = stacked([part for part, _ in sources], field)[picked]
        if all(missing is None for _, missing in sources):
            return values, None
        return values, stacked([missing for _, missing in sources], np.dtype(bool))[picked]

    def stacked(parts: list[Any], kind: np.dtype) -> np.ndarray:
        """The pieces' ``parts`` one after the other (zeros for a piece without)."""
        out = np.zeros(at, dtype=kind)
        row = 0
        for piece, part in zip(pieces, parts):
            if part is not None:
                out[row : row + piece["n"]] = part
            row += piece["n"]
        return out

    records = _records_stacked(pieces)
    in_records = {field: (rows_, kind) for rows_, kind in records.values() for field in kind.names}

    def key_column(name: str, picked: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """`gathered`, from the pieces' records when they hold the column and every image
        size carries it (a field of the stacked records: no call a piece)."""
        if name in in_records and set(COLUMN_SIZES[name]) >= set(ALL_SIZES):
            rows_, kind = in_records[name]
            if kind[name] == dtype[name]:
                return as_records(rows_, kind)[name][picked], None
        return gathered(name, picked)

    quality = key_column("QUALITY", rows)[0]
    good = rows[quality == 0]
    keys = {name: key_column(name, good) for name in ("TIME", "IMGNUM1")}
    sort = np.lexsort((keys["IMGNUM1"][0], keys["TIME"][0]))  # by TIME, then IMGNUM; stable
    final = good[sort]
    values: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray | None] = {}
    taken = {}
    for rows_, kind in records.values():
        picked = as_records(np.take(rows_, final, axis=0), kind)  # (3x rows_[final], measured)
        taken.update({field: picked[field] for field in kind.names})
    lacking: dict[tuple[int, ...], np.ndarray] = {}
    sizes = taken.get("IMGSIZE")
    if sizes is None or sizes.dtype != dtype["IMGSIZE"]:
        sizes = gathered("IMGSIZE", final)[0]
    for name in dtype.names:
        if name == "QUALITY":  # 0 in every good row; the table has no such column
            continue
        if name in keys:  # gathered already: put in order
            got, lacks = keys[name]
            values[name], masks[name] = got[sort], None if lacks is None else lacks[sort]
        elif name in taken and taken[name].dtype == dtype[name]:
            values[name], masks[name] = taken[name], _lacking(name, sizes, lacking)
        elif name != "IMGRAW":
            values[name], masks[name] = gathered(name, final)
        else:
            values[name] = np.zeros(len(final), dtype=dtype[name])
            masks[name] = np.zeros(values[name].shape, dtype=bool)
    if pieces:
        raw = np.concatenate([np.asarray(p["arrays"]["IMGRAW"]) for p in pieces])
        _put_images(values["IMGRAW"], masks["IMGRAW"], raw, values["IMGSIZE"], True, final)
    return values, masks


def _records_stacked(pieces: list[dict[str, Any]]) -> dict[str, tuple[np.ndarray, np.dtype]]:
    """The records of the column groups every piece holds as records (`ColumnStore.read`:
    the store's groups read whole), each group's stacked as rows of bytes: (rows, record
    dtype); its columns' rows are taken from them in one call (a call a column of a
    10-minute `get_aca_images` cost 1.5 ms more). Empty when the pieces do not all hold the
    same groups (rows read from files)."""
    if not pieces:
        return {}

    def records(piece: dict[str, Any]) -> dict[str, np.ndarray]:
        return {
            name: values
            for name, values in piece["arrays"].items()
            if name not in _COLUMN_NAMES  # (a set lookup first: 8 pieces of 100 arrays)
            and isinstance(values, np.ndarray)
            and values.dtype.names
            and len(values) == piece["n"]
        }

    groups = [records(piece) for piece in pieces]
    kinds = {name: values.dtype for name, values in groups[0].items()}
    if any({name: values.dtype for name, values in g.items()} != kinds for g in groups):
        return {}
    out = {}
    for name, kind in kinds.items():
        rows = [
            np.ascontiguousarray(g[name]).view(np.uint8).reshape(-1, kind.itemsize) for g in groups
        ]
        out[name] = (np.concatenate(rows), kind)
    return out


#: names of columns (not of column groups) in a piece's arrays
_COLUMN_NAMES = frozenset([*SLOT_COLUMNS, "IMGSIZE", "FILEIDX"])


def _lacking(
    name: str, sizes: np.ndarray, known: dict[tuple[int, ...], np.ndarray]
) -> np.ndarray | None:
    """Per row of image size ``sizes``, whether it lacks column ``name`` (None: every
    image size carries it); ``known`` keeps the answer of each set of carrying sizes."""
    carried = COLUMN_SIZES[name]
    if set(carried) >= set(ALL_SIZES):
        return None
    if carried not in known:
        if np.ndim(sizes) == 0:  # one size for all rows
            known[carried] = np.bool_(int(sizes) not in carried)
        else:  # a comparison per carrying size: a lookup table indexed by the sizes (a
            # gather) cost a day's read of two columns 5-8x more (measured)
            lacks = sizes != carried[0]
            for size in carried[1:]:
                lacks &= sizes != size
            known[carried] = lacks
    return known[carried]


#: `get_slot_data` columns `get_aca_images` takes (the others it would drop)
_IMAGE_COLUMNS = [
    c
    for c in SLOT_COLUMNS
    if c != "FILENAME" and not (c[:-1] in ("IMGFID", "IMGNUM", "IMGFUNC") and c[-1] in "234")
]
#: `get_slot_data` columns `get_aca_images` renames, or puts at the end under other names
_IMAGE_NAMES = {"PIXTLM": "AAPIXTLM", "BGDTYP": "AABGDTYP", "IMGRAW": "IMG"}
_MOVED = {"IMGFID1": "IMGFID", "IMGFUNC1": "IMGFUNC", "IMGNUM1": "IMGNUM"}


def _images_table(
    values: dict[str, np.ndarray], masks: dict[str, np.ndarray | None]
) -> astropy_table.Table:
    """`get_aca_images`'s table (maude's columns) from the sorted good rows' columns
    (``_IMAGE_COLUMNS``, centred images) and their masks: a column is masked only where
    some row lacks it (IMG always), the status bytes are split into flags."""

    # per mask, whether some row lacks its columns: columns carried by the same image sizes
    # share their mask (`_lacking`), asked once
    lacks: dict[int, bool] = {}

    def column(name: str) -> Any:
        mask = masks[name]
        if name != "IMGRAW":  # (images: masked always)
            if mask is None:
                return values[name]
            if id(mask) not in lacks:
                lacks[id(mask)] = bool(mask.any())
            if not lacks[id(mask)]:
                return values[name]
        return np.ma.MaskedArray(values[name], mask=mask, copy=False)

    cols: dict[str, Any] = {}
    for name in values:
        if name in ("COMMCNT", "COMMPROG"):
            cols[name] = np.asarray(values[name], dtype=np.uint8) >> 2
        elif name not in _MOVED and name != "QUALITY":
            cols[_IMAGE_NAMES.get(name, name)] = column(name)
    cols.update({new: column(old) for old, new in _MOVED.items()})
    size = values["IMGSIZE"]
    is6, is4 = size == 6, size == 4
    # (nested where: np.select's same int64 values cost 5x as much, measured)
    a1_shift = np.where(is6, 1, 0)
    corner_shift = np.where(is6, 1, np.where(is4, 2, 0))
    for axis in ("ROW", "COL"):
        base = values[f"IMG{axis}0"].astype(np.int16)
        cols[f"IMG{axis}_A1"] = base + a1_shift
        cols[f"IMG{axis}0_8X8"] = base - corner_shift
    cols["IMGTYPE"] = np.where(size == 8, 4, np.where(is6, 1, 0))
    cols["VCDUCTR"] = values["MJF"].astype(np.int64) * 128 + values["MNF"]
    cols["IMG_VCDUCTR"] = cols["VCDUCTR"].copy()
    # each status byte's bits, bit 7 first, as rows of one array: a row a flag (three
    # calls a flag cost 2.5x as much, measured)
    glb = _bit_rows(values["GLBSTAT"])
    cols.update(zip(GLBSTAT_NAMES, glb))
    imgstat = _bit_rows(values["IMGSTAT"])
    cols.update(zip(IMGSTAT_NAMES, imgstat[2:]))  # bits 5 .. 0
    commcnt = np.asarray(values["COMMCNT"], dtype=np.uint8)
    cols["COMMCNT_CHECKSUM_FAIL"] = commcnt & 1 == 1
    cols["COMMCNT_SYNTAX_ERROR"] = (commcnt >> 1) & 1 == 1
    cols["COMMPROG_REPEAT"] = np.asarray(values["COMMPROG"], dtype=np.uint8) & 3
    return _table_of(cols)


def _bit_rows(values: np.ndarray) -> np.ndarray:
    """The bits of byte values, bit 7 first: (8, n) booleans, each row contiguous."""
    bytes_ = np.asarray(values, dtype=np.uint8)
    # (the bytes unpacked as one run: along an axis of one byte a row cost twice as much)
    return np.unpackbits(bytes_).view(bool).reshape(-1, 8).T.copy()


def _table_of(arrays: dict[str, np.ndarray]) -> astropy_table.Table:
    """The table ``Table(list(arrays.values()), names=list(arrays), copy=False)`` gives
    (a `MaskedColumn` for each masked array, a `Column` for the others, no units, formats,
    descriptions or meta; ``fill_value`` the column's default), made without copying.

    Each column is the array viewed as its column class with the attributes astropy's own
    view gives it (`_column_attributes`), put in place at once: astropy's view sets them one
    by one through its ``__setattr__`` and `Table._make_table_from_cols` sets each one's
    table the same way (13 us a column, 34 a masked one, against 2 and 15 here; measured);
    its constructor converts each array through generic checks besides (mixins, its first
    element, the column made twice for a masked array): 2.7 ms for `get_aca_images`'s 62
    columns of 10 minutes. tests/archive/test_speed_paths.py compares the table with the
    constructor's, column by column and attribute by attribute."""
    table_cls = astropy_table.Table
    table = table_cls()
    attributes = _column_attributes()
    if attributes is None:  # an astropy whose columns hold other attributes: its own view
        return _table_viewed(table, arrays)
    parent = weakref.ref(table)
    columns = []
    for name, values in arrays.items():
        if isinstance(values, np.ma.MaskedArray):
            # numpy's own view makes the mask's view and the masked array's attributes
            column = np.ma.MaskedArray.view(values, _BareMasked)
            column.__class__ = table_cls.MaskedColumn
            column.__dict__.update(attributes, indices=[], _name=name, _parent_table=parent)
            column._fill_value = None  # the dtype's default, as the constructor sets it
            np.ma.MaskedArray.set_fill_value(column, None)
        else:
            column = values.view(_Bare)
            column.__class__ = table_cls.Column
            column.__dict__.update(attributes, indices=[], _name=name, _parent_table=parent)
        columns.append(column)
    table.columns = table.TableColumns(zip(arrays, columns))
    return table


class _Bare(np.ndarray):
    """An array viewed without a column's set-up (`_table_of` makes it a `Column`)."""


class _BareMasked(np.ma.MaskedArray):
    """A masked array viewed without a column's set-up (made a `MaskedColumn`)."""


#: the attributes `_table_of` gives each column (it renews ``indices``, ``_name`` and
#: ``_parent_table``); the others must be None to be shared
_COLUMN_ATTRIBUTES = {"_parent_table", "indices", "_name", "_unit", "_format", "description"}


@functools.cache
def _column_attributes() -> dict[str, Any] | None:
    """The attributes astropy's view of an array as a `Column` gives it (a `MaskedColumn`
    holds the same besides the masked array's), learnt from one such view; None when they
    are not those `_table_of` knows how to set (another astropy)."""
    column = np.zeros(0).view(astropy_table.Column)
    attributes = dict(column.__dict__)
    if set(attributes) != _COLUMN_ATTRIBUTES or attributes["indices"] != []:
        return None
    if any(v is not None for k, v in attributes.items() if k != "indices"):
        return None
    return attributes


def _table_viewed(table: astropy_table.Table, arrays: dict[str, np.ndarray]) -> Any:
    """`_table_of`'s table through astropy's own views and `Table._make_table_from_cols`."""
    table_cls = type(table)
    columns = []
    for name, values in arrays.items():
        masked = isinstance(values, np.ma.MaskedArray)
        column = values.view(table_cls.MaskedColumn if masked else table_cls.Column)
        column._name = name
        if masked:
            column.fill_value = None  # the column's default, as the constructor sets it
        columns.append(column)
    table_cls._make_table_from_cols(table, columns)
    return table


#: Units of the L0 columns as `get_slot_data` returns them (the FITS TUNITn); the other
#: columns are counts, flags, indices or status bits (no unit). Temperatures are in K here;
#: `get_l0_images` meta and the header-3 items give degC.
UNITS = {
    "TIME": "s",
    "END_INTEG_TIME": "s",
    "INTEG": "s",
    "BGDAVG": "DN",
    "BGDRMS": "DN",
    "IMGRAW": "DN",
    "TEMPCCD": "K",
    "TEMPHOUS": "K",
    "TEMPPRIM": "K",
    "TEMPSEC": "K",
}


class MSID(msid_api.MSID):
    """One L0 column of one slot over a time range, from its 8x8 rows, as a pseudo-MSID.

    Parameters
    ----------
    msid : str
        An L0 column name (any case), e.g. ``"TEMPCCD"`` or ``"bgdavg"``.
    slot : int
        ACA slot, 0-7.
    start, stop : CxoTimeLike
        Time range (``start <= TIME <= stop``); any form `mica.time.to_secs` accepts.
    data_root : str or Path, optional
        The ``aca0`` folder (default: ``<archive>/aca0``).

    Attributes
    ----------
    vals : numpy.ma.MaskedArray
        The column's values in its L0 unit (``unit``: TEMPCCD in K, BGDAVG in DN, ...).
    times : numpy.ndarray
        Row TIME, CXC seconds (s).
    bads : numpy.ndarray
        bool, True where a value is masked.
    slot : int
        The slot.

    Examples
    --------
    >>> from mica.archive import aca_l0
    >>> m = aca_l0.MSID("TEMPCCD", 0, "2012:125:00:00:00", "2012:125:01:00:00")
    >>> m.unit, m.times.dtype.name
    ('K', 'float64')
    >>> len(m) == len(m.vals) == len(m.bads)
    True
    """

    def __init__(
        self,
        msid: str,
        slot: int,
        start: CxoTimeLike,
        stop: CxoTimeLike,
        data_root: str | Path | None = None,
    ):
        name = msid.upper()
        if name not in SLOT_COLUMNS or name in ("FILENAME",):
            raise MissingDataError(f"MSID {msid!r} is not an L0 column; valid: {SLOT_COLUMNS}")
        tstart, tstop = time_range(start, stop, instant=True)
        slot = _one_slot(slot)
        data = get_slot_data(
            tstart,
            tstop,
            slot,
            imgsize=[8],
            columns=list(dict.fromkeys(["TIME", name])),
            data_root=data_root,
        )
        super().__init__(
            msid,
            data[name],
            np.asarray(data["TIME"]),
            unit=UNITS.get(name, ""),
            desc=f"L0 {name} of slot {slot} (8x8 rows)",
            tstart=tstart,
            tstop=tstop,
        )
        self.slot = slot


class MSIDset(msid_api.MSIDset):
    """Several L0 columns of one slot: name -> `MSID`.

    Examples
    --------
    >>> from mica.archive import aca_l0
    >>> s = aca_l0.MSIDset(["TEMPCCD", "BGDAVG"], "2012:125:00:00", "2012:125:01:00", slot=0)
    >>> [(k, m.unit) for k, m in s.items()]
    [('TEMPCCD', 'K'), ('BGDAVG', 'DN')]
    >>> s.interpolate(dt=60.0) is s and len(s["TEMPCCD"]) == len(s["BGDAVG"]) == len(s.times)
    True
    """

    def __init__(
        self,
        msids: str | Sequence[str],
        start: CxoTimeLike,
        stop: CxoTimeLike,
        slot: int,
        data_root: str | Path | None = None,
    ):
        super().__init__()
        self.tstart, self.tstop = time_range(start, stop, instant=True)
        for msid in [msids] if isinstance(msids, str) else msids:
            self[msid] = MSID(msid, slot, self.tstart, self.tstop, data_root=data_root)


# --- The original's module-level names ---------------------------------------------------

#: ``(name, dtype[, shape])`` of every column of `get_slot_data`, in its order (the
#: original's constant; here the dtypes it returns: unsigned columns are ``uint16``).
ACA_DTYPE = tuple(tuple(field) for field in slot_dtype(SLOT_COLUMNS).descr)
ACA_DTYPE_NAMES = tuple(SLOT_COLUMNS)


def _config() -> dict[str, Any]:
    """The original's ``CONFIG`` keys, with this archive's folders (read at each access)."""
    root = archive_root()
    return {
        "data_root": str(L0.root(None)),
        "temp_root": str(root / "temp"),
        "days_at_once": 30.0,
        "sql_def": "archfiles_aca_l0_def.sql",
        "cda_table": "cda_aca0.h5",
    }


__getattr__ = computed_attributes(__name__, {"CONFIG": _config})


def _ignore_db(db: Any) -> None:
    """The original's ``db`` handle: the lookup table is always ``data_root``'s here."""
    if db is not None:
        warnings.warn(
            "db= is ignored: the lookup table is the one in data_root (the aca0 folder)",
            DeprecationWarning,
            stacklevel=3,
        )


def obsid_times(obsid: int, data_root: str | Path | None = None) -> tuple[float, float]:
    """(tstart, tstop) in CXC seconds of an observation, as `get_files` takes it.

    The original asked kadi's dwells; here the archived obspars
    (`mica.archive.obsid_times.obsid_interval`).

    Parameters
    ----------
    obsid : int
        Observation id.
    data_root : str or Path, optional
        The ``aca0`` folder: the obspars are those of the same archive (its ``obspar``
        folder beside it).

    Examples
    --------
    >>> from mica.archive import aca_l0
    >>> [round(t) for t in aca_l0.obsid_times(10369)]
    [452486958, 452518702]
    """
    return obsid_interval(obsid, L0.root(data_root).parent / "obspar")
