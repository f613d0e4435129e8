"""Normalise the bundled Landsat time series (five scenes on one grid, band-specific nodata).

Run from the repository root after `make setup`:

    .venv/bin/python examples/landsat_time_series.py [output_folder]

Global regression brings all five dates to a common radiometric level (every pair overlaps
completely); local block adjustment then removes the remaining local differences (haze,
illumination). The script prints the spread of the per-band means across dates before and
after, and saves the model and block maps so a later run can reuse them.
"""
from __future__ import annotations

import os
import sys

import numpy as np
from osgeo import gdal

from spectralmatch import global_regression, local_block_adjustment, search_paths

HERE = os.path.dirname(os.path.abspath(__file__))


def band_means(paths: list[str]) -> np.ndarray:
    """Per-image, per-band mean of valid pixels (images are small: read whole)."""
    means = []
    for path in paths:
        ds = gdal.Open(path)
        row = []
        for b in range(1, ds.RasterCount + 1):
            band = ds.GetRasterBand(b)
            values = band.ReadAsArray().astype(np.float64)
            nodata = band.GetNoDataValue()
            row.append(values[values != nodata].mean() if nodata is not None else values.mean())
        means.append(row)
    return np.array(means)


def main(output_folder: str) -> None:
    inputs = search_paths(os.path.join(HERE, "data", "landsat", "*.tif"))
    global_out = global_regression(
        inputs, os.path.join(output_folder, "GlobalMatch"),
        save_adjustments=os.path.join(output_folder, "GlobalAdjustments.json"))
    local_out = local_block_adjustment(
        global_out, os.path.join(output_folder, "LocalMatch"), number_of_blocks=25,
        save_block_maps=(os.path.join(output_folder, "BlockMaps", "Reference.tif"),
                         os.path.join(output_folder, "BlockMaps", "$_Local.tif")))
    before, after = band_means(inputs).std(axis=0), band_means(local_out).std(axis=0)
    print("Std of the per-band means across the five dates (DN):")
    print("  before:", np.round(before, 1))
    print("  after: ", np.round(after, 1))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "landsat_output")
