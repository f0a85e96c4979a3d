"""How much noise and compression artefacts an upscaler puts into the flat parts of real photos: the photos are
taken as they are (BSD100's JPEGs: camera noise and JPEG blocks included, no synthetic degradation) and upscaled x4
with bicubic and each shipped x4 model; in the flattest tenth of each photo (by local standard deviation of the
LR luminance) the output's high-pass energy is measured. A clean upscaler leaves flat areas flat: the figure should
be low, near bicubic's. What docs/model_card.md quotes to choose gldfn upscale's default model.

    python benchmarks/photo_noise.py [--datasets DIR] [--images 10] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from gldfn_model.data.datasets import DATASETS_HELP, DatasetError, datasets_dir, image_set
from gldfn_model.data.image_io import list_images, read_rgb
from gldfn_model.data.imresize import imresize
from gldfn_model.network.registry import shipped_models

SCALE = 4
FLAT_FRACTION = 0.10  # the flattest tenth of the LR pixels
WINDOW = 5  # LR pixels: the local standard deviation's window
HIGH_PASS_SIGMA = 1.5  # HR pixels: what the Gaussian blur removes is the high-pass


def luminance(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB image in 8-bit levels (float64)."""
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def flat_mask(lr: np.ndarray) -> np.ndarray:
    """The LR pixels whose local standard deviation is in the lowest FLAT_FRACTION, as an HR mask."""
    y = luminance(lr)
    mean = ndimage.uniform_filter(y, WINDOW)
    std = np.sqrt(np.maximum(ndimage.uniform_filter(y * y, WINDOW) - mean * mean, 0))
    low = std <= np.quantile(std, FLAT_FRACTION)
    return np.repeat(np.repeat(low, SCALE, axis=0), SCALE, axis=1)


def high_pass_rms(sr: np.ndarray, mask: np.ndarray) -> float:
    """Root mean square of the luma high-pass (8-bit levels) inside ``mask``."""
    y = luminance(sr)
    return float(np.sqrt(np.mean((y - ndimage.gaussian_filter(y, HIGH_PASS_SIGMA))[mask] ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=datasets_dir(), help=DATASETS_HELP)
    parser.add_argument("--images", type=int, default=10, help="the first N photos of BSD100")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    try:
        photos = list_images(image_set("BSD100", args.datasets))[: args.images]
    except DatasetError as error:
        parser.error(str(error))
    from gldfn_runtime.upscale.upscaler import Upscaler

    models = [m.name for m in shipped_models() if m.scale == SCALE]  # every shipped x4 model
    upscalers = {name: Upscaler.from_checkpoint(scale=SCALE, model=name, threads=args.threads) for name in models}
    figures: dict[str, list[float]] = {"bicubic": [], **{name: [] for name in models}}
    started = time.perf_counter()
    for path in photos:
        lr = read_rgb(path)
        mask = flat_mask(lr)
        bicubic = np.clip(np.rint(imresize(lr.astype(np.float64), SCALE)), 0, 255)
        figures["bicubic"].append(high_pass_rms(bicubic, mask))
        for name, upscaler in upscalers.items():
            figures[name].append(high_pass_rms(upscaler.upscale(lr), mask))
    print(f"{len(photos)} BSD100 photos as they are (JPEG), x{SCALE}; high-pass RMS (luma, 8-bit levels, Gaussian "
          f"sigma {HIGH_PASS_SIGMA}) in the flattest {FLAT_FRACTION:.0%} of each photo")
    print("| upscaler | mean | median | photos above bicubic |")
    print("|---|---|---|---|")
    for name, values in figures.items():
        above = sum(v > b for v, b in zip(values, figures["bicubic"]))
        print(f"| {name} | {statistics.mean(values):.2f} | {statistics.median(values):.2f} | {above} of {len(values)} |")
    print(f"<!-- {time.perf_counter() - started:.0f} s -->")


if __name__ == "__main__":
    main()
