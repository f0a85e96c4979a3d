"""Float16 conversion of an exported float32 GLDFN model, for strongly typed TensorRT builds.

Kept in float32, chosen from the module each node came from (torch's exporter records every node's module class
hierarchy in its metadata):

- everything the local dynamic filter layer computes itself except the filtering node: the global average pool
  of its channel branch, FilterNorm's mean, standard deviation and division, and the filter gains (a flat region
  has std = 0 and its filters must come out 0, not NaN; FilterNorm computes in float32 in PyTorch too);
- the global dynamic filter's attention pool and softmax;
- the bilinear upsampling of the input and the final residual add (input and output stay float32, and the image
  base is not rounded to float16's 11 significant bits).

Everything else (the convolutions, the LDF filtering node, PixelShuffle, the skips) runs in float16; float
initializers used there are stored as float16. A Cast is inserted only where a value crosses between the two
regions. The LDF function body carries no types, so the same function serves the float16 custom nodes.

Why not ``onnxruntime.transformers.float16.convert_float_to_float16`` with a node block list: tried first, it
round-trips values between neighbouring blocked nodes through float16 (Cast to float16 then back to float32
inside FilterNorm and on the bilinear skip's input), which defeats keeping them in float32, and left 172 Casts
and a dangling one in the tiny config. This pass is short because the exported graph is plain (no Constant,
Cast or control-flow nodes in its float region); anything else is refused rather than guessed at.
"""
from __future__ import annotations

import ast

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from gldfn_model.network.dynamic_layers import GlobalDynamicFilter, LocalDynamicFilter
from gldfn_model.ops.contract import OpContract
from gldfn_model.ops.onnx_format import is_custom_node

HIERARCHY_KEY = "pkg.torch.onnx.class_hierarchy"
GDF_FP32_OPS = {"Softmax", "ReduceMean", "GlobalAveragePool"}
ALWAYS_FP32_OPS = {"Resize"}
# Ops whose float output type is set by an attribute or that hold subgraphs: not handled by this pass.
UNSUPPORTED_IN_FP16 = {"Cast", "Constant", "ConstantOfShape", "EyeLike", "If", "Loop", "Scan", "RandomNormal",
                       "RandomUniform", "RandomNormalLike", "RandomUniformLike", "CastLike"}
FP16_MAX = float(np.finfo(np.float16).max)


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


def _element_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input, *graph.output]}
    types.update({i.name: i.data_type for i in graph.initializer})
    return types


def _to_fp16(tensor: TensorProto, name: str) -> TensorProto:
    values = np.clip(numpy_helper.to_array(tensor), -FP16_MAX, FP16_MAX).astype(np.float16)
    return numpy_helper.from_array(values, name)


def convert_to_fp16(model: onnx.ModelProto, contract: OpContract) -> onnx.ModelProto:
    """A float16 copy of ``model`` with float32 I/O; needs torch's node metadata, so run it before stripping that."""
    graph = model.graph
    if not any(_hierarchy(n) for n in graph.node):
        raise ValueError("the model carries no module hierarchy metadata; convert before stripping it")
    keep = fp32_node_names(model, contract)
    types = _element_types(model)
    is_float = lambda name: types.get(name) == TensorProto.FLOAT  # noqa: E731
    half_nodes = [n for n in graph.node if n.name not in keep]
    for node in half_nodes:
        if node.op_type in UNSUPPORTED_IN_FP16 or any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            raise ValueError(f"float16 conversion does not handle {node.op_type} node {node.name}")
    half_values = {o for n in half_nodes for o in n.output if is_float(o)}

    converted = onnx.ModelProto()
    converted.CopyFrom(model)
    out_graph = converted.graph

    # Float initializers: float16 where only float16 nodes read them, a float16 copy where both kinds do.
    initializers = {i.name: i for i in graph.initializer}
    readers: dict[str, set[bool]] = {}
    for node in graph.node:
        for name in node.input:
            if name in initializers and is_float(name):
                readers.setdefault(name, set()).add(node.name not in keep)
    renamed: dict[str, str] = {}
    new_initializers = []
    for init in graph.initializer:
        kinds = readers.get(init.name, set())
        if kinds == {True}:
            new_initializers.append(_to_fp16(init, init.name))
            half_values.add(init.name)
        else:
            new_initializers.append(init)
            if True in kinds:
                renamed[init.name] = f"{init.name}__fp16"
                new_initializers.append(_to_fp16(init, renamed[init.name]))
    del out_graph.initializer[:]
    out_graph.initializer.extend(new_initializers)

    casts: dict[tuple[str, int], str] = {}
    new_nodes: list[onnx.NodeProto] = []

    def cast(name: str, to: int) -> str:
        key = (name, to)
        if key not in casts:
            casts[key] = f"{name}__to_{'fp16' if to == TensorProto.FLOAT16 else 'fp32'}"
            new_nodes.append(helper.make_node("Cast", [name], [casts[key]], to=to, name=f"cast_{casts[key]}"))
        return casts[key]

    for original in graph.node:
        node = onnx.NodeProto()
        node.CopyFrom(original)
        half = node.name not in keep
        for i, name in enumerate(node.input):
            if not name or not (is_float(name) or name in half_values):
                continue
            if half:
                node.input[i] = renamed.get(name) or (name if name in half_values else cast(name, TensorProto.FLOAT16))
            elif name in half_values:
                node.input[i] = cast(name, TensorProto.FLOAT)
        new_nodes.append(node)

    for output in out_graph.output:
        if output.name in half_values:
            raise ValueError(f"graph output {output.name} would be float16; its producer must stay float32")
    del out_graph.node[:]
    out_graph.node.extend(new_nodes)
    for value in out_graph.value_info:
        if value.name in half_values:
            value.type.tensor_type.elem_type = TensorProto.FLOAT16
    return converted
