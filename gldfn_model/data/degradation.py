"""The degradation model of the paper, Eq. 1: ``y = (x ⊗ k)↓s + n``, with its three settings.

Conventions (those of the DAN / DCLS code the paper compares against): the HR image is modcropped to a
multiple of ``s`` (top-left kept), blurred by *correlation* with reflect padding, downsampled with
MATLAB-style antialiased bicubic ``imresize``, white Gaussian noise is added, and the LR is clamped to
[0, 1] and quantized to 8-bit levels. Images are float in [0, 1]; noise levels are in the same units
(``15 / 255`` for "sigma 15").

Sections: kernels (deterministic), samplers (random, driven by a ``numpy.random.Generator``), the batched
torch implementation, and the single-image wrapper used for evaluation, which calls the batched one.

Settings:
- ``gaussian8`` / ``iso`` (Setting 1): isotropic Gaussian, 21x21. Test: the 8 Gaussian8 kernels;
  training: sigma ~ U(training_sigma_range(scale)).
- ``aniso`` (Setting 2): anisotropic Gaussian, widths ~ U(0.6, 5), rotation ~ U(-pi, pi); 11x11 for x2,
  31x31 for x4 (and 21x21 for x3, where the paper gives no size).
- ``sv`` (Setting 3): spatially varying. Our own region-mask generator splits the image into 2-4 soft
  regions; each gets a motion or a defocus kernel; the blurred images are blended by the masks; noise
  sigma ~ U(0, 5) / 255 ("low") or U(5, 10) / 255 ("high"); training draws it from U(0, 10) / 255.
- ``mixed`` (training only): each sample draws one of ``iso``, ``aniso``, ``sv``, equally likely.
"""
from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.fft
import scipy.ndimage
import torch
import torch.nn.functional as F

from gldfn_model.common.errors import GldfnError
from gldfn_model.data.imresize import imresize_torch
from gldfn_model.data.setting_names import RANDOM_SETTINGS, SV_NOISE_RANGES_255, TRAINING_SETTINGS

SUPPORTED_SCALES = (2, 3, 4)
ISO_KERNEL_SIZE = 21
SV_KERNEL_SIZE = 21
ANISO_WIDTH_RANGE = (0.6, 5.0)
SV_TRAINING_NOISE_255 = (0.0, 10.0)  # both test ranges

_GAUSSIAN8_SIGMA_ENDS = {2: (0.80, 1.60), 3: (1.35, 2.40), 4: (1.80, 3.20)}
_TRAINING_SIGMA_RANGES = {2: (0.2, 2.0), 3: (0.2, 3.0), 4: (0.2, 4.0)}
_ANISO_KERNEL_SIZES = {2: 11, 3: 21, 4: 31}


class DegradationError(GldfnError, ValueError):
    """Invalid degradation parameters or an input that cannot be degraded."""


def check_scale(scale: int) -> int:
    if scale not in SUPPORTED_SCALES:
        raise DegradationError(f"scale x{scale} is not supported (supported: {SUPPORTED_SCALES})")
    return scale


# ---------------------------------------------------------------- kernels (deterministic)

def _kernel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    if size < 1:
        raise DegradationError(f"kernel size must be >= 1, got {size}")
    axis = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    xx, yy = np.meshgrid(axis, axis)
    return xx, yy


def isotropic_gaussian_kernel(sigma: float, size: int = ISO_KERNEL_SIZE) -> np.ndarray:
    """``size x size`` isotropic Gaussian of standard deviation ``sigma`` (pixels), summing to 1."""
    if not sigma > 0:
        raise DegradationError(f"Gaussian sigma must be > 0, got {sigma}")
    xx, yy = _kernel_grid(size)
    kernel = np.exp(-(xx**2 + yy**2) / (2.0 * sigma**2))
    return kernel / kernel.sum()


def anisotropic_gaussian_kernel(sigma_1: float, sigma_2: float, theta: float, size: int) -> np.ndarray:
    """``size x size`` Gaussian with standard deviations ``sigma_1`` along the direction ``theta`` (radians,
    counter-clockwise from the x axis) and ``sigma_2`` across it, summing to 1."""
    if not (sigma_1 > 0 and sigma_2 > 0):
        raise DegradationError(f"Gaussian widths must be > 0, got {sigma_1}, {sigma_2}")
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    covariance = rotation @ np.diag([sigma_1**2, sigma_2**2]) @ rotation.T
    inverse = np.linalg.inv(covariance)
    xx, yy = _kernel_grid(size)
    points = np.stack([xx, yy], axis=-1)
    kernel = np.exp(-0.5 * np.einsum("...i,ij,...j->...", points, inverse, points))
    return kernel / kernel.sum()


def defocus_kernel(radius: float, size: int = SV_KERNEL_SIZE, supersample: int = 8) -> np.ndarray:
    """Uniform disk of ``radius`` pixels (antialiased by supersampling), summing to 1."""
    if not 0 < radius <= (size - 1) / 2:
        raise DegradationError(f"defocus radius must be in (0, {(size - 1) / 2}] for a {size}x{size} kernel, got {radius}")
    fine = (np.arange(size * supersample) + 0.5) / supersample - size / 2.0
    xx, yy = np.meshgrid(fine, fine)
    inside = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    kernel = inside.reshape(size, supersample, size, supersample).sum(axis=(1, 3))
    return kernel / kernel.sum()


def motion_kernel(length: float, angle: float, curvature: float = 0.0, size: int = SV_KERNEL_SIZE) -> np.ndarray:
    """Blur along a centred path of ``length`` pixels in direction ``angle`` (radians), bent sideways by
    ``curvature`` (the path's mid-point offset as a fraction of its length), summing to 1."""
    if not 0 < length <= size - 2:
        raise DegradationError(f"motion length must be in (0, {size - 2}] for a {size}x{size} kernel, got {length}")
    t = np.linspace(-0.5, 0.5, max(int(length * 8), 16))
    along = t * length
    across = curvature * length * (1.0 - 4.0 * t**2)  # a parabola through both ends
    cx = along * math.cos(angle) - across * math.sin(angle)
    cy = along * math.sin(angle) + across * math.cos(angle)
    cx, cy = cx - cx.mean(), cy - cy.mean()
    centre = (size - 1) / 2.0
    # Splat each path point bilinearly onto the pixel grid.
    x, y = cx + centre, cy + centre
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    kernel = np.zeros((size, size))
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        ok = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size)
        np.add.at(kernel, (yi[ok], xi[ok]), w[ok])
    return kernel / kernel.sum()


def gaussian8_sigmas(scale: int) -> list[float]:
    """The 8 widths of the Gaussian8 test kernels for ``scale``."""
    low, high = _GAUSSIAN8_SIGMA_ENDS[check_scale(scale)]
    return [float(s) for s in np.linspace(low, high, 8)]


def training_sigma_range(scale: int) -> tuple[float, float]:
    """Setting 1's training range of the isotropic Gaussian width for ``scale``."""
    return _TRAINING_SIGMA_RANGES[check_scale(scale)]


def aniso_kernel_size(scale: int) -> int:
    return _ANISO_KERNEL_SIZES[check_scale(scale)]


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop an ``H x W [x C]`` array to a multiple of ``scale`` in H and W, keeping the top-left."""
    height, width = image.shape[:2]
    return image[: height - height % scale, : width - width % scale]


# ---------------------------------------------------------------- samplers (random, seeded)

@dataclass
class Degradation:
    """One sampled degradation: a kernel (``k x k``; ``R x k x k`` with ``masks`` for spatially varying blur),
    the noise level in [0, 1] units, and a JSON-able description of how it was made."""

    kernel: np.ndarray
    noise_sigma: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    masks: np.ndarray | None = None  # R x H x W, summing to 1 over R, HR-sized

    def describe(self) -> dict[str, Any]:
        return {**self.params, "kernel_size": int(self.kernel.shape[-1]),
                "noise_sigma": self.noise_sigma, "noise_level_255": round(self.noise_sigma * 255.0, 6)}


def image_rng(seed: int, *keys: str | int) -> np.random.Generator:
    """A generator determined by ``seed`` and the keys (e.g. image name and variant), so that an image's
    degradation does not depend on which other images are processed."""
    words = [int(seed) & 0xFFFFFFFF]
    for key in keys:
        words.append(zlib.crc32(key.encode()) if isinstance(key, str) else int(key) & 0xFFFFFFFF)
    return np.random.default_rng(words)


def random_isotropic_kernel(scale: int, rng: np.random.Generator, noise_sigma: float = 0.0) -> Degradation:
    """Setting 1 training kernel: sigma ~ U(training_sigma_range(scale)), 21x21."""
    sigma = float(rng.uniform(*training_sigma_range(scale)))
    return Degradation(isotropic_gaussian_kernel(sigma), noise_sigma, {"type": "isotropic_gaussian", "sigma": sigma})


def gaussian8_degradations(scale: int, noise_sigma: float = 0.0) -> list[Degradation]:
    """The 8 Gaussian8 test degradations (Setting 1) for ``scale``."""
    return [Degradation(isotropic_gaussian_kernel(s), noise_sigma, {"type": "isotropic_gaussian", "sigma": s, "index": i})
            for i, s in enumerate(gaussian8_sigmas(scale))]


def random_anisotropic_kernel(scale: int, rng: np.random.Generator, noise_sigma: float = 0.0) -> Degradation:
    """Setting 2: widths ~ U(0.6, 5), rotation ~ U(-pi, pi); 11x11 (x2), 21x21 (x3), 31x31 (x4)."""
    sigma_1, sigma_2 = (float(v) for v in rng.uniform(*ANISO_WIDTH_RANGE, size=2))
    theta = float(rng.uniform(-math.pi, math.pi))
    kernel = anisotropic_gaussian_kernel(sigma_1, sigma_2, theta, aniso_kernel_size(scale))
    return Degradation(kernel, noise_sigma, {"type": "anisotropic_gaussian", "sigma_1": sigma_1, "sigma_2": sigma_2, "theta": theta})


def region_masks(height: int, width: int, rng: np.random.Generator, regions: int,
                 warp: float = 0.15, softness: float = 3.0) -> np.ndarray:
    """Our region generator for Setting 3: a Voronoi partition of ``regions`` random seeds, its boundaries
    bent by smooth random displacement (``warp`` x image size) and softened by a Gaussian of ``softness``
    pixels. Returns ``regions x height x width`` float32 masks that sum to 1 at every pixel."""
    if regions < 1:
        raise DegradationError(f"regions must be >= 1, got {regions}")
    seeds = rng.uniform(0.0, 1.0, size=(regions, 2)) * [height, width]
    grid = max(height, width) / 4.0  # displacement varies on the scale of a quarter image
    coarse = rng.normal(0.0, 1.0, size=(2, 6, 6))
    displacement = _spline_zoom_matrix(6, height) @ coarse @ _spline_zoom_matrix(6, width).T
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    yy = yy + warp * 4.0 * grid * displacement[0]
    xx = xx + warp * 4.0 * grid * displacement[1]
    distance = (yy[None] - seeds[:, 0, None, None]) ** 2 + (xx[None] - seeds[:, 1, None, None]) ** 2
    labels = distance.argmin(axis=0)
    masks = np.stack([scipy.ndimage.gaussian_filter((labels == r).astype(np.float64), softness, mode="reflect")
                      for r in range(regions)])
    masks /= masks.sum(axis=0, keepdims=True)
    return masks.astype(np.float32)


@functools.lru_cache(maxsize=32)
def _spline_zoom_matrix(size: int, out_size: int) -> np.ndarray:
    """``out_size x size``: the matrix of ``scipy.ndimage.zoom(v, out_size / size, order=3)`` on a vector.

    Cubic-spline zoom is linear and separable, so a 2-D zoom is ``A @ image @ B.T``: the same values to
    ~1e-15, without scipy's per-pixel 2-D spline evaluation (the bulk of the sampler's time at 128x128)."""
    matrix = np.stack([scipy.ndimage.zoom(unit, out_size / size, order=3) for unit in np.eye(size)], axis=1)
    matrix.setflags(write=False)  # shared by the cache
    return matrix


def random_blur_kernel_sv(rng: np.random.Generator, size: int = SV_KERNEL_SIZE) -> tuple[np.ndarray, dict[str, Any]]:
    """One region's kernel for Setting 3: motion (length 3..size-4 px, any direction, mild bend) or defocus
    (radius 1..4 px), with equal probability."""
    if rng.uniform() < 0.5:
        length = float(rng.uniform(3.0, size - 4.0))
        angle = float(rng.uniform(-math.pi, math.pi))
        curvature = float(rng.uniform(-0.2, 0.2))
        return motion_kernel(length, angle, curvature, size), {"type": "motion", "length": length, "angle": angle, "curvature": curvature}
    radius = float(rng.uniform(1.0, 4.0))
    return defocus_kernel(radius, size), {"type": "defocus", "radius": radius}


def random_spatially_varying(height: int, width: int, rng: np.random.Generator,
                             noise: str | tuple[float, float] = "low") -> Degradation:
    """Setting 3 for an HR image of ``height x width``: 2-4 soft regions, a motion or defocus kernel each,
    noise sigma ~ U(0, 5) / 255 (``noise="low"``), U(5, 10) / 255 (``"high"``) or U(low, high) / 255 for a
    ``(low, high)`` pair of 8-bit levels."""
    low, high = _sv_noise_range(noise)
    regions = int(rng.integers(2, 5))
    mask_seed = int(rng.integers(0, 2**31))
    masks = region_masks(height, width, np.random.default_rng(mask_seed), regions)
    kernels, descriptions = zip(*(random_blur_kernel_sv(rng) for _ in range(regions)))
    noise_sigma = float(rng.uniform(low, high)) / 255.0
    params = {"type": "spatially_varying", "regions": list(descriptions), "mask_seed": mask_seed,
              "noise": noise if isinstance(noise, str) else [low, high]}
    return Degradation(np.stack(kernels), noise_sigma, params, masks)


def _sv_noise_range(noise: str | tuple[float, float]) -> tuple[float, float]:
    if isinstance(noise, str):
        if noise not in SV_NOISE_RANGES_255:
            raise DegradationError(f"spatially varying noise must be one of {sorted(SV_NOISE_RANGES_255)}, "
                                   f"got {noise!r}")
        return SV_NOISE_RANGES_255[noise]
    low, high = (float(v) for v in noise)
    if not 0 <= low <= high <= 255:
        raise DegradationError(f"a noise range needs 0 <= low <= high <= 255 (8-bit levels), got {noise}")
    return low, high


def sample_degradation(setting: str, scale: int, rng: np.random.Generator, hr_shape: tuple[int, int] | None = None,
                       noise_sigma: float = 0.0, sv_noise: str | tuple[float, float] = "low") -> Degradation:
    """One random degradation of ``setting`` (``iso``, ``aniso`` or ``sv``; ``sv`` needs ``hr_shape`` and draws
    its own noise, ignoring ``noise_sigma``)."""
    if setting == "iso":
        return random_isotropic_kernel(scale, rng, noise_sigma)
    if setting == "aniso":
        return random_anisotropic_kernel(scale, rng, noise_sigma)
    if setting == "sv":
        if hr_shape is None:
            raise DegradationError("the spatially varying setting needs the HR image size")
        return random_spatially_varying(*hr_shape, rng, sv_noise)
    raise DegradationError(f"no random sampler for setting {setting!r} (random settings: iso, aniso, sv)")


def sample_batch(setting: str, scale: int, batch: int, rng: np.random.Generator, hr_shape: tuple[int, int] | None = None,
                 noise_range: tuple[float, float] | None = None) -> dict[str, Any]:
    """Training degradations of ``setting`` (``iso``, ``aniso`` or ``sv``) for a batch, ready for
    :func:`degrade_batch`: ``kernels``, ``noise_sigma``, ``masks`` (``sv`` only, else None) and ``params``
    (each sample's :meth:`Degradation.describe`).

    ``noise_range`` ([0, 1] units) draws each sample's AWGN sigma uniformly; None means the setting's own:
    no noise for ``iso`` and ``aniso``, U(0, 10) / 255 for ``sv``."""
    samples = []
    for _ in range(batch):
        if setting == "sv":
            own = SV_TRAINING_NOISE_255 if noise_range is None else (noise_range[0] * 255.0, noise_range[1] * 255.0)
            samples.append(sample_degradation(setting, scale, rng, hr_shape, sv_noise=own))
            continue
        noise = float(rng.uniform(*noise_range)) if noise_range is not None else 0.0
        samples.append(sample_degradation(setting, scale, rng, hr_shape, noise))
    noise_sigma = torch.tensor([s.noise_sigma for s in samples])
    params = [s.describe() for s in samples]
    if setting != "sv":
        kernels = torch.from_numpy(np.stack([s.kernel for s in samples])).float()
        return {"kernels": kernels, "noise_sigma": noise_sigma, "masks": None, "params": params}
    # Samples have 2-4 regions: pad to the most with empty regions (zero mask, any kernel) to stack them.
    regions = max(s.kernel.shape[0] for s in samples)
    kernels = np.zeros((batch, regions, *samples[0].kernel.shape[1:]), np.float32)
    masks = np.zeros((batch, regions, *samples[0].masks.shape[1:]), np.float32)
    for i, s in enumerate(samples):
        kernels[i, : len(s.kernel)], masks[i, : len(s.masks)] = s.kernel, s.masks
        kernels[i, len(s.kernel) :] = s.kernel[0]
    return {"kernels": torch.from_numpy(kernels), "noise_sigma": noise_sigma, "masks": torch.from_numpy(masks),
            "params": params}


@dataclass(frozen=True)
class TrainingDegradation:
    """How a training run degrades its HR crops: ``setting`` is ``iso``, ``aniso``, ``sv`` or ``mixed`` (each
    sample draws one of the three, equally likely); ``noise_range`` is the AWGN sigma range in [0, 1] units for
    every sample, None for each setting's own (see :func:`sample_batch`)."""

    setting: str
    scale: int
    noise_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.setting not in TRAINING_SETTINGS:
            raise DegradationError(f"unknown training setting {self.setting!r}; "
                                   f"use one of {', '.join(TRAINING_SETTINGS)}")
        check_scale(self.scale)
        if self.noise_range is not None and not 0 <= self.noise_range[0] <= self.noise_range[1] <= 1:
            raise DegradationError(f"a noise range needs 0 <= low <= high <= 1 ([0, 1] units), got {self.noise_range}")

    def min_hr_size(self) -> int:
        """The smallest HR crop the largest kernel of the setting can blur (reflect padding needs k // 2 < size)."""
        sizes = {"iso": ISO_KERNEL_SIZE, "aniso": aniso_kernel_size(self.scale), "sv": SV_KERNEL_SIZE}
        largest = max(sizes.values()) if self.setting == "mixed" else sizes[self.setting]
        return largest // 2 + 1

    def pick_settings(self, batch: int, rng: np.random.Generator) -> list[str]:
        """The setting of each sample of a batch."""
        if self.setting != "mixed":
            return [self.setting] * batch
        return [RANDOM_SETTINGS[i] for i in rng.integers(len(RANDOM_SETTINGS), size=batch)]

    def degrade(self, hr: torch.Tensor, rng: np.random.Generator,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw one degradation per sample of ``hr`` (``B x C x H x W`` in [0, 1]) from ``rng`` and apply it with
        :func:`degrade_batch` (noise from ``generator``); returns the 8-bit-level LR batch."""
        settings = self.pick_settings(hr.shape[0], rng)
        if len(set(settings)) == 1:
            return self._degrade(settings[0], hr, rng, generator)
        lr = hr.new_empty(hr.shape[0], hr.shape[1], hr.shape[2] // self.scale, hr.shape[3] // self.scale)
        for setting in RANDOM_SETTINGS:  # one batched call per setting, in a fixed order
            index = torch.tensor([i for i, s in enumerate(settings) if s == setting], dtype=torch.long)
            if len(index):
                lr[index] = self._degrade(setting, hr[index], rng, generator)
        return lr

    def _degrade(self, setting: str, hr: torch.Tensor, rng: np.random.Generator,
                 generator: torch.Generator | None) -> torch.Tensor:
        drawn = sample_batch(setting, self.scale, hr.shape[0], rng, (hr.shape[2], hr.shape[3]), self.noise_range)
        return degrade_batch(hr, drawn["kernels"], self.scale, drawn["noise_sigma"], generator, masks=drawn["masks"])


# ---------------------------------------------------------------- batched implementation (torch)

def blur_batch(hr: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Correlate each image of ``hr`` (``B x C x H x W``) with its own kernel (``B x k x k``), reflect padding.

    float32 / float16 batches (training) use a grouped convolution, the fastest there. float64 (evaluation)
    uses the FFT, since PyTorch's float64 convolution is about 20x slower: the circular convolution of the
    padded image with the flipped kernel equals the correlation on the un-padded region."""
    batch, channels, height, width = hr.shape
    size = kernels.shape[-1]
    if kernels.shape != (batch, size, size):
        raise DegradationError(f"expected {batch} square kernels (B x k x k), got shape {tuple(kernels.shape)}")
    before, after = size // 2, (size - 1) // 2
    if max(before, after) >= min(height, width):
        raise DegradationError(f"image {height}x{width} is too small for a {size}x{size} kernel with reflect padding")
    padded = F.pad(hr, (before, after, before, after), mode="reflect")
    kernels = kernels.to(device=hr.device, dtype=hr.dtype)
    if hr.dtype != torch.float64:
        weight = kernels.repeat_interleave(channels, dim=0).unsqueeze(1)
        out = F.conv2d(padded.reshape(1, batch * channels, *padded.shape[-2:]), weight, groups=batch * channels)
        return out.reshape(batch, channels, height, width)
    # Any FFT size >= the padded size leaves the kept window un-wrapped; a 2-3-5-smooth one is much faster.
    fft_size = tuple(scipy.fft.next_fast_len(n, real=True) for n in padded.shape[-2:])
    spectrum = torch.fft.rfft2(padded, s=fft_size) * torch.fft.rfft2(kernels.flip(-1, -2), s=fft_size).unsqueeze(1)
    full = torch.fft.irfft2(spectrum, s=fft_size)
    return full[..., size - 1 : size - 1 + height, size - 1 : size - 1 + width].contiguous()


def degrade_batch(hr: torch.Tensor, kernels: torch.Tensor, scale: int, noise_sigma: torch.Tensor | float = 0.0,
                  generator: torch.Generator | None = None, quantize: bool = True,
                  masks: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 1 on a batch: blur, MATLAB bicubic downsampling by ``scale``, AWGN, clamp to [0, 1], 8-bit levels.

    hr: ``B x C x H x W`` float in [0, 1], H and W multiples of ``scale``.
    kernels: ``B x k x k``; or ``B x R x k x k`` together with ``masks`` (``B x R x H x W``) for spatially
        varying blur, the per-region blurred images being blended by the masks.
    noise_sigma: scalar or per-sample (``B``), in [0, 1] units. The noise comes from ``generator``.
    Returns ``B x C x H/scale x W/scale`` in ``hr``'s dtype.
    """
    check_scale(scale)
    if hr.ndim != 4 or not hr.is_floating_point():
        raise DegradationError(f"expected a float B x C x H x W HR batch, got {hr.dtype} {tuple(hr.shape)}")
    batch, _, height, width = hr.shape
    if height % scale or width % scale:
        raise DegradationError(f"HR size {height}x{width} is not a multiple of x{scale}; modcrop it first")
    if masks is None:
        blurred = blur_batch(hr, kernels)
    else:
        if kernels.ndim != 4 or masks.shape != (batch, kernels.shape[1], height, width):
            raise DegradationError(f"spatially varying blur needs kernels B x R x k x k and masks B x R x H x W, "
                                   f"got {tuple(kernels.shape)} and {tuple(masks.shape)}")
        blurred = torch.zeros_like(hr)
        for region in range(kernels.shape[1]):
            weight = masks[:, region : region + 1].to(hr.dtype)
            # A sample with fewer regions than the batch's most has empty masks here: skip blurring it.
            active = weight.flatten(1).any(dim=1).nonzero().squeeze(1)
            if len(active) == batch:
                blurred += weight * blur_batch(hr, kernels[:, region])
            elif len(active):
                blurred[active] += weight[active] * blur_batch(hr[active], kernels[active, region])
    lr = imresize_torch(blurred, 1.0 / scale)
    sigma = torch.as_tensor(noise_sigma, dtype=hr.dtype, device=hr.device)
    if torch.any(sigma < 0) or sigma.ndim > 1 or (sigma.ndim == 1 and sigma.numel() != batch):
        raise DegradationError(f"noise_sigma must be >= 0, a scalar or one per sample ({batch}), got {noise_sigma}")
    if sigma.ndim == 1:
        sigma = sigma.view(batch, 1, 1, 1)
    if torch.any(sigma > 0):
        noise = torch.randn(lr.shape, generator=generator, dtype=lr.dtype, device="cpu" if generator is None else generator.device)
        lr = lr + noise.to(lr.device) * sigma
    lr = lr.clamp(0.0, 1.0)
    return torch.round(lr * 255.0) / 255.0 if quantize else lr


# ---------------------------------------------------------------- single image (evaluation)

def to_float_image(image: np.ndarray) -> np.ndarray:
    """``H x W x C`` uint8 / uint16 / float array -> float64 in [0, 1]."""
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float64) / 65535.0
    return image.astype(np.float64)


def degrade_image(hr: np.ndarray, degradation: Degradation | np.ndarray, scale: int, noise_sigma: float | None = None,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """Degrade one modcropped ``H x W x C`` HR image (uint8, or float in [0, 1]) to a uint8 LR image with
    :func:`degrade_batch` (computed in float64). ``degradation`` is a :class:`Degradation` or a bare kernel;
    ``noise_sigma`` overrides the degradation's noise; the noise is drawn from ``rng``."""
    if isinstance(degradation, np.ndarray):
        degradation = Degradation(degradation)
    sigma = degradation.noise_sigma if noise_sigma is None else noise_sigma
    if hr.ndim != 3:
        raise DegradationError(f"expected an H x W x C image, got shape {hr.shape}")
    generator = None
    if sigma > 0:
        if rng is None:
            raise DegradationError("noise_sigma > 0 needs an rng so that the noise is reproducible")
        generator = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
    batch = torch.from_numpy(to_float_image(hr)).permute(2, 0, 1).unsqueeze(0)
    kernels = torch.from_numpy(degradation.kernel).unsqueeze(0)
    masks = None if degradation.masks is None else torch.from_numpy(degradation.masks).unsqueeze(0)
    lr = degrade_batch(batch, kernels, scale, sigma, generator, quantize=True, masks=masks)
    return np.round(lr[0].permute(1, 2, 0).numpy() * 255.0).astype(np.uint8)
