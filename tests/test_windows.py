"""Tests for spectralmatch.io.windows: Window geometry and window plans."""
from __future__ import annotations

import numpy as np
import pytest

from spectralmatch.errors import ParameterError
from spectralmatch.io.windows import (
    DEFAULT_WINDOW_BYTES,
    Window,
    normalize_window_size,
    plan_windows,
    tile_windows,
)


def coverage(windows: list[Window], width: int, height: int) -> np.ndarray:
    """How many windows cover each pixel (fails on windows outside the image or empty)."""
    count = np.zeros((height, width), dtype=np.int32)
    for w in windows:
        assert w.width > 0 and w.height > 0, w
        assert 0 <= w.col_off and w.col_end <= width, w
        assert 0 <= w.row_off and w.row_end <= height, w
        count[w.slices()] += 1
    return count


SIZES = [(1, 1), (1, 7), (7, 1), (13, 17), (255, 257), (300, 3), (3, 300)]
PLANS = [None, "auto", 1, 5, 256, (7, 3), (300, 1), (1, 300), [4, 9], "internal", "whole"]
BLOCKS = [(256, 256), (16, 16), (5, 3), "strip"]


@pytest.mark.parametrize("width,height", SIZES)
@pytest.mark.parametrize("plan", PLANS, ids=repr)
@pytest.mark.parametrize("block", BLOCKS, ids=repr)
def test_every_plan_tiles_the_image_exactly_once(width, height, plan, block) -> None:
    block_size = (width, 1) if block == "strip" else block
    windows = plan_windows(width, height, plan, block_size=block_size, bytes_per_pixel=8)
    np.testing.assert_array_equal(coverage(windows, width, height), 1)
    # Row by row: offsets sorted by (row, col).
    keys = [(w.row_off, w.col_off) for w in windows]
    assert keys == sorted(keys)


@pytest.mark.parametrize("plan,expected", [
    (5, (5, 5)), ((7, 3), (7, 3)), ("whole", (13, 17)), ("internal", (5, 3)),
])
def test_fixed_plans_use_the_requested_tile_size(plan, expected) -> None:
    windows = plan_windows(13, 17, plan, block_size=(5, 3))
    assert windows[0] == Window(0, 0, *expected)
    tw, th = expected
    assert len(windows) == -(-13 // tw) * -(-17 // th)
    # Interior tiles are full size; only the last column/row is cut.
    for w in windows:
        assert w.width == min(tw, 13 - w.col_off) and w.height == min(th, 17 - w.row_off)


def test_tile_windows_known_layout() -> None:
    assert tile_windows(5, 3, 2, 2) == [
        Window(0, 0, 2, 2), Window(2, 0, 2, 2), Window(4, 0, 1, 2),
        Window(0, 2, 2, 1), Window(2, 2, 2, 1), Window(4, 2, 1, 1),
    ]


@pytest.mark.parametrize("bad", [(0, 4), (4, 0), (-1, 2)])
def test_tile_windows_rejects_non_positive_tiles(bad) -> None:
    with pytest.raises(ParameterError):
        tile_windows(10, 10, *bad)


def test_empty_image_gives_no_windows() -> None:
    assert plan_windows(0, 10) == [] and plan_windows(10, 0, 5) == []


@pytest.mark.parametrize("width,height,block,bpp,budget", [
    (1000, 900, (128, 64), 4, 128 * 64 * 4 * 3),     # < one row of blocks: runs of 3 blocks
    (1000, 900, (128, 64), 4, 1000 * 64 * 4 * 2),    # exactly two rows of blocks
    (1000, 900, (128, 64), 4, 1000 * 64 * 4 * 2 + 5),  # just above: still two rows
    (1000, 900, (128, 64), 4, 100),                  # smaller than one block: one block each
    (1000, 900, (128, 64), 4, DEFAULT_WINDOW_BYTES),  # everything fits: one window
    (4000, 3000, (256, 256), 2 * 4, DEFAULT_WINDOW_BYTES),
    (777, 555, (512, 512), 3, 512 * 512 * 3),        # blocks larger than the image's width
])
def test_automatic_plan_is_block_aligned_and_within_budget(width, height, block, bpp,
                                                           budget) -> None:
    windows = plan_windows(width, height, None, block_size=block, bytes_per_pixel=bpp,
                           budget_bytes=budget)
    np.testing.assert_array_equal(coverage(windows, width, height), 1)
    bw, bh = block
    block_bytes = min(bw, width) * min(bh, height) * bpp
    for w in windows:
        assert w.col_off % bw == 0 and w.row_off % bh == 0, w
        # Whole blocks, except at the image's right and bottom edges.
        assert w.col_end == width or w.width % bw == 0, w
        assert w.row_end == height or w.height % bh == 0, w
        assert w.size * bpp <= max(budget, block_bytes), w


def test_automatic_plan_known_sizes() -> None:
    # Two rows of 64-row blocks fit the budget: full-width windows of 128 rows.
    windows = plan_windows(1000, 900, None, block_size=(128, 64), bytes_per_pixel=4,
                           budget_bytes=1000 * 64 * 4 * 2)
    assert windows[0] == Window(0, 0, 1000, 128)
    assert len(windows) == 8 and windows[-1] == Window(0, 896, 1000, 4)
    # Budget of 3 blocks: 384-pixel runs along the row.
    windows = plan_windows(1000, 900, None, block_size=(128, 64), bytes_per_pixel=4,
                           budget_bytes=128 * 64 * 4 * 3)
    assert windows[:3] == [Window(0, 0, 384, 64), Window(384, 0, 384, 64),
                           Window(768, 0, 232, 64)]
    # Small image: one window.
    assert plan_windows(1000, 900, None, block_size=(128, 64), bytes_per_pixel=4) == [
        Window(0, 0, 1000, 900)]


@pytest.mark.parametrize("width,height", [(1, 1), (10_000, 7), (50_000, 3000), (333, 1)])
def test_strip_files_give_full_width_windows(width, height) -> None:
    windows = plan_windows(width, height, None, block_size=(width, 1), bytes_per_pixel=8,
                           budget_bytes=8 * 1024 * 1024)
    assert all(w.col_off == 0 and w.width == width for w in windows)
    np.testing.assert_array_equal(coverage(windows, width, height), 1)
    expected_rows = max(1, min(height, 8 * 1024 * 1024 // (8 * width)))
    assert windows[0].height == expected_rows


@pytest.mark.parametrize("bad", [0, -1, (0, 5), (5, -2), "foo", "", True, False, 1.5,
                                 (1, 2, 3), (1,), (1.0, 2), (True, 4), "AUTO", b"ab",
                                 {"a": 1}])
def test_invalid_window_size_raises_naming_the_parameter(bad) -> None:
    with pytest.raises(ParameterError, match="window_size"):
        normalize_window_size(bad)
    with pytest.raises(ParameterError, match="window_size"):
        plan_windows(10, 10, bad)


def test_normalize_window_size_canonical_forms() -> None:
    assert normalize_window_size(None) is None
    assert normalize_window_size("auto") is None
    assert normalize_window_size(7) == (7, 7)
    assert normalize_window_size([3, 4]) == (3, 4)
    assert normalize_window_size((np.int64(3), np.int32(4))) == (3, 4)
    assert normalize_window_size(np.int64(6)) == (6, 6)
    assert normalize_window_size("internal") == "internal"
    assert normalize_window_size("whole") == "whole"
    assert normalize_window_size("block", extra=("block",)) == "block"
    with pytest.raises(ParameterError, match="tile_size"):
        normalize_window_size("block", parameter="tile_size")


# --- Window geometry ---------------------------------------------------------------------------

def test_intersection() -> None:
    a = Window(2, 3, 10, 5)
    assert a.intersection(Window(5, 0, 100, 4)) == Window(5, 3, 7, 1)
    assert a.intersection(a) == a
    assert a.intersection(Window(0, 0, 100, 100)) == a
    assert a.intersection(Window(12, 3, 4, 4)) is None      # touching edge: no pixel shared
    assert a.intersection(Window(2, 8, 4, 4)) is None
    assert a.intersection(Window(50, 50, 1, 1)) is None
    assert Window(5, 0, 100, 4).intersection(a) == Window(5, 3, 7, 1)


def test_intersection_matches_numpy_masks() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        a = Window(*rng.integers(0, 20, 2), *rng.integers(1, 15, 2))
        b = Window(*rng.integers(0, 20, 2), *rng.integers(1, 15, 2))
        ma = np.zeros((40, 40), bool)
        mb = np.zeros((40, 40), bool)
        ma[a.slices()] = True
        mb[b.slices()] = True
        both = ma & mb
        inter = a.intersection(b)
        if inter is None:
            assert not both.any()
        else:
            expected = np.zeros_like(both)
            expected[inter.slices()] = True
            np.testing.assert_array_equal(both, expected)


def test_shift_clip_slices_gdal_args() -> None:
    w = Window(4, 6, 5, 3)
    assert w.shift(-4, 2) == Window(0, 8, 5, 3)
    assert w.col_end == 9 and w.row_end == 9 and w.size == 15
    assert w.gdal_args() == (4, 6, 5, 3)
    assert Window(-2, -1, 5, 4).clip(10, 10) == Window(0, 0, 3, 3)
    assert Window(8, 8, 5, 5).clip(10, 9) == Window(8, 8, 2, 1)
    assert Window(10, 0, 5, 5).clip(10, 10) is None
    assert Window(0, 0, 0, 5).is_empty() and not w.is_empty()
    image = np.arange(20 * 30).reshape(20, 30)
    assert w.slices() == (slice(6, 9), slice(4, 9))
    np.testing.assert_array_equal(image[w.slices()], image[6:9, 4:9])
    # Relative to a larger window read into its own array.
    outer = Window(2, 5, 10, 8)
    sub = image[outer.slices()]
    np.testing.assert_array_equal(sub[w.slices(outer)], image[6:9, 4:9])


def test_bounds_north_up_and_south_up() -> None:
    gt = (500000.0, 10.0, 0.0, 4200000.0, 0.0, -10.0)
    assert Window(2, 3, 4, 5).bounds(gt) == (500020.0, 4199920.0, 500060.0, 4199970.0)
    gt_south_up = (100.0, 2.0, 0.0, 50.0, 0.0, 0.5)
    assert Window(1, 2, 3, 4).bounds(gt_south_up) == (102.0, 51.0, 108.0, 53.0)


@pytest.mark.parametrize("gt", [
    (0.0, 1.0, 0.0, 100.0, 0.0, -1.0),
    (500000.1, 0.3, 0.0, 4200000.7, 0.0, -0.3),      # pixel sizes not exact in binary
    (-180.0, 0.1, 0.0, 90.0, 0.0, -0.1),
    (12.345, 30.0, 0.0, -7.5, 0.0, 30.0),             # south-up
])
def test_bounds_from_bounds_round_trip(gt) -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        w = Window(int(rng.integers(-50, 5000)), int(rng.integers(-50, 5000)),
                   int(rng.integers(1, 3000)), int(rng.integers(1, 3000)))
        assert Window.from_bounds(w.bounds(gt), gt) == w


def test_from_bounds_rounding_tolerance_and_partial_pixels() -> None:
    gt = (0.0, 0.1, 0.0, 10.0, 0.0, -0.1)
    # 0.3 / 0.1 = 2.9999999999999996 in floats: still column 3.
    assert Window.from_bounds((0.3, 9.0, 0.7, 9.7), gt) == Window(3, 3, 4, 7)
    noisy = (0.3 + 1e-12, 9.0 - 1e-12, 0.7 - 1e-12, 9.7 + 1e-12)
    assert Window.from_bounds(noisy, gt) == Window(3, 3, 4, 7)
    # A real partial pixel (well beyond eps) takes the whole pixel.
    assert Window.from_bounds((0.31, 9.0, 0.7, 9.7), gt) == Window(3, 3, 4, 7)
    assert Window.from_bounds((0.29, 9.0, 0.7, 9.7), gt) == Window(2, 3, 5, 7)
    assert Window.from_bounds((0.3, 8.95, 0.75, 9.7), gt) == Window(3, 3, 5, 8)
    # Degenerate bounds give an empty window.
    assert Window.from_bounds((0.5, 9.0, 0.5, 9.5), gt).width == 0
