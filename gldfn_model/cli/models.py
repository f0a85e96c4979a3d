"""``gldfn models``: the shipped models; and the ``--model`` option the other commands share."""
from __future__ import annotations

import json
from enum import Enum
from typing import Any

import typer

from gldfn_model.network.registry import (
    ModelRegistryError,
    ShippedModel,
    default_model,
    photo_model,
    shipped_models,
)

SET5_COLUMNS = (("gaussian8", "Gaussian8"), ("gaussian8+n15", "+n15"), ("sv-high", "sv high"))


def _shipped_names() -> dict[str, str]:
    try:
        return {model.name: model.name for model in shipped_models()}
    except ModelRegistryError:
        return {}  # a damaged manifest: `gldfn models` and every use of a model say so


# The shipped models' names, so that --help lists them (gldfn_model/weights/models.json).
ShippedModelName = Enum("ShippedModelName", _shipped_names(), type=str)


def model_option() -> Any:
    """``--model NAME`` for any command that runs a shipped model; declare it ``ShippedModelName | None`` and take
    its ``value_of``."""
    return typer.Option(None, "--model", show_default=False,
                        help="a shipped model (`gldfn models` describes them); it sets the scale. Default: the "
                        "Setting-1 model of --scale (gldfn upscale: the model for photos, tiny-x4-robust at x4)")


def model_dict(model: ShippedModel) -> dict[str, Any]:
    from gldfn_model.network.complexity import count_complexity
    from gldfn_model.network.config import get_config

    return {"name": model.name, "scale": model.scale, "config": model.config, "training": model.training,
            "default": default_model(model.scale) == model,
            "upscale_default": photo_model(model.scale) == model, "use_for": model.use_for,
            "params": count_complexity(get_config(model.config, model.scale), 1, 1).params,
            "size_bytes": model.path.stat().st_size if model.path.is_file() else None, "file": str(model.path),
            "sha256": model.sha256, "set5_dcls": model.set5}


def _figures(set5: dict[str, dict[str, float]]) -> str:
    return " / ".join(f"{set5[key]['psnr']:.2f}" if key in set5 else "-" for key, _ in SET5_COLUMNS)


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models_command(as_json: bool = typer.Option(False, "--json", help="print a JSON list")) -> None:
        """The shipped models: scale, training degradations, size, Set5 figures, what each is for."""
        try:
            rows = [model_dict(m) for m in shipped_models()]
        except ModelRegistryError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        if as_json:
            typer.echo(json.dumps(rows, indent=1))
            return
        header = "Set5 dB (dcls): " + " / ".join(title for _, title in SET5_COLUMNS)
        names = [f"{row['name']} {'*' * row['default']}{'+' * row['upscale_default']}".rstrip() for row in rows]
        width = max([16, *map(len, names)])
        typer.echo(f"{'name':{width}s} {'scale':>5s}  {'config':6s} {'params':>9s} {'size':>8s}  {'trained on':44s} "
                   f"{header}")
        for name, row, model in zip(names, rows, shipped_models()):
            size = f"{row['size_bytes'] / 2**20:.1f} MiB" if row["size_bytes"] is not None else "missing"
            typer.echo(f"{name:{width}s} {'x' + str(row['scale']):>5s}  {row['config']:6s} {row['params'] / 1e3:8.1f}k "
                       f"{size:>8s}  {model.describe_training():44s} {_figures(model.set5)}")
        typer.echo("* the default of its scale (Setting 1: gldfn eval, gldfn-export); + the default of gldfn upscale "
                   "(photos, docs/model_card.md). Use for:")
        for model in shipped_models():
            typer.echo(f"  {model.name}: {model.use_for}")
