"""Units' steps on a dask.distributed cluster; the runner still commits, in unit order.

Workers run the side-effect-free steps (fetch into the unit's staging folder, validate,
compute, write a store chunk under a name the runner registered) on the archive's shared
filesystem; results come back to the runner's process in unit order, where the one writer
commits them, as on one machine. A worker that dies in the middle of a task loses nothing:
the scheduler runs the task again on another worker (a step has no side effect outside its
staging folder). A step that raises returns a `UnitError` like every executor, so a bad
unit is recorded and the others go on.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from mica import config
from mica.engine.executors.base import Executor, call_unit

INSTALL_HINT = "pip install 'chandra-mica[dask]'"
#: the variable a local cluster's workers start without (see `DaskExecutor`), and its setting
_TRIM_VAR = config.MALLOC_TRIM_THRESHOLD
_TRIM = f"distributed.nanny.pre-spawn-environ.{_TRIM_VAR}"
#: the dask settings of a cluster mica starts (see `DaskExecutor`)
OWN_CLUSTER = {
    _TRIM: None,
    # dask's statistical profiler samples every worker's task stack each 10 ms (the
    # dashboard's profile page), and its memory and system monitors poll psutil several
    # times a second: on V&V's second-long tasks all three cost the workers 5-10 % of their
    # CPU (measured on 2 workers, 200 revisions: 146-160 s of worker CPU, 138-141 without)
    "distributed.worker.profile.enabled": False,
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
}


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ImportError(f"running on a cluster needs dask.distributed: {INSTALL_HINT}") from None
    return distributed


class _OnWorker:
    """A unit's step as a worker runs it: one process per task slot already, so mica's own
    process pools (validation, simulation) stay inline there."""

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn

    def __call__(self, units: list[Any]) -> list[Any]:
        os.environ[config.WORKERS] = "1"
        return [call_unit(self.fn, unit) for unit in units]


class DaskExecutor(Executor):
    """Run units' steps on a dask.distributed cluster.

    Parameters
    ----------
    client : distributed.Client, optional
        A connected client (the caller keeps it open and closes it).
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``), when no client is given.
    workers : int, optional
        With neither: start a `distributed.LocalCluster` of this many single-threaded
        worker processes (closed with the executor), with the settings of `OWN_CLUSTER`.
    window : int, optional
        Tasks submitted ahead of the one the runner waits for (default: 3 per worker), so
        memory holds a bounded number of results.
    batch : int, optional
        Units per task: the scheduler's cost per task (a few ms) is paid once per batch, for
        units of little work each. A worker killed mid-task has the whole batch run again.
        Default: the job's own hint (e.g. 8 observations of acquisition statistics, one
        file chunk or V&V revision).
    """

    def __init__(
        self,
        client: Any = None,
        scheduler: str | None = None,
        workers: int | None = None,
        window: int | None = None,
        batch: int | None = None,
    ):
        distributed = _distributed()
        self._own: list[Any] = []
        if client is None:
            if scheduler is not None:
                client = distributed.Client(scheduler)
            else:
                import dask

                # dask's nanny sets MALLOC_TRIM_THRESHOLD_, which fixes glibc's mmap threshold:
                # every large array of a validation or chunk build is then mapped and faulted
                # in afresh, and the workers measured 25 % slower than without it. A nanny
                # started before leaves it in this process's environment: kept out too.
                trim = os.environ.pop(_TRIM_VAR, None)
                try:
                    with dask.config.set(OWN_CLUSTER):
                        cluster = distributed.LocalCluster(
                            n_workers=workers or 2,
                            threads_per_worker=1,
                            processes=True,
                            dashboard_address=":0",
                        )
                finally:
                    if trim is not None:
                        os.environ[_TRIM_VAR] = trim
                self._own.append(cluster)
                client = distributed.Client(cluster)
            self._own.insert(0, client)
        self.client = client
        self.window = window
        self.batch = None if batch is None else max(1, batch)

    @property
    def dashboard(self) -> str | None:
        """The cluster's dashboard address (None when it has none)."""
        try:
            return self.client.dashboard_link
        except Exception:  # noqa: BLE001  (no dashboard: bokeh missing, disabled)
            return None

    def workers(self) -> int:
        """Worker processes connected now."""
        return len(self.client.scheduler_info().get("workers", {}))

    def map(
        self, fn: Callable[[Any], Any], units: Iterable[Any], per_task: int = 1
    ) -> Iterator[Any]:
        step = _OnWorker(fn)
        todo = iter(units)
        size = self.batch or max(1, per_task)
        batches = iter(lambda: list(islice(todo, size)), [])
        window = self.window or 3 * max(1, self.workers())
        pending: deque = deque(
            self.client.submit(step, b, pure=False) for _, b in zip(range(window), batches)
        )
        while pending:
            future = pending.popleft()
            nxt = next(batches, None)
            if nxt is not None:
                pending.append(self.client.submit(step, nxt, pure=False))
            yield from future.result()
            future.release()

    def close(self) -> None:
        """Close the client and cluster this executor started (not a caller's client)."""
        for thing in self._own:
            thing.close()
        self._own.clear()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_executor(scheduler: str | None = None, workers: int | None = None) -> Executor | None:
    """The executor the command line's ``--scheduler`` / ``--workers`` ask for (None: the
    product's default)."""
    if scheduler is None and workers is None:
        return None
    return DaskExecutor(scheduler=scheduler, workers=workers)
