"""What INT8 costs: the FP32 and INT8 files restore the same degraded test images (through
:mod:`gldfn_model.evaluation.evaluate`), scored against the ground truth and against each other."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gldfn_model.evaluation.evaluate import Case, EvalResult, RestoreFn, evaluate_cases, runner_restore
from gldfn_model.evaluation.metrics import score
from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner


def onnx_restore(path: str | Path, threads: int | None = None) -> RestoreFn:
    """An ONNX file in ONNX Runtime (CPU) as a restore function: LR uint8 -> SR uint8."""
    return runner_restore(OnnxRuntimeRunner(path, providers="cpu", threads=threads))


def _recording(restore: RestoreFn, outputs: list[np.ndarray]) -> RestoreFn:
    def run(lr: np.ndarray) -> np.ndarray:
        sr = restore(lr)
        outputs.append(sr)
        return sr
    return run


@dataclass
class Restored:
    """One model's scores against the ground truth and its outputs, kept for comparisons."""

    result: EvalResult
    outputs: list[np.ndarray]


def restore_all(cases: list[Case], scale: int, restore: RestoreFn, setting: str, convention: str = "dcls") -> Restored:
    outputs: list[np.ndarray] = []
    result = evaluate_cases(iter(cases), scale, _recording(restore, outputs), convention, setting)
    return Restored(result, outputs)


@dataclass
class AccuracyComparison:
    setting: str
    scale: int
    convention: str
    images: int
    fp32_psnr: float
    fp32_ssim: float
    int8_psnr: float
    int8_ssim: float
    # Mean over the images that differ (identical ones have infinite PSNR, which JSON cannot hold); None if all are.
    int8_vs_fp32_psnr: float | None
    int8_vs_fp32_ssim: float

    @property
    def psnr_loss_db(self) -> float:
        return self.fp32_psnr - self.int8_psnr

    def to_dict(self) -> dict[str, Any]:
        return {
            "setting": self.setting, "scale": self.scale, "convention": self.convention, "images": self.images,
            "fp32_vs_ground_truth": {"psnr": self.fp32_psnr, "ssim": self.fp32_ssim},
            "int8_vs_ground_truth": {"psnr": self.int8_psnr, "ssim": self.int8_ssim},
            "int8_vs_fp32": {"psnr": self.int8_vs_fp32_psnr, "ssim": self.int8_vs_fp32_ssim},
            "psnr_lost_db": self.psnr_loss_db,
        }


def compare(fp32: Restored, int8: Restored, scale: int) -> AccuracyComparison:
    convention = fp32.result.convention
    mutual = [score(a, b, scale, convention) for a, b in zip(int8.outputs, fp32.outputs)]
    finite = [s.psnr for s in mutual if math.isfinite(s.psnr)]
    return AccuracyComparison(
        setting=fp32.result.setting, scale=scale, convention=convention, images=len(mutual),
        fp32_psnr=fp32.result.psnr, fp32_ssim=fp32.result.ssim, int8_psnr=int8.result.psnr, int8_ssim=int8.result.ssim,
        int8_vs_fp32_psnr=float(np.mean(finite)) if finite else None,
        int8_vs_fp32_ssim=float(np.mean([s.ssim for s in mutual])),
    )
