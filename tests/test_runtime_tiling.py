"""The tiler: tile plans, blending windows, padding, and tiled-vs-whole agreement with real runners
(MATLAB bicubic, GLDFN's all-convolutional Table I variant A in ONNX Runtime, GLDFN tiny in PyTorch)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gldfn_export.exporter import export_gldfn
from gldfn_model.data.reference_inputs import real_image_input
from gldfn_model.evaluation.metrics import psnr
from gldfn_model.inference.bicubic_runner import BicubicRunner
from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner
from gldfn_model.inference.torch_runner import TorchRunner
from gldfn_model.network.checkpoint import load_checkpoint, shipped_weights_path
from gldfn_model.network.config import get_config
from gldfn_model.network.gldfn import GLDFN
from gldfn_runtime.upscale.tiling import (
    MIN_AUTO_TILE,
    TilingError,
    auto_tile,
    effective_tile,
    pad_to_min,
    tile_coverage,
    tile_grid,
    tile_weights,
    upscale_blocks,
    upscale_tiled,
    working_memory,
)

SCALE = 4


def lr_batch(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((1, 3, height, width), dtype=np.float32)


def seam_mask(height: int, width: int, tile: int, overlap: int, radius: int, scale: int) -> np.ndarray:
    """HR pixels within ``radius`` LR pixels of a tile's inner (cut) edge: where tiles can differ from the whole."""
    mask = np.zeros((height * scale, width * scale), dtype=bool)
    for t in tile_grid(height, width, (tile, tile), overlap):
        reach = radius * scale
        if t.inner_top:
            mask[t.top * scale : t.top * scale + reach, t.left * scale : t.right * scale] = True
        if t.inner_bottom:
            mask[max(0, t.bottom * scale - reach) : t.bottom * scale, t.left * scale : t.right * scale] = True
        if t.inner_left:
            mask[t.top * scale : t.bottom * scale, t.left * scale : t.left * scale + reach] = True
        if t.inner_right:
            mask[t.top * scale : t.bottom * scale, max(0, t.right * scale - reach) : t.right * scale] = True
    return mask


def receptive_radius(runner, size: int = 64) -> int:
    """LR pixels an impulse at the centre reaches in the output, measured."""
    x = lr_batch(size, size, seed=1)
    y = x.copy()
    y[0, :, size // 2, size // 2] += 0.5
    changed = np.abs(runner.infer(x) - runner.infer(y))[0].max(axis=0) > 0
    rows, cols = np.nonzero(changed)
    reach = max(size // 2 - rows.min() / runner.scale, rows.max() / runner.scale - size // 2,
                size // 2 - cols.min() / runner.scale, cols.max() / runner.scale - size // 2)
    assert reach < size // 2 - 2, "the impulse reached the border: measure on a bigger input"
    return int(np.ceil(reach)) + 1


@pytest.mark.parametrize("height,width,tile,overlap", [(50, 70, 24, 6), (24, 24, 24, 4), (31, 100, 16, 0), (9, 200, 64, 12),
                                                       (1500, 2000, 368, 16), (97, 353, 48, 16)])
def test_plan_covers_the_image_evenly_with_the_requested_overlap(height, width, tile, overlap):
    tiles = tile_grid(height, width, (tile, tile), overlap)
    cover = np.zeros((height, width), dtype=int)
    sizes = {(t.bottom - t.top, t.right - t.left) for t in tiles}
    assert len(sizes) == 1  # one shape: one engine shape
    (tile_h, tile_w), = sizes
    assert tile_h <= min(tile, height) and tile_w <= min(tile, width)
    for t in tiles:
        cover[t.top : t.bottom, t.left : t.right] += 1
    assert cover.min() >= 1
    for starts, size, length in (({t.top for t in tiles}, tile_h, height), ({t.left for t in tiles}, tile_w, width)):
        starts = sorted(starts)
        # as many tiles as a plain stride of `tile - overlap` needs, from edge to edge
        assert len(starts) == (1 if length <= tile else -(-(length - overlap) // (tile - overlap)))
        assert starts[0] == 0 and starts[-1] + size == length
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        assert all(size - gap >= overlap for gap in gaps)  # neighbours share at least `overlap`
        assert not gaps or max(gaps) - min(gaps) <= 1  # spread evenly
        if len(starts) > 1:  # the shortest tiles that can: one pixel less and this many cannot keep `overlap`
            assert len(starts) * (size - 1 - overlap) + overlap < length


def test_even_tiles_recompute_less_than_tiles_flush_with_the_edge():
    """A 3 MP photo in the tiles the memory budget picks for it: the flush layout (full tiles, the last one
    against the edge) holds 1.35x the photo's pixels; the same tile count spread evenly about 1.09x."""
    height, width, tile, overlap = 1500, 2000, 368, 16
    counts = [-(-(length - overlap) // (tile - overlap)) for length in (height, width)]
    flush = counts[0] * tile * counts[1] * tile / (height * width)
    even = tile_coverage(height, width, (tile, tile), overlap)
    assert len(tile_grid(height, width, (tile, tile), overlap)) == counts[0] * counts[1]
    assert even < 1.1 < 1.3 < flush
    print(f"{width}x{height}, {counts[0] * counts[1]} tiles of at most {tile}: flush {flush:.3f}x, even {even:.3f}x")


def test_blending_weights_are_positive_everywhere_and_one_inside():
    height, width, tile, overlap = 50, 70, 24, 8
    total = np.zeros((height * SCALE, width * SCALE))
    for t in tile_grid(height, width, (tile, tile), overlap):
        weights = tile_weights(t, SCALE, overlap)
        assert weights.shape == ((t.bottom - t.top) * SCALE, (t.right - t.left) * SCALE)
        assert weights.max() == 1.0 and weights.min() >= 0.0
        total[t.top * SCALE : t.bottom * SCALE, t.left * SCALE : t.right * SCALE] += weights
    assert total.min() > 0.0


def test_overlap_not_smaller_than_the_tile_is_refused():
    with pytest.raises(TilingError, match="overlap 16 must be smaller"):
        tile_grid(64, 64, (16, 16), 16)


def test_reflect_padding_reaches_the_minimum_and_keeps_the_image():
    lr = lr_batch(5, 7)
    padded = pad_to_min(lr, (16, 12))
    assert padded.shape == (1, 3, 16, 12)
    np.testing.assert_array_equal(padded[:, :, :5, :7], lr)
    np.testing.assert_array_equal(padded[:, :, 5, :7], lr[:, :, 3, :])  # mirrored about the last row


@pytest.mark.parametrize("overlap", [8, 12])
def test_bicubic_tiled_equals_whole_everywhere_when_overlap_covers_its_reach(overlap):
    # Bicubic reaches 2 LR pixels; the outer overlap // 4 >= 2 pixels of each cut get zero weight.
    runner = BicubicRunner(SCALE)
    lr = lr_batch(50, 70)
    np.testing.assert_allclose(upscale_tiled(runner, lr, tile=24, overlap=overlap), runner.infer(lr), atol=1e-5)


def test_bicubic_hard_seams_differ_only_at_the_cuts():
    runner = BicubicRunner(SCALE)
    lr = lr_batch(50, 70)
    error = np.abs(upscale_tiled(runner, lr, tile=24, overlap=0) - runner.infer(lr))[0].max(axis=0)
    near = seam_mask(50, 70, 24, 0, runner.receptive_radius, SCALE)
    assert error[~near].max() < 1e-5
    assert error[near].max() > 1e-3  # the comparison does see seams when there are any


@pytest.fixture(scope="module")
def variant_a_runner(tmp_path_factory) -> OnnxRuntimeRunner:
    """GLDFN tiny, Table I variant A (both dynamic layers replaced by plain convolutions: no global pooling,
    so purely local), exported and run in ONNX Runtime."""
    torch.manual_seed(0)
    model = GLDFN(get_config("tiny", SCALE, ablation="A")).eval()
    path = tmp_path_factory.mktemp("onnx") / "tiny_variant_a.onnx"
    export_gldfn(model, path, verify=False, config_name="tiny")
    return OnnxRuntimeRunner(path)


def test_onnxruntime_keeps_one_arena_for_all_tiles(variant_a_runner):
    """Tiles of one shape reuse ONNX Runtime's arena: its memory pattern would keep a second, planned block beside it
    after the first run (resident memory doubled, against the tiler's budget; docs/tiling.md)."""
    assert variant_a_runner.session.get_session_options().enable_mem_pattern is False


def test_local_network_in_onnxruntime_tiled_equals_whole_away_from_seams(variant_a_runner):
    runner = variant_a_runner
    radius = receptive_radius(runner)
    height, width, tile, overlap = 96, 112, 56, radius + 4
    lr = lr_batch(height, width)
    whole = runner.infer(lr)
    error = np.abs(upscale_tiled(runner, lr, tile=tile, overlap=overlap) - whole)[0].max(axis=0)
    near = seam_mask(height, width, tile, overlap, radius, SCALE)
    assert near.any() and not near.all()
    assert error[~near].max() < 1e-5
    print(f"variant A (receptive radius {radius} LR px), tile {tile} overlap {overlap}: max seam error {error[near].max():.2e}")


def test_gldfn_tiled_error_is_small_and_reported(record_property):
    """GLDFN's dynamic filters pool over the whole input, so tiles are inexact: bound and report by how much."""
    shipped = shipped_weights_path("tiny", SCALE)
    torch.manual_seed(0)
    model = load_checkpoint(shipped).build_model() if shipped else GLDFN(get_config("tiny", SCALE))
    record_property("weights", str(shipped) if shipped else "random (no shipped tiny x4 weights)")
    runner = TorchRunner(model)
    reference = real_image_input(SCALE, 64, 64, 1)
    whole = runner.infer(reference.lr)
    rows = []
    for tile, overlap in [(32, 8), (32, 16), (48, 16)]:
        tiled = upscale_tiled(runner, reference.lr, tile=tile, overlap=overlap)
        value = psnr(np.clip(tiled, 0, 1), np.clip(whole, 0, 1), peak=1.0)
        rows.append((tile, overlap, value, float(np.abs(tiled - whole).max())))
        record_property(f"psnr_tile{tile}_overlap{overlap}", value)
        assert value > 30.0, f"tile {tile} overlap {overlap}: tiled vs whole only {value:.1f} dB on {reference.name}"
    print("\n".join(f"{reference.name}: tile {t} overlap {o}: {p:.1f} dB, max abs {m:.3f}" for t, o, p, m in rows))


def test_runner_max_size_triggers_tiling_and_min_size_padding():
    runner = BicubicRunner(SCALE)
    runner.max_size = (24, 24)  # as a TensorRT engine's profile would
    lr = lr_batch(40, 60)
    np.testing.assert_allclose(upscale_tiled(runner, lr, overlap=8), BicubicRunner(SCALE).infer(lr), atol=1e-5)
    runner = BicubicRunner(SCALE)
    runner.min_size = (32, 32)
    small = lr_batch(10, 20)
    out = upscale_tiled(runner, small)
    assert out.shape == (1, 3, 40, 80)
    # Padding at the bottom/right only changes the last `reach` rows/columns.
    reach = BicubicRunner.receptive_radius * SCALE
    np.testing.assert_allclose(out[:, :, :-reach, :-reach], BicubicRunner(SCALE).infer(small)[:, :, :-reach, :-reach], atol=1e-5)


def test_tile_below_the_runner_minimum_is_refused():
    runner = BicubicRunner(SCALE)
    runner.min_size = (32, 32)
    with pytest.raises(TilingError, match="below the runner's minimum"):
        upscale_tiled(runner, lr_batch(64, 64), tile=16)


def whole_output_blend(runner, lr: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """The blend written out plainly: every tile's weighted output summed over the whole image, then divided by
    the summed weights."""
    scale = runner.scale
    total = np.zeros(lr.shape[2:], dtype=np.float64).repeat(scale, 0).repeat(scale, 1)
    output = np.zeros((*lr.shape[:2], *total.shape))
    for t in tile_grid(lr.shape[2], lr.shape[3], (tile, tile), overlap):
        weights = tile_weights(t, scale, overlap)
        region = (slice(t.top * scale, t.bottom * scale), slice(t.left * scale, t.right * scale))
        tile_output = runner.infer(lr[:, :, t.top : t.bottom, t.left : t.right])
        output[(slice(None), slice(None), *region)] += tile_output * weights
        total[region] += weights
    return output / total


@pytest.mark.parametrize("height,width,tile,overlap",
                         [(70, 44, 24, 8), (44, 70, 24, 8), (41, 41, 24, 16), (30, 90, 32, 4)])
def test_band_assembly_equals_the_plain_blend(height, width, tile, overlap):
    """GLDFN (random tiny) is not local, so every tile's output matters; band by band, rows and columns
    (wide images run column bands), with large last overlaps, the result is the plain weighted average."""
    torch.manual_seed(0)
    runner = TorchRunner(GLDFN(get_config("tiny", SCALE)))
    lr = lr_batch(height, width, seed=3)
    covered = np.zeros((height * SCALE, width * SCALE), dtype=int)
    result = np.zeros((1, 3, height * SCALE, width * SCALE), dtype=np.float32)
    blocks = 0
    def read_patch(top: int, bottom: int, left: int, right: int) -> np.ndarray:
        return lr[:, :, top:bottom, left:right]

    for top, left, block in upscale_blocks(runner, lr.shape, read_patch, (tile, tile), overlap):
        covered[top : top + block.shape[2], left : left + block.shape[3]] += 1
        result[:, :, top : top + block.shape[2], left : left + block.shape[3]] = block  # valid until the next one
        blocks += 1
    assert blocks > 1 and (covered == 1).all()
    np.testing.assert_allclose(result, whole_output_blend(runner, lr, tile, overlap), atol=2e-6)


def test_automatic_tile_fits_the_budget_and_keeps_small_images_whole():
    runner = BicubicRunner(SCALE)
    assert auto_tile(runner, 100, 80) is None and effective_tile(runner, 100, 80, None) is None
    for budget in (8 * 2**20, 64 * 2**20, 512 * 2**20):
        tile = auto_tile(runner, 3000, 4000, budget=budget)
        assert tile[0] == tile[1] and tile[0] % 16 == 0 and tile[0] >= MIN_AUTO_TILE
        assert tile[0] == MIN_AUTO_TILE or working_memory(runner, tile, 3000, 4000) <= budget
    assert auto_tile(runner, 3000, 4000, budget=1) == (MIN_AUTO_TILE, MIN_AUTO_TILE)  # never below the PSNR floor
    runner.max_size = (48, 40)  # an engine profile caps every choice
    assert auto_tile(runner, 3000, 4000) == (48, 40) and effective_tile(runner, 30, 30, 0) is None
    assert effective_tile(runner, 300, 30, 0) == (48, 40)


def test_memory_of_the_band_accumulator_does_not_grow_with_the_image():
    """NumPy's peak (tracemalloc) while streaming blocks barely moves for an image four times as tall (a whole-image
    accumulator would make it four times larger); garbage left by earlier tests is collected first."""
    import gc
    import tracemalloc

    runner = BicubicRunner(SCALE)
    peaks = []
    for height in (400, 1600):
        lr = lr_batch(height, 60)
        gc.collect()
        tracemalloc.start()
        for _ in upscale_blocks(runner, lr.shape, lambda t, b, left, r, lr=lr: lr[:, :, t:b, left:r], (64, 64), 16):
            pass
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    output_bytes = 1600 * SCALE * 60 * SCALE * 3 * 4
    assert peaks[1] < 1.5 * peaks[0] and peaks[1] < output_bytes / 8, peaks
