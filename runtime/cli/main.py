"""The ``gldfn-trt`` command: a thin layer over gldfn_runtime."""
from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from gldfn_model.cli.options import version_option
from gldfn_model.common.cli_errors import GldfnTyper
from gldfn_runtime.cli import cache as cli_cache
from gldfn_runtime.cli import engine as cli_engine
from gldfn_runtime.cli import serve as cli_serve
from gldfn_runtime.plugin.build import MIN_TENSORRT_MAJOR, build_plugin_library
from gldfn_runtime.plugin.library import PluginLibraryError, describe_library, find_plugin_library
from gldfn_runtime.plugin.ort_build import build_ort_ops_library
from gldfn_runtime.plugin.ort_library import describe_ort_library, ort_custom_ops_library
from gldfn_runtime.tensorrt.logger import set_verbose


class BuildType(str, Enum):
    """CMake's standard build types (CMAKE_BUILD_TYPE)."""

    release = "Release"
    debug = "Debug"
    rel_with_deb_info = "RelWithDebInfo"
    min_size_rel = "MinSizeRel"


# The CMake options both library builds take.
CUDA_ARCHS_OPTION = typer.Option(None, "--cuda-archs", help="CMAKE_CUDA_ARCHITECTURES, e.g. '90-real' (default: every "
                                 "SM from 75 the found nvcc supports, + PTX).")
BUILD_TYPE_OPTION = typer.Option(BuildType.release, "--build-type", help="CMAKE_BUILD_TYPE.")
JOBS_OPTION = typer.Option(None, "--jobs", help="Parallel build jobs (default: all cores).")

app = GldfnTyper(add_completion=False, no_args_is_help=True, help="GLDFN on TensorRT / TensorRT-RTX.")
plugin_app = GldfnTyper(add_completion=False, no_args_is_help=True,
                        help="The TensorRT plugin library and the ONNX Runtime custom-op library.")
app.add_typer(plugin_app, name="plugin")
app.add_typer(cli_cache.app, name="cache")
cli_engine.register(app)
cli_serve.register(app)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print every message of TensorRT's logger to stderr."),
    version: bool = version_option("gldfn-trt"),
) -> None:
    """GLDFN on TensorRT / TensorRT-RTX."""
    set_verbose(verbose)


@plugin_app.command("build")
def plugin_build(
    build_dir: Path | None = typer.Option(
        None, help="CMake build folder (default: plugins/build for TensorRT 11 and TensorRT-RTX, plugins/build/trtN "
        "for TensorRT N: where the runtime finds the library)."),
    tensorrt_major: int | None = typer.Option(
        None, min=MIN_TENSORRT_MAJOR, help="Build for this TensorRT major, 10 or 11 (default: the installed "
        "TensorRT's; TensorRT-RTX counts as 11), with headers of that major."),
    cuda_archs: str | None = CUDA_ARCHS_OPTION,
    tensorrt_root: Path | None = typer.Option(None, help="Folder holding (include/)NvInferRuntime.h of TensorRT "
                                                            ">= 10; its major is built for."),
    build_type: BuildType = BUILD_TYPE_OPTION,
    jobs: int | None = JOBS_OPTION,
) -> None:
    """Build the plugin library with CMake (libgldfn_trt_plugins.so; .trt10.so for TensorRT 10); print its path."""
    library = build_plugin_library(
        build_dir, cuda_architectures=cuda_archs, tensorrt_root=tensorrt_root, tensorrt_major=tensorrt_major,
        build_type=build_type.value, jobs=jobs, report=lambda line: typer.echo(line, err=True),
    )
    typer.echo(str(library))


@plugin_app.command("info")
def plugin_info(
    library: Path | None = typer.Argument(
        None, help="A plugin library (default: $GLDFN_TRT_PLUGIN_LIBRARY, else the default build folder's)."),
) -> None:
    """Print a plugin library's path, the TensorRT headers it was built with, its SHA-256 and its CUDA code."""
    info = describe_library(find_plugin_library(library))
    typer.echo(info["path"])
    typer.echo(f"  TensorRT headers: {info['tensorrt_headers'] or 'not recorded (not a GLDFN plugin library?)'}")
    typer.echo(f"  SHA-256:          {info['sha256']}")
    typer.echo(f"  CUDA code:        {', '.join(info['cuda_archs']) or 'none'}")


@plugin_app.command("build-ort")
def plugin_build_ort(
    build_dir: Path | None = typer.Option(None, help="CMake build folder (default: plugins/build/ort, where ONNX "
                                                        "Runtime sessions find the library)."),
    cuda: bool | None = typer.Option(None, "--cuda/--no-cuda", help="Also build the CUDA execution provider's "
                                     "kernel (default: when nvcc is found)."),
    cuda_archs: str | None = CUDA_ARCHS_OPTION,
    onnxruntime_root: Path | None = typer.Option(None, help="Folder holding (include/)onnxruntime_c_api.h, ONNX "
                                                            "Runtime >= 1.17 (default: $ONNXRUNTIME_ROOT, then the "
                                                            "standard include folders)."),
    build_type: BuildType = BUILD_TYPE_OPTION,
    jobs: int | None = JOBS_OPTION,
) -> None:
    """Build the ONNX Runtime custom-op library with CMake (libgldfn_ort_ops.so); print its path."""
    library = build_ort_ops_library(
        build_dir, cuda=cuda, cuda_architectures=cuda_archs, onnxruntime_root=onnxruntime_root,
        build_type=build_type.value, jobs=jobs, report=lambda line: typer.echo(line, err=True),
    )
    typer.echo(str(library))


@plugin_app.command("info-ort")
def plugin_info_ort(
    library: Path | None = typer.Argument(
        None, help="A custom-op library (default: the one ONNX Runtime sessions register: $GLDFN_ORT_OPS_LIBRARY, "
                   "else plugins/build/ort's)."),
) -> None:
    """Print the ONNX Runtime custom-op library's path, op, execution providers and CPU instruction set."""
    library = library or ort_custom_ops_library()
    if library is None:
        raise PluginLibraryError("no ONNX Runtime custom-op library: build it with `gldfn-trt plugin build-ort`")
    info = describe_ort_library(library)
    typer.echo(str(library))
    typer.echo(f"  op:         {info['op']} v{info['version']} (op contract {info['contract']})")
    typer.echo(f"  providers:  {info['providers']}")
    typer.echo(f"  CPU kernel: {info['cpu-isa']} on this machine")
    typer.echo(f"  needs:      ONNX Runtime C API >= {info['ort-api']}")


def main() -> None:
    app()
