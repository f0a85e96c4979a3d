"""The C++ example in runtime/cpp: it compiles against the TensorRT headers (CI: compile only, no libnvinfer);
where the TensorRT-RTX wheel is installed it also links against libtensorrt_rtx and runs up to the point that
needs a GPU, and refuses headers of another major than the library's."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gldfn_runtime.plugin.build import find_tensorrt_headers

CPP_DIR = Path(__file__).resolve().parents[1] / "runtime" / "cpp"


def _require_toolchain() -> Path:
    headers = find_tensorrt_headers()
    if headers is None:
        pytest.skip("TensorRT headers (NvInferRuntime.h) are not installed: run ../shared/tools/install-trt-headers "
                    "<git dir of NVIDIA/TensorRT> or set TENSORRT_ROOT")
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not on PATH")
    if not Path("/usr/include/png.h").is_file():
        pytest.skip("libpng headers are missing: apt-get install libpng-dev")
    return headers


def _cmake(build: Path, *options: str) -> subprocess.CompletedProcess:
    configure = subprocess.run(["cmake", "-S", str(CPP_DIR), "-B", str(build), *options], capture_output=True, text=True)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    return subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True)


def test_example_compiles_against_the_tensorrt_headers_without_warnings(tmp_path):
    _require_toolchain()
    built = _cmake(tmp_path / "build", "-DGLDFN_COMPILE_ONLY=ON")
    assert built.returncode == 0, built.stdout + built.stderr
    assert "warning" not in (built.stdout + built.stderr).lower()
    assert list((tmp_path / "build").rglob("gldfn_upscale.cpp.o"))


def _rtx_libs() -> Path:
    from gldfn_runtime.tensorrt.compat import TensorRTUnavailable, load_tensorrt

    try:
        rtx = load_tensorrt("tensorrt_rtx")  # also makes the wheel's libtensorrt_rtx.so link
    except TensorRTUnavailable as error:
        pytest.skip(f"TensorRT-RTX is not installed: {error}")
    libs = Path(rtx.module.__file__).resolve().parent.parent / "tensorrt_rtx_libs"
    if not (libs / "libtensorrt_rtx.so").exists():
        pytest.skip(f"{libs} holds no libtensorrt_rtx.so")
    return libs


def _tensorrt_root(folder: Path, headers: Path, libs: Path) -> Path:
    """A TensorRT-style installation folder: include/ with ``headers``, lib/ with TensorRT-RTX's library."""
    (folder / "lib").mkdir(parents=True)
    (folder / "lib" / "libtensorrt_rtx.so").symlink_to(libs / "libtensorrt_rtx.so")
    (folder / "include").symlink_to(headers)
    return folder


def test_example_refuses_headers_of_another_major_than_the_library(tmp_path):
    _require_toolchain()
    from conftest import require_tensorrt_headers

    headers = require_tensorrt_headers(10)
    root = _tensorrt_root(tmp_path / "tensorrt", headers, _rtx_libs())
    configure = subprocess.run(["cmake", "-S", str(CPP_DIR), "-B", str(tmp_path / "build"), f"-DTENSORRT_ROOT={root}"],
                               capture_output=True, text=True)
    assert configure.returncode != 0
    message = " ".join(configure.stderr.split())  # CMake wraps its messages
    assert "TensorRT-RTX 1, which needs TensorRT 11 or its own headers" in message and "holds TensorRT 10." in message


def test_example_links_against_tensorrt_rtx_and_fails_cleanly_without_a_gpu(tmp_path):
    headers = _require_toolchain()
    libs = _rtx_libs()
    root = _tensorrt_root(tmp_path / "tensorrt", headers, libs)
    built = _cmake(tmp_path / "build", f"-DTENSORRT_ROOT={root}")
    assert built.returncode == 0, built.stdout + built.stderr
    program = tmp_path / "build" / "gldfn_upscale"
    environment = {**os.environ, "LD_LIBRARY_PATH": str(libs)}
    usage = subprocess.run([str(program)], capture_output=True, text=True, env=environment)
    assert usage.returncode == 1 and "usage: gldfn_upscale ENGINE INPUT.png OUTPUT.png" in usage.stderr
    missing = subprocess.run([str(program), str(tmp_path / "absent.engine"), "in.png", str(tmp_path / "out.png")],
                             capture_output=True, text=True, env=environment)
    assert missing.returncode == 1 and "absent.engine: cannot open" in missing.stderr
    assert not (tmp_path / "out.png").exists()
    # The output is checked before anything is loaded: never one of the inputs, never an existing file unasked.
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"not read: the check comes first")
    link = tmp_path / "link.png"
    link.symlink_to(photo)
    for output, message in ((photo, "is also a file this program reads"), (link, "is also a file this program reads")):
        refused = subprocess.run([str(program), str(tmp_path / "absent.engine"), str(photo), str(output)],
                                 capture_output=True, text=True, env=environment)
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
    existing = tmp_path / "existing.png"
    existing.write_bytes(b"keep")
    kept = subprocess.run([str(program), str(tmp_path / "absent.engine"), str(photo), str(existing)],
                          capture_output=True, text=True, env=environment)
    assert kept.returncode == 1 and "exists already; pass --overwrite" in kept.stderr
    forced = subprocess.run([str(program), str(tmp_path / "absent.engine"), str(photo), str(existing), "--overwrite"],
                            capture_output=True, text=True, env=environment)
    assert forced.returncode == 1 and "absent.engine: cannot open" in forced.stderr  # past the check, to the engine
    assert photo.read_bytes() == b"not read: the check comes first" and existing.read_bytes() == b"keep"
