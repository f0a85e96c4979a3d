"""What an image carries from the file it is read from to the file written from it: its colour profile (ICC) and
its EXIF block, read with Pillow's own support (``info['icc_profile']``, ``Image.getexif()``).

Images are turned upright when read (the EXIF orientation applied to the pixels), so the EXIF written with them
says orientation 1. The EXIF of a TIFF is the file's first IFD, which also describes the stored pixels (strips,
sizes, sample format, the program that wrote the file, sometimes a Photoshop layer blob); of it only the tags that
describe the picture are carried: what it shows, who took it with what camera and when, and the Exif and GPS
sub-IFDs.
"""
from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image

ORIENTATION = ExifTags.Base.Orientation
_TIFF_TAGS_CARRIED = {
    ExifTags.Base.ImageDescription, ExifTags.Base.Make, ExifTags.Base.Model, ExifTags.Base.DateTime,
    ExifTags.Base.Artist, ExifTags.Base.Copyright, ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo,
}
# The EXIF orientations as array operations on H x W (x C) pixels, matching ImageOps.exif_transpose.
_UPRIGHT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


@dataclass(frozen=True)
class ImageMetadata:
    """``icc_profile``: the ICC profile's bytes; ``exif``: an EXIF block as Pillow writes it (``Exif.tobytes()``,
    starting with ``Exif\\0\\0``), orientation 1. None where the image has none."""

    icc_profile: bytes | None = None
    exif: bytes | None = None

    @property
    def empty(self) -> bool:
        return self.icc_profile is None and self.exif is None


def orientation_of(exif: Image.Exif) -> int:
    """The EXIF orientation (1-8; 1, upright, when absent or not a valid value)."""
    value = exif.get(ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """``H x W (x C)`` pixels as stored -> as shown, for an EXIF ``orientation``."""
    turn = _UPRIGHT.get(orientation)
    return pixels if turn is None else np.ascontiguousarray(turn(pixels))


def carried_metadata(image: Image.Image, exif: Image.Exif) -> ImageMetadata:
    """The ICC profile of an open ``image`` and its ``exif`` (changed here: orientation 1, and of a TIFF only the
    tags listed above), as written beside its upright pixels. Call it while the file is open: Pillow reads a
    TIFF's sub-IFDs from the file when they are written out. An EXIF block Pillow cannot write back is dropped."""
    icc = image.info.get("icc_profile")
    icc = bytes(icc) if isinstance(icc, (bytes, bytearray)) and icc else None
    if image.format == "TIFF":
        for tag in [tag for tag in exif if tag not in _TIFF_TAGS_CARRIED]:
            del exif[tag]
    if not len(exif):
        return ImageMetadata(icc, None)
    exif[ORIENTATION] = 1
    try:
        block = exif.tobytes()
    except (ValueError, TypeError, KeyError, OverflowError, struct.error, OSError):
        block = None
    return ImageMetadata(icc, block)
