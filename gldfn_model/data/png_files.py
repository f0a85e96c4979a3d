"""PNG specifics: the header, read before anything is decoded; a bound on metadata chunks; and 16-bit files, read
and written with pypng (Pillow decodes 16-bit colour to 8 bits and writes 16 bits for one grey channel only),
with their ICC profile and EXIF as pypng does not write them."""
from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import png

from gldfn_model.data.image_errors import ImageReadError, ImageTooLargeError
from gldfn_model.data.image_metadata import ImageMetadata

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The largest chunk other than pixel data (IDAT) that is read: text, a colour profile, EXIF. Real ones are well
# below (Pillow itself refuses a profile that inflates beyond 1 MB and text beyond 64 MB in all).
MAX_METADATA_CHUNK = 16 * 2**20
_EXIF_PREFIX = b"Exif\x00\x00"


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    bit_depth: int


def read_png_header(path: Path) -> PngHeader | None:
    """The IHDR chunk's size and bit depth, or None for a file that is not a PNG."""
    with open(path, "rb") as fh:
        header = fh.read(25)  # signature (8), IHDR length and type (8), width, height (8), bit depth (1)
    if len(header) < 25 or header[:8] != PNG_SIGNATURE or header[12:16] != b"IHDR":
        return None
    return PngHeader(int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big"), header[24])


def check_chunk_sizes(path: Path, limit: int = MAX_METADATA_CHUNK) -> None:
    """ImageTooLargeError for a chunk other than pixel data that is larger than ``limit`` bytes. Pillow and pypng
    read each chunk whole before they look at it (Pillow holds about three times a text chunk's size while it
    refuses it), so this walks the chunk headers, seeking over the data. A truncated file is left to the decoder."""
    with open(path, "rb") as fh:
        fh.seek(len(PNG_SIGNATURE))
        while len(head := fh.read(8)) == 8:
            length, kind = struct.unpack(">I4s", head)
            if kind == b"IEND":
                return
            if kind != b"IDAT" and length > limit:
                raise ImageTooLargeError(
                    f"{path}: its {kind.decode('latin-1')!r} chunk (text, colour profile or other metadata) holds "
                    f"{length:,} bytes, more than the {limit:,} taken; save the image again without that metadata")
            fh.seek(length + 4, os.SEEK_CUR)  # the data and its CRC


def read_png16(path: Path) -> np.ndarray:
    """A 16-bit PNG as stored: ``H x W x planes`` uint16 (planes 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA; a tRNS
    colour becomes an alpha plane)."""
    try:
        reader = png.Reader(filename=str(path))
        width, height, rows, info = reader.asDirect()
        array = np.empty((height, width * info["planes"]), dtype=np.uint16)  # filled row by row: no second copy
        count = 0
        for count, row in enumerate(rows, start=1):
            array[count - 1] = row
    except (png.Error, zlib.error, ValueError, IndexError, EOFError, struct.error) as exc:
        raise ImageReadError(f"{path}: not a readable 16-bit PNG ({exc}); the file is damaged: replace it") from exc
    if count != height:
        raise ImageReadError(f"{path}: not a readable 16-bit PNG (the pixel data ends after {count} of {height} rows); "
                             "the file is damaged: replace it")
    if info["bitdepth"] < 16:  # an sBIT chunk: pypng returns the significant bits only; back to the full range
        array = np.round(array * (65535 / (2 ** info["bitdepth"] - 1))).astype(np.uint16)
    return array.reshape(height, width, info["planes"])


class _PngWriter(png.Writer):
    """pypng's writer, with extra chunks written before the pixel data."""

    def __init__(self, *args: object, chunks: list[tuple[bytes, bytes]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._chunks = chunks

    def write_preamble(self, outfile: BinaryIO) -> None:
        super().write_preamble(outfile)
        for kind, data in self._chunks:
            png.write_chunk(outfile, kind, data)


def _metadata_chunks(metadata: ImageMetadata) -> list[tuple[bytes, bytes]]:
    """iCCP (a profile name, compression method 0, the zlib-compressed profile) and eXIf (the EXIF block without
    the ``Exif\\0\\0`` of JPEG's APP1), both before IDAT as the PNG specification asks."""
    chunks = []
    if metadata.icc_profile is not None:
        chunks.append((b"iCCP", b"ICC profile\x00\x00" + zlib.compress(metadata.icc_profile)))
    if metadata.exif is not None:
        exif = metadata.exif
        chunks.append((b"eXIf", exif[len(_EXIF_PREFIX):] if exif.startswith(_EXIF_PREFIX) else exif))
    return chunks


def write_png16(fh: BinaryIO, pixels: np.ndarray, metadata: ImageMetadata) -> None:
    """Write ``H x W x planes`` uint16 pixels (planes 1-4) as a 16-bit PNG with the profile and EXIF of ``metadata``."""
    height, width, planes = pixels.shape
    writer = _PngWriter(width, height, greyscale=planes <= 2, alpha=planes in (2, 4), bitdepth=16,
                        chunks=_metadata_chunks(metadata))
    writer.write(fh, pixels.reshape(height, -1))
