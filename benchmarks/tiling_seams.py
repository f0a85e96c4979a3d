"""Tiled vs whole-image GLDFN output on Set5 (x4): the PSNR between them, and the change of each image's score
against HR (dcls convention). The tables in docs/tiling.md are this script's output. ``--large`` measures the
tile sizes the memory budget picks (128-320 LR pixels), which Set5's small LR images cannot have: BSD100 HR
images (481 x 321) are fed as the LR input, and only tiled vs whole can be compared (there is no HR for them).

    python benchmarks/tiling_seams.py [--checkpoint PATH] [--datasets DIR] [--large]   (docs/datasets.md)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from gldfn_model.data.datasets import DATASETS_HELP, DatasetError, datasets_dir, image_set
from gldfn_model.data.degradation import degrade_image, gaussian8_sigmas, isotropic_gaussian_kernel, modcrop
from gldfn_model.data.image_io import list_images, read_rgb
from gldfn_model.data.imresize import imresize
from gldfn_model.evaluation.metrics import psnr, score
from gldfn_runtime import Upscaler

TILINGS = [(32, 0), (32, 8), (32, 16), (48, 8), (48, 16), (64, 16), (64, 24)]
LARGE_TILINGS = [(64, 16), (128, 16), (192, 16), (256, 16), (320, 16)]
LARGE_IMAGES = 5
SCALE = 4


def low_resolution(hr: np.ndarray, degradation: str, sigma: float) -> np.ndarray:
    if degradation == "bicubic":
        return np.round(np.clip(imresize(hr / 255.0, 1 / SCALE), 0, 1) * 255).astype(np.uint8)
    return degrade_image(hr, isotropic_gaussian_kernel(sigma), SCALE)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


def large_tiles(upscaler: Upscaler, bsd100: Path) -> None:
    """Tiled vs whole for the tile sizes the memory budget picks, on images larger than those tiles."""
    print(f"weights: shipped; LR input: the first {LARGE_IMAGES} BSD100 HR images (481x321 / 321x481)")
    print("| tile | overlap | PSNR tiled vs whole (dB, mean / min) | max abs diff |")
    print("|---|---|---|---|")
    images = [read_rgb(path).astype(np.float32) / 255 for path in list_images(bsd100)[:LARGE_IMAGES]]
    upscaler.tile = 0
    wholes = [np.clip(upscaler.upscale(image), 0, 1) for image in images]
    for tile, overlap in LARGE_TILINGS:
        upscaler.tile, upscaler.overlap = tile, overlap
        tiled = [np.clip(upscaler.upscale(image), 0, 1) for image in images]
        values = [psnr(t, w, peak=1.0) for t, w in zip(tiled, wholes)]
        diff = max(float(np.abs(t - w).max()) for t, w in zip(tiled, wholes))
        print(f"| {tile} | {overlap} | {np.mean(values):.2f} / {np.min(values):.2f} | {diff:.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped weights")
    parser.add_argument("--datasets", type=Path, default=datasets_dir(), help=DATASETS_HELP)
    parser.add_argument("--large", action="store_true", help="large tiles on BSD100 HR images used as LR input")
    args = parser.parse_args()
    try:
        folder = image_set("BSD100" if args.large else "Set5", args.datasets)
    except DatasetError as error:
        parser.error(str(error))
    torch.set_num_threads(1)
    upscaler = Upscaler.from_checkpoint(args.checkpoint, SCALE)
    if args.large:
        large_tiles(upscaler, folder)
        return
    sigma = gaussian8_sigmas(SCALE)[3]
    print(f"weights: {args.checkpoint or 'shipped'}; Gaussian LR: sigma {sigma:.2f} (4th Gaussian8 kernel)")
    print("| LR degradation | tile | overlap | images tiled | PSNR tiled vs whole (dB, mean / min) | max abs diff | Δ PSNR vs HR (dB, mean) |")
    print("|---|---|---|---|---|---|---|")
    for degradation in ("bicubic", "gaussian"):
        rows: dict[tuple[int, int], list[tuple[float, float, float]]] = {}
        whole_scores = []
        for path in list_images(folder):
            hr = modcrop(read_rgb(path), SCALE)
            lr = low_resolution(hr, degradation, sigma).astype(np.float32) / 255
            upscaler.tile = 0  # the whole image
            whole = np.clip(upscaler.upscale(lr), 0, 1)
            base = score(to_uint8(whole), hr, SCALE).psnr
            whole_scores.append(base)
            for tile, overlap in TILINGS:
                if tile >= max(lr.shape[:2]):
                    continue  # fits in one tile: nothing to compare
                upscaler.tile, upscaler.overlap = tile, overlap
                tiled = np.clip(upscaler.upscale(lr), 0, 1)
                change = score(to_uint8(tiled), hr, SCALE).psnr - base
                difference = float(np.abs(tiled - whole).max())
                rows.setdefault((tile, overlap), []).append((psnr(tiled, whole, peak=1.0), difference, change))
        name = "bicubic" if degradation == "bicubic" else f"Gaussian σ {sigma:.2f}"
        for (tile, overlap), values in rows.items():
            p = [v[0] for v in values]
            print(f"| {name} | {tile} | {overlap} | {len(p)} | {np.mean(p):.2f} / {np.min(p):.2f} | "
                  f"{max(v[1] for v in values):.3f} | {np.mean([v[2] for v in values]):+.3f} |")
        print(f"<!-- whole-image PSNR vs HR ({name}): {np.mean(whole_scores):.2f} dB -->")


if __name__ == "__main__":
    main()
