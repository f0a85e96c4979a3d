"""``TensorRTRunner``: a built engine as a ``gldfn_model.inference.runner.Runner``.

Device memory, streams and events come from NVIDIA's ``cuda-python`` (``cuda.bindings.runtime``); CUDA tensors
(torch, CuPy, anything with DLPack) run in place through ``infer_dlpack``. Before TensorRT sees the engine the
runner checks its sidecar (file intact, same TensorRT flavour and version, a GPU the engine targets; on
TensorRT-RTX also ``Runtime.get_engine_validity``), and loads the plugin library unless it is embedded (then the
plan holds the library, host code TensorRT runs only when allowed): the one ``--plugin``, $GLDFN_TRT_PLUGIN_LIBRARY
or the default build folder names, if its SHA-256 is the sidecar's. A runner may be shared between threads:
``runners.execution.ContextExecutor`` serializes the calls, sets the device at each and keeps one stream order.
On TensorRT-RTX the kernels it compiles while running are kept in a runtime cache beside the engine cache
(``runners.rtx_runtime_cache``). The data stays on the GPU, so the tiler budgets host memory for the input and output
alone (``bytes_per_lr_pixel``).
"""
from __future__ import annotations

import os
import shlex
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gldfn_model.inference.runner import RunnerError, Size, check_batch
from gldfn_runtime.engine.cache import EngineCache
from gldfn_runtime.engine.sidecar import (
    EngineMismatch,
    EngineSidecar,
    check_compatible,
    check_engine_file,
    has_sidecar,
    read_sidecar,
    rebuild_advice,
    showable_path,
    sidecar_path,
    verify_engine_file,
)
from gldfn_runtime.plugin.library import (
    PluginLibraryError,
    find_engine_plugin,
    find_plugin_library,
    load_plugin_library,
)
from gldfn_runtime.runners.engine_io import EngineIO
from gldfn_runtime.runners.execution import ContextExecutor, load_cudart
from gldfn_runtime.runners.rtx_runtime_cache import RuntimeCacheFile, runtime_cache_path
from gldfn_runtime.tensorrt.backend import BackendError, Flavour, current_gpu, select_flavour
from gldfn_runtime.tensorrt.logger import process_logger

CPU_ALTERNATIVES = (
    "without a GPU, upscale with `gldfn upscale INPUT... -o OUTDIR --onnx {onnx}` "
    "and measure with `gldfn bench --onnx {onnx}`"
)


def cpu_alternatives(sidecar: EngineSidecar) -> str:
    """CPU_ALTERNATIVES for the engine's ONNX file: its path from the sidecar only when fit to show, quoted for
    the shell (else MODEL.onnx)."""
    onnx = showable_path(sidecar.onnx.get("path") if isinstance(sidecar.onnx, dict) else None)
    return CPU_ALTERNATIVES.format(onnx=shlex.quote(onnx) if onnx else "MODEL.onnx")


class NoGpuError(RunnerError):
    """There is no usable CUDA GPU; the message names the CPU commands to use instead."""


class EngineWithoutSidecarWarning(UserWarning):
    """An engine runs without the sidecar that says what it was built from and for."""


def without_sidecar_warning(engine: Path) -> str:
    return (f"{engine} has no sidecar ({sidecar_path(engine).name}, written by gldfn-trt build): its TensorRT version, "
            "GPU and plugin library cannot be checked first, and its input, output and scale are read from the engine")


def warn_without_sidecar(message: str) -> None:
    warnings.warn(message, EngineWithoutSidecarWarning, stacklevel=3)


def no_gpu_message(engine: Path, reason: str, sidecar: EngineSidecar | None) -> str:
    """Why ``engine`` cannot run here, and the CPU commands to use instead."""
    if sidecar is None:
        return (f"cannot run engine {engine}: {reason}. TensorRT engines need an NVIDIA GPU (and one without a sidecar "
                "is read from the engine itself, on the GPU); " + CPU_ALTERNATIVES.format(onnx="MODEL.onnx"))
    return (f"cannot run engine {engine}: {reason}. TensorRT engines need an NVIDIA GPU; "
            + cpu_alternatives(sidecar))


def unchecked_plugin(path: str | os.PathLike[str] | None) -> Path | None:
    """For an engine without a sidecar: the plugin library found as usual (--plugin, $GLDFN_TRT_PLUGIN_LIBRARY,
    the default build folder), loaded without a SHA-256 to check it against; None when there is none (then the
    engine must need no plugin). A --plugin that does not exist is an error."""
    try:
        return find_plugin_library(path)
    except PluginLibraryError:
        if path is not None:
            raise
        return None


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


def host_bytes_per_lr_pixel(scale: int, channels: int = 3) -> int:
    """Host memory of one engine run per LR pixel: the network's activations live on the GPU, the host holds the
    float32 input and output twice each (the caller's array and the pinned staging buffer)."""
    return 2 * channels * 4 * (1 + scale * scale)


def check_tensor_device(tensor: Any, device: int) -> None:
    """Refuse a torch tensor that is not on CUDA GPU ``device``."""
    if tensor.device.type != "cuda" or tensor.device.index != device:
        raise RunnerError(f"this runner runs on cuda:{device}; the tensor is on {tensor.device} (move it with "
                          f".to('cuda:{device}'), or use a runner created with that device)")


class TensorRTRunner:
    """An engine built by ``gldfn-trt build``, on CUDA GPU ``device``. ``plugin``: the plugin library (default:
    $GLDFN_TRT_PLUGIN_LIBRARY, else the default build folder); it must be the one the engine was built with.

    An engine without its sidecar (built by trtexec, say) runs too, after a warning to ``report`` (default: Python's
    warnings): nothing can be checked before TensorRT sees it, its input, output and scale are read from the
    deserialized engine (``scale``, when given, must agree), and a plugin library found as above is loaded unchecked.
    ``cache_dir``: the engine cache folder, beside which TensorRT-RTX's runtime cache is kept (default:
    $GLDFN_TRT_CACHE_DIR or ~/.cache/gldfn-trt/engines).
    """

    name = "tensorrt"

    def __init__(self, engine_path: str | os.PathLike[str], plugin: str | os.PathLike[str] | None = None, device: int = 0,
                 scale: int | None = None, report: Callable[[str], None] | None = None,
                 cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(engine_path)
        self.device = device
        self._executor: ContextExecutor | None = None
        self._runtime_cache: RuntimeCacheFile | None = None
        self._shapes_run: set[tuple[int, ...]] = set()
        self._cache_root = EngineCache(cache_dir).root
        self.sidecar: EngineSidecar | None = read_sidecar(self.path) if has_sidecar(self.path) else None
        if self.sidecar is None:
            check_engine_file(self.path)
            (report or warn_without_sidecar)(without_sidecar_warning(self.path))
            flavour_name = "auto"
        else:
            verify_engine_file(self.path, self.sidecar)
            self.io = EngineIO.from_sidecar(self.sidecar, self.path, scale)
            flavour_name = self.sidecar.tensorrt["flavour"]
        try:
            self.flavour = select_flavour(flavour_name)
        except BackendError as error:
            built = f"was built with {flavour_name}, which" if self.sidecar is not None else "needs TensorRT, which"
            raise RunnerError(f"{self.path} {built} cannot be imported here: {error}") from None
        gpu, reason = current_gpu(device)
        if gpu is None:
            raise NoGpuError(no_gpu_message(self.path, reason, self.sidecar))
        if self.sidecar is not None:
            check_compatible(self.sidecar, self.path, self.flavour.name, self.flavour.version, gpu.name, gpu.compute_capability)
        self.gpu = gpu
        cudart = load_cudart()
        error = cudart.cudaSetDevice(device)[0]  # TensorRT allocates the engine on the current device
        if error != cudart.cudaError_t.cudaSuccess:
            raise RunnerError(f"cannot use GPU {device}: {cudart.cudaGetErrorString(error)[1].decode()}")
        context = self._load_engine(plugin)
        if self.sidecar is None:
            self.io = EngineIO.from_engine(self._engine, context, self.flavour.trt, self.path, scale)
        self.scale, self.batch = self.io.scale, self.io.batch
        self.bytes_per_lr_pixel = host_bytes_per_lr_pixel(self.scale)
        self.min_size: Size | None = self.io.min_size
        self.max_size: Size | None = self.io.max_size
        self.input_name, self.output_name = self.io.input_name, self.io.output_name
        output_dtype = self._check_dtypes()
        self._executor = ContextExecutor(context, self.input_name, self.output_name, output_dtype, device,
                                         cudart=cudart, recent_messages=self._logger.recent)

    def _rebuild_hint(self) -> str:
        if self.sidecar is None:
            return "Build it with `gldfn-trt build MODEL.onnx`, which also writes the sidecar that says what it needs"
        return f"Rebuild it: {rebuild_advice(self.sidecar, self.path)}"

    def _load_engine(self, plugin: str | os.PathLike[str] | None) -> Any:
        """Deserialize the engine; an execution context of it."""
        trt = self.flavour.trt
        plan = self.path.read_bytes()
        recorded = self.sidecar.plugin if self.sidecar is not None else None
        self._logger = process_logger(trt)
        # Host code (an embedded plugin library) is allowed only where the sidecar says the engine carries it.
        self._runtime = make_runtime(trt, self._logger, embedded_plugin=bool(recorded and recorded["embedded"]))
        if self.flavour.is_rtx:
            usable, reasons = _rtx_validity_problems(self.flavour, self._runtime, plan)
            if not usable:
                raise EngineMismatch(f"TensorRT-RTX rejects {self.path}: {'; '.join(reasons) or 'no reason given'}. "
                                     + self._rebuild_hint())
        try:
            library = find_engine_plugin(recorded, self.path, plugin) if self.sidecar is not None else \
                unchecked_plugin(plugin)
            if library is not None:
                load_plugin_library(library)
        except PluginLibraryError as error:
            raise RunnerError(str(error)) from None
        self._engine = self._runtime.deserialize_cuda_engine(plan)
        if self._engine is None:
            raise RunnerError(f"TensorRT could not load {self.path}: {' | '.join(self._logger.recent(5)) or 'no message'}. "
                              + self._rebuild_hint())
        return self._create_context()

    def _create_context(self) -> Any:
        """An execution context; on TensorRT-RTX with the runtime cache of this GPU attached."""
        if not self.flavour.is_rtx:
            return self._engine.create_execution_context()
        self._runtime_config = self._engine.create_runtime_config()
        path = runtime_cache_path(self._cache_root, self.flavour.version, self.gpu.name, self.gpu.compute_capability)
        self._runtime_cache = RuntimeCacheFile(path)
        self._runtime_cache.attach(self._runtime_config)
        return self._engine.create_execution_context(self._runtime_config)

    def _ran(self, shape: tuple[int, ...]) -> None:
        """After a run: a shape not run before may have compiled kernels (TensorRT-RTX), so save the runtime cache."""
        if shape not in self._shapes_run:
            self._shapes_run.add(shape)
            if self._runtime_cache is not None:
                self._runtime_cache.save()

    def _check_dtypes(self) -> np.dtype:
        """The output dtype, after checking the input is float32."""
        trt = self.flavour.trt
        input_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self.input_name)))
        if input_dtype != np.float32:
            raise RunnerError(f"{self.path} takes {input_dtype} input; GLDFN exports keep float32 I/O: rebuild from a gldfn-export file")
        return np.dtype(trt.nptype(self._engine.get_tensor_dtype(self.output_name)))

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
        output = self.executor.run_host(np.ascontiguousarray(batch)).astype(np.float32, copy=False)
        self._ran(batch.shape)
        return output

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
        self._ran(tuple(source.shape))
        return output

    def device_step(self, lr: np.ndarray) -> Callable[[], None]:
        """``lr`` copied to the GPU once; the step queues the engine alone on it (``benchmark`` times it with
        :meth:`cuda_event_timer`: the network's time on the device, no host copies)."""
        batch = check_batch(lr, "TensorRTRunner")
        if batch.shape[0] != self.batch:
            raise RunnerError(f"{self.path} takes batches of {self.batch}; got {batch.shape[0]} images")
        self._check_size(*batch.shape[2:])
        step = self.executor.device_step(batch)
        step()  # the first run compiles what TensorRT-RTX compiles: keep it in the runtime cache
        self.executor.synchronize()
        self._ran(batch.shape)
        return step

    def cuda_event_timer(self) -> Callable[[Callable[[], object]], float]:
        """A ``benchmark.Timer``: milliseconds between CUDA events recorded on the runner's stream around one
        call (copies to and from the GPU included, Python overhead outside the stream not)."""
        return self.executor.timer()

    def synchronize(self) -> None:
        self.executor.synchronize()

    def close(self) -> None:
        """Free device memory, events and the stream, then release context, engine and runtime in that order
        (also done when the runner is garbage collected)."""
        if self._runtime_cache is not None:
            self._runtime_cache.save()
            self._runtime_cache = None
        if self._executor is not None:
            self._executor.close()
        self._engine = self._runtime = self._runtime_config = None

    def __enter__(self) -> TensorRTRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the CUDA module may already be gone
            pass
