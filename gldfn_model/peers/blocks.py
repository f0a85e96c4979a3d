"""Building blocks the peer networks share: channel attention, the sub-pixel upsampler, the plain residual block."""
from __future__ import annotations

from torch import Tensor, nn


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
        raise ValueError(f"scale {scale} is not supported by the peer networks (2, 3 or 4)")
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
