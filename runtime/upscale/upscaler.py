"""``Upscaler``: upscale images (HWC NumPy arrays) with any ``Runner``, tiling and padding as needed, in
bounded memory; ``upscale_file`` / ``upscale_files``: the per-file loop of ``gldfn upscale`` and ``gldfn-trt run``.

Grey images run as RGB and come back as one channel (the mean of the three); an alpha channel (of grey + alpha
or RGBA) is resized separately with MATLAB-style bicubic interpolation: it is a coverage mask, not a photo, and
the model, trained on degraded photos, would add texture and halos to its edges; uint8, uint16 (16-bit) and float32 in [0, 1]
come back in the same dtype, clipped to the valid range. NaN or infinite pixels and float images outside
[0, 1] are refused, not turned into a NaN image. Tiles are chosen from a memory budget (gldfn_runtime.upscale.tiling)
and the output is assembled from finished blocks straight into the result (an array, or for files an
``ImageCanvas``), never as a float copy of the whole image.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gldfn_model.common.atomic import output_folder
from gldfn_model.common.errors import GldfnError
from gldfn_model.data.image_io import DEFAULT_MAX_PIXELS, ImageCanvas, fit_output, read_image_with_metadata
from gldfn_model.data.imresize import imresize
from gldfn_model.inference.runner import Runner, RunnerError, Size
from gldfn_runtime.upscale.progress import batch_progress
from gldfn_runtime.upscale.tiling import (
    DEFAULT_MEMORY_BUDGET,
    DEFAULT_OVERLAP,
    MIN_AUTO_TILE,
    TileCallback,
    TilingError,
    bytes_per_lr_pixel,
    concurrent_tiles,
    effective_tile,
    finite_range,
    upscale_blocks,
    upscale_tiled,
    working_memory,
)

# The exporter's dynamic axes start at 2, and reflect padding needs two pixels: a 1-pixel side is refused.
MIN_IMAGE_SIDE = 2
_MAX_VALUE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
BlockWriter = Callable[[int, int, np.ndarray], None]  # (top, left, HWC block in the output dtype)


class ImageShapeError(GldfnError, ValueError):
    """An image array this upscaler cannot take (layout, dtype or size)."""


class ImageValueError(GldfnError, ValueError):
    """Pixel values this upscaler cannot take: NaN, infinities, floats outside [0, 1]."""


class OutOfMemoryError(GldfnError, MemoryError):
    """An image needs more memory than the machine has available."""


def check_image(image: np.ndarray) -> None:
    """Raise ImageShapeError unless ``image`` is an H x W (x 1|2|3|4) uint8/uint16/float32 array of at least 2 x 2."""
    if not isinstance(image, np.ndarray):
        raise ImageShapeError(f"expected a NumPy array, got {type(image).__name__}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
        raise ImageShapeError(f"expected an H x W, H x W x 2 (grey + alpha), H x W x 3 (RGB) or H x W x 4 (RGBA) "
                              f"image, got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        raise ImageShapeError(f"expected uint8, uint16 or float32 pixels, got {image.dtype}")
    height, width = image.shape[:2]
    if height < MIN_IMAGE_SIDE or width < MIN_IMAGE_SIDE:
        raise ImageShapeError(f"the image is {height}x{width} pixels; at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} is needed")


def check_unit_range(pixels: Any) -> None:
    """Raise ImageValueError unless a float array (or tensor) is finite and within [0, 1]."""
    if not isinstance(pixels, np.ndarray):  # a torch tensor: the same two reductions on its device
        low, high = float(pixels.min()), float(pixels.max())
        bounds = (low, high) if np.isfinite(low) and np.isfinite(high) else None
    else:
        bounds = finite_range(pixels)
    if bounds is None:
        raise ImageValueError("the image holds NaN or infinite values; replace them (e.g. numpy.nan_to_num) first")
    low, high = bounds
    if low < 0.0 or high > 1.0:
        hint = "; it looks like 0-255 data: divide by 255" if 1.0 < high <= 255.0 and low >= 0.0 else ""
        raise ImageValueError(f"float pixels must lie in [0, 1], these span [{low:g}, {high:g}]{hint}")


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """uint8 / uint16 -> float32 in [0, 1]; float32 unchanged."""
    scale = _MAX_VALUE.get(image.dtype)
    return image.astype(np.float32) / np.float32(scale) if scale else image.astype(np.float32, copy=False)


def from_unit_float(image: np.ndarray, dtype: np.dtype, in_place: bool = False) -> np.ndarray:
    """float in [0, 1] -> ``dtype``, clipped (and rounded for integers). ``in_place`` uses ``image`` (float32)
    as scratch, so the only new array is the result."""
    clipped = np.clip(image, 0.0, 1.0, out=image if in_place else None)
    scale = _MAX_VALUE.get(np.dtype(dtype))
    if scale is None:
        return clipped.astype(np.float32, order="C", copy=not in_place)
    clipped *= scale
    np.rint(clipped, out=clipped)
    return clipped.astype(dtype, order="C")


class _LayoutRunner:
    """The RGB runner applied to grey tiles (run as three equal channels, the mean comes back), grey + alpha or
    RGBA tiles (the grey or colour as before, alpha with MATLAB bicubic), so the tiler treats every layout alike."""

    def __init__(self, runner: Runner, channels: int) -> None:
        self.runner, self.channels = runner, channels
        self.name, self.scale = runner.name, runner.scale
        self.min_size, self.max_size = runner.min_size, runner.max_size
        self.bytes_per_lr_pixel = bytes_per_lr_pixel(runner)
        self.concurrent_tiles = concurrent_tiles(runner)

    def infer(self, lr: np.ndarray) -> np.ndarray:
        if self.channels == 1:
            return self.runner.infer(np.repeat(lr, 3, axis=1)).mean(axis=1, keepdims=True)
        if self.channels == 2:
            colour = self.runner.infer(np.repeat(lr[:, :1], 3, axis=1)).mean(axis=1, keepdims=True)
        else:
            colour = self.runner.infer(lr[:, :3])
        alpha = np.stack([imresize(plane[-1], self.scale) for plane in lr])[:, None].astype(np.float32)
        return np.concatenate([colour, alpha], axis=1)

    def synchronize(self) -> None:
        self.runner.synchronize()


class Upscaler:
    """Upscale images with a runner. ``tile`` (LR pixels, int or (h, w)): None picks tiles from
    ``memory_budget`` (bytes; the whole image when it fits), 0 runs whole images, N uses N x N tiles; an image
    beyond the runner's maximum size is tiled in any case. ``overlap`` is in LR pixels."""

    def __init__(self, runner: Runner, tile: int | Size | None = None, overlap: int = DEFAULT_OVERLAP,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET) -> None:
        if not isinstance(runner, Runner):
            raise TypeError(f"{type(runner).__name__} does not implement gldfn_model.inference.runner.Runner")
        self.runner = runner
        self.tile = tile
        self.overlap = overlap
        self.memory_budget = memory_budget
        # The smallest tile it may use (automatic tiles are at least MIN_AUTO_TILE); validates `tile`.
        size = effective_tile(runner, 1 << 30, 1 << 30, MIN_AUTO_TILE if tile is None else tile)
        if overlap < 0:
            raise TilingError(f"overlap must be >= 0, got {overlap}")
        if size is not None and overlap >= min(size):
            raise TilingError(f"overlap {overlap} must be smaller than the tile size {size[0]}x{size[1]}")

    @property
    def scale(self) -> int:
        return self.runner.scale

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str] | None = None,
        scale: int = 4,
        *,
        config: str | None = None,
        random_weights: bool = False,
        device: str = "cpu",
        threads: int | None = None,
        model: str | None = None,
        **kwargs: Any,
    ) -> Upscaler:
        """PyTorch on a checkpoint; ``path`` None takes the shipped model named ``model``, else the weights shipped
        for ``config`` (default tiny) at ``scale``, or random weights when ``random_weights`` (benchmarks only)."""
        from gldfn_model.inference.torch_runner import TorchRunner
        from gldfn_model.network.checkpoint import SHIPPED_CONFIG
        from gldfn_model.network.model_source import resolve_model

        name = config if config is not None or path is not None or model is not None else SHIPPED_CONFIG
        source = resolve_model(scale, name, Path(path) if path is not None else None, random_weights, model=model)
        return cls(TorchRunner(source.model, device=device, threads=threads), **kwargs)

    @classmethod
    def from_onnx(
        cls,
        path: str | os.PathLike[str],
        providers: list[str] | str | None = None,
        threads: int | None = None,
        *,
        backend: str = "onnxruntime",
        plugin: str | os.PathLike[str] | None = None,
        precision: str | None = None,
        device: int = 0,
        cache_dir: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> Upscaler:
        """An exported file. ``backend="onnxruntime"`` (default): ONNX Runtime with ``providers``, e.g.
        ``["cuda"]`` or ``"cpu"`` (default), and ``threads``. ``backend="tensorrt"``: the file's engine from the
        engine cache, built on first use for GPU ``device`` (``precision`` default: the file's; ``plugin`` as in
        :meth:`from_engine`; ``cache_dir`` default $GLDFN_TRT_CACHE_DIR or ~/.cache/gldfn-trt/engines)."""
        if backend == "tensorrt":
            try:
                from gldfn_runtime.runners.open import open_tensorrt_runner
            except ImportError as exc:
                raise RunnerError(f"the TensorRT runner cannot be imported ({exc}); install gldfn-trt[rtx] or gldfn-trt[trt]") from exc
            return cls(open_tensorrt_runner(path, plugin=plugin, precision=precision, device=device, cache_dir=cache_dir), **kwargs)
        if backend != "onnxruntime":
            raise RunnerError(f"backend {backend!r} is not one of onnxruntime, tensorrt")
        from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner

        return cls(OnnxRuntimeRunner(path, providers=providers, threads=threads), **kwargs)

    @classmethod
    def from_engine(
        cls, path: str | os.PathLike[str], plugin: str | os.PathLike[str] | None = None, device: int = 0,
        scale: int | None = None, **kwargs: Any
    ) -> Upscaler:
        """A TensorRT / TensorRT-RTX engine built by ``gldfn-trt build`` (needs an NVIDIA GPU and the TensorRT
        runtime); ``plugin`` is the plugin library it was built with (default: $GLDFN_TRT_PLUGIN_LIBRARY, else the
        default build folder; never the path in the sidecar). An engine without a sidecar runs with a warning, its
        I/O read from the engine (``scale``: checked against it, or used where its output shape is not known)."""
        try:
            from gldfn_runtime.runners.trt_runner import TensorRTRunner
        except ImportError as exc:
            raise RunnerError(f"the TensorRT runner cannot be imported ({exc}); install gldfn-trt[rtx] or gldfn-trt[trt]") from exc
        return cls(TensorRTRunner(path, plugin=plugin, device=device, scale=scale), **kwargs)

    @classmethod
    def from_triton(cls, url: str, model: str = "gldfn", **kwargs: Any) -> Upscaler:
        """The core model of a repository from ``gldfn-trt triton`` on a Triton server at ``url`` (``HOST:PORT`` for
        HTTP, ``grpc://HOST:PORT``); tiled here, the tiles sent concurrently (needs gldfn-trt[serve])."""
        from gldfn_runtime.runners.triton_runner import TritonRunner

        return cls(TritonRunner(url, model), **kwargs)

    @classmethod
    def bicubic(cls, scale: int, **kwargs: Any) -> Upscaler:
        """MATLAB-style bicubic interpolation: the baseline, no model."""
        from gldfn_model.inference.bicubic_runner import BicubicRunner

        return cls(BicubicRunner(scale), **kwargs)

    def tile_for(self, height: int, width: int, channels: int = 3, batch: int = 1) -> Size | None:
        """The tile this upscaler uses for an image of that size (None: one whole-image pass)."""
        return effective_tile(self.runner, height, width, self.tile, channels, batch, self.memory_budget, self.overlap)

    def memory_needed(self, height: int, width: int, channels: int = 3) -> int:
        """Estimated working memory (bytes) for an ``height x width`` image, the input and output not included."""
        tile = self.tile_for(height, width, channels) or (height, width)
        return working_memory(self.runner, tile, height, width, channels, overlap=self.overlap)

    def upscale_batch(self, lr: np.ndarray, on_tile: TileCallback | None = None) -> np.ndarray:
        """``N x 3 x h x w`` float32 in [0, 1] -> ``N x 3 x sh x sw`` float32 (unclipped), tiled as configured."""
        check_unit_range(lr)
        return upscale_tiled(self.runner, lr, self.tile, self.overlap, self.memory_budget, on_tile)

    def upscale(self, image: np.ndarray, on_tile: TileCallback | None = None) -> np.ndarray:
        """Upscale one HWC image (grey, grey + alpha, RGB or RGBA; uint8, uint16 or float32 in [0, 1]); same layout
        and dtype back."""
        if not isinstance(image, np.ndarray) and hasattr(image, "__dlpack__"):
            return self.upscale_tensor(image)
        check_image(image)
        scale = self.scale
        result = np.empty((image.shape[0] * scale, image.shape[1] * scale, *image.shape[2:]), dtype=image.dtype)

        def write(top: int, left: int, block: np.ndarray) -> None:
            result[top : top + block.shape[0], left : left + block.shape[1]] = block

        self.upscale_into(image, write, on_tile)
        return result

    def upscale_into(self, image: np.ndarray, write: BlockWriter, on_tile: TileCallback | None = None) -> None:
        """Upscale one HWC image like :meth:`upscale`, handing the output to ``write(top, left, block)`` in
        finished blocks of the image's layout and dtype that cover it once."""
        check_image(image)
        if image.dtype == np.float32:
            check_unit_range(image)
        pixels = image.reshape(*image.shape[:2], -1)
        height, width, channels = pixels.shape
        runner = self.runner if channels == 3 else _LayoutRunner(self.runner, channels)

        def read_patch(top: int, bottom: int, left: int, right: int) -> np.ndarray:
            return to_unit_float(pixels[top:bottom, left:right]).transpose(2, 0, 1)[None]

        tile = self.tile_for(height, width, channels)
        blocks = upscale_blocks(runner, (1, channels, height, width), read_patch, tile, self.overlap, on_tile)
        for top, left, block in blocks:
            converted = from_unit_float(block[0].transpose(1, 2, 0), image.dtype, in_place=True)
            write(top, left, converted if image.ndim == 3 else converted[:, :, 0])

    def upscale_tensor(self, tensor: Any) -> Any:
        """A DLPack-capable ``3 x h x w`` or ``N x 3 x h x w`` float32 tensor in [0, 1] (e.g. a CUDA torch
        tensor) -> the upscaled tensor on the same device.

        Hook for device runners: a runner with ``infer_dlpack`` (``gldfn_model.inference.runner.DeviceRunner``) gets
        the tensor directly when no tiling or padding is needed; otherwise the data goes through the host and the
        tiler.
        """
        import torch

        source = torch.from_dlpack(tensor)
        batch = source if source.ndim == 4 else source.unsqueeze(0)
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ImageShapeError(f"expected a 3 x H x W or N x 3 x H x W tensor, got shape {tuple(source.shape)}")
        height, width = batch.shape[2:]
        fits_whole = self.tile_for(height, width, 3, batch.shape[0]) is None and (
            self.runner.min_size is None or (height >= self.runner.min_size[0] and width >= self.runner.min_size[1])
        )
        if fits_whole and hasattr(self.runner, "infer_dlpack"):
            check_unit_range(batch)
            output = torch.from_dlpack(self.runner.infer_dlpack(batch.float().contiguous()))
        else:
            host = batch.detach().float().cpu().numpy()
            output = torch.from_numpy(self.upscale_batch(host)).to(source.device)
        return output if source.ndim == 4 else output[0]


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (Linux), else None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def canvas_bytes(height: int, width: int, channels: int, dtype: np.dtype) -> int:
    """Bytes of an ``ImageCanvas`` output image (Pillow keeps 8-bit colour as 4 bytes a pixel)."""
    dtype = np.dtype(dtype)
    return height * width * (4 if dtype == np.uint8 and channels > 1 else channels * dtype.itemsize)


def upscale_file(upscaler: Upscaler, source: Path, target: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 on_tile: TileCallback | None = None, quality: int | None = None, *, overwrite: bool = False) -> str | None:
    """Read, upscale, write atomically with the input's ICC profile and EXIF (the pixels upright, orientation 1); a
    file at ``target`` is replaced only with ``overwrite``, even one that appears while the image is computed.
    Returns a note when the output format forced a change (16 bits outside PNG/TIFF, alpha in a JPEG, metadata in
    a BMP), else None. ``quality``: JPEG/WebP (default 95). The output path, the format's size limit and the memory
    the output needs are checked before any computing; the output is assembled block by block in an
    ``ImageCanvas``. Raises a GldfnError naming the file on bad input."""
    image, metadata = read_image_with_metadata(source, max_pixels)
    try:
        check_image(image)
    except ImageShapeError as exc:
        raise ImageShapeError(f"{source}: {exc}") from None
    height, width = image.shape[0] * upscaler.scale, image.shape[1] * upscaler.scale
    channels = 1 if image.ndim == 2 else image.shape[2]
    fit = fit_output(target, height, width, channels, image.dtype, metadata)
    dtype, out_channels = fit.dtype, fit.channels
    needed = canvas_bytes(height, width, out_channels, dtype) + upscaler.memory_needed(image.shape[0], image.shape[1], channels)
    available = available_memory()
    if available is not None and needed > available:
        raise OutOfMemoryError(f"{source}: the {width}x{height} output needs about {needed / 2**30:.1f} GiB of memory, "
                               f"{available / 2**30:.1f} GiB are available; free memory or upscale a smaller image")
    canvas = ImageCanvas.blank(height, width, out_channels, dtype)

    def write(top: int, left: int, block: np.ndarray) -> None:
        if block.ndim == 3 and block.shape[2] != out_channels:  # alpha dropped for JPEG
            block = block[:, :, :out_channels]
        if block.dtype != dtype:  # 16-bit result into an 8-bit file
            block = np.round(block / np.float32(257.0)).astype(dtype)
        canvas.paste(top, left, block)

    upscaler.upscale_into(image, write, on_tile)
    del image
    canvas.save(target, fit.metadata, quality, overwrite=overwrite)
    return f"{target}: " + "; ".join(fit.notes) if fit.notes else None


def describe_failure(source: Path, error: Exception, target: Path | None = None) -> str:
    """One line naming the file and why it failed, for any exception reading ``source`` or writing ``target``
    can raise."""
    text = str(error)
    if isinstance(error, GldfnError):
        message = text
    elif isinstance(error, MemoryError) or "out of memory" in text.lower() or "allocate memory" in text.lower():
        message = f"not enough memory ({text or type(error).__name__}); free memory, or pass a smaller --tile"
    elif isinstance(error, OSError):
        where = f" ({error.filename})" if error.filename else ""
        folder = f" of {target.parent}" if target is not None else ""
        reasons = {errno.ENOSPC: f"no space left on the device{folder}; free space or write elsewhere",
                   errno.EDQUOT: f"disk quota exceeded on the device{folder}; free space or write elsewhere",
                   errno.EACCES: "permission denied; choose a location you can write to",
                   errno.EPERM: "operation not permitted; choose a location you can write to",
                   errno.EROFS: "the file system is read-only; write elsewhere",
                   errno.EISDIR: "a folder is in the way; move it or choose another output name"}
        message = reasons.get(error.errno, error.strerror or text) + where
    else:
        message = f"unexpected {type(error).__name__}: {text}"
    return message if str(source) in message else f"{source}: {message}"


def upscale_files(upscaler: Upscaler, files: list[Path], targets: list[Path], out_dir: Path, label: str,
                  max_pixels: int | None = DEFAULT_MAX_PIXELS, quality: int | None = None, *,
                  overwrite: bool = False) -> int:
    """Upscale each file to its target with progress on stderr (bars on a terminal, else a line per file and per
    tile: gldfn_runtime.upscale.progress). A file that fails for any reason (decoding, size limit, memory, disk,
    permissions, a file that appeared at its target meanwhile unless ``overwrite``) is reported in one line naming
    it and the reason, and the batch goes on. ``max_pixels`` and ``quality`` as for :func:`upscale_file`. Returns
    the number of files that failed; ``out_dir``, created when missing, is removed again if left empty."""
    failures = 0
    with output_folder(out_dir), batch_progress(label, len(files)) as progress:
        for source, target in zip(files, targets):
            progress.start_file(source.name)
            try:
                note = upscale_file(upscaler, source, target, max_pixels, progress.tile, quality, overwrite=overwrite)
                if note:
                    progress.message(f"note: {note}")
            except Exception as error:  # noqa: BLE001 - a batch survives any one file; the reason is printed
                failures += 1
                progress.message(f"error: {describe_failure(source, error, target)}")
            progress.end_file()
    return failures
