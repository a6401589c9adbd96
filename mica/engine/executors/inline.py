"""The default executor: each unit's step in the calling process, one after the other."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from mica.engine.executors.base import Executor, call_unit


class InlineExecutor(Executor):
    """Lazy: unit k+1 is fetched only after the runner committed unit k (no look-ahead), so a
    killed run loses at most the unit in progress."""

    def map(
        self, fn: Callable[[Any], Any], units: Iterable[Any], per_task: int = 1
    ) -> Iterator[Any]:
        for unit in units:
            yield call_unit(fn, unit)
