"""Calibration inputs: random LR patches made from HR images by the project's degradation pipeline (or cut
from LR images as they are), and the ONNX Runtime data reader that feeds them."""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gldfn_calibration.errors import CalibrationError
from gldfn_model.common.optional import import_onnxruntime
from gldfn_model.data.degradation import (
    Degradation,
    degrade_image,
    gaussian8_degradations,
    image_rng,
    modcrop,
    sample_degradation,
)
from gldfn_model.data.image_io import ImageReadError, list_images, read_rgb
from gldfn_model.data.setting_names import SETTINGS

quantization = import_onnxruntime("onnxruntime.quantization")

HELD_OUT = 5  # at most this many calibration images are kept for the evaluation when none is given
# Big enough that the 21x21 (31x31 for aniso x4) blur kernels see image content, not just reflected border.
MIN_PATCH = 16


@dataclass(frozen=True)
class CalibrationSet:
    """LR patches, ``samples x 3 x patch x patch`` float32 in [0, 1], and where they came from."""

    patches: np.ndarray
    images_used: list[str]
    images_too_small: list[str]
    description: str


def _degradation(setting: str, scale: int, index: int, rng: np.random.Generator, hr_shape: tuple[int, int]) -> Degradation:
    if setting == "gaussian8":
        kernels = gaussian8_degradations(scale)
        return kernels[index % len(kernels)]
    return sample_degradation(setting, scale, rng, hr_shape)


def calibration_images(images_dir: str | os.PathLike[str]) -> list[Path]:
    """The image files of ``--images``; CalibrationError for a missing folder or one without images."""
    try:
        return list_images(images_dir)
    except ImageReadError as exc:
        raise CalibrationError(f"--images: {exc}") from exc


def held_out_count(images: int) -> int:
    """How many of ``images`` calibration images are kept for the evaluation when no evaluation set is given: a
    fifth, at least 1 and at most HELD_OUT (Set5's size: enough for a figure, few enough to stay quick)."""
    return max(1, min(HELD_OUT, images // 5))


def hold_out(files: Sequence[Path], seed: int = 0) -> tuple[list[Path], list[Path]]:
    """(calibration files, held-out files): :func:`held_out_count` files drawn with ``seed``, the rest for
    calibrating, both in name order. CalibrationError when there are fewer than two files."""
    if len(files) < 2:
        raise CalibrationError(f"{len(files)} image in --images: holding one out for the evaluation needs at least two; "
                               "pass --eval-images DIR (HR images) or --no-eval")
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(len(files), held_out_count(len(files)), replace=False).tolist())
    return ([f for i, f in enumerate(files) if i not in chosen], [f for i, f in enumerate(files) if i in chosen])


def make_calibration_set(
    images_dir: str | os.PathLike[str], scale: int, *, samples: int = 64, patch: int = 128,
    setting: str = "gaussian8", lr_images: bool = False, seed: int = 0, files: Sequence[Path] | None = None,
    note: str = "",
) -> CalibrationSet:
    """``samples`` random patches of ``patch`` x ``patch`` LR pixels, the images taken in turn.

    HR images (default): a random ``patch * scale`` crop (aligned to the scale) is degraded with ``setting``;
    with ``gaussian8`` the 8 test kernels are used in turn, the other settings draw random degradations.
    LR images (``lr_images``): a random ``patch`` crop, unchanged. Images smaller than the crop are skipped;
    when none is large enough, or the folder has no images, a CalibrationError says so. ``files``: only these
    images of the folder (default: all of them); ``note`` is added to the description.
    """
    if setting not in SETTINGS:
        raise CalibrationError(f"--setting {setting!r} is not one of {', '.join(SETTINGS)}")
    if samples < 1:
        raise CalibrationError(f"--samples must be >= 1, got {samples}")
    if patch < MIN_PATCH:
        raise CalibrationError(f"--patch must be >= {MIN_PATCH} LR pixels, got {patch}")
    files = list(files) if files is not None else calibration_images(images_dir)
    crop = patch if lr_images else patch * scale
    step = 1 if lr_images else scale  # HR crops start on the LR grid, as modcrop does
    images, too_small = [], []
    for path in files:
        try:
            image = read_rgb(path)
        except ImageReadError as exc:
            raise CalibrationError(f"--images: {exc}") from exc
        image = image if lr_images else modcrop(image, scale)
        (images if min(image.shape[:2]) >= crop else too_small).append((path.name, image))
    if not images:
        largest = max(min(image.shape[:2]) for _, image in too_small)
        kind = "LR" if lr_images else f"HR (x{scale} of the {patch}-pixel LR patch)"
        raise CalibrationError(
            f"--images {images_dir}: no image is at least {crop}x{crop} {kind}; the largest has a shorter side of "
            f"{largest} pixels. Use a smaller --patch (at most {largest if lr_images else largest // scale}) or larger images"
        )
    patches = np.empty((samples, 3, patch, patch), dtype=np.float32)
    for index in range(samples):
        name, image = images[index % len(images)]
        rng = image_rng(seed, name, index)
        top, left = (int(rng.integers(0, (size - crop) // step + 1)) * step for size in image.shape[:2])
        region = image[top : top + crop, left : left + crop]
        if not lr_images:
            region = degrade_image(region, _degradation(setting, scale, index // len(images), rng, region.shape[:2]), scale, rng=rng)
        patches[index] = region.transpose(2, 0, 1).astype(np.float32) / 255.0
    how = "cut from LR images as they are" if lr_images else f"degraded with {setting} x{scale}"
    return CalibrationSet(
        patches, [name for name, _ in images], [name for name, _ in too_small],
        f"{samples} random {patch}x{patch} LR patches, {how}, from {len(images)} of the {len(files)} images in "
        f"{images_dir}{note} (seed {seed})",
    )


class PatchReader(quantization.CalibrationDataReader):
    """Feeds ``patches`` to the model's input in batches of the size fixed in the export (the last batch is
    filled up with the first patches). Any iterable of feed dicts would do for ONNX Runtime; this one can be
    rewound, which the calibrators need when they read the data more than once."""

    def __init__(self, patches: np.ndarray, input_name: str, batch: int = 1) -> None:
        self.patches, self.input_name, self.batch = patches, input_name, batch
        self._iterator: Iterator[dict[str, np.ndarray]] = iter(self.feeds())

    def feeds(self) -> Iterable[dict[str, np.ndarray]]:
        count = len(self.patches)
        for start in range(0, count, self.batch):
            indices = [(start + i) % count for i in range(self.batch)]
            yield {self.input_name: np.ascontiguousarray(self.patches[indices])}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iterator, None)

    def rewind(self) -> None:
        self._iterator = iter(self.feeds())

    def __len__(self) -> int:
        return -(-len(self.patches) // self.batch)
