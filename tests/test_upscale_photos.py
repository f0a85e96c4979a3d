"""`gldfn upscale` on photos: the ICC profile and EXIF reach the output (pixels upright, orientation 1), grey +
alpha stays grey + alpha, 16 bits stay 16 bits in PNG and TIFF, --quality, --max-pixels in place of Pillow's
limit; damaged files are one error line in every command that reads images, and an upscale batch goes on."""
from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np
import png
import pytest
import tifffile
from PIL import ExifTags, Image, ImageOps
from test_image_metadata import (
    CAMERA,
    ORIENTATION,
    TAKEN,
    camera_exif,
    damage_zlib,
    exif_written,
    png_chunk,
    srgb_profile,
    with_chunk_before_pixels,
    write_png16,
)
from typer.testing import CliRunner

from gldfn_model.cli import app
from gldfn_model.data.imresize import imresize
from gldfn_runtime import Upscaler

SCALE = 4


def upscale(*args: object):
    return CliRunner().invoke(app, ["upscale", *map(str, args), "--backend", "bicubic"])


def bicubic(pixels: np.ndarray) -> np.ndarray:
    return Upscaler.bicubic(SCALE).upscale(pixels)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """16 x 24 RGB: smooth gradients, a bright corner (to see turns) and some noise, as uint8."""
    rows, cols = np.mgrid[0:16, 0:24]
    pixels = np.dstack([rows * 12, cols * 9, (rows + cols) * 5]).astype(np.float64)
    pixels += np.random.default_rng(2).normal(0, 6, pixels.shape)
    pixels[:5, :7] = 245
    return np.clip(pixels, 0, 255).astype(np.uint8)


def test_icc_profile_and_exif_reach_the_output_with_the_pixels_upright(tmp_path, photo):
    icc = srgb_profile()
    source = tmp_path / "camera.jpg"
    Image.fromarray(photo).save(source, icc_profile=icc, exif=camera_exif(6).tobytes(), quality=100)
    with Image.open(source) as image:
        shown = np.asarray(ImageOps.exif_transpose(image))  # 24 x 16: as a viewer shows it
    for target in (tmp_path / "big.jpg", tmp_path / "big.png"):
        result = upscale(source, "-o", target)
        assert result.exit_code == 0, result.output
        with Image.open(target) as written:
            assert written.info["icc_profile"] == icc
            assert written.size == (16 * SCALE, 24 * SCALE)
            pixels = np.asarray(written.convert("RGB"))
        exif, sub_ifd = exif_written(target)
        assert exif[ORIENTATION] == 1 and exif[ExifTags.Base.Make] == CAMERA
        assert sub_ifd[ExifTags.Base.DateTimeOriginal] == TAKEN
        tolerance = 0 if target.suffix == ".png" else 12  # the JPEG output is compressed again
        assert np.abs(pixels.astype(int) - bicubic(shown)).max() <= tolerance


def test_16_bit_png_with_an_orientation_is_turned_like_its_8_bit_twin(tmp_path, photo):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "eight.png", exif=camera_exif(8).tobytes())
    write_png16(folder / "sixteen.png", photo.astype(np.uint16) * 257, exif=camera_exif(8))
    result = upscale(folder, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "eight.png") as eight:
        expected = np.asarray(eight)
    width, height, rows, info = png.Reader(filename=str(tmp_path / "out" / "sixteen.png")).asDirect()
    sixteen = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows]).reshape(height, width, 3)
    assert info["bitdepth"] == 16 and sixteen.shape == expected.shape == (24 * SCALE, 16 * SCALE, 3)
    assert np.abs(np.round(sixteen / 257).astype(int) - expected).max() <= 1


def test_grey_alpha_comes_back_grey_alpha_with_bicubic_alpha(tmp_path, photo):
    """The alpha of grey + alpha is resized with bicubic, as RGBA's is: a mask, not a photo."""
    grey, alpha = photo[:, :, 1], photo[:, :, 0]
    Image.fromarray(np.dstack([grey, alpha]), mode="LA").save(tmp_path / "mask.png")
    result = upscale(tmp_path / "mask.png", "-o", tmp_path / "big.png")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "big.png") as written:
        assert written.mode == "LA"
        pixels = np.asarray(written)
    np.testing.assert_array_equal(pixels[:, :, 0], bicubic(grey))
    expected_alpha = np.round(np.clip(imresize(alpha / 255.0, SCALE), 0, 1) * 255)
    assert np.abs(pixels[:, :, 1].astype(int) - expected_alpha).max() <= 1


def test_16_bit_png_and_tiff_come_back_16_bit(tmp_path, photo):
    folder = tmp_path / "in"
    folder.mkdir()
    deep = photo.astype(np.uint16) * 257 + np.random.default_rng(0).integers(0, 200, photo.shape, dtype=np.uint16)
    write_png16(folder / "deep.png", deep)
    tifffile.imwrite(folder / "deep.tif", deep, photometric="rgb")
    result = upscale(folder, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    expected = bicubic(deep)
    _, _, rows, info = png.Reader(filename=str(tmp_path / "out" / "deep.png")).asDirect()
    assert info["bitdepth"] == 16
    np.testing.assert_array_equal(np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(expected.shape),
                                  expected)
    tiff = tifffile.imread(tmp_path / "out" / "deep.tif")
    assert tiff.dtype == np.uint16
    np.testing.assert_array_equal(tiff, expected)
    assert np.any(expected % 257)  # values 8 bits could not hold


def test_quality_sets_the_jpeg_size_and_defaults_to_95(tmp_path, photo):
    Image.fromarray(photo).save(tmp_path / "photo.png")
    sizes = {}
    for quality in ("30", None, "95"):
        target = tmp_path / f"q{quality}.jpg"
        result = upscale(tmp_path / "photo.png", "-o", target, *(["--quality", quality] if quality else []))
        assert result.exit_code == 0, result.output
        sizes[quality] = target.stat().st_size
    assert sizes["30"] < 0.7 * sizes["95"], sizes
    assert (tmp_path / "qNone.jpg").read_bytes() == (tmp_path / "q95.jpg").read_bytes()
    refused = upscale(tmp_path / "photo.png", "-o", tmp_path / "q0.jpg", "--quality", "0")
    assert refused.exit_code == 2 and not (tmp_path / "q0.jpg").exists()


def test_max_pixels_refuses_in_one_line_and_replaces_pillows_limit(tmp_path, photo, monkeypatch):
    Image.fromarray(photo).save(tmp_path / "photo.jpg")
    refused = upscale(tmp_path / "photo.jpg", "-o", tmp_path / "big.png", "--max-pixels", "300")
    assert refused.exit_code == 1
    assert (f"error: {tmp_path / 'photo.jpg'}: 24x16 is 0.000384 megapixels, more than the limit of 0.0003; raise it "
            "with --max-pixels if the file is genuine and memory allows") in refused.output
    assert refused.output.count("error:") == 1 and not (tmp_path / "big.png").exists()
    # Pillow refuses more than twice Image.MAX_IMAGE_PIXELS whatever --max-pixels says; lowered to 100 here.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    allowed = upscale(tmp_path / "photo.jpg", "-o", tmp_path / "big.png", "--max-pixels", "1000")
    assert allowed.exit_code == 0, allowed.output
    assert (tmp_path / "big.png").is_file() and "decompression bomb" not in allowed.output


def damaged_files(folder: Path, photo: np.ndarray) -> dict[str, str]:
    """Damaged PNGs in ``folder``, each with the start of the line it must be reported with."""
    damage_zlib(write_png16(folder / "b_zlib16.png", photo.astype(np.uint16) * 257))
    Image.fromarray(photo).save(folder / "c_profile.png")
    profile = png_chunk(b"iCCP", b"huge\x00\x00" + zlib.compress(bytes(2 * 2**20)))
    (folder / "c_profile.png").write_bytes(with_chunk_before_pixels((folder / "c_profile.png").read_bytes(), profile))
    Image.fromarray(photo).save(folder / "d_text.png")
    text = png_chunk(b"tEXt", b"Comment\x00" + b"x" * (17 * 2**20))
    (folder / "d_text.png").write_bytes(with_chunk_before_pixels((folder / "d_text.png").read_bytes(), text))
    return {"b_zlib16.png": "not a readable 16-bit PNG (Error -3 while decompressing data",
            "c_profile.png": "not a readable image (Decompressed data too large",
            "d_text.png": "its 'tEXt' chunk (text, colour profile or other metadata) holds 17,825,800 bytes"}


def test_a_batch_with_damaged_files_reports_each_in_one_line_and_writes_the_others(tmp_path, photo):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "a_good.png")
    reasons = damaged_files(folder, photo)
    Image.fromarray(photo).save(folder / "z_good.png")
    result = upscale(folder, "-o", tmp_path / "out")
    assert result.exit_code == 1
    for name, reason in reasons.items():
        assert f"error: {folder / name}: {reason}" in result.output, name
    assert result.output.count("error:") == 3 and "Traceback" not in result.output
    assert "2 of 5 images written" in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_good.png", "z_good.png"]


@pytest.mark.parametrize("damaged", ["b_zlib16.png", "c_profile.png", "d_text.png"])
@pytest.mark.parametrize("command", ["eval", "degrade", "train"])
def test_every_command_reading_images_reports_a_damaged_one_in_one_line(tmp_path, photo, command, damaged):
    folder = tmp_path / "hr"
    folder.mkdir()
    big = np.tile(photo, (4, 3, 1))  # 64 x 72: large enough for every command
    Image.fromarray(big).save(folder / "a_good.png")
    reason = damaged_files(tmp_path, big)[damaged]
    (tmp_path / damaged).rename(folder / damaged)
    args = {"eval": ["eval", folder],
            "degrade": ["degrade", folder, "-o", tmp_path / "lr"],
            "train": ["train", folder, "-o", tmp_path / "run", "--iters", "1", "--batch", "1", "--patch", "8",
                      "--threads", "1", "--no-prefetch"]}[command]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 1, result.output
    assert f"error: {folder / damaged}: {reason}" in result.output
    assert result.output.count("error:") == 1 and "Traceback" not in result.output


def test_calibration_reports_a_damaged_image_naming_it(tmp_path, photo):
    from gldfn_calibration.data_reader import make_calibration_set
    from gldfn_calibration.errors import CalibrationError

    reason = damaged_files(tmp_path, np.tile(photo, (4, 3, 1)))["b_zlib16.png"]
    for name in ("c_profile.png", "d_text.png"):
        (tmp_path / name).unlink()
    with pytest.raises(CalibrationError, match=re.escape(f"--images: {tmp_path / 'b_zlib16.png'}: {reason}")):
        make_calibration_set(tmp_path, 4, samples=1, patch=16)


@pytest.mark.slow
def test_a_200_mb_text_chunk_is_one_error_line_in_a_batch(tmp_path, photo):
    """The reproduction as filed: a PNG with a 200 MB text chunk."""
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "a_good.png")
    Image.fromarray(photo).save(folder / "b_text.png")
    with open(folder / "b_text.png", "r+b") as fh:
        data = fh.read()
        fh.seek(0)
        fh.write(with_chunk_before_pixels(data, png_chunk(b"tEXt", b"Comment\x00" + b"x" * (200 * 2**20))))
    result = upscale(folder, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "b_text.png: its 'tEXt' chunk (text, colour profile or other metadata) holds 209,715,208 bytes" in result.output
    assert result.output.count("error:") == 1 and (tmp_path / "out" / "a_good.png").is_file()
