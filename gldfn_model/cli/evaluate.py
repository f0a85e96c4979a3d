"""``gldfn eval``: PSNR / SSIM of bicubic or a GLDFN checkpoint on a degraded test set."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from gldfn_model.cli.degrade import check_setting, noise_from_level
from gldfn_model.cli.models import command_scale, model_option
from gldfn_model.data.degradation import SETTINGS
from gldfn_model.evaluation.metrics import CONVENTIONS
from gldfn_model.network.checkpoint import SHIPPED_CONFIG

METHODS = ("bicubic", "model")


def _has_manifest(lr_dir: Path) -> bool:
    from gldfn_model.evaluation.evaluate import MANIFEST_NAME

    return (lr_dir / MANIFEST_NAME).is_file()


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_command(
        hr: Path = typer.Option(..., "--hr", help="folder of HR test images"),
        setting: str | None = typer.Option(None, help=f"degradation setting: {', '.join(SETTINGS)} "
                                              "(default gaussian8, or the --lr-dir folder's)"),
        scale: int | None = typer.Option(None, help="scale factor (2, 3, 4); default: the --model's, else 4"),
        method: str | None = typer.Option(None, help="bicubic (MATLAB-style upsampling) or model; default: model "
                                             "with --model or --checkpoint, else bicubic"),
        checkpoint: Path | None = typer.Option(None, help="GLDFN checkpoint (default: the shipped weights)"),
        model: str | None = model_option(),
        config: str = typer.Option(SHIPPED_CONFIG, help="config of the shipped weights used when no --checkpoint is given"),
        convention: str = typer.Option("dcls", help="scoring convention: dcls (Y 16-235, border crop) or ikc"),
        lr_dir: Path | None = typer.Option(None, "--lr-dir", help="read LR images from a `gldfn degrade` folder"),
        seed: int = typer.Option(0, help="seed of the random settings and of the noise"),
        noise: float = typer.Option(0.0, help="AWGN sigma in 8-bit levels (e.g. 15 or 30); not for sv"),
        sv_noise: str = typer.Option("low", help="sv noise range: low = [0, 5]/255, high = [5, 10]/255"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object: psnr, ssim, per_image"),
    ) -> None:
        """Degrade (or read) the test images, restore them, and report per-image and mean PSNR / SSIM."""
        from gldfn_model.evaluation import evaluate as evaluation

        if setting is None:
            setting = evaluation.read_manifest(lr_dir)["setting"] if lr_dir is not None and _has_manifest(lr_dir) else "gaussian8"
        check_setting(setting, sv_noise, noise)
        method = method or ("model" if checkpoint is not None or model is not None else "bicubic")
        if method not in METHODS:
            raise typer.BadParameter(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
        if convention not in CONVENTIONS:
            raise typer.BadParameter(f"unknown convention {convention!r}; use one of {', '.join(CONVENTIONS)}")
        if (checkpoint is not None or model is not None) and method != "model":
            raise typer.BadParameter("--checkpoint and --model need --method model")
        scale = command_scale(model, scale)

        def show(image: evaluation.ImageScore) -> None:
            if not as_json:
                typer.echo(f"{image.name:24s} {image.variant:>2d}  {image.psnr:7.3f} dB  {image.ssim:.4f}")

        if method == "bicubic":
            restore = evaluation.bicubic_restore(scale)
        else:
            restore = evaluation.model_restore(evaluation.load_eval_model(checkpoint, scale, config, model))
        result = evaluation.evaluate(hr, setting, scale, restore, convention, seed, noise_from_level(noise),
                                     sv_noise, lr_dir, on_image=show)
        if as_json:
            typer.echo(json.dumps({"method": method, **result.to_dict()}, indent=1))
        else:
            typer.echo(f"mean ({len(result.per_image)} images, {setting} x{scale}, {method}, {convention}): "
                       f"PSNR {result.psnr:.2f} dB, SSIM {result.ssim:.4f}")
