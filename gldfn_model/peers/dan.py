"""DANv1 and DANv2 (Luo et al., "Unfolding the Alternating Optimization for Blind Super Resolution", NeurIPS 2020,
and its journal version), as inference networks with random weights, for cost and deployability.

Layer structure, widths, iteration counts and kernel sizes follow the public definitions in ``greatlog/DAN``:
``codes/config/DANv1/models/modules/dan_arch.py`` and ``codes/config/DANv2/models/modules/dan_arch.py`` with the
x4 test options ``codes/config/DANv{1,2}/options/setting1/test/test_setting1_x4.yml``. The code is ours.

Both alternate a Restorer (SR image from the LR image and a kernel code) and an Estimator (kernel code from the
SR and the LR images), starting from the code of a delta kernel. The code is a projection of the 21x21 kernel onto
a PCA basis; the basis is data (a buffer, not a parameter), and a fixed cosine basis stands in for it here.
Inference stops after the last Restorer: the reference forward also runs the Estimator on the final SR image, but
that kernel estimate does not reach the returned image (see ``estimator_passes``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gldfn_model.peers.blocks import ChannelAttention, DualPathSkipGroup, pixel_shuffle_upsampler


@dataclass(frozen=True)
class DANConfig:
    """Option values of ``test_setting1_x4.yml``: nf, nb (blocks per group), ng (groups; DANv2 only), input_para
    (kernel code length), loop (Restorer/Estimator iterations), kernel_size (blur kernel side). The Estimator's
    width (64, halved inside) and its 5 blocks are the ``Estimator`` class defaults the DAN class leaves in place."""

    version: int = 1
    nf: int = 64
    nb: int = 40
    ng: int = 1
    input_para: int = 10
    loop: int = 4
    kernel_size: int = 21
    estimator_nf: int = 64
    estimator_blocks: int = 5
    scale: int = 4
    in_channels: int = 3

    @property
    def estimator_passes(self) -> int:
        """Estimator runs per image at inference: between Restorer runs only."""
        return self.loop - 1


DANV1 = DANConfig(version=1, nb=40, ng=1)
DANV2 = DANConfig(version=2, nb=10, ng=5)


def cosine_basis(taps: int, length: int) -> Tensor:
    """An orthonormal taps x length DCT-II basis: a deterministic stand-in for the trained PCA matrix."""
    index = torch.arange(taps, dtype=torch.float32)[:, None]
    order = torch.arange(length, dtype=torch.float32)[None, :]
    basis = torch.cos(math.pi * (index + 0.5) * order / taps) * math.sqrt(2.0 / taps)
    basis[:, 0] = 1.0 / math.sqrt(taps)
    return basis


class _DAN(nn.Module):
    """The alternation shared by both versions; subclasses build ``restorer`` and ``estimator``."""

    config: DANConfig

    def _register_basis(self) -> None:
        config = self.config
        taps = config.kernel_size**2
        basis = cosine_basis(taps, config.input_para)
        self.register_buffer("encoder", basis, persistent=False)
        # The code of a delta kernel (all weight at the centre tap) starts the alternation.
        self.register_buffer("initial_code", basis[taps // 2].clone(), persistent=False)

    def estimate_code(self, sr: Tensor, lr: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, lr: Tensor) -> Tensor:
        code = self.initial_code.expand(lr.shape[0], -1)
        for step in range(self.config.loop):
            sr = self.restorer(lr, code)
            if step < self.config.estimator_passes:
                code = self.estimate_code(sr, lr)
        return sr


# ---------------------------------------------------------------------------------------------------- DANv1
class ConditionalResidualBlock(nn.Module):
    """DANv1's CRB: f + CA(conv3x3(lrelu(conv3x3(concat(f, condition))))); the condition passes through."""

    def __init__(self, channels: int, condition_channels: int) -> None:
        super().__init__()
        both = channels + condition_channels
        self.body = nn.Sequential(
            nn.Conv2d(both, both, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(both, channels, 3, padding=1),
            ChannelAttention(channels, 16, nn.LeakyReLU(0.2)),
        )

    def forward(self, features: Tensor, condition: Tensor) -> Tensor:
        return features + self.body(torch.cat([features, condition], dim=1))


class RestorerV1(nn.Module):
    """conv3x3 head, nb CRBs conditioned on the kernel code stretched to H x W, conv3x3 fusion, upsampler."""

    def __init__(self, config: DANConfig) -> None:
        super().__init__()
        nf = config.nf
        self.head = nn.Conv2d(config.in_channels, nf, 3, padding=1)
        self.body = nn.ModuleList(ConditionalResidualBlock(nf, config.input_para) for _ in range(config.nb))
        self.fusion = nn.Conv2d(nf, nf, 3, padding=1)
        self.upscale = pixel_shuffle_upsampler(nf, config.in_channels, config.scale)

    def forward(self, lr: Tensor, code: Tensor) -> Tensor:
        condition = code[:, :, None, None].expand(-1, -1, lr.shape[2], lr.shape[3])
        features = self.head(lr)
        for block in self.body:
            features = block(features, condition)
        return self.upscale(self.fusion(features))


class EstimatorV1(nn.Module):
    """LR head conv1x1, SR head conv9x9 with stride s (back to LR size), 5 CRBs on the LR stream conditioned on
    the SR stream, conv3x3 to the code length, global average pool."""

    def __init__(self, config: DANConfig) -> None:
        super().__init__()
        half = config.estimator_nf // 2
        self.head_lr = nn.Conv2d(config.in_channels, half, 1)
        self.head_sr = nn.Conv2d(config.in_channels, half, 9, stride=config.scale, padding=4)
        self.body = nn.ModuleList(ConditionalResidualBlock(half, half) for _ in range(config.estimator_blocks))
        self.out = nn.Conv2d(half, config.input_para, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, sr: Tensor, lr: Tensor) -> Tensor:
        features, condition = self.head_lr(lr), self.head_sr(sr)
        for block in self.body:
            features = block(features, condition)
        return self.pool(self.out(features)).flatten(1)


class DANv1(_DAN):
    """DANv1, ``test_setting1_x4.yml``: nf 64, nb 40, input_para 10, loop 4, kernel_size 21."""

    def __init__(self, config: DANConfig = DANV1) -> None:
        super().__init__()
        self.config = config
        self.restorer = RestorerV1(config)
        self.estimator = EstimatorV1(config)
        self._register_basis()

    def estimate_code(self, sr: Tensor, lr: Tensor) -> Tensor:
        return self.estimator(sr, lr)


# ---------------------------------------------------------------------------------------------------- DANv2
class DualPathBlock(nn.Module):
    """DANv2's DPCB: x0 + path1(x0) * path2(x1), x1 + path2(x1); each path conv -> lrelu -> conv."""

    def __init__(self, channels: int, condition_channels: int, kernel1: int, kernel2: int) -> None:
        super().__init__()
        self.path1 = nn.Sequential(
            nn.Conv2d(channels, channels, kernel1, padding=kernel1 // 2), nn.LeakyReLU(0.2),
            nn.Conv2d(channels, channels, kernel1, padding=kernel1 // 2),
        )
        self.path2 = nn.Sequential(
            nn.Conv2d(condition_channels, channels, kernel2, padding=kernel2 // 2), nn.LeakyReLU(0.2),
            nn.Conv2d(channels, channels, kernel2, padding=kernel2 // 2),
        )

    def forward(self, x0: Tensor, x1: Tensor) -> tuple[Tensor, Tensor]:
        gate = self.path2(x1)
        return x0 + self.path1(x0) * gate, x1 + gate


class DualPathGroup(DualPathSkipGroup):
    """DANv2's DPCG: nb DPCBs with a skip around the group on both paths. (The reference code's in-place list
    updates alias its input and output, so its group skip adds the output to itself; the cost is the same.)"""

    def __init__(self, channels: int, condition_channels: int, kernel1: int, kernel2: int, blocks: int) -> None:
        super().__init__(DualPathBlock(channels, condition_channels, kernel1, kernel2) for _ in range(blocks))


class RestorerV2(nn.Module):
    """conv3x3 head on the LR image, conv1x1 head on the kernel code (a 1 x 1 map: the code path costs almost
    nothing), ng groups of nb DPCBs (3x3 image path, 1x1 code path), conv3x3 fusion, upsampler."""

    def __init__(self, config: DANConfig) -> None:
        super().__init__()
        nf = config.nf
        self.head_image = nn.Conv2d(config.in_channels, nf, 3, padding=1)
        self.head_code = nn.Conv2d(config.input_para, nf, 1)
        self.body = nn.ModuleList(DualPathGroup(nf, nf, 3, 1, config.nb) for _ in range(config.ng))
        self.fusion = nn.Conv2d(nf, nf, 3, padding=1)
        self.upscale = pixel_shuffle_upsampler(nf, config.in_channels, config.scale)

    def forward(self, lr: Tensor, code: Tensor) -> Tensor:
        features, condition = self.head_image(lr), self.head_code(code[:, :, None, None])
        for group in self.body:
            features, condition = group(features, condition)
        return self.upscale(self.fusion(features))


class EstimatorV2(nn.Module):
    """LR head conv5x5, SR head conv(4s+1) with stride s, one group of 5 DPCBs (3x3 on both paths), conv3x3 to
    64, global average pool, conv1x1 to the kernel's k^2 taps, softmax: the kernel itself."""

    def __init__(self, config: DANConfig) -> None:
        super().__init__()
        half, s = config.estimator_nf // 2, config.scale
        self.head_lr = nn.Conv2d(config.in_channels, half, 5, padding=2)
        self.head_sr = nn.Conv2d(config.in_channels, half, 4 * s + 1, stride=s, padding=2 * s)
        self.body = DualPathGroup(half, half, 3, 3, config.estimator_blocks)
        self.tail = nn.Sequential(
            nn.Conv2d(half, config.estimator_nf, 3, padding=1), nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(config.estimator_nf, config.kernel_size**2, 1), nn.Softmax(dim=1),
        )

    def forward(self, sr: Tensor, lr: Tensor) -> Tensor:
        features, _ = self.body(self.head_lr(lr), self.head_sr(sr))
        return self.tail(features).flatten(1)


class DANv2(_DAN):
    """DANv2, ``test_setting1_x4.yml``: nf 64, nb 10, ng 5, input_para 10, loop 4, kernel_size 21.

    The Estimator returns the kernel (k^2 taps); its PCA code (kernel @ basis, a matrix product per image and
    pass) feeds the next Restorer."""

    def __init__(self, config: DANConfig = DANV2) -> None:
        super().__init__()
        self.config = config
        self.restorer = RestorerV2(config)
        self.estimator = EstimatorV2(config)
        self._register_basis()

    def estimate_code(self, sr: Tensor, lr: Tensor) -> Tensor:
        return self.estimator(sr, lr) @ self.encoder

    def functional_macs(self, inputs: tuple[Tensor, ...], output: Tensor) -> dict[str, int]:
        """The kernel -> code projections, outside any child module (see gldfn_model.network.op_count)."""
        batch = inputs[0].shape[0]
        return {"matmul": batch * self.config.estimator_passes * self.encoder.numel()}
