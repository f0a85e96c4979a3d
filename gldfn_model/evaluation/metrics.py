"""PSNR and SSIM under the two scoring conventions found in the blind-SR literature.

- ``dcls`` (DAN / DCLS test code; the methods' rows in the GLDFN tables): both images rounded to uint8,
  converted to the Y channel of BT.601 YCbCr in the studio range (16-235, computed in float, not rounded),
  ``scale`` pixels cropped from every border, SSIM averaged over the window positions that lie fully inside the image.
- ``ikc`` (reproduces the *Bicubic* rows that later tables copied from IKC): images rounded to uint8, full-range
  luma ``0.299 R + 0.587 G + 0.114 B`` rounded to an 8-bit gray image, no border crop, SSIM averaged over every
  pixel with the window zero-padded at the borders (MATLAB ``filter2(..., 'same')``). We chose these details
  because together they reproduce the published Set5 x4 Gaussian8 bicubic row (24.57 dB / 0.7108); the SSIM
  padding moves that SSIM by about 0.01, the rounding and the crop by under 0.001.

Both compute PSNR with peak 255 on the 0-255 scale and SSIM (Wang et al. 2004) with an 11x11 Gaussian window of
sigma 1.5, K1 = 0.01, K2 = 0.03.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.ndimage

from gldfn_model.common.errors import GldfnError

CONVENTIONS = ("dcls", "ikc")
_BT601_STUDIO = np.array([65.481, 128.553, 24.966]) / 255.0  # Y = 16 + these . (R, G, B) for RGB in 0-255
_FULL_RANGE_LUMA = np.array([0.299, 0.587, 0.114])
_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # 11x11 window


class MetricError(GldfnError, ValueError):
    """Images that cannot be compared, or an unknown convention."""


def check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise MetricError(f"unknown scoring convention {convention!r} (use one of {', '.join(CONVENTIONS)})")
    return convention


def quantize_uint8(image: np.ndarray) -> np.ndarray:
    """Float in [0, 1] -> uint8 with rounding and clipping; uint8 passes through."""
    if image.dtype == np.uint8:
        return image
    return np.clip(np.round(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def luma(image: np.ndarray, convention: str) -> np.ndarray:
    """Luma (0-255 scale, float64) of an ``H x W x 3`` RGB uint8 image (or ``H x W`` gray) under ``convention``."""
    check_convention(convention)
    pixels = np.asarray(image, dtype=np.float64)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise MetricError(f"expected an H x W x 3 RGB image, got shape {image.shape}")
    if convention == "dcls":
        return 16.0 + pixels @ _BT601_STUDIO
    return np.round(pixels @ _FULL_RANGE_LUMA)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB of two same-shape arrays on a scale whose peak is ``peak``; inf for identical arrays."""
    if a.shape != b.shape:
        raise MetricError(f"PSNR of arrays of different shapes {a.shape} and {b.shape}")
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


SSIM_BORDERS = ("valid", "zero")


def _gaussian_window_mean(x: np.ndarray, border: str) -> np.ndarray:
    """Local Gaussian-weighted mean over 11x11 windows (separable): at the window positions fully inside the
    image (``valid``), or at every pixel with zeros outside the image (``zero``)."""
    taps = np.exp(-0.5 * (np.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1) / _SSIM_SIGMA) ** 2)
    taps /= taps.sum()
    mode = "constant" if border == "zero" else "reflect"
    out = scipy.ndimage.correlate1d(x, taps, axis=0, mode=mode, cval=0.0)
    out = scipy.ndimage.correlate1d(out, taps, axis=1, mode=mode, cval=0.0)
    r = _SSIM_RADIUS
    return out if border == "zero" else out[r:-r, r:-r]


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0, border: str = "valid") -> float:
    """Mean SSIM of two same-shape 2-D arrays (0-``peak`` scale), 11x11 Gaussian window, sigma 1.5; ``border``
    is ``valid`` (window positions inside the image) or ``zero`` (every pixel, zero padding)."""
    if border not in SSIM_BORDERS:
        raise MetricError(f"unknown SSIM border handling {border!r} (use one of {', '.join(SSIM_BORDERS)})")
    if a.shape != b.shape or a.ndim != 2:
        raise MetricError(f"SSIM needs two 2-D arrays of the same shape, got {a.shape} and {b.shape}")
    if min(a.shape) < 2 * _SSIM_RADIUS + 1:
        raise MetricError(f"SSIM needs images of at least {2 * _SSIM_RADIUS + 1}x{2 * _SSIM_RADIUS + 1} pixels, got {a.shape}")
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mean = lambda x: _gaussian_window_mean(x, border)  # noqa: E731
    mu_a, mu_b = mean(a), mean(b)
    var_a = mean(a * a) - mu_a**2
    var_b = mean(b * b) - mu_b**2
    cov = mean(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


@dataclass(frozen=True)
class Score:
    psnr: float
    ssim: float


def score(restored: np.ndarray, reference: np.ndarray, scale: int, convention: str = "dcls") -> Score:
    """PSNR / SSIM of a restored image against its HR reference (both ``H x W x 3``; uint8, or float in [0, 1]
    which is rounded to uint8 first) under ``convention``."""
    check_convention(convention)
    if restored.shape != reference.shape:
        raise MetricError(f"restored image {restored.shape} and reference {reference.shape} differ in size")
    y_restored = luma(quantize_uint8(restored), convention)
    y_reference = luma(quantize_uint8(reference), convention)
    if convention == "ikc":
        return Score(psnr(y_restored, y_reference), ssim(y_restored, y_reference, border="zero"))
    if scale > 0:
        y_restored = y_restored[scale:-scale, scale:-scale]
        y_reference = y_reference[scale:-scale, scale:-scale]
    return Score(psnr(y_restored, y_reference), ssim(y_restored, y_reference, border="valid"))
