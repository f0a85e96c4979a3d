"""ONNX Runtime on the CPU: the local dynamic filter as its ONNX function body against the custom-op library
(``gldfn-trt plugin build-ort``), in one interleaved run. The figures in docs/onnxruntime.md are its output.

Three sections, each timed interleaved (every round runs every variant once, the order rotating), with the
minimum and the median of the rounds and the body / custom-op ratios:

1. the LDF op alone on one node of the shipped tiny x4 model's shape (C channels at 180x270 LR), 1 and 2 threads;
2. the whole shipped tiny x4 model at 180x270 LR, 1 and 2 threads;
3. a photo (random pixels, ``--photo HxW`` LR) upscaled through the Upscaler's default tiles: output MP/s.

The machine's other work (a training job holds one core of two here) slows some rounds: compare ratios, and the
minimum rather than the median. More ONNX files (an INT8 file from ``gldfn-calibrate``, an FP16 export) join
sections 2 and 3 with ``--model LABEL=FILE``: each is timed with the body and with the custom op alike, and its
speed-up over the FP32 file is printed. ``--int8-images DIR`` calibrates the shipped model on DIR for both INT8
targets (``gldfn-calibrate --target onnxruntime`` and ``--target tensorrt``, default settings, no evaluation) and
adds the two files. ``--profile N`` ends with ONNX Runtime's profile of section 2's models (custom op, fewest threads):
each node's fastest of N runs, summed by op type, which shows where the time goes when the figures disappoint.

    python benchmarks/ort_speed.py [--threads 1 2] [--rounds 20] [--photo 480x640] [--model int8=tiny_int8.onnx]
                                   [--int8-images ../shared/datasets/BSD200]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from gldfn_calibration.calibrate import CalibrationOptions, calibrate_gldfn
from gldfn_calibration.targets import Int8Target
from gldfn_export.exporter import export_gldfn
from gldfn_export.ldf_function import ldf_node_model
from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner, session_options
from gldfn_model.network.model_source import resolve_model
from gldfn_model.ops.contract import load_contract
from gldfn_model.ops.onnx_format import attribute_values, custom_nodes
from gldfn_runtime.bench.harness import Contestant, LatencyResult, host_timer, measure_interleaved, runner_contestant
from gldfn_runtime.plugin.ort_library import describe_ort_library, ort_custom_ops_library
from gldfn_runtime.upscale.upscaler import Upscaler

SHIPPED_MODEL = "tiny-x4"
LR_SIZE = (180, 270)  # the paper's Table IV size
VARIANTS = (("body", False), ("custom op", True))


@dataclass
class Row:
    section: str
    model: str
    variant: str
    threads: int
    result: LatencyResult


def _parse_size(text: str) -> tuple[int, int]:
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


class _HostDone:
    """ONNX Runtime's CPU session has finished its work when ``run`` returns: nothing to wait for."""

    def synchronize(self) -> None:
        pass


def op_contestants(model_file: Path, channels: int, threads: list[int]) -> list[tuple[str, str, int, Contestant]]:
    """The op of ``model_file``'s first LDF node alone (its kernel size and dilation), on ``channels`` x 180 x 270
    random inputs, as a one-node model with the function body or with the custom op."""
    (kernel_size, dilation) = (int(attribute_values(custom_nodes(onnx.load(model_file))[0])[name])
                               for name in ("kernel_size", "dilation"))
    model = ldf_node_model(load_contract(), kernel_size, dilation, channels=channels).SerializeToString()
    rng = np.random.default_rng(0)
    taps = kernel_size * kernel_size
    feeds = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in
             (("x", (1, channels, *LR_SIZE)), ("s", (1, taps, *LR_SIZE)), ("c", (1, channels, taps)))}
    label = f"LDF op k={kernel_size} d={dilation} 1x{channels}x{LR_SIZE[0]}x{LR_SIZE[1]}"
    found = []
    for count in threads:
        for variant, custom_ops in VARIANTS:
            options, _ = session_options(count, custom_ops)
            session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
            # Inputs and output bound once: the timed call is the session's run, without the copy of the output
            # into a new NumPy array that `run` makes.
            binding = session.io_binding()
            for name, array in feeds.items():
                binding.bind_cpu_input(name, array)
            binding.bind_ortvalue_output("y", ort.OrtValue.ortvalue_from_numpy(np.empty_like(feeds["x"])))

            def prepare(_lr: np.ndarray, session: ort.InferenceSession = session,
                        binding: ort.IOBinding = binding) -> Callable[[], object]:
                return lambda: session.run_with_iobinding(binding)

            found.append((label, variant, count, Contestant("onnxruntime", 1, prepare, host_timer(_HostDone()))))
    return found


def runner_contestants(models: dict[str, Path], threads: list[int], tiled: bool) -> list[tuple[str, str, int, Contestant]]:
    """Each model with the function bodies and with the custom op, at each thread count: ``infer`` on the LR batch,
    or with ``tiled`` the Upscaler's ``upscale_batch`` (its default tiles)."""
    found = []
    for label, path in models.items():
        for count in threads:
            for variant, custom_ops in VARIANTS:
                runner = OnnxRuntimeRunner(path, threads=count, custom_ops=custom_ops)
                if tiled:
                    contestant = Contestant("onnxruntime", runner.scale, _tiled_step(Upscaler(runner)), host_timer(runner))
                else:
                    contestant = runner_contestant(runner)
                found.append((label, variant, count, contestant))
    return found


def _tiled_step(upscaler: Upscaler) -> Callable[[np.ndarray], Callable[[], object]]:
    def prepare(lr: np.ndarray) -> Callable[[], object]:
        return lambda: upscaler.upscale_batch(lr)

    return prepare


def measure(section: str, entries: list[tuple[str, str, int, Contestant]], lr_size: tuple[int, int], rounds: int,
            warmup: int) -> list[Row]:
    results = measure_interleaved([c for *_, c in entries], lr_size, iters=rounds, warmup=warmup)
    return [Row(section, model, variant, threads, result)
            for (model, variant, threads, _), result in zip(entries, results)]


def print_section(title: str, rows: list[Row], throughput: bool) -> None:
    print(f"\n{title}")
    unit = "output MP/s (best, median)" if throughput else "ms (min, median)"
    print(f"  {'model':<40} {'threads':>7}  {'variant':<10} {unit}")
    for row in rows:
        r = row.result
        figures = (f"{_mps(r, r.min_ms):8.3f} {_mps(r, r.median_ms):8.3f}" if throughput
                   else f"{r.min_ms:8.2f} {r.median_ms:8.2f}")
        print(f"  {row.model:<40} {row.threads:>7}  {row.variant:<10} {figures}")
    keys = sorted({(row.model, row.threads) for row in rows}, key=lambda k: (k[0], k[1]))
    for model, threads in keys:
        pair = {row.variant: row.result for row in rows if (row.model, row.threads) == (model, threads)}
        if len(pair) == 2:
            body, op = pair["body"], pair["custom op"]
            print(f"  {model:<40} {threads:>7}  body/op    {body.min_ms / op.min_ms:7.2f}x {body.median_ms / op.median_ms:7.2f}x")
    thread_counts = sorted({row.threads for row in rows})
    if len(thread_counts) == 2:
        low, high = thread_counts
        for model, variant in dict.fromkeys((row.model, row.variant) for row in rows):
            pair = {row.threads: row.result for row in rows if (row.model, row.variant) == (model, variant)}
            print(f"  {model:<40} {f'{low}/{high}':>7}  {variant:<10} {pair[low].min_ms / pair[high].min_ms:7.2f}x "
                  f"{pair[low].median_ms / pair[high].median_ms:7.2f}x  ({high} threads' speed-up)")


def print_speedups(rows: list[Row], reference: str) -> None:
    """Each model's speed-up over ``reference`` (the FP32 file) with the same variant and threads, min and median."""
    found = {(row.model, row.variant, row.threads): row.result for row in rows}
    for (model, variant, threads), result in found.items():
        base = found.get((reference, variant, threads))
        if model != reference and base is not None:
            print(f"  {model:<40} {threads:>7}  {variant:<10} {base.min_ms / result.min_ms:7.2f}x "
                  f"{base.median_ms / result.median_ms:7.2f}x  (speed-up over {reference})")


def calibrate_int8(fp32: Path, images: Path, folder: Path, threads: int) -> dict[str, Path]:
    """The shipped model quantized for each INT8 target with gldfn-calibrate's defaults (64 random 64x64 patches)."""
    made = {}
    for target in Int8Target:
        path = folder / f"{SHIPPED_MODEL}-int8-{target.value}.onnx"
        options = CalibrationOptions(images=images, patch=64, engine_check=False, threads=threads, target=target)
        calibrate_gldfn(fp32, path, options)
        made[f"{SHIPPED_MODEL} int8 {target.value}"] = path
    return made


def profile_op_types(path: Path, threads: int, runs: int) -> tuple[dict[str, tuple[float, int]], float]:
    """ONNX Runtime's profile of ``runs`` runs at 180x270 with the custom op: op type -> (the sum over its nodes of each
    node's fastest run in ms, node count), and the fastest whole run in ms. Per-node minimums keep the other work
    on the machine out of the breakdown."""
    options, _ = session_options(threads, True)
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as folder:
        options.profile_file_prefix = str(Path(folder) / "profile")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        lr = np.random.default_rng(0).random((1, 3, *LR_SIZE), dtype=np.float32)
        name = session.get_inputs()[0].name
        for _ in range(runs + 1):  # the first run prepares kernels: not counted
            session.run(None, {name: lr})
        events = json.loads(Path(session.end_profiling()).read_text())
    model_runs = [e for e in events if e.get("name") == "model_run"][1:]
    fastest: dict[str, float] = {}
    op_type: dict[str, str] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= model_runs[0]["ts"]:
            fastest[event["name"]] = min(fastest.get(event["name"], float("inf")), event["dur"] / 1e3)
            op_type[event["name"]] = event["args"]["op_name"]
    totals: dict[str, tuple[float, int]] = {}
    for node, ms in fastest.items():
        total, count = totals.get(op_type[node], (0.0, 0))
        totals[op_type[node]] = (total + ms, count + 1)
    return totals, min(e["dur"] for e in model_runs) / 1e3


def print_profiles(models: dict[str, Path], threads: int, runs: int) -> None:
    profiles = {label: profile_op_types(path, threads, runs) for label, path in models.items()}
    print(f"\n4. ONNX Runtime profile at {LR_SIZE[0]}x{LR_SIZE[1]}, custom op, {threads} thread(s): each node's fastest of "
          f"{runs} runs, summed by op type (ms, nodes)")
    print(f"  {'op type':<26}" + "".join(f"{label:>28}" for label in profiles))
    kinds = sorted({k for totals, _ in profiles.values() for k in totals},
                   key=lambda k: -max(totals.get(k, (0.0, 0))[0] for totals, _ in profiles.values()))
    for kind in kinds:
        cells = (totals.get(kind, (0.0, 0)) for totals, _ in profiles.values())
        print(f"  {kind:<26}" + "".join(f"{ms:18.1f} ms ({count:3d})" for ms, count in cells))
    print(f"  {'sum of the nodes':<26}" + "".join(f"{sum(ms for ms, _ in t.values()):18.1f} ms      " for t, _ in profiles.values()))
    print(f"  {'fastest whole run':<26}" + "".join(f"{run:18.1f} ms      " for _, run in profiles.values()))


def _mps(result: LatencyResult, ms: float) -> float:
    height, width = result.lr_size
    return height * width * result.scale ** 2 / (ms / 1e3) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op thread counts (default 1 2)")
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds of sections 1 and 2 (default 20)")
    parser.add_argument("--photo", type=_parse_size, default=(480, 640), help="LR size of section 3 (default 480x640)")
    parser.add_argument("--photo-rounds", type=int, default=3, help="timed rounds of section 3 (default 3; 0 skips it)")
    parser.add_argument("--model", action="append", default=[], metavar="LABEL=FILE",
                        help="another ONNX file for sections 2 and 3 (e.g. int8=tiny_int8.onnx); repeatable")
    parser.add_argument("--int8-images", type=Path, metavar="DIR",
                        help="calibrate the shipped model on these HR images for both INT8 targets and add the files")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="end with ONNX Runtime's profile of section 2's models over N runs (default 0: none)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    library = ort_custom_ops_library()
    if library is None:
        print("error: no ONNX Runtime custom-op library: build it with `gldfn-trt plugin build-ort` (or set "
              "GLDFN_ORT_OPS_LIBRARY)", file=sys.stderr)
        return 2
    info = describe_ort_library(library)
    print(f"ONNX Runtime {ort.__version__}; custom-op library {library} (CPU kernel: {info['cpu-isa']})")
    print(f"CPU cores this process may use: {len(os.sched_getaffinity(0))}; other work on the machine slows some "
          "rounds: all variants are timed interleaved; compare ratios and minimums")

    with tempfile.TemporaryDirectory() as folder:
        source = resolve_model(4, None, None, False, model=SHIPPED_MODEL)
        shipped = Path(folder) / f"{SHIPPED_MODEL}.onnx"
        export_gldfn(source.model, shipped, config_name=source.config_name, verify=False)
        models = {f"{SHIPPED_MODEL} fp32": shipped}
        for entry in args.model:
            label, _, path = entry.partition("=")
            if not path or not Path(path).is_file():
                print(f"error: --model {entry}: expected LABEL=FILE with an existing ONNX file", file=sys.stderr)
                return 2
            models[label] = Path(path)
        if args.int8_images is not None:
            models.update(calibrate_int8(shipped, args.int8_images, Path(folder), min(args.threads)))

        channels = source.model.config.channels
        op_rows = measure("op", op_contestants(shipped, channels, args.threads), LR_SIZE, args.rounds, 3)
        print_section(f"1. LDF op alone, {args.rounds} rounds", op_rows, throughput=False)

        model_rows = measure("model", runner_contestants(models, args.threads, tiled=False), LR_SIZE, args.rounds, 2)
        print_section(f"2. Whole model at {LR_SIZE[0]}x{LR_SIZE[1]} LR, {args.rounds} rounds", model_rows,
                      throughput=False)
        print_speedups(model_rows, f"{SHIPPED_MODEL} fp32")

        photo_rows = []
        if args.photo_rounds > 0:
            photo_rows = measure("photo", runner_contestants(models, args.threads, tiled=True), args.photo,
                                 args.photo_rounds, 1)
            height, width = args.photo
            print_section(f"3. Photo {height}x{width} LR -> x4 through the Upscaler's default tiles, "
                          f"{args.photo_rounds} rounds", photo_rows, throughput=True)
            print_speedups(photo_rows, f"{SHIPPED_MODEL} fp32")
        if args.profile > 0:
            print_profiles(models, min(args.threads), args.profile)

    if args.json is not None:
        data = [{"section": row.section, "model": row.model, "variant": row.variant, "threads": row.threads,
                 **row.result.to_dict()} for row in op_rows + model_rows + photo_rows]
        args.json.write_text(json.dumps({"onnxruntime": ort.__version__, "library": info, "rows": data}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
