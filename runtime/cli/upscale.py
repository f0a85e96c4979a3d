"""``gldfn upscale``: a thin layer over gldfn_runtime.Upscaler (PyTorch, ONNX Runtime, TensorRT, a Triton server or
bicubic), in this process or on a Ray cluster (``--ray``, gldfn_runtime.batch.ray_job).

The backend follows from the model given (``--onnx``: ONNX Runtime, ``--engine``: TensorRT, ``--triton``: a Triton
server, ``--checkpoint`` / ``--model``: PyTorch) and the scale from the model itself; ``--backend`` and ``--scale``
only confirm them. Without a model it runs the shipped model for photos (``registry.photo_model``: the robust x4 at
x4).

``gldfn-trt run MODEL IMAGE...`` is an alias of ``gldfn upscale IMAGE... --engine MODEL``: both call
:func:`upscale_images`.
"""
from __future__ import annotations

import functools
import re
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gldfn_model.cli.model_scale import scale_of_model
from gldfn_model.cli.models import ShippedModelName, model_option
from gldfn_model.cli.options import (
    AUTO,
    GPU_HELP,
    PROVIDERS,
    RANDOM_WEIGHTS,
    THREADS,
    ConfigName,
    agree_scale,
    checkpoint_option,
    config_option,
    device_option,
    implied_choice,
    input_option,
    inputs_argument,
    merge_inputs,
    onnx_option,
    scale_option,
    value_of,
)
from gldfn_model.common.cli_aliases import hidden_aliases
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
    check_model_scale,
    write_targets,
)
from gldfn_runtime.upscale.tiling import DEFAULT_OVERLAP

if TYPE_CHECKING:
    from gldfn_runtime.batch.ray_job import RayBatch
    from gldfn_runtime.upscale.upscaler import Upscaler


class Backend(str, Enum):
    auto = AUTO
    torch = "torch"
    onnxruntime = "onnxruntime"
    tensorrt = "tensorrt"
    triton = "triton"
    bicubic = "bicubic"


def choose_backend(
    requested: Backend, *, checkpoint: Path | None = None, model: str | None = None, config: str | None = None,
    random_weights: bool = False, onnx: Path | None = None, engine: Path | None = None, plugin: Path | None = None,
    device: int | None = None, triton: str | None = None,
) -> Backend:
    """The backend the given model runs with (``requested`` auto), or ``requested`` when it agrees with it;
    typer.BadParameter naming both when it does not, when the backend lacks its model file, or when a GPU index
    (``device``) is given to a backend that runs on the CPU."""
    implied = [(f"--onnx {onnx}", Backend.onnxruntime.value)] if onnx is not None else []
    implied += [(f"--triton {triton}", Backend.triton.value)] if triton is not None else []
    implied += [(f"--engine {engine}", Backend.tensorrt.value)] if engine is not None else []
    implied += [(f"--plugin {plugin}", Backend.tensorrt.value)] if plugin is not None else []
    for flag, value in (("--checkpoint", checkpoint), ("--model", model), ("--config", config)):
        implied += [(f"{flag} {value}", Backend.torch.value)] if value is not None else []
    implied += [("--random-weights", Backend.torch.value)] if random_weights else []
    backend = Backend(implied_choice("--backend", requested.value, implied, Backend.torch.value))
    if backend is Backend.onnxruntime and onnx is None:
        raise typer.BadParameter("onnxruntime needs --onnx FILE (export one with gldfn-export)", param_hint="'--backend'")
    if backend is Backend.tensorrt and engine is None:
        raise typer.BadParameter("tensorrt needs --engine FILE (an engine from gldfn-trt build, or an ONNX file)",
                                 param_hint="'--backend'")
    if backend is Backend.triton and triton is None:
        raise typer.BadParameter("triton needs --triton HOST:PORT (a server started with gldfn-trt serve)",
                                 param_hint="'--backend'")
    if device is not None and backend is not Backend.tensorrt:
        raise typer.BadParameter(f"picks the GPU of a TensorRT engine (--engine); {backend.value} runs on the CPU here",
                                 param_hint="'-g' / '--device'")
    return backend


def default_model_name(scale: int | None, config: str | None) -> str | None:
    """The shipped model ``gldfn upscale`` runs when none is named (gldfn_model.network.registry.photo_model)."""
    from gldfn_model.network.checkpoint_facts import SHIPPED_CONFIG
    from gldfn_model.network.registry import DEFAULT_SCALE, photo_model

    chosen = photo_model(scale or DEFAULT_SCALE, config or SHIPPED_CONFIG)
    return chosen.name if chosen is not None else None


def build_upscaler(
    backend: Backend, scale: int | None, *, checkpoint: Path | None = None, model: str | None = None,
    config: str | None = None, random_weights: bool = False, onnx: Path | None = None, engine: Path | None = None,
    plugin: Path | None = None, providers: str = "cpu", threads: int | None = None, tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP, precision: str | None = None, cache_dir: Path | None = None, device: int = 0,
    profile: dict | None = None, triton: str | None = None, triton_model: str = "gldfn",
) -> Upscaler:  # imported lazily to keep `gldfn --help` fast
    """The upscaler of a backend (from :func:`choose_backend`) at the model's scale; ``scale``, when given, must
    be the model's (typer.BadParameter naming both). ``engine``: an engine, or an ONNX file whose engine is built
    for GPU ``device`` on first use (``precision``, ``cache_dir``, ``profile``: only for those)."""
    from gldfn_runtime.upscale.upscaler import Upscaler

    tiling = {"tile": tile, "overlap": overlap}
    if backend is Backend.onnxruntime:
        upscaler = Upscaler.from_onnx(onnx, providers=providers, threads=threads, **tiling)
        agree_scale(scale, upscaler.scale, f"{onnx} (its gldfn.scale metadata)")
        return upscaler
    if backend is Backend.tensorrt:
        check_model_scale(scale, engine)  # from the file (sidecar or metadata), without a GPU; running needs one
        from gldfn_runtime.runners.open import open_tensorrt_runner

        runner = open_tensorrt_runner(engine, plugin=plugin, precision=precision, device=device, cache_dir=cache_dir,
                                      scale=scale, report=lambda line: typer.echo(line, err=True), profile=profile)
        return Upscaler(runner, **tiling)
    if backend is Backend.triton:
        upscaler = Upscaler.from_triton(triton, triton_model, **tiling)
        agree_scale(scale, upscaler.scale, f"model {triton_model} on {triton} (its gldfn.scale parameter)")
        return upscaler
    scale = scale_of_model(scale, model=model, checkpoint=checkpoint)
    if backend is Backend.bicubic:
        return Upscaler.bicubic(scale, **tiling)
    return Upscaler.from_checkpoint(checkpoint, scale, config=config, random_weights=random_weights, threads=threads,
                                    model=model, **tiling)


def upscale_images(
    images: list[Path], output: str, backend: Backend = Backend.auto, scale: int | None = None, *, suffix: str = "",
    image_format: str | None = None, overwrite: bool = False, skip_existing: bool = False,
    max_pixels: int | None = None, checkpoint: Path | None = None, model: str | None = None,
    config: str | None = None, random_weights: bool = False, onnx: Path | None = None, engine: Path | None = None,
    plugin: Path | None = None, providers: str = "cpu", threads: int | None = None, tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP, precision: str | None = None, cache_dir: Path | None = None,
    device: int | None = None, quality: int | None = None, triton: str | None = None, triton_model: str = "gldfn",
    ray: bool = False, ray_address: str | None = None, actors: int = 1, gpus_per_actor: float = 0.0,
) -> None:
    """What ``gldfn upscale`` and ``gldfn-trt run`` do: choose the backend, choose the outputs (refusing to replace
    inputs or existing files before any model is loaded), build the upscaler, write every image and print the
    summary (exit 1 when a file failed). An ONNX file run with TensorRT gets an engine whose profile takes the
    images whole, up to ``LARGEST_IMAGE_PROFILE`` (``profile_for_images``). ``ray``: one folder (or URI) upscaled on
    a Ray cluster instead (:func:`upscale_on_ray`)."""
    from gldfn_runtime.upscale.output_targets import choose_outputs

    chosen = choose_backend(backend, checkpoint=checkpoint, model=model, config=config, random_weights=random_weights,
                            onnx=onnx, engine=engine, plugin=plugin, device=device, triton=triton)
    for option, value in (("--precision", precision), ("--cache-dir", cache_dir)):
        if value is not None and chosen is not Backend.tensorrt:
            raise typer.BadParameter(f"is for an ONNX file run with TensorRT (--engine MODEL.onnx); {chosen.value} "
                                     "runs the model as it is", param_hint=f"'{option}'")
    ray_batch = _prepare_ray_batch(images, output, suffix, image_format, overwrite, skip_existing) if ray else None
    if ray_batch is None and ray:
        return  # nothing to write: said so
    outputs = None if ray else choose_outputs(images, output, suffix=suffix, image_format=image_format,
                                         overwrite=overwrite, skip_existing=skip_existing)
    if chosen is Backend.torch and checkpoint is None and model is None and not random_weights:
        model = default_model_name(scale, config)
        if model is not None:
            typer.echo(f"model: {model}, the default for photos (--model NAME picks another: `gldfn models`)", err=True)
    if ray_batch is not None:
        factory = functools.partial(
            build_upscaler, chosen, scale, checkpoint=checkpoint, model=model, config=config,
            random_weights=random_weights, onnx=onnx, engine=engine, plugin=plugin, providers=providers, tile=tile,
            overlap=overlap, precision=precision, cache_dir=cache_dir, device=device or 0, triton=triton,
            triton_model=triton_model)
        upscale_on_ray(ray_batch, factory, chosen, address=ray_address, actors=actors, gpus_per_actor=gpus_per_actor,
                       threads=threads, max_pixels=max_pixels, quality=quality)
        return
    profile = None
    if chosen is Backend.tensorrt:
        from gldfn_runtime.runners.open import is_onnx_path, profile_for_images

        profile = profile_for_images([source for source, _ in outputs.jobs]) if is_onnx_path(engine) else None
    upscaler = build_upscaler(chosen, scale, checkpoint=checkpoint, model=model, config=config,
                              random_weights=random_weights, onnx=onnx, engine=engine, plugin=plugin,
                              providers=providers, threads=threads, tile=tile, overlap=overlap, precision=precision,
                              cache_dir=cache_dir, device=device or 0, profile=profile, triton=triton,
                              triton_model=triton_model)
    write_targets(upscaler, outputs, f"upscaling x{upscaler.scale} ({chosen.value})", max_pixels, quality)


# pathlib turns the "//" of a URI into "/": s3://bucket/photos arrives as s3:/bucket/photos.
_COLLAPSED_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):/+")


def restore_uri(path: Path) -> str:
    """A command-line path as typed when it is a URI (``s3:/bucket/x`` -> ``s3://bucket/x``), else the path."""
    text = str(path)
    match = _COLLAPSED_URI.match(text)
    if match is None or len(match[1]) < 2:  # one letter: a Windows drive, not a scheme
        return text
    rest = text[match.end():]
    return f"{match[1]}:///{rest}" if match[1].lower() == "file" else f"{match[1]}://{rest}"


def _prepare_ray_batch(images: list[Path], output: str, suffix: str, image_format: str | None, overwrite: bool,
                 skip_existing: bool) -> RayBatch | None:
    """``--ray``: the batch of one folder (or URI); None, having said so, when every output exists already."""
    from gldfn_runtime.batch.ray_job import prepare_ray_batch

    if len(images) != 1:
        raise typer.BadParameter(f"--ray takes one folder (or URI), got {len(images)} inputs", param_hint="'--ray'")
    batch = prepare_ray_batch(restore_uri(images[0]), output, suffix=suffix, image_format=image_format, overwrite=overwrite,
                        skip_existing=skip_existing)
    if not batch.jobs:
        typer.echo(f"nothing to write in {batch.folder}: {len(batch.skipped)} already there, kept (--skip-existing)")
        return None
    return batch


def upscale_on_ray(batch: RayBatch, factory: functools.partial, backend: Backend, *, address: str | None, actors: int,
                   gpus_per_actor: float, threads: int | None, max_pixels: int | None, quality: int | None) -> None:
    """Upscale a prepared folder with gldfn_runtime.batch.ray_job, one line per failed file, and the summary as
    without ``--ray``; exit 1 when a file failed."""
    from gldfn_runtime.batch.ray_job import run_ray_job

    if backend is not Backend.tensorrt:  # a model that cannot load fails here, once, not on every actor
        factory(threads=1)

    def report(source: str, error: str, note: str) -> None:
        for line in ([f"error: {error}"] if error else []) + ([f"note: {note}"] if note else []):
            typer.echo(line, err=True)

    result = run_ray_job(batch, factory, address=address, actors=actors, gpus_per_actor=gpus_per_actor, threads=threads,
                         max_pixels=max_pixels, quality=quality, on_result=report)
    kept = f"; {len(batch.skipped)} already there, kept (--skip-existing)" if batch.skipped else ""
    failed = f"; {len(result.failures)} failed (reasons above)" if result.failures else ""
    typer.echo(f"{result.written} of {len(batch.jobs)} images written to {batch.folder} on Ray ({actors} actor(s))"
               + kept + failed)
    if result.failures:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    @app.command("upscale")
    @hidden_aliases(output="--out")
    def upscale_command(
        inputs: list[Path] | None = inputs_argument("image files and/or folders of images"),
        input_options: list[Path] | None = input_option("an image file or folder"),
        output: str = OUTPUT,
        suffix: str = SUFFIX,
        image_format: OutputFormat | None = FORMAT,
        overwrite: bool = OVERWRITE,
        skip_existing: bool = SKIP_EXISTING,
        backend: Backend = typer.Option(
            Backend.auto, "--backend", help="auto: the model's (--onnx: onnxruntime, --engine: tensorrt, --triton: triton, else torch); "
            "bicubic: the baseline, no model"),
        scale: int | None = scale_option(),
        checkpoint: Path | None = checkpoint_option(),
        model_choice: ShippedModelName | None = model_option(),
        config: ConfigName | None = config_option(
            "named config of the shipped or random weights (default: the checkpoint's, else tiny)"),
        random_weights: bool = RANDOM_WEIGHTS,
        onnx: Path | None = onnx_option(),
        engine: Path | None = typer.Option(
            None, "--engine", show_default=False,
            help=f"{ENGINE_HELP}; implies --backend tensorrt; needs an NVIDIA GPU (`gldfn-trt run` is an alias)"),
        plugin: Path | None = PLUGIN,
        precision: Precision | None = PRECISION_FOR_ONNX,
        cache_dir: Path | None = CACHE_DIR,
        device: int | None = device_option(None, f"--engine: {GPU_HELP} [default: 0]"),
        providers: str = PROVIDERS,
        tile: int | None = TILE,
        overlap: int = OVERLAP,
        threads: int | None = THREADS,
        max_pixels: int = MAX_PIXELS,
        quality: int | None = QUALITY,
        triton: str | None = typer.Option(
            None, "--triton", metavar="HOST:PORT", show_default=False,
            help="upscale through a Triton server (gldfn-trt serve): HOST:PORT for HTTP, grpc://HOST:PORT for gRPC; "
            "tiled here, the tiles sent concurrently; implies --backend triton"),
        triton_model: str = typer.Option("gldfn", "--triton-model", help="the model on the Triton server "
                                         "(gldfn-trt triton --name)"),
        ray: bool = typer.Option(False, "--ray", help="upscale one folder (or a pyarrow.fs URI such as s3://bucket/photos) "
                                 "on a Ray cluster, -o a folder every node sees (needs gldfn-trt[ray])"),
        ray_address: str | None = typer.Option(None, "--ray-address", show_default=False,
                                               help="--ray: the cluster (default: $RAY_ADDRESS, else a local one)"),
        actors: int = typer.Option(1, "--actors", min=1, help="--ray: upscalers working at once"),
        gpus_per_actor: float = typer.Option(0.0, "--gpus-per-actor", min=0.0, help="--ray: GPUs each upscaler holds"),
    ) -> None:
        """Upscale images: files or folders in, atomically written images out (same names unless --suffix).

        Without a model: the shipped model for photos (x4: tiny-x4-robust). Never replaces an input or an existing
        file unless --overwrite.

        Grey, grey + alpha, RGBA (alpha resized with bicubic) and 16 bits (PNG, TIFF) are kept as such, with the
        ICC profile and EXIF (the EXIF orientation applied to the pixels, then reset to 1).
        """
        upscale_images(
            merge_inputs(inputs, input_options, what="image"), output, backend, scale, suffix=suffix,
            image_format=value_of(image_format), overwrite=overwrite, skip_existing=skip_existing,
            max_pixels=max_pixels, checkpoint=checkpoint, model=value_of(model_choice), config=value_of(config),
            random_weights=random_weights, onnx=onnx, engine=engine, plugin=plugin, providers=providers,
            threads=threads, tile=tile, overlap=overlap, precision=value_of(precision), cache_dir=cache_dir,
            device=device, quality=quality, triton=triton, triton_model=triton_model, ray=ray, ray_address=ray_address,
            actors=actors, gpus_per_actor=gpus_per_actor,
        )
