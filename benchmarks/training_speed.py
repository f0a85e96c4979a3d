"""Training speed: iterations per second of `gldfn train`'s own loop (crop sampling, degradation, forward,
backward, Adam step) on the training images, in a throw-away run folder.

    python benchmarks/training_speed.py [--setting iso] [--scale 4] [--config tiny] [--batch 16] [--patch 32]
        [--threads 1] [--iters 200] [--warmup 20] [--window 30] [--no-prefetch] [--data DIR ...] [--json]

Prints the rate of every window of --window iterations after the first --warmup, and their median. On a
shared machine compare two variants by running them alternately, several times each.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from gldfn_model.data.datasets import DATASETS_HELP, DatasetError, datasets_dir, image_set
from gldfn_model.training.trainer import TrainOptions, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", default=None, help="HR folder(s) (default: T91 and BSD200 of "
                        "--datasets)")
    parser.add_argument("--datasets", type=Path, default=datasets_dir(), help=DATASETS_HELP)
    parser.add_argument("--setting", default="iso")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--window", type=int, default=30)
    parser.add_argument("--no-prefetch", action="store_true", help="make each batch in line, not in a thread")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    try:
        data = args.data or [str(image_set(name, args.datasets)) for name in ("T91", "BSD200")]
    except DatasetError as error:
        parser.error(f"{error}; or pass --data DIR (HR training images)")
    torch.set_num_threads(args.threads)
    stamps: list[float] = []
    extra = {"prefetch": False} if args.no_prefetch else {}  # only named when asked: older trainers lack the option
    with tempfile.TemporaryDirectory(prefix="gldfn-train-speed-") as out:
        options = TrainOptions(data=data, out=out, scale=args.scale, setting=args.setting, config=args.config,
                               iters=args.iters, batch=args.batch, patch=args.patch, threads=args.threads,
                               skip_small=True, ckpt_every=10**9, log_every=10**9, snapshot_every=10**9, **extra)
        train(options, progress=lambda record: stamps.append(time.perf_counter()))
    timed = stamps[args.warmup :]
    rates = [args.window / (timed[i + args.window] - timed[i]) for i in range(0, len(timed) - args.window, args.window)]
    result: dict[str, Any] = {"setting": args.setting, "scale": args.scale, "config": args.config, "batch": args.batch,
                              "patch": args.patch, "threads": args.threads, "prefetch": not args.no_prefetch,
                              "window_it_per_s": rates, "median_it_per_s": statistics.median(rates) if rates else None}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.config} x{args.scale} {args.setting}, batch {args.batch}, patch {args.patch}, {args.threads} "
          f"thread(s){', no prefetch' if args.no_prefetch else ''}: {' '.join(f'{r:.3f}' for r in rates)} it/s per "
          f"{args.window}-iteration window; median {result['median_it_per_s']:.3f} it/s")


if __name__ == "__main__":
    main()
