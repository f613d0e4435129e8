#!/usr/bin/env python
"""Benchmark suite: speed, memory and matching quality against the I/O floor and the original.

One run, on one machine, for each requested size:

1. generate (or reuse) a seeded synthetic mosaic with its truth (``benchmarks/data/<size>/``);
2. the floor: a read-only pass over every input, and a ``gdal_translate`` copy of every input
   with the creation options spectralmatch's outputs use;
3. ours: ``global_regression`` then ``local_block_adjustment`` on its outputs, with default
   settings and a few parallel settings (the fastest is reported as "best");
4. the original spectralmatch 1.0.4 in its own virtual environment (``benchmarks/.venv-original``,
   installed on first use), the same two calls at its defaults and at its best setting;
5. every call runs in a fresh subprocess whose process tree is sampled for peak memory
   (:mod:`_measure`); quality is measured on every output set (:mod:`spectralmatch.quality`);
6. a markdown table, a JSON record and a PNG chart go to ``--out`` (``benchmarks/results``).

Run ``python benchmarks/run.py --help`` for the options; see ``benchmarks/README.md``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _measure import Measurement, measure  # noqa: E402

logger = logging.getLogger("spectralmatch.bench")

# --------------------------------------------------------------------------------- settings

#: Data sets: tile layout and size; everything else is COMMON (seeded, with gradients, noise,
#: irregular nodata collars and the truth rasters).
SIZES: dict[str, dict] = {
    "quick": {"layout": "2x2", "tile_size": 256},
    "small": {"layout": "2x2", "tile_size": 1024},
    "medium": {"layout": "2x2", "tile_size": 4096},
    "large": {"layout": "3x3", "tile_size": 4096},
}
COMMON = {"bands": 4, "dtype": "uint16", "overlap": 0.25, "gain_range": [0.8, 1.25],
          "offset_range": [-200.0, 200.0], "gradient": 150.0, "noise": 4.0, "nodata": 0,
          "seed": 42, "write_truth": True, "name": "tile"}
#: Collar width as a fraction of the tile size.
COLLAR_FRACTION = 1 / 32
#: Bump when the data set recipe changes, so cached sets are regenerated.
DATA_VERSION = 1

#: Our settings: label -> keyword arguments (JSON-able; lists become tuples).
OURS_SETTINGS = {
    "default": {},
    "images: process×cpu": {"image_parallel_workers": ["process", "cpu"]},
    "windows: thread×cpu": {"window_parallel_workers": ["thread", "cpu"]},
    "windows: process×cpu": {"window_parallel_workers": ["process", "cpu"]},
}
QUICK_OURS_SETTINGS = ("default", "windows: thread×cpu")
#: The original's settings: its defaults and its best (issue 8: window_size=512 with processes).
ORIGINAL_SETTINGS = {
    "default": {},
    "best: 512 + processes": {"window_size": 512, "window_parallel_workers": ["process", "cpu"]},
}
ORIGINAL_VERSION = "1.0.4"
ORIGINAL_PIP = (["torch==2.14.1", "torchvision==0.29.1"],
                [f"spectralmatch=={ORIGINAL_VERSION}", "matplotlib"])
STEPS = ("global_regression", "local_block_adjustment")
SUFFIX = {"global_regression": "_Global", "local_block_adjustment": "_Local"}

#: Aims of issue 8 (judged on medium and large).
AIM_FLOOR_RATIO = {"global_regression": 2.0, "local_block_adjustment": 2.5}
AIM_SPEEDUP = 5.0
AIM_MEMORY_MB = 400.0
AIM_SIZES = ("medium", "large")

MB = 1024 * 1024

# Run inside our venv in a fresh process: import, call, print the timings as JSON.
_OURS_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
request = json.load(open(sys.argv[1], encoding="utf-8"))
import importlib
step = request["step"]
function = getattr(importlib.import_module("spectralmatch.match." + step), step)
options = request["options"]
for key, value in list(options.items()):
    if isinstance(value, list):
        options[key] = tuple(value)
t1 = time.perf_counter()
function(request["inputs"], request["outputs"], **options)
t2 = time.perf_counter()
print(json.dumps({"step": step, "import_s": t1 - t0, "call_s": t2 - t1}))
"""

# The read-only floor: every block row of every band of every input, nothing else.
_READ_CHILD = r"""
import sys
from osgeo import gdal
gdal.UseExceptions()
for path in sys.argv[1:]:
    ds = gdal.Open(path)
    band = ds.GetRasterBand(1)
    _, block_rows = band.GetBlockSize()
    for row in range(0, ds.RasterYSize, block_rows):
        rows = min(block_rows, ds.RasterYSize - row)
        ds.ReadRaster(0, row, ds.RasterXSize, rows)
"""


# ----------------------------------------------------------------------------------- records


@dataclass
class Run:
    """One measured call (a row of the report)."""

    size: str
    step: str
    implementation: str  # "floor", "ours", "original"
    setting: str
    options: dict = field(default_factory=dict)
    returncode: int = 0
    wall_s: float = 0.0
    call_s: float | None = None
    import_s: float | None = None
    peak_mb: float = 0.0
    peak_rss_mb: float = 0.0
    memory_kind: str = "RSS"
    processes: int = 0
    outputs: list[str] = field(default_factory=list)
    error: str | None = None
    quality: dict | None = None
    ratio_floor: float | None = None
    ratio_original: float | None = None
    best: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.error is None

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data["outputs"] = [os.path.relpath(p, ROOT) for p in self.outputs]
        return data


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine_info() -> dict:
    """Machine, versions and commit of this run."""
    import numpy
    import psutil
    from osgeo import gdal

    import spectralmatch

    cpu_model = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    status = _git("status", "--porcelain")
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model,
        "ram_gb": round(psutil.virtual_memory().total / 1024 ** 3, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "gdal": gdal.__version__,
        "numpy": numpy.__version__,
        "spectralmatch": spectralmatch.__version__,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
    }


# ------------------------------------------------------------------------------------- data


def dataset_parameters(size: str) -> dict:
    """The generate_mosaic keyword arguments of a size."""
    spec = SIZES[size]
    return {**COMMON, **spec, "collar": max(4, int(spec["tile_size"] * COLLAR_FRACTION))}


def ensure_dataset(size: str, data_root: Path) -> dict:
    """Generate the data set of ``size`` unless an identical one is cached; return its record."""
    from spectralmatch.sample_data import generate_mosaic

    folder = data_root / size
    inputs = folder / "inputs"
    marker = folder / "bench_parameters.json"
    parameters = dataset_parameters(size)
    wanted = {"version": DATA_VERSION, "parameters": parameters}
    if marker.exists():
        try:
            cached = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            cached = None
        if cached and cached.get("record", {}).get("request") == wanted and all(
                Path(p).exists() for p in cached["record"]["paths"] + cached["record"]["truth_paths"]):
            logger.info("[%s] reusing data set in %s", size, folder)
            return cached["record"]
    if folder.exists():
        shutil.rmtree(folder)
    start = time.perf_counter()
    logger.info("[%s] generating %s tiles of %d² px into %s ...", size, parameters["layout"],
                parameters["tile_size"], folder)
    kwargs = dict(parameters)
    sample = generate_mosaic(str(inputs), **kwargs)
    # Truth rasters and the sidecar live beside the inputs, not among them (inputs are *.tif).
    truth_folder = folder / "truth"
    truth_folder.mkdir(parents=True, exist_ok=True)
    truth_paths = []
    for path in sample.truth_paths:
        target = truth_folder / Path(path).name
        os.replace(path, target)
        truth_paths.append(str(target))
    sidecar = truth_folder / Path(sample.sidecar_path).name
    os.replace(sample.sidecar_path, sidecar)
    record = {"request": wanted, "paths": [str(p) for p in sample.paths],
              "truth_paths": truth_paths, "sidecar": str(sidecar),
              "generate_s": time.perf_counter() - start,
              "pixels_per_image": parameters["tile_size"] ** 2,
              "bytes_in": sum(os.path.getsize(p) for p in sample.paths)}
    marker.write_text(json.dumps({"record": record}, indent=1), encoding="utf-8")
    logger.info("[%s] generated in %.1f s", size, record["generate_s"])
    return record


# ---------------------------------------------------------------------------------- running


def _child_env(*, original: bool = False) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if original:
        env["PYTHONNOUSERSITE"] = "1"
    return env


def _last_json_line(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                break
    return {}


def _record(run: Run, m: Measurement) -> Run:
    run.returncode = m.returncode
    run.wall_s = m.wall_s
    run.peak_mb = m.peak_bytes / MB
    run.peak_rss_mb = m.peak_rss_bytes / MB
    run.memory_kind = m.memory_kind
    run.processes = m.peak_processes
    info = _last_json_line(m.stdout)
    run.call_s = info.get("call_s")
    run.import_s = info.get("import_s")
    if m.returncode != 0:
        tail = (m.stderr or m.stdout).strip().splitlines()[-15:]
        run.error = "\n".join(tail) or f"exit status {m.returncode}"
    return run


def _measure_best(command: list[str], repeat: int, **kwargs) -> Measurement:
    """Run ``command`` ``repeat`` times; keep the fastest successful measurement."""
    best = None
    for _ in range(max(1, repeat)):
        m = measure(command, **kwargs)
        if m.returncode != 0:
            return m
        if best is None or m.wall_s < best.wall_s:
            best = m
    return best


def output_paths(inputs: list[str], folder: Path, step: str) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    return [str(folder / (Path(p).stem + SUFFIX[step] + ".tif")) for p in inputs]


def run_floor(size: str, inputs: list[str], work: Path, repeat: int) -> list[Run]:
    """The read-only pass and the gdal_translate copy of every input."""
    from spectralmatch.io.raster import RasterInfo
    from spectralmatch.io.writer import geotiff_creation_options

    runs = []
    read = Run(size, "read", "floor", "read every block")
    logger.info("[%s] floor: read-only pass", size)
    runs.append(_record(read, _measure_best([sys.executable, "-c", _READ_CHILD, *inputs], repeat,
                                            env=_child_env())))
    folder = work / "floor"
    folder.mkdir(parents=True, exist_ok=True)
    dtype = RasterInfo.from_path(inputs[0]).dtype
    options = [arg for opt in geotiff_creation_options(dtype) for arg in ("-co", opt)]
    outputs = [str(folder / Path(p).name) for p in inputs]
    script = " && ".join(shlex.join(["gdal_translate", "-q", *options, src, dst])
                         for src, dst in zip(inputs, outputs, strict=True))
    copy = Run(size, "copy", "floor", "gdal_translate, our creation options",
               options={"creation_options": geotiff_creation_options(dtype)}, outputs=outputs)
    logger.info("[%s] floor: gdal_translate copy", size)
    runs.append(_record(copy, _measure_best(["bash", "-c", script], repeat, env=_child_env())))
    for path in outputs:
        Path(path).unlink(missing_ok=True)
    copy.outputs = []
    return runs


def _request_file(work: Path, step: str, inputs: list[str], outputs: list[str],
                  options: dict) -> str:
    handle, path = tempfile.mkstemp(prefix=f"{step}-", suffix=".json", dir=work)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump({"step": step, "inputs": inputs, "outputs": outputs, "options": options}, out)
    return path


def run_call(size: str, implementation: str, setting: str, step: str, options: dict,
             inputs: list[str], out_folder: Path, work: Path, repeat: int, *,
             original_python: str | None = None, timeout: float = 7200) -> Run:
    """One call of ours or the original in a fresh, measured subprocess."""
    outputs = output_paths(inputs, out_folder, step)
    request = _request_file(work, step, inputs, outputs, options)
    if implementation == "ours":
        command = [sys.executable, "-c", _OURS_CHILD, request]
        env, cwd = _child_env(), str(ROOT)
    else:
        command = [original_python, str(HERE / "_original_runner.py"), step, request]
        env, cwd = _child_env(original=True), str(work)
    logger.info("[%s] %s %s (%s) ...", size, implementation, step, setting)
    run = Run(size, step, implementation, setting, options=options, outputs=outputs)
    try:
        m = _measure_best(command, repeat, env=env, cwd=cwd, timeout=timeout)
    except subprocess.TimeoutExpired:
        run.returncode, run.error = -1, f"timed out after {timeout:.0f} s"
        return run
    finally:
        os.unlink(request)
    _record(run, m)
    if run.ok and not all(Path(p).exists() for p in outputs):
        run.error = "finished without writing every output"
    logger.info("[%s]   %s %.2f s, peak %.0f MB %s%s", size, step, run.wall_s, run.peak_mb,
                run.memory_kind, f" FAILED: {run.error}" if run.error else "")
    return run


# --------------------------------------------------------------------------- the original


def ensure_original(venv: Path, log_path: Path) -> str:
    """The python of the original's virtual environment, installing it on first use."""
    python = venv / "bin" / "python"
    check = [str(python), "-c",
             "import importlib.metadata as m; print(m.version('spectralmatch'));"
             "import torch, rasterio"]
    if python.exists():
        result = subprocess.run(check, capture_output=True, text=True, env=_child_env(original=True),
                                cwd=tempfile.gettempdir())
        if result.returncode == 0 and result.stdout.split()[:1] == [ORIGINAL_VERSION]:
            return str(python)
    logger.info("installing spectralmatch %s with torch into %s (several minutes, ~6 GB); "
                "log: %s", ORIGINAL_VERSION, venv, log_path)
    created = subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)],
                             capture_output=True, text=True)
    if created.returncode != 0:
        raise RuntimeError(f"creating {venv} failed: {created.stderr[-500:]}")
    with open(log_path, "w", encoding="utf-8") as log:  # inside the (git-ignored) venv
        for packages in ORIGINAL_PIP:
            command = [str(python), "-m", "pip", "install", *packages]
            log.write("$ " + shlex.join(command) + "\n")
            log.flush()
            if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                              env=_child_env(original=True)).returncode != 0:
                raise RuntimeError(f"installing the original failed at: {shlex.join(command)} "
                                   f"(see {log_path})")
    result = subprocess.run(check, capture_output=True, text=True, env=_child_env(original=True),
                            cwd=tempfile.gettempdir())
    if result.returncode != 0:
        raise RuntimeError(f"the original's environment does not import: {result.stderr[-500:]}")
    return str(python)


# ---------------------------------------------------------------------------------- quality


def measure_quality(paths: list[str], truth_paths: list[str]) -> dict:
    """Overlap RMSE/bias of every pair and the residual against the truth."""
    from spectralmatch.quality import mean_abs_bias, mean_rmse, overlap_metrics, truth_residual

    workers = ("thread", "cpu")
    pairs = overlap_metrics(paths, workers=workers)
    residual = truth_residual(paths, truth_paths, workers=workers)
    return {"overlap_rmse": mean_rmse(pairs), "overlap_abs_bias": mean_abs_bias(pairs),
            "truth_rmse": float(residual.mean()), "truth_rmse_bands": residual.tolist(),
            "pairs": [m.to_dict() for m in pairs]}


# ---------------------------------------------------------------------------------- a size


def bench_size(size: str, args: argparse.Namespace, original_python: str | None) -> dict:
    dataset = ensure_dataset(size, args.data)
    inputs, truths = dataset["paths"], dataset["truth_paths"]
    work = args.data / size / "runs"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    runs: list[Run] = run_floor(size, inputs, work, args.repeat)

    logger.info("[%s] quality of the inputs ...", size)
    before = measure_quality(inputs, truths)

    ours_settings = {k: OURS_SETTINGS[k] for k in (QUICK_OURS_SETTINGS if args.quick
                                                   else OURS_SETTINGS)}
    # Ours: every setting runs global on the inputs; local runs on the default's global outputs
    # (outputs are identical for every setting, so every local call sees the same input).
    ours: dict[str, dict[str, Run]] = {}
    for index, (label, options) in enumerate(ours_settings.items()):
        folder = work / f"ours-{index}"
        g = run_call(size, "ours", label, "global_regression", options, inputs,
                     folder / "global", work, args.repeat)
        ours[label] = {"global_regression": g}
    default_global = ours["default"]["global_regression"]
    for index, (label, options) in enumerate(ours_settings.items()):
        if not default_global.ok:
            break
        folder = work / f"ours-{index}"
        ours[label]["local_block_adjustment"] = run_call(
            size, "ours", label, "local_block_adjustment", options, default_global.outputs,
            folder / "local", work, args.repeat)
    for step_runs in ours.values():
        runs.extend(step_runs.values())

    if original_python:
        for index, (label, options) in enumerate(ORIGINAL_SETTINGS.items()):
            folder = work / f"original-{index}"
            g = run_call(size, "original", label, "global_regression", options, inputs,
                         folder / "global", work, args.repeat, original_python=original_python)
            runs.append(g)
            if g.ok:
                runs.append(run_call(size, "original", label, "local_block_adjustment", options,
                                     g.outputs, folder / "local", work, args.repeat,
                                     original_python=original_python))

    order = {"read": 0, "copy": 1, STEPS[0]: 2, STEPS[1]: 3}
    impl_order = {"floor": 0, "ours": 1, "original": 2}
    runs.sort(key=lambda r: (order[r.step], impl_order[r.implementation]))  # stable: settings
    _mark_best(runs)
    for run in runs:
        if run.ok and run.outputs and (run.setting == "default" or run.best
                                       or run.implementation == "original"):
            logger.info("[%s] quality of %s %s (%s) ...", size, run.implementation, run.step,
                        run.setting)
            run.quality = measure_quality(run.outputs, truths)
    _ratios(runs)
    if not args.keep_outputs:
        shutil.rmtree(work, ignore_errors=True)
    return {"size": size, "dataset": _dataset_summary(size, dataset), "quality_inputs": before,
            "runs": [r.to_dict() for r in runs], "aims": judge_aims(size, runs, before)}


def _dataset_summary(size: str, dataset: dict) -> dict:
    parameters = dataset["request"]["parameters"]
    return {"parameters": parameters, "images": len(dataset["paths"]),
            "pixels_per_image": dataset["pixels_per_image"], "bytes_in": dataset["bytes_in"],
            "folder": os.path.relpath(Path(dataset["paths"][0]).parent.parent, ROOT),
            "generate_s": dataset["generate_s"]}


def _mark_best(runs: list[Run]) -> None:
    """Flag the fastest successful setting of each (implementation, step)."""
    for implementation in ("ours", "original"):
        for step in STEPS:
            candidates = [r for r in runs if r.implementation == implementation
                          and r.step == step and r.ok]
            if candidates:
                min(candidates, key=lambda r: r.wall_s).best = True


def _find(runs: list[Run], implementation: str, step: str, *, setting: str | None = None,
          best: bool = False) -> Run | None:
    for r in runs:
        if (r.implementation == implementation and r.step == step and r.ok
                and (setting is None or r.setting == setting) and (not best or r.best)):
            return r
    return None


def _ratios(runs: list[Run]) -> None:
    copy = _find(runs, "floor", "copy")
    for r in runs:
        if not r.ok or r.implementation == "floor":
            continue
        if copy:
            r.ratio_floor = r.wall_s / copy.wall_s
        if r.implementation == "ours":
            # Our default against the original's default, every other setting against its best.
            other = (_find(runs, "original", r.step, setting="default") if r.setting == "default"
                     else _find(runs, "original", r.step, best=True))
            if other:
                r.ratio_original = r.wall_s / other.wall_s


def judge_aims(size: str, runs: list[Run], before: dict) -> dict:
    """Issue 8's aims for this size: True/False where measurable, None where not."""
    aims: dict[str, dict] = {}
    for step in STEPS:
        best = _find(runs, "ours", step, best=True)
        orig = _find(runs, "original", step, best=True)
        aims[f"{step} ≤ {AIM_FLOOR_RATIO[step]}× floor (best setting)"] = {
            "value": best.ratio_floor if best else None,
            "met": (best.ratio_floor <= AIM_FLOOR_RATIO[step]) if best and best.ratio_floor else None}
        speedup = orig.wall_s / best.wall_s if best and orig else None
        aims[f"{step} ≥ {AIM_SPEEDUP:g}× faster than the original's best"] = {
            "value": speedup, "met": (speedup >= AIM_SPEEDUP) if speedup else None}
    for label, pick in (("default settings", {"setting": "default"}),
                        ("best setting", {"best": True})):
        chosen = [r for r in (_find(runs, "ours", step, **pick) for step in STEPS) if r]
        peak = max((r.peak_mb for r in chosen), default=None)
        aims[f"peak memory ≤ {AIM_MEMORY_MB:g} MB ({label})"] = {
            "value": peak, "met": (peak <= AIM_MEMORY_MB) if peak is not None else None}
    ours_local = _find(runs, "ours", "local_block_adjustment", setting="default")
    originals = [r for r in runs if r.implementation == "original"
                 and r.step == "local_block_adjustment" and r.ok and r.quality]
    if ours_local and ours_local.quality and originals:
        worst_orig_rmse = min(r.quality["overlap_rmse"] for r in originals)
        worst_orig_truth = min(r.quality["truth_rmse"] for r in originals)
        aims["overlap RMSE after global+local ≤ the original's"] = {
            "value": [ours_local.quality["overlap_rmse"], worst_orig_rmse],
            "met": ours_local.quality["overlap_rmse"] <= worst_orig_rmse}
        aims["truth residual after global+local < the original's"] = {
            "value": [ours_local.quality["truth_rmse"], worst_orig_truth],
            "met": ours_local.quality["truth_rmse"] < worst_orig_truth}
    else:
        aims["overlap RMSE after global+local ≤ the original's"] = {"value": None, "met": None}
        aims["truth residual after global+local < the original's"] = {"value": None, "met": None}
    for record in aims.values():
        record["judged"] = size in AIM_SIZES
    return aims


# ----------------------------------------------------------------------------------- report


def _fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"


def markdown_report(result: dict) -> str:
    machine = result["machine"]
    lines = [f"# spectralmatch benchmark — {result['timestamp']}", "",
             f"Machine: {machine['cpu_affinity']} CPUs ({machine['cpu_model']}), "
             f"{machine['ram_gb']} GB RAM; Python {machine['python']}, GDAL {machine['gdal']}, "
             f"numpy {machine['numpy']}; spectralmatch {machine['spectralmatch']} at "
             f"{(machine['git_commit'] or '?')[:10]}{' (modified tree)' if machine['git_dirty'] else ''}; "
             f"original: {result.get('original') or 'not run'}.", "",
             f"Command: `{result['command']}`", ""]
    for entry in result["sizes"]:
        p = entry["dataset"]["parameters"]
        lines += [f"## {entry['size']}: {p['layout']} tiles of {p['tile_size']}² px × "
                  f"{p['bands']} bands {p['dtype']}",
                  "",
                  f"Overlap {p['overlap']:.0%}, gradient ±{p['gradient']:g} DN, noise σ "
                  f"{p['noise']:g} DN, nodata collar ≤ {p['collar']} px, seed {p['seed']}; "
                  f"inputs {entry['dataset']['bytes_in'] / MB:.0f} MB on disk.", "",
                  "| step | implementation | setting | wall s | call s | peak MB | × floor "
                  "| speed-up vs original | overlap RMSE | abs bias | truth RMSE |",
                  "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        q0 = entry["quality_inputs"]
        lines.append(f"| inputs | | | | | | | | {q0['overlap_rmse']:.2f} | "
                     f"{q0['overlap_abs_bias']:.2f} | {q0['truth_rmse']:.2f} |")
        for r in entry["runs"]:
            setting = r["setting"] + (" **(best)**" if r["best"] else "")
            if r["error"]:
                lines.append(f"| {r['step']} | {r['implementation']} | {setting} | failed | | | "
                             f"| | | | |")
                continue
            q = r["quality"] or {}
            speedup = 1.0 / r["ratio_original"] if r["ratio_original"] else None
            lines.append(
                f"| {r['step']} | {r['implementation']} | {setting} | {r['wall_s']:.2f} | "
                f"{_fmt(r['call_s'])} | {r['peak_mb']:.0f} {r['memory_kind']} | "
                f"{_fmt(r['ratio_floor'], '.2f', '×')} | {_fmt(speedup, '.1f', '×')} | "
                f"{_fmt(q.get('overlap_rmse'))} | {_fmt(q.get('overlap_abs_bias'))} | "
                f"{_fmt(q.get('truth_rmse'))} |")
        lines += ["", "Aims" + ("" if entry["size"] in AIM_SIZES else
                                " (informative only: the aims are set for medium and large)") + ":",
                  ""]
        for name, aim in entry["aims"].items():
            mark = {True: "met", False: "NOT met", None: "not measured"}[aim["met"]]
            value = aim["value"]
            if isinstance(value, list):
                shown = f"ours {value[0]:.2f} vs original {value[1]:.2f}"
            else:
                shown = _fmt(value)
            lines.append(f"- {name}: {shown} — {mark}")
        failures = [r for r in entry["runs"] if r["error"]]
        if failures:
            lines += ["", "Failures:", ""]
            for r in failures:
                lines.append(f"- {r['implementation']} {r['step']} ({r['setting']}):")
                lines += ["", "  ```", *("  " + x for x in r["error"].splitlines()), "  ```"]
        lines.append("")
    lines += ["Wall time is the whole process (start-up and imports included); call time is the "
              "function alone. Memory is the peak of the summed PSS (or RSS) of the process "
              "tree, sampled every 20 ms. × floor = wall / gdal_translate copy of the inputs; "
              "speed-up = the original's wall / ours (default vs default, other settings vs "
              "its best). Overlap RMSE and abs bias: count-weighted over pairs and bands, pixels "
              "valid in both images; truth RMSE: residual against the true scene after one "
              "common gain/offset per band (truth units, mean over bands).", ""]
    return "\n".join(lines)


def chart(result: dict, path: Path) -> None:
    """Bar charts of wall time and peak memory per step and size."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = result["sizes"]
    fig, axes = plt.subplots(len(sizes), 2, figsize=(13, 1.2 + 0.42 * max(
        len(e["runs"]) for e in sizes) * len(sizes)), squeeze=False)
    colours = {"floor": "#999999", "ours": "#1f77b4", "original": "#d62728"}
    for row, entry in zip(axes, sizes, strict=True):
        runs = [r for r in entry["runs"] if not r["error"]]
        labels = [f"{r['step'].replace('_regression', '').replace('_block_adjustment', '')} · "
                  f"{r['implementation']} · {r['setting']}" for r in runs]
        ys = range(len(runs))
        for ax, key, title in ((row[0], "wall_s", "wall time (s)"),
                               (row[1], "peak_mb", "peak memory of the process tree (MB)")):
            values = [r[key] for r in runs]
            ax.barh(list(ys), values, color=[colours[r["implementation"]] for r in runs])
            ax.set_yticks(list(ys))
            ax.set_yticklabels(labels if ax is row[0] else [], fontsize=8)
            ax.invert_yaxis()
            ax.set_title(f"{entry['size']}: {title}", fontsize=10)
            for y, v in zip(ys, values, strict=True):
                ax.text(v, y, f" {v:.1f}" if key == "wall_s" else f" {v:.0f}", va="center",
                        fontsize=7)
            if key == "peak_mb":
                ax.axvline(AIM_MEMORY_MB, color="black", linestyle=":", linewidth=1)
    from matplotlib.patches import Patch
    fig.legend(handles=[Patch(color=c, label=k) for k, c in colours.items()], loc="upper right",
               fontsize=8, ncol=3)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark spectralmatch against the I/O floor and the original 1.0.4.")
    parser.add_argument("--sizes", default="small,medium",
                        help="comma-separated sizes among small, medium, large "
                             "(default: small,medium)")
    parser.add_argument("--large", action="store_true", help="also run the large set (3×3 of 4096²)")
    parser.add_argument("--quick", action="store_true",
                        help="CI-sized run: one 2×2 set of 256² tiles, two of our settings, "
                             "no original unless --with-original")
    parser.add_argument("--skip-original", action="store_true",
                        help="do not install or run the original spectralmatch")
    parser.add_argument("--with-original", action="store_true",
                        help="run the original in --quick mode too")
    parser.add_argument("--out", type=Path, default=HERE / "results",
                        help="folder of the report files (default: benchmarks/results)")
    parser.add_argument("--data", type=Path, default=HERE / "data",
                        help="folder of the generated data sets (default: benchmarks/data)")
    parser.add_argument("--original-venv", type=Path, default=HERE / ".venv-original",
                        help="virtual environment of the original (installed on first use)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run every call this many times and keep the fastest (default 1)")
    parser.add_argument("--keep-outputs", action="store_true",
                        help="keep the output rasters under <data>/<size>/runs")
    args = parser.parse_args(argv)
    if args.quick:
        sizes = ["quick"]
    else:
        sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
        if args.large and "large" not in sizes:
            sizes.append("large")
    unknown = [s for s in sizes if s not in SIZES or (s == "quick" and not args.quick)]
    if unknown or not sizes:
        parser.error(f"--sizes: unknown size(s) {unknown}; use small, medium, large")
    args.size_list = sizes
    args.run_original = not args.skip_original and (not args.quick or args.with_original)
    args.data = args.data.resolve()
    args.out = args.out.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    started = time.perf_counter()
    timestamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    original_python, original_note = None, None
    if args.run_original:
        try:
            original_python = ensure_original(args.original_venv,
                                              args.original_venv / "install.log")
            original_note = f"spectralmatch {ORIGINAL_VERSION} ({args.original_venv.name})"
        except RuntimeError as exc:
            logger.error("the original cannot be run: %s", exc)
            original_note = f"unavailable: {exc}"
    result = {"timestamp": timestamp, "command": shlex.join(["python", "benchmarks/run.py",
                                                              *(argv if argv is not None
                                                                else sys.argv[1:])]),
              "machine": machine_info(), "original": original_note,
              "settings": {"ours": OURS_SETTINGS, "original": ORIGINAL_SETTINGS},
              "sizes": []}
    for size in args.size_list:
        size_start = time.perf_counter()
        entry = bench_size(size, args, original_python)
        entry["bench_s"] = time.perf_counter() - size_start
        result["sizes"].append(entry)
    result["total_s"] = time.perf_counter() - started

    base = args.out / timestamp
    report = markdown_report(result)
    Path(f"{base}.md").write_text(report, encoding="utf-8")
    Path(f"{base}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    chart(result, Path(f"{base}.png"))
    print(report)
    print(f"Report: {base}.md, {base}.json, {base}.png (total {result['total_s']:.0f} s)")
    failed = [r for e in result["sizes"] for r in e["runs"] if r["error"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
