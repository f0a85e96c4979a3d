"""The scale a command runs at, taken from the model it is given: a shipped model's name (the registry), a
checkpoint (its config) or an ONNX file (its ``gldfn.scale`` metadata). An engine's sidecar says its scale too;
the runtime reads it (``gldfn_runtime.engine.sidecar``) and passes it in as ``also``."""
from __future__ import annotations

from pathlib import Path

import typer

from gldfn_model.cli.options import agree_scale
from gldfn_model.common.errors import GldfnError
from gldfn_model.network.registry import DEFAULT_SCALE, ModelRegistryError, find_model
from gldfn_model.ops import onnx_format


class ModelFileError(GldfnError, ValueError):
    """A model file that cannot be read to learn its scale."""


def onnx_scale(path: Path) -> int | None:
    """The scale in an ONNX file's metadata (None: not a GLDFN export); the weights are not loaded."""
    import onnx

    if not path.is_file():
        raise ModelFileError(f"ONNX file {path} does not exist (export one with gldfn-export)")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # protobuf raises DecodeError and others for a file that is not ONNX
        raise ModelFileError(f"{path} is not a readable ONNX file ({type(error).__name__}: {error})") from None
    return onnx_format.scale_of(onnx_format.read_metadata(model))


def checkpoint_scale(path: Path) -> int:
    """The scale of a checkpoint's config (read like every checkpoint: tensors and plain data only)."""
    from gldfn_model.network.checkpoint import load_checkpoint

    return load_checkpoint(path).config.scale


def scale_of_model(
    requested: int | None,
    *,
    model: str | None = None,
    checkpoint: Path | None = None,
    onnx: Path | None = None,
    also: tuple[str, int | None] | None = None,
    default: int | None = DEFAULT_SCALE,
) -> int | None:
    """The scale every given model says (they must agree with each other and with ``requested``, an explicit
    ``--scale``), else ``requested``, else ``default``. ``also``: (description, scale) of another source."""
    found: list[tuple[str, int]] = []
    if model is not None:
        try:
            found.append((f"model {model!r}", find_model(model).scale))
        except ModelRegistryError as error:
            raise typer.BadParameter(str(error)) from None
    if checkpoint is not None:
        found.append((f"checkpoint {checkpoint}", checkpoint_scale(checkpoint)))
    if onnx is not None:
        scale = onnx_scale(onnx)
        if scale is not None:
            found.append((f"{onnx} (its {onnx_format.SCALE} metadata)", scale))
    if also is not None and also[1] is not None:
        found.append((also[0], also[1]))
    for source, scale in found[1:]:
        if scale != found[0][1]:
            raise typer.BadParameter(f"{found[0][0]} upscales x{found[0][1]} but {source} x{scale}: "
                                     "give models of one scale")
    if not found:
        return agree_scale(requested, None, "", default)
    return agree_scale(requested, found[0][1], " and ".join(source for source, _ in found))
