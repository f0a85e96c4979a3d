"""The JSON file written beside every engine (``ENGINE.json``): what it was built from and for, so that an
engine can be inspected without a GPU and rejected, with the reason and the rebuild command, where it cannot
run. A serialized engine is opaque and cannot be deserialized without a GPU; the sidecar is what we can read."""
from __future__ import annotations

import json
import os
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gldfn_model.common.atomic import atomic_output
from gldfn_model.common.errors import GldfnError
from gldfn_model.common.hashing import file_sha256

SIDECAR_FORMAT = 1
SIDECAR_SUFFIX = ".json"
Size = tuple[int, int]


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
    engine_bytes: int
    onnx: dict[str, Any]  # path, sha256, precision, scale, config
    plugin: dict[str, Any] | None  # path, sha256, embedded; None when built without the plugin
    tensorrt: dict[str, str]  # flavour ("tensorrt" | "tensorrt-rtx"), version
    precision: str
    profile: dict[str, Any]  # input, batch, min, opt, max
    target: dict[str, Any]  # compute_capabilities (TensorRT-RTX) or gpu + compute_capability (TensorRT)
    build_seconds: float
    built_at: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    layers: list[dict[str, Any]]  # name, type, plugin (network definition before fusion)
    macs_at_opt: int | None
    cache_key: str
    rebuild_command: str
    format: int = SIDECAR_FORMAT
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
    words += ["-o", str(engine_path), "--force"]
    return shlex.join(words)


def write_sidecar(engine_path: str | os.PathLike[str], sidecar: EngineSidecar) -> Path:
    path = sidecar_path(engine_path)
    with atomic_output(path) as tmp:
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
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SidecarError(f"{path} is not valid JSON ({error}); rebuild the engine with `gldfn-trt build ... --force`") from None
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise SidecarError(f"{path} is not a gldfn-trt sidecar of format {SIDECAR_FORMAT}; rebuild the engine with `gldfn-trt build ... --force`")
    try:
        return EngineSidecar(**data)
    except TypeError as error:
        raise SidecarError(f"{path} lacks fields or has unknown ones ({error}); rebuild the engine") from None


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
