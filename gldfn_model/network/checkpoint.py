"""Checkpoints: the model's config and weights (plus training state when saved by the trainer), and the
default weights shipped inside the package (listed by :mod:`gldfn_model.network.registry`)."""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gldfn_model.common.atomic import atomic_output
from gldfn_model.network.checkpoint_facts import SHIPPED_CONFIG as SHIPPED_CONFIG  # re-exported
from gldfn_model.network.checkpoint_facts import CheckpointError as CheckpointError  # re-exported
from gldfn_model.network.config import GLDFNConfig
from gldfn_model.network.gldfn import GLDFN

CHECKPOINT_FORMAT = 1


class CheckpointUnusable(CheckpointError):
    """A checkpoint is missing, damaged, or not one gldfn wrote (as opposed to one for another model)."""


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


def previous_checkpoint_path(path: str | Path) -> Path:
    """Where ``save_checkpoint(..., keep_previous=True)`` keeps the checkpoint it replaces: last.pt -> last.prev.pt."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(
    path: str | Path, model: GLDFN, config_name: str, *, keep_previous: bool = False, **extra: Any
) -> None:
    """Atomically save config + weights (+ anything in ``extra``, e.g. optimizer state); ``keep_previous`` moves
    the checkpoint already at ``path`` to ``previous_checkpoint_path(path)`` once the new one is fully written."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config.to_dict(),
        "config_name": config_name,
        "state_dict": model.state_dict(),
        **extra,
    }
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)
        if keep_previous and Path(path).is_file():
            os.replace(path, previous_checkpoint_path(path))


def load_checkpoint(path: str | Path, expect_scale: int | None = None, expect_config: str | None = None) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointUnusable(f"checkpoint {path} does not exist")
    try:
        # weights_only: tensors and plain Python data only; a pickle that would construct anything else (and so
        # could run code) is refused before any of it runs.
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = _torch_reason(exc)
        if "GLOBAL" in reason:
            raise CheckpointUnusable(
                f"checkpoint {path} holds objects other than tensors and plain data ({reason}); gldfn does not "
                "unpickle them, as that could run code: use a checkpoint written by gldfn (train or save_checkpoint)"
            ) from None
        raise CheckpointUnusable(f"checkpoint {path} cannot be read ({reason}); is it a gldfn checkpoint?") from None
    except Exception as exc:  # torch raises many types for a damaged file
        raise CheckpointUnusable(
            f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); is it a gldfn checkpoint?"
        ) from exc
    if not isinstance(payload, dict) or "config" not in payload or "state_dict" not in payload:
        raise CheckpointUnusable(f"{path} is not a gldfn checkpoint (no config / state_dict)")
    config = GLDFNConfig.from_dict(payload["config"])
    config_name = payload.get("config_name", "custom")
    if expect_scale is not None and config.scale != expect_scale:
        raise CheckpointError(f"checkpoint {path} is for scale x{config.scale}, not x{expect_scale}")
    if expect_config is not None and config_name != expect_config:
        raise CheckpointError(f"checkpoint {path} holds config {config_name!r}, not {expect_config!r}")
    extra = {k: v for k, v in payload.items() if k not in ("config", "state_dict", "config_name")}
    return Checkpoint(config, config_name, payload["state_dict"], extra, path)


def load_latest_checkpoint(
    path: str | Path, expect_scale: int | None = None, expect_config: str | None = None, required: tuple[str, ...] = ()
) -> tuple[Checkpoint, list[str]]:
    """The checkpoint at ``path`` or, where that one is missing, damaged or lacks a ``required`` field, the
    previous one kept beside it; and why each one passed over could not be used. CheckpointUnusable when neither
    can be used; a checkpoint for another scale or config is an error, not a reason to fall back."""
    passed_over: list[str] = []
    for candidate in (Path(path), previous_checkpoint_path(path)):
        try:
            checkpoint = load_checkpoint(candidate, expect_scale, expect_config)
            missing = [key for key in required if key not in checkpoint.extra]
            if missing:
                raise CheckpointUnusable(f"checkpoint {candidate} lacks {', '.join(missing)}")
            return checkpoint, passed_over
        except CheckpointUnusable as error:
            passed_over.append(str(error))
    raise CheckpointUnusable("no usable checkpoint: " + "; ".join(passed_over))


def _torch_reason(error: Exception) -> str:
    """The line of torch's weights-only error that names the cause, without its advice to load unsafely."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reasons = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    return (reasons or [type(error).__name__])[0].rstrip(".")


def shipped_weights_path(config_name: str, scale: int) -> Path | None:
    """The weights shipped for (config, scale), its Setting-1 model in the registry, or None when there are none."""
    from gldfn_model.network.registry import default_model  # the registry builds on this module

    model = default_model(scale, config_name)
    return model.checked_path() if model is not None else None
