"""``gldfn eval``: PSNR / SSIM of bicubic or a GLDFN checkpoint on a degraded test set."""
from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer

from gldfn_model.cli.degrade import NOISE_HELP, SV_NOISE_HELP, check_setting, noise_from_level
from gldfn_model.cli.model_scale import scale_of_model
from gldfn_model.cli.models import ShippedModelName, model_option
from gldfn_model.cli.options import (
    AUTO,
    JSON,
    SEED,
    THREADS,
    ConfigName,
    Setting,
    SvNoise,
    checkpoint_option,
    config_option,
    implied_choice,
    input_option,
    inputs_argument,
    merge_inputs,
    scale_option,
    value_of,
)
from gldfn_model.common.cli_aliases import hidden_aliases
from gldfn_model.evaluation.metrics import CONVENTIONS
from gldfn_model.network.checkpoint_facts import SHIPPED_CONFIG

Method = Enum("Method", {name: name for name in (AUTO, "bicubic", "model")}, type=str)
Convention = Enum("Convention", {name: name for name in CONVENTIONS}, type=str)


def _manifest_scale(lr_dir: Path | None) -> tuple[str, int | None] | None:
    """(description, scale) of a ``gldfn degrade`` folder's manifest, None without one."""
    from gldfn_model.evaluation.evaluate import MANIFEST_NAME, read_manifest

    if lr_dir is None or not (lr_dir / MANIFEST_NAME).is_file():
        return None
    return f"{lr_dir} (its {MANIFEST_NAME})", read_manifest(lr_dir).get("scale")


def register(app: typer.Typer) -> None:
    @app.command("eval")
    @hidden_aliases(input_options="--hr")
    def eval_command(
        positional: Path | None = inputs_argument("folder of HR test images", metavar="HR_FOLDER"),
        input_options: list[Path] | None = input_option("folder of HR test images", several=False),
        setting: Setting | None = typer.Option(None, "--setting", show_default=False,
                                               help="degradation setting (default: the --lr-dir folder's, else gaussian8)"),
        scale: int | None = scale_option("scale factor (default: the --model's, --checkpoint's or --lr-dir's, else 4)"),
        method: Method = typer.Option(Method.auto, "--method", help="auto: model with --model, --checkpoint or --config, else "
                                      "bicubic (MATLAB-style upsampling)"),
        checkpoint: Path | None = checkpoint_option(),
        model_choice: ShippedModelName | None = model_option(),
        config: ConfigName | None = config_option("config of the shipped weights used without --checkpoint or --model "
                                                  "(default tiny)"),
        convention: Convention = typer.Option(Convention.dcls, "--convention",
                                              help="scoring convention: dcls (Y 16-235, border crop) or ikc"),
        lr_dir: Path | None = typer.Option(None, "--lr-dir", help="read LR images from a `gldfn degrade` folder"),
        seed: int = SEED,
        noise: float = typer.Option(0.0, "--noise", help=NOISE_HELP),
        sv_noise: SvNoise = typer.Option(SvNoise.low, "--sv-noise", help=SV_NOISE_HELP),
        as_json: bool = JSON,
        threads: int | None = THREADS,
    ) -> None:
        """Degrade (or read) the test images, restore them, and report per-image and mean PSNR / SSIM."""
        from gldfn_model.evaluation import evaluate as evaluation

        (hr,) = merge_inputs(positional, input_options, what="HR folder", at_most=1)
        manifest = _manifest_scale(lr_dir)
        setting_name = value_of(setting) or (evaluation.read_manifest(lr_dir)["setting"] if manifest else "gaussian8")
        check_setting(setting_name, noise)
        config_name, model = value_of(config), value_of(model_choice)
        implied = [(f"{flag} {value}", "model") for flag, value in
                   (("--checkpoint", checkpoint), ("--model", model), ("--config", config_name)) if value is not None]
        method_name = implied_choice("--method", method.value, implied, "bicubic")
        scale = scale_of_model(scale, model=model, checkpoint=checkpoint, also=manifest)

        def show(image: evaluation.ImageScore) -> None:
            if not as_json:
                typer.echo(f"{image.name:24s} {image.variant:>2d}  {image.psnr:7.3f} dB  {image.ssim:.4f}")

        if method_name == "bicubic":
            restore = evaluation.bicubic_restore(scale)
        else:
            restore = evaluation.model_restore(
                evaluation.load_eval_model(checkpoint, scale, config_name or SHIPPED_CONFIG, model), threads)
        result = evaluation.evaluate(hr, setting_name, scale, restore, convention.value, seed, noise_from_level(noise),
                                     sv_noise.value, lr_dir, on_image=show)
        if as_json:
            typer.echo(json.dumps({"method": method_name, **result.to_dict()}, indent=1))
        else:
            typer.echo(f"mean ({len(result.per_image)} images, {setting_name} x{scale}, {method_name}, "
                       f"{convention.value}): PSNR {result.psnr:.2f} dB, SSIM {result.ssim:.4f}")
