"""Build, find and load libgldfn_trt_plugins.so, the TensorRT plugin library built from ``plugins/``.

Without an explicit path the library is taken from GLDFN_TRT_PLUGIN_LIBRARY, else from the default build
folder ``plugins/build`` that ``gldfn-trt plugin build`` writes. An engine's sidecar records the library it was
built with, but only its SHA-256 is used: a path read from a data file is never loaded.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

from gldfn_model.common.errors import GldfnError
from gldfn_model.common.hashing import file_sha256
from gldfn_model.ops.contract import load_contract
from gldfn_runtime.tensorrt_compat import load_tensorrt

PLUGIN_SOURCE_DIR = Path(__file__).resolve().parent.parent / "plugins"
DEFAULT_BUILD_DIR = PLUGIN_SOURCE_DIR / "build"
LIBRARY_FILENAME = "libgldfn_trt_plugins.so"
LIBRARY_ENV = "GLDFN_TRT_PLUGIN_LIBRARY"

_loaded: dict[tuple[int, Path], Any] = {}


class PluginLibraryError(GldfnError, RuntimeError):
    """The plugin library cannot be built, found or loaded; the message says what to do."""


def find_tensorrt_headers() -> Path | None:
    """The folder holding NvInferRuntime.h that the CMake build would use, or None: $TENSORRT_ROOT (or its
    include/), then the standard include folders."""
    roots = []
    if os.environ.get("TENSORRT_ROOT"):
        root = Path(os.environ["TENSORRT_ROOT"])
        roots += [root, root / "include"]
    for prefix in ("/usr", "/usr/local"):
        roots += [Path(prefix) / "include" / f"{platform.machine()}-linux-gnu", Path(prefix) / "include"]
    return next((root for root in roots if (root / "NvInferRuntime.h").is_file()), None)


def _locate(path: str | os.PathLike[str] | None) -> tuple[Path, str]:
    """The candidate library and where it came from: ``path``, else $GLDFN_TRT_PLUGIN_LIBRARY, else the build folder."""
    if path is not None:
        return Path(path), "the given path"
    if os.environ.get(LIBRARY_ENV):
        return Path(os.environ[LIBRARY_ENV]), f"${LIBRARY_ENV}"
    return DEFAULT_BUILD_DIR / LIBRARY_FILENAME, "the default build folder"


def find_plugin_library(path: str | os.PathLike[str] | None = None) -> Path:
    """The library at ``path``, else at $GLDFN_TRT_PLUGIN_LIBRARY, else in the default build folder."""
    candidate, origin = _locate(path)
    if not candidate.is_file():
        raise PluginLibraryError(
            f"plugin library not found at {candidate} ({origin}); build it with `gldfn-trt plugin build` "
            f"or pass the path of {LIBRARY_FILENAME}"
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


def _run(command: list[str], step: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        raise PluginLibraryError(f"{step} failed ({' '.join(command)}):\n" + "\n".join(output[-40:]))


def build_plugin_library(
    build_dir: str | os.PathLike[str] = DEFAULT_BUILD_DIR,
    *,
    source_dir: str | os.PathLike[str] = PLUGIN_SOURCE_DIR,
    cuda_architectures: str | None = None,
    tensorrt_root: str | os.PathLike[str] | None = None,
    build_type: str = "Release",
    kernel_only: bool = False,
    jobs: int | None = None,
) -> Path:
    """Configure and build the CMake project; return the built library (or the kernel archive when
    ``kernel_only``). ``cuda_architectures`` overrides the default SM list, e.g. "80-real" for a quick build."""
    if shutil.which("cmake") is None:
        raise PluginLibraryError("cmake is not on PATH; install CMake >= 3.25")
    source, build = Path(source_dir), Path(build_dir)
    if not (source / "CMakeLists.txt").is_file():
        raise PluginLibraryError(f"{source} holds no CMakeLists.txt; pass the project's plugins/ folder")
    configure = ["cmake", "-S", str(source), "-B", str(build), f"-DCMAKE_BUILD_TYPE={build_type}"]
    if cuda_architectures:
        configure.append(f"-DCMAKE_CUDA_ARCHITECTURES={cuda_architectures}")
    if tensorrt_root:
        configure.append(f"-DTENSORRT_ROOT={Path(tensorrt_root).resolve()}")
    configure.append(f"-DGLDFN_KERNEL_ONLY={'ON' if kernel_only else 'OFF'}")
    _run(configure, "CMake configure")
    _run(["cmake", "--build", str(build), "-j", str(jobs or os.cpu_count() or 1)], "CMake build")
    built = build / ("libgldfn_ldf_kernel.a" if kernel_only else LIBRARY_FILENAME)
    if not built.is_file():
        raise PluginLibraryError(f"the build finished but {built} is missing")
    return built.resolve()


def load_plugin_library(path: str | os.PathLike[str] | None = None, registry: Any = None) -> Path:
    """Load the library into a TensorRT plugin registry (default: the process-wide one) once, check that the
    contract's plugin creator is registered, and return the library's path."""
    library = find_plugin_library(path)
    key = ("global" if registry is None else id(registry), library)
    if registry is None:
        registry = load_tensorrt().module.get_plugin_registry()
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
