"""Seeded synthetic mosaics with known radiometric differences, for tests, examples and benchmarks.

:func:`generate_mosaic` writes a grid of overlapping GeoTIFF tiles that all look at one
deterministic ground "scene" (:func:`scene_values`), each through its own known per-band gain and
offset, optionally with a brightness gradient, Gaussian noise and an irregular nodata collar::

    value[k, b] = round(gain[k, b] * scene(x, y, b) + offset[k, b] + gradient_k(x, y) + noise)

Because overlapping tiles see the same scene at the same ground positions, a correct relative
normalisation must recover the relations between the gains and offsets, which a JSON sidecar
records. Tiles are written window by window: memory does not grow with the tile size.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from osgeo import osr

from .errors import ParameterError
from .io.dtypes import output_range
from .io.raster import SUPPORTED_DTYPES, check_nodata_fits
from .io.windows import Window, plan_windows
from .io.writer import RasterWriter

logger = logging.getLogger("spectralmatch")

__all__ = ["SampleSet", "create_sample_data", "generate_mosaic", "gradient_values", "scene_values"]

#: Top-left corner of tile (0, 0) when ``origin`` is not given (snapped to the pixel size).
DEFAULT_ORIGIN = (500_000.0, 4_200_000.0)
#: Approximate range of :func:`scene_values` (all bands).
SCENE_RANGE = (590.0, 4910.0)
#: Memory budget of the float64 work arrays of one window.
WORK_BUDGET_BYTES = 2 * 1024 * 1024
#: Windows are whole-width strips whose height is a multiple of this many rows.
STRIP_ROWS = 16
#: Version of the sidecar layout.
SIDECAR_VERSION = 1

# Sub-streams of the seeded random numbers: each quantity has its own stream per image, so that
# e.g. the gains do not change when the collar width or the band count changes.
_STREAM_GAINS, _STREAM_OFFSETS, _STREAM_GRADIENT, _STREAM_COLLAR, _STREAM_NOISE = range(1, 6)

# Plane waves of the scene: (weight, wavelength in CRS units, direction in degrees, phase,
# phase change per band). The first group is the smooth large-scale pattern, the second the
# mid-frequency texture; both are sums of weights 1, so each lies in [-1, 1].
_SMOOTH_WAVES = (
    (0.55, 14_000.0, 20.0, 0.3, 0.3),
    (0.45, 9_000.0, 115.0, 1.1, -0.4),
)
_TEXTURE_WAVES = (
    (0.35, 1_300.0, 63.0, 0.7, 0.5),
    (0.30, 610.0, 152.0, 2.3, -0.6),
    (0.20, 290.0, 11.0, 4.1, 0.7),
    (0.15, 130.0, 97.0, 5.3, -0.3),
)


def _wave_sum(x: np.ndarray, y: np.ndarray, waves: Sequence[tuple[float, ...]],
              band: int) -> np.ndarray:
    total = None
    for weight, wavelength, direction, phase, band_phase in waves:
        angle = math.radians(direction)
        kx, ky = math.cos(angle) / wavelength, math.sin(angle) / wavelength
        term = weight * np.sin(2.0 * math.pi * (kx * x + ky * y) + (phase + band_phase * math.sin(1.3 * band)))
        total = term if total is None else total + term
    return total


def scene_values(x: np.ndarray | float, y: np.ndarray | float, band: int) -> np.ndarray:
    """The true ground scene every sample image looks at (before gain and offset).

    A deterministic, seed-independent function of ground coordinates: a smooth large-scale
    pattern (wavelengths 9–14 km) plus mid-frequency texture (130 m – 1.3 km), different but
    strongly correlated between bands. Values lie in about [590, 4910] (designed for metric
    projected coordinates and ``uint16`` at gain 1).

    Args:
        x (np.ndarray | float): Ground x coordinates (CRS units, e.g. metres); broadcast with y.
        y (np.ndarray | float): Ground y coordinates.
        band (int): 0-based band index.

    Returns:
        float64 array of the broadcast shape of ``x`` and ``y``.
    """
    if isinstance(band, bool) or not isinstance(band, (int, np.integer)) or band < 0:
        raise ParameterError(f"band must be a 0-based band index (int >= 0), got {band!r}")
    band = int(band)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mean = 2750.0 + 200.0 * math.sin(1.9 * band + 0.4)
    smooth_amplitude = 1200.0 * (1.0 - 0.08 * math.sin(band + 1.0))
    texture_amplitude = 600.0 * (1.0 + 0.1 * math.cos(2.0 * band))
    smooth = _wave_sum(x, y, _SMOOTH_WAVES, band)
    texture = _wave_sum(x, y, _TEXTURE_WAVES, band)
    return mean + smooth_amplitude * smooth + texture_amplitude * texture


@dataclass(frozen=True)
class SampleSet:
    """What :func:`generate_mosaic` wrote.

    Attributes:
        paths: The GeoTIFF tiles, row by row (``<name>_<row>_<col>.tif``).
        sidecar_path: The JSON sidecar ``<name>_truth.json`` (parameters and per-image truth).
        truth: Image name (file stem) -> its truth record: ``gains`` and ``offsets`` (per band),
            ``gradient`` (amplitude, direction, centre, half_extent), ``noise``, ``bounds``,
            ``geotransform``, ``width``, ``height``, ``row``, ``col``, ``path``, ``truth_path``,
            ``collar_depths`` (per edge position, pixels).
        truth_paths: Per-image float32 rasters of the true scene on the image grid (nodata NaN
            in the collar), in the order of ``paths``; empty unless ``write_truth=True``.
        parameters: The generator parameters as recorded in the sidecar.
    """

    paths: list[str]
    sidecar_path: str
    truth: dict[str, dict]
    truth_paths: list[str] = field(default_factory=list)
    parameters: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# parameter validation


def _parse_layout(layout: str | Sequence[int]) -> tuple[int, int]:
    if isinstance(layout, str):
        match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", layout)
        if match:
            rows, cols = int(match.group(1)), int(match.group(2))
            if rows >= 1 and cols >= 1:
                return rows, cols
    elif (isinstance(layout, Sequence) and len(layout) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in layout)):
        return int(layout[0]), int(layout[1])
    raise ParameterError(f'layout={layout!r} is not accepted; use "RxC" (R rows by C columns, '
                         f'e.g. "2x2" or "3x1") or a (rows, cols) tuple of positive ints')


def _parse_tile_size(tile_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(tile_size, int) and not isinstance(tile_size, bool):
        size = (tile_size, tile_size)
    elif (isinstance(tile_size, Sequence) and len(tile_size) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) for v in tile_size)):
        size = (int(tile_size[0]), int(tile_size[1]))
    else:
        size = (0, 0)
    if min(size) < 2:
        raise ParameterError(f"tile_size={tile_size!r} is not accepted; use an int >= 2 "
                             f"(square tiles) or (width, height) in pixels")
    return size


def _check_range(value: Sequence[float], parameter: str, *, positive: bool = False) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi) or (positive and lo <= 0):
        need = "0 < low <= high" if positive else "low <= high"
        raise ParameterError(f"{parameter}={value!r} is not accepted; use a (low, high) pair of "
                             f"finite numbers with {need}")
    return lo, hi


def _check_number(value: float, parameter: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < minimum:
        raise ParameterError(f"{parameter}={value!r} is not accepted; use a finite number "
                             f">= {minimum:g}")
    return float(value)


def _crs_wkt(crs: str | int) -> str:
    text = f"EPSG:{crs}" if isinstance(crs, int) and not isinstance(crs, bool) else crs
    srs = osr.SpatialReference()
    try:
        if not isinstance(text, str) or srs.SetFromUserInput(text) != 0:
            raise RuntimeError("not recognised")
    except RuntimeError as exc:
        raise ParameterError(f"crs={crs!r} is not accepted ({exc}); use an EPSG code such as "
                             f'"EPSG:32610"') from exc
    return srs.ExportToWkt()


def _check_nodata(nodata: float | None, dtype: str) -> float | None:
    if nodata is None:
        return None
    if isinstance(nodata, bool) or not isinstance(nodata, (int, float, np.integer, np.floating)):
        raise ParameterError(f"nodata={nodata!r} is not accepted; use a number or None")
    check_nodata_fits(float(nodata), dtype, parameter="nodata")
    if np.dtype(dtype).kind == "f" and math.isfinite(nodata):
        if abs(nodata) > np.finfo(dtype).max:
            raise ParameterError(f"nodata: {nodata} cannot be stored in {dtype}")
    return float(nodata)


# ---------------------------------------------------------------------------------------------
# per-image randomness


def _rng(seed: int, image: int, stream: int, *extra: int) -> np.random.Generator:
    return np.random.default_rng([seed, image, stream, *extra])


def _collar_profile(rng: np.random.Generator, length: int, collar: int) -> np.ndarray:
    """Smooth random nodata depth (0..collar pixels) at each of ``length`` edge positions."""
    if collar == 0:
        return np.zeros(length, dtype=np.int64)
    spacing = max(8, 4 * collar)
    controls = rng.uniform(0.0, 1.0, length // spacing + 2)
    t = np.arange(length, dtype=np.float64) / spacing
    i = np.floor(t).astype(np.int64)
    w = 0.5 - 0.5 * np.cos(math.pi * (t - i))  # cosine interpolation: no kinks at the controls
    depth = controls[i] * (1.0 - w) + controls[i + 1] * w
    return np.floor(collar * depth + 0.5).astype(np.int64)


def _collar_mask(window: Window, width: int, height: int, depths: dict[str, np.ndarray]) -> np.ndarray:
    """True where the window's pixels lie in the nodata collar."""
    rows = np.arange(window.row_off, window.row_end)[:, None]
    cols = np.arange(window.col_off, window.col_end)[None, :]
    return ((cols < depths["left"][rows]) | (cols >= width - depths["right"][rows])
            | (rows < depths["top"][cols]) | (rows >= height - depths["bottom"][cols]))


def _round_half_away(values: np.ndarray) -> np.ndarray:
    return np.copysign(np.floor(np.abs(values) + 0.5), values)


def _to_dtype(values: np.ndarray, dtype: str, nodata: float | None) -> np.ndarray:
    """Round (integers), clip to the dtype range, and keep valid pixels off the nodata value."""
    is_integer, lo, hi = output_range(dtype)
    if is_integer:
        values = _round_half_away(values)
    np.clip(values, lo, hi, out=values)
    out = values.astype(dtype)
    if nodata is not None and not math.isnan(nodata):
        hits = out == np.asarray(nodata).astype(dtype)
        if hits.any():
            moved = nodata + 1 if nodata + 1 <= hi else nodata - 1
            out[hits] = np.asarray(moved).astype(dtype)
    return out


# ---------------------------------------------------------------------------------------------
# the generator


def generate_mosaic(output_folder: str, *, layout: str = "2x2", tile_size: int | Sequence[int] = 512,
                    bands: int = 4, dtype: str = "uint16", overlap: float = 0.25,
                    gain_range: Sequence[float] = (0.8, 1.25),
                    offset_range: Sequence[float] = (-200, 200), gradient: float = 0.0,
                    noise: float = 0.0, nodata: float | None = 0, collar: int = 0, seed: int = 0,
                    pixel_size: float = 10.0, crs: str = "EPSG:32610", write_truth: bool = False,
                    name: str = "tile", offset_grid: bool = False,
                    origin: Sequence[float] | None = None) -> SampleSet:
    """Write a seeded grid of overlapping GeoTIFF tiles with known gains, offsets and defects.

    Tile ``(r, c)`` (``r`` counted from the top, ``c`` from the left) is written as
    ``<name>_<r>_<c>.tif``. Neighbouring tiles overlap by ``round(overlap × tile size)`` pixels,
    so tile origins step by ``tile size − overlap pixels``; all tiles share one pixel grid (unless
    ``offset_grid``). Pixel ``(row, col)`` of image ``k``, band ``b`` holds
    ``round(gain[k, b] * scene_values(x, y, b) + offset[k, b] + gradient_k(x, y) + noise)`` at its
    centre ``(x, y)``, rounded half away from zero (float dtypes are not rounded), clipped to the
    dtype range and moved by 1 if it would equal ``nodata``. The same seed gives identical
    pixels; everything is recorded in ``<name>_truth.json``.

    Args:
        output_folder (str): Folder to write into (created if missing; files are replaced).
        layout (str): "RxC" = R rows by C columns of tiles, e.g. "2x2", "3x1" (three tiles
            stacked north to south) or "1x3" (three side by side).
        tile_size (int | tuple[int, int]): Tile size in pixels, an int or (width, height).
        bands (int): Number of bands (>= 1).
        dtype (str): Pixel type, e.g. "uint16", "int16", "float32". The scene lies in about
            [590, 4910]: for 8-bit types pass a small gain_range (e.g. (0.04, 0.05)).
        overlap (float): Overlap of neighbouring tiles as a fraction of the tile size, in [0, 1).
        gain_range (tuple[float, float]): Range of the uniform random per-image, per-band gains.
        offset_range (tuple[float, float]): Range of the uniform random per-image, per-band offsets (DN).
        gradient (float): Amplitude (DN) of a per-image linear brightness ramp in a seeded random
            direction: zero at the tile centre, ±gradient at the farthest tile corners, zero mean
            over the tile; the same for every band.
        noise (float): Standard deviation (DN) of seeded Gaussian noise added to every pixel.
        nodata (float | None): Nodata value set on every band (None: none, then collar must be 0).
        collar (int): Width in pixels of an irregular nodata border: at each edge position a
            seeded smooth random depth from 0 to collar pixels is nodata in all bands.
        seed (int): Seed (>= 0) of all random choices.
        pixel_size (float): Pixel size in CRS units (square pixels, north-up).
        crs (str): Coordinate reference system, e.g. "EPSG:32610".
        write_truth (bool): Also write ``<name>_<r>_<c>_truth.tif``: float32 rasters of the scene
            (before gain and offset) on each image's grid, NaN in the collar.
        name (str): File name prefix.
        offset_grid (bool): Shift every other tile (r + c odd) by half a pixel east and south so
            that neighbouring tiles have misaligned pixel grids.
        origin (tuple[float, float] | None): Top-left corner (x, y) of tile (0, 0); default
            (500000, 4200000) snapped to a multiple of pixel_size.

    Returns:
        SampleSet with the tile paths, the sidecar path, the per-image truth and the truth paths.
    """
    rows, cols = _parse_layout(layout)
    tile_w, tile_h = _parse_tile_size(tile_size)
    if isinstance(bands, bool) or not isinstance(bands, int) or bands < 1:
        raise ParameterError(f"bands={bands!r} is not accepted; use an int >= 1")
    if not isinstance(dtype, str) or dtype not in SUPPORTED_DTYPES:
        raise ParameterError(f"dtype={dtype!r} is not accepted; use one of "
                             f"{', '.join(SUPPORTED_DTYPES)}")
    overlap = _check_number(overlap, "overlap")
    if overlap >= 1:
        raise ParameterError(f"overlap={overlap!r} is not accepted; use a fraction in [0, 1)")
    gain_lo, gain_hi = _check_range(gain_range, "gain_range", positive=True)
    offset_lo, offset_hi = _check_range(offset_range, "offset_range")
    gradient = _check_number(gradient, "gradient")
    noise = _check_number(noise, "noise")
    nodata = _check_nodata(nodata, dtype)
    if isinstance(collar, bool) or not isinstance(collar, int) or collar < 0:
        raise ParameterError(f"collar={collar!r} is not accepted; use an int >= 0 (pixels)")
    if collar and nodata is None:
        raise ParameterError(f"collar={collar} needs a nodata value; nodata=None allows only "
                             f"collar=0")
    if 2 * collar >= min(tile_w, tile_h):
        raise ParameterError(f"collar={collar} is too wide for {tile_w}×{tile_h} tiles; use "
                             f"less than half the smaller tile side")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed={seed!r} is not accepted; use an int >= 0")
    seed = int(seed)
    pixel_size = _check_number(pixel_size, "pixel_size")
    if pixel_size <= 0:
        raise ParameterError(f"pixel_size={pixel_size!r} is not accepted; use a number > 0")
    crs_wkt = _crs_wkt(crs)
    if not isinstance(name, str) or not name or os.sep in name or "/" in name:
        raise ParameterError(f"name={name!r} is not accepted; use a non-empty file name prefix")
    if not isinstance(write_truth, bool) or not isinstance(offset_grid, bool):
        raise ParameterError("write_truth and offset_grid must be True or False")
    origin = _check_origin(origin, pixel_size)
    _warn_if_clipped(dtype, gain_lo, gain_hi, offset_lo, offset_hi, gradient, noise)

    overlap_w = math.floor(overlap * tile_w + 0.5)
    overlap_h = math.floor(overlap * tile_h + 0.5)
    step_w, step_h = tile_w - overlap_w, tile_h - overlap_h
    if step_w < 1 or step_h < 1:
        raise ParameterError(f"overlap={overlap} leaves no step between {tile_w}×{tile_h} tiles")

    output_folder = os.fspath(output_folder)
    os.makedirs(output_folder, exist_ok=True)
    parameters = {
        "layout": f"{rows}x{cols}", "rows": rows, "cols": cols, "tile_size": [tile_w, tile_h],
        "bands": bands, "dtype": dtype, "overlap": overlap, "overlap_pixels": [overlap_w, overlap_h],
        "step_pixels": [step_w, step_h], "gain_range": [gain_lo, gain_hi],
        "offset_range": [offset_lo, offset_hi], "gradient": gradient, "noise": noise,
        "nodata": _json_number(nodata), "collar": collar, "seed": seed, "pixel_size": pixel_size,
        "crs": crs if isinstance(crs, str) else f"EPSG:{crs}", "write_truth": write_truth,
        "name": name, "offset_grid": offset_grid, "origin": list(origin),
    }

    paths, truth_paths, truth = [], [], {}
    for r in range(rows):
        for c in range(cols):
            k = r * cols + c
            shift = 0.5 * pixel_size if offset_grid and (r + c) % 2 else 0.0
            x0 = origin[0] + c * step_w * pixel_size + shift
            y0 = origin[1] - r * step_h * pixel_size - shift
            image = _image_truth(k, r, c, x0, y0, tile_w, tile_h, pixel_size, bands, seed,
                                 gain_lo, gain_hi, offset_lo, offset_hi, gradient, collar)
            image_name = f"{name}_{r}_{c}"
            image["path"] = os.path.join(output_folder, image_name + ".tif")
            image["truth_path"] = (os.path.join(output_folder, image_name + "_truth.tif")
                                   if write_truth else None)
            image["noise"] = {"std": noise, "seed": [seed, k, _STREAM_NOISE],
                              "rule": "numpy default_rng([seed, image, 5, row]).standard_normal"
                                      "((bands, width)) for each row"}
            _write_image(image, bands=bands, dtype=dtype, nodata=nodata, noise=noise, seed=seed,
                         crs_wkt=crs_wkt)
            paths.append(image["path"])
            if write_truth:
                truth_paths.append(image["truth_path"])
            truth[image_name] = image
            logger.debug("sample image %s written (gains %s)", image["path"], image["gains"])

    sidecar_path = os.path.join(output_folder, f"{name}_truth.json")
    sidecar = {
        "generator": "spectralmatch.sample_data.generate_mosaic",
        "version": SIDECAR_VERSION,
        "parameters": parameters,
        "model": ("value = round(gain[b] * scene_values(x, y, b) + offset[b] + gradient(x, y) "
                  "+ noise) at pixel centres, rounded half away from zero (integer dtypes), "
                  "clipped to the dtype range, moved by 1 when equal to nodata; collar pixels "
                  "are nodata in all bands"),
        "gradient_model": ("gradient(x, y) = amplitude * ((x - center[0]) * cos(direction) + "
                           "(y - center[1]) * sin(direction)) / half_extent, direction in radians "
                           "counter-clockwise from east"),
        "collar_model": ("pixel (row, col) is nodata when col < left[row] or "
                         "col >= width - right[row] or row < top[col] or "
                         "row >= height - bottom[col]"),
        "scene": "spectralmatch.sample_data.scene_values(x, y, band) (0-based band)",
        "truth_nodata": "nan",
        "images": truth,
    }
    temp = sidecar_path + ".partial"
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(sidecar, handle, indent=1)
    os.replace(temp, sidecar_path)
    return SampleSet(paths=paths, sidecar_path=sidecar_path, truth=truth,
                     truth_paths=truth_paths, parameters=parameters)


def _json_number(value: float | None) -> float | str | None:
    return "nan" if value is not None and math.isnan(value) else value


def _check_origin(origin: Sequence[float] | None, pixel_size: float) -> tuple[float, float]:
    if origin is None:
        return tuple(round(v / pixel_size) * pixel_size for v in DEFAULT_ORIGIN)
    try:
        x, y = (float(v) for v in origin)
    except (TypeError, ValueError):
        x = y = math.nan
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ParameterError(f"origin={origin!r} is not accepted; use (x, y) of the top-left "
                             f"corner of tile (0, 0) in CRS units, or None")
    return x, y


def _warn_if_clipped(dtype: str, gain_lo: float, gain_hi: float, offset_lo: float,
                     offset_hi: float, gradient: float, noise: float) -> None:
    _, lo, hi = output_range(dtype)
    spread = gradient + 3.0 * noise
    top = gain_hi * SCENE_RANGE[1] + offset_hi + spread
    bottom = gain_lo * SCENE_RANGE[0] + offset_lo - spread
    if top > hi or bottom < lo:
        logger.warning("sample values (about %.0f to %.0f) exceed the %s range [%g, %g] and will "
                       "be clipped; choose another gain_range/offset_range", bottom, top, dtype,
                       lo, hi)


def _image_truth(k: int, r: int, c: int, x0: float, y0: float, width: int, height: int,
                 pixel_size: float, bands: int, seed: int, gain_lo: float, gain_hi: float,
                 offset_lo: float, offset_hi: float, gradient: float, collar: int) -> dict:
    """The seeded parameters and geometry of image ``k`` (JSON-ready)."""
    gains = _rng(seed, k, _STREAM_GAINS).uniform(gain_lo, gain_hi, bands)
    offsets = _rng(seed, k, _STREAM_OFFSETS).uniform(offset_lo, offset_hi, bands)
    direction = float(_rng(seed, k, _STREAM_GRADIENT).uniform(0.0, 2.0 * math.pi))
    half_w, half_h = width * pixel_size / 2.0, height * pixel_size / 2.0
    collar_rng = _rng(seed, k, _STREAM_COLLAR)
    depths = {edge: _collar_profile(collar_rng, length, collar).tolist()
              for edge, length in (("top", width), ("bottom", width),
                                   ("left", height), ("right", height))}
    return {
        "index": k, "row": r, "col": c, "width": width, "height": height,
        "geotransform": [x0, pixel_size, 0.0, y0, 0.0, -pixel_size],
        "bounds": [x0, y0 - height * pixel_size, x0 + width * pixel_size, y0],
        "gains": gains.tolist(), "offsets": offsets.tolist(),
        "gradient": {
            "amplitude": gradient, "direction": direction,
            "direction_degrees": math.degrees(direction),
            "center": [x0 + half_w, y0 - half_h],
            "half_extent": half_w * abs(math.cos(direction)) + half_h * abs(math.sin(direction)),
        },
        "collar_depths": depths,
    }


def gradient_values(x: np.ndarray, y: np.ndarray, gradient: dict) -> np.ndarray:
    """The brightness ramp of one image at ground coordinates, from its sidecar description.

    Args:
        x (np.ndarray): Ground x coordinates (broadcast with y).
        y (np.ndarray): Ground y coordinates.
        gradient (dict): The image's ``gradient`` truth record (amplitude, direction, center,
            half_extent).

    Returns:
        float64 array: amplitude × distance along the direction / half_extent.
    """
    cx, cy = gradient["center"]
    direction = gradient["direction"]
    along = ((np.asarray(x, dtype=np.float64) - cx) * math.cos(direction)
             + (np.asarray(y, dtype=np.float64) - cy) * math.sin(direction))
    return gradient["amplitude"] * along / gradient["half_extent"]


def _write_image(image: dict, *, bands: int, dtype: str, nodata: float | None, noise: float,
                 seed: int, crs_wkt: str) -> None:
    """Write one tile (and its truth raster) strip by strip."""
    width, height = image["width"], image["height"]
    gt = image["geotransform"]
    depths = {edge: np.asarray(v, dtype=np.int64) for edge, v in image["collar_depths"].items()}
    has_collar = any(d.any() for d in depths.values())
    gains, offsets = image["gains"], image["offsets"]
    metadata = {"sample_generator": "spectralmatch.sample_data.generate_mosaic",
                "sample_gains": gains, "sample_offsets": offsets}
    # Whole-width strips: the per-row noise streams make the pixels independent of the plan.
    windows = plan_windows(width, height, None, block_size=(width, STRIP_ROWS),
                           bytes_per_pixel=8 * (bands + 6), budget_bytes=WORK_BUDGET_BYTES)
    cols = np.arange(width, dtype=np.float64)
    x = gt[0] + (cols + 0.5) * gt[1]

    truth_writer = None
    writer = RasterWriter(image["path"], width=width, height=height, band_count=bands,
                          dtype=dtype, geotransform=gt, crs_wkt=crs_wkt, nodata=nodata,
                          metadata=metadata)
    try:
        if image["truth_path"]:
            truth_writer = RasterWriter(image["truth_path"], width=width, height=height,
                                        band_count=bands, dtype="float32", geotransform=gt,
                                        crs_wkt=crs_wkt,
                                        nodata=math.nan if nodata is not None else None,
                                        metadata={"sample_generator": metadata["sample_generator"],
                                                  "sample_content": "scene before gain/offset"})
        for window in windows:
            rows = np.arange(window.row_off, window.row_end, dtype=np.float64)
            y = (gt[3] + (rows + 0.5) * gt[5])[:, None]
            ramp = gradient_values(x[None, :], y, image["gradient"]) if image["gradient"]["amplitude"] else None
            noise_values = _window_noise(seed, image["index"], window, bands) if noise else None
            mask = _collar_mask(window, width, height, depths) if has_collar else None
            out = np.empty((bands, window.height, window.width), dtype=dtype)
            truth_out = (np.empty((bands, window.height, window.width), dtype=np.float32)
                         if truth_writer else None)
            for b in range(bands):
                scene = scene_values(x[None, :], y, b)
                if truth_out is not None:
                    truth_out[b] = scene
                    if mask is not None:
                        truth_out[b][mask] = np.nan
                values = gains[b] * scene + offsets[b]
                if ramp is not None:
                    values += ramp
                if noise_values is not None:
                    values += noise * noise_values[b]
                out[b] = _to_dtype(values, dtype, nodata)
                if mask is not None:
                    out[b][mask] = nodata
            writer.write(window, out)
            if truth_writer:
                truth_writer.write(window, truth_out)
        writer.commit()
        if truth_writer:
            truth_writer.commit()
    except BaseException:
        writer.abort()
        if truth_writer:
            truth_writer.abort()
        raise


def _window_noise(seed: int, image: int, window: Window, bands: int) -> np.ndarray:
    """Standard normal noise (bands, rows, cols) for a whole-width window, seeded per row."""
    noise = np.empty((bands, window.height, window.width), dtype=np.float64)
    for i, row in enumerate(range(window.row_off, window.row_end)):
        noise[:, i, :] = _rng(seed, image, _STREAM_NOISE, row).standard_normal((bands, window.width))
    return noise


def create_sample_data(output_folder: str, layout: str = "2x2", tile_size: int = 512,
                       bands: int = 4, dtype: str = "uint16", seed: int = 0, gradient: float = 0.0,
                       noise: float = 0.0, collar: int = 0) -> list[str]:
    """Write a synthetic set of overlapping GeoTIFF tiles with known radiometric differences.

    Each tile sees the same ground scene through its own seeded per-band gain (0.8–1.25) and
    offset (−200–200 DN); the truth is recorded in ``tile_truth.json`` in the output folder.

    Args:
        output_folder (str): Folder to write the tiles into (created if missing).
        layout (str): "RxC" grid of tiles: R rows by C columns, e.g. "2x2" or "3x1".
        tile_size (int): Width and height of each tile in pixels (tiles overlap by 25 %).
        bands (int): Number of bands.
        dtype (str): Pixel type, e.g. "uint16", "int16" or "float32".
        seed (int): Random seed; the same seed gives identical images.
        gradient (float): Amplitude (DN) of a random linear brightness ramp across each tile.
        noise (float): Standard deviation (DN) of Gaussian noise added to every pixel.
        collar (int): Width in pixels of an irregular nodata border (nodata 0); 0 for none.

    Returns:
        The paths of the written tiles.
    """
    sample = generate_mosaic(output_folder, layout=layout, tile_size=tile_size, bands=bands,
                             dtype=dtype, seed=seed, gradient=gradient, noise=noise, collar=collar)
    return sample.paths
