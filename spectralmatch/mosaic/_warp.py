"""Warped views of one image on a target grid, read window by window.

A :class:`WarpSpec` describes ``gdal.Warp(format="VRT")`` of one source onto a :class:`Grid`.
Each thread (or worker process) builds its own in-memory warped VRT from the spec, once, and
reads windows from it; GDAL computes every window with the source margins its resampling
kernel needs, so windows join without seams.

Two warp settings make the result independent of how the output is split into windows (and
equal to one ``gdalwarp`` run with the same settings):

* ``errorThreshold=0`` — exact coordinate transformation (``gdalwarp -et 0``); GDAL's default
  approximation is fitted per processing chunk and shifts values by ±1 between chunkings.
* fixed ``XSCALE``/``YSCALE`` warp options (source pixel size / target pixel size) — by default
  GDAL estimates the downsampling ratio per chunk, which widens the bilinear/cubic kernels by
  slightly different amounts in different chunks.

Nodata is handled per band (``UNIFIED_SRC_NODATA=NO``): a pixel that is nodata in one band does
not blank the other bands; target pixels outside the source get the nodata value. With the
interpolating kernels (bilinear, cubic, cubicspline, lanczos) a target pixel is valid exactly
when the source pixel containing its centre is valid — the footprint nearest-neighbour
resampling gives. Within it, nodata neighbours get zero weight (GDAL's rule). GDAL 3.6 alone
would also fill target pixels whose centre lies on nodata next to valid pixels, growing every
valid area by up to a pixel; the original spectralmatch's WorldView ``Aligned`` output keeps
the footprint (checked in the tests), and so do we, whatever the GDAL version. Aggregating
methods (average, mode, min, ...) keep GDAL's own rule.
"""
from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np
from osgeo import gdal

from ..errors import ParameterError, RasterError
from ..io.raster import read_window
from ..io.windows import Window
from ._grid import Grid

#: Resampling methods of GDAL's warper (``gdalwarp -r``); "nearest" is accepted for "near".
RESAMPLING_METHODS = ("nearest", "near", "bilinear", "cubic", "cubicspline", "lanczos",
                      "average", "rms", "mode", "max", "min", "med", "q1", "q3", "sum")

#: Kernels whose footprint is limited to the nearest-neighbour footprint (see module doc).
INTERPOLATING_METHODS = ("bilinear", "cubic", "cubicspline", "lanczos")

#: Warped datasets kept open per thread (two per image being processed, a few spare).
_CACHE_SIZE = 8
_local = threading.local()
_inherited: list[threading.local] = []


def _forget_inherited() -> None:
    # A forked worker must not read through the parent's warped VRTs (their source handles
    # share file offsets with the parent); keep them referenced but unused, open new ones.
    global _local
    _inherited.append(_local)
    _local = threading.local()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited)


def normalize_resampling(method: str, *, parameter: str = "resampling_method") -> str:
    """GDAL's name for a resampling method; raises listing the accepted names."""
    if isinstance(method, str) and method.lower() in RESAMPLING_METHODS:
        method = method.lower()
        return "near" if method == "nearest" else method
    raise ParameterError(f"{parameter}={method!r} is not a GDAL warp resampling method; use one "
                         f"of {', '.join(repr(m) for m in RESAMPLING_METHODS)}")


def nodata_text(value: float) -> str:
    """A nodata value as GDAL option text ("nan" for NaN)."""
    value = float(value)
    return "nan" if math.isnan(value) else repr(value)


@dataclass(frozen=True)
class WarpSpec:
    """One source warped onto ``grid`` (hashable: it is the key of the per-thread cache).

    Attributes:
        src_path: Source raster path.
        dst_wkt: Target CRS as WKT.
        grid: Target grid.
        resampling: GDAL resampling name.
        src_nodata: Per-band source nodata values, or None (every pixel valid).
        dst_nodata: Nodata of the warped bands (None: pixels outside the source are 0).
        scale: (XSCALE, YSCALE) — target pixels per source pixel along each axis.
    """

    src_path: str
    dst_wkt: str
    grid: Grid
    resampling: str
    src_nodata: tuple[float, ...] | None
    dst_nodata: float | None
    scale: tuple[float, float]

    def warp_options(self) -> dict:
        """Keyword arguments of ``gdal.Warp`` (also used by tests for reference warps)."""
        options = dict(
            dstSRS=self.dst_wkt, outputBounds=self.grid.bounds, xRes=self.grid.res_x,
            yRes=self.grid.res_y, resampleAlg=self.resampling, errorThreshold=0,
            warpOptions=[f"XSCALE={self.scale[0]!r}", f"YSCALE={self.scale[1]!r}",
                         "UNIFIED_SRC_NODATA=NO"],
        )
        if self.src_nodata is not None:
            options["srcNodata"] = " ".join(nodata_text(v) for v in self.src_nodata)
        if self.dst_nodata is not None:
            options["dstNodata"] = nodata_text(self.dst_nodata)
        return options

    @property
    def footprint_spec(self) -> WarpSpec | None:
        """The nearest-neighbour warp whose nodata marks invalid targets (None if not needed)."""
        if self.resampling not in INTERPOLATING_METHODS or self.src_nodata is None:
            return None
        return replace(self, resampling="near")

    def open(self) -> gdal.Dataset:
        """A new in-memory warped VRT of the source on the grid."""
        try:
            ds = gdal.Warp("", self.src_path, format="VRT", **self.warp_options())
        except RuntimeError as exc:
            raise RasterError(f"warping '{self.src_path}' onto the target grid failed: {exc}") from exc
        if (ds.RasterXSize, ds.RasterYSize) != (self.grid.width, self.grid.height):
            raise RasterError(  # a GDAL rounding change would silently shift pixels: refuse
                f"GDAL built a {ds.RasterXSize}×{ds.RasterYSize} grid for '{self.src_path}' "
                f"instead of {self.grid.width}×{self.grid.height}")
        return ds


def source_nodata(nodata: tuple[float | None, ...]) -> tuple[float, ...] | None:
    """Per-band nodata for the warper: each band's own value, band 1's for bands without one."""
    if nodata[0] is None and all(v is None for v in nodata):
        return None
    first = next(v for v in nodata if v is not None)
    return tuple(first if v is None else v for v in nodata)


def warped_dataset(spec: WarpSpec) -> gdal.Dataset:
    """The calling thread's warped VRT for ``spec`` (built on first use, kept in a small LRU)."""
    cache = getattr(_local, "warped", None)
    if cache is None:
        cache = _local.warped = OrderedDict()
    ds = cache.get(spec)
    if ds is None:
        ds = cache[spec] = spec.open()
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)
    else:
        cache.move_to_end(spec)
    return ds


def release_warped(spec: WarpSpec | None = None) -> None:
    """Drop the calling thread's warped VRT of ``spec`` (all of them when None)."""
    cache = getattr(_local, "warped", None)
    if cache:
        if spec is None:
            cache.clear()
        else:
            cache.pop(spec, None)


def read_warped(task: tuple[WarpSpec, Window]) -> np.ndarray:
    """Read one window (bands, rows, cols) of a warped source; a worker task."""
    spec, window = task
    array = read_window(warped_dataset(spec), window)
    near_spec = spec.footprint_spec
    if near_spec is not None:
        near = read_window(warped_dataset(near_spec), window)
        nodata = spec.dst_nodata
        outside = np.isnan(near) if math.isnan(nodata) else near == nodata
        array[outside] = nodata
    return array
