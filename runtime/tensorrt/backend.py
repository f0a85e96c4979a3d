"""The TensorRT flavour a build or a run uses, and the precision rules that differ between flavours.

- TensorRT <= 10 builds weakly typed networks: FP16 comes from the builder's FP16 flag on an FP32 ONNX.
- TensorRT >= 11 and TensorRT-RTX build strongly typed networks only (no precision flags): FP16 needs an FP16
  ONNX, made by ``gldfn-export --precision fp16`` (float32 I/O, fragile parts kept in float32).
- TensorRT-RTX builds ahead of time on the CPU for a list of compute capabilities; TensorRT builds for the GPU
  it runs on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gldfn_model.common.errors import GldfnError
from gldfn_runtime.tensorrt.compat import TensorRTBackend, TensorRTUnavailable, load_tensorrt

BACKEND_CHOICES = ("auto", "tensorrt", "tensorrt-rtx")
PRECISIONS = ("fp32", "fp16", "int8")
_MODULE_BY_CHOICE = {"tensorrt": "tensorrt", "tensorrt-rtx": "tensorrt_rtx"}
# TensorRT-RTX targets these when no compute capability is named ("8.0, 8.6, 8.9, 12.0 and later" in its
# CPU-only AOT documentation); Turing (SM75) must be asked for explicitly.
RTX_DEFAULT_COMPUTE_CAPABILITIES = ("SM80", "SM86", "SM89", "SM120", "SM121")


class BackendError(GldfnError, ValueError):
    """A flavour, precision or compute capability request that cannot be served; the message says why."""


@dataclass(frozen=True)
class Flavour:
    """One importable TensorRT flavour and what its builder supports."""

    backend: TensorRTBackend

    @property
    def trt(self) -> Any:
        return self.backend.module

    @property
    def name(self) -> str:
        """``tensorrt`` or ``tensorrt-rtx`` (the spelling of ``--backend``)."""
        return "tensorrt-rtx" if self.backend.is_rtx else "tensorrt"

    @property
    def version(self) -> str:
        return self.backend.version

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def is_rtx(self) -> bool:
        return self.backend.is_rtx

    @property
    def strongly_typed(self) -> bool:
        """Whether every network is strongly typed (precision comes from the ONNX file's types)."""
        return self.is_rtx or self.major >= 11

    @property
    def builds_ahead_of_time(self) -> bool:
        """Whether engines target named compute capabilities instead of the build machine's GPU."""
        return self.is_rtx

    @property
    def supported_compute_capabilities(self) -> tuple[str, ...]:
        if not self.is_rtx:
            return ()
        members = self.trt.ComputeCapability.__members__
        return tuple(name for name in members if name.startswith("SM"))

    def describe(self) -> str:
        return f"{self.name} {self.version}"


def select_flavour(choice: str = "auto") -> Flavour:
    """The flavour for ``--backend``: ``tensorrt``, ``tensorrt-rtx``, or ``auto`` (the first that imports,
    TensorRT before TensorRT-RTX, unless GLDFN_TENSORRT says otherwise)."""
    if choice not in BACKEND_CHOICES:
        raise BackendError(f"backend {choice!r} is not one of {', '.join(BACKEND_CHOICES)}")
    module = None if choice == "auto" else _MODULE_BY_CHOICE[choice]
    try:
        return Flavour(load_tensorrt(module))
    except TensorRTUnavailable as error:
        raise BackendError(str(error)) from None


def normalize_compute_capabilities(flavour: Flavour, requested: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Compute capability names (``SM86``; ``86`` and ``8.6`` accepted) checked against what the flavour can
    target. Empty for TensorRT, which builds for the GPU present."""
    if not requested:
        return ()
    if not flavour.builds_ahead_of_time:
        raise BackendError(
            f"--compute-capability is a TensorRT-RTX option; {flavour.describe()} builds for the GPU it runs on"
        )
    supported = flavour.supported_compute_capabilities
    names = []
    for item in requested:
        for part in str(item).split(","):
            part = part.strip().upper()
            if not part:
                continue
            name = part if part.startswith("SM") else "SM" + part.replace(".", "")
            if name not in supported:
                raise BackendError(
                    f"compute capability {part!r} is not one {flavour.describe()} can target; choose from "
                    f"{', '.join(supported)} (no SM90: H100/H200 need full TensorRT)"
                )
            if name not in names:
                names.append(name)
    return tuple(names)


def check_precision(precision: str, onnx_precision: str | None, onnx_path: str) -> None:
    """Reject builds the flavour cannot make from this ONNX file, naming the command that makes the right file.
    INT8 always comes from explicit Q/DQ nodes (``gldfn-calibrate``), never from a builder calibrator; FP16 from an
    FP32 file is made by converting the file (``gldfn_model.ops.onnx_fp16``), so it is accepted here."""
    if precision not in PRECISIONS:
        raise BackendError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if onnx_precision is None or onnx_precision == precision or (precision, onnx_precision) == ("fp16", "fp32"):
        return
    if precision == "int8" or onnx_precision == "int8":
        raise BackendError(
            f"{onnx_path} is {onnx_precision}; an {precision} engine needs "
            + ("a Q/DQ ONNX file from `gldfn-calibrate`" if precision == "int8" else f"the {precision} export (gldfn-export --precision {precision})")
        )
    raise BackendError(
        f"{onnx_path} is an FP16 export; an FP32 engine needs the FP32 export (gldfn-export --precision fp32)"
    )


def configure_precision(flavour: Flavour, config: Any, precision: str) -> None:
    """Set the builder flag where the flavour has one (TensorRT <= 10: FP16, or INT8 so that its Q/DQ nodes are
    honoured); strongly typed flavours take their types from the network."""
    if flavour.strongly_typed or precision == "fp32":
        return
    config.set_flag(flavour.trt.BuilderFlag.FP16 if precision == "fp16" else flavour.trt.BuilderFlag.INT8)


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    compute_capability: str  # "SM86"


def current_gpu(index: int = 0) -> tuple[GpuInfo | None, str]:
    """The CUDA GPU ``index`` through NVIDIA's cuda-python, or None and the reason there is none."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        return None, "cuda-python is not installed (pip install cuda-python)"
    error, count = cudart.cudaGetDeviceCount()
    if error != cudart.cudaError_t.cudaSuccess or count == 0:
        reason = "no CUDA GPU" if error == cudart.cudaError_t.cudaSuccess else cudart.cudaGetErrorString(error)[1].decode()
        return None, f"no usable CUDA GPU on this machine ({reason})"
    if index >= count:
        return None, f"GPU {index} does not exist ({count} visible)"
    error, properties = cudart.cudaGetDeviceProperties(index)
    if error != cudart.cudaError_t.cudaSuccess:
        return None, f"cannot query GPU {index}: {cudart.cudaGetErrorString(error)[1].decode()}"
    name = properties.name.decode(errors="replace").rstrip("\x00")
    return GpuInfo(index, name, f"SM{properties.major}{properties.minor}"), ""
