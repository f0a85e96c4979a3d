#!/usr/bin/env bash
# The whole GPU run in one call of the device tool (benchmarks/README_gpu_run.md gives the call), in under
# 8 minutes, steps in order of value, each under its own time limit and writing its result as it finishes:
#
#   probe      nvidia-smi, nvcc, torch and its CUDA, ncu, compute-sanitizer, the project's imports  -> probe.txt
#   extension  the LDF torch extension, built once for this GPU's architecture in a fresh folder    (run.log)
#   kernel     its parity with the PyTorch reference (odd sizes, k 1-7, dilations) and its time
#              against the reference and the HBM roofline (C=64 at 180x270 and 360x540, FP16/FP32) -> kernel.json
#   ncu        Nsight Compute, clocks left alone: occupancy, waves, bank conflicts, DRAM            -> ncu.txt
#   plugin     the plugin library for this GPU (90-real on an H200) and the dlopen-harness checks   -> plugin.json
#   executor   the TensorRT runner's executor with an identity engine                               -> executor.txt
#   table_iv   the four Table IV networks in PyTorch-CUDA, FP32 (no TF32) and FP16                  -> table_iv.json
#   memcheck   compute-sanitizer memcheck of the kernel, with what time is left                      -> memcheck.txt
#
# plus run.log (everything printed, the summary last): 8 files at most, flat in OUT.
#
#   benchmarks/gpu_run.sh --stage   # here, first: what the GPU machine lacks into .gpu_stage (git-ignored)
#   benchmarks/gpu_run.sh OUT       # there (carry .gpu_stage)
#
# GPU_RUN_BUDGET_S (default 450) bounds the whole run; GPU_RUN_STEPS (comma-separated names above, default all)
# picks steps for a rerun. Where PyTorch sees no CUDA GPU it stops after the probe, exit 2 (GPU_RUN_WIRING_CHECK=1:
# it goes on, to check the script's wiring without a GPU). Otherwise the exit status is 1 when a step failed or
# ran out of time, else 0.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stage=${GLDFN_GPU_STAGE:-$repo/.gpu_stage}
export GLDFN_GPU_STAGE=$stage PYTHONUNBUFFERED=1
# Pure-Python modules the GPU machine lacks (it has no network): import name -> what provides it.
declare -A device_lacks=([png]=pypng)

stage_here() {
  local python=${PYTHON:-python3}
  [[ -x $repo/.venv/bin/python && -z ${PYTHON:-} ]] && python=$repo/.venv/bin/python
  "$repo/plugins/tests/gpu_check.sh" stage || return 1
  mkdir -p "$stage/site"
  local module
  for module in "${!device_lacks[@]}"; do
    "$python" - "$module" "$stage/site" <<'PY' || { echo "error: cannot stage $module (${device_lacks[$module]}): pip install it for $python" >&2; return 1; }
import importlib, shutil, sys
from pathlib import Path
module, site = importlib.import_module(sys.argv[1]), Path(sys.argv[2])
source = Path(module.__file__)
if source.name == "__init__.py":
    source = source.parent
    if any(source.rglob("*.so")):
        sys.exit(f"{sys.argv[1]} is not pure Python: carry it as a wheel instead")
    shutil.copytree(source, site / source.name, dirs_exist_ok=True)
else:
    shutil.copy2(source, site / source.name)
print(f"staged {sys.argv[1]} from {source}")
PY
  done
  echo "staged in $stage ($(du -sh "$stage" | cut -f1)): carry it with the run (benchmarks/README_gpu_run.md)"
}

if [[ ${1:-} == --stage ]]; then
  stage_here
  exit
fi
out=${1:?usage: $0 --stage | $0 OUT}
mkdir -p "$out"
out=$(cd "$out" && pwd)
budget=${GPU_RUN_BUDGET_S:-450}
steps=${GPU_RUN_STEPS:-all}
exec > >(tee "$out/run.log") 2>&1
tee_pid=$!
finish() {  # the log must be complete when the call returns
  exec >&- 2>&-
  wait "$tee_pid" 2>/dev/null
  exit "$1"
}

if [[ ! -f $stage/include/NvInferRuntime.h || ! -d $stage/site ]]; then
  echo "WARNING: $stage is incomplete (run 'benchmarks/gpu_run.sh --stage' where TensorRT headers are, and carry" \
       ".gpu_stage): the plugin step will be skipped and the bench may lack pypng"
fi
# shellcheck source=benchmarks/source_env.sh
source "$repo/benchmarks/source_env.sh" || finish 2
work=$(mktemp -d "${TMPDIR:-/tmp}/gldfn-gpu-run.XXXXXX")
trap 'rm -rf "$source_shim" "$work"' EXIT

# --- probe: tools and imports, before anything that needs a GPU ------------------------------------------------
{
  echo "== date: $(date -u +%FT%TZ), host $(uname -m), $(nproc) CPUs"
  for tool in nvidia-smi nvcc ncu compute-sanitizer cmake ninja g++; do
    printf '== %s: ' "$tool"
    if command -v "$tool" >/dev/null; then
      case $tool in
        nvidia-smi) nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.memory,driver_version \
                      --format=csv,noheader 2>&1 | head -3 ;;
        nvcc) nvcc --version | tail -2 | tr '\n' ' '; echo ;;
        *) "$tool" --version 2>&1 | grep -m1 -iE 'version|[0-9]+\.[0-9]+' ;;
      esac
    else
      echo "not found"
    fi
  done
  python3 - <<'PY'
import importlib, platform, sys
import torch
print(f"== python {platform.python_version()} ({sys.executable}); torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cuda available: {torch.cuda.is_available()}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"== GPU {p.name}: capability {p.major}.{p.minor}, {p.multi_processor_count} SMs, "
          f"{getattr(p, 'L2_cache_size', 0) / 2**20:.0f} MiB L2, {p.total_memory / 2**30:.0f} GiB")
# Every module the steps import, from the working tree (benchmarks/source_env.sh) and the machine.
modules = ["numpy", "typer", "rich", "scipy", "PIL", "png", "onnx", "cuda.bindings.runtime",
           "gldfn_model.ops.cuda_ops", "gldfn_model.peers", "gldfn_runtime.cli.bench",
           "gldfn_runtime.bench.contestants", "gldfn_runtime.bench.harness", "gldfn_runtime.runners.execution"]
for name in modules:
    try:
        importlib.import_module(name)
        print(f"== import {name}: ok")
    except Exception as error:  # noqa: BLE001 - report every failure, go on
        print(f"== import {name}: FAILED {type(error).__name__}: {error}")
PY
} 2>&1 | tee "$out/probe.txt"

gpu=$(python3 -c "import torch; p = torch.cuda.get_device_capability(0) if torch.cuda.is_available() else None
print(f'{p[0]}.{p[1]}' if p else '')" 2>/dev/null)
if [[ -z $gpu && ${GPU_RUN_WIRING_CHECK:-0} == 1 ]]; then
  gpu=9.0
  echo "GPU_RUN_WIRING_CHECK=1: no GPU, the steps run anyway (each should stop at once, saying so)"
elif [[ -z $gpu ]]; then
  echo "no CUDA GPU: PyTorch sees none here (probe in $out/probe.txt); run this on the GPU machine through the" \
       "device tool (benchmarks/README_gpu_run.md)"
  finish 2
fi

# --- the steps -------------------------------------------------------------------------------------------------
start=$SECONDS
declare -a summary
declare -A step_tool=([ncu]=ncu [memcheck]=compute-sanitizer)
status=0
# step NAME MAX_SECONDS COMMAND...: run under min(MAX, what is left of the budget); skip when under 20 s are left.
# COMMAND may be one of the functions below (timeout runs it through bash: they and their variables are exported).
step() {
  local name=$1 limit=$2; shift 2
  # The extension runs whatever is picked: the other steps load it.
  if [[ $steps != all && ,$steps, != *",$name,"* && $name != extension ]]; then return 0; fi
  local tool=${step_tool[$name]:-}
  if [[ -n $tool ]] && ! command -v "$tool" >/dev/null; then
    summary+=("$name: SKIPPED ($tool not installed)")
    echo "== $name: SKIPPED ($tool not installed)"
    return 0
  fi
  local left=$((budget - (SECONDS - start) - 10))
  ((limit > left)) && limit=$left
  if ((limit < 20)); then
    summary+=("$name: SKIPPED (budget spent)")
    return 0
  fi
  echo "== $name (at most $limit s; $((SECONDS - start)) s into the run)"
  local began=$SECONDS rc=0
  if [[ $(type -t "$1") == function ]]; then
    timeout --kill-after=5 "$limit" bash -c "$1" || rc=$?
  else
    timeout --kill-after=5 "$limit" "$@" || rc=$?
  fi
  local verdict=ok
  case $rc in
    0) ;;
    124 | 137)
      if [[ $name == memcheck ]]; then  # it gets what time is left: stopping there is expected
        verdict="stopped at the time left ($limit s): partial, see memcheck.txt"
      else
        verdict="TIMED OUT after $limit s"; status=1
      fi ;;
    *) verdict="FAILED (exit $rc)"; status=1 ;;
  esac
  summary+=("$name: $verdict in $((SECONDS - began)) s")
  echo "== $name: $verdict"
}

tests=$repo/plugins/tests
export repo tests out work
# One fresh extension folder for every step: no lock or build from an earlier run can block this one.
MAX_JOBS=$(nproc)
export TORCH_EXTENSIONS_DIR=$work/torch-extensions TORCH_CUDA_ARCH_LIST=$gpu MAX_JOBS
step extension 240 python3 "$tests/torch_op_check.py" --build-only
step kernel 90 python3 "$tests/torch_op_check.py" --json "$out/kernel.json"
step ncu 100 "$tests/ncu_kernel.sh" "$out/ncu.txt" python3 "$tests/torch_op_check.py" --profile
# shellcheck disable=SC2329  # run by step through timeout
plugin_step() {
  OUT=$work/plugin GLDFN_GPU_CHECK_MEMCHECK=0 "$tests/gpu_check.sh" plugin
  local rc=$?
  cp "$work/plugin/gpu_check.json" "$out/plugin.json" 2>/dev/null
  return "$rc"
}
# shellcheck disable=SC2329
executor_step() { set -o pipefail; python3 "$tests/executor_check.py" 2>&1 | tee "$out/executor.txt"; }
# shellcheck disable=SC2329
table_step() {
  "$repo/benchmarks/gpu_table_iv.sh" "$work/table"
  local rc=$?
  cp "$work/table/table_iv_cuda.json" "$out/table_iv.json" 2>/dev/null
  return "$rc"
}
# shellcheck disable=SC2329
memcheck_step() {
  set -o pipefail
  PYTORCH_NO_CUDA_MEMORY_CACHING=1 compute-sanitizer --tool memcheck --error-exitcode 3 --print-limit 20 \
    python3 "$tests/torch_op_check.py" --quick 2>&1 | tee "$out/memcheck.txt"
}
export -f plugin_step executor_step table_step memcheck_step
mkdir -p "$work/plugin"
step plugin 180 plugin_step
step executor 60 executor_step
step table_iv 200 table_step
step memcheck 150 memcheck_step

# --- summary, last, so that the call's output tail holds it -------------------------------------------------------
echo "== summary ($((SECONDS - start)) s of $budget s)"
printf '  %s\n' "${summary[@]}"
python3 - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
for name, label in (("kernel.json", "op"), ("plugin.json", "plugin")):
    try:
        report = json.loads((out / name).read_text())
    except (OSError, ValueError):
        continue
    bad = [case for case in report.get("accuracy", []) if not case["ok"]]
    print(f"  {label}: {len(report.get('accuracy', [])) - len(bad)}/{len(report.get('accuracy', []))} parity cases ok")
    for row in report.get("timing", []):
        print(f"  {label} {row['dtype']} {tuple(row['shape'])} k={row['kernel_size']} d={row['dilation']}: "
              f"{row['ms'] * 1e3:.1f} us, {100 * (row['roofline_fraction'] or 0):.0f}% of HBM roofline, "
              f"{row['speedup_vs_reference']:.0f}x the reference")
try:
    for r in json.loads((out / "table_iv.json").read_text())["results"]:
        print(f"  {r['model']:6s} {r['precision']} {r['lr_size'][0]}x{r['lr_size'][1]}: {r['mean_ms']:.2f} ms, "
              f"{r['ms_per_gmac']:.4f} ms/GMAC")
except (OSError, ValueError, KeyError):
    pass
PY
finish "$status"
