"""The model-local ONNX function that defines ``gldfn::GLDFN_LocalDynamicFilter`` in standard ops.

ONNX Runtime, and TensorRT without the plugin, inline this body; TensorRT with the plugin loaded and
``ENABLE_PLUGIN_OVERRIDE`` set uses the plugin instead. The body is the op's arithmetic written tap by tap
(as the PyTorch reference does): ``x`` zero-padded once, then per tap a constant-offset Slice of it (the
shifted input), times that tap's spatial weights (N x 1 x H x W) and channel weights (N x C x 1 x 1), summed.
No k^2-fold unfolded copy is built. Only plain Pad/Slice/Split/Unsqueeze/Mul/Add are used, with non-negative
pads, so every ONNX consumer (ONNX Runtime, TensorRT's parser, onnx.reference) takes it. The body carries no element type, so one function serves float32
and float16 models.

A FunctionProto body has a fixed number of nodes, so it is generated for one (kernel_size, dilation): the
exporter checks that every LDF node of a model uses the same pair.
"""
from __future__ import annotations

import onnx
from onnx import FunctionProto, TensorProto, helper

from gldfn_model.ops.contract import OpContract
from gldfn_model.ops.ldf_op import tap_offsets

# Split with num_outputs needs opset 18.
MIN_FUNCTION_OPSET = 18
INT64_MAX = 2**63 - 1


def _int64_constant(name: str, values: list[int]) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], value=helper.make_tensor(name, TensorProto.INT64, [len(values)], values)
    )


def build_ldf_function(contract: OpContract, kernel_size: int, dilation: int, opset: int) -> FunctionProto:
    """The function body for one (kernel_size, dilation); inputs and output named as in the contract."""
    if opset < MIN_FUNCTION_OPSET:
        raise ValueError(f"the local dynamic filter body needs opset >= {MIN_FUNCTION_OPSET}, got {opset}")
    contract.validate_attributes(kernel_size, dilation)
    x, spatial, channel = contract.input_names
    (output,) = [o["name"] for o in contract.raw["outputs"]]
    offsets = tap_offsets(kernel_size, dilation)
    taps = len(offsets)

    nodes: list[onnx.NodeProto] = [_int64_constant("last_axis", [3])]
    if taps > 1:
        spatial_taps = [f"spatial_{t}" for t in range(taps)]
        channel_taps = [f"channel_{t}" for t in range(taps)]
        nodes.append(helper.make_node("Split", [spatial], spatial_taps, axis=1, num_outputs=taps))
        nodes.append(helper.make_node("Unsqueeze", [channel, "last_axis"], ["channel_nck1"]))
        nodes.append(helper.make_node("Split", ["channel_nck1"], channel_taps, axis=2, num_outputs=taps))
    else:
        spatial_taps = [spatial]
        nodes.append(helper.make_node("Unsqueeze", [channel, "last_axis"], ["channel_0"]))
        channel_taps = ["channel_0"]

    # Zero-pad once by the window's reach, then each tap is a constant-offset Slice of the padded input:
    # rows [reach + dy, reach + dy + H) are written as (reach + dy) .. -(reach - dy), or to the end when
    # reach == dy, so the Slice needs no runtime shape arithmetic.
    reach = dilation * (kernel_size // 2)
    if reach:
        nodes.append(_int64_constant("pads", [0, 0, reach, reach, 0, 0, reach, reach]))
        nodes.append(_int64_constant("hw_axes", [2, 3]))
        nodes.append(helper.make_node("Pad", [x, "pads"], ["padded"], mode="constant"))
    terms = []
    for t, (dy, dx) in enumerate(offsets):
        shifted = x
        if reach:
            shifted = f"shifted_{t}"
            ends = [-(reach - d) if reach != d else INT64_MAX for d in (dy, dx)]
            nodes.append(_int64_constant(f"starts_{t}", [reach + dy, reach + dx]))
            nodes.append(_int64_constant(f"ends_{t}", ends))
            nodes.append(helper.make_node("Slice", ["padded", f"starts_{t}", f"ends_{t}", "hw_axes"], [shifted]))
        nodes.append(helper.make_node("Mul", [spatial_taps[t], shifted], [f"spatial_weighted_{t}"]))
        term = f"term_{t}"
        nodes.append(helper.make_node("Mul", [f"spatial_weighted_{t}", channel_taps[t]], [term]))
        terms.append(term)

    total = terms[0]
    for t, term in enumerate(terms[1:], start=1):
        total_next = output if t == taps - 1 else f"sum_{t}"
        nodes.append(helper.make_node("Add", [total, term], [total_next]))
        total = total_next
    if taps == 1:
        nodes.append(helper.make_node("Identity", [total], [output]))

    return helper.make_function(
        domain=contract.domain,
        fname=contract.name,
        inputs=[x, spatial, channel],
        outputs=[output],
        nodes=nodes,
        opset_imports=[helper.make_opsetid("", opset)],
        attributes=contract.attribute_names,
        doc_string=contract.raw.get("description", ""),
    )


def ldf_node_model(
    contract: OpContract,
    kernel_size: int,
    dilation: int,
    elem_type: int = TensorProto.FLOAT,
    channels: int | str = "C",
    opset: int = 20,
) -> onnx.ModelProto:
    """A model of one LDF node with its function: inputs ``x`` (N x channels x H x W), ``s`` (spatial) and ``c``
    (channel), output ``y``; N, H and W symbolic. For checking and timing the op alone."""
    taps = kernel_size * kernel_size
    info = helper.make_tensor_value_info
    inputs = [info("x", elem_type, ["N", channels, "H", "W"]), info("s", elem_type, ["N", taps, "H", "W"]),
              info("c", elem_type, ["N", channels, taps])]
    node = helper.make_node(contract.name, ["x", "s", "c"], ["y"], domain=contract.domain, kernel_size=kernel_size,
                            dilation=dilation, **contract.plugin_lookup_attributes)
    graph = helper.make_graph([node], "ldf", inputs, [info("y", elem_type, ["N", channels, "H", "W"])])
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid(contract.domain, contract.version)]
    return helper.make_model(graph, opset_imports=opsets,
                             functions=[build_ldf_function(contract, kernel_size, dilation, opset)])
