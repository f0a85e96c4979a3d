"""The one tiler every backend uses: runs a ``Runner`` on an LR image of any size.

- Images larger than the runner's ``max_size`` (or than ``tile`` when given) are cut into overlapping tiles;
  each tile's output is weighted by a feathered window (zero at a cut edge, a linear ramp across the
  overlap, 1 elsewhere) and the weighted outputs are summed and normalised, so seams blend smoothly.
- Images (or tiles) smaller than the runner's ``min_size`` are reflect-padded on the bottom/right and the
  output is cropped back.

GLDFN is not purely local: its dynamic filters pool statistics over the whole input, so a tile's output
differs from the same region of the whole-image output (docs/tiling.md measures by how much). For a purely
local function with a receptive radius of at most ``overlap // 4`` LR pixels the tiled result is exact
everywhere (see ``tile_weights``); with a radius up to ``overlap`` it is exact outside the overlap bands.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from gldfn_model.common.errors import GldfnError
from gldfn_model.inference.runner import Runner, Size

DEFAULT_OVERLAP = 16


class TilingError(GldfnError, ValueError):
    """Tile settings that cannot work with this runner or image."""


@dataclass(frozen=True)
class Tile:
    """An LR region [top, bottom) x [left, right) and which of its sides border another tile."""

    top: int
    left: int
    bottom: int
    right: int
    inner_top: bool
    inner_left: bool
    inner_bottom: bool
    inner_right: bool


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile starts along one axis: stride ``tile - overlap``, the last tile flush with the end."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def plan_tiles(height: int, width: int, tile: Size, overlap: int) -> list[Tile]:
    """Overlapping tiles of at most ``tile`` (h, w) covering a ``height x width`` image, row-major."""
    tile_h, tile_w = min(tile[0], height), min(tile[1], width)
    for name, size, length in (("height", tile_h, height), ("width", tile_w, width)):
        if size < length and overlap >= size:
            raise TilingError(f"overlap {overlap} must be smaller than the tile {name} {size}")
    rows, cols = _starts(height, tile_h, overlap), _starts(width, tile_w, overlap)
    return [
        Tile(top, left, top + tile_h, left + tile_w, top > 0, left > 0, top + tile_h < height, left + tile_w < width)
        for top in rows
        for left in cols
    ]


def trim_margin(overlap: int) -> int:
    """LR pixels at a tile's inner edge that get zero weight: the neighbour tile covers them from farther
    inside, where its output is unaffected by its own cut."""
    return overlap // 4


def _ramp(length: int, margin: int, ramp: int, rising: bool, falling: bool) -> np.ndarray:
    """1-D weights: ``margin`` zeros then a linear rise over ``ramp`` samples at a rising edge, mirrored at
    a falling edge, 1 elsewhere."""
    edge = np.concatenate([np.zeros(margin, np.float32), (np.arange(ramp, dtype=np.float32) + 1.0) / (ramp + 1.0)])
    edge = edge[:length]
    weights = np.ones(length, dtype=np.float32)
    if rising:
        weights[: edge.size] = np.minimum(weights[: edge.size], edge)
    if falling:
        weights[length - edge.size :] = np.minimum(weights[length - edge.size :], edge[::-1])
    return weights


def tile_weights(tile: Tile, scale: int, overlap: int) -> np.ndarray:
    """The ``sh x sw`` blending window of a tile's output. Over an overlap of ``o`` LR pixels, the outer
    ``o // 4`` get weight 0 and the next ``o - 2 * (o // 4)`` ramp linearly up to 1, so two neighbours'
    windows are complementary ramps and every output pixel has a positive total weight."""
    margin = trim_margin(overlap)
    args = (margin * scale, (overlap - 2 * margin) * scale)
    rows = _ramp((tile.bottom - tile.top) * scale, *args, tile.inner_top, tile.inner_bottom)
    cols = _ramp((tile.right - tile.left) * scale, *args, tile.inner_left, tile.inner_right)
    return rows[:, None] * cols[None, :]


def pad_to_min(lr: np.ndarray, min_size: Size | None) -> np.ndarray:
    """Reflect-pad an ``N x C x h x w`` batch on the bottom/right up to ``min_size``."""
    if min_size is None:
        return lr
    pad_h, pad_w = max(0, min_size[0] - lr.shape[2]), max(0, min_size[1] - lr.shape[3])
    if pad_h == 0 and pad_w == 0:
        return lr
    return np.pad(lr, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)), mode="reflect")


def run_padded(runner: Runner, lr: np.ndarray) -> np.ndarray:
    """``runner.infer`` on a batch, padded up to the runner's minimum size and cropped back."""
    height, width = lr.shape[2:]
    padded = pad_to_min(lr, runner.min_size)
    output = runner.infer(padded)
    expected = (lr.shape[0], 3, padded.shape[2] * runner.scale, padded.shape[3] * runner.scale)
    if output.shape != expected:
        raise TilingError(f"runner {runner.name} returned shape {output.shape}, expected {expected} (scale x{runner.scale})")
    return output[:, :, : height * runner.scale, : width * runner.scale]


def effective_tile(runner: Runner, height: int, width: int, tile: int | Size | None) -> Size | None:
    """The tile size to use: ``tile`` (capped at the runner's max size), the max size when the image exceeds
    it, or None for one whole-image pass."""
    if isinstance(tile, int):
        tile = (tile, tile)
    if tile is not None and (tile[0] < 1 or tile[1] < 1):
        raise TilingError(f"tile size must be positive, got {tile}")
    limit = runner.max_size
    if tile is None:
        if limit is None or (height <= limit[0] and width <= limit[1]):
            return None
        return limit
    if limit is not None:
        tile = (min(tile[0], limit[0]), min(tile[1], limit[1]))
    if runner.min_size is not None and (tile[0] < runner.min_size[0] or tile[1] < runner.min_size[1]):
        raise TilingError(f"tile {tile[0]}x{tile[1]} is below the runner's minimum size {runner.min_size[0]}x{runner.min_size[1]}")
    return tile


def iter_tiles(lr: np.ndarray, tiles: list[Tile]) -> Iterator[tuple[Tile, np.ndarray]]:
    for tile in tiles:
        yield tile, lr[:, :, tile.top : tile.bottom, tile.left : tile.right]


def upscale_tiled(
    runner: Runner, lr: np.ndarray, tile: int | Size | None = None, overlap: int = DEFAULT_OVERLAP
) -> np.ndarray:
    """Run ``runner`` on an ``N x 3 x h x w`` float32 batch of any size; returns ``N x 3 x sh x sw``.

    ``tile`` None: one pass when the image fits the runner, else tiles of the runner's max size.
    """
    if overlap < 0:
        raise TilingError(f"overlap must be >= 0, got {overlap}")
    batch, _, height, width = lr.shape
    tile_size = effective_tile(runner, height, width, tile)
    if tile_size is None or (tile_size[0] >= height and tile_size[1] >= width):
        return run_padded(runner, lr)
    scale = runner.scale
    output = np.zeros((batch, 3, height * scale, width * scale), dtype=np.float32)
    total = np.zeros((height * scale, width * scale), dtype=np.float32)
    for placed, patch in iter_tiles(lr, plan_tiles(height, width, tile_size, overlap)):
        weights = tile_weights(placed, scale, overlap)
        region = (slice(placed.top * scale, placed.bottom * scale), slice(placed.left * scale, placed.right * scale))
        output[(slice(None), slice(None), *region)] += run_padded(runner, patch) * weights
        total[region] += weights
    return output / total
