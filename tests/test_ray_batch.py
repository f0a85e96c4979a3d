"""`gldfn upscale IN_DIR -o OUT --ray` on a local Ray cluster of 2 CPUs and a fake GPU: the images `gldfn upscale`
writes in this process, a bad file reported in one line, --skip-existing finishing an interrupted job, a folder
named by a pyarrow.fs URI, GPUs handed to the actors, and a GPU request the cluster cannot meet refused. The cluster
tests are slow (a cluster starts in ~15 s here); .ci/run runs them."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from conftest import plain_text, write_smooth_images
from typer.testing import CliRunner

from gldfn_model.cli import app
from gldfn_model.data.image_io import read_image
from gldfn_runtime.batch.ray_job import actor_cpus

ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'gldfn-trt[ray]'")
pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install 'gldfn-trt[ray]'")


@pytest.fixture(scope="module")
def onnx_model(tiny_onnx) -> Path:
    """GLDFN tiny x4 with seeded random weights (the session's export)."""
    return tiny_onnx["fp32"]


@pytest.fixture(scope="module")
def cluster():
    """A local cluster of 2 CPUs and one GPU that is not there: Ray schedules by the count it is told."""
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = write_smooth_images(tmp_path_factory.mktemp("photos"), 3)
    (folder / "notes.png").write_text("not an image\n")
    return folder


@pytest.fixture(scope="module")
def expected(photos, onnx_model, tmp_path_factory):
    """What `gldfn upscale --onnx` writes in this process."""
    out = tmp_path_factory.mktemp("direct")
    result = CliRunner().invoke(app, ["upscale", str(photos), "-o", str(out), "--onnx", str(onnx_model)])
    assert result.exit_code == 1 and "3 of 4 images written" in result.output, result.output
    return {p.name: read_image(p) for p in out.iterdir()}


def upscale(*args: str):
    return CliRunner().invoke(app, ["upscale", *args])


def assert_same_images(out, expected):
    written = {p.name: read_image(p) for p in out.iterdir()}
    assert sorted(written) == sorted(expected)  # no temporary files left
    for name, image in written.items():
        np.testing.assert_array_equal(image, expected[name])


def test_the_cpu_share_leaves_a_cpu_to_the_reads():
    assert actor_cpus(2, 1) == 1.0 and actor_cpus(2, 2) == 0.5 and actor_cpus(16, 4) == 1.0 and actor_cpus(1, 2) == 0.0


@pytest.mark.slow  # a Ray cluster: run by .ci/run with -m slow
def test_ray_writes_what_upscale_writes_and_names_the_bad_file(cluster, photos, onnx_model, expected, tmp_path):
    out = tmp_path / "out"
    result = upscale(str(photos), "-o", str(out), "--onnx", str(onnx_model), "--ray", "--actors", "2")
    assert result.exit_code == 1, result.output
    text = plain_text(result.output)
    assert f"error: {photos / 'notes.png'}: not a readable image" in text
    assert f"3 of 4 images written to {out} on Ray (2 actor(s)); 1 failed" in text
    assert_same_images(out, expected)


@pytest.mark.slow  # a Ray cluster: run by .ci/run with -m slow
def test_skip_existing_finishes_an_interrupted_job(cluster, photos, onnx_model, expected, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("img0.png", "img2.png"):  # what a killed run had finished
        (out / name).write_bytes(b"")
    refused = upscale(str(photos), "-o", str(out), "--onnx", str(onnx_model), "--ray")
    assert refused.exit_code != 0 and "exist already" in plain_text(refused.output)
    (out / "img0.png").unlink()
    (out / "img2.png").unlink()
    (photos / "notes.png").rename(photos / "notes.txt")  # only images in the folder this time
    try:
        first = upscale(str(photos), "-o", str(out), "--onnx", str(onnx_model), "--ray", "--actors", "2")
        assert first.exit_code == 0, first.output
        (out / "img1.png").unlink()  # as if the job had been killed before writing it
        rerun = upscale(str(photos), "-o", str(out), "--onnx", str(onnx_model), "--ray", "--skip-existing")
    finally:
        (photos / "notes.txt").rename(photos / "notes.png")
    assert rerun.exit_code == 0, rerun.output
    assert "1 of 1 images written" in rerun.output and "2 already there, kept (--skip-existing)" in rerun.output
    assert_same_images(out, {k: v for k, v in expected.items()})


@pytest.mark.slow  # a Ray cluster: run by .ci/run with -m slow
def test_a_folder_named_by_a_uri(cluster, photos, onnx_model, expected, tmp_path):
    out = tmp_path / "out"
    result = upscale(photos.as_uri(), "-o", str(out), "--onnx", str(onnx_model), "--ray")
    assert result.exit_code == 1, result.output
    assert "3 of 4 images written" in result.output
    assert_same_images(out, expected)


@pytest.mark.slow  # a Ray cluster: run by .ci/run with -m slow
def test_actors_get_the_gpus_they_ask_for_and_no_more_than_the_cluster_has(cluster, photos, onnx_model, tmp_path):
    from gldfn_runtime.batch.ray_job import prepare_ray_batch, run_ray_job
    from gldfn_runtime.cli.upscale import Backend, build_upscaler

    batch = prepare_ray_batch(str(photos), tmp_path / "out")
    factory = functools.partial(build_upscaler, Backend.onnxruntime, None, onnx=onnx_model)  # importable on the actors
    result = run_ray_job(batch, factory, actors=1, gpus_per_actor=1)
    assert result.written == 3 and result.gpu_ids == {"0"}  # Ray handed the actor the (fake) GPU 0
    refused = upscale(str(photos), "-o", str(tmp_path / "other"), "--onnx", str(onnx_model), "--ray", "--actors", "2",
                      "--gpus-per-actor", "1")
    assert refused.exit_code == 1
    assert "needs 2 GPUs; the cluster has 1" in plain_text(refused.output)
    assert not (tmp_path / "other").exists() or not any((tmp_path / "other").iterdir())
