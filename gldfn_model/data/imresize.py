"""MATLAB-compatible bicubic ``imresize`` (with antialiasing when shrinking), for NumPy arrays and batched
torch tensors.

MATLAB resizes each dimension separately. For an output pixel ``u`` (1-based) and scale ``s`` it samples
the input at ``x = u / s + (1 - 1 / s) / 2``, weighting the input pixels within the kernel's support by the
Keys cubic kernel (a = -0.5). When shrinking (``s < 1``) with antialiasing the kernel is stretched to
``s * cubic(s * t)`` so it also acts as a low-pass filter. Weights are normalised to sum to 1, and
out-of-range input indices are mirrored (``..., 2, 1, 1, 2, ..., n, n, n-1, ...``).

Both the NumPy and the torch path apply the same per-dimension weight matrices (built here in float64), so
``imresize(x) == imresize_torch(x)`` up to floating-point rounding of the chosen dtype.
"""
from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

_CUBIC_SUPPORT = 4.0  # the Keys cubic kernel is non-zero on (-2, 2)


def cubic(t: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    a = np.abs(t)
    a2, a3 = a * a, a * a * a
    near = (1.5 * a3 - 2.5 * a2 + 1.0) * (a <= 1)
    far = (-0.5 * a3 + 2.5 * a2 - 4.0 * a + 2.0) * ((a > 1) & (a <= 2))
    return near + far


def output_size(in_size: int, scale: float) -> int:
    """MATLAB's output length for a scale factor: ``ceil(in_size * scale)``."""
    return int(math.ceil(in_size * scale - 1e-9))


@functools.lru_cache(maxsize=64)
def resize_matrix(in_size: int, out_size: int, scale: float, antialias: bool = True) -> np.ndarray:
    """The ``out_size x in_size`` float64 matrix that resizes one dimension as MATLAB's ``imresize`` does.

    Rows sum to 1. Mirrored boundary indices are folded into the matrix, so applying it is a plain product.
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f"imresize: sizes must be positive (input {in_size}, output {out_size})")
    shrink = scale < 1 and antialias
    kernel_width = _CUBIC_SUPPORT / scale if shrink else _CUBIC_SUPPORT
    u = np.arange(1, out_size + 1, dtype=np.float64)
    x = u / scale + 0.5 * (1.0 - 1.0 / scale)  # 1-based input coordinate of each output pixel
    left = np.floor(x - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]  # 1-based, may fall outside [1, in_size]
    distance = x[:, None] - indices
    weights = scale * cubic(scale * distance) if shrink else cubic(distance)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_size), np.arange(in_size - 1, -1, -1)])
    columns = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_size)]
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    np.add.at(matrix, (np.repeat(np.arange(out_size), taps), columns.ravel()), weights.ravel())
    matrix.setflags(write=False)
    return matrix


def _check_scale(scale: float) -> float:
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"imresize: scale must be a positive number, got {scale!r}")
    return float(scale)


def imresize(image: np.ndarray, scale: float, antialias: bool = True) -> np.ndarray:
    """Resize an ``H x W`` or ``H x W x C`` array by ``scale`` as MATLAB's ``imresize(image, scale, 'bicubic')``.

    Integer inputs are converted to float64; the result is float64 and is neither clipped nor rounded
    (MATLAB rounds and saturates uint8 results: do that yourself where you need it).
    """
    scale = _check_scale(scale)
    array = np.asarray(image)
    if array.ndim not in (2, 3):
        raise ValueError(f"imresize: expected an HxW or HxWxC array, got shape {array.shape}")
    array = array.astype(np.float64, copy=False)
    height, width = array.shape[:2]
    rows = resize_matrix(height, output_size(height, scale), scale, antialias)
    cols = resize_matrix(width, output_size(width, scale), scale, antialias)
    if array.ndim == 2:
        return rows @ array @ cols.T
    resized_rows = np.tensordot(rows, array, axes=(1, 0))  # out_h x W x C
    return np.tensordot(cols, resized_rows, axes=(1, 1)).transpose(1, 0, 2)  # out_h x out_w x C


def imresize_torch(images: torch.Tensor, scale: float, antialias: bool = True) -> torch.Tensor:
    """Resize the last two dimensions of a ``... x H x W`` floating-point tensor (e.g. ``B x C x H x W``) by
    ``scale`` with the same weights as :func:`imresize`, in the tensor's dtype and device."""
    import torch  # here, so that the NumPy path does not load PyTorch

    scale = _check_scale(scale)
    if images.ndim < 2 or not images.is_floating_point():
        raise ValueError(f"imresize_torch: expected a floating-point ... x H x W tensor, got {images.dtype} {tuple(images.shape)}")
    height, width = images.shape[-2:]
    rows = torch.tensor(resize_matrix(height, output_size(height, scale), scale, antialias), dtype=images.dtype, device=images.device)
    cols = torch.tensor(resize_matrix(width, output_size(width, scale), scale, antialias), dtype=images.dtype, device=images.device)
    return rows @ images @ cols.T
