"""The shipped models: ``gldfn_model/weights/models.json`` lists each one (name, config, scale, weights file
and its SHA-256, what it was trained on, its Set5 figures, what it is for). ``gldfn models``, the ``--model``
option of every command and the default weights all read it here.

The default for a (config, scale) is its Setting-1 model: trained on isotropic Gaussian blur without noise (what
the paper's tables measure: ``gldfn eval``, ``gldfn-export``). Photos are another matter: ``gldfn upscale`` takes
:func:`photo_model`, the model trained with noise and mixed blur where one is shipped (docs/model_card.md says why).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PositiveInt
from typing_extensions import TypedDict

from gldfn_model.common.hashing import file_sha256
from gldfn_model.common.suggest import did_you_mean
from gldfn_model.common.validation import fields_schema, read_json, strict_schema
from gldfn_model.network.checkpoint_facts import SHIPPED_CONFIG, CheckpointError
from gldfn_model.network.config import NAMED_CONFIGS, SUPPORTED_SCALES

MANIFEST_FORMAT = 1
MAX_MANIFEST_BYTES = 1 << 20
DEFAULT_SCALE = 4


class ModelRegistryError(CheckpointError):
    """A shipped model that does not exist, does not fit the other options, or whose file is damaged."""


class Training(TypedDict):
    """How a shipped model was trained."""

    setting: str  # iso, aniso, sv or mixed (gldfn_model.data.setting_names)
    noise: Annotated[list[float], Field(min_length=2, max_length=2)] | None  # [low, high] in 8-bit levels
    data: str
    iterations: PositiveInt


class Figures(TypedDict):
    psnr: float
    ssim: float


@dataclass(frozen=True)
class ShippedModel:
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    config: Literal[tuple(NAMED_CONFIGS)]  # type: ignore[valid-type]
    scale: Literal[SUPPORTED_SCALES]  # type: ignore[valid-type]
    file: Annotated[str, Field(pattern=r"^[^/\\]+\.pt$")]  # a file in the weights folder
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    training: Training
    use_for: str
    set5: dict[str, Figures] = field(default_factory=dict)  # suite row -> {"psnr", "ssim"} (dcls)

    @property
    def path(self) -> Path:
        return weights_dir() / self.file

    @property
    def is_setting_1(self) -> bool:
        return self.training.get("setting") == "iso" and not self.training.get("noise")

    def checked_path(self) -> Path:
        """The weights file, after checking it is there and is the one the manifest names."""
        if not self.path.is_file():
            raise ModelRegistryError(f"the weights of model {self.name!r} ({self.path}) are missing from the installed "
                                     "package; reinstall it (pip install -e .)")
        digest = file_sha256(self.path)
        if digest != self.sha256:
            raise ModelRegistryError(f"{self.path} (sha256 {digest[:12]}...) is not the file model {self.name!r} names "
                                     f"(sha256 {self.sha256[:12]}...); reinstall the package")
        return self.path

    def describe_training(self) -> str:
        names = {"iso": "Setting 1 (isotropic Gaussian)", "aniso": "Setting 2 (anisotropic Gaussian)",
                 "sv": "Setting 3 (spatially varying)", "mixed": "Settings 1-3 mixed"}
        setting = names.get(self.training.get("setting"), "?")
        noise = self.training.get("noise")
        return f"{setting}, " + ("no noise" if not noise else f"noise sigma {noise[0]:g}-{noise[1]:g}")


class _Manifest(TypedDict):
    format: Literal[1]
    models: list[fields_schema(ShippedModel)]  # type: ignore[valid-type]


strict_schema(Training)
strict_schema(Figures)
strict_schema(_Manifest)


def weights_dir() -> Path:
    return Path(str(resources.files("gldfn_model") / "weights"))


@functools.lru_cache(maxsize=1)
def shipped_models() -> tuple[ShippedModel, ...]:
    """Every model of the manifest, in its order."""
    return read_models(weights_dir() / "models.json")


def read_models(path: Path) -> tuple[ShippedModel, ...]:
    """The models listed in the manifest ``path``, every field checked (ModelRegistryError naming it otherwise)."""
    manifest = read_json(path, _Manifest, max_bytes=MAX_MANIFEST_BYTES, error=ModelRegistryError,
                         what="model manifest", advice="reinstall the package")
    models = tuple(ShippedModel(**entry) for entry in manifest["models"])
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ModelRegistryError(f"the model manifest {path} names a model twice; reinstall the package")
    return models


def find_model(name: str) -> ShippedModel:
    for model in shipped_models():
        if model.name == name:
            return model
    names = [m.name for m in shipped_models()]
    raise ModelRegistryError(f"no shipped model is named {name!r}{did_you_mean(name, names)} (shipped: "
                             f"{', '.join(names) or 'none'}; `gldfn models` describes them)")


def default_model(scale: int, config: str = SHIPPED_CONFIG) -> ShippedModel | None:
    """The Setting-1 model of ``config`` at ``scale``, or None when none is shipped."""
    return next((m for m in shipped_models() if m.config == config and m.scale == scale and m.is_setting_1), None)


def photo_model(scale: int, config: str = SHIPPED_CONFIG) -> ShippedModel | None:
    """What ``gldfn upscale`` runs when no model is named: the model of ``config`` at ``scale`` trained with noise
    (the robust one: ordinary photos carry sensor noise and JPEG artefacts, which a model trained on clean images
    sharpens), else the Setting-1 model; None when neither is shipped."""
    robust = (m for m in shipped_models() if m.config == config and m.scale == scale and m.training.get("noise"))
    return next(robust, None) or default_model(scale, config)


def scale_for(model: str | None, scale: int | None, default: int | None = DEFAULT_SCALE) -> int | None:
    """The scale a command works at: the named model's (an explicit ``scale`` must agree), else ``scale``,
    else ``default``."""
    if model is None:
        return scale if scale is not None else default
    found = find_model(model)
    if scale is not None and scale != found.scale:
        raise ModelRegistryError(f"model {model!r} upscales x{found.scale}, not x{scale}; "
                                 f"drop --scale or pass --scale {found.scale}")
    return found.scale
