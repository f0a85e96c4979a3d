"""The exported FP32 and FP16 files parse in TensorRT-RTX and build into an engine on the CPU with no plugin
loaded: the parser imports the model-local function body in place of the custom nodes."""
import json
import subprocess
import sys

import pytest
import torch

from gldfn_export.exporter import export_gldfn
from gldfn_model.network.config import get_config
from gldfn_model.network.gldfn import GLDFN

trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install -e '.[rtx]')")


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return GLDFN(get_config("tiny", 4)).eval()


# Runs in a fresh interpreter: once a plugin library is registered in a process (other tests do that),
# TensorRT-RTX's parser takes the plugin for the custom nodes even without ENABLE_PLUGIN_OVERRIDE.
CHECK_SCRIPT = r"""
import json, sys
import tensorrt_rtx as trt
path, precision = sys.argv[1], sys.argv[2]
logger = trt.Logger(trt.Logger.ERROR)
builder = trt.Builder(logger)
network = builder.create_network(0)
parser = trt.OnnxParser(network, logger)
ok = parser.parse_from_file(path)
layers = [network.get_layer(i) for i in range(network.num_layers)]
convs = [layer for layer in layers if layer.type == trt.LayerType.CONVOLUTION]
expected = trt.DataType.HALF if precision == "fp16" else trt.DataType.FLOAT
report = {
    "parsed": bool(ok),
    "errors": [parser.get_error(i).desc() for i in range(parser.num_errors)],
    "plugin_layers": sum(layer.type in (trt.LayerType.PLUGIN, trt.LayerType.PLUGIN_V2, trt.LayerType.PLUGIN_V3) for layer in layers),
    "float_io": network.get_input(0).dtype == trt.DataType.FLOAT and network.get_output(0).dtype == trt.DataType.FLOAT,
    "convs": len(convs),
    "convs_in_precision": all(layer.get_output(0).dtype == expected for layer in convs),
}
config = builder.create_builder_config()
profile = builder.create_optimization_profile()
profile.set_shape(network.get_input(0).name, (1, 3, 16, 16), (1, 3, 64, 64), (1, 3, 128, 128))
config.add_optimization_profile(profile)
plan = builder.build_serialized_network(network, config) if ok else None
report["plan_bytes"] = 0 if plan is None else plan.nbytes
print(json.dumps(report))
"""


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_parses_and_builds_on_cpu_without_plugin(tiny_model, tmp_path, precision):
    path = tmp_path / f"tiny_{precision}.onnx"
    export_gldfn(tiny_model, path, precision=precision, verify=False)
    done = subprocess.run([sys.executable, "-c", CHECK_SCRIPT, str(path), precision], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["parsed"], report["errors"]
    assert report["plugin_layers"] == 0
    assert report["float_io"]
    assert report["convs"] > 0 and report["convs_in_precision"]
    assert report["plan_bytes"] > 0
