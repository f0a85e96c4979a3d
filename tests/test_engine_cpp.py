"""The C++ example in runtime/cpp: it compiles against the TensorRT headers (CI: compile only, no libnvinfer);
where the TensorRT-RTX wheel is installed it configures and builds from a clean copy of its sources with nothing
but the wheel (found through the Python CMake finds; the wheel's libtensorrt_rtx.so.1 has no plain .so beside
it), runs up to the point that needs a GPU and says so, and refuses headers of another major than the
library's."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gldfn_runtime.plugin.build import find_tensorrt_headers

REPO = Path(__file__).resolve().parents[1]
CPP_DIR = REPO / "runtime" / "cpp"
RTX_LIBRARY = "libtensorrt_rtx.so.1"  # what the wheel ships (the Python runtime may add a plain .so link beside it)


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


def _cmake(build: Path, *options: str, source: Path = CPP_DIR, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess:
    configure = subprocess.run(["cmake", "-S", str(source), "-B", str(build), *options], capture_output=True, text=True,
                               env=env)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    built = subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True)
    built.stdout = configure.stdout + built.stdout
    return built


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
    if not (libs / RTX_LIBRARY).is_file():
        pytest.skip(f"{libs} holds no {RTX_LIBRARY}")
    return libs


def _tensorrt_root(folder: Path, headers: Path, libs: Path) -> Path:
    """A TensorRT-style installation folder: include/ with ``headers``, lib/ with TensorRT-RTX's library (as the
    wheel has it: the versioned file only)."""
    (folder / "lib").mkdir(parents=True)
    (folder / "lib" / RTX_LIBRARY).symlink_to(libs / RTX_LIBRARY)
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


def _clean_copy(folder: Path) -> Path:
    """The example's sources as a clone has them, without build folders: runtime/cpp and the CMake module it
    includes from plugins/cmake."""
    for part in ("runtime/cpp", "plugins/cmake"):
        shutil.copytree(REPO / part, folder / part, ignore=shutil.ignore_patterns("build*", "CMakeCache.txt"))
    return folder / "runtime" / "cpp"


def _wheel_as_installed(site: Path, libs: Path) -> Path:
    """A ``tensorrt_rtx_libs`` package as pip installs it (``__init__.py`` and ``libtensorrt_rtx.so.1``, no plain .so),
    in a folder to put first on PYTHONPATH: what CMake finds through Python then."""
    package = site / "tensorrt_rtx_libs"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / RTX_LIBRARY).symlink_to(libs / RTX_LIBRARY)
    return site


def test_example_builds_from_a_clean_copy_with_only_the_rtx_wheel(tmp_path):
    """No TENSORRT_ROOT: CMake asks the Python it finds where the wheel is and links the .so.1 by its real file,
    creating nothing in site-packages; the program finds the library by its RUNPATH, answers --help with 0, and
    without a GPU says so before TensorRT sees the engine."""
    _require_toolchain()
    libs = _rtx_libs()
    before = sorted(p.name for p in libs.iterdir())
    site = _wheel_as_installed(tmp_path / "site", libs)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    environment.pop("LD_LIBRARY_PATH", None)
    built = _cmake(tmp_path / "build", f"-DPython3_EXECUTABLE={sys.executable}", source=_clean_copy(tmp_path / "clone"),
                   env=environment)
    if "(system folders)" in built.stdout:
        pytest.skip("a TensorRT library is installed in the system folders, which CMake prefers to the wheel")
    assert built.returncode == 0, built.stdout + built.stderr
    assert f"{(libs / RTX_LIBRARY).resolve()} (pip wheel of {sys.executable})" in " ".join(built.stdout.split())
    assert sorted(p.name for p in libs.iterdir()) == before  # no link added beside the wheel's library
    program = tmp_path / "build" / "gldfn_upscale"
    dynamic = subprocess.run(["readelf", "-d", str(program)], capture_output=True, text=True).stdout
    assert f"[{RTX_LIBRARY}]" in dynamic and str(libs.resolve()) in dynamic  # NEEDED by SONAME, RUNPATH to the wheel

    run = lambda *args: subprocess.run([str(program), *map(str, args)], capture_output=True, text=True, env=environment)  # noqa: E731
    helped = run("--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: gldfn_upscale ENGINE INPUT.png OUTPUT.png")
    assert run("-h").returncode == 0 and run().returncode == 1
    from PIL import Image

    photo, engine, output = tmp_path / "photo.png", tmp_path / "not_an.engine", tmp_path / "out.png"
    Image.new("RGB", (16, 16), (40, 80, 120)).save(photo)
    engine.write_bytes(b"not an engine")
    refused = run(engine, photo, output)
    assert refused.returncode == 1 and not output.exists()
    from gldfn_runtime.tensorrt.backend import current_gpu

    if current_gpu()[0] is None:
        assert "error: no CUDA GPU (" in refused.stderr and "TensorRT engines run on an NVIDIA GPU" in refused.stderr
        assert "cannot deserialize" not in refused.stderr
    else:
        assert "cannot deserialize" in refused.stderr, refused.stderr
