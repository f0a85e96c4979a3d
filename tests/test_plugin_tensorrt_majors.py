"""One source tree, a plugin library per TensorRT major: CMake reads both version-macro styles and names the
library by major, the library records its header version, the runtime picks and checks the library for the
loaded TensorRT, and a host of the other ILogger layout gets the plugin's messages on stderr instead of a crash
(the dlopen harness built with 10.x and 11.x headers, and TensorRT-RTX, against both libraries)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import PLUGIN_TEST_CUDA_ARCHS, require_tensorrt_headers
from typer.testing import CliRunner

from gldfn_runtime.cli.main import app
from gldfn_runtime.plugin import library as plugin_lib
from gldfn_runtime.plugin.build import (
    build_plugin_library,
    cuda_major_warnings,
    find_tensorrt_headers,
    header_version,
    installed_cuda_majors,
)
from gldfn_runtime.plugin.library import (
    LIBRARY_FILENAME,
    PluginLibraryError,
    check_library_matches,
    find_plugin_library,
    library_filename,
    library_tensorrt_version,
)
from gldfn_runtime.tensorrt.compat import TensorRTUnavailable, load_tensorrt

HARNESS_SCRIPT = plugin_lib.PLUGIN_SOURCE_DIR / "tests" / "plugin_harness.py"
MISMATCH_WARNING = "this library was built with TensorRT {built} headers, but the host's logger finder is not"
PLUGIN_ERROR = "kernel_size=4 is not supported"


def _harness_module():
    sys.path.insert(0, str(HARNESS_SCRIPT.parent))
    import plugin_harness

    return plugin_harness


# --- header versions and names (no build) -------------------------------------------------------------------

@pytest.mark.parametrize(("text", "version"), [
    ("#define NV_TENSORRT_MAJOR 10 //!< TensorRT major version.\n#define NV_TENSORRT_MINOR 0\n"
     "#define NV_TENSORRT_PATCH 1\n#define NV_TENSORRT_LWS_MAJOR 0\n", (10, 0, 1)),
    ("#define TRT_MAJOR_ENTERPRISE 10\n#define TRT_MINOR_ENTERPRISE 16\n#define TRT_PATCH_ENTERPRISE 0\n"
     "#define NV_TENSORRT_MAJOR TRT_MAJOR_ENTERPRISE //!< TensorRT major version.\n", (10, 16, 0)),
    ("#define TRT_MAJOR_RTX 1\n#define TRT_MINOR_RTX 7\n", None),
], ids=["numeric-NV_TENSORRT_MAJOR", "TRT_MAJOR_ENTERPRISE", "rtx-only"])
def test_header_version_reads_both_macro_styles(tmp_path, text, version):
    (tmp_path / "NvInferVersion.h").write_text(text)
    assert header_version(tmp_path) == version


def test_library_names_and_default_folders_by_major():
    assert library_filename(11) == LIBRARY_FILENAME
    assert library_filename(10) == "libgldfn_trt_plugins.trt10.so"
    assert plugin_lib.default_build_dir(11) == plugin_lib.DEFAULT_BUILD_DIR
    assert plugin_lib.default_build_dir(10) == plugin_lib.DEFAULT_BUILD_DIR / "trt10"


def test_wheels_of_another_cuda_major_than_nvcc_are_warned_about():
    assert cuda_major_warnings("13.0.88", {"cuda-bindings": 13, "tensorrt-rtx-cu13": 13}) == []
    warnings = cuda_major_warnings("13.0.88", {"cuda-bindings": 12, "tensorrt-cu12": 12})
    assert len(warnings) == 2 and "CUDA 13 runtime (driver >= 580), but cuda-bindings is CUDA 12" in warnings[0]
    assert "CUDA 12 runtime (driver >= 525), but tensorrt-cu13 is CUDA 13" in cuda_major_warnings(
        "12.8.1", {"tensorrt-cu13": 13})[0]
    installed = installed_cuda_majors()
    assert all(major in (11, 12, 13) for major in installed.values())


def test_build_for_a_major_without_its_headers_says_what_to_install(tmp_path):
    headers = find_tensorrt_headers()
    if headers is None or header_version(headers)[0] == 10:
        pytest.skip("needs non-10.x TensorRT headers installed (NvInferRuntime.h of TensorRT 11)")
    for tool in ("cmake", "nvcc"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not on PATH")
    with pytest.raises(PluginLibraryError, match=r"no TensorRT 10\.x headers .* only 11\.\d+\.\d+ ones in"):
        build_plugin_library(tmp_path / "b", tensorrt_major=10, tensorrt_root=headers)
    assert not (tmp_path / "b").exists()  # refused before CMake ran


def test_cmake_reads_the_numeric_macro_of_early_10x_headers(tmp_path):
    headers = require_tensorrt_headers(10, before=(10, 13))
    if shutil.which("cmake") is None or shutil.which("nvcc") is None:
        pytest.skip("cmake and nvcc are needed to configure the plugin project")
    result = subprocess.run(["cmake", "-S", str(plugin_lib.PLUGIN_SOURCE_DIR), "-B", str(tmp_path),
                             f"-DTENSORRT_ROOT={headers}", f"-DCMAKE_CUDA_ARCHITECTURES={PLUGIN_TEST_CUDA_ARCHS}"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    version = ".".join(map(str, header_version(headers)))
    assert f"TensorRT {version} headers: {headers} -> libgldfn_trt_plugins.trt10.so" in result.stdout


# --- the TensorRT 10 library ---------------------------------------------------------------------------------

def test_trt10_library_is_named_by_major_records_its_headers_and_exports_the_entry_points(plugin_library_trt10):
    assert plugin_library_trt10.name == "libgldfn_trt_plugins.trt10.so"
    assert library_tensorrt_version(plugin_library_trt10)[0] == 10
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(plugin_library_trt10)], capture_output=True,
                             text=True, check=True).stdout
    exported = sorted(line.split()[-1] for line in symbols.splitlines() if " T " in line)
    assert exported == ["getCreators", "setLoggerFinder"]


def test_plugin_build_cli_builds_for_the_headers_given(plugin_library_trt10, tmp_path_factory):
    """The CLI on the fixture's build folder (an incremental build): says which headers and SMs, prints the path."""
    headers = require_tensorrt_headers(10)
    build_dir = plugin_library_trt10.parent
    result = CliRunner().invoke(app, ["plugin", "build", "--build-dir", str(build_dir), "--tensorrt-root", str(headers),
                                      "--cuda-archs", PLUGIN_TEST_CUDA_ARCHS])
    assert result.exit_code == 0, result.output
    assert Path(result.output.strip().splitlines()[-1]) == plugin_library_trt10
    assert f"TensorRT {'.'.join(map(str, header_version(headers)))} headers" in result.output
    assert f"CUDA architectures {PLUGIN_TEST_CUDA_ARCHS}" in result.output


def test_runtime_picks_the_library_of_the_asked_major_from_its_default_folder(plugin_library_trt10, plugin_library,
                                                                              tmp_path, monkeypatch):
    monkeypatch.delenv(plugin_lib.LIBRARY_ENV, raising=False)
    monkeypatch.setattr(plugin_lib, "DEFAULT_BUILD_DIR", tmp_path)
    (tmp_path / "trt10").mkdir()
    shutil.copy(plugin_library_trt10, tmp_path / "trt10" / plugin_library_trt10.name)
    shutil.copy(plugin_library, tmp_path / LIBRARY_FILENAME)
    assert find_plugin_library(tensorrt_major=10) == tmp_path / "trt10" / "libgldfn_trt_plugins.trt10.so"
    assert find_plugin_library(tensorrt_major=11) == tmp_path / LIBRARY_FILENAME
    with pytest.raises(PluginLibraryError, match="default build folder for TensorRT 12"):
        find_plugin_library(tensorrt_major=12)


def _rtx():
    try:
        return load_tensorrt("tensorrt_rtx")
    except TensorRTUnavailable as error:
        pytest.skip(f"TensorRT-RTX is not installed: {error}")


def test_loading_the_trt10_library_into_tensorrt_rtx_is_refused_with_the_fix(plugin_library_trt10):
    backend = _rtx()
    with pytest.raises(PluginLibraryError) as error:
        check_library_matches(plugin_library_trt10, backend)
    message = str(error.value)
    assert "built with TensorRT 10." in message and "TensorRT 11's interfaces" in message
    assert "gldfn-trt plugin build --tensorrt-major 11" in message


def test_library_without_a_build_record_is_refused(tmp_path):
    backend = _rtx()
    fake = tmp_path / LIBRARY_FILENAME
    fake.write_bytes(b"\x7fELF not a plugin")
    with pytest.raises(PluginLibraryError, match="records no TensorRT header version"):
        check_library_matches(fake, backend)


# --- logger layouts: each harness against each library, in a process of its own ----------------------------

@pytest.fixture(scope="module")
def harnesses(tmp_path_factory) -> dict[int, Path]:
    """The dlopen harness compiled with TensorRT 10.x and 11.x headers."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not on PATH")
    module = _harness_module()
    built = {}
    for major in (10, 11):
        headers = require_tensorrt_headers(major)
        built[major] = module.compile_harness(tmp_path_factory.mktemp(f"harness{major}"), headers)
    return built


@pytest.mark.parametrize(("host", "built"), [(10, 10), (10, 11), (11, 10), (11, 11)],
                         ids=["host10-lib10", "host10-lib11", "host11-lib10", "host11-lib11"])
def test_harness_pairings_log_through_the_host_or_fall_back_to_stderr(harnesses, plugin_library, plugin_library_trt10,
                                                                      host, built):
    library = plugin_library_trt10 if built == 10 else plugin_library
    result = subprocess.run([sys.executable, str(HARNESS_SCRIPT), str(harnesses[host]), str(library)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"exit {result.returncode} (a crash is -11)\n{result.stdout}{result.stderr}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not report["created"] and report["field_names"] == ["kernel_size", "dilation"]
    if host == built:
        assert PLUGIN_ERROR in report["harness_log"]
        assert "WARNING" not in result.stderr
    else:
        assert report["harness_log"] == ""
        assert MISMATCH_WARNING.format(built=built) in result.stderr
        assert PLUGIN_ERROR in result.stderr


RTX_HOST = textwrap.dedent("""
    import json, sys
    import numpy as np
    from gldfn_runtime.tensorrt.compat import load_tensorrt
    trt = load_tensorrt("tensorrt_rtx").module

    class Collecting(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.messages = []

        def log(self, severity, msg):
            self.messages.append(msg)

    logger = Collecting()
    builder = trt.Builder(logger)  # the logger TensorRT hands to plugins while it lives
    registry = trt.get_plugin_registry()
    registry.load_library(sys.argv[1])  # straight into TensorRT, past the runtime's check
    creator = registry.get_creator("GLDFN_LocalDynamicFilter", "1", "gldfn")
    fields = trt.PluginFieldCollection([
        trt.PluginField("kernel_size", np.array([4], np.int32), trt.PluginFieldType.INT32),
        trt.PluginField("dilation", np.array([1], np.int32), trt.PluginFieldType.INT32)])
    plugin = creator.create_plugin("rtx", fields, trt.TensorRTPhase.BUILD)
    print(json.dumps({"created": plugin is not None, "tensorrt_log": [m for m in logger.messages if "gldfn" in m]}))
""")


@pytest.mark.parametrize("built", [10, 11], ids=["lib10", "lib11"])
def test_tensorrt_rtx_host_gets_messages_from_its_library_and_stderr_from_the_other(plugin_library,
                                                                                   plugin_library_trt10, built):
    _rtx()
    library = plugin_library_trt10 if built == 10 else plugin_library
    result = subprocess.run([sys.executable, "-c", RTX_HOST, str(library)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}{result.stderr}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not report["created"]
    if built == 11:
        assert any(PLUGIN_ERROR in message for message in report["tensorrt_log"])
        assert MISMATCH_WARNING.format(built=11) not in result.stderr
    else:
        assert not any(PLUGIN_ERROR in message for message in report["tensorrt_log"])
        assert MISMATCH_WARNING.format(built=10) in result.stderr and PLUGIN_ERROR in result.stderr
