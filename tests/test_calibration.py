"""gldfn_calibration: what stays in float, the Q/DQ form TensorRT takes, the custom node's function surviving,
ONNX Runtime / TensorRT-RTX acceptance, the report, and clear errors with no partial file on bad input.

A random-weight tiny x4 model is used throughout (trained weights are not needed to check the mechanics); the
calibration and evaluation images are Set5 / BSD200 from the shared datasets."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import require_dataset
from onnx import numpy_helper
from PIL import Image
from typer.testing import CliRunner

from gldfn_calibration.calibrate import CalibrationOptions, calibrate_gldfn
from gldfn_calibration.cli import app
from gldfn_calibration.data_reader import make_calibration_set
from gldfn_calibration.errors import CalibrationError
from gldfn_calibration.gldfn_onnx import load_gldfn_export
from gldfn_calibration.layer_selection import parse_exclude, select_layers
from gldfn_calibration.methods import Method
from gldfn_calibration.quantize import restore_functions
from gldfn_export.exporter import export_gldfn
from gldfn_model.common.atomic import OutputPathError
from gldfn_model.data.image_io import read_rgb, write_image
from gldfn_model.network.config import get_config
from gldfn_model.network.gldfn import GLDFN
from gldfn_model.ops import onnx_format as metadata
from gldfn_model.ops.contract import load_contract
from gldfn_model.ops.onnx_format import custom_nodes

CONTRACT = load_contract()
FILTER_GENERATION = ("spatial_conv", "channel_squeeze", "channel_expand")


_dataset = require_dataset


@pytest.fixture(scope="module")
def fp32_export(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("fp32") / "tiny_x4.onnx"
    export_gldfn(GLDFN(get_config("tiny", 4)).eval(), path, config_name="tiny", verify=False)
    return path


@pytest.fixture(scope="module")
def eval_images(tmp_path_factory) -> Path:
    """One Set5 image: its 8 Gaussian8 cases are enough to compare FP32 and INT8 quickly."""
    folder = tmp_path_factory.mktemp("eval")
    shutil.copy(_dataset("Set5") / "head.png", folder / "head.png")
    return folder


@pytest.fixture(scope="module")
def calibrated(fp32_export, eval_images, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8")
    options = CalibrationOptions(images=_dataset("BSD200"), samples=8, patch=32, method=Method.minmax,
                                 exclude=(), eval_images=eval_images, engine_check=False)
    result = calibrate_gldfn(fp32_export, out / "tiny.int8.onnx", options, out / "report.json")
    return result, onnx.load(out / "tiny.int8.onnx"), out


def _consumers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    found: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


# ---------------------------------------------------------------- which layers are quantized

def test_plan_keeps_dynamic_filter_parts_in_float(fp32_export):
    selection = select_layers(onnx.load(fp32_export))
    quantized = {layer.name for layer in selection.quantized}
    for layer in quantized:
        assert not any(part in layer for part in FILTER_GENERATION) and "attention" not in layer, layer
    # 4 DDFMs x (3 filter-generation convs + 2 GDF attention convs) stay float.
    assert sum(any(p in name for p in FILTER_GENERATION) for name in selection.excluded_layers) == 12
    assert sum("attention" in name for name in selection.excluded_layers) == 8
    assert {"head", "reconstruct", "merge.conv", "groups.0.fusion.conv"} <= quantized
    assert all(selection.float_nodes[n.name].startswith("local dynamic filter") for n in custom_nodes(onnx.load(fp32_export), CONTRACT))


def test_plan_exclude_first_last_and_patterns(fp32_export):
    model = onnx.load(fp32_export)
    selection = select_layers(model, ["first", "last", "groups.1.*"])
    quantized = {layer.name for layer in selection.quantized}
    assert "head" not in quantized and "reconstruct" not in quantized
    assert not any(name.startswith("groups.1.") for name in quantized)
    assert any(name.startswith("groups.0.") for name in quantized)
    assert selection.excluded_layers["head"].startswith("first") and selection.excluded_layers["reconstruct"].startswith("last")
    with pytest.raises(CalibrationError, match="matches no convolution layer"):
        select_layers(model, ["groups.9.*"])
    assert parse_exclude(None) == ["first", "last"] and parse_exclude("none") == []
    assert parse_exclude("first, groups.0.*") == ["first", "groups.0.*"]


# ---------------------------------------------------------------- the quantized file

def test_quantized_convs_take_symmetric_int8_inputs_and_per_channel_weights(calibrated):
    result, model, _ = calibrated
    producer = {o: n for n in model.graph.node for o in n.output}
    initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    nodes = {n.name: n for n in model.graph.node}
    for layer in result.selection.quantized:
        conv = nodes[layer.node]
        activation_dq, weight_dq = producer[conv.input[0]], producer[conv.input[1]]
        assert activation_dq.op_type == weight_dq.op_type == "DequantizeLinear", layer.name
        assert producer[activation_dq.input[0]].op_type == "QuantizeLinear"
        weight = initializers[weight_dq.input[0]]
        assert weight.dtype == np.int8
        weight_scale = initializers[weight_dq.input[1]]
        assert weight_scale.shape == (weight.shape[0],), f"{layer.name}: weights not per output channel"
        for dq in (activation_dq, weight_dq):
            zero_point = initializers[dq.input[2]]
            assert zero_point.dtype == np.int8 and not zero_point.any(), f"{layer.name}: not symmetric"
        assert len(conv.input) < 3 or conv.input[2] in initializers and initializers[conv.input[2]].dtype == np.float32


def test_only_quantized_convs_read_dequantized_activations(calibrated):
    result, model, _ = calibrated
    quantized = set(result.selection.quantized_nodes)
    dq_outputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    readers = [n for n in model.graph.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")
               and any(i in dq_outputs for i in n.input)]
    assert readers and all(n.name in quantized for n in readers), [n.name for n in readers if n.name not in quantized]
    for node in custom_nodes(model, CONTRACT):
        assert not set(node.input) & dq_outputs


def test_function_and_metadata_survive(calibrated, fp32_export):
    _, model, _ = calibrated
    source = onnx.load(fp32_export)
    assert [f.SerializeToString() for f in model.functions] == [f.SerializeToString() for f in source.functions]
    assert len(custom_nodes(model, CONTRACT)) == len(custom_nodes(source, CONTRACT)) == 4
    values = metadata.read_metadata(model)
    assert values[metadata.PRECISION] == "int8"
    assert values[metadata.SCALE] == "4" and values[metadata.CONFIG] == "tiny"
    assert values["gldfn.int8.calibration_method"] == "minmax"


def test_restore_functions_reattaches_a_dropped_function(calibrated, fp32_export, tmp_path):
    _, model, _ = calibrated
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    del stripped.functions[:]
    with pytest.raises(CalibrationError, match="without a function"):
        restore_functions(stripped, onnx.ModelProto())
    restore_functions(stripped, onnx.load(fp32_export))
    onnx.save(stripped, tmp_path / "restored.onnx")
    lr = np.random.default_rng(0).random((1, 3, 20, 24), dtype=np.float32)
    session = ort.InferenceSession(str(tmp_path / "restored.onnx"), providers=["CPUExecutionProvider"])
    assert session.run(None, {"lr": lr})[0].shape == (1, 3, 80, 96)


def test_int8_runs_in_onnx_runtime_close_to_fp32(calibrated, fp32_export):
    _, _, out = calibrated
    lr = make_calibration_set(_dataset("Set5"), 4, samples=1, patch=40, seed=3).patches
    run = lambda p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"lr": lr})[0]  # noqa: E731
    int8, fp32 = run(out / "tiny.int8.onnx"), run(fp32_export)
    assert int8.shape == fp32.shape == (1, 3, 160, 160) and np.isfinite(int8).all()
    mse = float(np.mean((np.clip(int8, 0, 1) - np.clip(fp32, 0, 1)) ** 2))
    assert 0 < mse and 10 * np.log10(1 / mse) > 30  # quantized (not identical), yet close


def test_report(calibrated, fp32_export):
    result, _, out = calibrated
    report = json.loads((out / "report.json").read_text())
    evaluation = report["evaluation"]
    assert evaluation["images"] == 8 and evaluation["setting"] == "gaussian8" and evaluation["scale"] == 4
    fp32, int8 = evaluation["fp32_vs_ground_truth"]["psnr"], evaluation["int8_vs_ground_truth"]["psnr"]
    assert evaluation["psnr_lost_db"] == pytest.approx(fp32 - int8)
    assert evaluation["int8_vs_fp32"]["psnr"] > 30
    assert report["file_bytes"]["int8_onnx"] == (out / "tiny.int8.onnx").stat().st_size
    assert report["file_bytes"]["fp32_onnx"] == fp32_export.stat().st_size
    assert report["file_bytes"]["int8_onnx"] < report["file_bytes"]["fp32_onnx"]
    assert len(report["quantization"]["quantized_layers"]) == len(result.selection.quantized) == 20
    assert report["sensitivity"] is None


def test_tensorrt_rtx_parses_and_builds_int8_on_cpu(calibrated):
    """In a fresh process, as gldfn-calibrate runs it: once a plugin library is registered (another test may
    have loaded it), TensorRT-RTX maps the custom nodes to it, and the build refuses the function bodies."""
    from gldfn_runtime.tensorrt.compat import TensorRTUnavailable, load_tensorrt

    try:
        load_tensorrt()
    except TensorRTUnavailable as exc:
        pytest.skip(f"no TensorRT / TensorRT-RTX: {exc}")

    _, _, out = calibrated
    script = ("import json, sys; from gldfn_calibration.engine_check import build_engine_on_cpu; "
              "print(json.dumps(build_engine_on_cpu(sys.argv[1]).to_dict()))")
    command = [sys.executable, "-c", script, str(out / "tiny.int8.onnx")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    check = json.loads(result.stdout.splitlines()[-1])
    assert check["plan_bytes"] > 0 and check["plugin_library"] is None
    _, model, _ = calibrated
    counts = {op: sum(n.op_type == op for n in model.graph.node) for op in ("QuantizeLinear", "DequantizeLinear")}
    # One Q per quantized input tensor (convolutions reading the same tensor share it), a DQ per weight too.
    assert check["layer_types"]["QUANTIZE"] == counts["QuantizeLinear"] >= 18
    assert check["layer_types"]["DEQUANTIZE"] == counts["DequantizeLinear"] == counts["QuantizeLinear"] + 20
    assert not {"PLUGIN", "PLUGIN_V2", "PLUGIN_V3"} & set(check["layer_types"])


def test_tensorrt_rtx_builds_int8_with_the_plugin(calibrated, plugin_library):
    from gldfn_calibration.engine_check import build_engine_on_cpu
    from gldfn_runtime.tensorrt.compat import TensorRTUnavailable, load_tensorrt

    try:
        load_tensorrt()
    except TensorRTUnavailable as exc:
        pytest.skip(f"no TensorRT / TensorRT-RTX: {exc}")
    _, model, out = calibrated
    check = build_engine_on_cpu(out / "tiny.int8.onnx", plugin_library)
    assert check.layer_types.get("PLUGIN_V3") == len(custom_nodes(model, CONTRACT)) == 4
    assert check.plan_bytes > 0


def test_sensitivity_ranks_each_quantized_layer(fp32_export, eval_images, tmp_path):
    options = CalibrationOptions(images=_dataset("BSD200"), samples=4, patch=32, method=Method.minmax,
                                 exclude=("groups.*",), eval_images=eval_images, sensitivity=True, engine_check=False)
    result = calibrate_gldfn(fp32_export, tmp_path / "m.onnx", options, tmp_path / "r.json")
    layers = [s.layer for s in result.sensitivity]
    assert sorted(layers) == sorted(layer.name for layer in result.selection.quantized)
    assert "head" in layers and "reconstruct" in layers and not any(name.startswith("groups.") for name in layers)
    losses = [s.psnr_lost_db for s in result.sensitivity]
    assert losses == sorted(losses, reverse=True)
    assert json.loads((tmp_path / "r.json").read_text())["sensitivity"][0]["layer"] == layers[0]


# ---------------------------------------------------------------- calibration data

def test_calibration_patches_from_lr_images_are_crops(tmp_path):
    shutil.copy(_dataset("Set5") / "head.png", tmp_path / "head.png")
    calibration = make_calibration_set(tmp_path, 4, samples=3, patch=24, lr_images=True, seed=1)
    assert calibration.patches.shape == (3, 3, 24, 24) and calibration.patches.dtype == np.float32
    image = read_rgb(tmp_path / "head.png").astype(np.float32) / 255
    for patch in calibration.patches.transpose(0, 2, 3, 1):
        # Candidate corners: where the patch's first pixel occurs; one of them must hold the whole patch.
        corners = zip(*np.nonzero((image[:-23, :-23] == patch[0, 0]).all(axis=2)))
        assert any(np.array_equal(image[y : y + 24, x : x + 24], patch) for y, x in corners)


def test_calibration_patches_from_hr_images_are_degraded_and_reproducible():
    folder = _dataset("Set5")
    first = make_calibration_set(folder, 4, samples=4, patch=32, seed=5)
    again = make_calibration_set(folder, 4, samples=4, patch=32, seed=5)
    other = make_calibration_set(folder, 4, samples=4, patch=32, seed=6)
    assert first.patches.shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(first.patches, again.patches)
    assert not np.array_equal(first.patches, other.patches)
    levels = first.patches * 255
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)  # 8-bit LR, as the degradation pipeline writes


# ---------------------------------------------------------------- bad input: clear error, no file

def _options(images: Path, **kw) -> CalibrationOptions:
    return CalibrationOptions(images=images, samples=2, patch=16, method=Method.minmax, engine_check=False, **kw)


def test_refuses_onnx_that_is_not_a_gldfn_export(tmp_path):
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 8, 8])])
    onnx.save(onnx.helper.make_model(graph), tmp_path / "other.onnx")
    (tmp_path / "text.onnx").write_text("not a model")
    for name, message in (("other.onnx", "is not a GLDFN export"), ("text.onnx", "not a readable ONNX file"), ("missing.onnx", "no such file")):
        with pytest.raises(CalibrationError, match=message):
            calibrate_gldfn(tmp_path / name, tmp_path / "out.onnx", _options(tmp_path), tmp_path / "r.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.onnx", "text.onnx"]


def test_refuses_fp16_and_portable_exports(fp32_export, tmp_path):
    model = onnx.load(fp32_export)
    for key, value, message in ((metadata.PRECISION, "fp16", "float32 export"), (metadata.TARGET, "portable", "--target trt")):
        changed = onnx.ModelProto()
        changed.CopyFrom(model)
        metadata.set_metadata(changed, {key: value})
        onnx.save(changed, tmp_path / f"{value}.onnx")
        with pytest.raises(CalibrationError, match=message):
            load_gldfn_export(tmp_path / f"{value}.onnx")


def test_empty_or_too_small_image_folder(fp32_export, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CalibrationError, match="no image files"):
        calibrate_gldfn(fp32_export, tmp_path / "out.onnx", _options(empty))
    small = tmp_path / "small"
    small.mkdir()
    write_image(small / "tiny.png", np.zeros((40, 50, 3), np.uint8))
    with pytest.raises(CalibrationError, match=r"smaller --patch \(at most 10\)"):
        calibrate_gldfn(fp32_export, tmp_path / "out.onnx", _options(small))
    assert not (tmp_path / "out.onnx").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.onnx")]


def test_unwritable_output_leaves_nothing(fp32_export, tmp_path):
    images = _dataset("Set5")
    with pytest.raises(OutputPathError, match="does not exist"):
        calibrate_gldfn(fp32_export, tmp_path / "missing" / "out.onnx", _options(images))
    # A report that cannot be written stops the run before the model file is kept.
    with pytest.raises(OutputPathError):
        calibrate_gldfn(fp32_export, tmp_path / "out.onnx", _options(images), tmp_path / "missing" / "r.json")
    assert list(tmp_path.iterdir()) == []


def test_read_only_output_folder(fp32_export, tmp_path, monkeypatch):
    folder = tmp_path / "read_only"
    folder.mkdir()
    real_access = os.access

    def access(path, mode, **kwargs):  # root may write anywhere: the folder is read-only where the code asks
        return False if Path(path) == folder and mode & os.W_OK else real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    with pytest.raises(OutputPathError, match="not writable"):
        calibrate_gldfn(fp32_export, folder / "out.onnx", _options(_dataset("Set5")))
    assert list(folder.iterdir()) == []


def test_scale_mismatch(fp32_export, tmp_path):
    with pytest.raises(CalibrationError, match="x4 model"):
        calibrate_gldfn(fp32_export, tmp_path / "out.onnx", _options(tmp_path, scale=2))


# ---------------------------------------------------------------- the command

def test_cli_writes_model_and_report(fp32_export, tmp_path):
    result = CliRunner().invoke(app, [
        str(fp32_export), "--images", str(_dataset("BSD200")), "--scale", "4", "--samples", "4", "--patch", "32",
        "--method", "percentile", "--exclude", "first,last", "--no-eval", "--no-engine-check",
        "-o", str(tmp_path / "m.int8.onnx"), "--report", str(tmp_path / "r.json"),
    ])
    assert result.exit_code == 0, result.output
    assert "18 convolutions in INT8" in result.output  # 20 quantizable in the tiny model, minus head and reconstruct
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["quantization"]["method"] == "percentile" and report["quantization"]["exclude"] == ["first", "last"]
    assert report["evaluation"] is None and report["file_bytes"]["int8_onnx"] == (tmp_path / "m.int8.onnx").stat().st_size


@pytest.mark.parametrize("args, message", [
    (["--exclude", "nothing.like.this"], "matches no convolution layer"),
    (["--scale", "3"], "x4 model"),
    (["--patch", "200"], "smaller --patch"),
    (["--sensitivity", "--no-eval"], "--sensitivity needs the evaluation"),
    (["--plugin", "/nonexistent/libgldfn_trt_plugins.so"], "no such file"),
])
def test_cli_bad_input_is_one_clear_line(fp32_export, tmp_path, args, message):
    result = CliRunner().invoke(app, [str(fp32_export), "--images", str(_dataset("Set5")), "-o", str(tmp_path / "m.onnx"),
                                 "--report", str(tmp_path / "r.json"), "--no-engine-check", *args])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["-o", "--report"])
def test_cli_never_writes_over_the_input_model(fp32_export, tmp_path, option):
    model = tmp_path / "m.onnx"
    model.write_bytes(fp32_export.read_bytes())
    before = model.read_bytes()
    outputs = {"-o": str(tmp_path / "m.int8.onnx"), "--report": str(tmp_path / "r.json"), option: str(model)}
    result = CliRunner().invoke(app, [str(model), "--images", str(_dataset("Set5")), "--no-engine-check", "--no-eval",
                                      *[item for pair in outputs.items() for item in pair]])
    assert result.exit_code == 1, result.output
    assert f"{option} {model} is the input model" in result.output and "_int8.onnx" in result.output
    assert model.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


# ---------------------------------------------------------------- evaluation without an evaluation set: held out

def test_held_out_images_are_a_seeded_fifth_at_most_five():
    from gldfn_calibration.data_reader import hold_out

    files = [Path(f"img{i:03d}.png") for i in range(200)]
    kept, held = hold_out(files, seed=0)
    assert len(held) == 5 and len(kept) == 195 and sorted(kept + held) == files and not set(kept) & set(held)
    assert hold_out(files, seed=0) == (kept, held) and hold_out(files, seed=1)[1] != held
    assert [len(hold_out(files[:n])[1]) for n in (2, 5, 9, 10, 24, 25, 26)] == [1, 1, 1, 2, 4, 5, 5]
    with pytest.raises(CalibrationError, match="needs at least two; pass --eval-images DIR"):
        hold_out(files[:1])


@pytest.fixture(scope="module")
def six_hr_images(tmp_path_factory) -> Path:
    """Six smooth 96 x 96 HR images: large enough for a 16-pixel LR patch at x4 and for the evaluation."""
    folder = tmp_path_factory.mktemp("hr6")
    rng = np.random.default_rng(0)
    for i in range(6):
        small = Image.fromarray(rng.integers(0, 256, size=(12, 12, 3), dtype=np.uint8))
        write_image(folder / f"img{i}.png", np.asarray(small.resize((96, 96), Image.BICUBIC)))
    return folder


def test_cli_evaluates_on_images_held_out_of_the_calibration_set(fp32_export, six_hr_images, tmp_path):
    from gldfn_calibration.data_reader import hold_out
    from gldfn_model.data.image_io import list_images

    kept, (held,) = hold_out(list_images(six_hr_images), seed=0)
    result = CliRunner().invoke(app, [str(fp32_export), "--images", str(six_hr_images), "--samples", "2", "--patch", "16",
                                      "--method", "minmax", "--no-engine-check", "-o", str(tmp_path / "m.onnx"),
                                      "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert f"from 5 of the 5 images in {six_hr_images} without the 1 held out (seed 0)" in result.output
    assert f"evaluating FP32 and INT8 on 1 of the 6 images in {six_hr_images}, held out of the calibration (seed 0: " \
           f"{held.name})" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    evaluated_on = report["evaluation"]["evaluated_on"]
    assert evaluated_on.startswith("1 of the 6 images") and evaluated_on.endswith(f"{held.name})")
    assert report["evaluation"]["images"] == 8 and report["calibration"]["same_images_as_evaluation"] is False  # 8 kernels
    assert report["evaluation"]["fp32_vs_ground_truth"]["psnr"] > 0


@pytest.mark.parametrize("args, message", [
    (["--lr"], "--lr images have no ground truth to evaluate against: pass --eval-images DIR"),
    (["--eval-images", "{images}", "--no-eval"], "--eval-images is for the evaluation that --no-eval turns off"),
])
def test_cli_evaluation_choices_that_cannot_work_are_refused(fp32_export, six_hr_images, tmp_path, args, message):
    result = CliRunner().invoke(app, [str(fp32_export), "--images", str(six_hr_images), "--patch", "16",
                                      "--no-engine-check", "-o", str(tmp_path / "m.onnx"),
                                      *[a.format(images=six_hr_images) for a in args]])
    assert result.exit_code == 1 and message in result.output, result.output
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- the two targets: TensorRT's layout and ONNX Runtime's

@pytest.fixture(scope="module")
def calibrated_for_onnxruntime(fp32_export, tmp_path_factory):
    """Through the command, as a user asks for it; minmax, every quantizable layer, no evaluation."""
    out = tmp_path_factory.mktemp("int8_ort")
    result = CliRunner().invoke(app, [
        str(fp32_export), "--images", str(_dataset("BSD200")), "--samples", "4", "--patch", "32", "--method", "minmax",
        "--exclude", "none", "--target", "onnxruntime", "--no-eval", "-o", str(out / "ort.int8.onnx"),
        "--report", str(out / "report.json"),
    ])
    assert result.exit_code == 0, result.output
    return result.output, onnx.load(out / "ort.int8.onnx"), out


def _dead_qdq(model: onnx.ModelProto) -> int:
    """Q -> DQ pairs whose DQ output nobody reads, and Q nodes nobody reads."""
    read = {name for node in model.graph.node for name in node.input} | {o.name for o in model.graph.output}
    return sum(node.op_type in ("QuantizeLinear", "DequantizeLinear") and node.output[0] not in read
               for node in model.graph.node)


def _optimized_op_counts(path: Path, tmp_path: Path) -> dict[str, int]:
    """The op types of the graph ONNX Runtime runs after its QDQ fusions (its optimized-model dump)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    counts: dict[str, int] = {}
    for node in onnx.load(tmp_path / "optimized.onnx").graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def test_onnxruntime_target_layout(calibrated_for_onnxruntime, fp32_export):
    output, model, out = calibrated_for_onnxruntime
    assert "target    onnxruntime: activations uint8 asymmetric, per tensor; bias int32" in output
    assert metadata.read_metadata(model)["gldfn.int8.target"] == "onnxruntime"
    report = json.loads((out / "report.json").read_text())["quantization"]
    assert report["target"] == "onnxruntime" and report["activations"].startswith("uint8") and report["bias"].startswith("int32")
    producer = {o: n for n in model.graph.node for o in n.output}
    readers = _consumers(model)
    initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    selection = select_layers(onnx.load(fp32_export), [])
    nodes = {n.name: n for n in model.graph.node}
    for layer in selection.quantized:
        conv = nodes[layer.node]
        activation_dq, weight_dq, bias_dq = (producer[name] for name in conv.input)
        assert initializers[activation_dq.input[2]].dtype == np.uint8, layer.name
        assert initializers[weight_dq.input[0]].dtype == np.int8 and not initializers[weight_dq.input[2]].any()
        assert initializers[bias_dq.input[0]].dtype == np.int32, layer.name
        assert [r.op_type for r in readers[conv.output[0]]] == ["QuantizeLinear"], layer.name


def test_onnxruntime_fuses_every_quantized_conv_of_its_target_only(calibrated_for_onnxruntime, calibrated, tmp_path):
    _, model, out = calibrated_for_onnxruntime
    quantized = int(metadata.read_metadata(model)["gldfn.int8.quantized_layers"])
    assert quantized == 20
    assert _optimized_op_counts(out / "ort.int8.onnx", tmp_path).get("QLinearConv") == quantized
    # TensorRT's layout (float bias, float readers of the convolutions' outputs) leaves ONNX Runtime nothing to fuse.
    _, _, trt_out = calibrated
    assert _optimized_op_counts(trt_out / "tiny.int8.onnx", tmp_path).get("QLinearConv") is None


def test_no_dead_qdq_pairs_for_either_target(calibrated_for_onnxruntime, calibrated):
    for _, model, _ in (calibrated_for_onnxruntime, calibrated):
        assert _dead_qdq(model) == 0
        assert sum(n.op_type == "QuantizeLinear" for n in model.graph.node) > 0


def test_remove_dead_qdq_removes_a_pair_nobody_reads(calibrated):
    from gldfn_calibration.quantize import remove_dead_qdq

    _, model, _ = calibrated
    changed = onnx.ModelProto()
    changed.CopyFrom(model)
    q = next(n for n in changed.graph.node if n.op_type == "QuantizeLinear")
    changed.graph.node.append(onnx.helper.make_node("DequantizeLinear", [q.output[0], q.input[1], q.input[2]], ["unread"]))
    assert _dead_qdq(changed) == 1
    assert remove_dead_qdq(changed) == 1 and _dead_qdq(changed) == 0
    assert len(changed.graph.node) == len(model.graph.node)


def test_tensorrt_target_is_stated_and_onnxruntime_files_are_refused_by_engine_builds(calibrated, calibrated_for_onnxruntime):
    from gldfn_runtime.engine.build import BuildOptions, EngineBuildError, build_plan

    _, trt_model, _ = calibrated
    assert metadata.read_metadata(trt_model)["gldfn.int8.target"] == "tensorrt"
    _, _, out = calibrated_for_onnxruntime
    report = json.loads((out / "report.json").read_text())
    assert "--target tensorrt" in report["tensorrt"]["skipped"]
    with pytest.raises(EngineBuildError, match=r"quantized for onnxruntime .*gldfn-calibrate --target tensorrt"):
        build_plan(out / "ort.int8.onnx", BuildOptions(use_plugin=False))
