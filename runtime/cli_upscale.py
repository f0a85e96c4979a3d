"""``gldfn upscale``: a thin layer over gldfn_runtime.Upscaler (PyTorch, ONNX Runtime or bicubic)."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gldfn_model.cli.models import command_scale, model_option
from gldfn_runtime.cli_outputs import (
    FORMAT,
    MAX_PIXELS,
    OUT,
    OVERWRITE,
    SKIP_EXISTING,
    SUFFIX,
    OutputFormat,
    write_planned,
)

if TYPE_CHECKING:
    from gldfn_runtime.upscaler import Upscaler


class Backend(str, Enum):
    torch = "torch"
    onnxruntime = "onnxruntime"
    bicubic = "bicubic"


def build_upscaler(
    backend: str, scale: int, checkpoint: Path | None, onnx: Path | None, config: str | None,
    random_weights: bool, providers: str, threads: int | None, tile: int | None, overlap: int,
    model: str | None = None,
) -> Upscaler:  # imported lazily to keep `gldfn --help` fast
    """The upscaler a backend name and its options describe; typer.BadParameter for inconsistent options."""
    from gldfn_runtime.upscaler import Upscaler

    tiling = {"tile": tile, "overlap": overlap}
    if model is not None and backend != Backend.torch:
        raise typer.BadParameter(f"--model is for --backend torch; {backend.value} does not run shipped weights")
    if backend == Backend.onnxruntime:
        if onnx is None:
            raise typer.BadParameter("--backend onnxruntime needs --onnx FILE (export one with gldfn-export)")
        if checkpoint is not None or random_weights:
            raise typer.BadParameter("--checkpoint / --random-weights are for --backend torch; the ONNX file holds the weights")
        upscaler = Upscaler.from_onnx(onnx, providers=providers, threads=threads, **tiling)
        if upscaler.scale != scale:
            raise typer.BadParameter(f"{onnx} upscales x{upscaler.scale}, not x{scale}; pass --scale {upscaler.scale}")
        return upscaler
    if onnx is not None:
        raise typer.BadParameter(f"--onnx is for --backend onnxruntime, not {backend.value}")
    if backend == Backend.bicubic:
        return Upscaler.bicubic(scale, **tiling)
    return Upscaler.from_checkpoint(checkpoint, scale, config=config, random_weights=random_weights, threads=threads,
                                    model=model, **tiling)


def register(app: typer.Typer) -> None:
    @app.command("upscale")
    def upscale_command(
        inputs: list[Path] = typer.Argument(..., help="image files and/or folders of images"),
        out: str = OUT,
        suffix: str = SUFFIX,
        image_format: OutputFormat | None = FORMAT,
        overwrite: bool = OVERWRITE,
        skip_existing: bool = SKIP_EXISTING,
        backend: Backend = typer.Option(Backend.torch, help="torch, onnxruntime, or bicubic (the baseline, no model)"),
        scale: int | None = typer.Option(None, help="upscaling factor: 2, 3 or 4 (default: the --model's, else 4)"),
        checkpoint: Path | None = typer.Option(None, help="torch: a gldfn checkpoint (default: the shipped weights)"),
        model: str | None = model_option(),
        config: str | None = typer.Option(None, help="torch: named config of the shipped/random weights (default tiny)"),
        random_weights: bool = typer.Option(False, "--random-weights", help="torch: an untrained network (testing only)"),
        onnx: Path | None = typer.Option(None, help="onnxruntime: an exported ONNX file (gldfn-export)"),
        providers: str = typer.Option("cpu", help="onnxruntime: execution providers, e.g. cpu or cuda"),
        tile: int | None = typer.Option(None, help="tile size in LR pixels (default: from a memory budget, "
                                        "docs/tiling.md, the whole image when it fits; 0: whole images)"),
        overlap: int = typer.Option(16, help="tile overlap in LR pixels, blended across the seam"),
        threads: int | None = typer.Option(None, help="CPU threads for torch / ONNX Runtime"),
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        """Upscale images: files or folders in, atomically written images out (same names unless --suffix).

        Never replaces an input or an existing file unless --overwrite.

        Grayscale, RGBA (alpha resized with bicubic) and 16-bit PNG (gray or colour) are kept as such.
        """
        from gldfn_runtime.output_plan import plan_outputs

        plan = plan_outputs(inputs, out, suffix=suffix, image_format=image_format.value if image_format else None,
                            overwrite=overwrite, skip_existing=skip_existing)
        upscaler = build_upscaler(backend, command_scale(model, scale), checkpoint, onnx, config, random_weights,
                                  providers, threads, tile, overlap, model)
        write_planned(upscaler, plan, f"upscaling x{upscaler.scale} ({backend.value})", max_pixels)
