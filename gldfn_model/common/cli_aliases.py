"""Old spellings of renamed options, kept so that scripts keep working: they parse like the option but are
left out of ``--help`` and of error hints.

Declare them on a command function, under ``@app.command``::

    @app.command()
    @hidden_aliases(output="--out", inputs=("--hr",))
    def degrade(inputs: ..., output: ...): ...

Keys are the function's parameter names (options only). Every command of a :class:`GldfnTyper` app reads them
(``GldfnCommand`` mixes in :class:`HiddenAliasesMixin`).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
_ATTRIBUTE = "__gldfn_hidden_aliases__"


def hidden_aliases(**aliases: str | Sequence[str]) -> Callable[[F], F]:
    """Give options of the decorated command extra spellings that are not shown (see the module's docstring)."""
    table = {name: (spellings,) if isinstance(spellings, str) else tuple(spellings) for name, spellings in aliases.items()}

    def decorate(function: F) -> F:
        setattr(function, _ATTRIBUTE, table)
        return function

    return decorate


def aliases_of(callback: Callable[..., Any] | None) -> dict[str, tuple[str, ...]]:
    """The hidden aliases declared on a command's callback (Typer's wrapper copies the attribute)."""
    return dict(getattr(callback, _ATTRIBUTE, {}))


class HiddenAliasesMixin:
    """For click commands: the parser also accepts each option's hidden aliases; the option's own ``opts``
    (what help and error hints print) stay as declared."""

    callback: Callable[..., Any] | None

    def make_parser(self, ctx: Any) -> Any:
        parser = super().make_parser(ctx)  # type: ignore[misc]
        aliases = aliases_of(self.callback)
        for param in self.get_params(ctx):  # type: ignore[attr-defined]
            spellings = aliases.pop(param.name, None)
            if spellings is None:
                continue
            if param.param_type_name != "option":
                raise TypeError(f"hidden alias {spellings} for {param.name!r}: only options can have aliases")
            shown = param.opts, param.secondary_opts
            param.opts, param.secondary_opts = list(spellings), []
            try:
                param.add_to_parser(parser, ctx)
            finally:
                param.opts, param.secondary_opts = shown
        if aliases:
            raise TypeError(f"hidden aliases for parameters this command lacks: {', '.join(aliases)}")
        return parser
