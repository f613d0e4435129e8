"""Python wrapper of the ``blocks`` kernels: block sums/counts of a window, map interpolation."""
from __future__ import annotations

import numpy as np

from spectralmatch._kernels import blocks as _blocks
from spectralmatch.errors import ParameterError

#: Pixel dtypes the kernels are compiled for (``src_cython/pixel_types.pxd``).
KERNEL_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "uint64",
                 "float32", "float64")


def pixel_nodata(nodata: float | None, dtype: np.dtype) -> float | None:
    """``nodata`` as the pixel type holds it (float32 data compare with float32(nodata), as GDAL
    does); integer nodata values are compared exactly (a fraction matches no integer pixel)."""
    if nodata is None:
        return None
    if np.dtype(dtype).kind == "f":
        with np.errstate(over="ignore"):
            return float(np.asarray(float(nodata)).astype(dtype))
    return float(nodata)


def new_extrema(bands: int) -> np.ndarray:
    """A (bands, 2) [min, max] accumulator that any valid pixel will update."""
    ext = np.empty((bands, 2), dtype=np.float64)
    ext[:, 0] = np.inf
    ext[:, 1] = -np.inf
    return ext


def accumulate_cells(data: np.ndarray, row_cell: np.ndarray, col_cell: np.ndarray,
                     nodata: float | None, sums: np.ndarray, counts: np.ndarray,
                     extrema: np.ndarray, mask: np.ndarray | None = None) -> None:
    """Add the valid pixels of a window into per-cell sums and counts (in place, float64).

    A pixel is valid in a band when it is finite and differs from ``nodata``. Valid pixels
    with ``mask != 0`` (or all, without a mask) whose row and column cells are both
    non-negative are added; ``extrema`` tracks the min/max of all valid pixels (mask ignored).

    Args:
        data (np.ndarray): (bands, rows, cols) or (rows, cols) window.
        row_cell (np.ndarray): Cell row of each window row (negative: skipped).
        col_cell (np.ndarray): Cell column of each window column (negative: skipped).
        nodata (float | None): Nodata value (NaN allowed) or None.
        sums (np.ndarray): float64 (bands, cell rows, cell cols), C-contiguous.
        counts (np.ndarray): float64, same shape as ``sums``.
        extrema (np.ndarray): float64 (bands, 2), see :func:`new_extrema`.
        mask (np.ndarray | None): uint8 (rows, cols); 0 excludes a pixel from sums/counts.
    """
    src = data[np.newaxis] if data.ndim == 2 else data
    if src.ndim == 3 and not src.flags.c_contiguous:
        src = np.ascontiguousarray(src)
    if src.ndim != 3 or src.dtype.name not in KERNEL_DTYPES:
        raise ParameterError(f"data must be a 2-D/3-D array of {', '.join(KERNEL_DTYPES)}, got "
                             f"{data.dtype} {data.shape}")
    for name, arr in (("sums", sums), ("counts", counts), ("extrema", extrema)):
        if arr.dtype != np.float64 or not arr.flags.c_contiguous:
            raise ParameterError(f"{name} must be a C-contiguous float64 array")
    rc = np.ascontiguousarray(row_cell, dtype=np.int32)
    cc = np.ascontiguousarray(col_cell, dtype=np.int32)
    m = None if mask is None else np.ascontiguousarray(mask, dtype=np.uint8)
    nodata = pixel_nodata(nodata, src.dtype)
    use = nodata is not None
    _blocks.accumulate_cells(src, rc, cc, nodata if use else 0.0, use, m, sums, counts,
                             extrema)


def interpolate_map(block_map: np.ndarray, frow: np.ndarray, fcol: np.ndarray) -> np.ndarray:
    """NaN-aware bilinear interpolation of a (rows, cols) block map at a grid of positions.

    Args:
        block_map (np.ndarray): Map with NaN for cells without a value; cell centres at integer
            coordinates.
        frow (np.ndarray): Continuous block row of each output row (clamped to the map).
        fcol (np.ndarray): Continuous block column of each output column (clamped).

    Returns:
        np.ndarray: float64 (len(frow), len(fcol)); NaN where no neighbouring cell has a value.
    """
    m = np.ascontiguousarray(block_map, dtype=np.float64)
    if m.ndim != 2 or m.size == 0:
        raise ParameterError(f"block_map must be a non-empty 2-D array, got shape {m.shape}")
    fr = np.ascontiguousarray(frow, dtype=np.float64).reshape(-1)
    fc = np.ascontiguousarray(fcol, dtype=np.float64).reshape(-1)
    out = np.empty((fr.size, fc.size), dtype=np.float64)
    _blocks.interpolate_map(m, fr, fc, out)
    return out
