"""``gldfn bench``: latency of GLDFN and its Table IV peers with PyTorch (CPU or CUDA) and/or ONNX Runtime, a thin
layer over gldfn_runtime.contestants and gldfn_runtime.benchmark."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import typer

from gldfn_model.cli.models import command_scale
from gldfn_model.common.sizes import parse_size

BACKENDS = ("torch", "onnxruntime")
PRECISIONS = ("fp32", "fp16")


def parse_backends(text: str) -> list[str]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in names if b not in BACKENDS]
    if any(b in ("tensorrt", "trt", "tensorrt_rtx") for b in unknown):
        raise typer.BadParameter("TensorRT engines are benchmarked with `gldfn-trt bench ENGINE`; "
                                 "here: torch, onnxruntime")
    if not names or unknown:
        raise typer.BadParameter(f"{text!r}: choose from {', '.join(BACKENDS)} (comma-separated for several)")
    return list(dict.fromkeys(names))


def split_shipped_model(text: str) -> tuple[list[str], str | None]:
    """The --model list with a shipped model's name (at most one) replaced by ``gldfn``, and that name."""
    from gldfn_model.network.registry import shipped_models

    names = [n.strip() for n in text.split(",") if n.strip()]
    known = {m.name for m in shipped_models()}
    shipped = [n for n in names if n in known]
    if len(shipped) > 1:
        raise typer.BadParameter(f"{', '.join(shipped)}: time one shipped model at a time")
    return [("gldfn" if n in known else n) for n in names], (shipped[0] if shipped else None)


def parse_precisions(text: str) -> list[str]:
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    if not names or any(p not in PRECISIONS for p in names):
        raise typer.BadParameter(f"{text!r}: choose from {', '.join(PRECISIONS)} (comma-separated for both)")
    return list(dict.fromkeys(names))


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench_command(
        model: str = typer.Option("gldfn", help="networks, comma-separated: gldfn, dcls, danv1, danv2 (interleaved); "
                                  "a shipped model's name (`gldfn models`) times GLDFN with those weights"),
        backend: str = typer.Option("torch", help="torch, onnxruntime, or both: torch,onnxruntime"),
        device: str = typer.Option("cpu", help="torch's device: cpu, or cuda (CUDA-event timing)"),
        precision: str = typer.Option("fp32", help="torch on cuda: fp32, fp16, or both: fp32,fp16"),
        sizes: str = typer.Option("180x270", help="LR sizes HEIGHTxWIDTH, comma-separated (Table IV: 180x270)"),
        iters: int = typer.Option(20, help="timed iterations per size"),
        warmup: int = typer.Option(3, help="untimed iterations first"),
        batch: int = typer.Option(1, help="images per call"),
        scale: int | None = typer.Option(None, help="upscaling factor: 2, 3 or 4 (default: the shipped model's, else 4; the peers: 4)"),
        config: str | None = typer.Option(
            None, help="GLDFN's named config: tiny (default alone), small or paper (default beside peers)"),
        checkpoint: Path | None = typer.Option(None, help="a gldfn checkpoint (default: the shipped weights)"),
        random_weights: bool = typer.Option(
            False, "--random-weights", help="untrained weights: latency doesn't depend on them (implied beside peers)"),
        onnx: Path | None = typer.Option(None, help="onnxruntime: an exported GLDFN file (default: export each)"),
        providers: str = typer.Option("cpu", help="onnxruntime: execution providers, e.g. cpu or cuda"),
        threads: int | None = typer.Option(None, help="CPU threads for torch / ONNX Runtime"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
        markdown: bool = typer.Option(False, "--markdown", help="print Markdown tables"),
        plot: Path | None = typer.Option(
            None, help="write a PNG: latency against size (one network) or against GMACs (several)"),
    ) -> None:
        """Latency (mean, median, p90, p99), images/s, output megapixels/s, MACs, achieved TFLOP/s and ms per GMAC,
        beside the paper's Table IV; several networks are timed interleaved. For TensorRT engines use
        `gldfn-trt bench`."""
        from gldfn_model.peers import PeerError, parse_models
        from gldfn_runtime.benchmark import (
            claim_check,
            format_markdown,
            format_text,
            measure_interleaved,
            plot_latency,
            plot_latency_vs_macs,
            table_iv_rows,
        )
        from gldfn_runtime.contestants import BenchPlan, build_contestants

        if as_json and markdown:
            raise typer.BadParameter("--json and --markdown exclude each other; pass one")
        if plot is not None:
            from gldfn_model.common.optional import import_pyplot

            import_pyplot()  # before measuring: a missing matplotlib should not cost a whole benchmark
        networks, shipped = split_shipped_model(model)
        try:
            models = parse_models(",".join(networks))
        except PeerError as exc:
            raise typer.BadParameter(str(exc)) from None
        plan = BenchPlan(
            models=tuple(models), backends=tuple(parse_backends(backend)), device=device,
            precisions=tuple(parse_precisions(precision)), scale=command_scale(shipped, scale), gldfn_config=config,
            checkpoint=checkpoint, random_weights=random_weights, onnx=onnx, providers=providers, threads=threads,
            shipped_model=shipped,
        )
        lr_sizes = [parse_size(s) for s in sizes.split(",") if s.strip()]
        start = time.perf_counter()
        say = lambda message: typer.echo(message, err=True)  # noqa: E731
        with tempfile.TemporaryDirectory(prefix="gldfn-bench-") as folder:
            setup = build_contestants(plan, Path(folder), log=say)
            for note in setup.notes:
                say(f"note: {note}")
            per_size = []
            for size in lr_sizes:
                say(f"measuring {len(setup.contestants)} contestants interleaved at {size[0]}x{size[1]} "
                    f"({warmup} warm-up + {iters} timed rounds)...")
                per_size.append(
                    measure_interleaved(setup.contestants, size, iters=iters, warmup=warmup, batch=batch))
        results = [by_size[i] for i in range(len(setup.contestants)) for by_size in per_size]
        wall_s = time.perf_counter() - start
        say(f"wall time {wall_s:.0f} s")
        config_name = setup.gldfn_config or "model"
        if plot is not None:
            if len(models) > 1:
                plot_latency_vs_macs(results, plot, title=f"Table IV networks x{scale}, batch {batch}")
            else:
                plot_latency(results, plot, title=f"GLDFN {config_name} x{scale}, batch {batch}")
            say(f"plot written to {plot}")
        if as_json:
            typer.echo(json.dumps({
                "config": config_name, "models": models, "notes": setup.notes, "wall_s": round(wall_s, 1),
                "results": [r.to_dict() for r in results], "table_iv": table_iv_rows(results, config_name),
                "claim": claim_check(results),
            }, indent=2))
        elif markdown:
            typer.echo(format_markdown(results, config_name))
        else:
            typer.echo(format_text(results, config_name))
