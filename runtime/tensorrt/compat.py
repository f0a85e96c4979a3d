"""One import point for TensorRT: the full ``tensorrt`` package or TensorRT-RTX (``tensorrt_rtx``), which share
the builder, network, ONNX parser and plugin registry API.

The TensorRT-RTX wheel ships ``libtensorrt_rtx.so.1`` but its ONNX parser ``dlopen``s ``libtensorrt_rtx.so``
when it imports a plugin node; without that name the process aborts ("terminate called without an active
exception"). Loading TensorRT-RTX through this module creates the missing link in the ``tensorrt_rtx_libs``
package folder (on the parser's RPATH), or says clearly what to do when it cannot.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from gldfn_model.common.errors import GldfnError

BACKEND_ENV = "GLDFN_TENSORRT"
BACKENDS = ("tensorrt", "tensorrt_rtx")
RTX_LIBS_PACKAGE = "tensorrt_rtx_libs"
RTX_LIBRARY = "libtensorrt_rtx.so"
RTX_LIBRARY_SONAME = "libtensorrt_rtx.so.1"
# TensorRT-RTX 1.x loads plugins through TensorRT 11's interfaces (versioned ILogger/ILoggerFinder).
RTX_PLUGIN_TENSORRT_MAJOR = 11
# The first TensorRT whose ONNX parser maps a node that has a model-local function to a registered plugin: 10.0 to
# 10.6 import the function body instead, so an engine would hold no GLDFN plugin layer.
MIN_TENSORRT = (10, 7)


class TensorRTUnavailable(GldfnError, RuntimeError):
    """Neither TensorRT nor TensorRT-RTX can be used; the message says what to install or fix."""


@dataclass(frozen=True)
class TensorRTBackend:
    module: ModuleType
    name: str

    @property
    def is_rtx(self) -> bool:
        return self.name == "tensorrt_rtx"

    @property
    def version(self) -> str:
        return str(self.module.__version__)

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def plugin_tensorrt_major(self) -> int:
        """The TensorRT major whose plugin interfaces (and ILogger layout) this backend uses: a plugin library
        built with that major's headers is the one to load."""
        return RTX_PLUGIN_TENSORRT_MAJOR if self.is_rtx else self.major


def check_tensorrt_version(version: str) -> None:
    """TensorRTUnavailable, saying why, for a full TensorRT older than :data:`MIN_TENSORRT`."""
    numbers = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if numbers < MIN_TENSORRT:
        need = ".".join(map(str, MIN_TENSORRT))
        raise TensorRTUnavailable(
            f"TensorRT {version} is too old: GLDFN needs TensorRT >= {need}, the first whose ONNX parser maps each "
            f"GLDFN node to the registered plugin; earlier parsers import the node's ONNX function body instead, so "
            f"the engine would run without the plugin. Install tensorrt >= {need} (the project's [trt] extras), "
            "or TensorRT-RTX"
        )


def enable_plugin_override(parser: Any, trt: ModuleType) -> bool:
    """Make ``parser`` map nodes to registered plugins rather than to their model-local function bodies.
    TensorRT >= 10.15 and TensorRT-RTX need ``OnnxParserFlag.ENABLE_PLUGIN_OVERRIDE`` for that; older parsers
    lack the flag and prefer a registered plugin by themselves. Returns whether the flag was set. Callers count
    the plugin layers after parsing, which catches a parser that still took the function bodies."""
    flag = getattr(trt.OnnxParserFlag, "ENABLE_PLUGIN_OVERRIDE", None)
    if flag is None:
        return False
    parser.set_flag(flag)
    return True


def ensure_rtx_library_link(libs_dir: Path) -> Path:
    """Make ``libs_dir/libtensorrt_rtx.so`` point at ``libtensorrt_rtx.so.1``; return the link's path."""
    link = libs_dir / RTX_LIBRARY
    target = libs_dir / RTX_LIBRARY_SONAME
    if link.exists():
        return link
    if not target.exists():
        raise TensorRTUnavailable(f"{target} is missing: the TensorRT-RTX wheel looks broken; reinstall tensorrt-rtx")
    try:
        if link.is_symlink():  # a dangling link left behind
            link.unlink()
        link.symlink_to(RTX_LIBRARY_SONAME)
    except FileExistsError:
        pass  # another process made it first
    except OSError as error:
        raise TensorRTUnavailable(
            f"TensorRT-RTX's ONNX parser needs {link}, which the wheel lacks, and it cannot be created ({error}). "
            f"Run `ln -s {RTX_LIBRARY_SONAME} {link}` as the owner of {libs_dir}, or put a folder holding a "
            f"{RTX_LIBRARY} -> {target} link on LD_LIBRARY_PATH before starting Python."
        ) from error
    return link


def _rtx_libs_dir() -> Path | None:
    spec = importlib.util.find_spec(RTX_LIBS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None  # not the pip wheel (a tarball install ships the unversioned name itself)
    return Path(next(iter(spec.submodule_search_locations)))


def _import(name: str) -> ModuleType:
    if name == "tensorrt_rtx":
        libs_dir = _rtx_libs_dir()
        if libs_dir is not None:
            ensure_rtx_library_link(libs_dir)
    return importlib.import_module(name)


@cache
def load_tensorrt(name: str | None = None) -> TensorRTBackend:
    """Import TensorRT. ``name`` (or the GLDFN_TENSORRT environment variable) picks ``tensorrt`` or
    ``tensorrt_rtx``; by default the first of them that imports."""
    choice = name or os.environ.get(BACKEND_ENV) or None
    if choice is not None and choice not in BACKENDS:
        raise TensorRTUnavailable(f"{BACKEND_ENV}={choice!r} is not one of {BACKENDS}")
    errors = []
    for candidate in (choice,) if choice else BACKENDS:
        try:
            backend = TensorRTBackend(_import(candidate), candidate)
        except ImportError as error:
            errors.append(f"{candidate}: {error}")
            continue
        if backend.is_rtx:
            return backend
        try:
            check_tensorrt_version(backend.version)
        except TensorRTUnavailable as error:
            if choice:
                raise
            errors.append(f"{candidate}: {error}")  # auto: TensorRT-RTX may still serve
            continue
        return backend
    raise TensorRTUnavailable(
        "no TensorRT Python package can be imported (" + "; ".join(errors) + "). "
        "Install TensorRT-RTX with `pip install tensorrt-rtx` (or the project's [rtx] extra), or TensorRT >= 10.7."
    )
