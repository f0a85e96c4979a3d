"""``gldfn-export``: a thin command over ``gldfn_export.exporter.export_gldfn``."""
from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from gldfn_model.cli.model_scale import scale_of_model
from gldfn_model.cli.models import ShippedModelName, model_option
from gldfn_model.cli.options import (
    OVERWRITE,
    RANDOM_WEIGHTS,
    ConfigName,
    checkpoint_option,
    config_option,
    output_option,
    scale_option,
    value_of,
    version_option,
)
from gldfn_model.common.cli_errors import GldfnTyper


class Precision(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"


class Target(str, Enum):
    trt = "trt"
    portable = "portable"


app = GldfnTyper(add_completion=False)


def default_output(config_name: str, scale: int, precision: str, target: str, model: str | None = None) -> Path:
    suffix = "" if target == "trt" else f"_{target}"
    stem = model.replace("-", "_") if model else f"{config_name}_x{scale}"
    return Path(f"gldfn_{stem}_{precision}{suffix}.onnx")


@app.command()
def export(
    scale: int | None = scale_option("upscaling factor (default: the --model's or --checkpoint's; else required)"),
    model_choice: ShippedModelName | None = model_option(),
    config: ConfigName | None = config_option("named config (default: the checkpoint's, else tiny: the shipped one)"),
    checkpoint: Path | None = checkpoint_option("checkpoint to export; it sets the scale (default: the weights "
                                                "shipped for --config and --scale)"),
    random_weights: bool = RANDOM_WEIGHTS,
    output: Path | None = output_option("output file (default: gldfn_<config>_x<scale>_<precision>[_portable].onnx)",
                                        required=False),
    opset: int = typer.Option(20, "--opset", help="ONNX opset (>= 18)."),
    batch: int = typer.Option(1, "--batch", help="Batch size, fixed in the file (H and W stay dynamic)."),
    precision: Precision = typer.Option(Precision.fp32, "--precision", help="fp32, or fp16 (float32 I/O, fragile parts in float32)."),
    target: Target = typer.Option(Target.trt, "--target", help="trt: custom nodes + model-local function; portable: function inlined, standard ops only."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Compare ONNX Runtime (CPU) with PyTorch before keeping the file."),
    verify_image: Path | None = typer.Option(None, "--verify-image", help="Image for the real-image check. Default: Set5 butterfly when found, else a synthetic card."),
    version: bool = version_option("gldfn-export"),
    overwrite: bool = OVERWRITE,
) -> None:
    """Export GLDFN to one ONNX file that runs in ONNX Runtime and maps to the TensorRT plugin."""
    # Imported here so --help answers without loading torch.
    from gldfn_export.exporter import ExportError, export_gldfn
    from gldfn_export.summary import format_summary
    from gldfn_model.common.atomic import check_output
    from gldfn_model.network.model_source import resolve_model

    model = value_of(model_choice)
    scale = scale_of_model(scale, model=model, checkpoint=checkpoint, default=None)
    if scale is None:
        raise typer.BadParameter("pass -s/--scale 2|3|4, --model NAME (`gldfn models` lists them) or --checkpoint PATH")
    if verify_image is not None and not verify_image.is_file():
        raise ExportError(f"--verify-image {verify_image} does not exist")
    source = resolve_model(scale, value_of(config), checkpoint, random_weights, model=model)
    path = output or default_output(source.config_name, scale, precision.value, target.value, model)
    check_output(path, overwrite=overwrite, inputs={"--checkpoint": checkpoint, "--verify-image": verify_image})
    typer.echo(f"exporting GLDFN x{scale} '{source.config_name}' from {source.description}")
    result = export_gldfn(
        source.model, path, precision=precision.value, target=target.value, opset=opset, batch=batch,
        verify=verify, checkpoint_sha256=source.checkpoint_sha256, config_name=source.config_name,
        verify_image=verify_image, overwrite=overwrite,
    )
    typer.echo(format_summary(result, source.description))


def main() -> None:
    app()
