"""INT8 quantization of a GLDFN export with ONNX Runtime's ``quantize_static`` in QDQ format, laid out for one of
two targets (:mod:`gldfn_calibration.targets`):

- ``tensorrt`` (the explicit form TensorRT builds from): symmetric INT8 activations (zero point 0), symmetric
  per-channel INT8 weights, float bias;
- ``onnxruntime`` (what its CPU kernels fuse into QLinearConv): asymmetric UINT8 activations, symmetric
  per-channel INT8 weights, INT32 bias, each quantized convolution's output read by its Q node only, and a ReLU
  right after a quantized convolution folded into that Q node's range (the quantizer removes it).

Which layers are quantized comes from :mod:`gldfn_calibration.layer_selection`. Fixes after the quantizer:
- it puts one Q/DQ pair on a tensor and hands the dequantized value to *every* consumer, so a skip connection
  or a local dynamic filter reading the same tensor as a quantized convolution would read it at 8 bits. Those
  float consumers are pointed back at the original tensor: only the quantized convolutions see INT8 inputs.
  For ``onnxruntime`` this is not done where the tensor is a quantized convolution's output: that output must
  feed its Q node only, or ONNX Runtime fuses no QLinearConv.
- Q/DQ pairs whose dequantized value nobody reads any more are removed.
- the model-local function that defines the custom node must survive; if a quantizer version drops it, it is
  copied back from the float model (and the file is refused if that is impossible).
"""
from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from gldfn_calibration.data_reader import PatchReader
from gldfn_calibration.errors import CalibrationError
from gldfn_calibration.gldfn_onnx import GldfnExport
from gldfn_calibration.layer_selection import QUANTIZED_OP_TYPES, LayerSelection
from gldfn_calibration.methods import Method
from gldfn_calibration.targets import Int8Target
from gldfn_model.common.hashing import file_sha256
from gldfn_model.common.optional import import_onnxruntime
from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner
from gldfn_model.inference.runner import RunnerError
from gldfn_model.ops import onnx_format as fmt

quantization = import_onnxruntime("onnxruntime.quantization")

PERCENTILE = 99.999
ORT_SHAPE_MARKER = "onnx.infer"  # added by the quantizer's shape inference; says nothing about the model


_ORT_METHODS = {Method.entropy: quantization.CalibrationMethod.Entropy,
                Method.minmax: quantization.CalibrationMethod.MinMax,
                Method.percentile: quantization.CalibrationMethod.Percentile}


@dataclass(frozen=True)
class QuantizationSettings:
    method: Method
    calibration_description: str
    exclude: tuple[str, ...]
    target: Int8Target = Int8Target.tensorrt


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """ONNX Runtime's quantizer logs a pre-processing hint at WARNING on the root logger on every call, and its
    entropy calibrator prints progress to stdout."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


# TensorRT's entropy calibrator uses 2048 histogram bins and 128 quantized bins; ONNX Runtime's entropy default
# of 128 bins leaves no threshold to search, which gives the min/max range.
HISTOGRAM_BINS = 2048
QUANTIZED_BINS = 128


# ReLUs are calibrated too: the onnxruntime layout quantizes the ReLU after a quantized convolution (folding it).
CALIBRATED_OP_TYPES = (*QUANTIZED_OP_TYPES, "Relu")


def calibrate_ranges(export: GldfnExport, reader: PatchReader, method: Method, cache: Path, work_dir: Path,
                     target: Int8Target = Int8Target.tensorrt) -> None:
    """Run the calibration data through ``export`` and write every convolution (and ReLU) tensor's range to
    ``cache`` (ONNX Runtime's calibration-cache JSON), which :func:`quantize_to_file` then reads. The ranges are
    symmetric for ``tensorrt`` (zero point 0) and asymmetric for ``onnxruntime``."""
    options: dict[str, object] = {"symmetric": target is Int8Target.tensorrt}
    if method is not Method.minmax:
        options["num_bins"] = HISTOGRAM_BINS
    if method is Method.entropy:
        options["num_quantized_bins"] = QUANTIZED_BINS
    if method is Method.percentile:
        options["percentile"] = PERCENTILE
    reader.rewind()
    with _quiet_quantizer():
        calibrator = quantization.create_calibrator(
            export.path, list(CALIBRATED_OP_TYPES), augmented_model_path=str(work_dir / "augmented.onnx"),
            calibrate_method=_ORT_METHODS[method], extra_options=options,
        )
        calibrator.collect_data(reader)
        quantization.save_tensors_data(calibrator.compute_data(), cache)


def quantize_to_file(export: GldfnExport, selection: LayerSelection, output: Path, settings: QuantizationSettings, cache: Path) -> onnx.ModelProto:
    """Quantize ``export`` following ``selection`` into ``output`` (not atomic: callers pass a temporary path), with
    the ranges that :func:`calibrate_ranges` wrote to ``cache`` (all convolutions' tensors are calibrated, so
    any layer selection can reuse one cache)."""
    if not selection.quantized:
        raise CalibrationError("every convolution is excluded: nothing would be quantized; drop some --exclude patterns")
    target = settings.target
    nodes = selection.quantized_nodes
    if target is Int8Target.tensorrt:
        activation_type, op_types = quantization.QuantType.QInt8, list(QUANTIZED_OP_TYPES)
        extra = {"ActivationSymmetric": True, "WeightSymmetric": True,
                 "QuantizeBias": False}  # TensorRT takes the bias in float and fuses it
    else:
        # ONNX Runtime fuses DQ -> Conv -> Q into QLinearConv only when every input (the bias too, as INT32) comes
        # from a DequantizeLinear and the output goes to Q nodes only; its kernels want UINT8 activations.
        activation_type, op_types = quantization.QuantType.QUInt8, [*QUANTIZED_OP_TYPES, "Relu"]
        extra = {"ActivationSymmetric": False, "WeightSymmetric": True, "QuantizeBias": True}
        nodes = [*nodes, *foldable_relus(export.model, selection)]
    with _quiet_quantizer():
        quantization.quantize_static(
            export.path, output, None, quant_format=quantization.QuantFormat.QDQ,
            op_types_to_quantize=op_types, nodes_to_quantize=nodes, per_channel=True,
            reduce_range=False, activation_type=activation_type, weight_type=quantization.QuantType.QInt8,
            calibrate_method=_ORT_METHODS[settings.method], calibration_cache_path=cache, extra_options=extra,
        )
    model = onnx.load(output)
    restore_float_consumers(model, selection, keep_quantized_outputs=target is Int8Target.onnxruntime)
    remove_dead_qdq(model)
    restore_functions(model, export.model)
    _set_metadata(model, export, selection, settings)
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise CalibrationError(f"the quantized model fails the ONNX checker: {exc}") from exc
    onnx.save(model, output)
    return model


def foldable_relus(model: onnx.ModelProto, selection: LayerSelection) -> list[str]:
    """The ReLU nodes that are the only reader of a quantized convolution's output: quantized with it, the
    quantizer drops them and the convolution's Q node (range from 0) does their clamping."""
    quantized = set(selection.quantized_nodes)
    producer = {out: node for node in model.graph.node for out in node.output}
    readers: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    found = []
    for node in model.graph.node:
        source = producer.get(node.input[0]) if node.op_type == "Relu" else None
        if source is not None and source.name in quantized and readers[node.input[0]] == 1:
            found.append(node.name)
    return found


def restore_float_consumers(model: onnx.ModelProto, selection: LayerSelection, keep_quantized_outputs: bool = False) -> int:
    """Point every consumer of a dequantized activation that is not a quantized node back at the float
    tensor; with ``keep_quantized_outputs``, not where that tensor is a quantized node's output (which then
    feeds its Q node only). Returns how many node inputs were changed."""
    quantized = set(selection.quantized_nodes)
    producer = {out: node for node in model.graph.node for out in node.output}
    initializers = {i.name for i in model.graph.initializer}
    original: dict[str, str] = {}  # DQ output -> the float tensor its Q read
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        q = producer.get(node.input[0])
        if q is None or q.op_type != "QuantizeLinear" or q.input[0] in initializers:
            continue
        source = producer.get(q.input[0])
        if keep_quantized_outputs and source is not None and source.name in quantized:
            continue
        original[node.output[0]] = q.input[0]
    changed = 0
    for node in model.graph.node:
        if node.name in quantized or node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        for i, name in enumerate(node.input):
            if name in original:
                node.input[i] = original[name]
                changed += 1
    return changed


def dead_qdq_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """DequantizeLinear nodes whose output nobody reads (and that is no graph output), and QuantizeLinear nodes
    read by such DequantizeLinear nodes only."""
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    outputs = {o.name for o in model.graph.output}
    dead = [n for n in model.graph.node if n.op_type == "DequantizeLinear"
            and not readers.get(n.output[0]) and n.output[0] not in outputs]
    dead_names = {id(n) for n in dead}
    dead += [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.output[0] not in outputs
             and all(id(r) in dead_names for r in readers.get(n.output[0], []))]
    return dead


def remove_dead_qdq(model: onnx.ModelProto) -> int:
    """Remove :func:`dead_qdq_nodes` (and the scales and zero points only they used). Returns how many nodes."""
    dead_nodes = dead_qdq_nodes(model)
    dead = {id(n) for n in dead_nodes}
    kept = [n for n in model.graph.node if id(n) not in dead]
    used = {name for node in kept for name in node.input}
    freed = {name for node in dead_nodes for name in node.input} - used
    del model.graph.node[:]
    model.graph.node.extend(kept)
    unused = [i for i in model.graph.initializer if i.name in freed]
    for initializer in unused:
        model.graph.initializer.remove(initializer)
    return len(dead_nodes)


def restore_functions(model: onnx.ModelProto, source: onnx.ModelProto) -> None:
    """Copy back any model-local function (and its opset import) of ``source`` that ``model`` lacks."""
    present = {(f.domain, f.name) for f in model.functions}
    for function in source.functions:
        if (function.domain, function.name) not in present:
            model.functions.append(function)
    domains = {o.domain for o in model.opset_import}
    for opset in source.opset_import:
        if opset.domain not in domains:
            model.opset_import.append(opset)
    used = {(n.domain, n.op_type) for n in model.graph.node if n.domain not in ("", "ai.onnx")}
    missing = used - {(f.domain, f.name) for f in model.functions}
    if missing:
        raise CalibrationError(f"the quantized model uses {sorted(missing)} without a function defining them")


def _set_metadata(model: onnx.ModelProto, export: GldfnExport, selection: LayerSelection, settings: QuantizationSettings) -> None:
    kept = [p for p in model.metadata_props if p.key != ORT_SHAPE_MARKER]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    fmt.set_metadata(model, {
        fmt.PRECISION: "int8",
        fmt.INT8_TARGET: settings.target.value,
        fmt.INT8_CALIBRATION_METHOD: settings.method.value,
        fmt.INT8_CALIBRATION_DATA: settings.calibration_description,
        fmt.INT8_QUANTIZED_LAYERS: str(len(selection.quantized)),
        fmt.INT8_EXCLUDED_LAYERS: ",".join(settings.exclude) or "none (only the dynamic filter parts are float)",
        fmt.INT8_SOURCE_SHA256: file_sha256(export.path),
    })
    model.producer_name = "gldfn-calibrate"


def check_runs(path: Path, sample: np.ndarray, scale: int, threads: int | None = None) -> None:
    """The quantized file loads and runs in ONNX Runtime on the CPU and gives a finite image of the right size."""
    try:
        output = OnnxRuntimeRunner(path, providers="cpu", scale=scale, threads=threads).infer(sample)
    except RunnerError as exc:
        raise CalibrationError(f"the quantized model does not run in ONNX Runtime: {exc}") from exc
    expected = (*sample.shape[:2], sample.shape[2] * scale, sample.shape[3] * scale)
    if output.shape != expected or not np.isfinite(output).all():
        raise CalibrationError(f"the quantized model gives shape {output.shape} (expected {expected}) or non-finite values")

