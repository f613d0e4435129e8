"""Python wrappers of the ``masks`` kernels: validate inputs, allocate, call the compiled loop.

A value is valid when it is finite and differs from the band's nodata value (when one is set).
``valid_mask`` combines the bands of a window into one uint8 mask (1 = valid).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from spectralmatch._kernels import masks as _masks

__all__ = ["valid_mask"]

NodataArg = float | None | Sequence[float | None]


def _per_band_nodata(nodata: NodataArg, bands: int) -> list[float | None]:
    if nodata is None or isinstance(nodata, (int, float, np.number)):
        return [None if nodata is None else float(nodata)] * bands
    values = [None if v is None else float(v) for v in nodata]
    if len(values) != bands:
        raise ValueError(f"{len(values)} nodata values given for {bands} bands")
    return values


def _same(values: list[float | None]) -> bool:
    first = values[0]
    for v in values[1:]:
        if first is None or v is None:
            if (first is None) != (v is None):
                return False
        elif not (v == first or (math.isnan(v) and math.isnan(first))):
            return False
    return True


def valid_mask(data: np.ndarray, nodata: NodataArg, *, require_all_bands: bool = False,
               out: np.ndarray | None = None) -> np.ndarray:
    """Validity of each pixel of a window across its bands.

    Args:
        data: Pixel values, shape (bands, rows, cols) or (rows, cols) for one band, any dtype
            GDAL reads (uint8 … uint64, int8 … int64, float32, float64).
        nodata: One nodata value for every band, one value per band, or None (no nodata:
            only NaN/±inf are invalid).
        require_all_bands: True: a pixel is valid when every band is valid; False (default):
            when at least one band is valid.
        out: Optional uint8 C-contiguous array (rows, cols) to fill.

    Returns:
        uint8 array (rows, cols): 1 where the pixel is valid, 0 elsewhere.
    """
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3:
        raise ValueError(f"data must have shape (bands, rows, cols), got {arr.shape}")
    if arr.dtype == np.bool_:
        arr = arr.view(np.uint8)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    bands, rows, cols = arr.shape
    if out is None:
        out = np.empty((rows, cols), dtype=np.uint8)
    elif out.dtype != np.uint8 or out.shape != (rows, cols):
        raise ValueError(f"out must be uint8 with shape ({rows}, {cols})")
    kernel = _masks.valid_all_bands if require_all_bands else _masks.valid_any_band
    values = _per_band_nodata(nodata, bands)
    if bands == 0 or _same(values):
        nd = values[0] if bands else None
        kernel(arr, 0.0 if nd is None else nd, nd is not None, out)
        return out
    # Bands with different nodata values: one kernel call per band, combined here.
    part = np.empty((rows, cols), dtype=np.uint8)
    for b, nd in enumerate(values):
        kernel(arr[b:b + 1], 0.0 if nd is None else nd, nd is not None, part)
        if b == 0:
            out[...] = part
        elif require_all_bands:
            np.minimum(out, part, out=out)
        else:
            np.maximum(out, part, out=out)
    return out


__all__.append("apply_keep_mask")


def apply_keep_mask(data: np.ndarray, keep: np.ndarray, nodata: float) -> int:
    """Set every band of a window to ``nodata`` where ``keep`` is 0, in place.

    Args:
        data: C-contiguous pixel values (bands, rows, cols) or (rows, cols), any dtype GDAL
            reads; modified in place.
        keep: uint8 (or bool) array (rows, cols): 1 keeps the pixel, 0 sets it to ``nodata``.
        nodata: The value written; it must be representable in ``data``'s dtype.

    Returns:
        The number of pixels (per band) set to nodata.
    """
    arr = data[np.newaxis] if data.ndim == 2 else data
    if arr.ndim != 3:
        raise ValueError(f"data must have shape (bands, rows, cols), got {data.shape}")
    if not arr.flags.c_contiguous or not arr.flags.writeable or not arr.dtype.isnative:
        raise ValueError("data must be a writeable, C-contiguous, native-byte-order array")
    mask = np.ascontiguousarray(keep)
    if mask.dtype == np.bool_:
        mask = mask.view(np.uint8)
    if mask.dtype != np.uint8 or mask.shape != arr.shape[1:]:
        raise ValueError(f"keep must be uint8 with shape {arr.shape[1:]}, got {mask.dtype} "
                         f"{mask.shape}")
    if arr.dtype.kind in "iu":
        value = int(nodata)
        info = np.iinfo(arr.dtype)
        if value != nodata or not info.min <= value <= info.max:
            raise ValueError(f"nodata {nodata} cannot be stored in {arr.dtype}")
    else:
        value = float(nodata)
    return _masks.apply_keep_mask(arr, mask, value)
