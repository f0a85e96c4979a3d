"""Building blocks the peer networks share: channel attention, the sub-pixel upsampler, the plain residual block,
an adaptive average pool that exports with symbolic bins."""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from gldfn_model.peers import PeerError


class DualPathSkipGroup(nn.Module):
    """Blocks that each map (x0, x1) to (y0, y1), run in sequence, with a skip around the group on both paths
    (DANv2's DPCG and DCLS's DPCAG)."""

    def __init__(self, blocks: Iterable[nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x0: Tensor, x1: Tensor) -> tuple[Tensor, Tensor]:
        y0, y1 = x0, x1
        for block in self.blocks:
            y0, y1 = block(y0, y1)
        return x0 + y0, x1 + y1


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation gate: global average pool -> 1x1 (C -> C / reduction) -> act -> 1x1 -> sigmoid,
    multiplied into the input."""

    def __init__(self, channels: int, reduction: int, activation: nn.Module) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.gate = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1), activation,
            nn.Conv2d(channels // reduction, channels, 1), nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(self.pool(x))


def pixel_shuffle_upsampler(channels: int, out_channels: int, scale: int) -> nn.Sequential:
    """DAN's and DCLS's reconstruction tail: x4 as two (3x3 conv C -> 4C, PixelShuffle 2) steps, x2 / x3 as one
    (3x3 conv C -> s^2 C, PixelShuffle s); then a 3x3 conv to ``out_channels``."""
    if scale not in (2, 3, 4):
        raise PeerError(f"scale {scale} is not supported by the peer networks (2, 3 or 4)")
    layers: list[nn.Module] = []
    for factor in (2, 2) if scale == 4 else (scale,):
        layers += [nn.Conv2d(channels, channels * factor * factor, 3, padding=1), nn.PixelShuffle(factor)]
    layers.append(nn.Conv2d(channels, out_channels, 3, padding=1))
    return nn.Sequential(*layers)


class ResidualBlockNoBN(nn.Module):
    """x + conv3x3(lrelu_0.1(conv3x3(x))), no normalization (EDSR-style, as DCLS uses it)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class SlicedAdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """``nn.AdaptiveAvgPool2d`` computed bin by bin with slices (bin i of n over a side of L spans
    [floor(i L / n), ceil((i + 1) L / n))). Same values; but torch.onnx lowers the built-in op, for an output larger
    than 1 x 1, to gathers whose indices are fixed at the export size, which fail or mislead at any other size,
    while these slice bounds stay expressions of the input size."""

    def forward(self, x: Tensor) -> Tensor:
        out_h, out_w = _pair(self.output_size)
        height, width = x.shape[-2], x.shape[-1]

        def bounds(index: int, count: int, length: int) -> slice:
            return slice((index * length) // count, -((-(index + 1) * length) // count))

        rows = []
        for i in range(out_h):
            rows_i = bounds(i, out_h, height)
            cells = [x[..., rows_i, bounds(j, out_w, width)].mean(dim=(-2, -1)) for j in range(out_w)]
            rows.append(torch.stack(cells, dim=-1))
        return torch.stack(rows, dim=-2)
