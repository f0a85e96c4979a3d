"""The model-local ONNX function that defines ``gldfn::GLDFN_LocalDynamicFilter`` in standard ops.

ONNX Runtime, and TensorRT without the plugin, inline this body; TensorRT with the plugin loaded and
``ENABLE_PLUGIN_OVERRIDE`` set uses the plugin instead. The body is the op's arithmetic written tap by tap
(as the PyTorch reference does): one zero-filled shift of ``x`` per tap (a Pad whose pads are negative on the
side the window leaves and positive on the side it enters, so the shape stays H x W and shape inference keeps
symbolic dimensions), times that tap's channel weights (N x C x 1 x 1) and spatial weights (N x 1 x H x W),
summed. No k^2-fold unfolded copy is built. The body carries no element type, so one function serves float32
and float16 models.

A FunctionProto body has a fixed number of nodes, so it is generated for one (kernel_size, dilation): the
exporter checks that every LDF node of a model uses the same pair.
"""
from __future__ import annotations

import onnx
from onnx import FunctionProto, TensorProto, helper

from gldfn_model.contract import OpContract
from gldfn_model.ldf_op import tap_offsets

# Split with num_outputs needs opset 18.
MIN_FUNCTION_OPSET = 18


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

    terms = []
    for t, (dy, dx) in enumerate(offsets):
        shifted = x
        if (dy, dx) != (0, 0):
            # Pad layout: begins of N, C, H, W then ends; out[y] = x[y + dy].
            nodes.append(_int64_constant(f"pads_{t}", [0, 0, -dy, -dx, 0, 0, dy, dx]))
            shifted = f"shifted_{t}"
            nodes.append(helper.make_node("Pad", [x, f"pads_{t}"], [shifted], mode="constant"))
        nodes.append(helper.make_node("Mul", [shifted, channel_taps[t]], [f"channel_weighted_{t}"]))
        term = f"term_{t}"
        nodes.append(helper.make_node("Mul", [f"channel_weighted_{t}", spatial_taps[t]], [term]))
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
