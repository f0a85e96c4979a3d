"""MATLAB-compatible bicubic imresize: known values, an independent per-pixel transcription of MATLAB's
algorithm, agreement between the NumPy and torch paths, and a cross-check with the bicubic-pytorch package."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gldfn_model.data.imresize import cubic, imresize, imresize_torch, output_size, resize_matrix


def test_cubic_kernel_values():
    assert cubic(np.array([0.0, 1.0, 2.0, 2.5])) == pytest.approx([1.0, 0.0, 0.0, 0.0])
    # a = -0.5: 1.5|t|^3 - 2.5|t|^2 + 1 on [0, 1], -0.5|t|^3 + 2.5|t|^2 - 4|t| + 2 on (1, 2]
    assert cubic(np.array([0.5, -0.5, 1.5])) == pytest.approx([0.5625, 0.5625, -0.0625])


def test_halving_uses_the_antialiased_8_tap_filter():
    # With antialiasing the kernel is 0.5 * cubic(0.5 t); output pixel 4 (1-based) sits at input 7.5, so
    # its taps at distances +-0.5, +-1.5, +-2.5, +-3.5 are these (derived by hand from the definition).
    taps = np.array([-0.01171875, -0.03515625, 0.11328125, 0.43359375, 0.43359375, 0.11328125, -0.03515625, -0.01171875])
    row = resize_matrix(16, 8, 0.5)[3]
    assert row[3:11] == pytest.approx(taps)
    assert np.count_nonzero(row) == 8


def test_mirrored_border_folds_into_the_first_row():
    # Output pixel 1 sits at input 1.5: taps 0.434 at inputs 1 and 2, 0.113 at 0 and 3, -0.035 at -1 and 4,
    # -0.012 at -2 and 5 (1-based); inputs 0, -1, -2 mirror onto 1, 2, 3.
    row = resize_matrix(16, 8, 0.5)[0]
    expected = [0.43359375 + 0.11328125, 0.43359375 - 0.03515625, 0.11328125 - 0.01171875, -0.03515625, -0.01171875]
    assert row[:5] == pytest.approx(expected)
    assert not row[5:].any()


def test_published_matlab_value_for_a_4x4_ramp():
    # imresize(reshape(0:15, 4, 4)', [3 3]) in MATLAB, as printed in the bicubic_pytorch documentation, except
    # its 6.1505, a typo: the ramp's point symmetry requires out[1, 0] = 15 - out[1, 2] = 15 - 8.8499.
    out = imresize(np.arange(16.0).reshape(4, 4), 0.75)
    expected = [[0.7506, 2.1004, 3.4503], [6.1501, 7.5000, 8.8499], [11.5497, 12.8996, 14.2494]]
    assert out == pytest.approx(np.array(expected), abs=1e-4)


def _matlab_reference(image: np.ndarray, scale: float) -> np.ndarray:
    """Per-pixel transcription of MATLAB's imresize (bicubic, antialiasing), one dimension at a time."""
    def along_rows(a: np.ndarray) -> np.ndarray:
        n = a.shape[0]
        out_n = int(math.ceil(n * scale))
        shrink = scale < 1
        width = 4.0 / scale if shrink else 4.0
        out = np.zeros((out_n,) + a.shape[1:])
        for u in range(1, out_n + 1):
            x = u / scale + 0.5 * (1 - 1 / scale)
            first = math.floor(x - width / 2)
            js = range(first, first + math.ceil(width) + 2)
            ws = np.array([scale * cubic(np.array(scale * (x - j))) if shrink else cubic(np.array(x - j)) for j in js], dtype=float)
            ws /= ws.sum()
            for j, w in zip(js, ws):
                k = j - 1
                while not 0 <= k < n:  # mirror with the edge pixel repeated
                    k = -k - 1 if k < 0 else 2 * n - 1 - k
                out[u - 1] += w * a[k]
        return out
    return along_rows(along_rows(image).swapaxes(0, 1)).swapaxes(0, 1)


@pytest.mark.parametrize("shape,scale", [((13, 9), 0.25), ((10, 15), 0.5), ((9, 12), 1 / 3), ((5, 7), 2), ((4, 6), 3), ((6, 5), 4)])
def test_matches_per_pixel_matlab_transcription(shape, scale):
    image = np.random.default_rng(0).random(shape)
    expected = _matlab_reference(image, scale)
    out = imresize(image, scale)
    assert out.shape == (output_size(shape[0], scale), output_size(shape[1], scale)) == expected.shape
    assert np.allclose(out, expected, atol=1e-12)


def test_upsampling_reproduces_constants_and_interior_ramps():
    assert np.allclose(imresize(np.full((6, 6, 3), 0.3), 4), 0.3)
    ramp = np.tile(np.arange(8.0), (8, 1))
    up = imresize(ramp, 2)
    # the cubic kernel reproduces linear functions away from the mirrored borders
    assert np.allclose(np.diff(up[:, 4:-4], axis=1), 0.5)


def test_numpy_and_torch_agree_batched():
    rng = np.random.default_rng(1)
    images = rng.random((3, 2, 3, 40, 28))
    for scale in (0.25, 1 / 3, 4):
        batched = imresize_torch(torch.from_numpy(images), scale).numpy()
        single = np.stack([[imresize(img.transpose(1, 2, 0), scale).transpose(2, 0, 1) for img in group] for group in images])
        assert np.allclose(batched, single, atol=1e-12)
        as_float32 = imresize_torch(torch.from_numpy(images).float(), scale)
        assert as_float32.dtype == torch.float32 and np.allclose(as_float32.numpy(), single, atol=1e-5)


def test_agrees_with_bicubic_pytorch_package():
    core = pytest.importorskip("bicubic_pytorch.core", reason="bicubic-pytorch (test extra) is not installed")
    image = np.random.default_rng(2).random((1, 3, 50, 34))
    for scale in (0.25, 0.5, 1 / 3, 3, 4):
        theirs = core.imresize(torch.from_numpy(image), scale=scale, antialiasing=True).double().numpy()
        ours = imresize_torch(torch.from_numpy(image), scale).numpy()
        assert ours.shape == theirs.shape
        assert np.abs(ours - theirs).max() < 1e-5  # they compute in float32


def test_bad_arguments():
    with pytest.raises(ValueError, match="scale"):
        imresize(np.zeros((4, 4)), 0)
    with pytest.raises(ValueError, match="HxW"):
        imresize(np.zeros((2, 4, 4, 3)), 0.5)
    with pytest.raises(ValueError, match="floating-point"):
        imresize_torch(torch.zeros(1, 4, 4, dtype=torch.uint8), 0.5)
