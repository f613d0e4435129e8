"""Streaming per-band moments of raster windows: validate, allocate, call the compiled kernel.

:class:`Moments` accumulates count, sum, sum of squares, minimum and maximum of the valid
pixels of each band over any number of windows; :class:`JointMoments` accumulates the moments
of two co-registered windows over the pixels valid in both (overlap statistics). Both are
mergeable: the parent adds the partial results of workers with :meth:`Moments.merge`, so no
pixel array is ever concatenated.

Validity: a pixel counts when it is finite (NaN and ±inf never count), differs from the band's
nodata value and, when a mask is given, its mask value is non-zero. Nodata is compared in the
pixel type, like GDAL and numpy (``float32`` data with nodata 0.1 drops pixels equal to
``float32(0.1)``); a nodata value the pixel type cannot hold (-9999 for ``uint16``, 0.5 for an
integer type, NaN) matches no pixel.

Numerics: the storage is float64. 8- and 16-bit integer windows are summed exactly in 64-bit
integers, other types in float64 with four interleaved partial sums. The variance is derived
from the sums, ``(Σx² − (Σx)²/n) / (n − ddof)``; for ``n`` values, the rounding error of the
sums is at most about ``n·2⁻⁵³`` relative (exact for 8/16-bit data below 2⁵³), and the
subtraction amplifies it by ``(mean² + var) / var``. Tiny negative results of that cancellation
are clipped to 0. This is ample for imagery (mean/std ratios of 1–100) and keeps merging a
plain addition, independent of window size and worker order.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from spectralmatch._kernels import moments as _kernel
from spectralmatch.errors import ParameterError

__all__ = ["KERNEL_DTYPES", "JointMoments", "Moments"]

#: Pixel dtypes the kernel is compiled for (``src_cython/pixel_types.pxd``); bool is read as
#: uint8 and float16 is widened to float32.
KERNEL_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "uint64",
                 "float32", "float64")

Nodata = float | None
NodataArg = Nodata | Sequence[Nodata]


# ------------------------------------------------------------------------- input checks


def _window(data: np.ndarray, name: str) -> np.ndarray:
    """``data`` as a (bands, rows, cols) array the kernel accepts, copying only if needed."""
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3:
        raise ParameterError(f"{name} must have shape (bands, rows, cols) or (rows, cols), "
                             f"got {np.shape(data)}")
    if arr.dtype == np.bool_:
        arr = arr.view(np.uint8)
    elif arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if arr.dtype.name not in KERNEL_DTYPES:
        raise ParameterError(f"{name} has dtype {arr.dtype}; accepted: {', '.join(KERNEL_DTYPES)}")
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    # The kernel walks rows through pointers: only the last axis must have unit stride.
    if arr.strides[2] != arr.itemsize or arr.shape[2] <= 1:
        arr = np.ascontiguousarray(arr)
    return arr


def _mask(mask: np.ndarray | None, rows: int, cols: int) -> np.ndarray | None:
    """``mask`` as a (rows, cols) uint8 array (non-zero = keep), or None."""
    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.shape != (rows, cols):
        raise ParameterError(f"mask must have the window's shape ({rows}, {cols}), got {arr.shape}")
    if arr.dtype == np.bool_:
        arr = arr.view(np.uint8)  # same bytes: no copy
    elif arr.dtype != np.uint8:
        if arr.dtype.kind not in "iu":
            raise ParameterError(f"mask must be bool or an integer type (non-zero = keep), "
                                 f"got {arr.dtype}")
        arr = (arr != 0).view(np.uint8)
    if arr.strides[1] != 1 or cols <= 1:
        arr = np.ascontiguousarray(arr)
    return arr


def _nodata_array(nodata: Nodata, dtype: np.dtype, name: str) -> np.ndarray:
    """``nodata`` as an array of ``dtype`` with one value, or none when no pixel can match."""
    empty = np.empty(0, dtype=dtype)
    if nodata is None:
        return empty
    if isinstance(nodata, (bool, np.bool_)) or not isinstance(nodata, numbers.Real):
        raise ParameterError(f"{name} must be a number or None, got {nodata!r}")
    if dtype.kind == "f":
        value = float(nodata)
        if not math.isfinite(value):  # NaN/±inf never count anyway
            return empty
        with np.errstate(over="ignore"):
            cast = np.array([value], dtype=dtype)
        return cast if np.isfinite(cast[0]) else empty
    if isinstance(nodata, numbers.Integral):
        value = int(nodata)
    else:
        real = float(nodata)
        if not real.is_integer():  # NaN, ±inf or a fraction: no integer pixel equals it
            return empty
        value = int(real)
    info = np.iinfo(dtype)
    if not info.min <= value <= info.max:
        return empty
    return np.array([value], dtype=dtype)


def _per_band(nodata: NodataArg, bands: int, name: str) -> list[Nodata]:
    if nodata is None or isinstance(nodata, numbers.Real):
        return [nodata] * bands
    if isinstance(nodata, (str, bytes)) or not isinstance(nodata, Sequence | np.ndarray):
        raise ParameterError(f"{name} must be a number, None or one value per band, got {nodata!r}")
    values = list(nodata)
    if len(values) != bands:
        raise ParameterError(f"{name} has {len(values)} values for {bands} bands")
    return values


def _nodata_arrays(nodata: NodataArg, dtype: np.dtype, bands: int, name: str) -> list[np.ndarray]:
    """One nodata array per band (see :func:`_nodata_array`)."""
    return [_nodata_array(v, dtype, name) for v in _per_band(nodata, bands, name)]


def _all_same(arrays: list[np.ndarray]) -> bool:
    return all(a.shape == arrays[0].shape and np.array_equal(a, arrays[0]) for a in arrays[1:])


def _check_ddof(ddof: int) -> int:
    if isinstance(ddof, (bool, np.bool_)) or not isinstance(ddof, numbers.Integral) or ddof < 0:
        raise ParameterError(f"ddof must be a non-negative integer, got {ddof!r}")
    return int(ddof)


def _variance(count: np.ndarray, total: np.ndarray, total_sq: np.ndarray,
              ddof: int) -> np.ndarray:
    """Per-band variance from sums; 0 where ``count <= ddof`` (no spread can be measured)."""
    ddof = _check_ddof(ddof)
    ok = count > ddof
    n = np.where(ok, count, 1.0)
    m2 = total_sq - total * (total / n)
    return np.where(ok, np.maximum(m2, 0.0) / (n - np.where(ok, ddof, 0)), 0.0)


def _mean(count: np.ndarray, total: np.ndarray) -> np.ndarray:
    return np.where(count > 0, total / np.where(count > 0, count, 1.0), 0.0)


def _bands_arg(bands: int) -> int:
    if isinstance(bands, (bool, np.bool_)) or not isinstance(bands, numbers.Integral) or bands < 0:
        raise ParameterError(f"bands must be a non-negative integer, got {bands!r}")
    return int(bands)


class _Accumulator:
    """Shared storage logic: the fields are row views of one C-contiguous (fields, bands)
    float64 array that the kernel writes into directly."""

    _acc: np.ndarray

    def __post_init__(self) -> None:
        names = [f.name for f in fields(self) if f.init]
        rows = [np.asarray(getattr(self, n), dtype=np.float64) for n in names]
        if any(r.ndim != 1 for r in rows) or len({r.shape for r in rows}) != 1:
            raise ParameterError(f"{type(self).__name__} fields {', '.join(names)} must be 1-D "
                                 f"arrays of one value per band, got shapes "
                                 f"{[r.shape for r in rows]}")
        acc = np.empty((len(names), rows[0].shape[0]), dtype=np.float64)
        for i, r in enumerate(rows):
            acc[i] = r
        object.__setattr__(self, "_acc", acc)
        for i, n in enumerate(names):
            object.__setattr__(self, n, acc[i])

    @property
    def bands(self) -> int:
        """Number of bands."""
        return self._acc.shape[1]

    def __reduce__(self):
        # Rebuild through __init__ so the fields are views of one array again after pickling.
        return type(self), tuple(self._acc.copy())

    def copy(self):
        """An independent copy."""
        return type(self)(*self._acc.copy())

    def _check_other(self, other) -> None:
        if not isinstance(other, type(self)):
            raise ParameterError(f"can only merge {type(self).__name__}, got {type(other).__name__}")
        if other.bands != self.bands:
            raise ParameterError(f"cannot merge {type(self).__name__} of {other.bands} bands "
                                 f"into one of {self.bands} bands")


@dataclass(frozen=True, eq=False)
class Moments(_Accumulator):
    """Per-band count, sum, sum of squares, minimum and maximum of valid pixels (float64).

    The arrays are views of one (5, bands) accumulator that the kernel updates in place, so
    they cannot be rebound (frozen) but change as windows are added. An instance is not
    thread-safe: give each worker its own and :meth:`merge` them in a fixed order.

    Bands without valid pixels have count 0, mean 0 and std 0 (like the original
    spectralmatch's statistics JSON), minimum +inf and maximum -inf (the merge identities).
    """

    count: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    _acc: np.ndarray = field(init=False, repr=False, compare=False)

    @classmethod
    def empty(cls, bands: int) -> Moments:
        """Zero moments for ``bands`` bands (minimum +inf, maximum -inf)."""
        n = _bands_arg(bands)
        zeros = np.zeros(n)
        return cls(zeros, zeros, zeros, np.full(n, np.inf), np.full(n, -np.inf))

    @classmethod
    def from_window(cls, data: np.ndarray, nodata: NodataArg = None,
                    mask: np.ndarray | None = None) -> Moments:
        """Moments of one window (see :meth:`add_window`)."""
        arr = _window(data, "data")
        return cls.empty(arr.shape[0]).add_window(arr, nodata, mask)

    def add_window(self, data: np.ndarray, nodata: NodataArg = None,
                   mask: np.ndarray | None = None) -> Moments:
        """Add the valid pixels of a window.

        Args:
            data (np.ndarray): (bands, rows, cols) or, for one band, (rows, cols); any dtype of
                :data:`KERNEL_DTYPES` (or bool/float16). Rows with unit stride (any C-ordered
                array or slice of one) are used without copying.
            nodata (float | None | Sequence): Nodata value of every band, one value per band,
                or None. NaN, and values the dtype cannot hold, match no pixel.
            mask (np.ndarray | None): (rows, cols) bool or integer array, non-zero = keep.

        Returns:
            Moments: ``self``, updated in place.
        """
        arr = _window(data, "data")
        if arr.shape[0] != self.bands:
            raise ParameterError(f"data has {arr.shape[0]} bands but these moments have "
                                 f"{self.bands}")
        mask_arr = _mask(mask, arr.shape[1], arr.shape[2])
        nds = _nodata_arrays(nodata, arr.dtype, self.bands, "nodata")
        if not nds:  # no bands
            return self
        if _all_same(nds):
            _kernel.accumulate_moments(arr, nds[0], mask_arr, self._acc)
            return self
        for b, nd in enumerate(nds):  # per-band nodata: one call per band
            part = np.ascontiguousarray(self._acc[:, b:b + 1])
            _kernel.accumulate_moments(arr[b:b + 1], nd, mask_arr, part)
            self._acc[:, b] = part[:, 0]
        return self

    def merge(self, other: Moments) -> Moments:
        """Add the moments of ``other`` (same bands) into these; returns ``self``."""
        self._check_other(other)
        self._acc[:3] += other._acc[:3]
        np.minimum(self.minimum, other.minimum, out=self.minimum)
        np.maximum(self.maximum, other.maximum, out=self.maximum)
        return self

    @property
    def mean(self) -> np.ndarray:
        """Per-band mean; 0 for bands without valid pixels."""
        return _mean(self.count, self.total)

    def variance(self, ddof: int = 0) -> np.ndarray:
        """Per-band variance, population (``ddof=0``) by default; ``ddof=1`` is the sample
        variance. 0 where ``count <= ddof``."""
        return _variance(self.count, self.total, self.total_sq, ddof)

    def std(self, ddof: int = 0) -> np.ndarray:
        """Per-band standard deviation, population (``ddof=0``) by default; ``ddof=1`` is the
        sample std. 0 where ``count <= ddof`` (empty bands, single pixel with ``ddof=1``)."""
        return np.sqrt(self.variance(ddof))


@dataclass(frozen=True, eq=False)
class JointMoments(_Accumulator):
    """Per-band moments of two co-registered windows over the pixels valid in both.

    ``sum_a``/``sumsq_a`` and ``sum_b``/``sumsq_b`` are the sums of each image's values and
    squares, ``sum_ab`` the sum of their products; the arrays are views of one (6, bands)
    accumulator. Empty bands have count 0, means 0 and stds 0. Not thread-safe (see
    :class:`Moments`).
    """

    count: np.ndarray
    sum_a: np.ndarray
    sumsq_a: np.ndarray
    sum_b: np.ndarray
    sumsq_b: np.ndarray
    sum_ab: np.ndarray
    _acc: np.ndarray = field(init=False, repr=False, compare=False)

    @classmethod
    def empty(cls, bands: int) -> JointMoments:
        """Zero joint moments for ``bands`` bands."""
        zeros = np.zeros(_bands_arg(bands))
        return cls(zeros, zeros, zeros, zeros, zeros, zeros)

    def add_windows(self, a: np.ndarray, b: np.ndarray, nodata_a: NodataArg = None,
                    nodata_b: NodataArg = None, mask: np.ndarray | None = None) -> JointMoments:
        """Add the pixels valid in both windows (per band) and in ``mask``.

        Args:
            a (np.ndarray): Window of the first image, (bands, rows, cols) or (rows, cols).
            b (np.ndarray): Window of the second image on the same grid and shape.
            nodata_a (float | None | Sequence): Nodata of ``a`` (one value, one per band, None).
            nodata_b (float | None | Sequence): Nodata of ``b``.
            mask (np.ndarray | None): (rows, cols) bool or integer array, non-zero = keep.

        Returns:
            JointMoments: ``self``, updated in place.

        Windows of different dtypes are both cast to ``np.result_type`` of the two (after each
        nodata value has been resolved in its own window's dtype).
        """
        arr_a, arr_b = _window(a, "a"), _window(b, "b")
        if arr_a.shape != arr_b.shape:
            raise ParameterError(f"windows a {arr_a.shape} and b {arr_b.shape} must have the "
                                 f"same shape")
        if arr_a.shape[0] != self.bands:
            raise ParameterError(f"windows have {arr_a.shape[0]} bands but these joint moments "
                                 f"have {self.bands}")
        mask_arr = _mask(mask, arr_a.shape[1], arr_a.shape[2])
        nds_a = _nodata_arrays(nodata_a, arr_a.dtype, self.bands, "nodata_a")
        nds_b = _nodata_arrays(nodata_b, arr_b.dtype, self.bands, "nodata_b")
        if arr_a.dtype != arr_b.dtype:
            common = np.result_type(arr_a.dtype, arr_b.dtype)
            if common.name not in KERNEL_DTYPES:
                raise ParameterError(f"windows a ({arr_a.dtype}) and b ({arr_b.dtype}) have no "
                                     f"common kernel dtype")
            arr_a, arr_b = arr_a.astype(common), arr_b.astype(common)
            nds_a = [nd.astype(common) for nd in nds_a]
            nds_b = [nd.astype(common) for nd in nds_b]
        if not nds_a:  # no bands
            return self
        if _all_same(nds_a) and _all_same(nds_b):
            _kernel.accumulate_joint_moments(arr_a, arr_b, nds_a[0], nds_b[0], mask_arr,
                                             self._acc)
            return self
        for k in range(self.bands):  # per-band nodata: one call per band
            part = np.ascontiguousarray(self._acc[:, k:k + 1])
            _kernel.accumulate_joint_moments(arr_a[k:k + 1], arr_b[k:k + 1], nds_a[k], nds_b[k],
                                             mask_arr, part)
            self._acc[:, k] = part[:, 0]
        return self

    def merge(self, other: JointMoments) -> JointMoments:
        """Add the joint moments of ``other`` (same bands) into these; returns ``self``."""
        self._check_other(other)
        np.add(self._acc, other._acc, out=self._acc)
        return self

    @property
    def mean_a(self) -> np.ndarray:
        """Per-band mean of ``a`` over the joint pixels; 0 for empty bands."""
        return _mean(self.count, self.sum_a)

    @property
    def mean_b(self) -> np.ndarray:
        """Per-band mean of ``b`` over the joint pixels; 0 for empty bands."""
        return _mean(self.count, self.sum_b)

    def std_a(self, ddof: int = 0) -> np.ndarray:
        """Per-band std of ``a``, population (``ddof=0``) by default; 0 where count <= ddof."""
        return np.sqrt(_variance(self.count, self.sum_a, self.sumsq_a, ddof))

    def std_b(self, ddof: int = 0) -> np.ndarray:
        """Per-band std of ``b``, population (``ddof=0``) by default; 0 where count <= ddof."""
        return np.sqrt(_variance(self.count, self.sum_b, self.sumsq_b, ddof))

    def covariance(self, ddof: int = 0) -> np.ndarray:
        """Per-band covariance of ``a`` and ``b``; 0 where count <= ddof."""
        ddof = _check_ddof(ddof)
        ok = self.count > ddof
        n = np.where(ok, self.count, 1.0)
        c2 = self.sum_ab - self.sum_a * (self.sum_b / n)
        return np.where(ok, c2 / (n - np.where(ok, ddof, 0)), 0.0)
