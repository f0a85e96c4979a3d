"""Triton ``config.pbtxt`` files for the repository ``gldfn-trt triton`` writes, built as tritonclient's
``model_config_pb2.ModelConfig`` messages (a misspelt field fails here, not in the server) and parsed back from
the text before it is written.

Every model carries the facts a client needs as ``parameters`` (``gldfn.*``): the scale, the LR sizes the model
accepts, the model the image model sends its tiles to. Models take no batching from Triton (``max_batch_size:
0``): the batch is part of the dims, as the exported network has it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gldfn_model.common.errors import GldfnError
from gldfn_model.common.optional import import_optional
from gldfn_runtime.runners.triton_contract import SERVE_EXTRA


class ModelConfigError(GldfnError, ValueError):
    """A model configuration that Triton would refuse."""


def model_config_pb2() -> Any:
    """tritonclient's ModelConfig protobuf module (the extra ``serve``)."""
    return import_optional("tritonclient.grpc.model_config_pb2", "writing a Triton model repository", SERVE_EXTRA)


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: name, Triton data type (``TYPE_FP32`` ...) and dims (-1: any size)."""

    name: str
    data_type: str
    dims: tuple[int, ...]


def build_config(name: str, *, inputs: list[TensorSpec], outputs: list[TensorSpec], instances: int, kind: str,
                 backend: str | None = None, platform: str | None = None,
                 parameters: dict[str, str] | None = None) -> Any:
    """A ModelConfig message: ``backend`` (e.g. python) or ``platform`` (e.g. tensorrt_plan), ``instances``
    instances of ``kind`` (KIND_CPU, KIND_GPU), no Triton batching."""
    pb2 = model_config_pb2()
    if instances < 1:
        raise ModelConfigError(f"--instances must be at least 1, got {instances}")
    config = pb2.ModelConfig(name=name, max_batch_size=0)
    if backend:
        config.backend = backend
    if platform:
        config.platform = platform
    for tensors, specs in ((config.input, inputs), (config.output, outputs)):
        for spec in specs:
            tensors.add(name=spec.name, data_type=pb2.DataType.Value(spec.data_type), dims=list(spec.dims))
    config.instance_group.add(count=instances, kind=pb2.ModelInstanceGroup.Kind.Value(kind))
    for key, value in (parameters or {}).items():
        config.parameters[key].string_value = value
    return config


def config_text(config: Any) -> str:
    """The message as config.pbtxt text (``max_batch_size: 0`` spelt out, though it is protobuf's default), checked
    by :func:`parse_config`."""
    from google.protobuf import text_format

    lines = text_format.MessageToString(config).splitlines()
    if config.max_batch_size == 0:
        lines.insert(1, "max_batch_size: 0")
    text = "\n".join(lines) + "\n"
    parse_config(text)
    return text


def parse_config(text: str, source: str = "config.pbtxt") -> Any:
    """Parse config.pbtxt text into a ModelConfig; ModelConfigError for unknown fields or values."""
    from google.protobuf import text_format

    pb2 = model_config_pb2()
    try:
        return text_format.Parse(text, pb2.ModelConfig())
    except text_format.ParseError as error:
        raise ModelConfigError(f"{source}: {error}") from None


def parameters_of(config: Any) -> dict[str, str]:
    """A ModelConfig's ``parameters`` as plain strings."""
    return {key: value.string_value for key, value in config.parameters.items()}
