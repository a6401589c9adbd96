"""Forkserver worker processes: an ordered, bounded process map and an executor on it."""

from __future__ import annotations

import ast
import logging
import multiprocessing
import os
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from mica import config
from mica.engine.executors.base import Executor, call_unit


def default_workers() -> int:
    """Worker processes: ``MICA_WORKERS``, else one per CPU (at most 4)."""
    workers = config.workers()
    return workers if workers is not None else min(4, os.cpu_count() or 1)


_log = logging.getLogger(__name__)
_warned = False  # the unguarded-script warning, once per process


def _main_source() -> tuple[str, str] | None:
    """(path, source) of the user's program when worker processes would import it again.

    A forkserver worker runs ``__main__`` again as ``__mp_main__`` when it is a file (a script
    run as ``python script.py`` or ``python -m module``); a notebook, ``python -c`` or an
    interactive session have none.
    """
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if name is not None:
        if name == "__main__" or name.endswith(".__main__"):
            return None  # a package's __main__: multiprocessing does not import it again
        path = getattr(spec, "origin", None)
    else:
        path = getattr(main, "__file__", None)
    if not path or not os.path.isfile(path):
        return None
    try:
        return path, Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _has_main_guard(source: str) -> bool:
    """Whether a top-level ``if __name__ == "__main__":`` is in the program's source."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return True  # not ours to judge: keep the worker processes
    for node in tree.body:
        test = getattr(node, "test", None) if isinstance(node, ast.If) else None
        if isinstance(test, ast.Compare) and len(test.comparators) == 1:
            sides = [test.left, test.comparators[0]]
            names = {s.id for s in sides if isinstance(s, ast.Name)}
            values = {s.value for s in sides if isinstance(s, ast.Constant)}
            if names == {"__name__"} and values == {"__main__"}:
                return True
    return False


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside mica (the user's line)."""
    package = str(Path(__file__).resolve().parents[2])
    frame, level = sys._getframe(1), 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def workers_can_start() -> bool:
    """False when worker processes would re-run the caller's script from the top.

    A script without an ``if __name__ == "__main__":`` guard runs again in each worker, which
    starts the same update again and stops on the update lock (the pool breaks). mica then
    does the work in this process instead, and says so once (a `RuntimeWarning` and the
    ``mica`` log).
    """
    global _warned
    main = _main_source()
    if main is None or _has_main_guard(main[1]):
        return True
    if not _warned:
        _warned = True
        message = (
            f"mica runs this work in one process: {main[0]} has no "
            "'if __name__ == \"__main__\":' guard, and worker processes would run it again. "
            "Put the script's calls under such a guard to use several processes."
        )
        _log.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=_caller_level())
    return False


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

    Runs inline for one worker, few items, or from a script without a main guard
    (`workers_can_start`). Workers come from a forkserver, not fork: they
    must not inherit the update lock or SQLite handles (a killed updater's children would
    otherwise hold its lock), and they exit with the caller.
    """
    items = list(items)
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(items) < 4 or not workers_can_start():
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
        while True:
            future = pending.popleft()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(func, *nxt))
            if not pending:
                break
            yield future.result()
        last = future.result()
    # after the pool's shutdown: a caller that stops at the last result (zip) leaves no pool
    yield last


class ProcessExecutor(Executor):
    """Units' steps in forkserver worker processes (``fn`` and units must be picklable)."""

    def __init__(self, workers: int | None = None, preload: Iterable[str] = ()):
        self.workers = workers
        self.preload = list(preload)

    def map(
        self, fn: Callable[[Any], Any], units: Iterable[Any], per_task: int = 1
    ) -> Iterator[Any]:
        return process_map(
            partial(call_unit, fn), [(u,) for u in units], self.workers, self.preload
        )
