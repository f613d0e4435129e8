# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Pixel validity masks combined across bands.

A value is valid when it is finite (NaN and ±inf are never data) and, when a nodata value is
used, differs from it. The functions combine the bands of a window (bands, rows, cols) into one
uint8 mask (rows, cols) that the caller owns: 1 = valid, 0 = invalid. ``out`` is overwritten.
"""
from libc.math cimport isfinite
from libc.stdint cimport uint8_t
from pixel_types cimport pixel_t


cdef inline bint _valid(double v, double nodata, bint use_nodata) noexcept nogil:
    if not isfinite(v):
        return False
    if use_nodata and v == nodata:
        return False
    return True


def _check_shapes(Py_ssize_t nr, Py_ssize_t nc, Py_ssize_t out_r, Py_ssize_t out_c):
    if out_r != nr or out_c != nc:
        raise ValueError(f"out has shape ({out_r}, {out_c}) but the window is ({nr}, {nc})")


def valid_any_band(const pixel_t[:, :, :] data, double nodata, bint use_nodata,
                   uint8_t[:, :] out):
    """Set ``out[r, c] = 1`` where at least one band of ``data`` is valid, else 0.

    A window with zero bands gives an all-zero mask.
    """
    cdef Py_ssize_t nb = data.shape[0], nr = data.shape[1], nc = data.shape[2]
    cdef Py_ssize_t b, r, c
    _check_shapes(nr, nc, out.shape[0], out.shape[1])
    with nogil:
        # Band by band keeps the reads contiguous (data is band-sequential).
        for r in range(nr):
            for c in range(nc):
                out[r, c] = 0
        for b in range(nb):
            for r in range(nr):
                for c in range(nc):
                    if out[r, c] == 0 and _valid(<double>data[b, r, c], nodata, use_nodata):
                        out[r, c] = 1


def valid_all_bands(const pixel_t[:, :, :] data, double nodata, bint use_nodata,
                    uint8_t[:, :] out):
    """Set ``out[r, c] = 1`` where every band of ``data`` is valid, else 0.

    A window with zero bands gives an all-zero mask (no band holds data).
    """
    cdef Py_ssize_t nb = data.shape[0], nr = data.shape[1], nc = data.shape[2]
    cdef Py_ssize_t b, r, c
    cdef uint8_t flag
    _check_shapes(nr, nc, out.shape[0], out.shape[1])
    with nogil:
        flag = 1 if nb > 0 else 0
        for r in range(nr):
            for c in range(nc):
                out[r, c] = flag
        for b in range(nb):
            for r in range(nr):
                for c in range(nc):
                    if out[r, c] != 0 and not _valid(<double>data[b, r, c], nodata, use_nodata):
                        out[r, c] = 0


def apply_keep_mask(pixel_t[:, :, ::1] data, const uint8_t[:, ::1] keep, pixel_t nodata):
    """Set every band of ``data`` to ``nodata`` where ``keep`` is 0, in place.

    ``data`` is (bands, rows, cols) C-contiguous, ``keep`` (rows, cols) with 1 = keep the pixel.
    Returns the number of pixels set to nodata (per band, i.e. zeros in ``keep``).
    """
    cdef Py_ssize_t nb = data.shape[0], nr = data.shape[1], nc = data.shape[2]
    cdef Py_ssize_t b, r, c, dropped = 0
    _check_shapes(nr, nc, keep.shape[0], keep.shape[1])
    with nogil:
        for r in range(nr):
            for c in range(nc):
                if keep[r, c] == 0:
                    dropped += 1
        if dropped > 0:
            # Band by band keeps the writes contiguous (data is band-sequential).
            for b in range(nb):
                for r in range(nr):
                    for c in range(nc):
                        if keep[r, c] == 0:
                            data[b, r, c] = nodata
    return dropped
