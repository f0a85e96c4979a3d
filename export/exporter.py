"""``export_gldfn``: a GLDFN PyTorch model -> one ONNX file whose local dynamic filters are
``gldfn::GLDFN_LocalDynamicFilter`` nodes backed by a model-local function (target ``trt``), or the same model
with that function inlined (target ``portable``), in float32 or float16."""
from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import onnx
import onnx.inliner
import torch

from gldfn_export.custom_node import local_filters_as_custom_nodes
from gldfn_export.fp16 import mark_fp32_regions
from gldfn_export.ldf_function import MIN_FUNCTION_OPSET, build_ldf_function
from gldfn_export.verify import ParityCheck, check_runners
from gldfn_model.common.atomic import atomic_output
from gldfn_model.common.errors import GldfnError
from gldfn_model.data.reference_inputs import random_input, real_image_input
from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner
from gldfn_model.inference.torch_runner import TorchRunner
from gldfn_model.network.complexity import count_complexity
from gldfn_model.network.gldfn import GLDFN
from gldfn_model.ops import onnx_format as fmt
from gldfn_model.ops.contract import OpContract, load_contract
from gldfn_model.ops.onnx_format import attribute_values, custom_nodes
from gldfn_model.ops.onnx_fp16 import convert_to_fp16

PRECISIONS = ("fp32", "fp16")
TARGETS = ("trt", "portable")
# torch's ONNX exporter emits opset >= 18 and the LDF function body needs 18 (Split with num_outputs).
MIN_OPSET = max(18, MIN_FUNCTION_OPSET)
DEFAULT_OPSET = 20
INPUT_NAME, OUTPUT_NAME = "lr", "sr"
HEIGHT_DIM, WIDTH_DIM = "height", "width"
# Paper's complexity figures are for a 180 x 270 LR input (Table IV).
MACS_REFERENCE_HW = (180, 270)
# Verification inputs: small, odd-sized and different from each other to catch shape-specialisation.
RANDOM_HW = (37, 45)
IMAGE_HW = (48, 64)
FP32_TOLERANCE = 1e-4
FP16_MIN_PSNR_DB = 45.0


def exporter_version() -> str:
    """The installed gldfn-trt version, else the source tree's."""
    try:
        return version("gldfn-trt")
    except PackageNotFoundError:
        from gldfn_model import __version__

        return __version__


class ExportError(GldfnError, RuntimeError):
    """The model cannot be exported as asked, or the exported file failed its checks."""


@dataclass
class ExportResult:
    path: Path
    precision: str
    target: str
    opset: int
    batch: int
    config_name: str
    scale: int
    node_count: int
    custom_node_count: int
    local_filter_count: int
    params: int
    macs: int
    macs_reference_hw: tuple[int, int]
    file_bytes: int
    metadata: dict[str, str]
    parity: list[ParityCheck] = field(default_factory=list)


def _check_arguments(model: GLDFN, precision: str, target: str, opset: int, batch: int) -> None:
    if not isinstance(model, GLDFN):
        raise ExportError(f"expected a gldfn_model.GLDFN, got {type(model).__name__}")
    if precision not in PRECISIONS:
        raise ExportError(f"precision {precision!r} is not supported; choose one of {PRECISIONS}")
    if target not in TARGETS:
        raise ExportError(f"target {target!r} is not supported; choose one of {TARGETS}")
    newest = onnx.defs.onnx_opset_version()
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is too old: the model needs opset >= {MIN_OPSET} (Split with num_outputs, torch's exporter); use --opset {DEFAULT_OPSET}")
    if opset > newest:
        raise ExportError(f"opset {opset} is newer than this onnx package knows ({newest}); use --opset {DEFAULT_OPSET}")
    if batch < 1:
        raise ExportError(f"batch must be >= 1, got {batch}")


def _torch_export(model: GLDFN, contract: OpContract, opset: int, batch: int) -> tuple[onnx.ModelProto, int]:
    sample = torch.rand(batch, 3, 32, 40)
    dynamic = {INPUT_NAME: {2: torch.export.Dim(HEIGHT_DIM, min=2), 3: torch.export.Dim(WIDTH_DIM, min=2)}}
    with local_filters_as_custom_nodes(model, contract) as layer_count, quiet_torch_onnx():
        program = torch.onnx.export(
            model, (sample,), dynamo=True, opset_version=opset, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes=dynamic, verbose=False, optimize=True,
        )
    return program.model_proto, layer_count


@contextmanager
def quiet_torch_onnx() -> Iterator[None]:
    """torch.onnx logs registry notes (e.g. "torchvision is not installed") at WARNING and warns about its own
    internals; the caller's summary is what users need."""
    torch_logger = logging.getLogger("torch.onnx")
    level = torch_logger.level
    torch_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        torch_logger.setLevel(level)


def _attach_ldf_function(model: onnx.ModelProto, contract: OpContract, opset: int) -> None:
    nodes = custom_nodes(model, contract)
    settings = {(attribute_values(n)["kernel_size"], attribute_values(n)["dilation"]) for n in nodes}
    if len(settings) > 1:
        raise ExportError(f"local dynamic filters with different (kernel_size, dilation) {sorted(settings)} cannot share one function body")
    for kernel_size, dilation in settings:
        model.functions.append(build_ldf_function(contract, kernel_size, dilation, opset))


def strip_export_traces(model: onnx.ModelProto) -> None:
    """Drop torch's per-node metadata (stack traces with local paths) so files do not depend on where they were made;
    keep the project's own (``gldfn.`` keys)."""
    for node in model.graph.node:
        kept = [p for p in node.metadata_props if p.key.startswith("gldfn.")]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        del value.metadata_props[:]


def _check_model(model: onnx.ModelProto, contract: OpContract) -> None:
    """Full ONNX check, and shape inference (from the inputs alone) must give every custom node's output shape."""
    try:
        onnx.checker.check_model(model, full_check=True)
        bare = onnx.ModelProto()
        bare.CopyFrom(model)
        del bare.graph.value_info[:]
        inferred = onnx.shape_inference.infer_shapes(bare, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"the exported model fails the ONNX checker: {exc}") from exc
    shapes = {v.name: v.type.tensor_type.shape for v in inferred.graph.value_info}
    for node in custom_nodes(model, contract):
        out, x = shapes.get(node.output[0]), shapes.get(node.input[0])
        # Conv inference renames symbolic H and W, so only the fixed N and C can be compared with x's.
        fixed = lambda shape: [d.dim_value for d in shape.dim[:2]]  # noqa: E731
        if out is None or x is None or len(out.dim) != 4 or fixed(out) != fixed(x) or 0 in fixed(out):
            raise ExportError(f"shape inference gives no N x C x H x W shape for {node.name} ({node.output[0]})")


def _inline_for_portable(model: onnx.ModelProto, contract: OpContract) -> onnx.ModelProto:
    inlined = onnx.inliner.inline_local_functions(model)
    remaining = [o for o in inlined.opset_import if o.domain != contract.domain]
    del inlined.opset_import[:]
    inlined.opset_import.extend(remaining)
    return inlined


def export_gldfn(
    model: GLDFN,
    output_path: str | os.PathLike[str],
    *,
    precision: str = "fp32",
    target: str = "trt",
    opset: int = DEFAULT_OPSET,
    batch: int = 1,
    verify: bool = True,
    checkpoint_sha256: str | None = None,
    config_name: str = "custom",
    verify_image: Path | None = None,
    overwrite: bool = False,
) -> ExportResult:
    """Export ``model`` to ``output_path`` (written atomically: nothing is left there on any failure; an existing
    file is refused before the export, and never replaced, unless ``overwrite``).

    precision: ``fp32``, or ``fp16`` (float32 input/output, float16 inside, fragile parts in float32).
    target: ``trt`` keeps the custom nodes plus their model-local function; ``portable`` inlines it.
    verify: run the file in ONNX Runtime against PyTorch on a random input and a real image.
    """
    _check_arguments(model, precision, target, opset, batch)
    contract = load_contract()
    model = model.eval().float()
    # Entered first so an unwritable output path fails before the (slow) export.
    with atomic_output(output_path, overwrite=overwrite) as tmp:
        onnx_model, layer_count = _build_onnx(model, contract, precision, target, opset, batch, checkpoint_sha256, config_name)
        onnx.save(onnx_model, tmp)
        parity = _verify(model, tmp, precision, batch, verify_image) if verify else []
        file_bytes = tmp.stat().st_size
    complexity = count_complexity(model.config, *MACS_REFERENCE_HW)
    return ExportResult(
        path=Path(output_path), precision=precision, target=target, opset=opset, batch=batch,
        config_name=config_name, scale=model.config.scale, node_count=len(onnx_model.graph.node),
        custom_node_count=len(custom_nodes(onnx_model, contract)), local_filter_count=layer_count,
        params=complexity.params, macs=complexity.macs, macs_reference_hw=MACS_REFERENCE_HW,
        file_bytes=file_bytes, metadata=fmt.read_metadata(onnx_model), parity=parity,
    )


def _build_onnx(
    model: GLDFN, contract: OpContract, precision: str, target: str, opset: int, batch: int,
    checkpoint_sha256: str | None, config_name: str,
) -> tuple[onnx.ModelProto, int]:
    onnx_model, layer_count = _torch_export(model, contract, opset, batch)
    _attach_ldf_function(onnx_model, contract, opset)
    if len(custom_nodes(onnx_model, contract)) != layer_count:
        raise ExportError(f"expected {layer_count} {contract.name} nodes, the export has {len(custom_nodes(onnx_model, contract))}")
    mark_fp32_regions(onnx_model, contract)  # also in FP32 files: gldfn-trt build converts them to FP16 from these
    if precision == "fp16":
        onnx_model = convert_to_fp16(onnx_model)
    strip_export_traces(onnx_model)
    if target == "portable":
        onnx_model = _inline_for_portable(onnx_model, contract)
    values = {
        fmt.SCALE: str(model.config.scale),
        fmt.CONFIG: config_name,
        fmt.CHECKPOINT_SHA256: checkpoint_sha256 or fmt.NO_CHECKPOINT,
        fmt.EXPORTER_VERSION: exporter_version(),
        fmt.OP_CONTRACT_VERSION: str(contract.contract_version),
        fmt.PRECISION: precision,
        fmt.TARGET: target,
        fmt.BATCH: str(batch),
        fmt.INPUT_RANGE: "RGB float in [0, 1]",
    }
    fmt.set_metadata(onnx_model, values)
    onnx_model.producer_name, onnx_model.producer_version = "gldfn-export", exporter_version()
    _check_model(onnx_model, contract)
    return onnx_model, layer_count


def _verify(model: GLDFN, path: Path, precision: str, batch: int, image: Path | None) -> list[ParityCheck]:
    inputs = [random_input(*RANDOM_HW, batch), real_image_input(model.config.scale, *IMAGE_HW, batch, image)]
    try:
        exported, reference = OnnxRuntimeRunner(path, providers="cpu"), TorchRunner(model)
        if precision == "fp32":
            checks = check_runners(exported, reference, inputs, tolerance=FP32_TOLERANCE)
        else:
            # Random noise is no image: FP16 is held to the PSNR floor on the real image only.
            checks = (check_runners(exported, reference, inputs[:1], tolerance=None)
                      + check_runners(exported, reference, inputs[1:], tolerance=None, min_psnr_db=FP16_MIN_PSNR_DB))
    except (OSError, ValueError) as exc:
        raise ExportError(f"verification could not run: {exc}") from exc
    except Exception as exc:  # RunnerError, or torch's own types
        raise ExportError(f"ONNX Runtime cannot run the exported file ({type(exc).__name__}): {exc}") from exc
    failed = [c.describe() for c in checks if not c.passed]
    if failed:
        raise ExportError("ONNX Runtime does not match PyTorch: " + "; ".join(failed))
    return checks
