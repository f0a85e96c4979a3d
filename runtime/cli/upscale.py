"""``gldfn upscale``: a thin layer over gldfn_runtime.Upscaler (PyTorch, ONNX Runtime, TensorRT or bicubic).

The backend follows from the model given (``--onnx``: ONNX Runtime, ``--engine``: TensorRT, ``--checkpoint`` /
``--model``: PyTorch) and the scale from the model itself; ``--backend`` and ``--scale`` only confirm them.
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gldfn_model.cli.model_scale import scale_of_model
from gldfn_model.cli.models import ShippedModelName, model_option
from gldfn_model.cli.options import (
    AUTO,
    PROVIDERS,
    RANDOM_WEIGHTS,
    THREADS,
    ConfigName,
    agree_scale,
    checkpoint_option,
    config_option,
    implied_choice,
    input_option,
    inputs_argument,
    merge_inputs,
    onnx_option,
    scale_option,
    value_of,
)
from gldfn_model.common.cli_aliases import hidden_aliases
from gldfn_runtime.cli.outputs import (
    FORMAT,
    MAX_PIXELS,
    OUTPUT,
    OVERLAP,
    OVERWRITE,
    PLUGIN,
    QUALITY,
    SKIP_EXISTING,
    SUFFIX,
    TILE,
    OutputFormat,
    check_model_scale,
    write_planned,
)
from gldfn_runtime.upscale.tiling import DEFAULT_OVERLAP

if TYPE_CHECKING:
    from gldfn_runtime.upscale.upscaler import Upscaler


class Backend(str, Enum):
    auto = AUTO
    torch = "torch"
    onnxruntime = "onnxruntime"
    tensorrt = "tensorrt"
    bicubic = "bicubic"


def choose_backend(
    requested: Backend, *, checkpoint: Path | None = None, model: str | None = None, config: str | None = None,
    random_weights: bool = False, onnx: Path | None = None, engine: Path | None = None, plugin: Path | None = None,
) -> Backend:
    """The backend the given model runs with (``requested`` auto), or ``requested`` when it agrees with it;
    typer.BadParameter naming both when it does not, or when the backend lacks its model file."""
    implied = [(f"--onnx {onnx}", Backend.onnxruntime.value)] if onnx is not None else []
    implied += [(f"--engine {engine}", Backend.tensorrt.value)] if engine is not None else []
    implied += [(f"--plugin {plugin}", Backend.tensorrt.value)] if plugin is not None else []
    for flag, value in (("--checkpoint", checkpoint), ("--model", model), ("--config", config)):
        implied += [(f"{flag} {value}", Backend.torch.value)] if value is not None else []
    implied += [("--random-weights", Backend.torch.value)] if random_weights else []
    backend = Backend(implied_choice("--backend", requested.value, implied, Backend.torch.value))
    if backend is Backend.onnxruntime and onnx is None:
        raise typer.BadParameter("onnxruntime needs --onnx FILE (export one with gldfn-export)", param_hint="'--backend'")
    if backend is Backend.tensorrt and engine is None:
        raise typer.BadParameter("tensorrt needs --engine FILE (build one with gldfn-trt build)", param_hint="'--backend'")
    return backend


def build_upscaler(
    backend: Backend, scale: int | None, *, checkpoint: Path | None = None, model: str | None = None,
    config: str | None = None, random_weights: bool = False, onnx: Path | None = None, engine: Path | None = None,
    plugin: Path | None = None, providers: str = "cpu", threads: int | None = None, tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
) -> Upscaler:  # imported lazily to keep `gldfn --help` fast
    """The upscaler of a backend (from :func:`choose_backend`) at the model's scale; ``scale``, when given, must
    be the model's (typer.BadParameter naming both)."""
    from gldfn_runtime.upscale.upscaler import Upscaler

    tiling = {"tile": tile, "overlap": overlap}
    if backend is Backend.onnxruntime:
        upscaler = Upscaler.from_onnx(onnx, providers=providers, threads=threads, **tiling)
        agree_scale(scale, upscaler.scale, f"{onnx} (its gldfn.scale metadata)")
        return upscaler
    if backend is Backend.tensorrt:
        check_model_scale(scale, engine)  # from the sidecar, without a GPU; running the engine needs one
        return Upscaler.from_engine(engine, plugin=plugin, **tiling)
    scale = scale_of_model(scale, model=model, checkpoint=checkpoint)
    if backend is Backend.bicubic:
        return Upscaler.bicubic(scale, **tiling)
    return Upscaler.from_checkpoint(checkpoint, scale, config=config, random_weights=random_weights, threads=threads,
                                    model=model, **tiling)


def register(app: typer.Typer) -> None:
    @app.command("upscale")
    @hidden_aliases(output="--out")
    def upscale_command(
        inputs: list[Path] | None = inputs_argument("image files and/or folders of images"),
        input_options: list[Path] | None = input_option("an image file or folder"),
        output: str = OUTPUT,
        suffix: str = SUFFIX,
        image_format: OutputFormat | None = FORMAT,
        overwrite: bool = OVERWRITE,
        skip_existing: bool = SKIP_EXISTING,
        backend: Backend = typer.Option(
            Backend.auto, "--backend", help="auto: the model's (--onnx: onnxruntime, --engine: tensorrt, else torch); "
            "bicubic: the baseline, no model"),
        scale: int | None = scale_option(),
        checkpoint: Path | None = checkpoint_option(),
        model_choice: ShippedModelName | None = model_option(),
        config: ConfigName | None = config_option(
            "named config of the shipped or random weights (default: the checkpoint's, else tiny)"),
        random_weights: bool = RANDOM_WEIGHTS,
        onnx: Path | None = onnx_option(),
        engine: Path | None = typer.Option(
            None, "--engine", show_default=False,
            help="a TensorRT engine (gldfn-trt build); implies --backend tensorrt; needs an NVIDIA GPU"),
        plugin: Path | None = PLUGIN,
        providers: str = PROVIDERS,
        tile: int | None = TILE,
        overlap: int = OVERLAP,
        threads: int | None = THREADS,
        max_pixels: int = MAX_PIXELS,
        quality: int | None = QUALITY,
    ) -> None:
        """Upscale images: files or folders in, atomically written images out (same names unless --suffix).

        Never replaces an input or an existing file unless --overwrite.

        Grey, grey + alpha, RGBA (alpha resized with bicubic) and 16 bits (PNG, TIFF) are kept as such, with the
        ICC profile and EXIF (the EXIF orientation applied to the pixels, then reset to 1).
        """
        from gldfn_runtime.upscale.output_plan import plan_outputs

        config_name, model = value_of(config), value_of(model_choice)
        chosen = choose_backend(backend, checkpoint=checkpoint, model=model, config=config_name,
                                random_weights=random_weights, onnx=onnx, engine=engine, plugin=plugin)
        plan = plan_outputs(merge_inputs(inputs, input_options, what="image"), output, suffix=suffix,
                            image_format=value_of(image_format), overwrite=overwrite, skip_existing=skip_existing)
        upscaler = build_upscaler(chosen, scale, checkpoint=checkpoint, model=model, config=config_name,
                                  random_weights=random_weights, onnx=onnx, engine=engine, plugin=plugin,
                                  providers=providers, threads=threads, tile=tile, overlap=overlap)
        write_planned(upscaler, plan, f"upscaling x{upscaler.scale} ({chosen.value})", max_pixels, quality)
