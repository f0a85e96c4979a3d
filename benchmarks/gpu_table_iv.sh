#!/usr/bin/env bash
# Table IV on a GPU (PyTorch with CUDA; no TensorRT needed): `gldfn bench` of GLDFN (paper config), DCLS, DANv1 and
# DANv2, interleaved, torch on CUDA in FP32 (TF32 off: true FP32 convolutions and matrix products) and FP16
# (CUDA-event timing; GLDFN's LDF through the project's CUDA kernel), at LR 180x270 and 360x540.
#
#   benchmarks/gpu_table_iv.sh OUT_DIR
#
# Writes OUT_DIR/table_iv_cuda.json (every measurement, Table IV's rows, the claim check), bench.log and
# summary.txt (also printed), and with GPU_TABLE_IV_PLOT=1 table_iv_cuda.png (needs matplotlib). Runs the working
# tree's code without installing it (benchmarks/source_env.sh); needs torch (CUDA), numpy, typer, pillow and scipy
# importable by python3. Exits 2 at once where there is no GPU. The kernel check and the plugin's checks are
# benchmarks/gpu_run.sh's.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:?usage: $0 OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export PYTHONUNBUFFERED=1

# Fail fast: a GPU PyTorch can see, and the modules the bench imports.
python3 - <<'EOF_PY' || exit 2
import importlib.util, sys
needed = ("torch", "numpy", "typer", "PIL", "scipy")
missing = [m for m in needed if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_table_iv.sh: missing Python modules {missing}; install the project's dependencies")
import torch
if not torch.cuda.is_available():
    sys.exit(f"gpu_table_iv.sh: no CUDA GPU visible to PyTorch {torch.__version__} (CUDA build: {torch.version.cuda}); "
             "run this on the GPU machine")
print(f"GPU: {torch.cuda.get_device_name(0)}, PyTorch {torch.__version__}, CUDA {torch.version.cuda}")
EOF_PY

# shellcheck source=benchmarks/source_env.sh
source "$repo/benchmarks/source_env.sh"
trap 'rm -rf "$source_shim"' EXIT
# Where the caller (gpu_run.sh) built the LDF torch extension; else a fresh folder, so no stale lock can block.
if [[ -z ${TORCH_EXTENSIONS_DIR:-} ]]; then
  TORCH_EXTENSIONS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/gldfn-torch-extensions.XXXXXX")
  MAX_JOBS=$(nproc)
  export TORCH_EXTENSIONS_DIR MAX_JOBS
fi

plot=()
if [[ ${GPU_TABLE_IV_PLOT:-0} == 1 ]]; then plot=(--plot "$out/table_iv_cuda.png"); fi
bench_status=0
# TF32 off for the whole process: it changes only FP32 work, so the FP32 rows are true FP32.
python3 -c 'import torch, typer
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
from gldfn_runtime.cli.bench import register
app = typer.Typer(add_completion=False); register(app); app.callback()(lambda: None); app()' bench \
  --model gldfn,dcls,danv1,danv2 --config paper --backend torch --device cuda --precision fp32,fp16 \
  --sizes 180x270,360x540 --iters 20 --warmup 5 --json "${plot[@]}" \
  > "$out/table_iv_cuda.json" 2> >(tee "$out/bench.log" >&2) || bench_status=$?

python3 - "$out" "$bench_status" <<'EOF_PY' | tee "$out/summary.txt"
import json, sys
from pathlib import Path
out, bench_status = Path(sys.argv[1]), sys.argv[2]
print(f"bench: exit {bench_status}; FP32 with TF32 off")
try:
    data = json.loads((out / "table_iv_cuda.json").read_text())
except (OSError, ValueError) as error:
    sys.exit(f"no bench results: {error}")
for note in data["notes"]:
    print(f"note: {note}")
for r in data["results"]:
    h, w = r["lr_size"]
    print(f"{r['model']:6s} {r['precision']} {h}x{w}: {r['mean_ms']:8.2f} ms  {r['macs'] / 1e9:7.1f} GMACs  "
          f"{r['achieved_tflops']:6.2f} TFLOP/s  {r['ms_per_gmac']:.4f} ms/GMAC")
for check in data["claim"]:
    print(f"{check['backend']}: by Table IV GMACs {' < '.join(check['by_table_iv_gmacs'])}; "
          f"by latency {' < '.join(check['by_latency'])}")
EOF_PY
exit "$bench_status"
