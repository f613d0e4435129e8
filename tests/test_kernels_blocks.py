"""The ``blocks`` and ``local_correct`` kernels against plain numpy references."""
from __future__ import annotations

import numpy as np
import pytest

from spectralmatch.errors import ParameterError
from spectralmatch.kernels.blocks import (
    KERNEL_DTYPES,
    accumulate_cells,
    interpolate_map,
    new_extrema,
)
from spectralmatch.kernels.local_correct import correct_window

# ----------------------------------------------------------------------------- references


def ref_accumulate(data, rows, cols, nodata, mask, shape):
    """np.add.at version of the cell sums/counts and the unmasked extrema."""
    src = data.astype(np.float64)
    valid = np.isfinite(src)
    if nodata is not None:
        nd = np.asarray(nodata).astype(data.dtype) if data.dtype.kind == "f" else nodata
        valid &= src != np.float64(nd)
    bands = data.shape[0]
    sums = np.zeros((bands, *shape))
    counts = np.zeros((bands, *shape))
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    inside = (rr >= 0) & (cc >= 0)
    if mask is not None:
        inside &= mask != 0
    ext = np.tile([np.inf, -np.inf], (bands, 1))
    for b in range(bands):
        use = valid[b] & inside
        np.add.at(sums[b], (rr[use], cc[use]), src[b][use])
        np.add.at(counts[b], (rr[use], cc[use]), 1.0)
        if valid[b].any():
            ext[b] = src[b][valid[b]].min(), src[b][valid[b]].max()
    return sums, counts, ext


def ref_interpolate(m, frow, fcol):
    """Normalised-convolution bilinear interpolation, coordinates clamped to the map."""
    nr, nc = m.shape
    v = np.where(np.isnan(m), 0.0, m)
    w = (~np.isnan(m)).astype(float)

    def axis(f, n):
        if n == 1:
            return np.zeros(len(f), int), np.zeros(len(f), int), np.zeros(len(f))
        i0 = np.clip(np.floor(f), 0, n - 2).astype(int)
        return i0, i0 + 1, f - i0

    r0, r1, t = axis(np.clip(np.asarray(frow, float), 0, nr - 1), nr)
    c0, c1, u = axis(np.clip(np.asarray(fcol, float), 0, nc - 1), nc)
    T, U = t[:, None], u[None, :]

    def bil(a):
        return ((1 - T) * (1 - U) * a[r0][:, c0] + (1 - T) * U * a[r0][:, c1]
                + T * (1 - U) * a[r1][:, c0] + T * U * a[r1][:, c1])

    num, den = bil(v), bil(w)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1), np.nan)


def round_half_away(v):
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def ref_correct(data, ref, loc, frow, fcol, shift, alpha, method, nodata, out_dtype):
    """numpy version of the fused kernel for integer outputs (or float64 without nodata)."""
    out_dt = np.dtype(out_dtype)
    p = data.astype(np.float64)
    res = np.empty(data.shape, dtype=np.float64)
    for k in range(data.shape[0]):
        R = ref_interpolate(ref[k], frow, fcol)
        L = ref_interpolate(loc[k], frow, fcol)
        o = shift[k]
        T = alpha * (R + o) + (1 - alpha) * (L + o)
        with np.errstate(invalid="ignore", divide="ignore"):
            if method == "gamma":
                v = (p[k] + o) ** (np.log(T) / np.log(L + o)) - o
            else:
                v = (p[k] + o) * T / (L + o) - o
        res[k] = np.where(np.isnan(R) | np.isnan(L), p[k], v)
    invalid = ~np.isfinite(p)
    if nodata is not None:
        invalid |= p == nodata
    if out_dt.kind in "iu":
        info = np.iinfo(out_dt)
        v = np.clip(round_half_away(np.where(np.isnan(res), 0, res)), info.min, info.max)
        if nodata is not None:
            hit = v == nodata
            v = np.where(hit & (v < info.max), v + 1, np.where(hit, v - 1, v))
            v = np.where(np.isnan(res), nodata, v)
            v[invalid] = nodata
        return v.astype(out_dt)
    res[invalid] = p[invalid] if nodata is None else nodata
    return res.astype(out_dt)


def random_data(dtype, shape, rng):
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        hi = min(np.iinfo(dt).max, 1000)
        return rng.integers(1, hi, size=shape).astype(dt)
    return rng.normal(500, 200, size=shape).astype(dt)


# ----------------------------------------------------------------------------- accumulate


@pytest.mark.parametrize("dtype", KERNEL_DTYPES)
def test_accumulate_cells_matches_numpy(dtype):
    rng = np.random.default_rng(1)
    data = random_data(dtype, (3, 23, 31), rng)
    nodata = 7 if np.dtype(dtype).kind in "iu" else 0.1
    data[:, 2:5, 3:9] = np.asarray(nodata).astype(dtype)
    if np.dtype(dtype).kind == "f":
        data[0, 10, 10] = np.nan
        data[1, 11, 12] = np.inf
        data[2, 0, 0] = -np.inf
    rows = np.repeat(np.arange(5), 5)[:23] - 1  # first rows skipped (-1)
    cols = np.minimum(np.arange(31) // 4, 6).astype(np.int32)
    cols[-2:] = -1
    mask = (rng.random((23, 31)) > 0.2).astype(np.uint8)
    shape = (5, 7)
    sums, counts = np.zeros((3, *shape)), np.zeros((3, *shape))
    ext = new_extrema(3)
    # two windows merged in order equal one pass over the whole data
    accumulate_cells(data[:, :12], rows[:12], cols, nodata, sums, counts, ext, mask[:12])
    accumulate_cells(data[:, 12:], rows[12:], cols, nodata, sums, counts, ext, mask[12:])
    e_sums, e_counts, e_ext = ref_accumulate(data, rows, cols, nodata, mask, shape)
    np.testing.assert_allclose(sums, e_sums, rtol=1e-12)
    np.testing.assert_array_equal(counts, e_counts)
    np.testing.assert_array_equal(ext, e_ext)


def test_accumulate_nodata_none_nan_and_float32_nodata():
    data = np.array([[[0.1, 0.2, np.nan, 5.0]]], dtype=np.float32)
    sums, counts, ext = np.zeros((1, 1, 1)), np.zeros((1, 1, 1)), new_extrema(1)
    accumulate_cells(data, [0], [0, 0, 0, 0], 0.1, sums, counts, ext)
    # float32 pixels are compared with float32(nodata), as GDAL does; NaN never counts
    assert counts[0, 0, 0] == 2
    assert sums[0, 0, 0] == pytest.approx(float(np.float32(0.2)) + 5.0)
    sums[:], counts[:], ext = 0, 0, new_extrema(1)
    accumulate_cells(data, [0], [0, 0, 0, 0], None, sums, counts, ext)
    assert counts[0, 0, 0] == 3
    assert tuple(ext[0]) == (pytest.approx(0.1), 5.0)
    sums[:], counts[:] = 0, 0
    accumulate_cells(data, [0], [0, 0, 0, 0], float("nan"), sums, counts, ext)
    assert counts[0, 0, 0] == 3


def test_accumulate_rejects_bad_shapes():
    data = np.zeros((1, 2, 2), np.uint8)
    with pytest.raises(ValueError):
        accumulate_cells(data, [0, 0], [0, 5], None, np.zeros((1, 1, 2)), np.zeros((1, 1, 2)),
                         new_extrema(1))
    with pytest.raises(ParameterError):
        accumulate_cells(data, [0, 0], [0, 0], None, np.zeros((1, 1, 1), np.float32),
                         np.zeros((1, 1, 1)), new_extrema(1))


# ----------------------------------------------------------------------------- interpolate


def test_interpolate_map_with_nan_blocks_and_clamping():
    rng = np.random.default_rng(2)
    m = rng.normal(100, 10, (5, 6))
    m[1, 2] = np.nan
    m[3, 0:2] = np.nan
    m[0, 5] = np.nan
    frow = np.linspace(-0.5, 4.5, 41)
    fcol = np.linspace(-0.5, 5.5, 37)
    got = interpolate_map(m, frow, fcol)
    np.testing.assert_allclose(got, ref_interpolate(m, frow, fcol), rtol=1e-12, equal_nan=True)
    # at cell centres the map is reproduced exactly where it has values
    centres = interpolate_map(m, np.arange(5.0), np.arange(6.0))
    np.testing.assert_allclose(centres[np.isfinite(m)], m[np.isfinite(m)], rtol=1e-12)
    assert np.isnan(centres[1, 2])  # at its own centre only the NaN cell has weight
    # half-way between cells the NaN cell's weight goes to its valid neighbours
    half = interpolate_map(m, [1.5], [1.5])[0, 0]
    assert half == pytest.approx((m[1, 1] + m[2, 1] + m[2, 2]) / 3)


def test_interpolate_all_nan_neighbourhood_and_single_cell():
    m = np.full((3, 3), np.nan)
    m[0, 0] = 5.0
    got = interpolate_map(m, [2.0, 0.25], [2.0, 0.25])
    assert np.isnan(got[0, 0])  # no valid neighbour of the far corner
    assert got[1, 1] == pytest.approx(5.0)
    assert interpolate_map(np.array([[3.0]]), [-0.5, 0, 0.5], [0.2])[:, 0].tolist() == [3, 3, 3]
    # a plane is reproduced inside the map and clamped beyond its outermost centres
    plane = np.add.outer(np.arange(3.0) * 2, np.arange(4.0) * 3)
    got = interpolate_map(plane, [-0.5, 0.5, 2.5], [-0.5, 1.25, 3.5])
    np.testing.assert_allclose(got, [[0.0, 3.75, 9.0], [1.0, 4.75, 10.0], [4.0, 7.75, 13.0]])


# ----------------------------------------------------------------------------- correct


@pytest.mark.parametrize("method", ["gamma", "linear"])
@pytest.mark.parametrize("dtype,out_dtype", [("uint16", "uint16"), ("int16", "int16"),
                                             ("uint8", "uint8"), ("float32", "float64"),
                                             ("int32", "uint8")])
def test_correct_window_matches_numpy(method, dtype, out_dtype):
    rng = np.random.default_rng(3)
    data = random_data(dtype, (2, 17, 19), rng)
    if np.dtype(dtype).kind == "f":
        data = np.abs(data) + 1
    nodata = 0 if np.dtype(out_dtype).kind in "iu" else None
    if nodata is not None:
        data[:, 0, :5] = 0
    ref = rng.uniform(200, 900, (2, 4, 5))
    loc = rng.uniform(200, 900, (2, 4, 5))
    ref[0, 1, 1] = np.nan
    loc[1, 2, 3] = np.nan
    loc[1, 3, 4] = np.nan
    frow = np.linspace(-0.5, 3.5, 17)
    fcol = np.linspace(-0.5, 4.5, 19)
    shift = np.array([0.0, 3.5])
    got = correct_window(data, ref, loc, frow, fcol, shift, alpha=0.7, method=method,
                         nodata_in=nodata, nodata_out=nodata, out_dtype=out_dtype)
    want = ref_correct(data, ref, loc, frow, fcol, shift, 0.7, method, nodata, out_dtype)
    if np.dtype(out_dtype).kind in "iu":
        # half-way cases may round differently after tiny float differences: allow 1 DN in
        # at most a few pixels, never more
        diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    else:
        np.testing.assert_allclose(got, want, rtol=1e-10)
    if nodata is not None:
        assert (got[:, 0, :5] == nodata).all()
        assert not (got[:, 1:, :] == nodata).any()  # valid pixels never become nodata


def test_correct_window_edge_cases():
    data = np.array([[[0, 1, 2, 65535, 100, 100]]], dtype=np.uint16)
    ref = np.full((1, 1, 2), 200.0)
    loc = np.full((1, 1, 2), 100.0)
    # linear: ×2, clipped at the top, nodata 0 kept, 1 -> 2
    got = correct_window(data, ref, loc, [0.0], np.zeros(6), [0.0], method="linear",
                         nodata_in=0, nodata_out=0)
    assert got.tolist() == [[[0, 2, 4, 65535, 200, 200]]]
    # alpha = 0: the identity for both methods
    for method in ("gamma", "linear"):
        same = correct_window(data, ref, loc, [0.0], np.zeros(6), [0.0], alpha=0.0,
                              method=method, nodata_in=0, nodata_out=0)
        np.testing.assert_array_equal(same, data)
    # a result equal to nodata moves to the nearest other value
    small = np.array([[[3]]], dtype=np.uint8)
    moved = correct_window(small, np.full((1, 1, 1), 1.0), np.full((1, 1, 1), 3.0), [0.0],
                           [0.0], [0.0], method="linear", nodata_in=0, nodata_out=1)
    assert moved[0, 0, 0] == 2
    # without any valid map value a pixel passes through unchanged
    nan_maps = np.full((1, 1, 1), np.nan)
    kept = correct_window(small, nan_maps, nan_maps, [0.0], [0.0], [0.0], nodata_in=None,
                          nodata_out=None)
    assert kept[0, 0, 0] == 3
    # float output without nodata keeps NaN inputs as NaN
    fl = np.array([[[np.nan, 4.0]]], dtype=np.float32)
    res = correct_window(fl, np.full((1, 1, 1), 8.0), np.full((1, 1, 1), 4.0), [0.0],
                         [0.0, 0.0], [0.0], method="linear", out_dtype="float32")
    assert np.isnan(res[0, 0, 0]) and res[0, 0, 1] == 8.0
    with pytest.raises(ParameterError):
        correct_window(small, nan_maps, nan_maps, [0.0], [0.0], [0.0], method="cubic")


@pytest.mark.parametrize("dtype", ["uint16", "int16", "uint8"])
def test_correct_window_same_result_for_any_window(dtype):
    """Large windows of 8/16-bit data use a table of logarithms: the result must not change."""
    rng = np.random.default_rng(4)
    big = rng.integers(1, 120, (1, 1100, 1000)).astype(dtype) * (200 if dtype != "uint8" else 2)
    ref = rng.uniform(3000, 9000, (1, 5, 6))
    loc = rng.uniform(3000, 9000, (1, 5, 6))
    frow = np.linspace(0, 4, 1100)
    fcol = np.linspace(0, 5, 1000)
    whole = correct_window(big, ref, loc, frow, fcol, [2.5], nodata_in=0, nodata_out=0)
    parts = np.concatenate([
        correct_window(np.ascontiguousarray(big[:, r:r + 7]), ref, loc, frow[r:r + 7], fcol,
                       [2.5], nodata_in=0, nodata_out=0)
        for r in range(0, 1100, 7)], axis=1)
    np.testing.assert_array_equal(whole, parts)


def test_local_correction_never_writes_nodata_into_float32_valid_pixels():
    """A corrected value equal to the nodata value is moved off it in float32 precision."""
    from spectralmatch.kernels.local_correct import correct_window

    data = np.array([[[1.0, 2.0, 0.5]]], np.float32)
    ones = np.ones((1, 1, 1))
    out = correct_window(data, ones * 2, ones * 2, np.zeros(1), np.zeros(3), np.zeros(1),
                         method="linear", nodata_in=None, nodata_out=1.0, out_dtype="float32")
    assert out.dtype == np.float32
    assert out[0, 0, 0] != np.float32(1.0)
    assert out[0, 0, 0] == np.nextafter(np.float32(1.0), np.float32(np.inf))
    assert out[0, 0, 1] == 2.0 and out[0, 0, 2] == 0.5
