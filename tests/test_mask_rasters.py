"""mask_rasters: outputs equal the input with a GDAL-rasterised reference mask applied."""
from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
import shapely
from osgeo import gdal, osr

from spectralmatch.errors import ParameterError, PathError, RasterError
from spectralmatch.kernels.masks import apply_keep_mask
from spectralmatch.mask.mask_rasters import mask_rasters

GT = (500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0)
WIDTH, HEIGHT = 61, 47
# Vertices away from pixel centres and edges: no ties between rasterisation rules.
POLY = shapely.Polygon(
    [(500023.3, 3999981.7), (500447.1, 3999957.2), (500571.9, 3999611.4), (500201.6, 3999553.8),
     (500063.2, 3999702.9)],
    holes=[[(500212.4, 3999881.3), (500351.7, 3999866.2), (500288.8, 3999735.6)]])
SMALL = shapely.box(500452.3, 3999701.1, 500587.7, 3999531.6)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WORLDVIEW = SHARED / "data" / "real" / "worldview"


def write_vector(path, geoms, fields=None, crs="EPSG:32610") -> str:
    fields = fields or {}
    pyogrio.raw.write(str(path), np.array(shapely.to_wkb(geoms), dtype=object),
                      field_data=[np.asarray(v, dtype=object) for v in fields.values()],
                      fields=list(fields), geometry_type="Unknown", crs=crs, driver="GPKG")
    return str(path)


def source_pixels(seed=1, dtype="uint16", bands=3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 1000, size=(bands, HEIGHT, WIDTH)).astype(dtype)
    data[:, :3, :5] = 0  # some nodata already present
    return data


def gdal_reference(vector_path, width=WIDTH, height=HEIGHT, gt=GT, all_touched=False,
                   where=None) -> np.ndarray:
    """gdal.Rasterize of the vector file onto the whole image grid: 1 inside, 0 outside."""
    ds = gdal.GetDriverByName("MEM").Create("", width, height, 1, gdal.GDT_Byte)
    ds.SetGeoTransform(gt)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32610)
    ds.SetSpatialRef(srs)
    gdal.Rasterize(ds, vector_path, burnValues=[1], allTouched=all_touched, where=where)
    return ds.GetRasterBand(1).ReadAsArray()


def read(path) -> tuple[np.ndarray, list]:
    ds = gdal.Open(str(path))
    nodata = [ds.GetRasterBand(i + 1).GetNoDataValue() for i in range(ds.RasterCount)]
    return ds.ReadAsArray(), nodata


@pytest.fixture
def image(make_raster):
    return make_raster("in/img.tif", source_pixels(), geotransform=GT, nodata=0, block=16)


@pytest.fixture
def vector(tmp_path):
    return write_vector(tmp_path / "mask.gpkg", [POLY, SMALL])


@pytest.mark.parametrize("all_touched", [False, True])
@pytest.mark.parametrize("mode", ["include", "exclude"])
def test_output_equals_gdal_rasterized_reference(tmp_path, image, vector, mode, all_touched):
    out = mask_rasters([image], str(tmp_path / "out" / "$_M.tif"), (mode, vector),
                       include_touched_pixels=all_touched)
    assert out == [str(tmp_path / "out" / "img_M.tif")]
    ref = gdal_reference(vector, all_touched=all_touched)
    keep = ref == 1 if mode == "include" else ref == 0
    assert 300 < keep.sum() < WIDTH * HEIGHT - 300  # a real mask, not all or nothing
    src = source_pixels()
    result, nodata = read(out[0])
    assert nodata == [0, 0, 0]
    np.testing.assert_array_equal(result, np.where(keep, src, 0))


def test_touched_pixels_add_the_boundary_ring(tmp_path, image, vector):
    centre = mask_rasters(image, str(tmp_path / "c_$.tif"), ("include", vector))[0]
    touched = mask_rasters(image, str(tmp_path / "t_$.tif"), ("include", vector),
                           include_touched_pixels=True)[0]
    kept_c = (read(centre)[0] != 0).any(0)
    kept_t = (read(touched)[0] != 0).any(0)
    assert np.all(kept_t >= kept_c)
    # every edge of the polygons crosses pixels whose centres lie outside: many more kept
    assert kept_t.sum() - kept_c.sum() > 100


@pytest.mark.parametrize("settings", [
    dict(window_size=7), dict(window_size=(13, 5)), dict(window_size="internal"),
    dict(window_size="whole"), dict(window_size=(9, 11), window_parallel_workers=("thread", 3)),
    dict(window_size=16, window_parallel_workers=("process", 2)),
])
def test_same_output_for_every_window_plan(tmp_path, image, vector, settings):
    for all_touched in (False, True):
        base = mask_rasters(image, str(tmp_path / f"b{all_touched}_$.tif"), ("include", vector),
                            include_touched_pixels=all_touched)[0]
        other = mask_rasters(image, str(tmp_path / f"o{all_touched}_$.tif"),
                             ("include", vector), include_touched_pixels=all_touched,
                             **settings)[0]
        np.testing.assert_array_equal(read(other)[0], read(base)[0])


def test_field_selects_each_images_features_and_image_parallel(tmp_path, make_raster):
    make_raster("in/scene_a.tif", source_pixels(1), geotransform=GT, nodata=0)
    make_raster("in/scene_b.tif", source_pixels(2), geotransform=GT, nodata=0)
    masks = write_vector(tmp_path / "by_image.gpkg", [POLY, SMALL],
                         {"image": ["scene_a", "scene_b"]})
    outs = mask_rasters(str(tmp_path / "in"), str(tmp_path / "out"),
                        ("include", masks, "image"), image_parallel_workers=("thread", 2))
    assert [os.path.basename(p) for p in outs] == ["scene_a_Clip.tif", "scene_b_Clip.tif"]
    for out, seed, where in zip(outs, (1, 2), ("image = 'scene_a'", "image = 'scene_b'"),
                                strict=True):
        keep = gdal_reference(masks, where=where) == 1
        np.testing.assert_array_equal(read(out)[0], np.where(keep, source_pixels(seed), 0))


def test_float_image_with_nan_nodata(tmp_path, make_raster, vector):
    src = source_pixels(dtype="float32")
    src[0, 10, 10] = np.nan
    path = make_raster("f.tif", src, geotransform=GT, nodata=float("nan"))
    out = mask_rasters(path, str(tmp_path / "$_x.tif"), ("exclude", vector), window_size=20)[0]
    result, nodata = read(out)
    assert all(np.isnan(v) for v in nodata)
    keep = gdal_reference(vector) == 0
    np.testing.assert_array_equal(result, np.where(keep, src, np.float32(np.nan)))


def test_custom_nodata_value_for_input_without_nodata(tmp_path, make_raster, vector):
    src = source_pixels(dtype="int16")
    path = make_raster("plain.tif", src, geotransform=GT, nodata=None)
    out = mask_rasters([path], str(tmp_path / "o" / "$.tif"), ("include", vector),
                       custom_nodata_value=-9999)[0]
    result, nodata = read(out)
    assert nodata == [-9999, -9999, -9999]
    keep = gdal_reference(vector) == 1
    np.testing.assert_array_equal(result, np.where(keep, src, -9999))


def test_input_without_nodata_is_an_error_before_any_output(tmp_path, make_raster, image,
                                                           vector):
    plain = make_raster("in/plain.tif", source_pixels(), geotransform=GT, nodata=None)
    with pytest.raises(RasterError, match=r"plain\.tif.*no nodata.*custom_nodata_value"):
        mask_rasters([image, plain], str(tmp_path / "out" / "$.tif"), ("include", vector))
    assert not (tmp_path / "out").exists()
    with pytest.raises(ParameterError, match="cannot be stored in uint16"):
        mask_rasters([plain], str(tmp_path / "out" / "$.tif"), ("include", vector),
                     custom_nodata_value=-1)
    assert not (tmp_path / "out").exists()


def test_missing_field_is_an_error_naming_the_available_fields(tmp_path, image):
    masks = write_vector(tmp_path / "m.gpkg", [POLY], {"image": ["img"], "kind": ["x"]})
    with pytest.raises(ParameterError, match=r"'name'.*available fields: 'image', 'kind'"):
        mask_rasters(image, str(tmp_path / "out" / "$.tif"), ("include", masks, "name"))
    assert not (tmp_path / "out").exists()
    with pytest.raises(ParameterError, match="does not exist"):
        mask_rasters(image, str(tmp_path / "out" / "$.tif"), ("include", tmp_path / "no.gpkg"))
    with pytest.raises(ParameterError, match="mode"):
        mask_rasters(image, str(tmp_path / "out" / "$.tif"), ("inside", masks))
    assert not (tmp_path / "out").exists()


def test_output_equal_to_input_is_refused(tmp_path, image, vector):
    before = Path(image).read_bytes()
    with pytest.raises(PathError, match="same file as input"):
        mask_rasters(image, [image], ("include", vector))
    assert Path(image).read_bytes() == before


def test_without_vector_mask_the_output_is_a_copy(tmp_path, image):
    out = mask_rasters(image, str(tmp_path / "copy"))[0]
    assert out == str(tmp_path / "copy" / "img_Clip.tif")
    result, nodata = read(out)
    np.testing.assert_array_equal(result, source_pixels())
    assert nodata == [0, 0, 0]
    ds = gdal.Open(out)
    assert ds.GetGeoTransform() == GT


def test_reprojected_vector_gives_the_same_mask(tmp_path, image, vector):
    src, dst = osr.SpatialReference(), osr.SpatialReference()
    src.ImportFromEPSG(32610)
    dst.ImportFromEPSG(4326)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(src, dst)
    geographic = shapely.transform(np.array([POLY, SMALL]),
                                   lambda xy: np.asarray(ct.TransformPoints(xy))[:, :2])
    lonlat = write_vector(tmp_path / "ll.gpkg", geographic, crs="EPSG:4326")
    a = mask_rasters(image, str(tmp_path / "a_$.tif"), ("include", vector))[0]
    b = mask_rasters(image, str(tmp_path / "b_$.tif"), ("include", lonlat))[0]
    np.testing.assert_array_equal(read(b)[0], read(a)[0])


def test_kernel_matches_numpy_for_every_dtype():
    rng = np.random.default_rng(3)
    keep = (rng.random((9, 11)) > 0.4).astype(np.uint8)
    for dtype, nodata in [("uint8", 255), ("int8", -128), ("uint16", 0), ("int16", -9999),
                          ("uint32", 7), ("int32", -1), ("int64", -(2 ** 40)),
                          ("uint64", 2 ** 64 - 1), ("float32", np.nan), ("float64", -1e300)]:
        data = rng.integers(0, 100, size=(2, 9, 11)).astype(dtype)
        expected = np.where(keep.astype(bool), data, np.array(nodata).astype(dtype))
        dropped = apply_keep_mask(data, keep, nodata)
        assert dropped == (keep == 0).sum()
        np.testing.assert_array_equal(data, expected)
    with pytest.raises(ValueError, match="cannot be stored"):
        apply_keep_mask(np.zeros((1, 2, 2), np.uint8), np.ones((2, 2), np.uint8), -1)
    with pytest.raises(ValueError, match="shape"):
        apply_keep_mask(np.zeros((1, 2, 2), np.uint8), np.ones((2, 3), np.uint8), 0)


@pytest.mark.skipif(not WORLDVIEW.is_dir(), reason="shared WorldView data not available")
def test_worldview_anchor_matches_original_clipped_output(tmp_path):
    """The original's Clipped output differs only on a few boundary pixels (rasterisation)."""
    aligned = sorted(glob.glob(str(WORLDVIEW / "original_outputs" / "Aligned" / "*_Aligned.tif")))
    masks = str(WORLDVIEW / "vectors" / "ImageMasks.gpkg")
    outs = mask_rasters(aligned, str(tmp_path / "$_Clipped.tif"), ("include", masks, "image"))
    assert len(outs) == len(aligned) >= 1
    meta, _, wkb, (names,) = pyogrio.raw.read(masks, columns=["image"])
    for out in outs:
        expected_path = WORLDVIEW / "original_outputs" / "Clipped" / os.path.basename(out)
        ours, nodata = read(out)
        theirs, their_nodata = read(expected_path)
        assert nodata == their_nodata == [-9999.0] * ours.shape[0]
        differ = (ours != theirs).any(axis=0)
        count, total = int(differ.sum()), differ.size
        print(f"\nWorldView anchor {os.path.basename(out)}: {count} of {total} pixels differ "
              f"({100 * count / total:.4f} %)")
        assert count < 0.001 * total
        # the masked area is substantial, so agreement is meaningful
        masked = (theirs == -9999).all(axis=0)
        assert 0.2 * total < masked.sum() < 0.8 * total
        # every differing pixel lies on the polygon boundary (centre within 1 pixel of it)
        name = os.path.basename(out)[: -len("_Clipped.tif")]
        polygon = shapely.from_wkb(wkb[list(names).index(name)])
        ds = gdal.Open(out)
        gt = ds.GetGeoTransform()
        rows, cols = np.nonzero(differ)
        centres = shapely.points(gt[0] + (cols + 0.5) * gt[1], gt[3] + (rows + 0.5) * gt[5])
        assert np.all(shapely.distance(polygon.boundary, centres) <= abs(gt[1]))
