"""Build, find and load the TensorRT plugin library built from ``plugins/``.

The plugin calls TensorRT's logger through the ILogger/ILoggerFinder layout of the headers it was built with, and
that layout changed in TensorRT 11 (TensorRT-RTX 1.x shares 11's). So there is one library per TensorRT major:
``libgldfn_trt_plugins.so`` for TensorRT 11 and TensorRT-RTX (in ``plugins/build``), ``libgldfn_trt_plugins.trt10.so``
for TensorRT 10 (in ``plugins/build/trt10``). Each records its header version in an ELF section, and loading
refuses a library of another major than the loaded TensorRT's.

Without an explicit path the library is taken from GLDFN_TRT_PLUGIN_LIBRARY, else from the default build folder
of the installed TensorRT's major that ``gldfn-trt plugin build`` writes.

An engine's sidecar records the library it was built with, but only its SHA-256 is used: a path read from a
data file is never loaded.

For an engine build, :func:`resolve_plugin_library` also checks that the library's CUDA code (read from its
fatbinary, ``cuda_binary``) runs on every GPU the engine targets, and builds a missing default library first.
"""
from __future__ import annotations

import ctypes.util
import fcntl
import functools
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gldfn_model.common.atomic import atomic_output
from gldfn_model.common.errors import GldfnError
from gldfn_model.common.hashing import file_sha256
from gldfn_model.ops.contract import load_contract
from gldfn_runtime.cuda_binary import (
    FATBIN_SECTION,
    CudaArch,
    CudaBinaryError,
    format_archs,
    parse_target,
    read_cuda_archs,
    uncovered_targets,
)
from gldfn_runtime.tensorrt_compat import TensorRTBackend, TensorRTUnavailable, load_tensorrt

PLUGIN_SOURCE_DIR = Path(__file__).resolve().parent.parent / "plugins"
DEFAULT_BUILD_DIR = PLUGIN_SOURCE_DIR / "build"
LIBRARY_FILENAME = "libgldfn_trt_plugins.so"  # TensorRT 11 and TensorRT-RTX
DEFAULT_TENSORRT_MAJOR = 11  # the major whose library keeps the plain name (and the default build folder)
MIN_TENSORRT_MAJOR = 10  # IPluginV3
LIBRARY_ENV = "GLDFN_TRT_PLUGIN_LIBRARY"
# Written by plugins/plugin_entry.cpp into the library's .gldfn_build section.
_BUILD_INFO = re.compile(rb"gldfn-trt-plugin:tensorrt-headers=(\d+)\.(\d+)\.(\d+);")
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

_loaded: dict[tuple[int, Path], Any] = {}

Version = tuple[int, int, int]


class PluginLibraryError(GldfnError, RuntimeError):
    """The plugin library cannot be built, found or loaded; the message says what to do."""


def library_filename(tensorrt_major: int) -> str:
    """The library's file name for a TensorRT major: the plain name for 11, ``.trtN`` before ``.so`` otherwise."""
    if tensorrt_major == DEFAULT_TENSORRT_MAJOR:
        return LIBRARY_FILENAME
    return f"libgldfn_trt_plugins.trt{tensorrt_major}.so"


def default_build_dir(tensorrt_major: int) -> Path:
    return DEFAULT_BUILD_DIR if tensorrt_major == DEFAULT_TENSORRT_MAJOR else DEFAULT_BUILD_DIR / f"trt{tensorrt_major}"


def format_version(version: Version) -> str:
    return ".".join(map(str, version))


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


def library_tensorrt_version(library: str | os.PathLike[str]) -> Version | None:
    """The TensorRT header version a plugin library was built with (its .gldfn_build record), or None."""
    match = _BUILD_INFO.search(Path(library).read_bytes())
    return None if match is None else (int(match[1]), int(match[2]), int(match[3]))


def installed_tensorrt_major() -> int | None:
    """The TensorRT major whose plugin interfaces the installed TensorRT uses: the Python package's (TensorRT-RTX:
    11), else the soname of a system libnvinfer; None when neither is there."""
    try:
        return load_tensorrt().plugin_tensorrt_major
    except TensorRTUnavailable:
        pass
    match = re.fullmatch(r"libnvinfer\.so\.(\d+)", ctypes.util.find_library("nvinfer") or "")
    return int(match[1]) if match else None


def _locate(path: str | os.PathLike[str] | None, tensorrt_major: int | None = None) -> tuple[Path, str]:
    """The candidate library and where it came from: ``path``, else $GLDFN_TRT_PLUGIN_LIBRARY, else the default
    build folder of ``tensorrt_major`` (default: the installed TensorRT's, else 11)."""
    if path is not None:
        return Path(path), "the given path"
    if os.environ.get(LIBRARY_ENV):
        return Path(os.environ[LIBRARY_ENV]), f"${LIBRARY_ENV}"
    major = tensorrt_major or installed_tensorrt_major() or DEFAULT_TENSORRT_MAJOR
    return default_build_dir(major) / library_filename(major), f"the default build folder for TensorRT {major}"


def find_plugin_library(path: str | os.PathLike[str] | None = None, tensorrt_major: int | None = None) -> Path:
    """The library at ``path``, else at $GLDFN_TRT_PLUGIN_LIBRARY, else in the default build folder of
    ``tensorrt_major`` (default: the installed TensorRT's, else 11)."""
    candidate, origin = _locate(path, tensorrt_major)
    if not candidate.is_file():
        raise PluginLibraryError(
            f"plugin library not found at {candidate} ({origin}); build it with `gldfn-trt plugin build` "
            f"or pass the path of the library built for your TensorRT"
        )
    return candidate.resolve()


def find_engine_plugin(
    recorded: dict[str, Any] | None, engine: str | os.PathLike[str], path: str | os.PathLike[str] | None = None
) -> Path | None:
    """The plugin library to load for an engine whose sidecar records ``recorded`` (its ``plugin`` field): None
    when the engine needs none (built without the plugin, or with it embedded); else the library found as
    ``find_plugin_library(path)`` finds it (never the path in the sidecar), whose SHA-256 must be the recorded one."""
    if recorded is None or recorded.get("embedded"):
        return None
    wanted, built_with = str(recorded.get("sha256", "")), recorded.get("path")
    try:
        library = find_plugin_library(path)
    except PluginLibraryError as error:
        raise PluginLibraryError(
            f"engine {engine} needs the plugin library it was built with ({built_with}, SHA-256 {wanted[:16]}…): "
            f"{error}; the path in the sidecar is not loaded: pass --plugin or set ${LIBRARY_ENV}"
        ) from None
    found = file_sha256(library)
    if found != wanted:
        origin = _locate(path)[1]
        raise PluginLibraryError(
            f"plugin library {library} ({origin}, SHA-256 {found[:16]}…) is not the one engine {engine} was built "
            f"with ({built_with}, SHA-256 {wanted[:16]}…): pass the library it was built with (if you trust it) with "
            f"--plugin or ${LIBRARY_ENV}, or rebuild the engine with this one"
        )
    return library


def check_library_matches(library: Path, backend: TensorRTBackend) -> Version:
    """The library's header version; raise when it is not of the TensorRT major ``backend`` loads plugins with."""
    version = library_tensorrt_version(library)
    wanted = backend.plugin_tensorrt_major
    rebuild = f"gldfn-trt plugin build --tensorrt-major {wanted}"
    if version is None:
        raise PluginLibraryError(
            f"{library} records no TensorRT header version (built before this check, or not a GLDFN plugin "
            f"library); rebuild it with `{rebuild}`"
        )
    if version[0] != wanted:
        raise PluginLibraryError(
            f"{library} was built with TensorRT {format_version(version)} headers, but {backend.name} "
            f"{backend.version} loads plugins through TensorRT {wanted}'s interfaces, whose ILogger layout differs "
            f"(the library would lose its messages or crash on the first one). Build the matching library with "
            f"`{rebuild}` ({default_build_dir(wanted) / library_filename(wanted)}) and use that"
        )
    return version


def library_cuda_archs(library: str | os.PathLike[str]) -> tuple[CudaArch, ...] | None:
    """The CUDA architectures whose code ``library`` carries (its fatbinary), or None when it carries none."""
    try:
        return read_cuda_archs(library)
    except CudaBinaryError as error:
        raise PluginLibraryError(f"{error}; rebuild the plugin library with `gldfn-trt plugin build`") from None


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


def _plugin_build_command(targets: Sequence[str], tensorrt_major: int) -> str:
    """The `gldfn-trt plugin build` command that builds a library covering ``targets``."""
    nvcc = find_nvcc()
    try:
        archs = cuda_architectures_for(targets, nvcc_gpu_codes(nvcc) if nvcc else None)
    except PluginLibraryError:
        archs = cuda_architectures_for(targets)
    major = "" if tensorrt_major == DEFAULT_TENSORRT_MAJOR else f" --tensorrt-major {tensorrt_major}"
    return f"gldfn-trt plugin build --cuda-archs '{archs}'{major}"


def check_library_targets(
    library: Path, targets: Sequence[str], *, origin: str = "the given path",
    tensorrt_major: int = DEFAULT_TENSORRT_MAJOR, choosable: Sequence[str] = (),
) -> tuple[CudaArch, ...]:
    """The CUDA architectures of ``library``; PluginLibraryError naming the targets, the library's architectures
    and the ways out when its code does not run on every GPU in ``targets`` (``SM86``...), or when it carries no
    CUDA code at all (then it runs on none). ``choosable``: the targets the engine could be built for instead
    (TensorRT-RTX's), offered as --compute-capability when the library covers some of them."""
    archs = library_cuda_archs(library)
    missing = list(targets) if archs is None else uncovered_targets(archs, targets)
    if not missing:
        return archs
    rebuild = f"`{_plugin_build_command(targets, tensorrt_major)}`"
    default = default_build_dir(tensorrt_major) / library_filename(tensorrt_major)
    if library.resolve() != default.resolve():
        rebuild += f" (it writes {default}: use that one)"
    if archs is None:
        raise PluginLibraryError(
            f"plugin library {library} ({origin}) carries no CUDA code (no {FATBIN_SECTION} section: not built by "
            f"`gldfn-trt plugin build`, or stripped of its device code), so it runs on none of the engine's targets "
            f"{', '.join(targets)}; rebuild it with {rebuild}"
        )
    which = "any" if missing == list(targets) else ", ".join(missing)
    covered = [target for target in choosable if not uncovered_targets(archs, [target])]
    if covered:
        fewer = f", or build the engine only for targets it runs on: --compute-capability {','.join(covered)}"
    elif choosable:
        fewer = f". It runs on none of the targets the engine can be built for ({', '.join(choosable)})"
    else:
        fewer = ""
    raise PluginLibraryError(
        f"plugin library {library} ({origin}) carries CUDA code for {format_archs(archs)}, which does not run on "
        f"{which} of the engine's targets {', '.join(targets)} (a cubin sm_XY runs on compute capability X.Y and "
        f"later minors of X, PTX compute_XY on X.Y and later). Rebuild the plugin for them with {rebuild}{fewer}"
    )


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


def find_nvcc() -> Path | None:
    """The CUDA compiler CMake would take: $CUDACXX, nvcc on PATH, or /usr/local/cuda/bin/nvcc."""
    for candidate in (os.environ.get("CUDACXX"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


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
    build.mkdir(parents=True, exist_ok=True)
    with open(build / _LOCK_NAME, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when a killed process's does
        output = _run(configure, "CMake configure")
        if report is not None:
            for line in output.splitlines():
                if line.startswith(("-- nvcc ", "-- TensorRT ")):
                    report(line[3:])
            nvcc_version = re.search(r"^-- nvcc ([0-9.]+):", output, re.M)
            for warning in cuda_major_warnings(nvcc_version[1], installed_cuda_majors()) if nvcc_version else ():
                report(warning)
        if linked is not None:
            linked.unlink(missing_ok=True)  # a killed link leaves a half file that make would take as up to date
        _run(["cmake", "--build", str(build), "-j", str(jobs or os.cpu_count() or 1)], "CMake build", report)
        built = build / built_name
        if linked is not None:
            if not linked.is_file():
                raise PluginLibraryError(f"the build finished but {linked} is missing")
            with atomic_output(built) as partial:
                shutil.copy2(linked, partial)
    if not built.is_file():
        raise PluginLibraryError(f"the build finished but {built} is missing")
    if report is not None and not kernel_only:
        report(f"CUDA code: {format_archs(library_cuda_archs(built))}")
    return built.resolve()


def report_to_stderr(line: str) -> None:
    """A progress line for the person waiting: on stderr."""
    print(line, file=sys.stderr, flush=True)


def resolve_plugin_library(
    path: str | os.PathLike[str] | None,
    targets: Sequence[str],
    *,
    tensorrt_major: int | None = None,
    choosable: Sequence[str] = (),
    build: bool = True,
    report: Callable[[str], None] | None = report_to_stderr,
) -> Path:
    """The plugin library for an engine that runs on GPUs ``targets`` (``SM86``...), found as
    :func:`find_plugin_library` finds it, and checked to carry code for every target (:func:`check_library_targets`).

    When no library was named (no ``path``, no $GLDFN_TRT_PLUGIN_LIBRARY) and the default build folder of
    ``tensorrt_major`` has none, it is built there first for ``targets`` when ``build`` is true and cmake, nvcc
    and that major's TensorRT headers are here (``report`` gets the progress lines); without them the error
    names what is missing and the command to run. A library that exists is never rebuilt, even when it lacks
    a target: engines built with it record its SHA-256."""
    major = tensorrt_major or installed_tensorrt_major() or DEFAULT_TENSORRT_MAJOR
    candidate, origin = _locate(path, major)
    if build and not candidate.is_file() and path is None and not os.environ.get(LIBRARY_ENV):
        _build_on_first_need(candidate, origin, targets, major, report or (lambda line: None))
    library = find_plugin_library(path, major)
    check_library_targets(library, targets, origin=origin, tensorrt_major=major, choosable=choosable)
    return library


def _build_on_first_need(
    library: Path, origin: str, targets: Sequence[str], tensorrt_major: int, report: Callable[[str], None]
) -> None:
    missing = missing_build_tools(tensorrt_major)
    if missing:
        major = "" if tensorrt_major == DEFAULT_TENSORRT_MAJOR else f" --tensorrt-major {tensorrt_major}"
        raise PluginLibraryError(
            f"plugin library not found at {library} ({origin}), and it cannot be built here: missing "
            f"{'; '.join(missing)}. Install {'it' if len(missing) == 1 else 'them'}, then run `gldfn-trt plugin "
            f"build{major}`, or pass the path of a library built for TensorRT {tensorrt_major} with --plugin"
        )
    nvcc = find_nvcc()
    archs = cuda_architectures_for(targets, nvcc_gpu_codes(nvcc) if nvcc else None) if targets else None
    report(f"plugin library not found at {library}: building it for {', '.join(targets) or 'every SM nvcc knows'} "
           f"(CUDA architectures {archs or 'default'}; this takes a few minutes)")
    start = time.perf_counter()
    built = build_plugin_library(library.parent, cuda_architectures=archs, tensorrt_major=tensorrt_major,
                                 report=report)
    report(f"built {built} in {time.perf_counter() - start:.0f} s")


def describe_library(library: Path) -> dict[str, Any]:
    """Path, the TensorRT header version it was built with, SHA-256 and CUDA architectures of a plugin library."""
    version = library_tensorrt_version(library)
    archs = library_cuda_archs(library)
    return {"path": str(library), "tensorrt_headers": format_version(version) if version else None,
            "sha256": file_sha256(library), "cuda_archs": [arch.name for arch in archs or ()]}


def load_plugin_library(path: str | os.PathLike[str] | None = None, registry: Any = None) -> Path:
    """Load the library into a TensorRT plugin registry (default: the process-wide one) once, check that it was
    built for the loaded TensorRT's major and that the contract's plugin creator is registered, and return the
    library's path."""
    backend = load_tensorrt()
    library = find_plugin_library(path, backend.plugin_tensorrt_major)
    check_library_matches(library, backend)
    key = ("global" if registry is None else id(registry), library)
    if registry is None:
        registry = backend.module.get_plugin_registry()
    contract = load_contract()
    name, version, namespace = contract.name, contract.plugin_version, contract.plugin_namespace
    creator = f"{namespace}::{name} version {version}"
    if key not in _loaded:
        handle = registry.load_library(str(library))
        if handle is None:
            if registry.get_creator(name, version, namespace) is None:
                raise PluginLibraryError(f"TensorRT could not load {library}; see the TensorRT log above")
            # TensorRT refuses a second library registering the same creator (another copy or build of it).
            warnings.warn(f"{library} not loaded: {creator} is already registered by another copy; using that one",
                          stacklevel=2)
        _loaded[key] = handle
    if registry.get_creator(name, version, namespace) is None:
        raise PluginLibraryError(
            f"{library} loaded but registers no creator {creator}; rebuild it with `gldfn-trt plugin build`"
        )
    return library
