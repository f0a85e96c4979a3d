"""The one base class of every error the project raises for a user to read.

Each command line catches :class:`GldfnError` once, prints its message as one line and exits with 1. The
classes derived from it also keep a built-in base (``ValueError``, ``RuntimeError``) so callers that caught
those before still do. Importing this module imports nothing else, so torch-free tools can use it.
"""
from __future__ import annotations


class GldfnError(Exception):
    """An error with a message meant for the user: it names the problem and what to do."""
