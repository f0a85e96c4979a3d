"""How every command line of the project reports a user error: one place catches :class:`GldfnError`.

``gldfn``, ``gldfn-export``, ``gldfn-trt`` and ``gldfn-calibrate`` build their Typer apps with :class:`GldfnTyper`.
A :class:`GldfnError` raised while a command runs becomes one ``error: <message>`` line on stderr and exit
status 1; commands list no exception classes of their own. Typer's usage errors (a bad option, a missing
argument, ``typer.BadParameter``) keep click's status 2; a value that is not one of an option's choices gets a
"did you mean" when a choice is close (gldfn_model.common.suggest). Other exceptions are bugs and keep their
traceback.
"""
from __future__ import annotations

import re
import sys
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from gldfn_model.common.cli_aliases import HiddenAliasesMixin
from gldfn_model.common.errors import GldfnError
from gldfn_model.common.suggest import did_you_mean

EXIT_OK = 0
EXIT_ERROR = 1  # an error the message explains
EXIT_USAGE = 2  # the command line itself is wrong (click's status for usage errors)
# How Typer words a value outside an option's choices: "'tiny-x4-robus' is not one of 'tiny-x2', 'tiny-x4'."
_NOT_A_CHOICE = re.compile(r"'([^']*)' is not one of ((?:'[^']*'(?:, )?)+)")


class _ReportsGldfnErrors:
    """For click commands: ``main`` (what both ``app()`` and Typer's CliRunner call) turns a GldfnError into
    one line and EXIT_ERROR."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().main(*args, **kwargs)  # type: ignore[misc]
        except GldfnError as error:
            typer.echo(f"error: {error}", err=True)
            sys.exit(EXIT_ERROR)


def suggest_a_choice(message: str) -> str:
    """Typer's message for a value outside the choices, with " (did you mean 'NAME'?)" when one is close."""
    found = _NOT_A_CHOICE.search(message)
    if found is None:
        return message
    hint = did_you_mean(found.group(1), re.findall(r"'([^']*)'", found.group(2)))
    return message[: found.end()] + hint + message[found.end():] if hint else message


class _SuggestsChoices:
    """For click commands: a value outside an option's choices gets the closest choice as a suggestion."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)  # type: ignore[misc]
        except typer.BadParameter as error:
            error.message = suggest_a_choice(error.message)
            raise


class GldfnGroup(_ReportsGldfnErrors, TyperGroup):
    """An app with several commands."""


class GldfnCommand(_ReportsGldfnErrors, _SuggestsChoices, HiddenAliasesMixin, TyperCommand):
    """A command (of an app, or an app that is a single command); it reads its options' hidden aliases
    (gldfn_model.common.cli_aliases)."""


class GldfnTyper(typer.Typer):
    """A Typer app whose commands report GldfnError as one ``error:`` line with exit status 1."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=GldfnGroup, **kwargs)

    def command(self, *args: Any, cls: type[TyperCommand] = GldfnCommand, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls, **kwargs)
