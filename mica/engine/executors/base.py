"""The executor interface: run a unit's side-effect-free step over many units, in order.

An executor runs ``fn(unit)`` for each unit (fetch into the unit's staging folder, validate,
compute) and yields the results in unit order; a unit whose step raised yields a
`UnitError` in its place, so one bad unit never stops the others. Results and units must be
picklable: an executor may run them in other processes or on other machines (a
dask.distributed executor implements the same `map`). Commits never run here: the runner
makes them, one unit at a time, in its own process.
"""

from __future__ import annotations

import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class UnitError:
    """The failure of one unit's step: the exception (when picklable) and its traceback."""

    error: BaseException
    trace: str = ""

    @classmethod
    def capture(cls, err: BaseException) -> UnitError:
        return cls(err, "".join(traceback.format_exception(err)))

    def __str__(self) -> str:
        return str(self.error)


def call_unit(fn: Callable[[Any], Any], unit: Any) -> Any:
    """``fn(unit)``, or the `UnitError` it raised (KeyboardInterrupt and the like pass)."""
    try:
        return fn(unit)
    except Exception as err:  # noqa: BLE001  (returned as the unit's failure, by contract)
        return UnitError.capture(err)


def timed(results: Iterable[Any], into: Any = None) -> Iterator[Any]:
    """``results``, adding the time spent waiting for each to ``into.wait_seconds`` (how
    long the committer waited on the executor, for the scale-out figures).

    Closing this generator closes ``results`` (a process pool is shut down then, in the
    caller's thread, not whenever the garbage collector finds a generator left in a cycle:
    at such a moment the pool's pipes may already be closed, and their descriptors reused).
    """
    it = iter(results)
    try:
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                if into is not None:
                    into.wait_seconds += time.perf_counter() - t0
            yield item
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


class Executor(ABC):
    """Runs units' steps; ``map`` yields one result (or `UnitError`) per unit, in order."""

    @abstractmethod
    def map(
        self, fn: Callable[[Any], Any], units: Iterable[Any], per_task: int = 1
    ) -> Iterator[Any]:
        """``fn(unit)`` for each unit, results in unit order, lazily (bounded look-ahead).

        ``per_task`` is the job's hint of how many units one task may run: units of little
        work each, for executors that pay a cost per task (a cluster's scheduler)."""
