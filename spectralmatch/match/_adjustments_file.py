"""Reading and writing global regression model files (the seed's JSON format, ALGORITHMS.md §2.7).

The file is a JSON object keyed by image name (file stem)::

    {"<image>": {"adjustments":   {"band_0": {"scale": f, "offset": f}, ...},
                 "whole_stats":   {"band_0": {"mean": f, "std": f, "size": int}, ...},
                 "overlap_stats": {"<other image>": {"band_0": {"mean": f, "std": f,
                                                                "size": int}, ...}, ...}}}

``A.overlap_stats.B`` holds A's statistics over the pixels A shares with B. Floats are written
with full float64 precision, so loading a saved model reproduces its numbers exactly. The stored
``adjustments`` are informative only: loading always re-solves the model from the statistics.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from ._global_model import BandStats


@dataclass
class LoadedModel:
    """Statistics read from a model file.

    Attributes:
        names: Image names in file order.
        whole: Name -> whole-image statistics.
        overlap: (a, b) -> statistics of ``a`` over its overlap with ``b``.
    """

    names: list[str]
    whole: dict[str, BandStats]
    overlap: dict[tuple[str, str], BandStats]


def _fail(path: str, key: str, problem: str) -> ParameterError:
    return ParameterError(f"load_adjustments: '{path}': {key} {problem}")


def _number(value: object, path: str, key: str, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise _fail(path, key, f"must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise _fail(path, key, f"must be >= {minimum:g}, got {value!r}")
    return float(value)


def _count(value: object, path: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value != int(value) or value < 0:
        raise _fail(path, key, f"must be a non-negative whole number, got {value!r}")
    return int(value)


def _object(value: object, path: str, key: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(path, key, f"must be a JSON object, got {type(value).__name__}")
    return value


def _band_stats(value: object, path: str, key: str, band_count: int) -> BandStats:
    bands = _object(value, path, key)
    expected = [f"band_{b}" for b in range(band_count)]
    if sorted(bands, key=str) != sorted(expected):
        extra = sorted(set(bands) - set(expected))
        missing = [b for b in expected if b not in bands]
        detail = []
        if missing:
            detail.append(f"missing {', '.join(missing)}")
        if extra:
            detail.append(f"unexpected {', '.join(map(repr, extra))}")
        raise _fail(path, key, f"must have the keys band_0 .. band_{band_count - 1} (the inputs "
                               f"have {band_count} bands): {'; '.join(detail)}")
    means, stds, sizes = [], [], []
    for name in expected:
        entry = _object(bands[name], path, f"{key}.{name}")
        for field in ("mean", "std", "size"):
            if field not in entry:
                raise _fail(path, f"{key}.{name}", f"has no '{field}'")
        means.append(_number(entry["mean"], path, f"{key}.{name}.mean"))
        stds.append(_number(entry["std"], path, f"{key}.{name}.std", minimum=0.0))
        sizes.append(_count(entry["size"], path, f"{key}.{name}.size"))
    return BandStats(np.array(means, dtype=np.float64), np.array(stds, dtype=np.float64),
                     np.array(sizes, dtype=np.int64))


def load_model_file(path: str, band_count: int) -> LoadedModel:
    """Read and validate a model file.

    Args:
        path: The JSON file.
        band_count: Band count of the inputs; every statistics entry must have as many bands.

    Returns:
        The :class:`LoadedModel`.

    Raises:
        ParameterError: The file is missing or is not valid JSON, or a key is missing or has a
            wrong value; the message names the key path (``image.overlap_stats.other.band_3``).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ParameterError(f"load_adjustments must be a path to a .json file, got {path!r}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ParameterError(f"load_adjustments: '{path}' is not an existing file")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParameterError(f"load_adjustments: '{path}' is not a readable JSON file: "
                             f"{exc}") from exc
    if not isinstance(data, dict) or not data:
        raise ParameterError(f"load_adjustments: '{path}' must hold a non-empty JSON object "
                             "keyed by image name")
    whole: dict[str, BandStats] = {}
    overlap: dict[tuple[str, str], BandStats] = {}
    for name, entry in data.items():
        entry = _object(entry, path, name)
        for section in ("whole_stats", "overlap_stats"):
            if section not in entry:
                raise _fail(path, name, f"has no '{section}'")
        if "adjustments" in entry:
            _object(entry["adjustments"], path, f"{name}.adjustments")
        whole[name] = _band_stats(entry["whole_stats"], path, f"{name}.whole_stats", band_count)
        others = _object(entry["overlap_stats"], path, f"{name}.overlap_stats")
        for other, stats in others.items():
            if other == name:
                raise _fail(path, f"{name}.overlap_stats.{other}", "pairs an image with itself")
            overlap[(name, other)] = _band_stats(stats, path, f"{name}.overlap_stats.{other}",
                                                 band_count)
    return LoadedModel(list(data), whole, overlap)


def _band_dict(stats: BandStats) -> dict:
    return {f"band_{b}": {"mean": float(stats.mean[b]), "std": float(stats.std[b]),
                          "size": int(stats.size[b])} for b in range(stats.band_count)}


def save_model_file(path: str, names: Sequence[str], scale: np.ndarray, offset: np.ndarray,
                    whole: Mapping[str, BandStats],
                    overlap: Mapping[tuple[str, str], BandStats]) -> str:
    """Write the model atomically (temporary file, then rename); creates the folder.

    Args:
        path: Target JSON path (a bare file name writes to the current folder).
        names: Images to write, in order (their rows of ``scale``/``offset``).
        scale: (images, bands) gains.
        offset: (images, bands) offsets.
        whole: Name -> whole-image statistics.
        overlap: (a, b) -> statistics of ``a`` over its overlap with ``b``.

    Returns:
        The path written.
    """
    path = os.fspath(path)
    data = {}
    for k, name in enumerate(names):
        data[name] = {
            "adjustments": {f"band_{b}": {"scale": float(scale[k, b]),
                                          "offset": float(offset[k, b])}
                            for b in range(scale.shape[1])},
            "whole_stats": _band_dict(whole[name]) if name in whole else {},
            "overlap_stats": {b: _band_dict(stats) for (a, b), stats in overlap.items()
                              if a == name},
        }
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temp = os.path.join(folder, f".{os.path.basename(path)}.partial")
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise
    return path
