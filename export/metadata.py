"""The ``metadata_props`` an exported GLDFN file carries, so a runtime can tell what it holds."""
from __future__ import annotations

from importlib import metadata

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


def exporter_version() -> str:
    try:
        return metadata.version("gldfn-trt")
    except metadata.PackageNotFoundError:
        from gldfn_model import __version__

        return __version__


def set_metadata(model: onnx.ModelProto, values: dict[str, str]) -> None:
    """Set (replace) the given keys, leaving other entries alone."""
    kept = [p for p in model.metadata_props if p.key not in values]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in values.items():
        model.metadata_props.add(key=key, value=str(value))


def read_metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}
