"""`ACAImage`: a small image array that knows where it sits on the ACA CCD."""

from __future__ import annotations

from typing import Any

import numpy as np


class _AcaIndexer:
    """``img.aca[row, col]`` in absolute CCD coordinates."""

    def __init__(self, img: ACAImage):
        self.img = img

    def _shift(self, key: Any, offset: int) -> Any:
        if isinstance(key, slice):
            start = None if key.start is None else key.start - offset
            stop = None if key.stop is None else key.stop - offset
            return slice(start, stop, key.step)
        return np.asarray(key) - offset if not np.isscalar(key) else key - offset

    def _key(self, key: Any) -> Any:
        if not isinstance(key, tuple):
            key = (key,)
        out = [self._shift(key[0], self.img.row0)]
        if len(key) > 1:
            out.append(self._shift(key[1], self.img.col0))
        return tuple(out)

    def __getitem__(self, key: Any) -> Any:
        return np.asarray(self.img)[self._key(key)]

    def __setitem__(self, key: Any, value: Any) -> None:
        np.asarray(self.img)[self._key(key)] = value


class ACAImage(np.ndarray):
    """ndarray with ``meta`` (dict); ``row0``/``col0`` are ``meta['IMGROW0']``/``['IMGCOL0']``.

    Meta keys read as attributes (``img.TIME``); ``img.aca[row, col]`` indexes by CCD
    coordinates: numpy ``[i, j]`` is CCD row ``row0 + i``, column ``col0 + j``.

    Parameters
    ----------
    data : array-like
        The image, pixel values in DN (as `mica.archive.aca_l0.get_l0_images` gives them).
    meta : dict, optional
        Per-readout values (TIME in CXC seconds, temperatures in degC, ...).
    row0, col0 : int, optional
        CCD row and column (pixels) of ``data[0, 0]`` (default: ``meta``'s IMGROW0 and
        IMGCOL0, else 0).

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
    """

    def __new__(
        cls,
        data: Any,
        meta: dict[str, Any] | None = None,
        row0: int | None = None,
        col0: int | None = None,
    ) -> ACAImage:
        obj = np.asarray(data).view(cls)
        obj.meta = dict(meta or {})
        if row0 is not None:
            obj.meta["IMGROW0"] = row0
        if col0 is not None:
            obj.meta["IMGCOL0"] = col0
        obj.meta.setdefault("IMGROW0", 0)
        obj.meta.setdefault("IMGCOL0", 0)
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        self.meta = dict(getattr(obj, "meta", {}) or {})

    @property
    def row0(self) -> int:
        return self.meta["IMGROW0"]

    @property
    def col0(self) -> int:
        return self.meta["IMGCOL0"]

    @property
    def aca(self) -> _AcaIndexer:
        """Indexing by absolute CCD (row, col): ``img.aca[row0, col0]`` is ``img[0, 0]``."""
        return _AcaIndexer(self)

    def __repr__(self) -> str:
        if self.ndim == 0:
            return repr(self.item())
        body = np.array2string(np.asarray(self), separator=", ", prefix="ACAImage(")
        return f"ACAImage({body}, row0={self.row0}, col0={self.col0})"

    def __str__(self) -> str:
        if self.ndim == 0:
            return str(self.item())
        return f"{np.asarray(self)}\nrow0={self.row0} col0={self.col0}"

    def __getattr__(self, name: str) -> Any:
        meta = self.__dict__.get("meta", {})
        if name in meta:
            return meta[name]
        raise AttributeError(name)
