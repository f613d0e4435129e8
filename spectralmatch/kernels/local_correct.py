"""Python wrapper of the fused local correction kernel (block-map interpolation + gamma/linear)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from spectralmatch._kernels import local_correct as _local
from spectralmatch.errors import ParameterError
from spectralmatch.io.dtypes import output_range

from ._threads import run_row_bands
from .blocks import KERNEL_DTYPES, pixel_nodata

METHODS = {"gamma": _local.GAMMA, "linear": _local.LINEAR}


def correct_window(data: np.ndarray, ref_map: np.ndarray, loc_map: np.ndarray,
                   frow: np.ndarray, fcol: np.ndarray, shift: Sequence[float], *,
                   alpha: float = 1.0, method: str = "gamma", nodata_in: float | None = None,
                   nodata_out: float | None = None, out_dtype: str | np.dtype | None = None,
                   out: np.ndarray | None = None, threads: int = 1) -> np.ndarray:
    """Locally correct one window in a single pass (see ``src_cython/local_correct.pyx``).

    For band ``k`` and valid pixel ``P``: ``R``, ``L`` = NaN-aware bilinear interpolation of
    ``ref_map[k]`` and ``loc_map[k]`` at ``(frow[row], fcol[col])``; ``o = shift[k]``;
    ``T = alpha·(R + o) + (1 - alpha)·(L + o)``; gamma: ``(P + o) ** (ln T / ln(L + o)) - o``,
    linear: ``(P + o)·T / (L + o) - o``. Pixels without any valid neighbouring cell pass through.
    Results are rounded half away from zero and clipped for integer outputs and never equal
    ``nodata_out``; invalid input pixels become ``nodata_out``.

    Args:
        data (np.ndarray): (bands, rows, cols) window.
        ref_map (np.ndarray): (bands, map rows, map cols) reference block map (NaN = no value).
        loc_map (np.ndarray): Local block map of the same shape.
        frow (np.ndarray): Continuous block row of every window row.
        fcol (np.ndarray): Continuous block column of every window column.
        shift (Sequence[float]): Per-band shift ``o``.
        alpha (float): Blend between reference (1) and local (0) means.
        method (str): "gamma" or "linear".
        nodata_in (float | None): Input nodata value (NaN allowed) or None.
        nodata_out (float | None): Output nodata value or None.
        out_dtype (str | np.dtype | None): Output dtype (default: the input dtype).
        out (np.ndarray | None): Optional preallocated C-contiguous output.
        threads (int): Threads the window may be split over by rows (results do not change).

    Returns:
        np.ndarray: The corrected window.
    """
    if data.ndim == 3 and not data.flags.c_contiguous:
        data = np.ascontiguousarray(data)
    if data.ndim != 3 or data.dtype.name not in KERNEL_DTYPES:
        raise ParameterError(f"data must be a (bands, rows, cols) array of a kernel dtype, got "
                             f"{data.dtype} {data.shape}")
    if method not in METHODS:
        raise ParameterError(f"method={method!r} is not accepted; use 'gamma' or 'linear'")
    out_name = np.dtype(out_dtype or data.dtype).name
    if out_name not in KERNEL_DTYPES:
        raise ParameterError(f"out_dtype {out_dtype!r} is not supported")
    ref = np.ascontiguousarray(ref_map, dtype=np.float64)
    loc = np.ascontiguousarray(loc_map, dtype=np.float64)
    if ref.ndim != 3 or ref.shape != loc.shape or ref.shape[0] < data.shape[0]:
        raise ParameterError(f"ref_map {ref.shape} and loc_map {loc.shape} must be equal "
                             f"(bands, rows, cols) arrays with {data.shape[0]} bands")
    sh = np.ascontiguousarray(shift, dtype=np.float64).reshape(-1)
    if out is None:
        out = np.empty(data.shape, dtype=out_name)
    elif out.shape != data.shape or out.dtype.name != out_name or not out.flags.c_contiguous:
        raise ParameterError(f"out must be a {out_name} array of shape {data.shape}")
    is_integer, lo, hi = output_range(out_name)
    use_out = nodata_out is not None
    nd_out = float(nodata_out) if use_out else 0.0
    if use_out and is_integer and not (math.isfinite(nd_out) and lo <= nd_out <= hi):
        raise ParameterError(f"nodata {nodata_out} cannot be stored in {out_name}")
    nodata_in = pixel_nodata(nodata_in, data.dtype)
    use_in = nodata_in is not None
    frow = np.ascontiguousarray(frow, dtype=np.float64)
    fcol = np.ascontiguousarray(fcol, dtype=np.float64)
    if frow.shape[0] != data.shape[1]:
        raise ParameterError(f"frow needs {data.shape[1]} entries, got {frow.shape[0]}")

    def run(start: int, stop: int) -> None:
        # One band at a time keeps every view C-contiguous, as the kernel requires.
        for k in range(data.shape[0]):
            band = slice(k, k + 1)
            _local.correct_window(data[band, start:stop], out[band, start:stop], ref[band],
                                  loc[band], frow[start:stop], fcol, sh[band], float(alpha),
                                  METHODS[method], float(nodata_in) if use_in else 0.0, use_in,
                                  is_integer, lo, hi, nd_out, use_out)

    run_row_bands(run, data.shape[1], threads)
    return out
