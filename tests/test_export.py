"""FP32 export: ONNX Runtime parity, custom nodes as the op contract says, metadata, portable target."""

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from gldfn_export.exporter import export_gldfn, exporter_version
from gldfn_export.ldf_function import ldf_node_model
from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner
from gldfn_model.inference.torch_runner import TorchRunner
from gldfn_model.network.config import GLDFNConfig, get_config
from gldfn_model.network.gldfn import GLDFN
from gldfn_model.ops import onnx_format as metadata
from gldfn_model.ops.contract import load_contract
from gldfn_model.ops.ldf_op import local_dynamic_filter_reference
from gldfn_model.ops.onnx_format import attribute_values, custom_nodes

CONTRACT = load_contract()


def single_node_model(kernel_size: int, dilation: int, elem_type: int) -> onnx.ModelProto:
    return ldf_node_model(CONTRACT, kernel_size, dilation, elem_type, channels=4)


@pytest.mark.parametrize(("kernel_size", "dilation"), [(1, 1), (3, 1), (5, 2), (7, 1), (3, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_function_body_matches_reference(kernel_size, dilation, dtype):
    elem_type = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    model = single_node_model(kernel_size, dilation, elem_type)
    onnx.checker.check_model(model, full_check=True)
    taps = kernel_size * kernel_size
    rng = np.random.default_rng(kernel_size * 10 + dilation)
    for size in [(9, 11), (2, 3)]:  # the second is smaller than the window's reach for some cases
        x, s, c = (rng.standard_normal(shape).astype(dtype) for shape in [(2, 4, *size), (2, taps, *size), (2, 4, taps)])
        expected = local_dynamic_filter_reference(*(torch.from_numpy(a.astype(np.float32)) for a in (x, s, c)), kernel_size, dilation).numpy()
        (actual,) = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x, "s": s, "c": c})
        assert actual.dtype == dtype
        atol = CONTRACT.tolerance(np.dtype(dtype).name) * float(expected.max() - expected.min())
        np.testing.assert_allclose(actual.astype(np.float32), expected, rtol=0, atol=atol)


def tiny_model(seed: int = 0, **overrides) -> GLDFN:
    torch.manual_seed(seed)
    config = get_config("tiny", overrides.pop("scale", 4))
    return GLDFN(GLDFNConfig(**{**config.to_dict(), **overrides})).eval()


@pytest.fixture(scope="module")
def tiny_trt(tmp_path_factory):
    model = tiny_model()
    path = tmp_path_factory.mktemp("export") / "tiny.onnx"
    result = export_gldfn(model, path, config_name="tiny", checkpoint_sha256="ab" * 32)
    return model, path, result


@pytest.fixture(scope="module")
def tiny_portable(tmp_path_factory, tiny_trt):
    model = tiny_trt[0]
    path = tmp_path_factory.mktemp("export") / "tiny_portable.onnx"
    return model, path, export_gldfn(model, path, target="portable", config_name="tiny", verify=False)


@pytest.mark.parametrize("size", [(23, 31), (64, 48)])
def test_fp32_parity_in_onnx_runtime(tiny_trt, size):
    model, path, _ = tiny_trt
    lr = np.random.default_rng(1).random((1, 3, *size), dtype=np.float32)
    out = OnnxRuntimeRunner(path).infer(lr)
    assert out.shape == (1, 3, size[0] * 4, size[1] * 4)
    np.testing.assert_allclose(out, TorchRunner(model).infer(lr), rtol=0, atol=1e-4)


def test_built_in_verification_passed(tiny_trt):
    _, _, result = tiny_trt
    assert len(result.parity) == 2 and all(c.passed for c in result.parity)
    assert max(c.max_abs for c in result.parity) <= 1e-4


def test_one_custom_node_per_ddfm_with_contract_attributes(tiny_trt):
    model, path, result = tiny_trt
    onnx_model = onnx.load(path)
    nodes = custom_nodes(onnx_model, CONTRACT)
    assert len(nodes) == model.config.num_modules == result.custom_node_count
    for node in nodes:
        values = attribute_values(node)
        assert sorted(values) == sorted(CONTRACT.attribute_names)
        assert values["kernel_size"] == model.config.ldf_kernel_size
        assert values["dilation"] == model.config.ldf_dilation
        # TensorRT finds the plugin creator by these two; they must equal the node's domain and opset version.
        assert values["plugin_namespace"] == node.domain == CONTRACT.domain
        assert values["plugin_version"] == str(CONTRACT.version)
        assert len(node.input) == len(CONTRACT.input_names)
    imports = {o.domain: o.version for o in onnx_model.opset_import}
    assert imports[CONTRACT.domain] == CONTRACT.version


def test_model_local_function_defines_the_op(tiny_trt):
    onnx_model = onnx.load(tiny_trt[1])
    (function,) = onnx_model.functions
    assert (function.domain, function.name) == (CONTRACT.domain, CONTRACT.name)
    assert list(function.input) == CONTRACT.input_names
    assert set(function.attribute) == set(CONTRACT.attribute_names)
    assert all(node.domain in ("", "ai.onnx") for node in function.node)


def test_checker_and_shape_inference_give_custom_node_shapes(tiny_trt):
    onnx_model = onnx.load(tiny_trt[1])
    onnx.checker.check_model(onnx_model, full_check=True)
    del onnx_model.graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(onnx_model, strict_mode=True)
    shapes = {v.name: v.type.tensor_type for v in inferred.graph.value_info}
    for node in custom_nodes(onnx_model, CONTRACT):
        out = shapes[node.output[0]]
        assert out.elem_type == onnx.TensorProto.FLOAT
        assert [d.dim_value for d in out.shape.dim[:2]] == [1, 32]
        assert len(out.shape.dim) == 4


def test_io_names_and_dynamic_height_width(tiny_trt):
    graph = onnx.load(tiny_trt[1]).graph
    (lr,), (sr,) = graph.input, graph.output
    assert (lr.name, sr.name) == ("lr", "sr")
    dims = lr.type.tensor_type.shape.dim
    assert dims[0].dim_value == 1 and dims[1].dim_value == 3
    assert dims[2].dim_param and dims[3].dim_param


def test_metadata(tiny_trt):
    model, path, _ = tiny_trt
    props = metadata.read_metadata(onnx.load(path))
    assert props[metadata.SCALE] == str(model.config.scale)
    assert props[metadata.CONFIG] == "tiny"
    assert props[metadata.CHECKPOINT_SHA256] == "ab" * 32
    assert props[metadata.OP_CONTRACT_VERSION] == str(CONTRACT.contract_version)
    assert props[metadata.EXPORTER_VERSION] == exporter_version()
    assert props[metadata.PRECISION] == "fp32" and props[metadata.TARGET] == "trt"


def test_portable_has_no_custom_nodes_and_matches(tiny_portable):
    model, path, result = tiny_portable
    onnx_model = onnx.load(path)
    onnx.checker.check_model(onnx_model, full_check=True)
    assert result.custom_node_count == 0 and len(onnx_model.functions) == 0
    assert all(node.domain in ("", "ai.onnx") for node in onnx_model.graph.node)
    assert CONTRACT.domain not in {o.domain for o in onnx_model.opset_import}
    lr = np.random.default_rng(2).random((1, 3, 19, 26), dtype=np.float32)
    np.testing.assert_allclose(OnnxRuntimeRunner(path).infer(lr), TorchRunner(model).infer(lr), rtol=0, atol=1e-4)


def test_other_kernel_size_dilation_and_batch(tmp_path):
    model = tiny_model(groups=1, modules_per_group=2, ldf_kernel_size=5, ldf_dilation=2, scale=2)
    path = tmp_path / "k5d2.onnx"
    export_gldfn(model, path, batch=2, verify=False)
    nodes = custom_nodes(onnx.load(path), CONTRACT)
    assert {(attribute_values(n)["kernel_size"], attribute_values(n)["dilation"]) for n in nodes} == {(5, 2)}
    lr = np.random.default_rng(3).random((3, 3, 21, 17), dtype=np.float32)
    runner, reference = OnnxRuntimeRunner(path), TorchRunner(model).infer(lr)
    assert runner.fixed_batch == 2
    # 2 images fill the fixed batch; 1 and 3 run in chunks of 2, the last filled up with copies and cut off again
    for count in (2, 1, 3):
        np.testing.assert_allclose(runner.infer(lr[:count]), reference[:count], rtol=0, atol=1e-4)


def test_model_without_local_filters_exports_without_function(tmp_path):
    model = tiny_model(local_dynamic=False)
    path = tmp_path / "no_ldf.onnx"
    result = export_gldfn(model, path, verify=True)
    assert result.custom_node_count == 0 and not onnx.load(path).functions


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_paper_config_exports_and_verifies(tmp_path, precision):
    """The paper's network (5 x 10 DDFMs): built-in verification must pass at the paper's depth."""
    torch.manual_seed(0)
    model = GLDFN(get_config("paper", 4)).eval()
    result = export_gldfn(model, tmp_path / "paper.onnx", precision=precision, config_name="paper")
    assert result.custom_node_count == 50
    assert all(check.passed for check in result.parity)
