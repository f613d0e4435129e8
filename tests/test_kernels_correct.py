"""The ``correct`` kernel (a·x + b per band with output conversion) against a numpy reference."""
from __future__ import annotations

import numpy as np
import pytest

from spectralmatch.errors import ParameterError
from spectralmatch.kernels.correct import KERNEL_DTYPES, apply_linear


def reference(data, scale, offset, nodata, out_dtype, calculation_dtype="float64"):
    """Independent numpy version of the documented conversion rules."""
    src = data.astype(np.float64)
    out_dt = np.dtype(out_dtype)
    a = np.asarray(scale, dtype=np.float64)[:, None, None]
    b = np.asarray(offset, dtype=np.float64)[:, None, None]
    if calculation_dtype == "float32":
        v = (data.astype(np.float32) * a.astype(np.float32) + b.astype(np.float32)).astype(np.float64)
    else:
        v = src * a + b
    invalid = np.zeros(data.shape, dtype=bool)
    if nodata is not None:
        invalid = (src == nodata) | (np.isnan(src) & np.isnan(nodata))
    if out_dt.kind in "iu":
        info = np.iinfo(out_dt)
        lo, hi = float(info.min), float(info.max)
        if out_dt.itemsize == 8:
            hi = float(np.nextafter(np.float64(info.max), 0))
            lo = float(np.nextafter(np.float64(info.min), 0)) if info.min else 0.0
        nan = np.isnan(v)
        v = np.where(nan, 0.0, v)
        v = np.sign(v) * np.floor(np.abs(v) + 0.5)
        v = np.clip(v, lo, hi)
        if nodata is not None:
            hit = v == nodata
            v = np.where(hit & (v < hi), v + 1, np.where(hit, v - 1, v))
            v = np.where(nan, nodata, v)
        out = v.astype(out_dt)
    else:
        info = np.finfo(out_dt)
        with np.errstate(over="ignore", invalid="ignore"):
            v = np.where(np.isnan(v), v, np.clip(v, float(info.min), float(info.max)))
            if nodata is not None:
                v = np.where(np.isnan(v), nodata, v)
            out = v.astype(out_dt)
            if nodata is not None:  # valid results never equal nodata in the output dtype
                nd = out_dt.type(nodata)
                hit = (out == nd) & ~invalid & ~np.isnan(v)
                up = np.nextafter(out, out_dt.type(np.inf))
                down = np.nextafter(out, out_dt.type(-np.inf))
                out = np.where(hit, np.where(out < info.max, up, down), out)
    if nodata is not None:
        out[invalid] = nodata
    return out


def random_window(dtype, shape, rng):
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        lo, hi = max(info.min, -5000), min(info.max, 5000)
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dt)
    return (rng.normal(0, 2000, size=shape)).astype(dt)


@pytest.mark.parametrize("in_dtype", KERNEL_DTYPES)
@pytest.mark.parametrize("out_dtype", ["uint8", "int16", "uint16", "int32", "float32", "float64",
                                       "uint64", "int8"])
def test_matches_numpy_reference(in_dtype, out_dtype):
    rng = np.random.default_rng(abs(hash((in_dtype, out_dtype))) % 2**32)
    data = random_window(in_dtype, (3, 17, 23), rng)
    nodata = 7 if np.dtype(out_dtype).kind in "iu" or np.dtype(in_dtype).kind in "iu" else 7.0
    data[:, 0, :5] = nodata
    scale, offset = [1.5, -0.25, 0.999], [10.5, 3.0, -2.5]
    for calc in ("float64", "float32"):
        got = apply_linear(data, scale, offset, nodata=nodata, out_dtype=out_dtype,
                           calculation_dtype=calc)
        want = reference(data, scale, offset, nodata, out_dtype, calc)
        assert got.dtype == np.dtype(out_dtype)
        np.testing.assert_array_equal(got, want)
        assert (got[:, 0, :5] == nodata).all()


def test_rounding_half_away_clipping_and_nodata_protection():
    data = np.array([[[1, 2, 3, 4, 5, 0, 200]]], dtype=np.uint16)
    # 0.5*x + 0 -> 0.5, 1, 1.5, 2, 2.5 round half away -> 1, 1, 2, 2, 3; 0 is nodata
    got = apply_linear(data, [0.5], [0.0], nodata=0, out_dtype="uint8")
    assert got.tolist() == [[[1, 1, 2, 2, 3, 0, 100]]]
    # results below the range clip to 0, which is nodata: moved to 1
    got = apply_linear(data, [1.0], [-10.0], nodata=0, out_dtype="uint8")
    assert got.tolist() == [[[1, 1, 1, 1, 1, 0, 190]]]
    # above the range clip to 255; 255 as nodata moves valid results to 254
    got = apply_linear(data, [2.0], [0.0], nodata=255, out_dtype="uint8")
    assert got[0, 0, -1] == 254 and got[0, 0, 0] == 2
    # negative half values round away from zero
    got = apply_linear(np.array([[[1, 3]]], dtype=np.int16), [-0.5], [0.0], nodata=None,
                       out_dtype="int16")
    assert got.tolist() == [[[-1, -2]]]


def test_nan_nodata_and_no_nodata():
    data = np.array([[[np.nan, 1.0, 2.0, np.inf]]], dtype=np.float32)
    got = apply_linear(data, [2.0], [1.0], nodata=np.nan, out_dtype="float32")
    assert np.isnan(got[0, 0, 0]) and got[0, 0, 1:3].tolist() == [3.0, 5.0]
    got = apply_linear(data, [2.0], [1.0], nodata=None, out_dtype="float32")
    assert np.isnan(got[0, 0, 0])  # NaN stays NaN without a nodata value
    got = apply_linear(data, [2.0], [1.0], nodata=-1.0, out_dtype="int16")
    assert got[0, 0].tolist() == [-1, 3, 5, 32767]  # NaN -> nodata, inf clipped


def test_two_dimensional_empty_and_single_pixel():
    got = apply_linear(np.array([[4]], dtype=np.uint8), [2.0], [1.0], nodata=None,
                       out_dtype="uint8")
    assert got.shape == (1, 1) and got[0, 0] == 9
    empty = apply_linear(np.zeros((2, 0, 5), dtype=np.int16), [1, 1], [0, 0], nodata=0,
                         out_dtype="float32")
    assert empty.shape == (2, 0, 5)
    out = np.empty((1, 1, 1), dtype=np.int32)
    assert apply_linear(np.array([[[3]]], np.int32), [1], [1], nodata=None, out_dtype="int32",
                        out=out) is out
    assert out[0, 0, 0] == 4


def test_errors():
    data = np.zeros((2, 3, 3), dtype=np.uint16)
    with pytest.raises(ParameterError, match="one per band"):
        apply_linear(data, [1.0], [0.0], nodata=0, out_dtype="uint16")
    with pytest.raises(ParameterError, match="calculation_dtype"):
        apply_linear(data, [1, 1], [0, 0], nodata=0, out_dtype="uint16", calculation_dtype="int8")
    with pytest.raises(ParameterError, match="cannot be stored"):
        apply_linear(data, [1, 1], [0, 0], nodata=-5, out_dtype="uint16")
    with pytest.raises(ParameterError, match="not supported"):
        apply_linear(data.astype(np.complex64), [1, 1], [0, 0], nodata=0, out_dtype="uint16")


def test_float32_output_never_lands_on_nodata():
    # 0.1 in float64 is not float32(0.1): the stored value must still differ from nodata.
    data = np.array([[[1.0, 2.0]]], dtype=np.float64)
    nodata = float(np.float32(0.1))
    got = apply_linear(data, [0.1], [0.0], nodata=nodata, out_dtype="float32")
    assert got[0, 0, 0] != np.float32(nodata)
    assert abs(float(got[0, 0, 0]) - 0.1) < 1e-7


def test_nodata_compared_in_pixel_type():
    # float32 pixels holding float32(0.1) are nodata 0.1; -9999 cannot be a uint16 pixel.
    data = np.array([[[np.float32(0.1), 1.0]]], dtype=np.float32)
    got = apply_linear(data, [2.0], [0.0], nodata=0.1, out_dtype="float64")
    assert got[0, 0, 0] == 0.1 and got[0, 0, 1] == 2.0
    data = np.array([[[55537, 1]]], dtype=np.uint16)  # 55537 == uint16(-9999) when wrapped
    got = apply_linear(data, [1.0], [0.0], nodata=-9999, out_dtype="int32")
    assert got.tolist() == [[[55537, 1]]]
