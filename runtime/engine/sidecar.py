"""The JSON file written beside every engine (``ENGINE.json``): what it was built from and for, so that an
engine can be inspected without a GPU and rejected, with the reason and the rebuild command, where it cannot
run. A serialized engine is opaque and cannot be deserialized without a GPU; the sidecar is what we can read."""
from __future__ import annotations

import json
import os
import re
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


# What advice composed from a sidecar accepts (rebuild_advice).
PRECISIONS = ("fp32", "fp16", "int8")
FLAVOURS = ("tensorrt", "tensorrt-rtx")
MAX_SHOWN_PATH = 4096
MAX_PROFILE_SIDE = 1 << 16
_CAPABILITY = re.compile(r"SM[0-9]{2,3}")
_VERSION = re.compile(r"[0-9]{1,4}(\.[0-9A-Za-z]{1,12}){0,5}")
_GPU_NAME = re.compile(r"[A-Za-z0-9 ._()/+-]{1,100}")


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
    onnx_path: str | os.PathLike[str], engine_path: str | os.PathLike[str], precision: str | None,
    profile: dict[str, Any], plugin: str | None, embed_plugin: bool, compute_capabilities: tuple[str, ...],
    flavour: str | None, *, plugin_known: bool = True,
) -> str:
    """The ``gldfn-trt build`` command that makes this engine again (with --force), every word quoted for the
    shell. None (and a size missing from ``profile``) leaves that option out, taking its default; so does
    ``plugin_known`` False for the plugin options."""
    words = ["gldfn-trt", "build", os.fspath(onnx_path)]
    words += ["--backend", flavour] if flavour else []
    words += ["--precision", precision] if precision else []
    for key in ("min", "opt", "max"):
        words += [f"--{key}", format_size(profile[key])] if key in profile else []
    if plugin_known:
        words += ["--plugin", plugin] if plugin else ["--no-plugin"]
        words += ["--embed-plugin"] if embed_plugin else []
    for capability in compute_capabilities:
        words += ["--compute-capability", capability]
    words += ["-o", os.fspath(engine_path), "--force", "--overwrite"]
    return shlex.join(words)


def showable_path(value: object) -> str | None:
    """``value`` when it is a path fit to show inside a command (text of a sane length without control
    characters, which could break the line or drive the terminal), else None."""
    if isinstance(value, str) and 0 < len(value) <= MAX_SHOWN_PATH and value.isprintable():
        return value
    return None


def _size(value: object) -> Size | None:
    if (isinstance(value, list) and len(value) == 2
            and all(type(side) is int and 0 < side <= MAX_PROFILE_SIDE for side in value)):
        return value[0], value[1]
    return None


def rebuild_advice(sidecar: EngineSidecar, engine_path: str | os.PathLike[str]) -> str:
    """The command that rebuilds ``engine_path``, composed from the sidecar's fields one by one, each checked
    first: paths fit to show (then quoted for the shell), precision and TensorRT flavour from their fixed sets,
    sizes as numbers, compute capabilities by their pattern. A field that fails its check is left out (its option
    takes the default; the ONNX file becomes MODEL.onnx). The sidecar's own ``rebuild_command`` text is never
    shown: a crafted sidecar must not put a command of its choice on the user's screen."""
    def field(record: object, key: str) -> object:
        return record.get(key) if isinstance(record, dict) else None

    onnx = showable_path(field(sidecar.onnx, "path")) or "MODEL.onnx"
    precision = sidecar.precision if sidecar.precision in PRECISIONS else None
    flavour = field(sidecar.tensorrt, "flavour")
    profile = {key: size for key in ("min", "opt", "max") if (size := _size(field(sidecar.profile, key))) is not None}
    capabilities = field(sidecar.target, "compute_capabilities")
    capabilities = tuple(capabilities) if (isinstance(capabilities, list)
                                           and all(isinstance(c, str) and _CAPABILITY.fullmatch(c) for c in capabilities)) else ()
    plugin, embedded, plugin_known = None, False, sidecar.plugin is None
    if isinstance(sidecar.plugin, dict) and showable_path(sidecar.plugin.get("path")):
        plugin, embedded, plugin_known = sidecar.plugin["path"], sidecar.plugin.get("embedded") is True, True
    return rebuild_command(onnx, engine_path, precision, profile, plugin, embedded, capabilities,
                           flavour if flavour in FLAVOURS else None, plugin_known=plugin_known)


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
            f"SHA-256 {str(sidecar.engine_sha256)[:12]}…): the file is corrupt or was replaced. Rebuild it: "
            f"{rebuild_advice(sidecar, engine)}"
        )


def compatibility_problems(sidecar: EngineSidecar, flavour: str, version: str, gpu_name: str | None, gpu_capability: str | None) -> list[str]:
    """Why this engine cannot run with the given TensorRT flavour/version and GPU (empty: no reason known).
    ``gpu_capability`` is like ``SM86``; None skips the GPU checks."""
    # What the sidecar says is shown only as checked values: a crafted one must not write its own sentences here.
    problems = []
    built = sidecar.tensorrt if isinstance(sidecar.tensorrt, dict) else {}
    built_flavour = _shown(built.get("flavour"), "another TensorRT", FLAVOURS)
    if built.get("flavour") != flavour:
        problems.append(f"it was built with {built_flavour}, this process uses {flavour}")
    elif built.get("version") != version:
        problems.append(f"it was built with {built_flavour} {_shown(built.get('version'), 'of another version', _VERSION)}, "
                        f"this is {version} (plans are tied to the exact version)")
    target = sidecar.target if isinstance(sidecar.target, dict) else {}
    if gpu_capability is not None:
        targets = target.get("compute_capabilities")
        if targets is not None and gpu_capability not in targets:
            shown = [c for c in targets if isinstance(c, str) and _CAPABILITY.fullmatch(c)] if isinstance(targets, list) else []
            problems.append(
                f"it targets compute capabilities {', '.join(shown) or 'other than this GPU'}; this GPU ({gpu_name}) is "
                f"{gpu_capability} (rebuild with --compute-capability {gpu_capability})"
            )
        built_for = target.get("compute_capability")
        if built_for is not None and built_for != gpu_capability:
            problems.append(f"it was built on a {_shown(target.get('gpu'), 'GPU', _GPU_NAME)} "
                            f"({_shown(built_for, 'another compute capability', _CAPABILITY)}); this GPU ({gpu_name}) "
                            f"is {gpu_capability}")
    return problems


def _shown(value: object, otherwise: str, allowed: tuple[str, ...] | re.Pattern[str]) -> str:
    """``value`` when it is one of ``allowed`` (or matches it), else ``otherwise``."""
    fits = value in allowed if isinstance(allowed, tuple) else isinstance(value, str) and allowed.fullmatch(value)
    return str(value) if fits else otherwise


def check_compatible(sidecar: EngineSidecar, engine_path: str | os.PathLike[str], flavour: str, version: str, gpu_name: str | None, gpu_capability: str | None) -> None:
    problems = compatibility_problems(sidecar, flavour, version, gpu_name, gpu_capability)
    if problems:
        raise EngineMismatch(f"engine {engine_path} cannot run here: " + "; ".join(problems)
                             + f". Rebuild it: {rebuild_advice(sidecar, engine_path)}")
