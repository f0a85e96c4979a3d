"""Running an exported model needs no PyTorch: importing the runtime, the command lines' help, upscaling with
ONNX Runtime and comparing ONNX files leave torch unimported (each checked in a fresh interpreter)."""
from __future__ import annotations

import json

import pytest
from conftest import run_fresh


def test_importing_the_runtime_does_not_import_torch():
    result, torch_loaded = run_fresh("""
        import gldfn_runtime
        from gldfn_runtime import Upscaler
        import gldfn_runtime.runners.compare, gldfn_runtime.engine.build, gldfn_runtime.runners.trt_runner
    """)
    assert result.returncode == 0, result.stderr
    assert not torch_loaded


@pytest.mark.parametrize("module, program, command", [
    ("gldfn_runtime.cli.main", "gldfn-trt", ()), ("gldfn_export.cli", "gldfn-export", ()),
    # gldfn's help and its model listing answer without the 2 s torch import too.
    *[("gldfn_model.cli", "gldfn", command) for command in ((), ("upscale",), ("train",), ("eval",), ("bench",), ("info",))],
])
def test_help_does_not_import_torch(module, program, command):
    result, torch_loaded = run_fresh(f"""
        sys.argv = [{program!r}, *{command!r}, "--help"]
        from {module} import main
        main()
    """)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout and not torch_loaded


def test_upscaling_with_onnx_runtime_does_not_import_torch(tiny_onnx):
    result, torch_loaded = run_fresh(f"""
        import json
        import numpy as np
        from gldfn_runtime import Upscaler

        upscaler = Upscaler.from_onnx({str(tiny_onnx["fp32"])!r}, tile=12, overlap=4)
        rgba = np.random.default_rng(0).integers(0, 256, (20, 18, 4), dtype=np.uint8)  # alpha: the bicubic path
        gray = np.full((9, 7), 0.5, dtype=np.float32)
        print(json.dumps([list(upscaler.upscale(rgba).shape), list(upscaler.upscale(gray).shape)]))
    """)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[0]) == [[80, 72, 4], [36, 28]]
    assert not torch_loaded


def test_comparing_onnx_files_does_not_import_torch(tiny_onnx):
    args = ["compare", str(tiny_onnx["fp32"]), str(tiny_onnx["fp16"]), "--size", "16x16", "--json"]
    result, torch_loaded = run_fresh(f"""
        sys.argv = ["gldfn-trt", *{args!r}]
        from gldfn_runtime.cli.main import main
        main()
    """)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    assert len(report["rows"]) == 2 and report["min_psnr_db"] > 30
    assert not torch_loaded
