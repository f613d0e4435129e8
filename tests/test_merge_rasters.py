"""Tests for merge_rasters: stacking order, union grid, resampling, nodata, dtype, validation."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from spectralmatch.errors import ParameterError, PathError, RasterError
from spectralmatch.mosaic.merge_rasters import merge_rasters

gdal.UseExceptions()

NODATA = -9999


def _read(path):
    ds = gdal.Open(str(path))
    return ds, ds.ReadAsArray().reshape(ds.RasterCount, ds.RasterYSize, ds.RasterXSize)


@pytest.fixture
def three(make_raster):
    """Three 2-band Int16 images on one 10 m grid, overlapping, with nodata holes.

    A: 30x20 at (0, 200); B: 25x20 at (200, 250); C: 10x10 at (250, 150).
    """
    rng = np.random.default_rng(5)
    a = rng.integers(1, 1000, (2, 20, 30)).astype(np.int16)
    b = rng.integers(1000, 2000, (2, 20, 25)).astype(np.int16)
    c = rng.integers(2000, 3000, (2, 10, 10)).astype(np.int16)
    b[:, 8:12, 2:6] = NODATA      # a hole of B inside the A/B overlap
    b[1, 14:16, 0:3] = NODATA     # band 2 only
    c[:, 0:3, 0:3] = NODATA
    paths = [make_raster("a.tif", a, geotransform=(0, 10, 0, 200, 0, -10), nodata=NODATA),
             make_raster("b.tif", b, geotransform=(200, 10, 0, 250, 0, -10), nodata=NODATA),
             make_raster("c.tif", c, geotransform=(250, 10, 0, 150, 0, -10), nodata=NODATA)]
    # (array, column offset, row offset) on the union grid (0, 250), 45 x 25 pixels
    placed = [(a, 0, 5), (b, 20, 0), (c, 25, 10)]
    return paths, placed


def _paint(placed, shape, nodata):
    """Independent reference: later images drawn over earlier ones where valid (per band)."""
    canvas = np.full(shape, nodata, dtype=np.int16)
    for arr, col, row in placed:
        view = canvas[:, row:row + arr.shape[1], col:col + arr.shape[2]]
        np.copyto(view, arr, where=arr != nodata)
    return canvas


def test_later_inputs_are_on_top_and_union_grid_is_exact(three, tmp_path):
    paths, placed = three
    out = merge_rasters(paths, str(tmp_path / "mosaic.tif"))
    ds, arr = _read(out)
    assert ds.GetGeoTransform() == (0, 10, 0, 250, 0, -10)
    assert (ds.RasterXSize, ds.RasterYSize) == (45, 25)
    assert ds.GetRasterBand(1).GetNoDataValue() == NODATA
    expected = _paint(placed, (2, 25, 45), NODATA)
    np.testing.assert_array_equal(arr, expected)
    # spot checks of the order: C over B over A; B's hole shows A; band-2 hole shows A in band 2
    a, b, c = (p[0] for p in placed)
    assert arr[0, 15, 26] == c[0, 5, 1]           # A, B and C overlap: C wins
    assert arr[0, 9, 22] == a[0, 4, 22]           # inside B's hole: A shows through
    assert arr[1, 14, 20] == a[1, 9, 20] and arr[0, 14, 20] == b[0, 14, 0]
    assert arr[0, 0, 0] == NODATA                 # covered by no image
    # gdalbuildvrt stacks the same way (later sources on top)
    vrt = gdal.BuildVRT("", paths, srcNodata=NODATA, VRTNodata=NODATA)
    np.testing.assert_array_equal(arr, vrt.ReadAsArray())


def test_order_follows_the_input_list(three, tmp_path):
    paths, placed = three
    out = merge_rasters(paths[::-1], str(tmp_path / "reversed.tif"))
    _, arr = _read(out)
    np.testing.assert_array_equal(arr, _paint(placed[::-1], (2, 25, 45), NODATA))
    a = placed[0][0]
    assert arr[0, 15, 26] == a[0, 10, 26]  # A is now on top


def test_result_does_not_depend_on_windows_or_workers(three, tmp_path):
    paths, _ = three
    _, base = _read(merge_rasters(paths, str(tmp_path / "base.tif")))
    for name, kwargs in {"w7": dict(window_size=7),
                         "threads": dict(window_size=(9, 4), window_parallel_workers=("thread", 3)),
                         "procs": dict(window_size=8, window_parallel_workers=("process", 2)),
                         "img": dict(window_size=8, image_parallel_workers=("process", "cpu")),
                         "whole": dict(window_size="whole")}.items():
        _, arr = _read(merge_rasters(paths, str(tmp_path / f"{name}.tif"), **kwargs))
        np.testing.assert_array_equal(arr, base, err_msg=name)


def test_mixed_grids_are_resampled_nearest(make_raster, tmp_path):
    # A: 10 m pixels at (0, 200), 30 x 20; D: 3 m pixels at (291, 203), 10 x 10.
    # Mosaic: pixel 3 m (the smallest), origin (0, 203), ceil(321/3) = 107 x ceil(203/3) = 68.
    rng = np.random.default_rng(9)
    a = rng.integers(1, 30000, (1, 20, 30)).astype(np.int16)
    a[0, 3, 4] = NODATA
    d = rng.integers(-500, -100, (1, 10, 10)).astype(np.int16)
    pa = make_raster("a.tif", a, geotransform=(0, 10, 0, 200, 0, -10), nodata=NODATA)
    pd = make_raster("d.tif", d, geotransform=(291, 3, 0, 203, 0, -3), nodata=NODATA)
    out = merge_rasters([pa, pd], str(tmp_path / "m.tif"))
    ds, arr = _read(out)
    assert ds.GetGeoTransform() == (0, 3, 0, 203, 0, -3)
    assert (ds.RasterXSize, ds.RasterYSize) == (107, 68)
    # Independent reference: each mosaic pixel takes A's pixel containing its centre (no
    # centre lies on an A pixel edge), then D (on the mosaic grid) on top.
    expected = np.full((68, 107), NODATA, dtype=np.int16)
    rows, cols = np.mgrid[0:68, 0:107]
    x, y = 1.5 + 3 * cols, 203 - 1.5 - 3 * rows
    inside = (x < 300) & (y < 200) & (y > 0)
    ac, ar = (x[inside] // 10).astype(int), ((200 - y[inside]) // 10).astype(int)
    expected[inside] = a[0, ar, ac]
    expected[0:10, 97:107] = d[0]
    np.testing.assert_array_equal(arr[0], expected)
    # a few points by hand: pixel (row 1, col 1) centre (4.5, 198.5) -> A[0, 0];
    # pixel (row 5, col 12) centre (37.5, 186.5) -> A row 1, col 3
    assert arr[0, 1, 1] == a[0, 0, 0] and arr[0, 5, 12] == a[0, 1, 3]
    assert arr[0, 0, 0] == NODATA  # centre y 201.5 lies above A


def test_custom_nodata_zero_is_honoured(make_raster, tmp_path):
    a = np.full((1, 4, 4), 5, np.int16)
    b = np.full((1, 4, 4), 7, np.int16)
    b[0, :, :2] = 0
    pa = make_raster("a.tif", a, geotransform=(0, 1, 0, 4, 0, -1))      # no nodata tag
    pb = make_raster("b.tif", b, geotransform=(1, 1, 0, 4, 0, -1))
    ds, arr = _read(merge_rasters([pa, pb], str(tmp_path / "zero.tif"), custom_nodata_value=0))
    assert ds.GetRasterBand(1).GetNoDataValue() == 0
    # B's zeros (columns 1-2 of the mosaic) are nodata: A shows through; column 4 is B only
    np.testing.assert_array_equal(arr[0], [[5, 5, 5, 7, 7]] * 4)
    # Without it every pixel is valid: B's zeros cover A, and nothing is nodata.
    ds, arr = _read(merge_rasters([pa, pb], str(tmp_path / "none.tif")))
    assert ds.GetRasterBand(1).GetNoDataValue() is None
    np.testing.assert_array_equal(arr[0], [[5, 0, 0, 7, 7]] * 4)


def test_output_dtype_rounds_clips_and_protects_nodata(make_raster, tmp_path):
    values = np.array([[[-3.5, 2.5, 300.7], [0.4, 7.49, 254.5], [0.0, -0.5, 1.5]]], np.float32)
    path = make_raster("f.tif", values, geotransform=(0, 1, 0, 3, 0, -1), nodata=-1)
    out = merge_rasters([path], str(tmp_path / "u8.tif"), output_dtype="uint8",
                        custom_nodata_value=0)
    ds, arr = _read(out)
    assert arr.dtype == np.uint8 and ds.GetRasterBand(1).GetNoDataValue() == 0
    # round half away from zero, clip to 0..255, a valid value landing on 0 becomes 1
    np.testing.assert_array_equal(arr[0], [[1, 3, 255], [1, 7, 255], [0, 1, 2]])
    with pytest.raises(ParameterError, match="output_dtype"):
        merge_rasters([path], str(tmp_path / "bad.tif"), output_dtype="uint8")  # -1 won't fit
    assert not (tmp_path / "bad.tif").exists()


def test_output_dtype_widening_is_exact(three, tmp_path):
    paths, placed = three
    _, arr = _read(merge_rasters(paths, str(tmp_path / "f.tif"), output_dtype="float32"))
    assert arr.dtype == np.float32
    np.testing.assert_array_equal(arr, _paint(placed, (2, 25, 45), NODATA).astype(np.float32))


def test_bad_inputs_fail_before_any_output(three, make_raster, tmp_path):
    paths, _ = three
    out = tmp_path / "out" / "mosaic.tif"
    one_band = make_raster("one.tif", np.ones((1, 5, 5), np.int16), nodata=NODATA)
    with pytest.raises(RasterError, match="1 bands"):
        merge_rasters([paths[0], one_band], str(out))
    with pytest.raises(PathError, match="same file as input"):
        merge_rasters(paths, paths[1])
    other_crs = make_raster("utm11.tif", np.ones((2, 5, 5), np.int16), crs="EPSG:32611",
                            nodata=NODATA)
    with pytest.raises(RasterError, match="align_rasters"):
        merge_rasters([paths[0], other_crs], str(out))
    other_nodata = make_raster("nd0.tif", np.ones((2, 5, 5), np.int16), nodata=0)
    with pytest.raises(RasterError, match="custom_nodata_value"):
        merge_rasters([paths[0], other_nodata], str(out))
    with pytest.raises(ParameterError, match="resampling_method"):
        merge_rasters(paths, str(out), resampling_method="best")
    assert not out.exists() and not out.parent.exists()
    assert all(gdal.Open(p).ReadAsArray().shape[0] == 2 for p in paths)  # inputs untouched
