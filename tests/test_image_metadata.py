"""Photos keep what they carry (gldfn_model.data.image_io): ICC profile and EXIF (orientation applied to the pixels,
then reset to 1), grey + alpha, 16 bits in PNG and TIFF; JPEG/WebP quality; Pillow's decompression-bomb limit
replaced by ``max_pixels``; damaged or hostile files refused as one ImageReadError. Every input is a real file
written here by Pillow, pypng or tifffile, not by the code under test."""
from __future__ import annotations

import functools
import io
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import png
import pytest
import tifffile
from PIL import ExifTags, Image, ImageCms, ImageOps

from gldfn_model.common.errors import GldfnError
from gldfn_model.data.image_io import (
    ImageCanvas,
    ImageReadError,
    ImageTooLargeError,
    ImageWriteError,
    fit_output,
    read_image,
    read_image_with_metadata,
    read_rgb,
    write_image,
)

ORIENTATION = ExifTags.Base.Orientation
CAMERA = "gldfn test camera"
TAKEN = "2026:03:04 05:06:07"


@functools.cache
def srgb_profile() -> bytes:
    """Made once: LittleCMS stamps each profile with the time it was made."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def camera_exif(orientation: int) -> Image.Exif:
    """An EXIF block as a camera writes one: orientation and make in IFD0, the time taken in the Exif sub-IFD.
    Give Pillow its bytes: its TIFF writer drops a sub-IFD given as an Exif object."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[ExifTags.Base.Make] = CAMERA
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = TAKEN
    return exif


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png16(path: Path, pixels: np.ndarray, icc: bytes | None = None, exif: Image.Exif | None = None) -> Path:
    """A 16-bit PNG written by pypng, with iCCP and eXIf chunks put in after IHDR (pypng writes neither)."""
    planes = 1 if pixels.ndim == 2 else pixels.shape[2]
    buffer = io.BytesIO()
    png.Writer(pixels.shape[1], pixels.shape[0], greyscale=planes <= 2, alpha=planes in (2, 4), bitdepth=16).write(
        buffer, pixels.reshape(pixels.shape[0], -1))
    data = buffer.getvalue()
    extra = png_chunk(b"iCCP", b"sRGB\x00\x00" + zlib.compress(icc)) if icc else b""
    extra += png_chunk(b"eXIf", exif.tobytes()[6:]) if exif is not None else b""  # without JPEG's "Exif\0\0"
    header_end = 8 + 25  # signature, IHDR
    path.write_bytes(data[:header_end] + extra + data[header_end:])
    return path


def with_chunk_before_pixels(source: bytes, chunk: bytes) -> bytes:
    return source[:33] + chunk + source[33:]


def damage_zlib(path: Path) -> Path:
    """Flip bytes inside the first IDAT's compressed data and fix its CRC: the chunk is sound, the zlib stream not."""
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT")
    length = struct.unpack(">I", data[start - 4 : start])[0]
    for index in range(start + 4 + 6, start + 4 + min(length - 4, 40)):
        data[index] ^= 0x5A
    data[start + 4 + length : start + 8 + length] = struct.pack(">I", zlib.crc32(bytes(data[start : start + 4 + length])))
    path.write_bytes(bytes(data))
    return path


def exif_written(path: Path) -> tuple[Image.Exif, dict]:
    with Image.open(path) as image:
        exif = image.getexif()
        return exif, dict(exif.get_ifd(ExifTags.IFD.Exif))


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    """12 x 20 RGB with a bright corner, so that every turn and flip is told apart."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 120, (12, 20, 3), dtype=np.uint8)
    pixels[:4, :6] = 250
    return pixels


# ---------------------------------------------------------------- ICC profile and EXIF

@pytest.mark.parametrize("kind", ["png", "jpg", "webp", "tif", "png16", "tif16-grey"])
def test_icc_profile_and_exif_are_read_and_written_back(tmp_path, picture, kind):
    icc, exif = srgb_profile(), camera_exif(6)
    source = tmp_path / f"in.{kind.split('16')[0]}"
    if kind == "png16":
        write_png16(source, picture.astype(np.uint16) * 257, icc, exif)
    elif kind == "tif16-grey":
        Image.fromarray(picture[:, :, 0].astype(np.uint16) * 257).save(source, icc_profile=icc, exif=exif.tobytes())
    else:
        Image.fromarray(picture).save(source, icc_profile=icc, exif=exif.tobytes(), **({"quality": 100} if kind != "tif" else {}))
    pixels, metadata = read_image_with_metadata(source)
    assert metadata.icc_profile == icc
    assert pixels.shape[:2] == (20, 12)  # orientation 6 applied: stored 12 x 20, shown 20 x 12
    target = tmp_path / f"out{source.suffix}"
    write_image(target, pixels, metadata)
    with Image.open(target) as written:
        assert written.info["icc_profile"] == icc
    exif_out, sub_ifd = exif_written(target)
    assert exif_out[ORIENTATION] == 1 and exif_out[ExifTags.Base.Make] == CAMERA
    assert sub_ifd[ExifTags.Base.DateTimeOriginal] == TAKEN
    assert read_image(target).shape == pixels.shape  # upright as written: no second turn


def test_16_bit_colour_tiff_keeps_its_profile_and_says_its_exif_is_not_written(tmp_path, picture):
    icc = srgb_profile()
    source = tmp_path / "deep.tif"
    tifffile.imwrite(source, picture.astype(np.uint16) * 257, photometric="rgb", iccprofile=icc)
    pixels, metadata = read_image_with_metadata(source)
    assert pixels.dtype == np.uint16 and metadata.icc_profile == icc
    fit = fit_output(tmp_path / "out.tif", 8, 8, 3, np.uint16, metadata.__class__(icc, camera_exif(1).tobytes()))
    assert fit.metadata.icc_profile == icc and fit.metadata.exif is None
    assert fit.notes == ("written without its EXIF (tifffile, which writes 16-bit TIFFs of several channels, writes "
                         "none; write a .png to keep it)",)
    write_image(tmp_path / "out.tif", pixels, metadata)
    with tifffile.TiffFile(tmp_path / "out.tif") as written:
        assert written.pages[0].iccprofile == icc


def test_a_tiff_carries_its_descriptive_tags_only(tmp_path, picture):
    """A TIFF's EXIF is its first IFD: strip offsets and sample layout must not end up in a JPEG's EXIF."""
    Image.fromarray(picture).save(tmp_path / "in.tif", exif=camera_exif(1).tobytes())
    _, metadata = read_image_with_metadata(tmp_path / "in.tif")
    exif = Image.Exif()
    exif.load(metadata.exif)
    assert exif[ExifTags.Base.Make] == CAMERA and exif[ORIENTATION] == 1
    assert ExifTags.Base.StripOffsets not in exif and ExifTags.Base.BitsPerSample not in exif


def test_bmp_output_notes_what_it_cannot_hold(tmp_path):
    fit = fit_output(tmp_path / "out.bmp", 8, 8, 3, np.uint8, read_metadata_of_a_jpeg(tmp_path))
    assert fit.metadata.empty
    assert fit.notes == ("written without its ICC profile (BMP holds neither)", "written without its EXIF (BMP holds neither)")


def read_metadata_of_a_jpeg(folder: Path):
    Image.new("RGB", (8, 8)).save(folder / "meta.jpg", icc_profile=srgb_profile(), exif=camera_exif(1).tobytes())
    return read_image_with_metadata(folder / "meta.jpg")[1]


# ---------------------------------------------------------------- orientation of every reader

@pytest.mark.parametrize("kind, orientation", [(kind, orientation) for kind in ("png16", "tif16-rgb") for orientation in range(2, 9)]
                         + [(kind, orientation) for kind in ("tif8-grey", "tif16-grey") for orientation in range(5, 9)])
def test_every_reader_turns_the_pixels_as_pillow_turns_the_8_bit_twin(tmp_path, picture, orientation, kind):
    """The reference: ImageOps.exif_transpose of an 8-bit PNG with the same orientation. 16-bit PNGs (pypng) were
    left unturned and 16-bit colour TIFFs reduced to 8 bits; uncompressed grey TIFFs of orientations 5-8 (a quarter
    turn) came back with rows of the wrong length (Pillow memory-maps them with the turned size)."""
    twin = tmp_path / "twin.png"
    grey = kind.endswith("grey")
    stored = picture[:, :, 1] if grey else picture
    Image.fromarray(stored).save(twin, exif=camera_exif(orientation).tobytes())
    with Image.open(twin) as image:
        expected = np.asarray(ImageOps.exif_transpose(image))
    deep = stored.astype(np.uint16) * 257
    source = tmp_path / ("in.png" if kind == "png16" else "in.tif")
    if kind == "png16":
        write_png16(source, deep, exif=camera_exif(orientation))
    elif kind == "tif16-rgb":
        tifffile.imwrite(source, deep, photometric="rgb", extratags=[(ORIENTATION, "H", 1, orientation, True)])
    else:
        Image.fromarray(deep if kind == "tif16-grey" else stored).save(source, exif=camera_exif(orientation).tobytes())
    shown = read_image(source)
    assert shown.dtype == (np.uint8 if kind == "tif8-grey" else np.uint16)
    np.testing.assert_array_equal(shown // 257 if shown.dtype == np.uint16 else shown, expected)


# ---------------------------------------------------------------- layouts and bit depths

def test_grey_alpha_stays_grey_alpha(tmp_path, picture):
    la = np.dstack([picture[:, :, 0], picture[:, :, 2]])
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    write_png16(tmp_path / "la16.png", la.astype(np.uint16) * 257)
    eight, sixteen = read_image(tmp_path / "la.png"), read_image(tmp_path / "la16.png")
    assert eight.dtype == np.uint8 and sixteen.dtype == np.uint16
    np.testing.assert_array_equal(eight, la)
    np.testing.assert_array_equal(sixteen, la.astype(np.uint16) * 257)
    np.testing.assert_array_equal(read_rgb(tmp_path / "la.png"), np.repeat(la[:, :, :1], 3, axis=2))
    write_image(tmp_path / "out.png", eight)
    write_image(tmp_path / "out16.png", sixteen)
    with Image.open(tmp_path / "out.png") as written:
        assert written.mode == "LA"
    _, _, _, info = png.Reader(filename=str(tmp_path / "out16.png")).read()
    assert info["planes"] == 2 and info["bitdepth"] == 16 and info["greyscale"]
    write_image(tmp_path / "out16.tif", sixteen)  # written by tifffile; Pillow cannot open it, tifffile reads it
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out16.tif"), sixteen)
    np.testing.assert_array_equal(read_image(tmp_path / "out16.tif"), sixteen)


@pytest.mark.parametrize("planar", [False, True])
def test_16_bit_colour_tiff_keeps_16_bits(tmp_path, planar):
    values = np.random.default_rng(1).integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    stored = np.ascontiguousarray(values.transpose(2, 0, 1)) if planar else values
    tifffile.imwrite(tmp_path / "deep.tif", stored, photometric="rgb", planarconfig="separate" if planar else "contig")
    back = read_image(tmp_path / "deep.tif")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, values)
    write_image(tmp_path / "out.tif", back)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), values)


def test_quality_sets_jpeg_and_webp_size(tmp_path, picture):
    photo = np.repeat(np.repeat(picture, 8, axis=0), 8, axis=1)
    photo = np.clip(photo + np.random.default_rng(0).normal(0, 12, photo.shape), 0, 255).astype(np.uint8)
    for suffix in (".jpg", ".webp"):
        sizes = {}
        for quality in (30, None, 95):
            write_image(tmp_path / f"{quality}{suffix}", photo, quality=quality)
            sizes[quality] = (tmp_path / f"{quality}{suffix}").stat().st_size
        assert sizes[30] < 0.7 * sizes[95], sizes
        assert (tmp_path / f"None{suffix}").read_bytes() == (tmp_path / f"95{suffix}").read_bytes()  # default 95
    with pytest.raises(ImageWriteError, match="quality 0 is not within 1-100"):
        ImageCanvas.from_array(photo).save(tmp_path / "zero.jpg", quality=0)


# ---------------------------------------------------------------- limits and damaged files

def test_max_pixels_replaces_pillows_decompression_bomb_limit(tmp_path, monkeypatch, picture):
    """Pillow refuses images over twice Image.MAX_IMAGE_PIXELS (~179 MP) with its own text, whatever the limit
    asked for: lowered to 100 pixels here, a 240-pixel JPEG and PNG must still be read under max_pixels 1000."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    for name in ("small.jpg", "small.png"):
        Image.fromarray(picture).save(tmp_path / name)
        assert read_image(tmp_path / name, max_pixels=1000).shape == (12, 20, 3)
        with pytest.raises(ImageTooLargeError, match=rf"{name}: 20x12 is 0\.00024 megapixels, more than the limit of "
                                                     r"0\.0002; raise it with --max-pixels"):
            read_image(tmp_path / name, max_pixels=200)
    assert Image.MAX_IMAGE_PIXELS == 100  # Pillow's own setting is back for everyone else


def test_damaged_16_bit_png_is_one_read_error(tmp_path, picture):
    deep = damage_zlib(write_png16(tmp_path / "deep.png", picture.astype(np.uint16) * 257))
    with pytest.raises(ImageReadError, match=r"deep\.png: not a readable 16-bit PNG \(Error -3 while decompressing"):
        read_image(deep)
    data = write_png16(tmp_path / "short.png", picture.astype(np.uint16) * 257).read_bytes()
    start = data.index(b"IDAT")
    length = struct.unpack(">I", data[start - 4 : start])[0]
    rows = zlib.decompress(data[start + 4 : start + 4 + length])[: 3 * (1 + 20 * 6)]  # 3 of 12 rows
    idat = png_chunk(b"IDAT", zlib.compress(rows))
    (tmp_path / "short.png").write_bytes(data[: start - 4] + idat + data[start + 8 + length :])
    with pytest.raises(ImageReadError, match=r"short\.png: not a readable 16-bit PNG \(the pixel data ends after 3 of 12"):
        read_image(tmp_path / "short.png")


@pytest.mark.parametrize("deep", [False, True])
def test_oversized_metadata_chunk_is_refused_before_it_is_read(tmp_path, picture, deep):
    """A 17 MiB text chunk: refused from its header, so reading costs far less memory than the chunk."""
    source = tmp_path / "image.png"
    write_png16(source, picture.astype(np.uint16) * 257) if deep else Image.fromarray(picture).save(source)
    text = png_chunk(b"tEXt", b"Comment\x00" + b"x" * (17 * 2**20))
    source.write_bytes(with_chunk_before_pixels(source.read_bytes(), text))
    tracemalloc.start()
    try:
        with pytest.raises(ImageTooLargeError, match=r"image\.png: its 'tEXt' chunk \(text, colour profile or other "
                                                     r"metadata\) holds 17,825,800 bytes, more than the 16,777,216"):
            read_image(source)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"{peak / 2**20:.1f} MiB to refuse the chunk"


@pytest.mark.parametrize("deep", [False, True])
def test_colour_profile_that_inflates_beyond_pillows_limit_is_one_read_error(tmp_path, picture, deep):
    source = tmp_path / "profile.png"
    write_png16(source, picture.astype(np.uint16) * 257) if deep else Image.fromarray(picture).save(source)
    profile = png_chunk(b"iCCP", b"huge\x00\x00" + zlib.compress(bytes(2 * 2**20)))
    source.write_bytes(with_chunk_before_pixels(source.read_bytes(), profile))
    with pytest.raises(ImageReadError, match=r"profile\.png: not a readable image \(Decompressed data too large"):
        read_image(source)


# ---------------------------------------------------------------- fuzz: mutated files are read or refused, nothing else

def _seed_files(folder: Path) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    deep = rng.integers(0, 65536, (9, 13, 3), dtype=np.uint16)
    made = {}
    for name, save in {
        "png8.png": lambda p: Image.fromarray(rgb).save(p, icc_profile=srgb_profile(), exif=camera_exif(6).tobytes()),
        "png16.png": lambda p: write_png16(p, deep, srgb_profile(), camera_exif(3)),
        "jpeg.jpg": lambda p: Image.fromarray(rgb).save(p, icc_profile=srgb_profile(), exif=camera_exif(8).tobytes()),
        "webp.webp": lambda p: Image.fromarray(rgb).save(p, exif=camera_exif(6).tobytes()),
        "tiff8.tif": lambda p: Image.fromarray(rgb).save(p, exif=camera_exif(5).tobytes()),
        "tiff16.tif": lambda p: tifffile.imwrite(p, deep, photometric="rgb", iccprofile=srgb_profile()),
        "tiff16la.tif": lambda p: tifffile.imwrite(p, deep[:, :, :2], photometric="minisblack",
                                                   extrasamples=["unassalpha"]),
        "bmp.bmp": lambda p: Image.fromarray(rgb).save(p),
    }.items():
        save(folder / name)
        made[name] = (folder / name).read_bytes()
    return made


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    data = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        if not data:
            break
        position = int(rng.integers(0, len(data)))
        action = int(rng.integers(0, 4))
        if action == 0:
            data[position] = int(rng.integers(0, 256))
        elif action == 1:
            data[position : position + 4] = struct.pack(">I", int(rng.choice([0, 1, 2**31 - 1, 2**32 - 1, 65535])))
        elif action == 2:
            del data[position : position + int(rng.integers(1, 64))]
        else:
            data = data[:position]
    return bytes(data)


def _with_sound_crcs(data: bytes) -> bytes:
    """A mutated PNG with each chunk's CRC made right again, so that the decoders see the damaged data instead of
    stopping at the first CRC."""
    out, position = bytearray(data[:8]), 8
    while position + 8 <= len(data):
        length = struct.unpack(">I", data[position : position + 4])[0]
        body = data[position + 4 : position + 8 + length]
        if len(body) != 4 + length:
            out += data[position:]
            break
        out += data[position : position + 4] + body + struct.pack(">I", zlib.crc32(body))
        position += 12 + length
    return bytes(out)


def _fuzz(folder: Path, per_kind: int) -> dict[str, int]:
    """Read ``per_kind`` mutants of each kind of file (PNGs: half of them with sound CRCs); return how many were
    read, the others having been refused with a GldfnError."""
    outcomes = {}
    for name, data in _seed_files(folder).items():
        rng = np.random.default_rng(list(name.encode()))
        read = 0
        for index in range(per_kind):
            path = folder / f"mutant{Path(name).suffix}"
            mutant = _mutate(data, rng)
            path.write_bytes(_with_sound_crcs(mutant) if name.endswith(".png") and index % 2 else mutant)
            try:
                pixels, _ = read_image_with_metadata(path, max_pixels=10_000)
                read += 1
                assert pixels.dtype in (np.uint8, np.uint16), (name, index)
            except GldfnError:
                pass  # refused with a message for the user: the outcome asked for
        outcomes[name] = read
    return outcomes


def test_mutated_files_are_read_or_refused_with_one_error(tmp_path):
    outcomes = _fuzz(tmp_path, 40)
    assert set(outcomes) == {"png8.png", "png16.png", "jpeg.jpg", "webp.webp", "tiff8.tif", "tiff16.tif",
                             "tiff16la.tif", "bmp.bmp"}


@pytest.mark.slow
def test_500_mutated_files_per_kind_are_read_or_refused_with_one_error(tmp_path):
    outcomes = _fuzz(tmp_path, 500)
    print(outcomes)
