"""libgldfn_trt_plugins.so on a machine without a GPU: it builds from the CMake project, exports only the
TensorRT entry points, behaves through its real interface (creator, validation, serialization, formats), and
TensorRT-RTX loads it, parses ONNX plugin nodes into PLUGIN_V3 layers and builds engines on the CPU."""
from __future__ import annotations

import functools
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PLUGIN_BUILD_FOLDER, PLUGIN_TEST_CUDA_ARCHS, build_marker_library
from onnx import TensorProto, helper
from typer.testing import CliRunner

from gldfn_model.common.hashing import file_sha256 as sha256_file
from gldfn_model.ops.contract import load_contract
from gldfn_model.ops.onnx_format import custom_nodes
from gldfn_runtime.cli.main import app
from gldfn_runtime.plugin import library as plugin_library
from gldfn_runtime.plugin.build import find_nvcc, find_tensorrt_headers
from gldfn_runtime.plugin.library import (
    LIBRARY_ENV,
    LIBRARY_FILENAME,
    PluginLibraryError,
    check_driver_supports,
    find_engine_plugin,
    find_plugin_library,
    library_cuda_runtime,
)
from gldfn_runtime.tensorrt.compat import TensorRTUnavailable, load_tensorrt

CONTRACT = load_contract()


def _harness_module():
    spec = importlib.util.spec_from_file_location(
        "plugin_harness", plugin_library.PLUGIN_SOURCE_DIR / "tests" / "plugin_harness.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("plugin_harness", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def built_library(tmp_path_factory) -> Path:
    """The library built through `gldfn-trt plugin build` into a session folder."""
    if find_tensorrt_headers() is None:
        pytest.skip("TensorRT headers (NvInferRuntime.h) are not installed: run ../shared/tools/install-trt-headers "
                    "<git dir of NVIDIA/TensorRT> or set TENSORRT_ROOT")
    build_dir = tmp_path_factory.getbasetemp() / PLUGIN_BUILD_FOLDER
    result = CliRunner().invoke(app, ["plugin", "build", "--build-dir", str(build_dir), "--cuda-archs", PLUGIN_TEST_CUDA_ARCHS])
    assert result.exit_code == 0, result.output
    library = Path(result.output.strip().splitlines()[-1])
    assert library == (build_dir / LIBRARY_FILENAME).resolve() and library.is_file()
    return library


@pytest.fixture(scope="module")
def harness(built_library, tmp_path_factory):
    module = _harness_module()
    path = module.compile_harness(tmp_path_factory.mktemp("harness"), find_tensorrt_headers())
    return module.PluginHarness(path, built_library, CONTRACT.name, CONTRACT.plugin_version, CONTRACT.plugin_namespace)


@pytest.fixture(scope="module")
def trt(built_library):
    try:
        backend = load_tensorrt()
    except TensorRTUnavailable as error:
        pytest.skip(f"no TensorRT Python package: {error}")
    plugin_library.load_plugin_library(built_library)
    return backend.module


# --- the shared object -------------------------------------------------------------------------------------

def test_library_exports_only_the_entry_points_and_needs_no_tensorrt(built_library):
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(built_library)], capture_output=True, text=True, check=True)
    exported = sorted(line.split()[-1] for line in symbols.stdout.splitlines() if " T " in line)
    assert exported == ["getCreators", "setLoggerFinder"]
    needed = subprocess.run(["readelf", "-d", str(built_library)], capture_output=True, text=True, check=True).stdout
    for library in ("libnvinfer", "libtensorrt", "libcudart"):
        assert library not in needed, f"{built_library.name} links {library}"


def test_library_records_its_cuda_runtime_and_a_too_old_driver_is_refused_at_load(built_library):
    version = subprocess.run([str(find_nvcc()), "--version"], capture_output=True, text=True, check=True).stdout
    release = re.search(r"release (\d+)\.(\d+)", version)
    cudart = int(release[1]) * 1000 + int(release[2]) * 10  # CUDART_VERSION of the toolkit that built it
    assert library_cuda_runtime(built_library) == cudart
    check_driver_supports(built_library, cudart, cudart)  # the same CUDA: fine
    check_driver_supports(built_library, cudart, None)  # no driver here: nothing to compare with
    older = (cudart // 1000 - 1) * 1000 + 40  # e.g. CUDA 12.4, a 550 driver's, for a CUDA 13 build
    with pytest.raises(PluginLibraryError, match=rf"built with CUDA {cudart // 1000}\.\d+, but this NVIDIA driver "
                                                 rf"supports CUDA up to {cudart // 1000 - 1}\.4: .*first enqueue"):
        check_driver_supports(built_library, cudart, older)


def test_plugin_build_says_when_cmake_is_missing(tmp_path):
    result = CliRunner().invoke(app, ["plugin", "build", "--build-dir", str(tmp_path / "b")], env={"PATH": ""})
    assert result.exit_code == 1
    assert "cmake is not on PATH" in result.output


def test_runtime_finds_the_library_in_the_default_build_folder(built_library, monkeypatch):
    monkeypatch.delenv(plugin_library.LIBRARY_ENV, raising=False)
    monkeypatch.setattr(plugin_library, "DEFAULT_BUILD_DIR", built_library.parent)
    assert find_plugin_library() == built_library
    monkeypatch.setattr(plugin_library, "DEFAULT_BUILD_DIR", built_library.parent / "absent")
    with pytest.raises(PluginLibraryError, match="gldfn-trt plugin build"):
        find_plugin_library()
    monkeypatch.setenv(plugin_library.LIBRARY_ENV, str(built_library))
    assert find_plugin_library() == built_library


def test_an_engine_never_loads_the_library_its_sidecar_names(tmp_path, monkeypatch):
    """The sidecar's path is never used; the library found as usual must have the sidecar's SHA-256."""
    marker = tmp_path / "ran"
    crafted = build_marker_library(tmp_path, marker)
    subprocess.run([sys.executable, "-c", f"import ctypes; ctypes.CDLL({str(crafted)!r})"], check=True)
    assert marker.is_dir()  # loading the crafted library does leave the marker
    marker.rmdir()
    other = build_marker_library(tmp_path, tmp_path / "other-ran", "other.so")
    recorded = {"path": str(crafted), "sha256": sha256_file(crafted), "embedded": False}
    engine = tmp_path / "model.engine"

    monkeypatch.setenv(LIBRARY_ENV, str(other))
    with pytest.raises(PluginLibraryError) as mismatch:
        find_engine_plugin(recorded, engine)
    for part in (str(other), f"${LIBRARY_ENV}", sha256_file(other)[:16], str(crafted), recorded["sha256"][:16],
                 str(engine)):
        assert part in str(mismatch.value)
    monkeypatch.setenv(LIBRARY_ENV, str(tmp_path / "absent.so"))
    with pytest.raises(PluginLibraryError, match=r"needs the plugin library it was built with .*sidecar is not loaded"):
        find_engine_plugin(recorded, engine)
    assert find_engine_plugin({**recorded, "embedded": True}, engine) is None
    assert find_engine_plugin(None, engine) is None
    assert not marker.exists()
    assert find_engine_plugin(recorded, engine, other.parent / "crafted.so") == crafted.resolve()  # named by the user


# --- the plugin through its real interface (no TensorRT, no GPU) --------------------------------------------

def test_creator_matches_the_op_contract(harness):
    int_attributes = [a["name"] for a in CONTRACT.raw["attributes"] if a["type"] == "int"]
    assert harness.field_names() == int_attributes


@pytest.mark.parametrize(("kernel_size", "dilation"), [(4, 1), (9, 1), (-3, 1), (3, 0), (3, 17)])
def test_invalid_attributes_fail_creation_with_a_logged_reason(harness, kernel_size, dilation):
    harness.take_log()
    assert not harness.create(kernel_size, dilation)
    log = harness.take_log()
    bad = "kernel_size" if kernel_size not in CONTRACT.attribute("kernel_size")["allowed"] else "dilation"
    assert f"{bad}={kernel_size if bad == 'kernel_size' else dilation}" in log
    assert CONTRACT.name in log


@pytest.mark.parametrize(("kernel_size", "dilation"), [(1, 1), (3, 1), (5, 2), (7, 16)])
def test_serialization_round_trips_from_build_to_runtime_phase(harness, kernel_size, dilation):
    plugin = harness.create(kernel_size, dilation)
    assert plugin
    restored, k, d = harness.roundtrip(plugin)
    assert restored, harness.take_log()
    assert (k, d) == (kernel_size, dilation)
    harness.destroy(restored)
    harness.destroy(plugin)


def test_formats_and_types_keep_all_tensors_in_one_linear_type(harness):
    h = _harness_module()
    f32, f16, i32 = h.DATA_TYPES["float32"], h.DATA_TYPES["float16"], h.DATA_TYPES["int32"]
    linear = [h.FORMAT_LINEAR] * 4
    plugin = harness.create(3, 1)
    try:
        for dtype in (f32, f16):
            assert all(harness.supports(plugin, pos, [dtype] * 4, linear) for pos in range(4))
            assert harness.output_type(plugin, [dtype] * 3) == dtype
        assert not harness.supports(plugin, 0, [i32] * 4, linear)
        assert not harness.supports(plugin, 2, [f16, f16, f32, f16], linear)
        assert not harness.supports(plugin, 3, [f32, f32, f32, f16], linear)
        assert not harness.supports(plugin, 0, [f32] * 4, [h.FORMAT_HWC8] + linear[1:])
        assert harness.output_type(plugin, [f16, f32, f16]) == -1
        assert harness.shape_change(plugin, "float16", (2, 5, 7, 9), taps=9) == 0
        harness.take_log()
        assert harness.shape_change(plugin, "float16", (2, 5, 7, 9), taps=25) != 0
        assert "taps" in harness.take_log()
    finally:
        harness.destroy(plugin)


def test_enqueue_without_a_gpu_fails_with_a_logged_cuda_error(harness):
    if Path("/dev/nvidiactl").exists():
        pytest.skip("a GPU driver is present: fake device pointers would reach a real kernel (gpu_check.sh covers enqueue)")
    plugin = harness.create(3, 1)
    prepared = harness.prepare(plugin, "float16", (1, 4, 8, 8), 3)
    try:
        harness.take_log()
        assert harness.enqueue(prepared, 256, 512, 768, 1024, 0) != 0
        assert "kernel launch failed" in harness.take_log()
    finally:
        harness.release(prepared)
        harness.destroy(plugin)


# --- TensorRT-RTX: registry, ONNX parser, CPU engine build --------------------------------------------------

def ldf_onnx(dtype: int, layers: list[tuple[int, int]], channels: int = 8, height: int = 17, width: int = 23):
    """A model of chained GLDFN_LocalDynamicFilter nodes (no function body: only the plugin can run them)."""
    inputs = [helper.make_tensor_value_info("x", dtype, [1, channels, height, width])]
    nodes, current = [], "x"
    for i, (k, d) in enumerate(layers):
        inputs += [helper.make_tensor_value_info(f"spatial{i}", dtype, [1, k * k, height, width]),
                   helper.make_tensor_value_info(f"channel{i}", dtype, [1, channels, k * k])]
        nodes.append(helper.make_node(
            CONTRACT.name, [current, f"spatial{i}", f"channel{i}"], [f"y{i}"], name=f"ldf{i}", domain=CONTRACT.domain,
            kernel_size=k, dilation=d, **CONTRACT.plugin_lookup_attributes))
        current = f"y{i}"
    graph = helper.make_graph(nodes, "ldf", inputs, [helper.make_tensor_value_info(current, dtype, [1, channels, height, width])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid(CONTRACT.domain, CONTRACT.version)])


@functools.cache
def _logger(trt):
    return trt.Logger(trt.Logger.ERROR)  # TensorRT keeps the first builder's logger for the process anyway


def parse_and_build(trt, model_bytes: bytes, plugins_to_serialize: list[str] | None = None,
                    profile_shapes: dict[str, tuple[tuple[int, ...], ...]] | None = None):
    """(network, serialized plan, parser errors) for an ONNX model parsed with ENABLE_PLUGIN_OVERRIDE."""
    builder = trt.Builder(_logger(trt))
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, _logger(trt))
    parser.set_flag(trt.OnnxParserFlag.ENABLE_PLUGIN_OVERRIDE)
    if not parser.parse(model_bytes):
        return network, None, [parser.get_error(i).desc() for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    if profile_shapes:
        profile = builder.create_optimization_profile()
        for name, (low, opt, high) in profile_shapes.items():
            profile.set_shape(name, low, opt, high)
        config.add_optimization_profile(profile)
    if plugins_to_serialize:
        config.plugins_to_serialize = plugins_to_serialize
    return network, builder.build_serialized_network(network, config), []


def plugin_layers(trt, network) -> list:
    return [network.get_layer(i) for i in range(network.num_layers) if network.get_layer(i).type == trt.LayerType.PLUGIN_V3]


def test_registry_loads_the_library_and_registers_the_creator(trt, built_library):
    creator = trt.get_plugin_registry().get_creator(CONTRACT.name, CONTRACT.plugin_version, CONTRACT.plugin_namespace)
    assert creator is not None
    assert [f.name for f in creator.field_names] == ["kernel_size", "dilation"]
    assert plugin_library.load_plugin_library(built_library) == built_library  # a second load is a no-op


def test_loading_a_second_copy_reuses_the_registered_creator(trt, built_library, tmp_path):
    copy = tmp_path / LIBRARY_FILENAME
    copy.write_bytes(built_library.read_bytes())
    with pytest.warns(UserWarning, match="already registered"):
        assert plugin_library.load_plugin_library(copy) == copy.resolve()


@pytest.mark.parametrize(("dtype", "trt_type"), [(TensorProto.FLOAT, "FLOAT"), (TensorProto.FLOAT16, "HALF")])
def test_onnx_plugin_nodes_parse_to_plugin_v3_layers_and_build_on_cpu(trt, built_library, dtype, trt_type):
    network, plan, errors = parse_and_build(trt, ldf_onnx(dtype, [(3, 1), (5, 2)]).SerializeToString())
    assert not errors
    layers = plugin_layers(trt, network)
    assert [layer.name for layer in layers] == ["ldf0", "ldf1"] and network.num_layers == 2
    assert network.get_output(0).dtype == getattr(trt.DataType, trt_type)
    assert plan is not None and plan.nbytes > 0
    _, embedded, _ = parse_and_build(trt, ldf_onnx(dtype, [(3, 1)]).SerializeToString(), [str(built_library)])
    assert embedded is not None
    assert embedded.nbytes > built_library.stat().st_size  # the library travels inside the plan


def test_onnx_node_with_invalid_attribute_fails_to_parse_without_crashing(trt):
    network, plan, errors = parse_and_build(trt, ldf_onnx(TensorProto.FLOAT, [(4, 1)]).SerializeToString())
    assert plan is None and errors


def test_add_plugin_v3_one_layer_network_builds(trt):
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    network = builder.create_network(0)
    if not hasattr(network, "add_plugin_v3"):
        pytest.skip(f"{trt.__name__} {trt.__version__}'s Python network API has no add_plugin_v3 (the ONNX tests cover the layer)")
    import numpy as np

    creator = trt.get_plugin_registry().get_creator(CONTRACT.name, CONTRACT.plugin_version, CONTRACT.plugin_namespace)
    fields = trt.PluginFieldCollection([
        trt.PluginField("kernel_size", np.array([3], np.int32), trt.PluginFieldType.INT32),
        trt.PluginField("dilation", np.array([1], np.int32), trt.PluginFieldType.INT32)])
    plugin = creator.create_plugin("ldf", fields, trt.TensorRTPhase.BUILD)
    x = network.add_input("x", trt.float16, (1, 4, 9, 11))
    spatial = network.add_input("spatial", trt.float16, (1, 9, 9, 11))
    channel = network.add_input("channel", trt.float16, (1, 4, 9))
    layer = network.add_plugin_v3([x, spatial, channel], [], plugin)
    network.mark_output(layer.get_output(0))
    assert tuple(layer.get_output(0).shape) == (1, 4, 9, 11)
    assert builder.build_serialized_network(network, builder.create_builder_config()) is not None


# --- a real exported GLDFN ---------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["fp32", "fp16"])
def exported_tiny(request, tmp_path_factory):
    import onnx
    import torch

    from gldfn_export.exporter import export_gldfn
    from gldfn_model.network.config import get_config
    from gldfn_model.network.gldfn import GLDFN

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("export") / f"tiny_{request.param}.onnx"
    export_gldfn(GLDFN(get_config("tiny")), path, precision=request.param, target="trt", verify=False)
    return request.param, path, onnx.load(path)


@pytest.mark.parametrize("embed_library", [False, True], ids=["library-loaded", "plugins_to_serialize"])
def test_exported_gldfn_parses_one_plugin_layer_per_ldf_node_and_builds_on_cpu(trt, built_library, exported_tiny, embed_library):
    precision, path, model = exported_tiny
    ldf_nodes = custom_nodes(model, CONTRACT)
    assert ldf_nodes and any(f.name == CONTRACT.name for f in model.functions)  # the function ORT would inline
    lr = model.graph.input[0].name
    network, plan, errors = parse_and_build(
        trt, path.read_bytes(), [str(built_library)] if embed_library else None,
        {lr: ((1, 3, 16, 16), (1, 3, 48, 48), (1, 3, 96, 96))})
    assert not errors
    layers = plugin_layers(trt, network)
    assert len(layers) == len(ldf_nodes)
    expected = trt.DataType.HALF if precision == "fp16" else trt.DataType.FLOAT
    assert all(layer.get_input(0).dtype == expected for layer in layers)
    assert plan is not None
    if embed_library:
        assert plan.nbytes > built_library.stat().st_size
