"""Runners: one object per inference backend, all with the same small interface, so the tiler, the
``Upscaler`` and the latency harness work with any of them.

A runner takes an ``N x 3 x h x w`` float32 RGB batch in [0, 1] (NumPy, on the host) and returns the
``N x 3 x sh x sw`` float32 result. ``min_size`` / ``max_size`` say which LR sizes the backend accepts
(a TensorRT engine's optimization profile); the caller pads or tiles to stay inside them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from gldfn_model.network.config import NAMED_CONFIGS
from gldfn_model.network.gldfn import GLDFN
from gldfn_model.common.errors import GldfnError

Size = tuple[int, int]  # (height, width)

ORT_PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
}
# The exporter's metadata keys (gldfn_export.metadata); read here without importing the exporter.
ONNX_SCALE_KEY = "gldfn.scale"
ONNX_CONFIG_KEY = "gldfn.config"


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


class TorchRunner:
    """A GLDFN PyTorch model on the CPU or a CUDA device."""

    name = "torch"
    min_size: Size | None = None
    max_size: Size | None = None

    def __init__(self, model: GLDFN, device: str | torch.device = "cpu", threads: int | None = None) -> None:
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RunnerError("device 'cuda' was asked for, but this PyTorch build sees no CUDA GPU; use device 'cpu'")
        if threads is not None:
            torch.set_num_threads(threads)
        self.model = model.eval().to(self.device)
        self.config = model.config
        self.scale = model.config.scale
        self.bytes_per_lr_pixel = gldfn_bytes_per_lr_pixel(model.config.channels)

    def infer(self, lr: np.ndarray) -> np.ndarray:
        batch = check_batch(lr, "TorchRunner")
        with torch.inference_mode():
            output = self.model(torch.from_numpy(batch).to(self.device))
        return output.float().cpu().numpy()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def resolve_providers(providers: list[str] | tuple[str, ...] | str | None) -> list[str]:
    """Provider names for ONNX Runtime: aliases ``cpu``/``cuda`` accepted; CUDA falls back to the CPU for
    unsupported nodes. Asking for a provider this onnxruntime build lacks is an error, not a silent fallback."""
    import onnxruntime as ort

    if providers is None:
        providers = ["cpu"]
    if isinstance(providers, str):
        providers = [p for p in providers.split(",") if p]
    names = [ORT_PROVIDER_ALIASES.get(p.lower(), p) for p in providers]
    available = ort.get_available_providers()
    missing = [n for n in names if n not in available]
    if missing:
        hint = " (install onnxruntime-gpu: pip install 'gldfn-trt[gpu]')" if "CUDAExecutionProvider" in missing else ""
        raise RunnerError(f"ONNX Runtime provider(s) {missing} are not available here{hint}; available: {available}")
    if names and names[-1] != "CPUExecutionProvider":
        names.append("CPUExecutionProvider")
    return names


class OnnxRuntimeRunner:
    """An exported GLDFN ONNX file (``gldfn-export``) in ONNX Runtime, CPU or CUDA provider.

    The scale comes from the file's ``gldfn.scale`` metadata unless given. A file exported with a fixed
    batch of 1 is run image by image for larger batches.
    """

    name = "onnxruntime"

    def __init__(
        self,
        path: str | os.PathLike[str],
        providers: list[str] | tuple[str, ...] | str | None = None,
        threads: int | None = None,
        scale: int | None = None,
    ) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise RunnerError(f"ONNX file {path} does not exist (export one with gldfn-export)")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads is not None:
            options.intra_op_num_threads = threads
        self.providers = resolve_providers(providers)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=self.providers)
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
            raise RunnerError(f"ONNX Runtime cannot load {path}: {exc}") from exc
        self.path = path
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.scale = scale if scale is not None else self._scale_from_metadata()
        self.config_name = self.metadata.get(ONNX_CONFIG_KEY)
        (model_input,) = self.session.get_inputs()
        self.input_name = model_input.name
        # A model with FP16 I/O gets its input cast; the runner's interface stays float32.
        self.input_dtype = {"tensor(float)": np.float32, "tensor(float16)": np.float16}.get(model_input.type)
        if self.input_dtype is None:
            raise RunnerError(f"{path}: input {model_input.name!r} is {model_input.type}; a float32 or float16 image "
                              "input is needed")
        config = NAMED_CONFIGS.get(self.metadata.get(ONNX_CONFIG_KEY, ""), NAMED_CONFIGS["paper"])
        self.bytes_per_lr_pixel = gldfn_bytes_per_lr_pixel(config.channels)
        shape = model_input.shape
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        fixed_hw = tuple(shape[2:]) if all(isinstance(d, int) for d in shape[2:]) else None
        self.min_size: Size | None = fixed_hw
        self.max_size: Size | None = fixed_hw

    def _scale_from_metadata(self) -> int:
        value = self.metadata.get(ONNX_SCALE_KEY)
        if value is None or not value.isdigit():
            raise RunnerError(f"{self.path} carries no '{ONNX_SCALE_KEY}' metadata; pass scale= explicitly")
        return int(value)

    def infer(self, lr: np.ndarray) -> np.ndarray:
        batch = check_batch(lr, "OnnxRuntimeRunner")
        step = self.fixed_batch or batch.shape[0]
        if batch.shape[0] % step:
            raise RunnerError(f"{self.path} takes batches of {step}; got {batch.shape[0]} images")
        batch = batch.astype(self.input_dtype, copy=False)
        outputs = [self.session.run(None, {self.input_name: batch[i : i + step]})[0] for i in range(0, batch.shape[0], step)]
        output = outputs[0] if len(outputs) == 1 else np.concatenate(outputs)
        return output.astype(np.float32, copy=False)

    def synchronize(self) -> None:
        """``InferenceSession.run`` returns host arrays, so it has already waited for the device."""


class BicubicRunner:
    """MATLAB-style bicubic upscaling (gldfn_model.data.imresize): the classic baseline, and a purely local
    function (each output pixel depends on a 4 x 4 LR neighbourhood), which makes tiling exact away from seams."""

    name = "bicubic"
    min_size: Size | None = None
    max_size: Size | None = None
    receptive_radius = 2  # LR pixels on each side that reach an output pixel
    bytes_per_lr_pixel = 1024  # two resize products of up to scale^2 x 3 float32 values per LR pixel

    def __init__(self, scale: int) -> None:
        self.scale = scale

    def infer(self, lr: np.ndarray) -> np.ndarray:
        from gldfn_model.data.imresize import imresize_torch

        batch = check_batch(lr, "BicubicRunner")
        return imresize_torch(torch.from_numpy(batch), self.scale).numpy()

    def synchronize(self) -> None:
        """Synchronous on the CPU."""
