#!/usr/bin/env python
"""Benchmark: the whole mosaic workflow, step by step, against a ``gdal_translate`` copy.

On a generated 2×2 mosaic of ``--tile-size``² × 4-band uint16 tiles (25 % overlap, brightness
gradient, noise, irregular nodata collar; cached in ``benchmarks/data/mosaic_<size>/``), this
runs the seed API's workflow::

    global_regression → local_block_adjustment → align_rasters(tap=True)
    → voronoi_center_seamline → mask_rasters(vector_mask=("include", seamlines, "image"))
    → merge_rasters

Every step runs in a fresh interpreter (imports included: that is what a command-line user
waits for; the call alone is shown too) whose whole process tree is sampled every 20 ms for
peak memory (summed PSS, so forked workers' shared pages count once; see ``_measure.py``).
The floor, measured in the same run, is a ``gdal_translate`` copy of every input with the
creation options of spectralmatch's outputs: one read and one write of every input pixel.
"× floor" is a step's wall time divided by the copy's.

Usage::

    .venv/bin/python benchmarks/bench_mosaic.py                  # 2×2 of 4096² tiles
    .venv/bin/python benchmarks/bench_mosaic.py --quick          # 2×2 of 512² tiles
    .venv/bin/python benchmarks/bench_mosaic.py --out benchmarks/results --repeat 2
    .venv/bin/python benchmarks/bench_mosaic.py --profile local_block_adjustment,merge_rasters
    .venv/bin/python benchmarks/bench_mosaic.py --gdal-cachemax 64 --image-workers process,cpu

``--profile`` re-runs the named steps under cProfile after the timed runs (so the timings are
not skewed) and prints their top functions by cumulative time.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _measure import Measurement, measure  # noqa: E402

MB = 1024 * 1024
QUICK_TILE_SIZE = 512
#: generate_mosaic keyword arguments (the collar is tile size / 32, at least 4 pixels).
RECIPE = {"layout": "2x2", "bands": 4, "dtype": "uint16", "overlap": 0.25, "gradient": 150.0,
          "noise": 4.0, "nodata": 0, "seed": 42, "name": "tile"}
#: Workflow steps in order: (name, module, output given to the function, keyword arguments).
#: "$prev" is the previous raster step's outputs, "$seamlines" the seamline GeoPackage.
STEPS = (
    ("global_regression", "spectralmatch.match.global_regression", "GlobalMatch", {}),
    ("local_block_adjustment", "spectralmatch.match.local_block_adjustment", "LocalMatch", {}),
    ("align_rasters", "spectralmatch.mosaic.align_rasters", "Aligned", {"tap": True}),
    ("voronoi_center_seamline", "spectralmatch.seamline.voronoi_center_seamline",
     "ImageMasks.gpkg", {"image_field_name": "image"}),
    ("mask_rasters", "spectralmatch.mask.mask_rasters", "Clipped",
     {"vector_mask": ["include", "$seamlines", "image"]}),
    ("merge_rasters", "spectralmatch.mosaic.merge_rasters", "MergedImage.tif", {}),
)
STEP_NAMES = tuple(s[0] for s in STEPS)
AIM_MB = 400.0

# One step in a fresh interpreter: import, call, print timings and outputs as one JSON line.
# Parallel settings are passed only to functions that take them.
_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
request = json.load(open(sys.argv[1], encoding="utf-8"))
import importlib, inspect
function = getattr(importlib.import_module(request["module"]), request["step"])
accepted = inspect.signature(function).parameters
options = {}
for key, value in request["options"].items():
    if key.endswith("_parallel_workers") and key not in accepted:
        continue
    options[key] = tuple(value) if isinstance(value, list) else value
t1 = time.perf_counter()
if request.get("profile"):
    import cProfile, pstats
    profiler = cProfile.Profile()
    result = profiler.runcall(function, request["inputs"], request["output"], **options)
    profiler.dump_stats(request["profile"])
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
else:
    result = function(request["inputs"], request["output"], **options)
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "call_s": t2 - t1, "result": result}))
"""


# ------------------------------------------------------------------------------------- data


def recipe(tile_size: int) -> dict:
    """The generate_mosaic keyword arguments for ``tile_size``² tiles."""
    return dict(RECIPE, tile_size=tile_size, collar=max(4, tile_size // 32))


def _sidecar_matches(sidecar: Path, wanted: dict) -> bool:
    try:
        recorded = json.loads(sidecar.read_text(encoding="utf-8"))["parameters"]
    except (OSError, ValueError, KeyError):
        return False
    for key, value in wanted.items():
        if key == "tile_size":
            value = [value, value]
        if recorded.get(key) != value:
            return False
    return True


def ensure_data(data_root: Path, tile_size: int) -> list[str]:
    """The tiles of the mosaic in ``data_root/mosaic_<size>``, generated unless the sidecar matches."""
    folder = data_root / f"mosaic_{tile_size}"
    wanted = recipe(tile_size)
    rows, cols = (int(n) for n in wanted["layout"].split("x"))
    paths = [str(folder / f"{wanted['name']}_{r}_{c}.tif") for r in range(rows) for c in range(cols)]
    sidecar = folder / f"{wanted['name']}_truth.json"
    if _sidecar_matches(sidecar, wanted) and all(os.path.isfile(p) for p in paths):
        print(f"reusing {folder}", flush=True)
        return paths
    from spectralmatch.sample_data import generate_mosaic

    shutil.rmtree(folder, ignore_errors=True)
    print(f"generating {wanted['layout']} tiles of {tile_size}² px into {folder} ...", flush=True)
    sample = generate_mosaic(str(folder), **wanted)
    return list(sample.paths)


# ---------------------------------------------------------------------------------- running


#: GDAL_CACHEMAX for the children (MB, as text), set by --gdal-cachemax; None keeps the
#: environment's value, or spectralmatch's own cap (spectralmatch.io.raster) when unset.
_CACHEMAX: str | None = None


def _child_env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if _CACHEMAX is not None:
        env["GDAL_CACHEMAX"] = _CACHEMAX
    return env


def _last_json_line(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        if line.strip().startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return {}
    return {}


def _best(command: list[str], repeat: int) -> Measurement:
    """The fastest of ``repeat`` runs (the first failure is returned at once)."""
    best = None
    for _ in range(max(1, repeat)):
        m = measure(command, env=_child_env(), cwd=str(ROOT))
        if m.returncode != 0:
            return m
        if best is None or m.wall_s < best.wall_s:
            best = m
    return best


def _row(step: str, m: Measurement, info: dict | None = None) -> dict:
    info = info or {}
    row = {"step": step, "wall_s": m.wall_s, "call_s": info.get("call_s"),
           "import_s": info.get("import_s"), "peak_mb": m.peak_bytes / MB,
           "peak_rss_mb": m.peak_rss_bytes / MB, "memory_kind": m.memory_kind,
           "processes": m.peak_processes, "returncode": m.returncode, "error": None}
    if m.returncode != 0:
        row["error"] = (m.stderr or m.stdout).strip()
    return row


def run_floor(inputs: list[str], work: Path, repeat: int) -> dict:
    """A gdal_translate copy of every input with spectralmatch's creation options."""
    from spectralmatch.io.raster import RasterInfo
    from spectralmatch.io.writer import geotiff_creation_options

    folder = work / "floor"
    folder.mkdir(parents=True, exist_ok=True)
    options = geotiff_creation_options(RasterInfo.from_path(inputs[0]).dtype)
    args = [a for option in options for a in ("-co", option)]
    script = " && ".join(shlex.join(["gdal_translate", "-q", *args, src, str(folder / Path(src).name)])
                         for src in inputs)
    print("floor: gdal_translate copy ...", flush=True)
    row = _row("floor: gdal_translate copy", _best(["bash", "-c", script], repeat))
    row["creation_options"] = options
    shutil.rmtree(folder, ignore_errors=True)
    return row


def _request(work: Path, step: str, module: str, inputs, output: str, options: dict,
             profile: str | None = None) -> str:
    handle, path = tempfile.mkstemp(prefix=f"{step}-", suffix=".json", dir=work)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump({"step": step, "module": module, "inputs": inputs, "output": output,
                   "options": options, "profile": profile}, out)
    return path


def _step_call(step_index: int, inputs: list[str], work: Path, parallel: dict,
               seamlines: str | None) -> tuple[str, str, list[str], str, dict]:
    step, module, output, kwargs = STEPS[step_index]
    options = {**parallel, **kwargs}
    if "vector_mask" in options:
        options["vector_mask"] = [seamlines if v == "$seamlines" else v
                                  for v in options["vector_mask"]]
    return step, module, inputs, str(work / output), options


def run_workflow(inputs: list[str], work: Path, repeat: int, parallel: dict) -> list[dict]:
    """Every step in order in a measured subprocess; stops at the first failure."""
    rows, current, seamlines = [], list(inputs), None
    for index in range(len(STEPS)):
        step, module, step_inputs, output, options = _step_call(index, current, work, parallel,
                                                                seamlines)
        print(f"{step} ...", flush=True)
        request = _request(work, step, module, step_inputs, output, options)
        try:
            m = _best([sys.executable, "-c", _CHILD, request], repeat)
        finally:
            os.unlink(request)
        info = _last_json_line(m.stdout) if m.returncode == 0 else {}
        row = _row(step, m, info)
        row["options"] = options
        rows.append(row)
        if row["error"]:
            print(f"{step} FAILED (exit {m.returncode}):\n{row['error'][-4000:]}", flush=True)
            break
        print(f"  {m.wall_s:.2f} s, peak {row['peak_mb']:.0f} MB {m.memory_kind}", flush=True)
        result = info.get("result")
        if step == "voronoi_center_seamline":
            seamlines = result or output
        elif step == "merge_rasters":
            row["output"] = result or output
        else:
            current = list(result)
    return rows


def profile_steps(names: list[str], inputs: list[str], work: Path, parallel: dict) -> None:
    """Re-run the named steps under cProfile on the outputs kept from the timed run."""
    current, seamlines = list(inputs), str(work / STEPS[3][2])
    for index, (step, _module, output, _kwargs) in enumerate(STEPS):
        if step in names:
            step, module, step_inputs, out, options = _step_call(index, current, work, parallel,
                                                                 seamlines)
            prof = str(work / f"{step}.prof")
            request = _request(work, step, module, step_inputs, out, options, profile=prof)
            try:
                proc = subprocess.run([sys.executable, "-c", _CHILD, request], env=_child_env(),
                                      cwd=str(ROOT), capture_output=True, text=True)
            finally:
                os.unlink(request)
            print(f"\n===== cProfile: {step} (stats in {prof}) =====")
            print(proc.stderr[-12000:])
        if step not in ("voronoi_center_seamline", "merge_rasters"):
            folder = work / output
            current = sorted(str(p) for p in folder.glob("*.tif"))


# ----------------------------------------------------------------------------------- report


def table(rows: list[dict], floor_s: float) -> str:
    """The markdown table: step, wall time, call time, × floor, peak memory."""
    lines = ["| step | wall s | call s | × floor | peak MB | processes |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        call = f"{r['call_s']:.2f}" if r.get("call_s") is not None else "–"
        status = " **FAILED**" if r.get("error") else ""
        lines.append(f"| {r['step']}{status} | {r['wall_s']:.2f} | {call} | "
                     f"{r['wall_s'] / floor_s:.2f}× | {r['peak_mb']:.0f} {r['memory_kind']} | "
                     f"{r['processes']} |")
    return "\n".join(lines)


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine() -> dict:
    import psutil
    from osgeo import gdal

    return {"cpu_count": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "gdal": gdal.__version__, "git_commit": _git("rev-parse", "HEAD"),
            "git_dirty": bool(_git("status", "--porcelain"))}


def parse_workers(text: str | None, parameter: str) -> list | None:
    """'process,cpu' / 'thread,2' -> ["process", "cpu"] / ["thread", 2]; None stays None."""
    if not text:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or parts[0] not in ("thread", "process"):
        raise SystemExit(f"{parameter}={text!r}: use KIND,N with KIND thread|process and N an "
                         f"int or 'cpu', e.g. process,cpu")
    return [parts[0], int(parts[1]) if parts[1].isdigit() else parts[1]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tile-size", type=int, default=4096, help="tile width and height (4096)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_TILE_SIZE}² tiles (overrides --tile-size)")
    parser.add_argument("--out", default=None,
                        help="folder for mosaic-<size>-<timestamp>.json and .md (default: print only)")
    parser.add_argument("--data", default=str(HERE / "data"), help="data root (benchmarks/data)")
    parser.add_argument("--repeat", type=int, default=1, help="keep the fastest of N runs per step")
    parser.add_argument("--image-workers", default=None,
                        help="image_parallel_workers for every step taking it, e.g. process,cpu")
    parser.add_argument("--window-workers", default=None,
                        help="window_parallel_workers for every step taking it, e.g. thread,cpu")
    parser.add_argument("--gdal-cachemax", type=int, default=None, metavar="MB",
                        help="GDAL_CACHEMAX of every measured process (default: the environment's, "
                             "else spectralmatch's cap of min(GDAL default, 256 MB))")
    parser.add_argument("--profile", default="",
                        help=f"comma-separated steps to re-run under cProfile: {', '.join(STEP_NAMES)}")
    parser.add_argument("--keep-outputs", action="store_true",
                        help="keep the workflow outputs (printed folder)")
    args = parser.parse_args(argv)
    tile_size = QUICK_TILE_SIZE if args.quick else args.tile_size
    profile = [s.strip() for s in args.profile.split(",") if s.strip()]
    unknown = [s for s in profile if s not in STEP_NAMES]
    if unknown:
        parser.error(f"--profile: unknown steps {unknown}; use {list(STEP_NAMES)}")
    parallel = {}
    for key, text in (("image_parallel_workers", args.image_workers),
                      ("window_parallel_workers", args.window_workers)):
        value = parse_workers(text, key)
        if value is not None:
            parallel[key] = value

    global _CACHEMAX
    if args.gdal_cachemax is not None:
        _CACHEMAX = str(args.gdal_cachemax)
    cachemax = _child_env().get("GDAL_CACHEMAX")
    data_root = Path(args.data)
    inputs = ensure_data(data_root, tile_size)
    work = Path(tempfile.mkdtemp(prefix=f"bench-mosaic-{tile_size}-", dir=data_root))
    try:
        floor = run_floor(inputs, work, args.repeat)
        if floor["error"]:
            print(f"the floor copy failed:\n{floor['error']}")
            return 1
        rows = run_workflow(inputs, work, args.repeat, parallel)
        if profile:
            profile_steps(profile, inputs, work, parallel)
    finally:
        if args.keep_outputs:
            print(f"outputs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    ok = [r for r in rows if not r["error"]]
    total = None
    if len(ok) == len(STEPS):
        total = {"step": "whole workflow", "wall_s": sum(r["wall_s"] for r in ok),
                 "call_s": sum(r["call_s"] or 0.0 for r in ok),
                 "peak_mb": max(r["peak_mb"] for r in ok), "memory_kind": ok[0]["memory_kind"],
                 "processes": max(r["processes"] for r in ok)}
    settings = ", ".join(f"{k}={tuple(v)}" for k, v in parallel.items()) or "defaults"
    settings += f"; GDAL_CACHEMAX={cachemax} MB" if cachemax else "; GDAL cache: spectralmatch's cap"
    title = (f"Mosaic workflow on a 2×2 mosaic of {tile_size}² × 4-band uint16 tiles "
             f"({settings}); floor = gdal_translate copy of the 4 inputs; "
             f"cpus={os.cpu_count()}")
    text = table([floor, *rows, *([total] if total else [])], floor["wall_s"])
    worst = max((r["peak_mb"] for r in ok), default=0.0)
    verdict = (f"peak memory aim ≤ {AIM_MB:.0f} MB: worst step {worst:.0f} MB — "
               f"{'met' if worst <= AIM_MB else 'NOT met'}")
    command = shlex.join([os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT))
                          else sys.executable, "benchmarks/bench_mosaic.py",
                          *(argv if argv is not None else sys.argv[1:])])
    report = f"{title}\n\n{text}\n\n{verdict}\n\nCommand: `{command}`\n"
    print("\n" + report)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = out / f"mosaic-{tile_size}-{stamp}"
        record = {"title": title, "command": command, "tile_size": tile_size,
                  "recipe": recipe(tile_size), "settings": parallel, "gdal_cachemax": cachemax,
                  "machine": machine(),
                  "floor": floor, "steps": rows, "total": total, "aim_mb": AIM_MB}
        base.with_suffix(".json").write_text(json.dumps(record, indent=1), encoding="utf-8")
        base.with_suffix(".md").write_text(f"# {title}\n\n{text}\n\n{verdict}\n\n"
                                           f"Command: `{command}`\n", encoding="utf-8")
        print(f"wrote {base}.json and {base}.md")
    return 0 if len(ok) == len(STEPS) else 1


if __name__ == "__main__":
    sys.exit(main())
