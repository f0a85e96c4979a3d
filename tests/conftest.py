"""Settings and fixtures shared by the whole suite."""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

# One GPU generation keeps the test build short; its PTX lets engines target TensorRT-RTX's default SM80-SM121
# (an engine build refuses a library whose code does not run on every target). The library itself targets every SM.
PLUGIN_TEST_CUDA_ARCHS = "80"
PLUGIN_BUILD_FOLDER = "gldfn_plugin_build"
# Folders of other TensorRT versions' headers for the cross-version tests (os.pathsep-separated); also searched:
# /opt/trt-headers/* (where ../shared/tools/install-trt-headers puts extra versions on the project's machines).
TENSORRT_HEADERS_ENV = "GLDFN_TEST_TENSORRT_HEADERS"


def write_smooth_images(folder: Path, count: int, seed: int = 0) -> Path:
    """``count`` smooth random-texture PNGs (upsampled noise, 64x48) named img0.png, img1.png, ... in ``folder``."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        small = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
        Image.fromarray(small).resize((64, 48), Image.BICUBIC).save(folder / f"img{i}.png")
    return folder


def plain_text(output: str) -> str:
    """A command's output without rich's error box and line wrapping, to match messages in."""
    return " ".join(output.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())


def require_dataset(name: str) -> Path:
    """The folder of a shared image set, or skip the test saying it is missing."""
    from gldfn_model.data.datasets import find_dataset

    folder = find_dataset(name)
    if folder is None:
        pytest.skip(f"{name} not found: the shared image sets (../shared/datasets beside the repository, or "
                    "$GLDFN_DATASETS) are missing")
    return folder


class _LeavesAMarker:
    """Unpickling this creates the folder ``marker``: the proof that a loader ran code taken from a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def write_code_running_checkpoint(path: Path, marker: Path, scale: int = 4) -> Path:
    """A file shaped like a gldfn checkpoint (tiny config, trainer fields) that runs ``os.mkdir(marker)`` when
    unpickled without ``weights_only``."""
    from gldfn_model.network.config import get_config

    torch.save({"format": 1, "config": get_config("tiny", scale).to_dict(), "config_name": "tiny", "state_dict": {},
                "iteration": 1, "optimizer": _LeavesAMarker(marker)}, path)
    return path


def build_marker_library(folder: Path, marker: Path, name: str = "crafted.so") -> Path:
    """A shared object whose constructor creates the folder ``marker`` as soon as anything loads it."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler (cc) to build the crafted shared object")
    source = folder / f"{name}.c"
    source.write_text('#include <sys/stat.h>\n'
                      f'__attribute__((constructor)) static void ran(void) {{ mkdir("{marker}", 0700); }}\n')
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(folder / name), str(source)], check=True,
                   capture_output=True)
    return folder / name
def run_fresh(code: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess, bool]:
    """Run ``code`` in a new interpreter; return the finished process and whether it imported torch by its end
    (a command's ``SystemExit`` included)."""
    script = ("import atexit, sys\n"
              "atexit.register(lambda: print('\\ntorch imported:', 'torch' in sys.modules, flush=True))\n"
              + textwrap.dedent(code))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)
    marker = [line for line in result.stdout.splitlines() if line.startswith("torch imported:")]
    assert marker, f"the child process ended before its exit hook ran:\n{result.stdout}\n{result.stderr}"
    return result, marker[-1].endswith("True")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One intra-op thread: the suite's tensors are small, and on a shared 2-core machine two oversubscribed
    threads per process are many times slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def plugin_library(tmp_path_factory) -> Path:
    """libgldfn_trt_plugins.so, built once per session (needs the TensorRT headers, CMake and nvcc)."""
    from gldfn_runtime.plugin.build import build_plugin_library, find_tensorrt_headers

    if find_tensorrt_headers() is None:
        pytest.skip("TensorRT headers (NvInferRuntime.h) are not installed: run ../shared/tools/install-trt-headers "
                    "<git dir of NVIDIA/TensorRT> or set TENSORRT_ROOT")
    _require_build_tools()
    return build_plugin_library(tmp_path_factory.getbasetemp() / PLUGIN_BUILD_FOLDER, cuda_architectures=PLUGIN_TEST_CUDA_ARCHS)


def tensorrt_header_dirs() -> dict[Path, tuple[int, int, int]]:
    """Every TensorRT header folder the tests can find, with its version."""
    import os

    from gldfn_runtime.plugin.build import find_tensorrt_headers, header_version

    folders = [Path(p) for p in os.environ.get(TENSORRT_HEADERS_ENV, "").split(os.pathsep) if p]
    folders += sorted(Path("/opt/trt-headers").glob("*"))
    default = find_tensorrt_headers(None)
    folders += [default] if default else []
    found = {}
    for folder in folders:
        for candidate in (folder, folder / "include"):
            version = header_version(candidate)
            if version and (candidate / "NvInferRuntime.h").is_file():
                found[candidate.resolve()] = version
    return found


def require_tensorrt_headers(major: int, before: tuple[int, int] | None = None) -> Path:
    """The newest headers of TensorRT ``major`` (older than ``before`` when given), or skip saying how to get them."""
    matching = [(version, folder) for folder, version in tensorrt_header_dirs().items()
                if version[0] == major and (before is None or version[:2] < before)]
    if not matching:
        wanted = f"{major}.x" if before is None else f"{major}.x before {before[0]}.{before[1]}"
        pytest.skip(f"no TensorRT {wanted} headers: install them with ../shared/tools/install-trt-headers <git dir of "
                    f"NVIDIA/TensorRT> <tag> /opt/trt-headers/<version>, or list folders in ${TENSORRT_HEADERS_ENV}")
    return max(matching)[1]


def _require_build_tools() -> None:
    for tool in ("cmake", "nvcc"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not on PATH (needed to build the plugin library)")


@pytest.fixture(scope="session")
def plugin_library_trt10(tmp_path_factory) -> Path:
    """libgldfn_trt_plugins.trt10.so, built once per session with the newest TensorRT 10 headers found."""
    from gldfn_runtime.plugin.build import build_plugin_library

    headers = require_tensorrt_headers(10)
    _require_build_tools()
    return build_plugin_library(tmp_path_factory.getbasetemp() / "gldfn_plugin_build_trt10",
                                cuda_architectures=PLUGIN_TEST_CUDA_ARCHS, tensorrt_root=headers)


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> dict[str, Path]:
    """The tiny config (random weights, seed 0) exported in FP32 and FP16, once per session."""
    from gldfn_export.exporter import export_gldfn
    from gldfn_model.network.config import get_config
    from gldfn_model.network.gldfn import GLDFN

    folder = tmp_path_factory.getbasetemp() / "gldfn_engine_models"
    paths = {p: folder / f"tiny_{p}.onnx" for p in ("fp32", "fp16")}
    if not all(path.is_file() for path in paths.values()):
        folder.mkdir(exist_ok=True)
        torch.manual_seed(0)
        model = GLDFN(get_config("tiny"))
        for precision, path in paths.items():
            export_gldfn(model, path, precision=precision, config_name="tiny", verify=False)
    return paths
