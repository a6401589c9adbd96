"""ACA level-0 image telemetry archive: file lookup and per-slot readers.

Files live in ``<archive>/aca0/<YYYY>/<DDD>/`` with the lookup table ``archfiles.db3``;
`mica update aca-l0` fills it. Every reader takes ``data_root`` (the ``aca0`` folder).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack

from mica.archive.aca_image import ACAImage
from mica.archive.l0_format import (
    L0,
    OPTIONAL_DEFAULTS,
    SLOT_COLUMNS,
    slot_dtype,
)
from mica.archive.obsid_times import obsid_interval
from mica.engine.index import ArchiveIndex
from mica.time import CxoTimeLike, to_date, to_secs

__all__ = ["get_files", "get_slot_data", "get_l0_images", "get_aca_images", "MSID", "MSIDset",
           "L0"]

ALL_SLOTS = list(range(8))
ALL_SIZES = [4, 6, 8]
# First row TIME is TSTART - 1.025 - INTEG/2: look this far past a query's stop for files.
_ROW_LEAD = 10.0


def _as_list(values: int | Sequence[int] | None, default: list[int], what: str) -> list[int]:
    if values is None:
        return list(default)
    out = [int(v) for v in np.atleast_1d(values)]
    bad = [v for v in out if v not in default]
    if bad:
        raise ValueError(f"{what} must be among {default}, got {bad}")
    return out


def _get_file_records(start: CxoTimeLike, stop: CxoTimeLike = None,
                      slots: Sequence[int] | None = None, imgsize: Sequence[int] | None = None,
                      data_root: str | Path | None = None, lead: float = 0.0
                      ) -> list[dict[str, Any]]:
    """Index rows of files overlapping [start, stop], ordered by filetime."""
    tstart, tstop = to_secs(start), to_secs(stop)
    slots = _as_list(slots, ALL_SLOTS, "slots")
    sizes = _as_list(imgsize, ALL_SIZES, "imgsize")
    index = ArchiveIndex.open_for_reading(L0, L0.root(data_root))
    if index is None:
        return []
    with index:
        where = (f"tstart >= ? AND tstart < ? AND tstop > ? "
                 f"AND slot IN ({','.join('?' * len(slots))}) "
                 f"AND imgsize IN ({','.join('?' * len(sizes))})")
        params = [tstart - L0.max_file_span, tstop + lead, tstart, *slots, *sizes]
        return index.query(where, params, order="filetime, slot")


def get_files(obsid: int | None = None, start: CxoTimeLike = None, stop: CxoTimeLike = None,
              slots: Sequence[int] | None = None, imgsize: Sequence[int] | None = None,
              data_root: str | Path | None = None) -> list[str]:
    """Paths of archived L0 files for an obsid or a time range (slots 0-7, sizes 4/6/8).

    With ``obsid`` the interval is the observation's start to stop.
    """
    if obsid is not None:
        start, stop = obsid_interval(obsid)
    elif start is None or stop is None:
        raise TypeError("Must supply either obsid or start and stop")
    records = _get_file_records(start, stop, slots, imgsize, data_root)
    return [str(L0.path(r, L0.root(data_root))) for r in records]


def _read_table(path: Path) -> fits.FITS_rec:
    with fits.open(path, memmap=False) as hdus:
        data = hdus[1].data
        data.columns  # noqa: B018  (touch columns while the file is open)
        return data


def _empty(dtype: np.dtype) -> np.ma.MaskedArray:
    return np.ma.masked_array(np.zeros(0, dtype=dtype), mask=np.ones(0, dtype=np.ma.make_mask_descr(dtype)))


def get_slot_data(start: CxoTimeLike, stop: CxoTimeLike, slot: int,
                  imgsize: Sequence[int] | None = None, data_root: str | Path | None = None,
                  columns: Sequence[str] | None = None, centered_8x8: bool = False
                  ) -> np.ma.MaskedArray:
    """Rows of one slot with ``start <= TIME <= stop`` as a masked structured array.

    Columns are returned in canonical order (see ``SLOT_COLUMNS``), each masked where the
    row's image size does not carry it (TEMPCCD in 4x4, HD3TLM* outside 8x8). ``IMGRAW`` is
    a 64-vector with an NxN image in its top-left corner, or with ``centered_8x8`` an (8, 8)
    field with 6x6/4x4 images centred. Rows are not sorted or de-duplicated; ``QUALITY``
    is not filtered.
    """
    columns = list(SLOT_COLUMNS if columns is None else columns)
    unknown = [c for c in columns if c not in SLOT_COLUMNS]
    if unknown:
        raise ValueError(f"unknown L0 columns {unknown}; valid: {SLOT_COLUMNS}")
    slot = _as_list(slot, ALL_SLOTS, "slot")[0]
    dtype = slot_dtype(columns, centered_8x8)
    tstart, tstop = to_secs(start), to_secs(stop)
    root = L0.root(data_root)
    records = _get_file_records(tstart, tstop, [slot], imgsize, data_root, lead=_ROW_LEAD)
    pieces = []
    for rec in records:
        data = _read_table(L0.path(rec, root))
        times = data["TIME"]
        i0, i1 = np.searchsorted(times, [tstart, tstop], side="left")[0], None
        i1 = np.searchsorted(times, tstop, side="right")
        if np.any(np.diff(times) < 0):  # out-of-order rows: fall back to a mask
            keep = np.flatnonzero((times >= tstart) & (times <= tstop))
        else:
            keep = slice(i0, i1)
        n = len(times[keep])
        if n:
            pieces.append((rec, data, keep, n))
    total = sum(p[3] for p in pieces)
    if total == 0:
        return _empty(dtype)
    out = np.zeros(total, dtype=dtype)
    mask = np.ones(total, dtype=np.ma.make_mask_descr(dtype))
    row = 0
    for rec, data, keep, n in pieces:
        size = rec["imgsize"]
        names = set(data.columns.names)
        dest = slice(row, row + n)
        for name in dtype.names:
            if name == "IMGSIZE":
                out[name][dest] = size
            elif name == "FILENAME":
                out[name][dest] = rec["filename"]
            elif name in names:
                values = data[name][keep]
                if name == "IMGRAW":
                    _put_image(out[name][dest], mask[name][dest], values, size, centered_8x8)
                    continue
                out[name][dest] = values
            elif name in OPTIONAL_DEFAULTS:
                out[name][dest] = OPTIONAL_DEFAULTS[name]
            else:
                continue  # absent in this image size: stays masked
            mask[name][dest] = False
        row += n
    return np.ma.masked_array(out, mask=mask)


def _put_image(out: np.ndarray, mask: np.ndarray, images: np.ndarray, size: int,
               centered: bool) -> None:
    """Copy NxN images into 8x8 frames (top-left, or centred) and unmask those pixels."""
    images = np.asarray(images, dtype=np.float32).reshape(-1, size, size)
    frame = out.reshape(-1, 8, 8)
    fmask = mask.reshape(-1, 8, 8)
    lo = (8 - size) // 2 if centered else 0
    frame[:, lo:lo + size, lo:lo + size] = images
    fmask[:, lo:lo + size, lo:lo + size] = False


DEFAULT_IMAGE_META = ["TIME", "BGDAVG", "IMGSTAT", "IMGFUNC1", "IMGSIZE", "IMGSCALE", "INTEG"]
_TEMPS = ["TEMPCCD", "TEMPHOUS", "TEMPPRIM", "TEMPSEC"]


def get_l0_images(start: CxoTimeLike, stop: CxoTimeLike, slot: int,
                  imgsize: Sequence[int] | None = None, columns: Sequence[str] | None = None,
                  data_root: str | Path | None = None) -> list[ACAImage]:
    """Good-quality (QUALITY == 0) images of one slot as `ACAImage` objects.

    ``columns`` are the meta columns (default ``DEFAULT_IMAGE_META``); IMGROW0 and IMGCOL0
    are always included. Temperatures in meta are converted to degC.
    """
    meta_cols = [c for c in (columns or DEFAULT_IMAGE_META) if c != "IMGRAW"]
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


_GLBSTAT_BITS = ["HIGH_BGD", "RAM_FAIL", "ROM_FAIL", "POWER_FAIL", "CAL_FAIL",
                 "COMM_CHECKSUM_FAIL", "RESET", "SYNTAX_ERROR"]  # bit 7 .. bit 0
_IMGSTAT_BITS = ["SAT_PIXEL", "DEF_PIXEL", "QUAD_BOUND", "COMMON_COL", "MULTI_STAR", "ION_RAD"]


def get_aca_images(start: CxoTimeLike, stop: CxoTimeLike,
                   data_root: str | Path | None = None) -> Table:
    """All slots' good images in one maude-compatible Table, sorted by (TIME, IMGNUM)."""
    tables = []
    for slot in ALL_SLOTS:
        data = get_slot_data(start, stop, slot, centered_8x8=True, data_root=data_root)
        data = data[data["QUALITY"] == 0]
        tables.append(Table(data))
    table = vstack(tables) if tables else Table()
    for name in table.colnames:
        col = table[name]
        if name != "IMGRAW" and hasattr(col, "mask") and not np.any(col.mask):
            table[name] = np.asarray(col)
    for base in ("IMGFID", "IMGFUNC", "IMGNUM"):
        table[base] = table[f"{base}1"]
        for k in range(1, 5):
            del table[f"{base}{k}"]
    if len(table):
        table.sort(["TIME", "IMGNUM"])
    size = np.asarray(table["IMGSIZE"])
    a1_shift = np.where(size == 6, 1, 0)
    corner_shift = np.select([size == 6, size == 4], [1, 2], 0)
    for axis in ("ROW", "COL"):
        base = np.asarray(table[f"IMG{axis}0"]).astype(np.int16)
        table[f"IMG{axis}_A1"] = base + a1_shift
        table[f"IMG{axis}0_8X8"] = base - corner_shift
    table["IMGTYPE"] = np.select([size == 8, size == 6], [4, 1], 0)
    table.rename_column("IMGRAW", "IMG")
    table.rename_column("BGDTYP", "AABGDTYP")
    table.rename_column("PIXTLM", "AAPIXTLM")
    del table["FILENAME"], table["QUALITY"]
    table["VCDUCTR"] = np.asarray(table["MJF"], dtype=np.int64) * 128 + np.asarray(table["MNF"])
    table["IMG_VCDUCTR"] = table["VCDUCTR"]
    glb = np.asarray(table["GLBSTAT"], dtype=np.uint8)
    for bit, name in zip(range(7, -1, -1), _GLBSTAT_BITS):
        table[name] = (glb >> bit) & 1 == 1
    imgstat = np.asarray(table["IMGSTAT"], dtype=np.uint8)
    for bit, name in zip(range(5, -1, -1), _IMGSTAT_BITS):
        table[name] = (imgstat >> bit) & 1 == 1
    commcnt = np.asarray(table["COMMCNT"], dtype=np.uint8)
    table["COMMCNT"] = commcnt >> 2
    table["COMMCNT_CHECKSUM_FAIL"] = commcnt & 1 == 1
    table["COMMCNT_SYNTAX_ERROR"] = (commcnt >> 1) & 1 == 1
    commprog = np.asarray(table["COMMPROG"], dtype=np.uint8)
    table["COMMPROG"] = commprog >> 2
    table["COMMPROG_REPEAT"] = commprog & 3
    return table


class MSID:
    """One L0 column of one slot over a time range, from 8x8 data (``vals``, ``times``)."""

    def __init__(self, msid: str, slot: int, start: CxoTimeLike, stop: CxoTimeLike,
                 data_root: str | Path | None = None):
        name = msid.upper()
        if name not in SLOT_COLUMNS or name in ("FILENAME",):
            raise ValueError(f"MSID {msid!r} is not an L0 column; valid: {SLOT_COLUMNS}")
        self.msid, self.slot = msid, slot
        self.tstart, self.tstop = to_secs(start), to_secs(stop)
        self.datestart, self.datestop = to_date(self.tstart), to_date(self.tstop)
        data = get_slot_data(self.tstart, self.tstop, slot, imgsize=[8],
                             columns=list(dict.fromkeys(["TIME", name])), data_root=data_root)
        self.vals = data[name]
        self.times = np.asarray(data["TIME"])


class MSIDset(dict):
    """Several L0 columns of one slot: name -> `MSID` (the original forgot the slot)."""

    def __init__(self, msids: Sequence[str], start: CxoTimeLike, stop: CxoTimeLike,
                 slot: int, data_root: str | Path | None = None):
        super().__init__()
        for msid in msids:
            self[msid] = MSID(msid, slot, start, stop, data_root=data_root)
