"""Checkpoints: the model's config and weights (plus training state when saved by the trainer), and the
default weights shipped inside the package (listed by :mod:`gldfn_model.network.registry`)."""
from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from typing_extensions import Required, TypedDict

from gldfn_model.common.atomic import atomic_output
from gldfn_model.common.validation import (
    check_stored_archive,
    construct,
    field_name,
    strict_schema,
    validated,
)
from gldfn_model.network.checkpoint_facts import SHIPPED_CONFIG as SHIPPED_CONFIG  # re-exported
from gldfn_model.network.checkpoint_facts import CheckpointError as CheckpointError  # re-exported
from gldfn_model.network.complexity import count_complexity
from gldfn_model.network.config import GLDFNConfig
from gldfn_model.network.gldfn import GLDFN

CHECKPOINT_FORMAT = 1
# Bounds checked before anything is allocated. The paper's config has 14.7 M parameters, and its checkpoint with
# the optimizer's state is about 180 MB.
MAX_PARAMETERS = 64_000_000
MAX_CHECKPOINT_BYTES = 1 << 30
_ADVICE = "use a checkpoint written by gldfn (train or save_checkpoint)"


class _Payload(TypedDict, total=False):
    """What a checkpoint holds: the fields gldfn reads, each with its type; others are kept in ``extra``."""

    format: Literal[1]
    config: Required[dict[str, Any]]  # GLDFNConfig's fields, checked by construct()
    config_name: str
    state_dict: Required[dict[str, torch.Tensor]]
    # written by the trainer (checked further where a resume uses them)
    iteration: int
    best_psnr: float
    optimizer: dict[str, Any]
    rng: dict[str, Any] | list[dict[str, Any]]
    options: dict[str, Any]
    training: dict[str, Any]  # the shipped weights: how they were trained


strict_schema(_Payload, open_ended=True)


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
    path: str | Path, model: GLDFN, config_name: str, *, keep_previous: bool = False, overwrite: bool = True,
    report: Callable[[str], None] | None = None, **extra: Any,
) -> None:
    """Atomically save config + weights (+ anything in ``extra``, e.g. optimizer state). ``keep_previous``: once the
    new checkpoint is fully written, the one it replaces becomes ``previous_checkpoint_path(path)`` if it loads and
    holds the same fields; a damaged one is not, so the previous file stays the newest usable fallback (``report``
    is told why). ``overwrite`` False never replaces a file at ``path`` (gldfn_model.common.atomic.publish)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config.to_dict(),
        "config_name": config_name,
        "state_dict": model.state_dict(),
        **extra,
    }
    with atomic_output(path, overwrite=overwrite) as tmp:
        torch.save(payload, tmp)
        if keep_previous and Path(path).is_file():
            problem = _unusable_reason(Path(path), tuple(extra))
            if problem is None:
                os.replace(path, previous_checkpoint_path(path))
            elif report is not None:
                report(f"{problem}; it is replaced, and {previous_checkpoint_path(path)} is kept as the fallback")


def _unusable_reason(path: Path, required: tuple[str, ...]) -> str | None:
    """Why the checkpoint at ``path`` could not be resumed from, or None when it can."""
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError as error:
        return str(error)
    missing = [key for key in required if key not in checkpoint.extra]
    return f"checkpoint {path} lacks {', '.join(missing)}" if missing else None


def load_checkpoint(path: str | Path, expect_scale: int | None = None, expect_config: str | None = None) -> Checkpoint:
    """The checkpoint at ``path``, checked before anything is built from it: a zip archive of bounded size whose
    entries are stored as torch.save writes them, tensors and plain data only, every field of its declared type, a
    config of bounded size, and a state dict of exactly the tensors that config needs. CheckpointUnusable
    otherwise, naming the file and the field; CheckpointError for one of another scale or config than expected."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointUnusable(f"checkpoint {path} does not exist")
    check_stored_archive(path, MAX_CHECKPOINT_BYTES, error=CheckpointUnusable, what="checkpoint", advice=_ADVICE)
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
    payload = validated(payload, _Payload, source=path, error=CheckpointUnusable, advice=_ADVICE)
    config = construct(GLDFNConfig, payload["config"], source=path, error=CheckpointUnusable, advice=_ADVICE,
                       prefix="config")
    config_name = payload.get("config_name", "custom")
    if expect_scale is not None and config.scale != expect_scale:
        raise CheckpointError(f"checkpoint {path} is for scale x{config.scale}, not x{expect_scale}")
    if expect_config is not None and config_name != expect_config:
        raise CheckpointError(f"checkpoint {path} holds config {config_name!r}, not {expect_config!r}")
    check_state_dict(path, config, payload["state_dict"])
    extra = {k: v for k, v in payload.items() if k not in ("config", "state_dict", "config_name")}
    return Checkpoint(config, config_name, payload["state_dict"], extra, path)


def check_state_dict(path: Path, config: GLDFNConfig, state_dict: dict[str, torch.Tensor]) -> None:
    """``state_dict`` holds exactly the tensors a GLDFN of ``config`` has, of their shapes: checked on a network
    built on the meta device (no memory), after bounding its size from the config alone, so that a checkpoint whose
    config claims a huge network costs nothing before it is refused."""
    parameters = count_complexity(config, 1, 1).params
    if parameters > MAX_PARAMETERS:
        raise CheckpointUnusable(
            f"{path}: field config: a network of {parameters / 1e6:.0f} M parameters (channels {config.channels}, "
            f"{config.groups} x {config.modules_per_group} modules) is more than gldfn loads "
            f"({MAX_PARAMETERS / 1e6:.0f} M; the paper's config has 14.7 M); {_ADVICE}")
    with torch.device("meta"):
        expected = GLDFN(config).state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    for keys, problem in ((missing, "is missing"), (unexpected, "is not a tensor of this config")):
        if keys:
            more = f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
            raise CheckpointUnusable(f"{path}: field {field_name(['state_dict', keys[0]])} {problem}{more}: the "
                                     f"state dict does not fit the checkpoint's config; {_ADVICE}")
    for key, reference in expected.items():
        tensor = state_dict[key]
        problem = None
        if tensor.layout != torch.strided or tensor.device.type != "cpu":
            problem = f"a {tensor.layout} tensor on {tensor.device.type}, not a dense one on the CPU"
        elif tuple(tensor.shape) != tuple(reference.shape):
            problem = f"shape {list(tensor.shape)}, where the config needs {list(reference.shape)}"
        elif tensor.is_floating_point() != reference.is_floating_point() or tensor.is_complex():
            problem = f"dtype {tensor.dtype}, where the config needs {reference.dtype}"
        if problem is not None:
            raise CheckpointUnusable(f"{path}: field {field_name(['state_dict', key])}: {problem}: the state dict "
                                     f"does not fit the checkpoint's config; {_ADVICE}")


def load_latest_checkpoint(
    path: str | Path, expect_scale: int | None = None, expect_config: str | None = None, required: tuple[str, ...] = (),
    check: Callable[[Checkpoint], None] | None = None,
) -> tuple[Checkpoint, list[str]]:
    """The checkpoint at ``path`` or, where that one is missing, damaged, lacks a ``required`` field or fails
    ``check`` (which raises CheckpointUnusable), the previous one kept beside it; and why each one passed over could
    not be used. CheckpointUnusable when neither can be used; a checkpoint for another scale or config is an error,
    not a reason to fall back."""
    passed_over: list[str] = []
    for candidate in (Path(path), previous_checkpoint_path(path)):
        try:
            checkpoint = load_checkpoint(candidate, expect_scale, expect_config)
            missing = [key for key in required if key not in checkpoint.extra]
            if missing:
                raise CheckpointUnusable(f"checkpoint {candidate} lacks {', '.join(missing)}")
            if check is not None:
                check(checkpoint)
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
