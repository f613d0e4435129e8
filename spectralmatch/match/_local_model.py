"""The model of local block adjustment: block means, reference map, per-image correction maps.

Block means (``local maps``)
    A block's mean in one image and band is ``sum / count`` of the valid pixels whose centres
    fall in the block, kept when ``count >= max(1, threshold · capacity)``. ``capacity`` is the
    number of the image's pixel centres in the block, i.e. what the block can hold *within that
    image's footprint* — not the whole block — so a sliver of an image cut by a grid line is
    judged against the part the image can cover (a threshold meant for whole blocks drops such
    slivers: the black bars of spectralmatch issue #63). Means are rounded to the calculation
    dtype so that saved and reloaded maps give identical results.

Level models (what keeps image edges seamless)
    For two images ``a`` and ``i`` that share cells (``SUBCELLS²`` per block), how ``i``'s
    brightness relates to ``a``'s is modelled around every block: in log space, a weighted
    least-squares fit over the common cells of the 3 × 3 blocks around it of a local gain, a
    linear trend across the blocks and a power-law term (:class:`LevelModel`), evaluated at the
    block's centre. Brightness *relations* between images are smooth, unlike the scene, so
    this predicts ``i``'s level at the block centre even where the images share only part of
    the block, and one block beyond the shared area.

Levels
    In every block and band, the image covering the largest fraction of the block (first on
    ties) is the anchor ``a``; an image ``i`` covering less than ``FULL_COVERAGE`` of the block
    gets the level ``L*_i`` predicted from ``L_a`` — its brightness over the whole block —
    instead of the mean of the part it covers. Comparing a part-block mean with whole-block
    means mixes brightness differences with differences between places, which made image
    edges brighter or darker in the original (spectralmatch issue #32). Images without cell
    statistics (maps loaded without sidecar) keep their means.

Reference map
    The NaN-aware mean of all levels, cell by cell (also of images whose maps are only loaded),
    rounded to the calculation dtype; or a loaded reference map, used as is. Where every image
    covers a block fully this is the plain mean of the local maps (the original's reference).

Per-image correction maps
    An image is corrected on its block rectangle grown by one block. Blocks next to its own
    where it has no level but other images have one get its level predicted from theirs
    (:class:`LevelModel`), so pixels between the image's edge and its outermost block centre
    are interpolated towards what the image would look like there (the original clamped the
    maps at that centre, which leaves a seam along image edges whenever brightness varies
    across the images). The reference map is not masked. Cells still without a
    (reference, level) pair take the pair of the nearest cell that has one (same image and
    band), so every pixel is corrected and no black or uncorrected bars appear. Finally a
    frame of virtual blocks continues the correction's trend beyond the canvas edge
    (:func:`pad_frame`).

Shift (what makes gamma well defined; chosen per image and band, never per window)
    gamma: ``o = max(0, 1 − min P, e − min M)``; linear: ``o = 0`` when every valid pixel and
    every mean is positive, else ``o = 1 − min(min P, min M)``. ``min P`` is the smallest valid
    pixel of the image band (vector mask ignored, since every valid pixel is corrected) and
    ``min M`` the smallest value of its correction maps. With this shift every shifted pixel
    is ≥ 1 and every shifted mean ≥ e, so ``ln(L + o) ≥ 1`` and ``γ = ln(T + o) / ln(L + o)``
    stays finite and positive even for reflectance in (0, 1] or means near 1; positive DN data
    keep ``o = 0`` (the original formula).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from ._block_grid import SUBCELLS
from ._block_stats import CellStats

logger = logging.getLogger("spectralmatch")

#: Smallest shifted block mean of the gamma method: ln(e) = 1 keeps γ well conditioned.
GAMMA_MEAN_FLOOR = math.e
#: Images covering at least this fraction of a block keep their own mean as level.
FULL_COVERAGE = 0.99
#: Ridge on the spatial slopes of the level models (block units²).
SLOPE_RIDGE = 0.001
#: Ridge on the power-law difference of the level models (log units²).
POWER_RIDGE = 1e-4

Rect = tuple[int, int, int, int]


@dataclass
class LocalMap:
    """One image's block means over its block rectangle (and its cell statistics, if known).

    Attributes:
        name: Image name (file stem).
        rect: (row0, col0, rows, cols) of the rectangle in canvas blocks.
        means: float64 (bands, rows, cols); NaN where a block has no mean.
        cells: Cell statistics over the same rectangle, or None (maps loaded without sidecar).
        source: "computed" or the path the map was loaded from.
    """

    name: str
    rect: Rect
    means: np.ndarray
    cells: CellStats | None = None
    source: str = "computed"


def round_to(values: np.ndarray, calculation_dtype: str) -> np.ndarray:
    """Values rounded to the calculation dtype, returned as float64."""
    return np.asarray(values, dtype=calculation_dtype).astype(np.float64)


def block_means(cells: CellStats, threshold: float, calculation_dtype: str) -> np.ndarray:
    """Block means (bands, rows, cols) with NaN below the valid-pixel threshold."""
    sums, counts, capacity = cells.block_sums()
    need = np.maximum(1.0, threshold * capacity)[np.newaxis]
    valid = counts >= need
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(valid, sums / np.where(valid, counts, 1.0), np.nan)
    return round_to(means, calculation_dtype)


# ------------------------------------------------------------------------------ rectangles


def intersection(a: Rect, b: Rect) -> Rect | None:
    """Common part of two block rectangles, or None."""
    r0, c0 = max(a[0], b[0]), max(a[1], b[1])
    r1, c1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    if r1 <= r0 or c1 <= c0:
        return None
    return r0, c0, r1 - r0, c1 - c0


def sub(rect: Rect, inner: Rect, scale: int = 1) -> tuple[slice, slice]:
    """Slices of ``inner`` inside an array covering ``rect`` (``scale`` cells per block)."""
    dr, dc = (inner[0] - rect[0]) * scale, (inner[1] - rect[1]) * scale
    return slice(dr, dr + inner[2] * scale), slice(dc, dc + inner[3] * scale)


def extended_rect(rect: Rect, shape: tuple[int, int]) -> Rect:
    """``rect`` grown by one block on every side, clipped to the canvas."""
    r0, c0 = max(0, rect[0] - 1), max(0, rect[1] - 1)
    r1, c1 = min(shape[0], rect[0] + rect[2] + 1), min(shape[1], rect[1] + rect[3] + 1)
    return r0, c0, r1 - r0, c1 - c0


def _on(rect: Rect, values: np.ndarray, inner: Rect, fill: float = np.nan) -> np.ndarray:
    """(bands, rect) array holding ``values`` (which cover ``inner``) and ``fill`` elsewhere."""
    out = np.full((values.shape[0], rect[2], rect[3]), fill)
    part = intersection(rect, inner)
    if part is not None:
        out[(slice(None), *sub(rect, part))] = values[(slice(None), *sub(inner, part))]
    return out


def _blocks_sum(cells: np.ndarray) -> np.ndarray:
    b, nr, nc = cells.shape
    return cells.reshape(b, nr // SUBCELLS, SUBCELLS, nc // SUBCELLS, SUBCELLS).sum(axis=(2, 4))


# ------------------------------------------------------------------------------ levels


def coverage(m: LocalMap) -> np.ndarray:
    """Covered fraction of every block with a mean (valid pixels / pixels of a whole block),
    else -1. Maps without cell statistics count as covering their blocks with a mean fully.
    """
    valid = np.isfinite(m.means)
    if m.cells is None:
        return np.where(valid, 1.0, -1.0)
    _, counts, _ = m.cells.block_sums()
    frac = np.minimum(counts / (m.cells.cell_area * SUBCELLS * SUBCELLS), 1.0)
    return np.where(valid, frac, -1.0)


@dataclass(frozen=True)
class LevelModel:
    """Local model predicting image ``i``'s level from image ``a``'s around the blocks of ``rect``.

    In log space (values shifted by ``shift`` so that they are ≥ 1)::

        ln(L_i + o) = ln(L_a + o) + p[k] + t[k]·(ln(L_a + o) − z[k])

    i.e. a local gain ``e^p`` and power-law difference ``t`` (``z`` is the mean log level of
    ``a`` in the data used for block ``k``). Arrays are (bands, rows, cols) over ``rect``;
    NaN where no common cell lies within one block.
    """

    rect: Rect
    shift: np.ndarray
    p: np.ndarray
    t: np.ndarray
    z: np.ndarray

    def predict(self, rect: Rect, level_a: np.ndarray) -> np.ndarray:
        """Image ``i``'s predicted levels on ``rect`` from ``a``'s levels there (NaN outside)."""
        p, t, z = (_on(rect, v, self.rect) for v in (self.p, self.t, self.z))
        o = self.shift[:, np.newaxis, np.newaxis]
        with np.errstate(invalid="ignore", divide="ignore"):
            la = np.log(level_a + o)
            return np.exp(la + p + t * (la - z)) - o


def level_model(a: LocalMap, i: LocalMap, shape: tuple[int, int]) -> LevelModel | None:
    """Fit the :class:`LevelModel` of ``(a, i)`` to the cells both images cover.

    Around each block of the intersection of both rectangles grown by one block, the cells
    of the 3 × 3 blocks around it are fitted by weighted least squares with
    ``ln m_i − ln m_a ≈ p + q·dx + r·dy + t·(ln m_a − z)`` (``m`` cell means, ``(dx, dy)``
    the
    cell centre's offset from the block centre in block units); the prediction at the block
    centre is ``p + t·(ln L_a − z)``. Cells both images cover completely are used where there
    are any within one block, otherwise every common cell weighted by the smaller covered
    fraction. Small ridges keep ``q``, ``r``, ``t`` at 0 where the data cannot tell them.
    """
    if a.cells is None or i.cells is None:
        return None
    data = intersection(a.rect, i.rect)
    if data is None:
        return None
    sa, si = sub(a.rect, data, SUBCELLS), sub(i.rect, data, SUBCELLS)
    n_a, n_i = a.cells.counts[(slice(None), *sa)], i.cells.counts[(slice(None), *si)]
    both = (n_a > 0) & (n_i > 0)
    if not both.any():
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        m_a = a.cells.sums[(slice(None), *sa)] / np.where(n_a > 0, n_a, 1.0)
        m_i = i.cells.sums[(slice(None), *si)] / np.where(n_i > 0, n_i, 1.0)
    shift = np.maximum(0.0, 1.0 - np.minimum(_min_mean(a), _min_mean(i)))
    o = shift[:, np.newaxis, np.newaxis]
    with np.errstate(invalid="ignore", divide="ignore"):
        la = np.where(both, np.log(np.where(both, m_a, 1.0) + o), 0.0)
        li = np.where(both, np.log(np.where(both, m_i, 1.0) + o), 0.0)
    both &= np.isfinite(la) & np.isfinite(li)
    w_any = np.where(both, np.minimum(np.minimum(n_a / a.cells.cell_area, 1.0),
                                      np.minimum(n_i / i.cells.cell_area, 1.0)), 0.0)
    # Cells both images cover completely compare like with like; partly covered cells mix
    # places (the supports differ) and are used only where no complete cell is near.
    w_full = np.where(both & _complete(a.cells)[(slice(None), *sa)]
                      & _complete(i.cells)[(slice(None), *si)], 1.0, 0.0)
    d = np.where(both, li - la, 0.0)
    z = np.where(both, la, 0.0)
    ev = intersection(extended_rect(a.rect, shape), extended_rect(i.rect, shape))
    full = _fit(w_full, d, z, data, ev)
    part = _fit(w_any, d, z, data, ev)
    use_full = np.isfinite(full[0])
    p, t, zbar = (np.where(use_full, f, g) for f, g in zip(full, part, strict=True))
    return LevelModel(ev, shift, p, t, zbar)


def _min_mean(m: LocalMap) -> np.ndarray:
    """Smallest cell mean of every band (inf for bands without data)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        cell = np.where(m.cells.counts > 0, m.cells.sums / np.where(m.cells.counts > 0,
                                                                     m.cells.counts, 1.0),
                        np.inf)
    low = cell.reshape(cell.shape[0], -1).min(axis=1)
    return np.where(np.isfinite(low), low, 1.0)


def _complete(cells: CellStats) -> np.ndarray:
    """Cells inside the image's footprint (not cut by its edge) with every pixel valid."""
    cap = cells.capacity
    inside = np.zeros(cap.shape, dtype=bool)
    rows, cols = np.flatnonzero(cap.any(axis=1)), np.flatnonzero(cap.any(axis=0))
    if rows.size and cols.size:
        inside[rows[0] + 1:rows[-1], cols[0] + 1:cols[-1]] = True
    return (cells.counts == cap[np.newaxis]) & (cap > 0)[np.newaxis] & inside[np.newaxis]


def _fit(w: np.ndarray, d: np.ndarray, z: np.ndarray, data: Rect,
         ev: Rect) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted fit of ``d ≈ p + q·dx + r·dy + t·(z − z̄)`` around each block of ``ev``.

    ``w``, ``d``, ``z`` are cell arrays over ``data``. Returns (p, t, z̄), NaN where a block has
    no weight within one block.
    """
    nr, nc = w.shape[1], w.shape[2]
    y = ((np.arange(nr) + 0.5) / SUBCELLS)[np.newaxis, :, np.newaxis]
    x = ((np.arange(nc) + 0.5) / SUBCELLS)[np.newaxis, np.newaxis, :]
    kernel = np.ones((1, 3, 3))
    from scipy import ndimage  # imported here: slow to import, and only needed for the solve

    def neighbourhood(values: np.ndarray) -> np.ndarray:
        return ndimage.convolve(_on(ev, _blocks_sum(values), data, 0.0), kernel,
                                mode="constant")

    s0 = neighbourhood(w)
    ok = s0 > 0
    safe = np.where(ok, s0, 1.0)
    # weighted means over the neighbourhood; cell centres relative to each block centre
    xc = (np.arange(ev[3]) + ev[1] - data[1] + 0.5)[np.newaxis, np.newaxis, :]
    yc = (np.arange(ev[2]) + ev[0] - data[0] + 0.5)[np.newaxis, :, np.newaxis]
    ex, ey = neighbourhood(w * x) / safe, neighbourhood(w * y) / safe
    mean_z = neighbourhood(w * z) / safe
    mean_d = neighbourhood(w * d) / safe
    # centred second moments
    cxx = neighbourhood(w * x * x) / safe - ex * ex
    cyy = neighbourhood(w * y * y) / safe - ey * ey
    cxy = neighbourhood(w * x * y) / safe - ex * ey
    czz = neighbourhood(w * z * z) / safe - mean_z ** 2
    cxz = neighbourhood(w * x * z) / safe - ex * mean_z
    cyz = neighbourhood(w * y * z) / safe - ey * mean_z
    cdx = neighbourhood(w * d * x) / safe - mean_d * ex
    cdy = neighbourhood(w * d * y) / safe - mean_d * ey
    cdz = neighbourhood(w * d * z) / safe - mean_d * mean_z
    # slopes (q, r, t) from the centred normal equations, with ridges
    m = np.stack([np.stack([cxx + SLOPE_RIDGE, cxy, cxz], -1),
                  np.stack([cxy, cyy + SLOPE_RIDGE, cyz], -1),
                  np.stack([cxz, cyz, czz + POWER_RIDGE], -1)], -2)
    rhs = np.stack([cdx, cdy, cdz], -1)
    m[~ok] = np.eye(3)
    rhs[~ok] = 0.0
    q, r, t = np.moveaxis(np.linalg.solve(m, rhs[..., np.newaxis])[..., 0], -1, 0)
    # the plane's value at the block centre, for a level equal to the mean level z̄
    p = mean_d - q * (ex - xc) - r * (ey - yc)
    nan = np.where(ok, 0.0, np.nan)
    return p + nan, t + nan, mean_z + nan


def level_models(maps: list[LocalMap], shape: tuple[int, int]
                 ) -> dict[tuple[int, int], LevelModel]:
    """``(a, i) -> LevelModel`` predicting ``i`` from ``a``, for every ordered pair sharing
    cells."""
    fields: dict[tuple[int, int], LevelModel] = {}
    for a in range(len(maps)):
        for i in range(len(maps)):
            if a == i or intersection(maps[a].rect, maps[i].rect) is None:
                continue
            found = level_model(maps[a], maps[i], shape)
            if found is not None:
                fields[(a, i)] = found
    return fields


def support_levels(maps: list[LocalMap], fields: dict, shape: tuple[int, int]
                   ) -> list[np.ndarray]:
    """Levels ``L*`` of every map over its rectangle (see the module notes)."""
    bands = maps[0].means.shape[0] if maps else 0
    canvas = (0, 0, *shape)
    best = np.full((bands, *shape), -np.inf)
    owner = np.full((bands, *shape), -1, dtype=np.int64)
    covs = []
    for k, m in enumerate(maps):
        sl = (slice(None), *sub(canvas, m.rect))
        cov = coverage(m)
        covs.append(cov)
        better = cov > best[sl]
        best[sl] = np.where(better, cov, best[sl])
        owner[sl] = np.where(better, k, owner[sl])
    levels = [m.means.copy() for m in maps]
    for i, mi in enumerate(maps):
        partial = np.isfinite(mi.means) & (covs[i] < FULL_COVERAGE)
        if mi.cells is None or not partial.any():
            continue
        own = owner[(slice(None), *sub(canvas, mi.rect))]
        for a, ma in enumerate(maps):
            if a == i or (a, i) not in fields:
                continue
            use = partial & (own == a)
            if not use.any():
                continue
            anchor = _on(mi.rect, ma.means, ma.rect)
            level = fields[(a, i)].predict(mi.rect, anchor)
            use &= np.isfinite(level)
            levels[i][use] = level[use]
    return levels


def reference_map(maps: list[LocalMap], levels: list[np.ndarray], shape: tuple[int, int],
                  calculation_dtype: str) -> np.ndarray:
    """NaN-mean of the maps' levels on the canvas, rounded to the calculation dtype."""
    bands = levels[0].shape[0]
    total = np.zeros((bands, *shape))
    count = np.zeros((bands, *shape))
    for m, lev in zip(maps, levels, strict=True):
        sl = (slice(None), *sub((0, 0, *shape), m.rect))
        valid = np.isfinite(lev)
        total[sl] += np.where(valid, lev, 0.0)
        count[sl] += valid
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)
    return round_to(ref, calculation_dtype)


def extend_level(index: int, maps: list[LocalMap], levels: list[np.ndarray], fields: dict,
                 shape: tuple[int, int]) -> tuple[Rect, np.ndarray]:
    """The image's levels on its rectangle grown by one block, with missing blocks predicted.

    A block where image ``i`` has no level but images ``j`` have one, and the level model of
    ``(j, i)`` reaches it, gets the mean over those ``j`` of ``i``'s level predicted from
    ``L*_j``.
    """
    m = maps[index]
    ext = extended_rect(m.rect, shape)
    own = _on(ext, levels[index], m.rect)
    missing = ~np.isfinite(own)
    if not missing.any():
        return ext, own
    total = np.zeros_like(own)
    count = np.zeros_like(own)
    for j, mj in enumerate(maps):
        if j == index or (j, index) not in fields:
            continue
        pred = fields[(j, index)].predict(ext, _on(ext, levels[j], mj.rect))
        ok = missing & np.isfinite(pred)
        total[ok] += pred[ok]
        count[ok] += 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return ext, np.where(count > 0, total / np.where(count > 0, count, 1.0), own)


def fill_nearest(ref: np.ndarray, loc: np.ndarray) -> list[int]:
    """Give cells without a (ref, loc) pair the pair of the nearest cell that has one.

    Works in place per band on (bands, rows, cols) arrays. Returns the 0-based bands that have
    no valid cell at all (left NaN: their pixels pass through unchanged).
    """
    empty = []
    for b in range(ref.shape[0]):
        valid = np.isfinite(ref[b]) & np.isfinite(loc[b])
        if valid.all():
            continue
        if not valid.any():
            empty.append(b)
            ref[b] = np.nan
            loc[b] = np.nan
            continue
        from scipy import ndimage

        idx = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
        ref[b] = ref[b][idx[0], idx[1]]
        loc[b] = loc[b][idx[0], idx[1]]
    return empty


def pad_frame(rect: Rect, ref: np.ndarray, loc: np.ndarray, *,
              extrapolate: bool = True) -> tuple[Rect, np.ndarray, np.ndarray]:
    """Add one ring of virtual blocks around filled correction maps.

    A virtual block keeps the level of the block next to it and continues the trend of the
    correction: the gain ``R / L`` geometrically (``g_edge² / g_inner``) where the maps are
    positive, else the offset ``R − L`` linearly. With ``extrapolate=False`` (maps whose edge
    blocks are plain part-block means, e.g. loaded without cell statistics, whose trend cannot
    be trusted) the virtual blocks copy their neighbours: the maps are clamped, as in the
    original. Pixels between an image's
    outermost block centres and the canvas edge are interpolated towards it, so the
    correction keeps following how the images differ there instead of freezing at the last
    block centre (which leaves a seam where two images share the canvas edge).
    """
    def pad_axis(r: np.ndarray, lv: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
        n = r.shape[axis]
        ends = []
        for edge, inner in ((0, 1), (n - 1, n - 2)):
            r_e, l_e = np.take(r, [edge], axis=axis), np.take(lv, [edge], axis=axis)
            if n < 2 or not extrapolate:
                ends.append((r_e, l_e))
                continue
            r_n, l_n = np.take(r, [inner], axis=axis), np.take(lv, [inner], axis=axis)
            positive = (r_e > 0) & (l_e > 0) & (r_n > 0) & (l_n > 0)
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                # a gain continues geometrically, an offset linearly
                ratio = l_e * (r_e / l_e) ** 2 / (r_n / l_n)
            ends.append((np.where(positive, ratio, l_e + 2.0 * (r_e - l_e) - (r_n - l_n)), l_e))
        (r_lo, l_lo), (r_hi, l_hi) = ends
        return (np.concatenate([r_lo, r, r_hi], axis=axis),
                np.concatenate([l_lo, lv, l_hi], axis=axis))

    ref, loc = pad_axis(ref, loc, 1)
    ref, loc = pad_axis(ref, loc, 2)
    return (rect[0] - 1, rect[1] - 1, rect[2] + 2, rect[3] + 2), ref, loc


def choose_shift(method: str, pixel_min: np.ndarray, ref: np.ndarray, loc: np.ndarray, *,
                 fixed: float | None, image: str) -> np.ndarray:
    """Per-band shift ``o`` (see the module notes); validates a user-fixed shift."""
    bands = ref.shape[0]
    shift = np.zeros(bands)
    for b in range(bands):
        p = float(pixel_min[b])
        stack = np.concatenate([ref[b].ravel(), loc[b].ravel()])
        stack = stack[np.isfinite(stack)]
        if not math.isfinite(p) or stack.size == 0:
            continue  # no valid pixel or no map: the band passes through
        m = float(stack.min())
        if fixed is not None:
            _check_fixed_shift(method, fixed, p, m, image, b)
            shift[b] = fixed
        elif method == "gamma":
            shift[b] = max(0.0, 1.0 - p, GAMMA_MEAN_FLOOR - m)
        else:
            low = min(p, m)
            shift[b] = 0.0 if low > 0 else 1.0 - low
    return shift


def _check_fixed_shift(method: str, o: float, p: float, m: float, image: str, b: int) -> None:
    if method == "gamma":
        ok = p + o >= 0 and m + o > 1
        need = max(-p, 1 - m)
        rule = "every shifted pixel P + o >= 0 and every shifted block mean > 1"
    else:
        ok = m + o > 0
        need = -m
        rule = "every shifted block mean > 0"
    if not ok:
        raise ParameterError(
            f"value_shift={o} gives no valid {method} correction for band {b + 1} of '{image}': "
            f"its smallest valid pixel is {p:g} and its smallest block mean {m:g}, but the "
            f"{method} method needs {rule}; use value_shift > {need:g} or value_shift=None "
            "(chosen automatically per image and band)")
