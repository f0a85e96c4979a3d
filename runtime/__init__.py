"""gldfn_runtime: TensorRT / TensorRT-RTX engines, tiled inference and benchmarks."""
from __future__ import annotations

from typing import Any

__all__ = ["Upscaler", "ort_custom_ops_library"]


def __getattr__(name: str) -> Any:
    # Lazy, so `gldfn-trt` subcommands that never upscale don't pay for importing torch.
    if name == "Upscaler":
        from gldfn_runtime.upscale.upscaler import Upscaler

        return Upscaler
    if name == "ort_custom_ops_library":
        from gldfn_runtime.plugin.ort_library import ort_custom_ops_library

        return ort_custom_ops_library
    raise AttributeError(f"module 'gldfn_runtime' has no attribute {name!r}")
