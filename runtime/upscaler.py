"""``Upscaler``: upscale images (HWC NumPy arrays) with any ``Runner``, tiling and padding as needed.

Grayscale images run as RGB and come back as one channel (the mean of the three); an alpha channel is
resized separately with MATLAB-style bicubic interpolation; uint8, uint16 (16-bit) and float32 in [0, 1]
come back in the same dtype, clipped to the valid range.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from gldfn_model.network.checkpoint import SHIPPED_CONFIG
from gldfn_model.data.imresize import imresize
from gldfn_runtime.runners import BicubicRunner, OnnxRuntimeRunner, Runner, RunnerError, Size, TorchRunner
from gldfn_runtime.tiling import DEFAULT_OVERLAP, TilingError, effective_tile, upscale_tiled
from gldfn_model.common.errors import GldfnError

# The exporter's dynamic axes start at 2, and reflect padding needs two pixels: a 1-pixel side is refused.
MIN_IMAGE_SIDE = 2
_MAX_VALUE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


class ImageShapeError(GldfnError, ValueError):
    """An image array this upscaler cannot take (layout, dtype or size)."""


def check_image(image: np.ndarray) -> None:
    """Raise ImageShapeError unless ``image`` is an H x W (x 1|3|4) uint8/uint16/float32 array of at least 2 x 2."""
    if not isinstance(image, np.ndarray):
        raise ImageShapeError(f"expected a NumPy array, got {type(image).__name__}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ImageShapeError(f"expected an H x W, H x W x 3 (RGB) or H x W x 4 (RGBA) image, got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        raise ImageShapeError(f"expected uint8, uint16 or float32 pixels, got {image.dtype}")
    height, width = image.shape[:2]
    if height < MIN_IMAGE_SIDE or width < MIN_IMAGE_SIDE:
        raise ImageShapeError(f"the image is {height}x{width} pixels; at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} is needed")


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """uint8 / uint16 -> float32 in [0, 1]; float32 unchanged."""
    scale = _MAX_VALUE.get(image.dtype)
    return image.astype(np.float32) / np.float32(scale) if scale else image.astype(np.float32, copy=False)


def from_unit_float(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float in [0, 1] -> ``dtype``, clipped (and rounded for integers)."""
    clipped = np.clip(image, 0.0, 1.0)
    scale = _MAX_VALUE.get(np.dtype(dtype))
    if scale is None:
        return clipped.astype(np.float32)
    return np.round(clipped * scale).astype(dtype)


class Upscaler:
    """Upscale images with a runner. ``tile`` (int or (h, w), LR pixels) forces tiling; otherwise tiles are
    used only when an image exceeds the runner's maximum size. ``overlap`` is in LR pixels."""

    def __init__(self, runner: Runner, tile: int | Size | None = None, overlap: int = DEFAULT_OVERLAP) -> None:
        if not isinstance(runner, Runner):
            raise TypeError(f"{type(runner).__name__} does not implement gldfn_runtime.runners.Runner")
        self.runner = runner
        self.tile = tile
        self.overlap = overlap
        size = effective_tile(runner, 1 << 30, 1 << 30, tile)  # the largest tile it will use; validates `tile`
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
    ) -> "Upscaler":
        """PyTorch on a checkpoint; ``path`` None takes the shipped model named ``model``, else the weights shipped
        for ``config`` (default tiny) at ``scale``, or random weights when ``random_weights`` (benchmarks only)."""
        from gldfn_export.model_source import resolve_model

        name = config if config is not None or path is not None or model is not None else SHIPPED_CONFIG
        source = resolve_model(scale, name, Path(path) if path is not None else None, random_weights, model=model)
        return cls(TorchRunner(source.model, device=device, threads=threads), **kwargs)

    @classmethod
    def from_onnx(
        cls, path: str | os.PathLike[str], providers: list[str] | str | None = None, threads: int | None = None, **kwargs: Any
    ) -> "Upscaler":
        """ONNX Runtime on an exported file; ``providers`` e.g. ``["cuda"]`` or ``"cpu"`` (default)."""
        return cls(OnnxRuntimeRunner(path, providers=providers, threads=threads), **kwargs)

    @classmethod
    def from_engine(
        cls, path: str | os.PathLike[str], plugin: str | os.PathLike[str] | None = None, device: int = 0, **kwargs: Any
    ) -> "Upscaler":
        """A TensorRT / TensorRT-RTX engine built by ``gldfn-trt build`` (needs an NVIDIA GPU and the TensorRT
        runtime); ``plugin`` overrides the plugin library recorded in the engine's sidecar."""
        try:
            from gldfn_runtime.trt_runner import TensorRTRunner
        except ImportError as exc:
            raise RunnerError(f"the TensorRT runner cannot be imported ({exc}); install gldfn-trt[rtx] or gldfn-trt[trt]") from exc
        return cls(TensorRTRunner(path, plugin=plugin, device=device), **kwargs)

    @classmethod
    def bicubic(cls, scale: int, **kwargs: Any) -> "Upscaler":
        """MATLAB-style bicubic interpolation: the baseline, no model."""
        return cls(BicubicRunner(scale), **kwargs)

    def upscale_batch(self, lr: np.ndarray) -> np.ndarray:
        """``N x 3 x h x w`` float32 in [0, 1] -> ``N x 3 x sh x sw`` float32 (unclipped), tiled as configured."""
        return upscale_tiled(self.runner, lr, self.tile, self.overlap)

    def upscale(self, image: np.ndarray) -> np.ndarray:
        """Upscale one HWC image (gray, RGB or RGBA; uint8, uint16 or float32 in [0, 1]); same layout and dtype back."""
        if not isinstance(image, np.ndarray) and hasattr(image, "__dlpack__"):
            return self.upscale_tensor(image)
        check_image(image)
        pixels = to_unit_float(image)
        gray = pixels.ndim == 2 or pixels.shape[2] == 1
        if gray:
            rgb = np.repeat(pixels.reshape(*pixels.shape[:2], 1), 3, axis=2)
        else:
            rgb = pixels[:, :, :3]
        lr = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])
        sr = self.upscale_batch(lr)[0].transpose(1, 2, 0)
        if gray:
            result = sr.mean(axis=2)
            result = result if image.ndim == 2 else result[:, :, None]
        elif pixels.shape[2] == 4:
            alpha = imresize(pixels[:, :, 3], self.scale).astype(np.float32)
            result = np.concatenate([sr, alpha[:, :, None]], axis=2)
        else:
            result = sr
        return from_unit_float(result, image.dtype)

    def upscale_tensor(self, tensor: Any) -> Any:
        """A DLPack-capable ``3 x h x w`` or ``N x 3 x h x w`` float32 tensor in [0, 1] (e.g. a CUDA torch
        tensor) -> the upscaled tensor on the same device.

        Hook for device runners: a runner with ``infer_dlpack`` (``runners.DeviceRunner``) gets the tensor
        directly when no tiling or padding is needed; otherwise the data goes through the host and the tiler.
        """
        import torch

        source = torch.from_dlpack(tensor)
        batch = source if source.ndim == 4 else source.unsqueeze(0)
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ImageShapeError(f"expected a 3 x H x W or N x 3 x H x W tensor, got shape {tuple(source.shape)}")
        height, width = batch.shape[2:]
        fits_whole = effective_tile(self.runner, height, width, self.tile) is None and (
            self.runner.min_size is None or (height >= self.runner.min_size[0] and width >= self.runner.min_size[1])
        )
        if fits_whole and hasattr(self.runner, "infer_dlpack"):
            output = torch.from_dlpack(self.runner.infer_dlpack(batch.float().contiguous()))
        else:
            host = batch.detach().float().cpu().numpy()
            output = torch.from_numpy(self.upscale_batch(host)).to(source.device)
        return output if source.ndim == 4 else output[0]


def collect_inputs(inputs: list[Path]) -> list[Path]:
    """Image files named directly or found in folders (not recursive), in order, without duplicates;
    ImageReadError for a path that doesn't exist or a folder without images."""
    from gldfn_model.data.image_io import ImageReadError, list_images

    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            files.extend(list_images(path))
        elif path.exists():
            files.append(path)
        else:
            raise ImageReadError(f"{path}: no such file or folder")
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return [Path(p) for p in unique]


def output_paths(files: list[Path], out_dir: Path) -> list[Path]:
    """``out_dir / name`` for each input; two inputs with the same name would overwrite each other: an error."""
    targets = [out_dir / f.name for f in files]
    seen: dict[Path, Path] = {}
    for source, target in zip(files, targets):
        if target in seen:
            raise ValueError(f"{seen[target]} and {source} would both be written to {target}; upscale them into different folders")
        seen[target] = source
    return targets


def upscale_file(upscaler: Upscaler, source: Path, target: Path) -> str | None:
    """Read, upscale, write atomically. Returns a note when the output format forced a change (16-bit data in
    a format other than PNG stored as 8-bit), else None. Raises ImageReadError / ImageShapeError naming the
    file on bad input."""
    from gldfn_model.data.image_io import read_image, write_image

    image = read_image(source)
    try:
        result = upscaler.upscale(image)
    except ImageShapeError as exc:
        raise ImageShapeError(f"{source}: {exc}") from None
    note = None
    if result.dtype == np.uint16 and target.suffix.lower() != ".png":
        result = np.round(result.astype(np.float64) / 257.0).astype(np.uint8)
        note = f"{target}: written as 8 bits per channel (16-bit output is written as PNG only)"
    write_image(target, result)
    return note


def upscale_files(upscaler: Upscaler, files: list[Path], targets: list[Path], out_dir: Path, label: str) -> int:
    """Upscale each file to its target with a progress bar on stderr; a bad file is reported (named, with the
    reason) and skipped. Returns the number of files that failed."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from gldfn_model.data.image_io import ImageReadError

    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task(label, total=len(files))
        for source, target in zip(files, targets):
            try:
                note = upscale_file(upscaler, source, target)
                if note:
                    progress.console.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)
            except (ImageReadError, ImageShapeError, RunnerError, ValueError) as error:
                failures += 1
                progress.console.print(f"error: {error}", highlight=False, markup=False, soft_wrap=True)
            progress.advance(task)
    return failures
