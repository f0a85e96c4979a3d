"""libgldfn_ort_ops.so, the ONNX Runtime custom-op library of the local dynamic filter: it builds from plugins/ort
(`gldfn-trt plugin build-ort`), links no ONNX Runtime, takes precedence over the model-local function body, matches
the PyTorch reference within the op contract's tolerance on every CPU instruction set (bit for bit with the CUDA
kernels' host arithmetic in FP32), and the runner registers it when present and runs the function bodies without
it, with the same results."""
from __future__ import annotations

import collections
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from gldfn_export.exporter import export_gldfn
from gldfn_export.ldf_function import ldf_node_model
from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner, session_options
from gldfn_model.inference.runner import RunnerError
from gldfn_model.network.config import get_config
from gldfn_model.network.gldfn import GLDFN
from gldfn_model.ops.contract import load_contract
from gldfn_model.ops.ldf_op import local_dynamic_filter_reference
from gldfn_runtime import ort_custom_ops_library
from gldfn_runtime.cli.main import app
from gldfn_runtime.plugin.build import find_nvcc
from gldfn_runtime.plugin.library import PLUGIN_SOURCE_DIR, PluginLibraryError
from gldfn_runtime.plugin.ort_build import build_ort_ops_library, missing_ort_build_tools
from gldfn_runtime.plugin.ort_library import ORT_LIBRARY_ENV, describe_ort_library

CONTRACT = load_contract()
ISAS = ("scalar", "avx2", "avx512")
ISA_ENV = "GLDFN_ORT_LDF_ISA"


def _require_build_tools() -> None:
    missing = missing_ort_build_tools()
    if missing:
        pytest.skip("cannot build the ONNX Runtime custom-op library: " + "; ".join(missing))


@pytest.fixture(scope="session")
def ort_library(tmp_path_factory) -> Path:
    """The CPU library, built through `gldfn-trt plugin build-ort` into a session folder."""
    _require_build_tools()
    build_dir = tmp_path_factory.getbasetemp() / "gldfn_ort_build"
    result = CliRunner().invoke(app, ["plugin", "build-ort", "--build-dir", str(build_dir), "--no-cuda"])
    assert result.exit_code == 0, result.output
    library = Path(result.output.strip().splitlines()[-1])
    assert library == (build_dir / "libgldfn_ort_ops.so").resolve() and library.is_file()
    return library


@pytest.fixture(scope="module")
def host_filter(tmp_path_factory):
    """The CUDA kernels' per-output arithmetic (ldf_arithmetic.h) compiled for the host, through ctypes."""
    spec = importlib.util.spec_from_file_location("plugin_harness", PLUGIN_SOURCE_DIR / "tests" / "plugin_harness.py")
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    import ctypes

    fn = ctypes.CDLL(str(harness.compile_host_arithmetic(tmp_path_factory.mktemp("host")))).ldf_host_filter
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64] * 4 + [ctypes.c_int, ctypes.c_int]

    def run(x: np.ndarray, spatial: np.ndarray, channel: np.ndarray, kernel_size: int, dilation: int) -> np.ndarray:
        out = np.empty_like(x)
        assert fn(x.ctypes.data, spatial.ctypes.data, channel.ctypes.data, out.ctypes.data, *x.shape, kernel_size,
                  dilation) == 0
        return out

    return run


def supported_isas(library: Path) -> list[str]:
    """The instruction sets up to the best this CPU has (the library says which)."""
    return list(ISAS[: ISAS.index(describe_ort_library(library)["cpu-isa"]) + 1])


def op_session(library: Path | None, model: onnx.ModelProto, threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    if library is not None:
        options.register_custom_ops_library(str(library))
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def random_inputs(shape: tuple[int, int, int, int], kernel_size: int, dtype, seed: int) -> dict[str, np.ndarray]:
    n, c, h, w = shape
    taps = kernel_size * kernel_size
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(size).astype(dtype)
            for name, size in (("x", (n, c, h, w)), ("s", (n, taps, h, w)), ("c", (n, c, taps)))}


def reference(feeds: dict[str, np.ndarray], kernel_size: int, dilation: int) -> np.ndarray:
    tensors = (torch.from_numpy(feeds[name].astype(np.float32)) for name in ("x", "s", "c"))
    return local_dynamic_filter_reference(*tensors, kernel_size, dilation).numpy()


def test_library_exports_only_its_entry_points_and_links_no_onnxruntime(ort_library):
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(ort_library)], capture_output=True, text=True,
                             check=True).stdout
    assert {line.split()[-1] for line in symbols.splitlines() if line.strip()} == {"RegisterCustomOps",
                                                                                   "gldfn_ort_ops_info"}
    dynamic = subprocess.run(["readelf", "-d", str(ort_library)], capture_output=True, text=True, check=True).stdout
    needed = [line for line in dynamic.splitlines() if "(NEEDED)" in line]
    assert needed and not any("onnxruntime" in line for line in needed), needed


def test_library_describes_what_it_registers(ort_library):
    info = describe_ort_library(ort_library)
    assert info["op"] == f"{CONTRACT.domain}::{CONTRACT.name}"
    assert (info["version"], info["contract"]) == (str(CONTRACT.version), str(CONTRACT.contract_version))
    assert info["providers"] == "CPUExecutionProvider"
    assert info["cpu-isa"] in ISAS and int(info["ort-api"]) <= int(ort.__version__.split(".")[1])
    result = CliRunner().invoke(app, ["plugin", "info-ort", str(ort_library)])
    assert result.exit_code == 0 and "CPUExecutionProvider" in result.output and info["cpu-isa"] in result.output


def _node_kernels(session: ort.InferenceSession) -> collections.Counter:
    """The op types of the kernels a profiled run executed."""
    profile = Path(session.end_profiling())
    events = json.loads(profile.read_text())
    profile.unlink()
    return collections.Counter(e["args"]["op_name"] for e in events
                               if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"))


def test_registered_op_takes_precedence_over_the_model_local_function(ort_library, tmp_path):
    model = ldf_node_model(CONTRACT, 3, 1, channels=4)
    feeds = random_inputs((1, 4, 9, 11), 3, np.float32, seed=0)
    kernels = {}
    for label, library in (("body", None), ("custom op", ort_library)):
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = str(tmp_path / label.replace(" ", "_"))
        if library is not None:
            options.register_custom_ops_library(str(library))
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        session.run(None, feeds)
        kernels[label] = _node_kernels(session)
    assert kernels["custom op"] == {CONTRACT.name: 1}
    assert CONTRACT.name not in kernels["body"] and kernels["body"]["Slice"] == 9 and kernels["body"]["Mul"] == 18


# Every kernel size the contract allows, dilations from 1 to its maximum, channel counts on and off the kernel's
# 4-channel blocks, widths on and off the vector lengths, images smaller than the window's reach.
CASES = [(k, d) for k in CONTRACT.attribute("kernel_size")["allowed"] for d in (1, 2)]
CASES += [(3, 5), (5, 3), (3, CONTRACT.attribute("dilation")["max"]), (7, 4)]
SHAPES = [(2, 5, 13, 37), (1, 4, 7, 16), (1, 9, 19, 33), (1, 1, 2, 3), (1, 3, 1, 70)]


@pytest.mark.parametrize(("kernel_size", "dilation"), CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_custom_op_matches_the_reference_on_every_instruction_set(ort_library, monkeypatch, kernel_size, dilation,
                                                                  dtype):
    elem_type = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    model = ldf_node_model(CONTRACT, kernel_size, dilation, elem_type)
    tolerance = CONTRACT.tolerance(np.dtype(dtype).name)
    for isa in supported_isas(ort_library):
        monkeypatch.setenv(ISA_ENV, isa)  # read when ONNX Runtime creates the kernel
        session = op_session(ort_library, model)
        for seed, shape in enumerate(SHAPES):
            feeds = random_inputs(shape, kernel_size, dtype, seed)
            (actual,) = session.run(None, feeds)
            expected = reference(feeds, kernel_size, dilation)
            assert actual.dtype == dtype and actual.shape == expected.shape
            error = float(np.abs(actual.astype(np.float32) - expected).max()) / float(np.ptp(expected) or 1.0)
            assert error <= tolerance, f"{isa} k={kernel_size} d={dilation} {shape}: {error:.2e}"


def test_fp32_custom_op_equals_the_cuda_kernels_host_arithmetic_bit_for_bit(ort_library, host_filter, monkeypatch):
    # The CUDA kernels, their CPU emulation and the host build of ldf_arithmetic.h add one FMA per tap in the same
    # order from 0; the custom op's vector paths do the same, so FP32 outputs are identical.
    for kernel_size, dilation in [(3, 1), (5, 2), (3, 9), (7, 16)]:
        model = ldf_node_model(CONTRACT, kernel_size, dilation)
        feeds = random_inputs((2, 18, 11, 70), kernel_size, np.float32, seed=kernel_size)
        expected = host_filter(feeds["x"], feeds["s"], feeds["c"], kernel_size, dilation)
        for isa in supported_isas(ort_library):
            monkeypatch.setenv(ISA_ENV, isa)
            (actual,) = op_session(ort_library, model).run(None, feeds)
            assert np.array_equal(actual, expected), f"{isa} k={kernel_size} d={dilation}"


def test_rows_split_over_threads_give_the_same_output(ort_library):
    model = ldf_node_model(CONTRACT, 3, 1)
    feeds = random_inputs((2, 8, 31, 45), 3, np.float32, seed=3)
    one, two = (op_session(ort_library, model, threads).run(None, feeds)[0] for threads in (1, 2))
    assert np.array_equal(one, two)


def test_attributes_outside_the_contract_are_refused_when_the_session_is_created(ort_library):
    model = ldf_node_model(CONTRACT, 3, 1)
    (attribute,) = [a for a in model.graph.node[0].attribute if a.name == "kernel_size"]
    attribute.i = 4
    with pytest.raises(Exception, match=r"kernel_size=4 is not one of \{1, 3, 5, 7\}"):
        op_session(ort_library, model)


def test_inputs_of_mismatched_shapes_are_refused(ort_library):
    session = op_session(ort_library, ldf_node_model(CONTRACT, 3, 1))
    feeds = random_inputs((1, 4, 6, 7), 3, np.float32, seed=0)
    feeds["s"] = feeds["s"][:, :, :5]  # H is symbolic in the model: only the kernel can tell
    with pytest.raises(Exception, match=r"spatial must be \[1, 9, 6, 7\] for x \[1, 4, 6, 7\], got \[1, 9, 5, 7\]"):
        session.run(None, feeds)


def test_an_unknown_instruction_set_is_refused(ort_library, monkeypatch):
    monkeypatch.setenv(ISA_ENV, "sse2")
    with pytest.raises(Exception, match=f"{ISA_ENV}='sse2' is not one of scalar, avx2, avx512"):
        op_session(ort_library, ldf_node_model(CONTRACT, 3, 1))


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = GLDFN(get_config("tiny", 4)).eval()
    path = tmp_path_factory.mktemp("export") / "tiny.onnx"
    export_gldfn(model, path, config_name="tiny", verify=False)
    return path


def test_runner_registers_the_library_and_matches_the_function_bodies(ort_library, tiny_onnx, monkeypatch):
    monkeypatch.setenv(ORT_LIBRARY_ENV, str(ort_library))
    assert ort_custom_ops_library() == ort_library
    lr = np.random.default_rng(0).random((1, 3, 23, 37), dtype=np.float32)
    with_ops = OnnxRuntimeRunner(tiny_onnx, threads=1)
    bodies = OnnxRuntimeRunner(tiny_onnx, threads=1, custom_ops=False)
    assert with_ops.custom_ops_libraries == [ort_library] and bodies.custom_ops_libraries == []
    actual, expected = with_ops.infer(lr), bodies.infer(lr)
    assert np.abs(actual - expected).max() <= CONTRACT.tolerance("float32") * float(np.ptp(expected))


def test_without_the_library_the_function_bodies_run(tiny_onnx, monkeypatch):
    monkeypatch.setenv(ORT_LIBRARY_ENV, "none")
    assert ort_custom_ops_library() is None
    runner = OnnxRuntimeRunner(tiny_onnx, threads=1)
    assert runner.custom_ops_libraries == []
    assert runner.infer(np.zeros((1, 3, 8, 9), np.float32)).shape == (1, 3, 32, 36)
    with pytest.raises(RunnerError, match="gldfn-trt plugin build-ort"):
        session_options(custom_ops=True)


def test_a_missing_library_path_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(ORT_LIBRARY_ENV, str(tmp_path / "absent.so"))
    with pytest.raises(PluginLibraryError, match="is not a file"):
        ort_custom_ops_library()


def test_a_cpu_only_library_is_not_offered_to_a_cuda_session(ort_library, monkeypatch):
    monkeypatch.setenv(ORT_LIBRARY_ENV, str(ort_library))
    assert ort_custom_ops_library(["CPUExecutionProvider"]) == ort_library
    assert ort_custom_ops_library(["CUDAExecutionProvider", "CPUExecutionProvider"]) is None


@pytest.mark.slow
def test_library_with_the_cuda_kernel_builds_and_registers_both_providers(tmp_path):
    _require_build_tools()
    if find_nvcc() is None:
        pytest.skip("nvcc (the CUDA toolkit) is not installed")
    library = build_ort_ops_library(tmp_path / "build", cuda=True, cuda_architectures="80-real")
    assert describe_ort_library(library)["providers"] == "CPUExecutionProvider,CUDAExecutionProvider"
    # ONNX Runtime's CPU build registers both; the CPU kernel runs.
    model = ldf_node_model(CONTRACT, 3, 1)
    feeds = random_inputs((1, 4, 6, 7), 3, np.float32, seed=0)
    (actual,) = op_session(library, model).run(None, feeds)
    expected = reference(feeds, 3, 1)
    assert np.abs(actual - expected).max() <= CONTRACT.tolerance("float32") * float(np.ptp(expected))
    code = f"import ctypes; ctypes.CDLL({str(library)!r})"  # loads without a GPU or driver
    subprocess.run([sys.executable, "-c", code], check=True)
