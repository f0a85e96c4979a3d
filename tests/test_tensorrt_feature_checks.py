"""Builds check TensorRT's features instead of assuming its version: the ONNX parser's ENABLE_PLUGIN_OVERRIDE
exists only from TensorRT 10.15 (and in TensorRT-RTX). With TensorRT-RTX's real builder and parser, seen through
a module that lacks the flag as TensorRT 10.0-10.14 do, the engine build and the calibration's engine check
still turn every LDF node into the plugin."""
from __future__ import annotations

import types

import pytest

from gldfn_runtime.plugin import library as plugin_library_module
from gldfn_runtime.tensorrt import backend as backend_module
from gldfn_runtime.tensorrt import compat as tensorrt_compat
from gldfn_runtime.tensorrt.compat import TensorRTBackend, TensorRTUnavailable, enable_plugin_override, load_tensorrt

FLAG = "ENABLE_PLUGIN_OVERRIDE"


def _rtx() -> TensorRTBackend:
    try:
        return load_tensorrt("tensorrt_rtx")
    except TensorRTUnavailable as error:
        pytest.skip(f"TensorRT-RTX is not installed (pip install 'gldfn-trt[rtx]'): {error}")


class ParserFlagsBefore1015(types.ModuleType):
    """A TensorRT module whose OnnxParserFlag has no ENABLE_PLUGIN_OVERRIDE (TensorRT 10.0-10.14's Python API);
    everything else is the real module's."""

    def __init__(self, real: types.ModuleType) -> None:
        super().__init__(real.__name__)
        self._real = real
        members = {name: value for name, value in real.OnnxParserFlag.__members__.items() if name != FLAG}
        self.OnnxParserFlag = types.SimpleNamespace(**members)

    def __getattr__(self, name: str):
        return getattr(self._real, name)


@pytest.fixture
def tensorrt_without_the_flag(monkeypatch) -> TensorRTBackend:
    """Every load_tensorrt of the runtime returns TensorRT-RTX seen through ParserFlagsBefore1015."""
    old = TensorRTBackend(ParserFlagsBefore1015(_rtx().module), "tensorrt_rtx")
    assert not hasattr(old.module.OnnxParserFlag, FLAG)
    for module in (tensorrt_compat, backend_module, plugin_library_module):
        monkeypatch.setattr(module, "load_tensorrt", lambda name=None: old)
    return old


def test_the_flag_is_set_where_the_parser_has_it():
    trt = _rtx().module
    parser = trt.OnnxParser(trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network(0), trt.Logger(trt.Logger.ERROR))
    assert enable_plugin_override(parser, trt)
    assert parser.get_flag(trt.OnnxParserFlag.ENABLE_PLUGIN_OVERRIDE)


def test_without_the_flag_nothing_is_set():
    trt = ParserFlagsBefore1015(_rtx().module)
    parser = trt.OnnxParser(trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network(0), trt.Logger(trt.Logger.ERROR))
    assert not enable_plugin_override(parser, trt)
    assert not parser.get_flag(trt._real.OnnxParserFlag.ENABLE_PLUGIN_OVERRIDE)


def test_engine_build_uses_the_plugin_without_the_flag(tensorrt_without_the_flag, plugin_library, tiny_onnx, tmp_path):
    from gldfn_runtime.engine.build import BuildOptions, build_engine, read_onnx_info

    options = BuildOptions(plugin=plugin_library, backend="tensorrt-rtx", min_size=(8, 8), opt_size=(16, 16),
                           max_size=(32, 32), compute_capabilities=("SM86",))
    result = build_engine(tiny_onnx["fp32"], tmp_path / "tiny.engine", options, cache_dir=tmp_path / "cache")
    nodes = read_onnx_info(tiny_onnx["fp32"]).custom_nodes
    assert nodes > 0 and len(result.sidecar.plugin_layers) == nodes
    assert result.engine_path.stat().st_size > 0


def test_calibration_engine_check_uses_the_plugin_without_the_flag(tensorrt_without_the_flag, plugin_library,
                                                                   tiny_onnx):
    from gldfn_calibration.engine_check import build_engine_on_cpu
    from gldfn_runtime.engine.build import read_onnx_info

    check = build_engine_on_cpu(tiny_onnx["fp32"], plugin_library)
    assert check.layer_types.get("PLUGIN_V3") == read_onnx_info(tiny_onnx["fp32"]).custom_nodes
    assert check.plan_bytes > 0
