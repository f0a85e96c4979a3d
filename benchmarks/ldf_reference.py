"""Reference LDF op (sum of shifted products) versus an unfold-based version: time per call and peak extra
memory, C=64, 256x256, batch 1, float32, CPU. Each variant's memory is measured in a fresh process as the
growth of peak RSS over the RSS once the inputs exist. Target: reference peak extra memory <= 3x the input,
time no worse than unfold.

    python benchmarks/ldf_reference.py [--channels 64 --size 256 --repeat 10]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F


def unfold_filter(x: torch.Tensor, spatial: torch.Tensor, channel: torch.Tensor, k: int, d: int) -> torch.Tensor:
    n, c, h, w = x.shape
    cols = F.unfold(x, k, dilation=d, padding=d * (k // 2)).view(n, c, k * k, h, w)
    weights = spatial.unsqueeze(1) * channel[:, :, :, None, None]
    return (cols * weights).sum(dim=2)


def reference_filter(x: torch.Tensor, spatial: torch.Tensor, channel: torch.Tensor, k: int, d: int) -> torch.Tensor:
    import gldfn_model.ops.ldf_op  # noqa: F401 - registers the op

    return torch.ops.gldfn.local_dynamic_filter(x, spatial, channel, k, d)


VARIANTS = {"reference": reference_filter, "unfold": unfold_filter}


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(variant: str, channels: int, size: int, repeat: int) -> dict:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, channels, size, size, generator=g)
    spatial = torch.randn(1, 9, size, size, generator=g)
    channel = torch.randn(1, channels, 9, generator=g)
    fn = VARIANTS[variant]
    with torch.no_grad():
        fn(x[:, :, :8, :8].contiguous(), spatial[:, :, :8, :8].contiguous(), channel, 3, 1)  # warm up kernels
        base = peak_rss_bytes()
        out = fn(x, spatial, channel, 3, 1)
        peak = peak_rss_bytes()
        start = time.perf_counter()
        for _ in range(repeat):
            out = fn(x, spatial, channel, 3, 1)
        seconds = (time.perf_counter() - start) / repeat
    return {"variant": variant, "ms_per_call": seconds * 1e3, "peak_extra_bytes": peak - base,
            "input_bytes": x.numel() * x.element_size(), "checksum": float(out.double().sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--child", choices=sorted(VARIANTS))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.channels, args.size, args.repeat)))
        return
    results = {}
    for variant in VARIANTS:
        cmd = [sys.executable, __file__, "--child", variant, "--channels", str(args.channels), "--size", str(args.size), "--repeat", str(args.repeat)]
        results[variant] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    ref, unf = results["reference"], results["unfold"]
    mib = 1 / 2**20
    print(f"LDF k=3 d=1, C={args.channels}, {args.size}x{args.size}, batch 1, float32, CPU, 1 thread; input {ref['input_bytes'] * mib:.1f} MiB")
    print(f"{'variant':10s} {'ms/call':>9s} {'peak extra MiB':>15s} {'x input':>8s}")
    for r in (ref, unf):
        print(f"{r['variant']:10s} {r['ms_per_call']:9.2f} {r['peak_extra_bytes'] * mib:15.1f} {r['peak_extra_bytes'] / r['input_bytes']:8.2f}")
    print(f"time ratio reference/unfold: {ref['ms_per_call'] / unf['ms_per_call']:.2f}; memory ratio: {ref['peak_extra_bytes'] / max(1, unf['peak_extra_bytes']):.2f}")
    print(f"outputs agree: {abs(ref['checksum'] - unf['checksum']) <= 1e-6 * max(1.0, abs(unf['checksum']))}")
    mem_ok = ref["peak_extra_bytes"] <= 3 * ref["input_bytes"]
    time_ok = ref["ms_per_call"] <= unf["ms_per_call"]
    print(f"targets: memory <= 3x input: {'met' if mem_ok else 'MISSED'}; time no worse than unfold: {'met' if time_ok else 'MISSED'}")


if __name__ == "__main__":
    main()
