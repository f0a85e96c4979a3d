"""``TensorRTRunner``: a built engine as a ``gldfn_model.inference.runner.Runner``.

Device memory, streams and events come from NVIDIA's ``cuda-python`` (``cuda.bindings.runtime``); CUDA tensors
(torch, CuPy, anything with DLPack) run in place through ``infer_dlpack``. Before TensorRT sees the engine the
runner checks its sidecar (file intact, same TensorRT flavour and version, a GPU the engine targets; on
TensorRT-RTX also ``Runtime.get_engine_validity``), and loads the plugin library unless it is embedded: the one
``--plugin``, $GLDFN_TRT_PLUGIN_LIBRARY or the default build folder names, if its SHA-256 is the sidecar's.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gldfn_model.inference.runner import RunnerError, Size, check_batch
from gldfn_runtime.backend import BackendError, Flavour, current_gpu, select_flavour
from gldfn_runtime.plugin_library import PluginLibraryError, find_engine_plugin, load_plugin_library
from gldfn_runtime.sidecar import EngineMismatch, EngineSidecar, check_compatible, read_sidecar, verify_engine_file

CPU_ALTERNATIVES = (
    "without a GPU, upscale with `gldfn upscale INPUT... -o OUTDIR --backend onnxruntime --onnx {onnx}` "
    "and measure with `gldfn bench --backend onnxruntime --onnx {onnx}`"
)


class NoGpuError(RunnerError):
    """There is no usable CUDA GPU; the message names the CPU commands to use instead."""


def _cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError as error:
        raise RunnerError("the TensorRT runner needs NVIDIA's cuda-python: pip install 'gldfn-trt[rtx]' (or cuda-python)") from error
    return cudart


def _check(result: Any, what: str) -> Any:
    """Unpack a cuda-python ``(error, *values)`` tuple, raising on an error."""
    cudart = _cudart()
    error, *values = result if isinstance(result, tuple) else (result,)
    if error != cudart.cudaError_t.cudaSuccess:
        raise RunnerError(f"CUDA error in {what}: {cudart.cudaGetErrorString(error)[1].decode()}")
    return values[0] if len(values) == 1 else values


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
        self._buffers: dict[str, tuple[int, int]] = {}
        self._stream: Any = None
        self._events: tuple[Any, ...] = ()
        _check(_cudart().cudaSetDevice(device), "cudaSetDevice")
        self._load_engine(plugin)
        self._stream = _check(_cudart().cudaStreamCreate(), "cudaStreamCreate")

    def _load_engine(self, plugin: str | os.PathLike[str] | None) -> None:
        from gldfn_runtime.engine_build import make_logger

        trt = self.flavour.trt
        plan = self.path.read_bytes()
        self._logger = make_logger(trt)
        self._runtime = trt.Runtime(self._logger)
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
            raise RunnerError(f"TensorRT could not load {self.path}: {' | '.join(self._logger.messages[-5:]) or 'no message'}. "
                              f"Rebuild it: {self.sidecar.rebuild_command}")
        self._context = self._engine.create_execution_context()
        self._output_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self.output_name)))
        input_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self.input_name)))
        if input_dtype != np.float32:
            raise RunnerError(f"{self.path} takes {input_dtype} input; GLDFN exports keep float32 I/O: rebuild from a gldfn-export file")

    def _check_size(self, height: int, width: int) -> None:
        (min_h, min_w), (max_h, max_w) = self.min_size, self.max_size  # type: ignore[misc]
        if not (min_h <= height <= max_h and min_w <= width <= max_w):
            raise RunnerError(f"{self.path} takes LR images from {min_h}x{min_w} to {max_h}x{max_w} (its profile); got {height}x{width}. "
                              "Upscaler tiles and pads to fit; or rebuild with a wider --min/--max")

    def _device_buffer(self, name: str, nbytes: int) -> int:
        """A device allocation of at least ``nbytes`` for tensor ``name``, reused across calls."""
        cudart = _cudart()
        pointer, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if pointer:
                _check(cudart.cudaFree(pointer), "cudaFree")
            pointer = int(_check(cudart.cudaMalloc(nbytes), "cudaMalloc"))
            self._buffers[name] = (pointer, nbytes)
        return pointer

    def _output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if not self._context.set_input_shape(self.input_name, shape):
            raise RunnerError(f"{self.path} rejects input shape {shape}")
        return tuple(self._context.get_tensor_shape(self.output_name))

    def _enqueue(self, input_pointer: int, output_pointer: int, stream: int) -> None:
        self._context.set_tensor_address(self.input_name, input_pointer)
        self._context.set_tensor_address(self.output_name, output_pointer)
        if not self._context.execute_async_v3(stream):
            raise RunnerError(f"TensorRT failed to run {self.path}: {' | '.join(self._logger.messages[-5:])}")

    def infer(self, lr: np.ndarray) -> np.ndarray:
        batch = check_batch(lr, "TensorRTRunner")
        if batch.shape[0] % self.batch:
            raise RunnerError(f"{self.path} takes batches of {self.batch}; got {batch.shape[0]} images")
        if batch.shape[0] != self.batch:
            return np.concatenate([self.infer(batch[i : i + self.batch]) for i in range(0, batch.shape[0], self.batch)])
        self._check_size(*batch.shape[2:])
        cudart = _cudart()
        out_shape = self._output_shape(batch.shape)
        output = np.empty(out_shape, dtype=self._output_dtype)
        source = self._device_buffer(self.input_name, batch.nbytes)
        target = self._device_buffer(self.output_name, output.nbytes)
        stream = int(self._stream)
        _check(cudart.cudaMemcpyAsync(source, batch.ctypes.data, batch.nbytes, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, stream), "copy to GPU")
        self._enqueue(source, target, stream)
        _check(cudart.cudaMemcpyAsync(output.ctypes.data, target, output.nbytes, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream), "copy from GPU")
        self.synchronize()
        return output.astype(np.float32, copy=False)

    def infer_dlpack(self, lr: Any) -> Any:
        """An ``N x 3 x h x w`` float32 CUDA tensor (any DLPack producer) -> a torch CUDA tensor on the same
        device, computed on PyTorch's current stream (so it orders with the caller's work)."""
        import torch

        source = torch.from_dlpack(lr)
        if source.device.type != "cuda" or source.dtype != torch.float32 or source.ndim != 4 or source.shape[1] != 3:
            raise RunnerError(f"infer_dlpack takes an N x 3 x H x W float32 CUDA tensor, got {tuple(source.shape)} {source.dtype} on {source.device}")
        if source.shape[0] != self.batch:
            raise RunnerError(f"{self.path} takes batches of {self.batch}; got {source.shape[0]}")
        self._check_size(*source.shape[2:])
        source = source.contiguous()
        output = torch.empty(self._output_shape(tuple(source.shape)), dtype=torch.float32, device=source.device)
        self._enqueue(source.data_ptr(), output.data_ptr(), torch.cuda.current_stream(source.device).cuda_stream)
        return output

    def cuda_event_timer(self) -> Callable[[Callable[[], object]], float]:
        """A ``benchmark.Timer``: milliseconds between CUDA events recorded on the runner's stream around one
        call (copies to and from the GPU included, Python overhead outside the stream not)."""
        cudart = _cudart()
        start, stop = (_check(cudart.cudaEventCreate(), "cudaEventCreate") for _ in range(2))
        self._events = (start, stop)  # destroyed in close()

        def timed(step: Callable[[], object]) -> float:
            stream = int(self._stream)
            _check(cudart.cudaEventRecord(start, stream), "cudaEventRecord")
            step()
            _check(cudart.cudaEventRecord(stop, stream), "cudaEventRecord")
            _check(cudart.cudaEventSynchronize(stop), "cudaEventSynchronize")
            return float(_check(cudart.cudaEventElapsedTime(start, stop), "cudaEventElapsedTime"))

        return timed

    def synchronize(self) -> None:
        if self._stream is not None:
            _check(_cudart().cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")

    def close(self) -> None:
        """Free device memory and the stream (also done when the runner is garbage collected)."""
        cudart = _cudart()
        for pointer, _ in self._buffers.values():
            cudart.cudaFree(pointer)
        self._buffers.clear()
        for event in self._events:
            cudart.cudaEventDestroy(event)
        self._events = ()
        if self._stream is not None:
            cudart.cudaStreamDestroy(self._stream)
            self._stream = None

    def __enter__(self) -> "TensorRTRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the CUDA module may already be gone
            pass
