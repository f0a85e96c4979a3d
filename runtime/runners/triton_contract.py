"""What a GLDFN model served by Triton states about itself in its config's ``parameters``, read by the client
runner (``triton_runner``) and the image model, written by the repository writer (``gldfn_runtime.serve``).

Triton keeps parameters as strings: ``gldfn.scale`` ("4"), ``gldfn.min_size`` / ``gldfn.max_size`` ("16x16", or
absent for any size), ``gldfn.config`` (the network's named config, when known).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from gldfn_model.inference.runner import Size

SERVE_EXTRA = "pip install 'gldfn-trt[serve]'"
SCALE, MIN_SIZE, MAX_SIZE, CONFIG = "gldfn.scale", "gldfn.min_size", "gldfn.max_size", "gldfn.config"
# The cpu model's ONNX file (in its version folder) and ONNX Runtime threads per instance.
ONNX_FILE, THREADS = "gldfn.onnx", "gldfn.threads"
# The image model: which model and tensors its tiles go to, and how it tiles.
TILE_MODEL, TILE_INPUT, TILE_OUTPUT, TILE_DTYPE = "gldfn.model", "gldfn.input", "gldfn.output", "gldfn.dtype"
TILE, OVERLAP, CONCURRENT_TILES = "gldfn.tile", "gldfn.overlap", "gldfn.concurrent_tiles"
# The image model's tensors: a whole H x W x C uint8 image in, the upscaled one out.
IMAGE_INPUT, IMAGE_OUTPUT = "image", "upscaled"
# Triton's data types of the tensors these models exchange, by config name and by the protocol's name.
DATA_TYPES = {"TYPE_FP32": np.float32, "TYPE_FP16": np.float16, "TYPE_UINT8": np.uint8}
WIRE_TYPES = {"FP32": np.float32, "FP16": np.float16, "UINT8": np.uint8}


def format_size(size: Size) -> str:
    return f"{size[0]}x{size[1]}"


def parse_size(text: str | None) -> Size | None:
    """``"HxW"`` -> (H, W); None or "" -> None."""
    if not text:
        return None
    height, width = text.lower().split("x")
    return int(height), int(width)


def json_parameters(config: dict[str, Any]) -> dict[str, str]:
    """The ``parameters`` of a model configuration in Triton's JSON form (what the HTTP client and the Python
    backend hand over) as plain strings."""
    return {key: value.get("string_value", "") for key, value in (config.get("parameters") or {}).items()}
