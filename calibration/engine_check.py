"""Does a (quantized) GLDFN file parse and build into a TensorRT engine? TensorRT-RTX builds ahead of time on a
CPU-only machine, so this runs anywhere TensorRT-RTX is installed. With the plugin library the custom nodes
become the plugin (``ENABLE_PLUGIN_OVERRIDE``); without it the parser builds their ONNX function bodies."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gldfn_calibration.errors import CalibrationError

PROFILE_LR = {"min": (16, 16), "opt": (64, 64), "max": (128, 128)}
PLUGIN_LAYER_TYPES = {"PLUGIN", "PLUGIN_V2", "PLUGIN_V3"}


@dataclass
class EngineCheck:
    backend: str
    plugin_library: str | None  # None: the custom nodes were built from their function bodies
    layer_types: dict[str, int]
    plan_bytes: int
    build_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "plugin_library": self.plugin_library,
                "custom_nodes_as": "plugin" if self.plugin_library else "ONNX function body (no plugin library)",
                "layer_types": self.layer_types, "plan_bytes": self.plan_bytes, "build_seconds": round(self.build_seconds, 2)}


def find_plugin() -> Path | None:
    """The plugin library where gldfn-trt would find it, or None when it is not built."""
    from gldfn_runtime.plugin_library import PluginLibraryError, find_plugin_library

    try:
        return find_plugin_library()
    except PluginLibraryError:
        return None


def build_engine_on_cpu(path: str | Path, plugin_library: str | Path | None = None) -> EngineCheck:
    """Parse ``path`` and build a serialized engine in memory (nothing is written); raise CalibrationError with
    the parser's / builder's messages when either fails, TensorRTUnavailable when no TensorRT imports."""
    from gldfn_runtime.tensorrt_compat import enable_plugin_override, load_tensorrt

    backend = load_tensorrt()
    trt = backend.module
    logger = trt.Logger(trt.Logger.ERROR)
    library = None
    if plugin_library is not None:
        from gldfn_runtime.plugin_library import PluginLibraryError, load_plugin_library

        try:
            library = str(load_plugin_library(plugin_library))
        except PluginLibraryError as exc:
            raise CalibrationError(f"--plugin: {exc}") from exc
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if library is not None:
        enable_plugin_override(parser, trt)
    if not parser.parse_from_file(str(path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise CalibrationError(f"{backend.name} cannot parse {path}: {errors}")
    layer_types = Counter(network.get_layer(i).type.name for i in range(network.num_layers))
    if library is not None and not PLUGIN_LAYER_TYPES & set(layer_types):
        raise CalibrationError(f"{path} parsed with {library} loaded but has no plugin layer")
    network_input = network.get_input(0)
    batch = max(1, network_input.shape[0])
    profile = builder.create_optimization_profile()
    profile.set_shape(network_input.name, *((batch, 3, *PROFILE_LR[k]) for k in ("min", "opt", "max")))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    start = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if plan is None:
        raise CalibrationError(f"{backend.name} parsed {path} but could not build an engine from it")
    return EngineCheck(f"{backend.name} {backend.version}", library, dict(sorted(layer_types.items())), plan.nbytes, seconds)
