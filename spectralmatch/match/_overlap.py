"""Streaming whole-image and overlap statistics for global regression.

Every task reads one block-aligned window of one image and returns small float64 moments
(:class:`~spectralmatch.kernels.moments.Moments`) of the whole window and of the overlap parts
inside it; the caller merges them in task order, so the numbers are the same for every
parallel setting and never depend on the user's ``window_size``.

Overlaps: for a pair (i, j) — i the alphabetically first name — the statistics use the pixels of
image i whose centres lie inside the intersection of the two bounding boxes. Image j is sampled
onto those pixels by nearest neighbour: a plain read when both share one pixel grid, otherwise
a ``gdal.Warp`` VRT (no overviews, exact transformer). No value is ever blended with nodata, and
grids of different resolutions work. A pixel counts in band k when band k is valid in both images (and inside both images'
vector masks, each with its own feature filter, rasterised on i's grid).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from osgeo import gdal

from spectralmatch.io.raster import RasterInfo, cached_dataset, read_window
from spectralmatch.io.vector import VectorMask, load_vector_mask
from spectralmatch.io.windows import Window, plan_windows
from spectralmatch.kernels.moments import JointMoments, Moments

from ._global_model import BandStats

# Fraction of a pixel by which the overlap rectangle is shrunk before selecting pixel centres:
# a centre lying exactly on j's edge could otherwise be sampled just outside j.
_CENTRE_EPS = 1e-6


def bounds_overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    """Strict bounding-box intersection test of (min_x, min_y, max_x, max_y) tuples."""
    return a[0] < b[2] and a[2] > b[0] and a[1] < b[3] and a[3] > b[1]


def overlapping_pairs(infos: Sequence[RasterInfo]) -> list[tuple[int, int]]:
    """Index pairs (i, j) of images whose bounding boxes intersect; i has the smaller name.

    Pairs are sorted by (name_i, name_j) so that the task order is reproducible.
    """
    order = sorted(range(len(infos)), key=lambda k: infos[k].name)
    pairs = []
    for x, i in enumerate(order):
        for j in order[x + 1:]:
            if bounds_overlap(infos[i].bounds, infos[j].bounds):
                pairs.append((i, j))
    return pairs


def centre_window(info: RasterInfo, bounds: Sequence[float]) -> Window | None:
    """Pixels of ``info`` whose centres lie inside ``bounds`` (north-up grids), or None."""
    x0, pw, _, y0, _, ph = info.geotransform
    min_x, min_y, max_x, max_y = bounds
    ph = abs(ph)
    c0 = math.ceil((min_x - x0) / pw - 0.5 + _CENTRE_EPS)
    c1 = math.floor((max_x - x0) / pw - 0.5 - _CENTRE_EPS) + 1
    r0 = math.ceil((y0 - max_y) / ph - 0.5 + _CENTRE_EPS)
    r1 = math.floor((y0 - min_y) / ph - 0.5 - _CENTRE_EPS) + 1
    c0, r0 = max(c0, 0), max(r0, 0)
    c1, r1 = min(c1, info.width), min(r1, info.height)
    if c1 <= c0 or r1 <= r0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


def intersection_bounds(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float, float]:
    return max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])


def statistics_windows(info: RasterInfo, *, images_read: int = 1) -> list[Window]:
    """The automatic block-aligned plan used by every statistics pass (never the user's).

    Args:
        info: The image.
        images_read: How many co-registered windows of this size a task holds at once, so that
            a task stays within the default window budget (1 here: overlap parts are at most
            one more window; :mod:`spectralmatch.quality` passes 2).
    """
    return plan_windows(info.width, info.height, None, block_size=info.block_size,
                        bytes_per_pixel=info.band_count * max(info.itemsize, 1) * images_read)


@dataclass(frozen=True)
class PairPart:
    """The part of an overlap that falls in one statistics window of image i.

    Attributes:
        pair: Index of the pair in the caller's list.
        other: Image j, sampled onto i's grid.
        window: Pixel window of image i (inside the task's window).
    """

    pair: int
    other: RasterInfo
    window: Window


@dataclass(frozen=True)
class StatsTask:
    """One window of the statistics pass (small and picklable: paths and windows only).

    The window of image ``info`` is read once and feeds its whole-image moments (when
    ``whole``) and the joint moments of every overlap part inside it.

    Attributes:
        image: Index of ``info`` in the caller's list.
        info: The image whose window is read.
        window: Pixel window of ``info``.
        nodata: Nodata value of the run (None: every finite pixel is valid).
        vector_mask: Normalised ``(mode, path, field)`` or None.
        whole: Whether to compute whole-image moments.
        parts: Overlap parts in this window (image i = ``info``).
    """

    image: int
    info: RasterInfo
    window: Window
    nodata: float | None
    vector_mask: tuple | None
    whole: bool
    parts: tuple[PairPart, ...] = ()

    def describe(self) -> str:
        return f"statistics of '{self.info.name}', window {self.window}"


@functools.lru_cache(maxsize=256)
def image_mask(vector_mask: tuple | None, info: RasterInfo) -> VectorMask | None:
    """The vector mask of an image (cached per process; None when nothing applies)."""
    if vector_mask is None:
        return None
    return load_vector_mask(vector_mask, info)


@functools.lru_cache(maxsize=256)
def mask_on_grid(vector_mask: tuple | None, info: RasterInfo,
                 grid: RasterInfo) -> VectorMask | None:
    """The vector mask selected for ``info`` but rasterised on the grid of ``grid``."""
    mask = image_mask(vector_mask, info)
    if mask is None or info.geotransform == grid.geotransform:
        return mask
    return VectorMask(mask.mode, mask.image_name, mask.wkb, grid.geotransform,
                      all_touched=mask.all_touched, source=mask.source)


def _combined_mask(masks: Sequence[VectorMask | None], window: Window) -> np.ndarray | None:
    result = None
    for mask in masks:
        if mask is None:
            continue
        burned = mask.rasterize(window)
        result = burned if result is None else np.minimum(result, burned)
    return None if result is None else np.ascontiguousarray(result, dtype=np.uint8)


def new_accumulator(kind: str, band_count: int) -> Moments | JointMoments:
    """An empty accumulator: :class:`Moments` for whole images, :class:`JointMoments` for pairs."""
    return Moments.empty(band_count) if kind == "whole" else JointMoments.empty(band_count)


_JOINT_FIELDS = ("count", "sum_a", "sumsq_a", "sum_b", "sumsq_b", "sum_ab")


def merge_accumulators(total: Moments | JointMoments,
                       part: Moments | JointMoments) -> Moments | JointMoments:
    """``total`` with ``part`` added (in place for :class:`Moments`)."""
    if isinstance(total, Moments):
        return total.merge(part)
    # Built from the public fields: the sum is one plain float64 addition per field.
    return JointMoments(*(getattr(total, f) + getattr(part, f) for f in _JOINT_FIELDS))


def _as_stats(count: np.ndarray, mean: np.ndarray, std: np.ndarray) -> BandStats:
    return BandStats(np.array(mean, dtype=np.float64), np.array(std, dtype=np.float64),
                     np.rint(count).astype(np.int64))


def whole_stats(acc: Moments) -> BandStats:
    """Whole-image statistics (population std, ddof 0) from merged moments."""
    return _as_stats(acc.count, acc.mean, acc.std(0))


def pair_stats(acc: JointMoments) -> tuple[BandStats, BandStats]:
    """Statistics of i and of j over their joint pixels (population std) from merged moments."""
    return (_as_stats(acc.count, acc.mean_a, acc.std_a(0)),
            _as_stats(acc.count, acc.mean_b, acc.std_b(0)))


def aligned_offset(grid: RasterInfo, other: RasterInfo, *,
                   tolerance: float = 1e-6) -> tuple[int, int] | None:
    """(column, row) offset of ``grid``'s pixels in ``other`` when both share one pixel grid.

    Same pixel size and an origin shift of whole pixels (within ``tolerance`` pixels): then
    pixel (r, c) of ``grid`` is pixel (r + dr, c + dc) of ``other``. None otherwise.
    """
    g, o = grid.geotransform, other.geotransform
    if g[2] or g[4] or o[2] or o[4]:
        return None
    if abs(g[1] - o[1]) > 1e-9 * abs(g[1]) or abs(g[5] - o[5]) > 1e-9 * abs(g[5]):
        return None
    dc, dr = (g[0] - o[0]) / o[1], (g[3] - o[3]) / o[5]
    if abs(dc - round(dc)) > tolerance or abs(dr - round(dr)) > tolerance:
        return None
    return round(dc), round(dr)


def sample_on_grid(other: RasterInfo, grid: RasterInfo, window: Window,
                   nodata: float | None) -> np.ndarray:
    """Image ``other`` resampled (nearest neighbour) onto ``window`` of ``grid``'s pixel grid.

    ``window`` must contain only pixels whose centres lie inside ``other`` (see
    :func:`centre_window`). On a shared pixel grid this is a plain read of ``other``; otherwise
    a ``gdal.Warp`` VRT samples ``other`` at the pixel centres (nodata stays nodata).
    """
    src = cached_dataset(other.path)
    shift = aligned_offset(grid, other)
    if shift is not None:  # same pixel grid: nearest neighbour is a plain read
        return read_window(src, window.shift(*shift))
    min_x, min_y, max_x, max_y = window.bounds(grid.geotransform)
    kwargs = {}
    if nodata is not None:
        kwargs.update(srcNodata=nodata, dstNodata=nodata)
    vrt = gdal.Warp("", src, format="VRT", outputBounds=(min_x, min_y, max_x, max_y),
                    width=window.width, height=window.height, resampleAlg="near",
                    errorThreshold=0, overviewLevel="NONE", multithread=False, **kwargs)
    try:
        data = vrt.ReadAsArray()
    finally:
        vrt = None
    if data.ndim == 2:
        data = data[np.newaxis]
    return data


def run_stats_task(task: StatsTask) -> tuple[Moments | None, tuple[JointMoments, ...]]:
    """Whole-image moments and the joint moments of each overlap part of one window.

    Module-level (picklable) so that process workers can run it.
    """
    info, window = task.info, task.window
    data = read_window(cached_dataset(info.path), window)
    own_mask = image_mask(task.vector_mask, info)
    whole = None
    if task.whole:
        whole = Moments.from_window(data, task.nodata, _combined_mask([own_mask], window))
    joints = []
    for part in task.parts:
        rows, cols = part.window.slices(relative_to=window)
        other = sample_on_grid(part.other, info, part.window, task.nodata)
        part_mask = _combined_mask([own_mask, mask_on_grid(task.vector_mask, part.other, info)],
                                   part.window)
        joints.append(JointMoments.empty(info.band_count).add_windows(
            data[:, rows, cols], other, task.nodata, task.nodata, part_mask))
    return whole, tuple(joints)
