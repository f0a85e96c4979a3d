"""README's first set-up command, run for real: quickstart.sh installs into the current environment (already
installed: pip has nothing to do), exports, builds the plugin and an FP16 engine on the CPU, and upscales the
sample image (through ONNX Runtime without a GPU)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gldfn_model.data.image_io import read_rgb

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quickstart_runs_the_main_job_end_to_end(tmp_path):
    for tool in ("nvcc", "cmake"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not on PATH: the quickstart would build without the plugin")
    out = tmp_path / "qs"
    env = {**os.environ, "GLDFN_VENV": sys.prefix, "GLDFN_QUICKSTART_OUT": str(out),
           "GLDFN_TRT_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(["bash", str(ROOT / "quickstart.sh")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for step in ("export the shipped x4 model", "build the TensorRT plugin", "build an FP16 engine on the CPU",
                 "upscale a sample image"):
        assert f"== {step}" in done.stdout
    assert (out / "gldfn_tiny_x4.rtx-fp16.engine").is_file() and "fp16, targets SM80" in done.stdout
    sample, result = read_rgb(out / "test_card.png"), read_rgb(out / "test_card_x4.png")
    assert result.shape == (sample.shape[0] * 4, sample.shape[1] * 4, 3)
    assert np.ptp(result) > 100  # an image, not a flat or black frame
