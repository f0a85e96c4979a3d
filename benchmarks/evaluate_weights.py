"""The model card's evaluation table: bicubic vs a GLDFN checkpoint on Set5, Set14 and BSD100, Gaussian8,
dcls convention, with the number of test images on which the model does not beat bicubic.

    python benchmarks/evaluate_weights.py [--checkpoint PATH] [--scale 4] [--datasets DIR]

The image sets are not shipped: docs/datasets.md says where to get them and how to lay them out.
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import torch

from gldfn_model.data.datasets import DATASETS_HELP, DatasetError, datasets_dir, image_set
from gldfn_model.evaluation.evaluate import compare_with_bicubic, load_eval_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped weights")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--datasets", type=Path, default=datasets_dir(), help=DATASETS_HELP)
    parser.add_argument("--sets", default="Set5,Set14,BSD100")
    parser.add_argument("--convention", default="dcls")
    args = parser.parse_args()
    try:
        sets = {name: image_set(name, args.datasets) for name in args.sets.split(",")}
    except DatasetError as error:
        parser.error(str(error))
    torch.set_num_threads(1)
    model = load_eval_model(args.checkpoint, args.scale)
    print("| set | LR images | bicubic PSNR / SSIM | GLDFN PSNR / SSIM | LR images not better than bicubic | HR images not better (mean over 8 kernels) |")
    print("|---|---|---|---|---|---|")
    for name, folder in sets.items():
        started = time.time()
        bicubic, ours = compare_with_bicubic(folder, "gaussian8", args.scale, model, args.convention)
        worse_lr = sum(o.psnr <= b.psnr for o, b in zip(ours.per_image, bicubic.per_image))
        per_hr: dict[str, list[float]] = defaultdict(list)
        for o, b in zip(ours.per_image, bicubic.per_image):
            per_hr[o.name].append(o.psnr - b.psnr)
        worse_hr = sum(sum(d) / len(d) <= 0 for d in per_hr.values())
        print(f"| {name} | {len(ours.per_image)} | {bicubic.psnr:.2f} / {bicubic.ssim:.4f} | {ours.psnr:.2f} / {ours.ssim:.4f} | "
              f"{worse_lr} | {worse_hr} of {len(per_hr)} |  <!-- {time.time() - started:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
