#!/usr/bin/env bash
# The plugin's GPU check, one call on a GPU machine (CUDA, PyTorch with CUDA, compute-sanitizer, Nsight Compute; no
# TensorRT needed): checks the PyTorch op on CUDA through its torch extension (the same kernel) against the
# reference, runs it under compute-sanitizer and times it (torch_op_check.py); builds the plugin library for the
# local GPU and the dlopen harness, checks enqueue against the PyTorch reference (FP32/FP16, odd shapes, k 1/3/5/7,
# several dilations, misaligned pointers), runs compute-sanitizer memcheck, times the kernel against the reference
# and the DRAM roofline (gpu_check.py); checks the TensorRT runner's executor (streams, events, threads) with an
# identity engine (executor_check.py); and prints Nsight Compute's achieved occupancy and waves of the main case.
#
#   plugins/tests/gpu_check.sh stage   # where TensorRT headers are: copy them to .gpu_stage/include (git-ignored;
#                                      GLDFN_GPU_STAGE: another folder)
#   plugins/tests/gpu_check.sh         # on the GPU machine: every step
#   plugins/tests/gpu_check.sh plugin  # on the GPU machine: the plugin library's build and checks alone
#
# It stops at once, saying why, when the machine has no usable GPU (exit 2), after finding the toolkit. TensorRT
# headers (TENSORRT_ROOT, the staged copy or /usr/include) are looked for only before the plugin step, which is
# skipped without them. A step that fails is reported and the check goes on; the exit status is 1 when any
# failed. A compute-sanitizer that cannot run on this GPU (or is missing) is reported as skipped, not as a failure.
# The torch extension is built in a fresh folder unless TORCH_EXTENSIONS_DIR is set. Results go to stdout and,
# when $OUT is set, to $OUT/gpu_check.json, $OUT/gpu_check_torch_op.json, $OUT/ncu_main_case.txt and
# $OUT/gpu_check.log.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
plugins=$repo/plugins
tests=$plugins/tests
staged=${GLDFN_GPU_STAGE:-$repo/.gpu_stage}/include
export PYTHONUNBUFFERED=1  # python's output through tee arrives as it is printed

find_headers() {
  local dir
  for dir in "${TENSORRT_ROOT:-}/include" "${TENSORRT_ROOT:-}" "$staged" \
             "/usr/include/$(uname -m)-linux-gnu" /usr/include /usr/local/include; do
    if [[ -f $dir/NvInferRuntime.h ]]; then echo "$dir"; return 0; fi
  done
  return 1
}

if [[ ${1:-} == stage ]]; then
  src=$(find_headers) || { echo "no TensorRT headers to stage: install them first" >&2; exit 2; }
  if [[ $src != "$staged" ]]; then
    mkdir -p "$staged"
    cp "$src"/NvInfer*.h "$src"/NvOnnx*.h "$staged/"
  fi
  echo "staged TensorRT headers from $src in $staged (ignored by git; carry .gpu_stage)"
  exit 0
fi
steps=${1:-all}
[[ $steps == all || $steps == plugin ]] || { echo "usage: $0 [stage|all|plugin]" >&2; exit 2; }
run_step() { [[ $steps == all || $steps == "$1" ]]; }  # torch-op, plugin, ncu, executor

out_dir=${OUT:-}
log() { echo "== $*"; }
if [[ -n $out_dir ]]; then exec > >(tee "$out_dir/gpu_check.log") 2>&1; fi
status=0
failed() { echo "FAILED: $*"; status=1; }

# --- what the check needs, in the order it fails fast -------------------------------------------------------
command -v python3 >/dev/null || { echo "python3 not found" >&2; exit 2; }
# The toolkit as nvcc reports it (an nvcc on PATH may be a wrapper script or a link into another folder).
CUDA_HOME=$(python3 "$tests/cuda_toolkit.py") || exit 2
export CUDA_HOME
export PATH=$CUDA_HOME/bin:$PATH
log "CUDA toolkit: $CUDA_HOME ($("$CUDA_HOME/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'))"
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "no NVIDIA GPU here (nvidia-smi $(command -v nvidia-smi >/dev/null && echo 'lists none' || echo 'not found')):" \
       "this check runs on a GPU machine; the CPU tests are 'pytest tests/test_plugin_*.py'" >&2
  exit 2
fi
python3 -c "import torch" 2>/dev/null || { echo "PyTorch is not installed for python3" >&2; exit 2; }
python3 -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" \
  || { echo "PyTorch sees no CUDA GPU (a CPU build of torch, or a driver too old for its CUDA)" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory,driver_version --format=csv

# memcheck LABEL COMMAND...: compute-sanitizer memcheck of a command. A sanitizer that cannot run here (missing,
# "device not supported" on some virtualised GPUs) is a skip; memcheck errors (exit 3) and the command's own
# failure are failures. GLDFN_GPU_CHECK_MEMCHECK=0 skips it (a caller that runs memcheck itself, later).
sanitizer_ready=unknown
memcheck() {
  local label=$1; shift
  log "compute-sanitizer memcheck: $label"
  if [[ ${GLDFN_GPU_CHECK_MEMCHECK:-1} == 0 ]]; then
    echo "SKIPPED: memcheck (GLDFN_GPU_CHECK_MEMCHECK=0)"
    return 0
  fi
  if [[ $sanitizer_ready == unknown ]]; then
    local probe
    if ! command -v compute-sanitizer >/dev/null; then
      sanitizer_ready="no (compute-sanitizer not installed)"
    elif probe=$(compute-sanitizer --tool memcheck --error-exitcode 3 \
                   python3 -c "import torch; torch.ones(1, device='cuda').add_(1); torch.cuda.synchronize()" 2>&1); then
      sanitizer_ready=yes
    else
      probe=$(echo "$probe" | grep -m2 -iE 'error|not supported' | tr '\n' ' ')
      sanitizer_ready="no (it fails on a trivial CUDA program: $probe)"
    fi
  fi
  if [[ $sanitizer_ready != yes ]]; then
    echo "SKIPPED: compute-sanitizer unavailable on this machine: ${sanitizer_ready#no }"
    return 0
  fi
  # The caching allocator would hide out-of-bounds accesses inside its large blocks.
  PYTORCH_NO_CUDA_MEMORY_CACHING=1 compute-sanitizer --tool memcheck --error-exitcode 3 --print-limit 20 "$@"
  local rc=$?
  case $rc in
    0) echo "memcheck clean: $label" ;;
    3) failed "memcheck found errors: $label" ;;
    *) failed "$label failed under compute-sanitizer (exit $rc)" ;;
  esac
}

# --- the PyTorch op -----------------------------------------------------------------------------------------
# A fresh extension folder: a build killed in an earlier run cannot leave anything this one waits for.
if [[ -z ${TORCH_EXTENSIONS_DIR:-} ]]; then
  TORCH_EXTENSIONS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/gldfn-torch-extensions.XXXXXX")
fi
MAX_JOBS=$(nproc)
export TORCH_EXTENSIONS_DIR MAX_JOBS
if run_step torch-op; then
  log "PyTorch op gldfn::local_dynamic_filter on CUDA through the torch extension (JIT build, accuracy, timing)"
  torch_op_check=(python3 "$tests/torch_op_check.py")
  "${torch_op_check[@]}" ${out_dir:+--json "$out_dir/gpu_check_torch_op.json"} || failed "torch op check"
  memcheck "the PyTorch op (small shapes)" "${torch_op_check[@]}" --quick
fi

plugin_step() {

# --- the plugin library through its TensorRT interface --------------------------------------------------------
local headers
if ! headers=$(find_headers); then
  echo "SKIPPED: the plugin library (no TensorRT headers: run '$0 stage' where they are installed and carry .gpu_stage)"
  return 0
fi
log "TensorRT headers: $headers"
sm=$(python3 -c "import torch; major, minor = torch.cuda.get_device_capability(0); print(f'{major}{minor}')")
build=$plugins/build/gpu-check
log "building the plugin library for sm_$sm with TensorRT headers from $headers"
start=$SECONDS
mkdir -p "$build"
if command -v cmake >/dev/null; then
  if cmake -S "$plugins" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$sm-real" \
           -DCMAKE_CUDA_COMPILER="$CUDA_HOME/bin/nvcc" -DTENSORRT_ROOT="$headers" > "$build/configure.log" 2>&1 \
     && cmake --build "$build" -j "$(nproc)"; then
    grep -E "^-- (nvcc|TensorRT) " "$build/configure.log"
  else
    tail -20 "$build/configure.log"
    failed "the plugin library did not build"
    return 1
  fi
  library=$(ls -t "$build"/libgldfn_trt_plugins*.so | head -n1)
else
  # No CMake on the machine: the same sources and flags by hand; the contract header from the same template.
  mkdir -p "$build/generated"
  python3 - "$repo" "$build/generated/ldf_contract.h" <<'EOF'
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
  library=$build/libgldfn_trt_plugins.so
  nvcc -std=c++17 -O3 -shared -cudart static -Xcompiler -fPIC,-fvisibility=hidden \
       -gencode "arch=compute_$sm,code=sm_$sm" -isystem "$headers" \
       -I"$plugins/common" -I"$plugins/local_dynamic_filter" \
       -I"$build/generated" "$plugins/plugin_entry.cpp" "$plugins/common/plugin_logging.cpp" \
       "$plugins/local_dynamic_filter/ldf_plugin.cpp" "$plugins/local_dynamic_filter/ldf_kernel.cu" \
       -Xlinker "--version-script=$plugins/exports.map" -o "$library" \
    || { failed "the plugin library did not build"; return 1; }
fi
log "library $library built in $((SECONDS - start)) s"
g++ -std=c++17 -O2 -shared -fPIC -isystem "$headers" -isystem "$CUDA_HOME/include" "$tests/plugin_harness.cpp" \
    -o "$build/libgldfn_plugin_harness.so" -ldl || { failed "the dlopen harness did not build"; return 1; }
check=(python3 "$tests/gpu_check.py" --plugin "$library" --harness "$build/libgldfn_plugin_harness.so")

log "accuracy and timing"
"${check[@]}" ${out_dir:+--json "$out_dir/gpu_check.json"} || failed "plugin accuracy and timing"
memcheck "the plugin's enqueue (small shapes)" "${check[@]}" --quick
if run_step ncu; then
  log "Nsight Compute: the main case (C=64, 360x540, FP16, k=3) through the plugin"
  "$tests/ncu_kernel.sh" "${out_dir:-$build}/ncu_main_case.txt" "${check[@]}" --profile \
    || echo "no Nsight Compute figures; the timings above stand"
fi
}
plugin_step

if run_step executor; then
log "the TensorRT runner's executor: device, stream order with the caller's stream, threads, timers"
python3 "$tests/executor_check.py" || failed "executor check"
fi
log "done, status $status"
exit $status
