"""Image reading / writing: formats, grayscale, 16 bit, RGBA, and clear errors for bad files."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gldfn_model.data.image_io import ImageReadError, list_images, read_image, read_rgb, write_image


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
