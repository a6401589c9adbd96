"""`ACAImage`: a small image array that knows where it sits on the ACA CCD.

The members are those users call on chandra_aca's ``ACAImage`` that make sense for level-0
images and dark calibrations: ``row0``/``col0``/``meta``, upper-case meta keys as attributes,
``img.aca[...]`` indexing in CCD coordinates, slicing that keeps ``row0``/``col0``,
arithmetic in CCD coordinates between images, and the first-moment centroid
(`ACAImage.centroid_fm`, `centroid_fm`).
"""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from typing import Any

import numpy as np

__all__ = ["ACAImage", "EIGHT_LABELS", "centroid_fm"]

#: Labels of the pixels of an 8x8 image in the EQ-278 convention: ``A1`` has the lowest row
#: and column, ``H1`` the lowest row and highest column, ``I4`` the highest row and lowest
#: column.
EIGHT_LABELS = np.array(
    [
        [f"{letter}{(row // 2) + 1}" for letter in ("ABCDEFGH" if row % 2 == 0 else "IJKLMNOP")]
        for row in range(8)
    ]
)

# The corner pixels of the 6x6 core that the on-board first-moment centroid leaves out (the
# "mouse bite"), as (rows, cols) of the 6x6 core.
_MOUSE_BITE = ([0, 0, 5, 5], [0, 5, 0, 5])


def centroid_fm(
    img: Any,
    bgd: float | np.ndarray | None = None,
    pix_zero_loc: str = "center",
    norm_clip: float | None = None,
) -> tuple[float, float, float]:
    """First-moment centroid of a square image, as the on-board algorithm takes it.

    An 8x8 image is cut to its central 6x6 after background subtraction; in a 6x6 (or the
    cut 8x8) the four corner pixels are left out. Coordinates are image pixels: ``(0, 0)``
    is the first pixel of ``img`` (of the 8x8 frame for an 8x8 image).

    Parameters
    ----------
    img : array-like
        Square NxN image (DN or e-/s); not modified.
    bgd : float or numpy.ndarray, optional
        Background to subtract, a scalar or an NxN array in the image's units.
    pix_zero_loc : {'center', 'edge'}
        Where pixel coordinates are integral: at the pixel centres (``(0.0, 0.0)`` is the
        centre of the first pixel) or at its lower-left edge (0.5 is added).
    norm_clip : float, optional
        Lowest norm used (the norm is clipped there); without it a non-positive norm raises
        ``ValueError``.

    Returns
    -------
    row, col : float
        Centroid (pixels).
    norm : float
        Sum of the background-subtracted pixels used (the 6x6 without corners for 6x6 and
        8x8 images), in the image's units.

    Raises
    ------
    ValueError
        For a non-square image, an unknown ``pix_zero_loc`` or a non-positive norm without
        ``norm_clip``.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((8, 8))
    >>> img[3, 3] = img[4, 4] = 100.0
    >>> [float(x) for x in centroid_fm(img)]
    [3.5, 3.5, 200.0]
    """
    if pix_zero_loc not in ("center", "edge"):
        raise ValueError(f"pix_zero_loc can be only 'edge' or 'center', not {pix_zero_loc!r}")
    pixels = np.array(np.asarray(img), dtype=np.float64)  # a copy: the caller's stays
    n_rows, n_cols = pixels.shape
    if n_rows != n_cols:
        raise ValueError(f"input img must be square, not {n_rows}x{n_cols}")
    if bgd is not None:
        pixels -= np.asarray(bgd, dtype=np.float64)
    offset = 0
    if n_rows == 8:
        pixels = pixels[1:7, 1:7]
        offset = 1
    if pixels.shape == (6, 6):
        pixels[_MOUSE_BITE] = 0.0
    rows, cols = np.mgrid[0 : pixels.shape[0], 0 : pixels.shape[1]] + offset
    norm = pixels.sum()
    if norm_clip is not None:
        norm = max(norm, norm_clip)
    elif norm <= 0:
        raise ValueError(f"non-positive image norm {norm}")
    row = np.sum(rows * pixels) / norm
    col = np.sum(cols * pixels) / norm
    if pix_zero_loc == "edge":
        row, col = row + 0.5, col + 0.5
    return float(row), float(col), float(norm)


def _ccd_operator(name: str, inplace: bool) -> Callable[[ACAImage, Any], Any]:
    """Arithmetic method ``__<name>__`` (``__i<name>__``) that works in CCD coordinates.

    When either operand is an ``.aca`` image, only the pixels where both images overlap on
    the CCD are combined and the result has the left image's shape and place; otherwise the
    operator is numpy's.
    """
    numpy_method = getattr(np.ndarray, f"__i{name}__" if inplace else f"__{name}__")
    numpy_inplace = getattr(np.ndarray, f"__i{name}__")

    def method(self: ACAImage, other: Any) -> Any:
        if not (isinstance(other, ACAImage) and (self._aca_coords or other._aca_coords)):
            return numpy_method(self, other)
        out = self if inplace else self.copy()
        out._aca_coords = self._aca_coords if inplace else False
        rows = (
            max(self.row0, other.row0),
            min(self.row0 + self.shape[0], other.row0 + other.shape[0]),
        )
        cols = (
            max(self.col0, other.col0),
            min(self.col0 + self.shape[1], other.col0 + other.shape[1]),
        )
        if rows[0] < rows[1] and cols[0] < cols[1]:
            target = out.view(np.ndarray)[
                rows[0] - self.row0 : rows[1] - self.row0, cols[0] - self.col0 : cols[1] - self.col0
            ]
            source = other.view(np.ndarray)[
                rows[0] - other.row0 : rows[1] - other.row0,
                cols[0] - other.col0 : cols[1] - other.col0,
            ]
            numpy_inplace(target, source)
        return out

    method.__name__ = f"__i{name}__" if inplace else f"__{name}__"
    return method


_OPERATORS = ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow")


def _is_integer(key: Any) -> bool:
    return isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_))


class ACAImage(np.ndarray):
    """2-D ndarray with ``meta`` (dict) and its place on the CCD, ``row0``/``col0``.

    ``row0``/``col0`` are ``meta['IMGROW0']``/``meta['IMGCOL0']``: numpy ``[i, j]`` is CCD
    row ``row0 + i``, column ``col0 + j``. Upper-case meta keys read and write as
    attributes (``img.TIME`` is ``img.meta['TIME']``). Slicing keeps the place
    (``img[2:, 3:].row0 == img.row0 + 2``); ``img.aca[row, col]`` indexes by CCD
    coordinates, and arithmetic with an ``.aca`` operand combines the pixels where the two
    images overlap on the CCD.

    Parameters
    ----------
    *args
        Passed to ``numpy.array`` (the image data, dtype, ...), or if that fails to
        ``numpy.zeros`` (``ACAImage(shape=(8, 8))``).
    meta : dict, optional
        Per-readout values (TIME in CXC seconds, temperatures in degC, ...); copied.
    row0, col0 : int, optional
        CCD row and column (pixels) of ``[0, 0]`` (default: ``meta``'s IMGROW0 and IMGCOL0,
        else 0); stored as ``numpy.int64``.
    **kwargs
        Passed to ``numpy.array`` or ``numpy.zeros``.

    Raises
    ------
    ValueError
        If the array is not 2-D.

    Examples
    --------
    >>> import numpy as np
    >>> from mica.archive.aca_image import ACAImage
    >>> img = ACAImage(np.arange(16.0).reshape(4, 4), row0=100, col0=-20, meta={"TIME": 1.0})
    >>> img
    ACAImage([[ 0.,  1.,  2.,  3.],
              [ 4.,  5.,  6.,  7.],
              [ 8.,  9., 10., 11.],
              [12., 13., 14., 15.]], row0=100, col0=-20)
    >>> float(img.aca[101, -18]), img.TIME
    (6.0, 1.0)
    >>> sub = img[1:, 2:]
    >>> int(sub.row0), int(sub.col0)
    (101, -18)
    """

    meta: dict[str, Any]
    _aca_coords: bool

    def __new__(
        cls,
        *args: Any,
        meta: dict[str, Any] | None = None,
        row0: float | None = None,
        col0: float | None = None,
        **kwargs: Any,
    ) -> ACAImage:
        try:
            data = np.array(*args, **kwargs)
        except TypeError:
            data = np.zeros(*args, **kwargs)
        obj = data.view(cls)
        if obj.ndim != 2:
            raise ValueError(f"{cls.__name__} must be 2-d, not {obj.ndim}-d")
        obj.meta = dict(meta or {})
        obj.meta.setdefault("IMGROW0", 0)
        obj.meta.setdefault("IMGCOL0", 0)
        if row0 is not None:
            obj.row0 = row0
        if col0 is not None:
            obj.col0 = col0
        obj._aca_coords = False
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        if obj is None:
            return
        self.meta = deepcopy(getattr(obj, "meta", {}) or {})
        self._aca_coords = getattr(obj, "_aca_coords", False)

    def __reduce__(self) -> tuple:
        # ndarray's pickle state does not hold the attributes: append them
        constructor, args, state = super().__reduce__()
        return constructor, args, (state, self.meta, self._aca_coords)

    def __setstate__(self, state: tuple) -> None:
        array_state, self.meta, self._aca_coords = state
        super().__setstate__(array_state)

    @property
    def row0(self) -> Any:
        """CCD row of ``[0, 0]`` (``meta['IMGROW0']``)."""
        return self.meta["IMGROW0"]

    @row0.setter
    def row0(self, value: float) -> None:
        self.meta["IMGROW0"] = np.int64(value)

    @property
    def col0(self) -> Any:
        """CCD column of ``[0, 0]`` (``meta['IMGCOL0']``)."""
        return self.meta["IMGCOL0"]

    @col0.setter
    def col0(self, value: float) -> None:
        self.meta["IMGCOL0"] = np.int64(value)

    @property
    def aca(self) -> ACAImage:
        """The same pixels and ``meta``, indexed by CCD coordinates.

        ``img.aca[row0, col0]`` is ``img[0, 0]``; a slice of it (``img.aca[r1:r2, c1:c2]``)
        is an ordinary `ACAImage` at its CCD place, clipped to the image.
        """
        view = self.view(type(self))
        view.meta = self.meta
        view._aca_coords = True
        return view

    def _numpy_key(self, key: Any) -> tuple[Any, dict[int, int]]:
        """Numpy index for ``key`` and the new origin of each row/column axis it moves."""
        aca_coords = self._aca_coords
        if isinstance(key, ACAImage) and key.dtype != bool:  # a boolean image is a mask
            key = (
                slice(key.row0, key.row0 + key.shape[0]),
                slice(key.col0, key.col0 + key.shape[1]),
            )
            aca_coords = True
        if not isinstance(key, tuple):
            key = (key,)
        ellipses = [i for i, k in enumerate(key) if k is Ellipsis]  # identity: keys may be arrays
        if self.ndim != 2 or len(ellipses) > 1 or any(k is None for k in key):
            return key, {}  # not an image index: numpy's rules (and errors) apply
        if ellipses:
            where = ellipses[0]
            after = len(key) - where - 1
            axes = list(range(where)) + [None] + list(range(2 - after, 2))
        else:
            axes = list(range(len(key)))
        numpy_key = list(key)
        origins: dict[int, int] = {}
        for pos, axis in enumerate(axes):
            if axis is None or not 0 <= axis < 2:
                continue
            item, origin, size = key[pos], (self.row0, self.col0)[axis], self.shape[axis]
            if isinstance(item, slice):
                start, stop = item.start, item.stop
                if aca_coords:
                    # clipped at the image's first pixel: a negative index would wrap around
                    start = None if start is None else max(start - origin, 0)
                    stop = None if stop is None else max(stop - origin, 0)
                numpy_key[pos] = slice(start, stop, item.step)
                if start is not None:
                    origins[axis] = origin + numpy_key[pos].indices(size)[0]
            elif _is_integer(item):
                index = item - origin if aca_coords else item
                if aca_coords and not 0 <= index < size:
                    raise IndexError(
                        f"index {item} is out of bounds for axis {axis} with limits "
                        f"{origin}:{origin + size}"
                    )
                numpy_key[pos] = index
                if -size <= index < size:
                    origins[axis] = origin + index % size
            elif aca_coords and np.asarray(item).dtype.kind in "iu":  # a list of indices
                numpy_key[pos] = np.asarray(item) - origin
        return tuple(numpy_key), origins

    def __getitem__(self, key: Any) -> Any:
        numpy_key, origins = self._numpy_key(key)
        out = super().__getitem__(numpy_key)
        if isinstance(out, ACAImage):
            for axis, origin in origins.items():
                out.meta[("IMGROW0", "IMGCOL0")[axis]] = np.int64(origin)
            out._aca_coords = False
        return out

    def __setitem__(self, key: Any, value: Any) -> None:
        numpy_key, _ = self._numpy_key(key)
        # numpy's assignment may index ``self`` again through __getitem__: with the key
        # already shifted, the CCD offset must not be applied twice
        aca_coords, self._aca_coords = self._aca_coords, False
        try:
            super().__setitem__(numpy_key, value)
        finally:
            self._aca_coords = aca_coords

    def __getattr__(self, name: str) -> Any:
        meta = self.__dict__.get("meta", {})
        if name.isupper() and name in meta:
            return meta[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name.isupper():
            self.meta[name] = value
        else:
            super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | {k for k in self.meta if k.isupper()})

    def centroid_fm(
        self,
        bgd: float | np.ndarray | None = None,
        pix_zero_loc: str = "center",
        norm_clip: float | None = None,
    ) -> tuple[float, float, float]:
        """First-moment centroid (`centroid_fm`), in CCD coordinates on ``img.aca``.

        Parameters
        ----------
        bgd : float or numpy.ndarray, optional
            Background to subtract (scalar or an array of the image's shape).
        pix_zero_loc : {'center', 'edge'}
            Where pixel coordinates are integral.
        norm_clip : float, optional
            Lowest norm used; without it a non-positive norm raises ``ValueError``.

        Returns
        -------
        row, col, norm : float
            Centroid in image pixels, or CCD pixels (``row0``/``col0`` added) when called on
            ``img.aca``; ``norm`` is the background-subtracted sum of the pixels used.
        """
        row, col, norm = centroid_fm(self.view(np.ndarray), bgd, pix_zero_loc, norm_clip)
        if self._aca_coords:
            row, col = row + float(self.row0), col + float(self.col0)
        return row, col, norm

    def __repr__(self) -> str:
        if self.ndim == 0:
            return repr(self.item())
        body = np.array2string(np.asarray(self), separator=", ", prefix="ACAImage(")
        return f"ACAImage({body}, row0={self.row0}, col0={self.col0})"

    def __str__(self) -> str:
        if self.ndim == 0:
            return str(self.item())
        return f"{np.asarray(self)}\nrow0={self.row0} col0={self.col0}"


for _name in _OPERATORS:
    setattr(ACAImage, f"__{_name}__", _ccd_operator(_name, inplace=False))
    setattr(ACAImage, f"__i{_name}__", _ccd_operator(_name, inplace=True))
