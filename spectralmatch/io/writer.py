"""The atomic raster writer: outputs appear complete under their final name, or not at all.

A :class:`RasterWriter` creates ``.<name>.partial.tif`` beside the target, receives windows,
and on :meth:`RasterWriter.commit` finalises the file (metadata, optional COG conversion with
overviews) and renames it with ``os.replace``. Any exception (including ``KeyboardInterrupt``)
inside its ``with`` block removes the temporary files and leaves an existing output untouched.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence

import numpy as np
from osgeo import gdal

from .._checks import check_bool
from .raster import RasterInfo, check_nodata_fits, dtype_creation_options, gdal_type
from .windows import Window

logger = logging.getLogger("spectralmatch.io")

#: Block size of tiled outputs (and of COG tiles).
OUTPUT_BLOCK_SIZE = 512
#: Prefix of the metadata items spectralmatch records (default domain: GDAL 3.6's COG driver
#: copies only that one).
METADATA_PREFIX = "SPECTRALMATCH_"


# GDAL's worker-thread pool does not survive fork(): a forked child that compresses with
# NUM_THREADS hangs forever. Children of a fork therefore compress on their own thread.
_in_forked_child = False


def _mark_forked_child() -> None:
    global _in_forked_child
    _in_forked_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_forked_child)


def _threads_option() -> list[str]:
    return [] if _in_forked_child else ["NUM_THREADS=ALL_CPUS"]


def geotiff_creation_options(dtype: str, *, block_size: int = OUTPUT_BLOCK_SIZE) -> list[str]:
    """Creation options of every GeoTIFF spectralmatch writes (tiled, DEFLATE, BIGTIFF if safer).

    Benchmarks copy inputs with the same options so that ratios compare like with like.
    """
    return [
        "TILED=YES", f"BLOCKXSIZE={block_size}", f"BLOCKYSIZE={block_size}",
        "COMPRESS=DEFLATE", "ZLEVEL=1", "PREDICTOR=2" if np.dtype(dtype).kind in "iu" else "PREDICTOR=1",
        "BIGTIFF=IF_SAFER", "INTERLEAVE=BAND",
        *_threads_option(), *dtype_creation_options(dtype),
    ]


def cog_creation_options(dtype: str, *, block_size: int = OUTPUT_BLOCK_SIZE) -> list[str]:
    """Creation options of GDAL's COG driver (tiles, DEFLATE, overviews, BIGTIFF if safer)."""
    return [
        f"BLOCKSIZE={block_size}", "COMPRESS=DEFLATE", "LEVEL=6",
        "PREDICTOR=YES" if np.dtype(dtype).kind in "iu" else "PREDICTOR=NO",
        "BIGTIFF=IF_SAFER", "OVERVIEWS=IGNORE_EXISTING", "RESAMPLING=AVERAGE",
        *_threads_option(),
    ]


def partial_path(path: str, suffix: str = "partial") -> str:
    """The temporary name used while ``path`` is being written."""
    folder, base = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(base)
    return os.path.join(folder, f".{stem}.{suffix}{ext or '.tif'}")


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # pragma: no cover - reported, never masks the real error
        logger.warning("could not remove temporary file '%s': %s", path, exc)


class RasterWriter:
    """Write one output raster window by window, atomically.

    Use it as a context manager::

        with RasterWriter.like(info, "out.tif", dtype="uint16", nodata=0) as writer:
            for window in windows:
                writer.write(window, array)          # (bands, rows, cols)
        # out.tif exists only now, complete

    Args:
        path: Final output path (GeoTIFF).
        width, height, band_count, dtype: Raster shape and numpy dtype name.
        geotransform, crs_wkt: Georeferencing.
        nodata: Nodata value set on every band (None for none).
        save_as_cog: Convert to a Cloud Optimized GeoTIFF (with overviews) when committing.
        metadata: Items recorded as ``SPECTRALMATCH_<KEY>`` metadata (non-strings as JSON text).
        band_descriptions, color_interpretations: Copied onto the bands when given.
    """

    def __init__(self, path: str, *, width: int, height: int, band_count: int, dtype: str,
                 geotransform: Sequence[float], crs_wkt: str, nodata: float | None = None,
                 save_as_cog: bool = False, metadata: Mapping[str, object] | None = None,
                 band_descriptions: Sequence[str] = (),
                 color_interpretations: Sequence[int] = ()) -> None:
        save_as_cog = check_bool(save_as_cog, "save_as_cog")
        self.path = os.fspath(path)
        self.dtype = np.dtype(dtype).name
        self.save_as_cog = save_as_cog
        self.nodata = nodata
        self.band_count = band_count
        check_nodata_fits(nodata, self.dtype, parameter="nodata")
        self._temp = partial_path(self.path)
        self._cog_source = partial_path(self.path, "partial-src") if save_as_cog else None
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        target = self._cog_source or self._temp
        for stale in (self._temp, self._cog_source):
            if stale:
                _remove_quietly(stale)
        driver = gdal.GetDriverByName("GTiff")
        options = geotiff_creation_options(self.dtype)
        if save_as_cog:  # the COG driver re-encodes it anyway: keep the intermediate fast
            options = [o for o in options if not o.startswith(("COMPRESS", "ZLEVEL", "PREDICTOR"))]
        self._done = False
        self._ds = driver.Create(target, width, height, band_count, gdal_type(self.dtype),
                                 options=options)
        try:
            self._set_up(geotransform, crs_wkt, band_descriptions, color_interpretations,
                         metadata)
        except BaseException:
            self.abort()
            raise

    def _set_up(self, geotransform: Sequence[float], crs_wkt: str,
                band_descriptions: Sequence[str], color_interpretations: Sequence[int],
                metadata: Mapping[str, object] | None) -> None:
        self._ds.SetGeoTransform(list(geotransform))
        if crs_wkt:
            self._ds.SetProjection(crs_wkt)
        nodata = self.nodata
        if nodata is not None:
            # 64-bit integer bands only accept Python ints (a float raises in the bindings).
            nodata = int(nodata) if np.dtype(self.dtype).kind in "iu" else float(nodata)
        for i in range(self.band_count):
            band = self._ds.GetRasterBand(i + 1)
            if nodata is not None:
                # No Fill: GTiff reads, and writes on closing, never-written blocks as nodata.
                band.SetNoDataValue(nodata)
            if i < len(band_descriptions) and band_descriptions[i]:
                band.SetDescription(band_descriptions[i])
            if i < len(color_interpretations) and color_interpretations[i]:
                band.SetColorInterpretation(color_interpretations[i])
        if metadata:
            for key, value in metadata.items():
                text = value if isinstance(value, str) else json.dumps(value, default=str)
                self._ds.SetMetadataItem(METADATA_PREFIX + key.upper(), text)

    @classmethod
    def like(cls, info: RasterInfo, path: str, *, band_count: int | None = None,
             dtype: str | None = None, nodata: float | None = None, **kwargs) -> RasterWriter:
        """A writer on the grid of ``info`` (georeferencing, band names and colours copied)."""
        count = band_count or info.band_count
        return cls(path, width=info.width, height=info.height, band_count=count,
                   dtype=dtype or info.dtype, geotransform=info.geotransform,
                   crs_wkt=info.crs_wkt, nodata=nodata,
                   band_descriptions=kwargs.pop("band_descriptions", info.band_descriptions[:count]),
                   color_interpretations=kwargs.pop("color_interpretations",
                                                    info.color_interpretations[:count]),
                   **kwargs)

    def write(self, window: Window, array: np.ndarray, bands: Sequence[int] | None = None) -> None:
        """Write ``array`` ((bands, rows, cols) or (rows, cols)) at ``window``.

        ``bands`` are 1-based band numbers (default: all bands in order).
        """
        if array.ndim == 2:
            array = array[np.newaxis]
        if array.shape[1:] != (window.height, window.width):
            raise ValueError(f"array shape {array.shape} does not fit window {window}")
        if array.dtype != self.dtype:
            raise ValueError(f"array dtype {array.dtype} differs from the output dtype {self.dtype}")
        band_list = list(bands) if bands is not None else list(range(1, array.shape[0] + 1))
        self._ds.WriteArray(array, window.col_off, window.row_off, band_list=band_list)

    def commit(self) -> str:
        """Finish the file and move it to its final name; returns the final path."""
        self._ds.FlushCache()
        self._ds = None  # closes the file
        if self.save_as_cog:
            src = gdal.Open(self._cog_source)
            out = gdal.Translate(self._temp, src, format="COG",
                                 creationOptions=cog_creation_options(self.dtype))
            if out is None:
                raise RuntimeError(f"COG conversion of '{self.path}' failed")
            out = None
            src = None
            _remove_quietly(self._cog_source)
        os.replace(self._temp, self.path)
        self._done = True
        return self.path

    def abort(self) -> None:
        """Drop the partial output (the final path is left as it was)."""
        self._ds = None
        for temp in (self._temp, self._cog_source):
            if temp:
                _remove_quietly(temp)
                _remove_quietly(temp + ".aux.xml")
        self._done = True

    def __enter__(self) -> RasterWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._done:
            return
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()
