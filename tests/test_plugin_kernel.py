"""The LDF CUDA kernel without a GPU: its sources compile with nvcc, and its per-output arithmetic, compiled for
the host, matches the PyTorch reference."""
from __future__ import annotations

import ctypes
import importlib.util
import shutil
import subprocess
import sys
import time

import pytest
import torch

from gldfn_model.ops.contract import load_contract
from gldfn_model.ops.ldf_op import local_dynamic_filter_reference
from gldfn_runtime.plugin.build import build_plugin_library
from gldfn_runtime.plugin.library import PLUGIN_SOURCE_DIR

KERNEL_SOURCE = PLUGIN_SOURCE_DIR / "local_dynamic_filter" / "ldf_kernel.cu"


def _harness_module():
    spec = importlib.util.spec_from_file_location("plugin_harness", PLUGIN_SOURCE_DIR / "tests" / "plugin_harness.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("plugin_harness", module)
    spec.loader.exec_module(module)
    return module


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not on PATH (needed to compile the plugin's CUDA kernel)")
    return path


def test_kernel_sources_compile_with_nvcc_for_one_sm(tmp_path):
    nvcc = _require("nvcc")
    command = [nvcc, "-std=c++17", "-O3", "-arch=sm_80", "-Werror", "all-warnings", "-c", str(KERNEL_SOURCE),
               "-o", str(tmp_path / "ldf_kernel.o")]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    symbols = subprocess.run(["nm", "-C", str(tmp_path / "ldf_kernel.o")], capture_output=True, text=True).stdout
    assert "gldfn::launchLocalDynamicFilter" in symbols


@pytest.mark.slow
def test_kernel_library_builds_for_every_target_architecture(tmp_path):
    _require("nvcc")
    _require("cmake")
    start = time.perf_counter()
    archive = build_plugin_library(tmp_path / "build", kernel_only=True)
    print(f"kernel-only CMake build for all architectures: {time.perf_counter() - start:.1f} s")
    flags = (archive.parent / "CMakeFiles" / "gldfn_ldf_kernel.dir" / "flags.make").read_text()
    for sm in ("75", "80", "86", "89", "90", "100", "120"):
        assert f"arch=compute_{sm},code=[sm_{sm}]" in flags, f"no SASS for sm_{sm} in {flags}"
    assert "arch=compute_120,code=[compute_120]" in flags, "no PTX"


@pytest.fixture(scope="module")
def host_filter(tmp_path_factory):
    _require("g++")
    library = _harness_module().compile_host_arithmetic(tmp_path_factory.mktemp("host_arithmetic"))
    fn = ctypes.CDLL(str(library)).ldf_host_filter
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64] * 4 + [ctypes.c_int, ctypes.c_int]

    def run(x: torch.Tensor, spatial: torch.Tensor, channel: torch.Tensor, kernel_size: int, dilation: int) -> torch.Tensor:
        x, spatial, channel = (t.contiguous() for t in (x, spatial, channel))
        out = torch.empty_like(x)
        status = fn(x.data_ptr(), spatial.data_ptr(), channel.data_ptr(), out.data_ptr(), *x.shape, kernel_size, dilation)
        assert status == 0
        return out

    return run


@pytest.mark.parametrize("kernel_size", [3, 5])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("shape", [(1, 3, 7, 9), (2, 5, 11, 6), (1, 1, 2, 3)])
def test_host_arithmetic_matches_pytorch_reference(host_filter, kernel_size, dilation, shape):
    n, c, h, w = shape
    taps = kernel_size * kernel_size
    gen = torch.Generator().manual_seed(kernel_size * 100 + dilation * 10 + h)
    x = torch.randn(n, c, h, w, generator=gen)
    spatial = torch.randn(n, taps, h, w, generator=gen)
    channel = torch.randn(n, c, taps, generator=gen)
    expected = local_dynamic_filter_reference(x, spatial, channel, kernel_size, dilation)
    actual = host_filter(x, spatial, channel, kernel_size, dilation)
    tolerance = load_contract().tolerance("float32") * float(expected.max() - expected.min())
    assert (actual - expected).abs().max().item() <= tolerance


def test_host_arithmetic_uses_row_major_taps_and_zero_padding(host_filter):
    # One-hot filters isolate single taps: tap t = (i, j) must read the input shifted by ((i-1)*d, (j-1)*d),
    # zero outside, independently of the reference implementation.
    x = torch.arange(1, 1 + 5 * 6, dtype=torch.float32).reshape(1, 1, 5, 6)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for tap in range(9):
        spatial = torch.zeros(1, 9, 5, 6)
        spatial[:, tap] = 1.0
        dy, dx = (tap // 3 - 1) * 2, (tap % 3 - 1) * 2
        shifted = padded[:, :, 2 + dy : 2 + dy + 5, 2 + dx : 2 + dx + 6]
        assert torch.equal(host_filter(x, spatial, torch.ones(1, 1, 9), 3, 2), shifted)


@pytest.fixture(scope="module")
def emulated_kernel(tmp_path_factory):
    """The plugin's kernels and launch planning (ldf_kernel_impl.cuh) on CPU threads, through ctypes."""
    _require("g++")
    try:
        cuda_include = _harness_module().cuda_include_dir()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    assert cuda_include.is_dir()
    lib = ctypes.CDLL(str(_harness_module().compile_kernel_emulation(tmp_path_factory.mktemp("emulation"))))
    lib.ldf_emulate.restype = ctypes.c_int
    lib.ldf_emulate.argtypes = [ctypes.c_int] + [ctypes.c_int64] * 4 + [ctypes.c_int] * 2 + [ctypes.c_void_p] * 4

    def run(x, spatial, channel, kernel_size, dilation, out=None):
        out = torch.full_like(x, float("nan")) if out is None else out  # NaN: unwritten outputs fail the check
        dtype = 0 if x.dtype == torch.float32 else 1
        status = lib.ldf_emulate(dtype, *x.shape, kernel_size, dilation, x.data_ptr(), spatial.data_ptr(),
                                 channel.data_ptr(), out.data_ptr())
        assert status == 0, f"cudaError {status}"
        return out, {1: "tiled", 2: "direct"}[lib.ldf_emulate_last_path()]

    return run


def _random_inputs(shape, kernel_size, dtype, seed, misalign=False):
    n, c, h, w = shape
    taps = kernel_size * kernel_size
    gen = torch.Generator().manual_seed(seed)

    def rand(*size):
        numel = 1
        for s in size:
            numel *= s
        flat = torch.randn(numel + 1, generator=gen).to(dtype)
        # Misaligned by one element: the kernel must fall back from its 16-byte vector loads.
        return flat[1:].view(*size) if misalign else flat[:-1].view(*size)

    return rand(n, c, h, w), rand(n, taps, h, w), rand(n, c, taps)


EMULATION_WINDOWS = [(1, 1), (3, 1), (3, 2), (5, 1), (5, 2), (7, 1), (7, 3), (3, 9), (7, 16)]


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (2, 5, 17, 23), (1, 7, 9, 130), (1, 19, 10, 67)])
def test_emulated_cuda_kernels_match_the_pytorch_reference(emulated_kernel, dtype, shape):
    torch_dtype = getattr(torch, dtype)
    tolerance = load_contract().tolerance(dtype)
    paths = set()
    for index, (kernel_size, dilation) in enumerate(EMULATION_WINDOWS):
        for misalign in (False, True):
            x, spatial, channel = _random_inputs(shape, kernel_size, torch_dtype, seed=index, misalign=misalign)
            out, path = emulated_kernel(x, spatial, channel, kernel_size, dilation)
            paths.add(path)
            expected = local_dynamic_filter_reference(x.float(), spatial.float(), channel.float(), kernel_size, dilation)
            data_range = float(expected.max() - expected.min()) or 1.0
            error = float((out.float() - expected).abs().max()) / data_range  # NaN (unwritten) fails too
            assert error <= tolerance, f"k={kernel_size} d={dilation} misaligned={misalign} via {path}: {error:.2e}"
    assert paths == {"tiled", "direct"}


def test_emulated_fp32_kernels_agree_bit_for_bit_with_the_host_arithmetic(emulated_kernel, host_filter):
    # Both run ldfTapTerm tap by tap in the same order, so FP32 results are identical.
    for kernel_size, dilation in [(3, 1), (5, 2), (3, 9), (7, 16)]:
        x, spatial, channel = _random_inputs((2, 18, 11, 70), kernel_size, torch.float32, seed=kernel_size)
        out, _ = emulated_kernel(x, spatial, channel, kernel_size, dilation)
        assert torch.equal(out, host_filter(x, spatial, channel, kernel_size, dilation))
