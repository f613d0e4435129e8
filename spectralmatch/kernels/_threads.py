"""Row-band threading of kernel calls.

Kernels release the GIL, so one window can be split into row bands computed on threads.
Results are per pixel and do not change; only the wall time does. The pool is shared and
recreated after ``fork()`` (a child inherits the pool object but not its threads).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def _forget_pool() -> None:
    global _pool, _pool_size
    _pool, _pool_size = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def row_bands(rows: int, threads: int, *, min_rows: int = 16) -> list[tuple[int, int]]:
    """Split ``rows`` into at most ``threads`` contiguous (start, stop) bands."""
    count = max(1, min(threads, rows // max(min_rows, 1)))
    edges = [rows * i // count for i in range(count + 1)]
    return [(edges[i], edges[i + 1]) for i in range(count) if edges[i + 1] > edges[i]]


def run_row_bands(fn: Callable[[int, int], None], rows: int, threads: int) -> None:
    """Call ``fn(start, stop)`` for the row bands of a window on up to ``threads`` threads."""
    global _pool, _pool_size
    bands = row_bands(rows, threads)
    if len(bands) <= 1:
        for start, stop in bands:
            fn(start, stop)
        return
    if _pool is None or _pool_size < len(bands):
        _pool = ThreadPoolExecutor(len(bands), thread_name_prefix="spectralmatch-kernel")
        _pool_size = len(bands)
    for future in [_pool.submit(fn, start, stop) for start, stop in bands]:
        future.result()
