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
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _measure import Measurement, measure  # noqa: E402

#: Recipe of the generated mosaics (the tile width doubles for the wide case).
RECIPE = {"layout": "2x2", "bands": 4, "dtype": "uint16", "overlap": 0.25, "gradient": 150.0,
          "noise": 4.0, "nodata": 0, "seed": 42, "name": "tile"}
SETTINGS = {
    "default": {},
    "windows-thread": {"window_parallel_workers": ("thread", "cpu")},
    "windows-process": {"window_parallel_workers": ("process", "cpu")},
    "images-process": {"image_parallel_workers": ("process", "cpu")},
}
AIM_RATIO, AIM_MB = 2.5, 400.0

_RUN = """
import json, sys, time
from spectralmatch.match.local_block_adjustment import local_block_adjustment
start = time.perf_counter()
local_block_adjustment(sys.argv[1:-2], sys.argv[-2], **json.loads(sys.argv[-1]))
print(f"call_s={time.perf_counter() - start:.3f}")
"""

_COPY = """
import sys
from osgeo import gdal
from spectralmatch.io.raster import RasterInfo
from spectralmatch.io.writer import geotiff_creation_options
gdal.UseExceptions()
for src, dst in zip(sys.argv[1::2], sys.argv[2::2]):
    options = geotiff_creation_options(RasterInfo.from_path(src).dtype)
    ds = gdal.Open(src)
    gdal.Translate(dst, ds, creationOptions=options)
    ds = None
"""


def generate(folder: Path, width: int, height: int) -> list[str]:
    """The mosaic in ``folder`` (reused when its recipe stamp matches)."""
    stamp = folder / "recipe.json"
    recipe = dict(RECIPE, tile_size=[width, height], collar=max(1, min(width, height) // 32))
    if stamp.is_file() and json.loads(stamp.read_text()) == recipe:
        return sorted(str(p) for p in folder.glob(f"{RECIPE['name']}_*_*.tif"))
    from spectralmatch.sample_data import generate_mosaic

    shutil.rmtree(folder, ignore_errors=True)
    print(f"generating {folder} ({width}×{height} tiles)...", flush=True)
    params = dict(recipe)
    params["tile_size"] = tuple(params["tile_size"])
    sample = generate_mosaic(str(folder), **params)
    stamp.write_text(json.dumps(recipe))
    return sample.paths


def best_of(repeat: int, run) -> Measurement:
    results = [run() for _ in range(repeat)]
    for r in results:
        if r.returncode != 0:
            raise SystemExit(f"command failed: {' '.join(r.command[:3])}...\n{r.stderr[-2000:]}")
    return min(results, key=lambda r: r.wall_s)


def bench_case(label: str, paths: list[str], settings: list[str], method: str, repeat: int,
               scratch: Path) -> list[dict]:
    rows = []
    copy_dir = scratch / f"{label}-copy"
    copy_dir.mkdir(parents=True, exist_ok=True)
    pairs = [a for p in paths for a in (p, str(copy_dir / Path(p).name))]
    copy = best_of(repeat, lambda: measure([sys.executable, "-c", _COPY, *pairs]))
    rows.append({"case": label, "what": "gdal_translate copy", "wall_s": copy.wall_s,
                 "call_s": None, "peak_mb": copy.peak_bytes / 2**20, "ratio": 1.0,
                 "kind": copy.memory_kind})
    shutil.rmtree(copy_dir, ignore_errors=True)
    for name in settings:
        out = scratch / f"{label}-{name}"
        shutil.rmtree(out, ignore_errors=True)
        kwargs = json.dumps(dict(SETTINGS[name], correction_method=method))
        command = [sys.executable, "-c", _RUN, *paths, str(out / "$_Local.tif"), kwargs]
        result = best_of(repeat, lambda command=command: measure(command))
        call = [line for line in result.stdout.splitlines() if line.startswith("call_s=")]
        rows.append({"case": label, "what": f"local_block_adjustment {name}",
                     "wall_s": result.wall_s,
                     "call_s": float(call[-1].split("=")[1]) if call else None,
                     "peak_mb": result.peak_bytes / 2**20, "ratio": result.wall_s / copy.wall_s,
                     "kind": result.memory_kind})
        shutil.rmtree(out, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tile-size", type=int, default=4096)
    parser.add_argument("--settings", default="default,windows-thread",
                        help=f"comma-separated, from: {', '.join(SETTINGS)}")
    parser.add_argument("--method", default="gamma", choices=["gamma", "linear"])
    parser.add_argument("--repeat", type=int, default=1, help="keep the fastest of N runs")
    parser.add_argument("--skip-wide", action="store_true", help="only the square tiles")
    parser.add_argument("--data", default=str(HERE / "data" / "local_block_adjustment"))
    parser.add_argument("--scratch", default=None, help="folder for outputs (default: a temp "
                        "folder next to the data)")
    args = parser.parse_args(argv)
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings {unknown}; use {list(SETTINGS)}")
    size = args.tile_size
    cases = [("square", size, size)] + ([] if args.skip_wide else [("wide", 2 * size, size)])
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="bench-lba-", dir=data.parent))
    rows = []
    try:
        for label, width, height in cases:
            paths = generate(data / f"{label}-{width}x{height}", width, height)
            rows += bench_case(f"{label} {width}×{height}", paths, settings, args.method,
                               args.repeat, scratch)
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n2×2 mosaics of 4-band uint16 tiles; method {args.method}; cpus={os.cpu_count()}")
    print(f"{'case':<18} {'what':<40} {'wall s':>7} {'call s':>7} {'peak MB':>8} {'× copy':>7}")
    for r in rows:
        call = f"{r['call_s']:.2f}" if r["call_s"] is not None else "–"
        print(f"{r['case']:<18} {r['what']:<40} {r['wall_s']:7.2f} {call:>7} "
              f"{r['peak_mb']:6.0f} {r['kind']:<3} {r['ratio']:6.2f}×")
    ours = [r for r in rows if r["what"].startswith("local_block_adjustment")]
    worst_ratio = max(r["ratio"] for r in ours)
    worst_mb = max(r["peak_mb"] for r in ours)
    print(f"\naim ≤ {AIM_RATIO}× copy: worst {worst_ratio:.2f}× — "
          f"{'met' if worst_ratio <= AIM_RATIO else 'NOT met'}")
    print(f"aim ≤ {AIM_MB:.0f} MB: worst {worst_mb:.0f} MB — "
          f"{'met' if worst_mb <= AIM_MB else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
