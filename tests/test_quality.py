"""spectralmatch.quality against plain numpy computations on small generated mosaics."""
from __future__ import annotations

import math

import numpy as np
import pytest
from osgeo import gdal

from spectralmatch.errors import ParameterError
from spectralmatch.quality import (
    PairMetrics,
    format_metrics_table,
    mean_rmse,
    overlap_metrics,
    truth_residual,
)
from spectralmatch.sample_data import generate_mosaic

gdal.UseExceptions()


def _read(path):
    ds = gdal.Open(path)
    arr = ds.ReadAsArray().astype(np.float64)
    nodata = ds.GetRasterBand(1).GetNoDataValue()
    gt = ds.GetGeoTransform()
    return arr, nodata, gt


def _reference_pair(path_a, path_b):
    """Numpy bias/RMSE/count over pixels valid in both, for images on one pixel grid."""
    a, nd_a, gt_a = _read(path_a)
    b, nd_b, gt_b = _read(path_b)
    assert gt_a[1] == gt_b[1] and gt_a[5] == gt_b[5]
    dc = round((gt_b[0] - gt_a[0]) / gt_a[1])  # column of b's origin in a
    dr = round((gt_b[3] - gt_a[3]) / gt_a[5])
    r0, r1 = max(0, dr), min(a.shape[1], dr + b.shape[1])
    c0, c1 = max(0, dc), min(a.shape[2], dc + b.shape[2])
    sa = a[:, r0:r1, c0:c1]
    sb = b[:, r0 - dr:r1 - dr, c0 - dc:c1 - dc]
    valid = np.isfinite(sa) & np.isfinite(sb)
    if nd_a is not None:
        valid &= sa != nd_a
    if nd_b is not None:
        valid &= sb != nd_b
    count, bias, rmse = [], [], []
    for k in range(a.shape[0]):
        d = sa[k][valid[k]] - sb[k][valid[k]]
        count.append(d.size)
        bias.append(d.mean())
        rmse.append(math.sqrt((d * d).mean()))
    return np.array(count), np.array(bias), np.array(rmse)


@pytest.fixture(scope="module")
def mosaic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mosaic")
    return generate_mosaic(str(folder), layout="2x2", tile_size=96, bands=3, overlap=0.3,
                           gradient=40.0, noise=3.0, collar=7, seed=3, write_truth=True)


def test_overlap_metrics_match_numpy_on_mosaic_with_collars(mosaic):
    metrics = overlap_metrics(mosaic.paths)
    names = sorted(p.rsplit("/", 1)[1][:-4] for p in mosaic.paths)
    by_name = {p.rsplit("/", 1)[1][:-4]: p for p in mosaic.paths}
    # 2x2 grid: all 6 pairs overlap (the diagonals through the shared corner).
    assert [(m.name_a, m.name_b) for m in metrics] == [
        (a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    for m in metrics:
        count, bias, rmse = _reference_pair(by_name[m.name_a], by_name[m.name_b])
        assert count.min() > 0
        np.testing.assert_array_equal(m.count, count)
        np.testing.assert_allclose(m.bias, bias, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(m.rmse, rmse, rtol=1e-9)
        # Different gains/offsets: the tiles really disagree.
        assert rmse.min() > 5.0


def test_overlap_metrics_independent_of_workers(mosaic):
    serial = overlap_metrics(mosaic.paths)
    threaded = overlap_metrics(mosaic.paths, workers=("thread", 2))
    for s, t in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(s.count, t.count)
        np.testing.assert_array_equal(s.rmse, t.rmse)


def test_overlap_metrics_shifted_copy_hand_values(tmp_path, make_raster):
    rng = np.random.default_rng(0)
    base = rng.integers(100, 1000, size=(2, 40, 50)).astype(np.uint16)
    base[:, :3, :] = 0  # nodata strip in a
    # b covers columns 20..49 of a, one band shifted by +7, the other by a pattern ±3.
    shifted = base[:, :, 20:].astype(np.int64)
    shifted[0] += 7
    pattern = np.where(np.arange(30) % 2 == 0, 3, -3)
    shifted[1] += pattern[None, :]
    shifted[:, :3, :] = 0
    shifted[:, 10, :] = 0  # nodata row in b only
    a = make_raster("a.tif", base, geotransform=(0, 1, 0, 40, 0, -1), nodata=0)
    b = make_raster("b.tif", shifted.astype(np.uint16), geotransform=(20, 1, 0, 40, 0, -1),
                    nodata=0)
    far = make_raster("c.tif", base, geotransform=(500, 1, 0, 40, 0, -1), nodata=0)
    [m] = overlap_metrics([b, far, a])  # c overlaps nothing
    assert (m.name_a, m.name_b) == ("a", "b")
    assert list(m.count) == [36 * 30, 36 * 30]
    np.testing.assert_allclose(m.bias, [-7.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(m.rmse, [7.0, 3.0], rtol=1e-12)
    assert m.weighted_rmse == pytest.approx(5.0)
    assert m.to_dict()["rmse"] == pytest.approx([7.0, 3.0])


def test_overlap_metrics_explicit_nodata_overrides_file(tmp_path, make_raster):
    a = make_raster("a.tif", np.array([[[5, 9], [9, 9]]], dtype=np.int16),
                    geotransform=(0, 1, 0, 2, 0, -1))
    b = make_raster("b.tif", np.array([[[1, 9], [8, 7]]], dtype=np.int16),
                    geotransform=(0, 1, 0, 2, 0, -1))
    [all_valid] = overlap_metrics([a, b])
    assert list(all_valid.count) == [4]
    assert all_valid.bias[0] == pytest.approx((4 + 0 + 1 + 2) / 4)
    [masked] = overlap_metrics([a, b], nodata=9)  # only the pixel (0, 0) is valid in both
    assert list(masked.count) == [1]
    assert masked.rmse[0] == pytest.approx(4.0)


def test_mean_rmse_and_table():
    m1 = PairMetrics("a", "b", np.array([10, 30]), np.array([1.0, -2.0]), np.array([2.0, 4.0]))
    m2 = PairMetrics("a", "c", np.array([60, 0]), np.array([0.5, 0.0]), np.array([1.0, 0.0]))
    assert mean_rmse([m1, m2]) == pytest.approx((10 * 2 + 30 * 4 + 60 * 1) / 100)
    assert mean_rmse([]) == 0.0
    after = [PairMetrics("a", "b", m1.count, m1.bias / 2, m1.rmse / 2),
             PairMetrics("a", "c", m2.count, m2.bias / 2, m2.rmse / 2)]
    table = format_metrics_table([m1, m2], after)
    lines = table.splitlines()
    assert len(lines) == 5
    assert lines[2].split("|")[1:-1] == [" a / b ", " 30 ", " 3.50 ", " 1.75 ", " 1.75 ", " 0.88 "]
    assert lines[-1].startswith("| all pairs | 90 | 2.00 | 1.00 |")
    with pytest.raises(ParameterError, match="pairs"):
        format_metrics_table([m1], after)


def _write_like(src_path, path, array, nodata):
    src = gdal.Open(src_path)
    ds = gdal.GetDriverByName("GTiff").Create(path, src.RasterXSize, src.RasterYSize,
                                              array.shape[0], gdal.GDT_Float64)
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    for k in range(array.shape[0]):
        band = ds.GetRasterBand(k + 1)
        band.SetNoDataValue(nodata)
        band.WriteArray(array[k])
    ds = None
    return path


def test_truth_residual_zero_for_common_affine_images(mosaic, tmp_path):
    gains, offsets = np.array([1.3, 0.7, 2.0]), np.array([-50.0, 12.0, 300.0])
    paths = []
    for k, truth_path in enumerate(mosaic.truth_paths):
        truth = gdal.Open(truth_path).ReadAsArray().astype(np.float64)
        image = gains[:, None, None] * truth + offsets[:, None, None]
        image[np.isnan(truth)] = -9999.0
        paths.append(_write_like(truth_path, str(tmp_path / f"img{k}.tif"), image, -9999.0))
    residual = truth_residual(paths, mosaic.truth_paths)
    assert residual.shape == (3,)
    assert np.all(residual < 1e-4)


def test_truth_residual_matches_numpy_lstsq(mosaic):
    residual = truth_residual(mosaic.paths, mosaic.truth_paths, workers=("thread", 2))
    xs, ys = [[], [], []], [[], [], []]
    for path, truth_path in zip(mosaic.paths, mosaic.truth_paths, strict=True):
        image, nodata, _ = _read(path)
        truth = gdal.Open(truth_path).ReadAsArray().astype(np.float64)
        for k in range(3):
            valid = np.isfinite(truth[k]) & (image[k] != nodata)
            xs[k].append(image[k][valid])
            ys[k].append(truth[k][valid])
    for k in range(3):
        x, y = np.concatenate(xs[k]), np.concatenate(ys[k])
        design = np.column_stack([x, np.ones_like(x)])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        expected = math.sqrt(np.mean((y - design @ coef) ** 2))
        assert residual[k] == pytest.approx(expected, rel=1e-6)
        # Different gains per tile: far from zero (scene spread is ~1000s of DN).
        assert expected > 10.0


def test_truth_residual_rejects_mismatched_lists(mosaic, make_raster):
    with pytest.raises(ParameterError, match="one truth raster per image"):
        truth_residual(mosaic.paths, mosaic.truth_paths[:2])
    small = make_raster("small.tif", np.zeros((3, 8, 8), dtype=np.float32),
                        geotransform=(500000, 10, 0, 4200000, 0, -10))
    with pytest.raises(ParameterError, match="does not match"):
        truth_residual(mosaic.paths[:1], [small])
