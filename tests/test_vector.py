"""Vector masks: validation, feature selection, reprojection and per-window rasterisation."""
from __future__ import annotations

import logging
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyogrio.raw
import pytest
import shapely
from osgeo import gdal, osr

from spectralmatch.errors import ParameterError
from spectralmatch.io.raster import RasterInfo
from spectralmatch.io.vector import VectorMask, load_vector_mask, validate_vector_mask
from spectralmatch.io.windows import Window, tile_windows

GT = (500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0)
WIDTH, HEIGHT = 40, 30

# Vertices away from pixel centres and edges so the reference rules have no ties.
TRIANGLE = shapely.Polygon([(500013.3, 3999987.1), (500377.7, 3999803.9),
                            (500091.1, 3999712.4)])
HOLED = shapely.Polygon(
    [(500021.7, 3999978.3), (500333.1, 3999961.2), (500352.4, 3999731.9), (500044.6, 3999744.7)],
    holes=[[(500102.3, 3999902.6), (500251.9, 3999893.8), (500187.2, 3999802.7)]])
BOX_A = shapely.box(500031.2, 3999811.6, 500118.7, 3999948.3)
BOX_B = shapely.box(500241.9, 3999723.4, 500366.6, 3999869.1)


def make_raster(folder, name, epsg=32610, gt=GT, width=WIDTH, height=HEIGHT) -> RasterInfo:
    path = str(folder / f"{name}.tif")
    ds = gdal.GetDriverByName("GTiff").Create(path, width, height, 1, gdal.GDT_Byte)
    ds.SetGeoTransform(gt)
    if epsg is not None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).Fill(7)
    ds.FlushCache()
    del ds
    return RasterInfo.from_path(path)


def write_vector(path, geoms, fields=None, crs="EPSG:32610") -> str:
    fields = fields or {}
    pyogrio.raw.write(str(path), np.array(shapely.to_wkb(geoms), dtype=object),
                      field_data=[np.asarray(v, dtype=object) for v in fields.values()],
                      fields=list(fields), geometry_type="Unknown", crs=crs, driver="GPKG")
    return str(path)


def centres() -> tuple[np.ndarray, np.ndarray]:
    cols, rows = np.meshgrid(np.arange(WIDTH) + 0.5, np.arange(HEIGHT) + 0.5)
    return GT[0] + cols * GT[1], GT[3] + rows * GT[5]


def centre_reference(geom) -> np.ndarray:
    """Pixels whose centre lies inside ``geom`` (hand-computed, independent of GDAL)."""
    x, y = centres()
    return shapely.contains_xy(geom, x, y).astype(np.uint8)


def touched_reference(geom) -> np.ndarray:
    """Pixels whose square shares area with ``geom``."""
    x, y = centres()
    boxes = shapely.box(x - 5, y - 5, x + 5, y + 5)
    return (shapely.area(shapely.intersection(boxes, geom)) > 0).astype(np.uint8)


def gdal_reference(vector_path, all_touched=False) -> np.ndarray:
    """gdal.Rasterize of the whole vector file onto the whole image grid."""
    ds = gdal.GetDriverByName("MEM").Create("", WIDTH, HEIGHT, 1, gdal.GDT_Byte)
    ds.SetGeoTransform(GT)
    gdal.Rasterize(ds, vector_path, burnValues=[1], allTouched=all_touched)
    return ds.GetRasterBand(1).ReadAsArray()


def stitched(mask: VectorMask, windows) -> np.ndarray:
    out = np.full((HEIGHT, WIDTH), 255, dtype=np.uint8)
    for w in windows:
        out[w.slices()] = mask.rasterize(w)
    return out


@pytest.fixture
def img1(tmp_path):
    return make_raster(tmp_path, "img1")


@pytest.mark.parametrize("geom", [TRIANGLE, HOLED], ids=["triangle", "holed"])
def test_include_and_exclude_match_pixel_centre_reference(tmp_path, img1, geom):
    path = write_vector(tmp_path / "m.gpkg", [geom])
    expected = centre_reference(geom)
    assert 50 < expected.sum() < WIDTH * HEIGHT - 50

    include = load_vector_mask(("include", path), img1).rasterize(img1.full_window)
    exclude = load_vector_mask(("exclude", path), img1).rasterize(img1.full_window)
    assert include.dtype == np.uint8 and include.shape == (HEIGHT, WIDTH)
    np.testing.assert_array_equal(include, expected)
    np.testing.assert_array_equal(exclude, 1 - expected)
    np.testing.assert_array_equal(include, gdal_reference(path))


@pytest.mark.parametrize("all_touched", [False, True])
@pytest.mark.parametrize("tile", [(7, 6), (5, 5), (40, 1), (1, 30)])
def test_windows_equal_slices_of_full_mask(tmp_path, img1, tile, all_touched):
    big = shapely.Polygon([(500003.3, 3999996.1), (500395.2, 3999990.7), (500391.8, 3999704.2),
                           (500200.1, 3999850.3), (500007.9, 3999706.6)])
    path = write_vector(tmp_path / "m.gpkg", [big, BOX_B])
    expected = gdal_reference(path, all_touched)
    for mode in ("include", "exclude"):
        mask = load_vector_mask((mode, path), img1, all_touched=all_touched)
        full = mask.rasterize(img1.full_window)
        np.testing.assert_array_equal(full, expected if mode == "include" else 1 - expected)
        np.testing.assert_array_equal(stitched(mask, tile_windows(WIDTH, HEIGHT, *tile)), full)


def test_windows_without_geometry_and_fully_covered(tmp_path, img1):
    path = write_vector(tmp_path / "m.gpkg", [BOX_A])
    mask = load_vector_mask(("include", path), img1)
    outside = Window(30, 0, 10, 5)  # far from BOX_A: no candidate geometry
    inside = Window(5, 7, 3, 4)  # pixels 5..7 x 7..10 lie within BOX_A
    np.testing.assert_array_equal(mask.rasterize(outside), np.zeros((5, 10)))
    np.testing.assert_array_equal(mask.rasterize(inside), np.ones((4, 3)))
    excl = load_vector_mask(("exclude", path), img1)
    np.testing.assert_array_equal(excl.rasterize(outside), np.ones((5, 10)))
    np.testing.assert_array_equal(excl.rasterize(inside), np.zeros((4, 3)))
    full = centre_reference(BOX_A)
    np.testing.assert_array_equal(full[inside.slices()], np.ones((4, 3)))


def test_all_touched_differs_from_centre_rule_on_diagonal_edge(tmp_path, img1):
    path = write_vector(tmp_path / "m.gpkg", [TRIANGLE])
    centre = load_vector_mask(("include", path), img1).rasterize(img1.full_window)
    touched = load_vector_mask(("include", path), img1, all_touched=True)
    assert touched.all_touched
    touched = touched.rasterize(img1.full_window)
    np.testing.assert_array_equal(touched, touched_reference(TRIANGLE))
    # every centre pixel is touched, and the diagonal edges add pixels
    assert np.all(touched >= centre)
    assert touched.sum() - centre.sum() >= 30
    excl = load_vector_mask(("exclude", path), img1, all_touched=True)
    np.testing.assert_array_equal(excl.rasterize(img1.full_window), 1 - touched)


@pytest.mark.parametrize("all_touched", [False, True])
def test_grid_aligned_vertices_give_the_same_mask_for_every_window_plan(tmp_path, img1,
                                                                         all_touched):
    # Vertices on pixel corners: the 45° edge passes exactly through pixel corners and
    # centres, the ties where GDAL's own ALL_TOUCHED depends on the window.
    corner = shapely.Polygon([(GT[0] + 2 * 10, GT[3] - 1 * 10), (GT[0] + 38 * 10, GT[3] - 1 * 10),
                              (GT[0] + 11 * 10, GT[3] - 28 * 10)])
    path = write_vector(tmp_path / "m.gpkg", [corner])
    mask = load_vector_mask(("include", path), img1, all_touched=all_touched)
    full = mask.rasterize(img1.full_window)
    if all_touched:  # exact rule: pixels sharing area with the polygon, corner touches excluded
        np.testing.assert_array_equal(full, touched_reference(corner))
    else:
        # centres exactly on the edge are GDAL's call; every other centre is unambiguous
        x, y = centres()
        clear = shapely.distance(corner.boundary, shapely.points(x, y)) > 1e-6
        assert (~clear).sum() >= 20
        np.testing.assert_array_equal(full[clear], centre_reference(corner)[clear])
    for tile in [(3, 3), (4, 7), (9, 5), (16, 16)]:
        np.testing.assert_array_equal(stitched(mask, tile_windows(WIDTH, HEIGHT, *tile)), full)


def test_mask_can_be_shared_by_threads(tmp_path, img1):
    path = write_vector(tmp_path / "m.gpkg", [HOLED, TRIANGLE])
    mask = load_vector_mask(("include", path), img1, all_touched=True)
    windows = tile_windows(WIDTH, HEIGHT, 4, 3) * 4
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(mask.rasterize, windows))
    for w, got in zip(windows, parallel, strict=True):
        np.testing.assert_array_equal(got, mask.rasterize(w))


def test_field_filter_exact_match_wins_over_substring(tmp_path):
    img1 = make_raster(tmp_path, "img1")
    img10 = make_raster(tmp_path, "img10")
    path = write_vector(tmp_path / "m.gpkg", [BOX_A, BOX_B], {"image": ["img1", "img10"]})
    np.testing.assert_array_equal(
        load_vector_mask(("include", path, "image"), img1).rasterize(img1.full_window),
        centre_reference(BOX_A))
    np.testing.assert_array_equal(
        load_vector_mask(("include", path, "image"), img10).rasterize(img10.full_window),
        centre_reference(BOX_B))


def test_field_filter_substring_fallback(tmp_path, caplog):
    img1 = make_raster(tmp_path, "img1")
    img10 = make_raster(tmp_path, "img10")
    path = write_vector(tmp_path / "m.gpkg", [BOX_A, BOX_B],
                        {"image": ["img1.tif", "img10.tif"]})
    with caplog.at_level(logging.DEBUG, logger="spectralmatch"):
        mask = load_vector_mask(("include", path, "image"), img1)
    assert "substring" in caplog.text and "img1" in caplog.text
    # Compatibility rule: "img1" is contained in both values.
    assert mask.geometry_count == 2
    np.testing.assert_array_equal(mask.rasterize(img1.full_window),
                                  centre_reference(BOX_A) | centre_reference(BOX_B))
    np.testing.assert_array_equal(
        load_vector_mask(("include", path, "image"), img10).rasterize(img10.full_window),
        centre_reference(BOX_B))


def test_field_values_that_are_not_text(tmp_path):
    info = make_raster(tmp_path, "2")
    path = write_vector(tmp_path / "m.gpkg", [BOX_A, BOX_B], {"n": np.array([2, 12])})
    mask = load_vector_mask(("include", path, "n"), info)
    np.testing.assert_array_equal(mask.rasterize(info.full_window), centre_reference(BOX_A))


@pytest.mark.parametrize("mode", ["include", "exclude"])
def test_filter_matching_nothing_warns_and_leaves_image_unmasked(tmp_path, caplog, mode):
    other = make_raster(tmp_path, "other_image")
    path = write_vector(tmp_path / "m.gpkg", [BOX_A, BOX_B], {"image": ["img1", "img10"]})
    with caplog.at_level(logging.WARNING, logger="spectralmatch"):
        assert load_vector_mask((mode, path, "image"), other) is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "other_image" in warnings[0].getMessage() and path in warnings[0].getMessage()


def test_include_mask_outside_image_warns_and_keeps_nothing(tmp_path, img1, caplog):
    far = shapely.box(600000, 3000000, 600100, 3000100)
    path = write_vector(tmp_path / "m.gpkg", [far])
    with caplog.at_level(logging.WARNING, logger="spectralmatch"):
        mask = load_vector_mask(("include", path), img1)
    assert "do not overlap" in caplog.text and "img1" in caplog.text
    assert mask.rasterize(img1.full_window).sum() == 0


def test_reprojection_from_geographic_crs(tmp_path, img1, caplog):
    utm, wgs = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(32610)
    wgs.ImportFromEPSG(4326)
    for srs in (utm, wgs):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_wgs = osr.CoordinateTransformation(utm, wgs)
    geographic = shapely.transform(
        HOLED, lambda xy: np.array(to_wgs.TransformPoints(xy))[:, :2])
    assert geographic.bounds[0] < -120  # really stored in degrees
    utm_path = write_vector(tmp_path / "utm.gpkg", [HOLED])
    wgs_path = write_vector(tmp_path / "wgs.gpkg", [geographic], crs="EPSG:4326")

    with caplog.at_level(logging.INFO, logger="spectralmatch"):
        reprojected = load_vector_mask(("include", wgs_path), img1).rasterize(img1.full_window)
    assert "reprojecting" in caplog.text
    expected = load_vector_mask(("include", utm_path), img1).rasterize(img1.full_window)
    assert expected.sum() > 200
    x, y = centres()
    near_edge = shapely.distance(HOLED.boundary, shapely.points(x, y)) < 10 * np.sqrt(2)
    differ = reprojected != expected
    assert not np.any(differ & ~near_edge)
    assert differ.sum() <= 3


def test_layer_without_crs_is_assumed_in_raster_crs(tmp_path, img1, caplog):
    with pytest.warns(UserWarning, match="crs"):  # pyogrio notes the missing CRS
        path = write_vector(tmp_path / "m.gpkg", [TRIANGLE], crs=None)
    with caplog.at_level(logging.WARNING, logger="spectralmatch"):
        mask = load_vector_mask(("include", path), img1)
    assert "no CRS" in caplog.text
    np.testing.assert_array_equal(mask.rasterize(img1.full_window), centre_reference(TRIANGLE))


def test_pickle_round_trip(tmp_path, img1):
    path = write_vector(tmp_path / "m.gpkg", [TRIANGLE, BOX_B])
    mask = load_vector_mask(("exclude", path), img1, all_touched=True)
    clone = pickle.loads(pickle.dumps(mask))
    assert (clone.mode, clone.image_name, clone.all_touched) == ("exclude", "img1", True)
    for w in (img1.full_window, Window(3, 4, 17, 9)):
        np.testing.assert_array_equal(clone.rasterize(w), mask.rasterize(w))


def test_validate_accepts_and_normalises(tmp_path):
    path = write_vector(tmp_path / "m.gpkg", [BOX_A], {"image": ["img1"]})
    assert validate_vector_mask(None) is None
    assert validate_vector_mask(("include", path)) == ("include", path, None)
    assert validate_vector_mask(["exclude", tmp_path / "m.gpkg", "image"]) == \
        ("exclude", path, "image")
    # OGR field names are case-insensitive; the file's spelling is returned.
    assert validate_vector_mask(("include", path, "IMAGE")) == ("include", path, "image")
    assert load_vector_mask(None, None) is None


def test_validate_errors(tmp_path):
    path = write_vector(tmp_path / "m.gpkg", [BOX_A], {"image": ["img1"], "date": ["x"]})
    with pytest.raises(ParameterError, match=r"mode 'keep'.*include.*exclude"):
        validate_vector_mask(("keep", path))
    with pytest.raises(ParameterError, match="vector_mask="):
        validate_vector_mask(path)
    with pytest.raises(ParameterError, match="vector_mask="):
        validate_vector_mask(("include", path, "image", "extra"))
    missing = str(tmp_path / "missing.gpkg")
    with pytest.raises(ParameterError, match="missing.gpkg' does not exist"):
        validate_vector_mask(("include", missing), parameter="my_mask")
    text = tmp_path / "notes.txt"
    text.write_bytes(b"\x00\x01 not a vector")
    with pytest.raises(ParameterError, match="cannot read .*notes.txt"):
        validate_vector_mask(("include", str(text)))
    with pytest.raises(ParameterError) as err:
        validate_vector_mask(("include", path, "name"))
    message = str(err.value)
    assert "'name'" in message and path in message
    assert "'image'" in message and "'date'" in message


def test_only_the_first_layer_is_used_with_a_warning(tmp_path, img1, caplog):
    path = str(tmp_path / "layers.gpkg")
    pyogrio.raw.write(path, np.array([shapely.to_wkb(BOX_A)], dtype=object), field_data=[],
                      fields=[], geometry_type="Polygon", crs="EPSG:32610", driver="GPKG",
                      layer="first")
    pyogrio.raw.write(path, np.array([shapely.to_wkb(BOX_B)], dtype=object), field_data=[],
                      fields=[], geometry_type="Polygon", crs="EPSG:32610", driver="GPKG",
                      layer="second", append=True)
    with caplog.at_level(logging.WARNING, logger="spectralmatch"):
        mask = load_vector_mask(("include", path), img1)
    assert "2 layers" in caplog.text and "'first'" in caplog.text
    np.testing.assert_array_equal(mask.rasterize(img1.full_window), centre_reference(BOX_A))
