"""The ``gldfn`` command: a thin layer over the gldfn_model API.

The app (``gldfn_model.cli.commands``) is built on first use, so that importing one command's module (other packages
use ``gldfn_model.cli.models`` for the shared ``--model`` option) does not import every command and PyTorch.
"""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from gldfn_model.cli.commands import app

        return app
    raise AttributeError(f"module 'gldfn_model.cli' has no attribute {name!r}")


def main() -> None:
    from gldfn_model.cli.commands import app

    app()
