"""Find the ONNX Runtime custom-op library built from ``plugins/ort`` (``gldfn-trt plugin build-ort``), and read
what it registers.

``libgldfn_ort_ops.so`` holds ``gldfn::GLDFN_LocalDynamicFilter`` for ONNX Runtime's CPU execution provider (and
its CUDA one when built with nvcc). ONNX Runtime sessions the project creates register it when it is found
(gldfn_model.inference.onnxruntime_runner, through the ``gldfn.ort_custom_ops`` entry point that names
:func:`ort_custom_ops_library`); without it they run the op's ONNX function body, with the same results.
"""
from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from pathlib import Path

from gldfn_runtime.plugin.library import DEFAULT_BUILD_DIR, PLUGIN_SOURCE_DIR, PluginLibraryError

ORT_SOURCE_DIR = PLUGIN_SOURCE_DIR / "ort"
ORT_BUILD_DIR = DEFAULT_BUILD_DIR / "ort"
ORT_LIBRARY_FILENAME = "libgldfn_ort_ops.so"
# A library path, or "none" for the ONNX function bodies even where a library is built.
ORT_LIBRARY_ENV = "GLDFN_ORT_OPS_LIBRARY"
ORT_LIBRARY_DISABLED = "none"


def ort_custom_ops_library(providers: Sequence[str] | None = None) -> Path | None:
    """The custom-op library ONNX Runtime sessions should register: $GLDFN_ORT_OPS_LIBRARY when set (``none``:
    no library), else ``plugins/build/ort/libgldfn_ort_ops.so`` when built; None when there is none. With
    ``providers`` (a session's, preferred first), only a library with kernels for the first of them: a CPU-only
    library in a CUDA session would move the op to the CPU, where the function body stays on the GPU.
    PluginLibraryError when the variable names a file that does not exist."""
    chosen = os.environ.get(ORT_LIBRARY_ENV, "").strip()
    if chosen.lower() == ORT_LIBRARY_DISABLED:
        return None
    if chosen:
        library = Path(chosen).expanduser()
        if not library.is_file():
            raise PluginLibraryError(f"{ORT_LIBRARY_ENV}={chosen} is not a file: build the library with `gldfn-trt "
                                     f"plugin build-ort`, or set {ORT_LIBRARY_ENV}={ORT_LIBRARY_DISABLED} for the "
                                     "ONNX function bodies")
    else:
        library = ORT_BUILD_DIR / ORT_LIBRARY_FILENAME
        if not library.is_file():
            return None
    if providers and providers[0] not in describe_ort_library(library)["providers"].split(","):
        return None
    return library.resolve()


def describe_ort_library(library: str | os.PathLike[str]) -> dict[str, str]:
    """What a custom-op library says it registers (its ``gldfn_ort_ops_info``): ``op``, ``version``,
    ``contract``, ``ort-api`` (the oldest ONNX Runtime C API it loads into), ``providers`` (comma-separated
    execution providers) and ``cpu-isa`` (the CPU kernel's instruction set on this machine). Loading it runs no
    ONNX Runtime code."""
    try:
        handle = ctypes.CDLL(str(Path(library).resolve()))
        info = handle.gldfn_ort_ops_info
    except (OSError, AttributeError) as exc:
        raise PluginLibraryError(f"{library} is not a GLDFN ONNX Runtime custom-op library: {exc}") from exc
    info.restype = ctypes.c_char_p
    return dict(field.split("=", 1) for field in info().decode().split(";"))
