"""Statistics pass of local block adjustment: per-cell sums and counts of every image.

Each image is read with the automatic block-aligned window plan (never the user's
``window_size``), each window is binned by the ``blocks`` kernel into a small partial
accumulator covering only the cells the window touches, and the parent adds the partials in
window order. Results therefore do not depend on the window plan of the apply pass or on the
parallel settings.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..io.raster import RasterInfo, cached_dataset, read_window
from ..io.windows import Window, plan_windows
from ..kernels.blocks import accumulate_cells, new_extrema
from ._block_grid import SUBCELLS, ImageGrid

try:
    from ..io.vector import VectorMask, load_vector_mask
except ImportError:  # pragma: no cover - optional until the vector module exists
    VectorMask = None  # type: ignore[assignment,misc]
    load_vector_mask = None  # type: ignore[assignment]


@dataclass
class CellStats:
    """Per-cell statistics of one image over its block rectangle.

    Attributes:
        sums: float64 (bands, cell rows, cell cols) sums of valid, unmasked pixel values.
        counts: float64, same shape: number of those pixels.
        capacity: float64 (cell rows, cell cols): pixel centres of the image in each cell
            (its footprint, whatever the pixel values).
        extrema: float64 (bands, 2): [min, max] of the valid pixels, mask ignored
            (inf/-inf when a band has no valid pixel).
        cell_area: Pixels of this image a whole cell holds (cell area / pixel area), to tell
            how much of a cell or block an image covers.
    """

    sums: np.ndarray
    counts: np.ndarray
    capacity: np.ndarray
    extrema: np.ndarray
    cell_area: float

    def block_sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sums, counts, capacity) aggregated from cells to blocks."""
        return (_to_blocks(self.sums), _to_blocks(self.counts),
                _to_blocks(self.capacity[np.newaxis])[0])


def _to_blocks(cells: np.ndarray) -> np.ndarray:
    b, nr, nc = cells.shape
    return cells.reshape(b, nr // SUBCELLS, SUBCELLS, nc // SUBCELLS, SUBCELLS).sum(axis=(2, 4))


#: Memory budget of one statistics window (a few are in flight with parallel workers).
STATS_WINDOW_BYTES = 8 * 1024 * 1024


def statistics_windows(info: RasterInfo) -> list[Window]:
    """The automatic block-aligned plan used by the statistics pass (fixed for a file)."""
    return plan_windows(info.width, info.height, None, block_size=info.block_size,
                        bytes_per_pixel=info.band_count * max(info.itemsize, 1),
                        budget_bytes=STATS_WINDOW_BYTES)


@functools.lru_cache(maxsize=256)
def image_mask(vector_mask: tuple | None, info: RasterInfo):
    """The vector mask of one image (read once per process), or None."""
    if vector_mask is None or load_vector_mask is None:
        return None
    return load_vector_mask(vector_mask, info)


@dataclass(frozen=True)
class WindowTask:
    """One statistics window (picklable: paths, small grid description and the window)."""

    index: int
    info: RasterInfo
    grid: ImageGrid
    window: Window
    nodata: float | None
    vector_mask: tuple | None

    def describe(self) -> str:
        return f"block statistics of '{self.info.name}', window {self.window}"


@dataclass
class WindowResult:
    row0: int
    col0: int
    sums: np.ndarray
    counts: np.ndarray
    extrema: np.ndarray


def run_window(task: WindowTask) -> WindowResult:
    """Bin one window into a partial accumulator over the cells it touches."""
    w = task.window
    data = read_window(cached_dataset(task.info.path), w)
    rows = task.grid.row_cells(w.row_off, w.height)
    cols = task.grid.col_cells(w.col_off, w.width)
    r0, c0 = int(rows.min()), int(cols.min())
    shape = (data.shape[0], int(rows.max()) - r0 + 1, int(cols.max()) - c0 + 1)
    sums = np.zeros(shape, dtype=np.float64)
    counts = np.zeros(shape, dtype=np.float64)
    extrema = new_extrema(data.shape[0])
    mask = image_mask(task.vector_mask, task.info)
    burned = mask.rasterize(w) if mask is not None else None
    accumulate_cells(data, rows - r0, cols - c0, task.nodata, sums, counts, extrema, burned)
    return WindowResult(r0, c0, sums, counts, extrema)


def new_cell_stats(grid: ImageGrid, bands: int) -> CellStats:
    shape = (bands, *grid.cell_shape)
    return CellStats(np.zeros(shape), np.zeros(shape), grid.capacity(), new_extrema(bands),
                     grid.cell_area)


def merge_window(stats: CellStats, result: WindowResult) -> None:
    """Add a window's partial accumulator into the image's statistics (in place)."""
    b, nr, nc = result.sums.shape
    sl = (slice(None), slice(result.row0, result.row0 + nr), slice(result.col0, result.col0 + nc))
    stats.sums[sl] += result.sums
    stats.counts[sl] += result.counts
    stats.extrema[:, 0] = np.minimum(stats.extrema[:, 0], result.extrema[:, 0])
    stats.extrema[:, 1] = np.maximum(stats.extrema[:, 1], result.extrema[:, 1])


@dataclass(frozen=True)
class ExtremaTask:
    """One window of a min/max-only pass (for loaded maps that do not record them)."""

    info: RasterInfo
    window: Window
    nodata: float | None

    def describe(self) -> str:
        return f"value range of '{self.info.name}', window {self.window}"


def run_extrema(task: ExtremaTask) -> np.ndarray:
    data = read_window(cached_dataset(task.info.path), task.window)
    w = task.window
    extrema = new_extrema(data.shape[0])
    empty = np.zeros((data.shape[0], 1, 1))
    accumulate_cells(data, np.full(w.height, -1, np.int32), np.full(w.width, -1, np.int32),
                     task.nodata, empty, empty.copy(), extrema)
    return extrema


@dataclass(frozen=True)
class MomentsTask:
    """One window of the band-1 moments pass of ``number_of_blocks="coefficient_of_variation"``."""

    info: RasterInfo
    window: Window
    nodata: float | None
    vector_mask: tuple | None

    def describe(self) -> str:
        return f"band 1 statistics of '{self.info.name}', window {self.window}"


def run_moments(task: MomentsTask) -> np.ndarray:
    """[count, sum, sum of squares] of the valid, unmasked band-1 pixels of a window."""
    from ..kernels.moments import Moments

    data = read_window(cached_dataset(task.info.path), task.window, bands=[1])
    mask = image_mask(task.vector_mask, task.info)
    burned = mask.rasterize(task.window) if mask is not None else None
    m = Moments.from_window(data, task.nodata, mask=burned)
    return np.array([m.count[0], m.total[0], m.total_sq[0]])
