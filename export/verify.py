"""Verification of an exported file: run it in ONNX Runtime (CPU) and compare with the PyTorch model on a
random input and on a real image (Set5 when the datasets are reachable, else a synthetic test card)."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import nn

from gldfn_model.common.errors import GldfnError
from gldfn_model.common.optional import import_onnxruntime
from gldfn_model.data.datasets import datasets_dir

ort = import_onnxruntime()
REFERENCE_IMAGE = ("Set5", "butterfly.png")


class ReferenceImageError(GldfnError, ValueError):
    """The image given for the real-image check cannot be used."""


@dataclass(frozen=True)
class ReferenceInput:
    name: str
    lr: np.ndarray  # N x 3 x H x W float32 in [0, 1]


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


def load_lr_image(path: Path, scale: int, batch: int = 1, crop: tuple[int, int] | None = None) -> np.ndarray:
    """The bicubic x1/scale downscale of an RGB image (its centre ``crop`` = (height, width) if given), as
    batch x 3 x H x W float32 in [0, 1]."""
    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
            lr = rgb.resize((max(1, rgb.width // scale), max(1, rgb.height // scale)), Image.Resampling.BICUBIC)
    except (UnidentifiedImageError, OSError) as exc:
        raise ReferenceImageError(f"{path}: not a readable image ({exc})") from exc
    array = np.asarray(lr, dtype=np.float32) / 255.0
    if crop is not None:
        height, width = crop
        if array.shape[0] < height or array.shape[1] < width:
            raise ReferenceImageError(f"{path} is too small for a {height}x{width} crop at scale x{scale}; pass a larger image")
        top, left = (array.shape[0] - height) // 2, (array.shape[1] - width) // 2
        array = array[top : top + height, left : left + width]
    chw = array.transpose(2, 0, 1)
    return np.ascontiguousarray(np.broadcast_to(chw, (batch, *chw.shape)))


def synthetic_card(height: int, width: int, batch: int) -> np.ndarray:
    """A deterministic test card with gradients, hard edges, fine stripes and a flat patch."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = x / max(1, width - 1)
    g = 0.5 + 0.5 * np.sin(x * 0.9) * (y < height / 2)
    b = ((x // 4 + y // 4) % 2).astype(np.float32) * 0.8 + 0.1
    card = np.stack([r, g, b])
    card[:, height // 2 :, width // 2 :] = 0.5
    return np.ascontiguousarray(np.broadcast_to(card, (batch, *card.shape)).astype(np.float32))


def real_image_input(scale: int, height: int, width: int, batch: int, image: Path | None = None) -> ReferenceInput:
    """``image`` if given, else Set5's butterfly when the datasets are reachable, else the synthetic card."""
    if image is None:
        root = datasets_dir()
        candidate = root.joinpath(*REFERENCE_IMAGE) if root else None
        image = candidate if candidate is not None and candidate.is_file() else None
    if image is None:
        return ReferenceInput("synthetic test card (no Set5 found)", synthetic_card(height, width, batch))
    return ReferenceInput(f"image {image.name}", load_lr_image(image, scale, batch, crop=(height, width)))


def random_input(height: int, width: int, batch: int, seed: int = 0) -> ReferenceInput:
    rng = np.random.default_rng(seed)
    return ReferenceInput("random", rng.random((batch, 3, height, width), dtype=np.float32))


def run_onnx(path: str | os.PathLike[str], lr: np.ndarray) -> np.ndarray:
    """The file's output for ``lr`` in ONNX Runtime on the CPU."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: lr})
    return output


def run_torch(model: nn.Module, lr: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(lr)).float().numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images in [0, 1] (clipped to it first); inf when identical."""
    mse = float(np.mean((np.clip(a, 0, 1).astype(np.float64) - np.clip(b, 0, 1)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def compare(reference: ReferenceInput, actual: np.ndarray, expected: np.ndarray, tolerance: float | None, min_psnr_db: float | None) -> ParityCheck:
    finite = bool(np.isfinite(actual).all())
    max_abs = float(np.abs(actual.astype(np.float64) - expected).max()) if finite else math.inf
    return ParityCheck(reference.name, tuple(reference.lr.shape), max_abs, psnr(actual, expected) if finite else -math.inf, finite, tolerance, min_psnr_db)


def check_parity(
    model: nn.Module,
    onnx_path: str | os.PathLike[str],
    inputs: list[ReferenceInput],
    tolerance: float | None,
    min_psnr_db: float | None = None,
) -> list[ParityCheck]:
    """ONNX Runtime vs PyTorch (float32) on each input."""
    return [compare(i, run_onnx(onnx_path, i.lr), run_torch(model, i.lr), tolerance, min_psnr_db) for i in inputs]
