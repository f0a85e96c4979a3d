"""The GPU check's preparation, on a machine without a GPU: the CUDA toolkit is found through what nvcc reports
(also where the nvcc on PATH is a wrapper script in another folder), and gpu_check.sh gets past the toolkit and
stops at once, saying there is no GPU, also where no TensorRT headers are (they are looked for only before the
plugin step, after the torch-op checks)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gldfn_runtime.plugin.library import PLUGIN_SOURCE_DIR

TESTS_DIR = PLUGIN_SOURCE_DIR / "tests"


def _real_nvcc() -> Path:
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH (the CUDA toolkit is needed)")
    return Path(nvcc)


def _environment(path: str) -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in ("CUDA_HOME", "CUDA_PATH")} | {"PATH": path}


def test_toolkit_is_found_through_a_wrapper_nvcc(tmp_path):
    real = _real_nvcc()
    wrapper_dir = tmp_path / "bin"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "nvcc"
    wrapper.write_text(f'#!/bin/sh\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    result = subprocess.run([sys.executable, str(TESTS_DIR / "cuda_toolkit.py")], capture_output=True, text=True,
                            env=_environment(f"{wrapper_dir}:/usr/bin:/bin"))
    assert result.returncode == 0, result.stderr
    home = Path(result.stdout.strip())
    sys.path.insert(0, str(TESTS_DIR))
    from cuda_toolkit import nvcc_reported_root

    assert home == nvcc_reported_root(str(wrapper)) and (home / "include" / "cuda_runtime_api.h").is_file()


def test_gpu_check_stops_first_for_the_missing_gpu(tmp_path):
    if shutil.which("nvidia-smi") or Path("/dev/nvidiactl").exists():
        pytest.skip("an NVIDIA driver is present: run plugins/tests/gpu_check.sh itself")
    _real_nvcc()
    # python3 on PATH is this environment's, as where the check is meant to run; no TensorRT headers anywhere.
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    result = subprocess.run(["bash", str(TESTS_DIR / "gpu_check.sh")], capture_output=True, text=True, timeout=120,
                            env=_environment(path) | {"OUT": str(tmp_path), "TENSORRT_ROOT": str(tmp_path / "none"),
                                                      "GLDFN_GPU_STAGE": str(tmp_path / "no-stage")})
    output = result.stdout + result.stderr  # with $OUT set, both go through tee into gpu_check.log as well
    assert result.returncode == 2
    assert "== CUDA toolkit: " in output and "TensorRT headers" not in output
    assert "no NVIDIA GPU here (nvidia-smi not found)" in output
    assert "no NVIDIA GPU here" in (tmp_path / "gpu_check.log").read_text()
