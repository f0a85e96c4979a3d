"""PSNR / SSIM and the two scoring conventions."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal

from gldfn_model.evaluation import metrics


def test_psnr_of_a_known_error():
    a = np.zeros((10, 10))
    b = np.full((10, 10), 5.0)
    assert metrics.psnr(a, b) == pytest.approx(20 * math.log10(255 / 5))
    assert metrics.psnr(a, a) == math.inf


def test_luma_conventions():
    white = np.full((2, 2, 3), 255, np.uint8)
    black = np.zeros((2, 2, 3), np.uint8)
    assert metrics.luma(white, "dcls") == pytest.approx(np.full((2, 2), 235.0), abs=1e-9)
    assert metrics.luma(black, "dcls") == pytest.approx(np.full((2, 2), 16.0))
    assert metrics.luma(white, "ikc") == pytest.approx(np.full((2, 2), 255.0))
    red = np.zeros((1, 1, 3), np.uint8)
    red[..., 0] = 200
    assert metrics.luma(red, "ikc")[0, 0] == round(0.299 * 200)  # an 8-bit gray value
    gray = np.full((3, 3), 100, np.uint8)
    assert metrics.luma(gray, "ikc") == pytest.approx(np.full((3, 3), 100.0))
    with pytest.raises(metrics.MetricError, match="unknown scoring convention"):
        metrics.luma(white, "matlab")


def _ssim_map_by_definition(a, b, mode):
    """SSIM map with 2-D convolutions (``valid`` or zero-padded ``same``), straight from Wang et al."""
    g = np.exp(-0.5 * (np.arange(-5, 6) / 1.5) ** 2)
    window = np.outer(g, g) / np.outer(g, g).sum()
    f = lambda x: scipy.signal.convolve2d(x, window, mode=mode)  # noqa: E731 (symmetric window: conv = corr)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ma, mb = f(a), f(b)
    va, vb, cov = f(a * a) - ma**2, f(b * b) - mb**2, f(a * b) - ma * mb
    return ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))


def test_ssim_matches_the_definition_for_both_borders():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (30, 26)).astype(float)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255)
    assert metrics.ssim(a, b) == pytest.approx(_ssim_map_by_definition(a, b, "valid").mean(), abs=1e-10)
    assert metrics.ssim(a, b, border="zero") == pytest.approx(_ssim_map_by_definition(a, b, "same").mean(), abs=1e-10)
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert metrics.ssim(a, b) < 0.99 and metrics.ssim(a, 255 - a) < 0


def test_score_crops_the_border_only_for_dcls():
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    damaged = hr.copy()
    damaged[:4] = 0  # only the 4-pixel top border differs
    assert metrics.score(damaged, hr, 4, "dcls").psnr == math.inf
    assert metrics.score(damaged, hr, 4, "ikc").psnr < 30


def test_score_rounds_float_images_to_uint8():
    rng = np.random.default_rng(2)
    hr = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    nearly = hr / 255.0 + 0.4 / 255.0  # rounds back to hr
    assert metrics.score(nearly, hr, 2).psnr == math.inf


def test_studio_range_lifts_psnr_by_the_range_ratio():
    rng = np.random.default_rng(3)
    hr = rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)
    noisy = np.clip(hr + rng.normal(0, 8, hr.shape), 0, 255).round().astype(np.uint8)
    full = metrics.psnr(hr.astype(float) @ [0.299, 0.587, 0.114], noisy.astype(float) @ [0.299, 0.587, 0.114])
    studio = metrics.score(noisy, hr, 0, "dcls").psnr
    # 65.481 + 128.553 + 24.966 = 219, and the studio weights are 219/255 of the full-range ones (to 1e-3)
    assert studio - full == pytest.approx(20 * math.log10(255 / 219), abs=0.02)


def test_bad_inputs():
    with pytest.raises(metrics.MetricError, match="differ in size"):
        metrics.score(np.zeros((8, 8, 3)), np.zeros((8, 9, 3)), 2)
    with pytest.raises(metrics.MetricError, match="at least 11x11"):
        metrics.ssim(np.zeros((8, 30)), np.zeros((8, 30)))
    with pytest.raises(metrics.MetricError, match="RGB"):
        metrics.luma(np.zeros((4, 4, 2)), "dcls")
