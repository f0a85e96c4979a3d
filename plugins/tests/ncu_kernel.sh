#!/usr/bin/env bash
# Nsight Compute on the local dynamic filter's tiled kernel, with the GPU's clocks left alone: launch statistics
# (registers, grid, waves), occupancy (theoretical, achieved, the limiting resource), DRAM throughput and bytes,
# and shared-memory bank conflicts of loads and stores. Prints the figures that matter, one per line, and keeps
# Nsight Compute's whole report in REPORT.
#
#   plugins/tests/ncu_kernel.sh REPORT COMMAND...   # COMMAND launches the kernel (e.g. torch_op_check.py --profile)
#
# Exit status: Nsight Compute's (missing ncu: 2).
set -uo pipefail
report=${1:?usage: $0 REPORT COMMAND...}
shift
command -v ncu >/dev/null || { echo "SKIPPED: Nsight Compute (ncu) is not installed"; exit 2; }
metrics=l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum
metrics+=,l1tex__data_pipe_lsu_wavefronts_mem_shared_op_st.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared_op_ld.sum
metrics+=,smsp__sass_inst_executed_op_shared_st.sum,smsp__sass_inst_executed_op_shared_ld.sum
metrics+=,dram__bytes_read.sum,dram__bytes_write.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed
metrics+=,gpu__time_duration.sum
profile() {
  ncu --clock-control none --kernel-name regex:ldfTiledKernel --launch-skip 1 --launch-count 2 \
      --section LaunchStats --section Occupancy --section SpeedOfLight "$@" > "$report" 2>&1
}
profile --metrics "$metrics" "$@"
status=$?
if [[ $status != 0 ]] && grep -qi metric "$report"; then
  # A metric name this ncu does not know fails the whole run: keep the sections at least.
  grep -i -m3 metric "$report"
  echo "ncu refused a metric: profiling again with the sections alone (no bank-conflict counts)"
  profile "$@"
  status=$?
fi
if [[ $status != 0 ]]; then
  tail -8 "$report"
  echo "ncu failed (exit $status; GPU performance counters may be restricted here)"
  exit $status
fi
summary="ldfTiledKernel|Registers Per Thread|Block Size|Grid Size|Waves Per SM|Dynamic Shared Memory Per Block"
summary+="|Theoretical Occupancy|Achieved Occupancy|Block Limit (Registers|Shared Mem)|Memory Throughput"
summary+="|DRAM Throughput|Duration|bank_conflicts|wavefronts_mem_shared|inst_executed_op_shared|dram__"
grep -E "$summary" "$report" | sed 's/^ */  /'
