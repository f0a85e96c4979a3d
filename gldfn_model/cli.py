"""The ``gldfn`` command: a thin layer over the gldfn_model API. Each subcommand lives in its own module."""
from __future__ import annotations

import typer

from gldfn_model import cli_info, cli_train
from gldfn_model import cli_upscale
from gldfn_model import cli_bench
from gldfn_model import cli_degrade, cli_eval

app = typer.Typer(add_completion=False, no_args_is_help=True, help="GLDFN blind super-resolution: model tools.")
cli_info.register(app)
cli_train.register(app)
cli_upscale.register(app)
cli_bench.register(app)
cli_degrade.register(app)
cli_eval.register(app)


@app.callback()
def _root() -> None:
    """GLDFN blind super-resolution: model tools."""


def main() -> None:
    app()
