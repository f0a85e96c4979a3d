"""``gldfn train``: a thin layer over gldfn_model.training.trainer."""
from __future__ import annotations

import sys
import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from gldfn_model.cli.options import (
    SEED,
    THREADS,
    ConfigName,
    agree,
    agree_scale,
    config_option,
    input_option,
    inputs_argument,
    merge_inputs,
    output_option,
    scale_option,
    value_of,
)
from gldfn_model.common.cli_aliases import hidden_aliases
from gldfn_model.data.setting_names import TRAINING_SETTINGS

if TYPE_CHECKING:  # torch loads with the checkpoint and training code: only when a run starts, not for --help
    from gldfn_model.network.checkpoint import Checkpoint

TrainingSetting = Enum("TrainingSetting", {name: name for name in TRAINING_SETTINGS}, type=str)
DEFAULT_CONFIG = "tiny"


def parse_noise_range(text: str | None) -> tuple[float, float] | None:
    """``--noise``: ``15`` (every sample sigma 15) or ``0-30`` (sigma ~ U[0, 30]), in 8-bit levels."""
    if text is None:
        return None
    try:
        low, _, high = text.partition("-")
        bounds = (float(low), float(high or low))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give a level like 15 or a range like 0-30 (8-bit levels)") from None
    if not 0 <= bounds[0] <= bounds[1] <= 255:
        raise typer.BadParameter(f"{text!r}: levels must satisfy 0 <= low <= high <= 255")
    return bounds


class ProgressPrinter:
    """One status line (loss, lr, it/s, ETA): redrawn in place on a terminal, a line per log interval otherwise."""

    def __init__(self, total: int, every: int) -> None:
        self.total, self.every, self.tty = total, every, sys.stderr.isatty()
        self.first: tuple[int, float] | None = None

    def __call__(self, record: dict[str, Any]) -> None:
        done = record["iteration"]
        if self.first is None:
            self.first = (done - 1, time.time())
        steps = done - self.first[0]
        rate = steps / max(1e-9, time.time() - self.first[1])
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        width = 30
        bar = "#" * int(width * done / self.total) + "-" * (width - int(width * done / self.total))
        line = (f"[{bar}] {done}/{self.total} loss {record['loss']:.4f} lr {record['lr']:.2e} "
                f"{rate:.2f} it/s ETA {time.strftime('%H:%M:%S', time.gmtime(eta)) if eta != float('inf') else '?'}")
        if "val_psnr" in record:
            line += f" val {record['val_psnr']:.2f} dB"
        if self.tty:
            print("\r" + line, end="\n" if done == self.total or "val_psnr" in record else "", file=sys.stderr, flush=True)
        elif done % self.every == 0 or done == self.total or "val_psnr" in record:
            print(line, file=sys.stderr, flush=True)


def starting_checkpoint(out: Path, init: Path | None, resume: bool) -> tuple[str, Checkpoint] | None:
    """(how, checkpoint) a run starts from: on --resume the run's latest usable one, else --init's."""
    from gldfn_model.network.checkpoint import load_checkpoint, load_latest_checkpoint, previous_checkpoint_path

    if resume:
        last = out / "last.pt"
        if not any(path.is_file() for path in (last, previous_checkpoint_path(last))):
            return None  # the trainer says there is nothing to resume
        return "the run's checkpoint", load_latest_checkpoint(last)[0]
    return ("--init", load_checkpoint(init)) if init is not None else None


def scale_and_config(scale: int | None, config: str | None, start: tuple[str, Checkpoint] | None) -> tuple[int, str]:
    """The scale and config of a run: those of the checkpoint it starts from (explicit ones must match), else the
    ones given, else x4 and tiny."""
    if start is None:
        return agree_scale(scale, None, ""), config or DEFAULT_CONFIG
    how, checkpoint = start
    source = f"{how} {checkpoint.path}"
    return (agree_scale(scale, checkpoint.config.scale, source),
            agree("--config", config, checkpoint.config_name, source, DEFAULT_CONFIG))


def register(app: typer.Typer) -> None:
    @app.command("train")
    @hidden_aliases(input_options="--data", output="--out")
    def train_command(
        inputs: list[Path] | None = inputs_argument("HR image folder(s)", metavar="HR_FOLDER"),
        input_options: list[Path] | None = input_option("an HR image folder"),
        output: Path = output_option("run folder: checkpoints, train_log.jsonl"),
        scale: int | None = scale_option("upscaling factor (default: the --init or resumed checkpoint's, else 4)"),
        setting: TrainingSetting = typer.Option(
            TrainingSetting.iso, "--setting", help="degradation: iso (Setting 1, isotropic Gaussian), aniso (Setting "
            "2), sv (Setting 3, spatially varying), mixed (one of the three per sample)"),
        noise: str | None = typer.Option(None, help="AWGN sigma in 8-bit levels for every sample: 15, or a range "
                                            "0-30 drawn per sample (default: none; sv: 0-10)"),
        config: ConfigName | None = config_option("named config (default: the --init or resumed checkpoint's, else tiny)"),
        iters: int = typer.Option(10_000, help="iterations; the paper's lr schedule is scaled to this"),
        batch: int = typer.Option(16, help="batch size (per process under torchrun)"),
        patch: int = typer.Option(48, help="LR patch size (HR crop = patch x scale)"),
        lr: float = typer.Option(4e-4, help="initial learning rate"),
        seed: int = SEED,
        val: Path | None = typer.Option(None, help="HR folder for periodic validation PSNR (Gaussian8, dcls)"),
        val_every: int = typer.Option(1000),
        ckpt_every: int = typer.Option(200, help="iterations between last.pt checkpoints"),
        snapshot_every: int = typer.Option(1000, help="iterations between kept iter_N.pt weight snapshots"),
        skip_small: bool = typer.Option(False, "--skip-small", help="leave out images smaller than the HR crop"),
        threads: int | None = THREADS,
        prefetch: bool = typer.Option(True, help="make the next batch (crops, degradation) in a background thread"),
        init: Path | None = typer.Option(None, "--init", help="start from these weights, e.g. a shipped model's file "
                                         "(fine-tuning; it sets the scale and config); the optimizer starts fresh"),
        resume: bool = typer.Option(False, "--resume", help="continue the run in -o from its last.pt"),
    ) -> None:
        """Train GLDFN with on-the-fly degradation; resumable, seeded, DDP under torchrun."""
        from gldfn_model.training.trainer import TrainOptions, train

        data = merge_inputs(inputs, input_options, what="HR image folder")
        scale, config_name = scale_and_config(scale, value_of(config), starting_checkpoint(output, init, resume))
        options = TrainOptions(data=[str(d) for d in data], out=str(output), scale=scale, setting=setting.value,
                               noise=parse_noise_range(noise), config=config_name,
                               iters=iters, batch=batch, patch=patch, lr=lr, seed=seed,
                               val=str(val) if val else None, val_every=val_every, ckpt_every=ckpt_every,
                               snapshot_every=snapshot_every, skip_small=skip_small, threads=threads,
                               prefetch=prefetch, init=str(init) if init else None)
        validate = None
        if val is not None:
            from gldfn_model.evaluation.evaluate import make_validator

            validate = make_validator(val, scale)
        last = train(options, resume=resume, validate=validate, progress=ProgressPrinter(iters, 10))
        typer.echo(f"done: {last}")
