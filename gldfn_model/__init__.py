"""GLDFN blind super-resolution network (Wen et al., IEEE TIP 2024) as the paper describes it.

The network classes are imported lazily so that tools which only need the op contract or the configs
(``gldfn-trt --help``, the plugin build) don't pay for importing PyTorch.
"""
from __future__ import annotations

from typing import Any

__all__ = ["GLDFN", "GLDFNConfig", "build_model", "get_config"]
__version__ = "0.1.0"

_LAZY = {"GLDFN": "gldfn_model.network.gldfn", "build_model": "gldfn_model.network.gldfn",
         "GLDFNConfig": "gldfn_model.network.config", "get_config": "gldfn_model.network.config"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gldfn_model' has no attribute {name!r}")
