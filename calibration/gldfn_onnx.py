"""Recognising a float32 GLDFN export (``gldfn-export --target trt``) by its metadata and custom nodes, and
refusing any other ONNX file before anything is written."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import onnx

from gldfn_calibration.errors import CalibrationError
from gldfn_model.ops import onnx_format as metadata
from gldfn_model.ops.contract import load_contract

REQUIRED_KEYS = (metadata.SCALE, metadata.CONFIG, metadata.EXPORTER_VERSION, metadata.OP_CONTRACT_VERSION,
                 metadata.PRECISION, metadata.TARGET, metadata.BATCH)


@dataclass(frozen=True)
class GldfnExport:
    path: Path
    model: onnx.ModelProto
    scale: int
    batch: int
    config_name: str
    input_name: str
    output_name: str
    metadata: dict[str, str]


def load_gldfn_export(path: str | os.PathLike[str]) -> GldfnExport:
    """Load ``path`` and check that it is a float32 GLDFN export with custom nodes (target ``trt``)."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"{path}: no such file; pass an ONNX file written by gldfn-export")
    try:
        model = onnx.load(path)
    except Exception as exc:  # protobuf raises several types for a file that is not ONNX
        raise CalibrationError(f"{path}: not a readable ONNX file ({type(exc).__name__}: {exc})") from exc
    values = metadata.read_metadata(model)
    missing = [key for key in REQUIRED_KEYS if key not in values]
    if missing:
        raise CalibrationError(
            f"{path} is not a GLDFN export (metadata {', '.join(missing)} missing); export the model with "
            "`gldfn-export --precision fp32 --target trt` and calibrate that file"
        )
    contract = load_contract()
    if values[metadata.OP_CONTRACT_VERSION] != str(contract.contract_version):
        raise CalibrationError(
            f"{path} was exported against op contract version {values[metadata.OP_CONTRACT_VERSION]}, this package "
            f"has version {contract.contract_version}; re-export it with this version of gldfn-export"
        )
    if values[metadata.PRECISION] != "fp32":
        raise CalibrationError(f"{path} holds a {values[metadata.PRECISION]} model; INT8 calibration starts from the "
                               "float32 export (`gldfn-export --precision fp32`)")
    if values[metadata.TARGET] != "trt":
        raise CalibrationError(f"{path} is a {values[metadata.TARGET]!r} export (local dynamic filters inlined); "
                               "calibrate the `--target trt` export, whose custom nodes tell which layers stay in float")
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise CalibrationError(f"{path}: expected one input and one output, found {len(model.graph.input)} and {len(model.graph.output)}")
    return GldfnExport(
        path=path, model=model, scale=int(values[metadata.SCALE]), batch=int(values[metadata.BATCH]),
        config_name=values[metadata.CONFIG], input_name=model.graph.input[0].name,
        output_name=model.graph.output[0].name, metadata=values,
    )

