# cython: language_level=3
"""NaN-aware bilinear interpolation of a block map, shared by ``blocks`` and ``local_correct``.

A block map is a (rows, cols) float64 grid whose cell centres sit at integer coordinates; NaN
marks cells without a value. Interpolation is a normalised convolution: with ``V`` = map with
NaN -> 0 and ``W`` = validity (1/0), value = bilinear(V) / bilinear(W), NaN where the
denominator is 0. It is computed separably: :func:`blend_rows` mixes the two map rows around a
pixel row once per image row, :func:`blend_cols` finishes each pixel from that row buffer.
Coordinates are clamped to ``[0, n - 1]`` (constant beyond the outermost cell centres).
"""
from libc.math cimport isnan, floor, NAN


cdef inline void cell_and_weight(double f, Py_ssize_t n, Py_ssize_t* i0, Py_ssize_t* i1,
                                 double* w) noexcept nogil:
    """Cells ``i0``, ``i1`` around coordinate ``f`` (clamped) and the weight ``w`` of ``i1``."""
    cdef double fl
    if n < 2 or not (f > 0.0):  # also catches NaN
        i0[0] = 0
        i1[0] = 1 if n > 1 else 0
        w[0] = 0.0
        return
    if f >= <double>(n - 1):
        i0[0] = n - 2
        i1[0] = n - 1
        w[0] = 1.0
        return
    fl = floor(f)
    i0[0] = <Py_ssize_t>fl
    i1[0] = i0[0] + 1
    w[0] = f - fl


cdef inline void blend_rows(const double[:, :] m, Py_ssize_t i0, Py_ssize_t i1, double t,
                            double[::1] vrow, double[::1] wrow) noexcept nogil:
    """vrow[j], wrow[j] = (1-t)·(V, W)[i0, j] + t·(V, W)[i1, j] for every map column j."""
    cdef Py_ssize_t j, nc = m.shape[1]
    cdef double a, b, va, vb, wa, wb
    for j in range(nc):
        a = m[i0, j]
        b = m[i1, j]
        if isnan(a):
            va = 0.0
            wa = 0.0
        else:
            va = a
            wa = 1.0
        if isnan(b):
            vb = 0.0
            wb = 0.0
        else:
            vb = b
            wb = 1.0
        vrow[j] = (1.0 - t) * va + t * vb
        wrow[j] = (1.0 - t) * wa + t * wb


cdef inline double blend_cols(const double[::1] vrow, const double[::1] wrow, Py_ssize_t j0,
                              Py_ssize_t j1, double u) noexcept nogil:
    """Finish the interpolation at one pixel from the row buffers (NaN without valid cells)."""
    cdef double den = (1.0 - u) * wrow[j0] + u * wrow[j1]
    if den <= 0.0:
        return NAN
    return ((1.0 - u) * vrow[j0] + u * vrow[j1]) / den
