"""merge_vectors: keep / union / intersection checked with hand-computed areas."""
from __future__ import annotations

import os

import numpy as np
import pyogrio
import pyogrio.raw
import pytest
import shapely
from osgeo import osr

from spectralmatch.errors import ParameterError, PathError
from spectralmatch.vector.merge_vectors import merge_vectors

X0, Y0 = 500000.0, 4000000.0
# Two 10 m squares overlapping in a 5 × 5 m square, plus a square away from both.
SQ_A = shapely.box(X0, Y0, X0 + 10, Y0 + 10)
SQ_B = shapely.box(X0 + 5, Y0 + 5, X0 + 15, Y0 + 15)
SQ_FAR = shapely.box(X0 + 100, Y0 + 100, X0 + 120, Y0 + 110)  # 200 m²


def write_vector(path, geoms, fields=None, crs="EPSG:32610") -> str:
    fields = fields or {}
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    pyogrio.raw.write(str(path), np.array(shapely.to_wkb(geoms), dtype=object),
                      field_data=[np.asarray(v) for v in fields.values()],
                      fields=list(fields), geometry_type="Polygon", crs=crs, driver="GPKG")
    return str(path)


def read_vector(path):
    meta, _, wkb, field_data = pyogrio.raw.read(str(path))
    return (meta, shapely.from_wkb(np.asarray(wkb, dtype=object)),
            dict(zip(meta["fields"], field_data, strict=True)))


@pytest.fixture
def two(tmp_path):
    a = write_vector(tmp_path / "in" / "alpha.gpkg", [SQ_A], {"id": [1], "label": ["a"]})
    b = write_vector(tmp_path / "in" / "beta.gpkg", [SQ_B, SQ_FAR],
                     {"id": [2, 3], "weight": [1.5, 2.5]})
    return a, b


def test_keep_concatenates_features_with_source_names(tmp_path, two):
    out = merge_vectors(list(two), str(tmp_path / "keep.gpkg"), "keep",
                        create_name_attribute=("source", "_"))
    meta, geoms, fields = read_vector(out)
    assert list(fields) == ["id", "label", "weight", "source"]
    np.testing.assert_allclose(shapely.area(geoms), [100, 100, 200])
    assert shapely.equals(geoms[1], SQ_B)
    np.testing.assert_array_equal(fields["id"], [1, 2, 3])
    assert list(fields["label"]) == ["a", None, None]
    assert np.isnan(fields["weight"][0]) and list(fields["weight"][1:]) == [1.5, 2.5]
    assert list(fields["source"]) == ["alpha", "beta", "beta"]
    assert meta["crs"] == "EPSG:32610"


def test_union_dissolves_all_geometries_into_one_feature(tmp_path, two):
    out = merge_vectors(str(tmp_path / "in"), str(tmp_path / "union.gpkg"), "union",
                        create_name_attribute=("image", "+"))
    _, geoms, fields = read_vector(out)
    assert len(geoms) == 1
    # 100 + 100 − 25 overlap + 200 far away
    assert geoms[0].area == pytest.approx(375.0)
    assert shapely.equals(geoms[0], shapely.union_all([SQ_A, SQ_B, SQ_FAR]))
    assert list(fields) == ["image"] and list(fields["image"]) == ["alpha+beta"]


def test_union_without_name_attribute_has_no_fields(tmp_path, two):
    out = merge_vectors(str(tmp_path / "in" / "*.gpkg"), str(tmp_path / "u.gpkg"), "union")
    _, geoms, fields = read_vector(out)
    assert fields == {} and geoms[0].area == pytest.approx(375.0)


def test_intersection_keeps_overlaps_and_attributes_of_both(tmp_path, two):
    out = merge_vectors(list(two), str(tmp_path / "inter.gpkg"), "intersection",
                        create_name_attribute=("names", "_"))
    _, geoms, fields = read_vector(out)
    assert len(geoms) == 1  # SQ_FAR overlaps nothing of alpha
    assert shapely.equals(geoms[0], shapely.box(X0 + 5, Y0 + 5, X0 + 10, Y0 + 10))
    assert geoms[0].area == pytest.approx(25.0)
    # "id" of the later layer is a duplicate: dropped, the first layer's value is kept
    assert list(fields) == ["id", "label", "weight", "names"]
    assert list(fields["id"]) == [1] and list(fields["label"]) == ["a"]
    assert list(fields["weight"]) == [1.5] and list(fields["names"]) == ["alpha_beta"]


def test_intersection_of_three_layers_and_touching_edges(tmp_path, two):
    # gamma: one square overlapping the alpha∩beta square by 2 × 5 m, one only touching it
    c = write_vector(tmp_path / "gamma.gpkg",
                     [shapely.box(X0 + 8, Y0, X0 + 20, Y0 + 20),
                      shapely.box(X0 - 10, Y0 + 5, X0 + 5, Y0 + 9)],
                     {"zone": ["z1", "z2"]})
    out = merge_vectors([*two, c], str(tmp_path / "three.gpkg"), "intersection")
    _, geoms, fields = read_vector(out)
    # the second gamma square only shares the edge x = X0 + 5: no area, no feature
    assert len(geoms) == 1
    assert geoms[0].area == pytest.approx(10.0)
    assert shapely.equals(geoms[0], shapely.box(X0 + 8, Y0 + 5, X0 + 10, Y0 + 10))
    assert list(fields["zone"]) == ["z1"] and list(fields["id"]) == [1]


def test_intersection_with_several_pieces_is_ordered(tmp_path):
    strip = write_vector(tmp_path / "strip.gpkg", [shapely.box(X0, Y0, X0 + 30, Y0 + 2)],
                         {"k": ["s"]})
    cells = write_vector(tmp_path / "cells.gpkg",
                         [shapely.box(X0 + 20, Y0 - 5, X0 + 25, Y0 + 5),
                          shapely.box(X0 + 1, Y0 - 5, X0 + 4, Y0 + 5)], {"cell": [10, 20]})
    out = merge_vectors([strip, cells], str(tmp_path / "o.gpkg"), "intersection")
    _, geoms, fields = read_vector(out)
    np.testing.assert_allclose(shapely.area(geoms), [10.0, 6.0])  # layer feature order
    assert list(fields["cell"]) == [10, 20] and list(fields["k"]) == ["s", "s"]


def test_layer_in_geographic_crs_is_reprojected_to_the_first(tmp_path):
    utm, wgs = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(32610)
    wgs.ImportFromEPSG(4326)
    for srs in (utm, wgs):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_lonlat = osr.CoordinateTransformation(utm, wgs)
    b_lonlat = shapely.transform(SQ_B, lambda xy: np.asarray(to_lonlat.TransformPoints(xy))[:, :2])
    assert -124 < b_lonlat.centroid.x < -122 and 35 < b_lonlat.centroid.y < 37  # lon/lat order
    a = write_vector(tmp_path / "a.gpkg", [SQ_A], {"id": [1]})
    b = write_vector(tmp_path / "b.gpkg", [b_lonlat], {"id": [2]}, crs="EPSG:4326")
    out = merge_vectors([a, b], str(tmp_path / "u.gpkg"), "union")
    meta, geoms, _ = read_vector(out)
    assert meta["crs"] == "EPSG:32610"
    assert geoms[0].area == pytest.approx(175.0, abs=1e-4)
    out = merge_vectors([a, b], str(tmp_path / "i.gpkg"), "intersection")
    _, geoms, _ = read_vector(out)
    assert geoms[0].area == pytest.approx(25.0, abs=1e-4)
    np.testing.assert_allclose(geoms[0].bounds, (X0 + 5, Y0 + 5, X0 + 10, Y0 + 10), atol=1e-5)


def test_existing_output_is_replaced_atomically_and_shapefile_output(tmp_path, two):
    out = tmp_path / "out" / "merged.gpkg"
    merge_vectors(list(two), str(out), "keep")
    merge_vectors(list(two), str(out), "union")
    assert len(read_vector(out)[1]) == 1
    shp = merge_vectors(list(two), str(tmp_path / "out" / "merged.shp"), "keep",
                        create_name_attribute=("src", "_"))
    _, geoms, fields = read_vector(shp)
    assert len(geoms) == 3 and list(fields["src"]) == ["alpha", "beta", "beta"]
    assert not [n for n in os.listdir(tmp_path / "out") if "partial" in n]


def test_errors_before_any_output(tmp_path, two):
    out = str(tmp_path / "never.gpkg")
    with pytest.raises(ParameterError, match=r"method='merge'.*'keep', 'union', 'intersection'"):
        merge_vectors(list(two), out, "merge")
    with pytest.raises(ParameterError, match="create_name_attribute"):
        merge_vectors(list(two), out, "keep", create_name_attribute="image")
    with pytest.raises(ParameterError, match="create_name_attribute"):
        merge_vectors(list(two), out, "keep", create_name_attribute=("", "_"))
    with pytest.raises(ParameterError, match="extension '.txt'"):
        merge_vectors(list(two), str(tmp_path / "never.txt"), "keep")
    with pytest.raises(PathError, match="no files found"):
        merge_vectors(str(tmp_path / "empty_folder"), out, "keep")
    assert not os.path.exists(out)
    before = open(two[0], "rb").read()
    with pytest.raises(PathError, match="same file as input"):
        merge_vectors(list(two), two[0], "union")
    assert open(two[0], "rb").read() == before
    assert len(pyogrio.list_layers(two[0])) == 1


def test_keep_promotes_mixed_field_types_and_replaces_the_name_field(tmp_path):
    a = write_vector(tmp_path / "a.gpkg", [SQ_A], {"code": [7], "Source": ["old"]})
    b = write_vector(tmp_path / "b.gpkg", [SQ_B], {"CODE": ["x9"]})
    c = write_vector(tmp_path / "c.gpkg", [SQ_FAR], {"code": [1.25]})
    out = merge_vectors([a, b, c], str(tmp_path / "m.gpkg"), "keep",
                        create_name_attribute=("source", "-"))
    meta, _, fields = read_vector(out)
    # "code"/"CODE" are one field (case-insensitive); int + text + float become text
    assert list(fields) == ["code", "source"]
    assert list(fields["code"]) == ["7", "x9", "1.25"]
    assert list(fields["source"]) == ["a", "b", "c"]
    # integers and floats only: a numeric column, nulls where a file lacks the field
    out = merge_vectors([a, c], str(tmp_path / "n.gpkg"), "keep")
    meta, _, fields = read_vector(out)
    assert list(fields["code"]) == [7.0, 1.25]
    assert fields["Source"][0] == "old" and fields["Source"][1] is None
