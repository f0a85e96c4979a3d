"""gldfn_runtime.Upscaler and `gldfn upscale`: layouts and dtypes, alpha, DLPack, backends, bad inputs, a batch
that survives any one file, and memory that stays bounded."""
from __future__ import annotations

import shutil
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_image_io import png_claiming
from typer.testing import CliRunner

from gldfn_export.exporter import export_gldfn
from gldfn_model.cli import app
from gldfn_model.data.image_io import read_image, write_image
from gldfn_model.data.imresize import imresize
from gldfn_model.data.reference_inputs import real_image_input
from gldfn_model.inference.runner import RunnerError
from gldfn_model.inference.torch_runner import TorchRunner
from gldfn_model.network.config import get_config
from gldfn_model.network.gldfn import GLDFN
from gldfn_runtime import Upscaler
from gldfn_runtime.upscale.tiling import MIN_AUTO_TILE, working_memory
from gldfn_runtime.upscale.upscaler import ImageShapeError, ImageValueError, describe_failure

SCALE = 4


@pytest.fixture(scope="module")
def model() -> GLDFN:
    torch.manual_seed(0)
    return GLDFN(get_config("tiny", SCALE)).eval()


@pytest.fixture(scope="module")
def upscaler(model) -> Upscaler:
    return Upscaler(TorchRunner(model))


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    """A real image (Set5 butterfly crop, or the synthetic card without the datasets) as 24 x 32 uint8 RGB."""
    lr = real_image_input(SCALE, 24, 32, 1).lr[0]
    return np.round(lr.transpose(1, 2, 0) * 255).astype(np.uint8)


@pytest.mark.parametrize("layout", ["gray", "gray1", "rgb", "rgba"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_layout_and_dtype_come_back_unchanged(upscaler, rgb, layout, dtype):
    image = {"gray": rgb[:, :, 0], "gray1": rgb[:, :, :1], "rgb": rgb, "rgba": np.dstack([rgb, rgb[:, :, 1]])}[layout]
    image = image.astype(np.float32) / 255 if dtype == np.float32 else image.astype(dtype) * (257 if dtype == np.uint16 else 1)
    out = upscaler.upscale(image)
    assert out.dtype == image.dtype
    assert out.shape == (image.shape[0] * SCALE, image.shape[1] * SCALE, *image.shape[2:])
    assert float(out.min()) >= 0 and float(out.max()) <= (1 if dtype == np.float32 else np.iinfo(dtype).max)


def test_alpha_is_bicubic_and_colour_ignores_it(upscaler, rgb):
    alpha = np.tile(np.linspace(0, 255, rgb.shape[1], dtype=np.float64).round().astype(np.uint8), (rgb.shape[0], 1))
    out = upscaler.upscale(np.dstack([rgb, alpha]))
    np.testing.assert_array_equal(out[:, :, :3], upscaler.upscale(rgb))
    expected = np.round(np.clip(imresize(alpha / 255.0, SCALE), 0, 1) * 255).astype(np.uint8)
    assert np.abs(out[:, :, 3].astype(int) - expected).max() <= 1


def test_gray_is_the_mean_of_the_rgb_result(upscaler, rgb):
    gray = rgb[:, :, 0].astype(np.float32) / 255
    rgb_out = upscaler.upscale_batch(np.repeat(gray[None, None], 3, axis=1))[0]
    np.testing.assert_allclose(upscaler.upscale(gray), np.clip(rgb_out.mean(axis=0), 0, 1), atol=1e-6)


def test_uint8_matches_the_float_path(upscaler, rgb):
    as_float = upscaler.upscale(rgb.astype(np.float32) / 255)
    assert np.abs(upscaler.upscale(rgb).astype(int) - np.round(as_float * 255)).max() <= 1


@pytest.mark.parametrize(
    "image,match",
    [
        (np.zeros((1, 1, 3), np.uint8), "1x1 pixels"),
        (np.zeros((1, 40, 3), np.uint8), "1x40 pixels"),
        (np.zeros((8, 8, 5), np.uint8), "shape"),
        (np.zeros((8, 8, 3), np.int32), "int32"),
        (np.zeros((2, 8, 8, 3), np.uint8), "shape"),
    ],
)
def test_bad_arrays_are_refused_with_the_reason(upscaler, image, match):
    with pytest.raises(ImageShapeError, match=match):
        upscaler.upscale(image)


def test_dlpack_tensor_goes_through_the_same_path(upscaler, rgb):
    chw = torch.from_numpy(rgb.transpose(2, 0, 1).astype(np.float32) / 255)
    out = upscaler.upscale_tensor(chw)
    assert isinstance(out, torch.Tensor) and out.shape == (3, rgb.shape[0] * SCALE, rgb.shape[1] * SCALE)
    np.testing.assert_allclose(out.numpy(), upscaler.upscale_batch(chw.numpy()[None])[0], atol=1e-6)


def test_constructors(model, tmp_path):
    assert Upscaler.from_checkpoint(None, SCALE, random_weights=True).scale == SCALE
    with pytest.raises(Exception, match="--random-weights"):
        Upscaler.from_checkpoint(None, 3, config="paper")  # no shipped paper weights: says what to pass
    with pytest.raises(RunnerError, match="does not exist"):
        Upscaler.from_onnx(tmp_path / "missing.onnx")


def test_a_missing_onnxruntime_provider_is_an_error_not_a_fallback(onnx_file):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(RunnerError, match="CUDAExecutionProvider.*not available"):
        Upscaler.from_onnx(onnx_file, providers="cuda")


@pytest.fixture(scope="module")
def onnx_file(model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_gldfn(model, path, verify=False, config_name="tiny")
    return path


def test_onnxruntime_and_torch_agree_tiled(upscaler, model, onnx_file, rgb):
    ort_tiled = Upscaler.from_onnx(onnx_file, tile=16, overlap=8)
    torch_tiled = Upscaler(TorchRunner(model), tile=16, overlap=8)
    assert np.abs(ort_tiled.upscale(rgb).astype(int) - torch_tiled.upscale(rgb)).max() <= 1


def write_inputs(folder: Path, rgb: np.ndarray) -> None:
    folder.mkdir()
    Image.fromarray(rgb).save(folder / "rgb.png")
    Image.fromarray(rgb[:, :, 0]).save(folder / "gray.png")
    Image.fromarray(np.dstack([rgb, rgb[:, :, 2]])).save(folder / "rgba.png")
    Image.fromarray(rgb[:, :, 1].astype(np.uint16) * 257).save(folder / "gray16.png")
    write_image(folder / "rgb16.png", rgb.astype(np.uint16) * 257)
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("not an image\n")
    (folder / "truncated.png").write_bytes((folder / "rgb.png").read_bytes()[:150])
    Image.new("RGB", (1, 1)).save(folder / "dot.png")


def test_cli_upscales_a_folder_and_names_each_bad_file(tmp_path, rgb):
    write_inputs(tmp_path / "in", rgb)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["upscale", str(tmp_path / "in"), "-o", str(out), "--random-weights", "--tile", "16", "--overlap", "8"])
    assert result.exit_code == 1, result.output
    text = result.output
    assert "empty.png: the file is empty" in text
    assert "notes.png: not a readable image" in text
    assert "truncated.png: not a readable image" in text
    assert "dot.png: the image is 1x1 pixels" in text
    assert "5 of 9 images written" in text
    assert sorted(p.name for p in out.iterdir()) == ["gray.png", "gray16.png", "rgb.png", "rgb16.png", "rgba.png"]  # no temp files
    shapes = {p.name: (read_image(p).shape, read_image(p).dtype) for p in out.iterdir()}
    h, w = rgb.shape[0] * SCALE, rgb.shape[1] * SCALE
    assert shapes == {
        "rgb.png": ((h, w, 3), np.uint8), "gray.png": ((h, w), np.uint8),
        "rgba.png": ((h, w, 4), np.uint8), "gray16.png": ((h, w), np.uint16), "rgb16.png": ((h, w, 3), np.uint16),
    }


def test_cli_onnxruntime_backend_matches_torch(tmp_path, rgb, onnx_file, model):
    Image.fromarray(rgb).save(tmp_path / "a.png")
    result = CliRunner().invoke(app, ["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--backend", "onnxruntime", "--onnx", str(onnx_file)])
    assert result.exit_code == 0, result.output
    expected = Upscaler(TorchRunner(model)).upscale(rgb)
    assert np.abs(read_image(tmp_path / "out" / "a.png").astype(int) - expected).max() <= 1


@pytest.mark.parametrize(
    "args,message",
    [
        (["--backend", "onnxruntime"], "needs --onnx"),
        (["--backend", "torch", "--scale", "3", "--config", "paper"], "--random-weights"),
        (["--random-weights", "--tile", "8", "--overlap", "8"], "overlap 8 must be smaller than the tile"),
    ],
)
def test_cli_bad_options_explain_themselves(tmp_path, rgb, args, message):
    Image.fromarray(rgb).save(tmp_path / "a.png")
    result = CliRunner().invoke(app, ["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), *args])
    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "out" / "a.png").exists()


def test_cli_refuses_a_checkpoint_that_would_run_code(tmp_path, rgb):
    from conftest import write_code_running_checkpoint

    Image.fromarray(rgb).save(tmp_path / "a.png")
    marker = tmp_path / "ran"
    crafted = write_code_running_checkpoint(tmp_path / "crafted.pt", marker)
    result = CliRunner().invoke(app, ["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"),
                                      "--checkpoint", str(crafted)])
    assert result.exit_code == 1 and "holds objects other than tensors and plain data" in result.output
    assert not marker.exists() and not (tmp_path / "out" / "a.png").exists()


def test_cli_missing_input_is_an_error(tmp_path):
    result = CliRunner().invoke(app, ["upscale", str(tmp_path / "nope.png"), "-o", str(tmp_path / "out"), "--backend", "bicubic"])
    assert result.exit_code == 1 and "nope.png: no such file or folder" in result.output


def test_from_engine_without_a_built_engine_says_how_to_build_one(tmp_path):
    pytest.importorskip("gldfn_runtime.runners.trt_runner", reason="the TensorRT runner module is absent")
    with pytest.raises(Exception, match="gldfn-trt build"):
        Upscaler.from_engine(tmp_path / "model.engine")


# --- where outputs go: never onto an input, never over an existing file unless asked ---------------------------

def upscale_cli(*args):
    return CliRunner().invoke(app, ["upscale", *[str(a) for a in args], "--backend", "bicubic"])


@pytest.fixture
def photos(tmp_path, rgb) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(rgb).save(folder / "a.png")
    Image.fromarray(np.dstack([rgb, rgb[:, :, 0]])).save(folder / "b.png")
    return folder


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_cli_refuses_to_write_over_its_inputs(photos, monkeypatch):
    before = contents(photos)
    in_place = upscale_cli(photos, "-o", photos)
    assert in_place.exit_code == 1
    assert "2 output(s) would replace input images" in in_place.output and "--overwrite" in in_place.output
    monkeypatch.chdir(photos)
    here = upscale_cli("a.png", "-o", ".")
    assert here.exit_code == 1 and "1 output(s) would replace input images (a.png)" in here.output
    assert contents(photos) == before


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_cli_refuses_an_output_that_is_an_input_through_a_link(photos, tmp_path, link):
    out = tmp_path / "out"
    out.mkdir()
    if link == "symlink":
        (out / "a.png").symlink_to(photos / "a.png")
    else:
        (out / "a.png").hardlink_to(photos / "a.png")
    before = contents(photos)
    result = upscale_cli(photos / "a.png", "-o", out)
    assert result.exit_code == 1 and "would replace input images" in result.output
    assert contents(photos) == before


def test_cli_overwrite_replaces_inputs_when_asked(photos, rgb):
    result = upscale_cli(photos / "a.png", "-o", photos, "--overwrite")
    assert result.exit_code == 0, result.output
    assert read_image(photos / "a.png").shape == (rgb.shape[0] * SCALE, rgb.shape[1] * SCALE, 3)


def test_cli_existing_outputs_are_kept_unless_asked(photos, tmp_path, rgb):
    out = tmp_path / "out"
    assert upscale_cli(photos / "a.png", "-o", out).exit_code == 0
    first = contents(out)
    again = upscale_cli(photos, "-o", out)
    assert again.exit_code == 1 and "1 output(s) exist already" in again.output and "--skip-existing" in again.output
    skipping = upscale_cli(photos, "-o", out, "--skip-existing")
    assert skipping.exit_code == 0, skipping.output
    assert "1 of 1 images written" in skipping.output and "1 already there, kept (--skip-existing)" in skipping.output
    assert contents(out)["a.png"] == first["a.png"] and sorted(contents(out)) == ["a.png", "b.png"]
    both = upscale_cli(photos, "-o", out, "--skip-existing", "--overwrite")
    assert both.exit_code == 1 and "exclude each other" in both.output


def test_cli_o_names_a_file_for_one_input_and_a_folder_otherwise(photos, tmp_path, rgb):
    single = upscale_cli(photos / "a.png", "-o", tmp_path / "big.png")
    assert single.exit_code == 0, single.output
    assert (tmp_path / "big.png").is_file() and read_image(tmp_path / "big.png").shape[0] == rgb.shape[0] * SCALE
    assert f"written to {tmp_path / 'big.png'}" in single.output
    several = upscale_cli(photos / "a.png", photos / "b.png", "-o", tmp_path / "many.png")
    assert several.exit_code == 1
    assert "names a file, but several inputs or a folder were given (2 image(s)): -o must be a folder" in several.output
    assert not (tmp_path / "many.png").exists()
    folder = upscale_cli(photos / "a.png", "-o", f"{tmp_path / 'as-folder.png'}/")
    assert folder.exit_code == 0 and (tmp_path / "as-folder.png" / "a.png").is_file()
    clash = upscale_cli(photos / "a.png", "-o", tmp_path / "c.jpg", "-f", "png")
    assert clash.exit_code == 1 and "is not a .png file" in clash.output


def test_cli_suffix_and_format(photos, rgb):
    result = upscale_cli(photos, "-o", photos, "--suffix", "_x4", "-f", "jpg")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in photos.iterdir()) == ["a.png", "a_x4.jpg", "b.png", "b_x4.jpg"]
    assert "b_x4.jpg: written without its alpha channel (JPEG has none)" in result.output
    assert read_image(photos / "b_x4.jpg").shape == (rgb.shape[0] * SCALE, rgb.shape[1] * SCALE, 3)
    with Image.open(photos / "a_x4.jpg") as jpeg:
        assert jpeg.format == "JPEG"
    webp = upscale_cli(photos / "b.png", "-o", photos / "b.webp")
    assert webp.exit_code == 0, webp.output
    with Image.open(photos / "b.webp") as image:
        assert image.format == "WEBP" and image.mode == "RGBA"


@pytest.mark.parametrize(
    "value,match",
    [
        (np.nan, "NaN or infinite values"),
        (np.inf, "NaN or infinite values"),
        (200.0, r"must lie in \[0, 1\], these span \[0, 200\]; it looks like 0-255 data: divide by 255"),
        (-0.5, r"must lie in \[0, 1\], these span \[-0.5, 1\]"),
    ],
)
def test_float_pixels_outside_the_unit_range_are_refused(upscaler, rgb, value, match):
    image = rgb.astype(np.float32) / 255
    image[3, 5, 1] = value
    image[0, 0, 0], image[0, 1, 0] = 1.0, 0.0  # the range is then [0, 1] plus the value
    with pytest.raises(ImageValueError, match=match):
        upscaler.upscale(image)
    with pytest.raises(ImageValueError, match=match):
        upscaler.upscale_batch(np.ascontiguousarray(image.transpose(2, 0, 1)[None]))


def test_default_tiles_come_from_the_memory_budget(model):
    upscaler = Upscaler(TorchRunner(model))
    assert upscaler.tile_for(64, 96) is None  # small: one exact whole-image pass
    tile = upscaler.tile_for(3000, 4000)  # a 12 MP photo
    assert tile is not None and tile[0] == tile[1] >= MIN_AUTO_TILE and tile[0] % 16 == 0
    assert working_memory(upscaler.runner, tile, 3000, 4000) <= upscaler.memory_budget
    assert working_memory(upscaler.runner, (tile[0] + 16, tile[1] + 16), 3000, 4000) > upscaler.memory_budget
    assert Upscaler(TorchRunner(model), tile=0).tile_for(3000, 4000) is None  # --tile 0: whole images


@pytest.mark.parametrize("layout", ["gray", "rgb", "rgba"])
def test_budget_tiling_reports_each_tile_and_matches_the_whole_image(rgb, layout):
    """Bicubic is local (radius 2 <= overlap // 4), so tiles chosen from a small budget must reproduce the whole
    image; gray and RGBA go through the same tiles."""
    image = np.tile(rgb, (8, 6, 1))  # 192 x 192
    image = {"gray": image[:, :, 0], "rgb": image, "rgba": np.dstack([image, image[:, :, 2]])}[layout]
    calls = []
    tiled = Upscaler.bicubic(SCALE, memory_budget=24 * 2**20).upscale(image, on_tile=lambda *done: calls.append(done))
    whole = Upscaler.bicubic(SCALE, tile=0).upscale(image)
    assert len(calls) > 1 and calls == [(i + 1, calls[0][1]) for i in range(calls[0][1])]
    assert np.abs(tiled.astype(int) - whole).max() <= 1


def test_output_is_assembled_without_float_copies_of_the_whole_image(rgb):
    """NumPy's allocations (tracemalloc sees them) stay near the uint8 result: no float32 output (4x its size)."""
    image = np.tile(rgb, (40, 3, 1))  # 960 x 96 -> 3840 x 384 x 3 = 4.4 MB as uint8, 17.7 MB as float32
    upscaler = Upscaler.bicubic(SCALE, memory_budget=8 * 2**20)
    tracemalloc.start()
    try:
        result = upscaler.upscale(image)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * result.nbytes, f"peak {peak / 1e6:.1f} MB for a {result.nbytes / 1e6:.1f} MB result"


def test_onnx_model_with_float16_input_runs(tmp_path, rgb):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("lr", TensorProto.FLOAT16, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("sr", TensorProto.FLOAT16, [1, 3, "H", "W"])
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, SCALE, SCALE])
    resize = helper.make_node("Resize", ["lr", "", "scales"], ["sr"], mode="nearest")
    graph = helper.make_graph([resize], "fp16_io", [x], [y], [scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    helper.set_model_props(model, {"gldfn.scale": str(SCALE)})
    onnx.save(model, tmp_path / "fp16_io.onnx")
    out = Upscaler.from_onnx(tmp_path / "fp16_io.onnx").upscale(rgb)
    np.testing.assert_array_equal(out, np.repeat(np.repeat(rgb, SCALE, axis=0), SCALE, axis=1))


def test_a_runner_returning_nan_is_an_error_not_a_nan_image(model, rgb):
    broken = GLDFN(model.config).eval()
    broken.load_state_dict(model.state_dict())
    with torch.no_grad():
        next(broken.parameters()).fill_(float("nan"))
    with pytest.raises(Exception, match="returned NaN or infinite values"):
        Upscaler(TorchRunner(broken)).upscale(rgb)


def test_cli_batch_survives_any_one_file(tmp_path, rgb):
    """Every kind of bad file is one line naming it and the reason; the files after it are still upscaled."""
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(rgb).save(folder / "a_good.png")
    png_claiming(folder / "b_bomb.png", 100_000, 100_000, 8)
    png_claiming(folder / "c_deep_bomb.png", 20_000, 20_000, 16)
    Image.fromarray(np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8)).save(folder / "d_float.tif")
    frames = [Image.fromarray(rgb), Image.fromarray(rgb[::-1].copy())]
    frames[0].save(folder / "e_pages.tif", save_all=True, append_images=frames[1:])
    Image.fromarray(rgb).save(folder / "f_taken.png")
    Image.fromarray(np.tile(rgb, (2, 2, 1))).save(folder / "g_large.png")  # 48 x 64 = 3072 pixels
    Image.fromarray(rgb).save(folder / "z_last.png")
    out = tmp_path / "out"
    (out / "f_taken.png").mkdir(parents=True)
    arguments = ["upscale", str(folder), "-o", str(out), "--backend", "bicubic", "--max-pixels", "3000"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 1, result.output
    text = result.output
    assert "b_bomb.png: 100000x100000 is 10000.0 megapixels, more than the limit of 0.003" in text
    assert "c_deep_bomb.png: 20000x20000 is 400.0 megapixels" in text
    assert "d_float.tif: 32-bit float samples are not supported" in text
    assert "e_pages.tif: the file holds 2 frames" in text
    assert "f_taken.png: cannot write " in text and "f_taken.png: a folder of that name is in the way" in text
    assert "g_large.png: 64x48 is 0.003072 megapixels, more than the limit of 0.003; raise it with --max-pixels" in text
    assert "Traceback" not in text and text.count("error: ") == 6
    assert "2 of 8 images written" in text and "6 failed" in text
    assert sorted(p.name for p in out.iterdir()) == ["a_good.png", "f_taken.png", "z_last.png"]


def test_cli_full_disk_is_one_line_per_file(tmp_path, rgb):
    """A real ENOSPC: the output folder is a 32 KiB tmpfs (needs permission to mount one)."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command to make a small full file system")
    full = tmp_path / "full"
    full.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(full)]
    mounted = subprocess.run(mount, capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({mounted.stderr.strip()}); needs root")
    try:
        folder = tmp_path / "in"
        folder.mkdir()
        noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)  # a ~190 KB PNG at x4
        for name in ("one.png", "two.png"):
            Image.fromarray(noise).save(folder / name)
        result = CliRunner().invoke(app, ["upscale", str(folder), "-o", str(full), "--backend", "bicubic"])
        assert result.exit_code == 1, result.output
        assert f"one.png: no space left on the device of {full}; free space or write elsewhere" in result.output
        assert "two.png: no space left on the device" in result.output
        assert "0 of 2 images written" in result.output and "Traceback" not in result.output
        assert list(full.iterdir()) == []  # the partial temporary files are gone
    finally:
        subprocess.run(["umount", str(full)], check=True)


@pytest.mark.parametrize("allocate", [lambda: torch.empty(2**60, dtype=torch.uint8), lambda: np.empty(2**62, np.uint8)])
def test_allocation_failures_are_reported_as_memory(allocate):
    """The allocators' own errors (torch: RuntimeError, NumPy: MemoryError) become one line about memory."""
    with pytest.raises(Exception) as caught:
        allocate()
    text = describe_failure(Path("big.png"), caught.value)
    assert text.startswith("big.png: not enough memory (") and text.endswith("; free memory, or pass a smaller --tile")
