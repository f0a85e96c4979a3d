"""One vocabulary across ``gldfn``, ``gldfn-export``, ``gldfn-calibrate`` and ``gldfn-trt`` (docs/cli.md), and what
the commands infer instead of refusing: the backend from the model given, the scale from the model itself."""
from __future__ import annotations

import json
import re
from enum import Enum
from pathlib import Path

import onnx
import pytest
import typer
from conftest import plain_text, require_dataset
from PIL import Image
from typer.testing import CliRunner

from gldfn_model.cli import app as gldfn
from gldfn_model.common.cli_errors import GldfnTyper
from gldfn_model.data.image_io import DEFAULT_MAX_PIXELS, read_image
from gldfn_model.network import registry
from gldfn_model.network.checkpoint import load_checkpoint
from gldfn_model.ops import onnx_format

X2 = "tiny-x2"  # a shipped model whose scale is not the default (x4): inferring it is visible


def invoke(app: typer.Typer, *args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def x2_checkpoint() -> Path:
    return registry.find_model(X2).checked_path()


@pytest.fixture(scope="module")
def x2_onnx(tmp_path_factory, x2_checkpoint) -> Path:
    """The shipped x2 model exported once for this module (gldfn.scale = 2 in its metadata)."""
    from gldfn_export.exporter import export_gldfn

    path = tmp_path_factory.mktemp("x2_onnx") / "tiny_x2.onnx"
    export_gldfn(load_checkpoint(x2_checkpoint).build_model(), path, verify=False, config_name="tiny")
    return path


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A 24 x 32 crop of Set5's butterfly."""
    path = tmp_path_factory.mktemp("photo") / "butterfly.png"
    with Image.open(require_dataset("Set5") / "butterfly.png") as image:
        image.convert("RGB").crop((100, 80, 132, 104)).save(path)
    return path


@pytest.fixture(scope="module")
def hr_folder(tmp_path_factory) -> Path:
    """One 64 x 64 crop of Set5's butterfly: an HR test set for eval and degrade."""
    folder = tmp_path_factory.mktemp("hr")
    with Image.open(require_dataset("Set5") / "butterfly.png") as image:
        image.convert("RGB").crop((64, 64, 128, 128)).save(folder / "butterfly.png")
    return folder


# ---------------------------------------------------------------- gldfn upscale: the backend and scale of the model

def test_upscale_runs_an_onnx_file_with_onnxruntime_at_its_scale(tmp_path, photo, x2_onnx):
    out = tmp_path / "big.png"
    result = invoke(gldfn, "upscale", photo, "-o", out, "--onnx", x2_onnx, "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "upscaling x2 (onnxruntime)" in result.output
    assert read_image(out).shape == (48, 64, 3)


def test_upscale_takes_the_scale_of_a_checkpoint(tmp_path, photo, x2_checkpoint):
    result = invoke(gldfn, "upscale", photo, "-o", tmp_path / "big.png", "--checkpoint", x2_checkpoint, "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "upscaling x2 (torch)" in result.output and read_image(tmp_path / "big.png").shape == (48, 64, 3)


def test_upscale_scale_that_contradicts_the_file_names_both(tmp_path, photo, x2_onnx):
    result = invoke(gldfn, "upscale", photo, "-o", tmp_path / "big.png", "--onnx", x2_onnx, "-s", "4")
    assert result.exit_code == 2
    assert f"'--scale': 4 does not match {x2_onnx} (its gldfn.scale metadata), which says x2" in plain_text(result.output)
    assert not (tmp_path / "big.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--backend", "torch", "--onnx", "{onnx}"], "'--backend': torch contradicts --onnx {onnx}, which runs with "
                                                 "--backend onnxruntime"),
    (["--backend", "bicubic", "--model", X2], f"'--backend': bicubic contradicts --model {X2}"),
    (["--onnx", "{onnx}", "--checkpoint", "{checkpoint}"], "--onnx {onnx} runs with --backend onnxruntime and "
                                                           "--checkpoint {checkpoint} with --backend torch"),
    (["--backend", "onnxruntime"], "'--backend': onnxruntime needs --onnx FILE"),
])
def test_upscale_backend_that_contradicts_the_model_names_both(tmp_path, photo, x2_onnx, x2_checkpoint, args, message):
    paths = {"onnx": x2_onnx, "checkpoint": x2_checkpoint}
    result = invoke(gldfn, "upscale", photo, "-o", tmp_path / "big.png", *[a.format(**paths) for a in args])
    assert result.exit_code == 2
    assert message.format(**paths) in plain_text(result.output)
    assert not (tmp_path / "big.png").exists()


@pytest.fixture(scope="module")
def x2_engine(x2_onnx, plugin_library, tmp_path_factory) -> Path:
    """A real TensorRT-RTX engine of the x2 export with the session's plugin library, built on the CPU (not from
    the function bodies: once a test has loaded the plugin in this process the parser maps the nodes to it)."""
    from test_engine_build import _rtx

    from gldfn_runtime.cli.main import app as trt

    _rtx()
    folder = tmp_path_factory.mktemp("x2_engine")
    engine = folder / "tiny_x2.engine"
    result = invoke(trt, "build", x2_onnx, "--plugin", plugin_library, "--backend", "tensorrt-rtx", "--min", "8x8", "--opt",
                    "16x16", "--max", "32x32", "-o", engine, "--cache-dir", folder / "cache")
    assert result.exit_code == 0, result.output
    return engine


def test_upscale_runs_an_engine_with_tensorrt(tmp_path, photo, x2_engine, plugin_library):
    from gldfn_runtime.tensorrt.backend import current_gpu

    result = invoke(gldfn, "upscale", photo, "-o", tmp_path / "big.png", "--engine", x2_engine, "--plugin", plugin_library)
    if current_gpu()[0] is None:
        assert result.exit_code == 1 and "TensorRT engines need an NVIDIA GPU" in plain_text(result.output)
        assert not (tmp_path / "big.png").exists()
    else:
        assert result.exit_code == 0, result.output
        assert "upscaling x2 (tensorrt)" in result.output and read_image(tmp_path / "big.png").shape == (48, 64, 3)


def test_upscale_scale_that_contradicts_the_engine_is_refused_without_a_gpu(tmp_path, photo, x2_engine):
    result = invoke(gldfn, "upscale", photo, "-o", tmp_path / "big.png", "--engine", x2_engine, "--scale", "3")
    assert result.exit_code == 2
    assert f"'--scale': 3 does not match engine {x2_engine} (its sidecar), which says x2" in plain_text(result.output)


# ---------------------------------------------------------------- inputs, outputs, old spellings

def test_inputs_are_the_positional_ones_then_each_i_in_order():
    from gldfn_model.cli.options import merge_inputs

    a, b, c = Path("a.png"), Path("b.png"), Path("c.png")
    assert merge_inputs([b], [c, a]) == [b, c, a]
    assert merge_inputs(None, [a]) == [a] and merge_inputs(a, None) == [a]
    with pytest.raises(typer.BadParameter, match="no image given"):
        merge_inputs(None, None, what="image")
    with pytest.raises(typer.BadParameter, match="takes one HR folder, got 2"):
        merge_inputs([a], [b], what="HR folder", at_most=1)


def test_upscale_reads_inputs_from_arguments_and_i(tmp_path, photo):
    second = tmp_path / "second.png"
    second.write_bytes(photo.read_bytes())
    result = invoke(gldfn, "upscale", photo, "-i", second, "--output", tmp_path / "out", "--backend", "bicubic")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["butterfly.png", "second.png"]


def test_renamed_options_still_parse_but_are_not_shown(tmp_path, photo, hr_folder):
    assert invoke(gldfn, "upscale", photo, "--out", tmp_path / "a.png", "--backend", "bicubic").exit_code == 0
    degraded = invoke(gldfn, "degrade", "--hr", hr_folder, "--out", tmp_path / "lr", "-s", "2")
    assert degraded.exit_code == 0, degraded.output
    assert (tmp_path / "lr" / "manifest.json").is_file()
    for command, hidden in (("upscale", "--out"), ("degrade", "--hr"), ("eval", "--hr"), ("train", "--data")):
        assert not re.search(rf"{hidden}(?![\w-])", invoke(gldfn, command, "--help").output)


def test_hidden_aliases_are_declared_for_options_only():
    from gldfn_model.common.cli_aliases import hidden_aliases

    app = GldfnTyper()

    @app.command()
    @hidden_aliases(names="--name")
    def greet(names: list[str] = typer.Argument(None)) -> None:
        typer.echo(names)

    result = invoke(app, "x")
    assert result.exit_code != 0 and "only options can have aliases" in str(result.exception)


# ---------------------------------------------------------------- gldfn eval, degrade, bench, train, export, calibrate

def test_eval_checkpoint_implies_the_model_method_and_its_scale(hr_folder, x2_checkpoint):
    result = invoke(gldfn, "eval", hr_folder, "--checkpoint", x2_checkpoint, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["method"] == "model" and data["scale"] == 2 and len(data["per_image"]) == 8
    bicubic = json.loads(invoke(gldfn, "eval", "-i", hr_folder, "-s", "2", "--json").output)
    assert bicubic["method"] == "bicubic" and data["psnr"] > bicubic["psnr"]


def test_eval_method_that_contradicts_the_checkpoint_names_both(hr_folder, x2_checkpoint):
    result = invoke(gldfn, "eval", hr_folder, "--method", "bicubic", "--checkpoint", x2_checkpoint)
    assert result.exit_code == 2
    assert f"'--method': bicubic contradicts --checkpoint {x2_checkpoint}, which runs with --method model" in plain_text(
        result.output)


def test_eval_takes_the_scale_of_a_degrade_folder(tmp_path, hr_folder):
    made = invoke(gldfn, "degrade", hr_folder, "-o", tmp_path / "lr", "-s", "2")
    assert made.exit_code == 0, made.output
    result = invoke(gldfn, "eval", hr_folder, "--lr-dir", tmp_path / "lr", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["scale"] == 2


def test_bench_times_an_onnx_file_with_onnxruntime_at_its_scale(x2_onnx):
    result = invoke(gldfn, "bench", "--onnx", x2_onnx, "--sizes", "16x16", "--iters", "1", "--warmup", "0",
                    "--threads", "1", "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout[result.stdout.index("{"):])["results"]
    assert row["backend"] == "onnxruntime" and row["scale"] == 2 and row["iters"] == 1
    refused = invoke(gldfn, "bench", "--backend", "torch", "--onnx", x2_onnx)
    assert refused.exit_code == 2 and f"'--backend': torch contradicts --onnx {x2_onnx}" in plain_text(refused.output)


def test_train_takes_scale_and_config_from_the_weights_it_starts_from(tmp_path, hr_folder, x2_checkpoint):
    run = tmp_path / "run"
    common = ["--batch", "1", "--patch", "8", "--threads", "1", "--no-prefetch"]
    first = invoke(gldfn, "train", hr_folder, "-o", run, "--init", x2_checkpoint, "--iters", "1", *common)
    assert first.exit_code == 0, first.output
    assert load_checkpoint(run / "last.pt").config.scale == 2
    resumed = invoke(gldfn, "train", "--data", hr_folder, "--out", run, "--resume", "--iters", "2", *common)
    assert resumed.exit_code == 0, resumed.output
    assert load_checkpoint(run / "last.pt").extra["iteration"] == 2
    wrong = invoke(gldfn, "train", hr_folder, "-o", run, "--resume", "--iters", "3", "--config", "paper", *common)
    assert wrong.exit_code == 2
    assert f"'--config': paper does not match the run's checkpoint {run / 'last.pt'}, which says tiny" in plain_text(
        wrong.output)


def test_export_takes_the_scale_of_the_checkpoint(tmp_path, x2_checkpoint):
    from gldfn_export.cli import app as export

    out = tmp_path / "x2.onnx"
    result = invoke(export, "--checkpoint", x2_checkpoint, "--no-verify", "-o", out)
    assert result.exit_code == 0, result.output
    assert onnx_format.read_metadata(onnx.load(str(out), load_external_data=False))[onnx_format.SCALE] == "2"


def test_calibrate_reads_its_model_from_i_and_checks_s(tmp_path, x2_onnx, hr_folder):
    from gldfn_calibration.cli import app as calibrate

    result = invoke(calibrate, "-i", x2_onnx, "--images", hr_folder, "-o", tmp_path / "int8.onnx", "-s", "4",
                    "--no-eval", "--no-engine-check")
    assert result.exit_code == 1 and f"--scale 4 does not match {x2_onnx}" in plain_text(result.output)
    assert not (tmp_path / "int8.onnx").exists()


# ---------------------------------------------------------------- the vocabulary itself, across all four commands

def _all_commands() -> list[tuple[str, object]]:
    from gldfn_calibration.cli import app as calibrate
    from gldfn_export.cli import app as export
    from gldfn_runtime.cli.main import app as trt

    found = []

    def walk(name: str, command: object) -> None:
        for sub, child in getattr(command, "commands", {}).items():
            walk(f"{name} {sub}", child)
        if not hasattr(command, "commands"):
            found.append((name, command))

    for program, app in (("gldfn", gldfn), ("gldfn-export", export), ("gldfn-calibrate", calibrate), ("gldfn-trt", trt)):
        walk(program, typer.main.get_command(app))
    return found


# The short flags of the shared options; wherever the long option exists, it has its short flag, and the short flag
# means nothing else.
SHORT_FLAGS = {"--output": "-o", "--input": "-i", "--scale": "-s", "--tile": "-t", "--format": "-f", "--device": "-g",
               "--threads": "-j"}
# One default for the same option everywhere.
DEFAULTS = {"--tile": None, "--overlap": 16, "--max-pixels": DEFAULT_MAX_PIXELS, "--threads": None, "--seed": 0,
            "--providers": "cpu", "--sizes": "180x270", "--iters": None, "--warmup": None, "--plugin": None,
            "--json": False, "--markdown": False, "--plot": None, "--checkpoint": None, "--onnx": None}
# The same name for another thing: training iterations.
OTHER_MEANING = {("gldfn train", "--iters")}
# Options with a fixed set of values, shown in --help as choices (Enums) ...
CHOICES = {"--backend", "--config", "--setting", "--method", "--convention", "--sv-noise", "--format",
           "--target", "--precision", "--model", "--build-type"}
# ... except comma-separated lists of them (their help lists the values).
LISTS = {("gldfn bench", "--backend"), ("gldfn bench", "--precision"), ("gldfn bench", "--model")}
# Commands allowed to lag behind the vocabulary (strict xfail, so an entry must go once its command complies).
PENDING: set[str] = set()


def _vocabulary_problems(name: str, command: object) -> list[str]:
    problems, shorts = [], {}
    for param in command.params:
        if param.param_type_name != "option":
            continue
        longs = [o for o in param.opts if o.startswith("--")]
        for short in (o for o in param.opts if not o.startswith("--")):
            if short in shorts:
                problems.append(f"{short} is both {shorts[short]} and {longs}")
            shorts[short] = longs
            if short in SHORT_FLAGS.values() and SHORT_FLAGS.get(longs[0]) != short:
                problems.append(f"{short} means {longs[0]}, not what it means elsewhere")
        for long in longs:
            if long in SHORT_FLAGS and SHORT_FLAGS[long] not in param.opts:
                problems.append(f"{long} lacks {SHORT_FLAGS[long]}")
            if long in ("--out", "--hr", "--data"):
                problems.append(f"{long} is shown; it is a hidden alias now")
            default = param.default.value if isinstance(param.default, Enum) else param.default
            if long in DEFAULTS and (name, long) not in OTHER_MEANING and default != DEFAULTS[long]:
                problems.append(f"{long} defaults to {default!r}, elsewhere {DEFAULTS[long]!r}")
            annotation = param.type_descriptor.annotation
            is_choice = isinstance(annotation, type) and issubclass(annotation, Enum)
            if long in CHOICES and (name, long) not in LISTS and not is_choice:
                problems.append(f"{long} does not list its choices")
    return problems


@pytest.mark.parametrize("name, command", [
    pytest.param(name, command, id=name,
                 marks=[pytest.mark.xfail(strict=True, reason="runtime/cli/engine.py is moved by its owner")]
                 if name in PENDING else [])
    for name, command in _all_commands()
])
def test_every_command_speaks_the_vocabulary(name, command):
    assert _vocabulary_problems(name, command) == []


# Every command that runs a model on the CPU (PyTorch or ONNX Runtime) takes -j/--threads (gldfn_model.common.threads).
RUNS_A_MODEL = {"gldfn train", "gldfn eval", "gldfn upscale", "gldfn bench", "gldfn-calibrate", "gldfn-trt compare"}


def test_every_command_that_runs_a_model_takes_threads():
    commands = dict(_all_commands())
    assert RUNS_A_MODEL <= commands.keys()
    lacking = [name for name in sorted(RUNS_A_MODEL)
               if not any("--threads" in p.opts and "-j" in p.opts for p in commands[name].params)]
    assert lacking == []


def test_the_shared_choices_are_the_model_s_own():
    from gldfn_model.cli.options import AUTO, ConfigName, Setting, SvNoise
    from gldfn_model.data.setting_names import SETTINGS, SV_NOISE_RANGES_255
    from gldfn_model.network.config import NAMED_CONFIGS

    assert tuple(c.value for c in Setting) == SETTINGS
    assert tuple(c.value for c in SvNoise) == tuple(SV_NOISE_RANGES_255)
    assert {c.value for c in ConfigName} == set(NAMED_CONFIGS)
    assert AUTO == "auto"


@pytest.mark.parametrize("command, choices", [
    (["upscale"], "<auto|torch|onnxruntime|tensorrt|triton|bicubic>"),
    (["eval"], "<tiny-x2|tiny-x3|tiny-x4"),
    (["degrade"], "<gaussian8|iso|aniso|sv>"),
])
def test_help_lists_the_choices(command, choices):
    wide = CliRunner().invoke(gldfn, [*command, "--help"], env={"COLUMNS": "250"})  # no wrapping inside a choice
    assert choices in wide.output
