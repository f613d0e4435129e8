"""Tests for spectralmatch.io.writer: content, georeferencing, metadata, atomicity, COG."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from osgeo import gdal
from osgeo_utils.samples.validate_cloud_optimized_geotiff import validate

from spectralmatch.errors import ParameterError
from spectralmatch.io.raster import RasterInfo, same_crs
from spectralmatch.io.windows import Window, plan_windows
from spectralmatch.io.writer import (
    METADATA_PREFIX,
    OUTPUT_BLOCK_SIZE,
    RasterWriter,
    partial_path,
)

GT = (300000.0, 5.0, 0.0, 5000000.0, 0.0, -5.0)


def _read(path: str) -> np.ndarray:
    ds = gdal.Open(path)
    arr = ds.ReadAsArray()
    return arr[np.newaxis] if arr.ndim == 2 else arr


def _write_all(writer: RasterWriter, data: np.ndarray, window_size=(70, 33)) -> None:
    _, rows, cols = data.shape
    for w in plan_windows(cols, rows, window_size):
        rs, cs = w.slices()
        writer.write(w, data[:, rs, cs])


def _new_writer(path, data: np.ndarray, **kwargs) -> RasterWriter:
    bands, rows, cols = data.shape
    kwargs.setdefault("geotransform", GT)
    kwargs.setdefault("crs_wkt", "")
    return RasterWriter(str(path), width=cols, height=rows, band_count=bands,
                        dtype=data.dtype.name, **kwargs)


def _entries(folder) -> list[str]:
    return sorted(os.listdir(folder))


DTYPES_NODATA = [("uint8", 255), ("int8", -128), ("uint16", 0), ("int16", -32768),
                 ("uint32", 7), ("int32", -1), ("int64", -(2**40)), ("uint64", 2**63 + 10),
                 ("float32", float("nan")), ("float64", -9999.5)]


@pytest.mark.parametrize("save_as_cog", [False, True], ids=["gtiff", "cog"])
@pytest.mark.parametrize("dtype,nodata", DTYPES_NODATA, ids=[d for d, _ in DTYPES_NODATA])
def test_output_equals_written_arrays(tmp_path, dtype, nodata, save_as_cog) -> None:
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    rng = np.random.default_rng(0)
    if info is not None:
        lo, hi = max(info.min, -(2**62)), min(info.max, 2**62)
        data = rng.integers(lo, hi, (2, 101, 143), dtype=dtype)
    else:
        data = rng.normal(0, 1e3, (2, 101, 143)).astype(dtype)
    path = str(tmp_path / "out.tif")
    with _new_writer(path, data, nodata=nodata, save_as_cog=save_as_cog) as w:
        _write_all(w, data)
    got = _read(path)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, data)
    out = RasterInfo.from_path(path)
    assert out.dtype == dtype
    stored = out.nodata[0]
    assert (math.isnan(stored) and math.isnan(nodata)) or stored == nodata
    assert _entries(tmp_path) == ["out.tif"]


@pytest.mark.parametrize("save_as_cog", [False, True], ids=["gtiff", "cog"])
@pytest.mark.parametrize("dtype,nodata", [("uint16", 65535), ("int8", -5),
                                          ("float32", float("nan")), ("int64", -(2**40)),
                                          ("uint8", None)])
def test_unwritten_pixels_are_nodata(tmp_path, dtype, nodata, save_as_cog) -> None:
    data = np.full((2, 600, 700), 3, dtype=dtype)
    path = str(tmp_path / "part.tif")
    with _new_writer(path, data, nodata=nodata, save_as_cog=save_as_cog) as w:
        w.write(Window(100, 50, 20, 10), data[:, :10, :20])
    got = _read(path)
    expected = np.full(data.shape, 0 if nodata is None else nodata, dtype=dtype)
    expected[:, 50:60, 100:120] = 3
    np.testing.assert_array_equal(got, expected)


def test_georeferencing_nodata_and_band_descriptions_copied(tmp_path, make_raster) -> None:
    src = make_raster("src.tif", np.zeros((3, 40, 50), "uint16"), geotransform=GT,
                      crs="EPSG:32633", nodata=0, band_descriptions=["blue", "green", "red"])
    ds = gdal.Open(src, gdal.GA_Update)
    for i, ci in enumerate((gdal.GCI_BlueBand, gdal.GCI_GreenBand, gdal.GCI_RedBand)):
        ds.GetRasterBand(i + 1).SetColorInterpretation(ci)
    ds = None
    info = RasterInfo.from_path(src)
    data = np.arange(3 * 40 * 50, dtype="float32").reshape(3, 40, 50)
    out = str(tmp_path / "out.tif")
    with RasterWriter.like(info, out, dtype="float32", nodata=-1.0) as w:
        _write_all(w, data, 16)
    res = RasterInfo.from_path(out)
    assert res.geotransform == GT and res.dtype == "float32"
    assert same_crs(res.crs_wkt, info.crs_wkt) and res.crs_wkt
    assert res.nodata == (-1.0, -1.0, -1.0)
    assert res.band_descriptions == ("blue", "green", "red")
    assert res.color_interpretations == (gdal.GCI_BlueBand, gdal.GCI_GreenBand,
                                         gdal.GCI_RedBand)
    np.testing.assert_array_equal(_read(out), data)
    # Fewer bands, input dtype, explicit band order.
    out2 = str(tmp_path / "two.tif")
    with RasterWriter.like(info, out2, band_count=2) as w:
        w.write(Window(0, 0, 50, 40), np.ones((40, 50), "uint16") * 4, bands=[2])
        w.write(Window(0, 0, 50, 40), np.ones((1, 40, 50), "uint16") * 9, bands=[1])
    res2 = RasterInfo.from_path(out2)
    assert res2.band_count == 2 and res2.dtype == "uint16" and res2.nodata == (None, None)
    assert res2.band_descriptions == ("blue", "green")
    got = _read(out2)
    assert (got[0] == 9).all() and (got[1] == 4).all()


@pytest.mark.parametrize("save_as_cog", [False, True], ids=["gtiff", "cog"])
def test_metadata_items(tmp_path, save_as_cog) -> None:
    path = str(tmp_path / "m.tif")
    meta = {"function": "global_regression", "version": "2.0", "params": {"a": [1, 2]},
            "count": 3}
    data = np.zeros((1, 8, 8), "uint8")
    with _new_writer(path, data, metadata=meta, save_as_cog=save_as_cog) as w:
        w.write(Window(0, 0, 8, 8), data)
    items = gdal.Open(path).GetMetadata()
    assert items[METADATA_PREFIX + "FUNCTION"] == "global_regression"
    assert items["SPECTRALMATCH_VERSION"] == "2.0"
    assert json.loads(items["SPECTRALMATCH_PARAMS"]) == {"a": [1, 2]}
    assert json.loads(items["SPECTRALMATCH_COUNT"]) == 3


def test_default_output_is_tiled_and_deflate_compressed(tmp_path) -> None:
    y, x = np.mgrid[0:700, 0:600]
    data = np.stack([x + y, 3 * x]).astype("uint16")
    path = str(tmp_path / "t.tif")
    with _new_writer(path, data) as w:
        _write_all(w, data, None)
    ds = gdal.Open(path)
    structure = ds.GetMetadata("IMAGE_STRUCTURE")
    assert structure["COMPRESSION"] == "DEFLATE"
    assert structure["INTERLEAVE"] == "BAND"
    assert ds.GetRasterBand(1).GetBlockSize() == [OUTPUT_BLOCK_SIZE, OUTPUT_BLOCK_SIZE]
    assert os.path.getsize(path) < data.nbytes / 10     # compressed for real
    np.testing.assert_array_equal(_read(path), data)


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_cog_is_valid_and_has_overviews(tmp_path, dtype) -> None:
    y, x = np.mgrid[0:1100, 0:1300]
    data = np.stack([(x + y) % 1000, (x * 2) % 997]).astype(dtype)
    path = str(tmp_path / "c.tif")
    with _new_writer(path, data, nodata=0, save_as_cog=True) as w:
        _write_all(w, data, (512, 300))
    warnings, errors, _details = validate(path, full_check=True)
    assert errors == []
    ds = gdal.Open(path)
    assert ds.GetMetadata("IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    assert ds.GetMetadata("IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
    band = ds.GetRasterBand(1)
    assert band.GetOverviewCount() >= 1
    assert band.GetBlockSize() == [OUTPUT_BLOCK_SIZE, OUTPUT_BLOCK_SIZE]
    assert band.GetOverview(0).XSize == 650
    np.testing.assert_array_equal(_read(path), data)
    assert _entries(tmp_path) == ["c.tif"]        # no intermediate left behind


class Boom(Exception):
    pass


@pytest.mark.parametrize("save_as_cog", [False, True], ids=["gtiff", "cog"])
@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
def test_exception_leaves_no_final_and_no_temp_file(tmp_path, error, save_as_cog) -> None:
    data = np.ones((1, 64, 64), "uint16")
    path = str(tmp_path / "out.tif")
    with pytest.raises(error):
        with _new_writer(path, data, nodata=0, save_as_cog=save_as_cog) as w:
            w.write(Window(0, 0, 64, 32), data[:, :32])
            assert os.path.exists(partial_path(path, "partial-src" if save_as_cog else "partial"))
            raise error()
    assert _entries(tmp_path) == []


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
def test_existing_output_untouched_when_a_write_fails(tmp_path, make_raster, error) -> None:
    old = np.full((1, 30, 30), 42, "uint16")
    path = make_raster("out.tif", old)
    before = open(path, "rb").read()
    with pytest.raises(error):
        with _new_writer(path, np.zeros((1, 30, 30), "uint16")) as w:
            w.write(Window(0, 0, 30, 30), np.zeros((1, 30, 30), "uint16"))
            raise error()
    assert open(path, "rb").read() == before
    assert _entries(tmp_path) == ["out.tif"]
    # A successful write replaces it.
    with _new_writer(path, np.zeros((1, 30, 30), "uint16")) as w:
        w.write(Window(0, 0, 30, 30), np.full((1, 30, 30), 5, "uint16"))
    assert (_read(path) == 5).all()


def test_output_appears_only_on_commit(tmp_path) -> None:
    data = np.ones((1, 10, 10), "uint8")
    path = str(tmp_path / "late.tif")
    with _new_writer(path, data) as w:
        w.write(Window(0, 0, 10, 10), data)
        assert not os.path.exists(path)
        assert _entries(tmp_path) == [".late.partial.tif"]
    assert _entries(tmp_path) == ["late.tif"]


def test_failed_cog_conversion_cleans_up(tmp_path, monkeypatch) -> None:
    data = np.ones((1, 10, 10), "uint8")
    path = str(tmp_path / "x.tif")

    def failing_translate(*args, **kwargs):
        raise RuntimeError("simulated COG failure")

    monkeypatch.setattr(gdal, "Translate", failing_translate)
    with pytest.raises(RuntimeError, match="simulated"):
        with _new_writer(path, data, save_as_cog=True) as w:
            w.write(Window(0, 0, 10, 10), data)
    assert _entries(tmp_path) == []


def test_invalid_arguments(tmp_path) -> None:
    data = np.ones((1, 10, 10), "uint8")
    with pytest.raises(ParameterError, match="save_as_cog"):
        _new_writer(tmp_path / "a.tif", data, save_as_cog="yes")
    with pytest.raises(ParameterError, match="nodata.*uint8"):
        _new_writer(tmp_path / "a.tif", data, nodata=-1)
    assert _entries(tmp_path) == []
    with pytest.raises(ValueError, match="does not fit"):
        with _new_writer(tmp_path / "a.tif", data) as w:
            w.write(Window(0, 0, 5, 5), data)
    with pytest.raises(ValueError, match="dtype"):
        with _new_writer(tmp_path / "a.tif", data) as w:
            w.write(Window(0, 0, 10, 10), data.astype("int16"))
    assert _entries(tmp_path) == []


def test_partial_path_is_hidden_beside_the_target(tmp_path) -> None:
    target = str(tmp_path / "sub" / "img.tif")
    assert partial_path(target) == str(tmp_path / "sub" / ".img.partial.tif")
    assert partial_path(target, "partial-src") == str(tmp_path / "sub" / ".img.partial-src.tif")


def test_creates_missing_output_folder(tmp_path) -> None:
    path = tmp_path / "new" / "deeper" / "o.tif"
    data = np.full((1, 4, 4), 3, "uint8")
    with _new_writer(path, data) as w:
        w.write(Window(0, 0, 4, 4), data)
    np.testing.assert_array_equal(_read(str(path)), data)


def _write_in_child(path: str) -> str:
    import numpy as np

    from spectralmatch.io.windows import Window
    from spectralmatch.io.writer import RasterWriter

    with RasterWriter(path, width=1024, height=1024, band_count=1, dtype="int16",
                      geotransform=(0, 1, 0, 1024, 0, -1), crs_wkt="") as writer:
        writer.write(Window(0, 0, 1024, 1024),
                     np.random.default_rng(0).integers(0, 1000, (1, 1024, 1024), dtype=np.int16))
    return path


def test_forked_child_can_write_after_parent_used_gdal_threads(tmp_path):
    """GDAL's thread pool does not survive fork(); a forked child must not hang writing."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    _write_in_child(str(tmp_path / "parent.tif"))  # starts GDAL's compression threads here
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        result = pool.submit(_write_in_child, str(tmp_path / "child.tif")).result(timeout=60)
    assert os.path.getsize(result) > 0
