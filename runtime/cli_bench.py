"""``gldfn bench``: latency of GLDFN with PyTorch and/or ONNX Runtime, a thin layer over gldfn_runtime.benchmark.

ONNX Runtime without ``--onnx`` runs a temporary export of the torch model. The exporter is found through the
``gldfn.exporters`` entry-point group (the exporter package registers itself there), so the runtime imports no
exporter.
"""
from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from gldfn_model.common.sizes import parse_size

if TYPE_CHECKING:
    from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner
    from gldfn_model.inference.runner import Runner
    from gldfn_model.network.config import GLDFNConfig

BACKENDS = ("torch", "onnxruntime")
EXPORTER_GROUP = "gldfn.exporters"


def parse_backends(text: str) -> list[str]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in names if b not in BACKENDS]
    if any(b in ("tensorrt", "trt", "tensorrt_rtx") for b in unknown):
        raise typer.BadParameter("TensorRT engines are benchmarked with `gldfn-trt bench ENGINE`; here: torch, onnxruntime")
    if not names or unknown:
        raise typer.BadParameter(f"{text!r}: choose from {', '.join(BACKENDS)} (comma-separated for several)")
    return list(dict.fromkeys(names))


def _onnx_config(runner: OnnxRuntimeRunner) -> GLDFNConfig | None:
    """The named config recorded in an exported file's metadata (for the MAC count), else None."""
    from gldfn_model.network.config import NAMED_CONFIGS, get_config

    return get_config(runner.config_name, runner.scale) if runner.config_name in NAMED_CONFIGS else None


def onnx_exporter() -> Callable[..., Any]:
    """The ONNX exporter registered under ``gldfn.exporters`` (gldfn-export's ``export_gldfn``)."""
    found = [entry for entry in entry_points(group=EXPORTER_GROUP) if entry.name == "onnx"]
    if not found:
        raise typer.BadParameter("--backend onnxruntime without --onnx exports the model first, but no ONNX "
                                 "exporter is installed (gldfn-export); pass --onnx FILE, or reinstall gldfn-trt")
    return found[0].load()


def _runners(
    backends: list[str], stack: ExitStack, scale: int, checkpoint: Path | None, onnx: Path | None,
    config: str | None, random_weights: bool, providers: str, threads: int | None,
) -> tuple[list[tuple[Runner, GLDFNConfig | None]], str]:
    """(runner, network config for the MAC count) per backend, and the config's name. ONNX Runtime without
    --onnx runs a temporary export of the same network the torch backend uses."""
    from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner
    from gldfn_model.inference.torch_runner import TorchRunner
    from gldfn_model.network.model_source import resolve_model

    source = None
    if "torch" in backends or onnx is None:
        source = resolve_model(scale, config or ("tiny" if checkpoint is None else None), checkpoint, random_weights)
    runners, config_name = [], source.config_name if source is not None else None
    for backend in backends:
        if backend == "torch":
            runners.append((TorchRunner(source.model, threads=threads), source.model.config))
            continue
        path = onnx
        if path is None:
            export_onnx = onnx_exporter()
            path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gldfn-bench-"))) / "model.onnx"
            typer.echo(f"exporting {source.config_name} to a temporary ONNX file...", err=True)
            export_onnx(source.model, path, verify=False, config_name=source.config_name)
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
        scale: int = typer.Option(4, help="upscaling factor: 2, 3 or 4"),
        config: str | None = typer.Option(None, help="named config: tiny (default), small or paper"),
        checkpoint: Path | None = typer.Option(None, help="a gldfn checkpoint (default: the shipped weights)"),
        random_weights: bool = typer.Option(False, "--random-weights", help="untrained weights: latency does not depend on them"),
        onnx: Path | None = typer.Option(None, help="onnxruntime: an exported file (default: export the torch model)"),
        providers: str = typer.Option("cpu", help="onnxruntime: execution providers, e.g. cpu or cuda"),
        threads: int | None = typer.Option(None, help="CPU threads for torch / ONNX Runtime"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
        markdown: bool = typer.Option(False, "--markdown", help="print Markdown tables"),
        plot: Path | None = typer.Option(None, help="write a PNG of latency against image size per backend"),
    ) -> None:
        """Latency (mean, median, p90, p99), images/s, output megapixels/s, MACs and achieved TFLOP/s per size,
        beside the paper's Table IV. For TensorRT engines use `gldfn-trt bench`."""
        from gldfn_model.common.optional import import_pyplot
        from gldfn_runtime.benchmark import format_markdown, format_text, measure_latency, plot_latency

        if as_json and markdown:
            raise typer.BadParameter("--json and --markdown exclude each other; pass one")
        if plot is not None:
            import_pyplot()  # before measuring: a missing matplotlib should not cost a whole benchmark
        backends = parse_backends(backend)
        lr_sizes = [parse_size(s) for s in sizes.split(",") if s.strip()]
        results = []
        with ExitStack() as stack:
            runners, config_name = _runners(backends, stack, scale, checkpoint, onnx, config, random_weights, providers, threads)
            for runner, model_config in runners:
                for size in lr_sizes:
                    typer.echo(f"measuring {runner.name} at {size[0]}x{size[1]} ({warmup} warm-up + {iters} timed)...", err=True)
                    results.append(measure_latency(runner, size, iters=iters, warmup=warmup, batch=batch, config=model_config))
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
