"""ONNX Runtime (extras cpu | gpu) and matplotlib (extra plot) are optional: without them the code that needs
them says which extra to install, as a GldfnError (one line from every command line)."""
from __future__ import annotations

import importlib
import sys

import pytest
from typer.testing import CliRunner

from gldfn_model.common.optional import MissingDependencyError, import_onnxruntime, import_optional


def _uninstall(monkeypatch: pytest.MonkeyPatch, package: str, *importers: str) -> None:
    """Make ``package`` (and its submodules) unimportable, and forget the modules that import it so that they
    import again."""
    for name in [n for n in sys.modules if n.startswith(f"{package}.")] + list(importers):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, package, None)  # `import package` now raises ModuleNotFoundError


def test_missing_onnxruntime_names_both_extras(monkeypatch):
    _uninstall(monkeypatch, "onnxruntime", "gldfn_model.inference.onnxruntime_runner")
    with pytest.raises(MissingDependencyError, match=r"gldfn-trt\[cpu\].*gldfn-trt\[gpu\]"):
        import_onnxruntime("onnxruntime.quantization")
    with pytest.raises(MissingDependencyError, match=r"onnxruntime is not installed"):
        importlib.import_module("gldfn_model.inference.onnxruntime_runner")  # imports ONNX Runtime at import time


def test_a_broken_package_is_not_reported_as_a_missing_extra(tmp_path, monkeypatch):
    package = tmp_path / "gldfn_fake_extra"
    package.mkdir()
    (package / "__init__.py").write_text("import gldfn_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as raised:
        import_optional("gldfn_fake_extra", "a feature", "pip install it")
    assert not isinstance(raised.value, MissingDependencyError) and raised.value.name == "gldfn_no_such_dependency"


def test_export_without_onnxruntime_is_one_line(tmp_path, monkeypatch):
    from gldfn_export.cli import app

    _uninstall(monkeypatch, "onnxruntime", "gldfn_export.verify", "gldfn_export.exporter",
               "gldfn_model.inference.onnxruntime_runner")
    result = CliRunner().invoke(app, ["--scale", "4", "--random-weights", "-o", str(tmp_path / "x.onnx")])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: onnxruntime is not installed") and "gldfn-trt[gpu]" in result.stderr
    assert not (tmp_path / "x.onnx").exists()


def test_plot_without_matplotlib_fails_before_measuring(tmp_path, monkeypatch):
    from gldfn_model.cli import app

    _uninstall(monkeypatch, "matplotlib")
    result = CliRunner().invoke(app, ["bench", "--random-weights", "--sizes", "16x16", "--iters", "1",
                                      "--plot", str(tmp_path / "latency.png")])
    assert result.exit_code == 1, result.output
    assert result.stderr == "error: matplotlib is not installed; --plot needs it: pip install 'gldfn-trt[plot]'\n"
    assert "measuring" not in result.output and not (tmp_path / "latency.png").exists()
