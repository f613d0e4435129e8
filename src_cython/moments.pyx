# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Masked per-band moments of a window: count, sum, sum of squares, min, max (float64).

Accumulators are float64 arrays that the caller owns; each call adds one window into them, so
several windows merge by reusing the same accumulator (in a fixed order for reproducibility).
Layouts are field-major, so each field is a contiguous per-band vector:

* ``accumulate_moments``: ``acc`` (5, bands) = count, sum, sum of squares, min, max. min/max
  start at +inf/-inf and stay there while a band has no valid pixel.
* ``accumulate_joint_moments``: ``acc`` (6, bands) = count, sum_a, sumsq_a, sum_b, sumsq_b,
  sum_ab.

A pixel is valid when it is finite, differs from the nodata value (if one is used) and, when a
mask is given, its mask value is non-zero. Validity is per band. ``nodata`` is an array of the
pixel type holding no value (no nodata) or one value, so the comparison is exact in the pixel
type (as GDAL and numpy compare); the wrapper resolves NaN or unrepresentable nodata to "none".

Speed and exactness:

* 8/16-bit integers: large windows are counted into a value histogram (one increment per
  pixel, nodata dropped from the histogram afterwards), small windows are summed directly;
  both sum in 64-bit integers (exact) and add to the float64 accumulators per fold/row.
* Other types: float64 sums in four interleaved lanes (breaks the add/min/max latency
  chains; lanes combine in a fixed order, so results are reproducible).
* Only the last axis (of data and mask) must have unit stride; the row and band axes may be
  strided, so slices of a C-ordered window are used without copying.
* 64-bit integers are converted to float64 for sums, min and max (exact below 2**53); their
  nodata comparison stays exact in the pixel type.
* The GIL is released for the loops: different accumulators may be filled concurrently.
"""
from cython cimport view
from libc.float cimport DBL_MAX
from libc.math cimport fabs
from libc.stdint cimport int8_t, int16_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free

from pixel_types cimport pixel_t

MOMENT_FIELDS = ("count", "total", "total_sq", "minimum", "maximum")
JOINT_FIELDS = ("count", "sum_a", "sumsq_a", "sum_b", "sumsq_b", "sum_ab")

# Below this many pixels per band (times the number of bins) the histogram's setup and fold
# cost more than summing directly.
cdef Py_ssize_t HIST_MIN_PIXELS_PER_BIN = 2
# A histogram fold covers fewer than 2**31 pixels: uint32 bins and uint64 sums cannot overflow.
cdef Py_ssize_t HIST_MAX_PIXELS = 2147483647
# Beyond the magnitude of any 16-bit value (sentinel for integer min/max).
cdef int64_t BIG = 1099511627776


cdef inline bint _valid(pixel_t v, pixel_t nd, bint use_nd) noexcept nogil:
    """Whether ``v`` is finite and, if nodata is used, differs from it."""
    if pixel_t is float or pixel_t is double:
        if not fabs(v) <= DBL_MAX:  # NaN and +-inf
            return False
    return not use_nd or v != nd


# ---------------------------------------------------------------- single-image moments


cdef inline void _row_small(const pixel_t* row, const uint8_t* m, Py_ssize_t n, pixel_t nd,
                            bint use_nd, bint use_mask, double* st) noexcept nogil:
    """Add one row of an 8/16-bit band into ``st`` (count, sum, sumsq, min, max), exactly."""
    cdef int64_t cnt = 0, s = 0, s2 = 0, x, lo = BIG, hi = -BIG
    cdef Py_ssize_t c
    for c in range(n):
        if use_mask and m[c] == 0:
            continue
        if not _valid(row[c], nd, use_nd):
            continue
        x = <int64_t>row[c]
        cnt += 1
        s += x
        s2 += x * x
        if x < lo:
            lo = x
        if x > hi:
            hi = x
    st[0] += <double>cnt
    st[1] += <double>s
    st[2] += <double>s2
    if cnt:
        st[3] = min(st[3], <double>lo)
        st[4] = max(st[4], <double>hi)


cdef inline void _row_wide(const pixel_t* row, const uint8_t* m, Py_ssize_t n, pixel_t nd,
                           bint use_nd, bint use_mask, double* st) noexcept nogil:
    """Add one row of a 32/64-bit integer or float band into ``st`` (float64, four lanes)."""
    cdef double s[4]
    cdef double q[4]
    cdef double lo[4]
    cdef double hi[4]
    cdef double x
    cdef int64_t cnt = 0
    cdef Py_ssize_t c, c0, j, n4 = n - n % 4
    for j in range(4):
        s[j] = 0.0
        q[j] = 0.0
        lo[j] = st[3]
        hi[j] = st[4]
    for c0 in range(0, n4, 4):
        for j in range(4):
            c = c0 + j
            if use_mask and m[c] == 0:
                continue
            if not _valid(row[c], nd, use_nd):
                continue
            x = <double>row[c]
            cnt += 1
            s[j] += x
            q[j] += x * x
            if x < lo[j]:
                lo[j] = x
            if x > hi[j]:
                hi[j] = x
    for c in range(n4, n):
        if use_mask and m[c] == 0:
            continue
        if not _valid(row[c], nd, use_nd):
            continue
        x = <double>row[c]
        cnt += 1
        s[0] += x
        q[0] += x * x
        if x < lo[0]:
            lo[0] = x
        if x > hi[0]:
            hi[0] = x
    st[0] += <double>cnt
    st[1] += (s[0] + s[1]) + (s[2] + s[3])
    st[2] += (q[0] + q[1]) + (q[2] + q[3])
    st[3] = min(min(lo[0], lo[1]), min(lo[2], lo[3]))
    st[4] = max(max(hi[0], hi[1]), max(hi[2], hi[3]))


cdef inline void _row(const pixel_t* row, const uint8_t* m, Py_ssize_t n, pixel_t nd,
                      bint use_nd, bint use_mask, double* st) noexcept nogil:
    if pixel_t is uint8_t or pixel_t is int8_t or pixel_t is uint16_t or pixel_t is int16_t:
        _row_small(row, m, n, nd, use_nd, use_mask, st)
    else:
        _row_wide(row, m, n, nd, use_nd, use_mask, st)


cdef inline void _hist_row(const pixel_t* row, const uint8_t* m, Py_ssize_t n, bint use_mask,
                           uint32_t* h0, uint32_t* h1) noexcept nogil:
    """Count one row of an 8/16-bit band into two interleaved histograms.

    ``h0``/``h1`` point at the bin of value 0 (signed values index below it). Two histograms
    keep runs of equal values from serialising on one counter.
    """
    cdef Py_ssize_t c = 0
    if pixel_t is uint8_t or pixel_t is int8_t or pixel_t is uint16_t or pixel_t is int16_t:
        if use_mask:
            while c + 1 < n:
                h0[row[c]] += m[c] != 0
                h1[row[c + 1]] += m[c + 1] != 0
                c += 2
            if c < n:
                h0[row[c]] += m[c] != 0
        else:
            while c + 1 < n:
                h0[row[c]] += 1
                h1[row[c + 1]] += 1
                c += 2
            if c < n:
                h0[row[c]] += 1


cdef inline void _hist_fold(uint32_t* h0, uint32_t* h1, Py_ssize_t nbins, Py_ssize_t offset,
                            Py_ssize_t skip, double* st) noexcept nogil:
    """Add the histograms (bin i holds value i - offset) into ``st`` and zero them.

    Bin ``skip`` (the nodata value, or -1) is left out. The sums are exact in 64-bit integers
    because a fold covers fewer than 2**31 pixels.
    """
    cdef Py_ssize_t i, first = -1, last = -1
    cdef uint64_t k, cnt = 0, s2 = 0
    cdef int64_t v, s = 0
    for i in range(nbins):
        k = <uint64_t>h0[i] + h1[i]
        h0[i] = 0
        h1[i] = 0
        if k == 0 or i == skip:
            continue
        v = i - offset
        cnt += k
        s += <int64_t>k * v
        s2 += k * <uint64_t>(v * v)
        if first < 0:
            first = i
        last = i
    st[0] += <double>cnt
    st[1] += <double>s
    st[2] += <double>s2
    if cnt:
        st[3] = min(st[3], <double>(first - offset))
        st[4] = max(st[4], <double>(last - offset))


def accumulate_moments(const pixel_t[::view.strided, ::view.strided, ::view.contiguous] data,
                       const pixel_t[::1] nodata,
                       const uint8_t[::view.strided, ::view.contiguous] mask,
                       double[:, ::1] acc):
    """Add the valid pixels of ``data`` (bands, rows, cols) into ``acc`` (5, bands).

    ``nodata`` holds zero values (no nodata) or one value of the pixel type. ``mask`` is None
    or (rows, cols) with zero marking excluded pixels.
    """
    cdef Py_ssize_t nb = data.shape[0], nr = data.shape[1], nc = data.shape[2]
    cdef Py_ssize_t b, r, nbins = 0, offset = 0, skip = -1, chunk
    cdef bint use_mask = mask is not None
    cdef bint use_nd = nodata.shape[0] > 0
    cdef pixel_t nd = nodata[0] if use_nd else 0
    cdef double st[5]
    cdef const uint8_t* m = NULL
    cdef const pixel_t* row
    cdef uint32_t* hist = NULL
    if acc.shape[0] != 5 or acc.shape[1] != nb:
        raise ValueError(f"accumulator must have shape (5, {nb}), got ({acc.shape[0]}, {acc.shape[1]})")
    if use_mask and (mask.shape[0] != nr or mask.shape[1] != nc):
        raise ValueError(f"mask shape ({mask.shape[0]}, {mask.shape[1]}) differs from window ({nr}, {nc})")
    if nodata.shape[0] > 1:
        raise ValueError("nodata must hold zero or one value")
    if nr == 0 or nc == 0:
        return
    if pixel_t is uint8_t or pixel_t is int8_t or pixel_t is uint16_t or pixel_t is int16_t:
        nbins = 256 if (pixel_t is uint8_t or pixel_t is int8_t) else 65536
        if nr * nc >= HIST_MIN_PIXELS_PER_BIN * nbins:
            if pixel_t is int8_t or pixel_t is int16_t:
                offset = nbins // 2
            if use_nd:
                skip = <Py_ssize_t>nd + offset
            hist = <uint32_t*>calloc(2 * nbins, sizeof(uint32_t))
            if hist == NULL:
                raise MemoryError("cannot allocate the moments histogram")
    chunk = max(1, HIST_MAX_PIXELS // nc)
    with nogil:
        for b in range(nb):
            st[0] = 0.0
            st[1] = 0.0
            st[2] = 0.0
            st[3] = acc[3, b]
            st[4] = acc[4, b]
            for r in range(nr):
                row = &data[b, r, 0]
                if use_mask:
                    m = &mask[r, 0]
                if hist != NULL:
                    _hist_row(row, m, nc, use_mask, hist + offset, hist + nbins + offset)
                    if (r + 1) % chunk == 0 or r == nr - 1:
                        _hist_fold(hist, hist + nbins, nbins, offset, skip, st)
                elif use_mask:  # literal flags let the compiler specialise each variant
                    if use_nd:
                        _row(row, m, nc, nd, True, True, st)
                    else:
                        _row(row, m, nc, nd, False, True, st)
                elif use_nd:
                    _row(row, m, nc, nd, True, False, st)
                else:
                    _row(row, m, nc, nd, False, False, st)
            acc[0, b] += st[0]
            acc[1, b] += st[1]
            acc[2, b] += st[2]
            acc[3, b] = st[3]
            acc[4, b] = st[4]
    free(hist)


# ---------------------------------------------------------------- joint (overlap) moments


cdef inline void _joint_row_small(const pixel_t* ra, const pixel_t* rb, const uint8_t* m,
                                  Py_ssize_t n, pixel_t nda, bint use_nda, pixel_t ndb,
                                  bint use_ndb, bint use_mask, double* st) noexcept nogil:
    """Add one row pair of 8/16-bit bands into ``st`` (6 joint sums), exactly per row."""
    cdef int64_t cnt = 0, sa = 0, sa2 = 0, sb = 0, sb2 = 0, sab = 0, xa, xb
    cdef Py_ssize_t c
    for c in range(n):
        if use_mask and m[c] == 0:
            continue
        if not _valid(ra[c], nda, use_nda) or not _valid(rb[c], ndb, use_ndb):
            continue
        xa = <int64_t>ra[c]
        xb = <int64_t>rb[c]
        cnt += 1
        sa += xa
        sa2 += xa * xa
        sb += xb
        sb2 += xb * xb
        sab += xa * xb
    st[0] += <double>cnt
    st[1] += <double>sa
    st[2] += <double>sa2
    st[3] += <double>sb
    st[4] += <double>sb2
    st[5] += <double>sab


cdef inline void _joint_row_wide(const pixel_t* ra, const pixel_t* rb, const uint8_t* m,
                                 Py_ssize_t n, pixel_t nda, bint use_nda, pixel_t ndb,
                                 bint use_ndb, bint use_mask, double* st) noexcept nogil:
    """Add one row pair of wide bands into ``st`` (float64, two lanes)."""
    cdef double acc[2][5]
    cdef double xa, xb
    cdef int64_t cnt = 0
    cdef Py_ssize_t c, j, k
    for j in range(2):
        for k in range(5):
            acc[j][k] = 0.0
    for c in range(n):
        if use_mask and m[c] == 0:
            continue
        if not _valid(ra[c], nda, use_nda) or not _valid(rb[c], ndb, use_ndb):
            continue
        j = c & 1
        xa = <double>ra[c]
        xb = <double>rb[c]
        cnt += 1
        acc[j][0] += xa
        acc[j][1] += xa * xa
        acc[j][2] += xb
        acc[j][3] += xb * xb
        acc[j][4] += xa * xb
    st[0] += <double>cnt
    for k in range(5):
        st[k + 1] += acc[0][k] + acc[1][k]


cdef inline void _joint_row(const pixel_t* ra, const pixel_t* rb, const uint8_t* m,
                            Py_ssize_t n, pixel_t nda, bint use_nda, pixel_t ndb,
                            bint use_ndb, bint use_mask, double* st) noexcept nogil:
    if pixel_t is uint8_t or pixel_t is int8_t or pixel_t is uint16_t or pixel_t is int16_t:
        _joint_row_small(ra, rb, m, n, nda, use_nda, ndb, use_ndb, use_mask, st)
    else:
        _joint_row_wide(ra, rb, m, n, nda, use_nda, ndb, use_ndb, use_mask, st)


def accumulate_joint_moments(const pixel_t[::view.strided, ::view.strided, ::view.contiguous] a,
                             const pixel_t[::view.strided, ::view.strided, ::view.contiguous] b,
                             const pixel_t[::1] nodata_a, const pixel_t[::1] nodata_b,
                             const uint8_t[::view.strided, ::view.contiguous] mask,
                             double[:, ::1] acc):
    """Add pixels valid in both co-registered windows ``a`` and ``b`` into ``acc`` (6, bands).

    A pixel of band k counts when band k is valid in ``a`` and in ``b`` (and in ``mask``).
    ``nodata_a``/``nodata_b`` hold zero or one value of the pixel type.
    """
    cdef Py_ssize_t nb = a.shape[0], nr = a.shape[1], nc = a.shape[2]
    cdef Py_ssize_t k, r, i
    cdef bint use_mask = mask is not None
    cdef bint use_nda = nodata_a.shape[0] > 0
    cdef bint use_ndb = nodata_b.shape[0] > 0
    cdef pixel_t nda = nodata_a[0] if use_nda else 0
    cdef pixel_t ndb = nodata_b[0] if use_ndb else 0
    cdef double st[6]
    cdef const uint8_t* m = NULL
    if b.shape[0] != nb or b.shape[1] != nr or b.shape[2] != nc:
        raise ValueError(f"windows a {(nb, nr, nc)} and b {(b.shape[0], b.shape[1], b.shape[2])} differ in shape")
    if acc.shape[0] != 6 or acc.shape[1] != nb:
        raise ValueError(f"accumulator must have shape (6, {nb}), got ({acc.shape[0]}, {acc.shape[1]})")
    if use_mask and (mask.shape[0] != nr or mask.shape[1] != nc):
        raise ValueError(f"mask shape ({mask.shape[0]}, {mask.shape[1]}) differs from window ({nr}, {nc})")
    if nodata_a.shape[0] > 1 or nodata_b.shape[0] > 1:
        raise ValueError("nodata must hold zero or one value")
    if nr == 0 or nc == 0:
        return
    with nogil:
        for k in range(nb):
            for i in range(6):
                st[i] = 0.0
            for r in range(nr):
                if use_mask:
                    m = &mask[r, 0]
                _joint_row(&a[k, r, 0], &b[k, r, 0], m, nc, nda, use_nda, ndb, use_ndb,
                           use_mask, st)
            for i in range(6):
                acc[i, k] += st[i]
