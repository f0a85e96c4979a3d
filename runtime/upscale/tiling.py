"""The one tiler every backend uses: runs a ``Runner`` on an LR image of any size in bounded memory.

- **Tile size.** ``tile`` None (the default) picks it from a memory budget (:func:`auto_tile`): the whole
  image in one pass when its estimated working memory fits, else the largest square tile that fits (never
  below ``MIN_AUTO_TILE``: smaller tiles cost PSNR, docs/tiling.md). ``tile`` 0 asks for one whole-image
  pass; a positive ``tile`` is used as given. Every choice is capped by the runner's ``max_size``.
- **Blending.** Tiles overlap; each tile's output is weighted by a feathered window (zero at a cut edge, a
  linear ramp across the overlap, 1 elsewhere). The windows are separable and the tiles form a grid, so the
  sum of all windows is ``R(y) * C(x)``: each tile's window is normalised by those two 1-D sums and the
  weighted outputs simply add up.
- **Bounded assembly.** Tiles run band by band (a band: the tiles sharing rows). One float accumulator holds
  a band; rows that no later band touches are handed out as finished blocks and the accumulator moves on, so
  the float memory is one band, never the whole output. Bands run along the longer side of the image (the
  accumulator spans the shorter one).
- **Padding.** Images (or tiles) smaller than the runner's ``min_size`` are reflect-padded on the bottom/right
  and the output is cropped back.
- **Tiles in flight.** A runner with ``concurrent_tiles`` above 1 (one that sends tiles to a server running
  several at once) gets that many tiles at a time from a thread pool; outputs are still consumed in order, so
  the result is the same as one tile after another.

GLDFN is not purely local: its dynamic filters pool statistics over the whole input, so a tile's output
differs from the same region of the whole-image output (docs/tiling.md measures by how much). For a purely
local function with a receptive radius of at most ``overlap // 4`` LR pixels the tiled result is exact
everywhere (see ``tile_weights``); with a radius up to ``overlap`` it is exact outside the overlap bands.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from gldfn_model.common.errors import GldfnError
from gldfn_model.inference.runner import Runner, Size

DEFAULT_OVERLAP = 16
DEFAULT_MEMORY_BUDGET = 512 * 2**20  # bytes for one tile's inference plus the band accumulator
MIN_AUTO_TILE = 64  # docs/tiling.md: ~0.015 dB below the whole image at 64 LR px, ~0.1 dB at 32
_TILE_STEP = 16  # automatic tiles are multiples of this
DEFAULT_BYTES_PER_LR_PIXEL = 75 * 64  # GLDFN paper (64 channels); see runners.gldfn_bytes_per_lr_pixel

PatchReader = Callable[[int, int, int, int], np.ndarray]  # (top, bottom, left, right) -> N x C x h x w float32
TileCallback = Callable[[int, int], None]  # (tiles done, tiles in total)


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


def axis_tiles(length: int, tile: int, overlap: int) -> tuple[int, list[int]]:
    """(tile length, tile starts) along one axis of ``length``: as many tiles as a stride of ``tile - overlap``
    needs, shrunk to the shortest length that still covers the axis with ``overlap`` between neighbours, and spread
    evenly from edge to edge. Every tile has the same length (one shape for an engine); neighbours share at least
    ``overlap`` pixels (one more where the spacing rounds up)."""
    if length <= tile:
        return length, [0]
    if overlap >= tile:
        raise TilingError(f"overlap {overlap} must be smaller than the tile size {tile}")
    count = -(-(length - overlap) // (tile - overlap))  # ceil: the tile count of a plain stride
    size = -(-(length - overlap) // count) + overlap
    return size, [round(index * (length - size) / (count - 1)) for index in range(count)]


def tile_grid(height: int, width: int, tile: Size, overlap: int) -> list[Tile]:
    """Overlapping tiles of at most ``tile`` (h, w) covering a ``height x width`` image evenly, row-major
    (:func:`axis_tiles` along each axis)."""
    tile_h, tile_w = min(tile[0], height), min(tile[1], width)
    (tile_h, rows), (tile_w, cols) = axis_tiles(height, tile_h, overlap), axis_tiles(width, tile_w, overlap)
    return [
        Tile(top, left, top + tile_h, left + tile_w, top > 0, left > 0, top + tile_h < height, left + tile_w < width)
        for top in rows
        for left in cols
    ]


def even_tile_size(height: int, width: int, tile: Size, overlap: int) -> Size:
    """The (h, w) every tile of :func:`tile_grid` has: at most ``tile``, shrunk to spread the tiles evenly."""
    return axis_tiles(height, min(tile[0], height), overlap)[0], axis_tiles(width, min(tile[1], width), overlap)[0]


def tile_coverage(height: int, width: int, tile: Size, overlap: int) -> float:
    """LR pixels the tiles hold, over the image's: the work spent on an image relative to one whole pass."""
    return sum((t.bottom - t.top) * (t.right - t.left) for t in tile_grid(height, width, tile, overlap)) / (height * width)


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


def tile_windows(tile: Tile, scale: int, overlap: int) -> tuple[np.ndarray, np.ndarray]:
    """The 1-D row and column blending windows of a tile's ``sh x sw`` output. Over an overlap of ``o`` LR
    pixels, the outer ``o // 4`` get weight 0 and the next ``o - 2 * (o // 4)`` ramp linearly up to 1, so two
    neighbours' windows are complementary ramps and every output pixel has a positive total weight."""
    margin = trim_margin(overlap)
    args = (margin * scale, (overlap - 2 * margin) * scale)
    rows = _ramp((tile.bottom - tile.top) * scale, *args, tile.inner_top, tile.inner_bottom)
    cols = _ramp((tile.right - tile.left) * scale, *args, tile.inner_left, tile.inner_right)
    return rows, cols


def tile_weights(tile: Tile, scale: int, overlap: int) -> np.ndarray:
    """The ``sh x sw`` blending window of a tile's output: the outer product of its :func:`tile_windows`."""
    rows, cols = tile_windows(tile, scale, overlap)
    return rows[:, None] * cols[None, :]


def normalised_windows(tiles: list[Tile], height: int, width: int, scale: int,
                       overlap: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each tile's row and column windows divided by the sum of all windows along that axis. The tiles form
    a grid, so the sum of all 2-D windows is ``R(y) * C(x)`` and the normalised windows' products add up to 1."""
    windows = [tile_windows(tile, scale, overlap) for tile in tiles]
    row_total = np.zeros(height * scale, dtype=np.float32)
    col_total = np.zeros(width * scale, dtype=np.float32)
    for tile, (rows, cols) in zip(tiles, windows):
        if tile.left == 0:  # one tile per band and one per column contributes to the 1-D sums
            row_total[tile.top * scale : tile.bottom * scale] += rows
        if tile.top == 0:
            col_total[tile.left * scale : tile.right * scale] += cols
    return [(rows / row_total[tile.top * scale : tile.bottom * scale],
             cols / col_total[tile.left * scale : tile.right * scale]) for tile, (rows, cols) in zip(tiles, windows)]


def pad_to_min(lr: np.ndarray, min_size: Size | None) -> np.ndarray:
    """Reflect-pad an ``N x C x h x w`` batch on the bottom/right up to ``min_size``."""
    if min_size is None:
        return lr
    pad_h, pad_w = max(0, min_size[0] - lr.shape[2]), max(0, min_size[1] - lr.shape[3])
    if pad_h == 0 and pad_w == 0:
        return lr
    return np.pad(lr, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)), mode="reflect")


def finite_range(array: np.ndarray) -> tuple[float, float] | None:
    """(min, max) of an array, or None when it holds a NaN or an infinity (two passes, no temporaries)."""
    low, high = float(np.min(array)), float(np.max(array))
    return (low, high) if np.isfinite(low) and np.isfinite(high) else None


def run_padded(runner: Runner, lr: np.ndarray) -> np.ndarray:
    """``runner.infer`` on a batch, padded up to the runner's minimum size and cropped back; an error when the
    runner returns the wrong shape or values that are not finite."""
    height, width = lr.shape[2:]
    padded = pad_to_min(lr, runner.min_size)
    output = runner.infer(padded)
    expected = (lr.shape[0], lr.shape[1], padded.shape[2] * runner.scale, padded.shape[3] * runner.scale)
    if output.shape != expected:
        raise TilingError(f"runner {runner.name} returned shape {output.shape}, expected {expected} (scale x{runner.scale})")
    output = output[:, :, : height * runner.scale, : width * runner.scale]
    if finite_range(output) is None:
        raise TilingError(f"runner {runner.name} returned NaN or infinite values for a {height}x{width} input "
                          "(a model overflowing its precision, e.g. FP16, or broken weights)")
    return output


def bytes_per_lr_pixel(runner: Runner) -> int:
    """The runner's working memory per LR pixel of one inference (its ``bytes_per_lr_pixel`` when it has one)."""
    return int(getattr(runner, "bytes_per_lr_pixel", None) or DEFAULT_BYTES_PER_LR_PIXEL)


def working_memory(runner: Runner, tile: Size, height: int, width: int, channels: int = 3, batch: int = 1,
                   overlap: int = DEFAULT_OVERLAP) -> int:
    """Estimated bytes to upscale an ``height x width`` image with tiles of at most ``tile`` (the even tiles
    :func:`tile_grid` makes of it): one tile's inference, its output included, and, when tiled, the band
    accumulator, which spans the image's shorter side, plus a quarter of it for a finished block's conversion to
    8 bits. The input image and the output image are the caller's."""
    tile_h, tile_w = even_tile_size(height, width, tile, overlap)
    scale = runner.scale
    inference = bytes_per_lr_pixel(runner) * batch * tile_h * tile_w
    if tile_h >= height and tile_w >= width:
        return inference
    band_rows, band_length = (tile_h, width) if width <= height else (tile_w, height)  # see upscale_blocks
    band = batch * channels * 4 * band_rows * scale * band_length * scale
    return inference + band * 5 // 4


def auto_tile(runner: Runner, height: int, width: int, channels: int = 3, batch: int = 1,
              budget: int = DEFAULT_MEMORY_BUDGET, overlap: int = DEFAULT_OVERLAP) -> Size | None:
    """None (one whole-image pass) when that fits ``budget``, else the largest square tile, a multiple of
    16 LR pixels and at least ``MIN_AUTO_TILE``, whose working memory fits; capped by the runner's max size.
    The tiles actually run are that size or smaller (:func:`even_tile_size`)."""
    limit = runner.max_size
    fits_limit = limit is None or (height <= limit[0] and width <= limit[1])
    if fits_limit and working_memory(runner, (height, width), height, width, channels, batch, overlap) <= budget:
        return None
    side = max(MIN_AUTO_TILE, max(height, width) // _TILE_STEP * _TILE_STEP)
    while side > MIN_AUTO_TILE and working_memory(runner, (side, side), height, width, channels, batch, overlap) > budget:
        side -= _TILE_STEP
    if limit is not None:
        return min(side, limit[0]), min(side, limit[1])
    return side, side


def effective_tile(runner: Runner, height: int, width: int, tile: int | Size | None, channels: int = 3,
                   batch: int = 1, budget: int = DEFAULT_MEMORY_BUDGET, overlap: int = DEFAULT_OVERLAP) -> Size | None:
    """The tile size to use, or None for one whole-image pass. ``tile`` None: from the memory budget
    (:func:`auto_tile`); 0: the whole image, or the runner's max size when the image exceeds it; a size:
    that size, capped at the runner's max size."""
    if tile is None:
        return auto_tile(runner, height, width, channels, batch, budget, overlap)
    if isinstance(tile, int):
        tile = (tile, tile)
    limit = runner.max_size
    if tile == (0, 0):
        if limit is None or (height <= limit[0] and width <= limit[1]):
            return None
        return limit
    if tile[0] < 1 or tile[1] < 1:
        raise TilingError(f"tile size must be positive (or 0 for whole images), got {tile[0]}x{tile[1]}")
    if limit is not None:
        tile = (min(tile[0], limit[0]), min(tile[1], limit[1]))
    if runner.min_size is not None and (tile[0] < runner.min_size[0] or tile[1] < runner.min_size[1]):
        raise TilingError(f"tile {tile[0]}x{tile[1]} is below the runner's minimum size {runner.min_size[0]}x{runner.min_size[1]}")
    return tile


class _Transposed:
    """A runner seen with height and width swapped: the tiler runs column bands as row bands of it."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.name, self.scale = runner.name, runner.scale
        self.min_size = None if runner.min_size is None else (runner.min_size[1], runner.min_size[0])
        self.max_size = None if runner.max_size is None else (runner.max_size[1], runner.max_size[0])
        self.concurrent_tiles = concurrent_tiles(runner)

    def infer(self, lr: np.ndarray) -> np.ndarray:
        return self.runner.infer(np.ascontiguousarray(lr.swapaxes(2, 3))).swapaxes(2, 3)

    def synchronize(self) -> None:
        self.runner.synchronize()


def _add_tile(band: np.ndarray, output: np.ndarray, placed: Tile, rows: np.ndarray, cols: np.ndarray,
              scale: int) -> None:
    """Add one tile's output, weighted in place by its windows, to the band: no weighted copy."""
    if not output.flags.writeable:
        output = output.copy()
    output *= rows[:, None]
    output *= cols
    band[:, :, :, placed.left * scale : placed.right * scale] += output


def concurrent_tiles(runner: Runner) -> int:
    """How many tiles the runner takes at once (its ``concurrent_tiles``; 1 when it has none)."""
    return max(1, int(getattr(runner, "concurrent_tiles", 1) or 1))


def _tile_outputs(runner: Runner, tiles: list[Tile], read_patch: PatchReader) -> Iterator[np.ndarray]:
    """Each tile's output, in order; up to ``concurrent_tiles(runner)`` of them in flight (and in memory: one
    output at a time otherwise, freed before the next tile runs). Patches are read here, in order, so
    ``read_patch`` need not be thread-safe."""
    depth = concurrent_tiles(runner)
    if depth == 1:
        for placed in tiles:
            yield run_padded(runner, read_patch(placed.top, placed.bottom, placed.left, placed.right))
        return
    with ThreadPoolExecutor(depth, thread_name_prefix="gldfn-tile") as pool:
        pending: deque[Future[np.ndarray]] = deque()
        for placed in tiles:
            pending.append(pool.submit(run_padded, runner, read_patch(placed.top, placed.bottom, placed.left, placed.right)))
            if len(pending) == depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _row_bands(runner: Runner, shape: tuple[int, int, int, int], read_patch: PatchReader, tile: Size, overlap: int,
               on_tile: TileCallback | None) -> Iterator[tuple[int, int, np.ndarray]]:
    """Tiles band by band into one band-sized float accumulator; yields the rows no later band touches."""
    batch, channels, height, width = shape
    scale = runner.scale
    tiles = tile_grid(height, width, tile, overlap)
    windows = normalised_windows(tiles, height, width, scale, overlap)
    band_rows = (tiles[0].bottom - tiles[0].top) * scale
    band = np.zeros((batch, channels, band_rows, width * scale), dtype=np.float32)
    outputs = _tile_outputs(runner, tiles, read_patch)
    for done, (placed, (rows, cols)) in enumerate(zip(tiles, windows), start=1):
        _add_tile(band, next(outputs), placed, rows, cols, scale)  # held by nothing once added
        if on_tile is not None:
            on_tile(done, len(tiles))
        if done < len(tiles) and tiles[done].top == placed.top:
            continue  # more tiles in this band
        following = tiles[done].top if done < len(tiles) else height
        finished = (following - placed.top) * scale
        yield placed.top * scale, 0, band[:, :, :finished]
        # The rows the next band adds to, moved up (NumPy copies overlapping views correctly).
        band[:, :, : band_rows - finished] = band[:, :, finished:]
        band[:, :, band_rows - finished :] = 0.0


def upscale_blocks(runner: Runner, shape: tuple[int, int, int, int], read_patch: PatchReader, tile: Size | None,
                   overlap: int = DEFAULT_OVERLAP,
                   on_tile: TileCallback | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
    """Upscale an ``N x C x h x w`` image (``shape``) read patch by patch, ``tile`` None meaning one pass.
    Yields ``(top, left, block)``: finished ``N x C x bh x bw`` float32 regions of the output (unclipped)
    that together cover it once. A block is only valid until the next one is asked for, and the caller may
    modify it in place. ``on_tile(done, total)`` is called after each tile."""
    if overlap < 0:
        raise TilingError(f"overlap must be >= 0, got {overlap}")
    _, _, height, width = shape
    if tile is None or (tile[0] >= height and tile[1] >= width):
        output = run_padded(runner, read_patch(0, height, 0, width))
        if on_tile is not None:
            on_tile(1, 1)
        yield 0, 0, output
        return
    if width <= height:
        yield from _row_bands(runner, shape, read_patch, tile, overlap, on_tile)
        return
    transposed = (shape[0], shape[1], width, height)

    def read_transposed(top: int, bottom: int, left: int, right: int) -> np.ndarray:
        return read_patch(left, right, top, bottom).swapaxes(2, 3)

    bands = _row_bands(_Transposed(runner), transposed, read_transposed, (tile[1], tile[0]), overlap, on_tile)
    for top, left, block in bands:
        yield left, top, block.swapaxes(2, 3)


def upscale_tiled(runner: Runner, lr: np.ndarray, tile: int | Size | None = None, overlap: int = DEFAULT_OVERLAP,
                  budget: int = DEFAULT_MEMORY_BUDGET, on_tile: TileCallback | None = None) -> np.ndarray:
    """Run ``runner`` on an ``N x C x h x w`` float32 batch of any size; returns ``N x C x sh x sw`` float32.
    ``tile``: see :func:`effective_tile`."""
    batch, channels, height, width = lr.shape
    tile_size = effective_tile(runner, height, width, tile, channels, batch, budget, overlap)
    scale = runner.scale
    output = np.empty((batch, channels, height * scale, width * scale), dtype=np.float32)

    def read_patch(top: int, bottom: int, left: int, right: int) -> np.ndarray:
        return lr[:, :, top:bottom, left:right]

    for top, left, block in upscale_blocks(runner, lr.shape, read_patch, tile_size, overlap, on_tile):
        output[:, :, top : top + block.shape[2], left : left + block.shape[3]] = block
    return output
