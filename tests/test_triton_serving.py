"""Triton serving on this CPU: `gldfn-trt triton` repositories (cpu served for real by nvidia-pytriton's tritonserver on
127.0.0.1; gpu configs parsed with tritonclient's model_config_pb2), `gldfn upscale --triton` writing the images the
in-process ONNX Runtime path writes, the image model tiling on the server, server errors as one line, 1 and 2
instances, and `gldfn-trt serve` leaving no server behind. Every server is stopped by the test that started it."""
from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import plain_text, write_smooth_images
from typer.testing import CliRunner

from gldfn_model.cli import app as gldfn_app
from gldfn_model.data.image_io import read_image
from gldfn_model.inference.runner import RunnerError
from gldfn_runtime.cli.main import app as trt_app

tritonclient_http = pytest.importorskip(
    "tritonclient.http", reason="tritonclient is not installed: pip install 'gldfn-trt[serve]'")
if importlib.util.find_spec("pytriton") is None:
    pytest.skip("nvidia-pytriton (the bundled tritonserver) is not installed: pip install 'gldfn-trt[serve]'",
                allow_module_level=True)

from gldfn_runtime import Upscaler  # noqa: E402
from gldfn_runtime.serve.model_config import ModelConfigError, parse_config  # noqa: E402
from gldfn_runtime.serve.repository import RepositoryOptions, write_repository  # noqa: E402
from gldfn_runtime.serve.server import TritonServer  # noqa: E402

REQUESTS = 8  # requests of the bounded load loop


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stubs_of(server: TritonServer) -> int:
    """The server's Python stubs (one per Python model instance)."""
    result = subprocess.run(["ps", "-o", "comm=", "--ppid", str(server.process.pid)], capture_output=True, text=True)
    return sum(1 for line in result.stdout.split() if line.startswith("triton_python"))


@contextlib.contextmanager
def serving(repository: Path):
    http, grpc = free_ports(2)
    server = TritonServer(repository, http_port=http, grpc_port=grpc)
    server.start(timeout=120)
    pgid = server.process.pid
    try:
        yield server
    finally:
        server.stop()
        deadline = time.monotonic() + 10
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not group_alive(pgid), "the server's process group outlived stop()"


def image_request(server: TritonServer, image: np.ndarray, model: str = "gldfn_image") -> np.ndarray:
    client = tritonclient_http.InferenceServerClient(server.http_url)
    try:
        tensor = tritonclient_http.InferInput("image", list(image.shape), "UINT8")
        tensor.set_data_from_numpy(image)
        return client.infer(model, [tensor]).as_numpy("upscaled")
    finally:
        client.close()


@pytest.fixture(scope="module")
def onnx_model(tiny_onnx) -> Path:
    """GLDFN tiny x4 with seeded random weights (the session's export)."""
    return tiny_onnx["fp32"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = write_smooth_images(tmp_path_factory.mktemp("photos"), 2)
    big = (np.random.default_rng(5).random((150, 140, 3)) * 255).astype(np.uint8)  # several 64-pixel tiles
    from PIL import Image

    Image.fromarray(big).save(folder / "big.png")
    return folder


@pytest.fixture(scope="module")
def direct(photos, onnx_model, tmp_path_factory) -> Path:
    """The images `gldfn upscale --onnx` writes in this process."""
    out = tmp_path_factory.mktemp("direct")
    result = CliRunner().invoke(gldfn_app, ["upscale", str(photos), "-o", str(out), "--onnx", str(onnx_model), "-t", "64"])
    assert result.exit_code == 0, result.output
    return out


def assert_same_folders(out: Path, expected: Path) -> None:
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in expected.iterdir())
    for path in out.iterdir():
        np.testing.assert_array_equal(read_image(path), read_image(expected / path.name))


# --- a real server, in the default suite ------------------------------------------------------------------------

def test_the_served_cpu_repository_writes_what_onnx_runtime_writes(photos, direct, onnx_model, tmp_path):
    repository = tmp_path / "repo"
    written = CliRunner().invoke(trt_app, ["triton", str(onnx_model), "-o", str(repository), "--target", "cpu"])
    assert written.exit_code == 0, written.output
    assert "models gldfn, gldfn_image (cpu, 1 instance(s))" in written.output
    out = tmp_path / "out"
    with serving(repository) as server:
        result = CliRunner().invoke(gldfn_app, ["upscale", str(photos), "-o", str(out), "--triton", server.http_url,
                                                "-t", "64"])
        assert result.exit_code == 0, result.output
        assert_same_folders(out, direct)  # tiles from 3 requests in flight, blended here

        image = read_image(photos / "big.png")  # the image model tiles on the server
        local = Upscaler.from_onnx(onnx_model).upscale(image)
        np.testing.assert_array_equal(image_request(server, image), local)

        not_a_tile_model = CliRunner().invoke(gldfn_app, ["upscale", str(photos), "-o", str(tmp_path / "x"), "--triton",
                                                          server.http_url, "--triton-model", "gldfn_image"])
        assert not_a_tile_model.exit_code == 1
        assert plain_text(not_a_tile_model.output).startswith(
            f"error: model 'gldfn_image' on Triton at {server.http_url} takes TYPE_UINT8")
        with pytest.raises(tritonclient_http.InferenceServerException, match="1x1 pixels; at least 2x2 is needed"):
            image_request(server, np.zeros((1, 1, 3), np.uint8))  # the server's own reason comes back
        runner = Upscaler.from_triton(server.http_url).runner
        with pytest.raises(RunnerError, match=rf"Triton at {server.http_url}, model 'gldfn': .*unexpected shape"):
            runner.infer(np.zeros((2, 3, 8, 8), np.float32))  # the model takes batch 1
    gone = CliRunner().invoke(gldfn_app, ["upscale", str(photos), "-o", str(tmp_path / "y"), "--triton", server.http_url])
    assert gone.exit_code == 1
    assert plain_text(gone.output).startswith(f"error: cannot reach Triton at {server.http_url} (")
    assert not (tmp_path / "y").exists()


def test_the_gpu_repository_config_parses(onnx_model, tmp_path):
    from tritonclient.grpc import model_config_pb2

    result = write_repository(onnx_model, tmp_path / "gpu", RepositoryOptions(
        target="gpu", instances=2, use_plugin=False, min_size=(16, 16), max_size=(512, 512)))
    from google.protobuf import text_format

    config = text_format.Parse((tmp_path / "gpu" / "gldfn" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 0
    assert [list(config.input[0].dims), list(config.output[0].dims)] == [[1, 3, -1, -1], [1, 3, -1, -1]]
    assert config.input[0].data_type == model_config_pb2.TYPE_FP32
    assert (config.instance_group[0].count, config.instance_group[0].kind) == (2, model_config_pb2.ModelInstanceGroup.KIND_GPU)
    assert config.parameters["gldfn.min_size"].string_value == "16x16"
    assert config.parameters["gldfn.max_size"].string_value == "512x512"
    assert config.parameters["gldfn.scale"].string_value == "4"
    image = text_format.Parse((tmp_path / "gpu" / "gldfn_image" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert image.backend == "python" and image.parameters["gldfn.model"].string_value == "gldfn"
    if result.notes:  # no full TensorRT here: the plan is built where it is served
        build = (tmp_path / "gpu" / "build_plan.sh").read_text()
        assert "--backend tensorrt" in build and "--min 16x16" in build and "--no-plugin" in build
        assert '-o "$REPO/gldfn/1/model.plan"' in build
    assert "tritonserver" in (tmp_path / "gpu" / "serve.sh").read_text()


def test_a_misspelt_field_is_refused():
    with pytest.raises(ModelConfigError, match="max_batch_sizes"):
        parse_config('name: "gldfn"\nmax_batch_sizes: 0\n')


def test_gpu_repository_routes_for_the_plugin(onnx_model, plugin_library, tmp_path):
    write_repository(onnx_model, tmp_path / "registered",
                                  RepositoryOptions(target="gpu", plugin=plugin_library))
    serve = (tmp_path / "registered" / "serve.sh").read_text()
    assert f'"--backend-config=tensorrt,plugins=$REPO/plugins/{plugin_library.name}"' in serve
    assert (tmp_path / "registered" / "plugins" / plugin_library.name).read_bytes() == plugin_library.read_bytes()
    embedded = write_repository(onnx_model, tmp_path / "embedded",
                                RepositoryOptions(target="gpu", plugin=plugin_library, embed_plugin=True))
    assert "--backend-config=tensorrt,version-compatible=true" in embedded.serve_command
    assert "plugins=" not in embedded.serve_command
    if embedded.notes:
        assert "--embed-plugin" in (tmp_path / "embedded" / "build_plan.sh").read_text()


def test_a_repository_is_written_whole_or_not_at_all(onnx_model, tmp_path):
    out = tmp_path / "repo"
    out.mkdir()
    result = CliRunner().invoke(trt_app, ["triton", str(onnx_model), "-o", str(out)])
    assert result.exit_code == 1 and f"error: {out} exists" in plain_text(result.output)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    result = CliRunner().invoke(trt_app, ["triton", str(broken), "-o", str(tmp_path / "new")])
    assert result.exit_code == 1 and "is not a readable ONNX file" in plain_text(result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.onnx", "repo"]  # no half-written repository


# --- longer runs (run by .ci/run with -m slow) -----------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("instances", [1, 2])
def test_one_and_two_instances_answer_concurrent_requests_alike(onnx_model, photos, direct, instances, tmp_path):
    repository = tmp_path / "repo"
    write_repository(onnx_model, repository, RepositoryOptions(instances=instances, tile=64))
    image = read_image(photos / "big.png")  # 9 tiles of 64, sent by BLS `instances` at a time
    local = Upscaler.from_onnx(onnx_model, tile=64).upscale(image)
    with serving(repository) as server:
        assert stubs_of(server) == 2 * instances  # the model's and the image model's instances
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: image_request(server, image), range(REQUESTS)))
        for answer in answers:
            np.testing.assert_array_equal(answer, local)
        out = tmp_path / "out"
        grpc_url = f"grpc://127.0.0.1:{server.grpc_port}"
        result = CliRunner().invoke(gldfn_app, ["upscale", str(photos), "-o", str(out), "--triton", grpc_url, "-t", "64"])
        assert result.exit_code == 0, result.output
        assert_same_folders(out, direct)


SERVE_SCRIPT = """
import sys
from gldfn_runtime.cli.main import app
sys.argv = ["gldfn-trt", "serve", *sys.argv[1:]]
app()
"""


def _start_serve_command(repository: Path) -> tuple[subprocess.Popen, str]:
    http, grpc = free_ports(2)
    process = subprocess.Popen([sys.executable, "-c", SERVE_SCRIPT, str(repository), "--http-port", str(http),
                                "--grpc-port", str(grpc)], stderr=subprocess.PIPE, text=True)
    line = process.stderr.readline()  # "serving ..." once ready, or the error
    assert line.startswith("serving"), line + process.stderr.read()
    return process, f"127.0.0.1:{http}"


def _server_pids(parent: int) -> list[int]:
    result = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(parent)], capture_output=True, text=True)
    return [int(line.split()[0]) for line in result.stdout.splitlines() if "tritonserver" in line]


def _wait_gone(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() and "Z" not in _state(pid) for pid in pids):
            return True
        time.sleep(0.2)
    return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


@pytest.mark.slow
def test_serve_stops_on_sigint_and_never_outlives_its_parent(onnx_model, tmp_path):
    repository = tmp_path / "repo"
    write_repository(onnx_model, repository, RepositoryOptions())
    process, url = _start_serve_command(repository)
    servers = _server_pids(process.pid)
    assert len(servers) == 1
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert _wait_gone(servers, 5)

    process, url = _start_serve_command(repository)
    servers = _server_pids(process.pid)
    process.kill()  # no chance to clean up: the server must die with it
    process.wait(timeout=10)
    assert _wait_gone(servers, 10), "the server outlived its killed parent"
