"""benchmarks/gpu_run.sh on a machine without a GPU: ``--stage`` gathers what the GPU machine lacks (TensorRT
headers, pypng) into one folder; a run then imports every module its steps need from the working tree and the
staged folder, and stops within seconds, saying there is no CUDA GPU (exit 2). With GPU_RUN_WIRING_CHECK=1 it goes
on, and every Python step stops at once for the missing GPU, which checks the script's wiring."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gldfn_runtime.plugin.build import find_tensorrt_headers

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_run.sh"


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    if shutil.which("nvidia-smi") or torch.cuda.is_available():
        pytest.skip("a GPU is here: run benchmarks/gpu_run.sh itself")
    if find_tensorrt_headers() is None:
        pytest.skip("TensorRT headers (NvInferRuntime.h) are not installed: nothing to stage")
    stage = tmp_path_factory.mktemp("stage")
    result = subprocess.run(["bash", str(SCRIPT), "--stage"], capture_output=True, text=True, timeout=120,
                            env=_environment(stage))
    assert result.returncode == 0, result.stdout + result.stderr
    return stage


def _environment(stage: Path) -> dict[str, str]:
    # python3 on PATH is this environment's, as the GPU machine's python3 is the one with torch.
    return os.environ | {"GLDFN_GPU_STAGE": str(stage), "PYTHON": sys.executable,
                         "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def test_stage_holds_the_headers_and_the_missing_modules(staged):
    assert (staged / "include" / "NvInferRuntime.h").is_file()
    assert (staged / "site" / "png.py").is_file()
    assert sum(f.stat().st_size for f in staged.rglob("*") if f.is_file()) < 16 * 2**20  # carried with each call


def test_run_stops_for_the_missing_gpu_after_the_probe(staged, tmp_path):
    began = time.monotonic()
    result = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out")], capture_output=True, text=True,
                            timeout=120, env=_environment(staged))
    assert result.returncode == 2, result.stdout + result.stderr
    assert time.monotonic() - began < 60
    assert "no CUDA GPU: PyTorch sees none here" in result.stdout
    probe = (tmp_path / "out" / "probe.txt").read_text()
    assert "FAILED" not in probe and "== import gldfn_runtime.cli.bench: ok" in probe
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["probe.txt", "run.log"]
    assert "no CUDA GPU" in (tmp_path / "out" / "run.log").read_text()


@pytest.mark.slow
def test_every_step_is_wired_and_stops_for_the_missing_gpu(staged, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(["bash", str(SCRIPT), str(out)], capture_output=True, text=True, timeout=300,
                            env=_environment(staged) | {"GPU_RUN_WIRING_CHECK": "1"})
    assert result.returncode == 1, result.stdout + result.stderr
    summary = result.stdout[result.stdout.index("== summary"):]
    for name in ("extension", "kernel", "plugin", "executor", "table_iv"):
        assert f"{name}: FAILED (exit 2)" in summary  # each stopped for the GPU, not for a wiring error
    assert result.stdout.count("no CUDA GPU visible to PyTorch") == 4
    assert len(list(out.iterdir())) <= 8
