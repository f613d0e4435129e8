"""Tests for spectralmatch.io.raster: RasterInfo, input validation, nodata/dtype rules, reads."""
from __future__ import annotations

import logging
import math
import multiprocessing
import sys
import threading

import numpy as np
import pytest
from osgeo import gdal, osr

from spectralmatch.errors import ParameterError, RasterError, SpectralMatchError
from spectralmatch.io import raster
from spectralmatch.io.raster import (
    RasterInfo,
    cached_dataset,
    check_nodata_fits,
    gdal_type,
    inspect_rasters,
    open_raster,
    read_window,
    release_cached_datasets,
    resolve_dtype,
    resolve_nodata,
    same_crs,
)
from spectralmatch.io.windows import Window

GT = (500000.0, 10.0, 0.0, 4200000.0, 0.0, -10.0)


def _wkt(crs: str) -> str:
    srs = osr.SpatialReference()
    srs.SetFromUserInput(crs)
    return srs.ExportToWkt()


def _data(bands=3, rows=20, cols=30, dtype="uint16", seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1000, (bands, rows, cols)).astype(dtype)


# --- RasterInfo --------------------------------------------------------------------------------

def test_raster_info_fields(make_raster) -> None:
    path = make_raster("scene_a.tif", _data(3, 20, 30), geotransform=GT, nodata=7,
                       block=(16, 16), band_descriptions=["blue", "green", "red"])
    info = RasterInfo.from_path(path)
    assert info.path == path and info.name == "scene_a"
    assert (info.width, info.height, info.band_count) == (30, 20, 3)
    assert info.dtype == "uint16" and info.itemsize == 2
    assert info.nodata == (7.0, 7.0, 7.0) and info.nodata_value == 7.0
    assert info.geotransform == GT
    assert same_crs(info.crs_wkt, _wkt("EPSG:32610"))
    assert info.block_size == (16, 16)
    assert info.band_descriptions == ("blue", "green", "red")
    assert info.resolution == (10.0, 10.0)
    assert info.bounds == (500000.0, 4199800.0, 500300.0, 4200000.0)
    assert info.full_window == Window(0, 0, 30, 20)
    assert info.has_geotransform and info.is_north_up
    # Window for ground bounds, clipped to the image.
    assert info.window_for_bounds((500015.0, 4199900.0, 500100.0, 4200100.0)) == Window(1, 0, 9, 10)
    assert info.window_for_bounds((0.0, 0.0, 1.0, 1.0)) is None


def test_raster_info_is_picklable_and_comparable(make_raster) -> None:
    import pickle
    info = RasterInfo.from_path(make_raster("a.tif", _data()))
    assert pickle.loads(pickle.dumps(info)) == info


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32",
                                   "int64", "uint64", "float32", "float64"])
def test_raster_info_dtype_round_trip(make_raster, dtype) -> None:
    arr = np.arange(-6, 6).reshape(1, 3, 4)
    if np.dtype(dtype).kind == "u":
        arr = arr + 6
    path = make_raster(f"{dtype}.tif", arr.astype(dtype))
    info = RasterInfo.from_path(path)
    assert info.dtype == dtype
    got = read_window(open_raster(path), info.full_window)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, arr.astype(dtype))


def test_int64_nodata_is_read(make_raster) -> None:
    path = make_raster("i64.tif", np.zeros((1, 2, 2), "int64"), nodata=-(2**40))
    assert RasterInfo.from_path(path).nodata == (-(2**40),)


def test_no_geotransform_is_reported(make_raster) -> None:
    info = RasterInfo.from_path(make_raster("plain.tif", _data(), geotransform=None, crs=None))
    assert not info.has_geotransform and info.crs_wkt == ""


# --- inspect_rasters ---------------------------------------------------------------------------

def test_inspect_rasters_accepts_a_compatible_set(make_raster) -> None:
    a = make_raster("a.tif", _data(), geotransform=GT, nodata=0)
    b = make_raster("b.tif", _data(seed=1), geotransform=(500100.0, 10.0, 0, 4200050.0, 0, -10.0),
                    nodata=0)
    infos = inspect_rasters([a, b], same_resolution=True)
    assert [i.name for i in infos] == ["a", "b"]
    assert inspect_rasters([]) == []


def test_missing_file(tmp_path, make_raster) -> None:
    a = make_raster("a.tif", _data())
    missing = str(tmp_path / "nope.tif")
    with pytest.raises(RasterError, match="nope.tif.*does not exist") as err:
        inspect_rasters([a, missing])
    assert "input_images" in str(err.value)
    with pytest.raises(RasterError, match="reference_images"):
        inspect_rasters([missing], parameter="reference_images")


def test_non_raster_file(tmp_path) -> None:
    bad = tmp_path / "notes.tif"
    bad.write_text("this is not a raster\n")
    with pytest.raises(RasterError, match="cannot open.*notes.tif"):
        inspect_rasters([str(bad)])


def test_no_geotransform(make_raster) -> None:
    a = make_raster("a.tif", _data())
    b = make_raster("b_nogt.tif", _data(), geotransform=None)
    with pytest.raises(RasterError, match="b_nogt.tif.*geotransform"):
        inspect_rasters([a, b])
    # Accepted when georeferencing is not required.
    assert len(inspect_rasters([b], require_georeferenced=False)) == 1


def test_no_crs(make_raster) -> None:
    a = make_raster("a.tif", _data())
    b = make_raster("b_nocrs.tif", _data(), crs=None)
    with pytest.raises(RasterError, match="b_nocrs.tif.*coordinate reference system"):
        inspect_rasters([a, b])


def test_rotated_geotransform(make_raster) -> None:
    b = make_raster("rot.tif", _data(), geotransform=(0, 1, 0.2, 20, 0.1, -1))
    with pytest.raises(RasterError, match="rot.tif.*rotated"):
        inspect_rasters([b])


def test_different_crs(make_raster) -> None:
    a = make_raster("a.tif", _data(), crs="EPSG:32610")
    b = make_raster("b_utm11.tif", _data(), crs="EPSG:32611")
    with pytest.raises(RasterError, match="b_utm11.tif.*different CRS.*a.tif"):
        inspect_rasters([a, b])
    assert len(inspect_rasters([a, b], same_crs_required=False)) == 2


def test_same_crs_written_differently(make_raster) -> None:
    a = make_raster("a.tif", _data(), crs="EPSG:4326")
    b = make_raster("b.tif", _data(), crs="+proj=longlat +datum=WGS84 +no_defs")
    assert len(inspect_rasters([a, b])) == 2


def test_different_band_count(make_raster) -> None:
    a = make_raster("a.tif", _data(3))
    b = make_raster("b_two.tif", _data(2))
    with pytest.raises(RasterError, match=r"b_two.tif.*2 bands.*a.tif.*3"):
        inspect_rasters([a, b])


def test_different_nodata(make_raster, tmp_path) -> None:
    a = make_raster("a.tif", _data(2), nodata=0)
    # GeoTIFF keeps one nodata per file: a VRT gives band 2 its own value.
    b = str(tmp_path / "b_nd.vrt")
    vrt = gdal.Translate(b, make_raster("b_src.tif", _data(2), nodata=0), format="VRT")
    vrt.GetRasterBand(2).SetNoDataValue(5)
    vrt = None
    assert RasterInfo.from_path(b).nodata == (0.0, 5.0)
    with pytest.raises(RasterError, match=r"band 2 of '.*b_nd.vrt' has nodata 5.0.*custom_nodata"):
        inspect_rasters([a, b])
    c = make_raster("c_none.tif", _data(2))
    with pytest.raises(RasterError, match="band 1.*c_none.tif.*nodata None"):
        inspect_rasters([a, c])
    assert len(inspect_rasters([a, b], same_nodata=False)) == 2


def test_nan_nodata_values_are_equal(make_raster) -> None:
    arr = np.ones((2, 4, 4), "float32")
    a = make_raster("a.tif", arr, nodata=float("nan"))
    b = make_raster("b.tif", arr, nodata=float("nan"))
    infos = inspect_rasters([a, b])
    assert all(math.isnan(v) for v in infos[1].nodata)
    c = make_raster("c.tif", arr, nodata=0.0)
    with pytest.raises(RasterError, match="c.tif"):
        inspect_rasters([a, c])


def test_different_resolution_only_when_requested(make_raster) -> None:
    a = make_raster("a.tif", _data(), geotransform=GT)
    b = make_raster("b_20m.tif", _data(), geotransform=(500000.0, 20.0, 0, 4200000.0, 0, -20.0))
    assert len(inspect_rasters([a, b])) == 2
    with pytest.raises(RasterError, match=r"b_20m.tif.*resolution \(20.0, 20.0\).*a.tif"):
        inspect_rasters([a, b], same_resolution=True)


def test_errors_are_value_errors(make_raster) -> None:
    # Users catching ValueError (the seed's behaviour) still catch every input problem.
    a = make_raster("a.tif", _data(3))
    b = make_raster("b.tif", _data(1))
    with pytest.raises(ValueError):
        inspect_rasters([a, b])
    assert issubclass(RasterError, SpectralMatchError)


def test_gdal_warnings_do_not_abort(tmp_path, capfd) -> None:
    # Two bands with PHOTOMETRIC=RGB: libtiff warns on every open ("Sum of Photometric
    # type-related color channels and ExtraSamples doesn't match SamplesPerPixel").
    path = str(tmp_path / "warns.tif")
    ds = gdal.GetDriverByName("GTiff").Create(path, 6, 4, 2, gdal.GDT_UInt16,
                                              options=["PHOTOMETRIC=RGB"])
    ds.SetGeoTransform(list(GT))
    ds.SetProjection(_wkt("EPSG:32610"))
    ds.WriteArray(np.arange(48, dtype="uint16").reshape(2, 4, 6))
    ds = None
    capfd.readouterr()
    messages = []
    gdal.PushErrorHandler(lambda cls, no, msg: messages.append((cls, msg)))
    try:
        infos = inspect_rasters([path, path])
        arr = read_window(open_raster(path), Window(1, 1, 3, 2))
    finally:
        gdal.PopErrorHandler()
    assert any(cls == gdal.CE_Warning and "ExtraSamples" in msg for cls, msg in messages)
    assert infos[0].band_count == 2
    np.testing.assert_array_equal(arr, np.arange(48).reshape(2, 4, 6)[:, 1:3, 1:4])


# --- resolve_nodata / resolve_dtype / check_nodata_fits ---------------------------------------

def test_resolve_nodata(make_raster, caplog) -> None:
    with_nd = [RasterInfo.from_path(make_raster("a.tif", _data(), nodata=0))]
    without = [RasterInfo.from_path(make_raster("b.tif", _data()))]
    caplog.set_level(logging.WARNING, logger="spectralmatch")
    assert resolve_nodata(with_nd, None) == 0.0
    assert not caplog.records
    assert resolve_nodata(with_nd, 0) == 0.0
    assert not caplog.records                      # same value: no warning
    assert resolve_nodata(with_nd, -9999) == -9999.0
    assert len(caplog.records) == 1 and "overrides" in caplog.text and "a.tif" in caplog.text
    caplog.clear()
    assert resolve_nodata(without, None) is None
    assert len(caplog.records) == 1 and "No nodata" in caplog.text and "b.tif" in caplog.text
    caplog.clear()
    assert resolve_nodata(without, 5) == 5.0
    assert not caplog.records
    assert math.isnan(resolve_nodata(with_nd, float("nan")))
    for bad in ("0", True, [0], None.__class__):
        with pytest.raises(ParameterError, match="custom_nodata_value"):
            resolve_nodata(with_nd, bad)


def test_resolve_dtype(make_raster) -> None:
    infos = [RasterInfo.from_path(make_raster("a.tif", _data(dtype="int16")))]
    assert resolve_dtype(infos, None) == "int16"
    for name in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "uint64",
                 "float32", "float64"):
        assert resolve_dtype(infos, name) == name
    assert resolve_dtype(infos, np.float32) == "float32"
    assert resolve_dtype(infos, "f8") == "float64"
    for bad in ("float16", "complex64", "bogus", "int3", True, 12.5, "bool"):
        with pytest.raises(ParameterError, match="output_dtype"):
            resolve_dtype(infos, bad)
    with pytest.raises(ParameterError, match="dtype_x"):
        resolve_dtype(infos, "bogus", parameter="dtype_x")


@pytest.mark.parametrize("nodata,dtype", [
    (None, "uint8"), (0, "uint8"), (255, "uint8"), (-128, "int8"), (65535.0, "uint16"),
    (-(2**63), "int64"), (2**64 - 1, "uint64"), (float("nan"), "float32"),
    (float("-inf"), "float32"), (-3.4e38, "float32"), (1e300, "float64"), (0.5, "float32"),
])
def test_check_nodata_fits_accepts(nodata, dtype) -> None:
    check_nodata_fits(nodata, dtype)


@pytest.mark.parametrize("nodata,dtype", [
    (256, "uint8"), (-1, "uint8"), (128, "int8"), (1.5, "int16"), (float("nan"), "uint16"),
    (float("inf"), "int32"), (float("-inf"), "uint8"), (2**64, "uint64"), (1e40, "float32"),
])
def test_check_nodata_fits_rejects(nodata, dtype) -> None:
    with pytest.raises(ParameterError, match=f"custom_nodata_value.*{dtype}"):
        check_nodata_fits(nodata, dtype)


def test_gdal_type() -> None:
    assert gdal_type("uint16") == gdal.GDT_UInt16
    assert gdal_type(np.float32) == gdal.GDT_Float32
    with pytest.raises(ParameterError, match="float16"):
        gdal_type("float16")


# --- reading -----------------------------------------------------------------------------------

@pytest.mark.parametrize("block", [None, (16, 16), (45, 1)])
def test_read_window_equals_numpy_slice(make_raster, block) -> None:
    data = _data(3, 37, 45, dtype="int16", seed=3)
    path = make_raster("r.tif", data, block=block)
    ds = open_raster(path)
    for window in (Window(0, 0, 45, 37), Window(3, 5, 20, 17), Window(44, 36, 1, 1)):
        rs, cs = window.slices()
        np.testing.assert_array_equal(read_window(ds, window), data[:, rs, cs])
        np.testing.assert_array_equal(read_window(ds, window, bands=[3, 1]),
                                      data[[2, 0], rs, cs])
        single = read_window(ds, window, bands=[2])
        assert single.shape == (1, window.height, window.width)
        np.testing.assert_array_equal(single[0], data[1, rs, cs])


def test_read_window_single_band_file_is_3d(make_raster) -> None:
    data = _data(1, 5, 6)
    ds = open_raster(make_raster("one.tif", data))
    got = read_window(ds, Window(1, 1, 4, 3))
    assert got.shape == (1, 3, 4)
    np.testing.assert_array_equal(got, data[:, 1:4, 1:5])


def test_cached_dataset_reuses_per_thread(make_raster) -> None:
    path = make_raster("c.tif", _data())
    release_cached_datasets()
    first = cached_dataset(path)
    assert cached_dataset(path) is first
    other = {}

    def in_thread() -> None:
        ds = cached_dataset(path)
        other["same_in_thread"] = cached_dataset(path) is ds
        other["ds"] = ds

    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    assert other["same_in_thread"] and other["ds"] is not first
    np.testing.assert_array_equal(read_window(other["ds"], Window(0, 0, 30, 20)), _data())
    release_cached_datasets()
    assert cached_dataset(path) is not first
    release_cached_datasets()


def _inherited_cache_paths(_: int) -> list[str]:
    return sorted(getattr(raster._local, "datasets", {}))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork start method")
def test_forked_workers_do_not_reuse_parent_handles(make_raster) -> None:
    # Inherited handles share their file offset with the parent: a fork must start empty.
    path = make_raster("f.tif", _data())
    cached_dataset(path)
    try:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(1) as pool:
            assert pool.map(_inherited_cache_paths, [0]) == [[]]
        assert _inherited_cache_paths(0) == [path]      # the parent keeps its own
    finally:
        release_cached_datasets()


def test_open_raster_update_and_errors(make_raster, tmp_path) -> None:
    path = make_raster("u.tif", _data())
    ds = open_raster(path, update=True)
    ds.GetRasterBand(1).SetDescription("edited")
    ds = None
    assert RasterInfo.from_path(path).band_descriptions[0] == "edited"
    with pytest.raises(RasterError, match="my_param"):
        open_raster(str(tmp_path / "missing.tif"), parameter="my_param")


def test_cached_dataset_reopens_a_replaced_file(tmp_path, make_raster):
    import os

    import numpy as np

    from spectralmatch.io.raster import cached_dataset

    path = make_raster(tmp_path / "a.tif", np.full((1, 4, 4), 1, np.uint16))
    assert cached_dataset(path).ReadAsArray().max() == 1
    other = make_raster(tmp_path / "b.tif", np.full((1, 4, 4), 9, np.uint16))
    os.replace(other, path)
    assert cached_dataset(path).ReadAsArray().max() == 9
