"""The CUDA forward of gldfn::local_dynamic_filter (gldfn_model/cuda_ops.py): nothing of it on the CPU path, the
fallback to the reference with a reason, the binding and kernel compiling with torch's headers and flags, and, on
a GPU, the extension against the reference."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from gldfn_model.ops import cuda_ops
from gldfn_model.ops.contract import load_contract
from gldfn_model.ops.ldf_op import OP_NAME, local_dynamic_filter_reference

needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour of torch without CUDA")
TORCH_EXTENSION_STD = "-std=c++20"  # what torch.utils.cpp_extension (torch >= 2.10) compiles extensions with
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU / torch without CUDA")


def random_inputs(shape, kernel_size, dtype=torch.float32, device="cpu", seed=0):
    n, c, h, w = shape
    taps = kernel_size * kernel_size
    g = torch.Generator().manual_seed(seed)
    tensors = [torch.randn(size, generator=g) for size in ((n, c, h, w), (n, taps, h, w), (n, c, taps))]
    return [t.to(device=device, dtype=dtype) for t in tensors]


@pytest.fixture
def fresh_warnings(monkeypatch):
    """Each test sees the one-time warnings anew."""
    monkeypatch.setattr(cuda_ops, "_warned", set())


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not on PATH (needed to compile the PyTorch CUDA extension)")
    return path


def test_op_has_a_cuda_kernel_registered():
    assert torch._C._dispatch_has_kernel_for_dispatch_key(OP_NAME, "CUDA")


def test_cpu_path_imports_and_compiles_nothing_extra(tmp_path):
    script = (
        "import sys, torch\n"
        "from gldfn_model.ops.ldf_op import local_dynamic_filter\n"
        "x = torch.randn(1, 2, 5, 6, requires_grad=True)\n"
        "sp, ch = torch.randn(1, 9, 5, 6), torch.randn(1, 2, 9)\n"
        "local_dynamic_filter(x, sp, ch, 3, 1).sum().backward()\n"
        "print('gldfn_model.ops.cuda_ops' in sys.modules, 'torch.utils.cpp_extension' in sys.modules)\n"
    )
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path / "extensions")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
    assert not (tmp_path / "extensions").exists()


@needs_no_cuda
def test_without_cuda_the_extension_says_why_and_builds_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    cuda_ops.load_extension.cache_clear()
    status = cuda_ops.load_extension()
    assert not status.available
    assert "no CUDA" in status.reason
    assert list(tmp_path.iterdir()) == []


@needs_no_cuda
def test_fallback_runs_the_reference_and_warns_once(fresh_warnings):
    x, spatial, channel = random_inputs((2, 3, 7, 9), 3)
    with pytest.warns(RuntimeWarning, match="runs the PyTorch reference on CUDA: torch has no CUDA"):
        out = cuda_ops.local_dynamic_filter_cuda(x, spatial, channel, 3, 2)
    torch.testing.assert_close(out, local_dynamic_filter_reference(x, spatial, channel, 3, 2), rtol=0, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cuda_ops.local_dynamic_filter_cuda(x, spatial, channel, 3, 2)


@pytest.mark.parametrize(
    "dtypes,kernel_size,expected",
    [
        ((torch.float64,) * 3, 3, "dtype torch.float64 has no CUDA kernel"),
        ((torch.bfloat16,) * 3, 3, "dtype torch.bfloat16 has no CUDA kernel"),
        ((torch.float16, torch.float32, torch.float16), 3, "different dtypes"),
    ],
)
def test_inputs_without_a_kernel_fall_back_with_their_reason(fresh_warnings, dtypes, kernel_size, expected):
    inputs = [t.to(dtype) for t, dtype in zip(random_inputs((1, 2, 5, 4), kernel_size), dtypes)]
    assert expected in cuda_ops.unsupported_reason(*inputs, kernel_size, 1)
    with pytest.warns(RuntimeWarning, match=expected):
        cuda_ops.local_dynamic_filter_cuda(*inputs, kernel_size, 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("kernel_size", load_contract().attribute("kernel_size")["allowed"])
def test_contract_dtypes_and_kernel_sizes_have_a_kernel(dtype, kernel_size):
    inputs = random_inputs((1, 2, 5, 4), kernel_size, dtype)
    assert cuda_ops.unsupported_reason(*inputs, kernel_size, 16) is None


@pytest.mark.parametrize("kernel_size,dilation,match", [(9, 1, "kernel_size=9 is not supported"),
                                                        (3, 17, "dilation=17 is outside"),
                                                        (3, 2**31 - 1, "dilation=2147483647 is outside")])
def test_attributes_outside_the_contract_never_reach_the_kernel(fresh_warnings, kernel_size, dilation, match):
    """A huge dilation overflowed the kernel's radius arithmetic; the CUDA path now takes the plugin's ranges."""
    from gldfn_model.ops.contract import OpAttributeError

    inputs = random_inputs((1, 2, 5, 4), kernel_size)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused, not run by the reference with a warning
        with pytest.raises(OpAttributeError, match=match):
            cuda_ops.local_dynamic_filter_cuda(*inputs, kernel_size, dilation)


def test_binding_is_built_with_the_contract_dilation_range():
    dilation = load_contract().attribute("dilation")
    assert cuda_ops.contract_defines() == [f"-DGLDFN_LDF_MIN_DILATION={dilation['min']}",
                                           f"-DGLDFN_LDF_MAX_DILATION={dilation['max']}"]
    assert "GLDFN_LDF_MAX_DILATION" in cuda_ops.BINDING_SOURCE.read_text()


def test_invalid_inputs_raise_the_reference_error():
    x, spatial, channel = random_inputs((1, 2, 5, 4), 3)
    with pytest.raises(ValueError, match="spatial filter must be"):
        cuda_ops.local_dynamic_filter_cuda(x, spatial[:, :4], channel, 3, 1)


def test_missing_sources_are_reported(tmp_path):
    status = cuda_ops.build_extension("gldfn_missing_test", [tmp_path / "absent.cpp"])
    assert not status.available
    assert "sources not found" in status.reason and "absent.cpp" in status.reason


def test_build_error_is_reported_not_raised(tmp_path, monkeypatch):
    _require("ninja")
    _require("c++")
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "extensions"))
    source = tmp_path / "broken_binding.cpp"
    source.write_text("int broken() { return undeclared_identifier_in_binding; }\n")
    status = cuda_ops.build_extension("gldfn_broken_test", [source])
    assert not status.available
    assert "building the CUDA extension 'gldfn_broken_test' failed" in status.reason
    assert "undeclared_identifier_in_binding" in status.reason


def _cuda_include_dir() -> Path:
    nvcc = Path(_require("nvcc")).resolve()
    candidates = [Path(os.environ.get("CUDA_HOME", "/nonexistent")) / "include", Path("/usr/local/cuda/include"),
                  nvcc.parent.parent / "include"]
    for folder in candidates:
        if (folder / "cuda_runtime_api.h").is_file():
            return folder
    pytest.skip(f"cuda_runtime_api.h not found in {[str(c) for c in candidates]} (the CUDA toolkit headers)")


def test_binding_compiles_for_the_host_against_torch_headers(tmp_path):
    from torch.utils.cpp_extension import include_paths

    compiler = _require("c++")
    cuda_include = _cuda_include_dir()
    torch_includes = [Path(p) for p in include_paths()]
    # CPU wheels ship c10/cuda but not this header, which a CUDA build of torch generates; its CUDA-build content.
    stub = tmp_path / "stub"
    if not any((p / "c10/cuda/impl/cuda_cmake_macros.h").is_file() for p in torch_includes):
        (stub / "c10/cuda/impl").mkdir(parents=True)
        (stub / "c10/cuda/impl/cuda_cmake_macros.h").write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
    command = [compiler, TORCH_EXTENSION_STD, "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
               f"-I{cuda_ops.KERNEL_DIR}", *cuda_ops.contract_defines()]
    for folder in [*torch_includes, stub, cuda_include]:
        command += ["-isystem", str(folder)]
    result = subprocess.run([*command, str(cuda_ops.BINDING_SOURCE)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_kernel_compiles_with_torch_extension_nvcc_flags(tmp_path):
    from torch.utils.cpp_extension import COMMON_NVCC_FLAGS

    nvcc = _require("nvcc")
    # torch's flags disable __half's implicit conversions and operators, which the plugin build keeps.
    command = [nvcc, TORCH_EXTENSION_STD, "-O3", "-arch=sm_80", "-Werror", "all-warnings", *COMMON_NVCC_FLAGS,
               "-Xcompiler", "-fPIC", "-c", str(cuda_ops.KERNEL_SOURCE), "-o", str(tmp_path / "ldf_kernel.o")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("kernel_size,dilation", [(3, 1), (3, 2), (5, 1), (5, 2)])
@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (2, 5, 17, 23), (1, 19, 33, 70)])
def test_cuda_op_matches_the_reference(fresh_warnings, dtype, kernel_size, dilation, shape):
    status = cuda_ops.load_extension()
    assert status.available, status.reason
    inputs = random_inputs(shape, kernel_size, dtype, device="cuda", seed=kernel_size * 10 + dilation)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = torch.ops.gldfn.local_dynamic_filter(*inputs, kernel_size, dilation)
    ref = local_dynamic_filter_reference(*(t.float() for t in inputs), kernel_size, dilation)
    data_range = float(ref.max() - ref.min()) or 1.0
    tolerance = load_contract().tolerance("float16" if dtype == torch.float16 else "float32")
    assert out.dtype == dtype and out.is_contiguous()
    assert float((out.float() - ref).abs().max()) / data_range <= tolerance


@needs_cuda
def test_cuda_op_takes_strided_inputs_runs_on_the_current_stream_and_backpropagates():
    x, spatial, channel = random_inputs((2, 4, 12, 15), 3, device="cuda")
    x_strided = x.transpose(2, 3).contiguous().transpose(2, 3).requires_grad_()
    spatial.requires_grad_()
    channel.requires_grad_()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        out = torch.ops.gldfn.local_dynamic_filter(x_strided, spatial, channel, 3, 2)
        out.square().sum().backward()
    stream.synchronize()
    ref_inputs = [t.detach().clone().requires_grad_() for t in (x, spatial, channel)]
    ref = local_dynamic_filter_reference(*ref_inputs, 3, 2)
    ref.square().sum().backward()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for got, expected in zip((x_strided, spatial, channel), ref_inputs):
        torch.testing.assert_close(got.grad, expected.grad, rtol=1e-4, atol=1e-4)


def test_a_stale_torch_build_lock_does_not_hang_the_build(tmp_path):
    """A build killed inside torch's JIT leaves its ``lock`` file; the next build must remove it, not wait forever."""
    _require("ninja")
    _require("c++")
    extensions = tmp_path / "extensions"
    (extensions / "gldfn_stale_lock_test").mkdir(parents=True)
    (extensions / "gldfn_stale_lock_test" / "lock").write_text("")
    source = tmp_path / "broken_binding.cpp"
    source.write_text("int broken() { return undeclared_identifier_after_stale_lock; }\n")
    script = ("import sys; from pathlib import Path; from gldfn_model.ops import cuda_ops; "
              "print(cuda_ops.build_extension('gldfn_stale_lock_test', [Path(sys.argv[1])]).reason)")
    result = subprocess.run([sys.executable, "-c", script, str(source)], capture_output=True, text=True, timeout=240,
                            env=os.environ | {"TORCH_EXTENSIONS_DIR": str(extensions)})
    assert "undeclared_identifier_after_stale_lock" in result.stdout, result.stderr[-2000:]
    assert not (extensions / "gldfn_stale_lock_test" / "lock").exists()
