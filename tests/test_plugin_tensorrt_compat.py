"""The TensorRT adapter: backend choice and the TensorRT-RTX wheel's missing libtensorrt_rtx.so link."""
from __future__ import annotations

import errno
import importlib.util
import os
from pathlib import Path

import pytest

from gldfn_runtime.tensorrt.compat import (
    RTX_LIBRARY,
    RTX_LIBRARY_SONAME,
    TensorRTUnavailable,
    ensure_rtx_library_link,
    load_tensorrt,
)


def test_link_is_created_next_to_the_versioned_library(tmp_path):
    (tmp_path / RTX_LIBRARY_SONAME).write_bytes(b"\x7fELF")
    link = ensure_rtx_library_link(tmp_path)
    assert link == tmp_path / RTX_LIBRARY and link.is_symlink()
    assert os.readlink(link) == RTX_LIBRARY_SONAME  # relative: survives moving the venv
    assert ensure_rtx_library_link(tmp_path) == link  # idempotent


def test_dangling_link_is_replaced(tmp_path):
    (tmp_path / RTX_LIBRARY_SONAME).write_bytes(b"\x7fELF")
    (tmp_path / RTX_LIBRARY).symlink_to("gone.so")
    assert ensure_rtx_library_link(tmp_path).resolve() == (tmp_path / RTX_LIBRARY_SONAME).resolve()


def test_missing_versioned_library_is_a_clear_error(tmp_path):
    with pytest.raises(TensorRTUnavailable, match="reinstall tensorrt-rtx"):
        ensure_rtx_library_link(tmp_path)


def test_unwritable_folder_says_how_to_fix_it(tmp_path, monkeypatch):
    (tmp_path / RTX_LIBRARY_SONAME).write_bytes(b"\x7fELF")

    def symlink(target, link, *args, **kwargs):  # what a folder the user may not write gives, root or not
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(link))

    monkeypatch.setattr(os, "symlink", symlink)
    with pytest.raises(TensorRTUnavailable, match=r"cannot be created \(\[Errno 13\] Permission denied.*ln -s"):
        ensure_rtx_library_link(tmp_path)
    assert not (tmp_path / RTX_LIBRARY).exists()


def test_unknown_backend_name_is_refused(monkeypatch):
    monkeypatch.setenv("GLDFN_TENSORRT", "tensorflow")
    load_tensorrt.cache_clear()
    try:
        with pytest.raises(TensorRTUnavailable, match="GLDFN_TENSORRT='tensorflow'"):
            load_tensorrt()
    finally:
        load_tensorrt.cache_clear()


def test_loading_tensorrt_rtx_installs_the_parser_link():
    spec = importlib.util.find_spec("tensorrt_rtx_libs")
    if spec is None:
        pytest.skip("the tensorrt-rtx wheel is not installed (pip install tensorrt-rtx)")
    backend = load_tensorrt("tensorrt_rtx")
    assert backend.is_rtx and backend.version.startswith("1.")
    link = Path(next(iter(spec.submodule_search_locations))) / RTX_LIBRARY
    assert link.exists() and link.resolve().name == RTX_LIBRARY_SONAME
