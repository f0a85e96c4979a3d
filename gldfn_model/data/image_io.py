"""Reading and writing images (PNG, JPEG, BMP, TIFF, WebP via Pillow; 16-bit PNGs via pypng and 16-bit colour
TIFFs via tifffile, which Pillow decodes to 8 bits), with clear errors for files that are missing, empty, not
images, too large, damaged or stored in a way this project cannot take. Every command that reads or writes an image
goes through here. Arrays are ``H x W`` (grey), ``H x W x 2`` (grey + alpha), ``H x W x 3`` (RGB) or ``H x W x 4``
(RGBA), uint8, or uint16 for 16-bit files.

Reading checks the pixel count from the file's header before decoding anything (``max_pixels``, which replaces
Pillow's own decompression-bomb limit) and, for a PNG, the size of every metadata chunk; applies the EXIF
orientation (the pixels come back as a viewer shows them); refuses files with several frames (animated GIF/WebP/PNG,
multi-page TIFF; an MPO camera JPEG is read as its primary image) and sample formats other than 8- and 16-bit
unsigned integers (32-bit float or integer TIFFs) instead of converting them wrongly. Any failure of a decoder is
an ``ImageReadError`` naming the file. :func:`read_image_with_metadata` also returns the ICC profile and EXIF block
(orientation reset to 1), which :meth:`ImageCanvas.save` and :func:`write_image` write where the format holds them.
"""
from __future__ import annotations

import contextlib
import os
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gldfn_model.common.atomic import atomic_output
from gldfn_model.common.errors import GldfnError
from gldfn_model.data.image_errors import ImageFormatError, ImageReadError, ImageTooLargeError, ImageWriteError
from gldfn_model.data.image_metadata import ImageMetadata, carried_metadata, orientation_of, upright
from gldfn_model.data.png_files import check_chunk_sizes, read_png16, read_png_header, write_png16
from gldfn_model.data.tiff_files import describe_tiff, is_deep_tiff, is_tiff_file, read_deep_tiff, write_deep_tiff

__all__ = ["DEFAULT_MAX_PIXELS", "DEFAULT_QUALITY", "IMAGE_SUFFIXES", "ImageCanvas", "ImageFormatError",
           "ImageMetadata", "ImageReadError", "ImageTooLargeError", "ImageWriteError", "OutputFit",
           "check_output_path", "fit_output", "image_size", "list_images", "read_image", "read_image_with_metadata",
           "read_rgb", "write_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_FORMAT_BY_SUFFIX = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}
DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: a 16-bit RGB image of that size is 600 MB as an array
DEFAULT_QUALITY = 95  # JPEG and WebP: Pillow's default 75/80 blurs detail
_MAX_SIDE = {"JPEG": 65535, "WEBP": 16383}  # the formats' own limits
_MAX_JPEG_EXIF = 65533  # one APP1 segment
_DEEP_FORMATS = ("PNG", "TIFF")  # the formats written with 16 bits a sample
# Pillow modes whose samples are 8-bit unsigned integers (converted to L/LA/RGB/RGBA losslessly) or 16-bit ones.
_MODES_8_BIT = {"1", "L", "P", "RGB", "RGBA", "RGBX", "LA", "PA", "La", "RGBa", "CMYK", "YCbCr", "LAB", "HSV"}
_MODES_16_BIT = {"I;16", "I;16B", "I;16L", "I;16N"}
_MODE_NAMES = {"F": "32-bit float", "I": "32-bit integer", "I;16S": "signed 16-bit", "I;32": "32-bit integer",
               "I;32S": "signed 32-bit"}
# What Pillow and the decoders it uses raise on a damaged or hostile file.
_DECODER_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, TypeError, EOFError, struct.error,
                   zlib.error, IndexError, KeyError, OverflowError)

_lift_lock = threading.Lock()
_lifts = 0
_pillow_limit: int | None = None


@contextlib.contextmanager
def _pillow_limit_lifted() -> Iterator[None]:
    """Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``, ~179 MP) switched off while images are read:
    ``max_pixels`` is the limit here, checked from the header before decoding. Counted, so that overlapping reads
    in several threads restore Pillow's value once, after the last."""
    global _lifts, _pillow_limit
    with _lift_lock:
        if _lifts == 0:
            _pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        _lifts += 1
    try:
        yield
    finally:
        with _lift_lock:
            _lifts -= 1
            if _lifts == 0:
                Image.MAX_IMAGE_PIXELS = _pillow_limit


def read_image_with_metadata(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS
                             ) -> tuple[np.ndarray, ImageMetadata]:
    """The image as a viewer shows it (see :func:`read_image`) and the ICC profile and EXIF block to write with it."""
    path = Path(path)
    if path.is_dir():
        raise ImageReadError(f"{path} is a folder, not an image file: name its images (e.g. {path / '*.png'})")
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: the file is empty (0 bytes); replace it with a valid image")
    header = read_png_header(path)
    if header is not None:
        _check_pixels(path, header.width, header.height, max_pixels)
        check_chunk_sizes(path)
    try:
        with _pillow_limit_lifted(), warnings.catch_warnings():
            # Pillow's warnings about a damaged file (a tag past its end, corrupt EXIF) would print as raw Python
            # text; the file is either read or refused with one line.
            warnings.simplefilter("ignore")
            # From a file object: Pillow then decodes instead of memory-mapping, which (Pillow 13) maps an
            # uncompressed grey TIFF of EXIF orientation 5-8 with its rows the wrong length.
            with open(path, "rb") as fh, Image.open(fh) as image:
                _check_pixels(path, image.width, image.height, max_pixels)
                _check_single_frame(path, image)
                _check_mode(path, image)
                if header is not None and header.bit_depth == 16:
                    return _read_deep(image, read_png16(path))
                if is_deep_tiff(image):
                    return _read_deep(image, read_deep_tiff(path))
                image.load()
                exif = image.getexif()
                ImageOps.exif_transpose(image, in_place=True)
                return _to_array(image), carried_metadata(image, exif)
    except GldfnError:
        raise
    except UnidentifiedImageError as exc:
        if is_tiff_file(path):  # e.g. 16-bit grey + alpha, which tifffile reads (and writes) and Pillow does not
            return _read_tiff_without_pillow(path, max_pixels)
        raise ImageReadError(f"{path}: not a readable image ({exc}); supported: {', '.join(IMAGE_SUFFIXES)}") from exc
    except _DECODER_ERRORS as exc:
        raise ImageReadError(f"{path}: not a readable image ({exc}); supported: {', '.join(IMAGE_SUFFIXES)}") from exc


def _read_tiff_without_pillow(path: Path, max_pixels: int | None) -> tuple[np.ndarray, ImageMetadata]:
    """A TIFF Pillow cannot identify, through tifffile, with the same checks; its ICC profile is carried, its EXIF
    (which tifffile cannot write back as a block) is not."""
    facts = describe_tiff(path)
    _check_pixels(path, facts.width, facts.height, max_pixels)
    if facts.pages > 1:
        raise _several_frames(path, facts.pages)
    return upright(read_deep_tiff(path), facts.orientation), ImageMetadata(facts.icc_profile, None)


def read_image(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The image as a viewer shows it: ``H x W`` grey, ``H x W x 2`` grey + alpha, ``H x W x 3`` RGB or
    ``H x W x 4`` RGBA; uint8, or uint16 for 16-bit files. Palette and other 8-bit modes are converted to RGB(A).
    ``max_pixels`` (None: no limit) is checked from the header, before decoding. Raises ImageReadError (a
    GldfnError) naming the file for anything it cannot read."""
    return read_image_with_metadata(path, max_pixels)[0]


def _read_deep(image: Image.Image, stored: np.ndarray) -> tuple[np.ndarray, ImageMetadata]:
    """16-bit pixels read by pypng or tifffile, turned upright, with the metadata Pillow read from ``image``. A PNG's
    EXIF is taken when it comes before the pixel data (where writers put it): after it, Pillow would decode the
    whole image to 8 bits to find it."""
    exif = image.getexif() if image.format != "PNG" or "exif" in image.info else Image.Exif()
    pixels = upright(stored[:, :, 0] if stored.shape[2] == 1 else stored, orientation_of(exif))
    return pixels, carried_metadata(image, exif)


def image_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(height, width) of the image turned upright as :func:`read_image` turns it, from the header alone (a PNG's
    EXIF only where it comes before the pixel data); None when the header cannot be read (reading the file says
    why)."""
    try:
        with _pillow_limit_lifted(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open(path, "rb") as fh, Image.open(fh) as image:
                exif = image.getexif() if image.format != "PNG" or "exif" in image.info else Image.Exif()
                width, height = image.size
                return (width, height) if orientation_of(exif) in (5, 6, 7, 8) else (height, width)
    except _DECODER_ERRORS:
        return None


def _check_pixels(path: Path, width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"{path}: {width}x{height} is {_megapixels(width * height)} megapixels, more than the limit of "
            f"{_megapixels(max_pixels)}; raise it with --max-pixels if the file is genuine and memory allows")


def _megapixels(count: int) -> str:
    """One decimal, or as many as a small count needs (a limit of 3000 pixels reads 0.003, not 0.0)."""
    return f"{count / 1e6:.1f}" if count >= 100_000 else f"{count / 1e6:.6f}".rstrip("0").rstrip(".")


def _check_single_frame(path: Path, image: Image.Image) -> None:
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and image.format != "MPO":  # MPO: a camera JPEG whose extra frames are previews/stereo views
        raise _several_frames(path, frames)


def _several_frames(path: Path, frames: int) -> ImageFormatError:
    return ImageFormatError(f"{path}: the file holds {frames} frames (an animation or several pages); only single "
                            "images are upscaled: extract the frames to separate files first")


def _check_mode(path: Path, image: Image.Image) -> None:
    if image.mode not in _MODES_8_BIT and image.mode not in _MODES_16_BIT:
        kind = _MODE_NAMES.get(image.mode, f"Pillow mode {image.mode}")
        raise ImageFormatError(
            f"{path}: {kind} samples are not supported (8- and 16-bit unsigned integers are); convert the file "
            "to an 8- or 16-bit PNG or TIFF, scaling the values to that range")


def _to_array(image: Image.Image) -> np.ndarray:
    if image.mode in _MODES_16_BIT:
        return np.asarray(image, dtype=np.uint16).copy()
    if image.mode in ("L", "LA", "RGB", "RGBA"):
        return np.asarray(image).copy()
    if image.mode == "La":
        return np.asarray(image.convert("LA")).copy()
    if image.mode in ("PA", "RGBa") or (image.mode == "P" and "transparency" in image.info):
        return np.asarray(image.convert("RGBA")).copy()
    return np.asarray(image.convert("RGB")).copy()


def read_rgb(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The image as ``H x W x 3`` uint8 RGB: grey replicated to 3 channels, alpha dropped, 16 bit rounded."""
    array = read_image(path, max_pixels)
    if array.dtype == np.uint16:
        array = np.round(array.astype(np.float64) / 257.0).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 2:  # grey + alpha
        array = array[:, :, 0]
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


def _format_of(path: Path) -> str:
    image_format = _FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if image_format is None:
        raise ImageWriteError(f"cannot write {path}: unknown image suffix (use one of {', '.join(IMAGE_SUFFIXES)})")
    return image_format


def check_output_path(path: str | os.PathLike[str], height: int, width: int, dtype: np.dtype, channels: int = 3) -> str:
    """The format an ``height x width`` image of ``channels`` and ``dtype`` would be written in at ``path``, or
    ImageWriteError when it cannot be (unknown suffix, a folder of that name, too large for the format, 16 bits
    outside PNG and TIFF, alpha in a JPEG). Cheap: call it before computing an image."""
    path = Path(path)
    image_format = _format_of(path)
    if path.is_dir():
        raise ImageWriteError(f"cannot write {path}: a folder of that name is in the way; move it or choose another "
                              "output name")
    limit = _MAX_SIDE.get(image_format)
    if limit is not None and max(height, width) > limit:
        raise ImageWriteError(f"cannot write {path}: {image_format} images are at most {limit} pixels a side, this "
                              f"one is {width}x{height}; write a .png or .tif instead")
    if np.dtype(dtype) == np.uint16 and image_format not in _DEEP_FORMATS:
        raise ImageWriteError(f"cannot write {path}: 16-bit output needs a .png or .tif file; convert to uint8 for "
                              f"{image_format}")
    if np.dtype(dtype) not in (np.uint8, np.uint16):
        raise ImageWriteError(f"cannot write {path}: expected a uint8 or uint16 image, got {np.dtype(dtype)}")
    if image_format == "JPEG" and channels in (2, 4):
        raise ImageWriteError(f"cannot write {path}: JPEG has no alpha channel; drop it or write a .png")
    return image_format


def _writable_metadata(image_format: str, channels: int, dtype: np.dtype, metadata: ImageMetadata
                       ) -> tuple[ImageMetadata, list[str]]:
    """The part of ``metadata`` a file of that format, layout and dtype holds, and a note for each part it drops."""
    kept = {"icc_profile": metadata.icc_profile, "exif": metadata.exif}
    reasons = {}
    if image_format == "BMP":
        reasons = {name: "BMP holds neither" for name, value in kept.items() if value is not None}
    elif image_format == "TIFF" and np.dtype(dtype) == np.uint16 and channels > 1 and metadata.exif is not None:
        reasons["exif"] = "tifffile, which writes 16-bit TIFFs of several channels, writes none; write a .png to keep it"
    elif image_format == "JPEG" and metadata.exif is not None and len(metadata.exif) > _MAX_JPEG_EXIF:
        reasons["exif"] = f"{len(metadata.exif):,} bytes, more than the {_MAX_JPEG_EXIF:,} of a JPEG's EXIF segment"
    names = {"icc_profile": "ICC profile", "exif": "EXIF"}
    notes = [f"written without its {names[name]} ({reason})" for name, reason in reasons.items()]
    return ImageMetadata(**{name: None if name in reasons else value for name, value in kept.items()}), notes


@dataclass(frozen=True)
class OutputFit:
    """How an image is written to a file: ``channels``, ``dtype`` and ``metadata`` as the format holds them, and a
    note for each thing it could not keep (alpha in a JPEG, 16 bits outside PNG and TIFF, metadata in a BMP)."""

    image_format: str
    channels: int
    dtype: np.dtype
    metadata: ImageMetadata
    notes: tuple[str, ...]


def fit_output(path: str | os.PathLike[str], height: int, width: int, channels: int, dtype: np.dtype,
               metadata: ImageMetadata | None = None) -> OutputFit:
    """What of an ``height x width`` image of ``channels``, ``dtype`` and ``metadata`` a file at ``path`` holds;
    ImageWriteError as :func:`check_output_path` where it cannot be written at all. Cheap: call it before computing
    the image."""
    path, dtype, notes = Path(path), np.dtype(dtype), []
    image_format = _format_of(path)
    if dtype == np.uint16 and image_format not in _DEEP_FORMATS:
        notes.append("written as 8 bits per channel (16-bit output is written as PNG or TIFF only)")
        dtype = np.dtype(np.uint8)
    if channels in (2, 4) and image_format == "JPEG":
        notes.append("written without its alpha channel (JPEG has none)")
        channels -= 1
    check_output_path(path, height, width, dtype, channels)
    written, dropped = _writable_metadata(image_format, channels, dtype, metadata or ImageMetadata())
    return OutputFit(image_format, channels, dtype, written, tuple(notes + dropped))


def _pillow_options(image_format: str, metadata: ImageMetadata, quality: int | None) -> dict[str, object]:
    options: dict[str, object] = {}
    if image_format in ("JPEG", "WEBP"):
        options["quality"] = DEFAULT_QUALITY if quality is None else quality
    if metadata.icc_profile is not None:
        options["icc_profile"] = metadata.icc_profile
    if metadata.exif is not None:
        options["exif"] = metadata.exif
    return options


class ImageCanvas:
    """An output image filled block by block, then saved atomically. 8-bit images live in a Pillow image, so
    saving makes no second full-size copy; 16-bit ones in an ``H x W x C`` NumPy array written with pypng (PNG),
    Pillow (grey TIFF) or tifffile (TIFF of several channels). Make one with :meth:`blank` or :meth:`from_array`."""

    _MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}

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
            raise ImageWriteError(f"cannot store an image of {channels} channels (1, 2, 3 or 4 can be)")
        if np.dtype(dtype) == np.uint8:
            return cls(Image.new(cls._MODES[channels], (width, height)), channels)
        if np.dtype(dtype) == np.uint16:
            return cls(np.zeros((height, width, channels), dtype=np.uint16), channels)
        raise ImageWriteError(f"expected a uint8 or uint16 image, got {np.dtype(dtype)}")

    @classmethod
    def from_array(cls, array: np.ndarray) -> ImageCanvas:
        """A canvas holding an ``H x W (x C)`` uint8 or uint16 array (8 bits: Pillow's copy of it, made once)."""
        channels = 1 if array.ndim == 2 else array.shape[2]
        if channels not in cls._MODES:
            raise ImageWriteError(f"cannot store an image of {channels} channels (1, 2, 3 or 4 can be)")
        if array.dtype == np.uint8:
            pixels = array.reshape(array.shape[:2]) if channels == 1 else array
            return cls(Image.fromarray(np.ascontiguousarray(pixels), mode=cls._MODES[channels]), channels)
        if array.dtype == np.uint16:
            return cls(array.reshape(*array.shape[:2], channels), channels)
        raise ImageWriteError(f"expected a uint8 or uint16 array, got {array.dtype}")

    def paste(self, top: int, left: int, block: np.ndarray) -> None:
        """Copy an ``h x w`` (grey) or ``h x w x C`` block of the canvas dtype to (top, left)."""
        channels = 1 if block.ndim == 2 else block.shape[2]
        if block.dtype != self.dtype or channels != self.channels:
            raise ValueError(f"a block {block.shape} {block.dtype} does not fit a {self.channels}-channel "
                             f"{self.dtype} canvas")
        if isinstance(self._pixels, Image.Image):
            pixels = block.reshape(block.shape[:2]) if channels == 1 else block
            self._pixels.paste(Image.fromarray(np.ascontiguousarray(pixels), mode=self._MODES[channels]), (left, top))
        else:
            rows, cols = block.shape[:2]
            self._pixels[top : top + rows, left : left + cols] = block.reshape(rows, cols, channels)

    def save(self, path: str | os.PathLike[str], metadata: ImageMetadata | None = None,
             quality: int | None = None, *, overwrite: bool = False) -> None:
        """Write atomically in the format of the suffix, with what of ``metadata`` the format holds (see
        :func:`fit_output`); ``quality`` (1-100, default 95) for JPEG and WebP, unused by the lossless formats. A
        file at ``path`` is never replaced unless ``overwrite`` (gldfn_model.common.atomic)."""
        path = Path(path)
        image_format = check_output_path(path, self.height, self.width, self.dtype, self.channels)
        if quality is not None and not 1 <= quality <= 100:
            raise ImageWriteError(f"cannot write {path}: quality {quality} is not within 1-100")
        metadata, _ = _writable_metadata(image_format, self.channels, self.dtype, metadata or ImageMetadata())
        with atomic_output(path, overwrite=overwrite) as tmp:
            if isinstance(self._pixels, Image.Image):
                pixels = self._pixels.convert("RGBA") if image_format == "BMP" and self.channels == 2 else self._pixels
                pixels.save(tmp, format=image_format, **_pillow_options(image_format, metadata, quality))
            elif image_format == "PNG":
                with open(tmp, "wb") as fh:
                    write_png16(fh, self._pixels, metadata)
            elif self.channels == 1:
                grey = Image.fromarray(self._pixels[:, :, 0])  # mode I;16
                grey.save(tmp, format=image_format, **_pillow_options(image_format, metadata, quality))
            else:
                write_deep_tiff(tmp, self._pixels, metadata.icc_profile)


def write_image(path: str | os.PathLike[str], array: np.ndarray, metadata: ImageMetadata | None = None,
                quality: int | None = None, *, overwrite: bool = False) -> None:
    """Write a uint8 (or uint16: PNG and TIFF) ``H x W`` or ``H x W x C`` array (C 1-4; alpha not in a JPEG)
    atomically, with what of ``metadata`` the format holds; the format follows the suffix. An existing file is
    replaced only with ``overwrite``."""
    path = Path(path)
    array = np.asarray(array)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
        raise ImageWriteError(f"cannot write {path}: an array of shape {array.shape} is not an image")
    channels = 1 if array.ndim == 2 else array.shape[2]
    check_output_path(path, array.shape[0], array.shape[1], array.dtype, channels)
    ImageCanvas.from_array(array).save(path, metadata, quality, overwrite=overwrite)


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files (by suffix) directly in ``folder``, sorted by name; clear errors for a missing or empty folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageReadError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ImageReadError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    return files
