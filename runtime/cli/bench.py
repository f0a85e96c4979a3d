"""``gldfn bench``: latency of GLDFN and its Table IV peers with PyTorch (CPU or CUDA) and/or ONNX Runtime, a thin
layer over gldfn_runtime.bench.contestants and gldfn_runtime.bench.harness."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import typer

from gldfn_model.cli.model_scale import scale_of_model
from gldfn_model.cli.models import ShippedModelName
from gldfn_model.cli.options import (
    AUTO,
    ITERS,
    JSON,
    MARKDOWN,
    OVERWRITE,
    PLOT,
    PROVIDERS,
    RANDOM_WEIGHTS,
    SIZES,
    THREADS,
    WARMUP,
    ConfigName,
    bench_counts,
    checkpoint_option,
    config_option,
    implied_choice,
    onnx_option,
    parse_sizes,
    scale_option,
    value_of,
)
from gldfn_model.common.atomic import check_output
from gldfn_model.common.temps import work_folder

BACKENDS = ("torch", "onnxruntime")
PRECISIONS = ("fp32", "tf32", "fp16")


def parse_device(text: str) -> tuple[str, int]:
    """``-g/--device``: cpu, or a CUDA GPU by its index N (also written cuda, cuda:N) -> (device, GPU index)."""
    word = text.strip().lower()
    if word == "cpu":
        return "cpu", 0
    found = re.fullmatch(r"(?:cuda:?)?(\d*)", word)
    if found is None or (not found.group(1) and word != "cuda"):
        raise typer.BadParameter(f"{text!r}: cpu, or the index N of a CUDA GPU (also written cuda, cuda:N)",
                                 param_hint="'-g' / '--device'")
    return "cuda", int(found.group(1) or 0)


def parse_backends(text: str) -> list[str]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in names if b not in BACKENDS]
    if any(b in ("tensorrt", "trt", "tensorrt_rtx") for b in unknown):
        raise typer.BadParameter("TensorRT engines are benchmarked with `gldfn-trt bench ENGINE`; "
                                 "here: torch, onnxruntime")
    if not names or unknown:
        raise typer.BadParameter(f"{text!r}: choose from {', '.join(BACKENDS)} (comma-separated for several)")
    return list(dict.fromkeys(names))


def choose_backends(text: str, onnx: Path | None) -> list[str]:
    """``--backend``: auto is onnxruntime for an --onnx file, else torch; a single backend must agree with
    --onnx; both backends time the --onnx file and the PyTorch weights side by side."""
    backends = [AUTO] if text.strip() == AUTO else parse_backends(text)
    if len(backends) > 1:
        return backends
    implied = [(f"--onnx {onnx}", "onnxruntime")] if onnx is not None else []
    return [implied_choice("--backend", backends[0], implied, "torch")]


def split_shipped_models(text: str) -> tuple[list[str], list[str]]:
    """The --model list (networks and shipped models, in the order given) and the shipped models' names among it,
    which must share one scale: each is GLDFN with its weights, timed interleaved with the rest."""
    from gldfn_model.common.suggest import did_you_mean
    from gldfn_model.network.registry import shipped_models
    from gldfn_model.peers import MODEL_NAMES

    known = {m.name: m for m in shipped_models()}
    given = [n.strip() for n in text.split(",") if n.strip()]
    names = list(dict.fromkeys(n if n in known else n.lower() for n in given))  # network names in any case
    if not names:
        raise typer.BadParameter(f"{text!r} names no model: choose from {', '.join(MODEL_NAMES)} or a shipped model "
                                 f"({', '.join(sorted(known))}), comma-separated for several")
    for name in names:
        if name not in known and name not in MODEL_NAMES:
            raise typer.BadParameter(f"{name!r} is neither a network ({', '.join(MODEL_NAMES)}) nor a shipped model "
                                     f"({', '.join(sorted(known))}){did_you_mean(name, [*MODEL_NAMES, *known])}")
    shipped = [n for n in names if n in known]
    scales = {known[n].scale for n in shipped}
    if len(scales) > 1:
        listed = ", ".join(f"{n} (x{known[n].scale})" for n in shipped)
        raise typer.BadParameter(f"{listed}: time shipped models of one scale together")
    return names, shipped


def measured(count: int) -> str:
    """What a round measures: one contestant, or several interleaved."""
    return "1 contestant" if count == 1 else f"{count} contestants interleaved"


def parse_precisions(text: str) -> list[str]:
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    if not names or any(p not in PRECISIONS for p in names):
        raise typer.BadParameter(f"{text!r}: choose from {', '.join(PRECISIONS)} (comma-separated for several)")
    return list(dict.fromkeys(names))


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench_command(
        model: str = typer.Option("gldfn", help="networks, comma-separated: gldfn, dcls, danv1, danv2 (interleaved); "
                                  f"shipped models ({', '.join(ShippedModelName.__members__)}) time GLDFN with their "
                                  "weights"),
        backend: str = typer.Option(AUTO, "--backend", help="torch, onnxruntime, or both: torch,onnxruntime; auto: "
                                    "onnxruntime for an --onnx file, else torch"),
        device: str = typer.Option("cpu", "-g", "--device", help="cpu, or the CUDA GPU torch runs on: its index N "
                                   "(also cuda, cuda:N; CUDA-event timing)"),
        precision: str = typer.Option("fp32", help="torch on cuda: fp32 (TF32 off), tf32 (PyTorch's default for CUDA "
                                      "convolutions), fp16, or several: fp32,fp16"),
        sizes: str = SIZES,
        iters: int | None = ITERS,
        warmup: int | None = WARMUP,
        batch: int = typer.Option(1, help="images per call"),
        scale: int | None = scale_option("upscaling factor (default: the --onnx file's, --checkpoint's or shipped "
                                         "model's, else 4; the peers: 4)"),
        config: ConfigName | None = config_option(
            "GLDFN's named config (default: the checkpoint's; else tiny alone, paper beside peers)"),
        checkpoint: Path | None = checkpoint_option(),
        random_weights: bool = RANDOM_WEIGHTS,
        onnx: Path | None = onnx_option("an exported GLDFN file to time with onnxruntime (default: export each); "
                                        "sets the backend and the scale"),
        providers: str = PROVIDERS,
        threads: int | None = THREADS,
        as_json: bool = JSON,
        markdown: bool = MARKDOWN,
        plot: Path | None = PLOT,
        overwrite: bool = OVERWRITE,
    ) -> None:
        """Latency (mean, median, p90, p99), images/s, output megapixels/s, MACs, achieved TFLOP/s and ms per GMAC,
        beside the paper's Table IV; several networks are timed interleaved. For TensorRT engines use
        `gldfn-trt bench`."""
        from gldfn_runtime.bench.contestants import BenchRequest, build_contestants
        from gldfn_runtime.bench.harness import (
            check_sizes_fit_memory,
            claim_check,
            format_markdown,
            format_text,
            measure_interleaved,
            plot_latency,
            plot_latency_vs_macs,
            table_iv_rows,
        )

        if as_json and markdown:
            raise typer.BadParameter("--json and --markdown exclude each other; pass one")
        if plot is not None:
            from gldfn_model.common.optional import import_pyplot

            # Before measuring: a missing matplotlib or a file in the way should not cost a whole benchmark.
            check_output(plot, overwrite=overwrite, option="--plot", inputs={"--checkpoint": checkpoint, "--onnx": onnx})
            import_pyplot()
        models, shipped = split_shipped_models(model)
        backends = choose_backends(backend, onnx)
        scale = scale_of_model(scale, model=shipped[0] if shipped else None, checkpoint=checkpoint, onnx=onnx)
        where, gpu = parse_device(device)
        request = BenchRequest(
            models=tuple(models), backends=tuple(backends), device=where, gpu=gpu,
            precisions=tuple(parse_precisions(precision)), scale=scale, gldfn_config=value_of(config),
            checkpoint=checkpoint, random_weights=random_weights, onnx=onnx, providers=providers, threads=threads,
            shipped_models=tuple(shipped),
        )
        lr_sizes = parse_sizes(sizes)
        check_sizes_fit_memory(lr_sizes, batch, scale)
        on_gpu = where == "cuda" or ("onnxruntime" in backends and "cuda" in providers.lower())
        iters, warmup = bench_counts(iters, warmup, on_gpu)
        start = time.perf_counter()
        say = lambda message: typer.echo(message, err=True)  # noqa: E731
        with work_folder("bench") as folder:
            setup = build_contestants(request, folder, log=say)
            for note in setup.notes:
                say(f"note: {note}")
            per_size = []
            for size in lr_sizes:
                say(f"measuring {measured(len(setup.contestants))} at {size[0]}x{size[1]} "
                    f"({warmup} warm-up + {iters} timed rounds)...")
                per_size.append(
                    measure_interleaved(setup.contestants, size, iters=iters, warmup=warmup, batch=batch))
        results = [by_size[i] for i in range(len(setup.contestants)) for by_size in per_size]
        wall_s = time.perf_counter() - start
        say(f"wall time {wall_s:.0f} s")
        config_name = setup.gldfn_config or "model"
        if plot is not None:
            if len(models) > 1:
                plot_latency_vs_macs(results, plot, title=f"Table IV networks x{scale}, batch {batch}", overwrite=overwrite)
            else:
                plot_latency(results, plot, title=f"GLDFN {config_name} x{scale}, batch {batch}", overwrite=overwrite)
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
