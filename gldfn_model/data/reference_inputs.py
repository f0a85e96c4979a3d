"""Reference inputs for checking one model against another (export verification, ``gldfn-trt compare``): a
real image (Set5's butterfly when the datasets are reachable, else a synthetic test card), seeded noise, or
the user's images, each as an ``N x 3 x H x W`` float32 batch in [0, 1]."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gldfn_model.common.errors import GldfnError
from gldfn_model.data.datasets import datasets_dir

REFERENCE_IMAGE = ("Set5", "butterfly.png")
Size = tuple[int, int]  # (height, width)


class ReferenceInputError(GldfnError, ValueError):
    """An image that cannot serve as a reference input (too small for the asked crop)."""


@dataclass(frozen=True)
class ReferenceInput:
    name: str
    lr: np.ndarray  # N x 3 x H x W float32 in [0, 1]


def _centre_crop(pixels: np.ndarray, size: Size) -> np.ndarray:
    height, width = min(size[0], pixels.shape[0]), min(size[1], pixels.shape[1])
    top, left = (pixels.shape[0] - height) // 2, (pixels.shape[1] - width) // 2
    return pixels[top : top + height, left : left + width]


def _as_batch(hwc: np.ndarray, batch: int) -> np.ndarray:
    chw = hwc.transpose(2, 0, 1)
    return np.ascontiguousarray(np.broadcast_to(chw, (batch, *chw.shape)), dtype=np.float32)


def load_lr_image(path: Path, scale: int, batch: int = 1, crop: Size | None = None) -> np.ndarray:
    """The bicubic x1/scale downscale of an RGB image (its centre ``crop`` = (height, width) if given), as
    batch x 3 x H x W float32 in [0, 1]."""
    from PIL import Image

    from gldfn_model.data.image_io import read_rgb

    rgb = Image.fromarray(read_rgb(path))  # ImageReadError naming the file when it cannot be read
    lr = rgb.resize((max(1, rgb.width // scale), max(1, rgb.height // scale)), Image.Resampling.BICUBIC)
    array = np.asarray(lr, dtype=np.float32) / 255.0
    if crop is not None:
        if array.shape[0] < crop[0] or array.shape[1] < crop[1]:
            raise ReferenceInputError(f"{path} is too small for a {crop[0]}x{crop[1]} crop at scale x{scale}; "
                                      "pick a larger image")
        array = _centre_crop(array, crop)
    return _as_batch(array, batch)


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


def image_inputs(paths: list[Path], size: Size | None, batch: int = 1) -> list[ReferenceInput]:
    """Each image as it is (no downscale), centre-cropped to ``size`` (None: whole), repeated to ``batch``."""
    from gldfn_model.data.image_io import read_rgb

    inputs = []
    for path in paths:
        pixels = read_rgb(path).astype(np.float32) / 255.0
        if size is not None:
            pixels = _centre_crop(pixels, size)
        inputs.append(ReferenceInput(path.name, _as_batch(pixels, batch)))
    return inputs
