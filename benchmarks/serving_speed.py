"""Serving speed on the CPU: Triton (nvidia-pytriton's tritonserver, the cpu repository of `gldfn-trt triton`) with 1 and
2 instances against in-process ONNX Runtime in 1 and 2 processes, and `gldfn upscale --ray` with 1 and 2 actors.
The figures in docs/serving.md are this script's output.

The contestants are measured in rounds, each round running every contestant once in turn, so that load from other
work on the machine falls on all of them alike; per contestant the min and median over the rounds are printed, and
the ratios are taken within each round (interleaved) before their median is.

- **requests/s**: ``--requests`` requests of one ``--size`` LR tile (1 x 3 x H x W float32) to the core model, from
  ``--clients`` client threads (HTTP). Direct: the same number of ``OnnxRuntimeRunner.infer`` calls, in one process
  (its ONNX Runtime threads: the cores) or split over two processes (one thread each), as the two server
  instances are configured.
- **Ray images/s**: a folder of ``--images`` PNGs upscaled by ``run_ray_job`` on a local cluster, actors started per
  job (the wall time includes their start).

    python benchmarks/serving_speed.py [--model m.onnx] [--rounds 5] [--requests 60] [--size 64x64] [--ray-rounds 3]
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def export_tiny(folder: Path) -> Path:
    import torch

    from gldfn_export.exporter import export_gldfn
    from gldfn_model.network.config import get_config
    from gldfn_model.network.gldfn import GLDFN

    torch.manual_seed(0)
    path = folder / "tiny.onnx"
    export_gldfn(GLDFN(get_config("tiny", 4)).eval(), path, verify=False, config_name="tiny")
    return path


def server_rate(url: str, batch: np.ndarray, requests: int, clients: int) -> float:
    import tritonclient.http as http

    local = [http.InferenceServerClient(url) for _ in range(clients)]

    def send(index: int) -> None:
        client = local[index % clients]
        tensor = http.InferInput("lr", list(batch.shape), "FP32")
        tensor.set_data_from_numpy(batch)
        client.infer("gldfn", [tensor])

    # One client per thread: each thread sends its share of the requests.
    def worker(start: int) -> None:
        for index in range(start, requests, clients):
            send(index)

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    seconds = time.perf_counter() - began
    for client in local:
        client.close()
    return requests / seconds


def _direct_worker(model: str, threads: int, size: tuple[int, int], count: int, start_at: float, queue) -> None:
    from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner

    runner = OnnxRuntimeRunner(model, threads=threads)
    batch = np.random.default_rng(0).random((1, 3, *size), dtype=np.float32)
    runner.infer(batch)  # warm-up
    while time.time() < start_at:
        time.sleep(0.001)
    began = time.perf_counter()
    for _ in range(count):
        runner.infer(batch)
    queue.put((began, time.perf_counter()))


def direct_rate(model: Path, processes: int, threads: int, size: tuple[int, int], requests: int) -> float:
    """Requests per second of ``processes`` processes sharing ``requests`` inferences, started together."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start_at = time.time() + 8.0  # after every process has loaded its session
    workers = [context.Process(target=_direct_worker, args=(str(model), threads, size, requests // processes, start_at, queue))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    spans = [queue.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    return (requests // processes * processes) / (max(end for _, end in spans) - min(start for start, _ in spans))


def summarize(name: str, values: list[float], unit: str) -> str:
    return f"{name:<34} min {min(values):7.2f}  median {statistics.median(values):7.2f} {unit}"


def ratio_line(name: str, numerators: list[float], denominators: list[float]) -> str:
    ratios = [a / b for a, b in zip(numerators, denominators)]
    return f"{name:<46} min {min(ratios):5.2f}  median {statistics.median(ratios):5.2f}"


def measure_serving(model: Path, args: argparse.Namespace, folder: Path) -> None:
    from gldfn_runtime.serve.repository import RepositoryOptions, write_repository
    from gldfn_runtime.serve.server import TritonServer

    size = tuple(int(v) for v in args.size.split("x"))
    cores = os.cpu_count() or 1
    servers = {}
    for instances in (1, 2):
        repository = folder / f"repo{instances}"
        write_repository(model, repository, RepositoryOptions(instances=instances))
        http, grpc = free_ports(2)
        servers[instances] = TritonServer(repository, http_port=http, grpc_port=grpc).start()
    batch = np.random.default_rng(0).random((1, 3, *size), dtype=np.float32)
    contestants: dict[str, Callable[[], float]] = {
        "triton, 1 instance": lambda: server_rate(servers[1].http_url, batch, args.requests, args.clients),
        "triton, 2 instances": lambda: server_rate(servers[2].http_url, batch, args.requests, args.clients),
        f"direct ORT, 1 process ({cores} threads)": lambda: direct_rate(model, 1, cores, size, args.requests),
        "direct ORT, 2 processes (1 thread)": lambda: direct_rate(model, 2, max(1, cores // 2), size, args.requests),
    }
    try:
        for run in contestants.values():
            run()  # warm-up round, not counted
        results: dict[str, list[float]] = {name: [] for name in contestants}
        for round_index in range(args.rounds):
            for name, run in contestants.items():
                results[name].append(run())
            print(f"round {round_index + 1}: " + ", ".join(f"{n} {v[-1]:.1f}" for n, v in results.items()), flush=True)
    finally:
        for server in servers.values():
            server.stop()
    names = list(contestants)
    print(f"\nrequests/s, LR {args.size} -> x4, {args.requests} requests from {args.clients} HTTP clients, "
          f"{args.rounds} interleaved rounds, {cores} cores")
    for name in names:
        print(summarize(name, results[name], "req/s"))
    print(ratio_line("2 instances / 1 instance", results[names[1]], results[names[0]]))
    print(ratio_line("direct 1 process / triton 1 instance", results[names[2]], results[names[0]]))
    print(ratio_line("direct 2 processes / triton 2 instances", results[names[3]], results[names[1]]))


def measure_ray(model: Path, args: argparse.Namespace, folder: Path) -> None:
    import functools
    import shutil

    import ray
    from PIL import Image

    from gldfn_runtime.batch.ray_job import prepare_ray_batch, run_ray_job
    from gldfn_runtime.cli.upscale import Backend, build_upscaler

    images = folder / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for index in range(args.images):
        small = rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8)
        Image.fromarray(small).resize((96, 96), Image.BICUBIC).save(images / f"img{index:03d}.png")
    factory = functools.partial(build_upscaler, Backend.onnxruntime, None, onnx=model)
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
    results: dict[int, list[float]] = {1: [], 2: []}
    try:
        for round_index in range(args.ray_rounds + 1):  # the first round warms up
            for actors in (1, 2):
                out = folder / f"ray-out-{actors}"
                shutil.rmtree(out, ignore_errors=True)
                batch = prepare_ray_batch(str(images), out)
                began = time.perf_counter()
                result = run_ray_job(batch, factory, actors=actors)
                seconds = time.perf_counter() - began
                assert result.written == args.images and not result.failures, result.failures
                if round_index:
                    results[actors].append(args.images / seconds)
            if round_index:
                print(f"ray round {round_index}: 1 actor {results[1][-1]:.2f}, 2 actors {results[2][-1]:.2f} images/s",
                      flush=True)
    finally:
        ray.shutdown()
    print(f"\nRay images/s, {args.images} PNGs of 96x96 -> x4, {args.ray_rounds} interleaved rounds (actor start included)")
    for actors in (1, 2):
        print(summarize(f"ray, {actors} actor(s)", results[actors], "images/s"))
    print(ratio_line("2 actors / 1 actor", results[2], results[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="an exported ONNX file (default: tiny x4, random weights)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--size", default="64x64", help="LR HxW of each request")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--ray-rounds", type=int, default=3)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gldfn-serving-") as scratch:
        folder = Path(scratch)
        model = args.model or export_tiny(folder)
        measure_serving(model, args, folder)
        if not args.skip_ray:
            measure_ray(model, args, folder)


if __name__ == "__main__":
    main()
