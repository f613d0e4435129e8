"""Block map files of local block adjustment: save, load, associate with images.

Format (compatible with the original spectralmatch, ALGORITHMS.md §3.4):

* A **block map** is a GeoTIFF of ``cols × rows`` pixels (one pixel per block), one band per
  image band, dtype = ``calculation_dtype``, CRS of the first input, geotransform
  ``(min_x, block_width, 0, max_y, 0, −block_height)``. Blocks without a mean hold the nodata
  value: the run's nodata value, or NaN when the images have none. (A valid mean that happens
  to equal the nodata value is stored one unit in the last place away from it.)
* The **reference map** records ``SPECTRALMATCH_BLOCK_MAP=reference`` and
  ``SPECTRALMATCH_CONTRIBUTORS`` (the image names averaged into it).
* A **local map** records ``SPECTRALMATCH_BLOCK_MAP=local``, ``SPECTRALMATCH_IMAGE_NAME``,
  ``SPECTRALMATCH_PIXEL_MIN`` / ``_PIXEL_MAX`` (per band, for the shift of the gamma method)
  and ``SPECTRALMATCH_BLOCK_VALID_PIXEL_THRESHOLD``.
* Beside each local map ``X.tif`` a **cell sidecar** ``X.cells.tif`` (float64) stores the
  statistics the means were made from, over the image's block rectangle at ``SUBCELLS``
  cells per block: bands ``1..B`` = sums, ``B+1..2B`` = valid-pixel counts, ``2B+1`` = the
  image's pixel centres per cell (its footprint). With it, loading re-applies
  ``block_valid_pixel_threshold`` and support matching works exactly as in the run that saved
  it, so a resumed run equals a full run. Maps without a sidecar (e.g. from the original
  spectralmatch) are used as stored.

Loading: all maps must have the same shape and bounds (to 1e-6 of a block). A local map
belongs to the input whose name equals its recorded image name; otherwise to the input with the
longest name contained in the map's file name (the original's substring rule, made
unambiguous). Maps that belong to no input still take part in the reference.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass

import numpy as np
from osgeo import gdal

from ..errors import ParameterError, PathError, RasterError
from ..io.paths import image_name
from ..io.raster import open_raster
from ..io.windows import Window
from ..io.writer import METADATA_PREFIX, RasterWriter
from ..kernels.blocks import new_extrema
from ._block_grid import SUBCELLS, Canvas
from ._block_stats import CellStats
from ._local_model import LocalMap

logger = logging.getLogger("spectralmatch")

ROLE_KEY = "BLOCK_MAP"
SIDECAR_SUFFIX = ".cells"


def sidecar_path(map_path: str) -> str:
    """Path of the cell sidecar of a local map: ``X.tif`` -> ``X.cells.tif``."""
    stem, ext = os.path.splitext(map_path)
    return f"{stem}{SIDECAR_SUFFIX}{ext or '.tif'}"


def _map_nodata(nodata: float | None) -> float:
    return float("nan") if nodata is None else float(nodata)


def _encode(values: np.ndarray, nodata: float, dtype: str) -> np.ndarray:
    """Map values in ``dtype`` with NaN -> nodata and valid values moved off the nodata value."""
    out = np.asarray(values, dtype=dtype).copy()
    if not math.isnan(nodata):
        clash = np.isfinite(out) & (out == np.asarray(nodata, dtype=dtype))
        if clash.any():
            out[clash] = np.nextafter(out[clash], np.asarray(np.inf, dtype=dtype))
        out[~np.isfinite(out)] = nodata
    return out


def _write_grid(path: str, array: np.ndarray, geotransform, crs_wkt: str, nodata: float | None,
                dtype: str, metadata: dict) -> None:
    bands, rows, cols = array.shape
    with RasterWriter(path, width=cols, height=rows, band_count=bands, dtype=dtype,
                      geotransform=geotransform, crs_wkt=crs_wkt, nodata=nodata,
                      metadata=metadata) as writer:
        writer.write(Window(0, 0, cols, rows), np.ascontiguousarray(array, dtype=dtype))


def save_reference_map(path: str, ref: np.ndarray, canvas: Canvas, crs_wkt: str,
                       nodata: float | None, dtype: str, contributors: list[str],
                       extra: dict) -> None:
    """Write the reference map (bands, rows, cols) on the canvas grid."""
    nd = _map_nodata(nodata)
    meta = {**extra, ROLE_KEY: "reference", "CONTRIBUTORS": contributors}
    _write_grid(path, _encode(ref, nd, dtype), canvas.geotransform(), crs_wkt, nd, dtype, meta)


def save_local_map(path: str, local: LocalMap, canvas: Canvas, crs_wkt: str,
                   nodata: float | None, dtype: str, extrema: np.ndarray | None,
                   threshold: float, extra: dict) -> None:
    """Write a local map on the whole canvas, and its cell sidecar when cells are known."""
    bands = local.means.shape[0]
    full = np.full((bands, *canvas.shape), np.nan)
    r0, c0, nr, nc = local.rect
    full[:, r0:r0 + nr, c0:c0 + nc] = local.means
    nd = _map_nodata(nodata)
    meta = {**extra, ROLE_KEY: "local", "IMAGE_NAME": local.name,
            "BLOCK_VALID_PIXEL_THRESHOLD": threshold}
    if extrema is not None:
        meta["PIXEL_MIN"] = [float(v) for v in extrema[:, 0]]
        meta["PIXEL_MAX"] = [float(v) for v in extrema[:, 1]]
    if local.cells is None:
        # a map loaded without sidecar: keep none rather than a stale one
        stale = sidecar_path(path)
        if os.path.exists(stale):
            os.remove(stale)
    else:
        cells = local.cells
        r0, c0, nr, nc = local.rect
        gt = canvas.geotransform(SUBCELLS)
        cell_gt = (gt[0] + c0 * SUBCELLS * gt[1], gt[1], 0.0, gt[3] + r0 * SUBCELLS * gt[5], 0.0,
                   gt[5])
        stack = np.concatenate([cells.sums, cells.counts, cells.capacity[np.newaxis]])
        cell_meta = {ROLE_KEY: "cells", "IMAGE_NAME": local.name, "SUBCELLS": SUBCELLS,
                     "CELL_AREA": cells.cell_area,
                     "BLOCK_RECT": list(local.rect), "CANVAS": list(canvas.bounds),
                     "GRID": list(canvas.shape)}
        _write_grid(sidecar_path(path), stack, cell_gt, crs_wkt, None, "float64", cell_meta)
    _write_grid(path, _encode(full, nd, dtype), canvas.geotransform(), crs_wkt, nd, dtype, meta)


# ------------------------------------------------------------------------------ loading


@dataclass
class LoadedMap:
    """A block map file as read (values with nodata -> NaN)."""

    path: str
    canvas: Canvas
    means: np.ndarray  # (bands, rows, cols)
    role: str | None
    image_name: str | None
    contributors: list[str] | None
    extrema: np.ndarray | None
    cells: CellStats | None
    rect: tuple[int, int, int, int] | None
    crs_wkt: str

    @property
    def stem(self) -> str:
        return image_name(self.path)


def _metadata(ds: gdal.Dataset) -> dict:
    out = {}
    for key, value in (ds.GetMetadata() or {}).items():
        if key.startswith(METADATA_PREFIX):
            name = key[len(METADATA_PREFIX):]
            try:
                out[name] = json.loads(value)
            except (ValueError, TypeError):
                out[name] = value
    return out


def _canvas_of(ds: gdal.Dataset, path: str, parameter: str) -> Canvas:
    gt = ds.GetGeoTransform(can_return_null=True)
    if gt is None or gt[2] != 0 or gt[4] != 0 or gt[1] <= 0 or gt[5] >= 0:
        raise RasterError(f"{parameter}: block map '{path}' needs a north-up geotransform, "
                          f"got {gt}")
    cols, rows = ds.RasterXSize, ds.RasterYSize
    return Canvas(gt[0], gt[3] + rows * gt[5], gt[0] + cols * gt[1], gt[3], rows, cols)


def read_block_map(path: str, *, parameter: str = "load_block_maps") -> LoadedMap:
    """Read one block map (and its cell sidecar, if any)."""
    if not isinstance(path, (str, os.PathLike)):
        raise ParameterError(f"{parameter}: {path!r} is not a path")
    path = os.fspath(path)
    ds = open_raster(path, parameter=parameter)
    canvas = _canvas_of(ds, path, parameter)
    meta = _metadata(ds)
    native = ds.ReadAsArray()
    if native.ndim == 2:
        native = native[np.newaxis]
    values = native.astype(np.float64)
    for b in range(ds.RasterCount):
        nd = ds.GetRasterBand(b + 1).GetNoDataValue()
        if nd is not None and math.isfinite(nd):
            # compare in the file's dtype, as GDAL does (float32 maps, float64 nodata)
            with np.errstate(over="ignore"):
                values[b][native[b] == np.asarray(nd).astype(native.dtype)] = np.nan
    values[~np.isfinite(values)] = np.nan
    extrema = None
    if "PIXEL_MIN" in meta and "PIXEL_MAX" in meta:
        extrema = np.stack([np.asarray(meta["PIXEL_MIN"], dtype=np.float64),
                            np.asarray(meta["PIXEL_MAX"], dtype=np.float64)], axis=1)
        if extrema.shape != (ds.RasterCount, 2):
            extrema = None
    loaded = LoadedMap(path, canvas, values, meta.get(ROLE_KEY), meta.get("IMAGE_NAME"),
                       meta.get("CONTRIBUTORS"), extrema, None, None, ds.GetProjection() or "")
    side = sidecar_path(path)
    if loaded.role != "cells" and os.path.exists(side):
        loaded.cells, loaded.rect = _read_sidecar(side, canvas, ds.RasterCount, parameter)
    ds = None
    return loaded


def _read_sidecar(path: str, canvas: Canvas, bands: int,
                  parameter: str) -> tuple[CellStats, tuple[int, int, int, int]]:
    ds = open_raster(path, parameter=parameter)
    meta = _metadata(ds)
    rect = meta.get("BLOCK_RECT")
    ok = (meta.get(ROLE_KEY) == "cells" and meta.get("SUBCELLS") == SUBCELLS
          and isinstance(rect, list) and len(rect) == 4 and ds.RasterCount == 2 * bands + 1
          and list(meta.get("GRID", [])) == list(canvas.shape)
          and isinstance(meta.get("CELL_AREA"), (int, float)) and meta["CELL_AREA"] > 0)
    if ok:
        r0, c0, nr, nc = (int(v) for v in rect)
        ok = (ds.RasterXSize == nc * SUBCELLS and ds.RasterYSize == nr * SUBCELLS
              and r0 >= 0 and c0 >= 0 and r0 + nr <= canvas.rows and c0 + nc <= canvas.cols)
    if not ok:
        raise RasterError(f"{parameter}: '{path}' is not a valid cell sidecar of a {bands}-band "
                          f"block map on a {canvas.rows}×{canvas.cols} grid; delete it to use "
                          "the map without it")
    stack = ds.ReadAsArray().astype(np.float64).reshape(2 * bands + 1, nr * SUBCELLS,
                                                         nc * SUBCELLS)
    ds = None
    cells = CellStats(np.ascontiguousarray(stack[:bands]),
                      np.ascontiguousarray(stack[bands:2 * bands]),
                      np.ascontiguousarray(stack[2 * bands]), new_extrema(bands),
                      float(meta["CELL_AREA"]))
    return cells, (r0, c0, nr, nc)


def check_load_parameter(load_block_maps) -> tuple[str | None, list[str]]:
    """Validate ``load_block_maps``: (reference path | None, [local paths] | None)."""
    accepted = ('None or (reference_path | None, [local map paths] | None) with at least one '
                'of the two given')
    if load_block_maps is None:
        return None, []
    if isinstance(load_block_maps, (str, bytes)) or not isinstance(load_block_maps,
                                                                   (tuple, list)) \
            or len(load_block_maps) != 2:
        raise ParameterError(f"load_block_maps={load_block_maps!r} is not accepted; use {accepted}")
    ref, locals_ = load_block_maps
    if ref is not None and not isinstance(ref, (str, os.PathLike)):
        raise ParameterError(f"load_block_maps: reference {ref!r} must be a path or None")
    if isinstance(locals_, (str, os.PathLike)):
        locals_ = [locals_]
    if locals_ is not None and (not isinstance(locals_, (list, tuple))
                                or not all(isinstance(p, (str, os.PathLike)) for p in locals_)):
        raise ParameterError(f"load_block_maps: local maps {locals_!r} must be a list of paths "
                             "or None")
    local_paths = [os.fspath(p) for p in (locals_ or [])]
    if ref is None and not local_paths:
        raise ParameterError(f"load_block_maps={load_block_maps!r} loads nothing; use {accepted}")
    for p in ([os.fspath(ref)] if ref is not None else []) + local_paths:
        if not os.path.isfile(p):
            raise PathError(f"load_block_maps: block map '{p}' does not exist")
    return (os.fspath(ref) if ref is not None else None), local_paths


def check_same_grid(maps: list[LoadedMap], bands: int) -> Canvas | None:
    """The common canvas of loaded maps; raises when shapes, bounds or band counts differ."""
    if not maps:
        return None
    first = maps[0]
    for m in maps:
        if m.means.shape[0] != bands:
            raise RasterError(f"load_block_maps: '{m.path}' has {m.means.shape[0]} bands but "
                              f"the input images have {bands}")
        if m.canvas.shape != first.canvas.shape:
            raise RasterError(
                f"load_block_maps: '{m.path}' has {m.canvas.rows}×{m.canvas.cols} blocks but "
                f"'{first.path}' has {first.canvas.rows}×{first.canvas.cols}; all block maps "
                "must share one grid (rows × cols)")
        if not m.canvas.same_as(first.canvas):
            raise RasterError(
                f"load_block_maps: '{m.path}' covers {m.canvas.bounds} but '{first.path}' covers "
                f"{first.canvas.bounds}; all block maps must share the same bounds")
    return first.canvas


def match_local_maps(maps: list[LoadedMap], input_names: list[str]) -> tuple[dict[str, LoadedMap],
                                                                            list[LoadedMap]]:
    """Assign local maps to inputs: recorded name first, else the longest contained name."""
    by_input: dict[str, LoadedMap] = {}
    others: list[LoadedMap] = []
    names = set(input_names)
    for m in maps:
        if m.role == "reference":
            raise ParameterError(f"load_block_maps: '{m.path}' is a reference map; pass it as "
                                 "the first item of load_block_maps")
        if m.image_name in names:
            owner = m.image_name
        else:
            hits = [n for n in input_names if n and n in m.stem]
            longest = max((len(n) for n in hits), default=0)
            best = [n for n in hits if len(n) == longest]
            if len(best) > 1:
                raise ParameterError(f"load_block_maps: '{m.path}' matches several inputs "
                                     f"{best}; rename it or record the image name")
            owner = best[0] if best else None
        if owner is None:
            others.append(m)
            continue
        if owner in by_input:
            raise ParameterError(f"load_block_maps: both '{by_input[owner].path}' and '{m.path}' "
                                 f"are local maps of image '{owner}'; give one map per image")
        by_input[owner] = m
    return by_input, others


def loaded_name(m: LoadedMap) -> str:
    """Name of an image known only through its loaded local map."""
    return m.image_name if isinstance(m.image_name, str) and m.image_name else m.stem
