"""Tests of the seeded synthetic mosaic generator (spectralmatch.sample_data)."""
from __future__ import annotations

import inspect
import json
import math
import os
import tracemalloc

import numpy as np
import pytest
from osgeo import gdal, osr

from spectralmatch.errors import ParameterError
from spectralmatch.sample_data import (
    SampleSet,
    create_sample_data,
    generate_mosaic,
    gradient_values,
    scene_values,
)

gdal.UseExceptions()


def read(path: str) -> tuple[np.ndarray, tuple, list]:
    """(bands, rows, cols) array, geotransform and per-band nodata of a raster."""
    ds = gdal.Open(path)
    array = ds.ReadAsArray()
    if array.ndim == 2:
        array = array[np.newaxis]
    nodata = [ds.GetRasterBand(i + 1).GetNoDataValue() for i in range(ds.RasterCount)]
    return array, ds.GetGeoTransform(), nodata


def centres(gt: tuple, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ground coordinates of pixel centres, computed from the file's geotransform."""
    return gt[0] + (cols + 0.5) * gt[1], gt[3] + (rows + 0.5) * gt[5]


def round_half_away(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.floor(np.abs(values) + 0.5)


def random_pixels(rng: np.random.Generator, height: int, width: int, n: int):
    return rng.integers(0, height, n), rng.integers(0, width, n)


# ---------------------------------------------------------------------------------------------
# reproducibility


def test_same_seed_gives_identical_pixels_and_other_seed_differs(tmp_path):
    kwargs = dict(layout="2x2", tile_size=64, bands=3, gradient=80.0, noise=12.0, collar=5)
    a = generate_mosaic(str(tmp_path / "a"), seed=7, **kwargs)
    b = generate_mosaic(str(tmp_path / "b"), seed=7, **kwargs)
    c = generate_mosaic(str(tmp_path / "c"), seed=8, **kwargs)
    assert [os.path.basename(p) for p in a.paths] == [
        "tile_0_0.tif", "tile_0_1.tif", "tile_1_0.tif", "tile_1_1.tif"]
    for pa, pb, pc in zip(a.paths, b.paths, c.paths, strict=True):
        arr_a, arr_b, arr_c = read(pa)[0], read(pb)[0], read(pc)[0]
        assert arr_a.tobytes() == arr_b.tobytes()
        assert np.count_nonzero(arr_a != arr_c) > 0.5 * arr_a.size
    for key in a.truth:
        assert a.truth[key]["gains"] == b.truth[key]["gains"]
        assert a.truth[key]["collar_depths"] == b.truth[key]["collar_depths"]
        assert a.truth[key]["gains"] != c.truth[key]["gains"]


def test_gains_do_not_depend_on_other_parameters(tmp_path):
    # each quantity has its own random stream: adding bands or a collar keeps the gains
    a = generate_mosaic(str(tmp_path / "a"), layout="1x2", tile_size=32, bands=2, seed=3)
    b = generate_mosaic(str(tmp_path / "b"), layout="1x2", tile_size=32, bands=4, seed=3,
                        collar=3, noise=4.0)
    for key in a.truth:
        assert b.truth[key]["gains"][:2] == a.truth[key]["gains"]
        assert b.truth[key]["offsets"][:2] == a.truth[key]["offsets"]


# ---------------------------------------------------------------------------------------------
# geometry


def test_layout_2x2_geometry_by_hand(tmp_path):
    sample = generate_mosaic(str(tmp_path), layout="2x2", tile_size=100, overlap=0.25,
                             pixel_size=10.0, bands=1)
    # 25 px overlap, 75 px = 750 m steps; tile (0, 0) starts at (500000, 4200000)
    expected = {
        "tile_0_0": (500000.0, 4199000.0, 501000.0, 4200000.0),
        "tile_0_1": (500750.0, 4199000.0, 501750.0, 4200000.0),
        "tile_1_0": (500000.0, 4198250.0, 501000.0, 4199250.0),
        "tile_1_1": (500750.0, 4198250.0, 501750.0, 4199250.0),
    }
    assert sorted(sample.truth) == sorted(expected)
    for path in sample.paths:
        key = os.path.basename(path)[:-4]
        ds = gdal.Open(path)
        assert (ds.RasterXSize, ds.RasterYSize, ds.RasterCount) == (100, 100, 1)
        x0, px, rx, y0, ry, py = ds.GetGeoTransform()
        assert (rx, ry, px, py) == (0.0, 0.0, 10.0, -10.0)
        assert (x0, y0 - 100 * 10.0, x0 + 100 * 10.0, y0) == expected[key]
        assert tuple(sample.truth[key]["bounds"]) == expected[key]
        srs = osr.SpatialReference(wkt=ds.GetProjection())
        assert srs.GetAuthorityCode(None) == "32610"
        assert ds.GetRasterBand(1).GetBlockSize() == [512, 512]
    # horizontal neighbours share a 250 m × 1000 m strip, diagonal ones a 250 m square
    def overlap(a, b):
        ba, bb = sample.truth[a]["bounds"], sample.truth[b]["bounds"]
        return min(ba[2], bb[2]) - max(ba[0], bb[0]), min(ba[3], bb[3]) - max(ba[1], bb[1])
    assert overlap("tile_0_0", "tile_0_1") == (250.0, 1000.0)
    assert overlap("tile_0_0", "tile_1_0") == (1000.0, 250.0)
    assert overlap("tile_0_0", "tile_1_1") == (250.0, 250.0)
    assert sample.parameters["overlap_pixels"] == [25, 25]
    assert sample.parameters["step_pixels"] == [75, 75]


def test_layout_3x1_is_three_rows_with_rectangular_tiles(tmp_path):
    sample = generate_mosaic(str(tmp_path), layout="3x1", tile_size=(60, 40), overlap=0.5,
                             pixel_size=30.0, bands=2, crs="EPSG:32605")
    # 40 px tall tiles, 20 px overlap → 20 px = 600 m steps southwards; origin snapped to 30 m
    x0 = round(500000 / 30) * 30.0
    y0 = round(4200000 / 30) * 30.0
    assert [os.path.basename(p) for p in sample.paths] == ["tile_0_0.tif", "tile_1_0.tif",
                                                          "tile_2_0.tif"]
    for r, path in enumerate(sample.paths):
        ds = gdal.Open(path)
        assert (ds.RasterXSize, ds.RasterYSize) == (60, 40)
        assert ds.GetGeoTransform() == (x0, 30.0, 0.0, y0 - r * 600.0, 0.0, -30.0)
        assert sample.truth[f"tile_{r}_0"]["bounds"] == [x0, y0 - r * 600.0 - 1200.0,
                                                         x0 + 1800.0, y0 - r * 600.0]
    assert sample.parameters["rows"] == 3 and sample.parameters["cols"] == 1


def test_offset_grid_shifts_every_other_tile_by_half_a_pixel(tmp_path):
    sample = generate_mosaic(str(tmp_path), layout="2x2", tile_size=40, overlap=0.25,
                             bands=1, offset_grid=True)
    gts = {os.path.basename(p)[:-4]: gdal.Open(p).GetGeoTransform() for p in sample.paths}
    assert gts["tile_0_0"][:1] + gts["tile_0_0"][3:4] == (500000.0, 4200000.0)
    assert (gts["tile_0_1"][0], gts["tile_0_1"][3]) == (500000.0 + 300.0 + 5.0, 4200000.0 - 5.0)
    assert (gts["tile_1_0"][0], gts["tile_1_0"][3]) == (500000.0 + 5.0, 4200000.0 - 300.0 - 5.0)
    assert (gts["tile_1_1"][0], gts["tile_1_1"][3]) == (500300.0, 4199700.0)


# ---------------------------------------------------------------------------------------------
# pixel values


def test_valid_pixels_equal_rounded_gain_times_scene_plus_offset(tmp_path):
    sample = generate_mosaic(str(tmp_path), layout="2x2", tile_size=(90, 70), bands=3, seed=11)
    rng = np.random.default_rng(0)
    for path in sample.paths:
        record = sample.truth[os.path.basename(path)[:-4]]
        array, gt, nodata = read(path)
        assert nodata == [0.0, 0.0, 0.0]
        assert array.dtype == np.uint16 and not (array == 0).any()
        rows, cols = random_pixels(rng, 70, 90, 400)
        x, y = centres(gt, rows, cols)
        for b in range(3):
            g, o = record["gains"][b], record["offsets"][b]
            assert 0.8 <= g <= 1.25 and -200 <= o <= 200
            expected = round_half_away(g * scene_values(x, y, b) + o)
            np.testing.assert_array_equal(array[b, rows, cols], expected)


def test_overlapping_tiles_see_the_same_scene(tmp_path):
    sample = generate_mosaic(str(tmp_path), layout="1x2", tile_size=50, overlap=0.4, bands=1)
    left, right = read(sample.paths[0])[0][0], read(sample.paths[1])[0][0]
    t_left, t_right = sample.truth["tile_0_0"], sample.truth["tile_0_1"]
    # the last 20 columns of the left tile are the first 20 of the right one
    scene_left = (left[:, 30:] - t_left["offsets"][0]) / t_left["gains"][0]
    scene_right = (right[:, :20] - t_right["offsets"][0]) / t_right["gains"][0]
    assert np.abs(scene_left - scene_right).max() < 1.5  # only rounding differs
    assert scene_left.std() > 20  # and the overlap is textured, not flat


def test_scene_values_range_texture_and_band_correlation():
    x = 500000.0 + np.arange(0, 30000, 10.0)[None, :]
    y = 4200000.0 - np.arange(0, 30000, 25.0)[:, None]
    scenes = [scene_values(x, y, b) for b in range(6)]
    for s in scenes:
        assert 500 <= s.min() and s.max() <= 5000
        assert s.std() > 300
        # mid-frequency texture: neighbouring 10 m pixels differ, but far less than the range
        steps = np.abs(np.diff(s, axis=1))
        assert 1.0 < steps.mean() < 100.0
    corr = np.corrcoef([s.ravel()[::5] for s in scenes])
    assert corr.min() > 0.5 and not np.allclose(scenes[0], scenes[1])
    # deterministic and element-wise: the broadcast grid equals point evaluations
    assert scene_values(x[0, 7], y[3, 0], 2) == scenes[2][3, 7]
    with pytest.raises(ParameterError, match="band"):
        scene_values(x, y, -1)


def test_float32_is_not_rounded(tmp_path):
    sample = generate_mosaic(str(tmp_path), layout="1x1", tile_size=48, bands=2,
                             dtype="float32", nodata=-9999, seed=5)
    array, gt, nodata = read(sample.paths[0])
    assert array.dtype == np.float32 and nodata == [-9999.0, -9999.0]
    rows, cols = np.meshgrid(np.arange(48), np.arange(48), indexing="ij")
    x, y = centres(gt, rows, cols)
    record = sample.truth["tile_0_0"]
    for b in range(2):
        expected = (record["gains"][b] * scene_values(x, y, b) + record["offsets"][b])
        np.testing.assert_array_equal(array[b], expected.astype(np.float32))
    assert np.count_nonzero(array != np.round(array)) > 0.9 * array.size


def test_gradient_is_zero_mean_and_matches_sidecar(tmp_path):
    amplitude = 300.0
    sample = generate_mosaic(str(tmp_path), layout="1x2", tile_size=(64, 48), bands=2,
                             gradient=amplitude, seed=2)
    sidecar = json.loads(open(sample.sidecar_path).read())
    for path in sample.paths:
        key = os.path.basename(path)[:-4]
        array, gt, _ = read(path)
        desc = sidecar["images"][key]["gradient"]
        assert desc["amplitude"] == amplitude
        assert desc["center"] == [gt[0] + 32 * gt[1], gt[3] + 24 * gt[5]]
        theta = desc["direction"]
        # independent ramp: ±amplitude at the farthest tile corners (pixel edges)
        half_extent = 32 * 10.0 * abs(math.cos(theta)) + 24 * 10.0 * abs(math.sin(theta))
        assert desc["half_extent"] == pytest.approx(half_extent)
        rows, cols = np.meshgrid(np.arange(48), np.arange(64), indexing="ij")
        x, y = centres(gt, rows, cols)
        ramp = amplitude * ((x - desc["center"][0]) * math.cos(theta)
                            + (y - desc["center"][1]) * math.sin(theta)) / desc["half_extent"]
        assert abs(ramp.mean()) < 1e-9 * amplitude
        assert 0.9 * amplitude < np.abs(ramp).max() <= amplitude
        np.testing.assert_allclose(gradient_values(x, y, desc), ramp, rtol=0, atol=1e-9)
        for b in range(2):
            base = (sidecar["images"][key]["gains"][b] * scene_values(x, y, b)
                    + sidecar["images"][key]["offsets"][b])
            np.testing.assert_array_equal(array[b], round_half_away(base + ramp))
            residual = array[b] - base
            assert abs(residual.mean()) < 0.5  # zero-mean up to rounding
            assert np.corrcoef(residual.ravel(), ramp.ravel())[0, 1] > 0.999
    directions = [sample.truth[k]["gradient"]["direction"] for k in sample.truth]
    assert directions[0] != directions[1]


def test_noise_has_the_requested_std(tmp_path):
    sample = generate_mosaic(str(tmp_path), layout="1x1", tile_size=128, bands=2, noise=20.0,
                             dtype="float32", seed=4)
    array, gt, _ = read(sample.paths[0])
    rows, cols = np.meshgrid(np.arange(128), np.arange(128), indexing="ij")
    x, y = centres(gt, rows, cols)
    record = sample.truth["tile_0_0"]
    residuals = [array[b] - (record["gains"][b] * scene_values(x, y, b) + record["offsets"][b])
                 for b in range(2)]
    for r in residuals:
        assert r.std() == pytest.approx(20.0, rel=0.05)
        assert abs(r.mean()) < 1.0
    assert abs(np.corrcoef(residuals[0].ravel(), residuals[1].ravel())[0, 1]) < 0.05


# ---------------------------------------------------------------------------------------------
# nodata


def test_collar_is_nodata_in_all_bands_and_follows_the_sidecar(tmp_path):
    collar = 6
    sample = generate_mosaic(str(tmp_path), layout="1x2", tile_size=(80, 60), bands=3,
                             collar=collar, noise=3.0, seed=9)
    for path in sample.paths:
        record = sample.truth[os.path.basename(path)[:-4]]
        array, _, nodata = read(path)
        invalid = array == 0
        # the same pixels are nodata in every band, and only those
        assert (invalid == invalid[0]).all()
        depths = {k: np.asarray(v) for k, v in record["collar_depths"].items()}
        assert [len(depths[e]) for e in ("top", "bottom", "left", "right")] == [80, 80, 60, 60]
        for d in depths.values():
            assert d.min() >= 0 and d.max() <= collar
            assert len(np.unique(d)) > 2  # irregular, not a straight border
        r, c = np.meshgrid(np.arange(60), np.arange(80), indexing="ij")
        expected = ((c < depths["left"][r]) | (c >= 80 - depths["right"][r])
                    | (r < depths["top"][c]) | (r >= 60 - depths["bottom"][c]))
        np.testing.assert_array_equal(invalid[0], expected)
        # nothing deeper than the collar width is nodata
        assert not invalid[0][collar:-collar, collar:-collar].any()
        assert 0 < expected.sum() < 2 * collar * (80 + 60)


def test_no_collar_means_no_nodata_pixels(tmp_path):
    sample = generate_mosaic(str(tmp_path), layout="2x1", tile_size=40, bands=2, noise=5.0)
    for path in sample.paths:
        array, _, nodata = read(path)
        assert nodata == [0.0, 0.0]
        assert not (array == 0).any()
        assert all(not any(v) for v in sample.truth[os.path.basename(path)[:-4]]
                   ["collar_depths"].values())


def test_nodata_none_sets_no_nodata_and_refuses_a_collar(tmp_path):
    sample = generate_mosaic(str(tmp_path), layout="1x1", tile_size=16, bands=1, nodata=None)
    assert read(sample.paths[0])[2] == [None]
    with pytest.raises(ParameterError, match="collar"):
        generate_mosaic(str(tmp_path / "x"), tile_size=16, nodata=None, collar=2)


@pytest.mark.parametrize("nodata, offset, moved", [(0, -20000.0, 1), (65535, 90000.0, 65534)])
def test_valid_pixels_never_equal_nodata(tmp_path, nodata, offset, moved):
    # every value clips onto the nodata value and must be moved off it by one
    sample = generate_mosaic(str(tmp_path), layout="1x1", tile_size=16, bands=2, nodata=nodata,
                             offset_range=(offset, offset))
    array = read(sample.paths[0])[0]
    assert (array == moved).all()


# ---------------------------------------------------------------------------------------------
# sidecar and truth rasters


def test_sidecar_records_parameters_and_truth(tmp_path):
    sample = generate_mosaic(str(tmp_path), layout="2x2", tile_size=32, bands=2, seed=21,
                             gradient=10.0, name="scene")
    assert isinstance(sample, SampleSet)
    assert sample.sidecar_path == os.path.join(str(tmp_path), "scene_truth.json")
    sidecar = json.loads(open(sample.sidecar_path).read())
    assert sidecar["generator"] == "spectralmatch.sample_data.generate_mosaic"
    params = sidecar["parameters"]
    assert params == sample.parameters
    assert (params["seed"], params["layout"], params["tile_size"], params["bands"],
            params["dtype"], params["gradient"], params["nodata"], params["crs"]) == (
        21, "2x2", [32, 32], 2, "uint16", 10.0, 0.0, "EPSG:32610")
    assert sidecar["images"] == sample.truth
    assert sorted(sidecar["images"]) == ["scene_0_0", "scene_0_1", "scene_1_0", "scene_1_1"]
    for key, record in sidecar["images"].items():
        assert record["path"] == os.path.join(str(tmp_path), key + ".tif")
        assert os.path.exists(record["path"])
        assert len(record["gains"]) == len(record["offsets"]) == 2
        assert record["truth_path"] is None
        ds = gdal.Open(record["path"])
        assert list(ds.GetGeoTransform()) == record["geotransform"]
        assert json.loads(ds.GetMetadataItem("SPECTRALMATCH_SAMPLE_GAINS")) == record["gains"]
    gains = [tuple(r["gains"]) for r in sample.truth.values()]
    assert len(set(gains)) == 4
    assert not os.path.exists(sample.sidecar_path + ".partial")


def test_truth_rasters_hold_the_scene_with_the_same_collar(tmp_path):
    sample = generate_mosaic(str(tmp_path), layout="1x2", tile_size=(40, 30), bands=2,
                             collar=4, write_truth=True, noise=2.0)
    assert [os.path.basename(p) for p in sample.truth_paths] == ["tile_0_0_truth.tif",
                                                                "tile_0_1_truth.tif"]
    for path, truth_path in zip(sample.paths, sample.truth_paths, strict=True):
        image, gt, _ = read(path)
        truth, truth_gt, truth_nodata = read(truth_path)
        assert truth.dtype == np.float32 and truth_gt == gt
        assert all(math.isnan(v) for v in truth_nodata)
        rows, cols = np.meshgrid(np.arange(30), np.arange(40), indexing="ij")
        x, y = centres(gt, rows, cols)
        collar = image[0] == 0
        assert collar.any()
        for b in range(2):
            np.testing.assert_array_equal(np.isnan(truth[b]), collar)
            np.testing.assert_array_equal(truth[b][~collar],
                                          scene_values(x, y, b).astype(np.float32)[~collar])


# ---------------------------------------------------------------------------------------------
# memory, parameters, wrapper


def test_memory_does_not_scale_with_the_image(tmp_path):
    size = 2048
    one_band_bytes = size * size * np.dtype("uint16").itemsize  # 8 MiB
    tracemalloc.start()
    try:
        generate_mosaic(str(tmp_path), layout="1x1", tile_size=size, bands=1, gradient=50.0,
                        noise=5.0, collar=16)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < one_band_bytes / 2
    ds = gdal.Open(os.path.join(str(tmp_path), "tile_0_0.tif"))
    assert (ds.RasterXSize, ds.RasterYSize) == (size, size)
    band = ds.GetRasterBand(1)
    corner = band.ReadAsArray(size - 64, size - 64, 64, 64)  # the last strip was written
    assert (corner[:32, :32] > 0).all() and (corner[-1, :] == 0).any()


@pytest.mark.parametrize("kwargs, match", [
    ({"layout": "2by2"}, "layout"),
    ({"layout": "0x2"}, "layout"),
    ({"tile_size": 1}, "tile_size"),
    ({"overlap": 1.0}, "overlap"),
    ({"overlap": -0.1}, "overlap"),
    ({"bands": 0}, "bands"),
    ({"dtype": "complex64"}, "dtype"),
    ({"gain_range": (1.2, 0.9)}, "gain_range"),
    ({"gain_range": (0.0, 1.0)}, "gain_range"),
    ({"nodata": -1}, "nodata"),
    ({"nodata": 1.5}, "nodata"),
    ({"collar": 8}, "collar"),
    ({"seed": -1}, "seed"),
    ({"crs": "EPSG:not-a-code"}, "crs"),
    ({"noise": -1.0}, "noise"),
])
def test_bad_parameters_raise_parameter_error(tmp_path, kwargs, match):
    params = {"tile_size": 16, "bands": 1, **kwargs}
    with pytest.raises(ParameterError, match=match):
        generate_mosaic(str(tmp_path), **params)
    assert not os.listdir(tmp_path)  # validated before anything is written


def test_create_sample_data_wraps_generate_mosaic(tmp_path):
    paths = create_sample_data(str(tmp_path), layout="1x3", tile_size=24, bands=2, seed=1,
                               collar=2)
    assert [os.path.basename(p) for p in paths] == ["tile_0_0.tif", "tile_0_1.tif",
                                                    "tile_0_2.tif"]
    direct = generate_mosaic(str(tmp_path / "direct"), layout="1x3", tile_size=24, bands=2,
                             seed=1, collar=2)
    for p, q in zip(paths, direct.paths, strict=True):
        assert read(p)[0].tobytes() == read(q)[0].tobytes()
    assert os.path.exists(os.path.join(str(tmp_path), "tile_truth.json"))
    # the CLI is generated from the docstring: every parameter must be documented
    doc = inspect.getdoc(create_sample_data)
    for name in inspect.signature(create_sample_data).parameters:
        assert f"    {name} (" in doc
