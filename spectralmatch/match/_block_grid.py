"""The block grid of local block adjustment: canvas, grid sizing, and where each image sits in it.

Coordinates: block ``(r, c)`` covers ``x ∈ [min_x + c·bw, min_x + (c+1)·bw)`` and
``y ∈ (max_y − (r+1)·bh, max_y − r·bh]``. Pixels are placed by their **centres**, both when
block statistics are accumulated and when maps are interpolated. Statistics are kept on a finer
grid of *cells*, ``SUBCELLS × SUBCELLS`` per block (a power of two, so a pixel's block is exactly
its cell divided by ``SUBCELLS``); the cells let the model compare images over the part of a
block they both cover (see ``_local_model``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError, RasterError
from ..io.raster import RasterInfo
from ..io.windows import Window

#: Cells per block along each axis (power of two: ``floor(u·4) // 4 == floor(u)`` exactly).
SUBCELLS = 4
#: Reference coefficient of variation of Yu et al. (std 45 / mean 125) for a 10 × 10 grid.
CV_REFERENCE = 45.0 / 125.0


@dataclass(frozen=True)
class Canvas:
    """Ground extent of the block grid and its number of block rows and columns."""

    min_x: float
    min_y: float
    max_x: float
    max_y: float
    rows: int
    cols: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (self.min_x, self.min_y, self.max_x, self.max_y)

    @property
    def block_width(self) -> float:
        return (self.max_x - self.min_x) / self.cols

    @property
    def block_height(self) -> float:
        return (self.max_y - self.min_y) / self.rows

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    def geotransform(self, subcells: int = 1) -> tuple[float, ...]:
        """Geotransform of the block grid (``subcells`` > 1: of the cell grid)."""
        return (self.min_x, self.block_width / subcells, 0.0, self.max_y, 0.0,
                -self.block_height / subcells)

    def same_as(self, other: Canvas, *, rtol: float = 1e-6) -> bool:
        """Equal shape, and bounds equal to within ``rtol`` of a block."""
        if self.shape != other.shape:
            return False
        tol_x, tol_y = rtol * self.block_width, rtol * self.block_height
        return (abs(self.min_x - other.min_x) <= tol_x and abs(self.max_x - other.max_x) <= tol_x
                and abs(self.min_y - other.min_y) <= tol_y
                and abs(self.max_y - other.max_y) <= tol_y)


def union_bounds(infos: list[RasterInfo]) -> tuple[float, float, float, float]:
    """(min_x, min_y, max_x, max_y) of the union of the images' bounding boxes."""
    b = np.array([info.bounds for info in infos], dtype=np.float64)
    return (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()),
            float(b[:, 3].max()))


def grid_shape_from_target(blocks_per_image: int, n_images: int, width: float,
                           height: float) -> tuple[int, int]:
    """Grid (rows, cols) for ``blocks_per_image · n_images`` blocks on a ``width × height``
    canvas.

    The seed's rule: ``T = t·n``, ``C = max(1, round(√(T·W/H)))``, ``R = max(1, round(T/C))``,
    then grow the longer side while ``R·C < T`` and shrink it while ``R·C > T`` (so the grid
    has at most ``T`` blocks and as close to square blocks as the aspect allows).
    """
    total = blocks_per_image * n_images
    aspect = width / height
    cols = max(1, round(math.sqrt(total * aspect)))
    rows = max(1, round(total / cols))
    while rows * cols < total:
        if width > height:
            cols += 1
        else:
            rows += 1
    while rows * cols > total:
        if width > height and cols > 1:
            cols -= 1
        elif rows > 1:
            rows -= 1
        else:
            cols -= 1
    return max(1, rows), max(1, cols)


def grid_shape_from_cv(mean: float, std: float) -> tuple[int, int]:
    """Square grid from the coefficient of variation: ``R = C = max(1, round(10·CV/CV_ref))``."""
    if not (math.isfinite(mean) and math.isfinite(std)) or mean <= 0:
        raise ParameterError(
            'number_of_blocks="coefficient_of_variation" needs a positive mean of band 1 over '
            f"the valid pixels of all images (got mean {mean}); give an int or (rows, cols)")
    n = max(1, round(10.0 * (std / mean) / CV_REFERENCE))
    return n, n


@dataclass(frozen=True)
class ImageGrid:
    """Where one image sits in the block grid: its block rectangle and per-pixel positions.

    ``block_row0, block_col0, block_rows, block_cols`` is the rectangle of blocks containing the
    image's pixel centres. Cell arrays of the image cover that rectangle at ``SUBCELLS``
    resolution; interpolation coordinates are relative to it and clamped into it.
    """

    canvas: Canvas
    geotransform: tuple[float, ...]
    width: int
    height: int
    block_row0: int
    block_col0: int
    block_rows: int
    block_cols: int

    @classmethod
    def place(cls, info: RasterInfo, canvas: Canvas) -> ImageGrid:
        """Place ``info`` on ``canvas``; its pixel centres must lie inside the canvas."""
        half_x, half_y = 0.5 * info.resolution[0], 0.5 * info.resolution[1]
        min_x, min_y, max_x, max_y = info.bounds
        tol = 1e-9 * max(abs(canvas.max_x - canvas.min_x), abs(canvas.max_y - canvas.min_y))
        if (min_x + half_x < canvas.min_x - tol or max_x - half_x > canvas.max_x + tol
                or min_y + half_y < canvas.min_y - tol or max_y - half_y > canvas.max_y + tol):
            raise RasterError(
                f"'{info.path}' (bounds {info.bounds}) extends beyond the block-map canvas "
                f"{canvas.bounds}; use a canvas containing every image "
                "(override_bounds_canvas_coords, or block maps computed with this image)")
        probe = cls(canvas, tuple(info.geotransform), info.width, info.height, 0, 0,
                    canvas.rows, canvas.cols)
        cols = probe._cells(probe._col_coord(np.array([0, info.width - 1])), canvas.cols)
        rows = probe._cells(probe._row_coord(np.array([0, info.height - 1])), canvas.rows)
        c0, c1 = int(cols.min()) // SUBCELLS, int(cols.max()) // SUBCELLS
        r0, r1 = int(rows.min()) // SUBCELLS, int(rows.max()) // SUBCELLS
        return cls(canvas, tuple(info.geotransform), info.width, info.height, r0, c0,
                   r1 - r0 + 1, c1 - c0 + 1)

    # continuous block coordinates (block edges at integers) of pixel centres
    def _col_coord(self, cols: np.ndarray) -> np.ndarray:
        x0, px_w = self.geotransform[0], self.geotransform[1]
        x = x0 + (np.asarray(cols, dtype=np.float64) + 0.5) * px_w
        return (x - self.canvas.min_x) / self.canvas.block_width

    def _row_coord(self, rows: np.ndarray) -> np.ndarray:
        y0, px_h = self.geotransform[3], self.geotransform[5]
        y = y0 + (np.asarray(rows, dtype=np.float64) + 0.5) * px_h
        return (self.canvas.max_y - y) / self.canvas.block_height

    @staticmethod
    def _cells(coord: np.ndarray, blocks: int) -> np.ndarray:
        return np.clip(np.floor(coord * SUBCELLS), 0, blocks * SUBCELLS - 1).astype(np.int64)

    @property
    def block_slices(self) -> tuple[slice, slice]:
        """(rows, cols) slices of the image's block rectangle in canvas block arrays."""
        return (slice(self.block_row0, self.block_row0 + self.block_rows),
                slice(self.block_col0, self.block_col0 + self.block_cols))

    @property
    def cell_area(self) -> float:
        """Pixels of this image that one whole cell holds (cell area / pixel area)."""
        cw = self.canvas.block_width / SUBCELLS / abs(self.geotransform[1])
        ch = self.canvas.block_height / SUBCELLS / abs(self.geotransform[5])
        return cw * ch

    @property
    def cell_shape(self) -> tuple[int, int]:
        return (self.block_rows * SUBCELLS, self.block_cols * SUBCELLS)

    def row_cells(self, row_off: int, height: int) -> np.ndarray:
        """Cell row (relative to the rectangle) of each pixel row of a window."""
        cells = self._cells(self._row_coord(np.arange(row_off, row_off + height)),
                            self.canvas.rows)
        return (cells - self.block_row0 * SUBCELLS).astype(np.int32)

    def col_cells(self, col_off: int, width: int) -> np.ndarray:
        """Cell column (relative to the rectangle) of each pixel column of a window."""
        cells = self._cells(self._col_coord(np.arange(col_off, col_off + width)),
                            self.canvas.cols)
        return (cells - self.block_col0 * SUBCELLS).astype(np.int32)

    def frow(self, row_off: int, height: int, rect: tuple[int, int, int, int] | None = None
             ) -> np.ndarray:
        """Interpolation coordinate of each window row (block centres at integers).

        Relative to ``rect`` (row0, col0, rows, cols) in canvas blocks — default: the image's
        block rectangle; it may extend beyond the canvas — and clamped into it.
        """
        r0, _, nr, _ = rect or self.rect
        coord = self._row_coord(np.arange(row_off, row_off + height)) - 0.5 - r0
        return np.clip(coord, 0.0, nr - 1.0)

    def fcol(self, col_off: int, width: int, rect: tuple[int, int, int, int] | None = None
             ) -> np.ndarray:
        """Interpolation coordinate of each window column (see :meth:`frow`)."""
        _, c0, _, nc = rect or self.rect
        coord = self._col_coord(np.arange(col_off, col_off + width)) - 0.5 - c0
        return np.clip(coord, 0.0, nc - 1.0)

    @property
    def rect(self) -> tuple[int, int, int, int]:
        """(row0, col0, rows, cols) of the image's block rectangle."""
        return (self.block_row0, self.block_col0, self.block_rows, self.block_cols)

    def capacity(self) -> np.ndarray:
        """Number of the image's pixel centres in every cell of the rectangle (float64)."""
        nr, nc = self.cell_shape
        per_row = np.bincount(self.row_cells(0, self.height), minlength=nr)[:nr]
        per_col = np.bincount(self.col_cells(0, self.width), minlength=nc)[:nc]
        return np.outer(per_row, per_col).astype(np.float64)

    def block_windows(self) -> list[Window]:
        """One window per block: the image pixels whose centres fall in that block."""
        rows = self.row_cells(0, self.height) // SUBCELLS
        cols = self.col_cells(0, self.width) // SUBCELLS
        row_runs = _runs(rows)
        col_runs = _runs(cols)
        return [Window(c0, r0, cn, rn) for r0, rn in row_runs for c0, cn in col_runs]


def _runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of equal consecutive labels (labels are monotonic)."""
    if labels.size == 0:
        return []
    starts = np.flatnonzero(np.diff(labels)) + 1
    bounds = np.concatenate(([0], starts, [labels.size]))
    return [(int(a), int(b - a)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
