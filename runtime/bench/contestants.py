"""What a ``gldfn bench`` run times: each network asked for (GLDFN and its Table IV peers) on each backend, device
and precision, as ``Contestant``s of the shared harness, with the work per image from the one op counter
(``gldfn_model.network.op_count``, on a meta-device twin of the network)."""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gldfn_model.common.errors import GldfnError
from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner
from gldfn_model.inference.runner import Size
from gldfn_model.inference.torch_runner import TorchRunner
from gldfn_model.network.op_count import count_ops
from gldfn_runtime.bench.exporters import find_exporter
from gldfn_runtime.bench.harness import Contestant, Timer, runner_contestant

BACKENDS = ("torch", "onnxruntime")
DEVICES = ("cpu", "cuda")
# fp32: IEEE FP32 arithmetic (PyTorch's default CUDA convolutions round inputs to TF32); tf32: that default, named.
PRECISIONS = ("fp32", "tf32", "fp16")
DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16}


class BenchSetupError(GldfnError, ValueError):
    """A combination of networks, backends, devices and precisions that cannot be timed."""


@dataclass(frozen=True)
class BenchRequest:
    """What to time. ``gldfn_config`` None: 'paper' beside peers, else 'tiny' (or the checkpoint's own config)."""

    models: tuple[str, ...] = ("gldfn",)
    backends: tuple[str, ...] = ("torch",)
    device: str = "cpu"
    gpu: int = 0  # the CUDA device index, when ``device`` is cuda
    precisions: tuple[str, ...] = ("fp32",)
    scale: int = 4
    gldfn_config: str | None = None
    checkpoint: Path | None = None
    random_weights: bool = False
    onnx: Path | None = None
    providers: str = "cpu"
    threads: int | None = None
    seed: int = 0
    shipped_models: tuple[str, ...] = ()  # the names in ``models`` that are `gldfn models` entries: GLDFN with their weights

    def is_gldfn(self, name: str) -> bool:
        """GLDFN itself, or a shipped model (GLDFN with its weights); the rest are Table IV peers."""
        return name == "gldfn" or name in self.shipped_models

    def check(self) -> None:
        if self.device not in DEVICES:
            raise BenchSetupError(f"device {self.device!r}: choose cpu or cuda")
        for gpu_only in ("fp16", "tf32"):
            if gpu_only in self.precisions and self.device != "cuda":
                raise BenchSetupError(f"--precision {gpu_only} runs torch on a GPU only: add --device cuda, or time fp32")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise BenchSetupError("--device cuda: this PyTorch sees no CUDA GPU (a CPU-only build, or no GPU); "
                                  "use --device cpu")
        if self.device == "cuda" and self.gpu >= torch.cuda.device_count():
            raise BenchSetupError(f"--device {self.gpu}: PyTorch sees {torch.cuda.device_count()} CUDA GPU(s), "
                                  f"numbered from 0")
        if self.onnx is not None and (len(self.models) != 1 or not self.is_gldfn(self.models[0])):
            raise BenchSetupError("--onnx times one GLDFN file; leave out --model, or leave out --onnx to export "
                                  "each network")
        peers = [m for m in self.models if not self.is_gldfn(m)]
        if peers and self.scale != 4:
            raise BenchSetupError(f"Table IV compares x4 networks; the peers are benchmarked at x4 only, "
                                  f"not x{self.scale}")


@dataclass
class BenchSetup:
    contestants: list[Contestant]
    gldfn_config: str | None
    notes: list[str] = field(default_factory=list)


def meta_twin(model: nn.Module) -> nn.Module:
    """The same architecture on the meta device, for counting (every network here is built from its config alone)."""
    with torch.device("meta"):
        return type(model)(model.config).eval()


def work_of(model: nn.Module) -> Callable[[Size], tuple[int, int]]:
    """(params, MACs per image) of ``model``'s architecture at an LR size, counted once per size."""
    twin = meta_twin(model)

    @cache
    def work(size: Size) -> tuple[int, int]:
        count = count_ops(twin, tuple(size))
        return count.params, count.macs

    return work


def cuda_event_timer(device: torch.device) -> Timer:
    """Milliseconds of one call between two CUDA events on the current stream."""
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def timed(step: Callable[[], object]) -> float:
        with torch.cuda.device(device):
            start.record()
            step()
            stop.record()
            stop.synchronize()
        return start.elapsed_time(stop)

    return timed


@contextmanager
def cuda_fp32_math(tf32: bool) -> Iterator[None]:
    """CUDA convolutions and matrix products in FP32 with (``tf32``) or without TF32 rounding inside the block, the
    previous settings restored after. PyTorch's default allows TF32 in convolutions, so an "fp32" timing is a TF32
    one unless it is switched off."""
    conv = getattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision", None)
    if conv is not None:  # PyTorch >= 2.9: one precision setting per backend and operation
        settings = [(torch.backends.cudnn.conv, "fp32_precision"), (torch.backends.cuda.matmul, "fp32_precision")]
        value = "tf32" if tf32 else "ieee"
    else:
        settings = [(torch.backends.cudnn, "allow_tf32"), (torch.backends.cuda.matmul, "allow_tf32")]
        value = tf32
    saved = [getattr(owner, name) for owner, name in settings]
    try:
        for owner, name in settings:
            setattr(owner, name, value)
        yield
    finally:
        for (owner, name), previous in zip(settings, saved):
            setattr(owner, name, previous)


def torch_device_contestant(model: nn.Module, name: str, device: torch.device, precision: str) -> Contestant:
    """``model`` on ``device`` in ``precision`` (fp32 without TF32, tf32 with it, fp16), fed a device-resident input:
    only the forward is timed."""
    model = model.to(device=device, dtype=DTYPES[precision]).eval()

    def prepare(lr: np.ndarray) -> Callable[[], object]:
        x = torch.from_numpy(lr).to(device=device, dtype=DTYPES[precision])

        def step() -> object:
            with torch.inference_mode(), cuda_fp32_math(tf32=precision == "tf32"):
                return model(x)

        return step

    timer, work = cuda_event_timer(device), work_of(model)
    return Contestant("torch", model.config.scale, prepare, timer, work, name, device.type, precision)


def _gldfn_model(request: BenchRequest, config_name: str | None, shipped: str | None) -> tuple[nn.Module, str]:
    from gldfn_model.network.model_source import resolve_model

    source = resolve_model(request.scale, config_name, request.checkpoint, request.random_weights, request.seed,
                           model=shipped)
    return source.model, source.config_name


def _export(model: nn.Module, name: str, gldfn: bool, config_name: str | None, folder: Path,
            log: Callable[[str], None]) -> Path:
    path = folder / f"{name}.onnx"
    log(f"exporting {name} to ONNX...")
    if gldfn:
        find_exporter("onnx")(model, path, verify=False, config_name=config_name or "custom")
    else:
        find_exporter("onnx-peer")(model, path, name)
    return path


def _ldf_kernel_note() -> str:
    from gldfn_model.ops.cuda_ops import load_extension

    status = load_extension()
    if status.available:
        return (f"GLDFN's local dynamic filter runs the project's CUDA kernel "
                f"(extension ready in {status.build_seconds:.1f} s)")
    return f"GLDFN's local dynamic filter runs the PyTorch reference on CUDA, not the project's kernel: {status.reason}"


def _onnx_work(runner: OnnxRuntimeRunner) -> Callable[[Size], tuple[int, int]] | None:
    """The work of a given GLDFN file, from the named config in its metadata (None for another config)."""
    from gldfn_model.network.config import NAMED_CONFIGS, get_config
    from gldfn_model.network.gldfn import GLDFN

    if runner.config_name not in NAMED_CONFIGS:
        return None
    with torch.device("meta"):
        return work_of(GLDFN(get_config(runner.config_name, runner.scale)))


def _onnx_runner(request: BenchRequest, path: Path) -> OnnxRuntimeRunner:
    runner = OnnxRuntimeRunner(path, providers=request.providers, threads=request.threads)
    if runner.scale != request.scale:
        raise BenchSetupError(f"{path} upscales x{runner.scale}, not x{request.scale}; pass --scale {runner.scale}")
    return runner


def build_contestants(request: BenchRequest, folder: Path, log: Callable[[str], None] = lambda _: None) -> BenchSetup:
    """Every (network, backend, precision) of ``request``; ONNX Runtime runs exports written into ``folder``."""
    from gldfn_model.peers import build_network

    request.check()
    peers = [m for m in request.models if not request.is_gldfn(m)]
    if peers and request.checkpoint is None:
        request = replace(request, random_weights=True)
    config_name = request.gldfn_config or (None if request.shipped_models or request.checkpoint
                                           else "paper" if peers else "tiny")
    setup = BenchSetup([], None)
    gldfn_configs: list[str] = []
    if peers:
        setup.notes.append("random weights for every network (the peers have none here): "
                           "latency does not depend on them")
    for name in request.models:
        model, work, gldfn = None, None, request.is_gldfn(name)
        if not gldfn:
            torch.manual_seed(request.seed)
            model = build_network(name, request.scale).eval()
        elif request.onnx is None or "torch" in request.backends:
            model, gldfn_config = _gldfn_model(request, config_name, name if name in request.shipped_models else None)
            gldfn_configs.append(gldfn_config)
        if model is not None:
            work = work_of(model)
        for backend in request.backends:
            if backend == "torch" and request.device == "cuda":
                if gldfn:
                    setup.notes.append(_ldf_kernel_note())
                for precision in request.precisions:
                    device_model = copy.deepcopy(model)
                    gpu = torch.device("cuda", request.gpu)
                    setup.contestants.append(torch_device_contestant(device_model, name, gpu, precision))
            elif backend == "torch":
                runner = TorchRunner(model, threads=request.threads)
                setup.contestants.append(
                    runner_contestant(runner, work=work, model=name, device="cpu", precision="fp32"))
            else:
                path = request.onnx if request.onnx is not None else _export(model, name, gldfn, config_name, folder,
                                                                             log)
                runner = _onnx_runner(request, path)
                if gldfn and not gldfn_configs:
                    gldfn_configs.append(runner.config_name)
                file_work = work if request.onnx is None else _onnx_work(runner)
                setup.contestants.append(
                    runner_contestant(runner, work=file_work, model=name, device=request.providers, precision="fp32"))
    setup.gldfn_config = ", ".join(dict.fromkeys(c for c in gldfn_configs if c)) or None
    return setup
