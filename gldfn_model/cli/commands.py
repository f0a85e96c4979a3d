"""The ``gldfn`` app: every subcommand registered. Each subcommand lives in its own module.

Commands that need a package built on top of gldfn_model (``gldfn upscale`` and ``gldfn bench`` need the
runtime) are registered by that package through the ``gldfn.commands`` entry-point group, so that this
package imports nothing above it.
"""
from __future__ import annotations

from importlib.metadata import entry_points

from gldfn_model.cli import degrade, evaluate, info, models, train
from gldfn_model.cli.options import version_option
from gldfn_model.common.cli_errors import GldfnTyper

COMMAND_GROUP = "gldfn.commands"

app = GldfnTyper(add_completion=False, no_args_is_help=True, help="GLDFN blind super-resolution: model tools.")
for module in (info, models, train, degrade, evaluate):
    module.register(app)
# One registration per name, even where two installations of the project are on the path.
for entry in sorted({e.name: e for e in entry_points(group=COMMAND_GROUP)}.values(), key=lambda e: e.name):
    entry.load()(app)


@app.callback()
def _root(version: bool = version_option("gldfn")) -> None:
    """GLDFN blind super-resolution: model tools."""


def main() -> None:
    app()
