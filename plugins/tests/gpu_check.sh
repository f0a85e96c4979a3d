#!/usr/bin/env bash
# The plugin's GPU check, one call on a GPU machine (CUDA 13, PyTorch with CUDA, compute-sanitizer; no TensorRT
# needed): checks the PyTorch op on CUDA through its torch extension (the same kernel) against the reference, runs
# it under compute-sanitizer and times it (torch_op_check.py); then builds libgldfn_trt_plugins.so for the local GPU
# and the dlopen harness, checks enqueue against the PyTorch reference (FP32/FP16, odd shapes, k 1/3/5/7, several
# dilations, misaligned pointers), runs compute-sanitizer memcheck, times the kernel against the reference and the
# DRAM roofline, and prints Nsight Compute's speed-of-light and occupancy of the main case.
#
#   plugins/tests/gpu_check.sh stage   # on a machine with TensorRT headers: copy them to plugins/build/tensorrt-headers
#   plugins/tests/gpu_check.sh         # on the GPU machine (headers from TENSORRT_ROOT, the staged copy or /usr/include)
#
# Results go to stdout and, when $OUT is set, to $OUT/gpu_check.json, $OUT/gpu_check_torch_op.json and
# $OUT/gpu_check.log.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
plugins=$repo/plugins
staged=$plugins/build/tensorrt-headers

find_headers() {
  local dir
  for dir in "${TENSORRT_ROOT:-}/include" "${TENSORRT_ROOT:-}" "$staged/include" \
             "/usr/include/$(uname -m)-linux-gnu" /usr/include /usr/local/include; do
    if [[ -f $dir/NvInferRuntime.h ]]; then echo "$dir"; return 0; fi
  done
  return 1
}

if [[ ${1:-} == stage ]]; then
  src=$(find_headers) || { echo "no TensorRT headers to stage: install them first" >&2; exit 2; }
  mkdir -p "$staged/include"
  cp "$src"/NvInfer*.h "$src"/NvOnnx*.h "$staged/include/"
  echo "staged TensorRT headers from $src in $staged/include (ignored by git; pass it as carry)"
  exit 0
fi

out_dir=${OUT:-}
log() { echo "== $*"; }
if [[ -n $out_dir ]]; then exec > >(tee "$out_dir/gpu_check.log") 2>&1; fi

nvidia-smi --query-gpu=name,memory.total,clocks.max.memory --format=csv
status=0
log "PyTorch op gldfn::local_dynamic_filter on CUDA through the torch extension (JIT build, accuracy, timing)"
export TORCH_EXTENSIONS_DIR=$plugins/build/torch-extensions MAX_JOBS=$(nproc)
# torch guesses the toolkit from nvcc's folder without following links; follow them, as for the harness below.
if [[ -z ${CUDA_HOME:-} ]] && command -v nvcc >/dev/null; then
  export CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
fi
torch_op_check=(python "$plugins/tests/torch_op_check.py")
"${torch_op_check[@]}" ${out_dir:+--json "$out_dir/gpu_check_torch_op.json"} || status=1
log "compute-sanitizer memcheck of the PyTorch op (small shapes)"
PYTORCH_NO_CUDA_MEMORY_CACHING=1 compute-sanitizer --tool memcheck --error-exitcode 3 --print-limit 20 \
  "${torch_op_check[@]}" --quick || status=1

headers=$(find_headers) || { echo "TensorRT headers not found: run '$0 stage' where they are installed" >&2; exit 2; }
sm=$(python - <<'EOF'
import torch
major, minor = torch.cuda.get_device_capability(0)
print(f"{major}{minor}")
EOF
)
build=$plugins/build/gpu-check
log "building for sm_$sm with TensorRT headers from $headers"
start=$SECONDS
if command -v cmake >/dev/null; then
  cmake -S "$plugins" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$sm-real" \
        -DTENSORRT_ROOT="$(dirname "$headers")" -DTENSORRT_INCLUDE_DIR="$headers" >/dev/null
  cmake --build "$build" -j "$(nproc)"
else
  # No CMake on the machine: the same sources and flags by hand; the contract header from the same template.
  mkdir -p "$build/generated"
  python - "$repo" "$build/generated/ldf_contract.h" <<'EOF'
import json, sys
from pathlib import Path
repo, out = Path(sys.argv[1]), Path(sys.argv[2])
contract_file = repo / "gldfn_model/ops/contracts/local_dynamic_filter.json"
c = json.loads(contract_file.read_text())
attr = {a["name"]: a for a in c["attributes"]}
values = {"GLDFN_CONTRACT_FILE": str(contract_file), "GLDFN_CONTRACT_VERSION": c["contract_version"],
          "GLDFN_PLUGIN_NAME": c["name"], "GLDFN_PLUGIN_VERSION": c["version"],
          "GLDFN_PLUGIN_NAMESPACE": c["domain"], "GLDFN_FIELD_KERNEL_SIZE": "kernel_size",
          "GLDFN_FIELD_DILATION": "dilation", "GLDFN_DEFAULT_KERNEL_SIZE": attr["kernel_size"]["default"],
          "GLDFN_DEFAULT_DILATION": attr["dilation"]["default"],
          "GLDFN_ALLOWED_KERNEL_SIZES": ", ".join(map(str, attr["kernel_size"]["allowed"])),
          "GLDFN_MIN_DILATION": attr["dilation"]["min"], "GLDFN_MAX_DILATION": attr["dilation"]["max"]}
text = (repo / "plugins/cmake/ldf_contract.h.in").read_text()
for key, value in values.items():
    text = text.replace(f"@{key}@", str(value))
out.write_text(text)
EOF
  nvcc -std=c++17 -O3 -shared -cudart static -Xcompiler -fPIC,-fvisibility=hidden \
       -gencode "arch=compute_$sm,code=sm_$sm" -isystem "$headers" -I"$plugins/common" -I"$plugins/local_dynamic_filter" \
       -I"$build/generated" "$plugins/plugin_entry.cpp" "$plugins/common/plugin_logging.cpp" \
       "$plugins/local_dynamic_filter/ldf_plugin.cpp" "$plugins/local_dynamic_filter/ldf_kernel.cu" \
       -Xlinker "--version-script=$plugins/exports.map" -o "$build/libgldfn_trt_plugins.so"
fi
log "library built in $((SECONDS - start)) s"
cuda_include=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")/include
g++ -std=c++17 -O2 -shared -fPIC -isystem "$headers" -isystem "$cuda_include" "$plugins/tests/plugin_harness.cpp" \
    -o "$build/libgldfn_plugin_harness.so" -ldl
check=(python "$plugins/tests/gpu_check.py" --plugin "$build/libgldfn_trt_plugins.so"
       --harness "$build/libgldfn_plugin_harness.so")

log "accuracy and timing"
"${check[@]}" ${out_dir:+--json "$out_dir/gpu_check.json"} || status=1
log "compute-sanitizer memcheck (small shapes)"
# The caching allocator would hide out-of-bounds accesses inside its large blocks.
PYTORCH_NO_CUDA_MEMORY_CACHING=1 compute-sanitizer --tool memcheck --error-exitcode 3 --print-limit 20 \
  "${check[@]}" --quick || status=1
if command -v ncu >/dev/null; then
  log "Nsight Compute: speed of light and occupancy of the main case (C=64, 360x540, FP16, k=3)"
  ncu --kernel-name regex:ldfTiledKernel --launch-skip 1 --launch-count 1 --section SpeedOfLight \
      --section Occupancy --section LaunchStats "${check[@]}" --profile \
    || echo "ncu failed (GPU performance counters may be restricted); the timings above stand"
fi
log "done, status $status"
exit $status
