"""gldfn_runtime: TensorRT / TensorRT-RTX engines, tiled inference and benchmarks."""
from __future__ import annotations

from typing import Any

__all__ = ["Upscaler"]


def __getattr__(name: str) -> Any:
    # Lazy, so `gldfn-trt` subcommands that never upscale don't pay for importing torch.
    if name == "Upscaler":
        from gldfn_runtime.upscale.upscaler import Upscaler

        return Upscaler
    raise AttributeError(f"module 'gldfn_runtime' has no attribute {name!r}")
