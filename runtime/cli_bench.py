"""``gldfn bench``: latency of GLDFN with PyTorch and/or ONNX Runtime, a thin layer over gldfn_runtime.benchmark."""
from __future__ import annotations

import json
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from gldfn_model.cli.info import parse_size
from gldfn_model.cli.models import command_scale, model_option

if TYPE_CHECKING:
    from gldfn_model.network.config import GLDFNConfig
    from gldfn_runtime.runners import OnnxRuntimeRunner, Runner

BACKENDS = ("torch", "onnxruntime")


def parse_backends(text: str) -> list[str]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in names if b not in BACKENDS]
    if any(b in ("tensorrt", "trt", "tensorrt_rtx") for b in unknown):
        raise typer.BadParameter("TensorRT engines are benchmarked with `gldfn-trt bench ENGINE`; here: torch, onnxruntime")
    if not names or unknown:
        raise typer.BadParameter(f"{text!r}: choose from {', '.join(BACKENDS)} (comma-separated for several)")
    return list(dict.fromkeys(names))


def _onnx_config(runner: "OnnxRuntimeRunner") -> "GLDFNConfig | None":
    """The named config recorded in an exported file's metadata (for the MAC count), else None."""
    from gldfn_model.network.config import NAMED_CONFIGS, get_config

    return get_config(runner.config_name, runner.scale) if runner.config_name in NAMED_CONFIGS else None


def _runners(
    backends: list[str], stack: ExitStack, scale: int, checkpoint: Optional[Path], onnx: Optional[Path],
    config: Optional[str], random_weights: bool, providers: str, threads: Optional[int], model: Optional[str] = None,
) -> tuple[list[tuple["Runner", "GLDFNConfig | None"]], str]:
    """(runner, network config for the MAC count) per backend, and the config's name. ONNX Runtime without
    --onnx runs a temporary export of the same network the torch backend uses."""
    from gldfn_export.model_source import resolve_model
    from gldfn_runtime.runners import OnnxRuntimeRunner, TorchRunner

    source = None
    if "torch" in backends or onnx is None:
        default_config = "tiny" if checkpoint is None and model is None else None
        source = resolve_model(scale, config or default_config, checkpoint, random_weights, model=model)
    runners, config_name = [], source.config_name if source is not None else None
    for backend in backends:
        if backend == "torch":
            runners.append((TorchRunner(source.model, threads=threads), source.model.config))
            continue
        path = onnx
        if path is None:
            from gldfn_export.exporter import export_gldfn

            path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gldfn-bench-"))) / "model.onnx"
            typer.echo(f"exporting {source.config_name} to a temporary ONNX file...", err=True)
            export_gldfn(source.model, path, verify=False, config_name=source.config_name)
        runner = OnnxRuntimeRunner(path, providers=providers, threads=threads)
        if runner.scale != scale:
            raise typer.BadParameter(f"{path} upscales x{runner.scale}, not x{scale}; pass --scale {runner.scale}")
        runners.append((runner, source.model.config if onnx is None else _onnx_config(runner)))
        config_name = config_name or runner.config_name
    return runners, config_name or "model"


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench_command(
        backend: str = typer.Option("torch", help="torch, onnxruntime, or both: torch,onnxruntime"),
        sizes: str = typer.Option("180x270", help="LR sizes HEIGHTxWIDTH, comma-separated (Table IV: 180x270)"),
        iters: int = typer.Option(20, help="timed iterations per size"),
        warmup: int = typer.Option(3, help="untimed iterations first"),
        batch: int = typer.Option(1, help="images per call"),
        scale: Optional[int] = typer.Option(None, help="upscaling factor: 2, 3 or 4 (default: the --model's, else 4)"),
        config: Optional[str] = typer.Option(None, help="named config: tiny (default), small or paper"),
        checkpoint: Optional[Path] = typer.Option(None, help="a gldfn checkpoint (default: the shipped weights)"),
        model: Optional[str] = model_option(),
        random_weights: bool = typer.Option(False, "--random-weights", help="untrained weights: latency does not depend on them"),
        onnx: Optional[Path] = typer.Option(None, help="onnxruntime: an exported file (default: export the torch model)"),
        providers: str = typer.Option("cpu", help="onnxruntime: execution providers, e.g. cpu or cuda"),
        threads: Optional[int] = typer.Option(None, help="CPU threads for torch / ONNX Runtime"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
        markdown: bool = typer.Option(False, "--markdown", help="print Markdown tables"),
        plot: Optional[Path] = typer.Option(None, help="write a PNG of latency against image size per backend"),
    ) -> None:
        """Latency (mean, median, p90, p99), images/s, output megapixels/s, MACs and achieved TFLOP/s per size,
        beside the paper's Table IV. For TensorRT engines use `gldfn-trt bench`."""
        from gldfn_model.network.checkpoint import CheckpointError
        from gldfn_runtime.benchmark import BenchmarkError, format_markdown, format_text, measure_latency, plot_latency
        from gldfn_runtime.runners import RunnerError

        if as_json and markdown:
            raise typer.BadParameter("--json and --markdown exclude each other; pass one")
        backends = parse_backends(backend)
        scale = command_scale(model, scale)
        lr_sizes = [parse_size(s) for s in sizes.split(",") if s.strip()]
        results = []
        with ExitStack() as stack:
            try:
                runners, config_name = _runners(backends, stack, scale, checkpoint, onnx, config, random_weights,
                                                providers, threads, model)
                for runner, model_config in runners:
                    for size in lr_sizes:
                        typer.echo(f"measuring {runner.name} at {size[0]}x{size[1]} ({warmup} warm-up + {iters} timed)...", err=True)
                        results.append(measure_latency(runner, size, iters=iters, warmup=warmup, batch=batch, config=model_config))
            except (CheckpointError, RunnerError, BenchmarkError, ValueError) as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(1) from None
        if plot is not None:
            plot_latency(results, plot, title=f"GLDFN {config_name} x{scale}, batch {batch}")
            typer.echo(f"plot written to {plot}", err=True)
        if as_json:
            from gldfn_runtime.benchmark import table_iv_rows

            typer.echo(json.dumps({"config": config_name, "results": [r.to_dict() for r in results], "table_iv": table_iv_rows(results, config_name)}, indent=2))
        elif markdown:
            typer.echo(format_markdown(results, config_name))
        else:
            typer.echo(format_text(results, config_name))
