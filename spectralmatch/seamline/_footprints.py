"""Effective mosaic polygons (EMPs): the valid-pixel footprint of one raster as a polygon.

The image is read in whole-width strips (bounded memory), each strip turned into a uint8
validity mask by the ``masks`` kernel, and the mask of the whole image is kept at one byte per
pixel in an in-memory GDAL dataset. Very large images are decimated: one mask cell covers
``k × k`` pixels and is valid only when *all* its pixels are valid, so the footprint never
claims a nodata pixel (it loses at most ``k - 1`` valid pixels along its edges). GDAL's
``Polygonize`` (4-connected) turns the mask into polygons in map coordinates; every valid
polygon is kept (a MultiPolygon, holes included).
"""
from __future__ import annotations

import logging
import math

import numpy as np
import shapely
from osgeo import gdal, ogr

from ..errors import ParameterError
from ..io.raster import RasterInfo, open_raster, read_window
from ..io.windows import DEFAULT_WINDOW_BYTES, Window
from ..kernels.masks import valid_mask

logger = logging.getLogger("spectralmatch.seamline")

#: Largest footprint mask (cells) kept in memory before decimation starts: 64 Mi cells = 64 MiB.
MAX_MASK_CELLS = 1 << 26


def footprint_decimation(info: RasterInfo, decimation: int | None,
                         max_mask_cells: int = MAX_MASK_CELLS) -> int:
    """The decimation factor ``k`` used for ``info``: the given one or the smallest that fits."""
    if decimation is not None:
        if isinstance(decimation, bool) or not isinstance(decimation, (int, np.integer)) \
                or decimation < 1:
            raise ParameterError(f"footprint_decimation={decimation!r} is not accepted; use None "
                                 "(automatic) or a positive int (1 = full resolution)")
        return int(decimation)
    pixels = info.width * info.height
    if pixels <= max_mask_cells:
        return 1
    return math.ceil(math.sqrt(pixels / max_mask_cells))


def _strip_rows(info: RasterInfo, k: int, budget_bytes: int) -> int:
    row_bytes = max(1, info.width * info.band_count * info.itemsize)
    rows = max(1, budget_bytes // row_bytes)
    if k > 1:
        return max(k, rows // k * k)
    block_h = max(1, info.block_size[1])
    return rows // block_h * block_h if rows >= block_h else rows


def _decimate_all(mask: np.ndarray, k: int, out_cols: int) -> np.ndarray:
    """Cells of ``k × k`` pixels, valid when every pixel inside the image is valid."""
    rows, cols = mask.shape
    out_rows = math.ceil(rows / k)
    padded = np.ones((out_rows * k, out_cols * k), dtype=np.uint8)  # outside pixels do not veto
    padded[:rows, :cols] = mask
    return padded.reshape(out_rows, k, out_cols, k).min(axis=(1, 3))


def valid_mask_dataset(info: RasterInfo, *, decimation: int = 1, require_all_bands: bool = False,
                       budget_bytes: int = DEFAULT_WINDOW_BYTES) -> gdal.Dataset:
    """An in-memory uint8 GDAL dataset: 1 where the image holds data (decimated by ``k``)."""
    k = decimation
    out_cols, out_rows = math.ceil(info.width / k), math.ceil(info.height / k)
    mem = gdal.GetDriverByName("MEM").Create("", out_cols, out_rows, 1, gdal.GDT_Byte)
    gt = info.geotransform
    mem.SetGeoTransform((gt[0], gt[1] * k, gt[2] * k, gt[3], gt[4] * k, gt[5] * k))
    if info.crs_wkt:
        mem.SetProjection(info.crs_wkt)
    band = mem.GetRasterBand(1)
    ds = open_raster(info.path)
    step = _strip_rows(info, k, budget_bytes)
    for row in range(0, info.height, step):
        window = Window(0, row, info.width, min(step, info.height - row))
        data = read_window(ds, window)
        mask = valid_mask(data, info.nodata, require_all_bands=require_all_bands)
        del data
        if k > 1:
            mask = _decimate_all(mask, k, out_cols)
        band.WriteArray(mask, 0, row // k)
    return mem


def polygonize_mask(mem: gdal.Dataset) -> shapely.MultiPolygon:
    """The valid (non-zero) cells of band 1 of ``mem`` as one valid MultiPolygon (may be empty)."""
    band = mem.GetRasterBand(1)
    vds = ogr.GetDriverByName("Memory").CreateDataSource("footprint")
    layer = vds.CreateLayer("footprint", geom_type=ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
    # The band is its own mask: only valid cells are polygonised; default = 4-connected.
    gdal.Polygonize(band, band, layer, 0, [], callback=None)
    wkbs = [bytes(feature.GetGeometryRef().ExportToWkb()) for feature in layer]
    del layer, vds
    return as_multipolygon(shapely.from_wkb(np.array(wkbs, dtype=object)) if wkbs else [])


def as_multipolygon(geoms) -> shapely.MultiPolygon:
    """The polygonal parts of ``geoms`` (a geometry or array) as one valid MultiPolygon."""
    parts = shapely.get_parts(np.atleast_1d(np.asarray(geoms, dtype=object)))
    parts = parts[shapely.get_type_id(parts) == shapely.GeometryType.POLYGON] if len(parts) else parts
    if len(parts) == 0:
        return shapely.MultiPolygon()
    multi = shapely.multipolygons(parts)
    if not multi.is_valid:
        # Polygonize can emit self-touching rings (diagonal pixel contacts); repair keeps the area.
        repaired = shapely.make_valid(multi, method="structure", keep_collapsed=False)
        parts = shapely.get_parts(repaired)
        parts = parts[shapely.get_type_id(parts) == shapely.GeometryType.POLYGON]
        multi = shapely.multipolygons(parts) if len(parts) else shapely.MultiPolygon()
    return multi


def image_footprint(info: RasterInfo, *, decimation: int = 1, require_all_bands: bool = False,
                    budget_bytes: int = DEFAULT_WINDOW_BYTES) -> shapely.MultiPolygon:
    """The valid-pixel footprint (EMP) of one image in its CRS.

    Args:
        info: The image.
        decimation: Mask cells of ``decimation × decimation`` pixels (1 = exact pixels).
        require_all_bands: A pixel is valid when every band is valid (True) or when at least one
            band is (False).
        budget_bytes: Memory budget of one strip read.

    Returns:
        A valid MultiPolygon, empty when the image has no valid pixel.
    """
    mem = valid_mask_dataset(info, decimation=decimation, require_all_bands=require_all_bands,
                             budget_bytes=budget_bytes)
    footprint = polygonize_mask(mem)
    if decimation > 1 and not footprint.is_empty:
        # Partial cells at the right/bottom edge reach past the image.
        footprint = as_multipolygon(shapely.clip_by_rect(footprint, *info.bounds))
    logger.debug("footprint of %s: %d polygon(s), %d hole(s), area %.6g (decimation %d)",
                 info.name, shapely.get_num_geometries(footprint),
                 int(np.sum(shapely.get_num_interior_rings(shapely.get_parts(footprint)))),
                 footprint.area, decimation)
    return footprint
