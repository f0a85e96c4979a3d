"""The shipped models: ``gldfn_model/weights/models.json`` lists each one (name, config, scale, weights file
and its SHA-256, what it was trained on, its Set5 figures, what it is for). ``gldfn models``, the ``--model``
option of every command and the default weights all read it here.

The default for a (config, scale) is its Setting-1 model: trained on isotropic Gaussian blur without noise (what
the paper's tables measure: ``gldfn eval``, ``gldfn-export``). Photos are another matter: ``gldfn upscale`` takes
:func:`photo_model`, the model trained with noise and mixed blur where one is shipped (docs/model_card.md says why).
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from gldfn_model.common.hashing import file_sha256
from gldfn_model.common.suggest import did_you_mean
from gldfn_model.network.checkpoint_facts import SHIPPED_CONFIG, CheckpointError
from gldfn_model.network.config import SUPPORTED_SCALES

MANIFEST_FORMAT = 1
DEFAULT_SCALE = 4


class ModelRegistryError(CheckpointError):
    """A shipped model that does not exist, does not fit the other options, or whose file is damaged."""


@dataclass(frozen=True)
class ShippedModel:
    name: str
    config: str
    scale: int
    file: str
    sha256: str
    training: dict[str, Any]  # setting (iso|aniso|sv|mixed), noise ([low, high] 8-bit levels or null), data, iterations
    use_for: str
    set5: dict[str, dict[str, float]] = field(default_factory=dict)  # suite row -> {"psnr", "ssim"} (dcls)

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


def weights_dir() -> Path:
    return Path(str(resources.files("gldfn_model") / "weights"))


@functools.lru_cache(maxsize=1)
def shipped_models() -> tuple[ShippedModel, ...]:
    """Every model of the manifest, in its order."""
    path = weights_dir() / "models.json"
    try:
        manifest = json.loads(path.read_text())
        if manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format {manifest.get('format')!r}, expected {MANIFEST_FORMAT}")
        models = tuple(ShippedModel(**entry) for entry in manifest["models"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelRegistryError(f"the model manifest {path} is unreadable ({exc}); reinstall the package") from exc
    names = [m.name for m in models]
    if len(set(names)) != len(names) or any(m.scale not in SUPPORTED_SCALES for m in models):
        raise ModelRegistryError(f"the model manifest {path} repeats a name or has an unsupported scale")
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
