"""The local dynamic filter as a PyTorch custom op: ``torch.ops.gldfn.local_dynamic_filter``.

out[n, c, y, x] = sum_t spatial[n, t, y, x] * channel[n, c, t] * x[n, c, y + dy_t, x + dx_t]

Taps t run row-major over a k x k window with dilation d, zero padding, no kernel flip; k and d must lie in the
op contract's ranges (gldfn_model/ops/contracts/local_dynamic_filter.json) on every device. The reference
implementation adds one shifted product per tap into the output, restricted to the region where the shifted
input is inside the image, so it never builds a k^2-times unfolded copy of the input: its extra memory is the
output plus one temporary of the input's size. On CUDA tensors the forward runs the project's CUDA kernel instead
(gldfn_model/ops/cuda_ops.py, compiled on first use); the backward is the reference's torch ops on every device.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from gldfn_model.ops.contract import load_contract

OP_NAME = "gldfn::local_dynamic_filter"


def tap_offsets(kernel_size: int, dilation: int) -> list[tuple[int, int]]:
    """(dy, dx) of each tap, row-major, as the op and the plugin order them."""
    half = kernel_size // 2
    return [((i - half) * dilation, (j - half) * dilation) for i in range(kernel_size) for j in range(kernel_size)]


def _tap_regions(height: int, width: int, kernel_size: int, dilation: int) -> Iterator[tuple[int, slice, slice, slice, slice]]:
    """For each tap whose shifted window overlaps the image: its index, the output rows/cols it writes and the
    input rows/cols it reads."""
    for tap, (dy, dx) in enumerate(tap_offsets(kernel_size, dilation)):
        y0, y1 = max(0, -dy), min(height, height - dy)
        x0, x1 = max(0, -dx), min(width, width - dx)
        if y1 <= y0 or x1 <= x0:
            continue
        yield tap, slice(y0, y1), slice(x0, x1), slice(y0 + dy, y1 + dy), slice(x0 + dx, x1 + dx)


def check_ldf_inputs(x: Tensor, spatial: Tensor, channel: Tensor, kernel_size: int, dilation: int) -> None:
    """Shapes, and the attributes against the op contract: every device accepts the ranges the plugin does. Every
    implementation of the op (the reference, the CUDA forward) checks with this."""
    load_contract().validate_attributes(kernel_size, dilation)
    taps = kernel_size * kernel_size
    if x.dim() != 4:
        raise ValueError(f"x must be N x C x H x W, got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    if tuple(spatial.shape) != (n, taps, h, w):
        raise ValueError(f"spatial filter must be {(n, taps, h, w)}, got {tuple(spatial.shape)}")
    if tuple(channel.shape) != (n, c, taps):
        raise ValueError(f"channel filter must be {(n, c, taps)}, got {tuple(channel.shape)}")


def local_dynamic_filter_reference(x: Tensor, spatial: Tensor, channel: Tensor, kernel_size: int, dilation: int) -> Tensor:
    """The op's arithmetic in plain PyTorch, as a sum of shifted products."""
    check_ldf_inputs(x, spatial, channel, kernel_size, dilation)
    out = x.new_zeros(x.shape)  # contiguous, as the CUDA kernel's output, whatever x's memory format
    scratch = torch.empty_like(x)  # one reused temporary keeps the extra memory at two input sizes
    for tap, oy, ox, iy, ix in _tap_regions(x.shape[2], x.shape[3], kernel_size, dilation):
        weighted = scratch[:, :, : oy.stop - oy.start, : ox.stop - ox.start]
        torch.mul(x[:, :, iy, ix], spatial[:, tap : tap + 1, oy, ox], out=weighted)
        out[:, :, oy, ox].addcmul_(weighted, channel[:, :, tap, None, None])
    return out


def _backward_reference(grad: Tensor, x: Tensor, spatial: Tensor, channel: Tensor, kernel_size: int, dilation: int) -> tuple[Tensor, Tensor, Tensor]:
    grad_x = torch.zeros_like(x)
    grad_spatial = torch.zeros_like(spatial)
    grad_channel = torch.zeros_like(channel)
    for tap, oy, ox, iy, ix in _tap_regions(x.shape[2], x.shape[3], kernel_size, dilation):
        g = grad[:, :, oy, ox]
        xs = x[:, :, iy, ix]
        sp = spatial[:, tap : tap + 1, oy, ox]
        ch = channel[:, :, tap, None, None]
        grad_x[:, :, iy, ix].add_(g * sp * ch)
        grad_spatial[:, tap, oy, ox] = (g * xs * ch).sum(dim=1)
        grad_channel[:, :, tap] = (g * xs * sp).sum(dim=(2, 3))
    return grad_x, grad_spatial, grad_channel


@torch.library.custom_op(OP_NAME, mutates_args=())
def local_dynamic_filter(x: Tensor, spatial: Tensor, channel: Tensor, kernel_size: int, dilation: int) -> Tensor:
    return local_dynamic_filter_reference(x, spatial, channel, kernel_size, dilation)


@local_dynamic_filter.register_kernel("cuda")
def _(x: Tensor, spatial: Tensor, channel: Tensor, kernel_size: int, dilation: int) -> Tensor:
    from gldfn_model.ops.cuda_ops import (
        local_dynamic_filter_cuda,  # imported (and compiled) on the first CUDA call only
    )

    return local_dynamic_filter_cuda(x, spatial, channel, kernel_size, dilation)


@local_dynamic_filter.register_fake
def _(x: Tensor, spatial: Tensor, channel: Tensor, kernel_size: int, dilation: int) -> Tensor:
    # Contiguous like every real kernel's output: empty_like would keep a channels-last x's strides, which
    # torch.compile would then assume for a CUDA output that has none of them.
    return x.new_empty(x.shape)


def _setup_context(ctx, inputs, output) -> None:  # noqa: ANN001 - torch.library's callback signature
    x, spatial, channel, kernel_size, dilation = inputs
    ctx.save_for_backward(x, spatial, channel)
    ctx.kernel_size = kernel_size
    ctx.dilation = dilation


def _backward(ctx, grad: Tensor):  # noqa: ANN001, ANN202
    x, spatial, channel = ctx.saved_tensors
    grad_x, grad_spatial, grad_channel = _backward_reference(grad, x, spatial, channel, ctx.kernel_size, ctx.dilation)
    return grad_x, grad_spatial, grad_channel, None, None


local_dynamic_filter.register_autograd(_backward, setup_context=_setup_context)
