"""``gldfn degrade``: write the LR test images of a setting, with a manifest of every degradation."""
from __future__ import annotations

from pathlib import Path

import typer

from gldfn_model.data.degradation import SETTINGS, SV_NOISE_RANGES_255


def noise_from_level(level: float) -> float:
    """An AWGN level given in 0-255 units (e.g. 15) -> the [0, 1] units of the degradation API."""
    if not 0 <= level <= 255:
        raise typer.BadParameter(f"noise level {level} must be in [0, 255] (it is sigma in 8-bit levels, e.g. 15)")
    return level / 255.0


def check_setting(setting: str, sv_noise: str, noise: float) -> None:
    if setting == "sv" and noise:
        raise typer.BadParameter("--noise does not apply to the sv setting, which draws its own; use --sv-noise low|high")
    if setting not in SETTINGS:
        raise typer.BadParameter(f"unknown setting {setting!r}; use one of {', '.join(SETTINGS)}")
    if sv_noise not in SV_NOISE_RANGES_255:
        raise typer.BadParameter(f"unknown --sv-noise {sv_noise!r}; use one of {', '.join(SV_NOISE_RANGES_255)}")


def register(app: typer.Typer) -> None:
    @app.command()
    def degrade(
        hr: Path = typer.Option(..., "--hr", help="folder of HR images (PNG/JPEG/...)"),
        out: Path = typer.Option(..., "--out", help="output folder for the LR images and manifest.json"),
        setting: str = typer.Option("gaussian8", help=f"degradation setting: {', '.join(SETTINGS)}"),
        scale: int = typer.Option(4, help="downscaling factor (2, 3, 4)"),
        seed: int = typer.Option(0, help="seed of the random settings and of the noise"),
        noise: float = typer.Option(0.0, help="AWGN sigma in 8-bit levels (e.g. 15 or 30); not for sv"),
        sv_noise: str = typer.Option("low", help="sv noise range: low = [0, 5]/255, high = [5, 10]/255"),
    ) -> None:
        """Degrade every HR image of a folder (8 LR images each for gaussian8) and write a manifest."""
        from gldfn_model.evaluation.evaluate import write_degraded_folder

        check_setting(setting, sv_noise, noise)
        manifest = write_degraded_folder(hr, out, setting, scale, seed, noise_from_level(noise), sv_noise,
                                         on_image=lambda case, name: typer.echo(f"{case.name} -> {name}"))
        typer.echo(f"wrote {len(manifest['images'])} LR images and {out / 'manifest.json'}")
