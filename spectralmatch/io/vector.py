"""Vector masks: read, filter by image name, reproject, rasterise per window.

A vector mask is given as ``("include" | "exclude", path[, field])``:

* ``"include"`` keeps the pixels inside the geometries, ``"exclude"`` keeps those outside.
* Every feature of the file's first layer is used. With ``field``, only the features whose
  field value (as text) names the image: values **equal** to the image name (the file stem)
  are used when there are any; otherwise values that **contain** the image name, the original
  spectralmatch rule kept for compatibility (so ``"img1.tif"`` matches image ``img1`` — and
  so does ``"img10"``, which is why exact matches win).
* Geometries are reprojected to the raster's CRS when the layer's CRS differs (vertices are
  transformed; edges stay straight in the raster CRS). A layer without a CRS is assumed to be
  in the raster's CRS, with a warning.
* Rasterisation: by default GDAL's rule, a pixel is inside when its centre is. With
  ``all_touched``, a pixel is inside when a polygon shares area with it (its centre is inside
  or an edge crosses the open pixel square); pixels a polygon meets only at a corner or along
  a pixel edge are not. This is GDAL's ALL_TOUCHED made exact: GDAL itself decides those ties
  differently depending on the window, which would make results depend on the window plan.
  Lines and points use GDAL's ALL_TOUCHED as is.
* Masks of windows are exactly the slices of the whole-image mask, whatever the window plan:
  geometries are converted once to pixel coordinates of the whole raster.

:class:`VectorMask` holds WKB bytes only, so it is picklable and can be sent to worker
processes; each :meth:`VectorMask.rasterize` call builds its own in-memory GDAL objects, so
threads can share one mask.
"""
from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Sequence

import numpy as np
import shapely
from osgeo import gdal, ogr, osr

from ..errors import ParameterError
from .raster import RasterInfo, same_crs
from .windows import Window

logger = logging.getLogger("spectralmatch.io")

gdal.UseExceptions()
ogr.UseExceptions()
osr.UseExceptions()

MODES = ("include", "exclude")
_ACCEPTED = ('None or a tuple ("include" | "exclude", path) or ("include" | "exclude", path, '
             'field)')


def validate_vector_mask(vector_mask: Sequence | None, *,
                         parameter: str = "vector_mask") -> tuple[str, str, str | None] | None:
    """Check a vector mask parameter before any output is written.

    Args:
        vector_mask (tuple | None): ``("include" | "exclude", path[, field])`` or None.
        parameter (str): Parameter name used in error messages.

    Returns:
        The normalised tuple ``(mode, path, field)`` (``field`` is None when not given, and is
        spelled as in the file when it matched case-insensitively), or None when
        ``vector_mask`` is None.

    Raises:
        ParameterError: The value is not such a tuple, the mode is unknown, the file does not
            exist or is not a readable vector file, or the field is not in its first layer
            (the message lists the available fields).
    """
    if vector_mask is None:
        return None
    if isinstance(vector_mask, (str, bytes)) or not isinstance(vector_mask, Sequence) \
            or len(vector_mask) not in (2, 3):
        raise ParameterError(f"{parameter}={vector_mask!r} is not accepted; use {_ACCEPTED}")
    mode, path = vector_mask[0], vector_mask[1]
    field = vector_mask[2] if len(vector_mask) == 3 else None
    if not isinstance(mode, str) or mode not in MODES:
        raise ParameterError(f"{parameter}: mode {mode!r} is not accepted; use \"include\" "
                             "(keep pixels inside the geometries) or \"exclude\" (keep pixels "
                             "outside them)")
    if not isinstance(path, (str, os.PathLike)):
        raise ParameterError(f"{parameter}: the path {path!r} is not a file path")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ParameterError(f"{parameter}: vector file '{path}' does not exist")
    if field is not None and not isinstance(field, str):
        raise ParameterError(f"{parameter}: the field {field!r} must be a field name (str) "
                             "or be left out")
    fields, _ = _layer_info(path, parameter)
    if field is not None:
        field = _resolve_field(field, fields, path, parameter)
    return mode, path, field


_warned_layers: set[str] = set()


def _layer_info(path: str, parameter: str) -> tuple[list[str], str | None]:
    """Field names and CRS of the first layer, raising ParameterError naming the file."""
    import pyogrio  # deferred: only vector masks need it

    try:
        layers = pyogrio.list_layers(path)
        if len(layers) == 0:
            raise ParameterError(f"{parameter}: vector file '{path}' has no layers")
        info = pyogrio.read_info(path, layer=0)
        if len(layers) > 1 and path not in _warned_layers:
            _warned_layers.add(path)
            logger.warning("%s: '%s' has %d layers; only the first, '%s', is used", parameter,
                           path, len(layers), layers[0][0])
    except ParameterError:
        raise
    except Exception as exc:  # pyogrio raises DataSourceError and friends
        raise ParameterError(f"{parameter}: cannot read '{path}' as a vector file: "
                             f"{exc}") from exc
    return [str(f) for f in info["fields"]], info.get("crs")


def _resolve_field(field: str, fields: Sequence[str], path: str, parameter: str) -> str:
    if field in fields:
        return field
    # OGR field names are case-insensitive in most formats (GPKG, shapefile).
    folded = [f for f in fields if f.casefold() == field.casefold()]
    if len(folded) == 1:
        return folded[0]
    available = ", ".join(repr(f) for f in fields) or "none"
    raise ParameterError(f"{parameter}: field {field!r} is not in the first layer of '{path}'; "
                         f"available fields: {available}")


@functools.lru_cache(maxsize=8)
def _read_layer(path: str, field: str | None, mtime_ns: int,
                size: int) -> tuple[str | None, tuple[bytes, ...], tuple[str | None, ...]]:
    """(crs, WKB per feature, field text per feature) of the first layer.

    Cached on the file's modification time and size: the same mask file is read once for all
    images of a run. Features without geometry are dropped; null field values become None.
    """
    import pyogrio.raw

    meta, _, wkb, field_data = pyogrio.raw.read(path, layer=0, force_2d=True,
                                                columns=[field] if field else [])
    values = field_data[0] if field else [None] * len(wkb)
    geoms, texts = [], []
    for g, v in zip(wkb, values, strict=True):
        if g is None:
            continue
        geoms.append(bytes(g))
        texts.append(_as_text(v))
    return meta.get("crs"), tuple(geoms), tuple(texts)


def _as_text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _select_features(texts: Sequence[str | None], name: str) -> tuple[list[int], str]:
    """Indices of features naming ``name``: exact matches if any, else substring matches."""
    exact = [i for i, t in enumerate(texts) if t is not None and t == name]
    if exact:
        return exact, "exact"
    return [i for i, t in enumerate(texts) if t is not None and name in t], "substring"


def _srs(text: str) -> osr.SpatialReference:
    srs = osr.SpatialReference()
    srs.SetFromUserInput(text)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def _reproject(geoms: np.ndarray, src_crs: str, dst_wkt: str, path: str,
               parameter: str) -> np.ndarray:
    ct = osr.CoordinateTransformation(_srs(src_crs), _srs(dst_wkt))

    def transform(xy: np.ndarray) -> np.ndarray:
        if len(xy) == 0:
            return xy
        out = np.asarray(ct.TransformPoints(np.ascontiguousarray(xy, dtype=np.float64)),
                         dtype=np.float64)[:, :2]
        if not np.isfinite(out).all():
            raise ParameterError(f"{parameter}: geometries of '{path}' cannot be transformed "
                                 "to the raster's CRS (coordinates outside its area of use)")
        return out

    try:
        return shapely.transform(geoms, transform)
    except RuntimeError as exc:  # osr raises RuntimeError on failed transforms
        raise ParameterError(f"{parameter}: geometries of '{path}' cannot be transformed to "
                             f"the raster's CRS: {exc}") from exc


def load_vector_mask(vector_mask: Sequence | None, info: RasterInfo, *, all_touched: bool = False,
                     parameter: str = "vector_mask") -> VectorMask | None:
    """Read the mask geometries that apply to one raster.

    Args:
        vector_mask (tuple | None): ``("include" | "exclude", path[, field])`` or None.
        info (RasterInfo): The raster the mask is for; its ``name`` selects features by
            ``field`` and its CRS/geotransform define the rasterisation grid.
        all_touched (bool): Count every pixel a polygon shares area with as inside, instead of
            pixels whose centre is inside (see the module notes on ties).
        parameter (str): Parameter name used in messages.

    Returns:
        The :class:`VectorMask`, or None when ``vector_mask`` is None or when no feature applies
        to this image (no feature in the layer, or none whose ``field`` names the image). In the
        latter case a warning naming the image and the file is logged and the image is processed
        **unmasked**, in both modes: for "exclude" this is exactly an empty mask; for "include"
        it keeps the original spectralmatch behaviour (an image missing from the mask file is
        used whole) instead of silently discarding every pixel of the image.
        When features match but none overlaps the image, the mask is applied as given
        ("include" then keeps nothing, with a warning).

    Raises:
        ParameterError: As :func:`validate_vector_mask`, or when the geometries cannot be
            transformed to the raster's CRS.
    """
    checked = validate_vector_mask(vector_mask, parameter=parameter)
    if checked is None:
        return None
    mode, path, field = checked
    stat = os.stat(path)
    try:
        layer_crs, wkbs, texts = _read_layer(os.path.abspath(path), field, stat.st_mtime_ns,
                                             stat.st_size)
    except Exception as exc:
        raise ParameterError(f"{parameter}: cannot read the features of '{path}': "
                             f"{exc}") from exc

    if field is not None:
        indices, how = _select_features(texts, info.name)
        if indices and how == "substring":
            logger.debug("%s: no '%s' value in '%s' equals image name '%s'; using substring "
                         "matches %s", parameter, field, path, info.name,
                         sorted({texts[i] for i in indices}))
        wkbs = tuple(wkbs[i] for i in indices)
    geoms = shapely.from_wkb(np.array(wkbs, dtype=object)) if wkbs else np.empty(0, object)
    geoms = geoms[~shapely.is_empty(geoms)]
    if not len(geoms):
        where = f" with field '{field}' naming the image" if field is not None else ""
        logger.warning("%s: no feature in '%s'%s applies to image '%s'; the image is processed "
                       "without the %s mask", parameter, path, where, info.name, mode)
        return None

    if layer_crs is None:
        logger.warning("%s: '%s' has no CRS; its coordinates are assumed to be in the CRS of "
                       "'%s'", parameter, path, info.path)
    elif not info.crs_wkt:
        logger.warning("%s: '%s' has no CRS, so the geometries of '%s' are used as they are",
                       parameter, info.path, path)
    elif not same_crs(_srs(layer_crs).ExportToWkt(), info.crs_wkt):
        logger.info("%s: reprojecting the geometries of '%s' from %s to the CRS of '%s'",
                    parameter, path, layer_crs if len(layer_crs) < 40 else "its CRS", info.path)
        geoms = _reproject(geoms, layer_crs, info.crs_wkt, path, parameter)

    mask = VectorMask(mode, info.name, tuple(shapely.to_wkb(geoms)), info.geotransform,
                      all_touched=all_touched, source=path)
    if not mask.intersects(info.full_window):
        if mode == "include":
            logger.warning("%s: the geometries in '%s' for image '%s' do not overlap it; the "
                           "include mask keeps no pixel", parameter, path, info.name)
        else:
            logger.debug("%s: the geometries in '%s' for image '%s' do not overlap it",
                         parameter, path, info.name)
    return mask


def _to_pixel_space(geoms: np.ndarray, gt: Sequence[float]) -> np.ndarray:
    """Geometries in (column, row) coordinates of the raster grid."""
    if gt[2] == 0 and gt[4] == 0 and gt[1] != 0 and gt[5] != 0:
        # Subtract-then-divide keeps vertices that lie on pixel corners exactly on them.
        origin, size = np.array([gt[0], gt[3]]), np.array([gt[1], gt[5]])
        return shapely.transform(geoms, lambda xy: (xy - origin) / size)
    inv = gdal.InvGeoTransform(tuple(gt))
    if inv is None:
        raise ParameterError(f"the raster geotransform {tuple(gt)} is not invertible")
    matrix = np.array([[inv[1], inv[4]], [inv[2], inv[5]]])
    return shapely.transform(geoms, lambda xy: xy @ matrix + (inv[0], inv[3]))


def _boundary_segments(geoms: np.ndarray) -> np.ndarray:
    """Every non-degenerate edge of the polygons' rings as a two-point LineString."""
    rings = shapely.get_rings(shapely.get_parts(geoms))
    coords, ring_index = shapely.get_coordinates(rings, return_index=True)
    same_ring = ring_index[1:] == ring_index[:-1]
    start, end = coords[:-1][same_ring], coords[1:][same_ring]
    proper = np.any(start != end, axis=1)
    return shapely.linestrings(np.stack([start[proper], end[proper]], axis=1))


def _gdal_burn(window: Window, wkbs: Sequence[bytes], all_touched: bool) -> np.ndarray:
    """Burn pixel-space geometries into the window with GDAL; 1 inside, 0 outside."""
    target = gdal.GetDriverByName("MEM").Create("", window.width, window.height, 1,
                                                gdal.GDT_Byte)
    target.SetGeoTransform((window.col_off, 1.0, 0.0, window.row_off, 0.0, 1.0))
    # The geometries are already on the raster grid. Giving layer and target one trivial SRS
    # stops GDAL from warning (once per window) that the layer has no SRS.
    srs = osr.SpatialReference()
    srs.SetLocalCS("raster")
    target.SetSpatialRef(srs)
    source = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = source.CreateLayer("mask", srs=srs, geom_type=ogr.wkbUnknown)
    definition = layer.GetLayerDefn()
    for wkb in wkbs:
        feature = ogr.Feature(definition)
        feature.SetGeometryDirectly(ogr.CreateGeometryFromWkb(wkb))
        layer.CreateFeature(feature)
    options = ["ALL_TOUCHED=TRUE"] if all_touched else []
    gdal.RasterizeLayer(target, [1], layer, burn_values=[1], options=options)
    out = target.GetRasterBand(1).ReadAsArray()
    del layer, source, target, srs  # the layer goes before its data source
    return (out != 0).astype(np.uint8)


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3 × 3 binary dilation (pixels next to a set pixel, diagonals included)."""
    grown = mask.astype(bool)
    grown[1:] |= mask[:-1].astype(bool)
    grown[:-1] |= mask[1:].astype(bool)
    rows = grown.copy()
    grown[:, 1:] |= rows[:, :-1]
    grown[:, :-1] |= rows[:, 1:]
    return grown


def _window_box(window: Window) -> shapely.Polygon:
    return shapely.box(window.col_off, window.row_off, window.col_end, window.row_end)


class VectorMask:
    """Mask geometries for one raster, rasterised window by window.

    Picklable: the state is WKB bytes and plain values; the spatial index is rebuilt on
    unpickling.

    Attributes:
        mode (str): "include" (keep pixels inside the geometries) or "exclude" (keep outside).
        image_name (str): The image the geometries were selected for.
        wkb (tuple[bytes, ...]): Geometries in the raster's CRS.
        geotransform (tuple): The raster's geotransform (window offsets are relative to it).
        all_touched (bool): Pixels a polygon shares area with count as inside, not only pixels
            whose centre is inside.
        source (str): The vector file, for messages.
    """

    def __init__(self, mode: str, image_name: str, wkb: Sequence[bytes],
                 geotransform: Sequence[float], *, all_touched: bool = False,
                 source: str = "") -> None:
        if mode not in MODES:
            raise ParameterError(f"vector mask mode {mode!r} is not \"include\" or \"exclude\"")
        self.mode = mode
        self.image_name = image_name
        self.wkb = tuple(bytes(b) for b in wkb)
        self.geotransform = tuple(float(v) for v in geotransform)
        self.all_touched = bool(all_touched)
        self.source = source
        self._build_index()

    def _build_index(self) -> None:
        # Rasterisation works in pixel coordinates of the whole raster: a window only shifts
        # them by whole pixels (exact in floating point), so every window plan sees the same
        # geometry. Everything here is built eagerly and only read afterwards, so threads can
        # share the mask (GEOS prepared geometries are not thread-safe and are not used).
        geoms = shapely.from_wkb(np.array(self.wkb, dtype=object)) if self.wkb \
            else np.empty(0, dtype=object)
        self._pixel_geoms = _to_pixel_space(geoms, self.geotransform)
        self._pixel_wkb = list(shapely.to_wkb(self._pixel_geoms)) if len(geoms) else []
        self._tree = shapely.STRtree(self._pixel_geoms)
        self._polygonal = np.isin(shapely.get_type_id(self._pixel_geoms), (3, 6))
        self._segments = _boundary_segments(self._pixel_geoms[self._polygonal]) \
            if self.all_touched and self._polygonal.any() else np.empty(0, dtype=object)
        self._segment_tree = shapely.STRtree(self._segments)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._build_index()

    def __repr__(self) -> str:
        return (f"VectorMask(mode={self.mode!r}, image_name={self.image_name!r}, "
                f"geometries={len(self.wkb)}, all_touched={self.all_touched}, "
                f"source={self.source!r})")

    @property
    def geometry_count(self) -> int:
        return len(self.wkb)

    def intersects(self, window: Window) -> bool:
        """True when a geometry intersects the window's footprint."""
        return len(self._tree.query(_window_box(window), predicate="intersects")) > 0

    def rasterize(self, window: Window) -> np.ndarray:
        """The mask of one window of the raster.

        Args:
            window (Window): Pixel window of the raster the mask was loaded for.

        Returns:
            uint8 array (rows, cols): 1 where the pixel is kept (inside the geometries for
            "include", outside for "exclude"), 0 where it is masked out.
        """
        inside = self._burn(window)
        return inside if self.mode == "include" else np.subtract(1, inside, dtype=np.uint8)

    def _burn(self, window: Window) -> np.ndarray:
        """1 where the window's pixels are inside a geometry (see the module notes), else 0."""
        shape = (window.height, window.width)
        if window.is_empty():
            return np.zeros((max(window.height, 0), max(window.width, 0)), dtype=np.uint8)
        footprint = _window_box(window)
        candidates = self._tree.query(footprint)
        if len(candidates) == 0:
            return np.zeros(shape, dtype=np.uint8)
        # A polygon covering the whole window burns every pixel under either rule.
        polygonal = candidates[self._polygonal[candidates]]
        if len(polygonal) and shapely.covers(self._pixel_geoms[polygonal], footprint).any():
            return np.ones(shape, dtype=np.uint8)

        if not self.all_touched:
            return _gdal_burn(window, [self._pixel_wkb[i] for i in candidates], False)

        # all_touched: GDAL's own ALL_TOUCHED decides pixels that a polygon edge meets only at
        # a corner or along a pixel edge differently depending on the window, so for polygons
        # the rule is evaluated exactly: pixel centre inside (GDAL's default rule, which is
        # window independent), or a boundary edge passing through the open pixel square.
        lines = [self._pixel_wkb[i] for i in candidates if not self._polygonal[i]]
        inside = _gdal_burn(window, [self._pixel_wkb[i] for i in polygonal], False)
        if len(polygonal):
            touched = _gdal_burn(window, [self._pixel_wkb[i] for i in polygonal], True)
            rows, cols = np.nonzero(_dilate(touched) & (inside == 0))
            if len(rows):
                c0, r0 = cols + window.col_off, rows + window.row_off
                boxes = shapely.box(c0, r0, c0 + 1, r0 + 1)
                box_i, seg_i = self._segment_tree.query(boxes, predicate="intersects")
                crossed = shapely.relate_pattern(boxes[box_i], self._segments[seg_i],
                                                 "T********")
                hit = np.unique(box_i[crossed])
                inside[rows[hit], cols[hit]] = 1
        if lines:  # lines and points keep GDAL's ALL_TOUCHED rule
            inside |= _gdal_burn(window, lines, True)
        return inside
