"""``gldfn upscale``: a thin layer over gldfn_runtime.Upscaler (PyTorch, ONNX Runtime or bicubic)."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from gldfn_model.cli.models import command_scale, model_option

if TYPE_CHECKING:
    from gldfn_runtime.upscaler import Upscaler


class Backend(str, Enum):
    torch = "torch"
    onnxruntime = "onnxruntime"
    bicubic = "bicubic"


def build_upscaler(
    backend: str, scale: int, checkpoint: Optional[Path], onnx: Optional[Path], config: Optional[str],
    random_weights: bool, providers: str, threads: Optional[int], tile: Optional[int], overlap: int,
    model: Optional[str] = None,
) -> "Upscaler":  # imported lazily to keep `gldfn --help` fast
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
        out_dir: Path = typer.Option(..., "-o", "--out", help="output folder (created if missing); files keep their names"),
        backend: Backend = typer.Option(Backend.torch, help="torch, onnxruntime, or bicubic (the baseline, no model)"),
        scale: Optional[int] = typer.Option(None, help="upscaling factor: 2, 3 or 4 (default: the --model's, else 4)"),
        checkpoint: Optional[Path] = typer.Option(None, help="torch: a gldfn checkpoint (default: the shipped weights)"),
        model: Optional[str] = model_option(),
        config: Optional[str] = typer.Option(None, help="torch: named config of the shipped/random weights (default tiny)"),
        random_weights: bool = typer.Option(False, "--random-weights", help="torch: an untrained network (testing only)"),
        onnx: Optional[Path] = typer.Option(None, help="onnxruntime: an exported ONNX file (gldfn-export)"),
        providers: str = typer.Option("cpu", help="onnxruntime: execution providers, e.g. cpu or cuda"),
        tile: Optional[int] = typer.Option(None, help="tile size in LR pixels (default: whole image)"),
        overlap: int = typer.Option(16, help="tile overlap in LR pixels, blended across the seam"),
        threads: Optional[int] = typer.Option(None, help="CPU threads for torch / ONNX Runtime"),
    ) -> None:
        """Upscale images: files or folders in, atomically written images of the same name out.

        Grayscale, RGBA (alpha resized with bicubic) and 16-bit PNG (gray or colour) are kept as such.
        """
        from gldfn_model.network.checkpoint import CheckpointError
        from gldfn_model.data.image_io import ImageReadError
        from gldfn_runtime.runners import RunnerError
        from gldfn_runtime.tiling import TilingError
        from gldfn_runtime.upscaler import collect_inputs, output_paths, upscale_files

        try:
            files = collect_inputs(inputs)
            targets = output_paths(files, out_dir)
            upscaler = build_upscaler(backend, command_scale(model, scale), checkpoint, onnx, config, random_weights,
                                      providers, threads, tile, overlap, model)
        except (ImageReadError, CheckpointError, RunnerError, TilingError, ValueError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        failures = upscale_files(upscaler, files, targets, out_dir, f"upscaling x{upscaler.scale} ({backend.value})")
        typer.echo(f"{len(files) - failures} of {len(files)} images written to {out_dir}")
        if failures:
            raise typer.Exit(1)
