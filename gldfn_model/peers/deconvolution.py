"""DCLS's constrained least squares (CLS) deconvolution of feature maps, in the frequency domain.

For each channel c of a feature map F (edge-padded by the kernel size on every side), with blur kernel K and a
per-channel 3x3 smoothness kernel P_c, both turned into transfer functions of the padded size (psf -> otf: zero
padding, then a circular shift that puts the centre tap at the origin):

    clear_c = IFFT( conj(K^) * F_c^ / (|K^|^2 + |P_c^|^2) ),  then cropped back to the unpadded size.

The arithmetic follows ``get_uperleft_denominator``, ``convert_psf2otf``, ``inv_fft_kernel_est`` and ``deconv`` in
``megvii-research/DCLS-SR``, ``codes/utils/dcls_utils.py``. Like the reference (pre-1.8 ``torch.rfft`` with
``onesided=False``) it uses full complex transforms: torch.onnx exports ``irfft2`` as a DFT node (inverse and
onesided on a complex input) that ONNX's shape inference and ONNX Runtime's kernel size differently, so a one-sided
version does not run in ONNX Runtime (docs/table_iv.md). The reference loops over channels and transforms the blur
kernel once per channel; here all channels go through one batched transform and the kernel's is taken once. It
always runs in float32: cuFFT's half-precision transforms need power-of-two sizes.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# Per-bin products of the filter: |K|^2 + |P|^2 (4), conj(K) * F (4) and the division by a real number (2).
SPECTRAL_MACS_PER_BIN = 10


def psf_to_otf(kernel: Tensor, height: int, width: int) -> Tensor:
    """The 2-D transform of ``kernel`` (N x C x k x k, k odd) zero-padded to height x width, circularly shifted so
    that the centre tap sits at (0, 0)."""
    size = kernel.shape[-1]
    padded = F.pad(kernel, (0, width - size, 0, height - size))
    shifted = torch.roll(padded, shifts=(-(size // 2), -(size // 2)), dims=(2, 3))
    return torch.fft.fft2(shifted)


def cls_deconvolution(features: Tensor, kernel: Tensor, smoothness: Tensor) -> Tensor:
    """features N x C x H x W, kernel N x 1 x k x k, smoothness N x C x 3 x 3 -> N x C x H x W."""
    dtype = features.dtype
    features, kernel, smoothness = features.float(), kernel.float(), smoothness.float()
    height, width = features.shape[2], features.shape[3]
    margin = kernel.shape[-1]
    padded = F.pad(features, (margin, margin, margin, margin), mode="replicate")
    padded_height, padded_width = height + 2 * margin, width + 2 * margin
    kernel_otf = psf_to_otf(kernel, padded_height, padded_width)
    smoothness_otf = psf_to_otf(smoothness, padded_height, padded_width)
    denominator = kernel_otf.abs().square() + smoothness_otf.abs().square()
    spectrum = torch.fft.fft2(padded) * kernel_otf.conj() / denominator
    clear = torch.fft.ifft2(spectrum).real
    return clear[:, :, margin : margin + height, margin : margin + width].to(dtype)


def fft_macs(height: int, width: int) -> int:
    """One complex 2-D FFT (or its inverse) of height x width points, by the usual 5 N log2 N flop estimate, halved
    into multiply-accumulates: 2.5 N log2 N."""
    points = height * width
    return round(2.5 * points * math.log2(points))


def cls_deconvolution_macs(batch: int, channels: int, height: int, width: int, margin: int) -> int:
    """MACs of :func:`cls_deconvolution`: 2C + 1 forward transforms (features, smoothness kernels, blur kernel), C
    inverse ones, and the per-bin products, on the padded size."""
    padded_height, padded_width = height + 2 * margin, width + 2 * margin
    transforms = 3 * channels + 1
    bins = padded_height * padded_width
    return batch * (transforms * fft_macs(padded_height, padded_width) + channels * bins * SPECTRAL_MACS_PER_BIN)
