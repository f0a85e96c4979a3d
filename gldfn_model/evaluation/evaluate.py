"""Evaluation as the field measures it: degrade HR test images (on the fly, or read a ``gldfn degrade`` folder),
restore them with a method, and score PSNR / SSIM under a convention (see :mod:`gldfn_model.evaluation.metrics`)."""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field, NonNegativeInt, PositiveInt
from typing_extensions import TypedDict

from gldfn_model.common.errors import GldfnError
from gldfn_model.common.validation import read_json, strict_schema
from gldfn_model.data import degradation as deg
from gldfn_model.data.image_io import ImageReadError, list_images, read_rgb
from gldfn_model.data.imresize import imresize
from gldfn_model.data.setting_names import SETTINGS
from gldfn_model.evaluation.metrics import check_convention, quantize_uint8, score
from gldfn_model.inference.runner import Runner, run_image
from gldfn_model.network.checkpoint import SHIPPED_CONFIG
from gldfn_model.network.config import SUPPORTED_SCALES

RestoreFn = Callable[[np.ndarray], np.ndarray]
"""LR ``h x w x 3`` uint8 -> SR ``sh x sw x 3`` (uint8, or float in [0, 1])."""

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
MAX_MANIFEST_BYTES = 64 << 20  # BSD100 under Gaussian8 (800 LR images) writes about 300 kB
PlainName = Annotated[str, Field(min_length=1, pattern=r"^[^/\\]+$")]  # a file name, no folders: read beside the manifest


class ManifestImage(TypedDict):
    hr: PlainName  # the HR image's name in the HR folder
    lr: PlainName  # the LR image's name beside the manifest
    variant: NonNegativeInt
    hr_size: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]
    degradation: dict[str, Any]


class Manifest(TypedDict):
    """A ``gldfn degrade`` folder's manifest.json, field by field."""

    format: Literal[1]
    setting: Literal[SETTINGS]  # type: ignore[valid-type]
    scale: Literal[SUPPORTED_SCALES]  # type: ignore[valid-type]
    seed: int
    noise_sigma: float
    sv_noise: str | None
    hr_dir: str
    images: list[ManifestImage]


strict_schema(ManifestImage)
strict_schema(Manifest)


class EvaluationError(GldfnError, ValueError):
    """The evaluation inputs (folders, images, manifest, method) are unusable."""


@dataclass
class Case:
    """One test pair: a modcropped HR image and its degraded LR version."""

    name: str  # HR file name
    variant: int  # index among the degradations of this HR image (0..7 for Gaussian8)
    hr: np.ndarray  # H x W x 3 uint8, modcropped
    lr: np.ndarray  # H/s x W/s x 3 uint8
    degradation: dict[str, Any]


@dataclass
class ImageScore:
    name: str
    variant: int
    psnr: float
    ssim: float
    degradation: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalResult:
    setting: str
    scale: int
    convention: str
    per_image: list[ImageScore]

    @property
    def psnr(self) -> float:
        return float(np.mean([s.psnr for s in self.per_image]))

    @property
    def ssim(self) -> float:
        return float(np.mean([s.ssim for s in self.per_image]))

    def to_dict(self) -> dict[str, Any]:
        return {"setting": self.setting, "scale": self.scale, "convention": self.convention,
                "psnr": self.psnr, "ssim": self.ssim, "count": len(self.per_image),
                "per_image": [asdict(s) for s in self.per_image]}


# ---------------------------------------------------------------- which degradations an image gets

def degradations_for_image(setting: str, scale: int, name: str, hr_shape: tuple[int, int], seed: int = 0,
                      noise_sigma: float = 0.0, sv_noise: str = "low") -> list[deg.Degradation]:
    """The degradations applied to the test image ``name``: the 8 Gaussian8 kernels, or one random sample of
    ``iso`` / ``aniso`` / ``sv`` drawn from ``(seed, name)``. ``noise_sigma`` ([0, 1] units) adds AWGN (not for
    ``sv``, which draws its own)."""
    deg.check_scale(scale)
    if setting == "gaussian8":
        return deg.gaussian8_degradations(scale, noise_sigma)
    if setting not in SETTINGS:
        raise EvaluationError(f"unknown setting {setting!r} (use one of {', '.join(SETTINGS)})")
    return [deg.sample_degradation(setting, scale, deg.image_rng(seed, name, "kernel"), hr_shape, noise_sigma, sv_noise)]


def _load_hr(path: Path, scale: int, min_size: int) -> np.ndarray:
    hr = deg.modcrop(read_rgb(path), scale)
    if min(hr.shape[:2]) < min_size:
        raise EvaluationError(f"{path}: image is {hr.shape[1]}x{hr.shape[0]} after modcrop, smaller than the "
                              f"{min_size}x{min_size} this setting needs; remove it from the folder")
    return hr


def _min_hr_size(setting: str, scale: int) -> int:
    kernel = deg.aniso_kernel_size(scale) if setting == "aniso" else deg.ISO_KERNEL_SIZE
    # reflect padding needs kernel // 2 < size, and the dcls SSIM window needs 11 pixels after the border crop
    return max(kernel // 2 + 1, scale * math.ceil((11 + 2 * scale) / scale))


def degrade_cases(hr_dir: str | Path, setting: str, scale: int, seed: int = 0, noise_sigma: float = 0.0,
                  sv_noise: str = "low") -> Iterator[Case]:
    """Degrade every image of ``hr_dir`` on the fly (deterministic from ``seed``)."""
    return degrade_files(list_images(hr_dir), setting, scale, seed, noise_sigma, sv_noise)


def degrade_files(files: Sequence[Path], setting: str, scale: int, seed: int = 0, noise_sigma: float = 0.0,
                  sv_noise: str = "low") -> Iterator[Case]:
    """Degrade each HR image file on the fly (deterministic from ``seed`` and the file's name)."""
    for path in files:
        hr = _load_hr(path, scale, _min_hr_size(setting, scale))
        for variant, degradation in enumerate(degradations_for_image(setting, scale, path.name, hr.shape[:2], seed, noise_sigma, sv_noise)):
            rng = deg.image_rng(seed, path.name, "noise", variant)
            lr = deg.degrade_image(hr, degradation, scale, rng=rng)
            yield Case(path.name, variant, hr, lr, degradation.describe())


def _lr_name(hr_name: str, variant: int) -> str:
    return f"{Path(hr_name).stem}_{variant}.png"


def _check_degrade_outputs(hr_paths: list[Path], hr_dir: Path, out_dir: Path, overwrite: bool) -> None:
    """Before degrading: -o is not the HR folder, and unless ``overwrite`` holds no manifest and no LR file of
    these images (``<stem>_<n>.png``)."""
    from gldfn_model.common.atomic import OutputExistsError, check_output

    if out_dir.is_dir() and out_dir.resolve() == hr_dir.resolve():
        raise OutputExistsError(f"-o {out_dir} is the HR folder; write the LR images into another folder")
    check_output(out_dir / MANIFEST_NAME, overwrite=overwrite)
    if overwrite or not out_dir.is_dir():
        return
    stems = {path.stem for path in hr_paths}
    existing = sorted(p.name for p in out_dir.iterdir()
                      if p.suffix == ".png" and p.stem.rpartition("_")[0] in stems and p.stem.rpartition("_")[2].isdigit())
    if existing:
        shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise OutputExistsError(f"-o {out_dir} already holds LR images of these HR images ({shown}): choose another "
                                "folder, or pass --overwrite to replace them")


def write_degraded_folder(hr_dir: str | Path, out_dir: str | Path, setting: str, scale: int, seed: int = 0,
                          noise_sigma: float = 0.0, sv_noise: str = "low",
                          on_image: Callable[[Case, str], None] | None = None, *, overwrite: bool = False) -> dict[str, Any]:
    """Degrade every image of ``hr_dir`` into ``out_dir`` (created if needed): ``<stem>_<variant>.png`` LR images
    and a ``manifest.json`` with each one's HR name, size and degradation parameters. Every file is written
    atomically; the manifest last, so a folder with a manifest is complete. Files there already are refused
    before any work, and never replaced, unless ``overwrite``; a folder created here and left empty is removed.
    Returns the manifest."""
    from gldfn_model.common.atomic import atomic_output, output_folder
    from gldfn_model.data.image_io import write_image

    hr_paths = list_images(hr_dir)
    stems = [p.stem for p in hr_paths]
    clashes = sorted({s for s in stems if stems.count(s) > 1})
    if clashes:
        raise EvaluationError(f"{hr_dir}: several images share the name stem(s) {clashes}; their LR files would collide")
    _check_degrade_outputs(hr_paths, Path(hr_dir), Path(out_dir), overwrite)
    with output_folder(out_dir) as out:
        entries = []
        for case in degrade_cases(hr_dir, setting, scale, seed, noise_sigma, sv_noise):
            lr_name = _lr_name(case.name, case.variant)
            write_image(out / lr_name, case.lr, overwrite=overwrite)
            entries.append({"hr": case.name, "lr": lr_name, "variant": case.variant,
                            "hr_size": [int(case.hr.shape[0]), int(case.hr.shape[1])], "degradation": case.degradation})
            if on_image is not None:
                on_image(case, lr_name)
        manifest = {"format": MANIFEST_FORMAT, "setting": setting, "scale": scale, "seed": seed,
                    "noise_sigma": noise_sigma, "sv_noise": sv_noise if setting == "sv" else None,
                    "hr_dir": str(Path(hr_dir).resolve()), "images": entries}
        with atomic_output(out / MANIFEST_NAME, overwrite=overwrite) as tmp:
            tmp.write_text(json.dumps(manifest, indent=1))
    return manifest


def read_manifest(lr_dir: str | Path) -> Manifest:
    """The manifest of a ``gldfn degrade`` folder, every field checked (EvaluationError naming the field)."""
    path = Path(lr_dir) / MANIFEST_NAME
    if not path.is_file():
        raise EvaluationError(f"{lr_dir}: no {MANIFEST_NAME}; is it a folder written by `gldfn degrade`?")
    return read_json(path, Manifest, max_bytes=MAX_MANIFEST_BYTES, error=EvaluationError,
                     what=f"gldfn degrade manifest (format {MANIFEST_FORMAT})",
                     advice="write the folder again with `gldfn degrade`")


def folder_cases(hr_dir: str | Path, lr_dir: str | Path, scale: int, setting: str | None = None) -> Iterator[Case]:
    """Read the LR images of a ``gldfn degrade`` folder and pair them with their HR images from ``hr_dir``."""
    manifest = read_manifest(lr_dir)
    if manifest["scale"] != scale:
        raise EvaluationError(f"{lr_dir} holds x{manifest['scale']} LR images, not x{scale}")
    if setting is not None and manifest["setting"] != setting:
        raise EvaluationError(f"{lr_dir} holds setting {manifest['setting']!r}, not {setting!r}")
    if not manifest["images"]:
        raise EvaluationError(f"{lr_dir}: the manifest lists no images")
    hr_cache: dict[str, np.ndarray] = {}
    for entry in manifest["images"]:
        hr_path = Path(hr_dir) / entry["hr"]
        if entry["hr"] not in hr_cache:
            hr_cache.clear()
            hr_cache[entry["hr"]] = deg.modcrop(read_rgb(hr_path), scale)
        hr = hr_cache[entry["hr"]]
        lr_path = Path(lr_dir) / entry["lr"]
        lr = read_rgb(lr_path)
        if lr.shape[0] * scale != hr.shape[0] or lr.shape[1] * scale != hr.shape[1]:
            raise EvaluationError(f"{lr_path}: {lr.shape[1]}x{lr.shape[0]} is not the x{scale} LR of {hr_path} "
                                  f"({hr.shape[1]}x{hr.shape[0]} after modcrop)")
        yield Case(entry["hr"], entry["variant"], hr, lr, entry["degradation"])


# ---------------------------------------------------------------- restoration methods

def bicubic_restore(scale: int) -> RestoreFn:
    """MATLAB-style bicubic upsampling of the LR image, rounded to uint8."""
    return lambda lr: quantize_uint8(np.clip(imresize(lr.astype(np.float64) / 255.0, scale), 0.0, 1.0))


def runner_restore(runner: Runner) -> RestoreFn:
    """Run ``runner`` (any backend: PyTorch, ONNX Runtime, TensorRT) on the whole image."""
    return lambda lr: quantize_uint8(run_image(runner, lr))


def model_restore(model: torch.nn.Module, threads: int | None = None) -> RestoreFn:
    """Run ``model`` on the whole image, on its device (a :class:`TorchRunner` with ``threads``)."""
    from gldfn_model.inference.torch_runner import TorchRunner

    return runner_restore(TorchRunner(model, threads=threads))


def load_eval_model(checkpoint: str | Path | None, scale: int, config: str = SHIPPED_CONFIG,
                    model: str | None = None) -> torch.nn.Module:
    """The model of ``checkpoint``, of the shipped model named ``model``, or the weights shipped for
    (``config``, ``scale``) when both are None."""
    from gldfn_model.network.checkpoint import load_checkpoint, shipped_weights_path
    from gldfn_model.network.registry import find_model

    if model is not None:
        if checkpoint is not None:
            raise EvaluationError("--model and --checkpoint exclude each other; pass one of them")
        checkpoint = find_model(model).checked_path()
    if checkpoint is None:
        checkpoint = shipped_weights_path(config, scale)
        if checkpoint is None:
            raise EvaluationError(f"no checkpoint given and no shipped weights for config {config!r} at x{scale}; "
                                  "pass --checkpoint PATH")
    return load_checkpoint(checkpoint, expect_scale=scale).build_model()


# ---------------------------------------------------------------- scoring

def evaluate_cases(cases: Iterator[Case], scale: int, restore: RestoreFn, convention: str = "dcls",
                   setting: str = "gaussian8", on_image: Callable[[ImageScore], None] | None = None) -> EvalResult:
    check_convention(convention)
    scores = []
    for case in cases:
        sr = restore(case.lr)
        if sr.shape != case.hr.shape:
            raise EvaluationError(f"{case.name}: the method returned {sr.shape[1]}x{sr.shape[0]}, expected "
                                  f"{case.hr.shape[1]}x{case.hr.shape[0]} (x{scale} of the LR)")
        result = score(sr, case.hr, scale, convention)
        image_score = ImageScore(case.name, case.variant, result.psnr, result.ssim, case.degradation)
        scores.append(image_score)
        if on_image is not None:
            on_image(image_score)
    if not scores:
        raise EvaluationError("nothing was evaluated")
    return EvalResult(setting, scale, convention, scores)


def evaluate(hr_dir: str | Path, setting: str, scale: int, restore: RestoreFn, convention: str = "dcls",
             seed: int = 0, noise_sigma: float = 0.0, sv_noise: str = "low", lr_dir: str | Path | None = None,
             on_image: Callable[[ImageScore], None] | None = None) -> EvalResult:
    """Degrade the HR images of ``hr_dir`` with ``setting`` (or read the LR images of ``lr_dir``, a
    ``gldfn degrade`` folder), restore each with ``restore`` and score it under ``convention``."""
    if lr_dir is not None:
        cases = folder_cases(hr_dir, lr_dir, scale, setting)
    else:
        cases = degrade_cases(hr_dir, setting, scale, seed, noise_sigma, sv_noise)
    return evaluate_cases(cases, scale, restore, convention, setting, on_image)


def compare_with_bicubic(hr_dir: str | Path, setting: str, scale: int, model: torch.nn.Module,
                         convention: str = "dcls") -> tuple[EvalResult, EvalResult]:
    """(bicubic, model) scores on the same degraded images, degraded once."""
    cases = list(degrade_cases(hr_dir, setting, scale))
    bicubic = evaluate_cases(iter(cases), scale, bicubic_restore(scale), convention, setting)
    return bicubic, evaluate_cases(iter(cases), scale, model_restore(model), convention, setting)


def make_validator(hr_dir: str | Path, scale: int, setting: str = "gaussian8", convention: str = "dcls",
                   seed: int = 0) -> Callable[[torch.nn.Module], float]:
    """For training: degrade ``hr_dir`` once, then score a model on it; returns its mean PSNR."""
    cases = list(degrade_cases(hr_dir, setting, scale, seed))

    def validate(model: torch.nn.Module) -> float:
        return evaluate_cases(iter(cases), scale, model_restore(model), convention, setting).psnr
    return validate


__all__ = ["Case", "EvalResult", "EvaluationError", "ImageScore", "ImageReadError", "RestoreFn", "bicubic_restore",
           "degrade_cases", "evaluate", "evaluate_cases", "folder_cases", "load_eval_model", "make_validator",
           "model_restore", "read_manifest", "runner_restore", "degradations_for_image", "write_degraded_folder"]
