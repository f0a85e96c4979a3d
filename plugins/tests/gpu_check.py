"""GPU check of libgldfn_trt_plugins.so through its real plugin interface (plugin_harness: getCreators,
createPlugin, attachToContext, onShapeChange, enqueue with PluginTensorDesc and device pointers) against the
PyTorch reference, then timing against the reference and the DRAM roofline. Run by gpu_check.sh.

  python3 plugins/tests/gpu_check.py --plugin LIB --harness HARNESS [--quick] [--json OUT]

--quick checks small shapes only (for compute-sanitizer)."""
from __future__ import annotations

import argparse
import ctypes
import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from plugin_harness import PHASE_BUILD, PluginHarness  # noqa: E402

from gldfn_model.ops.contract import load_contract  # noqa: E402
from gldfn_model.ops.ldf_op import local_dynamic_filter_reference  # noqa: E402

DTYPES = {"float32": torch.float32, "float16": torch.float16}
SMALL_SHAPES = [(1, 3, 1, 1), (2, 5, 17, 23), (1, 7, 9, 130), (3, 16, 33, 65), (1, 64, 8, 8)]
MAIN_CASE = (1, 64, 360, 540)  # the H100 target: C = 64, 360 x 540, FP16, k = 3
HBM_NOMINAL_GBS = {"NVIDIA H200": 4800.0, "NVIDIA H100 80GB HBM3": 3350.0}  # datasheets; else the driver's peak
LARGE_SHAPES = [MAIN_CASE, (2, 32, 121, 257)]
WINDOWS = [(1, 1), (3, 1), (3, 2), (5, 1), (5, 2), (7, 1), (7, 3), (7, 16), (3, 9)]
# Timed: the paper's two LR sizes at C = 64, k = 3, FP16 and FP32, and a dilated window (runtime-dilation kernel).
TIMED_CASES = [(MAIN_CASE, 3, 1, "float16"), (MAIN_CASE, 3, 1, "float32"), ((1, 64, 180, 270), 3, 1, "float16"),
               ((1, 64, 180, 270), 3, 1, "float32"), (MAIN_CASE, 5, 2, "float16")]


def make_inputs(shape, kernel_size, dtype, seed, misalign=False):
    n, c, h, w = shape
    taps = kernel_size * kernel_size
    gen = torch.Generator(device="cuda").manual_seed(seed)

    def rand(*size):
        if not misalign:
            return torch.randn(*size, generator=gen, device="cuda", dtype=torch.float32).to(dtype)
        # Offset by one element: the kernel must fall back from its 16-byte vector loads and stores.
        flat = torch.randn(int(torch.tensor(size).prod()) + 1, generator=gen, device="cuda").to(dtype)
        return flat[1:].view(*size)

    return rand(n, c, h, w), rand(n, taps, h, w), rand(n, c, taps)


def run_plugin(harness, plugin, x, spatial, channel, kernel_size, out=None):
    out = torch.empty_like(x) if out is None else out
    dtype = "float16" if x.dtype == torch.float16 else "float32"
    prepared = harness.prepare(plugin, dtype, tuple(x.shape), kernel_size)
    try:
        status = harness.enqueue(prepared, x.data_ptr(), spatial.data_ptr(), channel.data_ptr(), out.data_ptr(),
                                 torch.cuda.current_stream().cuda_stream)
    finally:
        harness.release(prepared)
    if status != 0:
        raise RuntimeError(f"enqueue returned {status}: {harness.take_log()}")
    torch.cuda.synchronize()
    return out


def check_accuracy(harness, shapes, windows, contract, misalign_too=True) -> list[dict]:
    results = []
    for dtype_name, dtype in DTYPES.items():
        tolerance = contract.tolerance(dtype_name)
        for shape in shapes:
            for kernel_size, dilation in windows:
                for misalign in (False, True) if misalign_too else (False,):
                    plugin = harness.create(kernel_size, dilation, PHASE_BUILD)
                    restored, _, _ = harness.roundtrip(plugin)  # run the runtime-phase plugin, as an engine does
                    x, sp, ch = make_inputs(shape, kernel_size, dtype, seed=len(results), misalign=misalign)
                    out = run_plugin(harness, restored, x, sp, ch, kernel_size)
                    ref = local_dynamic_filter_reference(x.float(), sp.float(), ch.float(), kernel_size, dilation)
                    data_range = float(ref.max() - ref.min()) or 1.0
                    err = float((out.float() - ref).abs().max()) / data_range
                    ok = err <= tolerance and bool(torch.isfinite(out).all())
                    results.append({"dtype": dtype_name, "shape": list(shape), "kernel_size": kernel_size,
                                    "dilation": dilation, "misaligned": misalign, "max_abs_rel_range": err, "ok": ok})
                    print(f"{'ok  ' if ok else 'FAIL'} {dtype_name} {shape} k={kernel_size} d={dilation}"
                          f"{' misaligned' if misalign else ''}: max|err|/range = {err:.2e} (tol {tolerance:g})")
                    harness.destroy(restored)
                    harness.destroy(plugin)
    return results


def time_cuda(fn, iterations) -> float:
    """Mean milliseconds per call."""
    for _ in range(3):
        fn(0)
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for i in range(iterations):
        fn(i)
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / iterations


def require_cuda(script: str) -> None:
    """Exit 2 with one clear line where PyTorch sees no CUDA GPU (the checks need one)."""
    if not torch.cuda.is_available():
        print(f"{script}: no CUDA GPU visible to PyTorch {torch.__version__} (CUDA build: {torch.version.cuda}); "
              "run it on the GPU machine", file=sys.stderr)
        sys.exit(2)


def buffer_sets(nbytes: int) -> int:
    """Input sets to rotate so that successive calls cannot be served from L2: three L2s' worth, at least 4."""
    l2 = getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 0) or 64 * 2**20
    return max(4, -(-3 * l2 // nbytes))


def time_graph(fn, calls_per_graph: int, replays: int = 20) -> float:
    """Mean device milliseconds per call of ``fn(i)``, captured ``calls_per_graph`` times in a CUDA graph and
    replayed: no host launch overhead in the figure (a few-microsecond kernel launched from Python would otherwise
    be timed at Python's pace). Falls back to plain launches when capture fails."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for i in range(calls_per_graph):  # warm-up outside the capture, as torch.cuda.graphs requires
            fn(i)
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            for i in range(calls_per_graph):
                fn(i)
    except RuntimeError as error:
        print(f"CUDA graph capture failed ({error}); timing plain launches")
        return time_cuda(fn, 200)
    graph.replay()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(replays):
        graph.replay()
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / (replays * calls_per_graph)


def bytes_moved(shape, kernel_size: int, dtype: torch.dtype) -> int:
    """The fewest bytes one call moves through DRAM: x and out once, the spatial and channel filters once."""
    n, c, h, w = shape
    element = torch.finfo(dtype).bits // 8
    return element * (2 * n * c * h * w + n * kernel_size**2 * h * w + n * c * kernel_size**2)


def roofline(ms: float, moved: int, peak: float | None, copy: float) -> dict:
    """Achieved bandwidth of a call against the HBM datasheet figure, the driver's peak and a device copy."""
    achieved = moved / (ms * 1e-3) / 1e9
    nominal = HBM_NOMINAL_GBS.get(torch.cuda.get_device_name(0), peak)
    return {"bytes_moved": moved, "achieved_gbs": achieved, "hbm_nominal_gbs": nominal,
            "roofline_fraction": achieved / nominal if nominal else None,
            "peak_fraction": achieved / peak if peak else None, "copy_fraction": achieved / copy,
            "roofline_floor_us": moved / (nominal * 1e9) * 1e6 if nominal else None}


def peak_bandwidth_gbs() -> float | None:
    """2 x memory clock x bus width, from the CUDA driver (attributes 36 and 37 of cuda.h)."""
    try:
        driver = ctypes.CDLL("libcuda.so.1")
        device, clock_khz, bus_bits = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        assert driver.cuInit(0) == 0 and driver.cuDeviceGet(ctypes.byref(device), torch.cuda.current_device()) == 0
        assert driver.cuDeviceGetAttribute(ctypes.byref(clock_khz), 36, device) == 0
        assert driver.cuDeviceGetAttribute(ctypes.byref(bus_bits), 37, device) == 0
        return 2.0 * clock_khz.value * 1e3 * bus_bits.value / 8 / 1e9
    except (OSError, AssertionError) as error:
        print(f"peak bandwidth from the driver unavailable ({error!r}); only the measured copy bandwidth is reported")
        return None


def copy_bandwidth_gbs() -> float:
    src = torch.empty(512 * 2**20, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = time_cuda(lambda i: dst.copy_(src), 20)
    return 2 * src.numel() / (ms * 1e-3) / 1e9


def benchmark(harness, shape, kernel_size, dilation, dtype_name) -> dict:
    dtype = DTYPES[dtype_name]
    plugin = harness.create(kernel_size, dilation, PHASE_BUILD)
    moved = bytes_moved(shape, kernel_size, dtype)
    sets = [make_inputs(shape, kernel_size, dtype, seed=100 + i) for i in range(buffer_sets(moved))]
    outs = [torch.empty_like(s[0]) for s in sets]
    dtype_key = "float16" if dtype == torch.float16 else "float32"
    prepared = harness.prepare(plugin, dtype_key, tuple(shape), kernel_size)

    def plugin_call(i):
        x, sp, ch = sets[i % len(sets)]
        # The current stream at each call: a capturing stream while the graph is recorded.
        harness.enqueue(prepared, x.data_ptr(), sp.data_ptr(), ch.data_ptr(), outs[i % len(sets)].data_ptr(),
                        torch.cuda.current_stream().cuda_stream)

    plugin_ms = time_graph(plugin_call, len(sets))
    reference_ms = time_cuda(lambda i: local_dynamic_filter_reference(*sets[i % len(sets)], kernel_size, dilation), 20)
    harness.release(prepared)
    harness.destroy(plugin)
    return {"shape": list(shape), "kernel_size": kernel_size, "dilation": dilation, "dtype": dtype_name,
            "plugin_ms": plugin_ms, "reference_ms": reference_ms, "speedup_vs_reference": reference_ms / plugin_ms,
            "bytes_moved": moved}


def print_timing(label: str, row: dict) -> None:
    print(f"{row['dtype']} {tuple(row['shape'])} k={row['kernel_size']} d={row['dilation']}: {label} "
          f"{row['ms'] * 1e3:.1f} us, PyTorch reference {row['reference_ms'] * 1e3:.0f} us "
          f"({row['speedup_vs_reference']:.1f}x), {row['achieved_gbs']:.0f} GB/s = "
          f"{100 * (row['roofline_fraction'] or float('nan')):.0f}% of the HBM roofline "
          f"({row['hbm_nominal_gbs'] or float('nan'):.0f} GB/s; floor {row['roofline_floor_us'] or float('nan'):.1f} us), "
          f"{100 * row['copy_fraction']:.0f}% of a device copy")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plugin", type=Path, required=True)
    parser.add_argument("--harness", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="small shapes only, no timing (for compute-sanitizer)")
    parser.add_argument("--profile", action="store_true", help="only run the main case twice (for Nsight Compute)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    require_cuda("gpu_check.py")

    contract = load_contract()
    harness = PluginHarness(args.harness, args.plugin, contract.name, contract.plugin_version, contract.plugin_namespace)
    print(f"device: {torch.cuda.get_device_name(0)}, capability {torch.cuda.get_device_capability(0)}")
    report: dict = {"device": torch.cuda.get_device_name(0)}
    if args.profile:
        plugin = harness.create(3, 1, PHASE_BUILD)
        inputs = make_inputs(MAIN_CASE, 3, torch.float16, seed=0)
        for _ in range(2):  # the profiler skips the first launch
            run_plugin(harness, plugin, *inputs, 3)
        harness.destroy(plugin)
        return 0
    if args.quick:
        report["accuracy"] = check_accuracy(harness, SMALL_SHAPES[:3], [(3, 1), (5, 2), (7, 16)], contract)
    else:
        report["accuracy"] = check_accuracy(harness, SMALL_SHAPES, WINDOWS, contract)
        report["accuracy"] += check_accuracy(harness, LARGE_SHAPES, [(3, 1), (5, 2)], contract, misalign_too=False)
        peak = peak_bandwidth_gbs()
        copy = copy_bandwidth_gbs()
        report.update(peak_bandwidth_gbs=peak, copy_bandwidth_gbs=copy)
        print(f"DRAM bandwidth: peak {peak or float('nan'):.0f} GB/s (clock x bus), device copy {copy:.0f} GB/s")
        report["timing"] = []
        for shape, k, d, dt in TIMED_CASES:
            row = benchmark(harness, shape, k, d, dt)
            row.update(roofline(row["plugin_ms"], row["bytes_moved"], peak, copy), ms=row["plugin_ms"])
            report["timing"].append(row)
            print_timing("plugin", row)
        target = report["timing"][0]
        report["targets_met"] = {"speedup_ge_10x": target["speedup_vs_reference"] >= 10,
                                 "roofline_ge_60pct": bool(target["roofline_fraction"] and target["roofline_fraction"] >= 0.6)}
        print(f"targets at C=64, 360x540, FP16: {report['targets_met']}")
    return finish(report, args.json)


def finish(report: dict, json_path: Path | None) -> int:
    """Print the accuracy tally, write the JSON report if asked; exit status 1 when a case failed."""
    failures = [r for r in report["accuracy"] if not r["ok"]]
    print(f"accuracy: {len(report['accuracy']) - len(failures)}/{len(report['accuracy'])} cases within tolerance")
    if json_path:
        json_path.write_text(json.dumps(report, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
