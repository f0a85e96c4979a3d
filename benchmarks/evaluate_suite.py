"""A model across the test degradations in one table (what the model cards quote): Set5 / Set14 / BSD100 x
{Gaussian8, + AWGN 15, + AWGN 30, anisotropic, spatially varying low / high noise}; bicubic under the dcls and
ikc conventions, the model under dcls, on the same degraded images.

    python benchmarks/evaluate_suite.py [--model NAME | --checkpoint PATH] [--scale 4] [--datasets DIR]
        [--sets Set5,Set14,BSD100] [--rows gaussian8,gaussian8+n15,...] [--json | --markdown]

The image sets are not shipped: docs/datasets.md says where to get them and how to lay them out.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from gldfn_model.data.datasets import DATASETS_HELP, DatasetError, datasets_dir, image_set
from gldfn_model.evaluation.evaluate import load_eval_model, model_restore
from gldfn_model.evaluation.suite import SUITE_ROWS, SUITE_SETS, SuiteResult, evaluate_suite, find_rows, format_suite
from gldfn_model.network.registry import default_model, scale_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--model", help="a shipped model (`gldfn models`); default: the Setting-1 model of --scale")
    which.add_argument("--checkpoint", help="a gldfn checkpoint")
    parser.add_argument("--scale", type=int, default=None, help="default: the model's, else 4")
    parser.add_argument("--datasets", type=Path, default=datasets_dir(), help=DATASETS_HELP)
    parser.add_argument("--sets", default=",".join(SUITE_SETS))
    parser.add_argument("--rows", default=",".join(r.name for r in SUITE_ROWS))
    parser.add_argument("--seed", type=int, default=0)
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true")
    output.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scale = scale_for(args.model, args.scale)
    rows = find_rows(args.rows.split(","))
    try:
        sets = {name: image_set(name, args.datasets) for name in args.sets.split(",")}
    except DatasetError as error:
        parser.error(str(error))
    model = load_eval_model(args.checkpoint, scale, model=args.model)
    name = args.model or args.checkpoint or getattr(default_model(scale), "name", None)
    title = f"GLDFN {name} x{scale}: mean PSNR dB / SSIM"
    def show(result: SuiteResult) -> None:
        print(f"{result.set_name} {result.row}: {result.scores}", file=sys.stderr, flush=True)

    results = evaluate_suite(sets, scale, model_restore(model), rows, args.seed, on_result=show)
    if args.json:
        print(json.dumps({"title": title, "scale": scale, "results": [r.to_dict() for r in results]}, indent=1))
    else:
        print(format_suite(results, title, markdown=args.markdown))


if __name__ == "__main__":
    main()
