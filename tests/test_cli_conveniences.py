"""What users of other upscalers and of trtexec expect from the command lines: ``--version`` on all four, a
suggestion for a mistyped name, progress that survives a redirect (plain lines in a log file), ``-g/--device``
where a GPU runs, and one upscale command (``gldfn-trt run`` is ``gldfn upscale --engine``)."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from conftest import plain_text, run_fresh
from PIL import Image
from typer.testing import CliRunner

from gldfn_model.cli import app as gldfn
from gldfn_model.common.suggest import closest, did_you_mean

runner = CliRunner()


def _apps() -> dict[str, object]:
    from gldfn_calibration.cli import app as calibrate
    from gldfn_export.cli import app as export
    from gldfn_runtime.cli.main import app as trt

    return {"gldfn": gldfn, "gldfn-export": export, "gldfn-trt": trt, "gldfn-calibrate": calibrate}


# ---------------------------------------------------------------- --version

@pytest.mark.parametrize("program", ["gldfn", "gldfn-export", "gldfn-trt", "gldfn-calibrate"])
def test_every_command_prints_its_version_from_the_package_metadata(program):
    result = runner.invoke(_apps()[program], ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"{program} (gldfn-trt {metadata.version('gldfn-trt')})\n"


def test_version_of_the_installed_scripts_answers_without_torch():
    scripts = Path(sys.executable).parent
    for program in ("gldfn", "gldfn-trt"):
        if not (scripts / program).is_file():
            pytest.skip(f"{program} is not installed beside {sys.executable} (pip install -e .)")
        done = subprocess.run([str(scripts / program), "--version"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.startswith(f"{program} (gldfn-trt "), done.stderr
    result, torch_loaded = run_fresh("""
        sys.argv = ["gldfn", "--version"]
        from gldfn_model.cli import main
        main()
    """)
    assert result.returncode == 0 and "gldfn (gldfn-trt" in result.stdout and not torch_loaded


# ---------------------------------------------------------------- did you mean

def test_closest_name_is_suggested_only_when_close():
    models = ["tiny-x2", "tiny-x3", "tiny-x4", "tiny-x4-robust"]
    assert closest("tiny-x4-robus", models) == "tiny-x4-robust" and closest("TINY-X4", models) == "tiny-x4"
    assert closest("dlcs", ["gldfn", "dcls", "danv1", "danv2"]) == "dcls"
    assert closest("zzz", models) is None and did_you_mean("zzz", models) == ""
    assert did_you_mean("tiny-x4robust", models) == " (did you mean 'tiny-x4-robust'?)"


@pytest.mark.parametrize("args, hint", [
    (["upscale", "x.png", "-o", "y.png", "--model", "tiny-x4-robus"], "(did you mean 'tiny-x4-robust'?)"),
    (["eval", "x", "--model", "tiny-x44"], "(did you mean 'tiny-x4'?)"),
    (["upscale", "x.png", "-o", "y.png", "--backend", "onnxruntim"], "(did you mean 'onnxruntime'?)"),
    (["bench", "--model", "tiny-x4-robst"], "(did you mean 'tiny-x4-robust'?)"),
])
def test_a_mistyped_choice_gets_a_suggestion(args, hint):
    result = runner.invoke(gldfn, args)
    assert result.exit_code == 2 and hint in plain_text(result.output), result.output


def test_a_far_off_choice_gets_none_and_the_registry_suggests_too():
    from gldfn_model.network.registry import ModelRegistryError, find_model

    result = runner.invoke(gldfn, ["upscale", "x.png", "-o", "y.png", "--model", "zzz"])
    assert result.exit_code == 2 and "is not one of" in plain_text(result.output)
    assert "did you mean" not in result.output
    with pytest.raises(ModelRegistryError, match=r"'tiny-x4robust' \(did you mean 'tiny-x4-robust'\?\)"):
        find_model("tiny-x4robust")


# ---------------------------------------------------------------- progress off a terminal

@pytest.fixture
def two_photos(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / name)
    return folder


def test_progress_off_a_terminal_is_one_line_per_file_and_per_tile(two_photos, tmp_path):
    result = runner.invoke(gldfn, ["upscale", str(two_photos), "-o", str(tmp_path / "out"), "--backend", "bicubic",
                                   "-t", "12", "--overlap", "2"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "upscaling x4 (bicubic): 2 images" in lines
    assert "[1/2] a.png" in lines and "[2/2] b.png" in lines
    assert "[1/2] a.png: tile 1/6" in lines and "[2/2] b.png: tile 6/6" in lines  # 20x24 in 12x12 tiles, overlap 2
    assert any(line.startswith("[2/2] b.png: done in ") for line in lines)
    assert "━" not in result.output  # no bars in a log


def test_progress_on_a_terminal_is_bars(two_photos, tmp_path):
    from gldfn_runtime.upscale.progress import BarProgress, LineProgress, batch_progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    with batch_progress("label", 2, Terminal()) as progress:
        assert isinstance(progress, BarProgress)
    log = io.StringIO()
    with batch_progress("label", 1, log) as progress:
        assert isinstance(progress, LineProgress)
        progress.start_file("one.png")
        progress.tile(1, 1)  # a single tile: no tile line
        progress.message("note: kept")
        progress.end_file()
    assert log.getvalue().splitlines()[:3] == ["label: 1 image", "[1/1] one.png", "note: kept"]


def test_errors_stay_one_line_each_in_the_log(two_photos, tmp_path):
    (two_photos / "c.png").write_bytes(b"not an image")
    result = runner.invoke(gldfn, ["upscale", str(two_photos), "-o", str(tmp_path / "out"), "--backend", "bicubic"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "c.png" in errors[0] and "[3/3] c.png: done in" in result.output


# ---------------------------------------------------------------- plural

def test_one_contestant_is_one():
    from gldfn_runtime.cli.bench import measured

    assert measured(1) == "1 contestant" and measured(4) == "4 contestants interleaved"


# ---------------------------------------------------------------- -g/--device and one upscale command

def test_device_is_for_engines_in_gldfn_upscale(two_photos, tmp_path):
    result = runner.invoke(gldfn, ["upscale", str(two_photos), "-o", str(tmp_path / "out"), "--backend", "bicubic",
                                   "-g", "1"])
    assert result.exit_code == 2
    assert "picks the GPU of a TensorRT engine (--engine); bicubic runs on the CPU" in plain_text(result.output)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args", [["--precision", "fp16"], ["--cache-dir", "cache"]])
def test_engine_build_options_are_for_engines_in_gldfn_upscale(two_photos, tmp_path, args):
    result = runner.invoke(gldfn, ["upscale", str(two_photos), "-o", str(tmp_path / "out"), "--backend", "bicubic", *args])
    assert result.exit_code == 2 and "is for an ONNX file run with TensorRT (--engine MODEL.onnx)" in plain_text(
        result.output)


def test_bench_device_takes_cpu_or_a_gpu_index():
    from gldfn_runtime.cli.bench import parse_device

    assert parse_device("cpu") == ("cpu", 0) and parse_device("cuda") == ("cuda", 0)
    assert parse_device("1") == ("cuda", 1) and parse_device("cuda:2") == ("cuda", 2)


def _no_gpu() -> None:
    from gldfn_runtime.tensorrt.backend import current_gpu

    if current_gpu()[0] is not None:
        pytest.skip("a CUDA GPU is present: this test covers the refusal on machines without one")


def test_gldfn_trt_run_is_gldfn_upscale_engine(tiny_onnx, two_photos, tmp_path):
    """The same code: the same output for the same request (here the refusal without a GPU, with the GPU index
    asked for), nothing built or written; and an engine's ONNX file works in both."""
    pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed (pip install 'gldfn-trt[rtx]')")
    _no_gpu()
    from gldfn_runtime.cli.main import app as trt

    onnx = tiny_onnx["fp32"]
    common = ["-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "-g", "1", "--precision", "fp16"]
    by_trt = runner.invoke(trt, ["run", str(onnx), str(two_photos), *common])
    by_gldfn = runner.invoke(gldfn, ["upscale", str(two_photos), "--engine", str(onnx), *common])
    assert by_trt.exit_code == by_gldfn.exit_code == 1
    assert by_trt.output == by_gldfn.output
    assert f"cannot run {onnx} with TensorRT" in by_trt.output and "TensorRT needs an NVIDIA GPU" in by_trt.output
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


def test_run_help_says_it_is_the_alias():
    from gldfn_runtime.cli.main import app as trt

    wide = {"COLUMNS": "200", "TERM": os.environ.get("TERM", "dumb")}
    assert "alias of `gldfn upscale IMAGE... --engine MODEL`" in plain_text(runner.invoke(trt, ["run", "--help"], env=wide).output)
    assert "`gldfn-trt run` is an alias" in plain_text(runner.invoke(gldfn, ["upscale", "--help"], env=wide).output)
