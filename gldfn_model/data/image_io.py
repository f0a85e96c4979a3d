"""Reading and writing images (PNG, JPEG, BMP, TIFF, WebP via Pillow), with clear errors for files that are
missing, empty or not images. Arrays are ``H x W`` (grayscale), ``H x W x 3`` (RGB) or ``H x W x 4`` (RGBA),
uint8, or uint16 for 16-bit PNGs. 16-bit colour PNGs go through pypng: Pillow decodes them to 8 bits."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import png
from PIL import Image, UnidentifiedImageError

from gldfn_model.common.atomic import atomic_output
from gldfn_model.common.errors import GldfnError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_FORMAT_BY_SUFFIX = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}


class ImageReadError(GldfnError, ValueError):
    """A file is missing, empty, or not a readable image."""


class ImageWriteError(GldfnError, ValueError):
    """An image cannot be written in the format its file name asks for."""


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """The image as stored: ``H x W`` gray, ``H x W x 3`` RGB or ``H x W x 4`` RGBA; uint8, or uint16 for
    16-bit files. Palette and other modes are converted to RGB(A)."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: the file is empty (0 bytes); replace it with a valid image")
    if _is_16_bit_png(path):
        return _read_png16(path)
    try:
        with Image.open(path) as image:
            image.load()
            return _to_array(image)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageReadError(f"{path}: not a readable image ({exc}); supported: {', '.join(IMAGE_SUFFIXES)}") from exc


def _is_16_bit_png(path: Path) -> bool:
    with open(path, "rb") as fh:
        header = fh.read(25)  # signature (8), IHDR length and type (8), width, height (8), bit depth (1)
    return header[:8] == b"\x89PNG\r\n\x1a\n" and len(header) == 25 and header[24] == 16


def _read_png16(path: Path) -> np.ndarray:
    try:
        width, height, rows, info = png.Reader(filename=str(path)).asDirect()
        array = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    except (png.Error, ValueError) as exc:
        raise ImageReadError(f"{path}: not a readable 16-bit PNG ({exc})") from exc
    array = array.reshape(height, width, info["planes"])
    if info["planes"] == 1:
        return array[:, :, 0]
    if info["planes"] == 2:  # gray + alpha -> RGBA, as for 8-bit files
        return np.dstack([array[:, :, 0]] * 3 + [array[:, :, 1]])
    return array


def _to_array(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(image, dtype=np.uint16).copy()
    if image.mode == "I":  # 16-bit PNGs may decode as 32-bit integer
        return np.asarray(image).astype(np.uint16)
    if image.mode in ("L", "RGB", "RGBA"):
        return np.asarray(image).copy()
    if image.mode == "LA" or (image.mode == "P" and "transparency" in image.info):
        return np.asarray(image.convert("RGBA")).copy()
    return np.asarray(image.convert("RGB")).copy()


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """The image as ``H x W x 3`` uint8 RGB: gray replicated to 3 channels, alpha dropped, 16 bit rounded."""
    array = read_image(path)
    if array.dtype == np.uint16:
        array = np.round(array.astype(np.float64) / 257.0).astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


def write_image(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write a uint8 (or uint16, PNG only) ``H x W``, ``H x W x 3`` or ``H x W x 4`` array atomically; the
    format follows the suffix."""
    path = Path(path)
    image_format = _FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if image_format is None:
        raise ImageWriteError(f"{path}: unknown image suffix (use one of {', '.join(IMAGE_SUFFIXES)})")
    array = np.asarray(array)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ValueError(f"{path}: cannot write an array of shape {array.shape} as an image")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.dtype == np.uint16:
        if image_format != "PNG":
            raise ImageWriteError(f"{path}: 16-bit output needs a .png file; convert to uint8 for {image_format}")
        planes = 1 if array.ndim == 2 else array.shape[2]
        writer = png.Writer(array.shape[1], array.shape[0], greyscale=planes == 1, alpha=planes == 4, bitdepth=16)
        with atomic_output(path) as tmp, open(tmp, "wb") as fh:
            writer.write(fh, array.reshape(array.shape[0], -1))
        return
    if array.dtype == np.uint8:
        image = Image.fromarray(array)
    else:
        raise ValueError(f"{path}: expected a uint8 or uint16 array, got {array.dtype}")
    options = {"quality": 95} if image_format in ("JPEG", "WEBP") else {}  # Pillow's default 75/80 blurs detail
    with atomic_output(path) as tmp:
        image.save(tmp, format=image_format, **options)


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files (by suffix) directly in ``folder``, sorted by name; clear errors for a missing or empty folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageReadError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ImageReadError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    return files
