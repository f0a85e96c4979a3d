"""The errors of reading and writing image files (gldfn_model.data.image_io and the format modules beside it)."""
from __future__ import annotations

from gldfn_model.common.errors import GldfnError


class ImageReadError(GldfnError, ValueError):
    """A file is missing, empty, or not a readable image."""


class ImageTooLargeError(ImageReadError):
    """An image has more pixels than the reader is allowed to decode, or a metadata block larger than it takes."""


class ImageFormatError(ImageReadError):
    """A readable image stored in a way this project does not take (sample format, several frames)."""


class ImageWriteError(GldfnError, ValueError):
    """An image cannot be written to the given path (suffix, size limit of the format, a folder in the way)."""
