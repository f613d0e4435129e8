#!/usr/bin/env python
"""Benchmark: ``local_block_adjustment`` against a ``gdal_translate`` copy of the same inputs.

For a generated 2×2 mosaic of ``--tile-size``² × 4-band uint16 tiles (25 % overlap, gradient,
noise, nodata collar), and for the same mosaic with tiles twice as wide, this prints:

* the wall time of copying every input with ``gdal_translate`` and exactly the creation options
  of spectralmatch's outputs (one read and one write of every pixel: the I/O floor);
* the wall time of ``local_block_adjustment`` on the inputs (a fresh interpreter, imports
  included; the call alone in "call s") for each requested setting, and its ratio to the copy
  measured in the same run. Local adjustment reads every input twice (statistics, then
  correction) and writes every output once;
* the peak memory of the whole process tree (summed PSS, sampled every 20 ms; see
  ``benchmarks/_measure.py``). The wide case shows whether memory grows with the image size.

Aims (issue 6): ≤ 2.5× the copy, ≤ 400 MB, flat in image size.

Usage::

    .venv/bin/python benchmarks/bench_local_block_adjustment.py [--tile-size 4096]
        [--settings default,windows-thread] [--method gamma] [--repeat 1] [--skip-wide]
        [--data DIR] [--scratch DIR] [--gdal-cachemax 64] [--json PATH]

The shared machinery lives in ``benchmarks/_single_call.py``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _single_call import main  # noqa: E402


def _add_method(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", default="gamma", choices=["gamma", "linear"],
                        help="correction_method of every call")


if __name__ == "__main__":
    sys.exit(main("local_block_adjustment", aim_ratio=2.5, issue="issue 6", doc=__doc__,
                  output_template="$_Local.tif", default_settings="default,windows-thread",
                  add_arguments=_add_method,
                  extra_kwargs=lambda args: {"correction_method": args.method},
                  describe=lambda args: f"method {args.method}"))
