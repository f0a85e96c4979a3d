"""GLDFN (Wen et al., IEEE TIP 2024): shallow features, groups of dual dynamic filter modules with a
global-into-local fusion after each group, and a PixelShuffle reconstruction with a bilinear input skip."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gldfn_model.network.complexity import BILINEAR_MACS_PER_OUTPUT
from gldfn_model.network.config import GLDFNConfig
from gldfn_model.network.dynamic_layers import GlobalDynamicFilter, LocalDynamicFilter, make_activation


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


class ResidualBlock(nn.Module):
    """Modified residual block: three 3x3 convs, an activation after all but the last, plus the skip."""

    def __init__(self, channels: int, activation: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(channels, channels), make_activation(activation),
            conv3x3(channels, channels), make_activation(activation),
            conv3x3(channels, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def _branch(config: GLDFNConfig, plain_convs: int, dynamic: nn.Module | None) -> nn.Sequential:
    """Conv -> act -> ... -> dynamic layer. ``plain_convs`` counts the static 3x3 convs; when the dynamic layer
    is replaced by a plain conv (ablation) it becomes one more static conv."""
    layers: list[nn.Module] = []
    for i in range(plain_convs):
        layers.append(conv3x3(config.channels, config.channels))
        if i == 0:
            layers.append(make_activation(config.activation))
    layers.append(dynamic if dynamic is not None else conv3x3(config.channels, config.channels))
    return nn.Sequential(*layers)


class DualDynamicFilterModule(nn.Module):
    """DDFM: a local and a global branch that never exchange data, each with a skip around it."""

    def __init__(self, config: GLDFNConfig) -> None:
        super().__init__()
        c = config.channels
        ldf = LocalDynamicFilter(c, config.ldf_kernel_size, config.ldf_dilation, config.ldf_hidden, config.activation) if config.local_dynamic else None
        gdf = GlobalDynamicFilter(c, config.gdf_kernels, config.gdf_reduction) if config.global_dynamic else None
        # A GDF is itself the branch's last (dynamic) 3x3 conv; an LDF follows the branch's convs.
        self.local_branch = _branch(config, config.local_convs, ldf)
        self.global_branch = _branch(config, config.global_convs, gdf)

    def forward(self, local: Tensor, global_: Tensor) -> tuple[Tensor, Tensor]:
        return local + self.local_branch(local), global_ + self.global_branch(global_)


class Fusion(nn.Module):
    """Merges two streams: conv(concat(a, b)) -> C channels."""

    def __init__(self, channels: int, kind: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2 * channels, channels, 1 if kind == "conv1x1" else 3, padding=0 if kind == "conv1x1" else 1)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.conv(torch.cat([a, b], dim=1))


class DualDynamicFilterGroup(nn.Module):
    """DDFG: M DDFMs with a long skip around the group on each stream, then the global -> local fusion."""

    def __init__(self, config: GLDFNConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(DualDynamicFilterModule(config) for _ in range(config.modules_per_group))
        self.fusion = Fusion(config.channels, config.fusion)

    def forward(self, local: Tensor, global_: Tensor) -> tuple[Tensor, Tensor]:
        local_in, global_in = local, global_
        for block in self.blocks:
            local, global_ = block(local, global_)
        local, global_ = local + local_in, global_ + global_in
        return self.fusion(local, global_), global_


class GLDFN(nn.Module):
    """Input: N x 3 x H x W RGB in [0, 1]. Output: N x 3 x sH x sW."""

    def __init__(self, config: GLDFNConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.head = conv3x3(3, c)
        self.residual_blocks = nn.Sequential(*(ResidualBlock(c, config.activation) for _ in range(config.residual_blocks)))
        self.groups = nn.ModuleList(DualDynamicFilterGroup(config) for _ in range(config.groups))
        self.merge = Fusion(c, "conv1x1")
        self.reconstruct = conv3x3(c, 3 * config.scale * config.scale)
        self.upsample = nn.PixelShuffle(config.scale)

    def forward(self, lr: Tensor) -> Tensor:
        features = self.residual_blocks(self.head(lr))
        local = global_ = features
        for group in self.groups:
            local, global_ = group(local, global_)
        merged = self.merge(local, global_) + features
        base = F.interpolate(lr, scale_factor=self.config.scale, mode="bilinear", align_corners=False)
        return self.upsample(self.reconstruct(merged)) + base

    def functional_macs(self, inputs: tuple[Tensor, ...], output: Tensor) -> dict[str, int]:
        """The bilinear input skip (gldfn_model.network.op_count)."""
        return {"interpolation": BILINEAR_MACS_PER_OUTPUT * output.numel()}


def build_model(config: GLDFNConfig) -> GLDFN:
    return GLDFN(config)
