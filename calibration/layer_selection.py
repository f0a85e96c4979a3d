"""Which nodes of a GLDFN export are quantized to INT8 and which stay in floating point, and why.

Only convolutions with constant weights are quantized (INT8 inputs, per-channel INT8 weights). Kept in float:
- the local dynamic filter nodes (the plugin takes float32 / float16 only) and the nodes that generate their
  spatial and channel filters (1x1 convs, pooling, FilterNorm): the filters are normalised taps whose error
  multiplies every output pixel;
- the global dynamic filter's convolution, whose weights are computed per input, and its attention branch;
- on request: the first layer(s) (those reading the LR image), the last (reconstruction) layer, and any layer
  matching a name pattern.
Layers are named after their weight (``groups.0.blocks.1.local_branch.0``), the way the PyTorch model names them.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field

import onnx

from gldfn_calibration.errors import CalibrationError
from gldfn_model.ops.contract import load_contract
from gldfn_model.ops.onnx_format import custom_nodes

QUANTIZED_OP_TYPES = ("Conv",)
FIRST, LAST = "first", "last"
REASON_LDF = "local dynamic filter (the plugin runs in float)"
REASON_FILTER_GENERATION = "local dynamic filter generation (spatial / channel filters, FilterNorm)"
REASON_GDF = "global dynamic filter (weights computed per input) and its attention"
REASON_FIRST = "first layer (--exclude first)"
REASON_LAST = "last layer (--exclude last)"
REASON_PATTERN = "excluded by name (--exclude {pattern})"


@dataclass(frozen=True)
class Layer:
    name: str  # the weight's name without ".weight"
    node: str  # the ONNX node's name


@dataclass
class LayerSelection:
    quantized: list[Layer]
    excluded_layers: dict[str, str]  # conv layer name -> reason it stays in float
    float_nodes: dict[str, str] = field(default_factory=dict)  # every non-quantized node -> reason (convs and others)

    @property
    def quantized_nodes(self) -> list[str]:
        return [layer.node for layer in self.quantized]

    def float_node_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for reason in self.float_nodes.values():
            counts[reason] = counts.get(reason, 0) + 1
        return counts


class _Graph:
    def __init__(self, model: onnx.ModelProto) -> None:
        self.nodes = list(model.graph.node)
        self.initializers = {i.name for i in model.graph.initializer}
        self.producer = {out: node for node in self.nodes for out in node.output}
        self.inputs = {i.name for i in model.graph.input}
        self.outputs = [o.name for o in model.graph.output]

    def ancestors(self, tensors: Iterable[str]) -> set[str]:
        """Names of the nodes that ``tensors`` depend on (their producers included)."""
        seen: set[str] = set()
        stack = list(tensors)
        while stack:
            node = self.producer.get(stack.pop())
            if node is not None and node.name not in seen:
                seen.add(node.name)
                stack.extend(node.input)
        return seen

    def is_static_conv(self, node: onnx.NodeProto) -> bool:
        return node.op_type == "Conv" and node.input[1] in self.initializers

    def last_convs(self) -> set[str]:
        """Convs whose output reaches a graph output through non-conv nodes only."""
        found: set[str] = set()
        seen: set[str] = set()
        stack = list(self.outputs)
        while stack:
            node = self.producer.get(stack.pop())
            if node is None or node.name in seen:
                continue
            seen.add(node.name)
            if node.op_type == "Conv":
                found.add(node.name)
            else:
                stack.extend(node.input)
        return found


def _layer_names(graph: _Graph) -> dict[str, str]:
    """node name -> layer name for every static conv; the node name is appended where weights are shared."""
    names = {n.name: n.input[1].removesuffix(".weight") for n in graph.nodes if graph.is_static_conv(n)}
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {node: (name if counts[name] == 1 else f"{name}@{node}") for node, name in names.items()}


def select_layers(model: onnx.ModelProto, exclude: Iterable[str] = ()) -> LayerSelection:
    """Which layers of ``model`` are quantized. ``exclude`` holds ``first``, ``last`` and layer- or node-name patterns (fnmatch);
    a pattern that matches no layer is an error, so typos do not pass silently."""
    graph = _Graph(model)
    contract = load_contract()
    float_nodes: dict[str, str] = {}
    for ldf in custom_nodes(model, contract):
        float_nodes[ldf.name] = REASON_LDF
        generation = graph.ancestors(ldf.input[1:]) - graph.ancestors(ldf.input[:1])
        float_nodes.update({name: REASON_FILTER_GENERATION for name in generation if name not in float_nodes})
    for node in graph.nodes:
        if node.op_type == "Conv" and not graph.is_static_conv(node):
            attention = graph.ancestors(node.input[1:]) - graph.ancestors(node.input[:1])
            float_nodes.update({name: REASON_GDF for name in attention | {node.name} if name not in float_nodes})

    layer_names = _layer_names(graph)
    requested = _requested_exclusions(graph, layer_names, list(exclude))
    excluded_layers: dict[str, str] = {}
    quantized: list[Layer] = []
    for node in graph.nodes:
        if node.name not in layer_names:
            continue
        layer = layer_names[node.name]
        reason = float_nodes.get(node.name) or requested.get(node.name)
        if reason is None:
            quantized.append(Layer(layer, node.name))
        else:
            excluded_layers[layer] = reason
            float_nodes[node.name] = reason
    quantized_nodes = {layer.node for layer in quantized}
    for node in graph.nodes:
        if node.name not in quantized_nodes and node.name not in float_nodes:
            float_nodes[node.name] = "not a convolution (runs in float)"
    return LayerSelection(quantized, excluded_layers, float_nodes)


def _requested_exclusions(graph: _Graph, layer_names: dict[str, str], exclude: list[str]) -> dict[str, str]:
    requested: dict[str, str] = {}
    for token in (t.strip() for t in exclude):
        if not token:
            continue
        if token == FIRST:
            hits = {n.name for n in graph.nodes if n.name in layer_names and n.input[0] in graph.inputs}
            reason = REASON_FIRST
        elif token == LAST:
            hits = graph.last_convs() & set(layer_names)
            reason = REASON_LAST
        else:
            hits = {node for node, layer in layer_names.items()
                    if fnmatch.fnmatchcase(layer, token) or fnmatch.fnmatchcase(node, token)}
            reason = REASON_PATTERN.format(pattern=token)
        if not hits:
            examples = ", ".join(sorted(layer_names.values())[:4])
            raise CalibrationError(f"--exclude {token!r} matches no convolution layer; use first, last, or a layer name "
                                   f"pattern such as {examples} (fnmatch wildcards allowed)")
        for node in hits:
            requested.setdefault(node, reason)
    return requested


DEFAULT_EXCLUDE = (FIRST, LAST)
NO_EXCLUSION = "none"


def parse_exclude(text: str | None) -> list[str]:
    """``"first,last,groups.0.*"`` -> ``["first", "last", "groups.0.*"]``; ``"none"`` -> ``[]`` (quantize every
    layer that can be); None -> the default, first and last."""
    if text is None:
        return list(DEFAULT_EXCLUDE)
    if text.strip() == NO_EXCLUSION:
        return []
    return [token.strip() for token in text.split(",") if token.strip()]
