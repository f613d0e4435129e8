"""Target pixel grids of align_rasters and merge_rasters, and image footprints in a target CRS.

A :class:`Grid` is a north-up pixel grid: top-left corner, pixel size and pixel count. Bounds
that lie within :data:`EPS_PIXELS` of a pixel edge are treated as lying on it, so extents that
are exact multiples of the pixel size (up to float noise) do not gain a sliver column or row.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from osgeo import gdal, osr

from ..errors import ParameterError, RasterError
from ..io.raster import RasterInfo, same_crs

logger = logging.getLogger("spectralmatch")

#: Tolerance (in pixels) under which a bound counts as lying on a pixel edge.
EPS_PIXELS = 1e-6

RESOLUTION_STRATEGIES = ("highest", "average", "lowest")


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid: top-left corner (``min_x``, ``max_y``), pixel size, pixel count."""

    min_x: float
    max_y: float
    res_x: float
    res_y: float
    width: int
    height: int

    @property
    def geotransform(self) -> tuple[float, float, float, float, float, float]:
        return (self.min_x, self.res_x, 0.0, self.max_y, 0.0, -self.res_y)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min_x, min_y, max_x, max_y) covered by the whole pixels of the grid."""
        return (self.min_x, self.max_y - self.height * self.res_y,
                self.min_x + self.width * self.res_x, self.max_y)


@dataclass(frozen=True)
class Footprint:
    """Where an image lies in the target CRS and its pixel size there.

    ``reprojected`` is True when the image has to be warped to another CRS (or is not north-up);
    its bounds and resolution are then GDAL's suggested warp output (``gdalwarp -t_srs``).
    """

    bounds: tuple[float, float, float, float]
    resolution: tuple[float, float]
    reprojected: bool


def parse_crs(target_crs: str | None, *, parameter: str = "target_crs") -> str | None:
    """WKT of a user CRS definition ("EPSG:32610", WKT, PROJ string), or None."""
    if target_crs is None:
        return None
    if not isinstance(target_crs, str) or not target_crs.strip():
        raise ParameterError(f"{parameter}={target_crs!r} is not a CRS; give a definition GDAL "
                             "accepts, e.g. 'EPSG:32610', a WKT string or a PROJ string")
    srs = osr.SpatialReference()
    try:
        srs.SetFromUserInput(target_crs)
    except RuntimeError as exc:
        raise ParameterError(f"{parameter}={target_crs!r} is not a CRS GDAL understands: {exc}; "
                             "give e.g. 'EPSG:32610', a WKT string or a PROJ string") from exc
    return srs.ExportToWkt()


def crs_name(wkt: str) -> str:
    """Short readable name of a CRS ("WGS 84 / UTM zone 10N (EPSG:32610)")."""
    if not wkt:
        return "no CRS"
    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    name = srs.GetName() or "unnamed CRS"
    code = srs.GetAuthorityCode(None)
    auth = srs.GetAuthorityName(None)
    return f"{name} ({auth}:{code})" if code and auth else name


def footprint(info: RasterInfo, target_wkt: str) -> Footprint:
    """Bounds and resolution of ``info`` in ``target_wkt`` (probing GDAL's warp when needed)."""
    if same_crs(info.crs_wkt, target_wkt) and info.is_north_up:
        return Footprint(info.bounds, info.resolution, False)
    try:
        probe = gdal.Warp("", info.path, format="VRT", dstSRS=target_wkt)
    except RuntimeError as exc:
        raise RasterError(f"input_images: '{info.path}' cannot be reprojected to "
                          f"{crs_name(target_wkt)}: {exc}") from exc
    gt = probe.GetGeoTransform()
    width, height = probe.RasterXSize, probe.RasterYSize
    probe = None
    bounds = (gt[0], gt[3] + height * gt[5], gt[0] + width * gt[1], gt[3])
    return Footprint(bounds, (abs(gt[1]), abs(gt[5])), True)


def target_resolution(resolutions: Sequence[tuple[float, float]], strategy: str) -> tuple[float, float]:
    """Per-axis minimum ("highest"), mean ("average") or maximum ("lowest") pixel size."""
    if strategy not in RESOLUTION_STRATEGIES:
        raise ParameterError(f"resolution={strategy!r} is not accepted; use one of "
                             f"{', '.join(repr(s) for s in RESOLUTION_STRATEGIES)}")
    res = np.asarray(resolutions, dtype=np.float64)
    reduce = {"highest": np.min, "average": np.mean, "lowest": np.max}[strategy]
    return float(reduce(res[:, 0])), float(reduce(res[:, 1]))


def _floor(value: float) -> int:
    return math.floor(value + EPS_PIXELS)


def _ceil(value: float) -> int:
    return math.ceil(value - EPS_PIXELS)


def grid_for_bounds(bounds: Sequence[float], resolution: tuple[float, float], *, tap: bool) -> Grid:
    """The grid of pixel size ``resolution`` covering ``bounds``.

    With ``tap`` the extent is snapped outward to multiples of the pixel size (``gdalwarp -tap``):
    ``min_x = floor(min_x / res_x) · res_x``, ``max_x = ceil(max_x / res_x) · res_x``, same for y.
    Without it the grid starts at the top-left corner (min_x, max_y) of ``bounds`` and has
    ``ceil(extent / res)`` pixels per axis, so the last column/row may reach past the extent.
    """
    rx, ry = resolution
    min_x, min_y, max_x, max_y = bounds
    if tap:
        c0, c1 = _floor(min_x / rx), _ceil(max_x / rx)
        r0, r1 = _floor(min_y / ry), _ceil(max_y / ry)
        return Grid(c0 * rx, r1 * ry, rx, ry, max(1, c1 - c0), max(1, r1 - r0))
    width = max(1, _ceil((max_x - min_x) / rx))
    height = max(1, _ceil((max_y - min_y) / ry))
    return Grid(min_x, max_y, rx, ry, width, height)


def union_bounds(bounds_list: Sequence[Sequence[float]]) -> tuple[float, float, float, float]:
    """Smallest rectangle containing every (min_x, min_y, max_x, max_y)."""
    arr = np.asarray(bounds_list, dtype=np.float64)
    return (float(arr[:, 0].min()), float(arr[:, 1].min()),
            float(arr[:, 2].max()), float(arr[:, 3].max()))
