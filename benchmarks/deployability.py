"""Deployability of the four Table IV networks (random weights, x4): export to ONNX, run the file in ONNX Runtime
(CPU) against PyTorch at two sizes, and build a TensorRT-RTX engine ahead of time on the CPU. Prints the Markdown
table of docs/table_iv.md and, with --json, writes every detail.

    python benchmarks/deployability.py --folder /tmp/deploy [--models gldfn,dcls,danv1,danv2] [--json deploy.json]
    python benchmarks/deployability.py --render deploy.json     # the table of a saved run

GLDFN is exported with its local dynamic filters as custom nodes; without a built plugin library (--plugin, or
`gldfn-trt plugin build`) TensorRT-RTX builds their ONNX function bodies instead.
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch

from gldfn_export.exporter import ExportError, export_gldfn
from gldfn_export.peers import check_onnx_parity, export_peer
from gldfn_model.common.atomic import atomic_output
from gldfn_model.data.reference_inputs import random_input
from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner
from gldfn_model.peers import build_network, parse_models
from gldfn_runtime.engine.build import BuildOptions, EngineBuildError, build_engine
from gldfn_runtime.plugin.library import PluginLibraryError, find_plugin_library

PARITY_SIZES = ((32, 40), (37, 45))  # the second differs from the export sample: catches shapes fixed at export
PROFILE = {"min_size": (16, 16), "opt_size": (180, 270), "max_size": (360, 540)}


def first_line(error: BaseException, limit: int = 300) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def parser_blockers(message: str) -> str:
    """'DFT (8 nodes)' from the parser's per-node errors, or the message's start."""
    operators = re.findall(r"operator: (\w+)", message)
    if not operators:
        return message[:300]
    counts = {op: operators.count(op) for op in dict.fromkeys(operators)}
    return "ONNX parser has no importer for " + ", ".join(f"{op} ({n} nodes)" for op, n in counts.items())


def distance_from_fp64(model: torch.nn.Module, path: Path, size: tuple[int, int]) -> tuple[float, float]:
    """Max abs distance of ONNX Runtime's and of PyTorch's FP32 output from PyTorch in FP64: which side is exact."""
    lr = random_input(*size, 1).lr
    with torch.no_grad():
        fp32 = model(torch.from_numpy(lr)).numpy()
        fp64 = model.double()(torch.from_numpy(lr).double()).numpy()
    model.float()
    return float(np.abs(OnnxRuntimeRunner(path).infer(lr) - fp64).max()), float(np.abs(fp32 - fp64).max())


def export(name: str, model: torch.nn.Module, path: Path) -> dict:
    start = time.perf_counter()
    if name == "gldfn":
        result = export_gldfn(model, path, verify=False, config_name="paper", overwrite=True)  # --folder is this script's
        ops = {"custom LDF nodes": result.custom_node_count}
    else:
        result = export_peer(model, path, name, overwrite=True)
        ops = {op: result.op_types[op] for op in ("DFT", "Pad", "Conv", "MatMul") if op in result.op_types}
    return {"seconds": round(time.perf_counter() - start, 1), "bytes": path.stat().st_size, "notable_ops": ops}


def build(name: str, path: Path, plugin: Path | None) -> dict:
    options = BuildOptions(backend="tensorrt-rtx", plugin=plugin, use_plugin=plugin is not None, **PROFILE)
    engine, cache = path.with_suffix(".engine"), path.parent / "engine-cache"
    result = build_engine(path, engine, options, force=True, cache_dir=cache, overwrite=True)
    return {"seconds": result.sidecar.build_seconds, "engine_bytes": result.sidecar.engine_bytes,
            "plugin": plugin is not None if name == "gldfn" else None}


def assess(name: str, folder: Path, plugin: Path | None) -> dict:
    torch.manual_seed(0)
    model = build_network(name).eval()
    path = folder / f"{name}.onnx"
    row: dict = {"network": name}
    try:
        row["export"] = export(name, model, path)
    except ExportError as error:
        return {**row, "export": {"error": first_line(error)}, "onnxruntime": [], "tensorrt_rtx": {}}
    checks = []
    for size in PARITY_SIZES:
        try:
            check = check_onnx_parity(model, path, size)
            ort_fp64, torch_fp64 = distance_from_fp64(model, path, size)
            checks.append({"size": list(size), "max_abs": check.max_abs, "tolerance": check.tolerance,
                           "passed": check.passed, "onnxruntime_vs_fp64": ort_fp64, "torch_fp32_vs_fp64": torch_fp64})
        except Exception as error:  # onnxruntime raises its own exception types
            checks.append({"size": list(size), "error": first_line(error)})
    row["onnxruntime"] = checks
    try:
        row["tensorrt_rtx"] = build(name, path, plugin)
    except EngineBuildError as error:
        row["tensorrt_rtx"] = {"error": str(error)}
    return row


def blockers(row: dict) -> str:
    """What keeps the network from each runtime, in a line."""
    if "error" in row["export"]:
        return f"export: {row['export']['error']}"
    found = [f"ONNX Runtime at {c['size'][0]}x{c['size'][1]}: {c['error']}" for c in row["onnxruntime"] if "error" in c]
    missed = [c for c in row["onnxruntime"] if "error" not in c and not c["passed"]]
    if missed:
        worst = max(missed, key=lambda c: c["max_abs"])
        ort, fp32 = worst["onnxruntime_vs_fp64"], worst["torch_fp32_vs_fp64"]
        found.append(f"ONNX Runtime beyond the {worst['tolerance']:.0e} parity limit (from an FP64 PyTorch run: "
                     f"ONNX Runtime {ort:.1e}, PyTorch FP32 {fp32:.1e})")
    if "error" in row["tensorrt_rtx"]:
        found.append(f"TensorRT-RTX: {parser_blockers(row['tensorrt_rtx']['error'])}")
    return "; ".join(found) or "none"


HEADER = ("network", "exports to ONNX", "runs in ONNX Runtime (max abs error vs PyTorch)",
          "builds in TensorRT-RTX (CPU, AOT)", "what blocks it")


def _export_cell(exported: dict) -> str:
    return "no" if "error" in exported else f"yes ({exported['seconds']:.0f} s, {exported['bytes'] / 1e6:.1f} MB)"


def _parity_cell(checks: list[dict]) -> str:
    def cell(c: dict) -> str:
        if "error" in c:
            return "fails"
        return f"{c['max_abs']:.1e}" + ("" if c["passed"] else " (too large)")

    return "; ".join(f"{c['size'][0]}x{c['size'][1]}: {cell(c)}" for c in checks) or "-"


def _engine_cell(trt: dict) -> str:
    if not trt:
        return "-"
    if "error" in trt:
        return "no"
    how = {True: ", plugin", False: ", function bodies"}.get(trt["plugin"], "")
    return f"yes ({trt['seconds']:.0f} s, {trt['engine_bytes'] / 1e6:.1f} MB{how})"


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        cells = (row["network"], _export_cell(row["export"]), _parity_cell(row.get("onnxruntime", [])),
                 _engine_cell(row.get("tensorrt_rtx", {})), blockers(row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="where the ONNX files and engines go (kept)")
    parser.add_argument("--render", type=Path, default=None, help="print the table of a run saved with --json; stop")
    parser.add_argument("--models", default="gldfn,dcls,danv1,danv2")
    parser.add_argument("--plugin", type=Path, default=None, help="GLDFN plugin library (default: the built one)")
    parser.add_argument("--json", type=Path, default=None, help="write every detail here")
    args = parser.parse_args()
    if args.render is not None:
        print(markdown(json.loads(args.render.read_text())))
        return
    if args.folder is None:
        parser.error("--folder is needed to run the checks")
    torch.set_num_threads(1)
    args.folder.mkdir(parents=True, exist_ok=True)
    try:
        plugin = find_plugin_library(args.plugin)
    except PluginLibraryError as error:
        print(f"note: {error}; GLDFN's engine is built from the ONNX function bodies")
        plugin = None
    rows = []
    for name in parse_models(args.models):
        start = time.perf_counter()
        rows.append(assess(name, args.folder, plugin))
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    print(markdown(rows))
    if args.json is not None:
        with atomic_output(args.json, overwrite=True) as tmp:  # the script refreshes its own results file
            tmp.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
