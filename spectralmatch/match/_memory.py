"""Keeping the memory of local block adjustment flat: heap trimming and worker GDAL caches.

* glibc keeps freed heap memory when GDAL's block cache, its compression buffers and the window
  arrays are freed in an interleaved order; :func:`trim_heap` gives it back (microseconds).
* Every process has its own GDAL block cache (up to ``gdal.GetCacheMax()``, capped by
  ``spectralmatch.io.raster`` unless ``GDAL_CACHEMAX`` is set). Worker processes of our own
  pools never use more than their share of it: workers that only read windows read each block
  once, so a small cache suffices; image workers read and write, so they split the parent's
  budget (keeping at least one row of output tiles). Pools passed in as an ``Executor`` belong
  to the caller and are left alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

from osgeo import gdal

from ..parallel import Workers

#: GDAL cache of a worker process that only reads windows (each window is read once).
READ_WORKER_CACHE = 32 * 1024 * 1024
#: Smallest GDAL cache of an image worker process (one row of 512² output tiles of an
#: 8192-pixel-wide 4-band 16-bit image is 32 MB).
MIN_IMAGE_WORKER_CACHE = 64 * 1024 * 1024


def _load_malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc: nothing to do
        return None
    trim.argtypes = [ctypes.c_size_t]
    return trim


_MALLOC_TRIM = _load_malloc_trim()
# Set in the parent before pools fork: its pid and the cache of image workers (which read and
# write) and of workers that only read windows (None: leave the cache as it is).
_PLAN: dict[str, object] = {"pid": None, "image": None, "read": None}
_APPLIED = {"pid": None}


def trim_heap() -> None:
    """Give freed heap memory back to the system (glibc only; no-op elsewhere)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def plan_worker_caches(image_workers: Workers, window_workers: Workers) -> None:
    """Record, in the parent, the GDAL cache each kind of worker process will use."""
    total = gdal.GetCacheMax()
    image = None
    if image_workers.backend == "process":
        image = max(MIN_IMAGE_WORKER_CACHE, total // max(1, image_workers.count))
    own_processes = "process" in (image_workers.backend, window_workers.backend)
    _PLAN.update(pid=os.getpid(), image=image, read=READ_WORKER_CACHE if own_processes else None)


def enter_worker(kind: str) -> None:
    """In a worker process of our own pool, apply its GDAL cache share (once per process).

    Args:
        kind (str): "image" (reads and writes one image) or "read" (reads windows).
    """
    pid = os.getpid()
    if _PLAN["pid"] is None or pid == _PLAN["pid"] or _APPLIED["pid"] == pid:
        return
    size = _PLAN.get(kind)
    if size:
        gdal.SetCacheMax(min(int(size), gdal.GetCacheMax()))
    _APPLIED["pid"] = pid
