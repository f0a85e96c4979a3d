"""Configuration of a GLDFN network, the named configs and the Table I ablation variants."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from gldfn_model.common.errors import GldfnError

SUPPORTED_SCALES = (2, 3, 4)
ACTIVATIONS = ("relu", "lrelu", "gelu")
FUSIONS = ("conv1x1", "conv3x3")


class ConfigError(GldfnError, ValueError):
    """A config name, field or value that GLDFN does not have."""


@dataclass(frozen=True)
class GLDFNConfig:
    """Every hyper-parameter of the network. See docs/architecture.md for why the defaults are what they are.

    channels: feature width of every stream.
    groups: number of dual dynamic filter groups (DDFG).
    modules_per_group: dual dynamic filter modules (DDFM) in each group.
    residual_blocks: modified residual blocks in the shallow feature extractor.
    local_convs / global_convs: plain 3x3 convolutions of the local / global branch of a DDFM, counted with
        the branch's dynamic layer standing in the last conv's place when it is itself a convolution
        (global_convs=1 means Conv -> act -> GDF, the GDF being the branch's second, dynamic, 3x3 conv).
    gdf_kernels: K, the number of candidate kernels of the global dynamic filter.
    gdf_reduction: channel reduction of the GDF attention (C -> C / reduction -> K).
    ldf_kernel_size / ldf_dilation: window of the local dynamic filter.
    ldf_squeeze: channel-filter bottleneck ratio of the LDF (C -> round(C * ratio) -> C * k^2).
    fusion: how a group's global output is merged into its local stream.
    local_dynamic / global_dynamic: False replaces that dynamic layer by a plain 3x3 conv (Table I ablation).
    """

    channels: int = 64
    groups: int = 5
    modules_per_group: int = 10
    residual_blocks: int = 1
    local_convs: int = 2
    global_convs: int = 1
    gdf_kernels: int = 4
    gdf_reduction: int = 4
    ldf_kernel_size: int = 3
    ldf_dilation: int = 1
    ldf_squeeze: float = 0.70
    activation: str = "relu"
    fusion: str = "conv1x1"
    scale: int = 4
    local_dynamic: bool = True
    global_dynamic: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.scale not in SUPPORTED_SCALES:
            problems.append(f"scale={self.scale} (supported: {SUPPORTED_SCALES})")
        if self.activation not in ACTIVATIONS:
            problems.append(f"activation={self.activation!r} (supported: {ACTIVATIONS})")
        if self.fusion not in FUSIONS:
            problems.append(f"fusion={self.fusion!r} (supported: {FUSIONS})")
        for name in ("channels", "groups", "modules_per_group", "gdf_kernels", "gdf_reduction", "ldf_dilation"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} (must be >= 1)")
        for name in ("residual_blocks",):
            if getattr(self, name) < 0:
                problems.append(f"{name}={getattr(self, name)} (must be >= 0)")
        if self.local_convs < 1 or self.global_convs < 1:
            problems.append("local_convs and global_convs must be >= 1")
        if self.ldf_kernel_size < 1 or self.ldf_kernel_size % 2 == 0:
            problems.append(f"ldf_kernel_size={self.ldf_kernel_size} (must be odd)")
        if not 0.0 < self.ldf_squeeze <= 4.0:
            problems.append(f"ldf_squeeze={self.ldf_squeeze} (must be in (0, 4])")
        if problems:
            raise ConfigError("invalid GLDFN config: " + "; ".join(problems))

    @property
    def num_modules(self) -> int:
        return self.groups * self.modules_per_group

    @property
    def ldf_hidden(self) -> int:
        return max(1, round(self.channels * self.ldf_squeeze))

    @property
    def gdf_hidden(self) -> int:
        return max(1, self.channels // self.gdf_reduction)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GLDFNConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown GLDFN config fields: {unknown}")
        return cls(**known)


NAMED_CONFIGS: dict[str, GLDFNConfig] = {
    "paper": GLDFNConfig(),
    "small": GLDFNConfig(channels=48, groups=3, modules_per_group=4, residual_blocks=1, ldf_squeeze=0.25),
    "tiny": GLDFNConfig(channels=32, groups=2, modules_per_group=2, residual_blocks=1, ldf_squeeze=0.25),
}

# Table I: which dynamic layers are kept (local, global).
ABLATION_VARIANTS: dict[str, tuple[bool, bool]] = {
    "A": (False, False),
    "B": (False, True),
    "C": (True, False),
    "D": (True, True),
}
ABLATION_DESCRIPTIONS = {
    "A": "both branches plain conv",
    "B": "global dynamic filter only",
    "C": "local dynamic filter only",
    "D": "both dynamic filters (GLDFN)",
}


def get_config(name: str, scale: int = 4, ablation: str | None = None) -> GLDFNConfig:
    """A named config at a given scale, optionally turned into one of Table I's variants A-D."""
    if name not in NAMED_CONFIGS:
        raise ConfigError(f"unknown config {name!r}; choose one of {sorted(NAMED_CONFIGS)}")
    config = replace(NAMED_CONFIGS[name], scale=scale)
    if ablation is not None:
        if ablation not in ABLATION_VARIANTS:
            raise ConfigError(f"unknown ablation variant {ablation!r}; choose one of {sorted(ABLATION_VARIANTS)}")
        local, global_ = ABLATION_VARIANTS[ablation]
        config = replace(config, local_dynamic=local, global_dynamic=global_)
    return config
