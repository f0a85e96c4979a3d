"""``calibrate_gldfn``: a float32 GLDFN export -> an INT8 (Q/DQ) ONNX file, checked in ONNX Runtime and
TensorRT, with a JSON report of what the quantization costs. Both output files are written atomically: on any
error neither is left behind."""
from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gldfn_calibration.accuracy import AccuracyComparison, compare, onnx_restore, restore_all
from gldfn_calibration.data_reader import PatchReader, calibration_images, hold_out, make_calibration_set
from gldfn_calibration.engine_check import EngineCheck, build_engine_on_cpu
from gldfn_calibration.errors import CalibrationError
from gldfn_calibration.gldfn_onnx import load_gldfn_export
from gldfn_calibration.layer_selection import DEFAULT_EXCLUDE, LayerSelection, select_layers
from gldfn_calibration.methods import Method
from gldfn_calibration.quantize import QuantizationSettings, calibrate_ranges, check_runs, quantize_to_file
from gldfn_calibration.sensitivity import LayerSensitivity, layer_sensitivity
from gldfn_calibration.targets import WEIGHTS, Int8Target
from gldfn_model.common.atomic import OutputExistsError, atomic_outputs, check_output
from gldfn_model.common.temps import work_folder
from gldfn_model.data.image_io import ImageReadError, list_images
from gldfn_model.evaluation.evaluate import EvaluationError, degrade_files

REPORT_FORMAT = 1


@dataclass
class CalibrationOptions:
    images: Path
    scale: int | None = None  # checked against the export's when given
    setting: str = "gaussian8"
    samples: int = 64
    patch: int = 128
    # Measured on the shipped tiny x4 weights (docs/int8.md): the first layer re-quantizes the 8-bit LR image to
    # a 1/127 step and costs most; percentile clips fewer useful tails than entropy.
    method: Method = Method.percentile
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    lr_images: bool = False
    seed: int = 0
    eval_images: Path | None = None  # HR evaluation images; None: see hold_out
    hold_out: bool = False  # without eval_images: evaluate on images held out of `images` (seeded), else not at all
    sensitivity: bool = False
    engine_check: bool = True
    plugin_library: Path | None = None
    threads: int | None = None  # ONNX Runtime's intra-op threads (gldfn_model.common.threads)
    target: Int8Target = Int8Target.tensorrt  # the Q/DQ layout (gldfn_calibration.targets)


@dataclass
class CalibrationResult:
    output: Path
    report_path: Path | None
    selection: LayerSelection
    calibration_description: str
    file_bytes: dict[str, int]
    accuracy: AccuracyComparison | None = None
    sensitivity: list[LayerSensitivity] = field(default_factory=list)
    engine: EngineCheck | None = None
    engine_skipped: str | None = None
    report: dict[str, Any] = field(default_factory=dict)
    target: Int8Target = Int8Target.tensorrt


@dataclass(frozen=True)
class ImageSplit:
    """Which images calibrate and which evaluate (none: no evaluation), and how to say it."""

    calibration: list[Path]
    evaluation: list[Path]
    evaluation_description: str | None
    calibration_note: str = ""  # added to the calibration data's description


def split_images(options: CalibrationOptions) -> ImageSplit:
    """The calibration images and the evaluation images: ``eval_images``, or with ``hold_out`` a seeded few of
    ``images`` (gldfn_calibration.data_reader.hold_out), which then calibrate without them."""
    files = calibration_images(options.images)
    if options.eval_images is not None:
        try:
            evaluation = list_images(options.eval_images)
        except ImageReadError as exc:
            raise CalibrationError(f"--eval-images: {exc}") from exc
        return ImageSplit(files, evaluation, str(options.eval_images))
    if not options.hold_out:
        return ImageSplit(files, [], None)
    if options.lr_images:
        raise CalibrationError("--lr images have no ground truth to evaluate against: pass --eval-images DIR (HR "
                               "images) or --no-eval")
    kept, held = hold_out(files, options.seed)
    names = ", ".join(path.name for path in held)
    return ImageSplit(kept, held, f"{len(held)} of the {len(files)} images in {options.images}, held out of the "
                      f"calibration (seed {options.seed}: {names})", f" without the {len(held)} held out")


def calibrate_gldfn(
    model_path: str | os.PathLike[str], output: str | os.PathLike[str], options: CalibrationOptions,
    report_path: str | os.PathLike[str] | None = None, progress: Callable[[str], None] | None = None,
    overwrite: bool = False,
) -> CalibrationResult:
    """Quantize ``model_path`` into ``output`` and (optionally) write the JSON report to ``report_path``; both are
    written together or not at all, and an existing file is refused (before calibrating) and never replaced
    unless ``overwrite``."""
    say = progress or (lambda message: None)
    export = load_gldfn_export(model_path)
    written = {"-o": Path(output), "--report": Path(report_path) if report_path is not None else None}
    for option, path in written.items():
        if path is not None and path.resolve() == export.path.resolve():
            raise CalibrationError(f"{option} {path} is the input model {export.path}; name the INT8 file differently "
                                   f"(e.g. {export.path.with_name(export.path.stem + '_int8.onnx')})")
    if written["--report"] is not None and written["--report"].resolve() == written["-o"].resolve():
        raise OutputExistsError(f"--report {report_path} is the -o file; name the report differently")
    for option, path in written.items():
        if path is not None:
            check_output(path, overwrite=overwrite, option=option)
    if options.scale is not None and options.scale != export.scale:
        raise CalibrationError(f"--scale {options.scale} does not match {export.path}, which is a x{export.scale} model")
    selection = select_layers(export.model, options.exclude)
    split = split_images(options)
    if options.plugin_library is not None and not Path(options.plugin_library).is_file():
        raise CalibrationError(f"--plugin {options.plugin_library}: no such file; build it with `gldfn-trt plugin build`")
    with contextlib.ExitStack() as stack:
        # Entered first, so an unwritable output fails before the slow part and a failure leaves no file.
        temps = stack.enter_context(atomic_outputs([p for p in written.values() if p is not None], overwrite=overwrite))
        model_tmp, report_tmp = temps[0], (temps[1] if report_path is not None else None)
        work = stack.enter_context(work_folder("calibrate"))
        started = time.perf_counter()
        calibration = make_calibration_set(
            options.images, export.scale, samples=options.samples, patch=options.patch, setting=options.setting,
            lr_images=options.lr_images, seed=options.seed, files=split.calibration, note=split.calibration_note,
        )
        say(f"calibrating with {options.method.value} on {calibration.description}")
        same_images = options.eval_images is not None and Path(options.images).resolve() == Path(options.eval_images).resolve()
        if same_images:
            say("note: the calibration images are the evaluation images, so the figures below are optimistic")
        settings = QuantizationSettings(options.method, calibration.description, options.exclude, options.target)
        cache = work / "ranges.json"
        reader = PatchReader(calibration.patches, export.input_name, export.batch)
        calibrate_ranges(export, reader, options.method, cache, work, options.target)
        quantize_to_file(export, selection, model_tmp, settings, cache)
        check_runs(model_tmp, next(iter(reader.feeds()))[export.input_name], export.scale, options.threads)
        result = CalibrationResult(
            Path(output), Path(report_path) if report_path is not None else None, selection, calibration.description,
            {"fp32_onnx": export.path.stat().st_size, "int8_onnx": model_tmp.stat().st_size}, target=options.target,
        )
        if options.engine_check and options.target is not Int8Target.tensorrt:
            result.engine_skipped = (f"the {options.target.value} layout (activations {options.target.activations}; bias "
                                     f"{options.target.bias}) is not one TensorRT builds; use --target tensorrt for engines")
        elif options.engine_check:
            _engine_check(result, model_tmp, options.plugin_library, say)
        if split.evaluation:
            _evaluate(result, export, selection, settings, cache, work, options, split, model_tmp, say)
        result.report = _report(result, export.path, options, calibration.images_too_small, same_images,
                                split.evaluation_description, time.perf_counter() - started)
        if report_tmp is not None:
            report_tmp.write_text(json.dumps(result.report, indent=2) + "\n")
            result.file_bytes["report"] = report_tmp.stat().st_size
    return result


def _engine_check(result: CalibrationResult, path: Path, plugin: Path | None, say: Callable[[str], None]) -> None:
    from gldfn_runtime.tensorrt.compat import TensorRTUnavailable

    say("building a TensorRT engine on the CPU" + (f" with {plugin}" if plugin else " (custom nodes from their function bodies)"))
    try:
        result.engine = build_engine_on_cpu(path, plugin)
    except TensorRTUnavailable as exc:
        result.engine_skipped = str(exc)
        return
    result.file_bytes["engine_plan"] = result.engine.plan_bytes


def _evaluate(result: CalibrationResult, export: Any, selection: LayerSelection, settings: QuantizationSettings, cache: Path,
              work: Path, options: CalibrationOptions, split: ImageSplit, int8_path: Path,
              say: Callable[[str], None]) -> None:
    say(f"evaluating FP32 and INT8 on {split.evaluation_description} ({options.setting} x{export.scale})")
    try:
        cases = list(degrade_files(split.evaluation, options.setting, export.scale, options.seed))
    except (EvaluationError, ImageReadError) as exc:
        raise CalibrationError(f"--eval-images: {exc}") from exc
    fp32 = restore_all(cases, export.scale, onnx_restore(export.path, options.threads), options.setting)
    int8 = restore_all(cases, export.scale, onnx_restore(int8_path, options.threads), options.setting)
    result.accuracy = compare(fp32, int8, export.scale)
    if options.sensitivity:
        report = lambda i, n, name: say(f"sensitivity {i + 1}/{n}: {name}")  # noqa: E731
        result.sensitivity = layer_sensitivity(export, selection, settings, cache, work, cases, fp32, report,
                                               threads=options.threads)


def _report(result: CalibrationResult, source: Path, options: CalibrationOptions, too_small: list[str], same_images: bool,
            evaluation_images: str | None, seconds: float) -> dict[str, Any]:
    return {
        "format": REPORT_FORMAT,
        "fp32_model": str(source),
        "int8_model": str(result.output),
        "quantization": {
            "format": "QDQ", "target": options.target.value, "activations": options.target.activations,
            "weights": WEIGHTS, "bias": options.target.bias, "method": options.method.value, "exclude": list(options.exclude),
            "quantized_layers": [layer.name for layer in result.selection.quantized],
            "float_layers": result.selection.excluded_layers,
            "float_nodes_by_reason": result.selection.float_node_counts(),
        },
        "calibration": {"data": result.calibration_description, "setting": options.setting, "samples": options.samples,
                        "patch": options.patch, "lr_images": options.lr_images, "images_skipped_too_small": too_small,
                        "same_images_as_evaluation": same_images},
        "evaluation": {"evaluated_on": evaluation_images, **result.accuracy.to_dict()} if result.accuracy else None,
        "sensitivity": [s.to_dict() for s in result.sensitivity] if options.sensitivity else None,
        "tensorrt": result.engine.to_dict() if result.engine else {"skipped": result.engine_skipped or "not asked (--no-engine-check)"},
        "file_bytes": dict(result.file_bytes),
        "seconds": round(seconds, 1),
    }
