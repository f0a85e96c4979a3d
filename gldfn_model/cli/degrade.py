"""``gldfn degrade``: write the LR test images of a setting, with a manifest of every degradation."""
from __future__ import annotations

from pathlib import Path

import typer

from gldfn_model.cli.options import (
    OVERWRITE,
    SEED,
    Setting,
    SvNoise,
    input_option,
    inputs_argument,
    merge_inputs,
    output_option,
    scale_option,
)
from gldfn_model.common.cli_aliases import hidden_aliases

NOISE_HELP = "AWGN sigma in 8-bit levels (e.g. 15 or 30); not for sv"
SV_NOISE_HELP = "sv noise range: low = [0, 5]/255, high = [5, 10]/255"


def noise_from_level(level: float) -> float:
    """An AWGN level given in 0-255 units (e.g. 15) -> the [0, 1] units of the degradation API."""
    if not 0 <= level <= 255:
        raise typer.BadParameter(f"noise level {level} must be in [0, 255] (it is sigma in 8-bit levels, e.g. 15)")
    return level / 255.0


def check_setting(setting: str, noise: float) -> None:
    """--noise beside a setting that draws its own (the choices themselves are Enums)."""
    if setting == "sv" and noise:
        raise typer.BadParameter("--noise does not apply to the sv setting, which draws its own; use --sv-noise low|high")


def register(app: typer.Typer) -> None:
    @app.command()
    @hidden_aliases(input_options="--hr", output="--out")
    def degrade(
        positional: Path | None = inputs_argument("folder of HR images (PNG/JPEG/...)", metavar="HR_FOLDER"),
        input_options: list[Path] | None = input_option("folder of HR images", several=False),
        output: Path = output_option("output folder for the LR images and manifest.json"),
        setting: Setting = typer.Option(Setting.gaussian8, "--setting", help="degradation setting"),
        scale: int = scale_option("downscaling factor", default=4),
        seed: int = SEED,
        noise: float = typer.Option(0.0, "--noise", help=NOISE_HELP),
        sv_noise: SvNoise = typer.Option(SvNoise.low, "--sv-noise", help=SV_NOISE_HELP),
        overwrite: bool = OVERWRITE,
    ) -> None:
        """Degrade every HR image of a folder (8 LR images each for gaussian8) and write a manifest."""
        from gldfn_model.evaluation.evaluate import write_degraded_folder

        (hr,) = merge_inputs(positional, input_options, what="HR folder", at_most=1)
        check_setting(setting.value, noise)
        manifest = write_degraded_folder(hr, output, setting.value, scale, seed, noise_from_level(noise), sv_noise.value,
                                         on_image=lambda case, name: typer.echo(f"{case.name} -> {name}"),
                                         overwrite=overwrite)
        typer.echo(f"wrote {len(manifest['images'])} LR images and {output / 'manifest.json'}")
