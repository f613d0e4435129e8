# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Masked per-band moments of a window: count, sum, sum of squares, min, max (float64).

Accumulators are float64 arrays that the caller owns; each call adds one window into them,
so results of several windows merge by simply reusing the same accumulator (in a fixed order).
A pixel is valid when it is finite, differs from the nodata value (if one is used) and, when a
mask is given, its mask value is non-zero. Validity is per band.
"""
from libc.math cimport isfinite, INFINITY
from libc.stdint cimport uint8_t
from pixel_types cimport pixel_t

# Column layout of the single-image accumulator (bands, 5).
COUNT, SUM, SUMSQ, MIN, MAX = 0, 1, 2, 3, 4
# Column layout of the joint accumulator (bands, 7).
J_COUNT, J_SUM_A, J_SUMSQ_A, J_SUM_B, J_SUMSQ_B, J_SUM_AB, J_UNUSED = 0, 1, 2, 3, 4, 5, 6


cdef inline bint _valid(double v, double nodata, bint use_nodata) noexcept nogil:
    if not isfinite(v):
        return False
    if use_nodata and v == nodata:
        return False
    return True


def accumulate_moments(const pixel_t[:, :, :] data, double nodata, bint use_nodata,
                       const uint8_t[:, :] mask, double[:, ::1] acc):
    """Add the valid pixels of ``data`` (bands, rows, cols) into ``acc`` (bands, 5).

    ``mask`` may be None; otherwise it has shape (rows, cols) and zero marks excluded pixels.
    NaN nodata is handled by the finiteness test (NaN never equals anything).
    """
    cdef Py_ssize_t nb = data.shape[0], nr = data.shape[1], nc = data.shape[2]
    cdef Py_ssize_t b, r, c
    cdef double v, cnt, s, s2, lo, hi
    cdef bint has_mask = mask is not None
    if acc.shape[0] != nb or acc.shape[1] < 5:
        raise ValueError(f"accumulator must have shape ({nb}, 5), got ({acc.shape[0]}, {acc.shape[1]})")
    if has_mask and (mask.shape[0] != nr or mask.shape[1] != nc):
        raise ValueError(f"mask shape ({mask.shape[0]}, {mask.shape[1]}) differs from window ({nr}, {nc})")
    with nogil:
        for b in range(nb):
            cnt = 0.0
            s = 0.0
            s2 = 0.0
            lo = acc[b, 3]
            hi = acc[b, 4]
            for r in range(nr):
                for c in range(nc):
                    if has_mask and mask[r, c] == 0:
                        continue
                    v = <double>data[b, r, c]
                    if not _valid(v, nodata, use_nodata):
                        continue
                    cnt += 1.0
                    s += v
                    s2 += v * v
                    if v < lo:
                        lo = v
                    if v > hi:
                        hi = v
            acc[b, 0] += cnt
            acc[b, 1] += s
            acc[b, 2] += s2
            acc[b, 3] = lo
            acc[b, 4] = hi


def accumulate_joint_moments(const pixel_t[:, :, :] a, const pixel_t[:, :, :] b,
                             double nodata_a, bint use_nodata_a,
                             double nodata_b, bint use_nodata_b,
                             const uint8_t[:, :] mask, double[:, ::1] acc):
    """Add pixels valid in both co-registered windows ``a`` and ``b`` into ``acc`` (bands, 7).

    Columns: count, sum_a, sumsq_a, sum_b, sumsq_b, sum_ab, (unused). Validity is per band:
    a pixel of band k counts when band k is valid in ``a`` and in ``b`` (and in ``mask``).
    """
    cdef Py_ssize_t nb = a.shape[0], nr = a.shape[1], nc = a.shape[2]
    cdef Py_ssize_t k, r, c
    cdef double va, vb, cnt, sa, sa2, sb, sb2, sab
    cdef bint has_mask = mask is not None
    if b.shape[0] != nb or b.shape[1] != nr or b.shape[2] != nc:
        raise ValueError("windows a and b must have the same shape")
    if acc.shape[0] != nb or acc.shape[1] < 7:
        raise ValueError(f"accumulator must have shape ({nb}, 7)")
    if has_mask and (mask.shape[0] != nr or mask.shape[1] != nc):
        raise ValueError("mask shape differs from window")
    with nogil:
        for k in range(nb):
            cnt = 0.0
            sa = 0.0
            sa2 = 0.0
            sb = 0.0
            sb2 = 0.0
            sab = 0.0
            for r in range(nr):
                for c in range(nc):
                    if has_mask and mask[r, c] == 0:
                        continue
                    va = <double>a[k, r, c]
                    if not _valid(va, nodata_a, use_nodata_a):
                        continue
                    vb = <double>b[k, r, c]
                    if not _valid(vb, nodata_b, use_nodata_b):
                        continue
                    cnt += 1.0
                    sa += va
                    sa2 += va * va
                    sb += vb
                    sb2 += vb * vb
                    sab += va * vb
            acc[k, 0] += cnt
            acc[k, 1] += sa
            acc[k, 2] += sa2
            acc[k, 3] += sb
            acc[k, 4] += sb2
            acc[k, 5] += sab
