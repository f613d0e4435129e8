"""``merge_rasters``: one mosaic of all inputs on their union extent.

Each output window is composed from the inputs that reach it, in input order, each drawn over
the previous ones where it is valid ("later inputs on top", as ``gdalbuildvrt`` stacks its
sources and as the original spectralmatch did in serial mode). Inputs on the mosaic's pixel
grid are copied exactly; the others are resampled onto it with GDAL's warper (see
:mod:`spectralmatch.mosaic._warp`). Windows are composed in workers and written in order by one
atomic writer, so the mosaic does not depend on ``window_size`` or the parallel settings.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from .._checks import check_bool, check_progress
from ..errors import ParameterError, PathError
from ..io.paths import resolve_input_paths
from ..io.raster import (
    RasterInfo,
    cached_dataset,
    check_nodata_fits,
    inspect_rasters,
    read_window,
    resolve_dtype,
    resolve_nodata,
)
from ..io.windows import Window, normalize_window_size, plan_windows
from ..io.writer import OUTPUT_BLOCK_SIZE, RasterWriter
from ..parallel import resolve_workers, run_ordered
from ..progress import Progress, configure_logging
from ._convert import convert_valid
from ._grid import EPS_PIXELS, Grid, grid_for_bounds, union_bounds
from ._warp import WarpSpec, normalize_resampling, read_warped, release_warped

logger = logging.getLogger("spectralmatch")


@dataclass(frozen=True)
class _Source:
    """One input placed on the mosaic grid.

    ``window`` is the block of mosaic pixels whose centres fall inside the input; ``spec`` is
    None when the input lies on the mosaic grid (plain copy), else its warp onto ``window``.
    """

    path: str
    window: Window | None
    spec: WarpSpec | None


@dataclass(frozen=True)
class _ComposeTask:
    """One output window and the sources reaching it, bottom to top."""

    window: Window
    sources: tuple[_Source, ...]
    band_count: int
    dtype: str
    nodata: float | None

    def describe(self) -> str:
        return f"merge_rasters: window {self.window}"


def merge_rasters(
    input_images: str | list[str],
    output_image_path: str,
    *,
    image_parallel_workers: tuple[str, str | int] | Executor | None = None,
    window_parallel_workers: tuple[str, str | int] | Executor | None = None,
    window_size: int | tuple[int, int] | str | None = None,
    debug_logs: bool = False,
    output_dtype: str | None = None,
    custom_nodata_value: float | int | None = None,
    resampling_method: str = "nearest",
    save_as_cog: bool = False,
    progress: Callable[[float, str], object] | None = None,
) -> str:
    """Merges multiple rasters into a single mosaic aligned to the union extent and minimum resolution.

    The mosaic grid starts at the top-left corner (min x, max y) of the union of the input
    extents, its pixel size is the smallest x and the smallest y pixel size of the inputs, and
    it has ceil(extent / pixel size) pixels per axis. Inputs are stacked in input order (a glob
    or folder is sorted by name): where several inputs are valid, the LAST one wins; nodata
    pixels of an input never cover pixels of earlier inputs. Validity is per band. Inputs whose
    pixels lie on the mosaic grid are copied exactly; inputs on another grid are resampled
    onto it with ``resampling_method`` (GDAL warper; with "nearest" a mosaic pixel takes the
    input pixel containing its centre). Integer outputs are rounded to nearest and clipped to
    the output dtype's range; a valid value that would equal the nodata value is moved to the
    nearest other value. The result does not depend on ``window_size`` or the parallel settings.

    Args:
        input_images (str | List[str], required): Defines input files from a glob path, folder, or list of paths. Specify like: "/input/files/*.tif", "/input/folder" (assumes *.tif), ["/input/one.tif", "/input/two.tif"].
        output_image_path (str): Path to save the merged output raster.
        image_parallel_workers (Tuple[Literal["process", "thread"], Literal["cpu"] | int] | None, optional): Accepted for compatibility: the mosaic is composed window by window, so this setting is used for the windows when window_parallel_workers is None.
        window_parallel_workers (Tuple[Literal["process", "thread"], Literal["cpu"] | int] | None, optional): Strategy for composing mosaic windows in parallel.
        window_size (int | Tuple[int, int] | Literal["internal", "whole"] | None, optional): Mosaic windows composed at a time: None for the automatic block-aligned plan (bounded memory), an int or (width, height) for fixed tiles, "internal" for the output's 512x512 tiles, "whole" for one window.
        debug_logs (bool, optional): If True, prints debug output.
        output_dtype (str | None, optional): Output data type (numpy name, e.g. "uint16", "float32"); defaults to the first input's type.
        custom_nodata_value (float | int | None, optional): NoData value of the inputs and of the mosaic (0 is honoured); defaults to the first input's value. Inputs must share one nodata value unless this is given.
        resampling_method (str, optional): GDAL warp resampling for inputs that are not on the mosaic grid: "nearest" (default), "bilinear", "cubic", "cubicspline", "lanczos", "average", "mode", ...
        save_as_cog (bool, optional): Write a Cloud Optimized GeoTIFF (with overviews); default is False.
        progress (Callable[[float, str], object] | None, optional): GDAL-style progress callback progress(fraction, message); returning False cancels.

    Returns:
        str: The output path.

    Raises:
        SpectralMatchError: Bad parameters; inputs missing, not georeferenced, in different CRSs
            (run align_rasters first), with different band counts or nodata values; an output
            path equal to an input — all detected before anything is written.
    """
    configure_logging(debug_logs)
    logger.info("Start merge_rasters")
    method = normalize_resampling(resampling_method)
    window_size = normalize_window_size(window_size)
    image_workers = resolve_workers(image_parallel_workers, parameter="image_parallel_workers")
    workers = resolve_workers(window_parallel_workers, parameter="window_parallel_workers")
    if workers.is_serial and not image_workers.is_serial:
        workers = image_workers
    check_bool(save_as_cog, "save_as_cog")
    check_progress(progress)

    inputs = resolve_input_paths(input_images)
    output_path = _check_output_path(output_image_path, inputs)
    infos = inspect_rasters(inputs, same_crs_required=True, same_band_count=True,
                            same_nodata=custom_nodata_value is None)
    nodata = resolve_nodata(infos, custom_nodata_value)
    dtype = resolve_dtype(infos, output_dtype)
    check_nodata_fits(nodata, dtype, parameter="custom_nodata_value"
                      if custom_nodata_value is not None else "output_dtype")

    res = (min(i.resolution[0] for i in infos), min(i.resolution[1] for i in infos))
    grid = grid_for_bounds(union_bounds([i.bounds for i in infos]), res, tap=False)
    sources = [_place(info, grid, method, nodata) for info in infos]
    for info, src in zip(infos, sources, strict=True):
        if src.spec is not None:
            logger.info("merge_rasters: '%s' is not on the mosaic grid; resampled with %s",
                        info.path, method)
            src.spec.open()  # a warp GDAL refuses fails here, before any output exists
    logger.debug("merge_rasters: %d input(s) -> %d x %d pixels at (%r, %r), pixel %r x %r",
                 len(infos), grid.width, grid.height, grid.min_x, grid.max_y, res[0], res[1])

    band_count = infos[0].band_count
    windows = plan_windows(grid.width, grid.height, window_size,
                           block_size=(OUTPUT_BLOCK_SIZE, OUTPUT_BLOCK_SIZE),
                           bytes_per_pixel=band_count * max(np.dtype(dtype).itemsize,
                                                            max(i.itemsize for i in infos)))
    tasks = [_ComposeTask(w, tuple(s for s in sources if s.window is not None
                                   and w.intersection(s.window) is not None),
                          band_count, dtype, nodata) for w in windows]

    from spectralmatch import __version__

    metadata = {"function": "merge_rasters", "version": __version__,
                "parameters": {"inputs": [i.name for i in infos], "output_dtype": dtype,
                               "nodata": nodata, "resampling_method": method}}
    results = run_ordered(_compose_window, tasks, workers, describe=_ComposeTask.describe)
    try:
        with Progress(len(tasks), "Merging rasters", callback=progress) as bar:
            # The first window is composed before the writer exists: a forked worker pool then
            # starts without inheriting an open output.
            first = next(results)
            with RasterWriter(output_path, width=grid.width, height=grid.height,
                              band_count=band_count, dtype=dtype, geotransform=grid.geotransform,
                              crs_wkt=infos[0].crs_wkt, nodata=nodata, save_as_cog=save_as_cog,
                              metadata=metadata, band_descriptions=infos[0].band_descriptions,
                              color_interpretations=infos[0].color_interpretations) as writer:
                writer.write(tasks[0].window, first)
                bar.update()
                for task in tasks[1:]:
                    writer.write(task.window, next(results))
                    bar.update()
    finally:
        results.close()  # stops the workers early on errors
        for src in sources:
            if src.spec is not None:
                release_warped(src.spec)
    logger.info("Finished merge_rasters: %s", output_path)
    return output_path


def _check_output_path(output_image_path: str, inputs: list[str]) -> str:
    if not isinstance(output_image_path, (str, os.PathLike)) or not os.fspath(output_image_path):
        raise ParameterError(f"output_image_path must be a file path, got {output_image_path!r}")
    out = os.fspath(output_image_path)
    if os.path.isdir(out):
        raise PathError(f"output_image_path {out!r} is a folder; give a file name such as "
                        f"{os.path.join(out, 'Mosaic.tif')!r}")
    real = os.path.normcase(os.path.realpath(out))
    for path in inputs:
        if real == os.path.normcase(os.path.realpath(path)) or (
                os.path.exists(out) and os.path.samefile(out, path)):
            raise PathError(f"output_image_path {out!r} is the same file as input {path!r}; "
                            "choose another output path")
    return out


def _centre_range(lo: float, hi: float, origin: float, res: float) -> tuple[int, int]:
    """[first, end) indices of grid pixels whose centres lie in [lo, hi) along one axis."""
    first = math.ceil((lo - origin) / res - 0.5 - EPS_PIXELS)
    end = math.ceil((hi - origin) / res - 0.5 - EPS_PIXELS)
    return first, end


def _place(info: RasterInfo, grid: Grid, method: str, nodata: float | None) -> _Source:
    """Where ``info`` lands on the mosaic grid, and how its pixels get there."""
    min_x, min_y, max_x, max_y = info.bounds
    c0, c1 = _centre_range(min_x, max_x, grid.min_x, grid.res_x)
    r0, r1 = _centre_range(grid.max_y - max_y, grid.max_y - min_y, 0.0, grid.res_y)
    c0, r0 = max(c0, 0), max(r0, 0)
    c1, r1 = min(c1, grid.width), min(r1, grid.height)
    if c1 <= c0 or r1 <= r0:  # smaller than half a mosaic pixel: contributes nothing
        return _Source(info.path, None, None)
    window = Window(c0, r0, c1 - c0, r1 - r0)
    col_shift = (min_x - grid.min_x) / grid.res_x
    row_shift = (grid.max_y - max_y) / grid.res_y
    on_grid = (np.allclose(info.resolution, (grid.res_x, grid.res_y), rtol=1e-9, atol=0)
               and abs(col_shift - round(col_shift)) < EPS_PIXELS
               and abs(row_shift - round(row_shift)) < EPS_PIXELS)
    if on_grid:
        return _Source(info.path, window, None)
    sub_grid = Grid(grid.min_x + c0 * grid.res_x, grid.max_y - r0 * grid.res_y, grid.res_x,
                    grid.res_y, window.width, window.height)
    spec = WarpSpec(src_path=os.path.abspath(info.path), dst_wkt=info.crs_wkt, grid=sub_grid,
                    resampling=method,
                    src_nodata=None if nodata is None else (nodata,) * info.band_count,
                    dst_nodata=nodata,
                    scale=(info.resolution[0] / grid.res_x, info.resolution[1] / grid.res_y))
    return _Source(info.path, window, spec)


def _valid(array: np.ndarray, nodata: float | None) -> np.ndarray:
    """Per-band validity: not the nodata value, and not NaN (NaN carries no value)."""
    if array.dtype.kind == "f":
        valid = ~np.isnan(array)
        if nodata is not None and not math.isnan(nodata):
            valid &= array != nodata
        return valid
    if nodata is None:
        return np.ones(array.shape, dtype=bool)
    return array != nodata


def _compose_window(task: _ComposeTask) -> np.ndarray:
    """The mosaic pixels of one window (bands, rows, cols); a worker task."""
    window = task.window
    fill = 0 if task.nodata is None else task.nodata
    out = np.full((task.band_count, window.height, window.width), fill, dtype=task.dtype)
    for src in task.sources:
        part = window.intersection(src.window)
        local = part.shift(-src.window.col_off, -src.window.row_off)
        if src.spec is None:
            array = read_window(cached_dataset(src.path), local)
        else:
            array = read_warped((src.spec, local))
        valid = _valid(array, task.nodata)
        if not valid.any():
            continue
        rows, cols = part.slices(relative_to=window)
        np.copyto(out[:, rows, cols], convert_valid(array, task.dtype, task.nodata), where=valid)
    return out
