"""Global regression: least-squares gain/offset matching of many overlapping images.

Pipeline (ARCHITECTURE.md §1): resolve paths → inspect inputs → validate every parameter →
statistics pass (streaming ``moments`` kernels over the automatic block-aligned plan) → solve
the model of ALGORITHMS.md §2.6 → optionally save it → apply ``a·x + b`` with the ``correct``
kernel window by window → atomic writes.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
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
    resolve_dtype,
    resolve_nodata,
)
from spectralmatch.io.vector import validate_vector_mask
from spectralmatch.io.windows import Window, normalize_window_size, plan_windows
from spectralmatch.io.writer import RasterWriter
from spectralmatch.kernels.correct import apply_linear
from spectralmatch.parallel import (
    Workers,
    read_ahead,
    resolve_workers,
    run_ordered,
    statistics_workers,
)
from spectralmatch.progress import Progress, configure_logging, scaled_callback

from . import _overlap
from ._adjustments_file import LoadedModel, load_model_file, save_model_file
from ._global_model import BandStats, ModelSolution, solve_global_model

logger = logging.getLogger("spectralmatch")

DEFAULT_OUTPUT_PATTERN = "$_Global.tif"
_CALCULATION_DTYPES = ("float32", "float64")


def global_regression(
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
    specify_model_images: tuple[str, list[str]] | None = None,
    custom_mean_factor: float = 1.0,
    custom_std_factor: float = 1.0,
    save_adjustments: str | None = None,
    load_adjustments: str | None = None,
    min_overlap_size: int = 0,
    weight_by_size: bool = True,
    progress: Callable[[float, str], object] | None = None,
) -> list[str]:
    """Performs global radiometric normalization across overlapping images using least squares regression.

    For every band, one gain ``a`` and offset ``b`` per image are solved so that overlapping
    images agree in mean and standard deviation where they overlap, while the included images
    keep their own overall mean and standard deviation (Yu et al. 2017, global part). Each output
    pixel is ``a·x + b``; nodata pixels stay nodata. Statistics are streamed window by window
    (memory does not grow with the image size). All standard deviations are population
    standard deviations (ddof 0; the original used ddof 1 for whole-image statistics, a
    difference of about 1/(2N) relative). Overlap statistics use only pixels valid in both
    images, the second image sampled onto the first one's grid by nearest neighbour, so images
    of different resolutions work. Results do not depend on ``window_size`` or on the parallel
    settings.

    Args:
        input_images (str | List[str], required): Defines input files from a glob path, folder, or list of paths. Specify like: "/input/files/*.tif", "/input/folder" (assumes *.tif), ["/input/one.tif", "/input/two.tif"].
        output_images (str | List[str], required): Defines output files from a template path, folder, or list of paths (with the same length as the input). Specify like: "/input/files/$.tif", "/input/folder" (assumes $_Global.tif), ["/input/one.tif", "/input/two.tif"]. Outputs may not overwrite inputs or each other.
        calculation_dtype (str, optional): Precision of the correction arithmetic a·x + b: "float32" (default, as the original) or "float64". Statistics and the model are always computed in float64.
        output_dtype (str | None, optional): Data type for output rasters. Defaults to the first input image's dtype. Integer outputs are rounded to nearest and clipped to the dtype range.
        vector_mask (Tuple[Literal["include", "exclude"], str, Optional[str]] | None): Mask limiting the statistics to specific areas: ("include" | "exclude", path to a vector file[, field name]). With a field, only features whose field value names the input image are used for that image. Loaded statistics are not masked. The correction is still applied everywhere in the outputs. Defaults to None for no mask.
        debug_logs (bool, optional): If True, logs debug information (statistics, model). Defaults to False.
        custom_nodata_value (float | int | None, optional): Overrides the nodata value of the inputs (default: band 1 of the first input). Defaults to None.
        image_parallel_workers (Tuple[Literal["process", "thread"], Literal["cpu"] | int] | None = None): Parallelization at the image level for the apply pass, like ("process", "cpu") or ("thread", 4); a concurrent.futures.Executor is accepted too. Also used for the statistics pass when window_parallel_workers is None. None runs serially.
        window_parallel_workers (Tuple[Literal["process", "thread"], Literal["cpu"] | int] | None = None): Parallelization at the window level (statistics and apply passes), same format as image_parallel_workers. Workers compute windows; each output is written by one writer. None runs serially.
        window_size (int | Tuple[int, int] | Literal["internal", "whole"] | None): Window of the apply pass: int for square tiles, (width, height), "internal" for the file's own blocks, "whole" for one window per image, or None for an automatic block-aligned plan within a fixed memory budget. Outputs are identical for every choice; statistics always use the automatic plan.
        save_as_cog (bool): If True, saves outputs as Cloud Optimized GeoTIFFs (with overviews).
        specify_model_images (Tuple[Literal["exclude", "include"], List[str]] | None ): ("include" | "exclude", [image names without extension]): only included images keep their own mean and std constraints; the other images are pulled onto them through their overlaps. For example, including a single image matches all others to it. Names may also be images only present in load_adjustments. Defaults to every image included.
        custom_mean_factor (float, optional): Weight factor of the overlap mean constraints relative to the whole-image constraints. Defaults to 1.0.
        custom_std_factor (float, optional): Weight factor of the overlap standard deviation constraints. Defaults to 1.0.
        save_adjustments (str | None, optional): Path of a .json file to save the model (adjustments and whole/overlap statistics of every image). Folders are created. Defaults to not saving.
        load_adjustments (str | None, optional): Path of a .json model file (as written by save_adjustments). Its whole and overlap statistics replace computed ones for the images and pairs it holds; images present only in the file take part in the model through their stored statistics. The stored adjustments are ignored: the model is always solved again. Defaults to None.
        min_overlap_size (int, optional): Overlaps with fewer jointly valid pixels (per band) than this are not used in the model. Defaults to 0.
        weight_by_size (bool, optional): Weight overlap constraints by their pixel count (the original behaviour); if False every overlap has weight 1. Defaults to True.
        progress (Callable[[float, str], object] | None, optional): GDAL-style callback progress(fraction, message); returning False cancels the run. Defaults to None.

    Returns:
        List[str]: Paths to the globally adjusted output raster images.

    Raises:
        SpectralMatchError: A parameter, path, raster or model file is not accepted (raised
            before any output is written).
    """
    configure_logging(debug_logs)
    logger.info("Start global_regression")
    parameters = {
        "calculation_dtype": calculation_dtype, "output_dtype": output_dtype,
        "vector_mask": vector_mask, "custom_nodata_value": custom_nodata_value,
        "image_parallel_workers": image_parallel_workers,
        "window_parallel_workers": window_parallel_workers, "window_size": window_size,
        "save_as_cog": save_as_cog, "specify_model_images": specify_model_images,
        "custom_mean_factor": custom_mean_factor, "custom_std_factor": custom_std_factor,
        "save_adjustments": save_adjustments, "load_adjustments": load_adjustments,
        "min_overlap_size": min_overlap_size, "weight_by_size": weight_by_size,
    }
    run = _prepare(input_images, output_images, parameters, debug_logs=debug_logs,
                   progress=progress)
    _statistics_pass(run)
    solution = _solve(run)
    if save_adjustments is not None:
        save_model_file(save_adjustments, run.names, solution.scale, solution.offset, run.whole,
                        run.overlap)
        logger.info("Saved adjustments to %s", save_adjustments)
    outputs = _apply_pass(run, solution)
    logger.info("Finished global_regression: %d image(s)", len(outputs))
    return outputs


# --------------------------------------------------------------------------- preparation


@dataclass
class _Run:
    """Everything validated before the first statistic is computed."""

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
    names: list[str]
    included: set[str]
    custom_mean_factor: float
    custom_std_factor: float
    min_overlap_size: int
    weight_by_size: bool
    parameters: dict
    progress: Callable[[float, str], object] | None
    loaded: LoadedModel | None
    pairs_to_compute: list[tuple[int, int]]
    whole: dict[str, BandStats] = field(default_factory=dict)
    overlap: dict[tuple[str, str], BandStats] = field(default_factory=dict)




def _check_factor(value: object, parameter: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not math.isfinite(value) or value < 0:
        raise ParameterError(f"{parameter} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_specify(specify: object) -> tuple[str, list[str]] | None:
    if specify is None:
        return None
    accepted = ('None or ("include" | "exclude", [image names without extension]), e.g. '
                '("include", ["image_a"])')
    if isinstance(specify, (str, bytes)) or not isinstance(specify, (tuple, list)) \
            or len(specify) != 2:
        raise ParameterError(f"specify_model_images={specify!r} is not accepted; use {accepted}")
    mode, names = specify
    if mode not in ("include", "exclude"):
        raise ParameterError(f"specify_model_images: mode {mode!r} is not accepted; use "
                             f"\"include\" or \"exclude\"")
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ParameterError(f"specify_model_images: {names!r} must be a list of image names "
                             "(file names without extension)")
    if not names:
        raise ParameterError("specify_model_images: the list of image names is empty")
    return mode, list(names)


def _check_calculation_dtype(value: object) -> str:
    try:
        name = np.dtype(value).name
    except TypeError:
        name = None
    if name not in _CALCULATION_DTYPES:
        raise ParameterError(f"calculation_dtype={value!r} is not accepted; use 'float32' or "
                             "'float64'")
    return name


def _prepare(input_images, output_images, parameters: dict, *, debug_logs: bool,
             progress) -> _Run:
    """Resolve and validate everything; raises before any output exists."""
    p = parameters
    check_bool(debug_logs, "debug_logs")
    calculation_dtype = _check_calculation_dtype(p["calculation_dtype"])
    mean_factor = _check_factor(p["custom_mean_factor"], "custom_mean_factor")
    std_factor = _check_factor(p["custom_std_factor"], "custom_std_factor")
    min_overlap = p["min_overlap_size"]
    if isinstance(min_overlap, bool) or not isinstance(min_overlap, (int, np.integer)) \
            or min_overlap < 0:
        raise ParameterError(f"min_overlap_size must be an int >= 0, got {min_overlap!r}")
    weight_by_size = check_bool(p["weight_by_size"], "weight_by_size")
    save_as_cog = check_bool(p["save_as_cog"], "save_as_cog")
    window_size = normalize_window_size(p["window_size"])
    image_workers = resolve_workers(p["image_parallel_workers"], parameter="image_parallel_workers")
    window_workers = resolve_workers(p["window_parallel_workers"],
                                     parameter="window_parallel_workers")
    check_progress(progress)
    specify = _check_specify(p["specify_model_images"])
    for name in ("save_adjustments", "load_adjustments"):
        if p[name] is not None and not isinstance(p[name], (str, os.PathLike)):
            raise ParameterError(f"{name} must be a path to a .json file or None, got {p[name]!r}")

    inputs = resolve_input_paths(input_images)
    outputs = resolve_output_paths(output_images, inputs,
                                   default_file_pattern=DEFAULT_OUTPUT_PATTERN,
                                   create_folders=False)
    if p["save_adjustments"] is not None:
        _check_model_path(os.fspath(p["save_adjustments"]), inputs + outputs)
    infos = inspect_rasters(inputs, same_nodata=p["custom_nodata_value"] is None)
    names = [info.name for info in infos]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PathError(f"input_images: several inputs share the name(s) {duplicates}; image "
                        "names (file names without extension) identify images in the model")
    nodata = resolve_nodata(infos, p["custom_nodata_value"])
    output_dtype = resolve_dtype(infos, p["output_dtype"])
    check_nodata_fits(nodata, output_dtype,
                      parameter="custom_nodata_value" if p["custom_nodata_value"] is not None
                      else "output_dtype")

    vector_mask = None
    if p["vector_mask"] is not None:
        vector_mask = validate_vector_mask(p["vector_mask"])
        _overlap.image_mask.cache_clear()
        _overlap.mask_on_grid.cache_clear()
        for info in infos:  # reads and reprojects now, so problems surface before any work
            _overlap.image_mask(vector_mask, info)

    loaded = None
    if p["load_adjustments"] is not None:
        loaded = load_model_file(p["load_adjustments"], infos[0].band_count)
    all_names = names + [n for n in (loaded.names if loaded else []) if n not in set(names)]

    included = set(all_names)
    if specify is not None:
        mode, listed = specify
        unknown = [n for n in listed if n not in set(all_names)]
        if unknown:
            raise ParameterError(f"specify_model_images: unknown image name(s) {unknown}; known "
                                 f"images are {all_names}")
        included = set(listed) if mode == "include" else set(all_names) - set(listed)
        if not included:
            raise ParameterError("specify_model_images excludes every image; at least one image "
                                 "must keep its own statistics")

    run = _Run(infos=infos, outputs=outputs, nodata=nodata, output_dtype=output_dtype,
               calculation_dtype=calculation_dtype, vector_mask=vector_mask,
               window_size=window_size, image_workers=image_workers,
               window_workers=window_workers, save_as_cog=save_as_cog, names=all_names,
               included=included, custom_mean_factor=mean_factor, custom_std_factor=std_factor,
               min_overlap_size=int(min_overlap), weight_by_size=weight_by_size,
               parameters=jsonable(p), progress=progress, loaded=loaded, pairs_to_compute=[])
    _plan_pairs(run)
    return run


def _check_model_path(path: str, rasters: Sequence[str]) -> None:
    real = os.path.realpath(path)
    for raster in rasters:
        if os.path.realpath(raster) == real:
            raise PathError(f"save_adjustments '{path}' is the same file as raster '{raster}'")




def _plan_pairs(run: _Run) -> None:
    """Decide which statistics come from the loaded model and which are computed."""
    infos, loaded = run.infos, run.loaded
    names = [info.name for info in infos]
    if loaded is not None:
        for name in names:
            if name in loaded.whole:
                run.whole[name] = loaded.whole[name]
        input_names = set(names)
        for (a, b), stats in loaded.overlap.items():
            if a in input_names and b in input_names:
                continue  # decided below, with the bounds of both images
            if (b, a) in loaded.overlap:
                run.overlap[(a, b)] = stats
            elif a in set(run.names) and b in set(run.names):
                logger.warning("load_adjustments: '%s' stores statistics over its overlap with "
                               "'%s' but '%s' has none over it; a pair needs both sides, so "
                               "it is not used", a, b, b)
        for name in run.names:
            if name not in input_names:
                run.whole[name] = loaded.whole[name]
    for i, j in _overlap.overlapping_pairs(infos):
        a, b = names[i], names[j]
        if loaded is not None and (a, b) in loaded.overlap and (b, a) in loaded.overlap:
            run.overlap[(a, b)], run.overlap[(b, a)] = loaded.overlap[(a, b)], loaded.overlap[(b, a)]
        else:
            run.pairs_to_compute.append((i, j))
    if len(run.names) > 1 and not run.pairs_to_compute and not run.overlap:
        raise RasterError("input_images: no two images overlap (bounding boxes compared"
                          f" for {names}); global_regression needs overlapping images")
    if len(run.names) == 1:
        logger.warning("Only one image ('%s'): nothing to match, it is copied unchanged",
                       run.names[0])


# --------------------------------------------------------------------------- statistics




def _statistics_pass(run: _Run) -> None:
    """Compute the whole-image and overlap statistics that were not loaded."""
    tasks = _statistics_tasks(run)
    workers = statistics_workers(run.image_workers, run.window_workers)
    band_count = run.infos[0].band_count
    totals: dict[tuple[str, int], object] = {}

    def add(key: tuple[str, int], part) -> None:
        total = totals.get(key)
        if total is None:
            total = _overlap.new_accumulator(key[0], band_count)
        totals[key] = _overlap.merge_accumulators(total, part)

    with Progress(len(tasks), "Statistics",
                  callback=scaled_callback(run.progress, 0.0, 0.4)) as bar:
        for task, (whole, joints) in zip(tasks, run_ordered(
                _overlap.run_stats_task, tasks, workers, describe=_overlap.StatsTask.describe,
                parameter="window_parallel_workers"), strict=True):
            if whole is not None:
                add(("whole", task.image), whole)
            for part, joint in zip(task.parts, joints, strict=True):
                add(("overlap", part.pair), joint)
            bar.update()
    for k, info in enumerate(run.infos):
        if info.name not in run.whole:
            acc = totals.get(("whole", k), _overlap.new_accumulator("whole", band_count))
            run.whole[info.name] = _overlap.whole_stats(acc)
            if run.whole[info.name].size.max() == 0:
                logger.warning("Image '%s' has no valid pixel (nodata %s%s)", info.name,
                               run.nodata, ", vector mask" if run.vector_mask else "")
    dropped = []
    for index, (i, j) in enumerate(run.pairs_to_compute):
        a, b = run.infos[i].name, run.infos[j].name
        acc = totals.get(("overlap", index), _overlap.new_accumulator("overlap", band_count))
        if acc.count.max() == 0:
            dropped.append(f"{a} / {b}")
            continue
        run.overlap[(a, b)], run.overlap[(b, a)] = _overlap.pair_stats(acc)
    if dropped:
        logger.warning("Overlapping pair(s) without any jointly valid pixel are dropped: %s",
                       "; ".join(dropped))
    if len(run.names) > 1 and not run.overlap:
        raise RasterError("input_images: the images' bounding boxes overlap but no pair shares "
                          "a valid pixel (nodata/vector mask), so there is nothing to match")
    if logger.isEnabledFor(logging.DEBUG):
        for name, stats in run.whole.items():
            logger.debug("whole %s: mean %s std %s size %s", name, stats.mean, stats.std,
                         stats.size)
        for (a, b), stats in run.overlap.items():
            logger.debug("overlap %s|%s: mean %s std %s size %s", a, b, stats.mean, stats.std,
                         stats.size)


def _statistics_tasks(run: _Run) -> list[_overlap.StatsTask]:
    """One task per window of the automatic plan of each image that has something to compute.

    An overlap (i, j) is computed in the windows of image i, so each window of i is read once
    for its whole-image moments and all its overlaps.
    """
    regions: dict[int, list[tuple[int, Window]]] = {}
    for index, (i, j) in enumerate(run.pairs_to_compute):
        info_i, info_j = run.infos[i], run.infos[j]
        bounds = _overlap.intersection_bounds(info_i.bounds, info_j.bounds)
        region = _overlap.centre_window(info_i, bounds)
        if region is not None:
            regions.setdefault(i, []).append((index, region))
    tasks = []
    for k, info in enumerate(run.infos):
        whole = info.name not in run.whole
        if not whole and k not in regions:
            continue
        for window in _overlap.statistics_windows(info):
            parts = []
            for index, region in regions.get(k, []):
                part = window.intersection(region)
                if part is not None:
                    j = run.pairs_to_compute[index][1]
                    parts.append(_overlap.PairPart(index, run.infos[j], part))
            if whole or parts:
                tasks.append(_overlap.StatsTask(k, info, window, run.nodata, run.vector_mask,
                                                whole, tuple(parts)))
    return tasks


# --------------------------------------------------------------------------- model


def _solve(run: _Run) -> ModelSolution:
    band_count = run.infos[0].band_count
    solution = solve_global_model(run.names, run.included, run.whole, run.overlap,
                                  custom_mean_factor=run.custom_mean_factor,
                                  custom_std_factor=run.custom_std_factor,
                                  weight_by_size=run.weight_by_size,
                                  min_overlap_size=run.min_overlap_size, band_count=band_count)
    input_names = [info.name for info in run.infos]
    in_pairs: dict[str, set[int]] = {n: set() for n in run.names}
    for band, pairs in solution.used_pairs.items():
        for a, b in pairs:
            in_pairs[a].add(band)
            in_pairs[b].add(band)
    for name in input_names:
        if not in_pairs[name] and len(run.names) > 1:
            logger.warning("Image '%s' shares no usable overlap with another image; it is left "
                           "unchanged", name)
        elif name in solution.unchanged:
            logger.warning("Image '%s' is not connected through overlaps to any included image "
                           "(bands %s); it is left unchanged there", name,
                           [b + 1 for b in solution.unchanged[name]])
    for k, name in enumerate(input_names):
        bad = [b + 1 for b in range(band_count) if solution.scale[k, b] <= 0]
        if bad:
            logger.warning("Image '%s' gets a non-positive gain in band(s) %s (%s): the model "
                           "inverts its contrast there; check the overlaps and nodata", name, bad,
                           [round(float(solution.scale[k, b - 1]), 6) for b in bad])
    if logger.isEnabledFor(logging.DEBUG):
        for k, name in enumerate(run.names):
            logger.debug("adjustments %s: scale %s offset %s", name, solution.scale[k],
                         solution.offset[k])
    return solution


# --------------------------------------------------------------------------- apply


@dataclass(frozen=True)
class _WindowTask:
    path: str
    name: str
    window: Window
    scale: tuple[float, ...]
    offset: tuple[float, ...]
    nodata: float | None
    output_dtype: str
    calculation_dtype: str

    def describe(self) -> str:
        return f"correcting '{self.name}', window {self.window}"


@dataclass(frozen=True)
class _ImageTask:
    info: RasterInfo
    output: str
    scale: tuple[float, ...]
    offset: tuple[float, ...]
    nodata: float | None
    output_dtype: str
    calculation_dtype: str
    window_size: object
    window_workers: Workers
    save_as_cog: bool
    metadata: dict

    def describe(self) -> str:
        return f"writing '{self.output}' from '{self.info.name}'"

    def windows(self) -> list[Window]:
        info = self.info
        return plan_windows(info.width, info.height, self.window_size,
                            block_size=info.block_size,
                            bytes_per_pixel=info.band_count * max(info.itemsize, 1))


def _correct_window(task: _WindowTask) -> np.ndarray:
    data = read_window(cached_dataset(task.path), task.window)
    return apply_linear(data, task.scale, task.offset, nodata=task.nodata,
                        out_dtype=task.output_dtype, calculation_dtype=task.calculation_dtype)


def _apply_image(task: _ImageTask, bar: Progress | None = None) -> str:
    info = task.info
    window_tasks = [_WindowTask(info.path, info.name, w, task.scale, task.offset, task.nodata,
                                task.output_dtype, task.calculation_dtype)
                    for w in task.windows()]
    with RasterWriter.like(info, task.output, dtype=task.output_dtype, nodata=task.nodata,
                           save_as_cog=task.save_as_cog, metadata=task.metadata) as writer:
        for wt, array in zip(window_tasks, run_ordered(_correct_window, window_tasks,
                                                       task.window_workers,
                                                       describe=_WindowTask.describe), strict=True):
            writer.write(wt.window, array)
            if bar is not None:
                bar.update()
    return task.output


def _apply_image_task(task: _ImageTask) -> str:  # module-level entry for image workers
    return _apply_image(task)


def _apply_pass(run: _Run, solution: ModelSolution) -> list[str]:
    from spectralmatch import __version__

    tasks = []
    for k, (info, output) in enumerate(zip(run.infos, run.outputs, strict=True)):
        metadata = {"function": "global_regression", "version": __version__,
                    "parameters": run.parameters,
                    "scale": [float(v) for v in solution.scale[k]],
                    "offset": [float(v) for v in solution.offset[k]]}
        tasks.append(_ImageTask(info, output, tuple(map(float, solution.scale[k])),
                                tuple(map(float, solution.offset[k])), run.nodata,
                                run.output_dtype, run.calculation_dtype, run.window_size,
                                read_ahead(run.image_workers, run.window_workers),
                                run.save_as_cog, metadata))
    callback = scaled_callback(run.progress, 0.4, 0.6)
    if run.image_workers.is_serial:
        total = sum(len(t.windows()) for t in tasks)
        with Progress(total, "Applying adjustments", callback=callback) as bar:
            return [_apply_image(task, bar) for task in tasks]
    outputs = []
    with Progress(len(tasks), "Applying adjustments", callback=callback) as bar:
        for path in run_ordered(_apply_image_task, tasks, run.image_workers,
                                describe=_ImageTask.describe,
                                parameter="image_parallel_workers"):
            outputs.append(path)
            bar.update()
    return outputs
