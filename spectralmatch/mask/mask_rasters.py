"""``mask_rasters``: set the pixels outside (or inside) vector geometries to nodata.

Per image: the vector mask's features for that image are selected and reprojected
(:func:`spectralmatch.io.vector.load_vector_mask`), then every window is read, rasterised
against the geometries and masked by the ``masks`` kernel, and handed to the image's atomic
:class:`~spectralmatch.io.writer.RasterWriter`. Rasterisation works on the whole image's pixel
grid, so outputs do not depend on ``window_size`` or on the parallel settings.
"""
from __future__ import annotations

import logging
import math
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from .._checks import check_bool, check_progress
from ..errors import ParameterError, RasterError
from ..io.paths import resolve_input_paths, resolve_output_paths
from ..io.raster import RasterInfo, cached_dataset, check_nodata_fits, inspect_rasters, read_window
from ..io.vector import VectorMask, load_vector_mask, validate_vector_mask
from ..io.windows import Window, WindowSize, normalize_window_size, plan_windows
from ..io.writer import RasterWriter
from ..kernels.masks import apply_keep_mask
from ..parallel import Workers, resolve_workers, run_ordered
from ..progress import Progress, ProgressCallback, configure_logging

logger = logging.getLogger("spectralmatch")

DEFAULT_OUTPUT_PATTERN = "$_Clip.tif"


@dataclass(frozen=True)
class _MaskJob:
    """Everything needed to write one masked output (picklable: sent to image workers)."""

    info: RasterInfo
    output_path: str
    mask: VectorMask | None
    nodata: float
    windows: tuple[Window, ...]
    window_workers: Workers
    save_as_cog: bool
    metadata: dict

    def describe(self) -> str:
        return f"mask_rasters: image '{self.info.name}'"


def mask_rasters(
    input_images: str | list[str],
    output_images: str | list[str],
    vector_mask: tuple[str, str] | tuple[str, str, str] | None = None,
    window_size: WindowSize = None,
    debug_logs: bool = False,
    image_parallel_workers: tuple[str, str | int] | Executor | None = None,
    window_parallel_workers: tuple[str, str | int] | Executor | None = None,
    include_touched_pixels: bool = False,
    custom_nodata_value: float | int | None = None,
    *,
    save_as_cog: bool = False,
    progress: ProgressCallback | None = None,
) -> list[str]:
    """Applies a vector-based mask to one or more rasters, with support for image- and window-level parallelism.

    Each output is its input with the masked-out pixels of every band set to the nodata value:
    with ("include", path[, field]) the pixels outside the geometries, with ("exclude",
    path[, field]) the pixels inside them. A pixel is inside when its centre is (GDAL's
    rasterisation rule) or, with ``include_touched_pixels``, when a geometry touches it at all.
    With a field, only the features whose field value names the image (the file stem) are
    used: values equal to the name when there are any, else values containing it (the
    original's rule). An image no feature applies to is copied unmasked, with a warning.
    Geometries in another CRS are reprojected to the image's CRS.

    Without ``vector_mask`` every output is a copy of its input (with the nodata value set).
    Pixel values are never changed otherwise: with a ``custom_nodata_value`` that differs from
    the file's nodata, pixels holding the file's old nodata value keep it (and count as data
    in the output). Outputs keep the input's size, georeferencing, dtype, band descriptions
    and colour interpretation.

    Args:
        input_images (str | List[str], required): Defines input files from a glob path, folder, or list of paths. Specify like: "/input/files/*.tif", "/input/folder" (assumes *.tif), ["/input/one.tif", "/input/two.tif"].
        output_images (str | List[str], required): Defines output files from a template path, folder, or list of paths (with the same length as the input). Specify like: "/input/files/$.tif", "/input/folder" (assumes $_Clip.tif), ["/input/one.tif", "/input/two.tif"].
        vector_mask (Tuple[Literal["include", "exclude"], str, Optional[str]] | None, optional): Tuple ("include"/"exclude", vector path, optional field name) or None (copy the inputs).
        window_size (int | Tuple[int, int] | Literal["internal", "whole"] | None, optional): Windows read at a time: None for the automatic block-aligned plan (bounded memory), an int or (width, height) for fixed tiles, "internal" for the file's own blocks, "whole" for one window. Outputs do not depend on it.
        debug_logs (bool, optional): If True, prints debug information.
        image_parallel_workers (Tuple[Literal["process", "thread"], Literal["cpu"] | int] | None, optional): Strategy for parallelizing image-level masking (each worker writes whole images).
        window_parallel_workers (Tuple[Literal["process", "thread"], Literal["cpu"] | int] | None, optional): Strategy for parallelizing masking within windows.
        include_touched_pixels (bool, optional): If True, includes pixels touched by mask geometry edges; default is False.
        custom_nodata_value (float | int | None, optional): Value written to masked-out pixels and set as the outputs' nodata; default is each input's own nodata value (an input without one is an error).
        save_as_cog (bool, optional): Write Cloud Optimized GeoTIFFs (with overviews); default is False.
        progress (Callable[[float, str], object] | None, optional): GDAL-style progress callback progress(fraction, message); returning False cancels.

    Returns:
        List[str]: The output paths, one per input.

    Raises:
        SpectralMatchError: Bad parameters, a vector file that cannot be read or lacks the
            named field, an input without a nodata value and no custom_nodata_value, inputs
            whose bands have different nodata values (without custom_nodata_value), or outputs
            that collide with inputs — all detected before anything is written.
    """
    configure_logging(debug_logs)
    logger.info("Start mask_rasters")
    window_size = normalize_window_size(window_size)
    image_workers = resolve_workers(image_parallel_workers, parameter="image_parallel_workers")
    window_workers = resolve_workers(window_parallel_workers, parameter="window_parallel_workers")
    for name, value in (("include_touched_pixels", include_touched_pixels),
                        ("save_as_cog", save_as_cog), ("debug_logs", debug_logs)):
        check_bool(value, name)
    check_progress(progress)
    if custom_nodata_value is not None and (
            isinstance(custom_nodata_value, (bool, np.bool_))
            or not isinstance(custom_nodata_value, (int, float, np.number))):
        raise ParameterError(f"custom_nodata_value={custom_nodata_value!r} is not a number")
    checked_mask = validate_vector_mask(vector_mask)

    inputs = resolve_input_paths(input_images)
    outputs = resolve_output_paths(output_images, inputs,
                                   default_file_pattern=DEFAULT_OUTPUT_PATTERN,
                                   create_folders=False)
    infos = inspect_rasters(inputs, require_georeferenced=False, same_crs_required=False,
                            same_band_count=False, same_nodata=False)
    nodata_values = [_image_nodata(info, custom_nodata_value) for info in infos]

    from spectralmatch import __version__

    metadata = {"function": "mask_rasters", "version": __version__,
                "parameters": {"vector_mask": list(checked_mask) if checked_mask else None,
                               "include_touched_pixels": bool(include_touched_pixels)}}
    jobs = []
    for info, nodata, out in zip(infos, nodata_values, outputs, strict=True):
        mask = None
        if checked_mask is not None:
            if not info.has_geotransform:
                raise RasterError(f"input_images: '{info.path}' has no geotransform, so the "
                                  "vector mask cannot be placed on it")
            mask = load_vector_mask(checked_mask, info, all_touched=bool(include_touched_pixels))
        windows = plan_windows(info.width, info.height, window_size, block_size=info.block_size,
                               bytes_per_pixel=info.band_count * info.itemsize)
        logger.debug("mask_rasters: '%s' -> '%s': %s, nodata %s, %d window(s)", info.name, out,
                     mask if mask is not None else "no mask (copy)", nodata, len(windows))
        jobs.append(_MaskJob(info, out, mask, nodata, tuple(windows), window_workers,
                             bool(save_as_cog), metadata))
    if checked_mask is None:
        logger.info("mask_rasters: no vector_mask given; the inputs are copied")

    # Every check passed: now the output folders may be created.
    resolve_output_paths(output_images, inputs, default_file_pattern=DEFAULT_OUTPUT_PATTERN)
    if image_workers.is_serial:
        total = sum(len(job.windows) for job in jobs)
        with Progress(total, "Masking rasters", callback=progress) as bar:
            results = [_mask_image(job, bar) for job in jobs]
    else:
        results = []
        with Progress(len(jobs), "Masking rasters", callback=progress) as bar:
            for path in run_ordered(_mask_image, jobs, image_workers,
                                    describe=_MaskJob.describe, max_in_flight=len(jobs),
                                    parameter="image_parallel_workers"):
                results.append(path)
                bar.update()
    logger.info("Finished mask_rasters: %d image(s)", len(results))
    return results


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a == b or (math.isnan(a) and math.isnan(b))


def _image_nodata(info: RasterInfo, custom: float | None) -> float:
    """The value masked pixels get in ``info``'s output (checked to fit its dtype)."""
    declared = [v for v in info.nodata if v is not None]
    if custom is not None:
        value = float(custom) if np.dtype(info.dtype).kind == "f" else custom
        check_nodata_fits(float(custom), info.dtype)
        if declared and not _same(declared[0], float(custom)):
            logger.warning("mask_rasters: custom_nodata_value %s replaces the nodata value %s of "
                           "'%s'; pixels holding %s are not rewritten", custom, declared[0],
                           info.path, declared[0])
        return value
    if not declared:
        raise RasterError(f"input_images: '{info.path}' has no nodata value, so masked pixels "
                          "could not be told from data; give custom_nodata_value (a value "
                          f"that fits {info.dtype})")
    if len(declared) != info.band_count or not all(_same(declared[0], v) for v in declared):
        raise RasterError(f"input_images: the bands of '{info.path}' have different nodata "
                          f"values {list(info.nodata)}; give custom_nodata_value to use one")
    return declared[0]


def _mask_image(job: _MaskJob, bar: Progress | None = None) -> str:
    """Mask one input window by window into its atomically written output."""
    info = job.info
    # Tasks carry the (small, per-image) mask rather than the job: no window list per task.
    tasks = [(info, job.mask, job.nodata, window) for window in job.windows]
    with RasterWriter.like(info, job.output_path, nodata=job.nodata, save_as_cog=job.save_as_cog,
                           metadata=job.metadata) as writer:
        for window, array in zip(job.windows, run_ordered(
                _mask_window, tasks, job.window_workers,
                describe=lambda t: f"mask_rasters: '{info.name}' window {t[3]}"), strict=True):
            writer.write(window, array)
            if bar is not None:
                bar.update()
    return job.output_path


def _mask_window(task: tuple[RasterInfo, VectorMask | None, float, Window]) -> np.ndarray:
    """Read one window, set its masked-out pixels to nodata and return it (bands, rows, cols)."""
    info, mask, nodata, window = task
    dtype = np.dtype(info.dtype)
    keep = mask.rasterize(window) if mask is not None else None
    if keep is not None and not keep.any():  # nothing kept: no need to read the pixels
        return np.full((info.band_count, window.height, window.width), nodata, dtype=dtype)
    data = read_window(cached_dataset(info.path), window)
    if data.dtype != dtype:  # signed bytes on GDAL < 3.7 are read as uint8
        data = data.view(dtype) if data.dtype.itemsize == dtype.itemsize else data.astype(dtype)
    if keep is not None:
        data = np.ascontiguousarray(data)
        apply_keep_mask(data, keep, nodata)
    return data
