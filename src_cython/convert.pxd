# cython: language_level=3
"""Output conversion shared by the correction kernels.

``convert_value`` turns a computed float64 value of a *valid* pixel into the output dtype:
integers are rounded to nearest (half away from zero) and clipped to the dtype range; NaN or
±inf become the nodata value (or the clip bound / 0 without nodata); a result equal to the nodata
value is moved to the nearest other value so that valid pixels never turn into nodata.
"""
from libc.float cimport FLT_MAX
from libc.math cimport fabs, isnan, nextafter, nextafterf, INFINITY
from libc.stdint cimport int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t, int64_t, uint64_t

ctypedef fused out_t:
    uint8_t
    int8_t
    uint16_t
    int16_t
    uint32_t
    int32_t
    int64_t
    uint64_t
    float
    double


cdef inline double round_half_away(double v) noexcept nogil:
    """``round(v)`` (half away from zero) without a libm call: truncation is one instruction.

    Exact: ``v - trunc(v)`` has no rounding error, and values of magnitude >= 2**52 are
    already integers (NaN is handled by the callers).
    """
    cdef double t, d
    if fabs(v) >= 4503599627370496.0:
        return v
    t = <double>(<int64_t>v)
    d = v - t
    # Comparisons as 0/1 values: no data-dependent branch (the fraction is random per pixel).
    return t + <double>(d >= 0.5) - <double>(d <= -0.5)


cdef inline double convert_value(double v, bint is_integer, double lo, double hi,
                                 double nodata, bint use_nodata) noexcept nogil:
    """Value to store for a valid pixel whose corrected value is ``v`` (see module doc)."""
    if isnan(v):
        return nodata if use_nodata else 0.0
    if is_integer:
        v = round_half_away(v)
        if v < lo:
            v = lo
        elif v > hi:
            v = hi
        if use_nodata and v == nodata:
            if v < hi:
                v = v + 1.0
            else:
                v = v - 1.0
        return v
    if v < lo:
        v = lo
    elif v > hi:
        v = hi
    if use_nodata and v == nodata:
        v = nextafter(v, INFINITY) if v < hi else nextafter(v, -INFINITY)
    return v


cdef inline out_t store_value(double v, out_t nd_out, double nodata_out, bint use_nodata_out,
                              double lo, double hi) noexcept nogil:
    """``convert_value`` cast to the output type, still never equal to the nodata value.

    A float64 value nudged off nodata can land back on it when cast to float32; it is nudged
    again in float32 precision.
    """
    cdef out_t o
    cdef float of
    if out_t is float or out_t is double:
        o = <out_t>convert_value(v, False, lo, hi, nodata_out, use_nodata_out)
        if out_t is float:
            if use_nodata_out and o == nd_out and not isnan(v):
                of = o
                o = nextafterf(of, INFINITY) if of < FLT_MAX else nextafterf(of, -INFINITY)
        return o
    else:
        return <out_t>convert_value(v, True, lo, hi, nodata_out, use_nodata_out)
