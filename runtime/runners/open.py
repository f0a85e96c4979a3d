"""Open what a user has — an engine from ``gldfn-trt build`` or an exported ONNX file — as a TensorRT runner.

An ONNX file gets its engine from the engine cache, built on first use for the GPU present (TensorRT-RTX: for
that GPU's compute capability only, so the first build is as short as it can be), so that ``gldfn-trt run|bench
MODEL.onnx`` and ``Upscaler.from_onnx(..., backend="tensorrt")`` need no separate build step. The GPU is checked
before anything is built: without one the error names the CPU commands instead.
"""
from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

from gldfn_model.data.image_io import image_size
from gldfn_runtime.engine.build import (
    DEFAULT_PROFILE,
    LARGEST_IMAGE_PROFILE,
    BuildOptions,
    EngineBuildError,
    cached_engine,
    profile_for_sizes,
)
from gldfn_runtime.engine.sidecar import Size
from gldfn_runtime.runners.trt_runner import CPU_ALTERNATIVES, NoGpuError, TensorRTRunner
from gldfn_runtime.tensorrt.backend import BackendError, current_gpu, select_flavour

ONNX_SUFFIX = ".onnx"


def is_onnx_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() == ONNX_SUFFIX


def profile_for_images(images: Sequence[str | os.PathLike[str]]) -> dict[str, Size]:
    """The optimization profile for upscaling ``images`` (LR sizes from their headers; unreadable files left out):
    each image whole up to ``LARGEST_IMAGE_PROFILE``, opt the most frequent size."""
    sizes = [size for size in (image_size(path) for path in images) if size is not None]
    return profile_for_sizes(sizes, cap=LARGEST_IMAGE_PROFILE)


def engine_for_onnx(
    onnx_path: str | os.PathLike[str],
    *,
    plugin: str | os.PathLike[str] | None = None,
    precision: str | None = None,
    device: int = 0,
    backend: str = "auto",
    cache_dir: str | os.PathLike[str] | None = None,
    report: Callable[[str], None] | None = None,
    profile: dict[str, Size] | None = None,
) -> Path:
    """The cached engine for ``onnx_path`` on GPU ``device``, built first when the cache has none, with the
    optimization ``profile`` (min, opt, max LR sizes; default ``DEFAULT_PROFILE``, see ``profile_for_sizes``)."""
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise EngineBuildError(f"ONNX file {onnx_path} does not exist (export one with gldfn-export)")
    gpu, reason = current_gpu(device)
    if gpu is None:
        raise NoGpuError(f"cannot run {onnx_path} with TensorRT: {reason}. TensorRT needs an NVIDIA GPU; "
                         + CPU_ALTERNATIVES.format(onnx=shlex.quote(str(onnx_path))))
    try:
        flavour = select_flavour(backend)
    except BackendError as error:
        raise EngineBuildError(str(error)) from None
    targets = (gpu.compute_capability,) if flavour.builds_ahead_of_time else ()
    profile = profile or DEFAULT_PROFILE
    options = BuildOptions(precision=precision, plugin=plugin, backend=flavour.name, compute_capabilities=targets,
                           min_size=profile["min"], opt_size=profile["opt"], max_size=profile["max"])
    if report is not None:
        report(f"engine for {onnx_path}: looking in the cache (first use builds it for {gpu.name}, which takes a while)")
    result = cached_engine(onnx_path, options, cache_dir=cache_dir)
    if report is not None:
        how = "reused from the cache" if result.cache_hit else f"built in {result.sidecar.build_seconds:.1f} s"
        report(f"engine {result.engine_path}: {how}")
    return result.engine_path


def open_tensorrt_runner(
    model: str | os.PathLike[str],
    *,
    plugin: str | os.PathLike[str] | None = None,
    precision: str | None = None,
    device: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    scale: int | None = None,
    report: Callable[[str], None] | None = None,
    profile: dict[str, Size] | None = None,
) -> TensorRTRunner:
    """A runner for an engine file, or for an ONNX file through its cached engine (``precision``, ``profile``: ONNX
    files only; an engine's are the ones it was built with). ``cache_dir``: the engine cache, beside which
    TensorRT-RTX's runtime cache is kept too. ``scale``: checked against the model's, or the scale of an engine
    whose output shape is unknown before it runs. ``report`` gets progress lines and, prefixed ``warning:``, the
    warning about an engine without a sidecar."""
    if is_onnx_path(model):
        model = engine_for_onnx(model, plugin=plugin, precision=precision, device=device, cache_dir=cache_dir,
                                report=report, profile=profile)
    elif precision is not None:
        raise EngineBuildError(f"--precision applies to ONNX files; {model} is an engine built as it is "
                               "(build another with `gldfn-trt build MODEL.onnx --precision ...`)")
    warn = (lambda line: report(f"warning: {line}")) if report is not None else None
    return TensorRTRunner(model, plugin=plugin, device=device, scale=scale, report=warn, cache_dir=cache_dir)
