"""Running image or window tasks serially, on threads, on processes or on any Executor.

The seed's settings are accepted as documented: ``None`` (serial) or a tuple
``("process" | "thread", "cpu" | int)``; an instance of :class:`concurrent.futures.Executor`
(e.g. a Dask client's ``get_executor()``) may be passed instead. Results are yielded in task
order so that merged statistics are identical for every setting; at most a few tasks per worker
are in flight, so memory stays bounded. Workers never write outputs: they return small results
or window arrays to the caller, which owns the single writer of each output.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import ParameterError, SpectralMatchError, WorkerError

logger = logging.getLogger("spectralmatch")

T = TypeVar("T")
R = TypeVar("R")
WorkerSetting = tuple | list | Executor | None

ACCEPTED = ('None (serial), ("process", "cpu" | int), ("thread", "cpu" | int) or a '
            'concurrent.futures.Executor')


@dataclass(frozen=True)
class Workers:
    """A resolved parallel setting: ``backend`` is "serial", "thread", "process" or "executor"."""

    backend: str
    count: int = 1
    executor: Executor | None = None

    @property
    def is_serial(self) -> bool:
        return self.backend == "serial"


def cpu_count() -> int:
    """CPUs this process may use (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS/Windows
        return max(1, os.cpu_count() or 1)


def resolve_workers(setting: WorkerSetting, *, parameter: str = "window_parallel_workers") -> Workers:
    """Validate a parallel setting and return a :class:`Workers`.

    Raises:
        ParameterError: naming ``parameter`` when the setting is not accepted.
    """
    if setting is None or setting is False:
        return Workers("serial")
    if isinstance(setting, Executor):
        return Workers("executor", getattr(setting, "_max_workers", cpu_count()), setting)
    if isinstance(setting, (tuple, list)) and len(setting) == 2:
        backend, count = setting
        if backend in ("process", "thread"):
            if count == "cpu":
                return Workers(backend, cpu_count())
            if isinstance(count, int) and not isinstance(count, bool) and count >= 1:
                return Workers(backend, count)
    raise ParameterError(f"{parameter}={setting!r} is not accepted; use {ACCEPTED}")


def _process_context() -> multiprocessing.context.BaseContext:
    # fork is fast and keeps the parent's imports; elsewhere use the platform default.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _worker_init() -> None:
    # Ctrl-C is handled by the parent, which shuts the pool down.
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _raise_from_task(exc: BaseException, description: str) -> None:
    if isinstance(exc, SpectralMatchError):
        raise type(exc)(f"{description}: {exc}") from exc
    raise WorkerError(f"{description} failed: {type(exc).__name__}: {exc}") from exc


def run_ordered(fn: Callable[[T], R], tasks: Iterable[T], workers: Workers | WorkerSetting = None,
                *, describe: Callable[[T], str] = str, max_in_flight: int | None = None,
                parameter: str = "window_parallel_workers") -> Iterator[R]:
    """Yield ``fn(task)`` for every task, in task order.

    Args:
        fn: A picklable (module-level) function when the backend is "process".
        tasks: Task descriptions (paths, windows — never large arrays).
        workers: A :class:`Workers` or any accepted setting.
        describe: Turns a task into the text used in error messages (e.g. image and window).
        max_in_flight: Submitted but unconsumed tasks (default: 2 per worker).
        parameter: Parameter name for error messages about the setting.

    Raises:
        SpectralMatchError or WorkerError: the first failing task, naming it.
    """
    if not isinstance(workers, Workers):
        workers = resolve_workers(workers, parameter=parameter)
    if workers.is_serial:
        for task in tasks:
            try:
                result = fn(task)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                _raise_from_task(exc, describe(task))
            yield result
        return
    limit = max_in_flight or 2 * workers.count
    own_pool = workers.executor is None
    if own_pool:
        if workers.backend == "process":
            pool: Executor = ProcessPoolExecutor(workers.count, mp_context=_process_context(),
                                                 initializer=_worker_init)
        else:
            pool = ThreadPoolExecutor(workers.count, thread_name_prefix="spectralmatch")
    else:
        pool = workers.executor
    pending: deque[tuple[Any, Future]] = deque()
    iterator = iter(tasks)
    finished = False
    try:
        while True:
            while not finished and len(pending) < limit:
                try:
                    task = next(iterator)
                except StopIteration:
                    finished = True
                    break
                pending.append((task, pool.submit(fn, task)))
            if not pending:
                break
            task, future = pending.popleft()
            exc = future.exception()
            if exc is not None:
                _raise_from_task(exc, describe(task))
            yield future.result()
    except BaseException:
        for _, future in pending:
            future.cancel()
        if own_pool:
            _shutdown_now(pool)
        raise
    if own_pool:
        pool.shutdown(wait=True)


def _shutdown_now(pool: Executor) -> None:
    """Stop a pool without waiting for queued work (processes are terminated)."""
    processes = list(getattr(pool, "_processes", {}).values()) if isinstance(
        pool, ProcessPoolExecutor) else []
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=5)


def run_unordered_images(fn: Callable[[T], R], tasks: list[T], workers: Workers | WorkerSetting,
                         *, describe: Callable[[T], str] = str) -> list[R]:
    """Run one task per image (each may write its own output); results in task order."""
    return list(run_ordered(fn, tasks, workers, describe=describe,
                            max_in_flight=len(tasks) or 1, parameter="image_parallel_workers"))


def kernel_threads(*settings: Workers) -> int:
    """Threads one kernel call may use: all CPUs when every given setting is serial, else 1.

    Kernels split a window into row bands on threads (see ``spectralmatch.kernels._threads``);
    when images or windows already run in parallel, that would only oversubscribe the CPUs.
    """
    return cpu_count() if all(s.is_serial for s in settings) else 1


def read_ahead(image_workers: Workers, window_workers: Workers) -> Workers:
    """Window setting of an apply pass: one read-ahead thread when everything else is serial.

    With serial settings the caller would read, correct and write each window in turn; one
    background thread reading and correcting the next window while the caller writes the
    current one overlaps I/O with computation. Results are unchanged (ordered, per pixel).
    """
    if image_workers.is_serial and window_workers.is_serial:
        return Workers("thread", 1)
    return window_workers


def statistics_workers(image_workers: Workers, window_workers: Workers) -> Workers:
    """Workers of a statistics pass (small accumulators per window, merged in task order).

    The window setting wins, then the image setting; when both are serial the windows are
    read and accumulated on one thread per CPU — the merge order, hence every number, is the
    same as in a serial run.
    """
    if not window_workers.is_serial:
        return window_workers
    if not image_workers.is_serial:
        return image_workers
    return Workers("thread", cpu_count())
