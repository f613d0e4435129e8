"""The README's main job, at a small size: it runs end to end and matching lowers seam RMSE."""
import os
import re

import pytest
from osgeo import gdal, ogr

pytest.importorskip("spectralmatch.match.local_block_adjustment")


def test_demo_runs_and_matching_lowers_seam_rmse(tmp_path, capsys):
    from spectralmatch.demo import demo

    mosaic, seamlines, picture = demo(str(tmp_path / "demo"), tile_size=256, seed=3)
    out = capsys.readouterr().out

    match = re.search(r"Mean overlap RMSE: before ([\d.]+), after global ([\d.]+), "
                      r"after global\+local ([\d.]+)", out)
    assert match, out
    before, after_global, after_local = map(float, match.groups())
    assert after_global < before / 3
    assert after_local < after_global

    ds = gdal.Open(mosaic)
    assert ds.RasterCount == 4 and ds.RasterXSize > 256 and ds.RasterYSize > 256
    layer_ds = ogr.Open(seamlines)
    layer = layer_ds.GetLayerByName("seamlines")
    assert layer.GetFeatureCount() == 4
    assert os.path.getsize(picture) > 10_000
    with open(picture, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
