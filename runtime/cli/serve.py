"""``gldfn-trt triton | serve``: thin commands over gldfn_runtime.serve (a Triton model repository, and the bundled
tritonserver that serves it). User errors (GldfnError) are reported by the app as one ``error:`` line."""
from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from gldfn_model.common.sizes import parse_size
from gldfn_runtime.cli.engine import Precision
from gldfn_runtime.engine.build import DEFAULT_PROFILE
from gldfn_runtime.engine.sidecar import format_size
from gldfn_runtime.upscale.tiling import DEFAULT_OVERLAP


class Target(str, Enum):
    cpu = "cpu"
    gpu = "gpu"


def register(app: typer.Typer) -> None:
    @app.command("triton")
    def triton_command(
        model: Path = typer.Argument(..., show_default=False, help="an ONNX file from gldfn-export (gpu: or an engine "
                                     "of full TensorRT from gldfn-trt build)"),
        output: Path = typer.Option(..., "-o", "--output", show_default=False, help="the repository folder (must not exist)"),
        target: Target = typer.Option(Target.cpu, "--target", help="cpu: ONNX Runtime in the Python backend; gpu: a "
                                      "TensorRT plan (tensorrt_plan)"),
        instances: int = typer.Option(1, "--instances", min=1, help="instances of the model (instance_group count)"),
        name: str = typer.Option("gldfn", "--name", help="the model's name; the image model is NAME_image"),
        threads: int | None = typer.Option(None, "-j", "--threads", min=1, show_default=False,
                                           help="cpu: ONNX Runtime threads per instance (default: the serving machine's CPUs shared out)"),
        tile: int | None = typer.Option(None, "-t", "--tile", min=1, show_default=False,
                                        help="the image model's tile size in LR pixels (default: from a memory budget)"),
        overlap: int = typer.Option(DEFAULT_OVERLAP, "--overlap", min=0, help="the image model's tile overlap"),
        precision: Precision | None = typer.Option(None, help="gpu: the plan's precision (default: the ONNX file's)"),
        min_size: str = typer.Option(format_size(DEFAULT_PROFILE["min"]), "--min", help="gpu: smallest LR size HxW"),
        opt_size: str = typer.Option(format_size(DEFAULT_PROFILE["opt"]), "--opt", help="gpu: LR size HxW to optimize for"),
        max_size: str = typer.Option(format_size(DEFAULT_PROFILE["max"]), "--max", help="gpu: largest LR size HxW"),
        plugin: Path | None = typer.Option(None, "--plugin", show_default=False, help="gpu: the plugin library, built "
                                           "for the server's TensorRT (default: $GLDFN_TRT_PLUGIN_LIBRARY, else plugins/build)"),
        no_plugin: bool = typer.Option(False, "--no-plugin", help="gpu: the ONNX function bodies instead of the plugin"),
        embed_plugin: bool = typer.Option(False, "--embed-plugin", help="gpu: serialize the plugin into the plan "
                                          "(version-compatible); default: Triton registers it (plugins=)"),
    ) -> None:
        """Write a Triton model repository: the model, an image model that tiles whole uint8 images on the server,
        their config.pbtxt files (checked with tritonclient's model_config_pb2) and serve.sh."""
        from gldfn_runtime.serve.repository import RepositoryOptions, write_repository

        options = RepositoryOptions(
            target=target.value, instances=instances, name=name, threads=threads, tile=tile, overlap=overlap,
            precision=precision.value if precision else None, min_size=parse_size(min_size), opt_size=parse_size(opt_size),
            max_size=parse_size(max_size), plugin=plugin, use_plugin=not no_plugin, embed_plugin=embed_plugin,
            report=lambda line: typer.echo(line, err=True))
        result = write_repository(model, output, options)
        for note in result.notes:
            typer.echo(f"note: {note}", err=True)
        typer.echo(f"{result.folder}: models {', '.join(result.models)} ({target.value}, {instances} instance(s))")
        typer.echo(f"  serve it: {result.folder / 'serve.sh'}  ({result.serve_command})")

    @app.command("serve")
    def serve_command(
        repository: Path = typer.Argument(..., show_default=False, help="a model repository from gldfn-trt triton"),
        http_port: int = typer.Option(8000, "--http-port", min=1, max=65535),
        grpc_port: int = typer.Option(8001, "--grpc-port", min=1, max=65535),
        metrics_port: int | None = typer.Option(None, "--metrics-port", min=1, max=65535, show_default=False,
                                                help="serve Prometheus metrics there (default: off)"),
        host: str = typer.Option("127.0.0.1", "--host", help="the address every endpoint binds (0.0.0.0: all; "
                                 "the server has no authentication)"),
        log_file: Path | None = typer.Option(None, "--log-file", show_default=False, help="the server's log (default: "
                                             "a temporary file, its tail shown on failure)"),
    ) -> None:
        """Run the tritonserver bundled with nvidia-pytriton on a repository until Ctrl-C or SIGTERM (needs
        gldfn-trt[serve]); it runs in its own process group and never outlives this command."""
        from gldfn_runtime.serve.server import TritonServer, serve_until_signalled

        server = TritonServer(repository, host=host, http_port=http_port, grpc_port=grpc_port,
                              metrics_port=metrics_port, log_file=log_file)

        def ready(started: TritonServer) -> None:
            typer.echo(f"serving {repository}: HTTP {started.http_url}, gRPC {started.grpc_url} (Ctrl-C stops)", err=True)

        code = serve_until_signalled(server, ready)
        raise typer.Exit(code)
