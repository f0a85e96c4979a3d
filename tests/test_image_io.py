"""Image reading / writing: formats, grayscale, 16 bit, RGBA, and clear errors for bad files."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gldfn_model.common.errors import GldfnError
from gldfn_model.data.image_io import (
    ImageCanvas,
    ImageFormatError,
    ImageReadError,
    ImageTooLargeError,
    ImageWriteError,
    list_images,
    read_image,
    read_rgb,
    write_image,
)


def test_png_round_trip_rgb_gray_rgba_and_16_bit(tmp_path):
    rng = np.random.default_rng(0)
    for name, array in {
        "rgb.png": rng.integers(0, 256, (7, 5, 3), dtype=np.uint8),
        "gray.png": rng.integers(0, 256, (7, 5), dtype=np.uint8),
        "rgba.png": rng.integers(0, 256, (7, 5, 4), dtype=np.uint8),
        "deep.png": rng.integers(0, 65536, (7, 5), dtype=np.uint16),
        "deep_rgb.png": rng.integers(0, 65536, (7, 5, 3), dtype=np.uint16),
        "deep_rgba.png": rng.integers(0, 65536, (7, 5, 4), dtype=np.uint16),
    }.items():
        write_image(tmp_path / name, array)
        back = read_image(tmp_path / name)
        assert back.dtype == array.dtype and np.array_equal(back, array), name
    assert list(tmp_path.glob(".*tmp")) == []  # no temporary files left behind


def test_read_rgb_expands_gray_drops_alpha_and_reduces_16_bit(tmp_path):
    gray = np.arange(35, dtype=np.uint8).reshape(7, 5)
    write_image(tmp_path / "gray.png", gray)
    rgb = read_rgb(tmp_path / "gray.png")
    assert rgb.shape == (7, 5, 3) and all(np.array_equal(rgb[..., c], gray) for c in range(3))
    write_image(tmp_path / "rgba.png", np.full((4, 4, 4), 9, np.uint8))
    assert read_rgb(tmp_path / "rgba.png").shape == (4, 4, 3)
    write_image(tmp_path / "deep.png", np.full((4, 4), 65535, np.uint16))
    assert read_rgb(tmp_path / "deep.png").max() == 255


def test_16_bit_colour_png_keeps_all_16_bits(tmp_path):
    """Pillow decodes 16-bit colour PNGs to 8 bits; ours must not."""
    import png

    values = np.array([[[0, 1, 65535], [256, 257, 40000]]], dtype=np.uint16)  # 1 x 2 x 3
    with open(tmp_path / "deep.png", "wb") as fh:
        png.Writer(2, 1, greyscale=False, bitdepth=16).write(fh, values.reshape(1, -1))
    back = read_image(tmp_path / "deep.png")
    assert back.dtype == np.uint16 and np.array_equal(back, values)
    assert np.array_equal(read_rgb(tmp_path / "deep.png"), np.round(values / 257.0).astype(np.uint8))


def test_16_bit_jpeg_is_refused(tmp_path):
    with pytest.raises(ValueError, match="needs a .png"):
        write_image(tmp_path / "deep.jpg", np.zeros((4, 4, 3), np.uint16))
    assert list(tmp_path.iterdir()) == []


def test_jpeg_and_palette(tmp_path):
    Image.new("P", (6, 4), color=3).save(tmp_path / "palette.png")
    assert read_image(tmp_path / "palette.png").shape == (4, 6, 3)
    write_image(tmp_path / "photo.jpg", np.full((8, 8, 3), 128, np.uint8))
    assert np.abs(read_rgb(tmp_path / "photo.jpg").astype(int) - 128).max() <= 2


def test_bad_files_name_the_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ImageReadError, match=r"empty\.png.*empty \(0 bytes\)"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(ImageReadError, match=r"text\.png.*not a readable image"):
        read_image(tmp_path / "text.png")
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageReadError, match=r"is a folder, not an image file: name its images"):
        read_image(tmp_path)
    with pytest.raises(ValueError, match="unknown image suffix"):
        write_image(tmp_path / "out.xyz", np.zeros((2, 2), np.uint8))


def test_list_images(tmp_path):
    with pytest.raises(ImageReadError, match="no image files"):
        list_images(tmp_path)
    with pytest.raises(ImageReadError, match="not a folder"):
        list_images(tmp_path / "nope")
    (tmp_path / "b.PNG").write_bytes(b"x")
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG"]


def png_claiming(path: Path, width: int, height: int, bit_depth: int, colour_type: int = 2) -> Path:
    """A PNG whose IHDR claims ``width x height`` but whose data holds only a few rows: a decoder that trusts
    the header allocates the whole image before it notices."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    row = b"\x00" + bytes(width * 3 * bit_depth // 8)
    chunks = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(row * 4)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)
    return path


@pytest.mark.parametrize("width,height,bit_depth", [(100_000, 100_000, 8), (20_000, 20_000, 16)])
def test_pixel_limit_is_checked_from_the_header_before_decoding(tmp_path, width, height, bit_depth):
    path = png_claiming(tmp_path / "bomb.png", width, height, bit_depth)
    limit = rf"bomb\.png: {width}x{height} is .* megapixels, more than the limit of 100\.0"
    with pytest.raises(ImageTooLargeError, match=limit):
        read_image(path)


@pytest.mark.parametrize("dtype,suffix", [(np.uint8, ".jpg"), (np.uint8, ".png"), (np.uint16, ".png")])
def test_pixel_limit_applies_to_every_reader(tmp_path, dtype, suffix):
    write_image(tmp_path / f"photo{suffix}", np.zeros((30, 40, 3), dtype))  # 1200 pixels
    assert read_image(tmp_path / f"photo{suffix}", max_pixels=1200).shape == (30, 40, 3)
    with pytest.raises(ImageTooLargeError, match=r"40x30 is 0\.0012 megapixels, more than the limit of 0\.001199"):
        read_image(tmp_path / f"photo{suffix}", max_pixels=1199)


@pytest.mark.parametrize(
    "array,kind",
    [
        (np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8), "32-bit float"),
        (np.arange(48, dtype=np.int32).reshape(6, 8) * 70_000, "32-bit integer"),
    ],
)
def test_tiff_samples_other_than_8_or_16_bit_integers_are_refused(tmp_path, array, kind):
    Image.fromarray(array).save(tmp_path / "samples.tif")
    with pytest.raises(ImageFormatError, match=rf"samples\.tif: {kind} samples are not supported"):
        read_image(tmp_path / "samples.tif")


def test_16_bit_tiff_keeps_its_values(tmp_path):
    values = (np.arange(48, dtype=np.uint16).reshape(6, 8) * 1361)
    Image.fromarray(values).save(tmp_path / "deep.tif")
    back = read_image(tmp_path / "deep.tif")
    assert back.dtype == np.uint16 and np.array_equal(back, values)


def test_multi_frame_files_are_refused(tmp_path):
    frames = [Image.new("RGB", (8, 6), colour) for colour in ("red", "blue", "green")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "pages.tif", save_all=True, append_images=frames[1:2])
    with pytest.raises(ImageFormatError, match=r"anim\.gif: the file holds 3 frames"):
        read_image(tmp_path / "anim.gif")
    with pytest.raises(ImageFormatError, match=r"pages\.tif: the file holds 2 frames"):
        read_image(tmp_path / "pages.tif")
    frames[0].save(tmp_path / "single.gif")
    assert read_image(tmp_path / "single.gif").shape == (6, 8, 3)


def test_exif_orientation_is_applied(tmp_path):
    """Orientation 6: the stored pixels must be turned 90 degrees clockwise to be shown upright."""
    stored = np.zeros((16, 24, 3), np.uint8)
    stored[:8, :8] = 255  # a white square in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=100)
    with Image.open(tmp_path / "rotated.jpg") as raw:
        decoded = np.asarray(raw.convert("RGB"))
    shown = read_image(tmp_path / "rotated.jpg")
    assert shown.shape == (24, 16, 3)
    np.testing.assert_array_equal(shown, np.rot90(decoded, k=-1))
    assert shown[:8, -8:].mean() > 200 and shown[:8, :8].mean() < 50  # the square is now top-right


def test_output_path_problems_are_refused_before_writing(tmp_path):
    (tmp_path / "taken.png").mkdir()
    with pytest.raises(ImageWriteError, match=r"cannot write .*taken\.png: a folder of that name is in the way"):
        write_image(tmp_path / "taken.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ImageWriteError, match="WEBP images are at most 16383 pixels a side"):
        ImageCanvas.blank(8, 20_000, 3, np.uint8).save(tmp_path / "wide.webp")
    assert issubclass(ImageWriteError, GldfnError) and issubclass(ImageTooLargeError, GldfnError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.png"]


@pytest.mark.parametrize("channels,dtype", [(1, np.uint8), (3, np.uint8), (4, np.uint8), (1, np.uint16),
                                            (3, np.uint16)])
def test_canvas_assembled_from_blocks_equals_the_array(tmp_path, channels, dtype):
    rng = np.random.default_rng(channels)
    shape = (20, 30) if channels == 1 else (20, 30, channels)
    array = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)
    canvas = ImageCanvas.blank(20, 30, channels, dtype)
    for top, left in [(0, 0), (0, 17), (11, 0), (11, 17)]:
        canvas.paste(top, left, array[top : top + 11, left : left + 17])
    canvas.save(tmp_path / "canvas.png")
    np.testing.assert_array_equal(read_image(tmp_path / "canvas.png"), array)
