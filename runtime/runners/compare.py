"""Compare two GLDFN backends on the same inputs: an engine against ONNX Runtime, or two ONNX files in ONNX
Runtime (FP32 vs FP16 or INT8: what a machine without a GPU can run).

Both sides run through the project's runners (``OnnxRuntimeRunner``; ``TensorRTRunner``, which registers the
plugin library and checks the engine's sidecar). The comparison is element-wise (max and mean absolute
difference) plus the PSNR between the two outputs; no PyTorch is imported (Polygraphy's comparator, used
before, imports it whenever it is installed). A :class:`Tolerance` turns the report into a pass/fail gate for CI:
every value within ``atol + rtol * |reference|`` (numpy.isclose's rule) and/or every PSNR at least ``min_psnr_db``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gldfn_model.common.errors import GldfnError
from gldfn_model.data.reference_inputs import ReferenceInput, image_inputs, random_input, real_image_input
from gldfn_model.evaluation.metrics import psnr
from gldfn_model.inference.runner import Runner
from gldfn_model.ops import onnx_format

DEFAULT_SIZE = (64, 64)
Size = tuple[int, int]


class CompareError(GldfnError, ValueError):
    """Inputs or models that cannot be compared; the message says why."""


@dataclass(frozen=True)
class Tolerance:
    """What a comparison must meet. ``atol``/``rtol``: each value within ``atol + rtol * |reference|`` (one given
    alone, the other is 0); ``min_psnr_db``: the PSNR of every input at least this. All None: no gate."""

    atol: float | None = None
    rtol: float | None = None
    min_psnr_db: float | None = None

    def __post_init__(self) -> None:
        for name in ("atol", "rtol", "min_psnr_db"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise CompareError(f"--{name.replace('_db', '').replace('_', '-')} must be a finite number >= 0, got {value}")

    @property
    def checks_values(self) -> bool:
        return self.atol is not None or self.rtol is not None

    def describe_values(self) -> str:
        return f"atol {self.atol or 0:g} + rtol {self.rtol or 0:g} x |reference|"

    def outside(self, reference: np.ndarray, candidate: np.ndarray) -> int:
        """How many values of ``candidate`` lie outside the tolerance around ``reference`` (NaN counts as outside)."""
        close = np.isclose(candidate, reference, rtol=self.rtol or 0.0, atol=self.atol or 0.0, equal_nan=False)
        return int(close.size - np.count_nonzero(close))


@dataclass(frozen=True)
class CompareRow:
    input_name: str
    shape: tuple[int, ...]
    max_abs: float
    mean_abs: float
    psnr_db: float
    values: int = 0  # output values compared
    outside: int | None = None  # of them, outside the tolerance (None: no atol/rtol asked)

    def describe(self) -> str:
        psnr = "inf" if math.isinf(self.psnr_db) else f"{self.psnr_db:.2f}"
        return f"{self.input_name} {'x'.join(map(str, self.shape[2:]))}: max abs {self.max_abs:.3e}, mean abs {self.mean_abs:.3e}, PSNR {psnr} dB"


@dataclass(frozen=True)
class CompareReport:
    reference: str
    candidate: str
    rows: list[CompareRow]
    tolerance: Tolerance = Tolerance()

    @property
    def max_abs(self) -> float:
        return max(r.max_abs for r in self.rows)

    @property
    def mean_abs(self) -> float:
        return float(np.mean([r.mean_abs for r in self.rows]))

    @property
    def min_psnr_db(self) -> float:
        return min(r.psnr_db for r in self.rows)

    def failures(self) -> list[str]:
        """Why the comparison misses its tolerance, one reason per gate (empty: it passes, or no gate was set)."""
        tolerance, reasons = self.tolerance, []
        if tolerance.checks_values:
            outside = sum(r.outside or 0 for r in self.rows)
            if outside:
                values = sum(r.values for r in self.rows)
                reasons.append(f"{outside} of {values} values differ by more than {tolerance.describe_values()} "
                               f"(max abs {self.max_abs:.3e})")
        if tolerance.min_psnr_db is not None and not self.min_psnr_db >= tolerance.min_psnr_db:
            reasons.append(f"min PSNR {self.min_psnr_db:.2f} dB is below {tolerance.min_psnr_db:g} dB")
        return reasons

    @property
    def passed(self) -> bool:
        return not self.failures()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; an infinite PSNR (identical outputs) becomes null."""
        finite = lambda value: None if math.isinf(value) else value  # noqa: E731
        rows = [r.__dict__ | {"shape": list(r.shape), "psnr_db": finite(r.psnr_db)} for r in self.rows]
        gate = {**self.tolerance.__dict__, "passed": self.passed, "failures": self.failures()}
        return {"reference": self.reference, "candidate": self.candidate, "max_abs": self.max_abs, "mean_abs": self.mean_abs,
                "min_psnr_db": finite(self.min_psnr_db), "rows": rows, "gate": gate}


def default_inputs(scale: int, size: Size = DEFAULT_SIZE, batch: int = 1) -> list[ReferenceInput]:
    """A real image (Set5 butterfly when the datasets are reachable, else a synthetic test card) and seeded noise."""
    return [real_image_input(scale, *size, batch), random_input(*size, batch)]


def compare_row(item: ReferenceInput, reference: np.ndarray, candidate: np.ndarray,
                tolerance: Tolerance = Tolerance()) -> CompareRow:
    """Max / mean absolute difference, the PSNR of the two outputs clipped to [0, 1] (peak 1: the exporter's
    verification convention), and how many values lie outside ``tolerance`` (when it sets atol/rtol)."""
    if reference.shape != candidate.shape:
        raise CompareError(f"{item.name}: the outputs differ in shape ({reference.shape} and {candidate.shape}); "
                           "are both models for the same scale?")
    difference = np.abs(reference.astype(np.float64) - candidate)
    quality = psnr(np.clip(reference, 0, 1), np.clip(candidate, 0, 1), peak=1.0)
    outside = tolerance.outside(reference.astype(np.float64), candidate) if tolerance.checks_values else None
    return CompareRow(item.name, tuple(item.lr.shape), float(difference.max()), float(difference.mean()), quality,
                      int(difference.size), outside)


def compare_runners(reference: Runner, candidate: Runner, inputs: list[ReferenceInput],
                    names: tuple[str, str], tolerance: Tolerance = Tolerance()) -> CompareReport:
    """Run both runners on every input and compare their outputs."""
    rows = [compare_row(item, reference.infer(item.lr), candidate.infer(item.lr), tolerance) for item in inputs]
    return CompareReport(*names, rows, tolerance)


def _onnx_io(path: Path) -> tuple[int, int | None]:
    """The file's (fixed) batch and its scale."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # protobuf DecodeError and friends
        raise CompareError(f"{path} is not a readable ONNX file ({error})") from None
    batch = model.graph.input[0].type.tensor_type.shape.dim[0].dim_value or 1
    return batch, onnx_format.scale_of(onnx_format.read_metadata(model))


def _runner(path: Path, scale: int | None, plugin: str | os.PathLike[str] | None, device: int,
            threads: int | None = None) -> tuple[Runner, str]:
    """ONNX Runtime on the CPU with ``threads`` for an ONNX file (``scale`` None: the file's own), GPU ``device`` for
    an engine."""
    if path.suffix.lower() == ".onnx":
        from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner

        return OnnxRuntimeRunner(path, providers="cpu", scale=scale, threads=threads), f"onnxruntime:{path.name}"
    from gldfn_runtime.runners.trt_runner import TensorRTRunner

    return TensorRTRunner(path, plugin=plugin, device=device, scale=scale), f"tensorrt:{path.name}"


def compare_models(
    reference: str | os.PathLike[str],
    candidate: str | os.PathLike[str],
    images: list[Path] | None = None,
    size: Size | None = DEFAULT_SIZE,
    plugin: str | os.PathLike[str] | None = None,
    tolerance: Tolerance = Tolerance(),
    device: int = 0,
    threads: int | None = None,
) -> CompareReport:
    """Compare two models on the same inputs. ``reference`` and ``candidate`` are ONNX files (run by ONNX Runtime
    with ``threads``) or engines (``.engine``/``.plan``; an engine needs a GPU, ``device``). ``images`` default to a
    real image and seeded noise; ``tolerance`` is the gate the report's ``passed`` checks."""
    paths = [Path(reference), Path(candidate)]
    onnx_paths = [p for p in paths if p.suffix.lower() == ".onnx"]
    if not onnx_paths:
        raise CompareError("give at least one ONNX file: it gives the batch and the scale")
    for path in paths:
        if not path.is_file():
            raise CompareError(f"{path} does not exist")
    batch, scale = _onnx_io(onnx_paths[0])
    inputs = image_inputs(images, size, batch) if images else default_inputs(scale or 4, size or DEFAULT_SIZE, batch)
    (first, first_name), (second, second_name) = (_runner(p, scale, plugin, device, threads) for p in paths)
    return compare_runners(first, second, inputs, (first_name, second_name), tolerance)
