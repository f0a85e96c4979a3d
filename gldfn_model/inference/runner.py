"""The one interface every inference backend offers, so the tiler, the ``Upscaler``, the latency harness,
evaluation, calibration and export verification work with any of them.

A runner takes an ``N x 3 x h x w`` float32 RGB batch in [0, 1] (NumPy, on the host) and returns the
``N x 3 x sh x sw`` float32 result. ``min_size`` / ``max_size`` say which LR sizes the backend accepts
(a TensorRT engine's optimization profile); the caller pads or tiles to stay inside them.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from gldfn_model.common.errors import GldfnError

Size = tuple[int, int]  # (height, width)


class RunnerError(GldfnError, RuntimeError):
    """A backend cannot be created or cannot run the given input."""


@runtime_checkable
class Runner(Protocol):
    """What every backend offers. ``infer`` and ``synchronize`` are the only calls the tiler and the
    benchmark harness make."""

    name: str  # "torch", "onnxruntime", "tensorrt", ...
    scale: int
    min_size: Size | None  # smallest LR (h, w) the backend accepts; None = any
    max_size: Size | None  # largest LR (h, w); None = any

    def infer(self, lr: np.ndarray) -> np.ndarray:
        """``N x 3 x h x w`` float32 RGB in [0, 1] -> ``N x 3 x sh x sw`` float32."""
        ...

    def synchronize(self) -> None:
        """Wait for queued device work (timing); a no-op where ``infer`` is already synchronous."""
        ...


@runtime_checkable
class DeviceRunner(Runner, Protocol):
    """Optional extension for runners that can consume device memory directly (the TensorRT runner):
    ``Upscaler.upscale_tensor`` hands it DLPack-capable ``N x 3 x h x w`` float32 tensors (e.g. CUDA torch
    tensors) and gets one back, without a copy through the host."""

    def infer_dlpack(self, lr: Any) -> Any:
        ...


def gldfn_bytes_per_lr_pixel(channels: int) -> int:
    """Peak host memory of one GLDFN inference per LR pixel, for a network of ``channels`` feature channels.
    Measured on the CPU at 128-512 px: tiny (32 channels) 1.5-2.1 KB with PyTorch and ONNX Runtime, paper (64)
    4.3-4.8 KB; 75 bytes per channel covers both."""
    return 75 * channels


def check_batch(lr: np.ndarray, who: str) -> np.ndarray:
    """The batch as a C-contiguous float32 ``N x 3 x h x w`` array, or a clear error."""
    if not isinstance(lr, np.ndarray):
        raise RunnerError(f"{who}: expected a NumPy array, got {type(lr).__name__}")
    if lr.ndim != 4 or lr.shape[1] != 3:
        raise RunnerError(f"{who}: expected an N x 3 x H x W batch, got shape {lr.shape}")
    return np.ascontiguousarray(lr, dtype=np.float32)


def run_image(runner: Runner, image: np.ndarray) -> np.ndarray:
    """One ``H x W x 3`` image (uint8, or float in [0, 1]) through ``runner``: the ``sH x sW x 3`` float32
    result, unclipped."""
    pixels = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    return runner.infer(pixels.transpose(2, 0, 1)[None])[0].transpose(1, 2, 0)
