"""Which GPUs the plugin library's CUDA code runs on, read from the library itself (its fatbinary, checked against
cuobjdump), and what the engine build does with that: it refuses a library whose code does not run on every
target, builds a missing library for the engine's targets on first need (atomically), and says what is missing
when it cannot."""
from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import build_marker_library
from typer.testing import CliRunner

from gldfn_model.common.hashing import file_sha256
from gldfn_runtime.cli.main import app
from gldfn_runtime.engine.build import BuildOptions, EngineBuildError, build_plan
from gldfn_runtime.plugin import library as plugin_library_module
from gldfn_runtime.plugin.build import cuda_architectures_for, find_nvcc, find_tensorrt_headers, header_version
from gldfn_runtime.plugin.cuda_binary import CudaArch, read_cuda_archs, uncovered_targets
from gldfn_runtime.plugin.library import LIBRARY_ENV, LIBRARY_FILENAME, PluginLibraryError, find_plugin_library
from gldfn_runtime.plugin.resolve import resolve_plugin_library
from gldfn_runtime.tensorrt.backend import RTX_DEFAULT_COMPUTE_CAPABILITIES
from gldfn_runtime.tensorrt.compat import TensorRTUnavailable, load_tensorrt

PROFILE = {"min_size": (8, 8), "opt_size": (16, 16), "max_size": (32, 32)}
KERNEL = "__global__ void twice(float* x) { x[threadIdx.x] *= 2.0f; }\n"
# Plain, arch-specific (a) and family (f) SASS and PTX, as nvcc names them.
GENCODES = {"sm_80": "compute_80,code=sm_80", "compute_80": "compute_80,code=compute_80",
            "sm_90a": "compute_90a,code=sm_90a", "sm_100f": "compute_100f,code=sm_100f",
            "compute_120f": "compute_120f,code=compute_120f", "sm_121": "compute_121,code=sm_121"}


def _names(*names: str) -> list[CudaArch]:
    return [CudaArch.parse(name) for name in names]


def _rtx():
    try:
        return load_tensorrt("tensorrt_rtx")
    except TensorRTUnavailable as error:
        pytest.skip(f"TensorRT-RTX is not installed (pip install 'gldfn-trt[rtx]'): {error}")


def _require_toolchain() -> None:
    for tool, found in (("cmake", shutil.which("cmake")), ("nvcc", find_nvcc())):
        if found is None:
            pytest.skip(f"{tool} is not installed (needed to build the plugin library)")
    if find_tensorrt_headers(11) is None:
        pytest.skip("TensorRT 11 headers (NvInferRuntime.h) are not installed: run ../shared/tools/install-trt-headers "
                    "<git dir of NVIDIA/TensorRT> or set TENSORRT_ROOT")


def _cuobjdump() -> Path:
    """cuobjdump on PATH, beside nvcc, or from NVIDIA's wheel (nvidia-cuda-cuobjdump); else skip."""
    candidates = [shutil.which("cuobjdump")]
    nvcc = find_nvcc()
    candidates += [nvcc.resolve().parent / "cuobjdump"] if nvcc else []
    spec = importlib.util.find_spec("nvidia")
    for root in spec.submodule_search_locations if spec else ():
        candidates += sorted(Path(root).glob("cu*/bin/cuobjdump"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    pytest.skip("cuobjdump is not installed (CUDA toolkit, or pip install nvidia-cuda-cuobjdump)")


def _cuobjdump_archs(library: Path) -> set[str]:
    """The architectures `cuobjdump --list-elf --list-ptx` lists, spelled as the reader spells them (it names
    a PTX entry sm_XY.ptx: compute_XY)."""
    listing = subprocess.run([str(_cuobjdump()), "--list-elf", "--list-ptx", str(library)], capture_output=True,
                             text=True, check=True).stdout
    found = {f"sm_{arch}" for arch in re.findall(r"^ELF file\s+\d+: .*\.sm_(\w+)\.cubin$", listing, re.M)}
    found |= {f"compute_{arch}" for arch in re.findall(r"^PTX file\s+\d+: .*\.sm_(\w+)\.ptx$", listing, re.M)}
    assert found, listing
    return found


# --- the coverage rule, on architecture names -----------------------------------------------------------------

@pytest.mark.parametrize(("archs", "uncovered"), [
    (["sm_80"], ["SM75", "SM90", "SM120", "SM121"]),  # same major, minor at or above the cubin's
    (["sm_86"], ["SM75", "SM80", "SM90", "SM120", "SM121"]),
    (["sm_90a"], ["SM75", "SM80", "SM86", "SM89", "SM120", "SM121"]),  # arch-specific: that SM only
    (["sm_120a"], ["SM75", "SM80", "SM86", "SM89", "SM90", "SM121"]),
    (["sm_120f"], ["SM75", "SM80", "SM86", "SM89", "SM90"]),  # family: the major's later minors too
    (["compute_80"], ["SM75"]),  # PTX: JIT on its version and later
    (["compute_90a"], ["SM75", "SM80", "SM86", "SM89", "SM120", "SM121"]),
    (["compute_120f"], ["SM75", "SM80", "SM86", "SM89", "SM90"]),
    (["sm_75", "sm_86", "compute_120"], ["SM80", "SM90"]),
    ([], ["SM75", "SM80", "SM86", "SM89", "SM90", "SM120", "SM121"]),
])
def test_a_target_is_covered_by_a_cubin_of_its_major_or_older_ptx(archs, uncovered):
    targets = ["SM75", "SM80", "SM86", "SM89", "SM90", "SM120", "SM121"]
    assert uncovered_targets(_names(*archs), targets) == uncovered


def test_architecture_names_round_trip():
    for name in ("sm_75", "sm_90a", "sm_100f", "sm_121", "compute_80", "compute_120f"):
        assert CudaArch.parse(name).name == name
    with pytest.raises(ValueError, match="not a CUDA architecture"):
        CudaArch.parse("sm90")


@pytest.mark.parametrize(("targets", "supported", "expected"), [
    (RTX_DEFAULT_COMPUTE_CAPABILITIES, frozenset({75, 80, 86, 87, 88, 89, 90, 100, 103, 110, 120, 121}),
     "80-real;86-real;89-real;120-real;121-real;80-virtual"),
    (RTX_DEFAULT_COMPUTE_CAPABILITIES, frozenset({75, 80, 86, 87, 89, 90}), "80-real;86-real;89-real;80-virtual"),
    (("SM90",), None, "90-real;90-virtual"),
    (("SM86",), frozenset({75, 80, 90}), "80-virtual"),  # no sm_86 in this nvcc: PTX below it
])
def test_architectures_chosen_for_targets_cover_them(targets, supported, expected):
    value = cuda_architectures_for(targets, supported)
    assert value == expected
    archs = [CudaArch(int(sm) // 10, int(sm) % 10, kind == "virtual") for sm, kind in
             (entry.split("-") for entry in value.split(";"))]
    assert uncovered_targets(archs, targets) == []


def test_targets_the_compiler_cannot_reach_are_named():
    with pytest.raises(PluginLibraryError, match=r"cannot produce code for SM75 \(it knows sm_80, sm_90\)"):
        cuda_architectures_for(("SM75", "SM80"), frozenset({80, 90}))


# --- the reader, on libraries nvcc built ----------------------------------------------------------------------

@pytest.fixture(scope="module", params=["plain", "compressed"])
def cuda_object(request, tmp_path_factory) -> Path:
    """A shared object of one kernel with every entry of GENCODES, its fatbinary compressed or not."""
    nvcc = find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc is not installed (the CUDA toolkit)")
    folder = tmp_path_factory.mktemp(f"cuda_object_{request.param}")
    (folder / "twice.cu").write_text(KERNEL)
    compress = ["-Xfatbin", "-compress-all"] if request.param == "compressed" else ["--compress-mode=none"]
    command = [str(nvcc), "-shared", "-Xcompiler", "-fPIC", "-o", str(folder / "twice.so"), str(folder / "twice.cu"),
               *compress, *(f"-gencode=arch={gencode}" for gencode in GENCODES.values())]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return folder / "twice.so"


def test_reader_finds_every_architecture_nvcc_was_given(cuda_object):
    assert {arch.name for arch in read_cuda_archs(cuda_object)} == set(GENCODES)


def test_reader_agrees_with_cuobjdump(cuda_object):
    # cuobjdump names a family cubin (sm_100f) by its SM alone.
    expected = {name if name.startswith("compute") else name.removesuffix("f") for name in GENCODES}
    assert _cuobjdump_archs(cuda_object) == expected


def test_a_file_without_cuda_code_has_no_architectures(tmp_path):
    assert read_cuda_archs(sys.executable) is None
    (tmp_path / "not.so").write_text("text")
    with pytest.raises(ValueError, match="not a 64-bit little-endian ELF"):
        read_cuda_archs(tmp_path / "not.so")


# --- the plugin library: read, and refused for targets it lacks ------------------------------------------------

def test_the_plugin_library_carries_the_architectures_it_was_built_for(plugin_library):
    """The session's library (--cuda-archs 80: SASS and PTX), read by the reader and by cuobjdump."""
    assert [arch.name for arch in read_cuda_archs(plugin_library)] == ["sm_80", "compute_80"]
    assert _cuobjdump_archs(plugin_library) == {"sm_80", "compute_80"}


def test_engine_build_refuses_a_library_whose_code_misses_a_target(plugin_library, tiny_onnx):
    """SM75 (Turing) is older than anything sm_80 / compute_80 runs on: refused before TensorRT parses anything,
    with the command that builds a library for it, or the targets this library does run on."""
    _rtx()
    with pytest.raises(EngineBuildError) as refused:
        build_plan(tiny_onnx["fp32"], BuildOptions(plugin=plugin_library, backend="tensorrt-rtx",
                                                   compute_capabilities=("SM75", "SM86"), **PROFILE))
    message = str(refused.value)
    for part in (f"plugin library {plugin_library} (the given path) carries CUDA code for sm_80, compute_80",
                 "does not run on SM75 of the engine's targets SM75, SM86",
                 "`gldfn-trt plugin build --cuda-archs '75-real;86-real;75-virtual'`",
                 "--compute-capability SM80,SM86,SM89,SM120,SM121", "--no-plugin"):
        assert part in message


def test_the_rebuild_points_at_the_library_it_writes(plugin_library, tiny_onnx, tmp_path, monkeypatch):
    _rtx()
    monkeypatch.setattr(plugin_library_module, "DEFAULT_BUILD_DIR", tmp_path / "build")
    monkeypatch.setenv(LIBRARY_ENV, str(plugin_library))
    with pytest.raises(EngineBuildError) as refused:
        build_plan(tiny_onnx["fp32"], BuildOptions(backend="tensorrt-rtx", compute_capabilities=("SM75",), **PROFILE))
    assert f"{plugin_library} (${LIBRARY_ENV}) carries" in str(refused.value)
    assert (f"--cuda-archs '75-real;75-virtual'` (it writes {tmp_path / 'build' / LIBRARY_FILENAME}: use that one)"
            in str(refused.value))


def test_a_library_without_cuda_code_is_refused_unloaded(tmp_path, tiny_onnx):
    _rtx()
    marker = tmp_path / "ran"
    crafted = build_marker_library(tmp_path, marker)
    with pytest.raises(EngineBuildError, match=r"carries no CUDA code \(no \.nv_fatbin section.*runs on none of "
                                               r"the engine's targets SM86; rebuild it with `gldfn-trt plugin build"):
        build_plan(tiny_onnx["fp32"], BuildOptions(plugin=crafted, backend="tensorrt-rtx",
                                                   compute_capabilities=("SM86",), **PROFILE))
    assert not marker.exists()  # read, never loaded


def test_plugin_info_prints_path_headers_sha_and_archs(plugin_library):
    result = CliRunner().invoke(app, ["plugin", "info", str(plugin_library)])
    assert result.exit_code == 0, result.output
    version = ".".join(map(str, header_version(find_tensorrt_headers(11))))
    assert result.output.splitlines() == [
        str(plugin_library), f"  TensorRT headers: {version}", f"  SHA-256:          {file_sha256(plugin_library)}",
        "  CUDA code:        sm_80, compute_80"]


# --- the plugin library built on first need -------------------------------------------------------------------

# Where another test loaded the session's library first, TensorRT keeps that copy's creator (and says so).
@pytest.mark.filterwarnings("ignore:.*is already registered by another copy")
def test_missing_library_is_built_for_the_engine_targets_then_used(tiny_onnx, tmp_path, monkeypatch):
    """An engine for SM86 where the default build folder has no library: built there for SM86 (SASS and PTX),
    with progress lines, then the engine. The next engine for a target it lacks is refused, not rebuilt (engines
    built with the library record its SHA-256)."""
    _rtx()
    _require_toolchain()
    monkeypatch.delenv(LIBRARY_ENV, raising=False)
    monkeypatch.setattr(plugin_library_module, "DEFAULT_BUILD_DIR", tmp_path / "build")
    library = tmp_path / "build" / LIBRARY_FILENAME
    lines: list[str] = []
    options = BuildOptions(backend="tensorrt-rtx", compute_capabilities=("SM86",), report=lines.append, **PROFILE)
    built = build_plan(tiny_onnx["fp32"], options)
    assert built.plugin == library.resolve() and len(built.plan) > 0
    assert sum(layer["plugin"] for layer in built.layers) == 4
    assert [arch.name for arch in read_cuda_archs(library)] == ["sm_86", "compute_86"]
    assert lines[0] == (f"plugin library not found at {library}: building it for SM86 (CUDA architectures "
                        "86-real;86-virtual; this takes a few minutes)")
    assert "CUDA code: sm_86, compute_86" in lines and re.fullmatch(rf"built {library} in \d+ s", lines[-1])
    assert any(re.match(r"\[\s*\d+%\] Linking", line) for line in lines)  # the build's progress
    assert not [path for path in library.parent.iterdir() if path.name.endswith(".tmp")]

    before, lines[:] = file_sha256(library), []
    with pytest.raises(EngineBuildError, match=r"does not run on SM80 of the engine's targets SM80, SM86, SM89, "
                                               r"SM120, SM121 .*--compute-capability SM86,SM89,SM120,SM121"):
        build_plan(tiny_onnx["fp32"], replace(options, compute_capabilities=()))
    assert file_sha256(library) == before and lines == []


def test_without_auto_build_a_missing_library_is_an_error(tiny_onnx, tmp_path, monkeypatch):
    _rtx()
    monkeypatch.delenv(LIBRARY_ENV, raising=False)
    monkeypatch.setattr(plugin_library_module, "DEFAULT_BUILD_DIR", tmp_path / "build")
    with pytest.raises(EngineBuildError, match=r"plugin library not found at .*build it with `gldfn-trt plugin build`"
                                               r".*--no-plugin"):
        build_plan(tiny_onnx["fp32"], BuildOptions(backend="tensorrt-rtx", build_plugin=False, **PROFILE))
    assert not (tmp_path / "build").exists()


def test_missing_toolchain_is_named_with_the_command_to_run(tiny_onnx, tmp_path, monkeypatch):
    """No cmake on PATH: the error names it (and only what is missing), `gldfn-trt plugin build` and --no-plugin."""
    _rtx()
    monkeypatch.delenv(LIBRARY_ENV, raising=False)
    monkeypatch.setattr(plugin_library_module, "DEFAULT_BUILD_DIR", tmp_path / "build")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(EngineBuildError) as refused:
        build_plan(tiny_onnx["fp32"], BuildOptions(backend="tensorrt-rtx", **PROFILE))
    message = str(refused.value)
    assert "it cannot be built here: missing cmake (CMake >= 3.25 on PATH)" in message
    assert "then run `gldfn-trt plugin build`, or pass the path of a library built for TensorRT 11" in message
    assert ("nvcc (" in message) == (find_nvcc() is None)
    assert ("TensorRT 11.x headers" in message) == (find_tensorrt_headers(11) is None)
    assert message.endswith("or build from the ONNX function bodies instead with --no-plugin")
    assert not (tmp_path / "build").exists()


def test_missing_headers_are_named_with_the_major_to_build(tmp_path, monkeypatch):
    monkeypatch.delenv(LIBRARY_ENV, raising=False)
    monkeypatch.setattr(plugin_library_module, "DEFAULT_BUILD_DIR", tmp_path / "build")
    with pytest.raises(PluginLibraryError, match=r"missing .*TensorRT 12\.x headers \(NvInferRuntime\.h.*then run "
                                                 r"`gldfn-trt plugin build --tensorrt-major 12`"):
        resolve_plugin_library(None, ["SM86"], tensorrt_major=12, report=None)


def _file_named_under(folder: Path, name: str) -> bool:
    """Whether a file ``name`` lies under ``folder``; cmake's scratch folders vanish while they are walked (os.walk
    skips them where Path.rglob raises)."""
    return any(name in files for _, _, files in os.walk(folder))


def test_an_interrupted_build_leaves_no_library_to_pick_up(tmp_path, monkeypatch):
    """A build killed as soon as the linker starts writing the library: nothing where the runtime looks, and the
    next build (an incremental one, not held up by the dead one's lock) finishes it."""
    _require_toolchain()
    folder = tmp_path / "build"
    command = [sys.executable, "-c", "from gldfn_runtime.cli.main import main; main()", "plugin", "build",
               "--build-dir", str(folder), "--cuda-archs", "86-real"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while process.poll() is None and not _file_named_under(folder, LIBRARY_FILENAME):
            time.sleep(0.005)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the build's own process group: cmake, make, nvcc, ld
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the build ended before the linker wrote anything"
    monkeypatch.delenv(LIBRARY_ENV, raising=False)
    monkeypatch.setattr(plugin_library_module, "DEFAULT_BUILD_DIR", folder)
    with pytest.raises(PluginLibraryError, match="plugin library not found"):
        find_plugin_library()

    result = CliRunner().invoke(app, ["plugin", "build", "--build-dir", str(folder), "--cuda-archs", "86-real"])
    assert result.exit_code == 0, result.output
    assert "CUDA code: sm_86" in result.output
    assert find_plugin_library() == (folder / LIBRARY_FILENAME).resolve()
    assert {arch.name for arch in read_cuda_archs(folder / LIBRARY_FILENAME)} == {"sm_86"}
