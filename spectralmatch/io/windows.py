"""Integer pixel windows and the window plans every raster operation iterates over.

A plan is a list of :class:`Window` objects that tile an image exactly once, row by row. Plans
only change how much is read at a time: every algorithm in spectralmatch gives the same numbers
for every plan (statistics passes always use the default block-aligned plan, see
``docs/architecture.md``).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError

#: Default memory budget of one window (all bands, input dtype): 32 MiB.
DEFAULT_WINDOW_BYTES = 32 * 1024 * 1024

WindowSize = int | Sequence[int] | str | None
ACCEPTED_WINDOW_SIZES = (
    'None (automatic block-aligned plan), "auto", a positive int (square tiles), '
    '(width, height), "internal" (the file\'s own blocks) or "whole" (one window)'
)


@dataclass(frozen=True, order=True)
class Window:
    """A rectangle of whole pixels: ``col_off``, ``row_off``, ``width``, ``height``."""

    col_off: int
    row_off: int
    width: int
    height: int

    @property
    def col_end(self) -> int:
        return self.col_off + self.width

    @property
    def row_end(self) -> int:
        return self.row_off + self.height

    @property
    def size(self) -> int:
        return self.width * self.height

    def is_empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    def intersection(self, other: Window) -> Window | None:
        """The common part of two windows, or None when they do not overlap."""
        c0, r0 = max(self.col_off, other.col_off), max(self.row_off, other.row_off)
        c1, r1 = min(self.col_end, other.col_end), min(self.row_end, other.row_end)
        if c1 <= c0 or r1 <= r0:
            return None
        return Window(c0, r0, c1 - c0, r1 - r0)

    def shift(self, d_col: int, d_row: int) -> Window:
        return Window(self.col_off + d_col, self.row_off + d_row, self.width, self.height)

    def clip(self, width: int, height: int) -> Window | None:
        """This window clipped to an image of ``width`` × ``height`` pixels."""
        return self.intersection(Window(0, 0, width, height))

    def slices(self, relative_to: Window | None = None) -> tuple[slice, slice]:
        """(row slice, col slice) of this window inside an array covering ``relative_to``."""
        c0, r0 = (relative_to.col_off, relative_to.row_off) if relative_to else (0, 0)
        return (slice(self.row_off - r0, self.row_end - r0),
                slice(self.col_off - c0, self.col_end - c0))

    def gdal_args(self) -> tuple[int, int, int, int]:
        """(xoff, yoff, xsize, ysize) as GDAL's ReadRaster/ReadAsArray take them."""
        return self.col_off, self.row_off, self.width, self.height

    def bounds(self, geotransform: Sequence[float]) -> tuple[float, float, float, float]:
        """Ground bounds (min_x, min_y, max_x, max_y) of the window (north-up transforms)."""
        x0, px_w, _, y0, _, px_h = geotransform
        xa, xb = x0 + self.col_off * px_w, x0 + self.col_end * px_w
        ya, yb = y0 + self.row_off * px_h, y0 + self.row_end * px_h
        return min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)

    @classmethod
    def from_bounds(cls, bounds: Sequence[float], geotransform: Sequence[float],
                    *, eps: float = 1e-6) -> Window:
        """Smallest whole-pixel window covering ``bounds`` (not clipped to any image).

        Pixel edges within ``eps`` pixels of a bound are treated as lying on it, so bounds that
        are exact multiples of the pixel size give exact windows despite float rounding.
        """
        x0, px_w, _, y0, _, px_h = geotransform
        min_x, min_y, max_x, max_y = bounds
        cols = sorted(((min_x - x0) / px_w, (max_x - x0) / px_w))
        rows = sorted(((max_y - y0) / px_h, (min_y - y0) / px_h))
        c0, c1 = math.floor(cols[0] + eps), math.ceil(cols[1] - eps)
        r0, r1 = math.floor(rows[0] + eps), math.ceil(rows[1] - eps)
        return cls(c0, r0, max(0, c1 - c0), max(0, r1 - r0))


def tile_windows(width: int, height: int, tile_width: int, tile_height: int) -> list[Window]:
    """Tiles of at most ``tile_width`` × ``tile_height`` covering the image row by row."""
    if tile_width <= 0 or tile_height <= 0:
        raise ParameterError(f"tile size must be positive, got {tile_width}×{tile_height}")
    return [
        Window(c, r, min(tile_width, width - c), min(tile_height, height - r))
        for r in range(0, height, tile_height)
        for c in range(0, width, tile_width)
    ]


def block_aligned_tile_size(width: int, height: int, block_size: tuple[int, int],
                            bytes_per_pixel: int,
                            budget_bytes: int = DEFAULT_WINDOW_BYTES) -> tuple[int, int]:
    """Tile size made of whole file blocks, as large as the memory budget allows.

    Whole rows of blocks are preferred (one contiguous read per strip/tile row); a budget too
    small for one row of blocks gives runs of blocks along the row instead. At least one block
    is always taken.
    """
    bw, bh = max(1, min(block_size[0], width)), max(1, min(block_size[1], height))
    pixels = max(1, budget_bytes // max(1, bytes_per_pixel))
    row_of_blocks = width * bh
    if row_of_blocks <= pixels:
        rows_of_blocks = max(1, pixels // row_of_blocks)
        return width, min(height, rows_of_blocks * bh)
    blocks_along = max(1, pixels // (bw * bh))
    return min(width, blocks_along * bw), bh


def _is_positive_int(value: object) -> bool:
    # numpy integers count; bools (an int subclass) and floats do not.
    return (isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
            and value > 0)


def normalize_window_size(window_size: WindowSize, *, parameter: str = "window_size",
                          extra: Sequence[str] = ()) -> WindowSize:
    """Validate ``window_size`` and return it in canonical form (None, int tuple or keyword)."""
    if window_size is None or (isinstance(window_size, str) and window_size == "auto"):
        return None
    if isinstance(window_size, str):
        if window_size in ("internal", "whole", *extra):
            return window_size
    elif _is_positive_int(window_size):
        return (int(window_size), int(window_size))
    elif (isinstance(window_size, Sequence) and not isinstance(window_size, (bytes, bytearray))
          and len(window_size) == 2 and all(_is_positive_int(v) for v in window_size)):
        return (int(window_size[0]), int(window_size[1]))
    accepted = ACCEPTED_WINDOW_SIZES + "".join(f', "{e}"' for e in extra)
    raise ParameterError(f"{parameter}={window_size!r} is not accepted; use {accepted}")


def plan_windows(width: int, height: int, window_size: WindowSize = None, *,
                 block_size: tuple[int, int] = (256, 256), bytes_per_pixel: int = 1,
                 budget_bytes: int = DEFAULT_WINDOW_BYTES) -> list[Window]:
    """The windows covering a ``width`` × ``height`` image, row by row, each pixel once.

    Args:
        width: Image width in pixels.
        height: Image height in pixels.
        window_size: None/"auto" (block-aligned tiles within ``budget_bytes``), an int or
            (width, height) for fixed tiles, "internal" for the file's own blocks, or "whole"
            for a single window.
        block_size: The file's block size (GDAL ``GetBlockSize``).
        bytes_per_pixel: Bytes one pixel takes across all bands read at once.
        budget_bytes: Memory budget of one window for the automatic plan.

    Returns:
        The list of windows.
    """
    size = normalize_window_size(window_size)
    if width <= 0 or height <= 0:
        return []
    if size is None:
        tw, th = block_aligned_tile_size(width, height, block_size, bytes_per_pixel, budget_bytes)
    elif size == "internal":
        tw, th = block_size
    elif size == "whole":
        tw, th = width, height
    elif isinstance(size, tuple):
        tw, th = size
    else:
        raise ParameterError(f"window_size={window_size!r} needs a block grid here; use "
                             + ACCEPTED_WINDOW_SIZES)
    return tile_windows(width, height, tw, th)
