"""Compare two GLDFN backends on the same inputs through Polygraphy's comparator: an engine against ONNX
Runtime, or two ONNX files in ONNX Runtime (FP32 vs FP16 or INT8: what a machine without a GPU can run).

Engines run through ``TensorRTRunner`` wrapped as a Polygraphy runner, because our loader registers the plugin
library (Polygraphy's own TensorRT loader does not call ``getCreators`` on TensorRT-RTX).
"""
from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gldfn_export.verify import ReferenceInput
from gldfn_model.common.errors import GldfnError

DEFAULT_SIZE = (64, 64)
Size = tuple[int, int]


class CompareError(GldfnError, ValueError):
    """Inputs or models that cannot be compared; the message says why."""


@dataclass(frozen=True)
class CompareRow:
    input_name: str
    shape: tuple[int, ...]
    max_abs: float
    mean_abs: float
    psnr_db: float

    def describe(self) -> str:
        psnr = "inf" if math.isinf(self.psnr_db) else f"{self.psnr_db:.2f}"
        return f"{self.input_name} {'x'.join(map(str, self.shape[2:]))}: max abs {self.max_abs:.3e}, mean abs {self.mean_abs:.3e}, PSNR {psnr} dB"


@dataclass(frozen=True)
class CompareReport:
    reference: str
    candidate: str
    rows: list[CompareRow]

    @property
    def max_abs(self) -> float:
        return max(r.max_abs for r in self.rows)

    @property
    def mean_abs(self) -> float:
        return float(np.mean([r.mean_abs for r in self.rows]))

    @property
    def min_psnr_db(self) -> float:
        return min(r.psnr_db for r in self.rows)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; an infinite PSNR (identical outputs) becomes null."""
        finite = lambda value: None if math.isinf(value) else value  # noqa: E731
        rows = [r.__dict__ | {"shape": list(r.shape), "psnr_db": finite(r.psnr_db)} for r in self.rows]
        return {"reference": self.reference, "candidate": self.candidate, "max_abs": self.max_abs, "mean_abs": self.mean_abs,
                "min_psnr_db": finite(self.min_psnr_db), "rows": rows}


def image_inputs(paths: list[Path], size: Size | None, batch: int = 1) -> list[ReferenceInput]:
    """Each image as RGB in [0, 1], centre-cropped to ``size`` (None: whole), repeated to ``batch``."""
    from gldfn_model.data.image_io import read_rgb

    inputs = []
    for path in paths:
        pixels = read_rgb(path).astype(np.float32) / 255.0
        if size is not None:
            height, width = min(size[0], pixels.shape[0]), min(size[1], pixels.shape[1])
            top, left = (pixels.shape[0] - height) // 2, (pixels.shape[1] - width) // 2
            pixels = pixels[top : top + height, left : left + width]
        chw = np.ascontiguousarray(pixels.transpose(2, 0, 1))
        inputs.append(ReferenceInput(path.name, np.ascontiguousarray(np.broadcast_to(chw, (batch, *chw.shape)))))
    return inputs


def default_inputs(scale: int, size: Size = DEFAULT_SIZE, batch: int = 1) -> list[ReferenceInput]:
    """A real image (Set5 butterfly when the datasets are reachable, else a synthetic test card) and seeded noise."""
    from gldfn_export.verify import random_input, real_image_input

    return [real_image_input(scale, *size, batch), random_input(*size, batch)]


def onnx_runner(path: Path, name: str) -> Any:
    from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx

    if not Path(path).is_file():
        raise CompareError(f"ONNX file {path} does not exist")
    return OnnxrtRunner(SessionFromOnnx(str(path), providers=["CPUExecutionProvider"]), name=name)


def engine_runner(path: Path, name: str, plugin: str | os.PathLike[str] | None = None) -> Any:
    """Our TensorRT runner (plugin registered, sidecar checked) as a Polygraphy runner."""
    from polygraphy.backend.base import BaseRunner
    from polygraphy.common import TensorMetadata

    class GldfnEngineRunner(BaseRunner):
        def __init__(self) -> None:
            super().__init__(name=name, prefix="gldfn-trt-runner")
            self.runner: Any = None

        def activate_impl(self) -> None:
            from gldfn_runtime.trt_runner import TensorRTRunner

            self.runner = TensorRTRunner(path, plugin=plugin)

        def get_input_metadata_impl(self) -> Any:
            meta = TensorMetadata()
            meta.add(self.runner.input_name, np.float32, (self.runner.batch, 3, -1, -1))
            return meta

        def infer_impl(self, feed_dict: dict[str, np.ndarray]) -> OrderedDict:
            (lr,) = feed_dict.values()
            return OrderedDict([(self.runner.output_name, self.runner.infer(lr))])

        def deactivate_impl(self) -> None:
            self.runner = None

    return GldfnEngineRunner()


def _quiet_polygraphy() -> None:
    from polygraphy.logger import G_LOGGER

    G_LOGGER.module_severity = G_LOGGER.ERROR


def compare_runners(reference: Any, candidate: Any, inputs: list[ReferenceInput], input_name: str) -> CompareReport:
    """Run both Polygraphy runners on every input, compare each output with Polygraphy's simple comparator
    (max/mean absolute difference) and add the PSNR between the two outputs (clipped to [0, 1], peak 1: the
    exporter's verification convention)."""
    from polygraphy.comparator import Comparator, SimpleCompareFunc

    from gldfn_export.verify import psnr

    _quiet_polygraphy()
    feeds = [{input_name: item.lr} for item in inputs]
    results = Comparator.run([reference, candidate], data_loader=feeds)
    # atol=inf: the comparator reports the errors; judging them is the caller's business.
    accuracy = Comparator.compare_accuracy(results, compare_func=SimpleCompareFunc(atol=math.inf, rtol=math.inf, check_shapes=True))
    (iterations,) = accuracy[0].values()  # one comparison function, one runner pair
    (_, reference_outputs), (_, candidate_outputs) = results.items()
    rows = []
    for item, compared, ref, cand in zip(inputs, iterations, reference_outputs, candidate_outputs):
        ((output_name, stats),) = compared.items()
        rows.append(CompareRow(item.name, tuple(item.lr.shape), float(stats.max_absdiff), float(stats.mean_absdiff),
                               psnr(ref[output_name], cand[output_name])))
    return CompareReport(reference.name, candidate.name, rows)


def _onnx_input(path: Path) -> tuple[str, int, int | None]:
    """The input's name, its (fixed) batch and the file's scale."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # protobuf DecodeError and friends
        raise CompareError(f"{path} is not a readable ONNX file ({error})") from None
    metadata = {p.key: p.value for p in model.metadata_props}
    scale = metadata.get("gldfn.scale")
    model_input = model.graph.input[0]
    batch = model_input.type.tensor_type.shape.dim[0].dim_value or 1
    return model_input.name, batch, int(scale) if scale and scale.isdigit() else None


def compare_models(
    reference: str | os.PathLike[str],
    candidate: str | os.PathLike[str],
    images: list[Path] | None = None,
    size: Size | None = DEFAULT_SIZE,
    plugin: str | os.PathLike[str] | None = None,
) -> CompareReport:
    """Compare two models on the same inputs. ``reference`` and ``candidate`` are ONNX files or engines
    (``.engine``/``.plan``; an engine needs a GPU). ``images`` default to a real image and seeded noise."""
    paths = [Path(reference), Path(candidate)]
    onnx_paths = [p for p in paths if p.suffix.lower() == ".onnx"]
    if not onnx_paths:
        raise CompareError("give at least one ONNX file: it names the input and the scale")
    for path in paths:
        if not path.is_file():
            raise CompareError(f"{path} does not exist")
    input_name, batch, scale = _onnx_input(onnx_paths[0])
    runners = [
        onnx_runner(p, f"onnxruntime:{p.name}") if p.suffix.lower() == ".onnx" else engine_runner(p, f"tensorrt:{p.name}", plugin)
        for p in paths
    ]
    if images:
        inputs = image_inputs(images, size, batch)
    else:
        inputs = default_inputs(scale or 4, size or DEFAULT_SIZE, batch)
    return compare_runners(runners[0], runners[1], inputs, input_name)
