"""The exported FP32 and FP16 files parse in TensorRT-RTX and build into an engine on the CPU with no plugin
loaded: the parser imports the model-local function body in place of the custom nodes."""
import pytest
import torch

from gldfn_export.exporter import export_gldfn
from gldfn_model.config import get_config
from gldfn_model.network import GLDFN

trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install -e '.[rtx]')")


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return GLDFN(get_config("tiny", 4)).eval()


def parse(path):
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    ok = parser.parse_from_file(str(path))
    errors = [parser.get_error(i).desc() for i in range(parser.num_errors)]
    return builder, network, ok, errors, parser


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_parses_and_builds_on_cpu_without_plugin(tiny_model, tmp_path, precision):
    path = tmp_path / f"tiny_{precision}.onnx"
    export_gldfn(tiny_model, path, precision=precision, verify=False)
    builder, network, ok, errors, _parser = parse(path)
    assert ok, errors
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    assert not [layer for layer in layers if layer.type in (trt.LayerType.PLUGIN, trt.LayerType.PLUGIN_V2, trt.LayerType.PLUGIN_V3)]
    assert network.get_input(0).dtype == trt.DataType.FLOAT and network.get_output(0).dtype == trt.DataType.FLOAT
    convs = [layer for layer in layers if layer.type == trt.LayerType.CONVOLUTION]
    expected = trt.DataType.HALF if precision == "fp16" else trt.DataType.FLOAT
    assert convs and all(layer.get_output(0).dtype == expected for layer in convs)

    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape(network.get_input(0).name, (1, 3, 16, 16), (1, 3, 64, 64), (1, 3, 128, 128))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None and plan.nbytes > 0
