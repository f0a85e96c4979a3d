"""The human-readable summary of a calibration run."""
from __future__ import annotations

from gldfn_calibration.calibrate import CalibrationResult

SENSITIVITY_LINES = 8


def _mib(size: int) -> str:
    return f"{size / 2**20:.2f} MiB"


def format_summary(result: CalibrationResult) -> str:
    selection = result.selection
    lines = [
        f"INT8 model  {result.output} ({_mib(result.file_bytes['int8_onnx'])}; FP32 {_mib(result.file_bytes['fp32_onnx'])})",
        f"  target    {result.target.value}: activations {result.target.activations}; bias {result.target.bias}",
        f"  layers    {len(selection.quantized)} convolutions in INT8, {len(selection.excluded_layers)} kept in float:",
    ]
    reasons: dict[str, int] = {}
    for reason in selection.excluded_layers.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    lines.extend(f"            {count} x {reason}" for reason, count in reasons.items())
    lines.append(f"  data      {result.calibration_description}")
    accuracy = result.accuracy
    if accuracy is not None:
        mutual = "identical" if accuracy.int8_vs_fp32_psnr is None else f"{accuracy.int8_vs_fp32_psnr:.2f} dB"
        lines += [
            f"  accuracy  {accuracy.images} images, {accuracy.setting} x{accuracy.scale}, {accuracy.convention} convention:",
            f"            FP32 {accuracy.fp32_psnr:.3f} dB / {accuracy.fp32_ssim:.4f}, INT8 {accuracy.int8_psnr:.3f} dB / "
            f"{accuracy.int8_ssim:.4f}; lost {accuracy.psnr_loss_db:.3f} dB; INT8 vs FP32 {mutual} / {accuracy.int8_vs_fp32_ssim:.4f}",
        ]
    if result.sensitivity:
        lines.append("  sensitive layers (each quantized alone, PSNR lost):")
        lines.extend(f"            {s.psnr_lost_db:7.3f} dB  {s.layer}" for s in result.sensitivity[:SENSITIVITY_LINES])
    if result.engine is not None:
        how = f"plugin {result.engine.plugin_library}" if result.engine.plugin_library else "custom nodes from their function bodies (no plugin library)"
        lines.append(f"  TensorRT  {result.engine.backend}: parsed and built on the CPU ({_mib(result.engine.plan_bytes)} plan, {how})")
    elif result.engine_skipped:
        lines.append(f"  TensorRT  skipped: {result.engine_skipped}")
    if result.report_path is not None:
        lines.append(f"  report    {result.report_path}")
    return "\n".join(lines)
