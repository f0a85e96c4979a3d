"""Per-layer sensitivity: quantize one convolution at a time (reusing the calibrated ranges) and measure what
that layer alone costs on the evaluation images. The layers that cost most are the ones to ``--exclude``."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gldfn_calibration.accuracy import Restored, compare, onnx_restore, restore_all
from gldfn_calibration.gldfn_onnx import GldfnExport
from gldfn_calibration.layer_selection import LayerSelection
from gldfn_calibration.quantize import QuantizationSettings, quantize_to_file
from gldfn_model.evaluation.evaluate import Case


@dataclass(frozen=True)
class LayerSensitivity:
    layer: str
    node: str
    psnr_lost_db: float  # vs FP32, both against the ground truth
    int8_vs_fp32_psnr: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "node": self.node, "psnr_lost_db": self.psnr_lost_db, "int8_vs_fp32_psnr": self.int8_vs_fp32_psnr}


def layer_sensitivity(
    export: GldfnExport, selection: LayerSelection, settings: QuantizationSettings, cache: Path, work_dir: Path,
    cases: list[Case], fp32: Restored, progress: Callable[[int, int, str], None] | None = None,
    threads: int | None = None,
) -> list[LayerSensitivity]:
    """One entry per quantized layer of ``selection``, most costly first. ``cache`` must already hold the ranges."""
    results = []
    scale = fp32.result.scale
    for index, layer in enumerate(selection.quantized):
        if progress is not None:
            progress(index, len(selection.quantized), layer.name)
        single = LayerSelection([layer], selection.excluded_layers, selection.float_nodes)
        path = work_dir / "single_layer.onnx"
        quantize_to_file(export, single, path, settings, cache)
        restored = restore_all(cases, scale, onnx_restore(path, threads), fp32.result.setting, fp32.result.convention)
        comparison = compare(fp32, restored, scale)
        results.append(LayerSensitivity(layer.name, layer.node, comparison.psnr_loss_db, comparison.int8_vs_fp32_psnr))
    return sorted(results, key=lambda r: r.psnr_lost_db, reverse=True)
