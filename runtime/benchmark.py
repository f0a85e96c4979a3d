"""Latency harness for any ``Runner``: warm-up, timed iterations, statistics, and the model's work per image
(MACs from gldfn_model.network.complexity) turned into achieved throughput, beside the paper's Table IV.

Each iteration is timed as ``infer`` + ``synchronize`` on the host clock, unless the caller passes a
``timer`` (e.g. the TensorRT runner's CUDA-event timer) that runs one iteration and returns milliseconds.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gldfn_model.common.errors import GldfnError
from gldfn_model.inference.runner import Runner, Size
from gldfn_model.network.complexity import TABLE_IV, TABLE_IV_LR_SIZE, count_complexity
from gldfn_model.network.config import GLDFNConfig

Timer = Callable[[Callable[[], object]], float]  # runs the callable once, returns milliseconds


class BenchmarkError(GldfnError, ValueError):
    """Benchmark settings that cannot be run."""


@dataclass
class LatencyResult:
    backend: str
    lr_size: Size
    batch: int
    iters: int
    warmup: int
    scale: int
    mean_ms: float
    median_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    images_per_s: float
    output_megapixels_per_s: float
    params: int | None  # of the network, analytical; None without a config
    macs: int | None  # of one image, analytical; None without a config
    achieved_tflops: float | None  # 2 x MACs x batch / mean time
    samples_ms: list[float] = field(default_factory=list, repr=False)

    def to_dict(self, with_samples: bool = False) -> dict:
        data = asdict(self)
        data["lr_size"] = list(self.lr_size)
        if not with_samples:
            data.pop("samples_ms")
        return data


def host_timer(runner: Runner) -> Timer:
    """Wall-clock milliseconds of one call, after ``runner.synchronize`` so queued device work is counted."""

    def timed(step: Callable[[], object]) -> float:
        start = time.perf_counter()
        step()
        runner.synchronize()
        return (time.perf_counter() - start) * 1e3

    return timed


def summarize(
    backend: str, samples_ms: Sequence[float], lr_size: Size, batch: int, scale: int, warmup: int,
    params: int | None = None, macs: int | None = None,
) -> LatencyResult:
    times = np.asarray(samples_ms, dtype=np.float64)
    if times.size == 0:
        raise BenchmarkError("no timed iterations: pass iters >= 1")
    mean_s = float(times.mean()) / 1e3
    out_pixels = lr_size[0] * lr_size[1] * scale * scale * batch
    return LatencyResult(
        backend=backend, lr_size=lr_size, batch=batch, iters=int(times.size), warmup=warmup, scale=scale,
        mean_ms=float(times.mean()), median_ms=float(np.median(times)),
        p90_ms=float(np.percentile(times, 90)), p99_ms=float(np.percentile(times, 99)), min_ms=float(times.min()),
        images_per_s=batch / mean_s, output_megapixels_per_s=out_pixels / mean_s / 1e6,
        params=params, macs=macs, achieved_tflops=(2.0 * macs * batch / mean_s / 1e12) if macs is not None else None,
        samples_ms=[float(t) for t in times],
    )


def measure_latency(
    runner: Runner,
    lr_size: Size,
    *,
    iters: int = 100,
    warmup: int = 10,
    batch: int = 1,
    config: GLDFNConfig | None = None,
    timer: Timer | None = None,
    seed: int = 0,
) -> LatencyResult:
    """Time ``runner.infer`` on a random ``batch x 3 x h x w`` input: ``warmup`` untimed calls, then ``iters``
    timed ones. ``config`` (the network's) gives the MAC count; None leaves MACs and TFLOP/s out."""
    if iters < 1 or warmup < 0 or batch < 1:
        raise BenchmarkError(f"need iters >= 1, warmup >= 0, batch >= 1 (got {iters}, {warmup}, {batch})")
    height, width = lr_size
    for bound, word, ok in ((runner.min_size, "below the minimum", lambda a, b: a >= b), (runner.max_size, "above the maximum", lambda a, b: a <= b)):
        if bound is not None and not (ok(height, bound[0]) and ok(width, bound[1])):
            raise BenchmarkError(f"size {height}x{width} is {word} {bound[0]}x{bound[1]} that {runner.name} accepts")
    lr = np.random.default_rng(seed).random((batch, 3, height, width), dtype=np.float32)
    timer = timer or host_timer(runner)
    step = lambda: runner.infer(lr)  # noqa: E731 - a named step reads better here
    for _ in range(warmup):
        step()
    runner.synchronize()
    samples = [timer(step) for _ in range(iters)]
    complexity = count_complexity(config, height, width) if config is not None else None
    params, macs = (complexity.params, complexity.macs) if complexity is not None else (None, None)
    return summarize(runner.name, samples, lr_size, batch, runner.scale, warmup, params, macs)


def table_iv_rows(results: Sequence[LatencyResult], config_name: str | None) -> list[dict]:
    """Table IV's rows (params M, GMACs at 180x270) and ours at 180x270 when it was measured."""
    rows = [{"method": m, "params_m": p, "gmacs": g, "source": "paper Table IV"} for m, (p, g) in TABLE_IV.items()]
    for result in results:
        if tuple(result.lr_size) == TABLE_IV_LR_SIZE and result.macs is not None:
            rows.append({
                "method": f"ours ({config_name or 'model'}, {result.backend})",
                "params_m": result.params / 1e6 if result.params is not None else None,
                "gmacs": result.macs / 1e9, "source": f"measured: {result.mean_ms:.1f} ms, {result.achieved_tflops:.3f} TFLOP/s",
            })
    return rows


_COLUMNS = ("backend", "LR size", "batch", "mean ms", "median ms", "p90 ms", "p99 ms", "img/s", "out MP/s", "GMACs", "TFLOP/s")


def _row(result: LatencyResult) -> tuple[str, ...]:
    h, w = result.lr_size
    gmacs = f"{result.macs / 1e9:.2f}" if result.macs is not None else "-"
    tflops = f"{result.achieved_tflops:.3f}" if result.achieved_tflops is not None else "-"
    return (
        result.backend, f"{h}x{w}", str(result.batch), f"{result.mean_ms:.2f}", f"{result.median_ms:.2f}",
        f"{result.p90_ms:.2f}", f"{result.p99_ms:.2f}", f"{result.images_per_s:.2f}",
        f"{result.output_megapixels_per_s:.2f}", gmacs, tflops,
    )


def format_text(results: Sequence[LatencyResult], config_name: str | None = None) -> str:
    rows = [_COLUMNS, *(_row(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.rjust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.append("")
    lines.append("Table IV (x4, LR 180x270; the paper's FLOPs are multiply-accumulates)")
    for row in table_iv_rows(results, config_name):
        params = f"{row['params_m']:.2f} M" if row["params_m"] is not None else "-"
        lines.append(f"  {row['method']:32s} {params:>8s} {row['gmacs']:>9.2f} GMACs   {row['source']}")
    return "\n".join(lines)


def format_markdown(results: Sequence[LatencyResult], config_name: str | None = None) -> str:
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in results]
    lines += ["", "| method (Table IV, x4, LR 180x270) | params (M) | GMACs | source |", "|---|---|---|---|"]
    for row in table_iv_rows(results, config_name):
        params = f"{row['params_m']:.2f}" if row["params_m"] is not None else "-"
        lines.append(f"| {row['method']} | {params} | {row['gmacs']:.2f} | {row['source']} |")
    return "\n".join(lines)


def plot_latency(results: Sequence[LatencyResult], path: str | Path, title: str = "GLDFN latency") -> None:
    """Mean latency (with the p90 as an error bar) against LR megapixels, one line per backend; PNG written atomically."""
    from gldfn_model.common.atomic import atomic_output
    from gldfn_model.common.optional import import_pyplot

    plt = import_pyplot()

    figure, axes = plt.subplots(figsize=(6, 4), dpi=120)
    for backend in dict.fromkeys(r.backend for r in results):
        points = sorted((r for r in results if r.backend == backend), key=lambda r: r.lr_size[0] * r.lr_size[1])
        x = [r.lr_size[0] * r.lr_size[1] / 1e6 for r in points]
        y = [r.mean_ms for r in points]
        upper = [r.p90_ms - r.mean_ms for r in points]
        axes.errorbar(x, y, yerr=[[0] * len(y), [max(0.0, u) for u in upper]], marker="o", capsize=3, label=backend)
        for r, xi, yi in zip(points, x, y):
            axes.annotate(f"{r.lr_size[0]}x{r.lr_size[1]}", (xi, yi), textcoords="offset points", xytext=(4, -10), fontsize=7)
    axes.set_xlabel("LR image size (megapixels)")
    axes.set_ylabel("latency per batch (ms, mean; bar to p90)")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
