"""Tests for spectralmatch.parallel: worker settings, ordered results, errors, bounded work."""
from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from spectralmatch.errors import ParameterError, RasterError, SpectralMatchError, WorkerError
from spectralmatch.parallel import (
    Workers,
    cpu_count,
    resolve_workers,
    run_ordered,
    run_unordered_images,
)


# Module-level task functions: the process backend pickles them.
def square_with_jitter(n: int) -> tuple[int, int]:
    time.sleep(0.002 * ((n * 7) % 5))    # finish out of order
    return n, n * n


def fail_on_three(n: int) -> int:
    if n == 3:
        raise ZeroDivisionError("bad pixel maths")
    return n


def raster_error_on_two(n: int) -> int:
    if n == 2:
        raise RasterError("band 4 is missing")
    return n


def worker_pid(_: int) -> int:
    time.sleep(0.01)
    return os.getpid()


# --- resolve_workers ---------------------------------------------------------------------------

@pytest.mark.parametrize("setting,backend,count", [
    (None, "serial", 1),
    (False, "serial", 1),
    (("thread", 2), "thread", 2),
    (["thread", 3], "thread", 3),
    (("process", 1), "process", 1),
    (("process", "cpu"), "process", None),
    (("thread", "cpu"), "thread", None),
])
def test_resolve_workers_accepted(setting, backend, count) -> None:
    workers = resolve_workers(setting)
    assert workers.backend == backend
    assert workers.count == (cpu_count() if count is None else count)
    assert workers.is_serial == (backend == "serial")


def test_resolve_workers_executor_instance() -> None:
    with ThreadPoolExecutor(3) as pool:
        workers = resolve_workers(pool)
        assert workers.backend == "executor" and workers.executor is pool and workers.count == 3


@pytest.mark.parametrize("bad", [
    True, "thread", ("thread",), ("thread", 0), ("thread", -2), ("thread", 2.0),
    ("thread", True), ("process", "all"), ("gpu", 2), ("thread", 2, 3), 4, ("cpu", "thread"),
    ("thread", None),
])
def test_resolve_workers_rejected_naming_the_parameter(bad) -> None:
    with pytest.raises(ParameterError, match=r"image_parallel_workers=.*process.*thread"):
        resolve_workers(bad, parameter="image_parallel_workers")
    with pytest.raises(ParameterError, match="window_parallel_workers"):
        list(run_ordered(square_with_jitter, [1], bad))


def test_cpu_count_is_positive() -> None:
    assert 1 <= cpu_count() <= (os.cpu_count() or 1)


# --- run_ordered -------------------------------------------------------------------------------

def test_results_are_identical_and_ordered_for_every_backend() -> None:
    tasks = list(range(23))
    expected = [(n, n * n) for n in tasks]
    assert list(run_ordered(square_with_jitter, tasks, None)) == expected
    assert list(run_ordered(square_with_jitter, iter(tasks), ("thread", 3))) == expected
    assert list(run_ordered(square_with_jitter, tasks, ("process", 2))) == expected
    with ThreadPoolExecutor(4) as pool:
        assert list(run_ordered(square_with_jitter, (t for t in tasks), pool)) == expected
        # The caller's executor is not shut down.
        assert pool.submit(lambda: 5).result() == 5
    assert list(run_ordered(square_with_jitter, [], ("thread", 2))) == []
    assert list(run_ordered(square_with_jitter, tasks, Workers("thread", 2),
                            max_in_flight=1)) == expected


def test_process_backend_runs_in_other_processes() -> None:
    pids = set(run_ordered(worker_pid, range(6), ("process", 2)))
    assert os.getpid() not in pids and len(pids) >= 1
    assert not multiprocessing.active_children()


@pytest.mark.parametrize("setting", [None, ("thread", 2), ("process", 2), "executor"],
                         ids=str)
def test_worker_errors_name_the_task(setting) -> None:
    pool = ThreadPoolExecutor(2) if setting == "executor" else None
    workers = pool if pool is not None else setting
    try:
        with pytest.raises(WorkerError, match=r"image_3 window 3 failed: ZeroDivisionError: "
                                              r"bad pixel maths") as err:
            list(run_ordered(fail_on_three, range(8), workers,
                             describe=lambda n: f"image_{n} window {n}"))
        assert isinstance(err.value.__cause__, ZeroDivisionError)
        # SpectralMatchError subclasses keep their type, with the task prefixed.
        with pytest.raises(RasterError, match=r"^task two: band 4 is missing$"):
            list(run_ordered(raster_error_on_two, range(5), workers,
                             describe=lambda n: "task two" if n == 2 else str(n)))
    finally:
        if pool is not None:
            pool.shutdown()
    assert issubclass(RasterError, SpectralMatchError)


def test_results_before_the_failure_are_delivered() -> None:
    got = []
    with pytest.raises(WorkerError):
        for value in run_ordered(fail_on_three, range(10), ("thread", 2)):
            got.append(value)
    assert got == [0, 1, 2]


@pytest.mark.parametrize("workers,max_in_flight,limit", [
    (("thread", 2), None, 4),     # default: 2 per worker
    (("thread", 3), 2, 2),
    (("thread", 1), 5, 5),
])
def test_bounded_in_flight(workers, max_in_flight, limit) -> None:
    lock = threading.Lock()
    state = {"produced": 0, "running": 0, "max_running": 0, "max_ahead": 0}

    def tasks():
        for i in range(40):
            with lock:
                state["produced"] += 1
            yield i

    def work(n: int) -> int:
        with lock:
            state["running"] += 1
            state["max_running"] = max(state["max_running"], state["running"])
        time.sleep(0.002)
        with lock:
            state["running"] -= 1
        return n

    consumed = 0
    for value in run_ordered(work, tasks(), workers, max_in_flight=max_in_flight):
        assert value == consumed
        time.sleep(0.003)     # a slow consumer: the pool must not run ahead
        consumed += 1
        with lock:
            state["max_ahead"] = max(state["max_ahead"], state["produced"] - consumed)
    assert consumed == 40
    assert state["max_ahead"] <= limit
    assert state["max_ahead"] >= limit - 1          # the pool does run ahead up to the bound
    assert state["max_running"] <= resolve_workers(workers).count


def _spectralmatch_threads() -> list[threading.Thread]:
    # Run pools only; the shared kernel row-band pool ("spectralmatch-kernel") lives on.
    return [t for t in threading.enumerate()
            if t.name.startswith("spectralmatch") and not t.name.startswith("spectralmatch-kernel")]


def test_keyboard_interrupt_from_the_consumer_stops_the_thread_pool() -> None:
    executed = []
    produced = []

    def tasks():
        for i in range(10_000):
            produced.append(i)
            yield i

    def work(n: int) -> int:
        time.sleep(0.005)
        executed.append(n)
        return n

    with pytest.raises(KeyboardInterrupt):
        for value in run_ordered(work, tasks(), ("thread", 2)):
            if value == 2:
                raise KeyboardInterrupt
    time.sleep(0.1)
    assert len(produced) <= 3 + 4
    assert len(executed) <= len(produced)
    deadline = time.monotonic() + 2
    while _spectralmatch_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _spectralmatch_threads()


def test_closing_the_generator_terminates_worker_processes() -> None:
    results = run_ordered(worker_pid, range(1000), ("process", 2))
    next(results)
    assert len(multiprocessing.active_children()) == 2
    results.close()      # what a KeyboardInterrupt in the consumer's loop does
    deadline = time.monotonic() + 5
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not multiprocessing.active_children()


def test_run_unordered_images_returns_all_results_in_order() -> None:
    assert run_unordered_images(square_with_jitter, [3, 1, 2], ("thread", 2)) == [
        (3, 9), (1, 1), (2, 4)]
    assert run_unordered_images(square_with_jitter, [], None) == []
    with pytest.raises(ParameterError, match="image_parallel_workers"):
        run_unordered_images(square_with_jitter, [1], ("thread", 0))


def test_row_bands_cover_rows_once_and_run_on_threads() -> None:
    from spectralmatch.kernels._threads import row_bands, run_row_bands

    for rows, threads in [(1, 4), (15, 2), (100, 3), (1000, 2), (7, 1)]:
        bands = row_bands(rows, threads)
        covered = [r for start, stop in bands for r in range(start, stop)]
        assert covered == list(range(rows))
        assert len(bands) <= threads
    seen = np.zeros(200, int)
    names = set()

    def mark(start: int, stop: int) -> None:
        seen[start:stop] += 1
        names.add(threading.current_thread().name)

    run_row_bands(mark, 200, 2)
    assert (seen == 1).all()
    assert any(n.startswith("spectralmatch-kernel") for n in names)


def test_kernel_threads_only_when_everything_is_serial() -> None:
    from spectralmatch.parallel import cpu_count, kernel_threads

    serial = resolve_workers(None)
    assert kernel_threads(serial, serial) == cpu_count()
    assert kernel_threads(serial, resolve_workers(("thread", 2))) == 1


def test_read_ahead_only_when_everything_is_serial() -> None:
    from spectralmatch.parallel import read_ahead

    serial = resolve_workers(None)
    threads = resolve_workers(("thread", 2))
    assert read_ahead(serial, serial).backend == "thread"
    assert read_ahead(serial, serial).count == 1
    assert read_ahead(serial, threads) is threads
    assert read_ahead(resolve_workers(("process", 2)), serial).is_serial


def test_statistics_workers_prefer_the_window_setting_then_threads() -> None:
    from spectralmatch.parallel import cpu_count, statistics_workers

    serial = resolve_workers(None)
    windows = resolve_workers(("process", 2))
    images = resolve_workers(("thread", 3))
    assert statistics_workers(images, windows) is windows
    assert statistics_workers(images, serial) is images
    both_serial = statistics_workers(serial, serial)
    assert (both_serial.backend, both_serial.count) == ("thread", cpu_count())
