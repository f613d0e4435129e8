"""Benchmark: the moments kernel (``Moments.add_window``) against straightforward numpy.

The numpy baseline is what the original spectralmatch does per band: select the valid pixels,
convert them to float64, then count, sum, sum of squares, min and max. Both run on one thread;
each timing is the best of ``--repeats`` runs.

Usage::

    .venv/bin/python benchmarks/bench_moments.py [--size 4096] [--repeats 5] [--dtype uint16]
        [--nodata-layout scattered|border]
"""
from __future__ import annotations

import argparse
import os

# Single thread for anything numpy might hand to a threaded library.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import time  # noqa: E402

import numpy as np  # noqa: E402

from spectralmatch.kernels.moments import Moments  # noqa: E402

NODATA = 0


def numpy_moments(data: np.ndarray, nodata: float) -> np.ndarray:
    """(5, bands) count, sum, sum of squares, min, max the plain numpy way."""
    out = np.empty((5, data.shape[0]))
    for b, band in enumerate(data):
        x = band[band != nodata].astype(np.float64)
        out[:, b] = x.size, x.sum(), (x * x).sum(), x.min(), x.max()
    return out


def kernel_moments(data: np.ndarray, nodata: float) -> np.ndarray:
    m = Moments.empty(data.shape[0]).add_window(data, nodata=nodata)
    return np.stack([m.count, m.total, m.total_sq, m.minimum, m.maximum])


def best_of(func, data: np.ndarray, repeats: int) -> tuple[float, np.ndarray]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func(data, NODATA)
        best = min(best, time.perf_counter() - start)
    return best, result


def make_window(bands: int, size: int, dtype: str, layout: str,
                rng: np.random.Generator) -> np.ndarray:
    """Random 12-bit-like values with ~5 % nodata (0), scattered at random pixels (worst case
    for branch prediction) or as a border (the first columns of every row, like scene edges)."""
    if np.dtype(dtype).kind == "f":
        data = rng.uniform(1.0, 4095.0, (bands, size, size)).astype(dtype)
    else:
        high = min(4096, int(np.iinfo(dtype).max) + 1)
        data = rng.integers(1, high, (bands, size, size), dtype=dtype)
    if layout == "scattered":
        data[rng.random(data.shape) < 0.05] = NODATA
    else:
        data[:, :, : size // 20] = NODATA
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="window width and height")
    parser.add_argument("--repeats", type=int, default=5, help="runs per timing (best kept)")
    parser.add_argument("--dtype", default="uint16", help="pixel dtype (default uint16)")
    parser.add_argument("--nodata-layout", choices=("scattered", "border"), default="scattered",
                        help="where the ~5 %% nodata pixels are (default scattered)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    print(f"{args.size}x{args.size} {args.dtype}, nodata {NODATA} (~5 %, {args.nodata_layout}), best of "
          f"{args.repeats}, one thread")
    print(f"{'bands':>5}  {'numpy ms':>9}  {'kernel ms':>9}  {'numpy/kernel':>12}")
    for bands in (1, 4):
        data = make_window(bands, args.size, args.dtype, args.nodata_layout, rng)
        t_np, ref = best_of(numpy_moments, data, args.repeats)
        t_k, got = best_of(kernel_moments, data, args.repeats)
        np.testing.assert_array_equal(got[[0, 3, 4]], ref[[0, 3, 4]])
        np.testing.assert_allclose(got[1:3], ref[1:3], rtol=1e-12)
        print(f"{bands:>5}  {t_np * 1e3:>9.1f}  {t_k * 1e3:>9.1f}  {t_np / t_k:>11.1f}x")


if __name__ == "__main__":
    main()
