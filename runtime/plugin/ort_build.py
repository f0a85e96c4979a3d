"""Build the ONNX Runtime custom-op library (``plugins/ort``) with CMake: its CPU kernel with any C++17 compiler,
its CUDA execution provider kernel too where nvcc is found. It needs ONNX Runtime's C API header
(``onnxruntime_c_api.h``), never an ONNX Runtime library."""
from __future__ import annotations

import os
import platform
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from gldfn_runtime.plugin.build import LINK_SUBDIR, find_nvcc, locked_cmake_build
from gldfn_runtime.plugin.library import PluginLibraryError
from gldfn_runtime.plugin.ort_library import ORT_BUILD_DIR, ORT_LIBRARY_FILENAME, ORT_SOURCE_DIR

MIN_ORT_API = 17  # KernelContext_ParallelFor and custom-op shape inference (ONNX Runtime 1.17)
_API_DEFINE = re.compile(r"^#define\s+ORT_API_VERSION\s+(\d+)", re.M)
# Where the header lies below a root: a release's include/, an install prefix's include/onnxruntime/, a source tree.
_HEADER_SUFFIXES = ("", "include", "include/onnxruntime", "include/onnxruntime/core/session", "onnxruntime")


def ort_header_api(include_dir: str | os.PathLike[str]) -> int | None:
    """The C API version (ORT_API_VERSION) of the onnxruntime_c_api.h in ``include_dir``, or None."""
    path = Path(include_dir) / "onnxruntime_c_api.h"
    match = _API_DEFINE.search(path.read_text(errors="replace")) if path.is_file() else None
    return int(match[1]) if match else None


def find_ort_headers(onnxruntime_root: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder holding onnxruntime_c_api.h that the CMake build would use, or None: below ``onnxruntime_root``
    when given, else $ONNXRUNTIME_ROOT, then the standard include folders (their onnxruntime/ subfolder)."""
    root = onnxruntime_root or os.environ.get("ONNXRUNTIME_ROOT")
    roots = [Path(root)] if root else []
    if onnxruntime_root is None:
        roots += [Path(prefix) / "include" / sub for prefix in ("/usr/local", "/usr")
                  for sub in (f"{platform.machine()}-linux-gnu", "")]
    for base in roots:
        for suffix in _HEADER_SUFFIXES:
            if (base / suffix / "onnxruntime_c_api.h").is_file():
                return base / suffix
    return None


def missing_ort_build_tools() -> list[str]:
    """What `gldfn-trt plugin build-ort` needs and this machine lacks, each said as what to install."""
    missing = []
    if shutil.which("cmake") is None:
        missing.append("cmake (CMake >= 3.25 on PATH)")
    if not any(shutil.which(name) for name in (os.environ.get("CXX") or "c++", "g++", "clang++")):
        missing.append("a C++17 compiler (c++, g++ or clang++ on PATH)")
    if find_ort_headers() is None:
        missing.append("ONNX Runtime's C API header (onnxruntime_c_api.h, >= 1.17: include/ of an ONNX Runtime "
                       "release in $ONNXRUNTIME_ROOT, or /usr/local/include/onnxruntime)")
    return missing


def build_ort_ops_library(
    build_dir: str | os.PathLike[str] | None = None,
    *,
    source_dir: str | os.PathLike[str] = ORT_SOURCE_DIR,
    cuda: bool | None = None,
    cuda_architectures: str | None = None,
    onnxruntime_root: str | os.PathLike[str] | None = None,
    build_type: str = "Release",
    jobs: int | None = None,
    report: Callable[[str], None] | None = None,
) -> Path:
    """Configure and build the custom-op library; return its path (default folder: ``plugins/build/ort``, where
    the runtime finds it). ``cuda``: also the CUDA execution provider's kernel (None: when nvcc is found).
    ``cuda_architectures`` overrides the SM list (default: every SM from 75 the nvcc supports, + PTX).
    ``report`` receives the configure step's summary lines and the build's progress lines. One build at a time
    per folder; the library reaches the folder complete or not at all."""
    if shutil.which("cmake") is None:
        raise PluginLibraryError("cmake is not on PATH; install CMake >= 3.25")
    source = Path(source_dir)
    if not (source / "CMakeLists.txt").is_file():
        raise PluginLibraryError(f"{source} holds no CMakeLists.txt; pass the project's plugins/ort folder")
    headers = find_ort_headers(onnxruntime_root)
    where = f"below {onnxruntime_root}" if onnxruntime_root else "in $ONNXRUNTIME_ROOT or the standard include folders"
    if headers is None:
        raise PluginLibraryError(
            f"no ONNX Runtime C API header (onnxruntime_c_api.h) {where}: take include/ of an ONNX Runtime release "
            "(onnxruntime-linux-x64-<version>.tgz) or include/onnxruntime/core/session of its source, >= 1.17, and "
            "pass --onnxruntime-root FOLDER or set ONNXRUNTIME_ROOT"
        )
    api = ort_header_api(headers)
    if api is None or api < MIN_ORT_API:
        raise PluginLibraryError(f"{headers}/onnxruntime_c_api.h is of C API {api}; the library needs >= "
                                 f"{MIN_ORT_API} (ONNX Runtime 1.{MIN_ORT_API})")
    nvcc = find_nvcc()
    if cuda and nvcc is None:
        raise PluginLibraryError("nvcc not found (CUDACXX, PATH, /usr/local/cuda/bin): install the CUDA toolkit, or "
                                 "build without the CUDA kernel")
    with_cuda = nvcc is not None if cuda is None else cuda
    build = Path(build_dir) if build_dir is not None else ORT_BUILD_DIR
    linked = build / LINK_SUBDIR / ORT_LIBRARY_FILENAME
    configure = ["cmake", "-S", str(source), "-B", str(build), f"-DCMAKE_BUILD_TYPE={build_type}",
                 f"-DONNXRUNTIME_ROOT={headers.resolve()}", f"-DGLDFN_ORT_CUDA={'ON' if with_cuda else 'OFF'}",
                 f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={linked.parent.absolute()}"]
    if with_cuda:
        configure.append(f"-DCMAKE_CUDA_COMPILER={nvcc}")
        # Without an explicit list, drop a cached one so that CMake picks what this nvcc supports.
        configure.append(f"-DCMAKE_CUDA_ARCHITECTURES={cuda_architectures}" if cuda_architectures
                         else "-UCMAKE_CUDA_ARCHITECTURES")

    def configured(output: str) -> None:
        for line in output.splitlines():
            if report is not None and line.startswith(("-- nvcc ", "-- ONNX Runtime ", "-- GLDFN ONNX Runtime ")):
                report(line[3:])

    built = build / ORT_LIBRARY_FILENAME
    locked_cmake_build(build, configure, built, linked, jobs=jobs, report=report, configured=configured)
    return built.resolve()
