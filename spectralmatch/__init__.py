"""spectralmatch: Relative Radiometric Normalization of overlapping rasters.

The public functions keep the names and parameters of the original spectralmatch API. They are
imported lazily (``spectralmatch.global_regression`` loads its module on first use) so that
``import spectralmatch`` and ``spectralmatch --help`` stay fast.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("spectralmatch")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

# Public name -> module defining it, in the order the CLI lists them.
_PUBLIC_FUNCTIONS: dict[str, str] = {
    "global_regression": "spectralmatch.match.global_regression",
    "local_block_adjustment": "spectralmatch.match.local_block_adjustment",
    "align_rasters": "spectralmatch.mosaic.align_rasters",
    "voronoi_center_seamline": "spectralmatch.seamline.voronoi_center_seamline",
    "mask_rasters": "spectralmatch.mask.mask_rasters",
    "merge_rasters": "spectralmatch.mosaic.merge_rasters",
    "merge_vectors": "spectralmatch.vector.merge_vectors",
    "search_paths": "spectralmatch.io.paths",
    "create_paths": "spectralmatch.io.paths",
    "match_paths": "spectralmatch.io.paths",
    "create_sample_data": "spectralmatch.sample_data",
    "demo": "spectralmatch.demo",
}

__all__ = ["__version__", "public_functions", *_PUBLIC_FUNCTIONS]


def __getattr__(name: str):
    module = _PUBLIC_FUNCTIONS.get(name)
    if module is None:
        raise AttributeError(f"module 'spectralmatch' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def public_functions() -> dict[str, Callable]:
    """The public functions by name, in CLI order (imports their modules)."""
    return {name: __getattr__(name) for name in _PUBLIC_FUNCTIONS}
