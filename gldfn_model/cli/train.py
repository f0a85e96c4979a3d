"""``gldfn train``: a thin layer over gldfn_model.training.trainer."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer

from gldfn_model.training.trainer import TrainOptions, train


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


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_command(
        data: list[Path] = typer.Option(..., "--data", help="HR image folder(s); repeat --data for several"),
        out: Path = typer.Option(..., "--out", help="run folder: checkpoints, train_log.jsonl"),
        scale: int = typer.Option(4, help="2, 3 or 4"),
        setting: str = typer.Option("iso", help="degradation: iso (Setting 1, isotropic Gaussian), aniso (Setting 2), "
                                    "sv (Setting 3, spatially varying), mixed (one of the three per sample)"),
        noise: str | None = typer.Option(None, help="AWGN sigma in 8-bit levels for every sample: 15, or a range "
                                            "0-30 drawn per sample (default: none; sv: 0-10)"),
        config: str = typer.Option("tiny", help="named config: tiny, small or paper"),
        iters: int = typer.Option(10_000, help="iterations; the paper's lr schedule is scaled to this"),
        batch: int = typer.Option(16, help="batch size (per process under torchrun)"),
        patch: int = typer.Option(48, help="LR patch size (HR crop = patch x scale)"),
        lr: float = typer.Option(4e-4, help="initial learning rate"),
        seed: int = typer.Option(0),
        val: Path | None = typer.Option(None, help="HR folder for periodic validation PSNR (Gaussian8, dcls)"),
        val_every: int = typer.Option(1000),
        ckpt_every: int = typer.Option(200, help="iterations between last.pt checkpoints"),
        snapshot_every: int = typer.Option(1000, help="iterations between kept iter_N.pt weight snapshots"),
        skip_small: bool = typer.Option(False, "--skip-small", help="leave out images smaller than the HR crop"),
        threads: int | None = typer.Option(None, help="torch CPU threads"),
        prefetch: bool = typer.Option(True, help="make the next batch (crops, degradation) in a background thread"),
        init: Path | None = typer.Option(None, "--init", help="start from these weights, e.g. a shipped model's file "
                                         "(fine-tuning); the optimizer starts fresh"),
        resume: bool = typer.Option(False, "--resume", help="continue the run in --out from its last.pt"),
    ) -> None:
        """Train GLDFN with on-the-fly degradation; resumable, seeded, DDP under torchrun."""
        options = TrainOptions(data=[str(d) for d in data], out=str(out), scale=scale, setting=setting,
                               noise=parse_noise_range(noise), config=config,
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
