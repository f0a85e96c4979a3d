"""Turn a finished training run's checkpoint into shippable weights: the network and what it was trained on, without
the optimizer, generator states or local paths that only a resume needs.

    python -m gldfn_model.training.release runs/RUN/last.pt gldfn_model/weights/NAME.pt --command "gldfn train ..."

prints the new file's SHA-256 (the value ``models.json`` records)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from gldfn_model.common.atomic import check_output
from gldfn_model.common.cli_errors import GldfnTyper
from gldfn_model.common.hashing import file_sha256
from gldfn_model.network.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

# The run options that describe the weights; the rest (folders, threads, checkpoint cadence) describe one machine.
_DESCRIBING_OPTIONS = ("batch", "patch", "seed", "setting", "lr")


def training_summary(options: dict[str, Any], iteration: int, command: str) -> dict[str, Any]:
    """The ``training`` record of shipped weights, from a run's saved options: data as folder names, never paths."""
    noise = options.get("noise")
    summary: dict[str, Any] = {
        "command": command,
        "data": [Path(str(folder)).name for folder in options.get("data", [])],
        "iterations": iteration,
        **{name: options[name] for name in _DESCRIBING_OPTIONS if name in options},
        "noise": [float(noise[0]), float(noise[1])] if noise else None,
    }
    if options.get("init"):
        summary["init"] = Path(str(options["init"])).name
    return summary


def release_weights(checkpoint: str | Path, destination: str | Path, command: str, overwrite: bool = False) -> str:
    """Write ``destination`` (an existing file only with ``overwrite``, never the checkpoint itself) with the weights
    of training checkpoint ``checkpoint`` and a summary of its training; returns the new file's SHA-256."""
    check_output(destination, overwrite=overwrite, inputs={"checkpoint": checkpoint}, option="destination")
    ckpt = load_checkpoint(checkpoint)
    options = ckpt.extra.get("options")
    if not isinstance(options, dict) or "iteration" not in ckpt.extra:
        raise CheckpointError(f"{checkpoint} is not a training checkpoint (no run options or iteration); "
                              "give the last.pt of a gldfn train run")
    iteration = int(ckpt.extra["iteration"])
    save_checkpoint(destination, ckpt.build_model(), ckpt.config_name, overwrite=overwrite, iteration=iteration,
                    training=training_summary(options, iteration, command))
    return file_sha256(destination)


app = GldfnTyper(add_completion=False)


@app.command()
def main(
    checkpoint: Path = typer.Argument(..., help="the run's checkpoint (RUN/last.pt)"),
    destination: Path = typer.Argument(..., help="the weights file to write"),
    command: str = typer.Option(..., "--command", help="the training command(s) and resumes, as the card gives them"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace the destination if it exists"),
) -> None:
    """Shippable weights from a training run's checkpoint; prints their SHA-256."""
    typer.echo(release_weights(checkpoint, destination, command, overwrite))


if __name__ == "__main__":
    app()
