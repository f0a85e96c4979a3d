"""TIFFs of several 16-bit samples per pixel (grey + alpha, RGB, RGBA), read and written with tifffile: Pillow
reads those as 8 bits (a planar one wrongly) and writes 16 bits for one grey channel only. Pillow still opens them
first, for the header checks and the metadata; a 16-bit grey + alpha TIFF, which Pillow cannot open, is described
by tifffile alone (:func:`describe_tiff`)."""
from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gldfn_model.data.image_errors import ImageFormatError, ImageReadError

# tifffile logs each damaged tag it skips; without a handler anywhere, Python prints those records on stderr beside
# the one error line. A NullHandler keeps them out of the terminal; an application's own logging still gets them.
logging.getLogger("tifffile").addHandler(logging.NullHandler())
_BITS_PER_SAMPLE = 258  # the TIFF tag
_PILLOW_16_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N"}
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, both byte orders
_ORIENTATION = 274  # the TIFF tag
# What tifffile, a pure-Python parser, raises on a damaged file besides its own TiffFileError.
_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, ZeroDivisionError,
                 OSError, struct.error)


def is_deep_tiff(image: Image.Image) -> bool:
    """Whether ``image``, opened by Pillow, is a TIFF of more than 8 bits a sample that Pillow does not read as such."""
    if image.format != "TIFF" or image.mode in _PILLOW_16_BIT_MODES:
        return False
    bits = image.tag_v2.get(_BITS_PER_SAMPLE, 8)
    return max(bits if isinstance(bits, tuple) else (bits,)) > 8


@dataclass(frozen=True)
class TiffFacts:
    width: int
    height: int
    pages: int
    icc_profile: bytes | None
    orientation: int


def is_tiff_file(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) in _TIFF_SIGNATURES


def describe_tiff(path: Path) -> TiffFacts:
    """Size, page count, ICC profile and orientation of a TIFF's first page, from its tags (no pixels read)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            orientation = page.tags.valueof(_ORIENTATION, 1)
            facts = TiffFacts(page.imagewidth, page.imagelength, len(tif.pages), page.iccprofile,
                              orientation if isinstance(orientation, int) else 1)
    except (tifffile.TiffFileError, *_PARSE_ERRORS) as exc:
        raise ImageReadError(f"{path}: not a readable TIFF ({exc}); the file is damaged: replace it") from exc
    if not all(isinstance(side, int) and side > 0 for side in (facts.width, facts.height)):
        raise ImageReadError(f"{path}: not a readable TIFF (its size is {facts.width!r:.40} x {facts.height!r:.40}); the file "
                             "is damaged: replace it")
    return facts


def read_deep_tiff(path: Path) -> np.ndarray:
    """The first page as stored: ``H x W x samples`` uint16, samples 2 (grey + alpha), 3 (RGB) or 4 (RGBA)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            kind = f"{page.bitspersample}-bit {page.photometric.name} {np.dtype(page.dtype).name}"
            if page.dtype != np.uint16 or page.photometric not in (tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.MINISBLACK):
                raise ImageFormatError(f"{path}: {kind} TIFF samples are not supported (8- and 16-bit unsigned grey or "
                                       "RGB are); convert the file to an 8- or 16-bit RGB PNG or TIFF")
            if page.samplesperpixel not in (2, 3, 4):  # checked before the pixels are allocated
                raise ImageFormatError(f"{path}: a 16-bit TIFF of {page.samplesperpixel} samples a pixel is not grey + "
                                       "alpha, RGB or RGBA; convert it to a PNG")
            pixels, axes = page.asarray(), page.axes
    except (tifffile.TiffFileError, *_PARSE_ERRORS) as exc:
        if isinstance(exc, ImageFormatError):
            raise
        raise ImageReadError(f"{path}: not a readable 16-bit TIFF ({exc}); the file is damaged: replace it") from exc
    if axes.startswith("S"):  # planar: one plane per sample
        pixels = np.ascontiguousarray(np.moveaxis(pixels, 0, -1))
    if pixels.ndim != 3 or pixels.shape[2] not in (2, 3, 4):
        raise ImageFormatError(f"{path}: a 16-bit TIFF of shape {pixels.shape} ({axes}) is not grey + alpha, RGB or "
                               "RGBA; convert it to a PNG")
    return pixels


def write_deep_tiff(path: str | os.PathLike[str], pixels: np.ndarray, icc_profile: bytes | None) -> None:
    """Write ``H x W x samples`` uint16 pixels (2, 3 or 4 samples, alpha unassociated as in PNG) as an
    uncompressed TIFF, as Pillow writes 8-bit ones, with an ICC profile. tifffile writes no EXIF block."""
    import tifffile

    samples = pixels.shape[2]
    tifffile.imwrite(path, pixels, photometric="rgb" if samples >= 3 else "minisblack",
                     extrasamples=("unassalpha",) if samples in (2, 4) else None, iccprofile=icc_profile,
                     metadata=None)

