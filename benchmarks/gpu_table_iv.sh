#!/usr/bin/env bash
# Table IV on a GPU in one call (PyTorch with CUDA; no TensorRT needed), in under 8 minutes:
#   1. plugins/tests/gpu_check.sh: the local dynamic filter's CUDA kernel through PyTorch (accuracy, sanitizer,
#      timing), then the TensorRT plugin part where TensorRT headers are staged (it stops there without them);
#   2. `gldfn bench` of GLDFN (paper config), DCLS, DANv1 and DANv2, interleaved, torch on CUDA in FP32 and FP16
#      (CUDA-event timing; GLDFN's LDF through the project's CUDA kernel), at LR 180x270 and 360x540.
#
#   benchmarks/gpu_table_iv.sh OUT_DIR
#
# Writes OUT_DIR/table_iv_cuda.json (every measurement, Table IV's rows, the claim check), table_iv_cuda.png
# (latency against GMACs, Table IV's claims marked), bench.log, gpu_check/ (gpu_check.sh's JSON and log) and
# summary.txt. Runs the working tree's code without installing it; needs torch (CUDA), numpy, typer, matplotlib,
# pillow, scipy and pypng importable by $PYTHON (default python3). Exits 2 at once where there is no GPU.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:?usage: $0 OUT_DIR}
python=${PYTHON:-python3}
budget_s=${GPU_TABLE_IV_BUDGET_S:-470}   # the whole script; gpu_check.sh gets at most half of it
start=$SECONDS
mkdir -p "$out/gpu_check"
out=$(cd "$out" && pwd)

# Fail fast: a GPU PyTorch can see, and every module the bench imports.
"$python" - <<'EOF' || exit 2
import importlib.util, sys
needed = ("torch", "numpy", "typer", "matplotlib", "PIL", "scipy", "png")
missing = [m for m in needed if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_table_iv.sh: missing Python modules {missing} (pypng provides 'png'); "
             "install the project's dependencies")
import torch
if not torch.cuda.is_available():
    sys.exit(f"gpu_table_iv.sh: no CUDA GPU visible to PyTorch {torch.__version__} (CUDA build: {torch.version.cuda}); "
             "run this on the GPU machine")
print(f"GPU: {torch.cuda.get_device_name(0)}, PyTorch {torch.__version__}, CUDA {torch.version.cuda}")
EOF

# The packages without installing them: gldfn_runtime and gldfn_export live in runtime/ and export/.
shim=$(mktemp -d)
trap 'rm -rf "$shim"' EXIT
ln -s "$repo/runtime" "$shim/gldfn_runtime"
ln -s "$repo/export" "$shim/gldfn_export"
export PYTHONPATH="$shim:$repo${PYTHONPATH:+:$PYTHONPATH}"
# gpu_check.sh builds the LDF torch extension here; the bench then loads it from the same cache.
export TORCH_EXTENSIONS_DIR=$repo/plugins/build/torch-extensions

echo "== 1/2 plugins/tests/gpu_check.sh (at most $((budget_s / 2)) s)"
check_status=0
OUT="$out/gpu_check" timeout --kill-after=10 $((budget_s / 2)) "$repo/plugins/tests/gpu_check.sh" || check_status=$?
echo "gpu_check.sh exit status $check_status (124: stopped at its time limit; 2: no TensorRT headers for the plugin)"

left=$((budget_s - (SECONDS - start)))
echo "== 2/2 the four Table IV networks on CUDA, FP32 and FP16, 180x270 and 360x540 ($left s left)"
bench=("$python" -c 'import typer; from gldfn_runtime.cli.bench import register
app = typer.Typer(add_completion=False); register(app); app.callback()(lambda: None); app()' bench)
bench_status=0
timeout --kill-after=10 "$left" "${bench[@]}" --model gldfn,dcls,danv1,danv2 --config paper --backend torch \
  --device cuda --precision fp32,fp16 --sizes 180x270,360x540 --iters 20 --warmup 5 \
  --json --plot "$out/table_iv_cuda.png" > "$out/table_iv_cuda.json" 2> >(tee "$out/bench.log" >&2) || bench_status=$?

"$python" - "$out" "$check_status" "$bench_status" <<'EOF' | tee "$out/summary.txt"
import json, sys
from pathlib import Path
out, check_status, bench_status = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
print(f"gpu_check.sh: exit {check_status}; bench: exit {bench_status}")
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
EOF
[[ $bench_status == 0 ]] || exit "$bench_status"
exit "$check_status"
