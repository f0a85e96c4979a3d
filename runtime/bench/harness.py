"""Latency harness: warm-up, timed iterations, statistics, and the model's work per image (MACs) turned into
achieved throughput, beside the paper's Table IV.

What is timed is a ``Contestant``: one (network, backend, device, precision) with a step bound to an input batch
and a timer. ``measure_interleaved`` times several in one run, in rotating order, so that machine noise falls on
all of them alike; ``measure_latency`` is the one-runner case. A runner's iteration is ``infer`` + ``synchronize``
on the host clock, unless the caller passes a ``timer`` (e.g. a CUDA-event timer) that runs one iteration and
returns milliseconds.
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
from gldfn_runtime.upscale.tiling import DEFAULT_BYTES_PER_LR_PIXEL
from gldfn_runtime.upscale.upscaler import available_memory

Timer = Callable[[Callable[[], object]], float]  # runs the callable once, returns milliseconds


class BenchmarkError(GldfnError, ValueError):
    """Benchmark settings that cannot be run."""


def check_sizes_fit_memory(lr_sizes: Sequence[Size], batch: int, scale: int, available: int | None = None) -> None:
    """Refuse an LR size whose one pass (a benchmark runs the whole image at once, untiled) needs more memory than is
    available (``available`` None: what the system reports), before anything is allocated or exported."""
    available = available_memory() if available is None else available
    if available is None:
        return
    for height, width in lr_sizes:
        per_pixel = DEFAULT_BYTES_PER_LR_PIXEL + 3 * 4 * (1 + scale * scale)  # working memory, input, output
        needed = batch * height * width * per_pixel
        if needed > available:
            raise BenchmarkError(
                f"--sizes {height}x{width}: a batch of {batch} at that LR size needs about {needed / 2**30:.1f} GiB "
                f"of memory, {available / 2**30:.1f} GiB are available; time smaller sizes (to upscale a large image, "
                "use gldfn upscale, which tiles it)")


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
    ms_per_gmac: float | None = None  # mean time / (GMACs x batch)
    model: str | None = None  # the network's name where several are compared
    device: str | None = None
    precision: str | None = None
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
    params: int | None = None, macs: int | None = None, *, model: str | None = None, device: str | None = None,
    precision: str | None = None,
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
        ms_per_gmac=float(times.mean()) / (macs * batch / 1e9) if macs else None,
        model=model, device=device, precision=precision, samples_ms=[float(t) for t in times],
    )


@dataclass
class Contestant:
    """One thing to time. ``prepare`` binds an ``N x 3 x h x w`` float32 batch (moved, cast, ...) and returns the
    step to time; ``timer`` runs a step once and returns milliseconds; ``work`` gives (params, MACs per image) at
    an LR size, or None."""

    backend: str
    scale: int
    prepare: Callable[[np.ndarray], Callable[[], object]]
    timer: Timer
    work: Callable[[Size], tuple[int, int]] | None = None
    model: str | None = None
    device: str | None = None
    precision: str | None = None


def runner_contestant(
    runner: Runner, *, timer: Timer | None = None, work: Callable[[Size], tuple[int, int]] | None = None,
    model: str | None = None, device: str | None = None, precision: str | None = None,
) -> Contestant:
    """A ``Runner`` as a contestant: its ``infer`` on the host batch, timed on the host clock unless ``timer``."""
    return Contestant(runner.name, runner.scale, lambda lr: lambda: runner.infer(lr), timer or host_timer(runner),
                      work, model, device, precision)


def measure_interleaved(
    contestants: Sequence[Contestant], lr_size: Size, *, iters: int, warmup: int, batch: int = 1, seed: int = 0,
) -> list[LatencyResult]:
    """``warmup`` untimed rounds, then ``iters`` timed rounds; each round runs every contestant once, the order
    rotating by one place per round so that none always runs first or right after a heavy neighbour."""
    if iters < 1 or warmup < 0 or batch < 1:
        raise BenchmarkError(f"need iters >= 1, warmup >= 0, batch >= 1 (got {iters}, {warmup}, {batch})")
    lr = np.random.default_rng(seed).random((batch, 3, *lr_size), dtype=np.float32)
    steps = [c.prepare(lr) for c in contestants]
    for _ in range(warmup):
        for contestant, step in zip(contestants, steps):
            contestant.timer(step)
    samples: list[list[float]] = [[] for _ in contestants]
    count = len(contestants)
    for round_index in range(iters):
        for offset in range(count):
            index = (round_index + offset) % count
            samples[index].append(contestants[index].timer(steps[index]))
    results = []
    for contestant, times in zip(contestants, samples):
        params, macs = contestant.work(lr_size) if contestant.work is not None else (None, None)
        results.append(summarize(contestant.backend, times, lr_size, batch, contestant.scale, warmup, params, macs,
                                 model=contestant.model, device=contestant.device, precision=contestant.precision))
    return results


def check_size(runner: Runner, lr_size: Size) -> None:
    """BenchmarkError unless ``runner`` accepts LR ``lr_size`` (its min and max size)."""
    height, width = lr_size
    for bound, word, ok in ((runner.min_size, "below the minimum", lambda a, b: a >= b), (runner.max_size, "above the maximum", lambda a, b: a <= b)):
        if bound is not None and not (ok(height, bound[0]) and ok(width, bound[1])):
            raise BenchmarkError(f"size {height}x{width} is {word} {bound[0]}x{bound[1]} that {runner.name} accepts")


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
    check_size(runner, lr_size)
    complexity = count_complexity(config, *lr_size) if config is not None else None
    work = (lambda _: (complexity.params, complexity.macs)) if complexity is not None else None
    contestant = runner_contestant(runner, timer=timer, work=work)
    (result,) = measure_interleaved([contestant], lr_size, iters=iters, warmup=warmup, batch=batch, seed=seed)
    return result


def _label(result: LatencyResult) -> str:
    """backend, with device and precision where they were set."""
    return " ".join(part for part in (result.backend, result.device, result.precision) if part)


def table_iv_rows(results: Sequence[LatencyResult], config_name: str | None) -> list[dict]:
    """Table IV's rows (params M, GMACs at 180x270) and ours at 180x270 when it was measured."""
    rows = [{"method": m, "params_m": p, "gmacs": g, "source": "paper Table IV"} for m, (p, g) in TABLE_IV.items()]
    for result in results:
        if tuple(result.lr_size) == TABLE_IV_LR_SIZE and result.macs is not None:
            method = (f"{result.model} ({_label(result)})" if result.model is not None
                      else f"ours ({config_name or 'model'}, {result.backend})")
            rows.append({
                "method": method,
                "params_m": result.params / 1e6 if result.params is not None else None,
                "gmacs": result.macs / 1e9, "source": f"measured: {result.mean_ms:.1f} ms, {result.achieved_tflops:.3f} TFLOP/s",
            })
    return rows


def claim_check(results: Sequence[LatencyResult]) -> list[dict]:
    """Table IV's claim put to the test: for each backend/device/precision timed at Table IV's LR size with two or
    more networks, the networks in order of Table IV's GMACs, of our GMACs and of measured latency."""
    from gldfn_model.peers import SPECS

    at_size = [r for r in results if tuple(r.lr_size) == TABLE_IV_LR_SIZE and r.model in SPECS and r.macs is not None]
    checks = []
    for label in dict.fromkeys(_label(r) for r in at_size):
        group = [r for r in at_size if _label(r) == label]
        if len(group) < 2:
            continue
        claimed = sorted(group, key=lambda r: TABLE_IV[SPECS[r.model].table_iv_name][1])
        checks.append({
            "backend": label,
            "by_table_iv_gmacs": [r.model for r in claimed],
            "by_our_gmacs": [r.model for r in sorted(group, key=lambda r: r.macs)],
            "by_latency": [r.model for r in sorted(group, key=lambda r: r.mean_ms)],
            "latency_ms": {r.model: round(r.mean_ms, 3) for r in group},
            "ms_per_gmac": {r.model: round(r.ms_per_gmac, 4) for r in group},
            "fewer_macs_means_less_time": claimed == sorted(group, key=lambda r: r.mean_ms),
        })
    return checks


def format_claim(checks: Sequence[dict]) -> str:
    lines = []
    for check in checks:
        latency = ", ".join(f"{m} {check['latency_ms'][m]:.1f} ms" for m in check["by_latency"])
        lines += [
            f"Table IV's claim at 180x270, {check['backend']}:",
            f"  by Table IV GMACs: {' < '.join(check['by_table_iv_gmacs'])}",
            f"  by our GMACs:      {' < '.join(check['by_our_gmacs'])}",
            f"  by latency:        {latency}",
        ]
    return "\n".join(lines)


_COLUMNS = ("backend", "LR size", "batch", "mean ms", "median ms", "p90 ms", "p99 ms", "img/s", "out MP/s", "GMACs",
            "TFLOP/s", "ms/GMAC")
_MODEL_COLUMNS = ("model", "device", "precision")


def _has_models(results: Sequence[LatencyResult]) -> bool:
    return any(r.model is not None for r in results)


def _columns(results: Sequence[LatencyResult]) -> tuple[str, ...]:
    return (*_MODEL_COLUMNS, *_COLUMNS) if _has_models(results) else _COLUMNS


def _row(result: LatencyResult, with_model: bool = False) -> tuple[str, ...]:
    h, w = result.lr_size
    gmacs = f"{result.macs / 1e9:.2f}" if result.macs is not None else "-"
    tflops = f"{result.achieved_tflops:.3f}" if result.achieved_tflops is not None else "-"
    per_gmac = f"{result.ms_per_gmac:.3f}" if result.ms_per_gmac is not None else "-"
    head = (result.model or "-", result.device or "-", result.precision or "-") if with_model else ()
    return (
        *head, result.backend, f"{h}x{w}", str(result.batch), f"{result.mean_ms:.2f}", f"{result.median_ms:.2f}",
        f"{result.p90_ms:.2f}", f"{result.p99_ms:.2f}", f"{result.images_per_s:.2f}",
        f"{result.output_megapixels_per_s:.2f}", gmacs, tflops, per_gmac,
    )


def format_text(results: Sequence[LatencyResult], config_name: str | None = None) -> str:
    columns, with_model = _columns(results), _has_models(results)
    rows = [columns, *(_row(r, with_model) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = ["  ".join(cell.rjust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.append("")
    lines.append("Table IV (x4, LR 180x270; the paper's FLOPs are multiply-accumulates)")
    for row in table_iv_rows(results, config_name):
        params = f"{row['params_m']:.2f} M" if row["params_m"] is not None else "-"
        lines.append(f"  {row['method']:32s} {params:>8s} {row['gmacs']:>9.2f} GMACs   {row['source']}")
    claim = format_claim(claim_check(results))
    return "\n".join(lines + (["", claim] if claim else []))


def format_markdown(results: Sequence[LatencyResult], config_name: str | None = None) -> str:
    columns, with_model = _columns(results), _has_models(results)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_row(r, with_model)) + " |" for r in results]
    lines += ["", "| method (Table IV, x4, LR 180x270) | params (M) | GMACs | source |", "|---|---|---|---|"]
    for row in table_iv_rows(results, config_name):
        params = f"{row['params_m']:.2f}" if row["params_m"] is not None else "-"
        lines.append(f"| {row['method']} | {params} | {row['gmacs']:.2f} | {row['source']} |")
    return "\n".join(lines)


def plot_latency(results: Sequence[LatencyResult], path: str | Path, title: str = "GLDFN latency", *,
                 overwrite: bool = False) -> None:
    """Mean latency (with the p90 as an error bar) against LR megapixels, one line per backend; PNG written atomically
    (an existing file is replaced only with ``overwrite``)."""
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
    with atomic_output(path, overwrite=overwrite) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)


def plot_latency_vs_macs(results: Sequence[LatencyResult], path: str | Path, title: str = "Table IV networks", *,
                         overwrite: bool = False) -> None:
    """Mean latency against each network's GMACs (our count), one colour per backend/device/precision and one marker
    per network; at Table IV's LR size a hollow marker sits at the paper's GMACs on the same latency, joined to ours
    by a dotted line. PNG, written atomically (an existing file is replaced only with ``overwrite``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gldfn_model.common.atomic import atomic_output
    from gldfn_model.peers import SPECS

    markers = dict(zip(dict.fromkeys(r.model for r in results), "osD^vP*X"))
    colours = {label: f"C{i}" for i, label in enumerate(dict.fromkeys(_label(r) for r in results))}
    several_sizes = len({tuple(r.lr_size) for r in results}) > 1
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for r in results:
        if r.macs is None:
            continue
        x, colour, marker = r.macs / 1e9, colours[_label(r)], markers[r.model]
        axes.scatter([x], [r.mean_ms], color=colour, marker=marker, zorder=3)
        if several_sizes:
            axes.annotate(f"{r.lr_size[0]}x{r.lr_size[1]}", (x, r.mean_ms), textcoords="offset points", xytext=(5, 3),
                          fontsize=7)
        spec = SPECS.get(r.model or "")
        if spec is not None and tuple(r.lr_size) == TABLE_IV_LR_SIZE:
            claimed = TABLE_IV[spec.table_iv_name][1]
            axes.scatter([claimed], [r.mean_ms], facecolors="none", edgecolors=colour, marker=marker, s=80, zorder=2)
            axes.plot([claimed, x], [r.mean_ms, r.mean_ms], linestyle=":", color=colour, linewidth=1)
    for label, colour in colours.items():
        axes.scatter([], [], color=colour, marker="o", label=label)
    for model, marker in markers.items():
        axes.scatter([], [], color="grey", marker=marker, label=model)
    axes.scatter([], [], facecolors="none", edgecolors="grey", marker="o", s=80, label="Table IV's GMACs (180x270)")
    axes.set_yscale("log")
    axes.set_xlabel("GMACs per image (filled: our count; hollow: Table IV)")
    axes.set_ylabel("latency per batch (ms, mean, log scale)")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    with atomic_output(path, overwrite=overwrite) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
