import json

import numpy as np
import pytest
import torch
from conftest import write_smooth_images

from gldfn_model.network.checkpoint import CheckpointError, load_checkpoint
from gldfn_model.training.trainer import TrainingDataError, TrainingRunError, TrainOptions, learning_rate, train


@pytest.fixture
def hr_folder(tmp_path):
    return write_smooth_images(tmp_path / "hr", 3, seed=0)


def options(hr_folder, out, **kw):
    base = dict(data=[str(hr_folder)], out=str(out), config="tiny", iters=4, batch=2, patch=8, ckpt_every=2,
                log_every=1, snapshot_every=1000, threads=1)
    base.update(kw)
    return TrainOptions(**base)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("degradation", [{}, {"setting": "mixed", "noise": (0.0, 15.0)}])
def test_resume_is_exact(hr_folder, tmp_path, degradation):
    straight = load_checkpoint(train(options(hr_folder, tmp_path / "a", **degradation)))

    def stop_after_3(record):
        if record["iteration"] == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(options(hr_folder, tmp_path / "b", **degradation), progress=stop_after_3)
    assert load_checkpoint(tmp_path / "b" / "last.pt").extra["iteration"] == 2
    resumed = load_checkpoint(train(options(hr_folder, tmp_path / "b", **degradation), resume=True))
    assert resumed.extra["iteration"] == 4
    for key, value in straight.state_dict.items():
        torch.testing.assert_close(resumed.state_dict[key], value, rtol=0, atol=0, msg=key)


def test_log_and_checkpoint_contents(hr_folder, tmp_path):
    last = load_checkpoint(train(options(hr_folder, tmp_path / "run", iters=3)))
    assert last.config_name == "tiny" and last.config.scale == 4
    assert "optimizer" in last.extra and last.extra["iteration"] == 3
    records = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [1, 2, 3]
    assert all(np.isfinite(r["loss"]) for r in records)


def test_refuses_to_overwrite_a_run_and_to_resume_nothing(hr_folder, tmp_path):
    train(options(hr_folder, tmp_path / "run", iters=1))
    with pytest.raises(TrainingRunError, match="--resume"):
        train(options(hr_folder, tmp_path / "run", iters=1))
    with pytest.raises(TrainingRunError, match="no checkpoint"):
        train(options(hr_folder, tmp_path / "empty", iters=1), resume=True)


def test_resume_refuses_a_checkpoint_that_would_run_code(hr_folder, tmp_path):
    from conftest import write_code_running_checkpoint

    (tmp_path / "run").mkdir()
    marker = tmp_path / "ran"
    write_code_running_checkpoint(tmp_path / "run" / "last.pt", marker)
    with pytest.raises(CheckpointError, match="holds objects other than tensors and plain data"):
        train(options(hr_folder, tmp_path / "run"), resume=True)
    assert not marker.exists()


def test_resume_passes_over_a_damaged_last_checkpoint(hr_folder, tmp_path, capsys):
    straight = load_checkpoint(train(options(hr_folder, tmp_path / "a")))
    run = tmp_path / "b"
    train(options(hr_folder, run))
    assert load_checkpoint(run / "last.prev.pt").extra["iteration"] == 2  # the one before last.pt (4)
    (run / "last.pt").write_bytes((run / "last.pt").read_bytes()[:1000])
    capsys.readouterr()
    resumed = load_checkpoint(train(options(hr_folder, run), resume=True))
    printed = capsys.readouterr().out
    assert "warning: " in printed and "last.pt: cannot be read as a checkpoint" in printed
    assert "resuming from the previous checkpoint" in printed and "last.prev.pt (iteration 2)" in printed
    for key, value in straight.state_dict.items():
        torch.testing.assert_close(resumed.state_dict[key], value, rtol=0, atol=0, msg=key)

    for name in ("last.pt", "last.prev.pt"):
        (run / name).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"no usable checkpoint: .*last\.pt: cannot be read.*last\.prev\.pt"):
        train(options(hr_folder, run), resume=True)
    (run / "last.pt").unlink()
    with pytest.raises(TrainingRunError, match="last.prev.pt"):
        train(options(hr_folder, run))


def test_small_images_are_named(hr_folder, tmp_path):
    with pytest.raises(TrainingDataError, match="img0.png.*--skip-small"):
        train(options(hr_folder, tmp_path / "run", patch=16))


def test_schedule_halves_at_the_scaled_period():
    assert learning_rate(0, 1000, 4e-4) == 4e-4
    assert learning_rate(399, 1000, 4e-4) == 4e-4
    assert learning_rate(400, 1000, 4e-4) == 2e-4
    assert learning_rate(800, 1000, 4e-4) == 1e-4


def test_data_parallel_under_torchrun_checkpoints_every_rank_and_resumes(hr_folder, tmp_path):
    """Two CPU processes (Gloo) train one model; the checkpoint keeps each rank's RNG state for the resume."""
    import shutil
    import socket
    import subprocess
    import sys

    gldfn = shutil.which("gldfn")
    if gldfn is None:
        pytest.skip("the gldfn command is not installed (pip install -e .)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "ddp"

    def torchrun(iters, *extra):
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                   "--master-port", str(port), gldfn, "train", "--data", str(hr_folder), "--out", str(out),
                   "--config", "tiny", "--iters", str(iters), "--batch", "2", "--patch", "8", "--ckpt-every", "2",
                   "--threads", "1", *extra]
        done = subprocess.run(command, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    torchrun(2)
    first = load_checkpoint(out / "last.pt")
    assert first.extra["iteration"] == 2
    assert isinstance(first.extra["rng"], list) and len(first.extra["rng"]) == 2
    assert first.extra["rng"][0]["numpy"] != first.extra["rng"][1]["numpy"]  # each rank samples its own crops
    torchrun(4, "--resume")
    assert load_checkpoint(out / "last.pt").extra["iteration"] == 4


def test_validation_logs_psnr_and_keeps_the_best(hr_folder, tmp_path):
    from gldfn_model.evaluation.evaluate import make_validator

    train(options(hr_folder, tmp_path / "run", iters=2, val_every=1), validate=make_validator(hr_folder, 4))
    records = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    psnrs = [r["val_psnr"] for r in records]
    assert len(psnrs) == 2 and all(10 < p < 60 for p in psnrs)
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best.extra["best_psnr"] == pytest.approx(max(psnrs))


@pytest.mark.parametrize("setting, noise", [("iso", None), ("aniso", (0, 15.0)), ("sv", None), ("mixed", (5.0, 30.0))])
def test_every_setting_trains(hr_folder, tmp_path, setting, noise):
    last = load_checkpoint(train(options(hr_folder, tmp_path / "run", iters=2, batch=3, setting=setting, noise=noise)))
    assert last.extra["iteration"] == 2
    assert last.extra["options"]["setting"] == setting and last.extra["options"]["noise"] == noise
    lines = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(np.isfinite(r["loss"]) and 0 < r["loss"] < 1 for r in lines)


def test_resume_keeps_the_runs_degradation(hr_folder, tmp_path):
    train(options(hr_folder, tmp_path / "run", iters=2, setting="aniso"))
    with pytest.raises(TrainingDataError, match="setting 'aniso'.*--setting"):
        train(options(hr_folder, tmp_path / "run", iters=4), resume=True)
    with pytest.raises(TrainingDataError, match="--noise"):
        train(options(hr_folder, tmp_path / "run", iters=4, setting="aniso", noise=(0.0, 15.0)), resume=True)
    resumed = train(options(hr_folder, tmp_path / "run", iters=4, setting="aniso"), resume=True)
    assert load_checkpoint(resumed).extra["iteration"] == 4


def test_runs_saved_before_the_setting_options_resume_as_setting_1(hr_folder, tmp_path):
    """Checkpoints written before --setting/--noise existed record no noise; they were Setting 1, noise-free."""
    import torch as _torch

    last = train(options(hr_folder, tmp_path / "run", iters=2))
    payload = _torch.load(last, weights_only=False)
    del payload["options"]["noise"]
    _torch.save(payload, last)
    assert load_checkpoint(train(options(hr_folder, tmp_path / "run", iters=3), resume=True)).extra["iteration"] == 3


def test_crop_too_small_for_the_settings_kernels_is_named(hr_folder, tmp_path):
    with pytest.raises(TrainingDataError, match="too small.*'aniso'.*--patch 4"):
        train(options(hr_folder, tmp_path / "run", patch=3, setting="aniso"))


def test_noise_option_parses_levels_and_ranges():
    import typer

    from gldfn_model.cli.train import parse_noise_range

    assert parse_noise_range("15") == (15.0, 15.0) and parse_noise_range("0-30") == (0.0, 30.0)
    assert parse_noise_range(None) is None
    for bad in ("30-0", "abc", "-5", "0-300"):
        with pytest.raises(typer.BadParameter):
            parse_noise_range(bad)


def test_prefetched_batches_and_their_generator_states_are_the_ones_made_in_line():
    """The background thread draws the same batches; the state a checkpoint saves is that of the next batch
    not yet taken, though the thread has already drawn further."""
    from gldfn_model.data.degradation import TrainingDegradation
    from gldfn_model.training.batches import PatchSampler, TrainingBatches

    images = [np.random.default_rng(i).integers(0, 256, size=(40, 48, 3), dtype=np.uint8) for i in range(3)]

    def stream(prefetch):
        rng, noise = np.random.default_rng(1), torch.Generator().manual_seed(2)
        return TrainingBatches(PatchSampler(images, 32, rng), TrainingDegradation("mixed", 4, (0.0, 0.1)), 3, rng,
                               noise, count=4, prefetch=prefetch)

    with stream(False) as inline, stream(True) as ahead:
        for _ in range(4):
            states = inline.generator_state(), ahead.generator_state()
            assert states[0]["numpy"] == states[1]["numpy"]
            assert torch.equal(states[0]["torch_noise"], states[1]["torch_noise"])
            (hr_a, lr_a), (hr_b, lr_b) = inline.next(), ahead.next()
            assert torch.equal(hr_a, hr_b) and torch.equal(lr_a, lr_b)
        with pytest.raises(RuntimeError, match="planned"):
            ahead.next()


def test_unknown_setting_is_refused_before_the_run_folder_is_made(hr_folder, tmp_path):
    with pytest.raises(ValueError, match="unknown training setting 'gaussian8'.*mixed"):
        train(options(hr_folder, tmp_path / "run", setting="gaussian8"))
    assert not (tmp_path / "run").exists()


def test_init_starts_from_the_given_weights_and_resume_ignores_it(hr_folder, tmp_path):
    first = train(options(hr_folder, tmp_path / "a", iters=2))
    start = load_checkpoint(first)
    tuned = train(options(hr_folder, tmp_path / "b", iters=1, lr=0.0, init=str(first)))  # lr 0: weights unchanged
    for key, value in start.state_dict.items():
        torch.testing.assert_close(load_checkpoint(tuned).state_dict[key], value, rtol=0, atol=0, msg=key)
    with pytest.raises(CheckpointError, match="scale x4, not x2"):
        train(options(hr_folder, tmp_path / "c", iters=1, scale=2, init=str(first)))
