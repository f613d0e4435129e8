"""``align_rasters``: put every input on a pixel grid of one common resolution.

Each input keeps its own extent (its footprint in the target CRS) but gets the common pixel
size, and with ``tap`` its grid lines fall on multiples of that size, so all outputs share one
pixel lattice. Pixels are computed by GDAL's warper (``gdal.Warp`` into an in-memory VRT, read
window by window, see :mod:`spectralmatch.mosaic._warp`), so results do not depend on
``window_size`` or on the parallel settings and equal one ``gdalwarp`` run with the same
settings.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from .._checks import check_bool, check_progress
from ..errors import ParameterError, RasterError
from ..io.paths import resolve_input_paths, resolve_output_paths
from ..io.raster import RasterInfo, inspect_rasters
from ..io.windows import Window, normalize_window_size, plan_windows
from ..io.writer import OUTPUT_BLOCK_SIZE, RasterWriter
from ..parallel import resolve_workers, run_ordered
from ..progress import Progress, configure_logging
from ._grid import (
    RESOLUTION_STRATEGIES,
    crs_name,
    footprint,
    grid_for_bounds,
    parse_crs,
    target_resolution,
)
from ._warp import WarpSpec, normalize_resampling, read_warped, release_warped, source_nodata

logger = logging.getLogger("spectralmatch")

DEFAULT_OUTPUT_PATTERN = "$_Align.tif"


@dataclass(frozen=True)
class _AlignJob:
    """One aligned output: its input, path, warp and window plan."""

    info: RasterInfo
    output_path: str
    spec: WarpSpec
    windows: tuple[Window, ...]


def align_rasters(
    input_images: str | list[str],
    output_images: str | list[str],
    *,
    resampling_method: str = "bilinear",
    tap: bool = False,
    resolution: str = "highest",
    window_size: int | tuple[int, int] | str | None = None,
    debug_logs: bool = False,
    image_parallel_workers: tuple[str, str | int] | Executor | None = None,
    window_parallel_workers: tuple[str, str | int] | Executor | None = None,
    target_crs: str | None = None,
    save_as_cog: bool = False,
    progress: Callable[[float, str], object] | None = None,
) -> list[str]:
    """Aligns multiple rasters to a common resolution and grid using specified resampling.

    The target pixel size is the per-axis minimum ("highest"), mean ("average") or maximum
    ("lowest") of the input pixel sizes, measured in the target CRS (GDAL's suggested warp
    resolution for inputs in another CRS). Each output covers its input's footprint:

    - tap=True: the extent is snapped outward to multiples of the pixel size (as
      ``gdalwarp -tap``): min_x = floor(min_x / res_x) * res_x, max_x = ceil(max_x / res_x) *
      res_x, same for y; every output then lies on one common pixel lattice.
    - tap=False: the grid starts at the input's own top-left corner and has
      ceil(extent / res) pixels per axis (the last column/row may reach past the input).

    Bounds within 1e-6 pixel of a grid line count as lying on it. Inputs in another CRS than
    the first input (or ``target_crs``) are reprojected, with a note in the log. Outputs keep
    the input's dtype, band count, band descriptions and nodata value (nodata pixels stay
    nodata, per band; target pixels outside the input become nodata, or 0 for inputs without
    nodata). Pixel values equal ``gdalwarp -et 0 -wo XSCALE=s -wo YSCALE=s -wo
    UNIFIED_SRC_NODATA=NO`` with the same bounds, pixel size and resampling, whatever the
    window size or parallel settings (the warper reads each window with the source margin its
    kernel needs, so bilinear/cubic outputs have no seams).

    Args:
        input_images (str | List[str], required): Defines input files from a glob path, folder, or list of paths. Specify like: "/input/files/*.tif", "/input/folder" (assumes *.tif), ["/input/one.tif", "/input/two.tif"].
        output_images (str | List[str], required): Defines output files from a template path, folder, or list of paths (with the same length as the input). Specify like: "/input/files/$.tif", "/input/folder" (assumes $_Align.tif), ["/input/one.tif", "/input/two.tif"].
        resampling_method (str, optional): GDAL warp resampling: "nearest", "bilinear", "cubic", "cubicspline", "lanczos", "average", "rms", "mode", "max", "min", "med", "q1", "q3" or "sum"; default is "bilinear".
        tap (bool, optional): If True, aligns outputs to target-aligned pixels (GDAL's -tap); default is False.
        resolution (Literal["highest", "average", "lowest"], optional): Strategy for choosing target resolution; default is "highest".
        window_size (int | Tuple[int, int] | Literal["internal", "whole"] | None, optional): Output windows read from the warper at a time: None for the automatic block-aligned plan (bounded memory), an int or (width, height) for fixed tiles, "internal" for the output's 512x512 tiles, "whole" for one window. Values do not depend on it.
        debug_logs (bool, optional): If True, prints debug output.
        image_parallel_workers (Tuple[Literal["process", "thread"], Literal["cpu"] | int] | None, optional): Parallelization strategy for image-level alignment. Windows of all images go through one pool (so several images are in progress at once); workers only warp, the calling process writes every output. Used when window_parallel_workers is None.
        window_parallel_workers (Tuple[Literal["process", "thread"], Literal["cpu"] | int] | None, optional): Parallelization strategy for within-image window alignment; takes precedence over image_parallel_workers.
        target_crs (str | None, optional): CRS of the outputs (e.g. "EPSG:32610", WKT or PROJ text); default is the first input's CRS.
        save_as_cog (bool, optional): Write Cloud Optimized GeoTIFFs (with overviews); default is False.
        progress (Callable[[float, str], object] | None, optional): GDAL-style progress callback progress(fraction, message); returning False cancels.

    Returns:
        List[str]: The output paths, one per input.

    Raises:
        SpectralMatchError: Bad parameters, missing or unreadable inputs, inputs without
            georeferencing or with different band counts, or outputs that collide with inputs —
            all detected before anything is written.
    """
    configure_logging(debug_logs)
    logger.info("Start align_rasters")
    method = normalize_resampling(resampling_method)
    check_bool(tap, "tap")
    if resolution not in RESOLUTION_STRATEGIES:
        raise ParameterError(f"resolution={resolution!r} is not accepted; use one of "
                             f"{', '.join(repr(s) for s in RESOLUTION_STRATEGIES)}")
    window_size = normalize_window_size(window_size)
    image_workers = resolve_workers(image_parallel_workers, parameter="image_parallel_workers")
    window_workers = resolve_workers(window_parallel_workers, parameter="window_parallel_workers")
    check_bool(save_as_cog, "save_as_cog")
    check_progress(progress)
    target_wkt = parse_crs(target_crs)

    inputs = resolve_input_paths(input_images)
    outputs = resolve_output_paths(output_images, inputs,
                                   default_file_pattern=DEFAULT_OUTPUT_PATTERN,
                                   create_folders=False)
    infos = inspect_rasters(inputs, require_georeferenced=False, same_crs_required=False,
                            same_band_count=True, same_nodata=False)
    for info in infos:
        if not info.has_geotransform or not info.crs_wkt:
            what = "geotransform" if not info.has_geotransform else "coordinate reference system"
            raise RasterError(f"input_images: '{info.path}' has no {what}; align_rasters needs "
                              "georeferenced inputs")
    target_wkt = target_wkt or infos[0].crs_wkt

    footprints = [footprint(info, target_wkt) for info in infos]
    for info, fp in zip(infos, footprints, strict=True):
        if fp.reprojected:
            logger.info("align_rasters: '%s' (%s) is reprojected to %s", info.path,
                        crs_name(info.crs_wkt), crs_name(target_wkt))
    res = target_resolution([fp.resolution for fp in footprints], resolution)
    logger.debug("align_rasters: target pixel size %r x %r (%s), tap=%s", res[0], res[1],
                 resolution, tap)

    from spectralmatch import __version__

    jobs = []
    for info, fp, out in zip(infos, footprints, outputs, strict=True):
        grid = grid_for_bounds(fp.bounds, res, tap=tap)
        nodata = next((v for v in info.nodata if v is not None), None)
        spec = WarpSpec(src_path=os.path.abspath(info.path), dst_wkt=target_wkt, grid=grid,
                        resampling=method, src_nodata=source_nodata(info.nodata),
                        dst_nodata=nodata,
                        scale=(fp.resolution[0] / res[0], fp.resolution[1] / res[1]))
        spec.open()  # fail on a warp GDAL refuses before any output is written
        if nodata is None and (fp.reprojected or grid.bounds != tuple(fp.bounds)):
            logger.info("align_rasters: '%s' has no nodata value; output pixels outside it "
                        "are written as 0", info.path)
        windows = plan_windows(grid.width, grid.height, window_size,
                               block_size=(OUTPUT_BLOCK_SIZE, OUTPUT_BLOCK_SIZE),
                               bytes_per_pixel=info.band_count * info.itemsize)
        logger.debug("align_rasters: '%s' -> '%s': %d x %d pixels at (%r, %r), %d window(s)",
                     info.name, out, grid.width, grid.height, grid.min_x, grid.max_y,
                     len(windows))
        jobs.append(_AlignJob(info, out, spec, tuple(windows)))

    workers = window_workers if not window_workers.is_serial else image_workers
    metadata = {"function": "align_rasters", "version": __version__,
                "parameters": {"resampling_method": method, "tap": tap, "resolution": resolution,
                               "target_crs": crs_name(target_wkt)}}
    tasks = [(job.spec, window) for job in jobs for window in job.windows]
    results = run_ordered(read_warped, tasks, workers, describe=_describe)
    try:
        with Progress(len(tasks), "Aligning rasters", callback=progress) as bar:
            for job in jobs:
                _write_output(job, results, bar, save_as_cog, metadata)
    finally:
        results.close()  # stops the workers early on errors
        for job in jobs:
            release_warped(job.spec)
    logger.info("Finished align_rasters: %d image(s)", len(jobs))
    return [job.output_path for job in jobs]


def _describe(task: tuple[WarpSpec, Window]) -> str:
    spec, window = task
    return f"align_rasters: '{os.path.basename(spec.src_path)}' window {window}"


def _write_output(job: _AlignJob, results: Iterator[np.ndarray], bar: Progress,
                  save_as_cog: bool, metadata: dict) -> None:
    """Write the next ``len(job.windows)`` warped windows into ``job``'s atomic output."""
    info, grid = job.info, job.spec.grid
    # The first window is fetched before the writer exists: a forked worker pool then starts
    # without inheriting an open output.
    first = next(results)
    with RasterWriter(job.output_path, width=grid.width, height=grid.height,
                      band_count=info.band_count, dtype=info.dtype,
                      geotransform=grid.geotransform, crs_wkt=job.spec.dst_wkt,
                      nodata=job.spec.dst_nodata, save_as_cog=save_as_cog, metadata=metadata,
                      band_descriptions=info.band_descriptions,
                      color_interpretations=info.color_interpretations) as writer:
        writer.write(job.windows[0], first)
        bar.update()
        for window in job.windows[1:]:
            writer.write(window, next(results))
            bar.update()
