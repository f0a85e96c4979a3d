"""Dependencies that pip extras install: import one, or raise MissingDependencyError naming the extra.

ONNX Runtime comes in two wheels that both install the ``onnxruntime`` module, so the project depends on
neither and lets the user pick one: ``gldfn-trt[cpu]`` (onnxruntime) or ``gldfn-trt[gpu]`` (onnxruntime-gpu).
matplotlib is only needed to draw ``--plot`` figures: ``gldfn-trt[plot]``.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from gldfn_model.common.errors import GldfnError

ONNXRUNTIME_EXTRAS = ("pip install 'gldfn-trt[cpu]' (onnxruntime) or 'gldfn-trt[gpu]' (onnxruntime-gpu, CUDA); "
                      "install one of the two, not both")
PLOT_EXTRA = "pip install 'gldfn-trt[plot]'"


class MissingDependencyError(GldfnError, ImportError):
    """A feature needs a package that is not installed; the message says which extra installs it."""


def import_optional(name: str, feature: str, install: str) -> ModuleType:
    """``importlib.import_module(name)``; when the package itself (not one of its own dependencies) is missing,
    MissingDependencyError saying what needs it (``feature``) and how to ``install`` it."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        package = name.split(".")[0]
        if exc.name is None or exc.name.split(".")[0] != package:
            raise  # something the package imports is missing: a broken installation, not a missing extra
        raise MissingDependencyError(f"{package} is not installed; {feature} needs it: {install}") from None


def import_onnxruntime(name: str = "onnxruntime") -> ModuleType:
    """ONNX Runtime (or one of its submodules, e.g. ``onnxruntime.quantization``) from whichever wheel provides it."""
    return import_optional(name, "running ONNX files with ONNX Runtime", ONNXRUNTIME_EXTRAS)


def import_pyplot() -> ModuleType:
    """``matplotlib.pyplot`` with the file-only Agg backend (no display needed)."""
    matplotlib = import_optional("matplotlib", "--plot", PLOT_EXTRA)
    matplotlib.use("Agg")
    return import_optional("matplotlib.pyplot", "--plot", PLOT_EXTRA)
