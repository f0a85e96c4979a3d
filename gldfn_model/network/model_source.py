"""Which weights a command uses (export, upscale, bench): a checkpoint given by the user, the weights shipped
for (config, scale), or (only when asked) random ones."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from gldfn_model.common.hashing import file_sha256
from gldfn_model.network.checkpoint import SHIPPED_CONFIG, CheckpointError, load_checkpoint, shipped_weights_path
from gldfn_model.network.config import get_config
from gldfn_model.network.gldfn import GLDFN
from gldfn_model.network.registry import find_model


@dataclass
class ModelSource:
    model: GLDFN
    config_name: str
    checkpoint_sha256: str | None
    description: str


def _from_checkpoint(path: Path, scale: int, config_name: str | None, how: str) -> ModelSource:
    checkpoint = load_checkpoint(path, expect_scale=scale, expect_config=config_name)
    try:
        model = checkpoint.build_model()
    except RuntimeError as exc:  # load_state_dict: missing / unexpected / mis-shaped tensors
        raise CheckpointError(f"checkpoint {path} does not fit its own config ({exc.__class__.__name__}): {str(exc).splitlines()[0]}") from exc
    digest = file_sha256(path)
    return ModelSource(model, checkpoint.config_name, digest, f"{how} {path} (sha256 {digest[:12]}...)")


def resolve_model(scale: int, config_name: str | None, checkpoint: Path | None, random_weights: bool, seed: int = 0,
                  model: str | None = None) -> ModelSource:
    """The model to export: ``model`` (a shipped model's name), ``checkpoint``, the shipped default of
    (``config_name``, ``scale``), or random weights. ``config_name`` None means: the checkpoint's own config,
    else the shipped one."""
    if model is not None:
        if checkpoint is not None or random_weights:
            raise CheckpointError("--model names shipped weights: it excludes --checkpoint and --random-weights")
        shipped = find_model(model)
        if shipped.scale != scale or config_name not in (None, shipped.config):
            raise CheckpointError(f"model {model!r} is config {shipped.config!r} x{shipped.scale}, not "
                                  f"{config_name or shipped.config!r} x{scale}")
        return _from_checkpoint(shipped.checked_path(), scale, shipped.config, f"shipped model {model}")
    if checkpoint is not None:
        if random_weights:
            raise CheckpointError("--checkpoint and --random-weights exclude each other; pass one of them")
        return _from_checkpoint(checkpoint, scale, config_name, "checkpoint")
    name = config_name or SHIPPED_CONFIG
    config = get_config(name, scale)
    shipped = shipped_weights_path(name, scale)
    if shipped is not None and not random_weights:
        return _from_checkpoint(shipped, scale, name, "shipped weights")
    if not random_weights:
        raise CheckpointError(
            f"no trained weights are shipped for config {name!r} at scale x{scale} (`gldfn models` lists the shipped "
            "ones); pass --model NAME or --checkpoint PATH, "
            "or --random-weights to export an untrained network (for benchmarking only)"
        )
    torch.manual_seed(seed)
    return ModelSource(GLDFN(config).eval(), name, None, f"random weights (seed {seed}; untrained, for benchmarking only)")
