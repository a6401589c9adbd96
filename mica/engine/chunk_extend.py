"""A store chunk's next generation built from the one before: its stored blocks copied as they
are, only the rows after them encoded.

An update that adds files after the last of a partition (the usual case: each day's files
come after the days before) writes the partition's chunk again under a new name, as every
build does (`mica.engine.colstore`: chunk files are immutable, written beside and renamed into
place). Rebuilding it from the arrays would decode and encode every row of the partition, up
to a whole period; here each dataset of the new generation takes the old one's full blocks
(HDF5 chunks) byte for byte (h5py's ``read_direct_chunk`` / ``write_direct_chunk``: no
decompression, no compression), each checked against the old chunk's digests as it is copied,
and only the old rows after the last full block, decoded and checked, are encoded again with
the new rows. Blosc encodes a block the same way each time, so the file holds the blocks a
full build would write; the new generation's digests are computed from its own bytes, seeded
with its own identity, as for any build.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from mica.engine.h5chunks import ChunkDigests


def _along(axis: int, rows: slice) -> tuple[slice, ...]:
    """The index selecting ``rows`` along ``axis`` (whole extents before it)."""
    return (*[slice(None)] * axis, rows)


def growable_dataset(
    h5: h5py.File, name: str, data: np.ndarray, chunks: tuple[int, ...], axis: int, codec: Any
) -> h5py.Dataset:
    """Dataset ``name`` of ``h5`` holding ``data`` in HDF5 chunks ``chunks`` with the filter
    ``codec``, unlimited along ``axis`` (the axis along which its rows follow one another).

    Unlimited so that its blocks have the same shape whatever the number of rows (HDF5
    refuses a block larger than a fixed-size dataset): a chunk's first day and its next
    generations store the same blocks, which an extension then copies (`extend_dataset`)
    instead of encoding them again.
    """
    maxshape = list(data.shape)
    maxshape[axis] = None
    return h5.create_dataset(name, data=data, chunks=chunks, maxshape=tuple(maxshape), **codec)


def extend_dataset(
    new: h5py.File,
    old: h5py.File,
    name: str,
    rows: np.ndarray,
    chunks: tuple[int, ...],
    axis: int,
    digests: ChunkDigests,
    codec: Any,
    keep: int | None = None,
) -> tuple[h5py.Dataset, int]:
    """Write dataset ``name`` of ``new`` (`growable_dataset`): the first ``keep`` rows (None:
    all) of ``old``'s dataset, then ``rows`` (both in their stored form, one after the other
    along ``axis``), in HDF5 chunks ``chunks`` with the filter ``codec``. ``old`` without
    the dataset: ``rows`` alone (``keep`` must then be 0 or None).

    When ``old`` stored the dataset in the same HDF5 chunks, its full blocks of kept rows
    are copied as they are (each checked against ``digests``, the old chunk's), and only
    its kept rows after them are decoded (checked) and written again with ``rows``;
    otherwise (a chunk written before its blocks had a fixed shape) every kept row is.

    Returns
    -------
    (dataset, blocks copied)

    Raises
    ------
    DamagedStoreError
        A copied or decoded block, or the old dataset's dtype or shape, is not what
        ``digests`` recorded, the old dataset does not have the new rows' dtype and row
        shape (a chunk of another layout) or has fewer than ``keep`` rows, or a dataset
        ``digests`` recorded is missing.
    """
    if name not in old and name not in digests.datasets and not keep:
        return growable_dataset(new, name, rows, chunks, axis, codec), 0
    source = old[name]
    record = digests.check_meta(name, source.dtype, source.shape)
    before = source.shape[:axis] + source.shape[axis + 1 :]
    held = source.shape[axis] if keep is None else keep
    if source.dtype != rows.dtype or before != rows.shape[:axis] + rows.shape[axis + 1 :]:
        raise digests.damaged(
            f"/{name} is {source.dtype} {source.shape}, the new rows {rows.dtype} {rows.shape}"
        )
    if held > source.shape[axis]:
        raise digests.damaged(f"/{name} holds {source.shape[axis]} rows, not {held}")
    shape = list(rows.shape)
    shape[axis] += held
    maxshape = list(shape)
    maxshape[axis] = None
    dset = new.create_dataset(
        name, shape=tuple(shape), dtype=rows.dtype, chunks=chunks, maxshape=tuple(maxshape), **codec
    )
    step = chunks[axis]
    copied = held // step if record.chunks == tuple(chunks) else 0
    origin = [0] * len(chunks)
    for block in range(copied):
        origin[axis] = block * step
        mask, stored = source.id.read_direct_chunk(tuple(origin))
        digests.check_block(name, block, stored, record)
        dset.id.write_direct_chunk(tuple(origin), stored, mask)
    start = copied * step
    if start < held:  # the kept rows after the copied blocks, checked before they are used
        digests.check_rows(source.id, name, start, held, source.dtype, source.shape, record)
        rows = np.concatenate([source[_along(axis, slice(start, held))], rows], axis=axis)
    if rows.shape[axis]:
        dset[_along(axis, slice(start, None))] = rows
    return dset, copied
