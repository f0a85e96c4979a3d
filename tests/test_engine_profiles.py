"""Engine profiles from the sizes asked for (issue 22 item 5) and the host memory a TensorRT run needs (item 7),
without a GPU: `gldfn-trt bench --sizes 360x540` gets an engine that takes 360x540, `gldfn-trt run` one that takes
its images whole, and the tiler does not cut a 360x540 image for a runner whose data stays on the GPU."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from PIL import Image

from gldfn_model.data.image_io import image_size, read_image
from gldfn_model.inference.bicubic_runner import BicubicRunner
from gldfn_runtime.bench.harness import BenchmarkError, check_size
from gldfn_runtime.engine.build import (
    DEFAULT_PROFILE,
    LARGEST_IMAGE_PROFILE,
    BuildOptions,
    cached_engine,
    profile_for_sizes,
)
from gldfn_runtime.runners.open import profile_for_images
from gldfn_runtime.runners.trt_runner import host_bytes_per_lr_pixel
from gldfn_runtime.tensorrt.compat import TensorRTUnavailable, load_tensorrt
from gldfn_runtime.upscale.upscaler import Upscaler

MAIN_CASE = (360, 540)  # the paper model's LR size the kernel targets (plugins/tests/gpu_check.py)


def _holds(profile: dict, size: tuple[int, int]) -> bool:
    return all(profile["min"][a] <= size[a] <= profile["max"][a] for a in (0, 1))


def test_a_profile_from_sizes_holds_them_and_optimizes_for_the_one_named():
    profile = profile_for_sizes([MAIN_CASE, (180, 270)], opt=MAIN_CASE)
    assert _holds(profile, MAIN_CASE) and _holds(profile, (180, 270)) and profile["opt"] == MAIN_CASE
    assert not _holds(DEFAULT_PROFILE, MAIN_CASE)  # what made `gldfn-trt bench --sizes 360x540` raise
    assert all(side % 64 == 0 for side in profile["max"])  # nearby sizes share an engine
    assert profile_for_sizes([(100, 120)]) == {**DEFAULT_PROFILE, "opt": (100, 120)}
    assert profile_for_sizes([(8, 9)])["min"] == (8, 9)
    capped = profile_for_sizes([(3000, 4000), (300, 400), (300, 400)], cap=LARGEST_IMAGE_PROFILE)
    assert capped["max"] == LARGEST_IMAGE_PROFILE and capped["opt"] == (300, 400)


def test_image_sizes_come_from_headers_with_the_exif_rotation(tmp_path):
    plain, rotated, broken = tmp_path / "plain.png", tmp_path / "rotated.jpg", tmp_path / "broken.png"
    Image.new("RGB", (540, 360)).save(plain)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    Image.new("RGB", (540, 360)).save(rotated, exif=exif)
    broken.write_bytes(b"not an image")
    assert image_size(plain) == (360, 540) == read_image(plain).shape[:2]
    assert image_size(rotated) == (540, 360) == read_image(rotated).shape[:2]
    assert image_size(broken) is None
    profile = profile_for_images([plain, rotated, broken])
    assert _holds(profile, (360, 540)) and _holds(profile, (540, 360))


def test_a_tensorrt_runner_s_host_budget_keeps_the_main_case_whole():
    """The data of an engine run stays on the GPU: a 360x540 image is one pass, not four tiles, within the engine's
    profile; with the CPU runners' figure (the paper model) it would be tiled."""
    profile = profile_for_images([])  # the default; then the one run makes for a 360x540 image
    for max_size in (profile["max"], profile_for_sizes([MAIN_CASE], cap=LARGEST_IMAGE_PROFILE)["max"]):
        runner = BicubicRunner(4)  # a real runner standing in for the engine's sizes and host figure
        runner.max_size = max_size
        runner.bytes_per_lr_pixel = host_bytes_per_lr_pixel(4)
        expected_whole = max_size[0] >= MAIN_CASE[0] and max_size[1] >= MAIN_CASE[1]
        assert (Upscaler(runner).tile_for(*MAIN_CASE) is None) == expected_whole
    gpu_like = BicubicRunner(4)
    gpu_like.bytes_per_lr_pixel = host_bytes_per_lr_pixel(4)
    cpu_like = BicubicRunner(4)
    cpu_like.bytes_per_lr_pixel = 75 * 64
    assert Upscaler(gpu_like).tile_for(720, 1280) is None and Upscaler(cpu_like).tile_for(720, 1280) is not None
    assert host_bytes_per_lr_pixel(4) == 2 * 3 * 4 * (1 + 16)


def test_the_engine_for_bench_sizes_takes_them(plugin_library, tiny_onnx, tmp_path):
    """Built on the CPU with TensorRT-RTX: the engine `gldfn-trt bench --sizes 360x540` opens takes 360x540."""
    try:
        load_tensorrt("tensorrt_rtx")
    except TensorRTUnavailable as error:
        pytest.skip(f"TensorRT-RTX is not installed (pip install 'gldfn-trt[rtx]'): {error}")
    profile = profile_for_sizes([MAIN_CASE], opt=MAIN_CASE)
    options = BuildOptions(plugin=plugin_library, backend="tensorrt-rtx", compute_capabilities=("SM86",),
                           min_size=profile["min"], opt_size=profile["opt"], max_size=profile["max"])
    sidecar = cached_engine(tiny_onnx["fp32"], options, cache_dir=tmp_path / "cache").sidecar
    engine_sizes = SimpleNamespace(name="tensorrt", min_size=sidecar.min_size, max_size=sidecar.max_size)
    check_size(engine_sizes, MAIN_CASE)  # raised with the default profile
    assert sidecar.profile["opt"] == list(MAIN_CASE)
    with pytest.raises(BenchmarkError, match="above the maximum"):
        check_size(SimpleNamespace(name="tensorrt", min_size=(16, 16), max_size=DEFAULT_PROFILE["max"]), MAIN_CASE)
