"""Checkpoints: the model's config and weights (plus training state when saved by the trainer), and the
default weights shipped inside the package (listed by :mod:`gldfn_model.network.registry`)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gldfn_model.common.atomic import atomic_output
from gldfn_model.network.config import GLDFNConfig
from gldfn_model.network.gldfn import GLDFN
from gldfn_model.common.errors import GldfnError

CHECKPOINT_FORMAT = 1
# The config whose trained weights the package ships; commands default to it when no checkpoint is given.
SHIPPED_CONFIG = "tiny"


class CheckpointError(GldfnError, ValueError):
    """A checkpoint is missing, unreadable, or does not match what was asked for."""


@dataclass
class Checkpoint:
    config: GLDFNConfig
    config_name: str
    state_dict: dict[str, torch.Tensor]
    extra: dict[str, Any]
    path: Path | None = None

    def build_model(self) -> GLDFN:
        model = GLDFN(self.config)
        model.load_state_dict(self.state_dict)
        return model.eval()


def save_checkpoint(path: str | Path, model: GLDFN, config_name: str, **extra: Any) -> None:
    """Atomically save config + weights (+ anything in ``extra``, e.g. optimizer state)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config.to_dict(),
        "config_name": config_name,
        "state_dict": model.state_dict(),
        **extra,
    }
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, expect_scale: int | None = None, expect_config: str | None = None) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); is it a gldfn checkpoint?") from exc
    if not isinstance(payload, dict) or "config" not in payload or "state_dict" not in payload:
        raise CheckpointError(f"{path} is not a gldfn checkpoint (no config / state_dict)")
    config = GLDFNConfig.from_dict(payload["config"])
    config_name = payload.get("config_name", "custom")
    if expect_scale is not None and config.scale != expect_scale:
        raise CheckpointError(f"checkpoint {path} is for scale x{config.scale}, not x{expect_scale}")
    if expect_config is not None and config_name != expect_config:
        raise CheckpointError(f"checkpoint {path} holds config {config_name!r}, not {expect_config!r}")
    extra = {k: v for k, v in payload.items() if k not in ("config", "state_dict", "config_name")}
    return Checkpoint(config, config_name, payload["state_dict"], extra, path)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shipped_weights_path(config_name: str, scale: int) -> Path | None:
    """The weights shipped for (config, scale), its Setting-1 model in the registry, or None when there are none."""
    from gldfn_model.network.registry import default_model  # the registry builds on this module

    model = default_model(scale, config_name)
    return model.checked_path() if model is not None else None
