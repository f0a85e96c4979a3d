"""``gldfn-trt build | inspect | run | bench | compare`` through the typer app, on a machine without a GPU:
builds and inspection for real with TensorRT-RTX, ``compare`` of two ONNX files for real in ONNX Runtime, and
``run``/``bench`` refusing clearly and pointing to the CPU commands."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import run_fresh
from test_engine_build import _rtx
from typer.testing import CliRunner

from gldfn_model.network.complexity import count_complexity
from gldfn_model.network.config import get_config
from gldfn_runtime.cli.main import app

PROFILE_ARGS = ["--min", "8x8", "--opt", "32x48", "--max", "64x64"]


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def cli_engine(tiny_onnx, plugin_library, tmp_path_factory) -> Path:
    _rtx()
    folder = tmp_path_factory.mktemp("cli_engine")
    engine = folder / "tiny.engine"
    result = invoke("build", tiny_onnx["fp32"], *PROFILE_ARGS, "--plugin", plugin_library, "--backend", "tensorrt-rtx",
                    "-o", engine, "--cache-dir", folder / "cache")
    assert result.exit_code == 0, result.output
    assert f"{engine}: built in" in result.output and "plugin layers: 4" in result.output
    return engine


def _no_gpu() -> None:
    from gldfn_runtime.tensorrt.backend import current_gpu

    if current_gpu()[0] is not None:
        pytest.skip("a CUDA GPU is present: this test covers machines without one")


def test_build_twice_reuses_the_cached_engine(cli_engine, tiny_onnx, plugin_library):
    mtime = cli_engine.stat().st_mtime_ns
    result = invoke("build", tiny_onnx["fp32"], *PROFILE_ARGS, "--plugin", plugin_library, "--backend", "tensorrt-rtx",
                    "-o", cli_engine, "--cache-dir", cli_engine.parent / "cache")
    assert result.exit_code == 0, result.output
    assert "reused from the cache" in result.output and cli_engine.stat().st_mtime_ns == mtime


def test_inspect_engine_reads_the_sidecar(cli_engine):
    text = invoke("inspect", cli_engine)
    assert text.exit_code == 0, text.output
    for expected in ("sidecar (a serialized engine cannot be deserialized without a GPU)", "tensorrt-rtx", "precision:     fp32",
                     "min 8x8, opt 32x48, max 64x64", "plugin layers: 4 of", "SM80, SM86, SM89, SM120, SM121"):
        assert expected in text.output
    data = json.loads(invoke("inspect", cli_engine, "--json").output)
    assert data["macs_at_opt"] == count_complexity(get_config("tiny"), 32, 48).macs
    assert len(data["plugin_layers"]) == 4 and data["inputs"][0]["name"] == "lr"


def test_inspect_onnx_counts_plugin_nodes_and_macs(tiny_onnx):
    result = invoke("inspect", tiny_onnx["fp16"], "--opt", "180x270", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["precision"] == "fp16" and data["scale"] == 4 and data["plugin_nodes"] == 4
    assert data["macs_at_opt"] == count_complexity(get_config("tiny"), 180, 270).macs
    assert data["inputs"][0]["shape"] == [1, 3, "height", "width"]


def test_inspect_rejects_a_corrupt_engine(cli_engine, tmp_path):
    copy = tmp_path / "copy.engine"
    copy.write_bytes(cli_engine.read_bytes()[:1000])
    Path(str(copy) + ".json").write_text(Path(str(cli_engine) + ".json").read_text())
    result = invoke("inspect", copy)
    assert result.exit_code == 1 and "corrupt or was replaced" in result.output


def test_a_missing_engine_and_an_onnx_file_are_named_as_such(tiny_onnx, tmp_path):
    missing = invoke("inspect", tmp_path / "absent.engine")
    assert missing.exit_code == 1 and f"engine {tmp_path / 'absent.engine'} does not exist" in missing.output
    assert ".json" not in missing.output
    from gldfn_runtime.engine.sidecar import SidecarError, read_sidecar

    onnx = tiny_onnx["fp32"]
    with pytest.raises(SidecarError, match="is an ONNX model, not an engine") as raised:
        read_sidecar(onnx)  # what run/bench/compare read first once a GPU is there
    assert f"-o {onnx}" not in str(raised.value)  # never suggests writing an engine over the model


@pytest.mark.parametrize("command", ["run", "bench"])
def test_run_and_bench_without_a_gpu_point_to_the_cpu_commands(cli_engine, tmp_path, command):
    _no_gpu()
    image = Path(__file__).resolve().parents[1] / "README.md"  # never read: the GPU check comes first
    args = ["run", cli_engine, image, "-o", tmp_path / "out"] if command == "run" else ["bench", cli_engine, "--sizes", "32x32"]
    result = invoke(*args)
    assert result.exit_code == 1
    assert "need an NVIDIA GPU" in result.output and "gldfn upscale" in result.output and "gldfn bench" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["run", "bench"])
def test_run_and_bench_take_an_onnx_file_and_check_the_gpu_before_building(tiny_onnx, tmp_path, command):
    """ONNX first: no separate build step; without a GPU nothing is built or written, and the CPU commands are named."""
    _no_gpu()
    _rtx()
    from PIL import Image

    image = tmp_path / "in.png"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(image)
    onnx = tiny_onnx["fp32"]
    beside = sorted(onnx.parent.iterdir())
    args = ["run", onnx, image, "-o", tmp_path / "out"] if command == "run" else ["bench", onnx, "--sizes", "32x32"]
    result = invoke(*args, "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 1, result.output
    assert f"cannot run {onnx} with TensorRT" in result.output and "TensorRT needs an NVIDIA GPU" in result.output
    assert f"--onnx {onnx}" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()
    assert sorted(onnx.parent.iterdir()) == beside


def test_run_reports_a_missing_model_as_missing(tmp_path):
    from PIL import Image

    image = tmp_path / "in.png"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(image)
    for name in ("absent.onnx", "absent.engine"):
        result = invoke("run", tmp_path / name, image, "-o", tmp_path / "out")
        assert result.exit_code == 1 and f"{tmp_path / name} does not exist" in result.output, result.output
        assert "sidecar" not in result.output and ".json" not in result.output


def test_build_refuses_to_write_the_engine_over_the_onnx_file(tiny_onnx, plugin_library, tmp_path):
    _rtx()
    import shutil

    onnx = tmp_path / "m.onnx"
    shutil.copyfile(tiny_onnx["fp32"], onnx)
    before = onnx.read_bytes()
    result = invoke("build", onnx, *PROFILE_ARGS, "--plugin", plugin_library, "--backend", "tensorrt-rtx", "-o", onnx,
                    "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 1 and "is the ONNX file itself" in result.output, result.output
    assert onnx.read_bytes() == before


def test_run_refuses_to_write_over_its_inputs_before_loading_the_engine(cli_engine, tmp_path):
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(photo)
    before = photo.read_bytes()
    for out in (tmp_path, photo):
        result = invoke("run", cli_engine, photo, "-o", out)
        assert result.exit_code == 1 and "1 output(s) would replace input images" in result.output, result.output
    assert photo.read_bytes() == before
    several = invoke("run", cli_engine, photo, tmp_path, "-o", tmp_path / "out.png")
    assert several.exit_code == 1 and "-o must be a folder" in several.output


def test_compare_with_an_engine_needs_a_gpu(cli_engine, tiny_onnx):
    _no_gpu()
    result = invoke("compare", cli_engine, tiny_onnx["fp32"])
    assert result.exit_code == 1 and "need an NVIDIA GPU" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("command", ["run", "compare"])
def test_engine_commands_do_not_import_torch(cli_engine, tiny_onnx, tmp_path, command):
    """In a fresh interpreter: with a GPU the engine runs, without one the command refuses; neither loads torch."""
    from PIL import Image

    image = tmp_path / "in.png"
    Image.new("RGB", (24, 20), (90, 140, 200)).save(image)
    if command == "run":
        args = ["run", str(cli_engine), str(image), "-o", str(tmp_path / "out")]
    else:
        args = ["compare", str(cli_engine), str(tiny_onnx["fp32"])]
    result, torch_loaded = run_fresh(f"""
        sys.argv = ["gldfn-trt", *{args!r}]
        from gldfn_runtime.cli.main import main
        main()
    """)
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    assert not torch_loaded


def test_build_errors_are_one_line(tiny_onnx, tmp_path):
    _rtx()
    missing = invoke("build", tiny_onnx["fp32"], "--plugin", tmp_path / "missing.so", "--backend", "tensorrt-rtx", "-o", tmp_path / "x.engine")
    assert missing.exit_code == 1 and "plugin library not found" in missing.output and "gldfn-trt plugin build" in missing.output
    bad_size = invoke("build", tiny_onnx["fp32"], "--min", "8by8", "-o", tmp_path / "x.engine")
    assert bad_size.exit_code == 2 and "'8by8' is not a size" in bad_size.output
    no_file = invoke("build", tmp_path / "absent.onnx")
    assert no_file.exit_code == 1 and "does not exist" in no_file.output
    assert not (tmp_path / "x.engine").exists()


# --- compare: ONNX Runtime against itself, for real ---------------------------------------------------------

def test_compare_fp32_against_fp16_reports_errors_and_psnr(tiny_onnx):
    result = invoke("compare", tiny_onnx["fp32"], tiny_onnx["fp16"], "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["reference"].startswith("onnxruntime:") and report["candidate"].endswith("tiny_fp16.onnx")
    assert len(report["rows"]) == 2  # a real image (or the test card) and seeded noise
    # FP16 inside differs from FP32, a little: not identical, far below one 8-bit step on average.
    assert 0 < report["mean_abs"] < 1 / 255 and 0 < report["max_abs"] < 0.05
    assert 40 < report["min_psnr_db"] < math.inf


def test_compare_a_file_with_itself_is_exact_and_text_output_is_readable(tiny_onnx):
    result = invoke("compare", tiny_onnx["fp32"], tiny_onnx["fp32"], "--size", "24x40")
    assert result.exit_code == 0, result.output
    assert "max abs 0.000e+00" in result.output and "PSNR inf dB" in result.output and "24x40" in result.output


def test_compare_on_given_images(tiny_onnx, tmp_path):
    import numpy as np
    from PIL import Image

    image = tmp_path / "card.png"
    Image.fromarray((np.indices((40, 50)).sum(0) % 7 * 36).astype(np.uint8)).save(image)  # grayscale: read as RGB
    result = invoke("compare", tiny_onnx["fp32"], tiny_onnx["fp16"], "--images", image, "--size", "32x32", "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)["rows"]
    assert row["input_name"] == "card.png" and row["shape"] == [1, 3, 32, 32] and row["psnr_db"] > 40
    second = tmp_path / "b.png"
    Image.open(image).convert("RGB").save(second)
    folder = invoke("compare", tiny_onnx["fp32"], tiny_onnx["fp16"], "--images", tmp_path, "--size", "32x32", "--json")
    assert folder.exit_code == 0, folder.output
    assert [r["input_name"] for r in json.loads(folder.output)["rows"]] == ["b.png", "card.png"]  # a folder's images


def test_compare_bad_inputs_fail_clearly(tiny_onnx, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    result = invoke("compare", tiny_onnx["fp32"], tiny_onnx["fp16"], "--images", text)
    assert result.exit_code == 1 and "notes.png" in result.output and "not a readable image" in result.output
    missing = invoke("compare", tiny_onnx["fp32"], tmp_path / "absent.onnx")
    assert missing.exit_code == 1 and "absent.onnx does not exist" in missing.output


def test_backend_tensorrt_without_the_package_says_what_to_install(tiny_onnx, tmp_path):
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("full TensorRT is installed here")
    result = invoke("build", tiny_onnx["fp32"], "--backend", "tensorrt", "-o", tmp_path / "x.engine")
    assert result.exit_code == 1 and "tensorrt:" in result.output and "pip install tensorrt-rtx" in result.output
    assert not (tmp_path / "x.engine").exists()


def test_upscaler_from_onnx_with_tensorrt(tiny_onnx, plugin_library, tmp_path, monkeypatch):
    """The Python API's ONNX-first path: without a GPU a NoGpuError naming the CPU route and nothing built; with
    one, the engine is built once into the cache and the result matches ONNX Runtime."""
    import numpy as np

    from gldfn_runtime.runners.trt_runner import NoGpuError
    from gldfn_runtime.upscale.upscaler import Upscaler

    _rtx()
    monkeypatch.setenv("GLDFN_TRT_PLUGIN_LIBRARY", str(plugin_library))
    from gldfn_runtime.tensorrt.backend import current_gpu

    if current_gpu()[0] is None:
        with pytest.raises(NoGpuError, match="gldfn upscale"):
            Upscaler.from_onnx(tiny_onnx["fp32"], backend="tensorrt", cache_dir=tmp_path / "cache")
        assert not (tmp_path / "cache").exists()
        pytest.skip("no CUDA GPU: the engine cannot run here (the refusal was checked)")
    image = np.random.default_rng(0).random((24, 32, 3), dtype=np.float32)
    engine = Upscaler.from_onnx(tiny_onnx["fp32"], backend="tensorrt", cache_dir=tmp_path / "cache", tile=0)
    reference = Upscaler.from_onnx(tiny_onnx["fp32"], tile=0)
    assert np.abs(engine.upscale(image) - reference.upscale(image)).max() < 1e-3
    assert len(list((tmp_path / "cache").rglob("model.engine"))) == 1


def test_run_takes_images_by_i_and_checks_an_explicit_scale_against_the_file_first(tiny_onnx, tmp_path):
    from PIL import Image

    image = tmp_path / "in.png"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(image)
    result = invoke("run", tiny_onnx["fp32"], "-i", image, "-o", tmp_path / "out", "-s", "2",
                    "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 2, result.output
    assert "4" in result.output and "2" in result.output and "gldfn.scale" in result.output
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


# --- compare as a CI gate: --atol / --rtol / --min-psnr --------------------------------------------------------

def test_compare_gates_pass_and_fail_with_the_reason(tiny_onnx):
    fp32, fp16 = tiny_onnx["fp32"], tiny_onnx["fp16"]
    loose = invoke("compare", fp32, fp16, "--atol", "0.05", "--min-psnr", "40")
    assert loose.exit_code == 0, loose.output
    assert "within the tolerance" in loose.output
    strict = invoke("compare", fp32, fp16, "--atol", "1e-9", "--min-psnr", "200")
    assert strict.exit_code == 1
    reason = " ".join(strict.output.split())
    assert "error: the candidate misses the tolerance:" in reason
    assert "values differ by more than atol 1e-09 + rtol 0 x |reference|" in reason
    assert "is below 200 dB" in reason
    gated = invoke("compare", fp32, fp16, "--rtol", "1e-9", "--json")
    assert gated.exit_code == 1
    report = json.loads(gated.stdout)
    assert report["gate"]["passed"] is False and report["gate"]["rtol"] == 1e-9 and len(report["gate"]["failures"]) == 1
    same = invoke("compare", fp32, fp32, "--atol", "0", "--min-psnr", "1000", "--json")  # identical: inf PSNR passes
    assert same.exit_code == 0 and json.loads(same.stdout)["gate"]["passed"] is True
    assert invoke("compare", fp32, fp16, "--atol", "-1").exit_code == 2


def test_tolerance_follows_numpy_isclose():
    import numpy as np

    from gldfn_runtime.runners.compare import CompareError, Tolerance

    reference = np.array([0.0, 1.0, 2.0, np.nan])
    candidate = np.array([0.001, 1.01, 2.0, 0.0])
    assert Tolerance(atol=1e-3).outside(reference, candidate) == 2  # 1.01, and NaN in the reference
    assert Tolerance(atol=1e-3, rtol=0.01).outside(reference, candidate) == 1
    assert not Tolerance().checks_values and Tolerance(rtol=0.1).checks_values
    with pytest.raises(CompareError, match="--min-psnr must be a finite number >= 0"):
        Tolerance(min_psnr_db=float("nan"))


# --- engines without a sidecar (trtexec's, or copied alone) ----------------------------------------------------

@pytest.fixture
def bare_engine(cli_engine, tmp_path) -> Path:
    """The CLI engine copied without its .json: what trtexec writes."""
    import shutil

    bare = tmp_path / "trtexec.engine"
    shutil.copyfile(cli_engine, bare)
    return bare


def test_an_engine_without_a_sidecar_is_read_from_the_engine_on_a_gpu(bare_engine, tmp_path):
    """Without a GPU: a warning that nothing can be checked, then the GPU refusal (an explicit --scale is taken,
    not checked against a sidecar that is not there); nothing is written."""
    _no_gpu()
    from PIL import Image

    image = tmp_path / "in.png"
    Image.new("RGB", (16, 16), (10, 20, 30)).save(image)
    result = invoke("run", bare_engine, image, "-o", tmp_path / "out", "-s", "3")
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert f"warning: {bare_engine} has no sidecar (trtexec.engine.json, written by gldfn-trt build)" in text
    assert "its input, output and scale are read from the engine" in text
    assert f"cannot run engine {bare_engine}" in text and "TensorRT engines need an NVIDIA GPU" in text
    assert "gldfn upscale" in text and not (tmp_path / "out").exists()


def test_the_runner_warns_about_a_missing_sidecar_before_it_needs_the_gpu(bare_engine):
    _no_gpu()
    from gldfn_runtime.runners.trt_runner import EngineWithoutSidecarWarning, NoGpuError, TensorRTRunner

    with pytest.warns(EngineWithoutSidecarWarning, match="has no sidecar"), pytest.raises(NoGpuError, match="on the GPU"):
        TensorRTRunner(bare_engine)


def test_inspect_of_an_engine_without_a_sidecar_says_it_still_runs(bare_engine):
    result = invoke("inspect", bare_engine)
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert f"{bare_engine}.json is missing" in text and "an engine without one still runs on a GPU" in text


def test_the_scale_of_an_engine_without_a_sidecar_comes_from_its_shapes(tmp_path):
    from gldfn_model.inference.runner import RunnerError
    from gldfn_runtime.runners.engine_io import scale_from_shapes

    engine = tmp_path / "m.engine"
    assert scale_from_shapes((1, 3, 8, 8), (1, 3, 32, 32), None, engine) == 4
    assert scale_from_shapes((1, 3, 8, 10), (1, 3, 16, 20), 2, engine) == 2
    assert scale_from_shapes((1, 3, 8, 8), (1, 3, -1, -1), 3, engine) == 3  # not known before running: --scale
    with pytest.raises(RunnerError, match="not known before it runs .* pass --scale"):
        scale_from_shapes((1, 3, 8, 8), (1, 3, -1, -1), None, engine)
    with pytest.raises(RunnerError, match="--scale 2 does not match .* which upscales x4"):
        scale_from_shapes((1, 3, 8, 8), (1, 3, 32, 32), 2, engine)
    with pytest.raises(RunnerError, match="not an upscaling of one integer factor"):
        scale_from_shapes((1, 3, 8, 8), (1, 3, 32, 24), None, engine)


def test_an_engine_without_a_sidecar_runs_like_the_one_with_it(cli_engine, bare_engine, plugin_library):
    """On a GPU the engine TensorRT-RTX built here can run (SM80-SM121): the same output without the sidecar."""
    from gldfn_runtime.tensorrt.backend import current_gpu

    gpu, reason = current_gpu()
    if gpu is None:
        pytest.skip(f"needs a CUDA GPU to deserialize an engine ({reason})")
    from gldfn_runtime.engine.sidecar import read_sidecar

    targets = read_sidecar(cli_engine).target.get("compute_capabilities") or []
    if gpu.compute_capability not in targets:
        pytest.skip(f"the test engine targets {', '.join(targets)}; this GPU ({gpu.name}) is {gpu.compute_capability}")
    import numpy as np

    from gldfn_runtime.runners.trt_runner import EngineWithoutSidecarWarning, TensorRTRunner

    lr = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
    with TensorRTRunner(cli_engine, plugin=plugin_library) as described:
        expected = described.infer(lr)
    with pytest.warns(EngineWithoutSidecarWarning), TensorRTRunner(bare_engine, plugin=plugin_library) as bare:
        assert (bare.scale, bare.min_size, bare.max_size) == (4, (8, 8), (64, 64))
        np.testing.assert_array_equal(bare.infer(lr), expected)
