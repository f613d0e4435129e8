"""Tests of voronoi_center_seamline: valid-pixel kernel, footprints (EMPs), the partition of the
union of footprints (no gaps, no double coverage, each region inside its own footprint), seam
positions, determinism, output format, debug layers and errors before any output."""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pyogrio
import pyogrio.raw
import pytest
import shapely
from osgeo import gdal

from spectralmatch.errors import ParameterError, PathError, RasterError, SpectralMatchError
from spectralmatch.io.raster import RasterInfo
from spectralmatch.kernels.masks import valid_mask
from spectralmatch.sample_data import generate_mosaic
from spectralmatch.seamline._footprints import footprint_decimation, image_footprint
from spectralmatch.seamline._partition import _fill_gaps, partition_footprints, sample_boundary
from spectralmatch.seamline.voronoi_center_seamline import voronoi_center_seamline

gdal.UseExceptions()

WORLDVIEW = "/work/shared/data/real/worldview/inputs/Worldview_2016-09-30.tif"
if not os.path.exists(WORLDVIEW):
    WORLDVIEW = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "real",
                             "worldview", "inputs", "Worldview_2016-09-30.tif")


# --------------------------------------------------------------------------------- helpers

def reference_footprint(path: str) -> shapely.Geometry:
    """Union of the valid pixels (any band) as boxes, built without GDAL's Polygonize."""
    ds = gdal.Open(path)
    data = ds.ReadAsArray()
    data = data[np.newaxis] if data.ndim == 2 else data
    valid = np.zeros(data.shape[1:], dtype=bool)
    for b in range(data.shape[0]):
        nd = ds.GetRasterBand(b + 1).GetNoDataValue()
        band = data[b].astype(np.float64)
        valid |= np.isfinite(band) & ((band != nd) if nd is not None else True)
    x0, px, _, y0, _, py = ds.GetGeoTransform()
    boxes = []
    for r in range(valid.shape[0]):
        row = np.concatenate([[False], valid[r], [False]]).astype(np.int8)
        starts = np.flatnonzero(np.diff(row) == 1)
        ends = np.flatnonzero(np.diff(row) == -1)
        for c0, c1 in zip(starts, ends, strict=True):
            boxes.append(shapely.box(x0 + c0 * px, y0 + (r + 1) * py, x0 + c1 * px, y0 + r * py))
    return shapely.union_all(boxes)


def read_seamlines(path: str, field: str = "image") -> tuple[list[str], list[shapely.Geometry],
                                                              dict]:
    meta, _, wkb, values = pyogrio.raw.read(path, layer="seamlines")
    names = list(values[meta["fields"].tolist().index(field)])
    return names, list(shapely.from_wkb(wkb)), meta


def assert_partition(pieces, footprints) -> None:
    """Sum of areas = union area, no pairwise overlap, each piece inside its footprint."""
    union = shapely.union_all(footprints).area
    assert sum(p.area for p in pieces) == pytest.approx(union, rel=1e-9)
    assert shapely.union_all(pieces).area == pytest.approx(union, rel=1e-9)
    for i in range(len(pieces)):
        assert shapely.difference(pieces[i], footprints[i]).area < 1e-9 * union
        for j in range(i + 1, len(pieces)):
            assert shapely.intersection(pieces[i], pieces[j]).area < 1e-9 * union


def stack(valid: np.ndarray, bands: int = 2, value: int = 100) -> np.ndarray:
    """uint16 bands: ``value`` where ``valid`` else nodata 0."""
    return np.repeat(np.where(valid, value, 0).astype(np.uint16)[np.newaxis], bands, axis=0)


def rect_image(make_raster, name, cols, rows, x0, y0, *, valid=None, bands=2, **kw) -> str:
    valid = np.ones((rows, cols), bool) if valid is None else valid
    return make_raster(name, stack(valid, bands), geotransform=(x0, 1.0, 0, y0, 0, -1.0),
                       nodata=0, **kw)


def seam_between(pieces, i, j) -> shapely.Geometry:
    return shapely.intersection(shapely.boundary(pieces[i]), shapely.boundary(pieces[j]))


# --------------------------------------------------------------------------------- kernel

@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "int32", "float32", "float64"])
def test_valid_mask_matches_numpy(dtype):
    rng = np.random.default_rng(3)
    data = rng.integers(0, 4, size=(3, 17, 23)).astype(dtype)
    if data.dtype.kind == "f":
        data[0, 1, 1] = np.nan
        data[1, 2, 2] = np.inf
        data[:, 3, 3] = np.nan
    finite = np.isfinite(data.astype(np.float64))
    per_band = finite & (data != 0)
    np.testing.assert_array_equal(valid_mask(data, 0), per_band.any(axis=0))
    np.testing.assert_array_equal(valid_mask(data, 0, require_all_bands=True),
                                  per_band.all(axis=0))
    np.testing.assert_array_equal(valid_mask(data, None), finite.any(axis=0))
    # Per-band nodata values: band k uses k.
    per_band_k = finite & (data != np.arange(3)[:, None, None].astype(dtype))
    np.testing.assert_array_equal(valid_mask(data, [0, 1, 2]), per_band_k.any(axis=0))
    np.testing.assert_array_equal(valid_mask(data, [0, 1, 2], require_all_bands=True),
                                  per_band_k.all(axis=0))


def test_valid_mask_nan_nodata_and_single_band():
    data = np.array([[1.0, np.nan], [0.0, -np.inf]], dtype=np.float32)
    np.testing.assert_array_equal(valid_mask(data, float("nan")), [[1, 0], [1, 0]])
    with pytest.raises(ValueError):
        valid_mask(data, 0, out=np.zeros((3, 3), np.uint8))


def test_sample_boundary_spacing():
    line = shapely.LineString([(0, 0), (10, 0), (10, 5)])
    pts = sample_boundary(line, 4.0)
    steps = np.hypot(*np.diff(pts, axis=0).T)
    assert pts[0].tolist() == [0, 0] and pts[-1].tolist() == [10, 5]
    assert len(pts) == 5 and steps.max() <= 4.0 + 1e-12  # ceil(15 / 4) = 4 intervals
    assert sum(np.diff(pts, axis=0)[:, 0]) == pytest.approx(10)


# --------------------------------------------------------------------------------- footprints

def test_footprint_equals_valid_pixels_with_holes_and_islands(make_raster):
    valid = np.zeros((40, 50), bool)
    valid[2:30, 3:45] = True
    valid[10:14, 10:20] = False  # hole
    valid[33:38, 5:9] = True  # separate island
    valid[35, 30] = True  # single pixel
    valid[5, 44] = False  # notch on the edge
    path = make_raster("a.tif", stack(valid), geotransform=(100.0, 2.0, 0, 500.0, 0, -2.0),
                       nodata=0)
    fp = image_footprint(RasterInfo.from_path(path))
    assert fp.geom_type == "MultiPolygon" and fp.is_valid
    assert fp.area == pytest.approx(valid.sum() * 4.0)
    assert shapely.symmetric_difference(fp, reference_footprint(path)).area == pytest.approx(0)
    assert len(shapely.get_parts(fp)) == 3
    assert sum(shapely.get_num_interior_rings(shapely.get_parts(fp))) == 1


def test_footprint_any_or_all_bands(make_raster):
    data = np.full((2, 10, 10), 7, np.int16)
    data[0, :, :3] = -1  # band 1 nodata on the left, band 2 valid
    data[:, :, 8:] = -1  # both nodata on the right
    path = make_raster("b.tif", data, nodata=-1)
    info = RasterInfo.from_path(path)
    assert image_footprint(info).area == pytest.approx(80)
    assert image_footprint(info, require_all_bands=True).area == pytest.approx(50)


def test_footprint_decimation_is_conservative(make_raster):
    rng = np.random.default_rng(5)
    valid = np.ones((31, 29), bool)
    valid[rng.random(valid.shape) < 0.03] = False
    valid[:, :4] = False
    path = make_raster("c.tif", stack(valid), nodata=0)
    info = RasterInfo.from_path(path)
    k = 3
    coarse = image_footprint(info, decimation=k)
    # Hand count: a k x k cell counts when all its pixels inside the image are valid.
    expected = 0.0
    for r in range(0, 31, k):
        for c in range(0, 29, k):
            block = valid[r:r + k, c:c + k]
            if block.all():
                expected += block.size
    assert coarse.area == pytest.approx(expected)
    assert shapely.difference(coarse, reference_footprint(path)).area == pytest.approx(0)


def test_automatic_decimation_bounds_the_mask(make_raster, tmp_path):
    info = RasterInfo.from_path(rect_image(make_raster, "d.tif", 8, 8, 0.0, 8.0))
    assert footprint_decimation(info, None) == 1
    big = dataclasses.replace(info, width=40_000, height=30_000)
    k = footprint_decimation(big, None)
    assert k == 5  # ceil(sqrt(1.2e9 / 2**26)) = ceil(4.23)
    assert (40_000 / k) * (30_000 / k) <= 2**26
    assert footprint_decimation(big, 3) == 3


def test_decimated_footprints_never_claim_nodata(make_raster, tmp_path):
    rng = np.random.default_rng(8)
    paths = []
    for k, x0 in enumerate((0.0, 25.0)):
        valid = np.ones((40, 41), bool)
        valid[:rng.integers(1, 5), :] = False
        valid[:, -rng.integers(1, 5):] = False
        valid[rng.random((40, 41)) < 0.01] = False
        paths.append(rect_image(make_raster, f"dec{k}.tif", 41, 40, x0, 40.0, valid=valid))
    out = voronoi_center_seamline(paths, str(tmp_path / "dec.gpkg"), footprint_decimation=3,
                                  min_point_spacing=1)
    _, pieces, _ = read_seamlines(out)
    coarse = [image_footprint(RasterInfo.from_path(p), decimation=3) for p in paths]
    assert_partition(pieces, coarse)
    for piece, path in zip(pieces, paths, strict=True):
        assert shapely.difference(piece, reference_footprint(path)).area < 1e-9


# --------------------------------------------------------------------------------- partition

def test_partition_two_boxes_and_2x2_exact_centres():
    two = partition_footprints([shapely.box(0, 0, 100, 100), shapely.box(60, 0, 160, 100)], 1.0)
    assert two.pieces[0].bounds == pytest.approx((0, 0, 80, 100))
    assert two.pieces[1].bounds == pytest.approx((80, 0, 160, 100))
    boxes = [shapely.box(0, 0, 256, 256), shapely.box(192, 0, 448, 256),
             shapely.box(0, 192, 256, 448), shapely.box(192, 192, 448, 448)]
    four = partition_footprints(boxes, 4.0)
    assert_partition(four.pieces, boxes)
    # Seams on the centre lines x = 224 and y = 224 of the 64-unit overlaps.
    assert four.pieces[0].bounds == pytest.approx((0, 0, 224, 224))
    assert four.pieces[3].bounds == pytest.approx((224, 224, 448, 448))


CONCAVE_CASES = {
    "L_shape": [shapely.Polygon([(0, 0), (100, 0), (100, 40), (40, 40), (40, 100), (0, 100)]),
                shapely.box(20, 20, 80, 80)],
    "U_shape_two_overlaps": [shapely.Polygon([(0, 0), (100, 0), (100, 100), (70, 100), (70, 30),
                                              (30, 30), (30, 100), (0, 100)]),
                             shapely.box(-10, 60, 110, 90)],
    "three_way": [shapely.box(0, 0, 100, 100), shapely.box(50, 0, 150, 100),
                  shapely.box(25, 50, 125, 150)],
    "crossing_bars": [shapely.box(0, 40, 100, 60), shapely.box(40, 0, 60, 100),
                      shapely.Point(50, 50).buffer(30)],
    "holes_and_islands": [shapely.box(0, 0, 100, 100).difference(shapely.box(40, 40, 60, 60))
                          .union(shapely.box(120, 0, 130, 10)),
                          shapely.box(30, 30, 140, 70)],
}


@pytest.mark.parametrize("case", sorted(CONCAVE_CASES))
def test_partition_difficult_geometries(case):
    fps = CONCAVE_CASES[case]
    result = partition_footprints(fps, 1.0)
    assert_partition(result.pieces, fps)
    assert all(p.geom_type == "MultiPolygon" and p.is_valid for p in result.pieces)


def test_partition_u_shape_seams_in_both_overlaps():
    u_shape, bar = CONCAVE_CASES["U_shape_two_overlaps"]
    pieces = partition_footprints([u_shape, bar], 1.0).pieces
    # Each arm overlap (x in [0, 30] and [70, 100], y in [60, 90]) is shared by both images:
    # the U keeps the part nearer to its own area below (y < 60), the bar the part near its top.
    for x0, x1 in ((0, 30), (70, 100)):
        arm = shapely.box(x0, 60, x1, 90)
        assert 0 < shapely.intersection(pieces[0], arm).area < arm.area
        assert 0 < shapely.intersection(pieces[1], arm).area < arm.area


def test_partition_random_configurations():
    rng = np.random.default_rng(11)
    for _ in range(12):
        fps = []
        for _ in range(rng.integers(2, 6)):
            cx, cy = rng.uniform(0, 100, 2)
            w, h = rng.uniform(20, 60, 2)
            shape = shapely.affinity.rotate(shapely.box(cx - w, cy - h, cx + w, cy + h),
                                            rng.uniform(0, 90))
            if rng.random() < 0.4:  # a notch makes it concave
                shape = shape.difference(shapely.box(cx, cy, cx + w, cy + h))
            fps.append(shape)
        result = partition_footprints(fps, 2.0)
        assert_partition(result.pieces, fps)


def test_partition_identical_and_contained_footprints():
    a = shapely.box(0, 0, 10, 10)
    result = partition_footprints([a, a, shapely.box(5, 0, 15, 10)], 0.5)
    # Of two equal footprints the earlier competes; the seam with the third is at x = 7.5.
    assert [p.area for p in result.pieces] == pytest.approx([75, 0, 75])
    inner = partition_footprints([a, shapely.box(2, 2, 4, 4)], 0.5)
    assert [p.area for p in inner.pieces] == pytest.approx([100, 0])


def test_partition_small_holes_do_not_steer_seams():
    a = shapely.box(0, 0, 100, 100).difference(shapely.box(70, 40, 71, 41))  # 1-unit hole
    b = shapely.box(60, 0, 160, 100)
    plain = partition_footprints([a, b], 1.0)
    filled = partition_footprints([a, b], 1.0, hole_area=10.0)
    for result in (plain, filled):
        assert_partition(result.pieces, [a, b])
        # The hole (no data in a) always goes to b.
        assert result.pieces[1].contains(shapely.Point(70.5, 40.5))
    # Ignored for seam planning, the hole leaves the straight seam x = 80 untouched; as an own
    # area of b it pulls a bubble of b into a's side of the overlap.
    assert filled.pieces[1].area == pytest.approx(8000 + 1)
    assert plain.pieces[1].area > 8000 + 20


def test_fill_gaps_assigns_uncovered_parts_by_shared_boundary():
    fps = np.array([shapely.box(0, 0, 10, 10), shapely.box(5, 0, 15, 10)], dtype=object)
    # A hole in the partition at x in [4, 6]: shared boundary with piece 0 is 10 (x = 4), with
    # piece 1 also 10 (x = 6); the tie goes to the first image, which covers [4, 6] fully.
    pieces = [shapely.box(0, 0, 4, 10), shapely.box(6, 0, 15, 10)]
    out = _fill_gaps(pieces, fps, 150.0, 1e-9)
    assert [p.area for p in out] == pytest.approx([60, 90])
    # A gap of which only part is inside the longer-sharing image's footprint.
    pieces = [shapely.box(0, 0, 5, 10), shapely.box(5, 0, 15, 2).union(shapely.box(5, 2, 5.5, 10))]
    out = _fill_gaps(pieces, fps, 150.0, 1e-9)
    assert_partition(out, list(fps))
    assert out[1].area == pytest.approx(100)  # it shares the longer boundary (x = 5.5, y = 2)


def test_partition_simplification_keeps_partition():
    fps = [shapely.Point(0, 0).buffer(50, 64), shapely.Point(60, 10).buffer(45, 64),
           shapely.Point(20, 60).buffer(40, 64)]
    detailed = partition_footprints(fps, 1.0)
    simple = partition_footprints(fps, 1.0, simplify_tolerance=5.0)
    assert_partition(simple.pieces, fps)
    vertices = [sum(shapely.get_num_coordinates(r.pieces)) for r in (detailed, simple)]
    assert vertices[1] < vertices[0]


# --------------------------------------------------------------------------------- public API

def test_two_images_seam_in_overlap_centre_and_output_format(make_raster, tmp_path):
    a = rect_image(make_raster, "a.tif", 100, 80, 0.0, 80.0)
    b = rect_image(make_raster, "b.tif", 100, 80, 60.0, 80.0)
    out = str(tmp_path / "out" / "seams.gpkg")  # the folder is created
    assert voronoi_center_seamline([a, b], out, image_field_name="img") == out
    names, pieces, meta = read_seamlines(out, "img")
    assert names == ["a", "b"]
    assert meta["geometry_type"] == "MultiPolygon"
    assert "32610" in meta["crs"]
    assert pyogrio.list_layers(out).tolist() == [["seamlines", "MultiPolygon"]]
    assert_partition(pieces, [shapely.box(0, 0, 100, 80), shapely.box(60, 0, 160, 80)])
    # Overlap x in [60, 100]: the seam runs within 2 pixels of x = 80 over the full height.
    seam = seam_between(pieces, 0, 1)
    xs, ys = shapely.get_coordinates(seam).T
    assert np.abs(xs - 80).max() < 2
    assert seam.length == pytest.approx(80, rel=0.05)
    assert sorted(os.listdir(tmp_path / "out")) == ["seams.gpkg"]  # no temporary leftovers


@pytest.mark.parametrize("layout,offset_grid", [("2x2", False), ("3x1", True), ("1x3", False)])
def test_generated_layouts_with_collars_partition(tmp_path, layout, offset_grid):
    sample = generate_mosaic(str(tmp_path / "tiles"), layout=layout, tile_size=(96, 80),
                             bands=2, overlap=0.3, collar=9, seed=4, pixel_size=5.0,
                             offset_grid=offset_grid)
    out = voronoi_center_seamline(sample.paths, str(tmp_path / "seams.gpkg"))
    names, pieces, _ = read_seamlines(out)
    assert names == [os.path.splitext(os.path.basename(p))[0] for p in sample.paths]
    footprints = [reference_footprint(p) for p in sample.paths]
    assert_partition(pieces, footprints)
    assert all(p.area > 0.3 * f.area for p, f in zip(pieces, footprints, strict=True))


def test_concave_and_three_way_rasters(make_raster, tmp_path):
    rows = cols = 60
    l_valid = np.zeros((rows, cols), bool)
    l_valid[:, :20] = True
    l_valid[40:, :] = True  # an L: left column and bottom row
    a = rect_image(make_raster, "l_shape.tif", cols, rows, 0.0, 60.0, valid=l_valid)
    b = rect_image(make_raster, "square.tif", 40, 40, 10.0, 50.0)  # x 10..50, y 10..50
    c = rect_image(make_raster, "third.tif", 30, 30, 30.0, 35.0)  # x 30..60, y 5..35
    out = voronoi_center_seamline([a, b, c], str(tmp_path / "s.gpkg"), min_point_spacing=1)
    _, pieces, _ = read_seamlines(out)
    footprints = [reference_footprint(p) for p in (a, b, c)]
    assert_partition(pieces, footprints)
    # The point covered by all three images goes to one of them only.
    point = shapely.Point(35.5, 15.5)
    assert sum(p.contains(point) for p in pieces) == 1


def test_deterministic_output(make_raster, tmp_path):
    rng = np.random.default_rng(2)
    paths = []
    for k, (x0, y0) in enumerate([(0, 70), (45, 80), (20, 120)]):
        valid = np.ones((70, 70), bool)
        valid[rng.random((70, 70)) < 0.02] = False
        paths.append(rect_image(make_raster, f"r{k}.tif", 70, 70, float(x0), float(y0),
                                valid=valid))
    first = voronoi_center_seamline(paths, str(tmp_path / "one.gpkg"), min_point_spacing=3)
    second = voronoi_center_seamline(paths, str(tmp_path / "two.gpkg"), min_point_spacing=3)
    _, g1, _ = read_seamlines(first)
    _, g2, _ = read_seamlines(second)
    assert [shapely.to_wkb(g) for g in g1] == [shapely.to_wkb(g) for g in g2]
    assert_partition(g1, [reference_footprint(p) for p in paths])


def test_debug_layers_and_min_cut_length(make_raster, tmp_path):
    a = rect_image(make_raster, "a.tif", 50, 40, 0.0, 40.0)
    b = rect_image(make_raster, "b.tif", 50, 40, 30.0, 55.0)
    debug = str(tmp_path / "debug.gpkg")
    out = voronoi_center_seamline([a, b], str(tmp_path / "s.gpkg"), min_point_spacing=1,
                                  min_cut_length=3, debug_vectors_path=debug)
    _, pieces, _ = read_seamlines(out)
    assert_partition(pieces, [reference_footprint(a), reference_footprint(b)])
    layers = dict(pyogrio.list_layers(debug).tolist())
    assert layers == {"footprints": "MultiPolygon", "overlaps": "MultiPolygon",
                      "seeds": "MultiPoint", "cutlines": "MultiLineString"}
    _, _, wkb, fields = pyogrio.raw.read(debug, layer="overlaps")
    assert fields[0].tolist() == ["a,b"]
    assert shapely.from_wkb(wkb[0]).area == pytest.approx(20 * 25)
    _, _, wkb, fields = pyogrio.raw.read(debug, layer="cutlines")
    assert fields[0].tolist() == ["a"] and fields[1].tolist() == ["b"]
    assert shapely.from_wkb(wkb[0]).length > 20


@pytest.mark.skipif(not os.path.exists(WORLDVIEW), reason="shared WorldView data not available")
def test_worldview_footprint_collar_with_shifted_copy(tmp_path):
    copy = str(tmp_path / "Worldview_shifted.tif")
    ds = gdal.GetDriverByName("GTiff").CreateCopy(copy, gdal.Open(WORLDVIEW))
    gt = list(ds.GetGeoTransform())
    gt[0] += 150.5 * gt[1]  # half-pixel shifts: the two grids do not align
    gt[3] += 60.25 * gt[5]
    ds.SetGeoTransform(gt)
    ds = None
    paths = [WORLDVIEW, copy]
    out = voronoi_center_seamline(paths, str(tmp_path / "wv.gpkg"))
    names, pieces, _ = read_seamlines(out)
    assert names == ["Worldview_2016-09-30", "Worldview_shifted"]
    footprints = [reference_footprint(p) for p in paths]
    assert_partition(pieces, footprints)
    assert all(p.area > 0.5 * f.area for p, f in zip(pieces, footprints, strict=True))


# --------------------------------------------------------------------------------- errors

def _bad_inputs(make_raster, tmp_path):
    a = rect_image(make_raster, "a.tif", 20, 20, 0.0, 20.0)
    b = rect_image(make_raster, "b.tif", 20, 20, 10.0, 20.0)
    far = rect_image(make_raster, "far.tif", 20, 20, 100.0, 20.0)
    other_crs = rect_image(make_raster, "crs.tif", 20, 20, 10.0, 20.0, crs="EPSG:32611")
    three_bands = rect_image(make_raster, "bands.tif", 20, 20, 10.0, 20.0, bands=3)
    empty = rect_image(make_raster, "empty.tif", 20, 20, 10.0, 20.0,
                       valid=np.zeros((20, 20), bool))
    os.symlink(a, tmp_path / "alias.gpkg")
    return {
        "nothing found": (str(tmp_path / "missing" / "*.tif"), {}, PathError, "no files"),
        "one image": ([a], {}, ParameterError, "at least two"),
        "mixed CRS": ([a, other_crs], {}, RasterError, "CRS"),
        "mixed band counts": ([a, three_bands], {}, RasterError, "bands"),
        "no overlap": ([a, far], {}, SpectralMatchError, "a, far"),
        "no valid pixel": ([a, empty], {}, RasterError, "no valid pixel"),
        "output is an input": ([a, b], {"output": str(tmp_path / "alias.gpkg")}, PathError,
                               "same file"),
        "not gpkg": ([a, b], {"output": str(tmp_path / "s.shp")}, ParameterError, ".gpkg"),
        "debug equals output": ([a, b], {"debug_vectors_path": str(tmp_path / "s.gpkg")},
                                PathError, "debug_vectors_path"),
        "bad spacing": ([a, b], {"min_point_spacing": 0}, ParameterError, "min_point_spacing"),
        "bad cut length": ([a, b], {"min_cut_length": -1}, ParameterError, "min_cut_length"),
        "reserved field": ([a, b], {"image_field_name": "fid"}, ParameterError, "reserved"),
        "bad decimation": ([a, b], {"footprint_decimation": 0}, ParameterError,
                           "footprint_decimation"),
    }


ERROR_CASES = ["nothing found", "one image", "mixed CRS", "mixed band counts", "no overlap",
               "no valid pixel", "output is an input", "not gpkg", "debug equals output",
               "bad spacing", "bad cut length", "reserved field", "bad decimation"]


@pytest.mark.parametrize("case", ERROR_CASES)
def test_errors_before_any_output(make_raster, tmp_path, case):
    inputs, kwargs, error, text = _bad_inputs(make_raster, tmp_path)[case]
    kwargs = dict(kwargs)
    output = kwargs.pop("output", str(tmp_path / "s.gpkg"))
    before = set(os.listdir(tmp_path))
    with pytest.raises(error, match=text):
        voronoi_center_seamline(inputs, output, **kwargs)
    assert set(os.listdir(tmp_path)) == before
