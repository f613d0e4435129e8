"""Shared machinery of the single-call benchmarks (one spectralmatch function vs. a copy).

A bench script names a function of ``spectralmatch.match`` and its aims and calls :func:`main`.
For a generated 2×2 mosaic (reused while its recipe stamp matches) and, unless ``--skip-wide``,
the same mosaic with tiles twice as wide, :func:`main` measures with ``benchmarks/_measure.py``:

* a ``gdal_translate`` copy of every input with spectralmatch's output creation options
  (one read and one write of every pixel: the I/O floor);
* the function in a fresh interpreter for each requested setting (imports included in
  "wall s"; the call alone in "call s"), and its ratio to the copy measured in the same run;

then prints a table and whether the aims are met, and with ``--json PATH`` also writes the rows.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _measure import Measurement, measure  # noqa: E402

__all__ = ["RECIPE", "SETTINGS", "main"]

#: Recipe of the generated mosaics (the tile width doubles for the wide case).
RECIPE = {"layout": "2x2", "bands": 4, "dtype": "uint16", "overlap": 0.25, "gradient": 150.0,
          "noise": 4.0, "nodata": 0, "seed": 42, "name": "tile"}
#: Named keyword sets passed to the function (tuples reach it as lists: accepted as settings).
SETTINGS = {
    "default": {},
    "windows-thread": {"window_parallel_workers": ("thread", "cpu")},
    "windows-process": {"window_parallel_workers": ("process", "cpu")},
    "images-process": {"image_parallel_workers": ("process", "cpu")},
}

# Child program: argv = function name, inputs..., output, JSON keyword arguments.
_RUN = """
import importlib, json, sys, time
name = sys.argv[1]
function = getattr(importlib.import_module(f"spectralmatch.match.{name}"), name)
start = time.perf_counter()
function(sys.argv[2:-2], sys.argv[-2], **json.loads(sys.argv[-1]))
print(f"call_s={time.perf_counter() - start:.3f}")
"""

# Child program: argv = pairs of source, destination.
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
    params = dict(recipe, tile_size=tuple(recipe["tile_size"]))
    sample = generate_mosaic(str(folder), **params)
    stamp.write_text(json.dumps(recipe))
    return sample.paths


def child_env(cachemax: str | None) -> dict[str, str]:
    """This process's environment, with ``GDAL_CACHEMAX`` set when asked."""
    env = dict(os.environ)
    if cachemax:
        env["GDAL_CACHEMAX"] = cachemax
    return env


def best_of(repeat: int, run: Callable[[], Measurement]) -> Measurement:
    """The fastest of ``repeat`` runs; exits naming the command if any run failed."""
    results = [run() for _ in range(repeat)]
    for r in results:
        if r.returncode != 0:
            raise SystemExit(f"command failed: {' '.join(r.command[:3])}...\n{r.stderr[-2000:]}")
    return min(results, key=lambda r: r.wall_s)


def bench_case(function: str, label: str, paths: list[str], settings: list[str],
               extra: dict, output_template: str | None, repeat: int, scratch: Path,
               env: dict[str, str]) -> list[dict]:
    """Rows for one mosaic: the copy floor, then ``function`` under each setting."""
    copy_dir = scratch / f"{label}-copy"
    copy_dir.mkdir(parents=True, exist_ok=True)
    pairs = [a for p in paths for a in (p, str(copy_dir / Path(p).name))]
    copy = best_of(repeat, lambda: measure([sys.executable, "-c", _COPY, *pairs], env=env))
    shutil.rmtree(copy_dir, ignore_errors=True)  # free the disk before the measured calls
    rows = [{"case": label, "what": "gdal_translate copy", "wall_s": copy.wall_s,
             "call_s": None, "peak_mb": copy.peak_bytes / 2**20, "ratio": 1.0,
             "kind": copy.memory_kind}]
    for name in settings:
        out = scratch / f"{label}-{name}"
        shutil.rmtree(out, ignore_errors=True)
        target = str(out / output_template) if output_template else str(out)
        kwargs = json.dumps(dict(SETTINGS[name], **extra))
        command = [sys.executable, "-c", _RUN, function, *paths, target, kwargs]
        result = best_of(repeat, lambda command=command: measure(command, env=env))
        call = [line for line in result.stdout.splitlines() if line.startswith("call_s=")]
        rows.append({"case": label, "what": f"{function} {name}", "wall_s": result.wall_s,
                     "call_s": float(call[-1].split("=")[1]) if call else None,
                     "peak_mb": result.peak_bytes / 2**20, "ratio": result.wall_s / copy.wall_s,
                     "kind": result.memory_kind})
        shutil.rmtree(out, ignore_errors=True)
    return rows


def print_table(rows: list[dict], heading: str, width: int) -> None:
    """The results table; ``width`` is that of the "what" column."""
    print(f"\n{heading}")
    print(f"{'case':<18} {'what':<{width}} {'wall s':>7} {'call s':>7} {'peak MB':>8} "
          f"{'× copy':>7}")
    for r in rows:
        call = f"{r['call_s']:.2f}" if r["call_s"] is not None else "–"
        print(f"{r['case']:<18} {r['what']:<{width}} {r['wall_s']:7.2f} {call:>7} "
              f"{r['peak_mb']:6.0f} {r['kind']:<3} {r['ratio']:6.2f}×")


def main(function: str, *, aim_ratio: float, issue: str, doc: str | None = None,
         output_template: str | None = None, default_settings: str = "default",
         aim_mb: float = 400.0,
         extra_kwargs: Callable[[argparse.Namespace], dict] | None = None,
         add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
         describe: Callable[[argparse.Namespace], str] | None = None,
         argv: list[str] | None = None) -> int:
    """Parse the command line, benchmark ``function`` against the copy floor and print.

    Args:
        function (str): Name of the function, from module ``spectralmatch.match.<function>``.
        aim_ratio (float): Aimed worst wall time of the call relative to the copy.
        issue (str): Issue that sets the aims (printed next to them).
        doc (str | None): The bench script's docstring; its first paragraph describes the
            command.
        output_template (str | None): Output argument inside each output folder (e.g.
            "$_Local.tif"); None passes the folder itself.
        default_settings (str): Default of ``--settings`` (comma-separated names of SETTINGS).
        aim_mb (float): Aimed worst peak memory, MB.
        extra_kwargs (Callable | None): Keyword arguments from the parsed options, added to
            every call of the function.
        add_arguments (Callable | None): Adds the script's own options to the parser.
        describe (Callable | None): Text for the table heading from the parsed options.
        argv (list[str] | None): Arguments (default: ``sys.argv[1:]``).

    Returns:
        int: The exit status (0).
    """
    description = (doc or f"Benchmark: ``{function}`` against a copy.").split("\n\n")[0]
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--tile-size", type=int, default=4096)
    parser.add_argument("--settings", default=default_settings,
                        help=f"comma-separated, from: {', '.join(SETTINGS)}")
    if add_arguments is not None:
        add_arguments(parser)
    parser.add_argument("--repeat", type=int, default=1, help="keep the fastest of N runs")
    parser.add_argument("--skip-wide", action="store_true", help="only the square tiles")
    parser.add_argument("--data", default=str(HERE / "data" / function))
    parser.add_argument("--gdal-cachemax", default=None,
                        help="GDAL_CACHEMAX for every measured process (e.g. 64 = 64 MB); "
                             "default: spectralmatch's own setting")
    parser.add_argument("--scratch", default=None, help="folder for outputs (default: a temp "
                        "folder next to the data)")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="also write the rows and the run's options to this JSON file")
    args = parser.parse_args(argv)
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown or not settings:
        parser.error(f"unknown settings {unknown or args.settings!r}; use {list(SETTINGS)}")
    if args.repeat < 1:
        parser.error(f"--repeat must be ≥ 1, got {args.repeat}")
    extra = extra_kwargs(args) if extra_kwargs is not None else {}
    size = args.tile_size
    cases = [("square", size, size)] + ([] if args.skip_wide else [("wide", 2 * size, size)])
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    short = "".join(word[0] for word in function.split("_"))  # e.g. "gr", "lba"
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix=f"bench-{short}-", dir=data.parent))
    env = child_env(args.gdal_cachemax)
    rows = []
    try:
        for label, width, height in cases:
            paths = generate(data / f"{label}-{width}x{height}", width, height)
            rows += bench_case(function, f"{label} {width}×{height}", paths, settings, extra,
                               output_template, args.repeat, scratch, env)
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)

    cache = f"GDAL_CACHEMAX={args.gdal_cachemax}" if args.gdal_cachemax else "default GDAL cache"
    parts = ["2×2 mosaics of 4-band uint16 tiles", describe(args) if describe else "",
             f"cpus={os.cpu_count()}", cache]
    width = len(function) + 2 + max(len(name) for name in SETTINGS)
    print_table(rows, "; ".join(p for p in parts if p), width)
    ours = [r for r in rows if r["what"].startswith(f"{function} ")]
    worst_ratio = max(r["ratio"] for r in ours)
    worst_mb = max(r["peak_mb"] for r in ours)
    print(f"\naim ({issue}) ≤ {aim_ratio}× copy: worst {worst_ratio:.2f}× — "
          f"{'met' if worst_ratio <= aim_ratio else 'NOT met'}")
    print(f"aim ({issue}) ≤ {aim_mb:.0f} MB: worst {worst_mb:.0f} MB — "
          f"{'met' if worst_mb <= aim_mb else 'NOT met'}")
    if args.json:
        record = {"function": function, "issue": issue, "aim_ratio": aim_ratio,
                  "aim_mb": aim_mb, "cpus": os.cpu_count(), "recipe": RECIPE,
                  "options": {k: v for k, v in vars(args).items() if k != "json"},
                  "extra_kwargs": extra, "rows": rows}
        Path(args.json).write_text(json.dumps(record, indent=1), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0
