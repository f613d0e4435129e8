"""Numeric ranges of output dtypes, as the correction kernels need them."""
from __future__ import annotations

import numpy as np


def output_range(dtype: str) -> tuple[bool, float, float]:
    """(is_integer, lowest, highest) representable value of ``dtype`` as float64.

    For 64-bit integers the float64 bounds are pulled inside the range so that a clipped value
    converts back without overflow.
    """
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        lo, hi = float(info.min), float(info.max)
        if dt.itemsize == 8:
            hi = float(np.nextafter(np.float64(info.max), 0))
            lo = float(np.nextafter(np.float64(info.min), 0)) if info.min else 0.0
        return True, lo, hi
    info = np.finfo(dt)
    return False, float(info.min), float(info.max)
