# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Fused local correction: block-map interpolation + gamma/linear correction + output conversion.

For every band ``k`` and pixel ``P`` of the window, ``R`` and ``L`` are the NaN-aware bilinear
interpolations of the reference map ``ref[k]`` and the local map ``loc[k]`` at the pixel's
continuous block coordinates ``(frow[row], fcol[col])`` (computed by the caller, once per image
row and column; clamped to the maps). With the per-band shift ``o = shift[k]`` and the blended
target ``T = alpha·(R + o) + (1 - alpha)·(L + o)``:

* gamma (method 0):  ``out = exp(γ · ln(P + o)) - o`` with ``γ = ln T / ln(L + o)``
* linear (method 1): ``out = (P + o) · T / (L + o) - o``

All arithmetic is float64. Invalid pixels (non-finite or equal to the input nodata) become the
output nodata value. A valid pixel where ``R`` or ``L`` has no valid neighbouring cell is passed
through unchanged. Results are converted by ``store_value`` (round half away from zero, clip,
never equal to the output nodata; NaN -> nodata). No array larger than one map row or one window
row is allocated (plus, for 8- and 16-bit pixels with the gamma method and windows of at least
eight times as many pixels, a table of ``ln(P + o)`` for every pixel value: 512 KB at most), so
memory is that of the window itself.
"""
from libc.math cimport isfinite, isnan, log, exp, NAN
from libc.stdint cimport int8_t, uint8_t, int16_t, uint16_t
from pixel_types cimport pixel_t
from convert cimport out_t, convert_value, store_value
from block_interp cimport cell_and_weight, blend_rows, blend_cols

import numpy as np

cdef enum:
    _GAMMA = 0
    _LINEAR = 1

GAMMA = _GAMMA
LINEAR = _LINEAR


def correct_window(const pixel_t[:, :, ::1] data, out_t[:, :, ::1] out,
                   const double[:, :, :] ref_map, const double[:, :, :] loc_map,
                   const double[::1] frow, const double[::1] fcol, const double[::1] shift,
                   double alpha, int method, double nodata_in, bint use_nodata_in,
                   bint is_integer, double lo, double hi, double nodata_out,
                   bint use_nodata_out):
    """Correct ``data`` (bands, rows, cols) into ``out`` (same shape); see the module doc."""
    cdef Py_ssize_t nb = data.shape[0], nr = data.shape[1], nc = data.shape[2]
    cdef Py_ssize_t mr = ref_map.shape[1], mc = ref_map.shape[2]
    cdef Py_ssize_t k, r, c, i0, i1
    cdef double t, p, o, v, g
    cdef bint keep_nan = (not is_integer) and (not use_nodata_out)
    cdef out_t nd_out = <out_t>nodata_out if use_nodata_out else 0
    cdef bint gamma = method == _GAMMA
    cdef bint valid_p
    if out.shape[0] != nb or out.shape[1] != nr or out.shape[2] != nc:
        raise ValueError("data and out must have the same shape")
    if loc_map.shape[0] != ref_map.shape[0] or loc_map.shape[1] != mr or loc_map.shape[2] != mc:
        raise ValueError("ref_map and loc_map must have the same shape")
    if ref_map.shape[0] < nb or shift.shape[0] < nb:
        raise ValueError(f"maps and shift need {nb} bands")
    if mr < 1 or mc < 1:
        raise ValueError("block maps must have at least one cell")
    if frow.shape[0] != nr or fcol.shape[0] != nc:
        raise ValueError(f"frow/fcol need {nr} and {nc} entries")
    if method != _GAMMA and method != _LINEAR:
        raise ValueError(f"unknown method {method}")
    j0 = np.empty(nc, dtype=np.intp)
    j1 = np.empty(nc, dtype=np.intp)
    wc = np.empty(nc, dtype=np.float64)
    buf = np.empty((4, mc), dtype=np.float64)
    rowbuf = np.empty((2, nc), dtype=np.float64)
    cdef Py_ssize_t[::1] j0v = j0, j1v = j1
    cdef double[::1] wcv = wc
    cdef double[::1] vr = buf[0], wr = buf[1], vl = buf[2], wl = buf[3]
    # per pixel of the current row: the exponent γ (gamma) or the factor T / (L + o) (linear);
    # NaN where a map has no valid neighbouring cell (the pixel passes through)
    cdef double[::1] coef = rowbuf[0]
    # 8- and 16-bit integer pixels: ln(P + o) from a table of every possible value (the same
    # expression as computed directly, so results do not depend on whether it is used)
    cdef Py_ssize_t tmin = 0, tsize = 0
    if pixel_t is uint8_t:
        tmin, tsize = 0, 256
    elif pixel_t is int8_t:
        tmin, tsize = -128, 256
    elif pixel_t is uint16_t:
        tmin, tsize = 0, 65536
    elif pixel_t is int16_t:
        tmin, tsize = -32768, 65536
    cdef bint use_table = gamma and tsize > 0 and nr * nc >= 8 * tsize
    table_arr = np.empty(tsize if use_table else 1, dtype=np.float64)
    cdef double[::1] table = table_arr
    cdef Py_ssize_t ti
    cdef double lp
    cdef const pixel_t* src
    cdef out_t* dst
    if nr == 0 or nc == 0:
        return
    with nogil:
        for c in range(nc):
            cell_and_weight(fcol[c], mc, &j0v[c], &j1v[c], &wcv[c])
        for k in range(nb):
            o = shift[k]
            if use_table:
                for ti in range(tsize):
                    table[ti] = log(<double>(ti + tmin) + o)
            for r in range(nr):
                cell_and_weight(frow[r], mr, &i0, &i1, &t)
                blend_rows(ref_map[k], i0, i1, t, vr, wr)
                blend_rows(loc_map[k], i0, i1, t, vl, wl)
                for c in range(nc):
                    coef[c] = _coefficient(vr, wr, vl, wl, j0v[c], j1v[c], wcv[c], o, alpha,
                                           gamma)
                src = &data[k, r, 0]
                dst = &out[k, r, 0]
                for c in range(nc):
                    p = <double>src[c]
                    if pixel_t is float or pixel_t is double:
                        valid_p = isfinite(p) and not (use_nodata_in and p == nodata_in)
                    else:
                        valid_p = not (use_nodata_in and p == nodata_in)
                    if not valid_p:
                        if use_nodata_out:
                            dst[c] = <out_t>nodata_out
                        elif keep_nan:
                            dst[c] = <out_t>p
                        else:
                            dst[c] = <out_t>convert_value(p, is_integer, lo, hi, nodata_out,
                                                          False)
                        continue
                    g = coef[c]
                    if isnan(g):
                        v = p
                    elif gamma and g == 1.0:
                        v = p  # exact: the image already matches its target here
                    elif gamma:
                        if use_table:
                            lp = table[<Py_ssize_t>p - tmin]
                        else:
                            lp = log(p + o)
                        v = exp(g * lp) - o
                    else:
                        v = (p + o) * g - o
                    if keep_nan and isnan(v):
                        dst[c] = <out_t>v
                    else:
                        dst[c] = store_value(v, nd_out, nodata_out, use_nodata_out, lo, hi)


cdef inline double _coefficient(const double[::1] vr, const double[::1] wr,
                                const double[::1] vl, const double[::1] wl, Py_ssize_t j0,
                                Py_ssize_t j1, double u, double o, double alpha,
                                bint gamma) noexcept nogil:
    """γ = ln T / ln(L + o) or T / (L + o) at one pixel (NaN without valid map cells)."""
    cdef double rv = blend_cols(vr, wr, j0, j1, u)
    cdef double lv = blend_cols(vl, wl, j0, j1, u)
    cdef double tv
    if isnan(rv) or isnan(lv):
        return NAN
    lv = lv + o
    tv = alpha * (rv + o) + (1.0 - alpha) * lv
    if not gamma:
        return tv / lv
    return log(tv) / log(lv)
