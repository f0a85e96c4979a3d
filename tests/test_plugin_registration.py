"""The plugin library registers its creators when it is loaded into a process that holds TensorRT (what Triton's
`--backend-config=tensorrt,plugins=LIB` and LD_PRELOAD need), once, and hands the registration back to
IPluginRegistry::loadLibrary (which fails on creators registered already)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from test_plugin_library import _harness_module

from gldfn_model.ops.contract import load_contract
from gldfn_runtime.plugin.build import find_tensorrt_headers, header_version

CONTRACT = load_contract()
CREATOR = f"{CONTRACT.name}/{CONTRACT.plugin_version}/{CONTRACT.plugin_namespace}"


def test_loading_registers_the_creator_once_and_get_creators_hands_it_back(plugin_library, tmp_path):
    headers = find_tensorrt_headers()
    major = header_version(headers)[0]
    if major < 11:
        pytest.skip(f"the stand-in registry implements TensorRT 11's IPluginRegistry; the headers found are {major}.x")
    harness = _harness_module()
    registry = harness.compile_registry_harness(tmp_path, headers, major)
    copy = shutil.copy(plugin_library, tmp_path / "embedded-copy.so")  # a second instance, as an embedded library is
    result = subprocess.run([sys.executable, str(harness.__file__), "--registration", str(registry), str(plugin_library),
                             str(copy)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["before"] == "calls=0;"
    assert report["loaded"] == f"calls=1;{CREATOR};"  # registered by dlopen alone
    assert report["copy_loaded"] == f"calls=1;{CREATOR};"  # the copy saw it there and did not try again
    assert report["get_creators"] == "calls=1;"  # handed back for the caller of getCreators to register


REAL_TENSORRT = """
import ctypes, sys
from gldfn_runtime.tensorrt.compat import load_tensorrt
from gldfn_runtime.plugin.library import load_plugin_library
trt = load_tensorrt().module
registry = trt.get_plugin_registry()
name, version, namespace = sys.argv[2:5]
print("before", registry.get_creator(name, version, namespace) is not None)
ctypes.CDLL(sys.argv[1])  # dlopen only, as Triton's TensorRT backend does
print("dlopen", registry.get_creator(name, version, namespace) is not None)
load_plugin_library(sys.argv[1])  # IPluginRegistry::loadLibrary after it must still succeed
print("load_library", registry.get_creator(name, version, namespace) is not None)
"""


def test_dlopen_registers_into_the_loaded_tensorrt_and_load_library_still_works(plugin_library):
    try:
        import tensorrt_rtx  # noqa: F401
    except ImportError:
        try:
            import tensorrt  # noqa: F401
        except ImportError:
            pytest.skip("neither tensorrt nor tensorrt_rtx is installed (pip install 'gldfn-trt[rtx]')")
    result = subprocess.run([sys.executable, "-c", REAL_TENSORRT, str(plugin_library), CONTRACT.name,
                             CONTRACT.plugin_version, CONTRACT.plugin_namespace],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == ["before", "False", "dlopen", "True", "load_library", "True"]
