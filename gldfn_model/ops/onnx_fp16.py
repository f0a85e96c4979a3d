"""Float16 conversion of a float32 GLDFN ONNX file, for strongly typed TensorRT builds.

Which nodes stay in float32 is decided once, at export, from the module each node came from
(``gldfn_export.fp16``: the local dynamic filter's statistics and gains, the global filter's attention pool and
softmax, the bilinear skip and the final add), and recorded on those nodes as node metadata
(:data:`KEEP_FP32`). This pass reads only those marks, so it runs on an exported FP32 file without torch: the
exporter uses it for ``--precision fp16``, and ``gldfn-trt build --precision fp16`` on an FP32 file.

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

from collections.abc import Iterable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from gldfn_model.common.errors import GldfnError
from gldfn_model.ops import onnx_format

KEEP_FP32 = "gldfn.keep_fp32"
# Ops whose float output type is set by an attribute or that hold subgraphs: not handled by this pass.
UNSUPPORTED_IN_FP16 = {"Cast", "Constant", "ConstantOfShape", "EyeLike", "If", "Loop", "Scan", "RandomNormal",
                       "RandomUniform", "RandomNormalLike", "RandomUniformLike", "CastLike"}
FP16_MAX = float(np.finfo(np.float16).max)


class Fp16ConversionError(GldfnError, ValueError):
    """The file cannot be converted to float16; the message says why and what to do."""


def mark_fp32_nodes(model: onnx.ModelProto, names: Iterable[str]) -> None:
    """Record on the named main-graph nodes that they stay float32 under :func:`convert_to_fp16`."""
    names = set(names)
    for node in model.graph.node:
        if node.name in names and not any(p.key == KEEP_FP32 for p in node.metadata_props):
            node.metadata_props.add(key=KEEP_FP32, value="true")


def marked_fp32_nodes(model: onnx.ModelProto) -> set[str]:
    return {n.name for n in model.graph.node if any(p.key == KEEP_FP32 and p.value == "true" for p in n.metadata_props)}


def _element_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input, *graph.output]}
    types.update({i.name: i.data_type for i in graph.initializer})
    return types


def _to_fp16(tensor: TensorProto, name: str) -> TensorProto:
    values = np.clip(numpy_helper.to_array(tensor), -FP16_MAX, FP16_MAX).astype(np.float16)
    return numpy_helper.from_array(values, name)


def _check_convertible(model: onnx.ModelProto, keep: set[str], source: str) -> None:
    precision = onnx_format.read_metadata(model).get(onnx_format.PRECISION)
    if precision not in (None, "fp32"):
        raise Fp16ConversionError(f"{source} is {precision}; only an FP32 export converts to FP16")
    if not keep:
        raise Fp16ConversionError(
            f"{source} marks no nodes to keep in float32 ({KEEP_FP32}): it was exported by an older gldfn-export or "
            "another tool. Export it again with `gldfn-export --precision fp16` (or re-export the FP32 file)")


def convert_to_fp16(model: onnx.ModelProto, source: str = "the model") -> onnx.ModelProto:
    """A float16 copy of an FP32 export with float32 I/O, its ``gldfn.precision`` set to fp16; ``source`` names
    the file in errors."""
    graph = model.graph
    keep = marked_fp32_nodes(model)
    _check_convertible(model, keep, source)
    types = _element_types(model)
    is_float = lambda name: types.get(name) == TensorProto.FLOAT  # noqa: E731
    half_nodes = [n for n in graph.node if n.name not in keep]
    for node in half_nodes:
        if node.op_type in UNSUPPORTED_IN_FP16 or any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            raise Fp16ConversionError(f"{source}: float16 conversion does not handle {node.op_type} node {node.name}")
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
            raise Fp16ConversionError(f"{source}: graph output {output.name} would be float16; its producer must stay float32")
    del out_graph.node[:]
    out_graph.node.extend(new_nodes)
    for value in out_graph.value_info:
        if value.name in half_values:
            value.type.tensor_type.elem_type = TensorProto.FLOAT16
    onnx_format.set_metadata(converted, {onnx_format.PRECISION: "fp16"})
    return converted
