"""Converting valid pixel values to an output dtype (numpy; used where no kernel is needed).

Same rule as the correction kernels (``src_cython/convert.pxd``): integers are rounded to
nearest (half away from zero) and clipped to the dtype range, floats are clipped to the finite
range, NaN becomes the nodata value (or 0), and a valid value that would equal the nodata value
is moved to the nearest other value so that valid pixels never turn into nodata.
"""
from __future__ import annotations

import math

import numpy as np

from ..io.dtypes import output_range


def convert_valid(values: np.ndarray, dtype: str, nodata: float | None) -> np.ndarray:
    """``values`` (valid pixels) as ``dtype`` following the module's rule."""
    target = np.dtype(dtype)
    if values.dtype == target:
        return values
    is_integer, lo, hi = output_range(target.name)
    if values.dtype.kind in "iu" and is_integer and (
            np.iinfo(values.dtype).min >= lo and np.iinfo(values.dtype).max <= hi):
        out = values.astype(target)  # widening: exact, no value can change
    else:
        v = values.astype(np.float64)
        nan = np.isnan(v)
        if is_integer:
            v = np.trunc(v + np.copysign(0.5, v))
        np.clip(v, lo, hi, out=v)
        if nodata is not None and not math.isnan(nodata):
            hit = v == nodata
            if hit.any():
                if is_integer:
                    v[hit] = nodata + 1 if nodata < hi else nodata - 1
                else:
                    v[hit] = np.nextafter(nodata, np.inf if nodata < hi else -np.inf)
        if nan.any():
            v[nan] = 0.0 if nodata is None or (is_integer and math.isnan(nodata)) else nodata
        out = v.astype(target)
    if nodata is not None and not math.isnan(nodata) and out.dtype.kind in "iu":
        # a widened value may still equal the nodata value of the new type
        hit = out == nodata
        if hit.any():
            out[hit] = nodata + 1 if nodata < hi else nodata - 1
    return out
