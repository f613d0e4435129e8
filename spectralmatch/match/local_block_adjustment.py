"""Local block adjustment: block-map gamma/linear correction (Yu et al. 2017, local part).

Pipeline (ARCHITECTURE.md §1): resolve paths → inspect inputs → validate every parameter and
load block maps → statistics pass (the ``blocks`` kernel bins pixel centres into per-cell sums
and counts, automatic block-aligned windows) → solve (block means, level models between
overlapping images, reference map, per-image correction maps, per-band shift; see
``_local_model``) → save block maps → apply pass (the fused ``local_correct`` kernel, window by
window, one atomic writer per output). Results do not depend on ``window_size`` or on the
parallel settings.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from spectralmatch._checks import check_bool, check_progress, jsonable
from spectralmatch.errors import ParameterError, PathError, RasterError
from spectralmatch.io.paths import resolve_input_paths, resolve_output_paths
from spectralmatch.io.raster import (
    RasterInfo,
    cached_dataset,
    check_nodata_fits,
    inspect_rasters,
    read_window,
    release_cached_datasets,
    resolve_dtype,
    resolve_nodata,
    same_crs,
)
from spectralmatch.io.windows import Window, normalize_window_size, plan_windows
from spectralmatch.io.writer import RasterWriter
from spectralmatch.kernels.local_correct import correct_window
from spectralmatch.parallel import (
    Workers,
    kernel_threads,
    read_ahead,
    resolve_workers,
    run_ordered,
    statistics_workers,
)
from spectralmatch.progress import Progress, configure_logging, scaled_callback

from . import _block_maps_file as maps_file
from . import _block_stats as stats
from . import _local_model as model
from . import _memory
from ._block_grid import (
    Canvas,
    ImageGrid,
    grid_shape_from_cv,
    grid_shape_from_target,
    union_bounds,
)

try:
    from spectralmatch.io.vector import validate_vector_mask
except ImportError:  # pragma: no cover
    validate_vector_mask = None  # type: ignore[assignment]

logger = logging.getLogger("spectralmatch")

DEFAULT_OUTPUT_PATTERN = "$_Local.tif"
#: Memory budget of one apply window, input and output together (the automatic plan).
APPLY_WINDOW_BYTES = 16 * 1024 * 1024
METHODS = ("gamma", "linear")
_CALCULATION_DTYPES = ("float32", "float64")


def local_block_adjustment(
    input_images: str | list[str],
    output_images: str | list[str],
    *,
    calculation_dtype: str = "float32",
    output_dtype: str | None = None,
    vector_mask: tuple[str, str] | tuple[str, str, str] | None = None,
    debug_logs: bool = False,
    custom_nodata_value: float | int | None = None,
    image_parallel_workers: tuple[str, str | int] | Executor | None = None,
    window_parallel_workers: tuple[str, str | int] | Executor | None = None,
    window_size: int | tuple[int, int] | str | None = None,
    save_as_cog: bool = False,
    number_of_blocks: int | tuple[int, int] | str = 100,
    alpha: float = 1.0,
    correction_method: str = "gamma",
    save_block_maps: tuple[str, str] | None = None,
    load_block_maps: tuple[str | None, list[str] | None] | None = None,
    override_bounds_canvas_coords: tuple[float, float, float, float] | None = None,
    block_valid_pixel_threshold: float = 0.001,
    value_shift: float | None = None,
    progress: Callable[[float, str], object] | None = None,
) -> list[str]:
    """Performs local radiometric adjustment on a set of raster images using block-based statistics.

    The canvas (union of the images, or the loaded maps' or given bounds) is cut into a grid of
    blocks. Every image gets a local map of block means (pixel centres binned into blocks); the
    reference map is their NaN-aware mean. Each pixel is then corrected so that its image's local
    mean becomes the blended target ``T = alpha·R + (1 − alpha)·L``, with ``R`` and ``L`` the
    reference and local maps interpolated bilinearly between block centres at the pixel centre:
    gamma ``out = (P + o)^(ln(T + o) / ln(L + o)) − o`` or linear
    ``out = (P + o)·(T + o)/(L + o) − o``.

    Differences from the original spectralmatch, all to remove seams and make results
    reproducible: a block's mean is kept when its valid pixels reach the threshold of what the
    block can hold within that image's footprint; where an image edge cuts a block, the image's
    brightness over the whole block is predicted from the image covering the block best (from
    statistics on 4 × 4 cells per block), and between an image's edge and its outermost block
    centres its maps continue towards the brightness it would have beyond the edge instead of
    being clamped (no bright or dark image edges); blocks without a mean take the values of the
    nearest block with one (no black bars, masked areas corrected too); pixel centres are used
    for interpolation (the original used top-left corners); the shift ``o`` is chosen per image and band (never per window): for
    gamma ``o = max(0, 1 − min pixel, e − min block mean)`` so ``ln(L + o) ≥ 1`` even for reflectance
    in (0, 1] or means near 1 (``o = 0`` for positive DN data, as in the original); for linear
    ``o = 0`` when all values are positive, else the smallest value is shifted to 1. ``alpha``
    blends the means as documented (alpha = 1 is the original's correction; alpha = 0 leaves
    images unchanged) for both methods. Integer outputs are rounded to nearest and clipped;
    valid pixels never become nodata. Outputs do not depend on ``window_size`` or the parallel
    settings. Details: docs/local_block_adjustment.md.

    Args:
        input_images (str | List[str], required): Defines input files from a glob path, folder, or list of paths. Specify like: "/input/files/*.tif", "/input/folder" (assumes *.tif), ["/input/one.tif", "/input/two.tif"].
        output_images (str | List[str], required): Defines output files from a template path, folder, or list of paths (with the same length as the input). Specify like: "/input/files/$.tif", "/input/folder" (assumes $_Local.tif), ["/input/one.tif", "/input/two.tif"]. Outputs may not overwrite inputs or each other.
        calculation_dtype (str, optional): Precision of the block maps: "float32" (default, as the original) or "float64". Means are rounded to it (and saved in it), so saved and reloaded maps give identical outputs. Sums and the correction are always computed in float64.
        output_dtype (str | None, optional): Data type for output rasters. Defaults to the first input image's dtype. Integer outputs are rounded to nearest and clipped to the dtype range.
        vector_mask (Tuple[Literal["include", "exclude"], str, Optional[str]] | None): Mask limiting the pixels used for the block statistics: ("include" | "exclude", path to a vector file[, field name whose value names the image]). The correction is still applied to every valid pixel of the outputs (masked blocks take the values of the nearest unmasked block). Loaded block maps are used as computed. Defaults to None for no mask.
        debug_logs (bool, optional): If True, logs debug information (grid, shifts). Defaults to False.
        custom_nodata_value (float | int | None, optional): Overrides the nodata value of the inputs (default: band 1 of the first input). Defaults to None.
        image_parallel_workers (Tuple[Literal["process", "thread"], Literal["cpu"] | int] | None = None): Parallelization at the image level for the apply pass, like ("process", "cpu") or ("thread", 4); a concurrent.futures.Executor is accepted too. Also used for the statistics pass when window_parallel_workers is None. None runs serially.
        window_parallel_workers (Tuple[Literal["process", "thread"], Literal["cpu"] | int] | None = None): Parallelization at the window level (statistics and apply passes), same format as image_parallel_workers; threads work well (the kernels release the GIL). Each output is written by one writer. None runs serially.
        window_size (int | Tuple[int, int] | Literal["block", "internal", "whole"] | None): Windows of the apply pass: int for square tiles, (width, height), "block" for one window per block-map cell (the pixels whose centres fall in the block), "internal" for the file's own blocks, "whole" for one window per image, or None for an automatic block-aligned plan within a fixed memory budget. Outputs are identical for every choice; statistics always use the automatic plan.
        save_as_cog (bool): If True, saves outputs as Cloud Optimized GeoTIFFs (with overviews).
        number_of_blocks (int | tuple | Literal["coefficient_of_variation"]): int t: about t blocks per image (t × number of images blocks on the canvas, as square as the canvas allows); (rows, cols): the grid itself; "coefficient_of_variation": a square grid of max(1, round(10·CV/0.36)) blocks per side from the coefficient of variation CV (population std / mean) of band 1 over all valid (unmasked) pixels (Yu et al.). Ignored when block maps are loaded (their grid is used).
        alpha (float, optional): Blending factor in [0, 1] between reference and local means: the target mean is alpha·reference + (1 − alpha)·local. 1 (default) matches every image to the reference, 0 leaves the images unchanged.
        correction_method (Literal["gamma", "linear"], optional): Local correction method: "gamma" (power law mapping the local mean onto the target) or "linear" (gain target/local). Defaults to "gamma".
        save_block_maps (tuple(str, str) | None): Save the block maps to review them, resume processing or add images later: (reference map path, local map template containing "$", replaced by each image name). Local maps get a cell-statistics sidecar "<name>.cells.tif" (sums, valid-pixel counts and footprint per cell) so that loading re-applies the threshold exactly. Maps of images only loaded are saved too. Defaults to None.
        load_block_maps (Tuple[str, List[str]] | Tuple[str, None] | Tuple[None, List[str]] | None, optional): Load precomputed block maps: (reference map path | None, [local map paths] | None). A local map belongs to the input whose name it records, else to the input with the longest name contained in its file name; inputs without a map get one computed; maps of other images still count in the reference, which is computed (NaN-mean of all local maps) unless given. All maps must share one grid (shape and bounds), which becomes the canvas. None loads nothing.
        override_bounds_canvas_coords (Tuple[float, float, float, float] | None): (min_x, min_y, max_x, max_y) of the canvas instead of the union of the images, e.g. larger than the current images so that maps can be extended with more images later. It must contain every image and, with loaded maps, equal their bounds. Defaults to None.
        block_valid_pixel_threshold (float): Fraction in [0, 1] of the pixels a block can hold within an image's footprint that must be valid for the block to get a mean in that image. Defaults to 0.001.
        value_shift (float | None): The shift o of the correction formulas: None (default) chooses it per image and band as described above; a number fixes it for every image and band (e.g. 0 for the pure power law), and raises an error before any output is written when it leaves the correction undefined (gamma: a shifted pixel below 0 or a shifted block mean not above 1; linear: a shifted block mean not above 0).
        progress (Callable[[float, str], object] | None, optional): GDAL-style callback progress(fraction, message); returning False cancels the run. Defaults to None.

    Returns:
        List[str]: Paths to the locally adjusted output raster images.

    Raises:
        SpectralMatchError: A parameter, path, raster or block map is not accepted (raised before
            any output is written).
    """
    configure_logging(debug_logs)
    logger.info("Start local_block_adjustment")
    parameters = {
        "calculation_dtype": calculation_dtype, "output_dtype": output_dtype,
        "vector_mask": vector_mask, "custom_nodata_value": custom_nodata_value,
        "image_parallel_workers": image_parallel_workers,
        "window_parallel_workers": window_parallel_workers, "window_size": window_size,
        "save_as_cog": save_as_cog, "number_of_blocks": number_of_blocks, "alpha": alpha,
        "correction_method": correction_method, "save_block_maps": save_block_maps,
        "load_block_maps": load_block_maps,
        "override_bounds_canvas_coords": override_bounds_canvas_coords,
        "block_valid_pixel_threshold": block_valid_pixel_threshold, "value_shift": value_shift,
    }
    # Handles cached by an earlier call may point to files replaced since (same path).
    release_cached_datasets()
    try:
        run = _prepare(input_images, output_images, parameters, debug_logs=debug_logs,
                       progress=progress)
        _memory.plan_worker_caches(run.image_workers, run.window_workers)
        _statistics_pass(run)
        corrections = _solve(run)
        if run.save_paths is not None:
            _save_maps(run)
        outputs = _apply_pass(run, corrections)
    finally:
        release_cached_datasets()
    logger.info("Finished local_block_adjustment: %d image(s)", len(outputs))
    return outputs


# --------------------------------------------------------------------------- preparation


@dataclass
class _Run:
    """Everything validated before the first output is written."""

    infos: list[RasterInfo]
    outputs: list[str]
    nodata: float | None
    output_dtype: str
    calculation_dtype: str
    vector_mask: tuple | None
    window_size: object
    image_workers: Workers
    window_workers: Workers
    save_as_cog: bool
    alpha: float
    method: str
    threshold: float
    value_shift: float | None
    parameters: dict
    progress: Callable[[float, str], object] | None
    number_of_blocks: object
    override: tuple[float, float, float, float] | None
    loaded_reference: maps_file.LoadedMap | None
    loaded_locals: dict[str, maps_file.LoadedMap]
    loaded_others: list[maps_file.LoadedMap]
    save_paths: tuple[str, dict[str, str]] | None = None
    canvas: Canvas | None = None
    grids: list[ImageGrid] = field(default_factory=list)
    cells: dict[str, stats.CellStats] = field(default_factory=dict)
    extrema: dict[str, np.ndarray] = field(default_factory=dict)
    local_maps: dict[str, model.LocalMap] = field(default_factory=dict)
    other_maps: list[model.LocalMap] = field(default_factory=list)
    reference: np.ndarray | None = None
    contributors: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [info.name for info in self.infos]

    @property
    def bands(self) -> int:
        return self.infos[0].band_count


def _is_number(value: object) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.number))


def _check_fraction(value: object, parameter: str, what: str) -> float:
    if not _is_number(value) or not math.isfinite(value) or not 0 <= value <= 1:
        raise ParameterError(f"{parameter}={value!r} is not accepted; use a number in [0, 1] "
                             f"({what})")
    return float(value)




def _check_number_of_blocks(value: object) -> object:
    accepted = ('an int >= 1 (blocks per image), (rows, cols) of ints >= 1, or '
                '"coefficient_of_variation"')
    if isinstance(value, str):
        if value == "coefficient_of_variation":
            return value
    elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if value >= 1:
            return int(value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v >= 1
            for v in value):
        return (int(value[0]), int(value[1]))
    raise ParameterError(f"number_of_blocks={value!r} is not accepted; use {accepted}")


def _check_override(value: object) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) != 4 or not all(
            _is_number(v) and math.isfinite(v) for v in value):
        raise ParameterError(f"override_bounds_canvas_coords={value!r} is not accepted; use "
                             "(min_x, min_y, max_x, max_y) of finite numbers")
    min_x, min_y, max_x, max_y = (float(v) for v in value)
    if not (min_x < max_x and min_y < max_y):
        raise ParameterError(f"override_bounds_canvas_coords={value!r} is empty; min_x < max_x "
                             "and min_y < max_y are needed")
    return min_x, min_y, max_x, max_y


def _check_save(value: object) -> tuple[str, str] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)) or len(value) != 2 \
            or not all(isinstance(v, (str, os.PathLike)) for v in value):
        raise ParameterError(f"save_block_maps={value!r} is not accepted; use (reference map "
                             "path, local map template with '$'), e.g. ('maps/Reference.tif', "
                             "'maps/$_LocalBlockMap.tif')")
    ref, template = os.fspath(value[0]), os.fspath(value[1])
    if "$" not in template:
        raise PathError(f"save_block_maps: local map template '{template}' has no '$'; every "
                        "image needs its own local map, e.g. 'maps/$_LocalBlockMap.tif'")
    return ref, template


def _prepare(input_images, output_images, p: dict, *, debug_logs: bool, progress) -> _Run:
    """Resolve and validate everything; raises before any output exists."""
    check_bool(debug_logs, "debug_logs")
    calc = p["calculation_dtype"]
    try:
        calc = np.dtype(calc).name
    except TypeError:
        calc = None
    if calc not in _CALCULATION_DTYPES:
        raise ParameterError(f"calculation_dtype={p['calculation_dtype']!r} is not accepted; use "
                             "'float32' or 'float64'")
    save_as_cog = check_bool(p["save_as_cog"], "save_as_cog")
    alpha = _check_fraction(p["alpha"], "alpha", "1 = reference means, 0 = local means")
    method = p["correction_method"]
    if not isinstance(method, str) or method not in METHODS:
        raise ParameterError(f"correction_method={method!r} is not accepted; use 'gamma' or "
                             "'linear'")
    threshold = _check_fraction(p["block_valid_pixel_threshold"], "block_valid_pixel_threshold",
                                "fraction of a block's pixels that must be valid")
    number_of_blocks = _check_number_of_blocks(p["number_of_blocks"])
    override = _check_override(p["override_bounds_canvas_coords"])
    shift = p["value_shift"]
    if shift is not None and (not _is_number(shift) or not math.isfinite(shift)):
        raise ParameterError(f"value_shift={shift!r} is not accepted; use None (automatic) or a "
                             "finite number")
    window_size = normalize_window_size(p["window_size"], extra=("block",))
    image_workers = resolve_workers(p["image_parallel_workers"], parameter="image_parallel_workers")
    window_workers = resolve_workers(p["window_parallel_workers"],
                                     parameter="window_parallel_workers")
    check_progress(progress)
    save = _check_save(p["save_block_maps"])
    ref_path, local_paths = maps_file.check_load_parameter(p["load_block_maps"])

    inputs = resolve_input_paths(input_images)
    outputs = resolve_output_paths(output_images, inputs,
                                   default_file_pattern=DEFAULT_OUTPUT_PATTERN,
                                   create_folders=False)
    infos = inspect_rasters(inputs, same_nodata=p["custom_nodata_value"] is None)
    names = [info.name for info in infos]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PathError(f"input_images: several inputs share the name(s) {duplicates}; image "
                        "names (file names without extension) identify images in block maps")
    nodata = resolve_nodata(infos, p["custom_nodata_value"])
    output_dtype = resolve_dtype(infos, p["output_dtype"])
    check_nodata_fits(nodata, output_dtype,
                      parameter="custom_nodata_value" if p["custom_nodata_value"] is not None
                      else "output_dtype")

    vector_mask = None
    if p["vector_mask"] is not None:
        if validate_vector_mask is None:  # pragma: no cover
            raise ParameterError("vector_mask needs spectralmatch.io.vector (pyogrio, shapely)")
        vector_mask = validate_vector_mask(p["vector_mask"])
        stats.image_mask.cache_clear()
        for info in infos:  # read and reproject now, so problems surface before any work
            stats.image_mask(vector_mask, info)

    loaded_reference = maps_file.read_block_map(ref_path) if ref_path else None
    loaded = []
    for path in local_paths:
        m = maps_file.read_block_map(path)
        if m.role == "cells":
            logger.info("load_block_maps: '%s' is a cell sidecar; it is read with its map", path)
            continue
        loaded.append(m)
    if loaded_reference is not None and loaded_reference.role not in (None, "reference"):
        raise ParameterError(f"load_block_maps: '{ref_path}' is a {loaded_reference.role} map, "
                             "not a reference map")
    all_loaded = ([loaded_reference] if loaded_reference else []) + loaded
    maps_file.check_same_grid(all_loaded, infos[0].band_count)
    for m in all_loaded:
        if m.crs_wkt and not same_crs(m.crs_wkt, infos[0].crs_wkt):
            raise RasterError(f"load_block_maps: '{m.path}' has a different CRS than "
                              f"'{infos[0].path}'")
    loaded_locals, loaded_others = maps_file.match_local_maps(loaded, names)
    other_names = [maps_file.loaded_name(m) for m in loaded_others]
    clash = sorted({n for n in other_names if other_names.count(n) > 1 or n in names})
    if clash:
        raise ParameterError(f"load_block_maps: several local maps are named {clash}")

    run = _Run(infos=infos, outputs=outputs, nodata=nodata, output_dtype=output_dtype,
               calculation_dtype=calc, vector_mask=vector_mask, window_size=window_size,
               image_workers=image_workers, window_workers=window_workers,
               save_as_cog=save_as_cog, alpha=alpha, method=method, threshold=threshold,
               value_shift=None if shift is None else float(shift), parameters=jsonable(p),
               progress=progress, number_of_blocks=number_of_blocks, override=override,
               loaded_reference=loaded_reference, loaded_locals=loaded_locals,
               loaded_others=loaded_others)
    if save is not None:
        run.save_paths = _plan_save_paths(save, run)
    if all_loaded:
        canvas = all_loaded[0].canvas
        if override is not None and not canvas.same_as(Canvas(*override, *canvas.shape)):
            raise ParameterError(f"override_bounds_canvas_coords={override} differs from the "
                                 f"bounds {canvas.bounds} of the loaded block maps; omit it or "
                                 "give the same bounds")
        run.canvas = canvas
        if p["number_of_blocks"] != 100:
            logger.info("number_of_blocks is ignored: the loaded block maps define a %d×%d grid",
                        canvas.rows, canvas.cols)
        _place_images(run)
    elif number_of_blocks != "coefficient_of_variation":
        run.canvas = _canvas(run, number_of_blocks)
        _place_images(run)
    return run


def _plan_save_paths(save: tuple[str, str], run: _Run) -> tuple[str, dict[str, str]]:
    ref_path, template = save
    names = run.names + [maps_file.loaded_name(m) for m in run.loaded_others]
    local = {name: template.replace("$", name) for name in names}
    rasters = {os.path.realpath(p): p for p in [i.path for i in run.infos] + run.outputs}
    targets = [ref_path, *local.values()]
    targets += [maps_file.sidecar_path(p) for p in local.values()]
    seen: dict[str, str] = {}
    for path in targets:
        real = os.path.realpath(path)
        if real in rasters:
            raise PathError(f"save_block_maps: '{path}' is the same file as input/output "
                            f"'{rasters[real]}'")
        if real in seen:
            raise PathError(f"save_block_maps: '{path}' would be written twice; give the "
                            "reference map and the local maps different names")
        seen[real] = path
    return ref_path, local


def _canvas(run: _Run, grid_shape: object) -> Canvas:
    bounds = run.override or union_bounds(run.infos)
    width, height = bounds[2] - bounds[0], bounds[3] - bounds[1]
    if isinstance(grid_shape, tuple):
        rows, cols = grid_shape
    else:
        rows, cols = grid_shape_from_target(int(grid_shape), len(run.infos), width, height)
    return Canvas(*bounds, rows, cols)


def _place_images(run: _Run) -> None:
    run.grids = [ImageGrid.place(info, run.canvas) for info in run.infos]
    logger.debug("Block grid: %d rows × %d cols over %s", run.canvas.rows, run.canvas.cols,
                 run.canvas.bounds)
    for info, grid in zip(run.infos, run.grids, strict=True):
        m = run.loaded_locals.get(info.name)
        if m is not None and m.rect is not None and tuple(m.rect) != grid.rect:
            raise RasterError(f"load_block_maps: '{m.path}' was computed for a different "
                              f"footprint of '{info.name}' (blocks {tuple(m.rect)}, the image "
                              f"covers {grid.rect})")






# --------------------------------------------------------------------------- statistics


def _stats_workers(run: _Run) -> Workers:
    return statistics_workers(run.image_workers, run.window_workers)


def _coefficient_of_variation_grid(run: _Run) -> None:
    tasks = [stats.MomentsTask(info, w, run.nodata, run.vector_mask)
             for info in run.infos for w in stats.statistics_windows(info)]
    total = np.zeros(3)
    for acc in run_ordered(_run_moments_task, tasks, _stats_workers(run),
                           describe=stats.MomentsTask.describe,
                           parameter="window_parallel_workers"):
        total += acc
    n, s, s2 = total
    mean = s / n if n > 0 else math.nan
    std = math.sqrt(max(s2 / n - mean * mean, 0.0)) if n > 0 else math.nan
    rows, cols = grid_shape_from_cv(mean, std)
    logger.info("coefficient_of_variation: band 1 mean %.6g, std %.6g -> %d×%d blocks", mean,
                std, rows, cols)
    run.canvas = _canvas(run, (rows, cols))
    _place_images(run)


def _run_moments_task(task):  # module-level entry point for worker processes
    _memory.enter_worker("read")
    return stats.run_moments(task)


def _statistics_pass(run: _Run) -> None:
    """Cell statistics of every input without a loaded map; pixel ranges where unknown."""
    if run.canvas is None:
        _coefficient_of_variation_grid(run)
    tasks: list = []
    todo = []
    for k, (info, grid) in enumerate(zip(run.infos, run.grids, strict=True)):
        loaded = run.loaded_locals.get(info.name)
        if loaded is None:
            todo.append(k)
            run.cells[info.name] = stats.new_cell_stats(grid, info.band_count)
            tasks += [stats.WindowTask(k, info, grid, w, run.nodata, run.vector_mask)
                      for w in stats.statistics_windows(info)]
        else:
            if loaded.cells is not None:
                run.cells[info.name] = loaded.cells
            if loaded.extrema is not None:
                run.extrema[info.name] = loaded.extrema
            else:
                tasks += [stats.ExtremaTask(info, w, run.nodata)
                          for w in stats.statistics_windows(info)]
    with Progress(len(tasks), "Block statistics",
                  callback=scaled_callback(run.progress, 0.0, 0.4)) as bar:
        results = run_ordered(_run_stats_task, tasks, _stats_workers(run),
                              describe=lambda t: t.describe(),
                              parameter="window_parallel_workers")
        for task, result in zip(tasks, results, strict=True):
            name = task.info.name
            if isinstance(task, stats.WindowTask):
                stats.merge_window(run.cells[name], result)
                del result
                _memory.trim_heap()
            else:
                prev = run.extrema.get(name)
                run.extrema[name] = result if prev is None else np.stack(
                    [np.minimum(prev[:, 0], result[:, 0]), np.maximum(prev[:, 1], result[:, 1])],
                    axis=1)
            bar.update()
    for k in todo:
        name = run.infos[k].name
        run.extrema[name] = run.cells[name].extrema
    for info in run.infos:
        run.extrema.setdefault(info.name, np.tile([np.inf, -np.inf], (info.band_count, 1)))


def _run_stats_task(task):  # module-level entry point for worker processes
    _memory.enter_worker("read")
    if isinstance(task, stats.WindowTask):
        return stats.run_window(task)
    return stats.run_extrema(task)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class _Correction:
    """What the apply pass needs for one image (small: maps of its block rectangle)."""

    info: RasterInfo
    grid: ImageGrid
    rect: tuple[int, int, int, int]
    ref: np.ndarray
    loc: np.ndarray
    shift: np.ndarray
    alpha: float
    method: str
    nodata: float | None
    output_dtype: str


def _local_map_of(run: _Run, k: int) -> model.LocalMap:
    info, grid = run.infos[k], run.grids[k]
    rect = (grid.block_row0, grid.block_col0, grid.block_rows, grid.block_cols)
    loaded = run.loaded_locals.get(info.name)
    cells = run.cells.get(info.name)
    if cells is not None:
        means = model.block_means(cells, run.threshold, run.calculation_dtype)
        source = "computed" if loaded is None else loaded.path
    else:  # loaded without sidecar: the stored means, as they are
        means = model.round_to(loaded.means[(slice(None), *grid.block_slices)],
                               run.calculation_dtype)
        source = loaded.path
    return model.LocalMap(info.name, rect, means, cells, source)


def _other_map(run: _Run, m: maps_file.LoadedMap) -> model.LocalMap:
    name = maps_file.loaded_name(m)
    if m.cells is not None:
        means = model.block_means(m.cells, run.threshold, run.calculation_dtype)
        return model.LocalMap(name, tuple(m.rect), means, m.cells, m.path)
    rows, cols = run.canvas.shape
    return model.LocalMap(name, (0, 0, rows, cols), model.round_to(m.means, run.calculation_dtype),
                          None, m.path)


def _solve(run: _Run) -> list[_Correction]:
    shape = run.canvas.shape
    for k, info in enumerate(run.infos):
        run.local_maps[info.name] = _local_map_of(run, k)
    run.other_maps = [_other_map(run, m) for m in run.loaded_others]
    all_maps = list(run.local_maps.values()) + run.other_maps
    for m in all_maps:
        if not np.isfinite(m.means).any():
            logger.warning("Image '%s' has no block with enough valid pixels (threshold %g)",
                           m.name, run.threshold)
    fields = model.level_models(all_maps, shape)
    levels = model.support_levels(all_maps, fields, shape)
    if run.loaded_reference is None:
        run.reference = model.reference_map(all_maps, levels, shape, run.calculation_dtype)
        run.contributors = [m.name for m in all_maps]
    else:
        run.reference = model.round_to(run.loaded_reference.means, run.calculation_dtype)
        names = run.loaded_reference.contributors
        run.contributors = list(names) if isinstance(names, list) else []

    corrections = []
    for k, info in enumerate(run.infos):
        rect, loc = model.extend_level(k, all_maps, levels, fields, shape)
        ref = run.reference[:, rect[0]:rect[0] + rect[2], rect[1]:rect[1] + rect[3]].copy()
        ref[~np.isfinite(loc)] = np.nan
        empty = model.fill_nearest(ref, loc)
        rect, ref, loc = model.pad_frame(rect, ref, loc,
                                         extrapolate=all_maps[k].cells is not None)
        if empty:
            logger.warning("Image '%s' has no block mean in band(s) %s; those bands are copied "
                           "unchanged", info.name, [b + 1 for b in empty])
        shift = model.choose_shift(run.method, run.extrema[info.name][:, 0], ref, loc,
                                   fixed=run.value_shift, image=info.name)
        logger.debug("Image '%s': blocks %s, shift per band %s", info.name, rect,
                     shift.tolist())
        corrections.append(_Correction(info, run.grids[k], rect, ref, loc, shift, run.alpha,
                                       run.method, run.nodata, run.output_dtype))
    return corrections


def _save_maps(run: _Run) -> None:
    from spectralmatch import __version__

    ref_path, local_paths = run.save_paths
    crs = run.infos[0].crs_wkt
    extra = {"function": "local_block_adjustment", "version": __version__}
    maps_file.save_reference_map(ref_path, run.reference, run.canvas, crs, run.nodata,
                                 run.calculation_dtype, run.contributors, extra)
    loaded_by_name = {maps_file.loaded_name(m): m for m in run.loaded_others}
    for m in list(run.local_maps.values()) + run.other_maps:
        extrema = run.extrema.get(m.name)
        if extrema is None and m.name in loaded_by_name:
            extrema = loaded_by_name[m.name].extrema
        maps_file.save_local_map(local_paths[m.name], m, run.canvas, crs, run.nodata,
                                 run.calculation_dtype, extrema, run.threshold, extra)
    logger.info("Saved block maps: %s and %d local map(s)", ref_path, len(local_paths))


# --------------------------------------------------------------------------- apply


@dataclass(frozen=True)
class _WindowTask:
    correction: _Correction
    window: Window
    kernel_threads: int = 1

    def describe(self) -> str:
        return f"correcting '{self.correction.info.name}', window {self.window}"


@dataclass(frozen=True)
class _ImageTask:
    correction: _Correction
    output: str
    window_size: object
    window_workers: Workers
    save_as_cog: bool
    metadata: dict
    kernel_threads: int = 1

    def describe(self) -> str:
        return f"writing '{self.output}' from '{self.correction.info.name}'"

    def windows(self) -> list[Window]:
        info = self.correction.info
        if self.window_size == "block":
            return self.correction.grid.block_windows()
        out_size = np.dtype(self.correction.output_dtype).itemsize
        return plan_windows(info.width, info.height, self.window_size,
                            block_size=info.block_size,
                            bytes_per_pixel=info.band_count * (max(info.itemsize, 1) + out_size),
                            budget_bytes=APPLY_WINDOW_BYTES)


def _correct_window(task: _WindowTask) -> np.ndarray:
    _memory.enter_worker("read")
    c, w = task.correction, task.window
    data = read_window(cached_dataset(c.info.path), w)
    return correct_window(data, c.ref, c.loc, c.grid.frow(w.row_off, w.height, c.rect),
                          c.grid.fcol(w.col_off, w.width, c.rect), c.shift, alpha=c.alpha,
                          method=c.method, nodata_in=c.nodata, nodata_out=c.nodata,
                          out_dtype=c.output_dtype, threads=task.kernel_threads)


def _apply_image(task: _ImageTask, bar: Progress | None = None) -> str:
    c = task.correction
    window_tasks = [_WindowTask(c, w, task.kernel_threads) for w in task.windows()]
    with RasterWriter.like(c.info, task.output, dtype=c.output_dtype, nodata=c.nodata,
                           save_as_cog=task.save_as_cog, metadata=task.metadata) as writer:
        arrays = run_ordered(_correct_window, window_tasks, task.window_workers,
                             describe=_WindowTask.describe)
        for wt, array in zip(window_tasks, arrays, strict=True):
            writer.write(wt.window, array)
            del array
            _memory.trim_heap()
            if bar is not None:
                bar.update()
    return task.output


def _apply_image_task(task: _ImageTask) -> str:  # module-level entry for image workers
    _memory.enter_worker("image")
    return _apply_image(task)


def _apply_pass(run: _Run, corrections: list[_Correction]) -> list[str]:
    from spectralmatch import __version__

    for folder in {os.path.dirname(os.path.abspath(p)) for p in run.outputs}:
        os.makedirs(folder, exist_ok=True)
    tasks = []
    for correction, output in zip(corrections, run.outputs, strict=True):
        metadata = {"function": "local_block_adjustment", "version": __version__,
                    "parameters": run.parameters, "grid": list(run.canvas.shape),
                    "canvas": list(run.canvas.bounds),
                    "shift": [float(v) for v in correction.shift]}
        tasks.append(_ImageTask(correction, output, run.window_size,
                                read_ahead(run.image_workers, run.window_workers),
                                run.save_as_cog, metadata,
                                kernel_threads(run.image_workers, run.window_workers)))
    callback = scaled_callback(run.progress, 0.4, 0.6)
    if run.image_workers.is_serial:
        total = sum(len(t.windows()) for t in tasks)
        with Progress(total, "Local adjustment", callback=callback) as bar:
            return [_apply_image(task, bar) for task in tasks]
    outputs = []
    with Progress(len(tasks), "Local adjustment", callback=callback) as bar:
        for path in run_ordered(_apply_image_task, tasks, run.image_workers,
                                describe=_ImageTask.describe,
                                parameter="image_parallel_workers"):
            outputs.append(path)
            bar.update()
    return outputs
