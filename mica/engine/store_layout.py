"""Where a product's rows live in the columnar store, derived from a short description.

A product with a store declares a `StoreDescription`: the dtype of each stored column, the
groups of columns read together, and its views. A view is a set of chunks holding some columns
of the rows of files grouped by index key columns (e.g. the slot) and by a period of file start
time; the first view holds every column of every file, later ones a narrower set of columns
kept for speed, possibly of some files only (e.g. 8x8 rows). From it the engine derives the
partition keys (``'3/511'``: slot 3, 511th period; ``'hd3/3/51'`` in the view ``hd3``) and the
SQL that selects a partition's index rows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: ``derive(rows, arrays, period)``: a derived view's datasets from its partition's index rows,
#: their files' arrays and the partition's period (start, stop), CXC seconds; with ``held=``
#: the chunk being extended (`mica.engine.chunk_extend`), ``arrays`` are the added files'.
Derive = Callable[[list[dict[str, Any]], list[dict[str, Any]], tuple[float, float]], dict]
#: ``derive(part, chunk, digests)``: a store table's pieces from one current chunk of its view
#: (partition, chunk file, its `mica.engine.h5chunks.ChunkDigests`): dataset name -> array,
#: each dataset of the table being its pieces of every chunk, in period order, one after the
#: other along their last axis.
TableDerive = Callable[[str, Any, Any], dict]


@dataclass(frozen=True)
class StoreView:
    """Chunks of ``columns`` per value of the ``keys`` index columns and ``period`` seconds of
    file start time, for the files whose index rows have the values in ``only``.

    With ``alone``, each column is its own dataset (not grouped with others as byte planes),
    so a fetch of a few columns decompresses only their bytes (the header-3 view: an item
    needs TIME and 2-6 of the 12 bytes).

    With ``derive``, the chunk holds, beside the rows, the datasets
    ``derive(rows, arrays, period)`` computes from the partition's index rows, their files'
    arrays (``columns``: the ones it needs) and its period (start, stop), e.g. a table the
    product's reader serves directly; readers of rows never pick such a view
    (`StoreDescription.partition`), its own reader reads it. An update adding files after a
    chunk's own calls it with ``held=`` the old chunk (`mica.engine.chunk_extend.HeldChunk`)
    and the added files' arrays; it may then give a dataset as the old one's first rows and
    the rows after them (`mica.engine.chunk_extend.Extended`).

    With ``reach`` (seconds), a partition holds the files whose span [tstart, tstop] overlaps
    its period widened by ``reach`` on both sides, rather than the files starting in it: a
    file near a period's end belongs to two partitions, and a chunk sees every row within
    ``reach`` of its period, whichever file holds it (what a derived table of the rows around
    its period's edges needs). ``span``, the longest file of the product (s), bounds the
    partition's query on the indexed file start time (``filetime``, the integer part of
    ``tstart``).

    ``layout`` is the view's own layout number, raised when what its chunks hold changes (e.g.
    the datasets ``derive`` computes, or ``reach``): its chunks of another number count as out
    of date, to readers and to ``mica rebuild store``, while the other views' stay current.
    """

    name: str
    columns: Sequence[str]
    period: float
    keys: Sequence[str] = ()
    only: Mapping[str, Any] = field(default_factory=dict)
    alone: bool = False
    derive: Derive | None = None
    reach: float = 0.0
    span: float = 0.0
    layout: int = 0

    def __post_init__(self) -> None:
        # Readers ask for the partition of every file they read: keep the test cheap.
        object.__setattr__(self, "column_set", frozenset(self.columns))
        object.__setattr__(self, "_only", tuple(self.only.items()))

    def holds(self, row: Mapping[str, Any]) -> bool:
        """Whether the view holds rows of the file of index row ``row``."""
        for k, v in self._only:
            if row[k] != v:
                return False
        return True

    def key(self, row: Mapping[str, Any]) -> str:
        """The partition key of the period holding a file's start time (``filetime``) in this
        view (with ``reach``, one of its partitions: see `keys_of`)."""
        return self._key(row, int(row["filetime"] // self.period))

    def _key(self, row: Mapping[str, Any], number: int) -> str:
        parts = [str(row[k]) for k in self.keys] + [str(number)]
        return "/".join([self.name, *parts] if self.name else parts)

    def period_range(self, number: int) -> tuple[float, float]:
        """The (start, stop) CXC seconds of the view's period ``number``."""
        start = number * self.period
        return start, start + self.period

    def window(self, number: int) -> tuple[float, float]:
        """The times a partition of period ``number`` holds files over: the period widened
        by ``reach`` on both sides (a file belongs when ``tstop >= lo and tstart < hi``)."""
        start, stop = self.period_range(number)
        return start - self.reach, stop + self.reach

    def keys_of(self, row: Mapping[str, Any]) -> list[str]:
        """The partition keys of a file in this view: one, or with ``reach`` those of every
        period whose `window` its span overlaps."""
        if not self.reach:
            return [self.key(row)]
        tstart, tstop = row["tstart"], row["tstop"]
        # one period more on each side than the division says, so no rounding misses one:
        # the test below decides, with the same numbers as `StoreDescription.partition_where`
        first = int((tstart - self.reach) // self.period) - 1
        last = int((tstop + self.reach) // self.period) + 1
        out = []
        for number in range(first, last + 1):
            lo, hi = self.window(number)
            if tstop >= lo and tstart < hi:
                out.append(self._key(row, number))
        return out


@dataclass(frozen=True)
class StoreTable:
    """One file of datasets made of the pieces ``derive`` computes from each chunk of the
    view ``view``, in period order (e.g. a statistic's bins over the whole mission, read in
    one open instead of one a period), kept by `mica.engine.store_tables`: derived again once
    no chunk of the view is dirty and the chunks changed (reading only the chunks that
    changed: the others' pieces are taken from the table recorded), recorded with digests,
    served only while it is of the chunks now recorded. ``layout``: raised when what
    ``derive`` computes changes."""

    name: str
    view: str
    derive: TableDerive
    layout: int = 0


@dataclass(frozen=True)
class StoreDescription:
    """A product's columnar store: column dtypes, column groups, views (first: all) and
    tables derived from a view's chunks (`StoreTable`)."""

    dtypes: Mapping[str, Any]
    groups: Mapping[str, list[str]]
    views: Sequence[StoreView]
    tables: Sequence[StoreTable] = ()

    def __post_init__(self) -> None:
        if not self.views or self.views[0].name or self.views[0].only:
            raise ValueError("the first store view holds every file, under no name")

    def partition(self, row: Mapping[str, Any], columns: Iterable[str] | None = None) -> str:
        """The partition serving ``columns`` (None: all) of a file's rows: the narrowest view
        that holds the file and every column asked for."""
        if columns is not None:
            for view in self.views[1:]:
                if view.derive is None and view.holds(row) and view.column_set.issuperset(columns):
                    return view.key(row)
        return self.views[0].key(row)

    def partitions(self, row: Mapping[str, Any]) -> list[str]:
        """Every partition holding rows of the file (the full view first)."""
        return [key for view in self.views if view.holds(row) for key in view.keys_of(row)]

    def _view(self, part: str) -> tuple[StoreView, list[str]]:
        keys = part.split("/")
        for view in self.views[1:]:
            if keys[0] == view.name and len(keys) == len(view.keys) + 2:
                return view, keys[1:]
        if len(keys) == len(self.views[0].keys) + 1:
            return self.views[0], keys
        raise ValueError(f"not a store partition of this layout: {part!r}")

    def partition_identity(self, part: str) -> dict[str, Any]:
        """What a partition key names: its view (``""``: the full view), the value of each of
        the view's keys (e.g. ``slot``) and its period number (ValueError for a key of
        another layout)."""
        view, keys = self._view(part)
        try:
            values = [int(k) for k in keys]
        except ValueError:
            raise ValueError(f"not a store partition of this layout: {part!r}") from None
        return {"view": view.name, **dict(zip(view.keys, values[:-1])), "period": values[-1]}

    def partition_columns(self, part: str) -> list[str]:
        """The columns a partition holds."""
        return list(self._view(part)[0].columns)

    def partition_derive(self, part: str) -> Callable[..., dict[str, Any]] | None:
        """The function computing a partition's datasets from its index rows and arrays
        (`StoreView.derive` given the partition's period), or None."""
        view, keys = self._view(part)
        if view.derive is None:
            return None
        return functools.partial(view.derive, period=view.period_range(int(keys[-1])))

    def view_named(self, name: str) -> StoreView:
        """The view called ``name`` (KeyError if none)."""
        for view in self.views:
            if view.name == name:
                return view
        raise KeyError(name)

    def partition_layout(self, part: str) -> int:
        """The layout number of a partition's view (`StoreView.layout`)."""
        return self._view(part)[0].layout

    def partition_alone(self, part: str) -> bool:
        """Whether a partition keeps each column in its own dataset (`StoreView.alone`)."""
        return self._view(part)[0].alone

    def alone_columns(self, columns: Iterable[str]) -> bool:
        """Whether the view holding exactly ``columns`` keeps each in its own dataset."""
        wanted = frozenset(columns)
        return any(v.alone and v.column_set == wanted for v in self.views)

    def view_partitions(
        self, row: Mapping[str, Any], columns: Iterable[str], t0: float, t1: float
    ) -> list[str]:
        """The partitions serving ``columns`` of the files with the index values of ``row``
        (all but ``filetime``) and a file start time in [t0, t1], in time order: one key per
        period of the narrowest view holding them (no index query)."""
        probe = dict(row, filetime=t0)
        first = self.partition(probe, columns)
        view = self._view(first)[0]
        lo, hi = int(t0 // view.period), int(t1 // view.period)
        return [view.key(dict(row, filetime=k * view.period)) for k in range(lo, hi + 1)]

    def partition_epoch(self, row: Mapping[str, Any]) -> str:
        """The full view's period of a file: once incoming files move past it, its chunks
        are complete."""
        return str(int(row["filetime"] // self.views[0].period))

    def partition_where(self, part: str) -> tuple[str, list[Any]]:
        """SQL WHERE clause and parameters selecting a partition's index rows (ValueError for
        a key of another layout)."""
        view = self._view(part)[0]
        identity = self.partition_identity(part)
        values = [*(identity[k] for k in view.keys), identity["period"]]
        terms = [f"{k} = ?" for k in [*view.keys, *view.only]]
        params = [*values[:-1], *view.only.values()]
        if view.reach:
            # the files overlapping the window (`StoreView.keys_of`); the first two terms,
            # implied by the others for files no longer than ``span``, let SQLite use the
            # filetime index
            lo, hi = view.window(values[-1])
            terms.append("filetime >= ? AND filetime < ? AND tstop >= ? AND tstart < ?")
            return " AND ".join(terms), [*params, lo - view.span - 1, hi, lo, hi]
        t0, t1 = view.period_range(values[-1])
        return " AND ".join([*terms, "filetime >= ? AND filetime < ?"]), [*params, t0, t1]
