"""ctypes wrapper of plugin_harness.cpp: drives libgldfn_trt_plugins.so through its TensorRT interface
(getCreators, createPlugin, serialization, format queries, enqueue) without TensorRT. Used by the CPU tests
(tests/test_plugin_library.py, tests/test_plugin_tensorrt_majors.py) and by the GPU check (gpu_check.py).

  python3 plugin_harness.py HARNESS PLUGIN   # one pairing: load, provoke a logged error, print JSON

prints where the plugin's error message went (the harness's logger, or nowhere it could see: then stderr), so
harness and library built with different TensorRT headers can be tried in a process of their own.

  python3 plugin_harness.py --registration REGISTRY_HARNESS PLUGIN COPY

loads the harness that stands in for TensorRT's plugin registry (compile_registry_harness), then dlopens the
plugin library, a copy of it, and calls its getCreators, printing what the registry holds after each step (JSON)."""
from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cuda_toolkit import find_cuda_home  # noqa: E402

HERE = Path(__file__).resolve().parent
HARNESS_SOURCE = HERE / "plugin_harness.cpp"
HOST_ARITHMETIC_SOURCE = HERE / "host_arithmetic.cpp"
KERNEL_EMULATION_SOURCE = HERE / "kernel_emulation.cpp"
KERNEL_DIR = HERE.parent / "local_dynamic_filter"

# nvinfer1::DataType / TensorFormat values (NvInferRuntimeBase.h / NvInferRuntimeCommon.h)
DATA_TYPES = {"float32": 0, "float16": 1, "int8": 2, "int32": 3}
FORMAT_LINEAR, FORMAT_CHW2, FORMAT_HWC8 = 0, 1, 2
PHASE_BUILD, PHASE_RUNTIME = 0, 1


def cuda_include_dir() -> Path:
    """The CUDA toolkit's include folder (cuda_toolkit.find_cuda_home)."""
    return find_cuda_home() / "include"


def compile_shared(source: Path, output: Path, include_dirs: list[Path], system_include_dirs: list[Path] = (),
                   libraries: tuple[str, ...] = (), extra_flags: tuple[str, ...] = ("-std=c++17", "-O2")) -> Path:
    compiler = os.environ.get("CXX", "g++")
    command = [compiler, *extra_flags, "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror"]
    # -isystem: TensorRT's headers warn about their own deprecated declarations.
    command += [f"-I{d}" for d in include_dirs] + [arg for d in system_include_dirs for arg in ("-isystem", str(d))]
    command += [str(source), "-o", str(output)] + [f"-l{lib}" for lib in libraries]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return output


def compile_harness(output_dir: Path, tensorrt_include: Path) -> Path:
    return compile_shared(
        HARNESS_SOURCE, output_dir / "libgldfn_plugin_harness.so", [], [tensorrt_include, cuda_include_dir()], ("dl",)
    )


def compile_registry_harness(output_dir: Path, tensorrt_include: Path, tensorrt_major: int) -> Path:
    """The harness that also stands in for TensorRT's plugin registry, named as TensorRT's library is
    (soname libnvinfer.so.MAJOR), so that a plugin library looking for a loaded TensorRT finds it. Load it only in
    a process of its own (``--registration``), never beside a real TensorRT of that major."""
    flags = ("-std=c++17", "-O2", "-DLDFH_STAND_IN_REGISTRY", f"-Wl,-soname,libnvinfer.so.{tensorrt_major}")
    return compile_shared(HARNESS_SOURCE, output_dir / "libgldfn_harness_registry.so", [],
                          [tensorrt_include, cuda_include_dir()], ("dl",), extra_flags=flags)


def compile_host_arithmetic(output_dir: Path) -> Path:
    return compile_shared(HOST_ARITHMETIC_SOURCE, output_dir / "libgldfn_ldf_host.so", [KERNEL_DIR])


def compile_kernel_emulation(output_dir: Path) -> Path:
    """The CUDA kernels run on CPU threads (kernel_emulation.cpp); needs the CUDA headers, no GPU."""
    return compile_shared(
        KERNEL_EMULATION_SOURCE, output_dir / "libgldfn_ldf_emulation.so", [KERNEL_DIR], [cuda_include_dir()],
        extra_flags=("-std=c++20", "-O1", "-pthread", "-Wno-unknown-pragmas"),
    )


class PluginHarness:
    """One harness library bound to one plugin library (its creator found by name, version and namespace)."""

    def __init__(self, harness_path: Path, plugin_path: Path, name: str, version: str, namespace: str) -> None:
        lib = ctypes.CDLL(str(harness_path))
        vp, i32, i64 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64
        i32p = ctypes.POINTER(ctypes.c_int32)
        signatures = {
            "ldfh_load": (ctypes.c_int, [ctypes.c_char_p] * 4),
            "ldfh_take_log": (ctypes.c_char_p, []),
            "ldfh_field_names": (ctypes.c_char_p, []),
            "ldfh_create": (vp, [i32, i32, i32]),
            "ldfh_destroy": (None, [vp]),
            "ldfh_roundtrip": (vp, [vp, i32p, i32p]),
            "ldfh_supports": (ctypes.c_int, [vp, i32, i32p, i32p]),
            "ldfh_output_type": (ctypes.c_int, [vp, i32p]),
            "ldfh_shape_change": (ctypes.c_int, [vp, i32, i64, i64, i64, i64, i64]),
            "ldfh_prepare": (vp, [vp, i32, i64, i64, i64, i64, i32]),
            "ldfh_enqueue": (ctypes.c_int, [vp, vp, vp, vp, vp, vp]),
            "ldfh_release": (None, [vp]),
        }
        for fname, (restype, argtypes) in signatures.items():
            fn = getattr(lib, fname)
            fn.restype, fn.argtypes = restype, argtypes
        self._lib = lib
        status = lib.ldfh_load(str(plugin_path).encode(), name.encode(), version.encode(), namespace.encode())
        if status != 0:
            raise RuntimeError(f"loading {plugin_path} failed: {self.take_log()}")

    def take_log(self) -> str:
        return self._lib.ldfh_take_log().decode()

    def field_names(self) -> list[str]:
        return self._lib.ldfh_field_names().decode().split(",")

    def create(self, kernel_size: int, dilation: int, phase: int = PHASE_BUILD) -> int | None:
        return self._lib.ldfh_create(kernel_size, dilation, phase)

    def destroy(self, plugin: int | None) -> None:
        if plugin:
            self._lib.ldfh_destroy(plugin)

    def roundtrip(self, plugin: int) -> tuple[int | None, int, int]:
        """(restored plugin, its kernel_size, its dilation) after getFieldsToSerialize -> createPlugin(runtime)."""
        k, d = ctypes.c_int32(-1), ctypes.c_int32(-1)
        restored = self._lib.ldfh_roundtrip(plugin, ctypes.byref(k), ctypes.byref(d))
        return restored, k.value, d.value

    def supports(self, plugin: int, pos: int, types: list[int], formats: list[int]) -> bool:
        return bool(self._lib.ldfh_supports(plugin, pos, (ctypes.c_int32 * 4)(*types), (ctypes.c_int32 * 4)(*formats)))

    def output_type(self, plugin: int, input_types: list[int]) -> int:
        return self._lib.ldfh_output_type(plugin, (ctypes.c_int32 * 3)(*input_types))

    def shape_change(self, plugin: int, dtype: str, shape: tuple[int, int, int, int], taps: int) -> int:
        return self._lib.ldfh_shape_change(plugin, DATA_TYPES[dtype], *shape, taps)

    def prepare(self, plugin: int, dtype: str, shape: tuple[int, int, int, int], kernel_size: int) -> int:
        prepared = self._lib.ldfh_prepare(plugin, DATA_TYPES[dtype], *shape, kernel_size)
        if not prepared:
            raise RuntimeError(f"prepare failed: {self.take_log()}")
        return prepared

    def enqueue(self, prepared: int, x: int, spatial: int, channel: int, out: int, stream: int) -> int:
        return self._lib.ldfh_enqueue(prepared, x, spatial, channel, out, stream)

    def release(self, prepared: int) -> None:
        self._lib.ldfh_release(prepared)


def report_pairing(harness_path: Path, plugin_path: Path) -> dict:
    """Load ``plugin_path`` through the harness, create a plugin with an invalid kernel_size (the plugin logs an
    error) and say what the harness's logger received."""
    from gldfn_model.ops.contract import load_contract

    contract = load_contract()
    namespace = contract.plugin_namespace
    harness = PluginHarness(harness_path, plugin_path, contract.name, contract.plugin_version, namespace)
    created = harness.create(4, 1)
    return {"created": bool(created), "harness_log": harness.take_log(), "field_names": harness.field_names()}


def report_registration(registry_harness: Path, plugin_path: Path, copy_path: Path) -> dict:
    """What the stand-in registry holds after dlopen of the plugin library, after dlopen of a copy of it (a
    second instance, as an engine's embedded library is), and after its getCreators (what loadLibrary calls)."""
    from gldfn_model.ops.contract import load_contract

    contract = load_contract()
    lib = ctypes.CDLL(str(registry_harness))
    lib.ldfh_dlopen.argtypes, lib.ldfh_dlopen.restype = [ctypes.c_char_p], ctypes.c_int
    lib.ldfh_registry_contents.restype = ctypes.c_char_p
    lib.ldfh_take_log.restype = ctypes.c_char_p
    lib.ldfh_load.argtypes, lib.ldfh_load.restype = [ctypes.c_char_p] * 4, ctypes.c_int

    def contents() -> str:
        return lib.ldfh_registry_contents().decode()

    report = {"before": contents()}
    for step, path in (("loaded", plugin_path), ("copy_loaded", copy_path)):
        if lib.ldfh_dlopen(str(path).encode()) != 0:
            raise RuntimeError(f"dlopen {path} failed: {lib.ldfh_take_log().decode()}")
        report[step] = contents()
    status = lib.ldfh_load(str(plugin_path).encode(), contract.name.encode(), contract.plugin_version.encode(),
                           contract.plugin_namespace.encode())
    report["get_creators"] = contents() if status == 0 else f"failed: {lib.ldfh_take_log().decode()}"
    report["expected"] = f"{contract.name}/{contract.plugin_version}/{contract.plugin_namespace}"
    return report


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))  # gldfn_model from the source tree
    if sys.argv[1] == "--registration":
        print(json.dumps(report_registration(*map(Path, sys.argv[2:5]))), flush=True)
    else:
        print(json.dumps(report_pairing(Path(sys.argv[1]), Path(sys.argv[2]))), flush=True)
