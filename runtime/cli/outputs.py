"""The options the runtime's image commands (``gldfn upscale``, ``gldfn-trt run``) share: where the images go
(chosen by ``output_targets``), tiling, the plugin library; and the run that writes the chosen files and prints
the summary line. The options of every command line are in ``gldfn_model.cli.options``; docs/cli.md has both."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gldfn_model.cli.model_scale import scale_of_model
from gldfn_model.cli.options import OVERWRITE as OVERWRITE  # re-exported for the image commands
from gldfn_model.cli.options import agree_scale, output_option
from gldfn_model.data.image_io import DEFAULT_MAX_PIXELS, DEFAULT_QUALITY
from gldfn_runtime.upscale.tiling import DEFAULT_OVERLAP

if TYPE_CHECKING:
    from gldfn_runtime.upscale.output_targets import OutputTargets
    from gldfn_runtime.upscale.upscaler import Upscaler


class OutputFormat(str, Enum):
    png = "png"
    jpg = "jpg"
    webp = "webp"


OUTPUT_HELP = "output file (for one input file and a name like big.png) or folder (created if missing)"
# Declare ``@hidden_aliases(output="--out")`` (gldfn_model.common.cli_aliases) on a command that had ``--out``.
OUTPUT = output_option(OUTPUT_HELP)
SUFFIX = typer.Option("", "--suffix", help="added to each name written into a folder (_x4: photo.png -> photo_x4.png)")
FORMAT = typer.Option(None, "-f", "--format", help="output format (default: each input's own)")
SKIP_EXISTING = typer.Option(False, "--skip-existing", help="keep outputs that exist and upscale only the other inputs")
MAX_PIXELS = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", min=1,
                          help="refuse inputs with more pixels (read from the header, before decoding); replaces "
                          "Pillow's decompression-bomb limit")
QUALITY = typer.Option(None, "--quality", min=1, max=100, show_default=False,
                       help=f"JPEG and WebP quality, 1-100 (default {DEFAULT_QUALITY}); PNG, TIFF and BMP are lossless "
                       "and ignore it")
TILE = typer.Option(None, "-t", "--tile", min=0, show_default=False,
                    help="tile size in LR pixels (default: from a memory budget, docs/tiling.md: the whole image when "
                    "it fits, at most an engine's profile max; 0: whole images)")
OVERLAP = typer.Option(DEFAULT_OVERLAP, "--overlap", min=0, help="tile overlap in LR pixels, blended across the seam")
PLUGIN = typer.Option(None, "--plugin", show_default=False,
                      help="the plugin library the engine was built with (default: $GLDFN_TRT_PLUGIN_LIBRARY, "
                      "else plugins/build)")


class Precision(str, Enum):
    """An engine's precision."""

    fp32 = "fp32"
    fp16 = "fp16"
    int8 = "int8"


ENGINE_HELP = ("an engine from gldfn-trt build, or an ONNX file from gldfn-export / gldfn-calibrate (its engine is "
               "built for this GPU on first use and kept in the engine cache)")
PRECISION_FOR_ONNX = typer.Option(None, "--precision", help="ONNX files run with TensorRT: the engine's precision "
                                  "(default: the file's; fp16 of an FP32 file runs the project's FP16 pass)")
CACHE_DIR = typer.Option(None, "--cache-dir", help="ONNX files run with TensorRT: the engine cache (default: "
                         "$GLDFN_TRT_CACHE_DIR or ~/.cache/gldfn-trt/engines)")


def check_model_scale(scale: int | None, model: Path) -> None:
    """An explicit ``-s`` must be the scale of ``model``, an ONNX file (its metadata) or an engine (its sidecar),
    read without a GPU and before anything is built or loaded (typer.BadParameter naming both); a missing file is
    left to the command that opens it, and an engine without a sidecar to the runner (it reads the engine)."""
    if scale is None or not model.is_file():
        return
    from gldfn_runtime.runners.open import is_onnx_path

    if is_onnx_path(model):
        scale_of_model(scale, onnx=model)
    else:
        from gldfn_runtime.engine.sidecar import has_sidecar, read_sidecar

        if has_sidecar(model):
            agree_scale(scale, read_sidecar(model).scale, f"engine {model} (its sidecar)")


def write_targets(upscaler: Upscaler, outputs: OutputTargets, label: str, max_pixels: int | None = None,
                  quality: int | None = None) -> None:
    """Upscale every chosen input (each refused beyond ``max_pixels``, None: the readers' default; JPEG/WebP
    written at ``quality``, None: the default), print how many were written (and kept) and how many failed; exit 1
    if any failed."""
    from gldfn_runtime.upscale.upscaler import upscale_files

    sources, targets = [job[0] for job in outputs.jobs], [job[1] for job in outputs.jobs]
    limit = {} if max_pixels is None else {"max_pixels": max_pixels}
    failures = upscale_files(upscaler, sources, targets, outputs.folder, label, quality=quality, overwrite=outputs.overwrite,
                             **limit) if outputs.jobs else 0
    where = targets[0] if len(targets) == 1 else outputs.folder
    kept = f"{len(outputs.skipped)} already there, kept (--skip-existing)" if outputs.skipped else ""
    if not outputs.jobs:
        typer.echo(f"nothing to write in {outputs.folder}: {kept}")
        return
    failed = f"; {failures} failed (reasons above)" if failures else ""
    typer.echo(f"{len(outputs.jobs) - failures} of {len(outputs.jobs)} images written to {where}" + (f"; {kept}" if kept else "")
               + failed)
    if failures:
        raise typer.Exit(1)
