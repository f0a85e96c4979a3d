"""Does a (quantized) GLDFN file parse and build into a TensorRT engine? TensorRT-RTX builds ahead of time on a
CPU-only machine, so this runs anywhere TensorRT-RTX is installed. The build is the runtime's
(:func:`gldfn_runtime.engine.build.build_plan`, in memory): with the plugin library the custom nodes become the
plugin; without it the parser builds their ONNX function bodies, which needs a process where no plugin library
was loaded yet (as the ``gldfn-calibrate`` command is)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gldfn_calibration.errors import CalibrationError

PROFILE_LR = {"min_size": (16, 16), "opt_size": (64, 64), "max_size": (128, 128)}


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
    from gldfn_runtime.plugin.library import PluginLibraryError, find_plugin_library

    try:
        return find_plugin_library()
    except PluginLibraryError:
        return None


def build_engine_on_cpu(path: str | Path, plugin_library: str | Path | None = None) -> EngineCheck:
    """Parse ``path`` and build a serialized engine in memory (nothing is written); raise CalibrationError with
    the parser's / builder's messages when either fails, TensorRTUnavailable when no TensorRT imports."""
    from gldfn_runtime.engine.build import BuildOptions, EngineBuildError, build_plan
    from gldfn_runtime.plugin.library import PluginLibraryError
    from gldfn_runtime.tensorrt.compat import load_tensorrt

    load_tensorrt()  # TensorRTUnavailable here, before the build, lets the caller skip the check
    options = BuildOptions(plugin=plugin_library, use_plugin=plugin_library is not None, **PROFILE_LR)
    try:
        built = build_plan(path, options)
    except (EngineBuildError, PluginLibraryError) as exc:
        raise CalibrationError(f"engine check: {exc}") from exc
    return EngineCheck(built.flavour.describe(), str(built.plugin) if built.plugin else None, built.layer_types,
                       len(built.plan), built.seconds)
