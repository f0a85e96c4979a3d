"""What a GLDFN ONNX file carries besides its graph: the ``metadata_props`` keys the exporter and the INT8
calibrator write (and the runtime reads), and how the local dynamic filter's custom nodes are recognised.

The ``onnx`` package is only needed by :func:`attribute_values`; the rest works on any ``ModelProto``, so a
runtime that reads only the keys does not import it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gldfn_model.ops.contract import OpContract, load_contract

if TYPE_CHECKING:
    import onnx

SCALE = "gldfn.scale"
CONFIG = "gldfn.config"
CHECKPOINT_SHA256 = "gldfn.checkpoint_sha256"
EXPORTER_VERSION = "gldfn.exporter_version"
OP_CONTRACT_VERSION = "gldfn.op_contract_version"
PRECISION = "gldfn.precision"
TARGET = "gldfn.target"
BATCH = "gldfn.batch"
INPUT_RANGE = "gldfn.input_range"
NETWORK = "gldfn.network"  # a Table IV peer's name (gldfn_model.peers); GLDFN files carry CONFIG instead
NO_CHECKPOINT = "none (random weights)"

# Written by gldfn-calibrate on INT8 (Q/DQ) files.
INT8_CALIBRATION_METHOD = "gldfn.int8.calibration_method"
INT8_CALIBRATION_DATA = "gldfn.int8.calibration_data"
INT8_EXCLUDED_LAYERS = "gldfn.int8.excluded_layers"
INT8_QUANTIZED_LAYERS = "gldfn.int8.quantized_layers"
INT8_SOURCE_SHA256 = "gldfn.int8.source_sha256"
# "tensorrt" or "onnxruntime" (gldfn_calibration.targets): the Q/DQ layout the file was made for.
INT8_TARGET = "gldfn.int8.target"


def read_metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def set_metadata(model: onnx.ModelProto, values: dict[str, str]) -> None:
    """Set (replace) the given keys, leaving other entries alone."""
    kept = [p for p in model.metadata_props if p.key not in values]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in values.items():
        model.metadata_props.add(key=key, value=str(value))


def scale_of(metadata: dict[str, str]) -> int | None:
    """The upscaling factor recorded in a file's metadata, or None when it has none (not a GLDFN export)."""
    value = metadata.get(SCALE)
    return int(value) if value is not None and value.isdigit() else None


def is_custom_node(node: onnx.NodeProto, contract: OpContract | None = None) -> bool:
    """Whether ``node`` is the contract's local dynamic filter node (``gldfn::GLDFN_LocalDynamicFilter``)."""
    contract = contract or load_contract()
    return node.domain == contract.domain and node.op_type == contract.name


def custom_nodes(model: onnx.ModelProto, contract: OpContract | None = None) -> list[onnx.NodeProto]:
    """The local dynamic filter nodes of ``model``'s main graph."""
    contract = contract or load_contract()
    return [n for n in model.graph.node if is_custom_node(n, contract)]


def attribute_values(node: onnx.NodeProto) -> dict[str, Any]:
    """The node's attributes as Python values, strings decoded."""
    import onnx

    values = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}
