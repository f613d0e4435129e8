# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Linear per-band correction ``a·x + b`` with output conversion (global regression apply pass).

For every band ``k`` and pixel ``x`` of the input window: a pixel equal to the input nodata value
(compared in the pixel type) is written as the output nodata value; any other pixel becomes
``scale[k]·x + offset[k]`` converted by ``convert_value`` (round half away from zero and clip for
integer outputs; NaN results become nodata) and never equals the output nodata value once
stored. Arithmetic is float64, or float32 when ``single_precision`` is set (the seed's default
``calculation_dtype``).
"""
from libc.math cimport isnan
from pixel_types cimport pixel_t
from convert cimport out_t, store_value


cdef inline out_t _store(double v, out_t nd_out, double nodata_out, bint use_nodata_out,
                         bint keep_nan, double lo, double hi) noexcept nogil:
    """The output value of a valid pixel whose corrected value is ``v``."""
    if out_t is float or out_t is double:
        if keep_nan and isnan(v):
            return <out_t>v
    return store_value(v, nd_out, nodata_out, use_nodata_out, lo, hi)


cdef inline void _row(const pixel_t* src, out_t* dst, Py_ssize_t n, double a, double b,
                      bint single, pixel_t nd_in, bint use_nd_in, out_t nd_out,
                      double nodata_out, bint use_nodata_out, bint keep_nan, double lo,
                      double hi) noexcept nogil:
    """One row; the precision test is outside the pixel loops."""
    cdef Py_ssize_t c
    cdef pixel_t x
    cdef float af = <float>a, bf = <float>b
    if single:
        for c in range(n):
            x = src[c]
            if use_nd_in and x == nd_in:
                dst[c] = nd_out
            else:
                dst[c] = _store(<double>(<float>(<float>x * af) + bf), nd_out, nodata_out,
                                use_nodata_out, keep_nan, lo, hi)
    else:
        for c in range(n):
            x = src[c]
            if use_nd_in and x == nd_in:
                dst[c] = nd_out
            else:
                dst[c] = _store(<double>x * a + b, nd_out, nodata_out, use_nodata_out,
                                keep_nan, lo, hi)


def apply_linear(const pixel_t[:, :, ::1] src, out_t[:, :, ::1] dst,
                 const double[::1] scale, const double[::1] offset,
                 const pixel_t[::1] nodata_in, double nodata_out, bint use_nodata_out,
                 bint is_integer, double lo, double hi, bint single_precision):
    """Write ``scale[k]·src[k] + offset[k]`` into ``dst`` (both C-contiguous (bands, rows, cols)).

    ``nodata_in`` holds zero values (no input nodata) or one value of the pixel type.
    """
    cdef Py_ssize_t nb = src.shape[0], nr = src.shape[1], nc = src.shape[2]
    cdef Py_ssize_t k, r
    cdef bint use_nodata_in = nodata_in.shape[0] > 0
    cdef pixel_t nd_in = nodata_in[0] if use_nodata_in else 0
    cdef bint keep_nan = (not is_integer) and (not use_nodata_out)
    cdef out_t nd_out = <out_t>nodata_out if use_nodata_out else 0
    if dst.shape[0] != nb or dst.shape[1] != nr or dst.shape[2] != nc:
        raise ValueError("src and dst must have the same shape")
    if scale.shape[0] < nb or offset.shape[0] < nb:
        raise ValueError(f"scale and offset need {nb} values")
    if nb == 0 or nr == 0 or nc == 0:
        return
    with nogil:
        for k in range(nb):
            for r in range(nr):
                _row(&src[k, r, 0], &dst[k, r, 0], nc, scale[k], offset[k], single_precision,
                     nd_in, use_nodata_in, nd_out, nodata_out, use_nodata_out, keep_nan, lo, hi)
