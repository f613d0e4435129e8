"""Tests for align_rasters: target grids, values against gdalwarp, CRSs, nodata, validation."""
from __future__ import annotations

import glob
import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from spectralmatch.errors import ParameterError, PathError, RasterError
from spectralmatch.mosaic.align_rasters import align_rasters

gdal.UseExceptions()

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WORLDVIEW = SHARED / "data" / "real" / "worldview" / "original_outputs"
NODATA = -9999
needs_gdalwarp = pytest.mark.skipif(shutil.which("gdalwarp") is None,
                                    reason="the gdalwarp command is not installed")


def _read(path):
    ds = gdal.Open(str(path))
    return ds, ds.ReadAsArray()


def _grid(path):
    ds = gdal.Open(str(path))
    gt = ds.GetGeoTransform()
    return (gt[0], gt[3], gt[1], -gt[5]), (ds.RasterXSize, ds.RasterYSize)


@pytest.fixture
def pair(make_raster):
    """A: 50x40 px of 10 m at (1003, 2007); B: 20x25 px of 30x20 m at (1101, 1995); 2 bands."""
    rng = np.random.default_rng(7)
    a = rng.integers(0, 3000, (2, 40, 50)).astype(np.int16)
    a[:, 5:9, 10:14] = NODATA
    b = rng.integers(0, 3000, (2, 25, 20)).astype(np.int16)
    b[1, 0:3, 0:3] = NODATA  # band 2 only
    pa = make_raster("in/a.tif", a, geotransform=(1003, 10, 0, 2007, 0, -10), nodata=NODATA)
    pb = make_raster("in/b.tif", b, geotransform=(1101, 30, 0, 1995, 0, -20), nodata=NODATA)
    return pa, pb


# (origin x, origin y, pixel x, pixel y), (width, height) of A's and B's outputs, computed by
# hand: tap -> floor/ceil of bounds / pixel size; no tap -> own corner, ceil(extent / pixel).
EXPECTED_GRIDS = {
    ("highest", False): [((1003, 2007, 10, 10), (50, 40)), ((1101, 1995, 10, 10), (60, 50))],
    ("lowest", False): [((1003, 2007, 30, 20), (17, 20)), ((1101, 1995, 30, 20), (20, 25))],
    ("average", False): [((1003, 2007, 20, 15), (25, 27)), ((1101, 1995, 20, 15), (30, 34))],
    ("highest", True): [((1000, 2010, 10, 10), (51, 41)), ((1100, 2000, 10, 10), (61, 51))],
    ("lowest", True): [((990, 2020, 30, 20), (18, 21)), ((1080, 2000, 30, 20), (21, 26))],
    ("average", True): [((1000, 2010, 20, 15), (26, 27)), ((1100, 1995, 20, 15), (31, 34))],
}


@pytest.mark.parametrize("resolution,tap", sorted(EXPECTED_GRIDS))
def test_output_grids_match_hand_computed_values(pair, tmp_path, resolution, tap):
    outputs = align_rasters(list(pair), str(tmp_path / "out" / "$_Align.tif"),
                            resolution=resolution, tap=tap, resampling_method="nearest")
    assert [os.path.basename(p) for p in outputs] == ["a_Align.tif", "b_Align.tif"]
    expected = EXPECTED_GRIDS[(resolution, tap)]
    for path, (origin_res, size) in zip(outputs, expected, strict=True):
        got_origin_res, got_size = _grid(path)
        assert got_size == size
        np.testing.assert_allclose(got_origin_res, origin_res, rtol=0, atol=1e-9)


@needs_gdalwarp
@pytest.mark.parametrize("resolution", ["highest", "lowest"])
def test_tap_grid_equals_gdalwarp_tap(pair, tmp_path, resolution):
    outputs = align_rasters(list(pair), str(tmp_path / "out"), resolution=resolution, tap=True)
    (_, _, rx, ry), _ = EXPECTED_GRIDS[(resolution, True)][0]
    for src, ours in zip(pair, outputs, strict=True):
        # -te gives gdalwarp the input's true bounds: without it gdalwarp starts from its
        # square-pixel suggestion, which stretches B's (30 x 20 m pixels) extent.
        (x0, y0, sx, sy), (w, h) = _grid(src)
        ref = str(tmp_path / f"ref_{os.path.basename(src)}")
        subprocess.run(["gdalwarp", "-q", "-tap", "-tr", str(rx), str(ry), "-te", str(x0),
                        str(y0 - h * sy), str(x0 + w * sx), str(y0), src, ref], check=True)
        assert _grid(ours) == _grid(ref)


def _gdalwarp(src, dst, grid, method, scale, extra=()):
    (x0, y0, rx, ry), (w, h) = grid
    cmd = ["gdalwarp", "-q", "-overwrite", "-te", repr(x0), repr(y0 - h * ry), repr(x0 + w * rx),
           repr(y0), "-tr", repr(rx), repr(ry), "-r", method, "-et", "0",
           "-wo", f"XSCALE={scale[0]!r}", "-wo", f"YSCALE={scale[1]!r}",
           "-wo", "UNIFIED_SRC_NODATA=NO", "-srcnodata", str(NODATA), "-dstnodata", str(NODATA),
           *extra, src, dst]
    subprocess.run(cmd, check=True)
    return gdal.Open(dst).ReadAsArray()


@needs_gdalwarp
@pytest.mark.parametrize("resolution,method,other_res", [("highest", "bilinear", 7),
                                                        ("lowest", "cubic", 13)])
def test_values_equal_gdalwarp_and_do_not_depend_on_windows(make_raster, tmp_path, resolution,
                                                             method, other_res):
    # A smooth field plus noise, a nodata hole; B only sets the target resolution.
    yy, xx = np.mgrid[0:260, 0:300]
    rng = np.random.default_rng(3)
    field = 1000 + 3 * xx + 2 * yy + rng.normal(0, 40, (2, 260, 300))
    a = np.round(field).astype(np.int16)
    a[:, 100:130, 40:90] = NODATA
    src = make_raster("a.tif", a, geotransform=(500003, 10, 0, 4100007, 0, -10), nodata=NODATA)
    other = make_raster("b.tif", np.ones((2, 10, 10), np.int16),
                        geotransform=(500000, other_res, 0, 4100000, 0, -other_res),
                        nodata=NODATA)
    runs = {}
    for name, kwargs in {"w64": dict(window_size=64), "auto": {}, "whole": dict(window_size="whole"),
                         "threads": dict(window_size=(48, 32), window_parallel_workers=("thread", 2))
                         }.items():
        runs[name] = align_rasters([src, other], str(tmp_path / name / "$_Align.tif"),
                                   resolution=resolution, tap=True, resampling_method=method,
                                   **kwargs)[0]
    grid = _grid(runs["w64"])
    res = grid[0][2:]
    assert res == (other_res, other_res)  # up- or downsampling, never a plain shift
    scale = (10 / res[0], 10 / res[1])
    warped = _gdalwarp(src, str(tmp_path / "ref.tif"), grid, method, scale)
    # The valid footprint is nearest-neighbour's (see spectralmatch.mosaic._warp).
    near = _gdalwarp(src, str(tmp_path / "near.tif"), grid, "near", scale)
    expected = np.where(near == NODATA, NODATA, warped)
    _, out = _read(runs["w64"])
    assert out.shape == expected.shape
    assert grid[1][0] > 192 and grid[1][1] > 192  # several 64-pixel windows in each direction
    np.testing.assert_array_equal(out, expected)
    for name in ("auto", "whole", "threads"):
        np.testing.assert_array_equal(_read(runs[name])[1], out, err_msg=name)
    # Interpolation really happened (not a copy), and the hole stays nodata.
    assert (out != NODATA).sum() > 0.9 * out.size
    assert len(np.unique(out)) > 1000


def test_nearest_identity_grid_is_an_exact_copy_with_nodata_kept(pair, tmp_path):
    a_path = pair[0]
    out = align_rasters([a_path], [str(tmp_path / "a_copy.tif")], resampling_method="nearest")[0]
    ds, arr = _read(out)
    _, src = _read(a_path)
    np.testing.assert_array_equal(arr, src)
    assert ds.GetRasterBand(1).GetNoDataValue() == NODATA
    assert ds.GetRasterBand(1).DataType == gdal.GDT_Int16


def test_nodata_is_kept_per_band_with_bilinear(pair, tmp_path):
    # B's band-2-only nodata corner is upsampled 3x2: the 3x3 source pixels cover 9x6 target
    # pixels, which are nodata in band 2 only.
    alone = align_rasters([pair[1]], [str(tmp_path / "b.tif")], resolution="highest")[0]
    assert _grid(alone)[1] == (20, 25)  # B alone: the resolution is B's own
    out = align_rasters(list(pair), str(tmp_path / "both"), resolution="highest")[1]
    _, arr = _read(out)
    assert (arr[1, 0:6, 0:9] == NODATA).all()
    assert arr[1, 6, 9] != NODATA and arr[1, 0, 9] != NODATA and arr[1, 6, 0] != NODATA
    assert (arr[0, 0:6, 0:9] != NODATA).all()
    assert (arr[0] == NODATA).sum() == 0  # tap=False: B's grid covers only B, fully valid


@pytest.fixture
def capture_log(caplog):
    logger = logging.getLogger("spectralmatch")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="spectralmatch")
    yield caplog
    logger.removeHandler(caplog.handler)


def test_inputs_in_another_crs_are_reprojected_to_the_first(make_raster, tmp_path, capture_log):
    rng = np.random.default_rng(11)
    a = rng.integers(1, 1000, (1, 60, 80)).astype(np.int16)
    pa = make_raster("a.tif", a, geotransform=(560000, 10, 0, 4180000, 0, -10), nodata=NODATA)
    # B: geographic, pixel ~0.0001 deg (~8.9 m east-west, ~11 m north-south) near A
    b = np.arange(50 * 70, dtype=np.int16).reshape(1, 50, 70)
    pb = make_raster("b.tif", b, geotransform=(-122.31, 0.0001, 0, 37.77, 0, -0.0001),
                     crs="EPSG:4326", nodata=NODATA)
    probe = gdal.Warp("", pb, format="VRT", dstSRS="EPSG:32610")
    probe_res = probe.GetGeoTransform()[1]
    assert probe_res < 10  # B is finer, so it sets the "highest" resolution
    outputs = align_rasters([pa, pb], str(tmp_path / "out"), tap=True,
                            resampling_method="nearest")
    assert any("reprojected" in r.getMessage() and "b.tif" in r.getMessage()
               for r in capture_log.records)
    epsg = []
    for out in outputs:
        srs = osr.SpatialReference(wkt=gdal.Open(out).GetProjection())
        epsg.append(srs.GetAuthorityCode(None))
        (x0, y0, rx, ry), _ = _grid(out)
        assert rx == pytest.approx(probe_res, rel=1e-12) and ry == pytest.approx(probe_res, rel=1e-12)
        assert abs(x0 / rx - round(x0 / rx)) < 1e-6 and abs(y0 / ry - round(y0 / ry)) < 1e-6
    assert epsg == ["32610", "32610"]
    # B's values: exactly what GDAL's nearest warp to the same grid gives
    (x0, y0, rx, ry), (w, h) = _grid(outputs[1])
    ref = gdal.Warp("", pb, format="MEM", dstSRS="EPSG:32610", resampleAlg="near",
                    outputBounds=(x0, y0 - h * ry, x0 + w * rx, y0), xRes=rx, yRes=ry,
                    errorThreshold=0, srcNodata=NODATA, dstNodata=NODATA).ReadAsArray()
    got = _read(outputs[1])[1]
    np.testing.assert_array_equal(got, ref)
    valid = got[got != NODATA]
    assert valid.size > 0.5 * b.size and set(np.unique(valid)) <= set(np.unique(b))


def test_target_crs_keyword(pair, tmp_path):
    outputs = align_rasters([pair[0]], [str(tmp_path / "a.tif")], target_crs="EPSG:32611",
                            resampling_method="nearest")
    srs = osr.SpatialReference(wkt=gdal.Open(outputs[0]).GetProjection())
    assert srs.GetAuthorityCode(None) == "32611"
    with pytest.raises(ParameterError, match="target_crs"):
        align_rasters([pair[0]], [str(tmp_path / "x.tif")], target_crs="EPSG:not-a-code")


@pytest.mark.skipif(not WORLDVIEW.is_dir(), reason=f"shared WorldView data absent ({WORLDVIEW})")
def test_worldview_anchor_tap_lowest(tmp_path):
    src = WORLDVIEW / "LocalMatch" / "Worldview_2016-09-30_Global_Local.tif"
    ref_path = glob.glob(str(WORLDVIEW / "Aligned" / "*.tif"))[0]
    out = align_rasters([str(src)], str(tmp_path), tap=True, resolution="lowest")[0]
    assert os.path.basename(out) == "Worldview_2016-09-30_Global_Local_Align.tif"
    ref_ds, ref = _read(ref_path)
    ds, ours = _read(out)
    assert ds.GetGeoTransform() == pytest.approx(ref_ds.GetGeoTransform(), abs=1e-9)
    assert (ds.RasterXSize, ref_ds.RasterXSize) == (452, 452)
    # The original truncates int(452.99999999990) rows; gdalwarp -tap (and we) keep 453 rows so
    # the input's last 0.44 pixel row is covered. That row holds no valid pixel centre.
    assert (ds.RasterYSize, ref_ds.RasterYSize) == (453, 452)
    assert (ours[:, 452] == -9999).all()
    # Every pixel of the original's 452 x 452 x 8 output is reproduced exactly.
    np.testing.assert_array_equal(ours[:, :452], ref)


def test_parallel_settings_give_identical_outputs(pair, tmp_path):
    base = align_rasters(list(pair), str(tmp_path / "serial"), tap=True, window_size=16)
    for name, kwargs in {"img_proc": dict(image_parallel_workers=("process", "cpu")),
                         "win_proc": dict(window_parallel_workers=("process", 2)),
                         "img_thread": dict(image_parallel_workers=("thread", 2))}.items():
        other = align_rasters(list(pair), str(tmp_path / name), tap=True, window_size=16,
                              **kwargs)
        for a, b in zip(base, other, strict=True):
            np.testing.assert_array_equal(_read(a)[1], _read(b)[1], err_msg=name)


def test_progress_callback_and_cog(pair, tmp_path):
    calls = []
    out = align_rasters([pair[0]], [str(tmp_path / "a.tif")], save_as_cog=True, window_size=16,
                        progress=lambda f, msg: calls.append(f))[0]
    assert calls[0] == 0 and calls[-1] == 1.0 and len(calls) > 3
    ds = gdal.Open(out)
    assert ds.GetMetadataItem("LAYOUT", "IMAGE_STRUCTURE") == "COG"


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(resampling_method="bicubic"), ParameterError, "'bilinear'"),
    (dict(resolution="finest"), ParameterError, "'highest', 'average', 'lowest'"),
    (dict(window_size=0), ParameterError, "window_size"),
    (dict(image_parallel_workers=("gpu", 2)), ParameterError, "image_parallel_workers"),
    (dict(window_parallel_workers=("thread", 0)), ParameterError, "window_parallel_workers"),
    (dict(tap="yes"), ParameterError, "tap"),
])
def test_bad_parameters_fail_before_writing(pair, tmp_path, kwargs, error, match):
    out_dir = tmp_path / "out"
    with pytest.raises(error, match=match):
        align_rasters(list(pair), str(out_dir), **kwargs)
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_bad_inputs_fail_before_writing(pair, make_raster, tmp_path):
    three = make_raster("three.tif", np.ones((3, 5, 5), np.int16), nodata=NODATA)
    out_dir = tmp_path / "out"
    with pytest.raises(RasterError, match="3 bands"):
        align_rasters([pair[0], three], str(out_dir))
    with pytest.raises(PathError, match="same file as input"):
        align_rasters([pair[0], pair[1]], [str(tmp_path / "x.tif"), pair[1]])
    no_crs = make_raster("nocrs.tif", np.ones((2, 5, 5), np.int16), crs=None)
    with pytest.raises(RasterError, match="coordinate reference system"):
        align_rasters([pair[0], no_crs], str(out_dir))
    assert not out_dir.exists() or not any(out_dir.iterdir())
    assert not (tmp_path / "x.tif").exists()
