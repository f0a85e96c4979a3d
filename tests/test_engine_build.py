"""Engines for the tiny GLDFN (random weights) built on the CPU with TensorRT-RTX and the real plugin library:
FP32 and FP16, the sidecar, the cache (hit, ONNX change, --force), failed builds leaving nothing, and the
checks that reject engines built for another TensorRT or GPU, corrupt files and missing plugin libraries."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from gldfn_model.common.atomic import OutputExistsError
from gldfn_model.common.hashing import file_sha256
from gldfn_model.network.complexity import count_complexity
from gldfn_model.network.config import get_config
from gldfn_runtime.engine.build import BuildOptions, EngineBuildError, build_engine
from gldfn_runtime.engine.sidecar import (
    EngineMismatch,
    SidecarError,
    check_compatible,
    read_sidecar,
    sidecar_path,
    verify_engine_file,
)
from gldfn_runtime.plugin.library import LIBRARY_ENV
from gldfn_runtime.tensorrt.compat import TensorRTUnavailable, load_tensorrt

PROFILE = {"min_size": (8, 8), "opt_size": (32, 48), "max_size": (64, 64)}
# The same folder and SM as tests/test_plugin_library.py, so one pytest session compiles the library once.


def _rtx():
    try:
        return load_tensorrt("tensorrt_rtx")
    except TensorRTUnavailable as error:
        pytest.skip(f"TensorRT-RTX is not installed (pip install 'gldfn-trt[rtx]'): {error}")


@pytest.fixture
def rtx():
    return _rtx()


def _options(plugin: Path, **overrides) -> BuildOptions:
    return BuildOptions(plugin=plugin, backend="tensorrt-rtx", **{**PROFILE, **overrides})


def test_fp32_engine_builds_with_the_plugin_and_a_complete_sidecar(rtx, plugin_library, tiny_onnx, tmp_path):
    engine = tmp_path / "tiny_fp32.engine"
    result = build_engine(tiny_onnx["fp32"], engine, _options(plugin_library), cache_dir=tmp_path / "cache")
    assert not result.cache_hit and engine.is_file() and sidecar_path(engine).is_file()
    sidecar = read_sidecar(engine)
    verify_engine_file(engine, sidecar)
    assert sidecar.engine_sha256 == file_sha256(engine) and sidecar.engine_bytes == engine.stat().st_size
    assert sidecar.onnx["sha256"] == file_sha256(tiny_onnx["fp32"])
    assert sidecar.onnx["scale"] == 4 and sidecar.onnx["config"] == "tiny" and sidecar.onnx["precision"] == "fp32"
    assert sidecar.plugin == {"path": str(plugin_library), "sha256": file_sha256(plugin_library), "embedded": False}
    assert sidecar.tensorrt == {"flavour": "tensorrt-rtx", "version": rtx.version}
    assert sidecar.precision == "fp32"
    assert sidecar.profile == {"input": "lr", "batch": 1, "min": [8, 8], "opt": [32, 48], "max": [64, 64]}
    assert sidecar.target == {"compute_capabilities": ["SM80", "SM86", "SM89", "SM120", "SM121"]}
    assert sidecar.build_seconds > 0 and sidecar.built_at.endswith("+00:00")
    assert sidecar.inputs == [{"name": "lr", "shape": [1, 3, -1, -1], "dtype": "float"}]
    assert sidecar.outputs[0]["name"] == "sr" and sidecar.outputs[0]["dtype"] == "float"
    # One PLUGIN_V3 layer per local dynamic filter (tiny: 2 groups x 2 modules), everything else TensorRT's own.
    config = get_config("tiny")
    assert len(sidecar.plugin_layers) == config.num_modules == 4
    assert {layer["type"] for layer in sidecar.layers if layer["plugin"]} == {"PLUGIN_V3"}
    assert len(sidecar.layers) > 50
    assert sidecar.macs_at_opt == count_complexity(config, 32, 48).macs
    assert f"-o {engine}" in sidecar.rebuild_command and "--plugin" in sidecar.rebuild_command
    assert json.loads(sidecar_path(engine).read_text())["cache_key"] == sidecar.cache_key


def test_fp16_engine_builds_from_the_fp16_export(rtx, plugin_library, tiny_onnx, tmp_path):
    engine = tmp_path / "tiny_fp16.engine"
    result = build_engine(tiny_onnx["fp16"], engine, _options(plugin_library), cache_dir=tmp_path / "cache")
    assert result.sidecar.precision == "fp16" and result.sidecar.onnx["precision"] == "fp16"
    assert len(result.sidecar.plugin_layers) == 4
    # Float32 I/O: the exporter keeps the model's interface in float32.
    assert result.sidecar.inputs[0]["dtype"] == result.sidecar.outputs[0]["dtype"] == "float"
    assert engine.stat().st_size == result.sidecar.engine_bytes


def test_fp16_from_an_fp32_export_runs_the_projects_fp16_pass(rtx, plugin_library, tiny_onnx, tmp_path):
    """The same network as the FP16 export (layer for layer), built from the FP32 file; the file is untouched."""
    before = file_sha256(tiny_onnx["fp32"])
    converted = build_engine(tiny_onnx["fp32"], tmp_path / "c.engine", _options(plugin_library, precision="fp16"),
                             cache_dir=tmp_path / "cache")
    exported = build_engine(tiny_onnx["fp16"], tmp_path / "e.engine", _options(plugin_library), cache_dir=tmp_path / "cache")
    assert converted.sidecar.precision == "fp16" and converted.sidecar.onnx["precision"] == "fp32"
    assert converted.sidecar.onnx["converted_to"].startswith("fp16")
    assert [(layer["type"], layer["plugin"]) for layer in converted.sidecar.layers] == [
        (layer["type"], layer["plugin"]) for layer in exported.sidecar.layers]
    assert sum(layer["type"] == "CAST" for layer in converted.sidecar.layers) > 0
    assert converted.sidecar.inputs[0]["dtype"] == converted.sidecar.outputs[0]["dtype"] == "float"
    assert file_sha256(tiny_onnx["fp32"]) == before
    # A different request than FP32 from the same file: its own cache entry.
    assert converted.sidecar.cache_key != build_engine(
        tiny_onnx["fp32"], tmp_path / "f.engine", _options(plugin_library), cache_dir=tmp_path / "cache").sidecar.cache_key


def test_fp16_from_an_fp32_file_without_region_marks_names_the_export_command(rtx, plugin_library, tiny_onnx, tmp_path):
    model = onnx.load(str(tiny_onnx["fp32"]))
    for node in model.graph.node:
        del node.metadata_props[:]  # what gldfn-export wrote before it marked the float32 regions
    old = tmp_path / "old_fp32.onnx"
    onnx.save(model, str(old))
    with pytest.raises(EngineBuildError, match=r"gldfn-export --precision fp16"):
        build_engine(old, tmp_path / "x.engine", _options(plugin_library, precision="fp16"), cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old_fp32.onnx"]


def test_fp32_from_an_fp16_export_is_refused(rtx, plugin_library, tiny_onnx, tmp_path):
    with pytest.raises(EngineBuildError, match=r"gldfn-export --precision fp32"):
        build_engine(tiny_onnx["fp16"], tmp_path / "x.engine", _options(plugin_library, precision="fp32"), cache_dir=tmp_path / "cache")
    assert list(tmp_path.iterdir()) == []


def test_cached_engine_builds_into_the_cache_only_and_reuses_it(rtx, plugin_library, tiny_onnx, tmp_path):
    """What run/bench MODEL.onnx use: the engine lives in the cache; nothing is written beside the ONNX file."""
    from gldfn_runtime.engine.build import cached_engine

    beside = sorted(tiny_onnx["fp32"].parent.iterdir())
    first = cached_engine(tiny_onnx["fp32"], _options(plugin_library, compute_capabilities=("SM86",)), cache_dir=tmp_path)
    assert not first.cache_hit and first.engine_path.is_relative_to(tmp_path) and first.engine_path.is_file()
    verify_engine_file(first.engine_path, read_sidecar(first.engine_path))
    assert first.sidecar.target == {"compute_capabilities": ["SM86"]}
    again = cached_engine(tiny_onnx["fp32"], _options(plugin_library, compute_capabilities=("SM86",)), cache_dir=tmp_path)
    assert again.cache_hit and again.engine_path == first.engine_path and again.sidecar.built_at == first.sidecar.built_at
    assert sorted(tiny_onnx["fp32"].parent.iterdir()) == beside
    # TensorRT-RTX times no tactics: no timing cache beside its engines (full TensorRT keeps one in CACHE/timing)
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.engine_path.parent.name]


def test_a_cache_hit_names_the_onnx_file_it_was_asked_for(rtx, plugin_library, tiny_onnx, tmp_path):
    """The cache key is the file's content: a copy at another path hits the first path's engine, and the sidecar
    (beside the engine, and in the cache for cached_engine) then names the copy, so inspect and the no-GPU hint
    point at the file the user has."""
    from gldfn_runtime.engine.build import cached_engine

    first_onnx, copy = tmp_path / "a" / "model.onnx", tmp_path / "b" / "copy.onnx"
    for path in (first_onnx, copy):
        path.parent.mkdir()
        shutil.copyfile(tiny_onnx["fp32"], path)
    cache, options = tmp_path / "cache", _options(plugin_library, compute_capabilities=("SM86",))
    first = build_engine(first_onnx, tmp_path / "a.engine", options, cache_dir=cache)
    assert first.sidecar.onnx["path"] == str(first_onnx.resolve())

    hit = build_engine(copy, tmp_path / "b.engine", options, cache_dir=cache)
    assert hit.cache_hit and hit.sidecar.built_at == first.sidecar.built_at
    assert read_sidecar(tmp_path / "b.engine").onnx["path"] == str(copy.resolve())
    assert str(copy.resolve()) in read_sidecar(tmp_path / "b.engine").rebuild_command
    # The same output again, now asked for with the first file: rewritten back, the engine untouched.
    stamp = (tmp_path / "b.engine").stat().st_mtime_ns
    back = build_engine(first_onnx, tmp_path / "b.engine", options, cache_dir=cache)
    assert back.cache_hit and read_sidecar(tmp_path / "b.engine").onnx["path"] == str(first_onnx.resolve())
    assert (tmp_path / "b.engine").stat().st_mtime_ns == stamp

    cached = cached_engine(copy, options, cache_dir=cache)
    assert cached.cache_hit and cached.sidecar.onnx["path"] == str(copy.resolve())
    assert read_sidecar(cached.engine_path).onnx["path"] == str(copy.resolve())
    verify_engine_file(cached.engine_path, read_sidecar(cached.engine_path))


def test_second_build_is_a_cache_hit_and_force_rebuilds(rtx, plugin_library, tiny_onnx, tmp_path):
    cache = tmp_path / "cache"
    engine = tmp_path / "a.engine"
    first = build_engine(tiny_onnx["fp32"], engine, _options(plugin_library), cache_dir=cache)
    stamp = (engine.stat().st_mtime_ns, engine.stat().st_ino, first.cache_path.stat().st_mtime_ns)

    again = build_engine(tiny_onnx["fp32"], engine, _options(plugin_library), cache_dir=cache)
    assert again.cache_hit and again.sidecar.built_at == first.sidecar.built_at
    assert (engine.stat().st_mtime_ns, engine.stat().st_ino, first.cache_path.stat().st_mtime_ns) == stamp

    # Another output path: copied from the cache entry, not built (same build time and bytes).
    other = build_engine(tiny_onnx["fp32"], tmp_path / "b.engine", _options(plugin_library), cache_dir=cache)
    assert other.cache_hit and other.sidecar.built_at == first.sidecar.built_at
    assert file_sha256(tmp_path / "b.engine") == first.sidecar.engine_sha256
    assert "-o " + str(tmp_path / "b.engine") in other.sidecar.rebuild_command
    assert first.cache_path.stat().st_mtime_ns == stamp[2]

    forced = build_engine(tiny_onnx["fp32"], engine, _options(plugin_library), cache_dir=cache, force=True)
    assert not forced.cache_hit
    assert first.cache_path.stat().st_mtime_ns != stamp[2] and engine.stat().st_ino != stamp[1]


def test_changed_onnx_or_options_miss_the_cache(rtx, plugin_library, tiny_onnx, tmp_path):
    cache = tmp_path / "cache"
    model_path = tmp_path / "model.onnx"
    shutil.copyfile(tiny_onnx["fp32"], model_path)
    first = build_engine(model_path, tmp_path / "m.engine", _options(plugin_library), cache_dir=cache)

    model = onnx.load(str(model_path))
    model.doc_string = "edited"
    onnx.save(model, str(model_path))
    before = (tmp_path / "m.engine").read_bytes()
    with pytest.raises(OutputExistsError, match="m.engine exists already.*--overwrite"):  # another engine: kept
        build_engine(model_path, tmp_path / "m.engine", _options(plugin_library), cache_dir=cache)
    assert (tmp_path / "m.engine").read_bytes() == before
    edited = build_engine(model_path, tmp_path / "m.engine", _options(plugin_library), cache_dir=cache, overwrite=True)
    assert not edited.cache_hit and edited.sidecar.cache_key != first.sidecar.cache_key
    assert edited.sidecar.onnx["sha256"] == file_sha256(model_path) != first.sidecar.onnx["sha256"]

    reprofiled = build_engine(model_path, tmp_path / "m.engine", _options(plugin_library, max_size=(96, 96)), cache_dir=cache,
                              overwrite=True)
    assert not reprofiled.cache_hit and reprofiled.sidecar.profile["max"] == [96, 96]
    assert len(list(cache.iterdir())) == 3


def test_failed_tensorrt_build_leaves_no_engine(rtx, plugin_library, tmp_path):
    """A plugin node whose spatial filter has 6 taps where kernel_size 3 needs 9: the plugin rejects it at
    build time, TensorRT returns no plan, and neither the engine, its sidecar nor a cache entry exists."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from gldfn_model.ops.contract import load_contract

    nodes = [
        helper.make_node("Concat", ["lr", "lr"], ["spatial"], axis=1),
        helper.make_node("GLDFN_LocalDynamicFilter", ["lr", "spatial", "channel"], ["sr"], domain="gldfn",
                         kernel_size=3, dilation=1, **load_contract().plugin_lookup_attributes),
    ]
    graph = helper.make_graph(
        nodes, "mismatched", [helper.make_tensor_value_info("lr", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("sr", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.ones((1, 3, 9), np.float32), "channel")],
    )
    bad = tmp_path / "bad.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid("gldfn", 1)])
    helper.set_model_props(model, {"gldfn.scale": "1"})  # a model of the project's as far as its metadata goes
    onnx.save(model, str(bad))
    engine = tmp_path / "bad.engine"
    with pytest.raises(EngineBuildError, match=r"could not build .*spatial taps vs kernel_size"):
        build_engine(bad, engine, _options(plugin_library), cache_dir=tmp_path / "cache")
    assert not engine.exists() and not sidecar_path(engine).exists()
    assert not any((tmp_path / "cache").rglob("*.engine*")) if (tmp_path / "cache").exists() else True
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["bad.onnx"]


@pytest.mark.parametrize("content, message", [(b"", "is empty"), (b"not a protobuf at all \xff\xfe", "not a readable ONNX file")])
def test_corrupt_onnx_files_are_refused_clearly(rtx, plugin_library, tmp_path, content, message):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(content)
    with pytest.raises(EngineBuildError, match=message):
        build_engine(bad, tmp_path / "model.engine", _options(plugin_library), cache_dir=tmp_path / "cache")
    assert not (tmp_path / "model.engine").exists()


def _external_data_model(source: Path, folder: Path, location: str | None = None) -> Path:
    """``source`` saved into ``folder`` with its initializers in ``model.onnx.data``; ``location`` then rewrites
    the name the tensors give for that file."""
    folder.mkdir()
    path = folder / "model.onnx"
    onnx.save_model(onnx.load(str(source)), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="model.onnx.data", size_threshold=0)
    if location is not None:
        model = onnx.load(str(path), load_external_data=False)
        for tensor in model.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        onnx.save_model(model, str(path))
    return path


@pytest.mark.parametrize("how", ["link", "dotdot", "absolute"])
def test_external_data_outside_the_model_folder_is_refused(rtx, plugin_library, tiny_onnx, tmp_path, how):
    """onnx and ONNX Runtime refuse data reached through a link (or a name) leading out of the model's folder; the
    build does too, before TensorRT's parser copies that file into the engine."""
    outside = tmp_path / "elsewhere.bin"
    location = {"link": None, "dotdot": "../elsewhere.bin", "absolute": str(outside)}[how]
    model = _external_data_model(tiny_onnx["fp32"], tmp_path / "model", location)
    data = model.with_name("model.onnx.data")
    data.rename(outside)
    if how == "link":
        data.symlink_to(outside)
    engine = tmp_path / "model" / "x.engine"
    with pytest.raises(EngineBuildError, match=r"keeps its data in .*, which resolves to .*elsewhere\.bin, outside"):
        build_engine(model, engine, _options(plugin_library), cache_dir=tmp_path / "cache")
    assert not engine.exists()


def test_external_data_in_the_model_folder_is_accepted(tiny_onnx, tmp_path):
    from gldfn_runtime.engine.build import read_onnx_info

    model = _external_data_model(tiny_onnx["fp32"], tmp_path / "model")
    assert read_onnx_info(model).custom_nodes == 4
    model.with_name("model.onnx.data").unlink()
    with pytest.raises(EngineBuildError, match=r"keeps its data in 'model.onnx.data', which is not a file"):
        read_onnx_info(model)


def test_changed_external_data_is_a_new_engine_not_a_cache_hit(rtx, plugin_library, tiny_onnx, tmp_path):
    """The weights live in the data file: changing it (the .onnx file unchanged) must not reuse the old engine."""
    from gldfn_runtime.engine.build import cached_engine

    model = _external_data_model(tiny_onnx["fp32"], tmp_path / "model")
    options = _options(plugin_library, compute_capabilities=("SM86",))
    first = cached_engine(model, options, cache_dir=tmp_path / "cache")
    data = model.with_name("model.onnx.data")
    assert first.sidecar.onnx["external_data_sha256"] == {"model.onnx.data": file_sha256(data)}
    before = file_sha256(model)
    raw = bytearray(data.read_bytes())
    raw[:4] = bytes(4)  # the first weight becomes 0.0
    data.write_bytes(bytes(raw))
    second = cached_engine(model, options, cache_dir=tmp_path / "cache")
    assert file_sha256(model) == before
    assert not second.cache_hit and second.sidecar.cache_key != first.sidecar.cache_key


def test_missing_plugin_library_names_the_fix(rtx, tiny_onnx, tmp_path):
    missing = tmp_path / "nowhere" / "libgldfn_trt_plugins.so"
    with pytest.raises(EngineBuildError, match=r"plugin library not found at .*nowhere.*gldfn-trt plugin build.*--no-plugin"):
        build_engine(tiny_onnx["fp32"], tmp_path / "x.engine", _options(missing), cache_dir=tmp_path / "cache")


def test_no_plugin_builds_the_function_bodies(rtx, tiny_onnx, tmp_path):
    """In a fresh process (the CLI): once a plugin library is registered, TensorRT-RTX's parser maps the nodes
    to it whatever the override flag says, so in-process the request is refused instead of silently ignored."""
    engine = tmp_path / "x.engine"
    command = [sys.executable, "-c", "from gldfn_runtime.cli.main import main; main()", "build", str(tiny_onnx["fp32"]), "--no-plugin",
               "--backend", "tensorrt-rtx", "--min", "8x8", "--opt", "32x48", "--max", "64x64", "-o", str(engine), "--cache-dir", str(tmp_path / "c")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    sidecar = read_sidecar(engine)
    assert sidecar.plugin is None and sidecar.plugin_layers == [] and len(sidecar.layers) > 400
    assert "--no-plugin" in sidecar.rebuild_command


def test_no_plugin_is_refused_where_the_plugin_is_already_loaded(rtx, plugin_library, tiny_onnx, tmp_path):
    from gldfn_runtime.plugin.library import load_plugin_library

    load_plugin_library(plugin_library)
    with pytest.raises(EngineBuildError, match=r"already loaded in this process.*fresh process"):
        build_engine(tiny_onnx["fp32"], tmp_path / "x.engine", BuildOptions(use_plugin=False, backend="tensorrt-rtx", **PROFILE),
                     cache_dir=tmp_path / "cache")
    assert not (tmp_path / "x.engine").exists()


def test_embedded_plugin_and_compute_capabilities_are_recorded(rtx, plugin_library, tiny_onnx, tmp_path):
    plain = build_engine(tiny_onnx["fp32"], tmp_path / "plain.engine", _options(plugin_library, compute_capabilities=("86",)), cache_dir=tmp_path / "c")
    embedded = build_engine(tiny_onnx["fp32"], tmp_path / "emb.engine", _options(plugin_library, compute_capabilities=("8.6",), embed_plugin=True),
                            cache_dir=tmp_path / "c")
    assert plain.sidecar.target == embedded.sidecar.target == {"compute_capabilities": ["SM86"]}
    assert embedded.sidecar.plugin["embedded"] and not plain.sidecar.plugin["embedded"]
    assert plain.sidecar.cache_key != embedded.sidecar.cache_key
    # The plugin library's bytes travel inside the plan.
    assert embedded.sidecar.engine_bytes > plain.sidecar.engine_bytes + plugin_library.stat().st_size // 2
    assert "--embed-plugin" in embedded.sidecar.rebuild_command and "--compute-capability SM86" in embedded.sidecar.rebuild_command


def test_unsupported_compute_capability_and_bad_profiles_are_refused(rtx, plugin_library, tiny_onnx, tmp_path):
    with pytest.raises(EngineBuildError, match=r"'90' is not one .* can target.*SM86"):
        build_engine(tiny_onnx["fp32"], tmp_path / "x.engine", _options(plugin_library, compute_capabilities=("90",)), cache_dir=tmp_path)
    with pytest.raises(EngineBuildError, match=r"min <= opt <= max"):
        build_engine(tiny_onnx["fp32"], tmp_path / "x.engine", _options(plugin_library, min_size=(80, 8)), cache_dir=tmp_path)
    assert not (tmp_path / "x.engine").exists()


# --- engines that cannot run here -------------------------------------------------------------------------

@pytest.fixture
def built_engine(rtx, plugin_library, tiny_onnx, tmp_path) -> Path:
    engine = tmp_path / "sm86.engine"
    build_engine(tiny_onnx["fp32"], engine, _options(plugin_library, compute_capabilities=("SM86",)), cache_dir=tmp_path / "cache")
    return engine


def test_engine_for_another_gpu_or_tensorrt_is_rejected_with_the_rebuild_command(built_engine, rtx):
    sidecar = read_sidecar(built_engine)
    check_compatible(sidecar, built_engine, "tensorrt-rtx", rtx.version, "NVIDIA GeForce RTX 3090", "SM86")  # its target: fine
    with pytest.raises(EngineMismatch, match=r"targets compute capabilities SM86; this GPU \(NVIDIA H100\) is SM90.*Rebuild it: gldfn-trt build"):
        check_compatible(sidecar, built_engine, "tensorrt-rtx", rtx.version, "NVIDIA H100", "SM90")
    with pytest.raises(EngineMismatch, match=r"--compute-capability SM89"):
        check_compatible(sidecar, built_engine, "tensorrt-rtx", rtx.version, "NVIDIA GeForce RTX 4090", "SM89")
    with pytest.raises(EngineMismatch, match=r"built with tensorrt-rtx .* this is 0\.9"):
        check_compatible(sidecar, built_engine, "tensorrt-rtx", "0.9", None, None)
    with pytest.raises(EngineMismatch, match=r"built with tensorrt-rtx, this process uses tensorrt"):
        check_compatible(sidecar, built_engine, "tensorrt", "10.13", None, None)


def test_corrupt_engine_and_sidecar_files_are_caught_before_tensorrt(built_engine):
    from gldfn_runtime.runners.trt_runner import NoGpuError, TensorRTRunner
    from gldfn_runtime.tensorrt.backend import current_gpu

    data = built_engine.read_bytes()
    built_engine.write_bytes(data[: len(data) // 2])
    with pytest.raises(SidecarError, match=r"not the engine its sidecar describes.*corrupt or was replaced.*gldfn-trt build"):
        TensorRTRunner(built_engine)
    sidecar_path(built_engine).write_text("{ not json")
    with pytest.raises(SidecarError, match=r"not valid JSON"):
        TensorRTRunner(built_engine)
    sidecar_path(built_engine).unlink()
    # Without its sidecar an engine is described by the engine itself, which takes a GPU to read (issue 18).
    if current_gpu()[0] is None:
        with pytest.raises(NoGpuError, match=r"without a sidecar is read from the engine itself, on the GPU"):
            TensorRTRunner(built_engine)


def test_tensorrt_rtx_validity_check_reports_a_malformed_engine(rtx):
    """get_engine_validity reads the plan header without a GPU; garbage is reported as malformed."""
    from gldfn_runtime.runners.trt_runner import _rtx_validity_problems
    from gldfn_runtime.tensorrt.backend import select_flavour
    from gldfn_runtime.tensorrt.logger import process_logger

    flavour = select_flavour("tensorrt-rtx")
    runtime = flavour.trt.Runtime(process_logger(flavour.trt))
    usable, reasons = _rtx_validity_problems(flavour, runtime, b"definitely not an engine" * 64)
    assert not usable and "the file is not a well-formed engine" in reasons


def test_runner_without_a_gpu_points_to_the_cpu_commands(built_engine):
    from gldfn_runtime.runners.trt_runner import NoGpuError, TensorRTRunner
    from gldfn_runtime.tensorrt.backend import current_gpu
    from gldfn_runtime.upscale.upscaler import Upscaler

    if current_gpu()[0] is not None:
        pytest.skip("a CUDA GPU is present: this test covers machines without one")
    with pytest.raises(NoGpuError, match=r"need an NVIDIA GPU.*gldfn upscale .*--onnx .*gldfn bench --onnx"):
        TensorRTRunner(built_engine)
    with pytest.raises(NoGpuError):
        Upscaler.from_engine(built_engine)


def test_runner_loads_the_library_it_finds_never_the_one_a_sidecar_names(rtx, plugin_library, tiny_onnx, tmp_path,
                                                                          monkeypatch):
    """On a GPU TensorRT-RTX targets: a sidecar edited to name a crafted library does not get it loaded
    (tests/test_plugin_library.py checks the choice of library without a GPU)."""
    from conftest import build_marker_library

    from gldfn_model.inference.runner import RunnerError
    from gldfn_runtime.runners.trt_runner import TensorRTRunner
    from gldfn_runtime.tensorrt.backend import RTX_DEFAULT_COMPUTE_CAPABILITIES, current_gpu

    gpu, reason = current_gpu()
    if gpu is None or gpu.compute_capability not in RTX_DEFAULT_COMPUTE_CAPABILITIES:
        pytest.skip(f"needs a CUDA GPU that TensorRT-RTX targets ({reason or gpu.compute_capability})")
    engine = tmp_path / "here.engine"
    build_engine(tiny_onnx["fp32"], engine, _options(plugin_library, compute_capabilities=(gpu.compute_capability,)),
                 cache_dir=tmp_path / "cache")
    marker = tmp_path / "ran"
    crafted = build_marker_library(tmp_path, marker)
    data = json.loads(sidecar_path(engine).read_text())
    data["plugin"]["path"] = str(crafted)
    sidecar_path(engine).write_text(json.dumps(data))
    monkeypatch.setenv(LIBRARY_ENV, str(plugin_library))
    TensorRTRunner(engine).close()  # the recorded SHA-256 is still the real library's, found through the variable
    data["plugin"]["sha256"] = file_sha256(crafted)
    sidecar_path(engine).write_text(json.dumps(data))
    with pytest.raises(RunnerError, match=r"is not the one engine .* was built with"):
        TensorRTRunner(engine)
    assert not marker.exists()


def test_int8_engine_builds_from_a_qdq_export(rtx, plugin_library, tiny_onnx, tmp_path):
    """INT8 comes from explicit Q/DQ nodes (gldfn-calibrate), never from a builder flag on an FP32 file."""
    import numpy as np
    from PIL import Image

    images = tmp_path / "lr"
    images.mkdir()
    rng = np.random.default_rng(0)
    for index in range(2):
        smooth = np.kron(rng.random((12, 12, 3)), np.ones((4, 4, 1)))  # blocky, image-like
        Image.fromarray((smooth * 255).astype(np.uint8)).save(images / f"{index}.png")
    int8 = tmp_path / "tiny_int8.onnx"
    command = [sys.executable, "-c", "from gldfn_calibration.cli import main; main()", str(tiny_onnx["fp32"]), "--images", str(images),
               "--lr", "--samples", "2", "--patch", "32", "--method", "minmax", "--no-eval", "--no-engine-check", "-o", str(int8)]
    calibrated = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert calibrated.returncode == 0, calibrated.stdout + calibrated.stderr

    result = build_engine(int8, tmp_path / "int8.engine", _options(plugin_library), cache_dir=tmp_path / "cache")
    types = {layer["type"] for layer in result.sidecar.layers}
    assert result.sidecar.precision == "int8" and {"QUANTIZE", "DEQUANTIZE"} <= types
    assert len(result.sidecar.plugin_layers) == 4
    with pytest.raises(EngineBuildError, match=r"needs a Q/DQ ONNX file from `gldfn-calibrate`"):
        build_engine(tiny_onnx["fp32"], tmp_path / "x.engine", _options(plugin_library, precision="int8"), cache_dir=tmp_path / "cache")
