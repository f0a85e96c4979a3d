"""The latency harness (any Runner) and `gldfn bench`."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import plain_text
from PIL import Image
from typer.testing import CliRunner

from gldfn_model.cli import app
from gldfn_model.inference.bicubic_runner import BicubicRunner
from gldfn_model.inference.torch_runner import TorchRunner
from gldfn_model.network.complexity import TABLE_IV, count_complexity
from gldfn_model.network.config import get_config
from gldfn_model.network.gldfn import GLDFN
from gldfn_runtime.bench.harness import (
    BenchmarkError,
    Contestant,
    claim_check,
    format_markdown,
    format_text,
    measure_interleaved,
    measure_latency,
    summarize,
    table_iv_rows,
)


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
        (["--random-weights", "--precision", "tf32"], "--precision tf32 runs torch on a GPU only"),
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
    peers = CliRunner().invoke(app, ["bench", "--random-weights", "--model", "dcls", "--onnx", str(path)])
    assert peers.exit_code == 1 and "--onnx times one GLDFN file" in peers.output


def test_interleaving_rotates_the_order_and_binds_the_input_once():
    calls, prepared = [], []

    def contestant(name: str) -> Contestant:
        def prepare(lr):
            prepared.append((name, lr.shape))
            return lambda: calls.append(name)

        def timer(step):
            step()
            return float(len(calls))

        return Contestant("x", 4, prepare, timer, work=lambda size: (1, size[0] * size[1]), model=name)

    results = measure_interleaved([contestant("a"), contestant("b"), contestant("c")], (4, 5), iters=3, warmup=1)
    assert prepared == [("a", (1, 3, 4, 5)), ("b", (1, 3, 4, 5)), ("c", (1, 3, 4, 5))]
    assert calls == ["a", "b", "c", "a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert [r.model for r in results] == ["a", "b", "c"] and all(r.macs == 20 and r.iters == 3 for r in results)
    assert results[0].ms_per_gmac == pytest.approx(results[0].mean_ms / (20 / 1e9))


def test_claim_check_orders_the_networks_three_ways():
    def result(model, ms, gmacs):
        macs = int(gmacs * 1e9)
        return summarize("torch", [ms], (180, 270), 1, 4, 0, params=1, macs=macs, model=model, device="cpu",
                         precision="fp32")

    results = [result("gldfn", 300.0, 372.1), result("dcls", 200.0, 368.4), result("danv1", 900.0, 913.3)]
    alone = summarize("onnxruntime", [5.0], (180, 270), 1, 4, 0, params=1, macs=10**9, model="gldfn", device="cpu",
                      precision="fp32")
    (check,) = claim_check(results + [alone])  # a backend timed with one network has nothing to compare
    assert check["backend"] == "torch cpu fp32"
    assert check["by_table_iv_gmacs"] == ["gldfn", "dcls", "danv1"]
    assert check["by_our_gmacs"] == ["dcls", "gldfn", "danv1"]
    assert check["by_latency"] == ["dcls", "gldfn", "danv1"] and not check["fewer_macs_means_less_time"]
    assert "by latency:        dcls 200.0 ms, gldfn 300.0 ms, danv1 900.0 ms" in format_text(results)


def test_cli_times_several_networks_interleaved(tmp_path):
    from gldfn_model.network.op_count import count_ops
    from gldfn_model.peers import build_network

    plot = tmp_path / "macs.png"
    result = CliRunner().invoke(app, [
        "bench", "--model", "gldfn,danv2", "--config", "tiny", "--sizes", "16x16", "--iters", "1", "--warmup", "0",
        "--threads", "1", "--json", "--plot", str(plot),
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{"):])
    assert [r["model"] for r in data["results"]] == ["gldfn", "danv2"] and data["config"] == "tiny"
    with torch.device("meta"):
        danv2 = build_network("danv2")
    assert data["results"][1]["macs"] == count_ops(danv2, (16, 16)).macs
    assert data["claim"] == [] and "random weights" in data["notes"][0]
    with Image.open(plot) as image:
        assert image.format == "PNG"


def test_cli_times_shipped_models_interleaved():
    result = CliRunner().invoke(app, [
        "bench", "--model", "tiny-x4,tiny-x4-robust", "--sizes", "16x16", "--iters", "2", "--warmup", "0",
        "--threads", "1", "--json",
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{"):])
    assert [r["model"] for r in data["results"]] == ["tiny-x4", "tiny-x4-robust"] and data["config"] == "tiny"
    assert "2 contestants interleaved" in result.stderr


def test_each_shipped_contestant_runs_its_own_weights(tmp_path):
    from gldfn_model.network.checkpoint import load_checkpoint
    from gldfn_model.network.registry import find_model
    from gldfn_runtime.bench.contestants import BenchRequest, build_contestants

    names = ("tiny-x4", "tiny-x4-robust")
    request = BenchRequest(models=names, shipped_models=names, threads=1)
    contestants = build_contestants(request, tmp_path).contestants
    lr = np.random.default_rng(0).random((1, 3, 12, 12), dtype=np.float32)
    for name, contestant in zip(names, contestants):
        expected = load_checkpoint(find_model(name).checked_path()).build_model()(torch.from_numpy(lr))
        np.testing.assert_allclose(contestant.prepare(lr)(), expected.detach().numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "tiny-x2,tiny-x4"], "tiny-x2 (x2), tiny-x4 (x4): time shipped models of one scale together"),
        (["--model", ","], "names no model"),
        (["--model", "gldfn,ikc"], "'ikc' is neither a network (gldfn, dcls, danv1, danv2) nor a shipped model"),
        (["--model", "gldfn,dlcs"], "(did you mean 'dcls'?)"),
        (["--device", "gpu1"], "cpu, or the index N of a CUDA GPU"),
        (["--precision", "fp16"], "runs torch on a GPU only"),
        (["--precision", "bf16"], "choose from fp32, tf32, fp16"),
    ],
)
def test_cli_model_options_explain_themselves(args, message):
    result = CliRunner().invoke(app, ["bench", "--random-weights", *args])
    assert result.exit_code != 0
    assert message in plain_text(result.output)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a CUDA GPU")
def test_cli_cuda_without_a_gpu_says_so():
    result = CliRunner().invoke(app, ["bench", "--random-weights", "--device", "cuda"])
    assert result.exit_code == 1 and "sees no CUDA GPU" in result.output


def _tf32_settings() -> list:
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        return [conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision]
    return [torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32]


def test_fp32_timings_run_without_tf32_and_tf32_is_named():
    from gldfn_runtime.bench.contestants import cuda_fp32_math

    before = _tf32_settings()
    with cuda_fp32_math(tf32=False):
        assert _tf32_settings() in (["ieee", "ieee"], [False, False])
    with cuda_fp32_math(tf32=True):
        assert _tf32_settings() in (["tf32", "tf32"], [True, True])
    assert _tf32_settings() == before  # restored


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none visible to PyTorch)")
def test_cuda_contestants_time_fp32_and_fp16_on_the_device():
    from gldfn_runtime.bench.contestants import torch_device_contestant

    torch.manual_seed(0)
    model = GLDFN(get_config("tiny", 4))
    cuda = torch.device("cuda")
    contestants = [torch_device_contestant(GLDFN(model.config), "gldfn", cuda, p) for p in ("fp32", "tf32", "fp16")]
    results = measure_interleaved(contestants, (32, 40), iters=3, warmup=1)
    assert [r.precision for r in results] == ["fp32", "tf32", "fp16"] and all(r.min_ms > 0 for r in results)
    assert results[0].macs == count_complexity(model.config, 32, 40).macs


def test_gpu_script_fails_fast_without_a_gpu(tmp_path):
    import subprocess
    from pathlib import Path

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: the script would run for minutes")
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_table_iv.sh"
    done = subprocess.run(["bash", str(script), str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "no CUDA GPU visible to PyTorch" in done.stderr + done.stdout
