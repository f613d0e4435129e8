# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Block statistics of a window and NaN-aware bilinear interpolation of block maps.

``accumulate_cells`` adds the valid pixels of a window into per-cell, per-band sums and counts
(float64). The caller maps every window row and column to a cell row and column from the pixel
**centre** coordinates (``row_cell``, ``col_cell``; negative = outside, skipped), so the kernel
only bins. It also tracks the per-band minimum and maximum of the valid pixels *without* the
mask (the correction is applied to every valid pixel, masked or not).

A pixel is valid in a band when it is finite and differs from the nodata value (if used); the
mask (may be None) excludes pixels with value 0 from the sums and counts only.
"""
from libc.math cimport isfinite
from libc.stdint cimport uint8_t, int32_t
from pixel_types cimport pixel_t
from block_interp cimport cell_and_weight, blend_rows, blend_cols

import numpy as np


def accumulate_cells(const pixel_t[:, :, ::1] data, const int32_t[::1] row_cell,
                     const int32_t[::1] col_cell, double nodata, bint use_nodata,
                     const uint8_t[:, ::1] mask, double[:, :, ::1] sums,
                     double[:, :, ::1] counts, double[:, ::1] extrema):
    """Add the valid pixels of ``data`` (bands, rows, cols) into ``sums`` and ``counts``.

    Args:
        data: The window (C-contiguous).
        row_cell: Cell row of every window row (negative: skip the row).
        col_cell: Cell column of every window column (negative: skip the column).
        nodata, use_nodata: Nodata value and whether it is used.
        mask: None or (rows, cols) uint8; 0 excludes a pixel from sums and counts.
        sums, counts: (bands, cell rows, cell cols) accumulators, updated in place.
        extrema: (bands, 2) running [min, max] of valid pixels (mask ignored), updated.
    """
    cdef Py_ssize_t nb = data.shape[0], nr = data.shape[1], nc = data.shape[2]
    cdef Py_ssize_t ncr = sums.shape[1], ncc = sums.shape[2]
    cdef Py_ssize_t b, r, c, cr, cc
    cdef double v, lo, hi
    cdef bint has_mask = mask is not None
    cdef const pixel_t* row
    cdef const uint8_t* mrow
    cdef double* srow
    cdef double* nrow
    if row_cell.shape[0] != nr or col_cell.shape[0] != nc:
        raise ValueError(f"row_cell/col_cell need {nr} and {nc} entries, got "
                         f"{row_cell.shape[0]} and {col_cell.shape[0]}")
    if sums.shape[0] != nb or counts.shape[0] != nb or counts.shape[1] != ncr \
            or counts.shape[2] != ncc:
        raise ValueError("sums and counts must both have shape (bands, cell rows, cell cols)")
    if extrema.shape[0] != nb or extrema.shape[1] != 2:
        raise ValueError(f"extrema must have shape ({nb}, 2)")
    if has_mask and (mask.shape[0] != nr or mask.shape[1] != nc):
        raise ValueError(f"mask shape ({mask.shape[0]}, {mask.shape[1]}) differs from the "
                         f"window ({nr}, {nc})")
    for r in range(nr):
        if row_cell[r] >= ncr:
            raise ValueError(f"row_cell[{r}] = {row_cell[r]} is outside the {ncr} cell rows")
    for c in range(nc):
        if col_cell[c] >= ncc:
            raise ValueError(f"col_cell[{c}] = {col_cell[c]} is outside the {ncc} cell columns")
    if nr == 0 or nc == 0:
        return
    with nogil:
        for b in range(nb):
            lo = extrema[b, 0]
            hi = extrema[b, 1]
            for r in range(nr):
                cr = row_cell[r]
                row = &data[b, r, 0]
                mrow = &mask[r, 0] if has_mask else NULL
                if cr >= 0:
                    srow = &sums[b, cr, 0]
                    nrow = &counts[b, cr, 0]
                for c in range(nc):
                    v = <double>row[c]
                    if pixel_t is float or pixel_t is double:
                        if not isfinite(v):
                            continue
                    if use_nodata and v == nodata:
                        continue
                    if v < lo:
                        lo = v
                    if v > hi:
                        hi = v
                    cc = col_cell[c]
                    if cr < 0 or cc < 0 or (has_mask and mrow[c] == 0):
                        continue
                    srow[cc] += v
                    nrow[cc] += 1.0
            extrema[b, 0] = lo
            extrema[b, 1] = hi


def interpolate_map(const double[:, :] block_map, const double[::1] frow,
                    const double[::1] fcol, double[:, ::1] out):
    """NaN-aware bilinear interpolation of ``block_map`` at (frow[r], fcol[c]) into ``out``.

    Coordinates are continuous block coordinates (cell centres at integers), clamped to the
    map. ``out[r, c]`` is NaN where none of the (up to four) neighbouring cells has a value.
    """
    cdef Py_ssize_t nr = frow.shape[0], nc = fcol.shape[0]
    cdef Py_ssize_t mr = block_map.shape[0], mc = block_map.shape[1]
    cdef Py_ssize_t r, c, i0, i1
    cdef double t
    if mr < 1 or mc < 1:
        raise ValueError("block_map must have at least one cell")
    if out.shape[0] != nr or out.shape[1] != nc:
        raise ValueError(f"out must have shape ({nr}, {nc})")
    j0 = np.empty(nc, dtype=np.intp)
    j1 = np.empty(nc, dtype=np.intp)
    wc = np.empty(nc, dtype=np.float64)
    vrow = np.empty(mc, dtype=np.float64)
    wrow = np.empty(mc, dtype=np.float64)
    cdef Py_ssize_t[::1] j0v = j0, j1v = j1
    cdef double[::1] wcv = wc, vrv = vrow, wrv = wrow
    with nogil:
        for c in range(nc):
            cell_and_weight(fcol[c], mc, &j0v[c], &j1v[c], &wcv[c])
        for r in range(nr):
            cell_and_weight(frow[r], mr, &i0, &i1, &t)
            blend_rows(block_map, i0, i1, t, vrv, wrv)
            for c in range(nc):
                out[r, c] = blend_cols(vrv, wrv, j0v[c], j1v[c], wcv[c])
