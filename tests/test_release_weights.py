"""Shippable weights from a training run (gldfn_model.training.release): the network and its training summary only."""
import subprocess
import sys
import zipfile

import pytest
import torch
from conftest import write_smooth_images

from gldfn_model.common.atomic import OutputExistsError
from gldfn_model.common.hashing import file_sha256
from gldfn_model.network.checkpoint import CheckpointError, load_checkpoint
from gldfn_model.training.release import release_weights
from gldfn_model.training.trainer import TrainOptions, train


@pytest.fixture(scope="module")
def run_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    hr = write_smooth_images(root / "hr", 3, seed=0)
    options = TrainOptions(data=[str(hr)], out=str(root / "run"), config="tiny", iters=2, batch=2, patch=8,
                           setting="mixed", noise=(0.0, 15.0), ckpt_every=2, log_every=1, snapshot_every=1000,
                           threads=1)
    return train(options)


def test_weights_keep_the_network_and_a_summary_without_paths_or_optimizer(run_checkpoint, tmp_path):
    out = tmp_path / "shipped.pt"
    digest = release_weights(run_checkpoint, out, command="gldfn train ...")
    assert digest == file_sha256(out)
    released, trained = load_checkpoint(out), load_checkpoint(run_checkpoint)
    assert set(released.extra) == {"format", "iteration", "training"}
    for key, value in trained.state_dict.items():
        torch.testing.assert_close(released.state_dict[key], value, rtol=0, atol=0, msg=key)
    training = released.extra["training"]
    assert training["data"] == ["hr"] and training["iterations"] == 2 == released.extra["iteration"]
    assert training["setting"] == "mixed" and training["noise"] == [0.0, 15.0]
    assert training["command"] == "gldfn train ..."
    assert str(tmp_path) not in str(training) and str(run_checkpoint.parent) not in str(training)
    assert out.stat().st_size < run_checkpoint.stat().st_size / 2  # Adam's two moments are gone
    with zipfile.ZipFile(out) as archive:
        assert not any("optimizer" in name for name in archive.namelist())


def test_never_replaces_a_file_or_the_checkpoint_and_refuses_shipped_weights(run_checkpoint, tmp_path):
    out = tmp_path / "shipped.pt"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        release_weights(run_checkpoint, out, command="c")
    assert out.read_bytes() == b"keep me"
    before = file_sha256(run_checkpoint)
    with pytest.raises(OutputExistsError, match="checkpoint file this command reads"):
        release_weights(run_checkpoint, run_checkpoint, command="c", overwrite=True)
    assert file_sha256(run_checkpoint) == before
    release_weights(run_checkpoint, out, command="c", overwrite=True)
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        release_weights(out, tmp_path / "again.pt", command="c")
    assert not (tmp_path / "again.pt").exists()


def test_command_line_prints_the_digest_and_reports_errors_in_one_line(run_checkpoint, tmp_path):
    out = tmp_path / "cli.pt"
    command = [sys.executable, "-m", "gldfn_model.training.release", str(run_checkpoint), str(out), "--command", "c"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == file_sha256(out)
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and again.stderr.startswith("error: ") and "Traceback" not in again.stderr
