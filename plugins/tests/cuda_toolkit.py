"""Where the CUDA toolkit is: $CUDA_HOME or $CUDA_PATH when they hold it, else the folder nvcc itself reports
(right also where ``nvcc`` on PATH is a wrapper script or a link into another folder), else /usr/local/cuda.
Used by the harness builds (plugin_harness.py) and by gpu_check.sh, which runs ``python3 cuda_toolkit.py``."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

MARKER = Path("include") / "cuda_runtime_api.h"


def nvcc_reported_root(nvcc: str) -> Path | None:
    """The toolkit root nvcc derives for itself (the ``TOP`` of its dry run), or None."""
    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run([nvcc, "-v", "--dryrun", "-c", "probe.cu"], capture_output=True, text=True, cwd=folder)
    for line in (result.stdout + result.stderr).splitlines():
        if line.startswith("#$ TOP="):
            return Path(line.split("=", 1)[1].strip()).resolve()
    return None


def _candidates() -> Iterator[Path]:
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(variable):
            yield Path(os.environ[variable])
    nvcc = shutil.which("nvcc")
    if nvcc:
        reported = nvcc_reported_root(nvcc)
        if reported is not None:
            yield reported
        yield Path(nvcc).resolve().parent.parent
    yield Path("/usr/local/cuda")


def find_cuda_home() -> Path:
    """The first candidate folder holding include/cuda_runtime_api.h."""
    for root in _candidates():
        if (root / MARKER).is_file():
            return root
    raise FileNotFoundError("no CUDA toolkit (include/cuda_runtime_api.h) found from CUDA_HOME, CUDA_PATH, nvcc or "
                            "/usr/local/cuda: install the CUDA toolkit or set CUDA_HOME")


if __name__ == "__main__":
    try:
        print(find_cuda_home())
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        sys.exit(1)
