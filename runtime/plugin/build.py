"""Build the TensorRT plugin library from ``plugins/`` with CMake, and find what that build needs: TensorRT
headers of the wanted major (their version read from NvInferVersion.h), nvcc and the SMs it compiles for.

One build at a time per folder (a lock file), and the library reaches the folder complete or not at all: the
linker writes it into ``.link/``, whence it is copied into place atomically. Where the runtime then finds the
library, and how it checks and loads it, is :mod:`gldfn_runtime.plugin.library`.
"""
from __future__ import annotations

import fcntl
import functools
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from gldfn_model.common.atomic import atomic_output
from gldfn_runtime.plugin.cuda_binary import CudaArch, format_archs, parse_target, uncovered_targets
from gldfn_runtime.plugin.library import (
    DEFAULT_BUILD_DIR,
    PLUGIN_SOURCE_DIR,
    PluginLibraryError,
    Version,
    default_build_dir,
    format_version,
    installed_tensorrt_major,
    library_cuda_archs,
    library_filename,
)

MIN_TENSORRT_MAJOR = 10  # IPluginV3
# TensorRT <= 10.12 defines NV_TENSORRT_MAJOR as a number, 10.13 and later TRT_MAJOR_ENTERPRISE.
_HEADER_DEFINE = re.compile(r"^#define\s+(?:NV_TENSORRT_|TRT_)(MAJOR|MINOR|PATCH)(?:_ENTERPRISE)?\s+(\d+)", re.M)
# The linker writes the library here; it is copied to the build folder atomically once complete, so that an
# interrupted build never leaves a half library where the runtime looks.
LINK_SUBDIR = ".link"
_LOCK_NAME = ".gldfn-plugin-build.lock"
_PROGRESS = re.compile(r"^\[\s*\d+(?:%|/\d+)\]")  # make's "[ 50%] Building ...", ninja's "[3/7] Building ..."

# Wheels whose CUDA major should be the plugin's (the static CUDA runtime of the nvcc that built it): their name
# says it, or (cuda-bindings, cuda-python's) their version does.
_CUDA_WHEELS = {"cuda-bindings": None, "tensorrt-cu12": 12, "tensorrt-cu13": 13, "tensorrt-rtx-cu12": 12,
                "tensorrt-rtx-cu13": 13}
MIN_DRIVER = {12: 525, 13: 580}  # NVIDIA's minor-version compatibility: the oldest driver branch per CUDA major


def header_version(include_dir: str | os.PathLike[str]) -> Version | None:
    """The TensorRT version of the headers in ``include_dir`` (from NvInferVersion.h), or None."""
    path = Path(include_dir) / "NvInferVersion.h"
    if not path.is_file():
        return None
    parts = {name: int(value) for name, value in _HEADER_DEFINE.findall(path.read_text(errors="replace"))}
    if "MAJOR" not in parts:
        return None
    return parts["MAJOR"], parts.get("MINOR", 0), parts.get("PATCH", 0)


def _header_candidates(tensorrt_root: str | os.PathLike[str] | None) -> list[Path]:
    roots = []
    root = tensorrt_root or os.environ.get("TENSORRT_ROOT")
    if root:
        roots += [Path(root), Path(root) / "include"]
    if tensorrt_root is None:
        for prefix in ("/usr", "/usr/local"):
            roots += [Path(prefix) / "include" / f"{platform.machine()}-linux-gnu", Path(prefix) / "include"]
    return [root for root in roots if (root / "NvInferRuntime.h").is_file()]


def find_tensorrt_headers(
    tensorrt_major: int | None = None, tensorrt_root: str | os.PathLike[str] | None = None
) -> Path | None:
    """The folder holding NvInferRuntime.h that the CMake build would use, or None: ``tensorrt_root`` (or its
    include/) when given, else $TENSORRT_ROOT, then the standard include folders. With ``tensorrt_major``, the
    first of them whose headers are of that major."""
    for candidate in _header_candidates(tensorrt_root):
        version = header_version(candidate)
        if tensorrt_major is None or (version is not None and version[0] == tensorrt_major):
            return candidate
    return None


def find_nvcc() -> Path | None:
    """The CUDA compiler CMake would take: $CUDACXX, nvcc on PATH, or /usr/local/cuda/bin/nvcc."""
    for candidate in (os.environ.get("CUDACXX"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


@functools.cache
def nvcc_gpu_codes(nvcc: Path) -> frozenset[int] | None:
    """The SMs (86 for sm_86) ``nvcc`` compiles for (``--list-gpu-code``), or None when it cannot say."""
    try:
        result = subprocess.run([str(nvcc), "--list-gpu-code"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    codes = frozenset(int(sm) for sm in re.findall(r"^sm_(\d+)$", result.stdout, re.M))
    return codes if result.returncode == 0 and codes else None


def cuda_architectures_for(targets: Sequence[str], supported: frozenset[int] | None = None) -> str:
    """CMAKE_CUDA_ARCHITECTURES for GPUs ``targets`` (``SM86``...): SASS for each target that ``supported`` (the
    SMs nvcc knows; None: all) holds, plus PTX of the lowest target (or the newest SM below it) so that later
    GPUs run it through JIT. PluginLibraryError when that still leaves a target uncovered."""
    wanted = sorted({major * 10 + minor for major, minor in map(parse_target, targets)})
    sass = [sm for sm in wanted if supported is None or sm in supported]
    below = [sm for sm in supported or () if sm <= wanted[0]]
    ptx = wanted[0] if supported is None else max(below) if below else None
    archs = [CudaArch(sm // 10, sm % 10, False) for sm in sass]
    archs += [CudaArch(ptx // 10, ptx % 10, True)] if ptx is not None else []
    missing = uncovered_targets(archs, targets)
    if missing:
        known = ", ".join(f"sm_{sm}" for sm in sorted(supported or ()))
        raise PluginLibraryError(
            f"the CUDA compiler cannot produce code for {', '.join(missing)} (it knows {known}): install a CUDA "
            f"toolkit that does, or build the engine for other targets (--compute-capability)"
        )
    return ";".join([f"{sm}-real" for sm in sass] + ([f"{ptx}-virtual"] if ptx is not None else []))


def missing_build_tools(tensorrt_major: int) -> list[str]:
    """What `gldfn-trt plugin build` needs and this machine lacks, each said as what to install."""
    missing = []
    if shutil.which("cmake") is None:
        missing.append("cmake (CMake >= 3.25 on PATH)")
    if find_nvcc() is None:
        missing.append("nvcc (the CUDA toolkit: $CUDACXX, PATH or /usr/local/cuda/bin)")
    if find_tensorrt_headers(tensorrt_major) is None:
        missing.append(f"TensorRT {tensorrt_major}.x headers (NvInferRuntime.h in $TENSORRT_ROOT or the standard "
                       "include folders)")
    return missing


def installed_cuda_majors() -> dict[str, int]:
    """The CUDA major of each installed cuda-python / TensorRT wheel, by distribution name."""
    found = {}
    for name, major in _CUDA_WHEELS.items():
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        found[name] = major if major is not None else int(version.split(".")[0])
    return found


def cuda_major_warnings(nvcc_version: str, installed: dict[str, int]) -> list[str]:
    """Warnings for installed wheels of another CUDA major than the nvcc that builds the plugin."""
    major = int(nvcc_version.split(".")[0])
    driver = f" (driver >= {MIN_DRIVER[major]})" if major in MIN_DRIVER else ""
    return [
        f"warning: nvcc {nvcc_version} gives the plugin the CUDA {major} runtime{driver}, but {name} is CUDA {other}: "
        f"build with a CUDA {other} nvcc (set CUDACXX to it) or install the CUDA {major} extras, so that one CUDA "
        f"major (and driver) serves all"
        for name, other in installed.items() if other != major
    ]


def _run(command: list[str], step: str, report: Callable[[str], None] | None = None) -> str:
    """Run ``command``; its output (stdout and stderr), with its build-progress lines passed to ``report``."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if report is not None and _PROGRESS.match(line):
                report(line.rstrip())
        returncode = process.wait()
    except BaseException:
        process.terminate()
        process.wait()
        raise
    if returncode != 0:
        output = "".join(lines).strip().splitlines()
        raise PluginLibraryError(f"{step} failed ({' '.join(command)}):\n" + "\n".join(output[-40:]))
    return "".join(lines)


def _build_headers(tensorrt_major: int | None, tensorrt_root: str | os.PathLike[str] | None) -> tuple[Path, Version]:
    """The TensorRT headers to build with and their version: of ``tensorrt_major`` when given, else those in
    ``tensorrt_root`` when given, else of the installed TensorRT's major."""
    wanted = tensorrt_major or (None if tensorrt_root else installed_tensorrt_major())
    headers = find_tensorrt_headers(wanted, tensorrt_root)
    if headers is None:
        what = "TensorRT headers" if wanted is None else f"TensorRT {wanted}.x headers"
        if tensorrt_major is None and wanted is not None:
            what += f" (the installed TensorRT loads plugins through TensorRT {wanted}'s interfaces)"
        where = f"in {tensorrt_root}" if tensorrt_root else "in $TENSORRT_ROOT or the standard include folders"
        other = find_tensorrt_headers(None, tensorrt_root)
        if other is not None:
            where += f", only {format_version(header_version(other) or (0, 0, 0))} ones in {other}"
        raise PluginLibraryError(
            f"no {what} (NvInferRuntime.h) {where}. Install them (NVIDIA's libnvinfer-headers-dev, or include/ of "
            f"github.com/NVIDIA/TensorRT at the matching tag) and pass --tensorrt-root FOLDER or set TENSORRT_ROOT"
        )
    version = header_version(headers)
    if version is None:
        raise PluginLibraryError(f"{headers} has NvInferRuntime.h but no readable NvInferVersion.h; reinstall them")
    if version[0] < MIN_TENSORRT_MAJOR:
        raise PluginLibraryError(
            f"{headers} holds TensorRT {format_version(version)} headers; the plugin needs >= {MIN_TENSORRT_MAJOR}"
        )
    return headers, version


def locked_cmake_build(
    build: Path,
    configure: list[str],
    built: Path,
    linked: Path | None,
    *,
    jobs: int | None = None,
    report: Callable[[str], None] | None = None,
    configured: Callable[[str], None] | None = None,
) -> None:
    """Configure (``configure``, a cmake command line) and build in ``build``, one build at a time per folder (a
    lock file). ``configured`` receives the configure step's output before the build starts, ``report`` the
    build's progress lines. When ``linked`` is given (where the linker writes the library), it reaches ``built``
    complete or not at all: copied there atomically once the build has finished."""
    build.mkdir(parents=True, exist_ok=True)
    with open(build / _LOCK_NAME, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when a killed process's does
        output = _run(configure, "CMake configure")
        if configured is not None:
            configured(output)
        if linked is not None:
            linked.unlink(missing_ok=True)  # a killed link leaves a half file that make would take as up to date
        _run(["cmake", "--build", str(build), "-j", str(jobs or os.cpu_count() or 1)], "CMake build", report)
        if linked is not None:
            if not linked.is_file():
                raise PluginLibraryError(f"the build finished but {linked} is missing")
            with atomic_output(built, overwrite=True) as partial:  # a build folder's product, rebuilt in place
                shutil.copy2(linked, partial)


def build_plugin_library(
    build_dir: str | os.PathLike[str] | None = None,
    *,
    source_dir: str | os.PathLike[str] = PLUGIN_SOURCE_DIR,
    cuda_architectures: str | None = None,
    tensorrt_root: str | os.PathLike[str] | None = None,
    tensorrt_major: int | None = None,
    build_type: str = "Release",
    kernel_only: bool = False,
    jobs: int | None = None,
    report: Callable[[str], None] | None = None,
) -> Path:
    """Configure and build the CMake project; return the built library (or the kernel archive when
    ``kernel_only``). The library is built for ``tensorrt_major`` (default: the headers in ``tensorrt_root``
    when given, else the installed TensorRT's major, else the headers found), into ``build_dir`` (default: that
    major's default build folder). ``cuda_architectures``
    overrides the SM list, e.g. "80-real" for a quick build; by default CMake takes every SM the nvcc found
    supports. ``report`` receives the configure step's summary lines (headers, nvcc, architectures), the build's
    progress lines and the CUDA code the library carries. One build at a time per folder (a lock file); the
    library reaches the folder complete or not at all (linked in ``.link/``, then renamed into place)."""
    if shutil.which("cmake") is None:
        raise PluginLibraryError("cmake is not on PATH; install CMake >= 3.25")
    source = Path(source_dir)
    if not (source / "CMakeLists.txt").is_file():
        raise PluginLibraryError(f"{source} holds no CMakeLists.txt; pass the project's plugins/ folder")
    nvcc = find_nvcc()
    if nvcc is None:
        raise PluginLibraryError("nvcc not found (CUDACXX, PATH, /usr/local/cuda/bin): install the CUDA toolkit")
    configure = ["cmake", "-S", str(source), f"-DCMAKE_BUILD_TYPE={build_type}", f"-DCMAKE_CUDA_COMPILER={nvcc}",
                 f"-DGLDFN_KERNEL_ONLY={'ON' if kernel_only else 'OFF'}"]
    # Without an explicit list, drop a cached one so that CMake picks what this nvcc supports.
    if cuda_architectures:
        configure.append(f"-DCMAKE_CUDA_ARCHITECTURES={cuda_architectures}")
    else:
        configure.append("-UCMAKE_CUDA_ARCHITECTURES")
    if kernel_only:
        build = Path(build_dir) if build_dir is not None else DEFAULT_BUILD_DIR / "kernel"
        built_name, linked = "libgldfn_ldf_kernel.a", None
    else:
        headers, version = _build_headers(tensorrt_major, tensorrt_root)
        build = Path(build_dir) if build_dir is not None else default_build_dir(version[0])
        built_name = library_filename(version[0])
        linked = build / LINK_SUBDIR / built_name
        configure += [f"-DTENSORRT_ROOT={headers.resolve()}", f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={linked.parent.absolute()}"]
    configure += ["-B", str(build)]

    def configured(output: str) -> None:
        if report is None:
            return
        for line in output.splitlines():
            if line.startswith(("-- nvcc ", "-- TensorRT ")):
                report(line[3:])
        nvcc_version = re.search(r"^-- nvcc ([0-9.]+):", output, re.M)
        for warning in cuda_major_warnings(nvcc_version[1], installed_cuda_majors()) if nvcc_version else ():
            report(warning)

    built = build / built_name
    locked_cmake_build(build, configure, built, linked, jobs=jobs, report=report, configured=configured)
    if not built.is_file():
        raise PluginLibraryError(f"the build finished but {built} is missing")
    if report is not None and not kernel_only:
        report(f"CUDA code: {format_archs(library_cuda_archs(built))}")
    return built.resolve()
