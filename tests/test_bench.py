"""The latency harness (any Runner) and `gldfn bench`."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gldfn_model.cli import app
from gldfn_model.inference.bicubic_runner import BicubicRunner
from gldfn_model.inference.torch_runner import TorchRunner
from gldfn_model.network.complexity import TABLE_IV, count_complexity
from gldfn_model.network.config import get_config
from gldfn_model.network.gldfn import GLDFN
from gldfn_runtime.benchmark import BenchmarkError, format_markdown, measure_latency, summarize, table_iv_rows


@pytest.fixture(scope="module")
def tiny_runner() -> TorchRunner:
    torch.manual_seed(0)
    return TorchRunner(GLDFN(get_config("tiny", 4)))


def test_statistics_follow_from_the_samples():
    samples = [10.0, 12.0, 11.0, 30.0, 10.5]
    result = summarize("x", samples, (180, 270), batch=2, scale=4, warmup=0, params=1, macs=5 * 10**9)
    assert result.min_ms == 10.0 and result.median_ms == 11.0
    assert result.mean_ms == pytest.approx(np.mean(samples))
    assert result.median_ms <= result.p90_ms <= result.p99_ms <= max(samples)
    assert result.images_per_s == pytest.approx(2 / (result.mean_ms / 1e3))
    assert result.output_megapixels_per_s == pytest.approx(2 * 720 * 1080 / (result.mean_ms / 1e3) / 1e6)
    assert result.achieved_tflops == pytest.approx(2 * 5e9 * 2 / (result.mean_ms / 1e3) / 1e12)


def test_real_runner_is_timed_and_its_work_counted(tiny_runner):
    config = tiny_runner.config
    result = measure_latency(tiny_runner, (16, 24), iters=4, warmup=1, config=config)
    assert result.iters == 4 and len(result.samples_ms) == 4 and min(result.samples_ms) > 0
    assert result.macs == count_complexity(config, 16, 24).macs
    assert result.params == count_complexity(config, 16, 24).params
    assert result.achieved_tflops == pytest.approx(2 * result.macs / (result.mean_ms / 1e3) / 1e12)


def test_a_device_timer_replaces_the_host_clock(tiny_runner):
    calls = []

    def fixed_timer(step):  # stands where the TensorRT runner passes its CUDA-event timer
        calls.append(step())
        return 7.0

    result = measure_latency(tiny_runner, (8, 8), iters=3, warmup=0, timer=fixed_timer)
    assert len(calls) == 3 and calls[0].shape == (1, 3, 32, 32)
    assert result.mean_ms == result.p99_ms == 7.0 and result.macs is None


def test_sizes_outside_the_runner_range_are_refused():
    runner = BicubicRunner(4)
    runner.max_size = (64, 64)
    with pytest.raises(BenchmarkError, match="above the maximum 64x64"):
        measure_latency(runner, (65, 10), iters=1)
    with pytest.raises(BenchmarkError, match="iters >= 1"):
        measure_latency(runner, (8, 8), iters=0)


def test_table_iv_rows_sit_beside_ours_at_180x270():
    ours = summarize("torch", [100.0], (180, 270), 1, 4, 0, params=14_000_000, macs=300 * 10**9)
    other = summarize("torch", [10.0], (90, 135), 1, 4, 0, params=14_000_000, macs=75 * 10**9)
    rows = table_iv_rows([ours, other], "paper")
    assert [r["method"] for r in rows[: len(TABLE_IV)]] == list(TABLE_IV)
    assert len(rows) == len(TABLE_IV) + 1 and rows[-1]["gmacs"] == 300.0
    markdown = format_markdown([ours, other], "paper")
    assert "| GLDFN | 14.70 | 346.74 |" in markdown and "| torch | 90x135 |" in markdown


def test_cli_two_backends_json_and_plot(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the plot extra: pip install 'gldfn-trt[plot]')")
    plot = tmp_path / "latency.png"
    result = CliRunner().invoke(app, [
        "bench", "--backend", "torch,onnxruntime", "--random-weights", "--sizes", "16x16,24x32",
        "--iters", "2", "--warmup", "1", "--threads", "1", "--json", "--plot", str(plot),
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{"):])
    assert data["config"] == "tiny"
    assert [(r["backend"], tuple(r["lr_size"])) for r in data["results"]] == [
        ("torch", (16, 16)), ("torch", (24, 32)), ("onnxruntime", (16, 16)), ("onnxruntime", (24, 32))
    ]
    assert all(r["macs"] == count_complexity(get_config("tiny", 4), *r["lr_size"]).macs for r in data["results"])
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.width > 100


@pytest.mark.parametrize(
    "args,message",
    [
        (["--backend", "tensorrt"], "gldfn-trt bench"),
        (["--backend", "torch", "--config", "paper"], "--random-weights"),
        (["--sizes", "180by270", "--random-weights"], "HEIGHTxWIDTH"),
        (["--random-weights", "--json", "--markdown"], "exclude each other"),
    ],
)
def test_cli_bad_options_explain_themselves(args, message):
    result = CliRunner().invoke(app, ["bench", *args])
    assert result.exit_code != 0
    assert message in result.output


def test_cli_onnx_file_takes_its_config_from_the_metadata(tiny_runner, tmp_path):
    from gldfn_export.exporter import export_gldfn

    path = tmp_path / "tiny.onnx"
    export_gldfn(tiny_runner.model, path, verify=False, config_name="tiny")
    result = CliRunner().invoke(app, ["bench", "--backend", "onnxruntime", "--onnx", str(path), "--sizes", "16x24", "--iters", "2", "--warmup", "0", "--markdown"])
    assert result.exit_code == 0, result.output
    gmacs = count_complexity(get_config("tiny", 4), 16, 24).macs / 1e9
    assert "| onnxruntime | 16x24 | 1 |" in result.stdout and f"| {gmacs:.2f} |" in result.stdout
