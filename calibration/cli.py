"""``gldfn-calibrate``: a thin command over ``gldfn_calibration.calibrate.calibrate_gldfn``."""
from __future__ import annotations

from pathlib import Path

import typer

from gldfn_calibration.methods import Method
from gldfn_calibration.targets import Int8Target
from gldfn_model.cli.options import (
    OVERWRITE,
    SEED,
    THREADS,
    Setting,
    input_option,
    inputs_argument,
    merge_inputs,
    output_option,
    scale_option,
    version_option,
)
from gldfn_model.common.cli_errors import GldfnTyper

app = GldfnTyper(add_completion=False)


@app.command()
def calibrate(
    positional: Path | None = inputs_argument("FP32 ONNX file written by `gldfn-export --target trt`", metavar="MODEL"),
    model_options: list[Path] | None = input_option("the FP32 ONNX file", several=False),
    images: Path = typer.Option(..., "--images", help="Folder of calibration images: HR (degraded here) or, with --lr, LR."),
    output: Path = output_option("INT8 (Q/DQ) ONNX file to write."),
    scale: int | None = scale_option("Upscaling factor; must match the model's (default: the model's)."),
    setting: Setting = typer.Option(Setting.gaussian8, "--setting", help="Degradation for the calibration and evaluation LR images."),
    samples: int = typer.Option(64, "--samples", help="Number of calibration patches."),
    patch: int = typer.Option(128, "--patch", help="LR patch size in pixels (HR images need patch x scale)."),
    method: Method = typer.Option(Method.percentile, "--method", help="How activation ranges are chosen from the calibration data."),
    target: Int8Target = typer.Option(Int8Target.tensorrt, "--target", help="Q/DQ layout: tensorrt (symmetric int8 activations, what TensorRT engines are built from) or onnxruntime (uint8 activations and int32 bias, which ONNX Runtime's CPU kernels fuse into QLinearConv; TensorRT cannot build it)."),
    exclude: str | None = typer.Option(None, "--exclude", help="Comma-separated layers kept in float: first, last, or layer-name patterns (e.g. 'groups.0.*'); 'none' quantizes them all. [default: first,last]"),
    lr: bool = typer.Option(False, "--lr", help="--images holds LR images: cut patches as they are, no degradation."),
    report: Path | None = typer.Option(None, "--report", help="Write the JSON report here."),
    eval_images: Path | None = typer.Option(None, "--eval-images", help="HR evaluation images (default: a fifth of --images, at most 5, held out of the calibration, seeded)."),
    evaluate: bool = typer.Option(True, "--eval/--no-eval", help="Measure PSNR / SSIM of FP32 and INT8 on the evaluation images."),
    sensitivity: bool = typer.Option(False, "--sensitivity", help="Also measure each quantized layer alone (one evaluation per layer)."),
    engine_check: bool = typer.Option(True, "--engine-check/--no-engine-check", help="Parse and build a TensorRT engine on the CPU (TensorRT-RTX)."),
    plugin: Path | None = typer.Option(None, "--plugin", help="Plugin library for the engine check (default: the built one if any, else the function bodies)."),
    seed: int = SEED,
    threads: int | None = THREADS,
    version: bool = version_option("gldfn-calibrate"),
    overwrite: bool = OVERWRITE,
) -> None:
    """Quantize a GLDFN export to INT8 (explicit Q/DQ, for TensorRT or ONNX Runtime) and report the PSNR it costs."""
    # Imported here so --help answers without loading torch and ONNX Runtime.
    from gldfn_calibration.calibrate import CalibrationOptions, calibrate_gldfn
    from gldfn_calibration.engine_check import find_plugin
    from gldfn_calibration.errors import CalibrationError
    from gldfn_calibration.layer_selection import parse_exclude
    from gldfn_calibration.summary import format_summary

    (model,) = merge_inputs(positional, model_options, what="ONNX model", at_most=1)
    if sensitivity and not evaluate:
        raise CalibrationError("--sensitivity needs the evaluation; drop --no-eval")
    if eval_images is not None and not evaluate:
        raise CalibrationError("--eval-images is for the evaluation that --no-eval turns off; drop one of them")
    options = CalibrationOptions(
        images=images, scale=scale, setting=setting.value, samples=samples, patch=patch, method=method,
        exclude=tuple(parse_exclude(exclude)), lr_images=lr, seed=seed, eval_images=eval_images, hold_out=evaluate,
        sensitivity=sensitivity, engine_check=engine_check, plugin_library=plugin or find_plugin(), threads=threads,
        target=target,
    )
    result = calibrate_gldfn(model, output, options, report, progress=typer.echo, overwrite=overwrite)
    typer.echo(format_summary(result))


def main() -> None:
    app()
