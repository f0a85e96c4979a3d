"""The ``gldfn-trt`` command: a thin layer over gldfn_runtime."""
from __future__ import annotations

from pathlib import Path

import typer

from gldfn_model.common.cli_errors import GldfnTyper
from gldfn_runtime import cli_engine
from gldfn_runtime.plugin_library import DEFAULT_BUILD_DIR, build_plugin_library

app = GldfnTyper(add_completion=False, no_args_is_help=True, help="GLDFN on TensorRT / TensorRT-RTX.")
plugin_app = GldfnTyper(add_completion=False, no_args_is_help=True, help="The TensorRT plugin library.")
app.add_typer(plugin_app, name="plugin")
cli_engine.register(app)


@app.callback()
def _root() -> None:
    """GLDFN on TensorRT / TensorRT-RTX."""


@plugin_app.command("build")
def plugin_build(
    build_dir: Path = typer.Option(DEFAULT_BUILD_DIR, help="CMake build folder; the runtime finds the library here by default."),
    cuda_archs: str | None = typer.Option(None, help="CMAKE_CUDA_ARCHITECTURES, e.g. '90-real' (default: SM 75-120 + PTX)."),
    tensorrt_root: Path | None = typer.Option(None, help="Folder holding include/NvInferRuntime.h (TensorRT >= 11)."),
    build_type: str = typer.Option("Release", help="CMAKE_BUILD_TYPE."),
    jobs: int | None = typer.Option(None, help="Parallel build jobs (default: all cores)."),
) -> None:
    """Build libgldfn_trt_plugins.so with CMake and print its path."""
    library = build_plugin_library(
        build_dir, cuda_architectures=cuda_archs, tensorrt_root=tensorrt_root, build_type=build_type, jobs=jobs
    )
    typer.echo(str(library))


def main() -> None:
    app()
