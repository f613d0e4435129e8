"""Shared pytest fixtures: tiny GeoTIFFs built directly with GDAL."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, gdal_array, osr

gdal.UseExceptions()

MakeRaster = Callable[..., str]


def write_raster(path: str | os.PathLike, array: np.ndarray, *,
                 geotransform: Sequence[float] | None | str = "default",
                 crs: str | None = "EPSG:32610",
                 nodata: float | Sequence[float | None] | None = None,
                 dtype: str | np.dtype | None = None,
                 block: int | tuple[int, int] | None = None,
                 options: Sequence[str] = (),
                 band_descriptions: Sequence[str] = ()) -> str:
    """Write ``array`` ((bands, rows, cols) or (rows, cols)) as a GeoTIFF and return its path.

    Args:
        path: Output file.
        array: Pixel values; cast to ``dtype`` when given.
        geotransform: GDAL geotransform; default ``(0, 1, 0, rows, 0, -1)``; None for none.
        crs: Anything ``osr.SetFromUserInput`` accepts; None for no CRS.
        nodata: One value for every band, or one per band (None = no nodata on that band).
        dtype: Pixel type (default: the array's dtype).
        block: None (GDAL default strips), an int or (width, height). A block as wide as the
            image gives strips of that height; anything else gives tiles (multiples of 16).
        options: Extra GTiff creation options.
        band_descriptions: Band descriptions to set.
    """
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if dtype is not None:
        arr = arr.astype(dtype)
    bands, rows, cols = arr.shape
    opts = list(options)
    code = gdal_array.NumericTypeCodeToGDALTypeCode(arr.dtype)
    if arr.dtype == np.int8 and code == gdal.GDT_Byte:  # GDAL < 3.7 has no Int8
        opts.append("PIXELTYPE=SIGNEDBYTE")
    if block is not None:
        bw, bh = (block, block) if isinstance(block, int) else block
        if bw >= cols:
            opts.append(f"BLOCKYSIZE={bh}")
        else:
            opts += ["TILED=YES", f"BLOCKXSIZE={bw}", f"BLOCKYSIZE={bh}"]
    ds = gdal.GetDriverByName("GTiff").Create(os.fspath(path), cols, rows, bands, code,
                                              options=opts)
    if isinstance(geotransform, str):
        geotransform = (0.0, 1.0, 0.0, float(rows), 0.0, -1.0)
    if geotransform is not None:
        ds.SetGeoTransform(list(geotransform))
    if crs is not None:
        srs = osr.SpatialReference()
        srs.SetFromUserInput(crs)
        ds.SetProjection(srs.ExportToWkt())
    per_band = list(nodata) if isinstance(nodata, (list, tuple)) else [nodata] * bands
    for i in range(bands):
        band = ds.GetRasterBand(i + 1)
        value = per_band[i]
        if value is not None:
            band.SetNoDataValue(int(value) if arr.dtype.kind in "iu" else float(value))
        if i < len(band_descriptions):
            band.SetDescription(band_descriptions[i])
        band.WriteArray(arr[i])
    ds.FlushCache()
    ds = None  # close: the file is complete on disk
    return os.fspath(path)


@pytest.fixture
def make_raster(tmp_path: Path) -> MakeRaster:
    """``make_raster(path, array, **kwargs) -> str`` writing a GeoTIFF (see write_raster).

    Relative paths are placed in the test's ``tmp_path``.
    """

    def make(path: str | os.PathLike, array: np.ndarray, **kwargs) -> str:
        path = Path(path)
        if not path.is_absolute():
            path = tmp_path / path
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_raster(path, array, **kwargs)

    return make
