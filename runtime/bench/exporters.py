"""The ONNX exporters the runtime uses (``gldfn bench`` exports a model before timing it in ONNX Runtime), found
through the ``gldfn.exporters`` entry-point group that gldfn-export registers, so that the runtime imports no
exporter module."""
from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from gldfn_model.common.errors import GldfnError

EXPORTER_GROUP = "gldfn.exporters"


class ExporterMissing(GldfnError, LookupError):
    """No exporter of that name is installed."""


def find_exporter(name: str) -> Callable[..., Any]:
    """The exporter registered as ``name`` (``onnx``: GLDFN's ``export_gldfn``; ``onnx-peer``: a Table IV peer)."""
    found = [entry for entry in entry_points(group=EXPORTER_GROUP) if entry.name == name]
    if not found:
        raise ExporterMissing(f"no ONNX exporter {name!r} is installed (gldfn-export registers it under "
                              f"{EXPORTER_GROUP}); pass --onnx FILE, or reinstall gldfn-trt")
    return found[0].load()
