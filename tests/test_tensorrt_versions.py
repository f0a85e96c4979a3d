"""The versions the GPU path needs, checked without a GPU: TensorRT >= 10.7 (plugin precedence in its ONNX parser),
said in the error; the extras' floors for TensorRT and cuda-python (cuda.bindings and its utils)."""
from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from gldfn_runtime.tensorrt.compat import (
    MIN_TENSORRT,
    TensorRTUnavailable,
    check_tensorrt_version,
    load_tensorrt,
)

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


@pytest.mark.parametrize("version", ["10.0.1", "10.6.0.26", "9.3.0"])
def test_tensorrt_before_10_7_is_refused_with_the_reason(version):
    with pytest.raises(TensorRTUnavailable) as raised:
        check_tensorrt_version(version)
    message = str(raised.value)
    assert f"TensorRT {version} is too old" in message and ">= 10.7" in message
    assert "function body" in message and "plugin" in message


@pytest.mark.parametrize("version", ["10.7.0", "10.16.1.11", "11.1.0"])
def test_tensorrt_from_10_7_is_accepted(version):
    check_tensorrt_version(version)


@pytest.fixture
def old_tensorrt(monkeypatch):
    """An importable ``tensorrt`` that says it is 10.6 (full TensorRT cannot be installed here)."""
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="10.6.0"))
    load_tensorrt.cache_clear()
    yield
    load_tensorrt.cache_clear()


def test_an_old_tensorrt_is_refused_when_named_and_passed_over_by_auto(old_tensorrt, monkeypatch):
    monkeypatch.delenv("GLDFN_TENSORRT", raising=False)
    with pytest.raises(TensorRTUnavailable, match=r"TensorRT 10\.6\.0 is too old: GLDFN needs TensorRT >= 10\.7"):
        load_tensorrt("tensorrt")
    try:
        backend = load_tensorrt()
    except TensorRTUnavailable as error:  # no TensorRT-RTX either: the reason for TensorRT is in the error
        assert "10.6.0 is too old" in str(error)
    else:
        assert backend.is_rtx


def test_extras_floors_exclude_versions_the_gpu_path_cannot_use():
    requirement = pytest.importorskip("packaging.requirements")
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    checked = 0
    for extra, lines in tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"].items():
        for line in lines:
            parsed = requirement.Requirement(line)
            if parsed.name == "cuda-python":
                # 12.6.0 has no cuda.bindings; before 12.9.1 / 13.0 no cuda.bindings.utils.get_cuda_native_handle
                assert not any(parsed.specifier.contains(v) for v in ("12.6.0", "12.6.2.post1", "12.9.0")), extra
                assert any(parsed.specifier.contains(v) for v in ("12.9.1", "13.0.0")), extra
                checked += 1
            if parsed.name in ("tensorrt", "tensorrt-cu12", "tensorrt-cu13"):
                below = f"{MIN_TENSORRT[0]}.{MIN_TENSORRT[1] - 1}.0"
                assert not parsed.specifier.contains(below), extra
                checked += 1
    assert checked >= 6
