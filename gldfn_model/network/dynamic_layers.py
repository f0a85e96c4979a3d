"""The two dynamic filter layers of a DDFM: the local dynamic filter (LDF, a decoupled dynamic filter) and
the global dynamic filter (GDF, a dynamic convolution)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gldfn_model.network.complexity import FILTER_NORM_MACS_PER_ELEMENT, LDF_MACS_PER_TAP
from gldfn_model.network.filter_norm import filter_norm
from gldfn_model.ops.ldf_op import local_dynamic_filter  # noqa: F401 - registers torch.ops.gldfn


def make_activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "lrelu":
        return nn.LeakyReLU(0.2, inplace=True)
    if name == "gelu":
        return nn.GELU()
    raise ValueError(f"unknown activation {name!r}")


class LocalDynamicFilter(nn.Module):
    """Per-pixel spatial filter x per-channel filter, both generated from the input and FilterNorm-ed.

    spatial: Conv1x1(C -> k^2) then FilterNorm over the taps of each pixel, times a fixed gain 1/k.
    channel: global average pool -> Conv1x1(C -> hidden) -> act -> Conv1x1(hidden -> C*k^2) -> FilterNorm over
    the taps of each channel, times a learnable gain per (channel, tap).
    """

    def __init__(self, channels: int, kernel_size: int = 3, dilation: int = 1, hidden: int = 16, activation: str = "relu") -> None:
        super().__init__()
        self.channels = channels
        self.kernel_size = kernel_size
        self.dilation = dilation
        taps = kernel_size * kernel_size
        self.spatial_conv = nn.Conv2d(channels, taps, 1)
        self.channel_squeeze = nn.Conv2d(channels, hidden, 1)
        self.channel_act = make_activation(activation)
        self.channel_expand = nn.Conv2d(hidden, channels * taps, 1)
        self.channel_gain = nn.Parameter(torch.full((channels, taps), 1.0 / kernel_size))
        self.spatial_gain = 1.0 / kernel_size

    def filters(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The normalized spatial (N x k^2 x H x W) and channel (N x C x k^2) filters for x."""
        n = x.shape[0]
        taps = self.kernel_size * self.kernel_size
        spatial = filter_norm(self.spatial_conv(x), dim=1) * self.spatial_gain
        pooled = x.mean(dim=(2, 3), keepdim=True)
        channel = self.channel_expand(self.channel_act(self.channel_squeeze(pooled)))
        channel = filter_norm(channel.view(n, self.channels, taps), dim=2) * self.channel_gain
        return spatial, channel

    def apply_filter(self, x: Tensor, spatial: Tensor, channel: Tensor) -> Tensor:
        """The filtering itself; the exporter swaps this for a custom ONNX node."""
        return torch.ops.gldfn.local_dynamic_filter(x, spatial, channel, self.kernel_size, self.dilation)

    def forward(self, x: Tensor) -> Tensor:
        spatial, channel = self.filters(x)
        return self.apply_filter(x, spatial, channel)

    def functional_macs(self, inputs: tuple[Tensor, ...], output: Tensor) -> dict[str, int]:
        """Work outside the child convs, by complexity.py's conventions (gldfn_model.network.op_count)."""
        n, c, h, w = inputs[0].shape
        taps = self.kernel_size * self.kernel_size
        return {
            "pooling": n * c * h * w,
            "filter_norm": FILTER_NORM_MACS_PER_ELEMENT * n * taps * (h * w + c),
            "dynamic_filter": LDF_MACS_PER_TAP * n * c * taps * h * w,
        }


class GlobalDynamicFilter(nn.Module):
    """Dynamic convolution (Chen et al., CVPR 2020): K candidate kernels mixed per sample by a softmax
    attention with temperature, applied as one grouped convolution with the batch folded into the groups."""

    def __init__(self, channels: int, kernels: int = 4, reduction: int = 4, kernel_size: int = 3) -> None:
        super().__init__()
        self.channels = channels
        self.kernels = kernels
        self.kernel_size = kernel_size
        hidden = max(1, channels // reduction)
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, kernels, 1),
        )
        self.weight = nn.Parameter(torch.empty(kernels, channels, channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(kernels, channels))
        self.temperature = 1.0
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fan_in = self.channels * self.kernel_size * self.kernel_size
        for k in range(self.kernels):
            nn.init.kaiming_uniform_(self.weight[k], a=math.sqrt(5))
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.bias, -bound, bound)

    def attention_weights(self, x: Tensor) -> Tensor:
        """pi: N x K, softmax(logits / tau); tau is 1 outside training."""
        tau = self.temperature if self.training else 1.0
        return torch.softmax(self.attention(x).flatten(1) / tau, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        pi = self.attention_weights(x)
        weight = (pi @ self.weight.flatten(1)).view(n * c, c, self.kernel_size, self.kernel_size)
        bias = (pi @ self.bias).view(n * c)
        y = F.conv2d(x.reshape(1, n * c, h, w), weight, bias, padding=self.kernel_size // 2, groups=n)
        return y.view(n, c, h, w)

    def functional_macs(self, inputs: tuple[Tensor, ...], output: Tensor) -> dict[str, int]:
        """The per-image kernel mixing and the convolution with it (gldfn_model.network.op_count)."""
        n = inputs[0].shape[0]
        per_kernel = self.weight[0].numel() + self.channels
        per_output = self.weight[0, 0].numel()  # C x k x k
        return {"kernel_mixing": n * self.kernels * per_kernel, "dynamic_conv": output.numel() * per_output}


def gdf_temperature(iteration: int, anneal_iterations: int, start: float = 30.0, end: float = 1.0) -> float:
    """Linear annealing of the GDF softmax temperature from ``start`` to ``end`` over the first
    ``anneal_iterations`` iterations (Chen et al. anneal over the first 10 epochs), then constant."""
    if anneal_iterations <= 0 or iteration >= anneal_iterations:
        return end
    return start + (end - start) * iteration / anneal_iterations


def set_gdf_temperature(model: nn.Module, temperature: float) -> None:
    for module in model.modules():
        if isinstance(module, GlobalDynamicFilter):
            module.temperature = temperature
