"""The ONNX Runtime custom-op libraries that sessions register. Installed packages name them through the
``gldfn.ort_custom_ops`` entry-point group: each entry is a function of a session's providers returning a
library path or None (gldfn-trt's finds ``libgldfn_ort_ops.so``, the local dynamic filter's kernels), so that
gldfn_model imports nothing above itself. Without a library, ONNX Runtime inlines the op's ONNX function body."""
from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

CUSTOM_OPS_GROUP = "gldfn.ort_custom_ops"


def custom_ops_libraries(providers: Sequence[str] | None = None) -> list[Path]:
    """The libraries the installed packages offer for a session on ``providers`` (preferred first)."""
    found = []
    for entry in sorted(entry_points(group=CUSTOM_OPS_GROUP), key=lambda e: e.name):
        library = entry.load()(providers)
        if library is not None:
            found.append(Path(library))
    return found
