"""One output rule for every command that writes a file (issue 19): an output that exists is refused before any work
unless --overwrite, an input never becomes an output, and a file that appears while the output is being written (a
concurrent run) is reported, never replaced. The same table runs each command through its command line:

(a) an existing output without --overwrite: exit 1, one ``error:`` line, the file unchanged;
(b) an input given as the output: refused, the input unchanged;
(c) a file appearing between the checks and the final rename: exit 1, the line names it, it is kept; the
    temporaries a killed run left in the output folder are removed on the way, a live run's are not.

(c) makes the file appear by wrapping ``gldfn_model.common.atomic.publish``, the one rename every write goes through:
the command runs for real and another run's file shows up just before its own is published.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from gldfn_calibration.cli import app as calibrate_app
from gldfn_export.cli import app as export_app
from gldfn_model.cli import app as gldfn_app
from gldfn_model.common import atomic
from gldfn_model.common.temps import host_tag
from gldfn_model.data.image_io import write_image
from gldfn_model.network import registry
from gldfn_runtime.cli.main import app as trt_app

THEIRS = b"another run's file"


@dataclass(frozen=True)
class Inputs:
    checkpoint: Path
    onnx: Path
    photo: Path
    hr: Path  # HR images for degrade, train and calibrate
    work: Path  # a folder for what a command writes beside its output (engine cache)
    plugin: Path | None = None  # None: gldfn-trt build plans with --no-plugin (its checks come before building)


@dataclass(frozen=True)
class Command:
    """``argv(out, inputs)``: the command line writing ``out`` (a file, or a folder for degrade, train and triton);
    ``existing``/``racing``: the file in ``out`` that (a) puts there first / (c) makes appear (default ``out``);
    ``as_input``: the input (b) names as ``out``; ``requires`` / ``runs``: what this machine lacks for every case /
    for running the command to the end in (c), else None."""

    name: str
    app: Callable[[], typer.Typer]
    argv: Callable[[Path, Inputs], list]
    out: str
    as_input: Callable[[Inputs], Path]
    existing: str | None = None
    racing: str | None = None
    requires: Callable[[], str | None] = lambda: None
    runs: Callable[[], str | None] = lambda: None

    def path(self, out: Path, name: str | None) -> Path:
        return out / name if name else out


def _no_gpu() -> str | None:
    from gldfn_runtime.tensorrt.backend import current_gpu

    return None if current_gpu()[0] is not None else "needs an NVIDIA GPU to run the engine"


def _no_tritonclient() -> str | None:
    import importlib.util

    return None if importlib.util.find_spec("tritonclient") else "tritonclient is not installed: pip install 'gldfn-trt[serve]'"


def _no_rtx() -> str | None:
    from gldfn_runtime.tensorrt.compat import TensorRTUnavailable, load_tensorrt

    try:
        load_tensorrt("tensorrt_rtx")
    except TensorRTUnavailable as error:
        return f"TensorRT-RTX is not installed: {error}"
    return None


BUILD = ["--backend", "tensorrt-rtx", "--min", "8x8", "--opt", "16x16", "--max", "32x32", "--compute-capability", "SM86"]
CALIBRATE = ["--samples", "2", "--patch", "16", "--no-eval", "--no-engine-check"]
TRAIN = ["--iters", "2", "--batch", "1", "--patch", "16", "--ckpt-every", "1", "--no-prefetch", "--threads", "1"]
BENCH = ["--sizes", "16x16", "--iters", "1", "--warmup", "0"]

COMMANDS = [
    Command("gldfn-export", lambda: export_app, lambda out, i: ["--checkpoint", i.checkpoint, "--no-verify", "-o", out],
            "w.onnx", lambda i: i.checkpoint),
    Command("gldfn-trt build", lambda: trt_app,
            lambda out, i: ["build", i.onnx, *BUILD, *(["--plugin", i.plugin] if i.plugin else ["--no-plugin"]),
                            "--cache-dir", i.work / "cache", "-o", out],
            "m.engine", lambda i: i.onnx, requires=_no_rtx),
    Command("gldfn-calibrate -o", lambda: calibrate_app,
            lambda out, i: [i.onnx, "--images", i.hr, *CALIBRATE, "-o", out], "m.int8.onnx", lambda i: i.onnx),
    Command("gldfn-calibrate --report", lambda: calibrate_app,
            lambda out, i: [i.onnx, "--images", i.hr, *CALIBRATE, "-o", out.with_name("m.int8.onnx"),
                            "--report", out], "report.json", lambda i: i.onnx),
    Command("gldfn-trt triton", lambda: trt_app, lambda out, i: ["triton", i.onnx, "--target", "cpu", "-o", out],
            "repo", lambda i: i.onnx, requires=_no_tritonclient),
    Command("gldfn degrade", lambda: gldfn_app, lambda out, i: ["degrade", i.hr, "--setting", "iso", "-o", out],
            "lr", lambda i: i.hr, existing="img0_0.png", racing="manifest.json"),
    Command("gldfn train", lambda: gldfn_app, lambda out, i: ["train", i.hr, *TRAIN, "-o", out],
            "run", lambda i: i.hr, existing="best.pt", racing="last.pt"),
    Command("gldfn upscale", lambda: gldfn_app, lambda out, i: ["upscale", i.photo, "--backend", "bicubic", "-o", out],
            "big.png", lambda i: i.photo),
    Command("gldfn-trt run", lambda: trt_app, lambda out, i: ["run", i.onnx, i.photo, "-o", out],
            "big.png", lambda i: i.photo, runs=_no_gpu),
    Command("gldfn bench --plot", lambda: gldfn_app,
            lambda out, i: ["bench", "--checkpoint", i.checkpoint, *BENCH, "--plot", out], "plot.png",
            lambda i: i.checkpoint),
    Command("gldfn-trt bench --plot", lambda: trt_app, lambda out, i: ["bench", i.onnx, *BENCH, "--plot", out],
            "plot.png", lambda i: i.onnx, runs=_no_gpu),
]
IDS = [command.name for command in COMMANDS]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Inputs:
    from gldfn_export.exporter import export_gldfn
    from gldfn_model.network.checkpoint import load_checkpoint

    folder = tmp_path_factory.mktemp("inputs")
    checkpoint = folder / "w.pt"
    checkpoint.write_bytes(registry.find_model("tiny-x4").checked_path().read_bytes())
    onnx = folder / "m.onnx"
    export_gldfn(load_checkpoint(checkpoint).build_model(), onnx, verify=False, config_name="tiny")
    photo = folder / "photo.png"
    write_image(photo, (np.random.default_rng(0).random((12, 16, 3)) * 255).astype(np.uint8))
    hr = folder / "hr"
    hr.mkdir()
    for index in range(2):
        write_image(hr / f"img{index}.png", (np.random.default_rng(index).random((64, 64, 3)) * 255).astype(np.uint8))
    return Inputs(checkpoint, onnx, photo, hr, folder)


@pytest.fixture(scope="module")
def with_plugin(inputs, request) -> Inputs:
    """The inputs with the plugin library for ``gldfn-trt build`` (built once per session): an engine built from
    the function bodies needs a process where no plugin library was loaded yet."""
    return replace(inputs, plugin=request.getfixturevalue("plugin_library"))


def _require(command: Command) -> None:
    reason = command.requires()
    if reason is not None:
        pytest.skip(f"{command.name}: {reason}")


def _invoke(command: Command, out: Path, inputs: Inputs, *extra: str):
    return CliRunner().invoke(command.app(), [str(a) for a in [*command.argv(out, inputs), *extra]])


def _one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def _fingerprint(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_a_an_existing_output_is_refused_and_kept(command, inputs, tmp_path):
    _require(command)
    out = tmp_path / command.out
    existing = command.path(out, command.existing)
    existing.parent.mkdir(parents=True, exist_ok=True)
    existing.write_bytes(THEIRS)
    before = _fingerprint(tmp_path)
    line = _one_error_line(_invoke(command, out, inputs))
    assert re.search(r"exists? already|already holds", line), line
    assert re.search(r"--overwrite|--resume|remove that one", line), line  # train and triton: no --overwrite
    assert _fingerprint(tmp_path) == before


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_b_an_input_given_as_the_output_is_refused_and_kept(command, inputs, tmp_path):
    _require(command)
    source = command.as_input(inputs)
    before = _fingerprint(source.parent)
    line = _one_error_line(_invoke(command, source, inputs))
    assert re.search(r"is the .* (file|folder)|input model|would replace input", line), line
    assert _fingerprint(source.parent) == before


@pytest.fixture
def racing(monkeypatch):
    """``racing(path)``: just before the command publishes ``path``, another run's file appears there."""
    real_publish = atomic.publish
    watched: list[Path] = []

    def publish(source, target, *, overwrite=False):
        if watched and Path(target) == watched[0] and not Path(target).exists():
            Path(target).write_bytes(THEIRS)
        return real_publish(source, target, overwrite=overwrite)

    monkeypatch.setattr(atomic, "publish", publish)
    return watched.append


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_c_a_file_that_appears_meanwhile_is_kept_and_reported(command, inputs, tmp_path, racing, request):
    _require(command)
    reason = command.runs()
    if reason is not None:
        pytest.skip(f"{command.name}: {reason} (its up-front checks are in (a) and (b))")
    if command.name == "gldfn-trt build":
        inputs = request.getfixturevalue("with_plugin")
    out = tmp_path / command.out
    target = command.path(out, command.racing)
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{target.name}.gldfn-{host_tag()}"
    left_by_killed_run = folder / f".{name}-{_dead_pid()}-abcd_123.tmp"
    live_run_writing = folder / f".{name}-1-abcd_123.tmp"  # pid 1 (init) is always running
    for path in (left_by_killed_run, live_run_writing):
        path.write_bytes(b"half")
    racing(target)
    line = _one_error_line(_invoke(command, out, inputs))
    assert f"{target} appeared while it was being written" in line and "kept" in line, line
    assert target.read_bytes() == THEIRS
    assert not left_by_killed_run.exists() and live_run_writing.exists()
    ours = [p.name for p in folder.iterdir() if p.name.endswith(".tmp") and p != live_run_writing]
    assert ours == [], ours  # the command's own temporary file is gone too
    if command.name == "gldfn-calibrate --report":  # written together or not at all
        assert not out.with_name("m.int8.onnx").exists()


# ---------------------------------------------------------------- the reproductions of issue 19

def test_export_onto_its_own_checkpoint_keeps_the_weights(inputs, tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(inputs.checkpoint.read_bytes())
    before = weights.read_bytes()
    for extra in ([], ["--overwrite"]):  # an input is never an output
        result = CliRunner().invoke(export_app, ["--checkpoint", str(weights), "-o", str(weights), "--no-verify", *extra])
        assert "is the --checkpoint file this command reads" in _one_error_line(result)
    assert weights.read_bytes() == before


def test_build_into_an_existing_folder_is_one_error_line(inputs, tmp_path):
    reason = _no_rtx()
    if reason is not None:
        pytest.skip(reason)
    folder = tmp_path / "EXISTING_DIR"
    folder.mkdir()
    result = CliRunner().invoke(trt_app, ["build", str(inputs.onnx), *BUILD, "--no-plugin", "--cache-dir",
                                          str(tmp_path / "cache"), "-o", str(folder)])
    line = _one_error_line(result)
    assert f"-o {folder} is a folder; name the engine file to write, e.g. -o {folder}/model.engine" in line
    assert list(folder.iterdir()) == []


def _written(output: str) -> int:
    """How many files a `gldfn upscale` run says it wrote (0 when it refused up front)."""
    match = re.search(r"^(\d+) of (\d+) images written", output, re.M)
    if match is None:
        assert "exist already" in output, output
        return 0
    return int(match[1])


def test_two_concurrent_upscales_never_both_claim_every_file(tmp_path):
    """Two real processes write the same 20 outputs: each file is written by exactly one of them, and their counts
    add up to 20, whether they overlap or one plans after the other has written some."""
    images = tmp_path / "in"
    images.mkdir()
    for index in range(20):
        write_image(images / f"{index:02d}.png", (np.random.default_rng(index).random((24, 24, 3)) * 255).astype(np.uint8))
    gldfn = [sys.executable, "-c", "from gldfn_model.cli import main; main()"]
    command = [*gldfn, "upscale", str(images), "-o", str(tmp_path / "out"), "--backend", "bicubic"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert sum(_written(output) for output in outputs) == 20, outputs
    assert len(list((tmp_path / "out").iterdir())) == 20
    for run, output in zip(runs, outputs):
        assert run.returncode == (0 if _written(output) == 20 else 1), output
        assert "Traceback" not in output


def test_a_run_where_every_file_fails_leaves_no_folder(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    out = tmp_path / "new" / "out"
    result = CliRunner().invoke(gldfn_app, ["upscale", str(broken), "-o", f"{out}{os.sep}", "--backend", "bicubic"])
    assert result.exit_code == 1 and "0 of 1 images written" in result.output, result.output
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("case", ["train-no-images", "train-image-smaller-than-the-crop", "degrade-all-broken"])
def test_a_refused_run_leaves_no_empty_output_folder(case, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    if case == "train-image-smaller-than-the-crop":
        write_image(data / "hr.png", np.full((64, 64, 3), 128, np.uint8))
    if case == "degrade-all-broken":
        (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    out = tmp_path / "new" / "out"
    if case.startswith("train"):
        args = ["train", "--data", str(data), "--out", str(out), "--iters", "2", "--threads", "1", "--patch", "48"]
    else:
        args = ["degrade", str(data), "-o", str(out)]
    result = CliRunner().invoke(gldfn_app, args)
    assert result.exit_code == 1, result.output
    assert not out.exists() and not (tmp_path / "new").exists(), result.output


@pytest.mark.parametrize("suffix", ["/../../x", f"{os.sep}sub", "_x4\n", "a\0b"])
def test_a_suffix_that_leaves_the_output_folder_is_refused_before_any_work(suffix, tmp_path):
    """--suffix "/../../x" once wrote outside -o (issue 19): a suffix is part of a file name, never a path."""
    images = tmp_path / "in"
    images.mkdir()
    write_image(images / "a.png", np.full((8, 8, 3), 90, np.uint8))
    (tmp_path / "out" / "a").mkdir(parents=True)  # what "a/../../x" would need to escape
    result = CliRunner().invoke(gldfn_app, ["upscale", str(images), "-o", str(tmp_path / "out"), "--suffix", suffix,
                                            "--backend", "bicubic"])
    assert result.exit_code == 1 and "--suffix" in result.output and "cannot hold folder separators" in result.output
    assert "upscaling" not in result.output  # refused before anything ran
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["in", "in/a.png", "out", "out/a"]


def test_every_output_name_refuses_a_path_in_the_suffix():  # the --ray URI path names files with it directly
    from gldfn_runtime.upscale.output_targets import OutputTargetError, output_name

    with pytest.raises(OutputTargetError, match="cannot hold folder separators"):
        output_name("a.png", "/../x")
    assert output_name("a.png", "_x4", "webp") == "a_x4.webp"
