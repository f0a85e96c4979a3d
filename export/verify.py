"""Parity of two runners on reference inputs (:mod:`gldfn_model.data.reference_inputs`): how the exporter checks
an exported file in ONNX Runtime against the PyTorch model."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gldfn_model.data.reference_inputs import ReferenceInput
from gldfn_model.evaluation.metrics import psnr
from gldfn_model.inference.runner import Runner


@dataclass(frozen=True)
class ParityCheck:
    name: str
    shape: tuple[int, ...]  # of the LR input
    max_abs: float
    psnr_db: float
    finite: bool
    tolerance: float | None = None  # max abs error allowed; None: PSNR floor only
    min_psnr_db: float | None = None

    @property
    def passed(self) -> bool:
        if not self.finite:
            return False
        if self.tolerance is not None and self.max_abs > self.tolerance:
            return False
        return self.min_psnr_db is None or self.psnr_db >= self.min_psnr_db

    def describe(self) -> str:
        shape = "x".join(map(str, self.shape))
        verdict = "ok" if self.passed else "FAILED"
        limit = f" (limit {self.tolerance:.0e})" if self.tolerance is not None else ""
        floor = f" (floor {self.min_psnr_db:g} dB)" if self.min_psnr_db is not None else ""
        return f"{self.name} {shape}: max abs {self.max_abs:.2e}{limit}, PSNR {self.psnr_db:.1f} dB{floor} - {verdict}"


def compare(reference: ReferenceInput, actual: np.ndarray, expected: np.ndarray, tolerance: float | None, min_psnr_db: float | None) -> ParityCheck:
    """Max abs error, and PSNR of the outputs clipped to [0, 1] (peak 1: what an image writer would keep)."""
    finite = bool(np.isfinite(actual).all())
    max_abs = float(np.abs(actual.astype(np.float64) - expected).max()) if finite else math.inf
    quality = psnr(np.clip(actual, 0, 1), np.clip(expected, 0, 1), peak=1.0) if finite else -math.inf
    return ParityCheck(reference.name, tuple(reference.lr.shape), max_abs, quality, finite, tolerance, min_psnr_db)


def check_runners(candidate: Runner, reference: Runner, inputs: list[ReferenceInput], tolerance: float | None,
                  min_psnr_db: float | None = None) -> list[ParityCheck]:
    """``candidate`` against ``reference`` on each input."""
    return [compare(i, candidate.infer(i.lr), reference.infer(i.lr), tolerance, min_psnr_db) for i in inputs]
