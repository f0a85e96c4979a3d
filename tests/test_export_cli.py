"""``gldfn-export`` and bad input: clear errors and no file (not even a temporary one) left behind."""
import os

import onnx
import pytest
import torch
from conftest import plain_text
from typer.testing import CliRunner

from gldfn_export.cli import app
from gldfn_export.exporter import ExportError, export_gldfn
from gldfn_model.common.atomic import OutputPathError
from gldfn_model.common.hashing import file_sha256
from gldfn_model.network.checkpoint import save_checkpoint
from gldfn_model.network.config import get_config
from gldfn_model.network.gldfn import GLDFN
from gldfn_model.ops import onnx_format as metadata

runner = CliRunner()


def run_cli(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny_x2.pt"
    save_checkpoint(path, GLDFN(get_config("tiny", 2)), "tiny")
    return path


def test_cli_exports_a_checkpoint_with_its_sha256(tiny_checkpoint, tmp_path):
    out = tmp_path / "model.onnx"
    result = run_cli("--scale", "2", "--checkpoint", str(tiny_checkpoint), "-o", str(out))
    assert result.exit_code == 0, result.output
    props = metadata.read_metadata(onnx.load(out))
    assert props[metadata.CHECKPOINT_SHA256] == file_sha256(tiny_checkpoint)
    assert props[metadata.CONFIG] == "tiny" and props[metadata.SCALE] == "2"
    for line in ("nodes", "params", "MACs", "MiB", "parity", "max abs"):
        assert line in result.output
    assert os.listdir(tmp_path) == ["model.onnx"]


def test_cli_refuses_without_weights_unless_random(tmp_path):
    out = tmp_path / "x.onnx"
    # No weights are shipped for the small config.
    result = run_cli("--scale", "2", "--config", "small", "-o", str(out))
    assert result.exit_code == 1
    assert "--random-weights" in result.output and "--checkpoint" in result.output
    assert not out.exists()
    result = run_cli("--scale", "2", "--config", "small", "--random-weights", "--no-verify", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "not checked" in result.output and out.is_file()


@pytest.mark.parametrize(
    ("args", "message", "status"),
    [
        (["--scale", "4"], "'--scale': 4 does not match checkpoint {checkpoint}, which says x2", 2),
        (["--scale", "2", "--config", "small"], "'tiny', not 'small'", 1),
        (["--scale", "2", "--random-weights"], "exclude each other", 1),
        (["--scale", "2", "--opset", "17"], "opset 17 is too old", 1),
        (["--scale", "2", "--batch", "0"], "batch must be >= 1", 1),
    ],
)
def test_cli_rejects_mismatches(tiny_checkpoint, tmp_path, args, message, status):
    out = tmp_path / "x.onnx"
    result = run_cli(*args, "--checkpoint", str(tiny_checkpoint), "-o", str(out))
    assert result.exit_code == status
    assert message.format(checkpoint=tiny_checkpoint) in plain_text(result.output)
    assert os.listdir(tmp_path) == []


def test_cli_missing_and_corrupt_checkpoints(tmp_path):
    out = tmp_path / "x.onnx"
    missing = tmp_path / "nope.pt"
    result = run_cli("--scale", "4", "--checkpoint", str(missing), "-o", str(out))
    assert result.exit_code == 1 and "does not exist" in result.output
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x80\x02 not a checkpoint" * 10)
    result = run_cli("--scale", "4", "--checkpoint", str(corrupt), "-o", str(out))
    assert result.exit_code == 1 and "cannot be read" in result.output
    assert not out.exists()


def test_a_checkpoint_that_would_run_code_is_refused_unrun(tmp_path):
    from conftest import write_code_running_checkpoint

    marker = tmp_path / "ran"
    crafted = write_code_running_checkpoint(tmp_path / "crafted.pt", marker)
    result = run_cli("--scale", "4", "--checkpoint", str(crafted), "-o", str(tmp_path / "x.onnx"))
    assert result.exit_code == 1
    assert "holds objects other than tensors and plain data" in result.output and "posix.mkdir" in result.output
    assert not marker.exists() and not (tmp_path / "x.onnx").exists()


def test_checkpoint_that_does_not_fit_its_config(tmp_path):
    payload = {"format": 1, "config": get_config("tiny", 4).to_dict(), "config_name": "tiny", "state_dict": {"head.weight": torch.zeros(1)}}
    bad = tmp_path / "bad.pt"
    torch.save(payload, bad)
    result = run_cli("--scale", "4", "--checkpoint", str(bad), "-o", str(tmp_path / "x.onnx"))
    assert result.exit_code == 1 and "does not fit" in result.output
    assert sorted(os.listdir(tmp_path)) == ["bad.pt"]


def test_unwritable_output_fails_before_exporting(tmp_path):
    model = GLDFN(get_config("tiny", 4))
    with pytest.raises(OutputPathError, match="does not exist"):
        export_gldfn(model, tmp_path / "missing" / "x.onnx")
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_cli("--scale", "4", "--config", "tiny", "--random-weights", "-o", str(blocker / "x.onnx"))
    assert result.exit_code == 1 and "cannot write" in result.output


def test_failure_inside_export_leaves_no_file(tmp_path):
    model = GLDFN(get_config("tiny", 4))
    ldf = next(m for m in model.modules() if type(m).__name__ == "LocalDynamicFilter")
    ldf.dilation = 2  # one layer unlike the others: one function body cannot serve both
    with pytest.raises(ExportError, match="cannot share one function body"):
        export_gldfn(model, tmp_path / "x.onnx", verify=False)
    assert os.listdir(tmp_path) == []


def test_unsupported_opset_precision_target(tmp_path):
    model = GLDFN(get_config("tiny", 4))
    for kwargs, message in [({"opset": 99}, "newer"), ({"precision": "int8"}, "precision"), ({"target": "tflite"}, "target")]:
        with pytest.raises(ExportError, match=message):
            export_gldfn(model, tmp_path / "x.onnx", **kwargs)
    assert os.listdir(tmp_path) == []
