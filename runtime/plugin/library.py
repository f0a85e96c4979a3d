"""Find, check and load the TensorRT plugin library built from ``plugins/`` (``plugin_build`` builds it).

The plugin calls TensorRT's logger through the ILogger/ILoggerFinder layout of the headers it was built with, and
that layout changed in TensorRT 11 (TensorRT-RTX 1.x shares 11's). So there is one library per TensorRT major:
``libgldfn_trt_plugins.so`` for TensorRT 11 and TensorRT-RTX (in ``plugins/build``), ``libgldfn_trt_plugins.trt10.so``
for TensorRT 10 (in ``plugins/build/trt10``). Each records its header version in an ELF section, and loading
refuses a library of another major than the loaded TensorRT's.

Without an explicit path the library is taken from GLDFN_TRT_PLUGIN_LIBRARY, else from the default build folder
of the installed TensorRT's major that ``gldfn-trt plugin build`` writes.

An engine's sidecar records the library it was built with, but only its SHA-256 is used: a path read from a
data file is never loaded.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import warnings
from pathlib import Path
from typing import Any

from gldfn_model.common.errors import GldfnError
from gldfn_model.common.hashing import file_sha256
from gldfn_model.ops.contract import load_contract
from gldfn_runtime.plugin.cuda_binary import CudaArch, CudaBinaryError, read_cuda_archs
from gldfn_runtime.tensorrt.compat import TensorRTBackend, TensorRTUnavailable, load_tensorrt

PLUGIN_SOURCE_DIR = Path(__file__).resolve().parents[2] / "plugins"
DEFAULT_BUILD_DIR = PLUGIN_SOURCE_DIR / "build"
LIBRARY_FILENAME = "libgldfn_trt_plugins.so"  # TensorRT 11 and TensorRT-RTX
DEFAULT_TENSORRT_MAJOR = 11  # the major whose library keeps the plain name (and the default build folder)
LIBRARY_ENV = "GLDFN_TRT_PLUGIN_LIBRARY"
# Written by plugins/plugin_entry.cpp into the library's .gldfn_build section.
_BUILD_INFO = re.compile(rb"gldfn-trt-plugin:tensorrt-headers=(\d+)\.(\d+)\.(\d+);")
_BUILD_CUDA = re.compile(rb"gldfn-trt-plugin:tensorrt-headers=[\d.]+;cuda-runtime=(\d+);")

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


def locate_plugin_library(path: str | os.PathLike[str] | None, tensorrt_major: int | None = None) -> tuple[Path, str]:
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
    candidate, origin = locate_plugin_library(path, tensorrt_major)
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
        origin = locate_plugin_library(path)[1]
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


def library_cuda_runtime(library: str | os.PathLike[str]) -> int | None:
    """The CUDA runtime version a plugin library links statically (CUDART_VERSION, 13000 = 13.0), or None."""
    match = _BUILD_CUDA.search(Path(library).read_bytes())
    return None if match is None else int(match[1])


def driver_cuda_version() -> int | None:
    """The newest CUDA version the installed NVIDIA driver supports (cuDriverGetVersion), or None without one."""
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    version = ctypes.c_int()
    return version.value if driver.cuDriverGetVersion(ctypes.byref(version)) == 0 else None


def _cuda_text(version: int) -> str:
    return f"{version // 1000}.{version % 1000 // 10}"


def check_driver_supports(library: Path, library_cuda: int | None, driver_cuda: int | None) -> None:
    """Raise when the library's CUDA runtime is newer than the driver supports: otherwise the load succeeds and
    the first enqueue fails (cudaErrorInsufficientDriver), far from the cause."""
    if library_cuda is None or driver_cuda is None or library_cuda <= driver_cuda:
        return
    raise PluginLibraryError(
        f"{library} was built with CUDA {_cuda_text(library_cuda)}, but this NVIDIA driver supports CUDA up to "
        f"{_cuda_text(driver_cuda)}: the plugin would fail at its first enqueue. Update the driver (CUDA 13 needs 580 or "
        f"newer) or rebuild the plugin with a CUDA {driver_cuda // 1000} toolkit's nvcc (`gldfn-trt plugin build`)"
    )


def library_cuda_archs(library: str | os.PathLike[str]) -> tuple[CudaArch, ...] | None:
    """The CUDA architectures whose code ``library`` carries (its fatbinary), or None when it carries none."""
    try:
        return read_cuda_archs(library)
    except CudaBinaryError as error:
        raise PluginLibraryError(f"{error}; rebuild the plugin library with `gldfn-trt plugin build`") from None


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
    check_driver_supports(library, library_cuda_runtime(library), driver_cuda_version())
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
