"""``TensorRTRunner``: a built engine as a ``gldfn_model.inference.runner.Runner``.

Device memory, streams and events come from NVIDIA's ``cuda-python`` (``cuda.bindings.runtime``); CUDA tensors
(torch, CuPy, anything with DLPack) run in place through ``infer_dlpack``. Before TensorRT sees the engine the
runner checks its sidecar (file intact, same TensorRT flavour and version, a GPU the engine targets; on
TensorRT-RTX also ``Runtime.get_engine_validity``), and loads the plugin library unless it is embedded (then the
plan holds the library, host code TensorRT runs only when allowed): the one ``--plugin``, $GLDFN_TRT_PLUGIN_LIBRARY
or the default build folder names, if its SHA-256 is the sidecar's. A runner may be shared between threads:
``trt_execution.ContextExecutor`` serializes the calls, sets the device at each and keeps one stream order.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gldfn_model.inference.runner import RunnerError, Size, check_batch
from gldfn_runtime.engine.sidecar import (
    EngineMismatch,
    EngineSidecar,
    check_compatible,
    read_sidecar,
    verify_engine_file,
)
from gldfn_runtime.plugin.library import PluginLibraryError, find_engine_plugin, load_plugin_library
from gldfn_runtime.runners.execution import ContextExecutor, load_cudart
from gldfn_runtime.tensorrt.backend import BackendError, Flavour, current_gpu, select_flavour
from gldfn_runtime.tensorrt.logger import process_logger

CPU_ALTERNATIVES = (
    "without a GPU, upscale with `gldfn upscale INPUT... -o OUTDIR --onnx {onnx}` "
    "and measure with `gldfn bench --onnx {onnx}`"
)


class NoGpuError(RunnerError):
    """There is no usable CUDA GPU; the message names the CPU commands to use instead."""


_RTX_DIAGNOSTICS = {
    "VERSION_MISMATCH": "it was built with another TensorRT-RTX version",
    "UNSUPPORTED_CC": "it does not target this GPU's compute capability",
    "OLD_CUDA_DRIVER": "the CUDA driver is too old for it",
    "OLD_CUDA_RUNTIME": "the CUDA runtime is too old for it",
    "INSUFFICIENT_GPU_MEMORY": "the GPU has too little memory for it",
    "MALFORMED_ENGINE": "the file is not a well-formed engine",
    "CUDA_ERROR": "a CUDA error occurred while checking it",
}


def _rtx_validity_problems(flavour: Flavour, runtime: Any, plan: bytes) -> tuple[bool, list[str]]:
    """(usable, reasons) from TensorRT-RTX's ``get_engine_validity`` (diagnostics are a bit mask)."""
    trt = flavour.trt
    validity, diagnostics = runtime.get_engine_validity(plan)
    reasons = [text for name, text in _RTX_DIAGNOSTICS.items() if int(diagnostics) & int(trt.EngineInvalidityDiagnostics.__members__[name])]
    return validity != trt.EngineValidity.INVALID, reasons


def make_runtime(trt: Any, logger: Any, *, embedded_plugin: bool) -> Any:
    """A TensorRT runtime for an engine; one that carries the plugin library (``--embed-plugin``) holds host code,
    which TensorRT deserializes only when allowed."""
    runtime = trt.Runtime(logger)
    if embedded_plugin:
        runtime.engine_host_code_allowed = True
    return runtime


def check_tensor_device(tensor: Any, device: int) -> None:
    """Refuse a torch tensor that is not on CUDA GPU ``device``."""
    if tensor.device.type != "cuda" or tensor.device.index != device:
        raise RunnerError(f"this runner runs on cuda:{device}; the tensor is on {tensor.device} (move it with "
                          f".to('cuda:{device}'), or use a runner created with that device)")


class TensorRTRunner:
    """An engine built by ``gldfn-trt build``, on CUDA GPU ``device``. ``plugin``: the plugin library (default:
    $GLDFN_TRT_PLUGIN_LIBRARY, else the default build folder); it must be the one the engine was built with."""

    name = "tensorrt"

    def __init__(self, engine_path: str | os.PathLike[str], plugin: str | os.PathLike[str] | None = None, device: int = 0) -> None:
        self.path = Path(engine_path)
        self.sidecar: EngineSidecar = read_sidecar(self.path)
        verify_engine_file(self.path, self.sidecar)
        try:
            self.flavour = select_flavour(self.sidecar.tensorrt["flavour"])
        except BackendError as error:
            raise RunnerError(f"{self.path} was built with {self.sidecar.tensorrt['flavour']}, which cannot be imported here: {error}") from None
        gpu, reason = current_gpu(device)
        if gpu is None:
            raise NoGpuError(f"cannot run engine {self.path}: {reason}. TensorRT engines need an NVIDIA GPU; "
                             + CPU_ALTERNATIVES.format(onnx=self.sidecar.onnx["path"]))
        check_compatible(self.sidecar, self.path, self.flavour.name, self.flavour.version, gpu.name, gpu.compute_capability)
        self.gpu = gpu
        self.scale = self.sidecar.scale
        self.min_size: Size | None = self.sidecar.min_size
        self.max_size: Size | None = self.sidecar.max_size
        self.batch = int(self.sidecar.profile["batch"])
        self.input_name = self.sidecar.inputs[0]["name"]
        self.output_name = self.sidecar.outputs[0]["name"]
        self.device = device
        self._executor: ContextExecutor | None = None
        cudart = load_cudart()
        error = cudart.cudaSetDevice(device)[0]  # TensorRT allocates the engine on the current device
        if error != cudart.cudaError_t.cudaSuccess:
            raise RunnerError(f"cannot use GPU {device}: {cudart.cudaGetErrorString(error)[1].decode()}")
        context, output_dtype = self._load_engine(plugin)
        self._executor = ContextExecutor(context, self.input_name, self.output_name, output_dtype, device,
                                         cudart=cudart, recent_messages=self._logger.recent)

    def _load_engine(self, plugin: str | os.PathLike[str] | None) -> tuple[Any, np.dtype]:
        """Deserialize the engine; its execution context and output dtype."""
        trt = self.flavour.trt
        plan = self.path.read_bytes()
        recorded = self.sidecar.plugin
        self._logger = process_logger(trt)
        self._runtime = make_runtime(trt, self._logger, embedded_plugin=bool(recorded and recorded["embedded"]))
        if self.flavour.is_rtx:
            usable, reasons = _rtx_validity_problems(self.flavour, self._runtime, plan)
            if not usable:
                raise EngineMismatch(f"TensorRT-RTX rejects {self.path}: {'; '.join(reasons) or 'no reason given'}. "
                                     f"Rebuild it: {self.sidecar.rebuild_command}")
        try:
            library = find_engine_plugin(self.sidecar.plugin, self.path, plugin)
            if library is not None:
                load_plugin_library(library)
        except PluginLibraryError as error:
            raise RunnerError(str(error)) from None
        self._engine = self._runtime.deserialize_cuda_engine(plan)
        if self._engine is None:
            raise RunnerError(f"TensorRT could not load {self.path}: {' | '.join(self._logger.recent(5)) or 'no message'}. "
                              f"Rebuild it: {self.sidecar.rebuild_command}")
        input_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self.input_name)))
        if input_dtype != np.float32:
            raise RunnerError(f"{self.path} takes {input_dtype} input; GLDFN exports keep float32 I/O: rebuild from a gldfn-export file")
        output_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self.output_name)))
        return self._engine.create_execution_context(), output_dtype

    def _check_size(self, height: int, width: int) -> None:
        (min_h, min_w), (max_h, max_w) = self.min_size, self.max_size  # type: ignore[misc]
        if not (min_h <= height <= max_h and min_w <= width <= max_w):
            raise RunnerError(f"{self.path} takes LR images from {min_h}x{min_w} to {max_h}x{max_w} (its profile); got {height}x{width}. "
                              "Upscaler tiles and pads to fit; or rebuild with a wider --min/--max")

    @property
    def executor(self) -> ContextExecutor:
        if self._executor is None:
            raise RunnerError(f"the runner for {self.path} was not created completely")
        return self._executor

    def infer(self, lr: np.ndarray) -> np.ndarray:
        batch = check_batch(lr, "TensorRTRunner")
        if batch.shape[0] % self.batch:
            raise RunnerError(f"{self.path} takes batches of {self.batch}; got {batch.shape[0]} images")
        if batch.shape[0] != self.batch:
            return np.concatenate([self.infer(batch[i : i + self.batch]) for i in range(0, batch.shape[0], self.batch)])
        self._check_size(*batch.shape[2:])
        return self.executor.run_host(np.ascontiguousarray(batch)).astype(np.float32, copy=False)

    def infer_dlpack(self, lr: Any) -> Any:
        """An ``N x 3 x h x w`` float32 tensor on this runner's GPU (any DLPack producer) -> a torch tensor on the
        same GPU, ordered with PyTorch's current stream there: the engine waits for the work queued on it so far
        and later work on it waits for the result."""
        import torch

        source = torch.from_dlpack(lr)
        check_tensor_device(source, self.device)
        if source.dtype != torch.float32 or source.ndim != 4 or source.shape[1] != 3:
            raise RunnerError(f"infer_dlpack takes an N x 3 x H x W float32 CUDA tensor, got {tuple(source.shape)} "
                              f"{source.dtype}")
        if source.shape[0] != self.batch:
            raise RunnerError(f"{self.path} takes batches of {self.batch}; got {source.shape[0]}")
        self._check_size(*source.shape[2:])
        executor = self.executor
        with executor.entered():
            source = source.contiguous()
            output = torch.empty(executor.output_shape(tuple(source.shape)), dtype=torch.float32, device=source.device)
            caller = torch.cuda.current_stream(source.device).cuda_stream
            executor.run_on_device(source.data_ptr(), output.data_ptr(), tuple(source.shape), caller)
        return output

    def cuda_event_timer(self) -> Callable[[Callable[[], object]], float]:
        """A ``benchmark.Timer``: milliseconds between CUDA events recorded on the runner's stream around one
        call (copies to and from the GPU included, Python overhead outside the stream not)."""
        return self.executor.timer()

    def synchronize(self) -> None:
        self.executor.synchronize()

    def close(self) -> None:
        """Free device memory, events and the stream, then release context, engine and runtime in that order
        (also done when the runner is garbage collected)."""
        if self._executor is not None:
            self._executor.close()
        self._engine = self._runtime = None

    def __enter__(self) -> TensorRTRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the CUDA module may already be gone
            pass
