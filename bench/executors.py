"""Executors run cells and hand each result back to the driver as soon as it is ready.

All executors share one interface, :meth:`Executor.run`, which yields ``(task, result)``
pairs in completion order. A task whose worker process dies is retried up to ``retries``
times and then yielded with a :class:`WorkerLost` result, so one lost worker never takes the
whole run down. Workers never see the results store: only the driver writes it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Callable, Iterable, Iterator, TypeVar

from tabscope.errors import MissingDependencyError, UsageError

__all__ = [
    "DaskExecutor",
    "Executor",
    "InProcessExecutor",
    "ProcessExecutor",
    "WorkerLost",
    "make_executor",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS = ("local", "processes", "dask")


class WorkerLost(RuntimeError):
    """The worker running a task died, on every allowed attempt."""


class Executor:
    """Base class: ``run(fn, tasks)`` yields ``(task, fn(task) or WorkerLost)``."""

    #: Number of workers, used to share the cores among cells.
    n_workers: int = 1

    def run(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[tuple[T, R | WorkerLost]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release workers and clusters the executor started."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class InProcessExecutor(Executor):
    """Run tasks one after another in the calling process."""

    def run(self, fn, tasks):
        for task in tasks:
            yield task, fn(task)


class _AsCompleted:
    """``concurrent.futures`` futures in completion order, accepting more while iterating

    (the interface of ``distributed.as_completed``).
    """

    def __init__(self, futures: Iterable[Future]):
        self._pending = set(futures)

    def add(self, future: Future) -> None:
        self._pending.add(future)

    def __iter__(self) -> Iterator[Future]:
        while self._pending:
            done, self._pending = wait(self._pending, return_when=FIRST_COMPLETED)
            yield from done


def _retrying(
    submit: Callable[[T], object],
    tasks: Iterable[T],
    retries: int,
    is_lost: Callable[[BaseException], bool],
    as_completed: Callable[[list], Iterable] = _AsCompleted,
) -> Iterator[tuple[T, object]]:
    """Submit every task, yield results as they complete, resubmit tasks whose worker died."""
    pending = {submit(task): (task, 0) for task in tasks}
    completed = as_completed(list(pending))
    for future in completed:
        task, attempts = pending.pop(future)
        try:
            result = future.result()
        except BaseException as exc:
            if not is_lost(exc):
                raise
            if attempts < retries:
                logger.warning("worker lost (%s); retrying task (attempt %d)", exc, attempts + 2)
                retry = submit(task)
                pending[retry] = (task, attempts + 1)
                completed.add(retry)
                continue
            result = WorkerLost(
                f"worker died {attempts + 1} time(s) while running this cell: "
                f"{type(exc).__name__}: {exc}"
            )
        yield task, result


class ProcessExecutor(Executor):
    """Run tasks in ``n_workers`` local processes (joblib's loky backend)."""

    def __init__(self, n_workers: int = 2, retries: int = 1):
        if not isinstance(n_workers, int) or n_workers < 1:
            raise ValueError(f"n_workers must be a positive integer, got {n_workers!r}")
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a non-negative integer, got {retries!r}")
        self.n_workers = n_workers
        self.retries = retries

    def run(self, fn, tasks):
        from joblib.externals.loky import get_reusable_executor
        from joblib.externals.loky.process_executor import BrokenProcessPool, TerminatedWorkerError

        def submit(task):
            # get_reusable_executor hands out a fresh pool after a worker died.
            return get_reusable_executor(max_workers=self.n_workers, timeout=60).submit(fn, task)

        yield from _retrying(
            submit, tasks, self.retries,
            lambda exc: isinstance(exc, (BrokenProcessPool, TerminatedWorkerError)),
        )


class DaskExecutor(Executor):
    """Run tasks on a Dask distributed cluster.

    Parameters
    ----------
    scheduler : str or None
        Address of a running scheduler (``tcp://HOST:PORT``); None starts a ``LocalCluster``
        of ``n_workers`` single-threaded worker processes.
    n_workers : int, default=2
        Size of the ``LocalCluster`` (ignored with ``scheduler``).
    retries : int, default=1
        Times a task is resubmitted after its worker died.
    """

    def __init__(self, scheduler: str | None = None, n_workers: int = 2, retries: int = 1):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise MissingDependencyError(
                "the Dask executor needs the 'distributed' extra: "
                "pip install 'tabscope[distributed]'"
            ) from None
        if scheduler is not None and not isinstance(scheduler, str):
            raise TypeError(f"scheduler must be an address string, got {type(scheduler).__name__}")
        if not isinstance(n_workers, int) or n_workers < 1:
            raise ValueError(f"n_workers must be a positive integer, got {n_workers!r}")
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a non-negative integer, got {retries!r}")
        self.retries = retries
        self._cluster = None
        if scheduler is None:
            self._cluster = LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=logging.ERROR,
            )
            self._client = Client(self._cluster)
        else:
            try:
                self._client = Client(scheduler, timeout="20s")
            except OSError as exc:
                raise UsageError(f"cannot reach Dask scheduler {scheduler!r}: {exc}") from None
        self.n_workers = max(1, len(self._client.scheduler_info().get("workers", {})) or n_workers)

    @property
    def client(self):
        return self._client

    def run(self, fn, tasks):
        from distributed import KilledWorker, as_completed
        from distributed.client import FutureCancelledError

        scattered: dict[int, object] = {}

        def submit(task):
            # pure=False: a retried task must run again, not reuse the lost result's key.
            # The scheduler itself reruns a task whose worker died (allowed_failures); our
            # retries cover the case where it gives up with KilledWorker.
            dataset = getattr(task, "dataset", None)
            if dataset is None:
                return self._client.submit(fn, task, pure=False)
            # Each dataset travels to the workers once, not once per cell; every worker keeps
            # a replica, so losing one worker loses no data.
            if id(dataset) not in scattered:
                scattered[id(dataset)] = self._client.scatter(dataset, broadcast=True, hash=False)
            light = dataclasses.replace(task, dataset=None)
            return self._client.submit(_with_dataset, fn, light, scattered[id(dataset)], pure=False)

        yield from _retrying(
            submit, tasks, self.retries,
            lambda exc: isinstance(exc, (KilledWorker, FutureCancelledError, OSError)),
            as_completed,
        )

    def close(self):
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def _with_dataset(fn: Callable, task, dataset):
    """Run ``fn`` on ``task`` with its scattered dataset put back in place."""
    return fn(dataclasses.replace(task, dataset=dataset))


def make_executor(
    kind: str = "local", *, n_workers: int = 1, scheduler: str | None = None, retries: int = 1
) -> Executor:
    """Build an executor by name: "local" (in-process), "processes" (joblib) or "dask"."""
    if kind not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {kind!r}")
    if kind == "dask":
        return DaskExecutor(scheduler=scheduler, n_workers=n_workers, retries=retries)
    if scheduler is not None:
        raise ValueError("scheduler is only meaningful with executor='dask'")
    if kind == "processes" or n_workers > 1:
        return ProcessExecutor(n_workers=n_workers, retries=retries)
    return InProcessExecutor()


def available_cores() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
