"""ONNX export of the Table IV peer networks (``gldfn_model.peers``): plain ``torch.onnx.export`` (no custom op),
batch 1, dynamic height and width, with the scale and the network's name in the metadata so that the runtime's
ONNX Runtime runner reads them as it does from a GLDFN file."""
from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from gldfn_export.exporter import (
    DEFAULT_OPSET,
    FP32_TOLERANCE,
    HEIGHT_DIM,
    INPUT_NAME,
    OUTPUT_NAME,
    WIDTH_DIM,
    ExportError,
    exporter_version,
    quiet_torch_onnx,
    strip_export_traces,
)
from gldfn_export.verify import ParityCheck, compare
from gldfn_model.common.atomic import atomic_output
from gldfn_model.data.reference_inputs import random_input
from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner
from gldfn_model.inference.torch_runner import TorchRunner
from gldfn_model.ops import onnx_format as metadata

# DCLS's smoothness net (three valid 3x3 convs) and its 21-tap kernel padding need some room.
MIN_SIDE = 16
PARITY_HW = (32, 40)


@dataclass
class PeerExport:
    path: Path
    network: str
    opset: int
    seconds: float
    node_count: int
    op_types: dict[str, int]
    file_bytes: int


def export_peer(
    model: nn.Module, output_path: str | os.PathLike[str], network: str, *, opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
) -> PeerExport:
    """Export ``model`` (its ``config.scale`` is recorded) to ``output_path``, written atomically (an existing file
    is replaced only with ``overwrite``)."""
    model = model.eval().float()
    sample = torch.rand(1, 3, *PARITY_HW)
    height, width = torch.export.Dim(HEIGHT_DIM, min=MIN_SIDE), torch.export.Dim(WIDTH_DIM, min=MIN_SIDE)
    dynamic = {INPUT_NAME: {2: height, 3: width}}
    start = time.perf_counter()
    with atomic_output(output_path, overwrite=overwrite) as tmp:
        try:
            with quiet_torch_onnx():
                program = torch.onnx.export(
                    model, (sample,), dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME], dynamic_shapes=dynamic, verbose=False, optimize=True,
                )
        except Exception as exc:  # torch.export and the ONNX translation raise many types; the message is what counts
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(f"torch.onnx cannot export {network}: {type(exc).__name__}: {first}") from exc
        proto = program.model_proto
        strip_export_traces(proto)
        metadata.set_metadata(proto, {
            metadata.SCALE: str(model.config.scale), metadata.NETWORK: network, metadata.BATCH: "1",
            metadata.PRECISION: "fp32", metadata.EXPORTER_VERSION: exporter_version(),
            metadata.INPUT_RANGE: "RGB float in [0, 1]",
        })
        proto.producer_name, proto.producer_version = "gldfn-export", exporter_version()
        onnx.save(proto, tmp)
        file_bytes = tmp.stat().st_size
    return PeerExport(
        path=Path(output_path), network=network, opset=opset, seconds=time.perf_counter() - start,
        node_count=len(proto.graph.node), op_types=dict(Counter(n.op_type for n in proto.graph.node).most_common()),
        file_bytes=file_bytes,
    )


def check_onnx_parity(
    model: nn.Module, onnx_path: str | os.PathLike[str], size: tuple[int, int] = PARITY_HW,
) -> ParityCheck:
    """ONNX Runtime (CPU) against PyTorch on one random input; the FP32 tolerance is relative to the output's
    largest magnitude (random weights give outputs far outside [0, 1])."""
    reference = random_input(*size, 1)
    expected = TorchRunner(model).infer(reference.lr)
    tolerance = FP32_TOLERANCE * max(1.0, float(np.abs(expected).max()))
    return compare(reference, OnnxRuntimeRunner(onnx_path).infer(reference.lr), expected, tolerance, None)
