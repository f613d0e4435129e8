"""Matching quality of a set of overlapping rasters: seam agreement and distance to a known truth.

Two measures, both streamed window by window (memory bounded by the window plan, not the image
size) from the float64 joint sums of :class:`~spectralmatch.kernels.moments.JointMoments`:

* :func:`overlap_metrics` — for every pair of images whose bounds overlap, the per-band bias
  ``mean(a − b)`` and RMSE ``sqrt(mean((a − b)²))`` over the pixels valid in both images. Image
  ``b`` is sampled onto the grid of image ``a`` by nearest neighbour, exactly as global regression
  samples its overlaps (:mod:`spectralmatch.match._overlap`), so nodata is never blended in.
* :func:`truth_residual` — for synthetic data with a known scene (``generate_mosaic(...,
  write_truth=True)``), the RMSE of the truth predicted from the images by ONE common gain and
  offset per band, fitted by least squares over all valid pixels of all images. Relative
  normalisation is only defined up to such a common transform. The fit predicts the truth from
  the images (residual in truth units), so a method cannot score well by flattening its output:
  a constant image explains nothing and leaves the full spread of the truth as residual.

Used by the benchmark suite and the README demo.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import ParameterError
from .io.raster import RasterInfo, cached_dataset, inspect_rasters, read_window
from .io.windows import Window, plan_windows
from .kernels.moments import JointMoments
from .match import _overlap
from .parallel import WorkerSetting, run_ordered

__all__ = ["PairMetrics", "format_metrics_table", "mean_rmse", "overlap_metrics",
           "truth_residual"]


@dataclass(frozen=True)
class PairMetrics:
    """Agreement of two overlapping images over their jointly valid pixels.

    Attributes:
        name_a: File stem of the first image (alphabetically first name).
        name_b: File stem of the second image.
        count: Per band, the number of pixels valid in both images.
        bias: Per band, ``mean(a − b)`` (0 where count is 0).
        rmse: Per band, ``sqrt(mean((a − b)²))`` (0 where count is 0).
    """

    name_a: str
    name_b: str
    count: np.ndarray
    bias: np.ndarray
    rmse: np.ndarray

    @classmethod
    def from_moments(cls, name_a: str, name_b: str, acc: JointMoments) -> PairMetrics:
        """Bias and RMSE from joint sums: ``Σ(a−b)² = Σa² − 2Σab + Σb²``."""
        count = np.asarray(acc.count, dtype=np.float64)
        n = np.where(count > 0, count, 1.0)
        bias = np.where(count > 0, (acc.sum_a - acc.sum_b) / n, 0.0)
        squares = acc.sumsq_a - 2.0 * acc.sum_ab + acc.sumsq_b
        # Tiny negative values can only come from float64 cancellation: the true sum is >= 0.
        rmse = np.where(count > 0, np.sqrt(np.maximum(squares, 0.0) / n), 0.0)
        return cls(name_a, name_b, np.rint(count).astype(np.int64), bias, rmse)

    @property
    def pixels(self) -> int:
        """Largest per-band count (the number of jointly valid pixels)."""
        return int(self.count.max()) if self.count.size else 0

    @property
    def weighted_rmse(self) -> float:
        """Count-weighted mean of the per-band RMSE."""
        total = float(self.count.sum())
        return float((self.rmse * self.count).sum() / total) if total else 0.0

    @property
    def weighted_abs_bias(self) -> float:
        """Count-weighted mean of the per-band absolute bias."""
        total = float(self.count.sum())
        return float((np.abs(self.bias) * self.count).sum() / total) if total else 0.0

    def to_dict(self) -> dict:
        """JSON-ready form (lists of floats)."""
        return {"name_a": self.name_a, "name_b": self.name_b,
                "count": [int(v) for v in self.count], "bias": [float(v) for v in self.bias],
                "rmse": [float(v) for v in self.rmse]}


@dataclass(frozen=True)
class _PairTask:
    key: int
    info: RasterInfo
    other: RasterInfo
    window: Window
    nodata_a: float | None
    nodata_b: float | None


def _describe(task: _PairTask) -> str:
    return f"overlap of '{task.info.path}' and '{task.other.path}', window {task.window}"


def _pair_window_moments(task: _PairTask) -> JointMoments:
    data = read_window(cached_dataset(task.info.path), task.window)
    other = _overlap.sample_on_grid(task.other, task.info, task.window, task.nodata_b)
    return JointMoments.empty(task.info.band_count).add_windows(data, other, task.nodata_a,
                                                               task.nodata_b)


_JOINT_FIELDS = ("count", "sum_a", "sumsq_a", "sum_b", "sumsq_b", "sum_ab")


def _add(total: JointMoments, part: JointMoments) -> JointMoments:
    """The sum of two joint accumulators (a plain float64 addition per field)."""
    return JointMoments(*(getattr(total, f) + getattr(part, f) for f in _JOINT_FIELDS))


def _windows(info: RasterInfo) -> list[Window]:
    """Block-aligned windows within the default budget for two co-registered reads."""
    return plan_windows(info.width, info.height, None, block_size=info.block_size,
                        bytes_per_pixel=2 * info.band_count * max(info.itemsize, 1))


def _image_nodata(info: RasterInfo, nodata: float | None) -> float | None:
    return float(nodata) if nodata is not None else info.nodata_value


def overlap_metrics(paths: Sequence[str], *, nodata: float | None = None,
                    workers: WorkerSetting = None) -> list[PairMetrics]:
    """Per-band bias and RMSE of every overlapping pair, over pixels valid in both images.

    Pairs come from bounding boxes (sorted by name). For pair (a, b), the pixels of ``a`` whose
    centres lie in the intersection of the two boxes are compared with ``b`` sampled on ``a``'s
    grid by nearest neighbour; a pixel counts in band k when band k is valid in both (finite
    and not nodata).

    Args:
        paths (Sequence[str]): The images (same CRS and band count).
        nodata (float | None): Nodata value of every image; None uses each image's own
            (band 1) nodata value, and an image without one has only NaN as invalid.
        workers (tuple | None): Parallel setting for the windows, e.g. ("thread", "cpu").

    Returns:
        One :class:`PairMetrics` per overlapping pair (pairs without a jointly valid pixel
        have count 0).
    """
    infos = inspect_rasters(list(paths), same_nodata=False, parameter="paths")
    pairs = _overlap.overlapping_pairs(infos)
    tasks = []
    for key, (i, j) in enumerate(pairs):
        a, b = infos[i], infos[j]
        region = _overlap.centre_window(a, _overlap.intersection_bounds(a.bounds, b.bounds))
        if region is None:
            continue
        for window in _windows(a):
            part = window.intersection(region)
            if part is not None:
                tasks.append(_PairTask(key, a, b, part, _image_nodata(a, nodata),
                                       _image_nodata(b, nodata)))
    totals = [JointMoments.empty(infos[0].band_count) for _ in pairs]
    results = run_ordered(_pair_window_moments, tasks, workers, describe=_describe,
                          parameter="workers")
    for task, acc in zip(tasks, results, strict=True):
        totals[task.key] = _add(totals[task.key], acc)
    return [PairMetrics.from_moments(infos[i].name, infos[j].name, totals[k])
            for k, (i, j) in enumerate(pairs)]


def mean_rmse(metrics: Sequence[PairMetrics]) -> float:
    """Count-weighted mean of the RMSE over all pairs and bands (0 when nothing was compared)."""
    total = sum(float(m.count.sum()) for m in metrics)
    if not total:
        return 0.0
    return sum(float((m.rmse * m.count).sum()) for m in metrics) / total


def mean_abs_bias(metrics: Sequence[PairMetrics]) -> float:
    """Count-weighted mean of the absolute bias over all pairs and bands."""
    total = sum(float(m.count.sum()) for m in metrics)
    if not total:
        return 0.0
    return sum(float((np.abs(m.bias) * m.count).sum()) for m in metrics) / total


def format_metrics_table(before: Sequence[PairMetrics], after: Sequence[PairMetrics]) -> str:
    """A markdown table comparing two runs of :func:`overlap_metrics` pair by pair.

    Pairs are matched by position (the same inputs in the same order give the same pair order,
    whatever suffix the outputs carry). RMSE and |bias| are count-weighted means over bands.

    Args:
        before (Sequence[PairMetrics]): Metrics of the inputs.
        after (Sequence[PairMetrics]): Metrics of the outputs.

    Returns:
        The table as a string (header, one row per pair, a final "all pairs" row).
    """
    if len(before) != len(after):
        raise ParameterError(f"before has {len(before)} pairs but after has {len(after)}; "
                             f"compare metrics of the same set of images")
    lines = ["| pair | pixels | RMSE before | RMSE after | abs bias before | abs bias after |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for b, a in zip(before, after, strict=True):
        lines.append(f"| {b.name_a} / {b.name_b} | {b.pixels} | {b.weighted_rmse:.2f} | "
                     f"{a.weighted_rmse:.2f} | {b.weighted_abs_bias:.2f} | "
                     f"{a.weighted_abs_bias:.2f} |")
    lines.append(f"| all pairs | {sum(m.pixels for m in before)} | {mean_rmse(before):.2f} | "
                 f"{mean_rmse(after):.2f} | {mean_abs_bias(before):.2f} | "
                 f"{mean_abs_bias(after):.2f} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class _TruthTask:
    path: str
    truth_path: str
    window: Window
    nodata: float | None
    truth_nodata: float | None


def _truth_window_moments(task: _TruthTask) -> JointMoments:
    image = read_window(cached_dataset(task.path), task.window)
    truth = read_window(cached_dataset(task.truth_path), task.window)
    # a = truth (the predicted quantity), b = image (the predictor).
    return JointMoments.empty(image.shape[0]).add_windows(truth, image, task.truth_nodata,
                                                          task.nodata)


def truth_residual(paths: Sequence[str], truth_paths: Sequence[str], *,
                   nodata: float | None = None, workers: WorkerSetting = None) -> np.ndarray:
    """Per-band RMSE between the truth and the images after one common affine fit per band.

    For each band, ``truth ≈ gain · image + offset`` is fitted by least squares over the valid
    pixels of all images at once (one gain and offset for the whole set), and the RMSE of that
    fit is returned in truth units. It is 0 when all images are the same affine function of
    the truth, and grows with every difference a relative normalisation should have removed
    (different gains/offsets, gradients) or cannot remove (noise).

    Args:
        paths (Sequence[str]): The images.
        truth_paths (Sequence[str]): Truth rasters on the same grids, in the same order
            (NaN or their own nodata where unknown).
        nodata (float | None): Nodata of the images; None uses each image's own.
        workers (tuple | None): Parallel setting for the windows, e.g. ("thread", "cpu").

    Returns:
        float64 array of one RMSE per band (NaN for a band without valid pixels).
    """
    paths, truth_paths = list(paths), list(truth_paths)
    if len(paths) != len(truth_paths) or not paths:
        raise ParameterError(f"truth_residual needs one truth raster per image, got "
                             f"{len(paths)} images and {len(truth_paths)} truth rasters")
    infos = inspect_rasters(paths, same_nodata=False, parameter="paths")
    truths = inspect_rasters(truth_paths, same_nodata=False, parameter="truth_paths")
    tasks = []
    for info, truth in zip(infos, truths, strict=True):
        if (info.width, info.height, info.band_count) != (truth.width, truth.height,
                                                          truth.band_count):
            raise ParameterError(f"truth raster '{truth.path}' ({truth.width}×{truth.height}×"
                                 f"{truth.band_count}) does not match image '{info.path}' "
                                 f"({info.width}×{info.height}×{info.band_count})")
        for window in _windows(info):
            tasks.append(_TruthTask(info.path, truth.path, window, _image_nodata(info, nodata),
                                    truth.nodata_value))
    total = JointMoments.empty(infos[0].band_count)
    for acc in run_ordered(_truth_window_moments, tasks, workers,
                           describe=lambda t: f"'{t.path}' against '{t.truth_path}', "
                                              f"window {t.window}",
                           parameter="workers"):
        total = _add(total, acc)
    return _affine_fit_rmse(total)


def _affine_fit_rmse(acc: JointMoments) -> np.ndarray:
    """RMSE of the least-squares fit a ≈ g·b + o from joint sums (a = truth, b = image)."""
    n = acc.count
    with np.errstate(divide="ignore", invalid="ignore"):
        s_aa = acc.sumsq_a - acc.sum_a * acc.sum_a / n
        s_bb = acc.sumsq_b - acc.sum_b * acc.sum_b / n
        s_ab = acc.sum_ab - acc.sum_a * acc.sum_b / n
        # Residual sum of squares of the best line; a constant image explains nothing.
        explained = np.where(s_bb > 0, s_ab * s_ab / np.where(s_bb > 0, s_bb, 1.0), 0.0)
        rss = np.maximum(s_aa - explained, 0.0)
        rmse = np.sqrt(rss / n)
    return np.where(n > 0, rmse, math.nan)
