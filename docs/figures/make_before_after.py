"""Make the README's before/after figure: a crop of a degraded test photo upscaled x4 by bicubic and by
``tiny-x4-robust``, beside the original.

    python docs/figures/make_before_after.py ../shared/datasets/BSD100/119082.jpg -o docs/figures/before_after.png

The photo is degraded the way the robust model was trained for (Setting 1 blur, sigma 1.8, AWGN sigma 10 in
8-bit levels, seed 0), so the figure shows what the model was made for: noisy, blurred, low-resolution photos.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from gldfn_model.data.degradation import degrade_image, image_rng, isotropic_gaussian_kernel, modcrop
from gldfn_model.evaluation.metrics import score
from gldfn_model.inference.bicubic_runner import BicubicRunner
from gldfn_runtime.upscale.upscaler import Upscaler

SCALE = 4
BLUR_SIGMA = 1.8
NOISE_SIGMA = 10.0
LABEL_HEIGHT = 22


def make_figure(photo: Path, crop: tuple[int, int, int], model: str) -> Image.Image:
    """Three panels of one square HR crop (top, left, size): bicubic | the model | original, each labelled with
    the whole image's PSNR (Y channel, dcls convention)."""
    hr = modcrop(np.asarray(Image.open(photo).convert("RGB")), SCALE)
    lr = degrade_image(hr, isotropic_gaussian_kernel(BLUR_SIGMA), SCALE, NOISE_SIGMA / 255.0,
                      rng=image_rng(0, photo.name))
    bicubic = Upscaler(BicubicRunner(SCALE)).upscale(lr)
    model_sr = Upscaler.from_checkpoint(model=model, threads=1).upscale(lr)
    top, left, size = crop
    panels = [(f"bicubic  {score(bicubic, hr, SCALE).psnr:.2f} dB", bicubic),
              (f"{model}  {score(model_sr, hr, SCALE).psnr:.2f} dB", model_sr), ("original", hr)]
    figure = Image.new("RGB", (3 * size + 2 * 4, size + LABEL_HEIGHT), "white")
    draw = ImageDraw.Draw(figure)
    for index, (label, image) in enumerate(panels):
        x = index * (size + 4)
        figure.paste(Image.fromarray(image[top:top + size, left:left + size]), (x, LABEL_HEIGHT))
        draw.text((x + 4, 4), label, fill="black")
    return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photo", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--crop", default="100,140,240", help="top,left,size of the square HR crop")
    parser.add_argument("--model", default="tiny-x4-robust")
    args = parser.parse_args()
    top, left, size = (int(value) for value in args.crop.split(","))
    figure = make_figure(args.photo, (top, left, size), args.model)
    temporary = args.output.with_name(f".{args.output.name}.tmp")
    figure.save(temporary, format="PNG", optimize=True)
    temporary.replace(args.output)
    print(f"{args.output}: {figure.width}x{figure.height}")


if __name__ == "__main__":
    main()
