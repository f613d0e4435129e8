"""Run one call of the ORIGINAL spectralmatch (1.0.4) inside its own virtual environment.

This script is executed by ``benchmarks/run.py`` with ``benchmarks/.venv-original/bin/python``
in a subprocess; it is never imported by spectralmatch or by the suite. It must not see this
repository's package: Python puts the script's folder (``benchmarks/``) first on ``sys.path``,
not the repository root, and the suite clears ``PYTHONPATH``.

Usage::

    python _original_runner.py global_regression request.json

``request.json`` holds ``{"inputs": [...], "outputs": [...], "options": {...}}``; options are
keyword arguments of the call (JSON lists become tuples, as the original expects tuples).
The last line printed is a JSON object with the import and call times.
"""
from __future__ import annotations

import json
import sys
import time

_TUPLE_OPTIONS = ("image_parallel_workers", "window_parallel_workers", "window_size",
                  "vector_mask", "specify_model_images", "number_of_blocks", "save_block_maps",
                  "load_block_maps", "override_bounds_canvas_coords")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("global_regression", "local_block_adjustment"):
        print("usage: _original_runner.py global_regression|local_block_adjustment request.json",
              file=sys.stderr)
        return 2
    step, request_path = argv
    with open(request_path, encoding="utf-8") as handle:
        request = json.load(handle)
    options = dict(request.get("options", {}))
    for key in _TUPLE_OPTIONS:
        if isinstance(options.get(key), list):
            options[key] = tuple(options[key])

    start = time.perf_counter()
    import spectralmatch  # the original package of this virtual environment
    imported = time.perf_counter()
    function = getattr(spectralmatch, step)
    function(input_images=list(request["inputs"]), output_images=list(request["outputs"]),
             **options)
    done = time.perf_counter()
    version = getattr(spectralmatch, "__version__", None)
    if version is None:
        from importlib.metadata import version as _version
        version = _version("spectralmatch")
    print(json.dumps({"step": step, "import_s": imported - start, "call_s": done - imported,
                      "version": version, "module": spectralmatch.__file__}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
