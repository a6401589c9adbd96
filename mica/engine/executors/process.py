"""Forkserver worker processes: an ordered, bounded process map and an executor on it."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any

from mica.engine.executors.base import Executor, call_unit


def default_workers() -> int:
    """Worker processes: ``MICA_WORKERS``, else one per CPU (at most 4)."""
    env = os.environ.get("MICA_WORKERS")
    return max(1, int(env)) if env else min(4, os.cpu_count() or 1)


def _exit_with(pid: int) -> None:
    """Worker initializer: end this worker when the calling process is gone (kill -9)."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def process_map(
    func: Callable[..., Any],
    items: Iterable[tuple],
    workers: int | None = None,
    preload: Iterable[str] = (),
) -> Iterator[Any]:
    """``func(*item)`` for each item, results in order; at most a few results wait in memory.

    Runs inline for one worker or few items. Workers come from a forkserver, not fork: they
    must not inherit the update lock or SQLite handles (a killed updater's children would
    otherwise hold its lock), and they exit with the caller.
    """
    items = list(items)
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(items) < 4:
        for item in items:
            yield func(*item)
        return
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(preload))
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_exit_with, initargs=(os.getpid(),)
    ) as pool:
        todo = iter(items)
        # range first: zip must not pull (and drop) an item once the window is full
        pending: deque = deque(
            pool.submit(func, *item) for _, item in zip(range(3 * workers), todo)
        )
        while pending:
            future = pending.popleft()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(func, *nxt))
            yield future.result()


class ProcessExecutor(Executor):
    """Units' steps in forkserver worker processes (``fn`` and units must be picklable)."""

    def __init__(self, workers: int | None = None, preload: Iterable[str] = ()):
        self.workers = workers
        self.preload = list(preload)

    def map(self, fn: Callable[[Any], Any], units: Iterable[Any]) -> Iterator[Any]:
        return process_map(
            partial(call_unit, fn), [(u,) for u in units], self.workers, self.preload
        )
