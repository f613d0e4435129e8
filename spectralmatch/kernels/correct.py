"""Python wrapper of the ``correct`` kernels: validates, allocates, calls the compiled loop."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from spectralmatch._kernels import correct as _correct
from spectralmatch.errors import ParameterError
from spectralmatch.io.dtypes import output_range

#: Input/output dtypes the kernel is compiled for (``src_cython/pixel_types.pxd``).
KERNEL_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "uint64",
                 "float32", "float64")


def _input_nodata(nodata: float | None, dtype: np.dtype) -> np.ndarray:
    """``nodata`` as a one-value array of the pixel type, or empty when no pixel can equal it.

    Comparing in the pixel type matches GDAL and numpy (float32 pixels equal to float32(0.1)
    are nodata 0.1); a value the type cannot hold (-9999 in uint16, 0.5 in an integer type,
    NaN) matches no pixel instead of wrapping around.
    """
    empty = np.empty(0, dtype=dtype)
    if nodata is None or not math.isfinite(nodata):
        return empty  # NaN pixels are invalid anyway: their result is NaN, hence nodata
    if dtype.kind == "f":
        with np.errstate(over="ignore"):
            value = np.array([nodata], dtype=dtype)
        return value if np.isfinite(value[0]) else empty
    if float(nodata) != int(nodata):
        return empty
    info = np.iinfo(dtype)
    if not info.min <= int(nodata) <= info.max:
        return empty
    return np.array([int(nodata)], dtype=dtype)


def apply_linear(data: np.ndarray, scale: Sequence[float], offset: Sequence[float], *,
                 nodata: float | None, out_dtype: str | np.dtype,
                 calculation_dtype: str = "float64", out: np.ndarray | None = None) -> np.ndarray:
    """Per-band ``scale·x + offset`` of a window, converted to ``out_dtype``.

    Pixels equal to ``nodata`` (compared in the input's dtype; NaN pixels too) become
    ``nodata``; every other pixel is corrected, then rounded to nearest (half away from zero)
    and clipped for integer outputs (float outputs are clipped to the finite range); a valid
    result equal to ``nodata`` is moved to the nearest other value of the output dtype. NaN
    results become ``nodata`` (stay NaN for float outputs without nodata).

    Args:
        data (np.ndarray): (bands, rows, cols) or (rows, cols) window of any kernel dtype
            (copied first when not C-contiguous).
        scale (Sequence[float]): One gain per band.
        offset (Sequence[float]): One offset per band.
        nodata (float | None): Nodata value of input and output, or None (every pixel valid).
        out_dtype (str | np.dtype): Output dtype.
        calculation_dtype (str): "float64", or "float32" to compute ``a·x + b`` in single
            precision like the original spectralmatch.
        out (np.ndarray | None): Optional preallocated output of the same shape.

    Returns:
        np.ndarray: The corrected window (``out`` when given).
    """
    squeeze = data.ndim == 2
    src = data[np.newaxis] if squeeze else data
    if src.ndim != 3:
        raise ParameterError(f"data must have 2 or 3 dimensions, got shape {data.shape}")
    if src.dtype.name not in KERNEL_DTYPES:
        raise ParameterError(f"data dtype {src.dtype} is not supported; use one of "
                             f"{', '.join(KERNEL_DTYPES)}")
    out_name = np.dtype(out_dtype).name
    if out_name not in KERNEL_DTYPES:
        raise ParameterError(f"out_dtype {out_dtype!r} is not supported; use one of "
                             f"{', '.join(KERNEL_DTYPES)}")
    calc = np.dtype(calculation_dtype).name
    if calc not in ("float32", "float64"):
        raise ParameterError(f"calculation_dtype={calculation_dtype!r} is not accepted; use "
                             "'float32' or 'float64'")
    bands = src.shape[0]
    a = np.ascontiguousarray(scale, dtype=np.float64).reshape(-1)
    b = np.ascontiguousarray(offset, dtype=np.float64).reshape(-1)
    if len(a) != bands or len(b) != bands:
        raise ParameterError(f"scale and offset need {bands} values (one per band), got "
                             f"{len(a)} and {len(b)}")
    if not src.dtype.isnative or not src.flags.c_contiguous:
        src = np.ascontiguousarray(src, dtype=src.dtype.newbyteorder("="))
    if out is None:
        dst = np.empty(src.shape, dtype=out_name)
    else:
        dst = out[np.newaxis] if out.ndim == 2 else out
        if dst.shape != src.shape or dst.dtype.name != out_name or not dst.flags.c_contiguous \
                or not dst.dtype.isnative:
            raise ParameterError(f"out must be a C-contiguous {out_name} array of shape "
                                 f"{data.shape}")
    is_integer, lo, hi = output_range(out_name)
    use_nodata = nodata is not None
    nd = float(nodata) if use_nodata else 0.0
    if use_nodata and is_integer and not (math.isfinite(nd) and nd == int(nd) and lo <= nd <= hi):
        raise ParameterError(f"nodata {nodata} cannot be stored in {out_name}")
    if use_nodata and not is_integer and math.isfinite(nd) and abs(nd) > hi:
        raise ParameterError(f"nodata {nodata} cannot be stored in {out_name}")
    if src.shape[2] == 0 or src.shape[1] == 0:
        return out if out is not None else (dst[0] if squeeze else dst)
    _correct.apply_linear(src, dst, a, b, _input_nodata(nodata, src.dtype), nd, use_nodata,
                          is_integer, lo, hi, calc == "float32")
    if out is not None:
        return out
    return dst[0] if squeeze else dst
