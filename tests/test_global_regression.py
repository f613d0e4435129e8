"""global_regression: statistics, model, model files, apply pass, validation and anchors."""
from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

from spectralmatch.errors import ParameterError, PathError, RasterError, SpectralMatchError
from spectralmatch.match._global_model import BandStats, solve_global_model
from spectralmatch.match.global_regression import global_regression
from spectralmatch.sample_data import generate_mosaic

gdal.UseExceptions()

# Located without conftest so that the file works on its own: <repo>/../shared.
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WORLDVIEW = SHARED / "data" / "real" / "worldview"
LANDSAT = SHARED / "data" / "real" / "landsat" / "inputs"
needs_worldview = pytest.mark.skipif(not WORLDVIEW.is_dir(),
                                     reason=f"shared WorldView data not found at {WORLDVIEW}")
needs_landsat = pytest.mark.skipif(not LANDSAT.is_dir(),
                                   reason=f"shared Landsat data not found at {LANDSAT}")


def read(path) -> np.ndarray:
    ds = gdal.Open(os.fspath(path))
    arr = ds.ReadAsArray()
    ds = None
    return arr if arr.ndim == 3 else arr[np.newaxis]


def geotransform(path) -> tuple:
    ds = gdal.Open(os.fspath(path))
    gt = ds.GetGeoTransform()
    ds = None
    return gt


def load_json(path) -> dict:
    with open(path) as handle:
        return json.load(handle)


def params(model: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    adj = model[name]["adjustments"]
    bands = range(len(adj))
    return (np.array([adj[f"band_{b}"]["scale"] for b in bands]),
            np.array([adj[f"band_{b}"]["offset"] for b in bands]))


def shared_grid_overlap(path_a, path_b):
    """Slices of two images on one pixel grid covering their common pixels."""
    ga, gb = geotransform(path_a), geotransform(path_b)
    ha, wa = read(path_a).shape[1:]
    hb, wb = read(path_b).shape[1:]
    dc = round((gb[0] - ga[0]) / ga[1])
    dr = round((gb[3] - ga[3]) / ga[5])
    c0, c1 = max(0, dc), min(wa, dc + wb)
    r0, r1 = max(0, dr), min(ha, dr + hb)
    if c1 <= c0 or r1 <= r0:
        return None
    return ((slice(r0, r1), slice(c0, c1)), (slice(r0 - dr, r1 - dr), slice(c0 - dc, c1 - dc)))


@pytest.fixture(scope="module")
def clean_mosaic(tmp_path_factory):
    """2×2 mosaic, 128 px tiles, no noise, no gradient, nodata collar."""
    folder = tmp_path_factory.mktemp("clean")
    return generate_mosaic(str(folder / "in"), tile_size=128, bands=3, seed=3, collar=6,
                           gain_range=(0.85, 1.2), offset_range=(-150, 150))


# --------------------------------------------------------------------------- numbers


def numpy_statistics(paths, nodata):
    """Whole and overlap statistics with plain numpy (shared pixel grid, population std)."""
    names = [Path(p).stem for p in paths]
    data = {n: read(p).astype(np.float64) for n, p in zip(names, paths, strict=True)}
    whole, overlap = {}, {}
    for n in names:
        arr = data[n]
        stats = [arr[b][arr[b] != nodata] for b in range(arr.shape[0])]
        whole[n] = BandStats(np.array([s.mean() if s.size else 0 for s in stats]),
                             np.array([s.std() if s.size else 0 for s in stats]),
                             np.array([s.size for s in stats]))
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            sl = shared_grid_overlap(paths[names.index(a)], paths[names.index(b)])
            if sl is None:
                continue
            va, vb = data[a][(slice(None),) + sl[0]], data[b][(slice(None),) + sl[1]]
            res_a, res_b = [], []
            for k in range(va.shape[0]):
                joint = (va[k] != nodata) & (vb[k] != nodata)
                res_a.append(va[k][joint])
                res_b.append(vb[k][joint])
            for key, vals in (((a, b), res_a), ((b, a), res_b)):
                overlap[key] = BandStats(np.array([v.mean() for v in vals]),
                                         np.array([v.std() for v in vals]),
                                         np.array([v.size for v in vals]))
    return names, whole, overlap


def reference_solution(names, whole, overlap, cm, cs):
    """Dense least squares of ALGORITHMS.md §2.6 written out row by row (every image included)."""
    n = len(names)
    bands = whole[names[0]].mean.shape[0]
    scale, offset = np.ones((n, bands)), np.zeros((n, bands))
    for band in range(bands):
        rows, rhs, total = [], [], 0.0
        for i in range(n):
            for j in range(i + 1, n):
                if (names[i], names[j]) not in overlap:
                    continue
                sij, sji = overlap[(names[i], names[j])], overlap[(names[j], names[i])]
                s = float(sij.size[band])
                total += s
                r = np.zeros(2 * n)
                r[2 * i], r[2 * i + 1] = s * cm * sij.mean[band], s * cm
                r[2 * j], r[2 * j + 1] = -s * cm * sji.mean[band], -s * cm
                rows.append(r)
                rhs.append(0)
                r = np.zeros(2 * n)
                r[2 * i], r[2 * j] = s * cs * sij.std[band], -s * cs * sji.std[band]
                rows.append(r)
                rhs.append(0)
        p = total / (2 * n)
        for k in range(n):
            m, sd = whole[names[k]].mean[band], whole[names[k]].std[band]
            r = np.zeros(2 * n)
            r[2 * k], r[2 * k + 1] = p * m, p
            rows.append(r)
            rhs.append(p * m)
            r = np.zeros(2 * n)
            r[2 * k] = p * sd
            rows.append(r)
            rhs.append(p * sd)
        x = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
        scale[:, band], offset[:, band] = x[0::2], x[1::2]
    return scale, offset


def test_statistics_and_model_match_numpy_reference(clean_mosaic, tmp_path):
    model_path = tmp_path / "model.json"
    global_regression(clean_mosaic.paths, str(tmp_path / "out"), save_adjustments=str(model_path),
                      custom_std_factor=2.0)
    model = load_json(model_path)
    names, whole, overlap = numpy_statistics(clean_mosaic.paths, 0)
    for n in names:
        got = model[n]["whole_stats"]
        for b in range(3):
            assert got[f"band_{b}"]["size"] == whole[n].size[b]
            assert got[f"band_{b}"]["mean"] == pytest.approx(whole[n].mean[b], rel=1e-12)
            assert got[f"band_{b}"]["std"] == pytest.approx(whole[n].std[b], rel=1e-9)
    assert len(overlap) == 12  # 6 pairs (incl. diagonals), both directions
    for (a, b), stats in overlap.items():
        got = model[a]["overlap_stats"][b]
        for k in range(3):
            assert got[f"band_{k}"]["size"] == stats.size[k] > 0
            assert got[f"band_{k}"]["mean"] == pytest.approx(stats.mean[k], rel=1e-12)
            assert got[f"band_{k}"]["std"] == pytest.approx(stats.std[k], rel=1e-9)
    scale, offset = reference_solution(names, whole, overlap, 1.0, 2.0)
    for k, n in enumerate(names):
        s, o = params(model, n)
        np.testing.assert_allclose(s, scale[k], rtol=1e-9)
        np.testing.assert_allclose(o, offset[k], rtol=1e-9, atol=1e-7)
    # Outputs are round(a·x + b) (float32 arithmetic by default) with nodata kept.
    for k, (src, out) in enumerate(zip(clean_mosaic.paths,
                                       sorted((tmp_path / "out").glob("*.tif")), strict=True)):
        x, y = read(src), read(out)
        s, o = params(model, names[k])
        v = x.astype(np.float32) * s.astype(np.float32)[:, None, None] + o.astype(np.float32)[:, None, None]
        want = np.clip(np.sign(v) * np.floor(np.abs(v.astype(np.float64)) + 0.5), 0, 65535)
        want = np.where(want == 0, 1, want)
        want = np.where(x == 0, 0, want)
        np.testing.assert_array_equal(y, want)


def test_noise_free_mosaic_recovers_relative_gains_and_matches_overlaps(clean_mosaic, tmp_path):
    # Strong overlap weights make the overlap rows (exactly satisfiable without noise) dominate
    # the whole-image rows: the relative gains/offsets are then those of the truth.
    model_path = tmp_path / "model.json"
    outputs = global_regression(clean_mosaic.paths, str(tmp_path / "out"),
                                save_adjustments=str(model_path), custom_mean_factor=1e4,
                                custom_std_factor=1e4)
    model = load_json(model_path)
    gain_products, offset_products = [], []
    for name, truth in clean_mosaic.truth.items():
        s, o = params(model, name)
        gain_products.append(s * np.array(truth["gains"]))
        offset_products.append(s * np.array(truth["offsets"]) + o)
    gain_products, offset_products = np.array(gain_products), np.array(offset_products)
    # a_k·g_k (combined gain) and a_k·o_k + b_k (combined offset) agree across images.
    # Quantisation to integers limits this to ~1e-5 here (see the float test below).
    np.testing.assert_allclose(gain_products / gain_products[0], 1.0, atol=1e-4)
    # Every pair agrees in its overlap to rounding error.
    for i in range(4):
        for j in range(i + 1, 4):
            sl = shared_grid_overlap(outputs[i], outputs[j])
            a, b = read(outputs[i])[(slice(None),) + sl[0]], read(outputs[j])[(slice(None),) + sl[1]]
            joint = (a != 0) & (b != 0)
            diff = a[joint].astype(float) - b[joint].astype(float)
            assert np.abs(diff).max() <= 2
            assert np.sqrt(np.mean(diff ** 2)) < 0.75


def test_float_noise_free_mosaic_recovers_truth_exactly(tmp_path):
    # float32 pixels are not rounded: the only error left is float32 storage (~1e-7).
    sample = generate_mosaic(str(tmp_path / "in"), tile_size=96, bands=2, seed=11,
                             dtype="float32", nodata=float("nan"), collar=5)
    model_path = tmp_path / "model.json"
    outputs = global_regression(sample.paths, str(tmp_path / "out"),
                                save_adjustments=str(model_path), custom_mean_factor=1e4,
                                custom_std_factor=1e4)
    model = load_json(model_path)
    names = list(sample.truth)
    gains = np.array([params(model, n)[0] * sample.truth[n]["gains"] for n in names])
    offsets = np.array([params(model, n)[0] * sample.truth[n]["offsets"] + params(model, n)[1]
                        for n in names])
    level = gains[0] * 2750.0 + offsets[0]  # corrected value of a mid-range scene value
    np.testing.assert_allclose(gains / gains[0], 1.0, atol=1e-5)
    assert (np.abs(offsets - offsets[0]) / level).max() < 1e-5
    for i in range(4):
        for j in range(i + 1, 4):
            sl = shared_grid_overlap(outputs[i], outputs[j])
            a = read(outputs[i])[(slice(None),) + sl[0]]
            b = read(outputs[j])[(slice(None),) + sl[1]]
            joint = ~np.isnan(a) & ~np.isnan(b)
            assert joint.sum() > 0
            assert np.abs(a[joint] - b[joint]).max() < 1e-5 * level.max()
    for src, out in zip(sample.paths, outputs, strict=True):  # NaN nodata kept, no new NaN
        np.testing.assert_array_equal(np.isnan(read(src)), np.isnan(read(out)))


def overlap_rmse(paths, transform=None):
    total, count = 0.0, 0
    for i in range(len(paths)):
        for j in range(i + 1, len(paths)):
            sl = shared_grid_overlap(paths[i], paths[j])
            if sl is None:
                continue
            a = read(paths[i])[(slice(None),) + sl[0]].astype(float)
            b = read(paths[j])[(slice(None),) + sl[1]].astype(float)
            joint = (a != 0) & (b != 0)
            if transform is not None:
                a, b = transform(i, a), transform(j, b)
            total += float(np.sum((a - b)[joint] ** 2))
            count += int(joint.sum())
    return math.sqrt(total / count)


def test_noise_and_gradient_rmse_drop(tmp_path):
    """Overlap RMSE in scene units (DN before the true gain), so a compressed contrast cannot
    fake agreement. Measured with this seed: before 290; a perfect gain/offset correction
    (the truth) leaves 22 (noise and gradients stay), i.e. allows a 13× drop; the default
    model (custom factors 1) reaches 37 (7.9×: its whole-image rows keep part of each image's
    own level by design); factors of 10 reach 17 (17×, offsets also absorb part of the
    gradients)."""
    sample = generate_mosaic(str(tmp_path / "in"), tile_size=128, bands=2, seed=5, noise=8.0,
                             gradient=30.0, gain_range=(0.8, 1.25), offset_range=(-200, 200))
    names = list(sample.truth)
    truth_g = np.array([sample.truth[n]["gains"] for n in names])
    truth_o = np.array([sample.truth[n]["offsets"] for n in names])
    mean_gain = truth_g.mean(axis=0)[:, None, None]
    before = overlap_rmse(sample.paths, lambda k, a: a / mean_gain)
    truth_allows = overlap_rmse(
        sample.paths, lambda k, a: (a - truth_o[k][:, None, None]) / truth_g[k][:, None, None])

    def matched_rmse(factor):
        model_path = tmp_path / f"m{factor}.json"
        outputs = global_regression(sample.paths, str(tmp_path / f"out{factor:g}" / "$.tif"),
                                    save_adjustments=str(model_path),
                                    custom_mean_factor=factor, custom_std_factor=factor)
        model = load_json(model_path)
        common_gain = np.mean([params(model, n)[0] * truth_g[k] for k, n in enumerate(names)],
                              axis=0)
        assert (common_gain > 0.8).all() and (common_gain < 1.5).all()  # contrast kept
        return overlap_rmse(outputs, lambda k, a: a / common_gain[:, None, None])

    assert before / truth_allows > 10
    assert matched_rmse(1.0) < before / 6
    assert matched_rmse(10.0) <= truth_allows


@needs_worldview
def test_resolve_worldview_model_and_apply(tmp_path):
    stored_path = WORLDVIEW / "original_outputs" / "GlobalMatch" / "GlobalAdjustments.json"
    stored = load_json(stored_path)
    source = WORLDVIEW / "inputs" / "Worldview_2016-09-30.tif"
    model_path = tmp_path / "resolved.json"
    [output] = global_regression([str(source)], str(tmp_path / "$_Global.tif"),
                                 load_adjustments=str(stored_path), custom_mean_factor=1,
                                 custom_std_factor=3, save_adjustments=str(model_path))
    resolved = load_json(model_path)
    assert set(resolved) == set(stored)  # images only in the loaded model take part
    for name in stored:
        for b in range(8):
            want = stored[name]["adjustments"][f"band_{b}"]
            got = resolved[name]["adjustments"][f"band_{b}"]
            assert got["scale"] == pytest.approx(want["scale"], rel=1e-6)
            assert got["offset"] == pytest.approx(want["offset"], rel=1e-6)
    original = read(WORLDVIEW / "original_outputs" / "GlobalMatch" / "Worldview_2016-09-30_Global.tif")
    ours, x = read(output), read(source)
    valid = x != -9999
    assert (ours[~valid] == -9999).all()
    diff = ours[valid].astype(int) - original[valid].astype(int)
    # The original truncates toward zero, we round to nearest: differences are 0 or ±1.
    assert np.abs(diff).max() <= 1
    assert (diff != 0).mean() > 0.1  # rounding really differs from truncation


@needs_landsat
def test_landsat_time_series(tmp_path):
    paths = sorted(str(p) for p in LANDSAT.glob("*.tif"))
    outputs = global_regression(str(LANDSAT), str(tmp_path))
    assert [Path(o).name for o in outputs] == [Path(p).stem + "_Global.tif" for p in paths]
    before, after = [], []
    for src, out in zip(paths, outputs, strict=True):
        x, y = read(src), read(out)
        assert ((x == 0) == (y == 0)).all()  # every band-specific nodata pixel kept, no new one
        before.append([x[b][x[b] != 0].mean() for b in range(7)])
        after.append([y[b][y[b] != 0].mean() for b in range(7)])
    spread_before = np.std(before, axis=0)
    spread_after = np.std(after, axis=0)
    assert (spread_after < 0.5 * spread_before).all(), (spread_before, spread_after)


# --------------------------------------------------------------------------- model options


def test_include_one_image_keeps_it_and_matches_the_others(clean_mosaic, tmp_path):
    ref = "tile_0_1"
    model_path = tmp_path / "m.json"
    outputs = global_regression(clean_mosaic.paths, str(tmp_path / "out"),
                                specify_model_images=("include", [ref]),
                                save_adjustments=str(model_path))
    model = load_json(model_path)
    k = [Path(p).stem for p in clean_mosaic.paths].index(ref)
    np.testing.assert_array_equal(read(outputs[k]), read(clean_mosaic.paths[k]))
    s_ref, o_ref = params(model, ref)
    np.testing.assert_allclose(s_ref, 1.0, atol=1e-12)
    g_ref = np.array(clean_mosaic.truth[ref]["gains"])
    for name, truth in clean_mosaic.truth.items():
        s, _ = params(model, name)
        # integer quantisation of 32-px-wide overlaps limits this to a few 1e-4
        np.testing.assert_allclose(s * np.array(truth["gains"]) / g_ref, 1.0, atol=1e-3)
    # Excluding the three others is the same model.
    others = [n for n in clean_mosaic.truth if n != ref]
    outputs2 = global_regression(clean_mosaic.paths, str(tmp_path / "out2"),
                                 specify_model_images=("exclude", others))
    for a, b in zip(outputs, outputs2, strict=True):
        np.testing.assert_array_equal(read(a), read(b))


def test_save_load_round_trip_is_identical(clean_mosaic, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a bare file name writes into the current folder
    first = global_regression(clean_mosaic.paths, str(tmp_path / "a"), save_adjustments="m.json")
    assert (tmp_path / "m.json").is_file()
    second = global_regression(clean_mosaic.paths, str(tmp_path / "b"), load_adjustments="m.json",
                               save_adjustments=str(tmp_path / "deep" / "m2.json"))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(read(a), read(b))
    assert load_json(tmp_path / "m.json") == load_json(tmp_path / "deep" / "m2.json")


def test_loading_a_model_with_extra_images(clean_mosaic, tmp_path):
    model_path = tmp_path / "m.json"
    full = global_regression(clean_mosaic.paths, str(tmp_path / "all"),
                             save_adjustments=str(model_path))
    # Three inputs + the model of four: the fourth image takes part through its statistics.
    part = global_regression(clean_mosaic.paths[:3], str(tmp_path / "part"),
                             load_adjustments=str(model_path))
    for a, b in zip(full[:3], part, strict=True):
        np.testing.assert_array_equal(read(a), read(b))
    # Without it the solution differs.
    alone = global_regression(clean_mosaic.paths[:3], str(tmp_path / "alone"))
    assert any((read(a) != read(b)).any() for a, b in zip(full[:3], alone, strict=True))


def write_mask_gpkg(path, polygons: list[tuple[tuple[float, float, float, float], str]],
                    epsg=32610) -> str:
    drv = ogr.GetDriverByName("GPKG")
    ds = drv.CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    layer = ds.CreateLayer("mask", srs=srs, geom_type=ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("image", ogr.OFTString))
    for (x0, y0, x1, y1), label in polygons:
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("image", label)
        ring = f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"
        feature.SetGeometry(ogr.CreateGeometryFromWkt(ring))
        layer.CreateFeature(feature)
    layer = None
    ds = None
    return str(path)


@pytest.mark.parametrize("mode", ["include", "exclude"])
def test_vector_mask_with_field(clean_mosaic, tmp_path, mode):
    # A box over the west half of tile_0_0 (pixel edges at x + 640 m), only for tile_0_0.
    gt = clean_mosaic.truth["tile_0_0"]["geotransform"]
    box = (gt[0] - 50, gt[3] - 2000, gt[0] + 640, gt[3] + 50)
    gpkg = write_mask_gpkg(tmp_path / "mask.gpkg", [(box, "tile_0_0_mask")])
    model_path = tmp_path / "m.json"
    global_regression(clean_mosaic.paths, str(tmp_path / "out"),
                      vector_mask=(mode, gpkg, "image"), save_adjustments=str(model_path))
    model = load_json(model_path)
    x = read(clean_mosaic.paths[0]).astype(float)
    inside = np.zeros(x.shape[1:], dtype=bool)
    inside[:200, :64] = True  # 2000 m / 10 m rows, 640 m / 10 m columns
    keep = inside if mode == "include" else ~inside
    for b in range(3):
        values = x[b][keep & (x[b] != 0)]
        got = model["tile_0_0"]["whole_stats"][f"band_{b}"]
        assert got["size"] == values.size
        assert got["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert got["std"] == pytest.approx(values.std(), rel=1e-9)
    # Other images have no feature: unmasked.
    y = read(clean_mosaic.paths[3])
    assert model["tile_1_1"]["whole_stats"]["band_0"]["size"] == int((y[0] != 0).sum())
    # The overlap of tile_0_0 with tile_0_1 (east part of tile_0_0) lies outside the box:
    # "include" leaves no joint pixel, so the pair is dropped.
    if mode == "include":
        assert "tile_0_1" not in model["tile_0_0"]["overlap_stats"]
    else:
        assert "tile_0_1" in model["tile_0_0"]["overlap_stats"]


def test_different_resolutions_use_nearest_neighbour(tmp_path, make_raster):
    rng = np.random.default_rng(0)
    a = rng.integers(1, 1000, (2, 60, 80)).astype(np.int16)
    b = rng.integers(1, 1000, (2, 47, 53)).astype(np.int16)
    a[0, 10:14, 50:60] = -1
    b[1, 5:9, :] = -1
    gta = (1000.0, 10.0, 0, 5000.0, 0, -10.0)
    gtb = (1333.0, 13.0, 0, 4871.0, 0, -13.0)  # misaligned, coarser
    pa = make_raster("a.tif", a, geotransform=gta, nodata=-1)
    pb = make_raster("b.tif", b, geotransform=gtb, nodata=-1)
    model_path = tmp_path / "m.json"
    global_regression([pa, pb], str(tmp_path / "out"), save_adjustments=str(model_path))
    model = load_json(model_path)
    # Reference: every pixel of a whose centre lies inside b's extent, b sampled at the centre.
    xs = gta[0] + (np.arange(80) + 0.5) * gta[1]
    ys = gta[3] + (np.arange(60) + 0.5) * gta[5]
    cb = np.floor((xs - gtb[0]) / gtb[1]).astype(int)
    rb = np.floor((ys - gtb[3]) / gtb[5]).astype(int)
    cols = (cb >= 0) & (cb < 53)
    rows = (rb >= 0) & (rb < 47)
    for k in range(2):
        va = a[k][np.ix_(rows, cols)].astype(float)
        vb = b[k][np.ix_(rb[rows], cb[cols])].astype(float)
        joint = (va != -1) & (vb != -1)
        got_a = model["a"]["overlap_stats"]["b"][f"band_{k}"]
        got_b = model["b"]["overlap_stats"]["a"][f"band_{k}"]
        assert got_a["size"] == got_b["size"] == joint.sum()
        assert got_a["mean"] == pytest.approx(va[joint].mean(), rel=1e-12)
        assert got_b["mean"] == pytest.approx(vb[joint].mean(), rel=1e-12)
        assert got_b["std"] == pytest.approx(vb[joint].std(), rel=1e-9)


def test_pair_without_joint_pixels_is_dropped_with_warning(tmp_path, make_raster, caplog):
    a = np.full((1, 20, 20), 100, np.uint16) + np.arange(20, dtype=np.uint16)
    b = np.full((1, 20, 20), 200, np.uint16) + np.arange(20, dtype=np.uint16)
    c = np.full((1, 20, 20), 300, np.uint16) + np.arange(20, dtype=np.uint16)
    c[:, :, :5] = 0  # c's part over a is nodata
    pa = make_raster("a.tif", a, geotransform=(0, 1, 0, 20, 0, -1), nodata=0)
    pb = make_raster("b.tif", b, geotransform=(10, 1, 0, 20, 0, -1), nodata=0)
    pc = make_raster("c.tif", c, geotransform=(15, 1, 0, 20, 0, -1), nodata=0)
    caplog.set_level(logging.WARNING, logger="spectralmatch")
    model_path = tmp_path / "m.json"
    global_regression([pa, pb, pc], str(tmp_path / "out"), save_adjustments=str(model_path))
    assert "a / c" in caplog.text
    model = load_json(model_path)
    assert set(model["a"]["overlap_stats"]) == {"b"}
    assert set(model["c"]["overlap_stats"]) == {"b"}


def test_unconnected_images_are_left_unchanged_with_warning(tmp_path, caplog):
    left = generate_mosaic(str(tmp_path / "in"), layout="1x2", tile_size=64, bands=1, seed=1,
                           name="west")
    right = generate_mosaic(str(tmp_path / "in"), layout="1x2", tile_size=64, bands=1, seed=2,
                            name="east", origin=(600_000.0, 4_200_000.0))
    caplog.set_level(logging.WARNING, logger="spectralmatch")
    paths = left.paths + right.paths
    outputs = global_regression(paths, str(tmp_path / "out"),
                                specify_model_images=("include", ["west_0_0"]))
    for name in ("east_0_0", "east_0_1"):
        assert name in caplog.text
    for src, out in zip(paths[2:], outputs[2:], strict=True):
        np.testing.assert_array_equal(read(src), read(out))
    assert (read(outputs[1]) != read(paths[1])).any()  # west_0_1 is matched to west_0_0


def test_solver_closed_form_and_rank_handling():
    whole = {"A": BandStats(np.array([100.0]), np.array([10.0]), np.array([50])),
             "B": BandStats(np.array([40.0]), np.array([4.0]), np.array([50])),
             "C": BandStats(np.array([7.0]), np.array([1.0]), np.array([5]))}
    overlap = {("A", "B"): BandStats(np.array([100.0]), np.array([10.0]), np.array([20])),
               ("B", "A"): BandStats(np.array([50.0]), np.array([5.0]), np.array([20]))}
    sol = solve_global_model(["A", "B", "C"], {"A", "C"}, whole, overlap)
    # B must satisfy a·50 + b = 100 and a·5 = 10: a = 2, b = 0; A keeps its statistics, and so
    # does C (included, no overlap: only its own rows).
    np.testing.assert_allclose(sol.scale[:, 0], [1, 2, 1], atol=1e-12)
    np.testing.assert_allclose(sol.offset[:, 0], [0, 0, 0], atol=1e-9)
    assert sol.unchanged == {}
    sol = solve_global_model(["A", "B", "C"], {"B"}, whole, overlap)
    assert sol.unchanged == {"C": [0]}  # excluded and connected to nothing
    np.testing.assert_allclose(sol.scale[:, 0], [0.5, 1, 1], atol=1e-12)
    # min_overlap_size above the pair size: A is on its own, everything stays unchanged
    sol = solve_global_model(["A", "B"], {"A", "B"}, whole, overlap, min_overlap_size=21)
    np.testing.assert_allclose(sol.scale[:, 0], [1, 1])


# --------------------------------------------------------------------------- invariance


def test_identical_for_every_window_size_and_parallel_setting(clean_mosaic, tmp_path):
    base = global_regression(clean_mosaic.paths, str(tmp_path / "base"))
    expected = [read(p) for p in base]
    settings = [
        {"window_size": 37},
        {"window_size": (100, 9)},
        {"window_size": "internal"},
        {"window_size": "whole"},
        {"window_parallel_workers": ("thread", 3), "window_size": 50},
        {"image_parallel_workers": ("thread", 2), "window_parallel_workers": ("process", 2),
         "window_size": 64},
    ]
    for k, extra in enumerate(settings):
        outputs = global_regression(clean_mosaic.paths, str(tmp_path / f"run{k}"), **extra)
        for want, path in zip(expected, outputs, strict=True):
            np.testing.assert_array_equal(read(path), want, err_msg=str(extra))
    # Image-level processes, run as the command line would: in a fresh interpreter. (This test
    # process has written compressed GeoTIFFs, and a child forked after that cannot use GDAL's
    # compression thread pool: see the writer's handling of NUM_THREADS.)
    code = ("import sys; from spectralmatch.match.global_regression import global_regression; "
            "global_regression(sys.argv[1:-1], sys.argv[-1], "
            "image_parallel_workers=('process', 2), window_size=40)")
    subprocess.run([sys.executable, "-c", code, *clean_mosaic.paths, str(tmp_path / "proc")],
                   check=True, timeout=120, capture_output=True)
    for want, path in zip(expected, sorted((tmp_path / "proc").glob("*.tif")), strict=True):
        np.testing.assert_array_equal(read(path), want)


def test_cog_output_float_output_and_progress(clean_mosaic, tmp_path):
    calls = []
    outputs = global_regression(clean_mosaic.paths[:2], str(tmp_path / "cog"), save_as_cog=True,
                                calculation_dtype="float64",
                                progress=lambda f, m: calls.append(f))
    floats = global_regression(clean_mosaic.paths[:2], str(tmp_path / "float"),
                               output_dtype="float64", calculation_dtype="float64")
    ds = gdal.Open(outputs[0])
    assert ds.GetMetadata("IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    assert ds.GetMetadataItem("SPECTRALMATCH_FUNCTION") == "global_regression"
    assert ds.GetRasterBand(1).GetOverviewCount() == 0  # 128 px: no overview needed
    ds = None
    # Float outputs hold the unrounded values; rounding them half away gives the integer output.
    y, x = read(floats[0]), read(clean_mosaic.paths[0])
    valid = x != 0
    assert (y[~valid] == 0).all()
    rounded = np.sign(y) * np.floor(np.abs(y) + 0.5)
    rounded = np.where(rounded == 0, 1, rounded)
    np.testing.assert_array_equal(read(outputs[0])[valid], rounded[valid])
    assert len(calls) > 2 and calls == sorted(calls) and calls[-1] == pytest.approx(1.0)


# --------------------------------------------------------------------------- bad input


def bad_case_raises(tmp_path, error, match, inputs, output=None, **kwargs):
    out = tmp_path / "bad_out"
    with pytest.raises(error, match=match):
        global_regression(inputs, str(out) if output is None else output, **kwargs)
    assert not out.exists() or not any(out.iterdir())


def test_bad_inputs_fail_before_any_output(clean_mosaic, tmp_path, make_raster):
    paths = clean_mosaic.paths
    bad_case_raises(tmp_path, PathError, "not an existing file", paths + [str(tmp_path / "no.tif")])
    (tmp_path / "empty").mkdir()
    bad_case_raises(tmp_path, PathError, "no files found", str(tmp_path / "empty"))
    other_crs = make_raster("crs.tif", np.ones((3, 8, 8), np.uint16), crs="EPSG:4326",
                            geotransform=(0, 1, 0, 8, 0, -1), nodata=0)
    bad_case_raises(tmp_path, RasterError, "different CRS", paths + [other_crs])
    two_bands = make_raster("b2.tif", np.ones((2, 8, 8), np.uint16), nodata=0,
                            geotransform=clean_mosaic.truth["tile_0_0"]["geotransform"])
    bad_case_raises(tmp_path, RasterError, "bands", paths + [two_bands])
    bad_case_raises(tmp_path, PathError, "same file as input", paths,
                    output=[str(tmp_path / "x.tif"), paths[0], str(tmp_path / "y.tif"),
                            str(tmp_path / "z.tif")])
    model = load_json_after_run(clean_mosaic, tmp_path)
    model["tile_0_0"]["overlap_stats"]["tile_0_1"]["band_2"]["size"] = "many"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(model))
    bad_case_raises(tmp_path, ParameterError, r"tile_0_0\.overlap_stats\.tile_0_1\.band_2\.size",
                    paths, load_adjustments=str(broken))
    del model["tile_0_0"]["overlap_stats"]["tile_0_1"]["band_2"]
    broken.write_text(json.dumps(model))
    bad_case_raises(tmp_path, ParameterError, r"tile_0_0\.overlap_stats\.tile_0_1 .*band_2",
                    paths, load_adjustments=str(broken))
    broken.write_text("{not json")
    bad_case_raises(tmp_path, ParameterError, "not a readable JSON", paths,
                    load_adjustments=str(broken))
    bad_case_raises(tmp_path, ParameterError, "unknown image name.*tile_9_9", paths,
                    specify_model_images=("include", ["tile_9_9"]))
    far = make_raster("far.tif", np.ones((3, 8, 8), np.uint16), nodata=0,
                      geotransform=(0, 10, 0, 80, 0, -10))
    bad_case_raises(tmp_path, RasterError, "no two images overlap", [paths[0], far])
    bad_case_raises(tmp_path, ParameterError, "image_parallel_workers",
                    paths, image_parallel_workers=("gpu", 2))
    bad_case_raises(tmp_path, ParameterError, "window_parallel_workers",
                    paths, window_parallel_workers=("thread", 0))
    bad_case_raises(tmp_path, ParameterError, "window_size", paths, window_size=-3)
    bad_case_raises(tmp_path, ParameterError, "custom_nodata_value", paths,
                    custom_nodata_value=-5)  # does not fit uint16
    bad_case_raises(tmp_path, ParameterError, "vector_mask", paths,
                    vector_mask=("inside", str(tmp_path / "none.gpkg")))
    bad_case_raises(tmp_path, ParameterError, "calculation_dtype", paths,
                    calculation_dtype="int16")


def load_json_after_run(sample, tmp_path) -> dict:
    path = tmp_path / "good.json"
    global_regression(sample.paths, str(tmp_path / "good"), save_adjustments=str(path))
    return load_json(path)


def test_errors_are_spectralmatch_errors():
    with pytest.raises(SpectralMatchError):
        global_regression([], "/tmp/never")


def test_include_an_image_known_only_from_the_loaded_model(clean_mosaic, tmp_path):
    model_path = tmp_path / "m.json"
    global_regression(clean_mosaic.paths, str(tmp_path / "all"), save_adjustments=str(model_path))
    resolved = tmp_path / "resolved.json"
    global_regression(clean_mosaic.paths[:3], str(tmp_path / "part"),
                      load_adjustments=str(model_path), save_adjustments=str(resolved),
                      specify_model_images=("include", ["tile_1_1"]))
    model = load_json(resolved)
    s, o = params(model, "tile_1_1")
    np.testing.assert_allclose(s, 1.0, atol=1e-12)
    np.testing.assert_allclose(o, 0.0, atol=1e-8)
    g_ref = np.array(clean_mosaic.truth["tile_1_1"]["gains"])
    for name in ("tile_0_0", "tile_0_1", "tile_1_0"):
        s, _ = params(model, name)
        gains = np.array(clean_mosaic.truth[name]["gains"])
        np.testing.assert_allclose(s * gains / g_ref, 1.0, atol=1e-3)


def test_command_line_parses_tuple_arguments(clean_mosaic, tmp_path, capsys):
    from spectralmatch.cli import main

    functions = {"global_regression": global_regression}
    assert main(["global_regression", "--help"], functions=functions) == 0
    text = capsys.readouterr().out
    for name in ("--specify_model_images", "--window-parallel-workers", "--load_adjustments",
                 "--min_overlap_size", "--weight_by_size"):
        assert name in text
    code = main(["global_regression", *[f"{p}" for p in clean_mosaic.paths[:1]],
                 str(tmp_path / "cli"), "--window_parallel_workers", "('thread', 2)",
                 "--specify-model-images", "('include', ['tile_0_0'])"], functions=functions)
    assert code == 0
    assert (tmp_path / "cli" / "tile_0_0_Global.tif").is_file()
    code = main(["global_regression", clean_mosaic.paths[0], str(tmp_path / "cli2"),
                 "--image_parallel_workers", "('gpu', 2)"], functions=functions)
    assert code == 1
    assert "image_parallel_workers" in capsys.readouterr().err
