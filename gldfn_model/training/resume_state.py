"""What a resume restores besides the weights (the optimizer's state, the random generators', the saved options),
checked against the run before any of it is used: a checkpoint whose training state does not fit is passed over
like a damaged one."""
from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from typing_extensions import NotRequired, TypedDict

from gldfn_model.common.validation import field_name, fields_schema, strict_schema, validated
from gldfn_model.network.checkpoint import Checkpoint, CheckpointUnusable


class _TrainingState(TypedDict):
    """The fields a resume reads from a checkpoint, besides the weights."""

    iteration: int
    best_psnr: NotRequired[float]
    optimizer: dict[str, Any]
    rng: dict[str, Any] | list[dict[str, Any]]
    options: NotRequired[dict[str, Any]]


class _OptimizerState(TypedDict):
    state: dict[int, dict[str, torch.Tensor]]
    param_groups: list[dict[str, Any]]


strict_schema(_TrainingState, open_ended=True)
strict_schema(_OptimizerState)


def check_training_state(checkpoint: Checkpoint, model: nn.Module, optimizer: torch.optim.Optimizer, world: int,
                         options_type: type) -> None:
    """The training state of ``checkpoint`` fits this run's model, optimizer and process count, and its saved options
    have the types of ``options_type``'s fields; checked before any of it is used (CheckpointUnusable naming the file
    and the field otherwise, so a resume passes over it)."""
    path = checkpoint.path or Path("checkpoint")
    state = validated(checkpoint.extra, _TrainingState, source=path, error=CheckpointUnusable)
    if state["iteration"] < 0:
        raise CheckpointUnusable(f"{path}: field iteration: {state['iteration']} is negative")
    validated(state.get("options", {}), fields_schema(options_type, open_ended=True, all_optional=True), source=path,
              error=CheckpointUnusable, prefix="options")
    _check_optimizer_state(path, state["optimizer"], model, optimizer)
    rng = state["rng"]
    if isinstance(rng, list) and len(rng) < world:
        raise CheckpointUnusable(f"{path}: field rng: the states of {len(rng)} processes; this run has {world} (resume "
                                 f"with at most {len(rng)})")
    for index, one in enumerate(rng if isinstance(rng, list) else [rng]):
        try:  # set on throwaway generators: the generators' own checks are the schema of their states
            np.random.default_rng().bit_generator.state = one["numpy"]
            torch.Generator().set_state(one["torch_noise"])
            torch.Generator().set_state(one["torch"])
            random.Random().setstate(one["python"])
        except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as error:
            where = field_name(["rng", index] if isinstance(rng, list) else ["rng"])
            raise CheckpointUnusable(f"{path}: field {where}: not a generator state this run can restore "
                                     f"({type(error).__name__})") from None


def _same_kind(reference: Any, value: Any) -> bool:
    if isinstance(reference, bool) or reference is None:
        return value is None or isinstance(value, bool)
    if isinstance(reference, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if isinstance(reference, (tuple, list)):
        return (isinstance(value, type(reference)) and len(value) == len(reference)
                and all(_same_kind(r, v) for r, v in zip(reference, value)))
    return isinstance(value, type(reference))


def _check_optimizer_state(path: Path, saved: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """The saved Adam state has this optimizer's groups and settings (by kind) and moments of the parameters' shapes."""
    state = validated(saved, _OptimizerState, source=path, error=CheckpointUnusable, prefix="optimizer")
    reference = optimizer.state_dict()["param_groups"]
    if len(state["param_groups"]) != len(reference):
        raise CheckpointUnusable(f"{path}: field optimizer.param_groups: {len(state['param_groups'])} groups, this run "
                                 f"has {len(reference)}")
    for index, (group, expected) in enumerate(zip(state["param_groups"], reference)):
        for key, value in group.items():
            if key in expected and not (_same_kind(expected[key], value) if key != "params" else value == expected[key]):
                raise CheckpointUnusable(f"{path}: field {field_name(['optimizer', 'param_groups', index, key])}: "
                                         "not a value of this optimizer's kind")
    shapes = dict(enumerate(tuple(p.shape) for p in model.parameters()))
    for index, moments in state["state"].items():
        if index not in shapes:
            raise CheckpointUnusable(f"{path}: field optimizer.state[{index}]: the model has no parameter {index}")
        for name, tensor in moments.items():
            expected_shape = () if name == "step" else shapes[index]
            if tuple(tensor.shape) != expected_shape or not tensor.is_floating_point():
                raise CheckpointUnusable(f"{path}: field {field_name(['optimizer', 'state', index, name])}: shape "
                                         f"{list(tensor.shape)} {tensor.dtype}, where the model needs "
                                         f"{list(expected_shape)} floating point")
