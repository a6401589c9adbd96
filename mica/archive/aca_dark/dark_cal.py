"""ACA dark-current calibrations in the archive: ids, maps and properties.

Layout: ``<data_root>/<YYYYDOY>/image.fits`` (1024x1024 float32 e-/s in the primary HDU) and
``properties.json``; ``data_root`` defaults to ``mica.config.archive_root() / 'aca_dark'``,
evaluated at every call. `mica update aca-dark` fills it (`mica.archive.aca_dark.update`);
the folder format (names, image shape, ids) is the product's, `mica.archive.aca_dark.product`.

Where this differs from the original mica, see the documentation's migration notes.

Scaling to ``t_ccd_ref`` still uses the global factor (`dark_temp_scale`), as the original
did; `dark_temp_scale_img` is the per-pixel 2023 model for callers that want it.
"""

from __future__ import annotations

import functools
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from astropy.table import Column, MaskedColumn, Table

from mica.archive.aca_dark.product import (
    DARK_ID_RE,
    IMAGE_NAME,
    IMAGE_SHAPE,
    LAYOUT,
    PROPS_NAME,
    dark_id_to_date,
    date_to_dark_id,
    digests_lost,
    header_length,
)
from mica.archive.aca_image import ACAImage
from mica.config import archive_root
from mica.engine.digests import folder_file_problem
from mica.engine.index import require_archive
from mica.engine.synced import is_synced, require_synced
from mica.errors import DamagedFileError, InvalidArgumentError, MissingDataError, TimeRangeError
from mica.time import CxoTimeLike, to_date, to_secs

from . import file_defs
from .temp_scale import DARK_SCALE_4C, dark_temp_scale, dark_temp_scale_img

__all__ = [
    "DARK_CAL",
    "DARK_SCALE_4C",
    "IMAGE_SHAPE",
    "MICA_FILES",
    "MissingDataError",
    "dark_cals_root",
    "dark_id_to_date",
    "dark_temp_scale",
    "dark_temp_scale_img",
    "date_to_dark_id",
    "get_dark_cal_dirs",
    "get_dark_cal_id",
    "get_dark_cal_ids",
    "get_dark_cal_image",
    "get_dark_cal_props",
    "get_dark_cal_props_table",
    "read_dark_image",
]

_SELECTS = ("before", "after", "nearest")
#: before any calibration
_FIRST_DAY = "1999:001:12:00:00"


def dark_cals_root(data_root: str | os.PathLike | None = None) -> Path:
    """The calibrations folder: ``data_root`` itself, else ``<archive>/aca_dark``.

    Parameters
    ----------
    data_root : str or Path, optional
        The calibrations folder.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> from mica.archive.aca_dark import dark_cal
    >>> dark_cal.dark_cals_root()
    PosixPath('.../aca_dark')
    """
    if data_root is not None:
        return Path(data_root).expanduser()
    return archive_root() / "aca_dark"


def _root(dark_cals_dir: str | os.PathLike | None, data_root: str | os.PathLike | None) -> Path:
    if dark_cals_dir is not None and data_root is not None:
        if Path(dark_cals_dir) != Path(data_root):
            raise InvalidArgumentError(
                "give dark_cals_dir or data_root (the same folder), not both"
            )
    return dark_cals_root(data_root if data_root is not None else dark_cals_dir)


# ---------------------------------------------------------------------------------------
# Ids and dates
def _is_dark_id(value: Any) -> bool:
    return isinstance(value, (str, np.str_)) and bool(DARK_ID_RE.match(str(value)))


def _dates_as_secs(date: Any) -> Any:
    """CXC seconds of dates, where a 7-digit id string means 00:00 of its day."""
    if np.ndim(date) == 0:
        return to_secs(dark_id_to_date(date) if _is_dark_id(date) else date)
    values = [dark_id_to_date(d) if _is_dark_id(d) else d for d in np.asarray(date).ravel()]
    return np.asarray(to_secs(np.array(values)), dtype=np.float64).reshape(np.shape(date))


# ---------------------------------------------------------------------------------------
# Listing (never cached: a running process must see calibrations added since its start)
def get_dark_cal_dirs(
    dark_cals_dir: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None
) -> OrderedDict[str, str]:
    """Every archived calibration: id -> absolute folder, sorted by id.

    Only folders named ``^[12]\\d{6}$`` count: an update builds a calibration under a
    hidden temporary name and renames it into place once whole. An archive an update ran
    on but found nothing for gives an empty dict.

    Parameters
    ----------
    dark_cals_dir : str or Path, optional
        The calibrations folder (the original's name for ``data_root``).
    data_root : str or Path, optional
        The calibrations folder (default ``$MICA_ARCHIVE/aca_dark``).

    Returns
    -------
    collections.OrderedDict
        ``'YYYYDOY'`` -> folder.

    Raises
    ------
    MissingArchiveError
        When the folder holds no dark archive (neither calibrations nor an update's lock).

    Examples
    --------
    >>> from mica.archive.aca_dark import dark_cal
    >>> dirs = dark_cal.get_dark_cal_dirs()
    >>> list(dirs), dirs['2012131']
    (['2012131'], '.../aca_dark/2012131')
    """
    root = require_archive("aca-dark", _root(dark_cals_dir, data_root), _holds_calibrations)
    entries = _calibration_entries(root)
    entries.sort(key=lambda e: e.name)
    return OrderedDict((e.name, os.path.abspath(e.path)) for e in entries)


def _calibration_entries(root: Path) -> list[os.DirEntry]:
    return [e for e in os.scandir(root) if DARK_ID_RE.match(e.name) and e.is_dir()]


def _holds_calibrations(root: Path) -> bool:
    """Whether a folder holds a calibration (a dark archive written without the updater's
    lock file, e.g. copied by hand)."""
    return bool(_calibration_entries(root))


def get_dark_cal_ids(
    dark_cals_dir: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None
) -> OrderedDict[str, str]:
    """Every archived calibration: date -> id, sorted.

    Parameters
    ----------
    dark_cals_dir : str or Path, optional
        The calibrations folder (the original's name for ``data_root``).
    data_root : str or Path, optional
        The calibrations folder (default ``$MICA_ARCHIVE/aca_dark``).

    Returns
    -------
    collections.OrderedDict
        ``'YYYY:DOY:00:00:00.000'`` -> ``'YYYYDOY'``.

    Examples
    --------
    >>> from mica.archive.aca_dark import dark_cal
    >>> dict(dark_cal.get_dark_cal_ids())
    {'2012:131:00:00:00.000': '2012131'}
    """
    ids = list(get_dark_cal_dirs(dark_cals_dir, data_root))
    return OrderedDict((dark_id_to_date(i) + ":00:00:00.000", i) for i in ids)


def _id_list(dark_cal_ids: Any, data_root: str | os.PathLike | None) -> list[str]:
    if dark_cal_ids is None:
        return list(get_dark_cal_dirs(data_root=data_root))
    values = dark_cal_ids.values() if isinstance(dark_cal_ids, dict) else dark_cal_ids
    return sorted(str(v) for v in values)


def get_dark_cal_id(
    date: Any,
    select: str = "before",
    dark_cal_ids: Any = None,
    data_root: str | os.PathLike | None = None,
) -> Any:
    """Id of the calibration for ``date``.

    An existing id on the date's day wins whatever ``select``; otherwise the day starts
    (00:00) of the ids are compared with the date: ``before`` = the last before it,
    ``after`` = the first after it, ``nearest`` = the closest.

    Parameters
    ----------
    date : CxoTimeLike or str
        A date (CXC seconds, ``YYYY:DOY...``, ISO, ``Time``), or a calibration id
        (``'YYYYDOY'``), which must then exist.
    select : {'before', 'after', 'nearest'}, optional
        Which calibration when none is on the date's day.
    dark_cal_ids : dict or list, optional
        Ids to choose from (default: the archive's).
    data_root : str or Path, optional
        The calibrations folder (default ``$MICA_ARCHIVE/aca_dark``).

    Returns
    -------
    str or numpy.ndarray of str
        ``'YYYYDOY'`` (an array of ids for array input).

    Raises
    ------
    MissingDataError
        No calibration on the asked side of the date, or an id that does not exist.

    Examples
    --------
    >>> from mica.archive.aca_dark import dark_cal
    >>> dark_cal.get_dark_cal_id('2012:140')
    '2012131'
    >>> dark_cal.get_dark_cal_id('2012:100', select='nearest')
    '2012131'
    """
    if select not in _SELECTS:
        raise InvalidArgumentError('select arg must be one of "nearest", "before", or "after"')
    ids = _id_list(dark_cal_ids, data_root)
    if not ids:
        raise MissingDataError(f"no dark calibrations in {dark_cals_root(data_root)}")
    id_secs = np.asarray(to_secs(np.array([dark_id_to_date(i) for i in ids])), dtype=np.float64)
    scalar = np.ndim(date) == 0
    dates = [date] if scalar else list(np.asarray(date).ravel())
    secs = np.atleast_1d(_dates_as_secs(date if scalar else np.asarray(date)))
    day_ids = np.atleast_1d(date_to_dark_id(secs))
    known = set(ids)
    held = _held_check(dark_cal_ids, data_root)
    out = []
    for value, t, day_id in zip(dates, secs, day_ids, strict=True):
        if _is_dark_id(value) and str(value) not in known:
            if held:
                held(float(t), float(t) + 86400.0)
            raise MissingDataError(_unknown_id_message(str(value), ids, data_root))
        try:
            chosen = _select(str(day_id), float(t), select, ids, id_secs, known)
        except MissingDataError:  # none on that side here: was that side synced?
            if held:
                held(*((float(t), None) if select == "after" else (None, float(t))))
            raise
        if held:
            held(*_decisive_span(float(t), chosen, select))
        out.append(chosen)
    return out[0] if scalar else np.array(out).reshape(np.shape(date))


def _decisive_span(t: float, chosen: str, select: str) -> tuple[float, float]:
    """The time span whose calibrations decide the choice of ``chosen`` for date ``t``: one
    there that this archive lacks would have been chosen instead (before: between the two,
    after: likewise, nearest: as close to ``t`` on either side)."""
    c = float(to_secs(dark_id_to_date(chosen)))
    if select == "nearest":
        reach = abs(t - c)  # (none before the mission)
        return max(t - reach, float(to_secs(_FIRST_DAY))), t + reach
    return min(t, c), max(t, c)


def _held_check(
    dark_cal_ids: Any, data_root: str | os.PathLike | None
) -> Callable[[float | None, float | None], None] | None:
    """In a synced calibrations folder (`mica.engine.synced`), ``check(lo, hi)``: it raises
    `MissingDataError` naming the ``mica sync`` that brings [lo, hi] when no sync brought
    it. None elsewhere (ids given by the caller, or a folder updated here): callers then skip
    working out a span (its date conversions cost a small read a tenth of its time)."""
    root = dark_cals_root(data_root)
    if dark_cal_ids is not None or not is_synced(root):
        return None
    return functools.partial(require_synced, root, ["aca-dark"])


def _unknown_id_message(dark_id: str, ids: list[str], data_root: Any) -> str:
    i = int(np.searchsorted(ids, dark_id))
    near = ", ".join(ids[max(i - 1, 0) : i + 1])
    return (
        f"no dark calibration with id {dark_id} in {dark_cals_root(data_root)} "
        f"(nearest ids: {near})"
    )


def _select(
    day_id: str, t: float, select: str, ids: list[str], id_secs: np.ndarray, known: set[str]
) -> str:
    if day_id in known:
        return day_id
    i_after = int(np.searchsorted(id_secs, t))
    if select == "nearest":
        lo, hi = max(i_after - 1, 0), min(i_after, len(ids) - 1)
        return ids[lo] if abs(t - id_secs[lo]) <= abs(id_secs[hi] - t) else ids[hi]
    i = i_after if select == "after" else i_after - 1
    if i < 0:
        raise MissingDataError(
            f"No dark cal found before {dark_id_to_date(ids[0])} "
            f"(requested dark cal on {to_date(t)})"
        )
    if i >= len(ids):
        raise MissingDataError(
            f"No dark cal found after {to_date(t)} (the last is {ids[-1]} on "
            f"{dark_id_to_date(ids[-1])})"
        )
    return ids[i]


# ---------------------------------------------------------------------------------------
# Files
def _cal_dir(dark_id: str, data_root: str | os.PathLike | None) -> Path:
    path = dark_cals_root(data_root) / dark_id
    if not path.is_dir():
        raise MissingDataError(
            f"dark calibration {dark_id} has no folder in {dark_cals_root(data_root)}"
        )
    return path


def read_dark_image(
    path: str | os.PathLike,
    out: np.ndarray | None = None,
    clip: bool = False,
    scratch: np.ndarray | None = None,
) -> np.ndarray:
    """A dark map file's 1024x1024 image as native float32.

    The bytes are read once into a buffer and converted (byte swap, and with ``clip`` the
    clip at 0) in one pass into the result: the cost of a bare read. The header is checked
    for the expected image, and the file against the digest recorded with its calibration
    (on a process's first read of it: `mica.engine.digests.checked_once`).

    Parameters
    ----------
    path : str or Path
        An ``image.fits`` of a calibration.
    out : numpy.ndarray, optional
        A (1024, 1024) float32 array to fill (default: a new one).
    clip : bool, optional
        Clip negative values at 0.
    scratch : numpy.ndarray, optional
        A reusable 4 MB uint8 buffer, for reading many maps.

    Returns
    -------
    numpy.ndarray
        (1024, 1024) float32, e-/s.

    Examples
    --------
    >>> from mica.archive.aca_dark import dark_cal
    >>> img = dark_cal.read_dark_image(dark_cal.get_dark_cal_dirs()['2012131'] + '/image.fits')
    >>> img.shape, img.dtype
    ((1024, 1024), dtype('float32'))
    """
    path = Path(path)
    if out is None:
        out = np.empty(IMAGE_SHAPE, dtype=np.float32)
    nbytes = 4 * IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    if scratch is None:
        scratch = np.empty(nbytes, dtype=np.uint8)
    _check_digest(path)  # first: a file changed since it was written is named as such
    with open(path, "rb") as fh:
        fh.seek(header_length(fh, path))
        if fh.readinto(scratch) != nbytes:
            raise OSError(f"{path}: truncated image data")
    big = scratch.view(">f4").reshape(IMAGE_SHAPE)  # FITS data are big-endian
    if clip:
        np.maximum(big, np.float32(0.0), out=out)  # NaN stays NaN
    else:
        out[...] = big
    return out


def _check_digest(path: Path) -> None:
    """Raise `DamagedFileError` when a calibration's file is not the one its folder's
    digests name."""
    problem = folder_file_problem(path.parent, path.name, lambda: digests_lost(path.parent))
    if problem is not None:
        dark_id = path.parent.name
        mend = "`mica check --repair` on its archive moves the calibration aside"
        if DARK_ID_RE.fullmatch(dark_id):
            mend += f", then {LAYOUT.rebuild_hint(dark_id)}"
        raise DamagedFileError.written(path, problem, mend)


def _finish_image(img: np.ndarray, scale: float | None, aca_image: bool) -> Any:
    if scale is not None:
        img *= np.float32(scale)  # a positive factor: the clip at 0 before it still holds
    return ACAImage(img, row0=-512, col0=-512) if aca_image else img


def _read_props(dark_id: str, data_root: str | os.PathLike | None) -> dict[str, Any]:
    path = _cal_dir(dark_id, data_root) / PROPS_NAME
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise MissingDataError(f"dark calibration {dark_id} has no {PROPS_NAME} ({path})") from None
    _check_digest(path)
    try:
        props = json.loads(text)
    except ValueError as err:  # (not JSON, or not UTF-8)
        raise MissingDataError(
            f"dark calibration {dark_id}: {path} is not valid JSON ({err})"
        ) from None
    if not isinstance(props, dict):
        raise MissingDataError(f"dark calibration {dark_id}: {path} does not hold a JSON object")
    return props


def _ccd_temp(props: dict[str, Any], dark_id: str) -> float:
    try:
        return float(props["ccd_temp"])
    except (KeyError, TypeError, ValueError):
        raise MissingDataError(
            f"dark calibration {dark_id}: properties have no numeric ccd_temp to scale from"
        ) from None


def _image(
    dark_id: str,
    data_root: str | os.PathLike | None,
    props: dict[str, Any] | None,
    t_ccd_ref: float | None,
    aca_image: bool,
    allow_negative: bool,
    out: np.ndarray | None = None,
    scratch: np.ndarray | None = None,
) -> Any:
    path = _cal_dir(dark_id, data_root) / IMAGE_NAME
    try:
        img = read_dark_image(path, out, clip=not allow_negative, scratch=scratch)
    except FileNotFoundError:
        raise MissingDataError(f"dark calibration {dark_id} has no {IMAGE_NAME} ({path})") from None
    scale = None
    if t_ccd_ref is not None:
        props = props if props is not None else _read_props(dark_id, data_root)
        scale = dark_temp_scale(_ccd_temp(props, dark_id), t_ccd_ref)
    return _finish_image(img, scale, aca_image)


def get_dark_cal_image(
    date: Any,
    select: str = "before",
    t_ccd_ref: float | None = None,
    aca_image: bool = False,
    allow_negative: bool = False,
    data_root: str | os.PathLike | None = None,
) -> Any:
    """The dark map of the calibration for ``date``.

    Parameters
    ----------
    date : CxoTimeLike or str
        A date (CXC seconds, ``YYYY:DOY...``, ISO, ``Time``), or a calibration id
        (``'YYYYDOY'``), which must then exist.
    select : {'before', 'after', 'nearest'}, optional
        Which calibration when none is on the date's day.
    t_ccd_ref : float, optional
        CCD temperature (degC) to scale to from the calibration's ``ccd_temp``, with
        `dark_temp_scale`.
    aca_image : bool, optional
        Return an `ACAImage` with ``row0 = col0 = -512`` (``img.aca[row, col]`` in CCD
        coordinates).
    allow_negative : bool, optional
        Keep negative values (default: clipped to 0).
    data_root : str or Path, optional
        The calibrations folder (default ``$MICA_ARCHIVE/aca_dark``).

    Returns
    -------
    numpy.ndarray or ACAImage
        (1024, 1024) float32 dark current, e-/s.

    Examples
    --------
    >>> from mica.archive.aca_dark import dark_cal
    >>> img = dark_cal.get_dark_cal_image('2012:140', t_ccd_ref=-15.0)
    >>> img.shape, img.dtype, bool(img.min() >= 0)
    ((1024, 1024), dtype('float32'), True)
    """
    dark_id = get_dark_cal_id(date, select, data_root=data_root)
    return _image(dark_id, data_root, None, t_ccd_ref, aca_image, allow_negative)


def get_dark_cal_props(
    date: Any,
    select: str = "before",
    include_image: bool = False,
    t_ccd_ref: float | None = None,
    aca_image: bool = False,
    allow_negative: bool = False,
    data_root: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Properties (``properties.json``, read at every call) of the calibration for ``date``.

    Parameters
    ----------
    date : CxoTimeLike or str
        A date (CXC seconds, ``YYYY:DOY...``, ISO, ``Time``), or a calibration id
        (``'YYYYDOY'``), which must then exist.
    select : {'before', 'after', 'nearest'}, optional
        Which calibration when none is on the date's day.
    include_image : bool, optional
        Add the map under ``image`` (as `get_dark_cal_image`, with the next three options).
    t_ccd_ref, aca_image, allow_negative
        As `get_dark_cal_image`.
    data_root : str or Path, optional
        The calibrations folder (default ``$MICA_ARCHIVE/aca_dark``).

    Returns
    -------
    dict
        ``id``, ``date``, ``start``/``stop`` (dates), ``dur`` (s), ``ccd_temp`` (degC),
        ``ra``/``dec``/``el``/``eb``/``sun_el`` (deg), ``zodib`` (zodiacal brightness, as
        the original), ``replicas`` (one dict each) and ``image`` if asked.

    Examples
    --------
    >>> from mica.archive.aca_dark import dark_cal
    >>> props = dark_cal.get_dark_cal_props('2012:140')
    >>> props['id'], props['ccd_temp']
    ('2012131', -17.7065)
    """
    dark_id = get_dark_cal_id(date, select, data_root=data_root)
    props = _read_props(dark_id, data_root)
    if include_image:
        props["image"] = _image(dark_id, data_root, props, t_ccd_ref, aca_image, allow_negative)
    return props


# ---------------------------------------------------------------------------------------
# Table
def _column(name: str, values: list[Any]) -> Column | MaskedColumn:
    """A typed column of JSON values; ``None`` marks a calibration without the key."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, bool) for v in present):
        dtype, fill = bool, False
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        dtype, fill = np.int64, 0
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        dtype, fill = np.float64, np.nan
    elif all(isinstance(v, str) for v in present):
        dtype, fill = str, ""
    else:
        dtype, fill = object, None
    data = [fill if v is None else v for v in values]
    if len(present) == len(values):
        return Column(np.array(data, dtype=dtype), name=name)
    mask = [v is None for v in values]
    return MaskedColumn(np.array(data, dtype=dtype), name=name, mask=mask)


def get_dark_cal_props_table(
    start: CxoTimeLike = None,
    stop: CxoTimeLike = None,
    include_image: bool = False,
    as_table: bool = True,
    data_root: str | os.PathLike | None = None,
) -> Table | list[dict[str, Any]]:
    """Properties of the calibrations with ids in [id of start, id of stop].

    ``start`` defaults to 1999:001:12:00:00, ``stop`` to now. ``as_table=False`` gives the
    list of property dicts. The table has one column per key holding a scalar, in order of
    first appearance, with the JSON types (``id`` stays a string); a key missing from some
    calibrations (classic and ACDC schemas mixed) gives a masked column. ``include_image``
    adds ``image`` (N, 1024, 1024) float32, clipped at 0.

    Parameters
    ----------
    start, stop : CxoTimeLike, optional
        Date range (default 1999:001:12:00:00 to now).
    include_image : bool, optional
        Add the ``image`` column (e-/s).
    as_table : bool, optional
        False: the list of property dicts.
    data_root : str or Path, optional
        The calibrations folder (default ``$MICA_ARCHIVE/aca_dark``).

    Returns
    -------
    astropy.table.Table or list of dict
        Units as `get_dark_cal_props`.

    Examples
    --------
    >>> from mica.archive.aca_dark import dark_cal
    >>> table = dark_cal.get_dark_cal_props_table('2012:001', '2013:001')
    >>> table['id'].tolist(), table['ccd_temp'].tolist()
    (['2012131'], [-17.7065])
    """
    if start is not None:
        t0, t1 = to_secs(_date_arg(start)), to_secs(_date_arg(stop))
        if t1 < t0:  # the same instant (or day) is a range of one day's calibrations
            raise TimeRangeError(f"stop {to_date(t1)} is before start {to_date(t0)}")
    id0 = date_to_dark_id(_FIRST_DAY if start is None else _date_arg(start))
    id1 = date_to_dark_id(_date_arg(stop))
    ids = [i for i in get_dark_cal_dirs(data_root=data_root) if id0 <= i <= id1]
    held = _held_check(None, data_root)
    if held:
        held(to_secs(dark_id_to_date(id0)), to_secs(dark_id_to_date(id1)))
    props = [_read_props(i, data_root) for i in ids]
    images = None
    if include_image:
        # One block for all maps, each read straight into its slice: no copies.
        images = np.empty((len(ids), *IMAGE_SHAPE), dtype=np.float32)
        scratch = np.empty(images[0].nbytes, dtype=np.uint8)
        for k, dark_id in enumerate(ids):
            _image(dark_id, data_root, props[k], None, False, False, images[k], scratch)
    if not as_table:
        if images is not None:
            for p, img in zip(props, images, strict=True):
                p["image"] = img
        return props
    names: dict[str, None] = {}
    for p in props:
        for key, value in p.items():
            if not isinstance(value, (list, tuple, dict)):
                names.setdefault(key, None)
    columns = []
    for name in names:
        values = [p.get(name) for p in props]
        # A key list-valued in some calibrations only: those rows are masked.
        values = [None if isinstance(v, (list, tuple, dict)) else v for v in values]
        columns.append(_column(name, values))
    table = Table(columns, copy=False)
    if images is not None:
        table.add_column(Column(images, name="image", copy=False), copy=False)
    return table


def _date_arg(value: CxoTimeLike) -> CxoTimeLike:
    return dark_id_to_date(value) if _is_dark_id(value) else value


# ---------------------------------------------------------------------------------------
# The original's file context (pyyaks ContextDicts there)

#: The calibration id ``{{dark_cal.id}}`` stands for in `MICA_FILES` entries (``'id'``).
DARK_CAL: dict[str, str] = {}


class ArchiveFile(NamedTuple):
    """One resolved `MICA_FILES` entry: ``rel`` under the archive root, ``abs`` absolute."""

    rel: str
    abs: str


class _ArchiveFiles(Mapping):
    """`file_defs.MICA_FILES` resolved under the archive root in force at each access.

    ``MICA_FILES['dark_cals_dir'].abs`` is the calibrations folder; an entry plus an
    extension (``'dark_image.fits'``, ``'dark_props.json'``) names a file; entries with
    ``{{dark_cal.id}}`` need ``DARK_CAL['id']``.
    """

    def __getitem__(self, key: str) -> ArchiveFile:
        base, dot, ext = key.partition(".")
        if base not in file_defs.MICA_FILES:
            raise KeyError(f"{key!r}: not one of {sorted(file_defs.MICA_FILES)} (+ .ext)")
        rel = file_defs.MICA_FILES[base] + dot + ext
        if "{{dark_cal.id}}" in rel:
            if "id" not in DARK_CAL:
                raise KeyError(f"{key!r} needs DARK_CAL['id'] (a calibration id, YYYYDOY)")
            rel = rel.replace("{{dark_cal.id}}", str(DARK_CAL["id"]))
        return ArchiveFile(rel, str(archive_root() / rel))

    def __iter__(self) -> Iterator[str]:
        return iter(file_defs.MICA_FILES)

    def __len__(self) -> int:
        return len(file_defs.MICA_FILES)


#: The original's ``MICA_FILES``: ``MICA_FILES['dark_cals_dir'].abs`` is
#: ``<archive>/aca_dark`` (`dark_cals_root`), read at each access.
MICA_FILES = _ArchiveFiles()
