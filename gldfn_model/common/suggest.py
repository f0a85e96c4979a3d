""""Did you mean ...?" for a mistyped name (a shipped model, a network, any choice of a command line), with the
standard library's ``difflib``: the closest known name, when one is close enough."""
from __future__ import annotations

import difflib
from collections.abc import Iterable

# difflib's similarity ratio a suggestion must reach (its default is 0.6; a little stricter keeps the suggestions
# to real typos among names that share most of their letters, like tiny-x2 / tiny-x3 / tiny-x4).
CUTOFF = 0.7


def closest(value: str, choices: Iterable[str]) -> str | None:
    """The known name closest to ``value`` (case-insensitive), or None when none is close."""
    names = {name.lower(): name for name in choices}
    found = difflib.get_close_matches(value.lower(), list(names), n=1, cutoff=CUTOFF)
    return names[found[0]] if found else None


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'NAME'?)`` to append to an error message, or "" when no known name is close."""
    match = closest(value, choices)
    return f" (did you mean {match!r}?)" if match is not None else ""
