"""The moments kernel and its wrapper against a plain-numpy reference on random windows."""
from __future__ import annotations

import copy
import pickle
from itertools import pairwise

import numpy as np
import pytest

from spectralmatch.errors import ParameterError
from spectralmatch.kernels import moments as mod
from spectralmatch.kernels.moments import JointMoments, Moments

DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "uint64",
          "float32", "float64"]
# A nodata value each dtype can hold, used by the generators below.
NODATA = {"uint8": 0, "int8": -128, "uint16": 65535, "int16": -32768, "uint32": 0,
          "int32": -9999, "int64": -9999, "uint64": 0, "float32": -9999.0,
          "float64": -3.4e38}
TINY = (2, 7, 10)        # below every histogram threshold: direct loops for all dtypes
SMALL = (3, 23, 29)      # direct loops for 16-bit (and a ragged 4-lane tail: 29 = 4·7 + 1)
LARGE = (2, 384, 345)    # ≥ 2·65536 pixels per band: the 16-bit histogram path


def random_window(dtype: str, shape: tuple[int, ...], rng: np.random.Generator,
                  nodata_fraction: float = 0.07, specials: bool = True) -> np.ndarray:
    """Random pixels covering the dtype's range (kept within ±2**40 for 64-bit integers so a
    float64 reference stays exact), with some nodata and, for floats, NaN and ±inf."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        data = (rng.normal(500.0, 1000.0, shape)).astype(dt)
    else:
        info = np.iinfo(dt)
        lo, hi = max(int(info.min), -(2**40)), min(int(info.max), 2**40)
        data = rng.integers(lo, hi, shape, dtype=dt, endpoint=True)
    data[rng.random(shape) < nodata_fraction] = NODATA[dtype]
    if dt.kind == "f" and specials:
        for value in (np.nan, np.inf, -np.inf):
            data[rng.random(shape) < 0.01] = value
    return data


def reference(data: np.ndarray, nodata=None, mask=None) -> np.ndarray:
    """(5, bands) count, sum, sum of squares, min, max by boolean indexing in float64."""
    data = data if data.ndim == 3 else data[np.newaxis]
    out = np.zeros((5, data.shape[0]))
    out[3], out[4] = np.inf, -np.inf
    for b, band in enumerate(data):
        valid = np.isfinite(band) if band.dtype.kind == "f" else np.ones(band.shape, bool)
        if nodata is not None and not np.isnan(nodata):
            valid &= band != np.array(nodata, dtype=band.dtype)
        if mask is not None:
            valid &= np.asarray(mask) != 0
        x = band[valid].astype(np.float64)
        out[:3, b] = x.size, x.sum(), (x * x).sum()
        if x.size:
            out[3, b], out[4, b] = x.min(), x.max()
    return out


def assert_matches(m: Moments, ref: np.ndarray, rtol: float = 1e-12) -> None:
    np.testing.assert_array_equal(m.count, ref[0])
    np.testing.assert_allclose(m.total, ref[1], rtol=rtol, atol=0)
    np.testing.assert_allclose(m.total_sq, ref[2], rtol=rtol, atol=0)
    np.testing.assert_array_equal(m.minimum, ref[3])
    np.testing.assert_array_equal(m.maximum, ref[4])


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240607)


# ------------------------------------------------------------------ Moments vs numpy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [TINY, SMALL, LARGE], ids=["tiny", "small", "large"])
@pytest.mark.parametrize("use_nodata", [False, True], ids=["no-nodata", "nodata"])
@pytest.mark.parametrize("use_mask", [False, True], ids=["no-mask", "mask"])
def test_moments_match_numpy(dtype, shape, use_nodata, use_mask, rng):
    data = random_window(dtype, shape, rng)
    nodata = NODATA[dtype] if use_nodata else None
    mask = rng.random(shape[1:]) < 0.8 if use_mask else None
    m = Moments.from_window(data, nodata=nodata, mask=mask)
    ref = reference(data, nodata, mask)
    assert_matches(m, ref)
    valid = ref[0] > 0
    np.testing.assert_allclose(m.mean, ref[1] / ref[0], rtol=1e-12)
    # Independent std: numpy's two-pass formula over the selected values.
    for b in range(shape[0]):
        band = data[b].astype(np.float64)
        keep = np.isfinite(band)
        if nodata is not None:
            keep &= data[b] != np.array(nodata, dtype=dtype)
        if mask is not None:
            keep &= mask
        assert valid[b]
        np.testing.assert_allclose(m.std()[b], band[keep].std(), rtol=1e-9)
        np.testing.assert_allclose(m.std(ddof=1)[b], band[keep].std(ddof=1), rtol=1e-9)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16"])
def test_small_integers_are_summed_exactly(dtype, rng):
    data = random_window(dtype, LARGE, rng)
    m = Moments.from_window(data, nodata=NODATA[dtype])
    for b, band in enumerate(data):
        x = band[band != NODATA[dtype]].astype(np.int64)
        assert m.count[b] == x.size
        assert m.total[b] == x.sum()       # exact: integer sums below 2**53
        assert m.total_sq[b] == (x * x).sum()


def test_nan_nodata_equals_no_nodata_and_nan_never_counts(rng):
    data = random_window("float32", SMALL, rng)
    with_nan = Moments.from_window(data, nodata=float("nan"))
    without = Moments.from_window(data)
    np.testing.assert_array_equal(with_nan._acc, without._acc)
    assert_matches(with_nan, reference(data))
    assert np.isfinite(with_nan.total).all() and np.isfinite(with_nan.minimum).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_infinities_never_count(dtype):
    data = np.array([[[np.inf, -np.inf, 2.0, np.nan, 4.0, -np.inf]]], dtype=dtype)
    m = Moments.from_window(data)
    assert (m.count[0], m.total[0], m.total_sq[0]) == (2, 6.0, 20.0)
    assert (m.minimum[0], m.maximum[0]) == (2.0, 4.0)
    # ±inf given as nodata changes nothing (they are excluded anyway).
    np.testing.assert_array_equal(Moments.from_window(data, nodata=np.inf)._acc, m._acc)


def test_known_values_by_hand():
    data = np.array([[1, 2, 3], [4, 0, 6]], dtype=np.uint16)
    m = Moments.from_window(data, nodata=0)
    assert (m.count[0], m.total[0], m.total_sq[0]) == (5, 16, 66)
    assert (m.minimum[0], m.maximum[0]) == (1, 6)
    assert m.mean[0] == pytest.approx(3.2)
    assert m.variance()[0] == pytest.approx(66 / 5 - 3.2**2)      # 2.96
    assert m.variance(ddof=1)[0] == pytest.approx((66 - 5 * 3.2**2) / 4)  # 3.7
    assert m.std()[0] == pytest.approx(np.sqrt(2.96))


# ------------------------------------------------------------------ edge windows


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 0, 5), (2, 5, 0), (2, 0, 0)])
def test_empty_window_changes_nothing(dtype, shape):
    m = Moments.empty(2)
    m.add_window(np.zeros(shape, dtype=dtype), nodata=NODATA[dtype])
    np.testing.assert_array_equal(m.count, [0, 0])
    np.testing.assert_array_equal(m.total, [0, 0])
    np.testing.assert_array_equal(m.minimum, [np.inf, np.inf])
    np.testing.assert_array_equal(m.maximum, [-np.inf, -np.inf])
    np.testing.assert_array_equal(m.mean, [0, 0])
    np.testing.assert_array_equal(m.std(), [0, 0])
    np.testing.assert_array_equal(m.std(ddof=1), [0, 0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_single_pixel(dtype):
    value = np.array(-7 if np.dtype(dtype).kind in "if" else 7, dtype=dtype)
    m = Moments.from_window(np.full((1, 1, 1), value))
    assert (m.count[0], m.total[0], m.total_sq[0]) == (1, float(value), float(value) ** 2)
    assert m.minimum[0] == m.maximum[0] == m.mean[0] == float(value)
    assert m.std()[0] == 0.0
    assert m.std(ddof=1)[0] == 0.0  # count <= ddof: 0 by convention, not NaN


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [SMALL, LARGE], ids=["small", "large"])
def test_all_invalid_window(dtype, shape, rng):
    data = np.full(shape, NODATA[dtype], dtype=dtype)
    m = Moments.from_window(data, nodata=NODATA[dtype])
    np.testing.assert_array_equal(m.count, np.zeros(shape[0]))
    np.testing.assert_array_equal(m.mean, np.zeros(shape[0]))
    np.testing.assert_array_equal(m.std(), np.zeros(shape[0]))
    assert np.isposinf(m.minimum).all() and np.isneginf(m.maximum).all()
    # A mask excluding everything has the same effect.
    masked = Moments.from_window(random_window(dtype, shape, rng), mask=np.zeros(shape[1:], bool))
    np.testing.assert_array_equal(masked.count, np.zeros(shape[0]))
    if np.dtype(dtype).kind == "f":
        nan = Moments.from_window(np.full(shape, np.nan, dtype=dtype))
        np.testing.assert_array_equal(nan.count, np.zeros(shape[0]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_input(dtype, rng):
    big = random_window(dtype, (4, 90, 120), rng)
    mask = rng.random((90, 120)) < 0.7
    for view, mview in [
        (big[1:3, 5:70, 7:101], mask[5:70, 7:101]),       # row slices (used without copy)
        (big[::2, ::3, ::2], mask[::3, ::2]),             # strided columns (copied)
        (big[:, ::-1, ::-1], mask[::-1, ::-1]),            # reversed
        (np.asfortranarray(big[0]), np.asfortranarray(mask)),
    ]:
        m = Moments.from_window(view, nodata=NODATA[dtype], mask=mview)
        assert_matches(m, reference(view, NODATA[dtype], mview))


def test_contiguous_rows_and_bool_masks_are_not_copied(rng):
    data = random_window("uint16", (3, 40, 50), rng)
    assert np.shares_memory(mod._window(data, "data"), data)
    assert np.shares_memory(mod._window(data[1:, 3:30, 4:40], "data"), data)
    assert np.shares_memory(mod._window(data[0], "data"), data)
    mask = rng.random((40, 50)) < 0.5
    as_uint8 = mod._mask(mask, 40, 50)
    assert as_uint8.dtype == np.uint8 and np.shares_memory(as_uint8, mask)
    assert not np.shares_memory(mod._window(data[:, :, ::2], "data"), data)


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_two_dimensional_input_is_one_band(dtype, rng):
    data = random_window(dtype, (1, 31, 17), rng)
    two_d = Moments.from_window(data[0], nodata=NODATA[dtype])
    three_d = Moments.from_window(data, nodata=NODATA[dtype])
    assert two_d.bands == 1
    np.testing.assert_array_equal(two_d._acc, three_d._acc)


def test_mask_accepts_bool_uint8_and_integer_types(rng):
    data = random_window("int16", SMALL, rng)
    keep = rng.random(SMALL[1:]) < 0.6
    expected = reference(data, None, keep)
    for mask in (keep, keep.astype(np.uint8) * 3, keep.astype(np.int32) * -2):
        assert_matches(Moments.from_window(data, mask=mask), expected)


# ------------------------------------------------------------------ nodata semantics


def test_nodata_the_dtype_cannot_hold_matches_nothing(rng):
    data = random_window("uint16", SMALL, rng, nodata_fraction=0)
    plain = Moments.from_window(data)
    for nodata in (-9999, 70000, 0.5, float("nan")):
        np.testing.assert_array_equal(Moments.from_window(data, nodata=nodata)._acc, plain._acc)
    floats = np.array([[0.1, 0.2, 1e38]], dtype=np.float32)
    # Compared in float32, as GDAL and numpy do: 0.1 drops float32(0.1); 1e39 overflows.
    assert Moments.from_window(floats, nodata=0.1).count[0] == 2
    assert Moments.from_window(floats, nodata=1e39).count[0] == 3


def test_64_bit_nodata_is_compared_exactly():
    top = np.iinfo(np.uint64).max
    data = np.array([[top, top - 1, 5]], dtype=np.uint64)  # top and top-1 are one double
    assert Moments.from_window(data, nodata=top).count[0] == 2
    assert Moments.from_window(data, nodata=top - 1).count[0] == 2
    low = np.iinfo(np.int64).min
    data = np.array([[low, low + 1, -5]], dtype=np.int64)
    assert Moments.from_window(data, nodata=low).count[0] == 2


def test_per_band_nodata(rng):
    data = random_window("int16", (3, 40, 37), rng)
    nodatas = [NODATA["int16"], None, 17]
    m = Moments.from_window(data, nodata=nodatas)
    for b, nd in enumerate(nodatas):
        ref = reference(data[b], nd)
        assert_matches(Moments.from_window(data[b], nodata=nd), ref)
        np.testing.assert_array_equal(m._acc[:, b], ref[:, 0])


# ------------------------------------------------------------------ merging


@pytest.mark.parametrize("dtype", DTYPES)
def test_merge_of_split_windows_equals_whole(dtype, rng):
    data = random_window(dtype, (2, 130, 90), rng)
    mask = rng.random((130, 90)) < 0.9
    nd = NODATA[dtype]
    whole = Moments.from_window(data, nodata=nd, mask=mask)
    rows, cols = (0, 37, 38, 130), (0, 50, 90)
    parts = [Moments.from_window(data[:, r0:r1, c0:c1], nodata=nd, mask=mask[r0:r1, c0:c1])
             for r0, r1 in pairwise(rows) for c0, c1 in pairwise(cols)]
    merged = Moments.empty(2)
    for part in reversed(parts):
        assert merged.merge(part) is merged
    streamed = Moments.empty(2)
    for r0, r1 in pairwise(rows):
        streamed.add_window(data[:, r0:r1], nodata=nd, mask=mask[r0:r1])
    for m in (merged, streamed):
        np.testing.assert_array_equal(m.count, whole.count)
        np.testing.assert_allclose(m.total, whole.total, rtol=1e-12)
        np.testing.assert_allclose(m.total_sq, whole.total_sq, rtol=1e-12)
        np.testing.assert_array_equal(m.minimum, whole.minimum)
        np.testing.assert_array_equal(m.maximum, whole.maximum)
        np.testing.assert_allclose(m.std(ddof=1), whole.std(ddof=1), rtol=1e-12)


def test_merge_with_empty_is_identity_and_checks_bands(rng):
    m = Moments.from_window(random_window("float64", SMALL, rng))
    before = m._acc.copy()
    m.merge(Moments.empty(3))
    np.testing.assert_array_equal(m._acc, before)
    with pytest.raises(ParameterError, match="3 bands"):
        m.merge(Moments.empty(2))
    with pytest.raises(ParameterError):
        m.merge(JointMoments.empty(3))


def test_fields_are_views_of_the_kernel_storage_and_survive_pickling(rng):
    m = Moments.from_window(random_window("uint8", SMALL, rng), nodata=0)
    for clone in (m, pickle.loads(pickle.dumps(m)), copy.deepcopy(m), m.copy()):
        np.testing.assert_array_equal(clone._acc, m._acc)
        for i, name in enumerate(mod._kernel.MOMENT_FIELDS):
            assert getattr(clone, name).base is clone._acc
            np.testing.assert_array_equal(getattr(clone, name), clone._acc[i])
    clone = pickle.loads(pickle.dumps(m))
    clone.add_window(np.ones((3, 1, 1), np.uint8))
    np.testing.assert_array_equal(clone.count, m.count + 1)
    with pytest.raises(AttributeError):
        m.count = np.zeros(3)


# ------------------------------------------------------------------ joint moments


def joint_reference(a, b, nd_a, nd_b, mask):
    out = np.zeros((6, a.shape[0]))
    for k in range(a.shape[0]):
        fa, fb = a[k].astype(np.float64), b[k].astype(np.float64)
        valid = np.isfinite(fa) & np.isfinite(fb)
        if nd_a is not None:
            valid &= a[k] != np.array(nd_a, dtype=a.dtype)
        if nd_b is not None:
            valid &= b[k] != np.array(nd_b, dtype=b.dtype)
        if mask is not None:
            valid &= mask
        xa, xb = fa[valid], fb[valid]
        out[:, k] = xa.size, xa.sum(), (xa * xa).sum(), xb.sum(), (xb * xb).sum(), (xa * xb).sum()
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("use_mask", [False, True], ids=["no-mask", "mask"])
def test_joint_moments_match_numpy(dtype, use_mask, rng):
    shape = (2, 61, 47)
    a, b = random_window(dtype, shape, rng), random_window(dtype, shape, rng)
    mask = rng.random(shape[1:]) < 0.75 if use_mask else None
    j = JointMoments.empty(2).add_windows(a, b, NODATA[dtype], NODATA[dtype], mask)
    ref = joint_reference(a, b, NODATA[dtype], NODATA[dtype], mask)
    np.testing.assert_array_equal(j.count, ref[0])
    np.testing.assert_allclose(j._acc[1:], ref[1:], rtol=1e-12)
    np.testing.assert_allclose(j.mean_a, ref[1] / ref[0], rtol=1e-12)
    np.testing.assert_allclose(j.mean_b, ref[3] / ref[0], rtol=1e-12)
    for k in range(2):
        fa, fb = a[k].astype(np.float64), b[k].astype(np.float64)
        keep = np.isfinite(fa) & np.isfinite(fb) & (a[k] != NODATA[dtype]) & (b[k] != NODATA[dtype])
        if mask is not None:
            keep &= mask
        np.testing.assert_allclose(j.std_a()[k], fa[keep].std(), rtol=1e-9)
        np.testing.assert_allclose(j.std_b(ddof=1)[k], fb[keep].std(ddof=1), rtol=1e-9)
        cov = np.cov(fa[keep], fb[keep], ddof=0)[0, 1]
        np.testing.assert_allclose(j.covariance()[k], cov, rtol=1e-9, atol=1e-9 * fa[keep].std() * fb[keep].std())


def test_joint_moments_with_different_dtypes_and_nodata(rng):
    shape = (2, 50, 40)
    a = random_window("uint16", shape, rng)          # nodata 65535
    b = random_window("float32", shape, rng)         # NaN/±inf plus nodata -9999
    j = JointMoments.empty(2).add_windows(a, b, 65535, -9999.0)
    ref = joint_reference(a, b, 65535, -9999.0, None)
    np.testing.assert_array_equal(j.count, ref[0])
    np.testing.assert_allclose(j._acc[1:], ref[1:], rtol=1e-12)
    # The joint mask also applies to a: its moments differ from a alone.
    alone = Moments.from_window(a, nodata=65535)
    assert (j.count < alone.count).all()


def test_joint_merge_and_empty(rng):
    shape = (1, 64, 30)
    a, b = random_window("int32", shape, rng), random_window("int32", shape, rng)
    whole = JointMoments.empty(1).add_windows(a, b, NODATA["int32"], None)
    top = JointMoments.empty(1).add_windows(a[:, :20], b[:, :20], NODATA["int32"], None)
    bottom = JointMoments.empty(1).add_windows(a[:, 20:], b[:, 20:], NODATA["int32"], None)
    merged = top.merge(bottom)
    np.testing.assert_array_equal(merged.count, whole.count)
    np.testing.assert_allclose(merged._acc, whole._acc, rtol=1e-12)
    empty = JointMoments.empty(1).add_windows(a[:, :0], b[:, :0])
    for value in (empty.count, empty.mean_a, empty.mean_b, empty.std_a(), empty.std_b(1),
                  empty.covariance()):
        np.testing.assert_array_equal(value, [0.0])
    restored = pickle.loads(pickle.dumps(whole))
    np.testing.assert_array_equal(restored._acc, whole._acc)
    assert restored.sum_ab.base is restored._acc


# ------------------------------------------------------------------ errors


def test_invalid_arguments_raise_parameter_errors():
    m = Moments.empty(2)
    with pytest.raises(ParameterError, match="bands"):
        m.add_window(np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(ParameterError, match="shape"):
        m.add_window(np.zeros((2, 2, 4, 4), np.uint8))
    with pytest.raises(ParameterError, match="complex128"):
        m.add_window(np.zeros((2, 4, 4), np.complex128))
    with pytest.raises(ParameterError, match="mask"):
        m.add_window(np.zeros((2, 4, 4), np.uint8), mask=np.ones((4, 5), bool))
    with pytest.raises(ParameterError, match="mask"):
        m.add_window(np.zeros((2, 4, 4), np.uint8), mask=np.ones((4, 4), np.float32))
    with pytest.raises(ParameterError, match="nodata"):
        m.add_window(np.zeros((2, 4, 4), np.uint8), nodata="0")
    with pytest.raises(ParameterError, match="nodata"):
        m.add_window(np.zeros((2, 4, 4), np.uint8), nodata=[0, 1, 2])
    with pytest.raises(ParameterError, match="ddof"):
        m.std(ddof=-1)
    with pytest.raises(ParameterError, match="bands"):
        Moments.empty(-1)
    with pytest.raises(ParameterError, match="same shape"):
        JointMoments.empty(1).add_windows(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ParameterError, match="1-D"):
        Moments(np.zeros(2), np.zeros(2), np.zeros(3), np.zeros(2), np.zeros(2))


def test_kernel_rejects_mismatched_accumulators():
    data = np.zeros((2, 3, 3), np.uint8)
    with pytest.raises(ValueError, match="accumulator"):
        mod._kernel.accumulate_moments(data, np.empty(0, np.uint8), None, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="mask"):
        mod._kernel.accumulate_moments(data, np.empty(0, np.uint8), np.ones((3, 4), np.uint8),
                                       np.zeros((5, 2)))
