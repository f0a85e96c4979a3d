"""FP16 export: float32 I/O, fragile parts in float32, finite on flat inputs, >= 45 dB against FP32 on Set5.

ONNX Runtime's CPU provider runs these files: where it lacks a float16 kernel it computes the op in float32 and
rounds the result back to float16, so every intermediate tensor is still stored in float16, which is where
overflow, underflow and the flat-region 0/0 would show.
"""
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from gldfn_export.exporter import FP16_MIN_PSNR_DB, export_gldfn
from gldfn_model.data.datasets import datasets_dir
from gldfn_model.data.reference_inputs import load_lr_image
from gldfn_model.evaluation.metrics import psnr
from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner
from gldfn_model.inference.torch_runner import TorchRunner
from gldfn_model.network.checkpoint import load_checkpoint, shipped_weights_path
from gldfn_model.network.config import get_config
from gldfn_model.network.gldfn import GLDFN
from gldfn_model.ops.contract import load_contract
from gldfn_model.ops.onnx_format import custom_nodes

CONTRACT = load_contract()
FLOAT, HALF = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16


@pytest.fixture(scope="module")
def tiny_fp16(tmp_path_factory):
    # Trained weights have larger activations than random ones: they are the case that could overflow.
    shipped = shipped_weights_path("tiny", 4)
    torch.manual_seed(0)
    model = load_checkpoint(shipped).build_model() if shipped else GLDFN(get_config("tiny", 4)).eval()
    path = tmp_path_factory.mktemp("fp16") / "tiny_fp16.onnx"
    result = export_gldfn(model, path, precision="fp16", config_name="tiny")
    return model, path, result


def _types(path: Path) -> tuple[onnx.ModelProto, dict[str, int]]:
    model = onnx.load(path)
    graph = onnx.shape_inference.infer_shapes(model).graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input, *graph.output]}
    types.update({i.name: i.data_type for i in graph.initializer})
    return model, types


def test_fp16_types_where_they_belong(tiny_fp16):
    _, path, _ = tiny_fp16
    model, types = _types(path)
    graph = model.graph
    assert types["lr"] == FLOAT and types["sr"] == FLOAT
    for node in custom_nodes(model, CONTRACT):
        assert [types[name] for name in node.input] == [HALF] * 3
        assert types[node.output[0]] == HALF
    by_op = lambda op: [n for n in graph.node if n.op_type == op]  # noqa: E731
    assert all(types[n.output[0]] == HALF for n in by_op("Conv"))
    # FilterNorm's statistics and division, the softmax, the bilinear skip and the final add stay float32.
    for op in ("Sqrt", "Div", "Softmax", "Resize", "ReduceMean"):
        assert by_op(op) and all(types[n.output[0]] == FLOAT for n in by_op(op)), op
    (final,) = [n for n in graph.node if "sr" in n.output]
    assert final.op_type == "Add" and [types[i] for i in final.input] == [FLOAT, FLOAT]
    assert any(i.data_type == HALF for i in graph.initializer)


def test_fp16_verification_passed(tiny_fp16):
    assert all(check.passed and check.finite for check in tiny_fp16[2].parity)


def image_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """The exporter's convention: outputs clipped to [0, 1], peak 1."""
    return psnr(np.clip(a, 0, 1), np.clip(b, 0, 1), peak=1.0)


def flat_page(height: int, width: int) -> np.ndarray:
    """An off-white page with dark 'text' strokes: large flat areas with hard edges."""
    page = np.full((1, 3, height, width), 0.96, dtype=np.float32)
    for top in range(4, height - 6, 10):
        for left in range(3, width - 8, 9):
            page[:, :, top : top + 5, left : left + 6] = 0.08
            page[:, :, top + 2, left - 1 : left + 7] = 0.08
    return page


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_fp16_finite_on_constant_colour(tiny_fp16, value):
    model, path, _ = tiny_fp16
    lr = np.full((1, 3, 24, 20), value, dtype=np.float32)
    out = OnnxRuntimeRunner(path).infer(lr)
    assert np.isfinite(out).all()
    assert image_psnr(out, TorchRunner(model).infer(lr)) >= FP16_MIN_PSNR_DB


def test_fp16_finite_on_flat_background_page(tiny_fp16):
    model, path, _ = tiny_fp16
    lr = flat_page(40, 56)
    out = OnnxRuntimeRunner(path).infer(lr)
    assert np.isfinite(out).all()
    assert image_psnr(out, TorchRunner(model).infer(lr)) >= FP16_MIN_PSNR_DB


def test_fp16_psnr_against_fp32_on_set5(tiny_fp16):
    root = datasets_dir()
    images = sorted((root / "Set5").glob("*.png")) if root else []
    if not images:
        pytest.skip("Set5 not found (../shared/datasets/Set5 or $GLDFN_DATASETS)")
    model, path, _ = tiny_fp16
    for image in images:
        lr = load_lr_image(image, 4, crop=(48, 48))
        value = image_psnr(OnnxRuntimeRunner(path).infer(lr), TorchRunner(model).infer(lr))
        assert value >= FP16_MIN_PSNR_DB, f"{image.name}: {value:.1f} dB"


def test_fp16_in_onnx_reference_evaluator(tiny_fp16):
    """A second, stricter float16 run: onnx.reference computes every op in NumPy on float16 arrays, Conv
    included, where ONNX Runtime's CPU provider falls back to float32 kernels for many ops."""
    from onnx.reference import ReferenceEvaluator

    model, path, _ = tiny_fp16
    evaluator = ReferenceEvaluator(str(path))
    root = datasets_dir()
    butterfly = root / "Set5" / "butterfly.png" if root else None
    inputs = [np.full((1, 3, 12, 10), 0.5, dtype=np.float32), flat_page(24, 30)]
    if butterfly is not None and butterfly.is_file():
        inputs.append(load_lr_image(butterfly, 4, crop=(24, 24)))
    for lr in inputs:
        (out,) = evaluator.run(None, {"lr": lr})
        assert out.dtype == np.float32 and np.isfinite(out).all()
        assert image_psnr(out, TorchRunner(model).infer(lr)) >= FP16_MIN_PSNR_DB


def test_converting_the_fp32_file_gives_the_fp16_export(tiny_onnx):
    """gldfn-trt build --precision fp16 converts an FP32 file with the marks the exporter left on its nodes: the
    result is the FP16 export, node for node and weight for weight (torch-free: no module hierarchy needed)."""
    from gldfn_model.ops.onnx_format import PRECISION, read_metadata
    from gldfn_model.ops.onnx_fp16 import convert_to_fp16

    fp32, fp16 = onnx.load(str(tiny_onnx["fp32"])), onnx.load(str(tiny_onnx["fp16"]))
    converted = convert_to_fp16(fp32, source=str(tiny_onnx["fp32"]))
    assert read_metadata(converted)[PRECISION] == "fp16"
    assert converted.graph.SerializeToString() == fp16.graph.SerializeToString()
    assert list(converted.functions) == list(fp16.functions)


def test_fp16_conversion_refuses_unmarked_and_non_fp32_files(tiny_onnx):
    from gldfn_model.ops.onnx_fp16 import Fp16ConversionError, convert_to_fp16

    with pytest.raises(Fp16ConversionError, match="is fp16; only an FP32 export"):
        convert_to_fp16(onnx.load(str(tiny_onnx["fp16"])), source="x.onnx")
    unmarked = onnx.load(str(tiny_onnx["fp32"]))
    for node in unmarked.graph.node:
        del node.metadata_props[:]
    with pytest.raises(Fp16ConversionError, match="marks no nodes"):
        convert_to_fp16(unmarked, source="old.onnx")
