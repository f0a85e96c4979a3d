"""``gldfn-trt triton``: a complete Triton model repository for an exported model.

    REPO/NAME/config.pbtxt          the core model: an LR batch in, the SR batch out
    REPO/NAME/1/model.onnx|py       cpu: the ONNX file run by the project's ONNX Runtime runner (Python backend)
    REPO/NAME/1/model.plan          gpu: a TensorRT engine (tensorrt_plan), built through the project's one build path
    REPO/NAME_image/config.pbtxt    the image model: a whole uint8 image in, tiled on the server (BLS), upscaled out
    REPO/NAME_image/1/model.py
    REPO/plugins/                   gpu: the plugin library, registered by Triton's TensorRT backend (plugins=)
    REPO/serve.sh                   the exact server command
    REPO/build_plan.sh              gpu, where this machine has no full TensorRT: builds the plan where it will be served

Triton's TensorRT backend runs engines of full TensorRT only, of the server's own TensorRT version; TensorRT-RTX
engines cannot be served by it. Where full TensorRT is not installed, the gpu repository is written without the
plan, with ``build_plan.sh`` holding the ``gldfn-trt build`` command to run inside the serving container. The
repository is written under a temporary name beside ``REPO`` and renamed when complete.
"""
from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gldfn_model.common import atomic
from gldfn_model.common.errors import GldfnError
from gldfn_model.common.temps import TEMP_SUFFIX, sweep_once, temp_file_prefix
from gldfn_runtime.engine.build import DEFAULT_PROFILE, BuildOptions, EngineBuildError, OnnxModelInfo, read_onnx_info
from gldfn_runtime.engine.sidecar import EngineSidecar, Size, read_sidecar, sidecar_path, verify_engine_file
from gldfn_runtime.runners import triton_contract as contract
from gldfn_runtime.serve.model_config import TensorSpec, build_config, config_text
from gldfn_runtime.upscale.tiling import DEFAULT_OVERLAP

TARGETS = ("cpu", "gpu")
IMAGE_SUFFIX = "_image"
MODEL_PY = '''"""Triton Python model written by `gldfn-trt triton`; the class is gldfn_runtime's (install gldfn-trt in the
server's Python: `pip install 'gldfn-trt[cpu]'`)."""
from gldfn_runtime.serve.python_models import {cls} as TritonPythonModel  # noqa: F401
'''
_ONNX_TYPES = {1: "TYPE_FP32", 10: "TYPE_FP16"}  # onnx.TensorProto FLOAT, FLOAT16
_ENGINE_TYPES = {"float": "TYPE_FP32", "half": "TYPE_FP16"}  # sidecar dtype names (TensorRT's DataType)


class RepositoryError(GldfnError, ValueError):
    """The repository cannot be written as asked; the message says why and what to do."""


@dataclass(frozen=True)
class RepositoryOptions:
    """``instances`` of the core model; ONNX Runtime ``threads`` per cpu instance (default: the serving machine's
    usable CPUs shared out among the instances);
    the image model's ``tile`` / ``overlap``; gpu: the engine's ``precision``, profile, ``plugin`` library,
    ``use_plugin`` False for the function bodies, ``embed_plugin`` to serialize it into the plan."""

    target: str = "cpu"
    instances: int = 1
    name: str = "gldfn"
    threads: int | None = None
    tile: int | None = None
    overlap: int = DEFAULT_OVERLAP
    precision: str | None = None
    min_size: Size = DEFAULT_PROFILE["min"]
    opt_size: Size = DEFAULT_PROFILE["opt"]
    max_size: Size = DEFAULT_PROFILE["max"]
    plugin: str | os.PathLike[str] | None = None
    use_plugin: bool = True
    embed_plugin: bool = False
    report: Callable[[str], None] | None = None


@dataclass
class RepositoryResult:
    folder: Path
    models: list[str]
    serve_command: str
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Core:
    """The core model as the config states it."""

    input: TensorSpec
    output: TensorSpec
    scale: int
    config_name: str | None
    min_size: Size | None
    max_size: Size | None


def _check_name(name: str) -> None:
    if not name or name != Path(name).name or name.startswith(".") or not name.replace("-", "_").isidentifier():
        raise RepositoryError(f"--name {name!r}: use letters, digits, _ and - (it names a folder and a model)")


def _side(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else -1


def _spec(name: str, data_type: str, shape: list[object]) -> TensorSpec:
    return TensorSpec(name, data_type, tuple(_side(d) for d in shape))


def _parameters(core: _Core, **extra: str) -> dict[str, str]:
    parameters = {contract.SCALE: str(core.scale), **({contract.CONFIG: core.config_name} if core.config_name else {})}
    if core.min_size is not None:
        parameters[contract.MIN_SIZE] = contract.format_size(core.min_size)
    if core.max_size is not None:
        parameters[contract.MAX_SIZE] = contract.format_size(core.max_size)
    return {**parameters, **extra}


def _onnx_input_type(info: OnnxModelInfo) -> str:
    import onnx

    model = onnx.load(str(info.path), load_external_data=False)
    elem_type = model.graph.input[0].type.tensor_type.elem_type
    if elem_type not in _ONNX_TYPES:
        raise RepositoryError(f"{info.path}: input {info.input_name!r} has ONNX type {elem_type}; float32 or float16 is needed")
    return _ONNX_TYPES[elem_type]


def _copy_onnx(info: OnnxModelInfo, folder: Path) -> None:
    """The ONNX file as ``folder/model.onnx``, with its external data files at the locations its tensors name."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(info.path, folder / "model.onnx")
    for location in info.data_sha256:
        target = folder / location
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(info.path.parent / location, target)


def _read_onnx(model: Path) -> OnnxModelInfo:
    try:
        info = read_onnx_info(model)
    except EngineBuildError as error:
        raise RepositoryError(str(error)) from None
    if info.scale is None:
        raise RepositoryError(f"{model} carries no gldfn.scale metadata; export it with gldfn-export")
    return info


def _profile_sides(min_size: Size, max_size: Size) -> tuple[int, int]:
    """The H and W dims of an engine profile: fixed where min equals max, else -1."""
    return tuple(low if low == high else -1 for low, high in zip(min_size, max_size))  # type: ignore[return-value]


# --- cpu ---------------------------------------------------------------------------------------------------------

def _write_cpu_core(model: Path, folder: Path, options: RepositoryOptions) -> _Core:
    info = _read_onnx(model)
    fixed_hw = info.input_shape[2:] if all(isinstance(d, int) for d in info.input_shape[2:]) else None
    core = _Core(_spec(info.input_name, "TYPE_FP32", info.input_shape), _spec(info.output_name, "TYPE_FP32", info.output_shape),
                 info.scale, info.config_name, tuple(fixed_hw) if fixed_hw else None, tuple(fixed_hw) if fixed_hw else None)
    version = folder / options.name / "1"
    _copy_onnx(info, version)
    (version / "model.py").write_text(MODEL_PY.format(cls="OnnxRuntimeModel"))
    threads = {contract.THREADS: str(options.threads)} if options.threads else {}  # else shared out where served
    config = build_config(options.name, inputs=[core.input], outputs=[core.output], instances=options.instances,
                          kind="KIND_CPU", backend="python",
                          parameters=_parameters(core, **{contract.ONNX_FILE: "model.onnx", **threads}))
    (folder / options.name / "config.pbtxt").write_text(config_text(config))
    return core


# --- gpu ---------------------------------------------------------------------------------------------------------

def _full_tensorrt_available() -> bool:
    from gldfn_runtime.tensorrt.backend import BackendError, select_flavour

    try:
        select_flavour("tensorrt")
    except BackendError:
        return False
    return True


def _engine_core(sidecar: EngineSidecar) -> _Core:
    inputs, outputs = sidecar.inputs[0], sidecar.outputs[0]
    for tensor in (inputs, outputs):
        if tensor["dtype"] not in _ENGINE_TYPES:
            raise RepositoryError(f"engine tensor {tensor['name']!r} is {tensor['dtype']}; float or half is needed")
    height, width = _profile_sides(sidecar.min_size, sidecar.max_size)
    batch = sidecar.profile["batch"]
    return _Core(TensorSpec(inputs["name"], _ENGINE_TYPES[inputs["dtype"]], (batch, 3, height, width)),
                 TensorSpec(outputs["name"], _ENGINE_TYPES[outputs["dtype"]],
                            (batch, 3, *(-1 if s < 0 else s * sidecar.scale for s in (height, width)))),
                 sidecar.scale, sidecar.onnx.get("config"), sidecar.min_size, sidecar.max_size)


def _copy_plugin(library: Path, folder: Path) -> Path:
    target = folder / "plugins" / library.name
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(library, target)
    return target


def _server_flags(plugin_file: str | None, embedded: bool) -> list[str]:
    flags = []
    if plugin_file is not None and not embedded:
        flags.append(f"--backend-config=tensorrt,plugins=$REPO/plugins/{plugin_file}")
    if embedded:
        flags.append("--backend-config=tensorrt,version-compatible=true")
    return flags


def _build_plan(info: OnnxModelInfo, version: Path, options: RepositoryOptions) -> EngineSidecar:
    from gldfn_runtime.engine.build import build_engine

    build = BuildOptions(precision=options.precision, min_size=options.min_size, opt_size=options.opt_size,
                         max_size=options.max_size, plugin=options.plugin, use_plugin=options.use_plugin,
                         embed_plugin=options.embed_plugin, backend="tensorrt", report=options.report)
    try:
        return build_engine(info.path, version / "model.plan", build).sidecar
    except EngineBuildError as error:
        raise RepositoryError(str(error)) from None


def _write_gpu_core(model: Path, folder: Path, options: RepositoryOptions, notes: list[str],
                    repository_name: str) -> tuple[_Core, list[str]]:
    """The tensorrt_plan model; returns it and the server's TensorRT flags."""
    from gldfn_runtime.plugin.library import PluginLibraryError, find_engine_plugin, find_plugin_library
    from gldfn_runtime.runners.open import is_onnx_path

    model_dir = folder / options.name
    version = model_dir / "1"
    version.mkdir(parents=True)
    plugin_file, embedded, custom_nodes = None, False, 0
    if not is_onnx_path(model):  # an engine with its sidecar
        sidecar = read_sidecar(model)
        verify_engine_file(model, sidecar)
        if sidecar.tensorrt["flavour"] != "tensorrt":
            raise RepositoryError(f"{model} is a {sidecar.tensorrt['flavour']} engine; Triton's TensorRT backend runs "
                                  "engines of full TensorRT only: pass the ONNX file (the plan is built for TensorRT)")
        shutil.copyfile(model, version / "model.plan")
        shutil.copyfile(sidecar_path(model), sidecar_path(version / "model.plan"))
        core = _engine_core(sidecar)
    elif _full_tensorrt_available():
        sidecar = _build_plan(_read_onnx(model), version, options)
        core = _engine_core(sidecar)
    else:
        sidecar = None
        info = _read_onnx(model)
        custom_nodes = info.custom_nodes
        data_type = _onnx_input_type(info)
        height, width = _profile_sides(options.min_size, options.max_size)
        batch = info.batch
        out_sides = (-1 if s < 0 else s * info.scale for s in (height, width))
        core = _Core(TensorSpec(info.input_name, data_type, (batch, 3, height, width)),
                     TensorSpec(info.output_name, data_type, (batch, 3, *out_sides)),
                     info.scale, info.config_name, options.min_size, options.max_size)
        _copy_onnx(info, model_dir)
    try:
        if sidecar is not None and sidecar.plugin is not None:
            embedded = bool(sidecar.plugin.get("embedded"))
            library = None if embedded else find_engine_plugin(sidecar.plugin, model, options.plugin)
            plugin_file = None if library is None else _copy_plugin(library, folder).name
        elif sidecar is None and options.use_plugin and custom_nodes:
            embedded = options.embed_plugin
            plugin_file = _copy_plugin(find_plugin_library(options.plugin), folder).name
    except PluginLibraryError as error:
        raise RepositoryError(f"{error}; or pass --no-plugin to serve the ONNX function bodies") from None
    if sidecar is None:
        command = ["gldfn-trt", "build", f"$REPO/{options.name}/model.onnx", "--backend", "tensorrt"]
        command += ["--precision", options.precision] if options.precision else []
        for flag, size in (("--min", options.min_size), ("--opt", options.opt_size), ("--max", options.max_size)):
            command += [flag, contract.format_size(size)]
        command += ["--plugin", f"$REPO/plugins/{plugin_file}"] if plugin_file else ["--no-plugin"]
        command += ["--embed-plugin"] if embedded else []
        command += ["-o", f"$REPO/{options.name}/1/model.plan", "--force"]
        _write_script(folder / "build_plan.sh", "Build the TensorRT plan inside the Triton container that serves this "
                      "repository (its TensorRT, its GPU), with gldfn-trt installed there.", command)
        notes.append(f"full TensorRT is not installed here (TensorRT-RTX engines cannot be served by Triton): "
                     f"{options.name}/1/model.plan is not built; run {repository_name}/build_plan.sh where it will be served")
    config = build_config(options.name, inputs=[core.input], outputs=[core.output], instances=options.instances,
                          kind="KIND_GPU", platform="tensorrt_plan", parameters=_parameters(core))
    (model_dir / "config.pbtxt").write_text(config_text(config))
    return core, _server_flags(plugin_file, embedded)


# --- the image model and the scripts ------------------------------------------------------------------------------

def _write_image_model(folder: Path, core: _Core, options: RepositoryOptions) -> str:
    name = options.name + IMAGE_SUFFIX
    version = folder / name / "1"
    version.mkdir(parents=True)
    (version / "model.py").write_text(MODEL_PY.format(cls="TiledImageModel"))
    parameters = _parameters(core, **{
        contract.TILE_MODEL: options.name, contract.TILE_INPUT: core.input.name, contract.TILE_OUTPUT: core.output.name,
        contract.TILE_DTYPE: core.input.data_type, contract.OVERLAP: str(options.overlap),
        contract.CONCURRENT_TILES: str(options.instances), **({contract.TILE: str(options.tile)} if options.tile else {}),
    })
    image = [-1, -1, -1]
    config = build_config(name, inputs=[TensorSpec(contract.IMAGE_INPUT, "TYPE_UINT8", tuple(image))],
                          outputs=[TensorSpec(contract.IMAGE_OUTPUT, "TYPE_UINT8", tuple(image))],
                          instances=options.instances, kind="KIND_CPU", backend="python", parameters=parameters)
    (folder / name / "config.pbtxt").write_text(config_text(config))
    return name


def _shell_word(word: str) -> str:
    """A word for sh, ``$REPO`` left to expand."""
    if "$REPO" in word:
        return '"' + word.replace('"', '\\"') + '"'
    return shlex.quote(word)


def _write_script(path: Path, comment: str, command: list[str]) -> None:
    lines = ["#!/bin/sh", f"# {comment}", "set -eu", 'REPO=$(cd "$(dirname "$0")" && pwd)',
             "exec " + "".join(("" if i == 0 else " \\\n    " if word.startswith("-") else " ") + _shell_word(word)
                               for i, word in enumerate(command)) + ' "$@"', ""]
    path.write_text("\n".join(lines))
    path.chmod(0o755)


def write_repository(model: str | os.PathLike[str], out: str | os.PathLike[str],
                     options: RepositoryOptions = RepositoryOptions()) -> RepositoryResult:
    """Write the repository for ``model`` (an ONNX file; for gpu also an engine of full TensorRT) to ``out``, which
    must not exist yet."""
    model, out = Path(model), Path(out)
    if options.target not in TARGETS:
        raise RepositoryError(f"--target {options.target!r} is not one of {', '.join(TARGETS)}")
    _check_name(options.name)
    if options.instances < 1:
        raise RepositoryError(f"--instances must be at least 1, got {options.instances}")
    if not model.is_file():
        raise RepositoryError(f"{model}: no such file (export one with gldfn-export)")
    if out.exists() and os.path.samefile(out, model):
        raise RepositoryError(f"-o {out} is the MODEL file this command reads; write the repository to a new folder")
    if out.exists() or out.is_symlink():
        raise RepositoryError(f"{out} exists already: write the repository to a new folder (or remove that one)")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise RepositoryError(f"cannot write {out}: folder {parent} does not exist (create it first)")
    notes: list[str] = []
    sweep_once(parent)  # the staging folders of killed runs
    staging = Path(tempfile.mkdtemp(prefix=temp_file_prefix(out), suffix=TEMP_SUFFIX, dir=parent))
    try:
        if options.target == "cpu":
            core = _write_cpu_core(model, staging, options)
            command, comment = ["gldfn-trt", "serve", "$REPO"], (
                "Serve this repository with the tritonserver of nvidia-pytriton (pip install 'gldfn-trt[serve]'); in "
                "NVIDIA's Triton container: tritonserver --model-repository \"$REPO\", gldfn-trt installed there.")
        else:
            core, flags = _write_gpu_core(model, staging, options, notes, out.name)
            command, comment = ["tritonserver", "--model-repository=$REPO", *flags], (
                "Serve this repository in NVIDIA's Triton container whose TensorRT built the plan (docs/serving.md), "
                "with gldfn-trt installed in its Python for the image model.")
        image_model = _write_image_model(staging, core, options)
        _write_script(staging / "serve.sh", comment, command)
        os.chmod(staging, 0o777 & ~_umask())
        atomic.publish(staging, out)  # never onto a folder or file that appeared meanwhile
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return RepositoryResult(out, [options.name, image_model], " ".join(_shell_word(w) for w in command), notes)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
