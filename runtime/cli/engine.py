"""``gldfn-trt build | inspect | run | bench | compare``: thin commands over engine_build, sidecar, trt_runner,
benchmark and compare. User errors (GldfnError) are reported by the app (gldfn_model.common.cli_errors)."""
from __future__ import annotations

import json
import math
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gldfn_model.cli.options import (
    ITERS,
    JSON,
    MARKDOWN,
    PLOT,
    SIZES,
    THREADS,
    WARMUP,
    bench_counts,
    device_option,
    input_option,
    inputs_argument,
    merge_inputs,
    parse_sizes,
    scale_option,
    value_of,
)
from gldfn_model.common.atomic import check_output
from gldfn_model.common.cli_aliases import hidden_aliases
from gldfn_model.common.sizes import parse_size
from gldfn_runtime.cli.outputs import (
    CACHE_DIR,
    ENGINE_HELP,
    FORMAT,
    MAX_PIXELS,
    OUTPUT,
    OVERLAP,
    OVERWRITE,
    PLUGIN,
    PRECISION_FOR_ONNX,
    QUALITY,
    SKIP_EXISTING,
    SUFFIX,
    TILE,
    OutputFormat,
    Precision,
)
from gldfn_runtime.engine.build import DEFAULT_PROFILE
from gldfn_runtime.engine.sidecar import format_size

if TYPE_CHECKING:
    from gldfn_runtime.runners.trt_runner import TensorRTRunner


class Backend(str, Enum):
    auto = "auto"
    tensorrt = "tensorrt"
    tensorrt_rtx = "tensorrt-rtx"


MODEL_HELP = ENGINE_HELP
DEVICE = device_option()


def _open_runner(model: Path, plugin: Path | None, precision: Precision | None, cache_dir: Path | None,
                 device: int, profile: dict | None = None) -> TensorRTRunner:
    from gldfn_runtime.runners.open import open_tensorrt_runner

    return open_tensorrt_runner(model, plugin=plugin, precision=value_of(precision), cache_dir=cache_dir, device=device,
                                report=lambda line: typer.echo(line, err=True), profile=profile)


def _format_macs(macs: int | None) -> str:
    return "unknown (not a named config)" if macs is None else f"{macs / 1e9:.2f} GMACs ({2 * macs / 1e9:.2f} GFLOPs)"


def describe_engine(engine: Path) -> dict:
    from gldfn_runtime.engine.sidecar import read_sidecar, verify_engine_file

    sidecar = read_sidecar(engine)
    verify_engine_file(engine, sidecar)
    return {
        "kind": "engine", "path": str(engine), "source": "sidecar (a serialized engine cannot be deserialized without a GPU)",
        "tensorrt": sidecar.tensorrt, "precision": sidecar.precision, "target": sidecar.target,
        "inputs": sidecar.inputs, "outputs": sidecar.outputs, "profile": sidecar.profile,
        "plugin": sidecar.plugin, "plugin_layers": sidecar.plugin_layers, "layers": len(sidecar.layers),
        "macs_at_opt": sidecar.macs_at_opt, "onnx": sidecar.onnx, "built_at": sidecar.built_at,
        "build_seconds": sidecar.build_seconds, "engine_bytes": sidecar.engine_bytes,
    }


def describe_onnx(path: Path, opt: tuple[int, int]) -> dict:
    from gldfn_model.ops.contract import load_contract
    from gldfn_runtime.engine.build import read_onnx_info

    info = read_onnx_info(path)
    return {
        "kind": "onnx", "path": str(path), "precision": info.precision, "scale": info.scale, "config": info.config_name,
        "inputs": [{"name": info.input_name, "shape": info.input_shape}], "outputs": [{"name": info.output_name, "shape": info.output_shape}],
        "plugin_nodes": info.custom_nodes, "plugin_op": f"{load_contract().domain}::{load_contract().name}",
        "opt": list(opt), "macs_at_opt": info.macs_at(opt), "metadata": info.metadata,
    }


def format_description(data: dict) -> str:
    def shapes(items: list) -> str:
        return ", ".join(f"{i['name']} {i['shape']}" + (f" {i['dtype']}" if "dtype" in i else "") for i in items)

    lines = [f"{data['kind']}: {data['path']}"]
    if data["kind"] == "engine":
        profile = data["profile"]
        lines += [
            f"  read from:     {data['source']}",
            f"  built with:    {data['tensorrt']['flavour']} {data['tensorrt']['version']} at {data['built_at']} ({data['build_seconds']} s)",
            f"  target:        {', '.join(data['target'].get('compute_capabilities') or [str(data['target'].get('gpu')) + ' ' + str(data['target'].get('compute_capability'))])}",
            f"  precision:     {data['precision']}",
            f"  inputs:        {shapes(data['inputs'])}",
            f"  outputs:       {shapes(data['outputs'])}",
            f"  profile:       {profile['input']} batch {profile['batch']}: min {profile['min'][0]}x{profile['min'][1]}, "
            f"opt {profile['opt'][0]}x{profile['opt'][1]}, max {profile['max'][0]}x{profile['max'][1]}",
            f"  plugin:        {'none (function bodies)' if data['plugin'] is None else data['plugin']['path'] + (' (embedded)' if data['plugin']['embedded'] else '')}",
            f"  plugin layers: {len(data['plugin_layers'])} of {data['layers']} network layers",
            f"  MACs at opt:   {_format_macs(data['macs_at_opt'])}",
            f"  from ONNX:     {data['onnx']['path']} (SHA-256 {data['onnx']['sha256'][:12]}…)",
        ]
    else:
        lines += [
            f"  precision:     {data['precision']}, scale x{data['scale']}, config {data['config']}",
            f"  inputs:        {shapes(data['inputs'])}",
            f"  outputs:       {shapes(data['outputs'])}",
            f"  plugin nodes:  {data['plugin_nodes']} {data['plugin_op']}",
            f"  MACs at {data['opt'][0]}x{data['opt'][1]}: {_format_macs(data['macs_at_opt'])}",
        ]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command("build")
    def build_command(
        positional: Path | None = inputs_argument("an ONNX file from gldfn-export or gldfn-calibrate (INT8)", metavar="MODEL"),
        model_options: list[Path] | None = input_option("the ONNX file", several=False),
        precision: Precision | None = typer.Option(None, help="fp32, fp16 or int8 (default: the ONNX file's; fp16 of an FP32 file runs the project's FP16 pass; int8 needs a Q/DQ file from gldfn-calibrate)"),
        min_size: str = typer.Option(format_size(DEFAULT_PROFILE["min"]), "--min", help="smallest LR size HxW of the optimization profile"),
        opt_size: str = typer.Option(format_size(DEFAULT_PROFILE["opt"]), "--opt", help="LR size HxW TensorRT optimizes for"),
        max_size: str = typer.Option(format_size(DEFAULT_PROFILE["max"]), "--max", help="largest LR size HxW"),
        plugin: Path | None = typer.Option(None, help="libgldfn_trt_plugins.so (default: $GLDFN_TRT_PLUGIN_LIBRARY, else plugins/build)"),
        no_plugin: bool = typer.Option(False, "--no-plugin", help="build the ONNX function bodies instead of the plugin"),
        embed_plugin: bool = typer.Option(False, "--embed-plugin", help="serialize the plugin library into the engine"),
        compute_capability: list[str] | None = typer.Option(None, "--compute-capability", help="TensorRT-RTX targets, e.g. SM86 (repeatable; default SM80-SM121)"),
        backend: Backend = typer.Option(Backend.auto, help="tensorrt, tensorrt-rtx, or auto (the first that imports)"),
        output: Path | None = typer.Option(None, "-o", "--output", help="engine file (default: MODEL.<backend>-<precision>.engine)"),
        cache_dir: Path | None = typer.Option(None, help="engine cache (default: $GLDFN_TRT_CACHE_DIR or ~/.cache/gldfn-trt/engines)"),
        force: bool = typer.Option(False, "--force", help="rebuild even when the cache holds a matching engine"),
        overwrite: bool = OVERWRITE,
    ) -> None:
        """Build an engine (or reuse the cached one) and write it with its JSON sidecar."""
        (model,) = merge_inputs(positional, model_options, what="model", at_most=1)
        from gldfn_runtime.engine.build import BuildOptions, build_engine

        options = BuildOptions(
            precision=precision.value if precision else None, min_size=parse_size(min_size), opt_size=parse_size(opt_size),
            max_size=parse_size(max_size), plugin=plugin, use_plugin=not no_plugin, embed_plugin=embed_plugin,
            compute_capabilities=tuple(compute_capability or ()), backend=backend.value,
        )
        result = build_engine(model, output, options, force=force, cache_dir=cache_dir, overwrite=overwrite)
        sidecar = result.sidecar
        how = "reused from the cache" if result.cache_hit else f"built in {sidecar.build_seconds:.1f} s"
        targets = sidecar.target.get("compute_capabilities") or [f"{sidecar.target['gpu']} ({sidecar.target['compute_capability']})"]
        typer.echo(f"{result.engine_path}: {how} ({sidecar.engine_bytes / 1e6:.1f} MB)")
        typer.echo(f"  {sidecar.tensorrt['flavour']} {sidecar.tensorrt['version']}, {sidecar.precision}, targets {', '.join(targets)}")
        typer.echo(f"  plugin layers: {len(sidecar.plugin_layers)}; sidecar {result.engine_path}.json; cache {result.cache_path.parent}")

    @app.command("inspect")
    def inspect_command(
        positional: Path | None = inputs_argument("an engine (read from its sidecar) or an ONNX file", metavar="MODEL"),
        model_options: list[Path] | None = input_option("the engine or ONNX file", several=False),
        opt: str = typer.Option("180x270", help="ONNX: LR size HxW for the MAC count"),
        as_json: bool = JSON,
    ) -> None:
        """Inputs, outputs, profile, precision, plugin layers and MACs. Engines are described from their sidecar:
        a serialized engine cannot be deserialized without a GPU."""
        (path,) = merge_inputs(positional, model_options, what="model", at_most=1)
        data = describe_onnx(path, parse_size(opt)) if path.suffix.lower() == ".onnx" else describe_engine(path)
        typer.echo(json.dumps(data, indent=2) if as_json else format_description(data))

    @app.command("run")
    @hidden_aliases(output="--out")
    def run_command(
        model: Path = typer.Argument(..., help=MODEL_HELP, show_default=False),
        images: list[Path] | None = inputs_argument("image files and/or folders of images", metavar="IMAGE"),
        image_options: list[Path] | None = input_option("an image file or folder"),
        output: str = OUTPUT,
        scale: int | None = scale_option("upscaling factor: checked against the model's (which is what it does); "
                                         "an engine without its sidecar takes it from here"),
        suffix: str = SUFFIX,
        image_format: OutputFormat | None = FORMAT,
        overwrite: bool = OVERWRITE,
        skip_existing: bool = SKIP_EXISTING,
        tile: int | None = TILE,
        overlap: int = OVERLAP,
        plugin: Path | None = PLUGIN,
        precision: Precision | None = PRECISION_FOR_ONNX,
        cache_dir: Path | None = CACHE_DIR,
        device: int = DEVICE,
        max_pixels: int = MAX_PIXELS,
        quality: int | None = QUALITY,
    ) -> None:
        """Upscale images with an engine, or an ONNX file whose engine is built on first use and cached (needs an
        NVIDIA GPU; without one use `gldfn upscale`). An alias of `gldfn upscale IMAGE... --engine MODEL`: the same
        code. Never replaces an input or an existing file unless --overwrite."""
        from gldfn_runtime.cli.upscale import Backend as UpscaleBackend
        from gldfn_runtime.cli.upscale import upscale_images

        upscale_images(
            merge_inputs(images, image_options, what="image"), output, UpscaleBackend.tensorrt, scale, suffix=suffix,
            image_format=value_of(image_format), overwrite=overwrite, skip_existing=skip_existing,
            max_pixels=max_pixels, engine=model, plugin=plugin, tile=tile, overlap=overlap,
            precision=value_of(precision), cache_dir=cache_dir, device=device, quality=quality,
        )

    @app.command("bench")
    def bench_command(
        positional: Path | None = inputs_argument(MODEL_HELP, metavar="MODEL"),
        model_options: list[Path] | None = input_option("the engine or ONNX file", several=False),
        sizes: str = SIZES,
        iters: int | None = ITERS,
        warmup: int | None = WARMUP,
        plugin: Path | None = PLUGIN,
        as_json: bool = JSON,
        markdown: bool = MARKDOWN,
        plot: Path | None = PLOT,
        precision: Precision | None = PRECISION_FOR_ONNX,
        cache_dir: Path | None = CACHE_DIR,
        device: int = DEVICE,
        overwrite: bool = OVERWRITE,
    ) -> None:
        """CUDA-event latency of an engine, or of an ONNX file's cached engine (its profile made from --sizes), with
        the shared harness (needs a GPU; without one use `gldfn bench`): the engine alone on device-resident data
        ("tensorrt") and, interleaved, with the copies from and to pinned host memory ("tensorrt host I/O")."""
        (model,) = merge_inputs(positional, model_options, what="model", at_most=1)
        from gldfn_model.common.optional import import_pyplot
        from gldfn_model.network.complexity import count_complexity
        from gldfn_model.network.config import NAMED_CONFIGS, get_config
        from gldfn_runtime.bench.harness import (
            Contestant,
            check_size,
            format_markdown,
            format_text,
            measure_interleaved,
            plot_latency,
            table_iv_rows,
        )
        from gldfn_runtime.engine.build import profile_for_sizes
        from gldfn_runtime.runners.open import is_onnx_path
        if plot is not None:
            # Before measuring: a missing matplotlib or a file in the way should not cost a whole benchmark.
            check_output(plot, overwrite=overwrite, option="--plot", inputs={"MODEL": model})
            import_pyplot()
        lr_sizes = parse_sizes(sizes)
        iters, warmup = bench_counts(iters, warmup, on_gpu=True)
        profile = profile_for_sizes(lr_sizes, opt=lr_sizes[0]) if is_onnx_path(model) else None
        runner = _open_runner(model, plugin, precision, cache_dir, device, profile)
        config_name = runner.sidecar.onnx.get("config") if runner.sidecar is not None else None
        config = get_config(config_name, runner.scale) if config_name in NAMED_CONFIGS else None

        def work(size: tuple[int, int]) -> tuple[int, int]:
            complexity = count_complexity(config, *size)
            return complexity.params, complexity.macs

        timer = runner.cuda_event_timer()
        precision_name = runner.sidecar.precision if runner.sidecar is not None else None
        contestants = [
            Contestant("tensorrt", runner.scale, runner.device_step, timer, work if config else None,
                       device="cuda", precision=precision_name),
            Contestant("tensorrt host I/O", runner.scale, lambda lr: lambda: runner.infer(lr), timer,
                       work if config else None, device="cuda", precision=precision_name),
        ]
        results = []
        for size in lr_sizes:
            check_size(runner, size)
            typer.echo(f"measuring tensorrt at {size[0]}x{size[1]} ({warmup} warm-up + {iters} timed, interleaved: "
                       "engine alone, with host copies)...", err=True)
            results += measure_interleaved(contestants, size, iters=iters, warmup=warmup, batch=runner.batch)
        if plot is not None:
            plot_latency(results, plot, title=f"GLDFN {config_name} x{runner.scale} TensorRT", overwrite=overwrite)
        if as_json:
            typer.echo(json.dumps({"config": config_name, "engine": str(runner.path), "results": [r.to_dict() for r in results],
                                   "table_iv": table_iv_rows(results, config_name)}, indent=2))
        else:
            typer.echo(format_markdown(results, config_name) if markdown else format_text(results, config_name))

    @app.command("compare")
    def compare_command(
        reference: Path = typer.Argument(..., help="an engine or an ONNX file"),
        candidate: Path = typer.Argument(..., help="an ONNX file (or an engine); two ONNX files run in ONNX Runtime"),
        images: list[Path] | None = typer.Option(None, "--images", help="images, or folders of images, to compare on "
                                                 "(repeatable; default: a real image and seeded noise)"),
        size: str = typer.Option("64x64", help="centre crop HxW of each image (LR pixels)"),
        atol: float | None = typer.Option(None, "--atol", min=0, show_default=False,
                                          help="gate: every value within atol + rtol x |reference| (numpy.isclose)"),
        rtol: float | None = typer.Option(None, "--rtol", min=0, show_default=False,
                                          help="gate: relative tolerance, with --atol (0 when only one is given)"),
        min_psnr: float | None = typer.Option(None, "--min-psnr", min=0, show_default=False,
                                              help="gate: the PSNR of every input at least this many dB"),
        plugin: Path | None = PLUGIN,
        device: int = DEVICE,
        as_json: bool = JSON,
        threads: int | None = THREADS,
    ) -> None:
        """Run both models on the same inputs: max/mean absolute difference and PSNR. With --atol/--rtol/--min-psnr
        a gate for CI: exit status 1 when the candidate misses it."""
        from gldfn_runtime.runners.compare import Tolerance, compare_models
        from gldfn_runtime.upscale.output_targets import collect_inputs

        tolerance = Tolerance(atol=atol, rtol=rtol, min_psnr_db=min_psnr)
        images = collect_inputs(images) if images else None
        report = compare_models(reference, candidate, images=images, size=parse_size(size), plugin=plugin,
                                tolerance=tolerance, device=device, threads=threads)
        if as_json:
            typer.echo(json.dumps(report.as_dict(), indent=2))
        else:
            typer.echo(f"reference {report.reference}  vs  candidate {report.candidate}")
            for row in report.rows:
                typer.echo(f"  {row.describe()}")
            psnr = "inf" if math.isinf(report.min_psnr_db) else f"{report.min_psnr_db:.2f}"
            typer.echo(f"overall: max abs {report.max_abs:.3e}, mean abs {report.mean_abs:.3e}, min PSNR {psnr} dB")
        failures = report.failures()
        if failures:
            typer.echo("error: the candidate misses the tolerance: " + "; ".join(failures), err=True)
            raise typer.Exit(1)
        if tolerance != Tolerance() and not as_json:
            typer.echo("within the tolerance")
