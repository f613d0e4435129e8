"""``voronoi_center_seamline``: one mosaic polygon per image, seams through the middle of overlaps.

Pipeline: resolve and inspect the inputs, extract each image's effective mosaic polygon (EMP,
its valid-pixel footprint: :mod:`._footprints`), partition the union of the EMPs with Voronoi
centre lines (:mod:`._partition`) and write one GeoPackage layer ``seamlines`` atomically.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence

import numpy as np
import shapely
from shapely import STRtree

from .._checks import check_bool
from ..errors import ParameterError, PathError, RasterError, SpectralMatchError
from ..io.paths import resolve_input_paths
from ..io.raster import RasterInfo, inspect_rasters
from ..progress import Progress, ProgressCallback, configure_logging
from ._footprints import footprint_decimation as _decimation_for
from ._footprints import image_footprint
from ._gpkg import write_layers
from ._partition import Partition, overlapping_pairs, partition_footprints

logger = logging.getLogger("spectralmatch")

#: Name of the output layer (the seed's).
SEAMLINE_LAYER = "seamlines"
#: Footprint holes smaller than this many (finest) pixels do not steer the seams.
SMALL_HOLE_CELLS = 100
#: Field names a GeoPackage reserves for the feature id and the geometry column.
_RESERVED_FIELDS = {"fid", "geom"}


def voronoi_center_seamline(
    input_images: str | list[str],
    output_mask: str,
    *,
    image_field_name: str = "image",
    min_point_spacing: float = 10,
    min_cut_length: float = 0,
    debug_logs: bool = False,
    debug_vectors_path: str | None = None,
    footprint_decimation: int | None = None,
    require_all_bands: bool = False,
    progress: ProgressCallback | None = None,
) -> str:
    """Generates Voronoi centre-line seamlines from the images' effective mosaic polygons (EMPs) and writes them to a GeoPackage.

    Each image's effective mosaic polygon (EMP) is the footprint of its valid pixels: a pixel
    is valid when at least one band (or every band, with ``require_all_bands``) is finite and
    differs from that band's nodata value. All valid polygons are kept (a MultiPolygon, holes
    included). The union of the EMPs is then partitioned into one region per image: a point
    covered by one image belongs to it; a point covered by several images belongs to the one
    whose own part of the overlap (the part of its EMP the other covering images do not
    reach) is nearest, which puts the seams on the centre lines of the overlaps. Distances are
    measured with a Voronoi diagram of points spaced ``min_point_spacing`` apart along those
    parts. MultiPolygon overlaps, any number of boundary crossings, three or more images
    meeting and concave footprints are handled by the same rule. An image whose EMP lies
    inside the others' competes only where it matters: of two identical EMPs, the earlier
    input takes the area. Small nodata holes inside an EMP (under 100 pixels) do not steer the
    seams; they go to the images that do have data there (or stay outside every region).

    The regions partition the union of the EMPs: the EMP outlines and the seams are noded
    together into faces and every face goes to exactly one image that covers it, so there are
    no gaps, no double coverage and each region lies inside its own image's EMP (up to a
    snapping grid of 1e-12 of the extent). The result is deterministic.

    Output: a GeoPackage with the layer ``seamlines``, one feature per input in input order,
    the field ``image_field_name`` holding the image name (file stem), geometry type
    MultiPolygon (empty for an image left without area), in the CRS of the first input. The
    file is written under a temporary name and renamed, so a failed run leaves no partial
    output (an existing file is replaced).

    Args:
        input_images (str | List[str], required): Defines input files from a glob path, folder, or list of paths. Specify like: "/input/files/*.tif", "/input/folder" (assumes *.tif), ["/input/one.tif", "/input/two.tif"].
        output_mask (str): Output path for the final seamline polygon vector file (a .gpkg).
        image_field_name (str, optional): Name of the attribute field for image ID in output; default is 'image'.
        min_point_spacing (float, optional): Spacing (CRS units) between Voronoi seed points along the footprint boundaries; smaller is more precise and slower. Values below half a footprint cell are raised to it; default is 10.
        min_cut_length (float, optional): Seam simplification tolerance (CRS units): the seam lines are simplified (Douglas-Peucker) so that zig-zags smaller than this disappear; the regions still partition the union and footprint outlines never move; 0 keeps every Voronoi edge; default is 0.
        debug_logs (bool, optional): Enables debug print statements if True; default is False.
        debug_vectors_path (str | None, optional): Optional GeoPackage path for debug layers: footprints (EMPs), overlaps (contested regions with the names of the covering images), seeds (Voronoi seed points per image and overlap) and cutlines (seam lines between neighbouring regions).
        footprint_decimation (int | None, optional): Footprint mask cell size in pixels: 1 uses every pixel, k > 1 uses cells of k x k pixels that count as valid only when all their pixels are valid (the EMP then never includes nodata but may lose up to k-1 valid pixels along its edges). None chooses 1 for images up to 64 Mi pixels and the smallest factor that keeps the mask within 64 MiB otherwise.
        require_all_bands (bool, optional): If True a pixel belongs to the EMP only when every band is valid; by default one valid band is enough.
        progress (Callable[[float, str], object] | None, optional): GDAL-style progress callback progress(fraction, message) for the footprint extraction; returning False cancels.

    Returns:
        str: The path of the written GeoPackage (``output_mask``).

    Raises:
        SpectralMatchError: Bad parameters, no input found, inputs with different CRSs or band
            counts, an output equal to an input or not ending in .gpkg, an image without valid
            pixels, fewer than two images or no two footprints overlapping — all detected before
            anything is written.
    """
    configure_logging(debug_logs)
    logger.info("Start voronoi_center_seamline")
    _check_parameters(image_field_name, min_point_spacing, min_cut_length, require_all_bands)
    output_mask = _check_gpkg_path(output_mask, "output_mask")
    if debug_vectors_path is not None:
        debug_vectors_path = _check_gpkg_path(debug_vectors_path, "debug_vectors_path")
    paths = resolve_input_paths(input_images)
    if len(paths) < 2:
        raise ParameterError(f"input_images: seamlines need at least two overlapping images, "
                             f"got {len(paths)} ({', '.join(paths)})")
    _check_outputs(output_mask, debug_vectors_path, paths)
    infos = inspect_rasters(paths, same_nodata=False)
    names = [info.name for info in infos]
    if len(set(names)) < len(names):
        logger.warning("Several inputs share a name (%s): their seamline features cannot be "
                       "told apart by the '%s' field", _duplicates(names), image_field_name)

    decimations = [_decimation_for(info, footprint_decimation) for info in infos]
    footprints = _footprints(infos, decimations, require_all_bands, progress)
    pairs = overlapping_pairs(footprints)
    if not pairs:
        raise SpectralMatchError(
            f"input_images: no two image footprints overlap ({', '.join(names)}); seamlines "
            "need images whose valid pixels overlap")
    alone = sorted(set(range(len(infos))) - {i for pair in pairs for i in pair})
    if alone:
        logger.info("Images overlapping no other image keep their whole footprint: %s",
                    ", ".join(names[i] for i in alone))
    spacing = _effective_spacing(float(min_point_spacing), infos, decimations)
    cell_area = min(info.resolution[0] * info.resolution[1] * k * k
                    for info, k in zip(infos, decimations, strict=True))
    logger.debug("%d overlapping pair(s); seed spacing %.6g", len(pairs), spacing)

    result = partition_footprints(footprints, spacing, simplify_tolerance=float(min_cut_length),
                                  hole_area=SMALL_HOLE_CELLS * cell_area,
                                  debug=debug_vectors_path is not None)
    crs = infos[0].crs_wkt
    write_layers(output_mask, [(SEAMLINE_LAYER, result.pieces, {image_field_name: names},
                                 "MultiPolygon")], crs)
    if debug_vectors_path is not None:
        write_layers(debug_vectors_path, _debug_layers(footprints, result, names), crs)
        logger.info("Debug vectors written to %s", debug_vectors_path)
    for name, piece, fp in zip(names, result.pieces, footprints, strict=True):
        logger.debug("%s: region area %.6g of footprint %.6g", name, piece.area, fp.area)
    logger.info("Seamlines written to %s", output_mask)
    return output_mask


def _check_parameters(field: object, spacing: object, cut: object, all_bands: object) -> None:
    if not isinstance(field, str) or not field.strip():
        raise ParameterError(f"image_field_name must be a non-empty string, got {field!r}")
    if field.lower() in _RESERVED_FIELDS:
        raise ParameterError(f"image_field_name={field!r} is reserved by GeoPackage for the "
                             "feature id or geometry; choose another name, e.g. 'image'")
    for name, value, positive in (("min_point_spacing", spacing, True),
                                  ("min_cut_length", cut, False)):
        ok = (isinstance(value, (int, float, np.integer, np.floating))
              and not isinstance(value, bool) and math.isfinite(value)
              and (value > 0 if positive else value >= 0))
        if not ok:
            what = "a positive" if positive else "a non-negative"
            raise ParameterError(f"{name} must be {what} finite number (CRS units), got {value!r}")
    check_bool(all_bands, "require_all_bands")


def _check_gpkg_path(path: object, parameter: str) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise ParameterError(f"{parameter} must be a file path ending in .gpkg, got {path!r}")
    text = os.fspath(path)
    if not text.lower().endswith(".gpkg"):
        raise ParameterError(f"{parameter}={text!r} must be a GeoPackage path ending in .gpkg")
    if os.path.isdir(text):
        raise PathError(f"{parameter}={text!r} is a folder; give a .gpkg file path")
    return text


def _same_file(a: str, b: str) -> bool:
    if os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b)):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_outputs(output_mask: str, debug_path: str | None, inputs: Sequence[str]) -> None:
    outputs = [("output_mask", output_mask)]
    if debug_path is not None:
        outputs.append(("debug_vectors_path", debug_path))
    for parameter, out in outputs:
        for inp in inputs:
            if _same_file(out, inp):
                raise PathError(f"{parameter}: {out!r} is the same file as input {inp!r}; "
                                "choose another output path")
    if debug_path is not None and _same_file(output_mask, debug_path):
        raise PathError(f"debug_vectors_path {debug_path!r} is the same file as output_mask; "
                        "give the debug layers their own file")


def _duplicates(names: Sequence[str]) -> str:
    seen, dup = set(), []
    for n in names:
        if n in seen and n not in dup:
            dup.append(n)
        seen.add(n)
    return ", ".join(dup)


def _footprints(infos: Sequence[RasterInfo], decimations: Sequence[int], require_all_bands: bool,
                callback: ProgressCallback | None) -> list[shapely.MultiPolygon]:
    footprints = []
    with Progress(len(infos), "Extracting footprints", callback=callback) as bar:
        for info, k in zip(infos, decimations, strict=True):
            if k > 1:
                logger.info("Footprint of %s is extracted from %dx%d-pixel cells", info.name, k, k)
            footprint = image_footprint(info, decimation=k, require_all_bands=require_all_bands)
            if footprint.is_empty:
                raise RasterError(
                    f"input_images: '{info.path}' has no valid pixel (nodata {info.nodata}); "
                    "every input needs data to take part in seamlines")
            footprints.append(footprint)
            bar.update()
    return footprints


def _effective_spacing(spacing: float, infos: Sequence[RasterInfo],
                       decimations: Sequence[int]) -> float:
    cell = min(min(info.resolution) * k for info, k in zip(infos, decimations, strict=True))
    if spacing < cell / 2:
        logger.debug("min_point_spacing %.6g is below half a footprint cell; using %.6g",
                     spacing, cell / 2)
        return cell / 2
    if spacing > 50 * cell:
        logger.warning("min_point_spacing %.6g (CRS units) is more than 50 pixels of %.6g; "
                       "seams will follow the overlaps' centres only roughly", spacing, cell)
    return spacing


def _debug_layers(footprints: Sequence[shapely.Geometry], result: Partition,
                  names: Sequence[str]) -> list[tuple]:
    layers = [("footprints", list(footprints), {"image": list(names)}, "MultiPolygon")]
    layers.append(("overlaps", [g for _, g in result.regions],
                   {"images": [",".join(names[i] for i in s) for s, _ in result.regions]},
                   "MultiPolygon"))
    layers.append(("seeds", [g for _, _, g in result.seeds],
                   {"images": [",".join(names[i] for i in s) for s, _, _ in result.seeds],
                    "image": [names[i] for _, i, _ in result.seeds]}, "MultiPoint"))
    lines, first, second = _cutlines(result.pieces)
    layers.append(("cutlines", lines, {"image_a": [names[i] for i in first],
                                       "image_b": [names[j] for j in second]},
                   "MultiLineString"))
    return layers


def _cutlines(pieces: Sequence[shapely.Geometry]) -> tuple[list, list[int], list[int]]:
    """Seam lines shared by neighbouring regions (pairs in input order)."""
    geoms = np.asarray(pieces, dtype=object)
    left, right = STRtree(geoms).query(geoms, predicate="intersects")
    lines, first, second = [], [], []
    for i, j in sorted(zip(left.tolist(), right.tolist(), strict=True)):
        if i >= j:
            continue
        shared = shapely.intersection(shapely.boundary(geoms[i]), shapely.boundary(geoms[j]))
        parts = shapely.get_parts(shared)
        parts = parts[shapely.length(parts) > 0] if len(parts) else parts
        if len(parts):
            lines.append(shapely.line_merge(shapely.multilinestrings(parts)))
            first.append(i)
            second.append(j)
    return lines, first, second
