"""The README's main job: the whole mosaic workflow on generated sample data.

``spectralmatch demo`` (or :func:`demo`) generates a seeded 2×2 mosaic with known gains, offsets,
brightness gradients, noise and irregular nodata collars, then runs the seed API's mosaic
workflow — global_regression → local_block_adjustment → align_rasters (tap) →
voronoi_center_seamline → mask_rasters → merge_rasters — and prints the seam metrics (overlap
RMSE per pair) before and after matching. It writes the mosaic, the seamlines and a
before/after picture into ``output_folder``.
"""
from __future__ import annotations

import logging
import os
import time

logger = logging.getLogger("spectralmatch")


def demo(output_folder: str = "demo_output", tile_size: int = 1024, layout: str = "2x2",
         seed: int = 7, image_parallel_workers: tuple | None = None) -> list[str]:
    """Run the mosaic workflow on generated sample data and report seam metrics.

    Args:
        output_folder (str): Folder for the sample inputs and every intermediate and final
            output (created; existing demo outputs are replaced atomically).
        tile_size (int): Width and height of each generated image in pixels.
        layout (str): Arrangement of the generated images, "RxC" (rows × columns).
        seed (int): Seed of the sample generator (same seed, same data).
        image_parallel_workers (tuple | None): Parallel setting for image-level work, e.g.
            ("process", 2); None runs serially.

    Returns:
        list[str]: The merged mosaic, the seamline GeoPackage and the before/after PNG.
    """
    from .mask.mask_rasters import mask_rasters
    from .match.global_regression import global_regression
    from .match.local_block_adjustment import local_block_adjustment
    from .mosaic.align_rasters import align_rasters
    from .mosaic.merge_rasters import merge_rasters
    from .progress import configure_logging
    from .quality import format_metrics_table, mean_rmse, overlap_metrics, truth_residual
    from .sample_data import generate_mosaic
    from .seamline.voronoi_center_seamline import voronoi_center_seamline
    from .visualize import save_before_after_png

    configure_logging(False)
    folder = os.path.abspath(output_folder)
    steps: list[tuple[str, float]] = []

    def step(label: str, fn, *args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        steps.append((label, time.perf_counter() - start))
        return result

    sample = step("generate sample data", generate_mosaic, os.path.join(folder, "Input"),
                  layout=layout, tile_size=tile_size, bands=4, dtype="uint16", overlap=0.3,
                  gradient=250.0, noise=15.0, collar=max(4, tile_size // 24), seed=seed,
                  write_truth=True, name="sample")
    inputs = sample.paths
    workers = {"image_parallel_workers": image_parallel_workers}
    global_out = step("global_regression", global_regression, inputs,
                      os.path.join(folder, "GlobalMatch"), **workers)
    local_out = step("local_block_adjustment", local_block_adjustment, global_out,
                     os.path.join(folder, "LocalMatch"), **workers)
    aligned = step("align_rasters", align_rasters, local_out, os.path.join(folder, "Aligned"),
                   tap=True, **workers)
    seamlines = os.path.join(folder, "ImageMasks.gpkg")
    step("voronoi_center_seamline", voronoi_center_seamline, aligned, seamlines,
         image_field_name="image")
    clipped = step("mask_rasters", mask_rasters, aligned, os.path.join(folder, "Clipped"),
                   vector_mask=("include", seamlines, "image"), **workers)
    mosaic = os.path.join(folder, "MergedImage.tif")
    step("merge_rasters", merge_rasters, clipped, mosaic)

    # The same workflow without matching gives the "before" mosaic.
    raw_aligned = step("align (before)", align_rasters, inputs,
                       os.path.join(folder, "Before", "Aligned"), tap=True)
    raw_seamlines = os.path.join(folder, "Before", "ImageMasks.gpkg")
    step("seamlines (before)", voronoi_center_seamline, raw_aligned, raw_seamlines,
         image_field_name="image")
    raw_clipped = step("mask (before)", mask_rasters, raw_aligned,
                       os.path.join(folder, "Before", "Clipped"),
                       vector_mask=("include", raw_seamlines, "image"))
    raw_mosaic = os.path.join(folder, "Before", "MergedImage.tif")
    step("merge (before)", merge_rasters, raw_clipped, raw_mosaic)
    picture = os.path.join(folder, "before_after.png")
    step("before/after picture", save_before_after_png, raw_mosaic, mosaic, picture)

    before = overlap_metrics(inputs)
    after_global = overlap_metrics(global_out)
    after = overlap_metrics(local_out)
    truth = sample.truth_paths
    print("\nSeam metrics (overlap RMSE per pair and band, DN):")
    print(format_metrics_table(before, after))
    print(f"\nMean overlap RMSE: before {mean_rmse(before):.1f}, after global "
          f"{mean_rmse(after_global):.1f}, after global+local {mean_rmse(after):.1f}")
    res_before = truth_residual(inputs, truth)
    res_after = truth_residual(local_out, truth)
    print("Residual RMSE against the true scene (common gain/offset removed), per band: "
          f"before {_fmt(res_before)}, after {_fmt(res_after)}")
    print("\nTime per step:")
    for name, seconds in steps:
        print(f"  {name:<26} {seconds:6.1f} s")
    print(f"\nMosaic: {mosaic}\nSeamlines: {seamlines}\nPicture: {picture}")
    return [mosaic, seamlines, picture]


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:.1f}" for v in values) + "]"
