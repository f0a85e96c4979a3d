"""Which nodes of a GLDFN export stay float32 when it is converted to float16, chosen from the module each node
came from (torch's exporter records every node's module class hierarchy in its metadata) and recorded on the
nodes for :mod:`gldfn_model.ops.onnx_fp16`, which does the conversion (at export, or later on an FP32 file):

- everything the local dynamic filter layer computes itself except the filtering node: the global average pool
  of its channel branch, FilterNorm's mean, standard deviation and division, and the filter gains (a flat region
  has std = 0 and its filters must come out 0, not NaN; FilterNorm computes in float32 in PyTorch too);
- the global dynamic filter's attention pool and softmax;
- the bilinear upsampling of the input and the final residual add (input and output stay float32, and the image
  base is not rounded to float16's 11 significant bits).
"""
from __future__ import annotations

import ast

import onnx

from gldfn_model.network.dynamic_layers import GlobalDynamicFilter, LocalDynamicFilter
from gldfn_model.ops.contract import OpContract
from gldfn_model.ops.onnx_format import is_custom_node
from gldfn_model.ops.onnx_fp16 import mark_fp32_nodes

HIERARCHY_KEY = "pkg.torch.onnx.class_hierarchy"
GDF_FP32_OPS = {"Softmax", "ReduceMean", "GlobalAveragePool"}
ALWAYS_FP32_OPS = {"Resize"}


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _hierarchy(node: onnx.NodeProto) -> list[str]:
    for prop in node.metadata_props:
        if prop.key == HIERARCHY_KEY:
            return list(ast.literal_eval(prop.value))
    return []


def fp32_node_names(model: onnx.ModelProto, contract: OpContract) -> set[str]:
    """Names of the nodes to keep in float32 (see the module docstring)."""
    ldf, gdf = _qualified(LocalDynamicFilter), _qualified(GlobalDynamicFilter)
    outputs = {o.name for o in model.graph.output}
    keep = set()
    for node in model.graph.node:
        hierarchy = _hierarchy(node)
        owner = hierarchy[-2] if len(hierarchy) >= 2 else None
        is_filter_node = is_custom_node(node, contract)
        if (
            (owner == ldf and not is_filter_node)
            or (gdf in hierarchy and node.op_type in GDF_FP32_OPS)
            or node.op_type in ALWAYS_FP32_OPS
            or outputs.intersection(node.output)
        ):
            keep.add(node.name)
    return keep


def mark_fp32_regions(model: onnx.ModelProto, contract: OpContract) -> None:
    """Mark the float32 nodes on a fresh torch export; needs torch's node metadata, so run before stripping it."""
    if not any(_hierarchy(n) for n in model.graph.node):
        raise ValueError("the model carries no module hierarchy metadata; mark it before stripping that")
    mark_fp32_nodes(model, fp32_node_names(model, contract))
