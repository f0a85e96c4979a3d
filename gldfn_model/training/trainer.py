"""Training GLDFN on HR images degraded on the fly by the degradation module's samplers (Setting 1, 2, 3 or a
mix, optional AWGN): L1 loss, Adam with the paper's step schedule scaled to the run length, GDF temperature
annealing, periodic validation, atomic checkpoints with everything needed for an exact resume, and
DistributedDataParallel under torchrun."""
from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from gldfn_model.common.atomic import make_output_folder
from gldfn_model.common.errors import GldfnError
from gldfn_model.common.threads import set_torch_threads
from gldfn_model.data.degradation import (
    TrainingDegradation,
)
from gldfn_model.data.image_io import list_images, read_rgb
from gldfn_model.network.checkpoint import (
    load_checkpoint,
    load_latest_checkpoint,
    previous_checkpoint_path,
    save_checkpoint,
)
from gldfn_model.network.config import get_config
from gldfn_model.network.dynamic_layers import gdf_temperature, set_gdf_temperature
from gldfn_model.network.gldfn import GLDFN
from gldfn_model.training.batches import PatchSampler, TrainingBatches
from gldfn_model.training.resume_state import check_training_state

# The paper: 5e5 iterations, lr 4e-4 halved every 2e5 iterations; we keep the ratio for shorter runs.
PAPER_ITERATIONS = 500_000
PAPER_HALVING_PERIOD = 200_000


class TrainingDataError(GldfnError, ValueError):
    """The training images cannot be used as given."""


class TrainingRunError(GldfnError, ValueError):
    """The options or the run folder do not allow this run (resume without a checkpoint, an unsupported setting...)."""


@dataclass
class TrainOptions:
    data: list[str]
    out: str
    scale: int = 4
    setting: str = "iso"  # iso, aniso, sv or mixed (setting_names.TRAINING_SETTINGS)
    noise: tuple[float, float] | None = None  # AWGN sigma range in 8-bit levels; None: the setting's own
    config: str = "tiny"
    iters: int = 10_000
    batch: int = 16
    patch: int = 48
    lr: float = 4e-4
    seed: int = 0
    val: str | None = None
    val_every: int = 1000
    ckpt_every: int = 200
    log_every: int = 50
    snapshot_every: int = 1000
    anneal_fraction: float = 0.05
    skip_small: bool = False
    threads: int | None = None
    prefetch: bool = True  # make the next batch in a background thread
    init: str | None = None  # start from these weights (fine-tuning); a resume takes last.pt's instead

    def __post_init__(self) -> None:
        problems = [f"--{name.replace('_', '-')} {getattr(self, name)} (must be at least 1)"
                    for name in ("iters", "batch", "patch", "val_every", "ckpt_every", "log_every", "snapshot_every")
                    if getattr(self, name) < 1]
        if self.threads is not None and self.threads < 1:
            problems.append(f"--threads {self.threads} (must be at least 1)")
        if self.seed < 0:
            problems.append(f"--seed {self.seed} (must be 0 or more)")
        if not (math.isfinite(self.lr) and self.lr >= 0):
            problems.append(f"--lr {self.lr} (must be a finite number, 0 or more)")
        if not 0 <= self.anneal_fraction <= 1:
            problems.append(f"anneal_fraction {self.anneal_fraction} (must be in [0, 1])")
        if problems:
            raise TrainingRunError("invalid training options: " + "; ".join(problems))


def load_training_images(folders: Sequence[str], min_size: int, skip_small: bool) -> list[np.ndarray]:
    """All images of the folders as HxWx3 uint8 arrays; images smaller than ``min_size`` are an error
    (or skipped with ``skip_small``)."""
    images, small = [], []
    for folder in folders:
        paths = list_images(folder)
        for path in paths:
            image = read_rgb(path)
            if min(image.shape[:2]) < min_size:
                small.append(f"{path} ({image.shape[1]}x{image.shape[0]})")
                continue
            images.append(image)
    if small and not skip_small:
        raise TrainingDataError(
            f"{len(small)} training image(s) are smaller than the {min_size}x{min_size} HR crop: "
            + ", ".join(small[:5]) + (" ..." if len(small) > 5 else "")
            + "; use a smaller --patch or pass --skip-small to leave them out")
    if not images:
        raise TrainingDataError(f"no usable training image in {list(folders)}")
    return images


def learning_rate(iteration: int, total: int, base_lr: float) -> float:
    period = max(1, round(total * PAPER_HALVING_PERIOD / PAPER_ITERATIONS))
    return base_lr * 0.5 ** (iteration // period)


def _distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device); initializes the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    rank = dist.get_rank() if world > 1 else 0
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def _restore_rng(state: dict[str, Any], rng: np.random.Generator, noise: torch.Generator) -> None:
    rng.bit_generator.state = state["numpy"]
    noise.set_state(state["torch_noise"])
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])


def training_degradation(options: TrainOptions) -> TrainingDegradation:
    """The run's degradation; the noise range goes from the options' 8-bit levels to [0, 1] units."""
    noise = None if options.noise is None else (options.noise[0] / 255.0, options.noise[1] / 255.0)
    return TrainingDegradation(options.setting, options.scale, noise)


def _check_same_degradation(saved: dict[str, Any], options: TrainOptions, path: Path) -> None:
    """A resumed run keeps its training data: refuse another setting or noise range (runs saved before these
    options existed were Setting 1 without noise)."""
    saved_noise = saved.get("noise")
    before = (saved.get("setting", "iso"), None if saved_noise is None else tuple(saved_noise))
    now = (options.setting, None if options.noise is None else tuple(options.noise))
    if before != now:
        raise TrainingDataError(f"{path} was trained with setting {before[0]!r}, noise {before[1]}; resume it with "
                                f"the same --setting and --noise (got {now[0]!r}, {now[1]}) or start a new run in "
                                "another --out")


ValidateFn = Callable[[GLDFN], float]
# What a run writes into its folder, besides iter_N.pt snapshots.
RUN_FILES = ("last.pt", "last.prev.pt", "best.pt", "train_log.jsonl")


def _check_run_folder(options: TrainOptions, resume: bool) -> None:
    """The run folder is no folder the run reads, and holds no other run unless resumed."""
    out = Path(options.out)
    reads = [("training data", folder) for folder in options.data] + [("--val", options.val)] * bool(options.val)
    for label, folder in reads:
        if out.is_dir() and Path(folder).is_dir() and os.path.samefile(out, folder):
            raise TrainingRunError(f"-o {out} is the {label} folder {folder}; write the run into a folder of its own")
    found = [out / name for name in RUN_FILES if (out / name).exists()] + sorted(out.glob("iter_*.pt"))
    if not resume and found:
        resumable = any(path.suffix == ".pt" for path in found)
        how = "pass --resume to continue it or" if resumable else "it saved no checkpoint to resume from: remove it, or"
        raise TrainingRunError(f"{out} already holds a run ({found[0]}); {how} choose another --out")


def train(options: TrainOptions, resume: bool = False, validate: ValidateFn | None = None,
          progress: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Run (or resume) a training run; returns the path of the last checkpoint."""
    degradation = training_degradation(options)  # checks the setting and noise before anything is created
    rank, world, device = _distributed()
    set_torch_threads(options.threads)
    out = Path(options.out)
    last_path = out / "last.pt"
    _check_run_folder(options, resume)
    saved = [path for path in (last_path, previous_checkpoint_path(last_path)) if path.is_file()]
    if resume and not saved:
        raise TrainingRunError(f"--resume: no checkpoint {last_path} to resume from")

    config = get_config(options.config, options.scale)
    torch.manual_seed(options.seed)
    model = GLDFN(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=options.lr, betas=(0.9, 0.999), eps=1e-8)
    rng = np.random.default_rng(options.seed + 1000 * rank)
    noise_gen = torch.Generator().manual_seed(options.seed + 1000 * rank + 1)
    start, best_psnr = 0, -math.inf
    if options.init is not None and not resume:
        model.load_state_dict(load_checkpoint(options.init, expect_scale=options.scale,
                                              expect_config=options.config).state_dict)

    if resume:
        ckpt, passed_over = load_latest_checkpoint(last_path, options.scale, options.config,
                                                   required=("optimizer", "iteration", "rng"),
                                                   check=lambda found: check_training_state(found, model, optimizer, world,
                                                                                              TrainOptions))
        for reason in passed_over:
            print(f"warning: {reason}", flush=True)
        which = "the previous checkpoint" if passed_over else "the checkpoint"
        print(f"resuming from {which} {ckpt.path} (iteration {ckpt.extra['iteration']})", flush=True)
        model.load_state_dict(ckpt.state_dict)
        optimizer.load_state_dict(ckpt.extra["optimizer"])
        start, best_psnr = ckpt.extra["iteration"], ckpt.extra.get("best_psnr", -math.inf)
        _restore_rng(ckpt.extra["rng"][rank] if isinstance(ckpt.extra["rng"], list) else ckpt.extra["rng"], rng, noise_gen)
        _check_same_degradation(ckpt.extra.get("options", {}), options, last_path)
        saved_iters = ckpt.extra.get("options", {}).get("iters")
        if saved_iters != options.iters:
            if options.iters <= start:
                raise TrainingRunError(f"--iters {options.iters} is not beyond the {start} iterations already done")
            # Re-planning a run's length re-scales the rest of its lr schedule; the resume is then not bit-exact.
            print(f"note: the run was planned for {saved_iters} iterations; continuing to {options.iters} "
                  f"with the lr schedule re-scaled", flush=True)

    crop = options.patch * options.scale
    if crop < degradation.min_hr_size():
        least = -(-degradation.min_hr_size() // options.scale)
        raise TrainingDataError(f"the HR crop ({options.patch} x {options.scale} = {crop} pixels) is too small for the "
                                f"kernels of setting {options.setting!r}; use --patch {least} or more")
    images = load_training_images(options.data, crop, options.skip_small)
    batches = TrainingBatches(PatchSampler(images, crop, rng), degradation, options.batch, rng, noise_gen,
                              options.iters - start, options.prefetch)
    net: nn.Module = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    anneal = max(1, int(options.iters * options.anneal_fraction))
    started = time.time()
    written: set[Path] = set()

    def keep(path: Path, keep_previous: bool = False, **extra: Any) -> None:
        """Save a checkpoint; a new run replaces only files it wrote itself, never one that appeared meanwhile."""
        own = resume or path in written
        save_checkpoint(path, model, options.config, keep_previous=keep_previous and own, overwrite=own, **extra)
        written.add(path)

    def save(iteration: int) -> None:
        rng_states: Any = {**batches.generator_state(), "torch": torch.get_rng_state(), "python": random.getstate()}
        if world > 1:  # every rank takes part in the gather; rank 0 writes
            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, rng_states)
            rng_states = gathered
        if rank != 0:
            return
        keep(last_path, keep_previous=True, optimizer=optimizer.state_dict(), iteration=iteration, best_psnr=best_psnr,
             rng=rng_states, options=asdict(options), report=lambda reason: print(f"warning: {reason}", flush=True))

    if rank == 0:  # only now, after every check of the options and data: a refused run leaves no empty folder
        make_output_folder(out)
    with batches:
        for iteration in range(start, options.iters):
            model.train()
            set_gdf_temperature(model, gdf_temperature(iteration, anneal))
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(iteration, options.iters, options.lr)
            hr, lr_img = batches.next()
            hr, lr_img = hr.to(device), lr_img.to(device)
            loss = (net(lr_img) - hr).abs().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

            done = iteration + 1
            record = {"iteration": done, "loss": loss.item(), "lr": optimizer.param_groups[0]["lr"],
                      "elapsed_s": time.time() - started}
            if validate is not None and rank == 0 and (done % options.val_every == 0 or done == options.iters):
                model.eval()
                with torch.no_grad():
                    record["val_psnr"] = validate(model)
                if record["val_psnr"] > best_psnr:
                    best_psnr = record["val_psnr"]
                    keep(out / "best.pt", iteration=done, best_psnr=best_psnr)
            if rank == 0 and (done % options.log_every == 0 or "val_psnr" in record or done == options.iters):
                _append_log(out / "train_log.jsonl", record)
            if progress is not None and rank == 0:
                progress(record)
            if done % options.ckpt_every == 0 or done == options.iters:
                save(done)
            if rank == 0 and done % options.snapshot_every == 0:
                keep(out / f"iter_{done:07d}.pt", iteration=done)
    if world > 1:
        dist.barrier()
    return last_path


def _append_log(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")
