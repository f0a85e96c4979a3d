"""DCLS (Luo et al., "Deep Constrained Least Squares for Blind Image Super-Resolution", CVPR 2022), as an inference
network with random weights, for cost and deployability.

Layer structure, widths and kernel sizes follow ``megvii-research/DCLS-SR``,
``codes/config/DCLS/models/modules/dcls_arch.py`` (with ``module_util.py``'s residual block and channel attention)
and the x4 test options ``codes/config/DCLS/options/setting1/test/test_setting1_x4.yml``: nf 64, nb 10, ng 5,
input_para 256, kernel_size 21 (so the kernel generator's filters are 11, 7, 5, 1), reduction 4. The code is ours.

An Estimator predicts the blur kernel once, as the composition of four per-image convolution filters that linear
layers generate from a 256-long latent; the Restorer deconvolves its features with that kernel in the frequency
domain (``gldfn_model.peers.deconvolution``) and refines them with dual-path channel-attention blocks.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gldfn_model.peers import PeerError
from gldfn_model.peers.blocks import (
    ChannelAttention,
    DualPathSkipGroup,
    ResidualBlockNoBN,
    SlicedAdaptiveAvgPool2d,
    pixel_shuffle_upsampler,
)
from gldfn_model.peers.deconvolution import cls_deconvolution, cls_deconvolution_macs

# dcls_arch.py picks the kernel generator's filter sizes from the kernel size.
FILTER_STRUCTURES = {21: (11, 7, 5, 1), 11: (7, 3, 3, 1), 31: (11, 9, 7, 5, 3)}


@dataclass(frozen=True)
class DCLSConfig:
    """Option values of ``test_setting1_x4.yml`` plus the class defaults the options leave in place: the
    Estimator's 3 residual blocks and 16 generator channels, and the CLS reduction 4."""

    nf: int = 64
    nb: int = 10
    ng: int = 5
    input_para: int = 256
    kernel_size: int = 21
    reduction: int = 4
    estimator_blocks: int = 3
    generator_channels: int = 16
    scale: int = 4
    in_channels: int = 3

    @property
    def filter_structures(self) -> tuple[int, ...]:
        if self.kernel_size not in FILTER_STRUCTURES:
            raise PeerError(f"DCLS defines kernel generators for kernel sizes {sorted(FILTER_STRUCTURES)}, "
                            f"not {self.kernel_size}")
        return FILTER_STRUCTURES[self.kernel_size]


class KernelEstimator(nn.Module):
    """conv7x7 head, 3 residual blocks with a skip, two valid 3x3 convs, global pool, conv1x1 to the latent; one
    linear layer per generator filter; the kernel is the filters' composition applied to a delta, flipped,
    averaged over colour channels and normalised to sum 1."""

    def __init__(self, config: DCLSConfig) -> None:
        super().__init__()
        nf, c, g = config.nf, config.in_channels, config.generator_channels
        self.config = config
        self.head = nn.Conv2d(c, nf, 7, padding=3)
        self.body = nn.Sequential(*(ResidualBlockNoBN(nf) for _ in range(config.estimator_blocks)))
        self.tail = nn.Sequential(
            nn.Conv2d(nf, nf, 3), nn.LeakyReLU(0.1), nn.Conv2d(nf, nf, 3),
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(nf, config.input_para, 1), nn.Flatten(),
        )
        sizes = config.filter_structures
        shapes = [(g, c if i == 0 else g, size) for i, size in enumerate(sizes[:-1])] + [(c, g, sizes[-1])]
        self.filter_shapes = shapes  # (out, in, side) of each generated filter
        self.generators = nn.ModuleList(nn.Linear(config.input_para, o * i * s * s) for o, i, s in shapes)

    def compose(self, filters: list[Tensor], batch: int) -> Tensor:
        """The kernel of a chain of per-image filters (batch folded into the groups): convolve a delta with each."""
        c, size = self.config.in_channels, self.config.kernel_size
        kernel = filters[0].new_ones(1, batch * c, 1, 1)
        for index, weight in enumerate(filters):
            kernel = F.conv2d(kernel, weight, padding=size - 1 if index == 0 else 0, groups=batch)
        kernel = kernel.reshape(batch, c, size, size).flip([2, 3]).mean(dim=1, keepdim=True)
        return kernel / kernel.sum(dim=(2, 3), keepdim=True)

    def forward(self, lr: Tensor) -> Tensor:
        batch = lr.shape[0]
        head = self.head(lr)
        latent = self.tail(self.body(head) + head)
        filters = [gen(latent).reshape(batch * o, i, s, s)
                   for gen, (o, i, s) in zip(self.generators, self.filter_shapes)]
        return self.compose(filters, batch)

    def functional_macs(self, inputs: tuple[Tensor, ...], output: Tensor) -> dict[str, int]:
        """The composition convolutions, outside any child module (see gldfn_model.network.op_count)."""
        side, macs = 1 + 2 * (self.config.kernel_size - 1), 0
        for out_channels, in_channels, size in self.filter_shapes:
            side -= size - 1
            macs += out_channels * side * side * in_channels * size * size
        return {"dynamic_conv": inputs[0].shape[0] * macs}


class ConstrainedLeastSquares(nn.Module):
    """DCLS's CLS module: conv1x1 down to C / reduction, a small net of valid 3x3 convs + 3x3 adaptive pool that
    predicts one zero-mean 3x3 smoothness kernel per channel (exp, minus its mean), the frequency-domain
    deconvolution with the estimated blur kernel, conv1x1 back to C."""

    def __init__(self, nf: int, reduction: int) -> None:
        super().__init__()
        narrow = nf // reduction
        self.reduce = nn.Conv2d(nf, narrow, 1)
        self.smoothness = nn.Sequential(
            nn.Conv2d(narrow, narrow, 3), nn.LeakyReLU(0.1),
            nn.Conv2d(narrow, narrow, 3), nn.LeakyReLU(0.1),
            nn.Conv2d(narrow, narrow, 3), SlicedAdaptiveAvgPool2d((3, 3)), nn.Conv2d(narrow, narrow, 1),
        )
        self.expand = nn.Conv2d(narrow, nf, 1)

    def forward(self, features: Tensor, kernel: Tensor) -> Tensor:
        narrow = self.reduce(features)
        smoothness = torch.exp(self.smoothness(narrow))
        smoothness = smoothness - smoothness.mean(dim=(2, 3), keepdim=True)
        return self.expand(cls_deconvolution(narrow, kernel, smoothness))

    def functional_macs(self, inputs: tuple[Tensor, ...], output: Tensor) -> dict[str, int]:
        """The FFT deconvolution, outside any child module (see gldfn_model.network.op_count)."""
        features, kernel = inputs
        n, _, h, w = features.shape
        return {"fft": cls_deconvolution_macs(n, self.reduce.out_channels, h, w, kernel.shape[-1])}


class DualPathAttentionBlock(nn.Module):
    """DCLS's DPCAB: x0 + CA(conv3x3(lrelu(concat(path1(x0), path2(x1))))), x1 + CA(path2(x1)); paths conv ->
    lrelu_0.1 -> conv."""

    def __init__(self, nf1: int, nf2: int, reduction: int) -> None:
        super().__init__()
        self.path1 = nn.Sequential(
            nn.Conv2d(nf1, nf1, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(nf1, nf1, 3, padding=1))
        self.path2 = nn.Sequential(
            nn.Conv2d(nf2, nf2, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(nf2, nf2, 3, padding=1))
        self.merge = nn.Sequential(
            nn.LeakyReLU(0.1), nn.Conv2d(nf1 + nf2, nf1, 3, padding=1), ChannelAttention(nf1, reduction, nn.ReLU()),
        )
        self.attention2 = ChannelAttention(nf2, reduction, nn.ReLU())

    def forward(self, x0: Tensor, x1: Tensor) -> tuple[Tensor, Tensor]:
        f1, f2 = self.path1(x0), self.path2(x1)
        return x0 + self.merge(torch.cat([f1, f2], dim=1)), x1 + self.attention2(f2)


class DualPathAttentionGroup(DualPathSkipGroup):
    """DCLS's DPCAG: nb DPCABs with a skip around the group on both paths (the reference's list aliasing makes that
    skip add the output to itself; the cost is the same)."""

    def __init__(self, nf1: int, nf2: int, reduction: int, blocks: int) -> None:
        super().__init__(DualPathAttentionBlock(nf1, nf2, reduction) for _ in range(blocks))


class DCLSRestorer(nn.Module):
    """conv3x3 + 3 residual blocks; a conv3x3 path down to nf / 4 and the CLS path; ng groups of nb DPCABs on
    (CLS features, narrow features); conv3x3 fusion of both plus the first conv's output; upsampler; clamp to
    [0, 1]."""

    def __init__(self, config: DCLSConfig) -> None:
        super().__init__()
        nf, narrow = config.nf, config.nf // config.reduction
        self.conv_first = nn.Conv2d(config.in_channels, nf, 3, padding=1)
        self.features = nn.Sequential(*(ResidualBlockNoBN(nf) for _ in range(3)))
        self.head_narrow = nn.Conv2d(nf, narrow, 3, padding=1)
        self.head_cls = ConstrainedLeastSquares(nf, config.reduction)
        self.body = nn.ModuleList(
            DualPathAttentionGroup(nf, narrow, config.reduction, config.nb) for _ in range(config.ng))
        self.fusion = nn.Conv2d(nf + narrow, nf, 3, padding=1)
        self.upscale = pixel_shuffle_upsampler(nf, config.in_channels, config.scale)

    def forward(self, lr: Tensor, kernel: Tensor) -> Tensor:
        first = self.conv_first(lr)
        features = self.features(first)
        wide, narrow = self.head_cls(features, kernel), self.head_narrow(features)
        for group in self.body:
            wide, narrow = group(wide, narrow)
        fused = self.fusion(torch.cat([narrow, wide], dim=1)) + first
        return self.upscale(fused).clamp(0.0, 1.0)


class DCLS(nn.Module):
    """DCLS, ``test_setting1_x4.yml``: the kernel is estimated once, then the Restorer runs once."""

    def __init__(self, config: DCLSConfig = DCLSConfig()) -> None:
        super().__init__()
        self.config = config
        self.estimator = KernelEstimator(config)
        self.restorer = DCLSRestorer(config)

    def forward(self, lr: Tensor) -> Tensor:
        return self.restorer(lr, self.estimator(lr))
