"""Build a TensorRT / TensorRT-RTX engine from an exported GLDFN ONNX file: the project's one parse and build.

The plugin library is loaded into the plugin registry and the ONNX parser's ENABLE_PLUGIN_OVERRIDE flag is
set, so each ``gldfn::GLDFN_LocalDynamicFilter`` node becomes the plugin instead of its model-local function
body. :func:`build_plan` builds in memory (the serialized plan); :func:`build_engine` builds on it through the
cache (``engine_cache``), writing the engine and its sidecar atomically, so a failed build leaves no file behind.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import onnx

from gldfn_model.common.atomic import check_output
from gldfn_model.common.errors import GldfnError
from gldfn_model.common.hashing import file_sha256
from gldfn_model.common.temps import work_folder
from gldfn_model.network.complexity import count_complexity
from gldfn_model.network.config import NAMED_CONFIGS, get_config
from gldfn_model.ops import onnx_format
from gldfn_model.ops.contract import load_contract
from gldfn_model.ops.onnx_fp16 import Fp16ConversionError, convert_to_fp16
from gldfn_runtime.engine.cache import EngineCache, cache_key, copy_engine, matching_engine
from gldfn_runtime.engine.sidecar import EngineSidecar, Size, format_size, rebuild_command, sidecar_path, write_sidecar
from gldfn_runtime.engine.timing_cache import persistent_timing_cache, timing_cache_path
from gldfn_runtime.plugin.library import PluginLibraryError, load_plugin_library
from gldfn_runtime.plugin.resolve import report_to_stderr, resolve_plugin_library
from gldfn_runtime.tensorrt.backend import (
    RTX_DEFAULT_COMPUTE_CAPABILITIES,
    BackendError,
    Flavour,
    check_precision,
    configure_precision,
    current_gpu,
    normalize_compute_capabilities,
    select_flavour,
)
from gldfn_runtime.tensorrt.compat import enable_plugin_override
from gldfn_runtime.tensorrt.logger import process_logger

# The exporter makes H and W dynamic with a minimum of 2.
MIN_LR_SIDE = 2
DEFAULT_PROFILE = {"min": (16, 16), "opt": (180, 270), "max": (512, 512)}
# Profiles made from requested sizes round their max up to this step, so that nearby sizes share one cached engine.
PROFILE_STEP = 64
# The largest max a profile made from images gets (`gldfn-trt run`): an execution context holds the activation memory
# of the max shape on the GPU; larger images are tiled at this size.
LARGEST_IMAGE_PROFILE = (1024, 1024)
# TensorRT's LayerType names of plugin layers (what a custom node becomes when the plugin is used).
PLUGIN_LAYER_TYPES = ("PLUGIN", "PLUGIN_V2", "PLUGIN_V3")


def profile_for_sizes(sizes: Sequence[Size], opt: Size | None = None, cap: Size | None = None) -> dict[str, Size]:
    """An optimization profile that takes every LR size of ``sizes``: the default profile widened to them, its max
    rounded up to a multiple of ``PROFILE_STEP`` and limited to ``cap`` (larger images are tiled), opt ``opt``
    (default: the most frequent of ``sizes``) kept within min and max."""
    if not sizes:
        return dict(DEFAULT_PROFILE)
    low = tuple(max(MIN_LR_SIDE, min([DEFAULT_PROFILE["min"][axis], *(s[axis] for s in sizes)])) for axis in (0, 1))
    high = tuple(max(DEFAULT_PROFILE["max"][axis], -(-max(s[axis] for s in sizes) // PROFILE_STEP) * PROFILE_STEP)
                 for axis in (0, 1))
    if cap is not None:
        high = tuple(min(high[axis], max(cap[axis], DEFAULT_PROFILE["max"][axis])) for axis in (0, 1))
    best = opt if opt is not None else Counter(tuple(s) for s in sizes).most_common(1)[0][0]
    return {"min": low, "opt": tuple(min(max(best[axis], low[axis]), high[axis]) for axis in (0, 1)), "max": high}


class EngineBuildError(GldfnError, RuntimeError):
    """The engine cannot be built as asked; the message says why and what to do."""


@dataclass(frozen=True)
class OnnxModelInfo:
    """What an exported file says about itself, read with the onnx package (no TensorRT needed)."""

    path: Path
    sha256: str
    input_name: str
    input_shape: list[Any]
    output_name: str
    output_shape: list[Any]
    precision: str | None
    scale: int | None
    config_name: str | None
    custom_nodes: int
    metadata: dict[str, str]
    data_sha256: dict[str, str] = field(default_factory=dict)  # external data file (as the tensors name it) -> SHA-256

    @property
    def batch(self) -> int:
        return self.input_shape[0] if isinstance(self.input_shape[0], int) else 1

    def macs_at(self, size: Size) -> int | None:
        """The model's multiply-accumulates at LR ``size`` (named configs only: the file holds no layer widths)."""
        if self.config_name not in NAMED_CONFIGS or self.scale is None:
            return None
        return count_complexity(get_config(self.config_name, self.scale), *size).macs * self.batch


def _dims(value: onnx.ValueInfoProto) -> list[Any]:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in value.type.tensor_type.shape.dim]


def _tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor a graph holds: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        yield from _attribute_tensors(node)


def _attribute_tensors(node: onnx.NodeProto) -> Iterator[onnx.TensorProto]:
    for attribute in node.attribute:
        if attribute.HasField("t"):
            yield attribute.t
        yield from attribute.tensors
        for subgraph in [attribute.g] if attribute.HasField("g") else []:
            yield from _tensors(subgraph)
        for subgraph in attribute.graphs:
            yield from _tensors(subgraph)


def check_external_data(model: onnx.ModelProto, path: Path) -> dict[str, Path]:
    """The files holding the model's external data (by the name the tensors give), each checked to lie in the
    model's folder once links are resolved and to be a regular file, else EngineBuildError: TensorRT's parser would
    read any file it names into the engine."""
    folder = path.parent.resolve()
    files: dict[str, Path] = {}
    functions = (tensor for function in model.functions for node in function.node
                 for tensor in _attribute_tensors(node))
    for tensor in itertools.chain(_tensors(model.graph), functions):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
        target = (path.parent / location).resolve()
        if not location or not target.is_relative_to(folder) or not target.is_file():
            where = "is not a file" if target.is_relative_to(folder) else f"resolves to {target}, outside {folder}"
            raise EngineBuildError(
                f"{path}: tensor {tensor.name!r} keeps its data in {location!r}, which {where}; external data must be "
                "a file in the model's folder (not a link out of it): export the model again or move the data beside it"
            )
        files[location] = target
    return files


def read_onnx_info(path: str | os.PathLike[str]) -> OnnxModelInfo:
    """Read an exported GLDFN file; clear errors for missing, empty and non-ONNX files and for external data
    outside the model's folder."""
    path = Path(path)
    if not path.is_file():
        raise EngineBuildError(f"ONNX file {path} does not exist (export one with gldfn-export)")
    if path.stat().st_size == 0:
        raise EngineBuildError(f"ONNX file {path} is empty (0 bytes); export it again with gldfn-export")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # protobuf raises DecodeError, onnx its own types
        raise EngineBuildError(f"{path} is not a readable ONNX file ({type(error).__name__}: {error}); export it again with gldfn-export") from None
    data_files = check_external_data(model, path)
    graph = model.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise EngineBuildError(f"{path} has {len(graph.input)} inputs and {len(graph.output)} outputs; a GLDFN export has one of each")
    metadata = onnx_format.read_metadata(model)
    return OnnxModelInfo(
        path=path, sha256=file_sha256(path), input_name=graph.input[0].name, input_shape=_dims(graph.input[0]),
        output_name=graph.output[0].name, output_shape=_dims(graph.output[0]), precision=metadata.get(onnx_format.PRECISION),
        scale=onnx_format.scale_of(metadata), config_name=metadata.get(onnx_format.CONFIG),
        custom_nodes=len(onnx_format.custom_nodes(model)), metadata=metadata,
        data_sha256={name: file_sha256(file) for name, file in sorted(data_files.items())},
    )


@dataclass(frozen=True)
class BuildOptions:
    """How to build. ``precision`` None takes the ONNX file's; ``plugin`` None finds the default library;
    ``use_plugin`` False builds the model-local function bodies instead of the plugin. ``build_plugin`` (on by
    default, so for ``gldfn-trt build`` too): when ``plugin`` is None, $GLDFN_TRT_PLUGIN_LIBRARY unset and the
    default build folder holds no library, build it there for the engine's targets first, with progress lines
    to ``report`` (default: stderr); off, that case is an error naming `gldfn-trt plugin build`."""

    precision: str | None = None
    min_size: Size = DEFAULT_PROFILE["min"]
    opt_size: Size = DEFAULT_PROFILE["opt"]
    max_size: Size = DEFAULT_PROFILE["max"]
    plugin: str | os.PathLike[str] | None = None
    use_plugin: bool = True
    embed_plugin: bool = False
    compute_capabilities: tuple[str, ...] = ()
    backend: str = "auto"
    build_plugin: bool = True
    report: Callable[[str], None] | None = report_to_stderr

    def check_profile(self) -> None:
        for name, size in (("min", self.min_size), ("opt", self.opt_size), ("max", self.max_size)):
            if min(size) < MIN_LR_SIDE:
                raise EngineBuildError(f"--{name} {format_size(size)}: each side must be at least {MIN_LR_SIDE}")
        for axis, label in ((0, "height"), (1, "width")):
            if not self.min_size[axis] <= self.opt_size[axis] <= self.max_size[axis]:
                raise EngineBuildError(
                    f"profile {label}s must satisfy min <= opt <= max, got min {format_size(self.min_size)}, "
                    f"opt {format_size(self.opt_size)}, max {format_size(self.max_size)}"
                )


@dataclass
class BuildResult:
    engine_path: Path
    sidecar: EngineSidecar
    cache_hit: bool
    cache_path: Path
    messages: list[str] = field(default_factory=list)


def default_engine_path(onnx_path: Path, precision: str, flavour: Flavour) -> Path:
    return onnx_path.with_name(f"{onnx_path.stem}.{flavour.name}-{precision}.engine")


@dataclass
class BuiltPlan:
    """A serialized engine in memory and what went into it."""

    plan: bytes
    seconds: float
    batch: int
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    layers: list[dict[str, Any]]  # name, type, plugin (the network definition before TensorRT's fusions)
    messages: list[str]
    flavour: Flavour
    precision: str
    plugin: Path | None  # None: the custom nodes were built from their function bodies

    @property
    def layer_types(self) -> dict[str, int]:
        return dict(sorted(Counter(layer["type"] for layer in self.layers).items()))


@dataclass(frozen=True)
class _Request:
    """A build request with everything resolved: flavour, precision, plugin library, target."""

    info: OnnxModelInfo
    options: BuildOptions
    flavour: Flavour
    precision: str
    plugin: Path | None
    target: dict[str, Any]

    @property
    def converts_to_fp16(self) -> bool:
        """FP16 asked of an FP32 file: the network is parsed from the file converted by the project's FP16 pass."""
        return self.precision == "fp16" and self.info.precision == "fp32"


@contextmanager
def _network_file(request: _Request) -> Iterator[Path]:
    """The file to parse: the ONNX file itself, or its FP16 conversion in a temporary folder (kept until the
    build is done, since the parser may refer to the file's weights)."""
    if not request.converts_to_fp16:
        yield request.info.path
        return
    path = request.info.path
    try:
        converted = convert_to_fp16(onnx.load(str(path)), source=str(path))
    except Fp16ConversionError as error:
        raise EngineBuildError(str(error)) from None
    with work_folder("fp16") as folder:
        converted_path = folder / f"{path.stem}.fp16.onnx"
        onnx.save(converted, str(converted_path))
        yield converted_path


def _tensor_info(tensor: Any) -> dict[str, Any]:
    return {"name": tensor.name, "shape": list(tensor.shape), "dtype": tensor.dtype.name.lower()}


def _parse(request: _Request, onnx_file: Path, builder: Any, logger: Any,
           log_start: int) -> tuple[Any, list[dict[str, Any]]]:
    """The parsed network of ``onnx_file`` (the request's file or its conversion) and its layers, the custom nodes
    checked against the plugin request."""
    trt, info, plugin = request.flavour.trt, request.info, request.plugin
    if plugin is not None:
        load_plugin_library(plugin)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if plugin is not None:
        enable_plugin_override(parser, trt)  # else the parser may import the model-local function bodies
    if not parser.parse_from_file(str(onnx_file)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineBuildError(f"the ONNX parser rejected {info.path}: " + "; ".join(errors + logger.since(log_start)[-5:]))
    layers = []
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        kind = layer.type.name
        layers.append({"name": layer.name, "type": kind, "plugin": kind in PLUGIN_LAYER_TYPES})
    plugin_layers = sum(layer["plugin"] for layer in layers)
    if plugin is None and plugin_layers:
        raise EngineBuildError(
            f"--no-plugin asked for the ONNX function bodies, but a GLDFN plugin library is already loaded in this process "
            f"and the parser maps the {info.custom_nodes} nodes to it; build without the plugin in a fresh process"
        )
    if plugin is not None and plugin_layers != info.custom_nodes:
        raise EngineBuildError(
            f"{info.custom_nodes} {load_contract().name} nodes in {info.path} but {plugin_layers} plugin layers after "
            f"parsing with {plugin}: the library does not provide the plugin these nodes name; rebuild it with `gldfn-trt plugin build`"
        )
    return network, layers


def _build(request: _Request, timing_cache: Path | None = None) -> BuiltPlan:
    """Parse and build; ``timing_cache``: the file of TensorRT's timing cache to use and add to (full TensorRT)."""
    trt = request.flavour.trt
    logger = process_logger(trt)
    log_start = logger.mark()
    builder = trt.Builder(logger)
    with _network_file(request) as onnx_file:
        network, layers = _parse(request, onnx_file, builder, logger, log_start)
        return _build_network(request, trt, builder, network, layers, logger, log_start, timing_cache)


def _build_network(request: _Request, trt: Any, builder: Any, network: Any, layers: list[dict[str, Any]],
                   logger: Any, log_start: int, timing_cache: Path | None) -> BuiltPlan:
    flavour, options, plugin = request.flavour, request.options, request.plugin
    network_input = network.get_input(0)
    batch = network_input.shape[0] if network_input.shape[0] > 0 else 1
    profile = builder.create_optimization_profile()
    profile.set_shape(network_input.name, (batch, 3, *options.min_size), (batch, 3, *options.opt_size), (batch, 3, *options.max_size))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    configure_precision(flavour, config, request.precision)
    if options.compute_capabilities:
        config.num_compute_capabilities = len(options.compute_capabilities)
        for slot, name in enumerate(options.compute_capabilities):
            config.set_compute_capability(trt.ComputeCapability.__members__[name], slot)
    if options.embed_plugin and plugin is not None:
        if not flavour.is_rtx:
            config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)  # TensorRT serializes plugins only into these
        config.plugins_to_serialize = [str(plugin)]
    start = time.perf_counter()
    # TensorRT-RTX times no tactics (its timing-cache calls are no-ops): only full TensorRT keeps a timing cache.
    with persistent_timing_cache(config, None if flavour.is_rtx else timing_cache):
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            messages = " | ".join(logger.since(log_start)[-8:] or ["no message"])
            raise EngineBuildError(f"TensorRT could not build {request.info.path}: {messages}")
    seconds = time.perf_counter() - start
    inputs = [_tensor_info(network.get_input(i)) for i in range(network.num_inputs)]
    outputs = [_tensor_info(network.get_output(i)) for i in range(network.num_outputs)]
    return BuiltPlan(bytes(plan), seconds, batch, inputs, outputs, layers, logger.since(log_start), flavour, request.precision,
                     plugin)


def _resolve_plugin(info: OnnxModelInfo, options: BuildOptions, flavour: Flavour, target: dict[str, Any]) -> Path | None:
    """The plugin library, built first when missing (``options.build_plugin``); EngineBuildError when it cannot be
    had or its CUDA code does not run on every GPU the engine targets."""
    if info.custom_nodes == 0 or not options.use_plugin:
        return None  # a portable export (no custom nodes), or the function bodies asked for
    targets = target.get("compute_capabilities") or [target["compute_capability"]]
    try:
        return resolve_plugin_library(
            options.plugin, targets, tensorrt_major=flavour.backend.plugin_tensorrt_major,
            choosable=flavour.supported_compute_capabilities, build=options.build_plugin, report=options.report)
    except PluginLibraryError as error:
        raise EngineBuildError(f"{error}; or build from the ONNX function bodies instead with --no-plugin") from None


def _target(flavour: Flavour, options: BuildOptions) -> dict[str, Any]:
    if flavour.builds_ahead_of_time:
        return {"compute_capabilities": list(options.compute_capabilities or RTX_DEFAULT_COMPUTE_CAPABILITIES)}
    gpu, reason = current_gpu()
    if gpu is None:
        raise EngineBuildError(f"{flavour.describe()} builds on a GPU and there is none: {reason}. On a machine without a GPU, build ahead of time with --backend tensorrt-rtx")
    return {"gpu": gpu.name, "compute_capability": gpu.compute_capability}


def check_int8_target(info: OnnxModelInfo) -> None:
    """Refuse an INT8 file that gldfn-calibrate laid out for another runtime: the ``onnxruntime`` layout has UINT8
    activations and INT32 bias DequantizeLinear nodes, which TensorRT's parser rejects node by node."""
    target = info.metadata.get(onnx_format.INT8_TARGET, "tensorrt")
    if target != "tensorrt":
        raise EngineBuildError(
            f"{info.path} is an INT8 file quantized for {target} ({onnx_format.INT8_TARGET}), whose Q/DQ layout "
            "TensorRT cannot build; quantize the FP32 export again with `gldfn-calibrate --target tensorrt`")


def _resolve(onnx_path: str | os.PathLike[str], options: BuildOptions) -> _Request:
    info = read_onnx_info(onnx_path)
    if info.scale is None:  # every runner of an engine needs it: refuse here rather than build what cannot run
        raise EngineBuildError(
            f"{info.path} has no {onnx_format.SCALE} metadata, so it is not a model gldfn-export or gldfn-calibrate "
            "wrote and its upscaling factor is unknown; export the model with gldfn-export")
    check_int8_target(info)
    options.check_profile()
    try:
        flavour = select_flavour(options.backend)
        precision = options.precision or info.precision or "fp32"
        check_precision(precision, info.precision, str(info.path))
        options = replace(options, compute_capabilities=normalize_compute_capabilities(flavour, options.compute_capabilities))
    except BackendError as error:
        raise EngineBuildError(str(error)) from None
    target = _target(flavour, options)
    return _Request(info, options, flavour, precision, _resolve_plugin(info, options, flavour, target), target)


def build_plan(onnx_path: str | os.PathLike[str], options: BuildOptions = BuildOptions()) -> BuiltPlan:
    """Parse ``onnx_path`` and build a serialized engine in memory; nothing is written and no cache is used."""
    return _build(_resolve(onnx_path, options))


@dataclass(frozen=True)
class _KeyedRequest:
    """A resolved request with its cache key and the records that go into the sidecar."""

    request: _Request
    key: str
    profile: dict[str, Any]
    plugin_record: dict[str, Any] | None


def _keyed_request(onnx_path: str | os.PathLike[str], options: BuildOptions) -> _KeyedRequest:
    request = _resolve(onnx_path, options)
    info, options, plugin = request.info, request.options, request.plugin
    plugin_record = None if plugin is None else {"path": str(plugin), "sha256": file_sha256(plugin), "embedded": options.embed_plugin}
    profile = {"input": info.input_name, "batch": info.batch, "min": list(options.min_size), "opt": list(options.opt_size), "max": list(options.max_size)}
    key = cache_key({
        "onnx_sha256": info.sha256, "plugin_sha256": plugin_record and plugin_record["sha256"],
        # Only when there is external data, so that the keys of single-file models stay as they were.
        **({"external_data_sha256": info.data_sha256} if info.data_sha256 else {}),
        "embed_plugin": bool(plugin_record and options.embed_plugin), "flavour": request.flavour.name,
        "version": request.flavour.version, "precision": request.precision, "profile": profile, "target": request.target,
    })
    return _KeyedRequest(request, key, profile, plugin_record)


def _rebuild_command(keyed: _KeyedRequest, engine_path: Path) -> str:
    request, profile = keyed.request, keyed.profile
    return rebuild_command(request.info.path.resolve(), engine_path.resolve(), request.precision,
                           {k: tuple(v) for k, v in profile.items() if k in ("min", "opt", "max")},
                           str(request.plugin) if request.plugin else None, request.options.embed_plugin,
                           request.options.compute_capabilities, request.flavour.name)


def _build_into_cache(keyed: _KeyedRequest, cache: EngineCache, command: str) -> tuple[Path, EngineSidecar, list[str]]:
    request, info = keyed.request, keyed.request.info
    built = _build(request, timing_cache_path(cache.root, request.flavour.name, request.flavour.version, request.target))
    sidecar = EngineSidecar(
        engine_sha256=hashlib.sha256(built.plan).hexdigest(), engine_bytes=len(built.plan),
        onnx={"path": str(info.path.resolve()), "sha256": info.sha256, "precision": info.precision, "scale": info.scale, "config": info.config_name,
              **({"external_data_sha256": info.data_sha256} if info.data_sha256 else {}),
              **({"converted_to": "fp16 (gldfn_model.ops.onnx_fp16)"} if request.converts_to_fp16 else {})},
        plugin=keyed.plugin_record, tensorrt={"flavour": request.flavour.name, "version": request.flavour.version},
        precision=request.precision, profile={**keyed.profile, "batch": built.batch}, target=request.target,
        build_seconds=round(built.seconds, 3), built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        inputs=built.inputs, outputs=built.outputs, layers=built.layers, macs_at_opt=info.macs_at(request.options.opt_size),
        cache_key=keyed.key, rebuild_command=command,
        notes=["layers: the network definition before TensorRT's fusions (a serialized engine cannot be inspected without a GPU)"],
    )
    return cache.store(keyed.key, built.plan, sidecar), sidecar, built.messages


def _for_request(sidecar: EngineSidecar, info: OnnxModelInfo, command: str) -> EngineSidecar:
    """A cached engine's sidecar as the request that found it would have written it: the cache key is the file's
    content, so the engine may have been built from a copy of the ONNX file at another path."""
    return replace(sidecar, onnx={**sidecar.onnx, "path": str(info.path.resolve())}, rebuild_command=command)


def build_engine(
    onnx_path: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    options: BuildOptions = BuildOptions(),
    *,
    force: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> BuildResult:
    """Build (or reuse from the cache) the engine for ``onnx_path`` and write it with its sidecar to ``output``
    (default: beside the ONNX file, ``MODEL.<flavour>-<precision>.engine``). A reused engine's sidecar names
    ``onnx_path`` and this command, whichever file and command first built it. An engine there that matches the
    request is kept (``force``: rebuilt and replaced); any other file there, or at its sidecar's name, is refused
    before building, and never replaced, unless ``overwrite``."""
    if output is not None and Path(output).is_dir():
        raise EngineBuildError(f"-o {output} is a folder; name the engine file to write, e.g. -o {Path(output) / 'model.engine'}")
    keyed = _keyed_request(onnx_path, options)
    request = keyed.request
    engine_path = Path(output) if output is not None else default_engine_path(request.info.path, request.precision, request.flavour)
    if engine_path.resolve() == request.info.path.resolve():
        raise EngineBuildError(f"-o {engine_path} is the ONNX file itself; name the engine differently (default: "
                               f"{default_engine_path(request.info.path, request.precision, request.flavour).name})")
    command = _rebuild_command(keyed, engine_path)
    cache = EngineCache(cache_dir)
    existing = matching_engine(engine_path, keyed.key)
    if existing is not None and not force:
        sidecar = _for_request(existing, request.info, command)
        if sidecar != existing:
            write_sidecar(engine_path, sidecar, overwrite=True)  # this engine's own sidecar, naming this request
        return BuildResult(engine_path, sidecar, True, cache.engine_path(keyed.key))
    replace_files = overwrite or existing is not None  # with --force, the engine this request built before
    for path, option in ((engine_path, "-o"), (sidecar_path(engine_path), "the engine's sidecar")):
        check_output(path, overwrite=replace_files, inputs={"MODEL": request.info.path}, option=option)
    if not force:
        cached = cache.lookup(keyed.key)
        if cached is not None:
            sidecar = _for_request(cached, request.info, command)
            copy_engine(cache.engine_path(keyed.key), engine_path, sidecar, overwrite=replace_files)
            return BuildResult(engine_path, sidecar, True, cache.engine_path(keyed.key))
    stored, sidecar, messages = _build_into_cache(keyed, cache, command)
    copy_engine(stored, engine_path, sidecar, overwrite=replace_files)
    return BuildResult(engine_path, sidecar, False, stored, messages)


def cached_engine(
    onnx_path: str | os.PathLike[str],
    options: BuildOptions = BuildOptions(),
    *,
    force: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> BuildResult:
    """The engine for ``onnx_path`` in the engine cache, built on first use (what ``gldfn-trt run|bench MODEL.onnx``
    and ``Upscaler.from_onnx(..., backend="tensorrt")`` run); nothing is written beside the ONNX file. On a cache
    hit the cached sidecar is rewritten for ``onnx_path`` when another path of the same file built it."""
    keyed = _keyed_request(onnx_path, options)
    cache = EngineCache(cache_dir)
    path = cache.engine_path(keyed.key)
    command = _rebuild_command(keyed, path)
    cached = None if force else cache.lookup(keyed.key)
    if cached is not None:
        sidecar = _for_request(cached, keyed.request.info, command)
        if sidecar != cached:
            write_sidecar(path, sidecar, overwrite=True)  # the cache entry's own sidecar
        return BuildResult(path, sidecar, True, path)
    stored, sidecar, messages = _build_into_cache(keyed, cache, command)
    return BuildResult(stored, sidecar, False, stored, messages)
