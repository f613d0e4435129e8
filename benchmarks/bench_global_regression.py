#!/usr/bin/env python
"""Benchmark: ``global_regression`` against a ``gdal_translate`` copy of the same inputs.

For a generated 2×2 mosaic of ``--tile-size``² × 4-band uint16 tiles (25 % overlap, gradient,
noise, nodata collar), and for the same mosaic with tiles twice as wide, this prints:

* the wall time of copying every input with ``gdal_translate`` and exactly the creation options
  of spectralmatch's outputs (one read and one write of every pixel: the I/O floor);
* the wall time of ``global_regression`` on the inputs (a fresh interpreter, imports included;
  the call alone in "call s") for each requested setting, and its ratio to the copy measured in
  the same run;
* the peak memory of the whole process tree (summed PSS, sampled every 20 ms; see
  ``benchmarks/_measure.py``). The wide case shows whether memory grows with the image size.

Aims (issue 5): ≤ 2× the copy, ≤ 400 MB.

Usage::

    .venv/bin/python benchmarks/bench_global_regression.py [--tile-size 4096]
        [--settings default,windows-thread] [--repeat 1] [--skip-wide] [--data DIR]
        [--scratch DIR] [--gdal-cachemax 64] [--json PATH]

The shared machinery lives in ``benchmarks/_single_call.py``.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _single_call import main  # noqa: E402

if __name__ == "__main__":
    # Outputs go to the folder itself (global_regression's default "$_Global.tif" names).
    sys.exit(main("global_regression", aim_ratio=2.0, issue="issue 5", doc=__doc__,
                  output_template=None, default_settings="default"))
