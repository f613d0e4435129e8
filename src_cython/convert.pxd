# cython: language_level=3
"""Output conversion shared by the correction kernels.

``convert_value`` turns a computed float64 value of a *valid* pixel into the output dtype:
integers are rounded to nearest (half away from zero) and clipped to the dtype range; NaN or
±inf become the nodata value (or the clip bound / 0 without nodata); a result equal to the nodata
value is moved to the nearest other value so that valid pixels never turn into nodata.
"""
from libc.math cimport isnan, isfinite, round as c_round, nextafter, INFINITY
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


cdef inline double convert_value(double v, bint is_integer, double lo, double hi,
                                 double nodata, bint use_nodata) noexcept nogil:
    """Value to store for a valid pixel whose corrected value is ``v`` (see module doc)."""
    if isnan(v):
        return nodata if use_nodata else 0.0
    if is_integer:
        v = c_round(v)
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
