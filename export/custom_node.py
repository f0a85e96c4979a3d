"""Emitting the local dynamic filter as one ``gldfn::GLDFN_LocalDynamicFilter`` node during export. Name,
domain, version and attributes come from the op contract; finding the nodes again in an ONNX model is
``gldfn_model.ops.onnx_format.custom_nodes``."""
from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from gldfn_model.network.dynamic_layers import LocalDynamicFilter
from gldfn_model.ops.contract import OpContract


def node_attributes(contract: OpContract, layer: LocalDynamicFilter) -> dict[str, Any]:
    """Every contract attribute (the layer's own value where it has one of that name, else the default), then
    the plugin look-up attributes."""
    values = {a["name"]: getattr(layer, a["name"], a["default"]) for a in contract.raw["attributes"]}
    contract.validate_attributes(values["kernel_size"], values["dilation"])
    return {**values, **contract.plugin_lookup_attributes}


def _symbolic_apply_filter(contract: OpContract):  # noqa: ANN202 - returns a method
    def apply_filter(self: LocalDynamicFilter, x: Tensor, spatial: Tensor, channel: Tensor) -> Tensor:
        return torch.onnx.ops.symbolic(
            f"{contract.domain}::{contract.name}",
            [x, spatial, channel],
            attrs=node_attributes(contract, self),
            dtype=x.dtype,
            shape=x.shape,
            version=contract.version,
        )

    return apply_filter


@contextlib.contextmanager
def local_filters_as_custom_nodes(model: nn.Module, contract: OpContract) -> Iterator[int]:
    """While active, each LDF layer of ``model`` exports as the contract's custom node. Yields their count."""
    layers = [m for m in model.modules() if isinstance(m, LocalDynamicFilter)]
    method = _symbolic_apply_filter(contract)
    for layer in layers:
        layer.apply_filter = types.MethodType(method, layer)
    try:
        yield len(layers)
    finally:
        for layer in layers:
            del layer.apply_filter
