"""Degradation model (Eq. 1): kernels, samplers, batched implementation and its single-image wrapper."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from gldfn_model.data import degradation as deg
from gldfn_model.data.imresize import imresize


def test_isotropic_kernel_sums_to_one_is_symmetric_and_has_its_width():
    kernel = deg.isotropic_gaussian_kernel(2.0, 21)
    assert kernel.shape == (21, 21)
    assert kernel.sum() == pytest.approx(1.0)
    assert np.allclose(kernel, kernel.T) and np.allclose(kernel, kernel[::-1])
    assert kernel.argmax() == 10 * 21 + 10
    axis = np.arange(21) - 10
    variance = (kernel.sum(axis=0) * axis**2).sum()
    assert variance == pytest.approx(4.0, rel=1e-3)


def test_anisotropic_kernel_is_rotated_isotropic_when_widths_equal():
    assert np.allclose(deg.anisotropic_gaussian_kernel(1.7, 1.7, 0.9, 21), deg.isotropic_gaussian_kernel(1.7, 21))
    kernel = deg.anisotropic_gaussian_kernel(4.0, 1.0, 0.0, 31)
    assert kernel.sum() == pytest.approx(1.0)
    axis = np.arange(31) - 15
    assert (kernel.sum(axis=0) * axis**2).sum() == pytest.approx(16.0, rel=5e-3)  # variance along x (truncated at 3.75 sigma)
    assert (kernel.sum(axis=1) * axis**2).sum() == pytest.approx(1.0, rel=1e-3)  # variance along y
    turned = deg.anisotropic_gaussian_kernel(4.0, 1.0, math.pi / 2, 31)
    assert np.allclose(turned, kernel.T, atol=1e-12)


def test_gaussian8_sigmas_and_training_ranges():
    assert deg.gaussian8_sigmas(4) == pytest.approx(list(np.linspace(1.8, 3.2, 8)))
    assert deg.gaussian8_sigmas(2)[0] == pytest.approx(0.8) and deg.gaussian8_sigmas(3)[-1] == pytest.approx(2.4)
    assert deg.training_sigma_range(3) == (0.2, 3.0)
    with pytest.raises(deg.DegradationError, match="x5"):
        deg.gaussian8_sigmas(5)


def test_modcrop_keeps_top_left():
    image = np.arange(7 * 10 * 3).reshape(7, 10, 3)
    cropped = deg.modcrop(image, 4)
    assert cropped.shape == (4, 8, 3)
    assert np.array_equal(cropped, image[:4, :8])


def test_defocus_and_motion_kernels():
    disk = deg.defocus_kernel(3.0, 21)
    assert disk.sum() == pytest.approx(1.0) and np.allclose(disk, disk.T)
    assert disk[10, 10] > 0 and disk[10, 15] == 0
    line = deg.motion_kernel(10.0, 0.0, 0.0, 21)
    assert line.sum() == pytest.approx(1.0)
    assert np.abs(line[:9]).sum() == 0 and np.abs(line[12:]).sum() == 0  # a horizontal line through the centre
    assert (line[10] > 0).sum() >= 9
    with pytest.raises(deg.DegradationError, match="motion length"):
        deg.motion_kernel(30.0, 0.0, 0.0, 21)


def test_samplers_are_deterministic_from_the_seed():
    a = deg.random_anisotropic_kernel(4, deg.image_rng(7, "bird.png", 0))
    b = deg.random_anisotropic_kernel(4, deg.image_rng(7, "bird.png", 0))
    c = deg.random_anisotropic_kernel(4, deg.image_rng(8, "bird.png", 0))
    assert np.array_equal(a.kernel, b.kernel) and not np.array_equal(a.kernel, c.kernel)
    assert a.kernel.shape == (31, 31) and deg.random_anisotropic_kernel(2, np.random.default_rng(0)).kernel.shape == (11, 11)
    assert 0.6 <= a.params["sigma_1"] <= 5 and -math.pi <= a.params["theta"] <= math.pi
    iso = deg.random_isotropic_kernel(2, np.random.default_rng(3))
    assert 0.2 <= iso.params["sigma"] <= 2.0


def test_region_masks_partition_the_image():
    masks = deg.region_masks(60, 80, np.random.default_rng(1), 3)
    assert masks.shape == (3, 60, 80)
    assert np.allclose(masks.sum(axis=0), 1.0, atol=1e-5)
    assert (masks.reshape(3, -1).max(axis=1) > 0.9).all()  # every region owns some pixels


def test_spatially_varying_sample_and_noise_ranges():
    low = deg.random_spatially_varying(64, 64, np.random.default_rng(5), "low")
    high = deg.random_spatially_varying(64, 64, np.random.default_rng(5), "high")
    assert low.kernel.ndim == 3 and low.masks.shape == (low.kernel.shape[0], 64, 64)
    assert 0 <= low.noise_sigma * 255 <= 5 and 5 <= high.noise_sigma * 255 <= 10
    assert {r["type"] for r in low.params["regions"]} <= {"motion", "defocus"}
    again = deg.random_spatially_varying(64, 64, np.random.default_rng(5), "low")
    assert np.array_equal(again.masks, low.masks) and np.array_equal(again.kernel, low.kernel)


def test_sample_batch_spatially_varying_pads_region_counts():
    batch = deg.sample_batch("sv", 4, 6, np.random.default_rng(11), hr_shape=(48, 48))
    kernels, masks = batch["kernels"], batch["masks"]
    assert kernels.ndim == 4 and masks.shape == (6, kernels.shape[1], 48, 48)
    assert torch.allclose(masks.sum(dim=1), torch.ones(6, 48, 48), atol=1e-5)
    assert (batch["noise_sigma"] * 255 <= 10).all()  # the training range of sv: U(0, 10) / 255
    hr = torch.rand(6, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    lr = deg.degrade_batch(hr, kernels, 4, batch["noise_sigma"], torch.Generator().manual_seed(0), masks=masks)
    assert lr.shape == (6, 3, 12, 12)
    # A sample padded with empty regions comes out as it does alone, with only its own regions.
    padded = [i for i, p in enumerate(batch["params"]) if len(p["regions"]) < kernels.shape[1]]
    assert padded
    together = deg.degrade_batch(hr.double(), kernels.double(), 4, quantize=False, masks=masks.double())
    for i in padded:
        own = len(batch["params"][i]["regions"])
        alone = deg.degrade_batch(hr[i : i + 1].double(), kernels[i : i + 1, :own].double(), 4, quantize=False,
                                  masks=masks[i : i + 1, :own].double())
        assert torch.allclose(together[i : i + 1], alone, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])  # direct convolution / FFT paths
def test_blur_is_correlation_with_reflect_padding(dtype):
    image = torch.zeros(1, 1, 9, 9, dtype=dtype)
    image[0, 0, 4, 4] = 1.0
    kernel = torch.zeros(1, 3, 3, dtype=dtype)
    kernel[0, 0, 2] = 1.0  # top-right tap
    out = deg.blur_batch(image, kernel)
    # correlation: out[y, x] = in[y - 1, x + 1], so the impulse moves down-left
    expected = torch.zeros_like(image)
    expected[0, 0, 5, 3] = 1.0
    assert torch.allclose(out, expected, atol=1e-6)
    ramp = torch.arange(6, dtype=dtype).view(1, 1, 1, 6).expand(1, 1, 6, 6).contiguous()
    left = torch.zeros(1, 3, 3, dtype=dtype)
    left[0, 1, 0] = 1.0
    shifted = deg.blur_batch(ramp, left)
    assert shifted[0, 0, 0, 0].item() == pytest.approx(1.0)  # reflect padding: left of column 0 is column 1


def test_blur_paths_agree_for_even_and_odd_kernels():
    generator = torch.Generator().manual_seed(3)
    image = torch.rand(2, 3, 37, 30, generator=generator, dtype=torch.float64)
    for size in (4, 11):
        kernels = torch.rand(2, size, size, generator=generator, dtype=torch.float64)
        kernels /= kernels.sum(dim=(1, 2), keepdim=True)
        by_fft = deg.blur_batch(image, kernels)
        by_conv = deg.blur_batch(image.float(), kernels.float())
        assert by_fft.shape == image.shape
        assert torch.allclose(by_fft.float(), by_conv, atol=1e-5)


def test_degrade_batch_shapes_levels_and_per_sample_kernels():
    generator = torch.Generator().manual_seed(0)
    hr = torch.rand(4, 3, 48, 40, generator=generator)
    rng = np.random.default_rng(0)
    batch = deg.sample_batch("iso", 4, 4, rng)
    lr = deg.degrade_batch(hr, batch["kernels"], 4, 0.0)
    assert lr.shape == (4, 3, 12, 10)
    assert torch.equal(lr, torch.round(lr * 255) / 255) and lr.min() >= 0 and lr.max() <= 1
    alone = deg.degrade_batch(hr[2:3], batch["kernels"][2:3], 4, 0.0)
    assert torch.allclose(alone, lr[2:3], atol=1e-6)


def test_degrade_batch_noise_is_seeded_and_per_sample():
    hr = torch.full((2, 3, 64, 64), 0.5)
    kernels = torch.from_numpy(np.stack([deg.isotropic_gaussian_kernel(1.0)] * 2)).float()
    sigma = torch.tensor([0.0, 30 / 255])
    a = deg.degrade_batch(hr, kernels, 4, sigma, torch.Generator().manual_seed(1), quantize=False)
    b = deg.degrade_batch(hr, kernels, 4, sigma, torch.Generator().manual_seed(1), quantize=False)
    assert torch.equal(a, b)
    assert torch.allclose(a[0], torch.full_like(a[0], 0.5), atol=1e-6)
    assert a[1].std().item() == pytest.approx(30 / 255, rel=0.1)


def test_degrade_batch_spatially_varying_blends_regions():
    hr = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    k1 = deg.isotropic_gaussian_kernel(0.5)
    k2 = deg.defocus_kernel(4.0)
    masks = np.zeros((2, 64, 64))
    masks[0, :, :32] = 1.0
    masks[1, :, 32:] = 1.0
    sv = deg.degrade_batch(hr, torch.from_numpy(np.stack([k1, k2]))[None], 4, masks=torch.from_numpy(masks)[None], quantize=False)
    only_1 = deg.degrade_batch(hr, torch.from_numpy(k1)[None], 4, quantize=False)
    only_2 = deg.degrade_batch(hr, torch.from_numpy(k2)[None], 4, quantize=False)
    assert torch.allclose(sv[..., :4], only_1[..., :4]) and torch.allclose(sv[..., -4:], only_2[..., -4:])


def test_degrade_image_matches_a_direct_numpy_pipeline():
    rng = np.random.default_rng(4)
    hr = rng.integers(0, 256, size=(40, 36, 3), dtype=np.uint8)
    kernel = deg.isotropic_gaussian_kernel(1.3, 21)
    lr = deg.degrade_image(hr, kernel, 2)
    assert lr.dtype == np.uint8 and lr.shape == (20, 18, 3)
    padded = np.pad(hr / 255.0, ((10, 10), (10, 10), (0, 0)), mode="reflect")
    blurred = np.zeros((40, 36, 3))
    for dy in range(21):
        for dx in range(21):
            blurred += kernel[dy, dx] * padded[dy : dy + 40, dx : dx + 36]
    expected = np.round(np.clip(imresize(blurred, 0.5), 0, 1) * 255).astype(np.uint8)
    assert np.abs(lr.astype(int) - expected).max() <= 1
    assert (lr == expected).mean() > 0.99


def test_bad_inputs_have_clear_errors():
    with pytest.raises(deg.DegradationError, match="multiple of x4"):
        deg.degrade_batch(torch.rand(1, 3, 30, 32), torch.ones(1, 3, 3) / 9, 4)
    with pytest.raises(deg.DegradationError, match="too small"):
        deg.degrade_batch(torch.rand(1, 3, 8, 8), torch.ones(1, 21, 21) / 441, 4)
    with pytest.raises(deg.DegradationError, match="noise_sigma must be >= 0"):
        deg.degrade_batch(torch.rand(2, 3, 8, 8), torch.ones(2, 3, 3) / 9, 4, torch.tensor([0.1, -0.1]))
    with pytest.raises(deg.DegradationError, match="rng"):
        deg.degrade_image(np.zeros((8, 8, 3), np.uint8), np.ones((3, 3)) / 9, 2, noise_sigma=0.1)


def test_degrade_batch_is_fast_on_cpu():
    hr = torch.rand(16, 3, 192, 192)
    batch = deg.sample_batch("iso", 4, 16, np.random.default_rng(0), noise_range=(0.0, 0.05))
    deg.degrade_batch(hr, batch["kernels"], 4, batch["noise_sigma"])
    start = time.perf_counter()
    lr = deg.degrade_batch(hr, batch["kernels"], 4, batch["noise_sigma"])
    elapsed = time.perf_counter() - start
    assert lr.shape == (16, 3, 48, 48)
    assert elapsed < 2.0, f"degrading 16 crops of 192x192 took {elapsed:.2f} s"


# ---------------------------------------------------------------- training samplers: distributions over many draws

def _uniform_fits(values, low, high):
    """Kolmogorov-Smirnov against U(low, high); a correct sampler fails this one time in 10^4."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    assert low <= values.min() and values.max() <= high
    return stats.kstest(values, stats.uniform(low, high - low).cdf).pvalue > 1e-4


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_setting_1_training_widths_are_uniform_over_the_papers_ranges(scale):
    batch = deg.sample_batch("iso", scale, 3000, np.random.default_rng(scale))
    sigmas = [p["sigma"] for p in batch["params"]]
    assert _uniform_fits(sigmas, *{2: (0.2, 2.0), 3: (0.2, 3.0), 4: (0.2, 4.0)}[scale])
    assert not _uniform_fits(sigmas, 0.2, 5.0)  # the test can tell a wrong range
    kernels = batch["kernels"].double()
    assert kernels.shape == (3000, 21, 21)
    assert torch.allclose(kernels.sum(dim=(1, 2)), torch.ones(3000, dtype=torch.float64))
    axis = torch.arange(21, dtype=torch.float64) - 10
    variance = (kernels.sum(dim=1) * axis**2).sum(dim=1)
    # Where the 21x21 window truncates little and the pixel grid resolves the width, the variance is sigma^2.
    resolved = (torch.tensor(sigmas) > 0.7) & (torch.tensor(sigmas) < 2.5)
    assert resolved.sum() > 500
    assert torch.allclose(variance[resolved], torch.tensor(sigmas, dtype=torch.float64)[resolved] ** 2, rtol=5e-3)
    assert (batch["noise_sigma"] == 0).all() and batch["masks"] is None


@pytest.mark.parametrize("scale, size", [(2, 11), (4, 31)])
def test_setting_2_training_kernels_follow_their_widths_and_rotations(scale, size):
    batch = deg.sample_batch("aniso", scale, 2000, np.random.default_rng(10 + scale))
    params = batch["params"]
    assert _uniform_fits([p["sigma_1"] for p in params] + [p["sigma_2"] for p in params], 0.6, 5.0)
    assert _uniform_fits([p["theta"] for p in params], -math.pi, math.pi)
    kernels = batch["kernels"].double()
    assert kernels.shape == (2000, size, size)
    # Each kernel's second moments are the covariance its parameters describe (where the window truncates little).
    axis = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    checked = 0
    for kernel, p in zip(kernels, params):
        if max(p["sigma_1"], p["sigma_2"]) * 4 > size / 2:
            continue
        c, s_ = math.cos(p["theta"]), math.sin(p["theta"])
        along, across = p["sigma_1"] ** 2, p["sigma_2"] ** 2
        expected = [along * c * c + across * s_ * s_, (along - across) * c * s_, along * s_ * s_ + across * c * c]
        measured = [(kernel * xx * xx).sum(), (kernel * xx * yy).sum(), (kernel * yy * yy).sum()]
        assert measured == pytest.approx(expected, rel=0.02, abs=0.02)
        checked += 1
    assert checked > 50


def test_setting_3_training_draws_regions_kernels_and_noise_as_stated():
    from scipy import stats

    rng = np.random.default_rng(3)
    params, noise = [], []
    for _ in range(40):
        batch = deg.sample_batch("sv", 4, 10, rng, hr_shape=(32, 32))
        assert torch.allclose(batch["masks"].sum(dim=1), torch.ones(10, 32, 32), atol=1e-5)
        params += batch["params"]
        noise += batch["noise_sigma"].tolist()
    counts = np.bincount([len(p["regions"]) for p in params], minlength=5)[2:]
    assert stats.chisquare(counts).pvalue > 1e-4  # 2, 3 or 4 regions, equally likely
    regions = [r for p in params for r in p["regions"]]
    motion = [r for r in regions if r["type"] == "motion"]
    defocus = [r for r in regions if r["type"] == "defocus"]
    assert len(motion) + len(defocus) == len(regions)
    assert stats.binomtest(len(motion), len(regions)).pvalue > 1e-4  # motion or defocus, equally likely
    assert _uniform_fits([r["length"] for r in motion], 3.0, 17.0)
    assert _uniform_fits([r["angle"] for r in motion], -math.pi, math.pi)
    assert _uniform_fits([r["radius"] for r in defocus], 1.0, 4.0)
    assert _uniform_fits(np.array(noise) * 255, 0.0, 10.0)  # training covers both test ranges, low and high
    wider = deg.sample_batch("sv", 4, 400, np.random.default_rng(4), hr_shape=(24, 24), noise_range=(0.0, 30 / 255))
    assert _uniform_fits(wider["noise_sigma"].numpy() * 255, 0.0, 30.0)


def test_training_noise_is_drawn_per_sample_and_added_with_that_sigma():
    batch = deg.sample_batch("aniso", 2, 3000, np.random.default_rng(5), noise_range=(5 / 255, 30 / 255))
    assert _uniform_fits(batch["noise_sigma"].numpy() * 255, 5.0, 30.0)
    degradation = deg.TrainingDegradation("iso", 4, (5 / 255, 30 / 255))
    flat = torch.full((48, 3, 64, 64), 0.5)
    rng, generator = np.random.default_rng(6), torch.Generator().manual_seed(6)
    drawn = deg.sample_batch("iso", 4, 48, np.random.default_rng(6), noise_range=(5 / 255, 30 / 255))["noise_sigma"]
    lr = degradation.degrade(flat, rng, generator)  # the same draws as `drawn`: same seed, same sampler
    measured = (lr - 0.5).flatten(1).std(dim=1)
    assert torch.allclose(measured, drawn, rtol=0.12, atol=1 / 255)
    assert np.corrcoef(measured, drawn)[0, 1] > 0.98


def test_mixed_training_draws_each_setting_equally_often_and_degrades_every_sample():
    from scipy import stats

    mixed = deg.TrainingDegradation("mixed", 4)
    picks = mixed.pick_settings(3000, np.random.default_rng(7))
    assert stats.chisquare([picks.count(s) for s in deg.RANDOM_SETTINGS]).pvalue > 1e-4
    assert deg.TrainingDegradation("aniso", 4).pick_settings(5, np.random.default_rng(7)) == ["aniso"] * 5
    hr = torch.rand(12, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    first = mixed.degrade(hr, np.random.default_rng(8), torch.Generator().manual_seed(8))
    again = mixed.degrade(hr, np.random.default_rng(8), torch.Generator().manual_seed(8))
    assert first.shape == (12, 3, 8, 8) and torch.equal(first, again)
    assert torch.equal(first, torch.round(first * 255) / 255)
    # Every sample was written (none left as the uninitialized buffer) and blurred: smoother than its HR.
    naive = hr.view(12, 3, 8, 4, 8, 4).mean(dim=(3, 5))
    assert ((first - naive).abs().flatten(1).mean(dim=1) < 0.25).all()
    assert mixed.min_hr_size() == 16 and deg.TrainingDegradation("iso", 4).min_hr_size() == 11
    with pytest.raises(deg.DegradationError, match="mixed"):
        deg.TrainingDegradation("gaussian8", 4)


@pytest.mark.parametrize("shape", [(128, 128), (33, 47), (480, 320)])
def test_region_mask_displacement_is_scipys_cubic_zoom(shape):
    """The sampler zooms its 6x6 displacement field with two matrices; scipy's 2-D zoom is the definition."""
    import scipy.ndimage

    coarse = np.random.default_rng(1).normal(size=(6, 6))
    fast = deg._spline_zoom_matrix(6, shape[0]) @ coarse @ deg._spline_zoom_matrix(6, shape[1]).T
    assert np.abs(fast - scipy.ndimage.zoom(coarse, (shape[0] / 6, shape[1] / 6), order=3)).max() < 1e-12
