"""The JSON file written beside every engine (``ENGINE.json``): what it was built from and for, so that an
engine can be inspected without a GPU and rejected, with the reason and the rebuild command, where it cannot
run. A serialized engine is opaque and cannot be deserialized without a GPU; the sidecar is what we can read."""
from __future__ import annotations

import json
import os
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, NonNegativeInt, PositiveInt
from typing_extensions import NotRequired, TypedDict

from gldfn_model.common.atomic import atomic_output
from gldfn_model.common.errors import GldfnError
from gldfn_model.common.hashing import file_sha256
from gldfn_model.common.validation import fields_schema, read_json, strict_schema

SIDECAR_FORMAT = 1
SIDECAR_SUFFIX = ".json"
# A sidecar of the paper's config is about 200 kB (its layer list); anything far larger is not one.
MAX_SIDECAR_BYTES = 8 << 20
Size = tuple[int, int]
SizeField = Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]  # [height, width]


# What each part of a sidecar holds; read_sidecar checks every field's type against these.
class OnnxRecord(TypedDict):
    path: str
    sha256: str
    precision: str | None
    scale: Annotated[int, Field(ge=1, le=8)]
    config: str | None
    external_data_sha256: NotRequired[dict[str, str]]
    converted_to: NotRequired[str]


class PluginRecord(TypedDict):
    path: str
    sha256: str
    embedded: bool


class TensorRTRecord(TypedDict):
    flavour: Literal["tensorrt", "tensorrt-rtx"]
    version: str


class ProfileRecord(TypedDict):
    input: str
    batch: PositiveInt
    min: SizeField
    opt: SizeField
    max: SizeField


class TargetRecord(TypedDict, total=False):
    compute_capabilities: list[str]  # TensorRT-RTX
    gpu: str  # TensorRT: the GPU it was built on
    compute_capability: str


class TensorRecord(TypedDict):
    name: str
    shape: list[int]
    dtype: str


class LayerRecord(TypedDict):
    name: str
    type: str
    plugin: bool


for _record in (OnnxRecord, PluginRecord, TensorRTRecord, ProfileRecord, TargetRecord, TensorRecord, LayerRecord):
    strict_schema(_record)


class SidecarError(GldfnError, ValueError):
    """The sidecar is missing or unreadable, or the engine does not match it; the message says what to do."""


class EngineMismatch(SidecarError):
    """The engine was built for another TensorRT or GPU than the one here."""


def sidecar_path(engine_path: str | os.PathLike[str]) -> Path:
    return Path(str(engine_path) + SIDECAR_SUFFIX)


def format_size(size: Size) -> str:
    return f"{size[0]}x{size[1]}"


@dataclass
class EngineSidecar:
    """Everything an engine was built from and for. Sizes are LR ``[height, width]``."""

    engine_sha256: str
    engine_bytes: NonNegativeInt
    onnx: OnnxRecord
    plugin: PluginRecord | None  # None when built without the plugin
    tensorrt: TensorRTRecord
    precision: str
    profile: ProfileRecord
    target: TargetRecord  # compute_capabilities (TensorRT-RTX) or gpu + compute_capability (TensorRT)
    build_seconds: float
    built_at: str
    inputs: Annotated[list[TensorRecord], Field(min_length=1)]
    outputs: Annotated[list[TensorRecord], Field(min_length=1)]
    layers: list[LayerRecord]  # the network definition before fusion
    macs_at_opt: NonNegativeInt | None
    cache_key: str
    rebuild_command: str
    format: Literal[1] = SIDECAR_FORMAT
    notes: list[str] = field(default_factory=list)

    @property
    def plugin_layers(self) -> list[str]:
        return [layer["name"] for layer in self.layers if layer["plugin"]]

    @property
    def min_size(self) -> Size:
        return tuple(self.profile["min"])  # type: ignore[return-value]

    @property
    def opt_size(self) -> Size:
        return tuple(self.profile["opt"])  # type: ignore[return-value]

    @property
    def max_size(self) -> Size:
        return tuple(self.profile["max"])  # type: ignore[return-value]

    @property
    def scale(self) -> int:
        return int(self.onnx["scale"])

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def rebuild_command(
    onnx_path: str | os.PathLike[str], engine_path: str | os.PathLike[str], precision: str, profile: dict[str, Any],
    plugin: str | None, embed_plugin: bool, compute_capabilities: tuple[str, ...], flavour: str,
) -> str:
    """The ``gldfn-trt build`` command that makes this engine again (with --force)."""
    words = ["gldfn-trt", "build", str(onnx_path), "--backend", flavour, "--precision", precision]
    for key in ("min", "opt", "max"):
        words += [f"--{key}", format_size(profile[key])]
    words += ["--plugin", plugin] if plugin else ["--no-plugin"]
    if embed_plugin:
        words.append("--embed-plugin")
    for capability in compute_capabilities:
        words += ["--compute-capability", capability]
    words += ["-o", str(engine_path), "--force", "--overwrite"]
    return shlex.join(words)


def write_sidecar(engine_path: str | os.PathLike[str], sidecar: EngineSidecar, *, overwrite: bool = False) -> Path:
    path = sidecar_path(engine_path)
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(sidecar.to_json())
    return path


def has_sidecar(engine_path: str | os.PathLike[str]) -> bool:
    return sidecar_path(engine_path).is_file()


def check_engine_file(engine_path: str | os.PathLike[str]) -> None:
    """SidecarError unless ``engine_path`` is a file and not an ONNX model."""
    engine = Path(engine_path)
    if engine.suffix.lower() == ".onnx":
        raise SidecarError(f"{engine} is an ONNX model, not an engine: build one from it with `gldfn-trt build {engine}` "
                           "(it writes ENGINE beside the model and prints its name), then pass that engine")
    if not engine.is_file():
        raise SidecarError(f"engine {engine} does not exist; build it with `gldfn-trt build MODEL.onnx -o {engine}`")


def read_sidecar(engine_path: str | os.PathLike[str]) -> EngineSidecar:
    """The sidecar of ``engine_path``; clear errors when it is missing, not JSON or of another format."""
    path = sidecar_path(engine_path)
    check_engine_file(engine_path)
    if not path.is_file():
        raise SidecarError(
            f"{path} is missing, and a serialized engine cannot be read without a GPU: build the engine with "
            f"`gldfn-trt build MODEL.onnx -o {engine_path}`, which writes it; an engine without one still runs on a "
            "GPU (`gldfn-trt run`, `gldfn upscale --engine`: its input, output and scale are read from the engine)"
        )
    data = read_json(path, fields_schema(EngineSidecar), max_bytes=MAX_SIDECAR_BYTES, error=SidecarError,
                     what="gldfn-trt sidecar", advice=f"rebuild the engine with `gldfn-trt build MODEL.onnx -o {engine_path} --force`")
    return EngineSidecar(**data)


def verify_engine_file(engine_path: str | os.PathLike[str], sidecar: EngineSidecar) -> None:
    """The engine file is the one the sidecar describes (size and SHA-256): catches truncated, corrupt and
    swapped files before TensorRT sees them."""
    engine = Path(engine_path)
    if not engine.is_file():
        raise SidecarError(f"engine {engine} does not exist; build it with `gldfn-trt build MODEL.onnx -o {engine}`")
    size = engine.stat().st_size
    if size != sidecar.engine_bytes or file_sha256(engine) != sidecar.engine_sha256:
        raise SidecarError(
            f"{engine} ({size} bytes) is not the engine its sidecar describes ({sidecar.engine_bytes} bytes, "
            f"SHA-256 {sidecar.engine_sha256[:12]}…): the file is corrupt or was replaced. Rebuild it: "
            f"{sidecar.rebuild_command}"
        )


def compatibility_problems(sidecar: EngineSidecar, flavour: str, version: str, gpu_name: str | None, gpu_capability: str | None) -> list[str]:
    """Why this engine cannot run with the given TensorRT flavour/version and GPU (empty: no reason known).
    ``gpu_capability`` is like ``SM86``; None skips the GPU checks."""
    problems = []
    built = sidecar.tensorrt
    if built["flavour"] != flavour:
        problems.append(f"it was built with {built['flavour']}, this process uses {flavour}")
    elif built["version"] != version:
        problems.append(f"it was built with {built['flavour']} {built['version']}, this is {version} (plans are tied to the exact version)")
    if gpu_capability is not None:
        targets = sidecar.target.get("compute_capabilities")
        if targets is not None and gpu_capability not in targets:
            problems.append(
                f"it targets compute capabilities {', '.join(targets)}; this GPU ({gpu_name}) is {gpu_capability} "
                f"(rebuild with --compute-capability {gpu_capability})"
            )
        built_for = sidecar.target.get("compute_capability")
        if built_for is not None and built_for != gpu_capability:
            problems.append(f"it was built on a {sidecar.target.get('gpu')} ({built_for}); this GPU ({gpu_name}) is {gpu_capability}")
    return problems


def check_compatible(sidecar: EngineSidecar, engine_path: str | os.PathLike[str], flavour: str, version: str, gpu_name: str | None, gpu_capability: str | None) -> None:
    problems = compatibility_problems(sidecar, flavour, version, gpu_name, gpu_capability)
    if problems:
        raise EngineMismatch(f"engine {engine_path} cannot run here: " + "; ".join(problems) + f". Rebuild it: {sidecar.rebuild_command}")
