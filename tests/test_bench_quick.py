"""The benchmark suite's --quick mode produces a well-formed report (no timing assertions)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("global_regression", "local_block_adjustment")

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(f"spectralmatch.match.{step}") is None for step in STEPS),
    reason="the benchmark needs spectralmatch.match.global_regression and "
           "spectralmatch.match.local_block_adjustment",
)


def test_quick_benchmark_report(tmp_path):
    pytest.importorskip("psutil")
    out, data = tmp_path / "results", tmp_path / "data"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick",
                           "--skip-original", "--out", str(out), "--data", str(data)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    reports = {p.suffix: p for p in out.iterdir()}
    assert set(reports) == {".json", ".md", ".png"}
    assert reports[".png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert reports[".png"].stat().st_size > 5000

    result = json.loads(reports[".json"].read_text())
    machine = result["machine"]
    assert machine["cpu_count"] >= 1 and machine["ram_gb"] > 0
    assert machine["gdal"] and machine["numpy"] and machine["python"]
    [entry] = result["sizes"]
    assert entry["size"] == "quick"
    assert entry["dataset"]["images"] == 4
    runs = entry["runs"]
    floor = {r["step"]: r for r in runs if r["implementation"] == "floor"}
    assert set(floor) == {"read", "copy"}
    ours = [r for r in runs if r["implementation"] == "ours"]
    assert {r["step"] for r in ours} == set(STEPS)
    assert not [r for r in runs if r["implementation"] == "original"]
    for r in runs:
        assert r["error"] is None and r["returncode"] == 0
        assert r["wall_s"] > 0 and r["peak_mb"] > 0 and r["processes"] >= 1
    for r in ours:
        assert r["call_s"] > 0
        assert r["ratio_floor"] == pytest.approx(r["wall_s"] / floor["copy"]["wall_s"])
        assert r["ratio_original"] is None  # the original was skipped
    for step in STEPS:
        assert sum(r["best"] for r in ours if r["step"] == step) == 1
        default = next(r for r in ours if r["step"] == step and r["setting"] == "default")
        q = default["quality"]
        assert len(q["truth_rmse_bands"]) == 4 and len(q["pairs"]) == 6
        assert q["overlap_rmse"] >= 0 and q["truth_rmse"] >= 0
    # Matching must bring the images closer together and closer to the truth.
    before = entry["quality_inputs"]
    final = next(r for r in ours if r["step"] == STEPS[1] and r["setting"] == "default")
    assert final["quality"]["overlap_rmse"] < before["overlap_rmse"]
    assert final["quality"]["truth_rmse"] < before["truth_rmse"]
    assert set(entry["aims"]) and all(a["judged"] is False for a in entry["aims"].values())

    table = reports[".md"].read_text()
    assert "| step | implementation | setting | wall s |" in table
    assert "global_regression" in table and "local_block_adjustment" in table
    assert "## quick:" in table
