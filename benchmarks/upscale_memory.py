"""Peak memory (RSS) of upscaling one photo x4 with the defaults, measured on a subprocess. The figures in
docs/tiling.md ("Memory") are this script's output.

For each size a synthetic 4:3 JPEG photo is made (a real image, resized, with sensor-like noise), and a child
process runs what ``gldfn upscale PHOTO -o OUT --threads N`` runs for one file (``build_upscaler`` and
``upscale_file``: default tiles from the memory budget, the output assembled in an ``ImageCanvas``), printing
its progress per tile. The parent reads the child's peak RSS from ``os.wait4``. With ``--time-limit`` a child
still running is stopped then, and the row says how far it got: the peak RSS of a partial run.

The child also prints its RSS before the file (Python, PyTorch and the model loaded) and the upscaler's estimate
for the file: the decoded input, the output image and the tiler's working memory (``Upscaler.memory_needed``). The
"measured" column is the peak minus that RSS: what the file cost, set against the estimate.

    python benchmarks/upscale_memory.py [--megapixels 3 12 24] [--time-limit 900] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

SCALE = 4


def make_photo(path: Path, megapixels: float, seed: int = 0) -> tuple[int, int]:
    """A ``megapixels`` 4:3 JPEG: a real image when the shared sets are there (else a synthetic card), resized
    with bicubic, plus Gaussian noise of 2 grey levels."""
    from gldfn_model.data.reference_inputs import real_image_input

    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    height = int(round(width * 3 / 4))
    source = real_image_input(1, 96, 128, 1).lr[0].transpose(1, 2, 0)
    image = Image.fromarray(np.round(source * 255).astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    pixels = np.asarray(image).astype(np.int16)
    rng = np.random.default_rng(seed)
    for row in range(0, height, 512):  # in strips: the noise of a whole 24 MP image would be 580 MB of floats
        strip = pixels[row : row + 512]
        strip += np.round(rng.normal(0, 2, strip.shape)).astype(np.int16)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=92)
    return width, height


def resident_bytes() -> int:
    """This process's resident set (VmRSS), in bytes (Linux)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def file_estimate(upscaler, height: int, width: int) -> int:
    """Bytes an RGB JPEG of ``height x width`` is estimated to need: the decoded input (3 bytes a pixel), the output
    image (``canvas_bytes``) and the tiler's working memory."""
    from gldfn_runtime.upscale.upscaler import canvas_bytes

    scale = upscaler.scale
    return height * width * 3 + canvas_bytes(height * scale, width * scale, 3, np.uint8) + upscaler.memory_needed(height, width)


def child(source: Path, target: Path, threads: int) -> None:
    """Upscale one file as ``gldfn upscale`` does, printing ``tile DONE TOTAL SECONDS`` lines."""
    from gldfn_runtime.cli.upscale import Backend, build_upscaler
    from gldfn_runtime.upscale.tiling import DEFAULT_OVERLAP
    from gldfn_runtime.upscale.upscaler import upscale_file

    start = time.perf_counter()
    upscaler = build_upscaler(Backend.torch, SCALE, threads=threads, overlap=DEFAULT_OVERLAP)
    width, height = Image.open(source).size
    tile = upscaler.tile_for(height, width)
    print(f"tile {tile}", flush=True)
    print(f"estimate {file_estimate(upscaler, height, width)}", flush=True)
    print(f"before {resident_bytes()}", flush=True)

    def on_tile(done: int, total: int) -> None:
        print(f"tiles {done} {total} {time.perf_counter() - start:.1f}", flush=True)

    upscale_file(upscaler, source, target, on_tile=on_tile)
    print(f"written {time.perf_counter() - start:.1f}", flush=True)


def measure(source: Path, target: Path, threads: int, time_limit: float | None) -> dict:
    """Run the child on ``source``; its peak RSS, time, tiles done and whether it finished."""
    command = [sys.executable, __file__, "--child", str(source), str(target), "--threads", str(threads)]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    errors: list[str] = []
    readers = [threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True),
               threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True)]
    for reader in readers:
        reader.start()
    finished = None
    while finished is None:
        done_pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if done_pid:
            finished = (status, usage)
        elif time_limit is not None and time.perf_counter() - start > time_limit:
            process.send_signal(signal.SIGKILL)
            _, status, usage = os.wait4(process.pid, 0)
            finished = (status, usage)
        else:
            time.sleep(0.5)
    process.returncode = os.waitstatus_to_exitcode(finished[0])  # reaped here, not by Popen
    for reader in readers:
        reader.join()
    status, usage = finished
    lines = [line.strip() for line in lines]
    tiles = [line.split() for line in lines if line.startswith("tiles ")]
    def value(name: str) -> int:
        return next((int(line.split()[1]) for line in lines if line.startswith(f"{name} ")), 0)

    return {
        "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "before_mb": value("before") / 2**20,
        "estimate_mb": value("estimate") / 2**20,
        "seconds": time.perf_counter() - start,
        "tile": next((line[5:] for line in lines if line.startswith("tile ")), "?"),
        "tiles_done": int(tiles[-1][1]) if tiles else 0,
        "tiles_total": int(tiles[-1][2]) if tiles else 0,
        "written": any(line.startswith("written") for line in lines),
        "exit": process.returncode,
        "stderr": "".join(errors)[-2000:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megapixels", type=float, nargs="+", default=[3, 12, 24], help="input photo sizes")
    parser.add_argument("--time-limit", type=float, default=None, help="stop a run after this many seconds")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads in the child")
    parser.add_argument("--child", nargs=2, type=Path, metavar=("SOURCE", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.threads)
        return
    print(f"x{SCALE}, shipped tiny weights, PyTorch on the CPU, {args.threads} thread(s); peak RSS of the child process")
    print("| input | output | tile (LR px) | tiles | peak RSS | before the file | measured (peak - before) | estimate | "
          "measured / estimate | time | run |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for megapixels in args.megapixels:
            photo = Path(folder) / f"photo_{megapixels:g}mp.jpg"
            width, height = make_photo(photo, megapixels)
            result = measure(photo, Path(folder) / f"out_{megapixels:g}mp.jpg", args.threads, args.time_limit)
            (Path(folder) / f"out_{megapixels:g}mp.jpg").unlink(missing_ok=True)
            if result["exit"] != 0 and result["written"] is False and result["tiles_done"] == 0:
                print(f"<!-- {megapixels:g} MP child failed (exit {result['exit']}): {result['stderr']} -->")
            run = "complete" if result["written"] else f"stopped at {result['seconds']:.0f} s"
            measured = result["peak_rss_mb"] - result["before_mb"]
            print(f"| {width}x{height} ({width * height / 1e6:.1f} MP) | {width * SCALE}x{height * SCALE} | {result['tile']} | "
                  f"{result['tiles_done']} of {result['tiles_total']} | {result['peak_rss_mb'] / 1024:.2f} GiB | "
                  f"{result['before_mb'] / 1024:.2f} GiB | {measured / 1024:.2f} GiB | "
                  f"{result['estimate_mb'] / 1024:.2f} GiB | {measured / max(result['estimate_mb'], 1):.2f} | "
                  f"{result['seconds']:.0f} s | {run} |", flush=True)


if __name__ == "__main__":
    main()
