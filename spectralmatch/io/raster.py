"""Opening rasters, describing them (:class:`RasterInfo`), validating sets of inputs, reading.

GDAL exceptions are switched on when this module is imported: failures raise, while GDAL
warnings (e.g. TIFF photometric notes) never abort; GDAL reports them through its own error
handler (stderr by default, Python logging after ``gdal.ConfigurePythonLogging()``). Open
datasets are cached per thread (each worker opens its own handles; GDAL handles are neither
picklable nor thread-safe).
"""
from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from osgeo import gdal, gdal_array, osr

from ..errors import ParameterError, RasterError
from .windows import Window

logger = logging.getLogger("spectralmatch.io")

gdal.UseExceptions()
osr.UseExceptions()
if "GDAL_CACHEMAX" not in os.environ:
    # GDAL's default block cache is 5 % of RAM; windows are read and written whole, so a modest
    # cache keeps memory bounded by the window plan instead of the machine size.
    gdal.SetCacheMax(min(gdal.GetCacheMax(), 64 * 1024 * 1024))

#: numpy dtype names that GDAL can store, in the order GDAL numbers them.
SUPPORTED_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "uint64",
                    "float32", "float64")


def open_raster(path: str, *, update: bool = False, parameter: str = "input_images") -> gdal.Dataset:
    """Open a raster with GDAL, raising :class:`RasterError` that names the file on failure."""
    if not os.path.exists(path):
        raise RasterError(f"{parameter}: file '{path}' does not exist")
    try:
        ds = gdal.Open(os.fspath(path), gdal.GA_Update if update else gdal.GA_ReadOnly)
    except RuntimeError as exc:
        raise RasterError(f"{parameter}: cannot open '{path}' as a raster: {exc}") from exc
    if ds is None:
        raise RasterError(f"{parameter}: cannot open '{path}' as a raster")
    return ds


def numpy_dtype_name(gdal_type: int) -> str:
    """numpy dtype name of a GDAL data type."""
    return np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(gdal_type)).name


def band_dtype_name(band: gdal.Band) -> str:
    """numpy dtype name of a band, including GDAL < 3.7's signed bytes (Byte + SIGNEDBYTE)."""
    if (band.DataType == gdal.GDT_Byte
            and band.GetMetadataItem("PIXELTYPE", "IMAGE_STRUCTURE") == "SIGNEDBYTE"):
        return "int8"
    return numpy_dtype_name(band.DataType)


def gdal_type(dtype: str | np.dtype) -> int:
    """GDAL data type code of a numpy dtype.

    GDAL < 3.7 has no Int8 type: int8 maps to Byte, and files need the ``PIXELTYPE=SIGNEDBYTE``
    creation option (see :func:`dtype_creation_options`).
    """
    code = gdal_array.NumericTypeCodeToGDALTypeCode(np.dtype(dtype))
    if code is None:
        raise ParameterError(f"dtype '{dtype}' cannot be stored by GDAL; use one of "
                             f"{', '.join(SUPPORTED_DTYPES)}")
    return code


def dtype_creation_options(dtype: str | np.dtype) -> list[str]:
    """Creation options a GeoTIFF needs to store ``dtype`` (signed bytes on GDAL < 3.7)."""
    if np.dtype(dtype) == np.int8 and gdal_type(dtype) == gdal.GDT_Byte:
        return ["PIXELTYPE=SIGNEDBYTE"]
    return []


@dataclass(frozen=True)
class RasterInfo:
    """Everything the algorithms need to know about one raster, without an open handle.

    Picklable and immutable: workers receive it and open their own datasets from ``path``.
    """

    path: str
    name: str
    width: int
    height: int
    band_count: int
    dtype: str
    nodata: tuple[float | None, ...]
    geotransform: tuple[float, float, float, float, float, float]
    crs_wkt: str
    block_size: tuple[int, int]
    band_descriptions: tuple[str, ...] = field(default=(), compare=False)
    color_interpretations: tuple[int, ...] = field(default=(), compare=False)
    has_geotransform: bool = True

    @classmethod
    def from_dataset(cls, ds: gdal.Dataset, path: str) -> RasterInfo:
        bands = [ds.GetRasterBand(i + 1) for i in range(ds.RasterCount)]
        if not bands:
            raise RasterError(f"'{path}' has no raster bands")
        return cls(
            path=os.fspath(path),
            name=os.path.splitext(os.path.basename(path))[0],
            width=ds.RasterXSize,
            height=ds.RasterYSize,
            band_count=ds.RasterCount,
            dtype=band_dtype_name(bands[0]),
            nodata=tuple(b.GetNoDataValue() for b in bands),
            geotransform=tuple(ds.GetGeoTransform(can_return_null=True) or (0, 1, 0, 0, 0, 1)),
            crs_wkt=ds.GetProjection() or "",
            block_size=tuple(bands[0].GetBlockSize()),
            band_descriptions=tuple(b.GetDescription() for b in bands),
            color_interpretations=tuple(b.GetColorInterpretation() for b in bands),
            has_geotransform=ds.GetGeoTransform(can_return_null=True) is not None,
        )

    @classmethod
    def from_path(cls, path: str, *, parameter: str = "input_images") -> RasterInfo:
        ds = open_raster(path, parameter=parameter)
        return cls.from_dataset(ds, path)

    @property
    def nodata_value(self) -> float | None:
        """Nodata of band 1 (the value the original uses for the whole image)."""
        return self.nodata[0]

    @property
    def resolution(self) -> tuple[float, float]:
        """Absolute pixel size (x, y) in CRS units."""
        return abs(self.geotransform[1]), abs(self.geotransform[5])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min_x, min_y, max_x, max_y) of the whole image."""
        return self.full_window.bounds(self.geotransform)

    @property
    def full_window(self) -> Window:
        return Window(0, 0, self.width, self.height)

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    @property
    def is_north_up(self) -> bool:
        gt = self.geotransform
        return gt[2] == 0 and gt[4] == 0 and gt[1] > 0 and gt[5] < 0

    def window_for_bounds(self, bounds: Sequence[float]) -> Window | None:
        """Pixels of this image covering ``bounds``, clipped to the image (None if outside)."""
        return Window.from_bounds(bounds, self.geotransform).clip(self.width, self.height)


def same_crs(wkt_a: str, wkt_b: str) -> bool:
    """True when two WKT strings describe the same coordinate reference system."""
    if wkt_a == wkt_b:
        return True
    if not wkt_a or not wkt_b:
        return False
    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromWkt(wkt_a)
    b.ImportFromWkt(wkt_b)
    return bool(a.IsSame(b))


def _same_value(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return (math.isnan(a) and math.isnan(b)) or a == b


def inspect_rasters(paths: Sequence[str], *, require_georeferenced: bool = True,
                    same_crs_required: bool = True, same_band_count: bool = True,
                    same_nodata: bool = True, same_resolution: bool = False,
                    parameter: str = "input_images") -> list[RasterInfo]:
    """Describe every input and check that the set can be processed together.

    Each failed check raises :class:`RasterError` naming the file and the property, compared
    with the first input. NaN nodata values compare equal to each other.
    """
    infos = [RasterInfo.from_path(p, parameter=parameter) for p in paths]
    if not infos:
        return infos
    first = infos[0]
    for info in infos:
        if require_georeferenced and (not info.has_geotransform or not info.crs_wkt):
            what = "geotransform" if not info.has_geotransform else "coordinate reference system"
            raise RasterError(f"{parameter}: '{info.path}' has no {what}; "
                              "inputs must be georeferenced")
        if require_georeferenced and not info.is_north_up:
            raise RasterError(f"{parameter}: '{info.path}' has a rotated or south-up "
                              f"geotransform {info.geotransform}; warp it to north-up first")
    for info in infos[1:]:
        if same_crs_required and not same_crs(first.crs_wkt, info.crs_wkt):
            raise RasterError(f"{parameter}: '{info.path}' has a different CRS than "
                              f"'{first.path}'; reproject the inputs to one CRS (align_rasters)")
        if same_band_count and info.band_count != first.band_count:
            raise RasterError(f"{parameter}: '{info.path}' has {info.band_count} bands but "
                              f"'{first.path}' has {first.band_count}; all inputs need the same "
                              "band count")
        if same_nodata:
            for band, (a, b) in enumerate(zip(first.nodata, info.nodata, strict=False), start=1):
                if not _same_value(a, b):
                    raise RasterError(
                        f"{parameter}: band {band} of '{info.path}' has nodata {b} but "
                        f"'{first.path}' has {a}; give custom_nodata_value to use one value")
        if same_resolution and not np.allclose(info.resolution, first.resolution, rtol=1e-9):
            raise RasterError(f"{parameter}: '{info.path}' has resolution {info.resolution} "
                              f"but '{first.path}' has {first.resolution}")
    return infos


def resolve_nodata(infos: Sequence[RasterInfo], custom_nodata_value: float | None) -> float | None:
    """The nodata value of a run: the custom value, else band 1 of the first image, else None."""
    file_value = infos[0].nodata_value if infos else None
    if custom_nodata_value is not None:
        if isinstance(custom_nodata_value, bool) or not isinstance(custom_nodata_value,
                                                                   (int, float, np.number)):
            raise ParameterError(f"custom_nodata_value={custom_nodata_value!r} is not a number")
        if file_value is not None and not _same_value(file_value, float(custom_nodata_value)):
            logger.warning("custom_nodata_value %s overrides the nodata value %s of '%s'",
                           custom_nodata_value, file_value, infos[0].path)
        return float(custom_nodata_value)
    if file_value is None:
        logger.warning("No nodata value in '%s' and no custom_nodata_value: every pixel is "
                       "treated as valid", infos[0].path if infos else "?")
    return file_value


def resolve_dtype(infos: Sequence[RasterInfo], dtype: str | None, *,
                  parameter: str = "output_dtype") -> str:
    """The output dtype name: ``dtype`` if given (validated), else the first input's dtype."""
    if dtype is None:
        return infos[0].dtype
    try:
        name = np.dtype(dtype).name
    except TypeError as exc:
        raise ParameterError(f"{parameter}={dtype!r} is not a dtype; use one of "
                             f"{', '.join(SUPPORTED_DTYPES)}") from exc
    if name not in SUPPORTED_DTYPES:
        raise ParameterError(f"{parameter}={dtype!r} cannot be written by GDAL; use one of "
                             f"{', '.join(SUPPORTED_DTYPES)}")
    return name


def check_nodata_fits(nodata: float | None, dtype: str, *, parameter: str = "custom_nodata_value") -> None:
    """Raise when ``nodata`` cannot be represented in ``dtype``."""
    if nodata is None:
        return
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        # isfinite first: int(inf) would raise OverflowError instead of a clear message.
        if (not math.isfinite(nodata) or nodata != int(nodata)
                or not info.min <= nodata <= info.max):
            raise ParameterError(f"{parameter}: nodata {nodata} cannot be stored in {dtype} "
                                 f"(integers from {info.min} to {info.max})")
    elif dt.kind == "f":
        limit = float(np.finfo(dt).max)
        if math.isfinite(nodata) and abs(nodata) > limit:
            raise ParameterError(f"{parameter}: nodata {nodata} cannot be stored in {dtype} "
                                 f"(finite values up to ±{limit:g}, NaN or ±inf)")


# Per-thread cache of open datasets: workers (threads or processes) reuse handles by path.
_local = threading.local()


def _forget_inherited_datasets() -> None:
    # A forked worker must not read through the parent's handles: they share the file offset
    # with the parent and every sibling, so concurrent reads would interleave. The inherited
    # handles are kept referenced but unused, so closing them cannot touch the parent's files.
    global _local
    _inherited_caches.append(_local)
    _local = threading.local()


_inherited_caches: list[threading.local] = []


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_datasets)


def cached_dataset(path: str) -> gdal.Dataset:
    """A read-only dataset for ``path``, opened once per thread (and per process).

    The cached handle is reopened when the file was replaced or changed since it was opened
    (inode, size or modification time differ), so a later run never reads stale pixels.
    """
    cache = getattr(_local, "datasets", None)
    if cache is None:
        cache = _local.datasets = {}
    try:
        st = os.stat(path)
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        stamp = None
    entry = cache.get(path)
    if entry is None or entry[1] != stamp:
        entry = cache[path] = (open_raster(path), stamp)
    return entry[0]


def release_cached_datasets() -> None:
    """Close this thread's cached datasets (e.g. before files are replaced)."""
    cache = getattr(_local, "datasets", None)
    if cache:
        cache.clear()


def read_window(ds: gdal.Dataset, window: Window, bands: Sequence[int] | None = None) -> np.ndarray:
    """Read ``window`` of ``bands`` (1-based, default all) as an array (bands, rows, cols)."""
    band_list = list(bands) if bands is not None else list(range(1, ds.RasterCount + 1))
    arr = ds.ReadAsArray(*window.gdal_args(), band_list=band_list)
    if arr is None:
        raise RasterError(f"reading window {window} of '{ds.GetDescription()}' failed")
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    return arr
