"""The human-readable summary of an export."""
from __future__ import annotations

from gldfn_export.exporter import ExportResult
from gldfn_model.ops.contract import load_contract


def _si(value: float, unit: str) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}"


def format_summary(result: ExportResult, source: str | None = None) -> str:
    contract = load_contract()
    s = result.scale
    h, w = result.macs_reference_hw
    lines = [
        f"GLDFN x{s}, config {result.config_name}" + (f", {source}" if source else ""),
        f"  file       {result.path} ({result.file_bytes / 2**20:.1f} MiB)",
        f"  format     {result.precision}, target {result.target}, opset {result.opset}, "
        f"lr {result.batch}x3xHxW -> sr {result.batch}x3x{s}Hx{s}W (H, W dynamic)",
        f"  nodes      {result.node_count}, of which {result.custom_node_count} {contract.domain}::{contract.name} "
        f"({result.local_filter_count} local dynamic filters in the model)",
        f"  params     {result.params:,} ({_si(result.params, '')})",
        f"  MACs       {_si(result.macs, 'MAC')} at LR {h}x{w} (= {_si(2 * result.macs, 'FLOP')}, multiply and add counted apart)",
    ]
    if result.parity:
        lines.append("  parity     ONNX Runtime CPU vs PyTorch float32:")
        lines.extend(f"             {check.describe()}" for check in result.parity)
    else:
        lines.append("  parity     not checked (--no-verify)")
    lines.append(f"written to {result.path.resolve()}")
    return "\n".join(lines)
