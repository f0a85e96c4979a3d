"""Reading and writing images (PNG, JPEG, BMP, TIFF, WebP via Pillow), with clear errors for files that are
missing, empty, not images, too large, or stored in a way this project cannot take. Arrays are ``H x W``
(grayscale), ``H x W x 3`` (RGB) or ``H x W x 4`` (RGBA), uint8, or uint16 for 16-bit files. 16-bit colour PNGs
go through pypng: Pillow decodes them to 8 bits.

Reading checks the pixel count from the file's header before decoding anything (``max_pixels``), applies the
EXIF orientation (the pixels come back as a viewer shows them), refuses files with several frames (animated
GIF/WebP/PNG, multi-page TIFF; an MPO camera JPEG is read as its primary image) and refuses sample formats
other than 8- and 16-bit unsigned integers (32-bit float or integer TIFFs) instead of converting them wrongly.
"""
from __future__ import annotations

import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import png
from PIL import Image, ImageOps, UnidentifiedImageError

from gldfn_model.common.atomic import atomic_output
from gldfn_model.common.errors import GldfnError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_FORMAT_BY_SUFFIX = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}
DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: a 16-bit RGB image of that size is 600 MB as an array
_MAX_SIDE = {"JPEG": 65535, "WEBP": 16383}  # the formats' own limits
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pillow modes whose samples are 8-bit unsigned integers (converted to L/RGB/RGBA losslessly) or 16-bit ones.
_MODES_8_BIT = {"1", "L", "P", "RGB", "RGBA", "RGBX", "LA", "PA", "La", "RGBa", "CMYK", "YCbCr", "LAB", "HSV"}
_MODES_16_BIT = {"I;16", "I;16B", "I;16L", "I;16N"}
# What decoders raise for damaged or hostile data besides their own error types: corrupt zlib streams, chunks over
# Pillow's text and ICC limits (ValueError), truncated structures. Every image reader turns them into ImageReadError,
# so that each command (upscale, eval, degrade, train, calibrate) reports one line naming the file.
_DECODER_ERRORS = (ValueError, zlib.error, EOFError, struct.error, IndexError, KeyError, TypeError, OverflowError)
_MODE_NAMES = {"F": "32-bit float", "I": "32-bit integer", "I;16S": "signed 16-bit", "I;32": "32-bit integer",
               "I;32S": "signed 32-bit"}


class ImageReadError(GldfnError, ValueError):
    """A file is missing, empty, or not a readable image."""


class ImageTooLargeError(ImageReadError):
    """An image has more pixels than the reader is allowed to decode."""


class ImageFormatError(ImageReadError):
    """A readable image stored in a way this project does not take (sample format, several frames)."""


class ImageWriteError(GldfnError, ValueError):
    """An image cannot be written to the given path (suffix, size limit of the format, a folder in the way)."""


def read_image(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The image as a viewer shows it: ``H x W`` gray, ``H x W x 3`` RGB or ``H x W x 4`` RGBA; uint8, or
    uint16 for 16-bit files. Palette and other 8-bit modes are converted to RGB(A). ``max_pixels`` (None: no
    limit) is checked from the header, before decoding."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: the file is empty (0 bytes); replace it with a valid image")
    header = _png_header(path)
    if header is not None:
        _check_pixels(path, header[0], header[1], max_pixels)
        if header[2] == 16:
            return _read_png16(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the pixel limit is ours, below
            with Image.open(path) as image:
                _check_pixels(path, image.width, image.height, max_pixels)
                _check_single_frame(path, image)
                _check_mode(path, image)
                image.load()
                ImageOps.exif_transpose(image, in_place=True)
                return _to_array(image)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{path}: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageReadError(f"{path}: not a readable image ({exc}); supported: {', '.join(IMAGE_SUFFIXES)}") from exc
    except _DECODER_ERRORS as exc:  # damaged data, or a chunk beyond Pillow's limits (a 200 MB text or ICC chunk)
        raise ImageReadError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None


def _check_pixels(path: Path, width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"{path}: {width}x{height} is {width * height / 1e6:.1f} megapixels, more than the limit of "
            f"{max_pixels / 1e6:.1f}; raise it with --max-pixels if the file is genuine and memory allows")


def _check_single_frame(path: Path, image: Image.Image) -> None:
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and image.format != "MPO":  # MPO: a camera JPEG whose extra frames are previews/stereo views
        raise ImageFormatError(
            f"{path}: the file holds {frames} frames (an animation or several pages); only single images are "
            "upscaled: extract the frames to separate files first")


def _check_mode(path: Path, image: Image.Image) -> None:
    if image.mode not in _MODES_8_BIT and image.mode not in _MODES_16_BIT:
        kind = _MODE_NAMES.get(image.mode, f"Pillow mode {image.mode}")
        raise ImageFormatError(
            f"{path}: {kind} samples are not supported (8- and 16-bit unsigned integers are); convert the file "
            "to an 8- or 16-bit PNG or TIFF, scaling the values to that range")


def _png_header(path: Path) -> tuple[int, int, int] | None:
    """(width, height, bit depth) from a PNG's IHDR chunk, or None for other files."""
    with open(path, "rb") as fh:
        header = fh.read(25)  # signature (8), IHDR length and type (8), width, height (8), bit depth (1)
    if len(header) < 25 or header[:8] != _PNG_SIGNATURE or header[12:16] != b"IHDR":
        return None
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big"), header[24]


def _read_png16(path: Path) -> np.ndarray:
    try:
        reader = png.Reader(filename=str(path))
        width, height, rows, info = reader.asDirect()
        array = np.empty((height, width * info["planes"]), dtype=np.uint16)  # filled row by row: no second copy
        for index, row in enumerate(rows):
            array[index] = row
    except (png.Error, *_DECODER_ERRORS) as exc:
        raise ImageReadError(f"{path}: not a readable 16-bit PNG ({type(exc).__name__}: {exc})") from None
    if info["bitdepth"] < 16:  # an sBIT chunk: pypng returns the significant bits only; back to the full range
        array = np.round(array * (65535 / (2 ** info["bitdepth"] - 1))).astype(np.uint16)
    array = array.reshape(height, width, info["planes"])
    if info["planes"] == 1:
        return array[:, :, 0]
    if info["planes"] == 2:  # gray + alpha -> RGBA, as for 8-bit files
        return np.dstack([array[:, :, 0]] * 3 + [array[:, :, 1]])
    return array


def _to_array(image: Image.Image) -> np.ndarray:
    if image.mode in _MODES_16_BIT:
        return np.asarray(image, dtype=np.uint16).copy()
    if image.mode in ("L", "RGB", "RGBA"):
        return np.asarray(image).copy()
    if image.mode in ("LA", "PA", "La", "RGBa") or (image.mode == "P" and "transparency" in image.info):
        return np.asarray(image.convert("RGBA")).copy()
    return np.asarray(image.convert("RGB")).copy()


def read_rgb(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The image as ``H x W x 3`` uint8 RGB: gray replicated to 3 channels, alpha dropped, 16 bit rounded."""
    array = read_image(path, max_pixels)
    if array.dtype == np.uint16:
        array = np.round(array.astype(np.float64) / 257.0).astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


def check_output_path(path: str | os.PathLike[str], height: int, width: int, dtype: np.dtype) -> str:
    """The format an ``height x width`` image of ``dtype`` would be written in at ``path``, or ImageWriteError
    when it cannot be (unknown suffix, a folder of that name, too large for the format, 16 bits outside PNG).
    Cheap: call it before computing an image."""
    path = Path(path)
    image_format = _FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if image_format is None:
        raise ImageWriteError(f"cannot write {path}: unknown image suffix (use one of {', '.join(IMAGE_SUFFIXES)})")
    if path.is_dir():
        raise ImageWriteError(f"cannot write {path}: a folder of that name is in the way; move it or choose another "
                              "output name")
    limit = _MAX_SIDE.get(image_format)
    if limit is not None and max(height, width) > limit:
        raise ImageWriteError(f"cannot write {path}: {image_format} images are at most {limit} pixels a side, this "
                              f"one is {width}x{height}; write a .png or .tif instead")
    if np.dtype(dtype) == np.uint16 and image_format != "PNG":
        raise ImageWriteError(f"cannot write {path}: 16-bit output needs a .png file; convert to uint8 for "
                              f"{image_format}")
    if np.dtype(dtype) not in (np.uint8, np.uint16):
        raise ImageWriteError(f"cannot write {path}: expected a uint8 or uint16 image, got {np.dtype(dtype)}")
    return image_format


class ImageCanvas:
    """An output image filled block by block, then saved atomically. 8-bit images live in a Pillow image, so
    saving makes no second full-size copy; 16-bit ones in an ``H x W x C`` NumPy array written with pypng.
    Make one with :meth:`blank` or :meth:`from_array`."""

    _MODES = {1: "L", 3: "RGB", 4: "RGBA"}

    def __init__(self, pixels: Image.Image | np.ndarray, channels: int) -> None:
        self._pixels = pixels
        self.channels = channels
        if isinstance(pixels, Image.Image):
            self.width, self.height = pixels.size
            self.dtype = np.dtype(np.uint8)
        else:
            self.height, self.width = pixels.shape[:2]
            self.dtype = np.dtype(np.uint16)

    @classmethod
    def blank(cls, height: int, width: int, channels: int, dtype: np.dtype) -> ImageCanvas:
        if channels not in cls._MODES:
            raise ImageWriteError(f"cannot store an image of {channels} channels (1, 3 or 4 can be)")
        if np.dtype(dtype) == np.uint8:
            return cls(Image.new(cls._MODES[channels], (width, height)), channels)
        if np.dtype(dtype) == np.uint16:
            return cls(np.zeros((height, width, channels), dtype=np.uint16), channels)
        raise ImageWriteError(f"expected a uint8 or uint16 image, got {np.dtype(dtype)}")

    @classmethod
    def from_array(cls, array: np.ndarray) -> ImageCanvas:
        """A canvas holding an ``H x W (x C)`` uint8 or uint16 array (8 bits: Pillow's copy of it, made once)."""
        channels = 1 if array.ndim == 2 else array.shape[2]
        if array.dtype == np.uint8:
            pixels = array.reshape(array.shape[:2]) if channels == 1 else array
            return cls(Image.fromarray(np.ascontiguousarray(pixels)), channels)
        if array.dtype == np.uint16:
            return cls(array.reshape(*array.shape[:2], channels), channels)
        raise ImageWriteError(f"expected a uint8 or uint16 array, got {array.dtype}")

    def paste(self, top: int, left: int, block: np.ndarray) -> None:
        """Copy an ``h x w`` (gray) or ``h x w x C`` block of the canvas dtype to (top, left)."""
        channels = 1 if block.ndim == 2 else block.shape[2]
        if block.dtype != self.dtype or channels != self.channels:
            raise ValueError(f"a block {block.shape} {block.dtype} does not fit a {self.channels}-channel "
                             f"{self.dtype} canvas")
        if isinstance(self._pixels, Image.Image):
            pixels = block.reshape(block.shape[:2]) if channels == 1 else block
            self._pixels.paste(Image.fromarray(np.ascontiguousarray(pixels)), (left, top))
        else:
            rows, cols = block.shape[:2]
            self._pixels[top : top + rows, left : left + cols] = block.reshape(rows, cols, channels)

    def save(self, path: str | os.PathLike[str]) -> None:
        path = Path(path)
        image_format = check_output_path(path, self.height, self.width, self.dtype)
        if isinstance(self._pixels, np.ndarray):
            planes = self.channels
            writer = png.Writer(self.width, self.height, greyscale=planes == 1, alpha=planes == 4, bitdepth=16)
            with atomic_output(path) as tmp, open(tmp, "wb") as fh:
                writer.write(fh, self._pixels.reshape(self.height, -1))
            return
        options = {"quality": 95} if image_format in ("JPEG", "WEBP") else {}  # Pillow's default 75/80 blurs detail
        with atomic_output(path) as tmp:
            self._pixels.save(tmp, format=image_format, **options)


def write_image(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write a uint8 (or uint16, PNG only) ``H x W``, ``H x W x 3`` or ``H x W x 4`` array atomically; the
    format follows the suffix."""
    path = Path(path)
    array = np.asarray(array)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ImageWriteError(f"cannot write {path}: an array of shape {array.shape} is not an image")
    check_output_path(path, array.shape[0], array.shape[1], array.dtype)
    ImageCanvas.from_array(array).save(path)


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files (by suffix) directly in ``folder``, sorted by name; clear errors for a missing or empty folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageReadError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ImageReadError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    return files
