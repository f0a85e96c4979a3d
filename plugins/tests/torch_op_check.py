"""GPU check of the PyTorch op gldfn::local_dynamic_filter on CUDA, which runs the project's kernel through the
torch extension of gldfn_model/cuda_ops.py: builds the extension (JIT), compares the op with the PyTorch reference
(FP32 and FP16 against the contract's tolerances, odd shapes, k 3/5, dilation 1/2, strided inputs) and times it
against the reference and the HBM roofline (bytes moved / time, CUDA-graph replays so that Python's launch pace
is not what is timed). Run by gpu_check.sh and benchmarks/gpu_run.sh.

  python3 plugins/tests/torch_op_check.py [--quick | --build-only | --profile] [--json OUT]

--quick checks small shapes only (for compute-sanitizer); --build-only builds and loads the extension;
--profile launches the main case in FP16 twice and in FP32 once (for Nsight Compute). Exits 2 without a GPU."""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_check import (  # noqa: E402
    DTYPES,
    LARGE_SHAPES,
    MAIN_CASE,
    SMALL_SHAPES,
    TIMED_CASES,
    buffer_sets,
    bytes_moved,
    copy_bandwidth_gbs,
    finish,
    make_inputs,
    peak_bandwidth_gbs,
    print_timing,
    require_cuda,
    roofline,
    time_cuda,
    time_graph,
)

from gldfn_model.ops import cuda_ops  # noqa: E402
from gldfn_model.ops.contract import load_contract  # noqa: E402
from gldfn_model.ops.ldf_op import local_dynamic_filter_reference  # noqa: E402

WINDOWS = [(1, 1), (3, 1), (3, 2), (5, 1), (5, 2), (7, 1), (7, 3), (3, 9), (7, 16)]


def run_op(x, spatial, channel, kernel_size, dilation):
    """The op as a user calls it; a fallback warning (the extension not used) is an error here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return torch.ops.gldfn.local_dynamic_filter(x, spatial, channel, kernel_size, dilation)


def check_accuracy(shapes, windows, contract, strided_too=True) -> list[dict]:
    results = []
    for dtype_name, dtype in DTYPES.items():
        tolerance = contract.tolerance(dtype_name)
        for shape in shapes:
            for kernel_size, dilation in windows:
                for strided in (False, True) if strided_too else (False,):
                    x, sp, ch = make_inputs(shape, kernel_size, dtype, seed=len(results))
                    if strided:  # same values, W-major storage: the binding must make them contiguous
                        x = x.transpose(2, 3).contiguous().transpose(2, 3)
                    try:
                        out = run_op(x, sp, ch, kernel_size, dilation)
                        torch.cuda.synchronize()
                    except (RuntimeWarning, RuntimeError) as error:
                        results.append({"dtype": dtype_name, "shape": list(shape), "kernel_size": kernel_size,
                                        "dilation": dilation, "strided": strided, "error": str(error), "ok": False})
                        print(f"FAIL {dtype_name} {shape} k={kernel_size} d={dilation}: {error}")
                        continue
                    ref = local_dynamic_filter_reference(x.float(), sp.float(), ch.float(), kernel_size, dilation)
                    data_range = float(ref.max() - ref.min()) or 1.0
                    err = float((out.float() - ref).abs().max()) / data_range
                    # Contiguous whatever the input's strides: the op's fake kernel promises that to torch.compile.
                    ok = (err <= tolerance and out.dtype == dtype and out.is_contiguous()
                          and bool(torch.isfinite(out).all()))
                    results.append({"dtype": dtype_name, "shape": list(shape), "kernel_size": kernel_size,
                                    "dilation": dilation, "strided": strided, "max_abs_rel_range": err, "ok": ok})
                    print(f"{'ok  ' if ok else 'FAIL'} {dtype_name} {shape} k={kernel_size} d={dilation}"
                          f"{' strided' if strided else ''}: max|err|/range = {err:.2e} (tol {tolerance:g})")
    return results


def check_fake_kernel() -> dict:
    """torch.library.opcheck on CUDA with a channels-last input: the fake kernel's output strides must be those of
    the CUDA kernel's (torch.compile plans with them)."""
    x, sp, ch = make_inputs((1, 8, 12, 20), 3, torch.float32, seed=7)
    x = x.to(memory_format=torch.channels_last)
    result = {"case": "opcheck, channels-last input", "ok": True}
    try:
        torch.library.opcheck(torch.ops.gldfn.local_dynamic_filter, (x, sp, ch, 3, 1))
    except Exception as error:  # noqa: BLE001 - opcheck raises OpCheckError and the errors of what it runs
        result.update(ok=False, error=f"{type(error).__name__}: {error}"[:2000])
    print(f"{'ok  ' if result['ok'] else 'FAIL'} torch.library.opcheck on CUDA, channels-last input"
          + ("" if result["ok"] else f": {result['error']}"))
    return result


def benchmark(shape, kernel_size, dilation, dtype_name) -> dict:
    dtype = DTYPES[dtype_name]
    moved = bytes_moved(shape, kernel_size, dtype)
    sets = [make_inputs(shape, kernel_size, dtype, seed=200 + i) for i in range(buffer_sets(moved))]
    op = torch.ops.gldfn.local_dynamic_filter
    op_ms = time_graph(lambda i: op(*sets[i % len(sets)], kernel_size, dilation), len(sets))
    reference_ms = time_cuda(lambda i: local_dynamic_filter_reference(*sets[i % len(sets)], kernel_size, dilation), 20)
    return {"shape": list(shape), "kernel_size": kernel_size, "dilation": dilation, "dtype": dtype_name,
            "op_ms": op_ms, "reference_ms": reference_ms, "speedup_vs_reference": reference_ms / op_ms}


def profile() -> None:
    """The main case in FP16 twice (Nsight Compute skips the first launch), then in FP32."""
    for dtype, launches in ((torch.float16, 2), (torch.float32, 1)):
        inputs = make_inputs(MAIN_CASE, 3, dtype, seed=0)
        for _ in range(launches):
            run_op(*inputs, 3, 1)
    torch.cuda.synchronize()


def main() -> int:
    parser = argparse.ArgumentParser()
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small shapes only, no timing (for compute-sanitizer)")
    mode.add_argument("--build-only", action="store_true", help="build and load the extension, nothing else")
    mode.add_argument("--profile", action="store_true", help="the main case only (for Nsight Compute)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    require_cuda("torch_op_check.py")

    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    start = time.perf_counter()
    status = cuda_ops.load_extension()
    report: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                    "extension_available": status.available, "extension_reason": status.reason,
                    "extension_load_seconds": time.perf_counter() - start}
    if not status.available:
        print(f"FAIL the CUDA extension is unavailable, the op would run the reference: {status.reason}")
        if args.json:
            args.json.write_text(json.dumps(report, indent=1))
        return 1
    print(f"extension loaded in {report['extension_load_seconds']:.1f} s (JIT build or cache)")
    if args.build_only:
        if args.json:
            args.json.write_text(json.dumps(report, indent=1))
        return 0
    if args.profile:
        profile()
        return 0

    contract = load_contract()
    report["accuracy"] = [check_fake_kernel()]  # counted with the accuracy cases
    if args.quick:
        report["accuracy"] += check_accuracy(SMALL_SHAPES[:3], [(3, 1), (5, 2)], contract)
    else:
        report["accuracy"] += check_accuracy(SMALL_SHAPES, WINDOWS, contract)
        report["accuracy"] += check_accuracy(LARGE_SHAPES, [(3, 1), (5, 2)], contract, strided_too=False)
        peak, copy = peak_bandwidth_gbs(), copy_bandwidth_gbs()
        report.update(peak_bandwidth_gbs=peak, copy_bandwidth_gbs=copy)
        print(f"DRAM bandwidth: peak {peak or float('nan'):.0f} GB/s (clock x bus), device copy {copy:.0f} GB/s")
        report["timing"] = []
        for shape, k, d, dt in TIMED_CASES:
            row = benchmark(shape, k, d, dt)
            row.update(roofline(row["op_ms"], bytes_moved(shape, k, DTYPES[dt]), peak, copy), ms=row["op_ms"])
            report["timing"].append(row)
            print_timing("op (CUDA extension)", row)
        target = report["timing"][0]
        report["targets_met"] = {"speedup_ge_10x": target["speedup_vs_reference"] >= 10,
                                 "roofline_ge_60pct": bool(target["roofline_fraction"]
                                                           and target["roofline_fraction"] >= 0.6)}
        print(f"targets at C=64, 360x540, FP16: {report['targets_met']}")
    return finish(report, args.json)


if __name__ == "__main__":
    sys.exit(main())
