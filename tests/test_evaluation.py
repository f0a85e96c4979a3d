"""Evaluation: the published bicubic numbers under both conventions, `gldfn degrade` / `gldfn eval`, model
evaluation from a checkpoint, and clear errors for bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import plain_text, require_dataset
from typer.testing import CliRunner

from gldfn_model.cli import app
from gldfn_model.data.image_io import write_image
from gldfn_model.evaluation import evaluate as evaluation
from gldfn_model.evaluation.metrics import score
from gldfn_model.network.checkpoint import save_checkpoint, shipped_weights_path
from gldfn_model.network.config import get_config
from gldfn_model.network.gldfn import GLDFN

runner = CliRunner()


_need_dataset = require_dataset


@pytest.fixture(scope="module")
def set5_bicubic_x4():
    """Set5, Gaussian8 x4, MATLAB-style bicubic: each (SR, HR) pair, degraded once for both conventions."""
    folder = _need_dataset("Set5")
    restore = evaluation.bicubic_restore(4)
    return [(restore(case.lr), case.hr) for case in evaluation.degrade_cases(folder, "gaussian8", 4)]


def _mean_scores(pairs, convention):
    scores = [score(sr, hr, 4, convention) for sr, hr in pairs]
    return float(np.mean([s.psnr for s in scores])), float(np.mean([s.ssim for s in scores]))


def test_set5_x4_gaussian8_bicubic_dcls_convention(set5_bicubic_x4):
    assert len(set5_bicubic_x4) == 40
    psnr, ssim = _mean_scores(set5_bicubic_x4, "dcls")
    assert psnr == pytest.approx(25.87, abs=0.05)  # our measurement with the DAN/DCLS conventions (issue 3)
    assert 0.70 < ssim < 0.76


def test_set5_x4_gaussian8_bicubic_ikc_convention(set5_bicubic_x4):
    psnr, ssim = _mean_scores(set5_bicubic_x4, "ikc")
    assert psnr == pytest.approx(24.57, abs=0.05)  # IKC's published Bicubic row
    assert ssim == pytest.approx(0.7108, abs=0.002)


def _write_images(folder: Path, count: int = 2, size: tuple[int, int] = (50, 46), gray: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
        base = 128 + 80 * np.sin(xx / (3 + i)) * np.cos(yy / 5)
        image = np.clip(base[..., None] + rng.normal(0, 10, (*size, 3)), 0, 255).astype(np.uint8)
        write_image(folder / f"img{i}.png", image[..., 0] if gray else image)
    return folder


def test_degrade_folder_then_eval_matches_on_the_fly(tmp_path):
    hr = _write_images(tmp_path / "hr")
    result = runner.invoke(app, ["degrade", "--hr", str(hr), "--out", str(tmp_path / "lr"), "--setting", "gaussian8", "--scale", "2"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "lr" / "manifest.json").read_text())
    assert len(manifest["images"]) == 16 and manifest["scale"] == 2
    first = manifest["images"][0]
    assert first["hr_size"] == [50, 46] and first["degradation"]["sigma"] == pytest.approx(0.8)
    assert (tmp_path / "lr" / first["lr"]).is_file()
    from_folder = runner.invoke(app, ["eval", "--hr", str(hr), "--lr-dir", str(tmp_path / "lr"), "--scale", "2", "--json"])
    on_the_fly = runner.invoke(app, ["eval", "--hr", str(hr), "--scale", "2", "--json"])
    assert from_folder.exit_code == 0 and on_the_fly.exit_code == 0, from_folder.output + on_the_fly.output
    a, b = json.loads(from_folder.output), json.loads(on_the_fly.output)
    assert {"psnr", "ssim", "per_image"} <= set(a)
    assert len(a["per_image"]) == 16 and a["psnr"] == pytest.approx(b["psnr"], abs=1e-9)


@pytest.mark.parametrize("setting,extra", [("iso", ["--noise", "15"]), ("aniso", []), ("sv", ["--sv-noise", "high"])])
def test_random_settings_are_seeded(tmp_path, setting, extra):
    hr = _write_images(tmp_path / "hr", count=1, size=(64, 64))
    args = ["eval", "--hr", str(hr), "--scale", "4", "--setting", setting, "--json", *extra]
    first = json.loads(runner.invoke(app, [*args, "--seed", "3"]).output)
    again = json.loads(runner.invoke(app, [*args, "--seed", "3"]).output)
    other = json.loads(runner.invoke(app, [*args, "--seed", "4"]).output)
    assert first["psnr"] == again["psnr"] != other["psnr"]
    assert first["per_image"][0]["degradation"]["type"] in ("isotropic_gaussian", "anisotropic_gaussian", "spatially_varying")


def test_grayscale_hr_is_evaluated_as_rgb(tmp_path):
    hr = _write_images(tmp_path / "hr", count=1, gray=True)
    result = evaluation.evaluate(hr, "gaussian8", 2, evaluation.bicubic_restore(2))
    assert len(result.per_image) == 8 and 15 < result.psnr < 60


def test_set14_bridge_is_grayscale_and_evaluates(tmp_path):
    bridge = _need_dataset("Set14") / "bridge.png"
    (tmp_path / "hr").mkdir()
    (tmp_path / "hr" / "bridge.png").write_bytes(bridge.read_bytes())
    case = next(evaluation.degrade_cases(tmp_path / "hr", "gaussian8", 4))
    assert np.array_equal(case.hr[..., 0], case.hr[..., 2])  # a gray image, read as RGB
    sr = evaluation.bicubic_restore(4)(case.lr)
    assert 15 < score(sr, case.hr, 4).psnr < 40


def test_model_evaluation_from_a_checkpoint(tmp_path):
    hr = _write_images(tmp_path / "hr", count=1, size=(32, 32))
    model = GLDFN(get_config("tiny", 2)).eval()
    save_checkpoint(tmp_path / "tiny_x2.pt", model, "tiny")
    result = runner.invoke(app, ["eval", "--hr", str(hr), "--scale", "2", "--method", "model",
                                 "--checkpoint", str(tmp_path / "tiny_x2.pt"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["per_image"]) == 8 and np.isfinite(data["psnr"])
    validate = evaluation.make_validator(hr, 2)
    assert validate(model) == pytest.approx(data["psnr"], abs=1e-6)
    wrong_scale = runner.invoke(app, ["eval", "--hr", str(hr), "--scale", "4", "--method", "model",
                                      "--checkpoint", str(tmp_path / "tiny_x2.pt")])
    assert wrong_scale.exit_code == 2
    assert f"'--scale': 4 does not match checkpoint {tmp_path / 'tiny_x2.pt'}, which says x2" in plain_text(wrong_scale.output)


def test_model_without_checkpoint_or_shipped_weights_errors(tmp_path):
    assert shipped_weights_path("small", 3) is None, "pick a config/scale without shipped weights for this test"
    hr = _write_images(tmp_path / "hr", count=1)
    result = runner.invoke(app, ["eval", "--hr", str(hr), "--scale", "3", "--method", "model", "--config", "small"])
    assert result.exit_code == 1 and "no shipped weights" in result.output and "--checkpoint" in result.output


def test_bad_inputs_name_the_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["eval", "--hr", str(empty)])
    assert result.exit_code == 1 and "no image files" in result.output
    junk = _write_images(tmp_path / "junk", count=1)
    (junk / "broken.png").write_text("not an image")
    result = runner.invoke(app, ["eval", "--hr", str(junk)])
    assert result.exit_code == 1 and "broken.png" in result.output and "not a readable image" in result.output
    small = tmp_path / "small"
    small.mkdir()
    write_image(small / "tiny.png", np.zeros((12, 12, 3), np.uint8))
    result = runner.invoke(app, ["degrade", "--hr", str(small), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "tiny.png" in result.output and "smaller" in result.output
    assert not (tmp_path / "out" / "manifest.json").exists()
    result = runner.invoke(app, ["eval", "--hr", str(junk), "--lr-dir", str(tmp_path)])
    assert result.exit_code == 1 and "manifest.json" in result.output
    result = runner.invoke(app, ["eval", "--hr", str(junk), "--setting", "gaussian9"])
    assert result.exit_code == 2 and "gaussian9" in result.output


def test_manifest_of_another_scale_is_refused(tmp_path):
    hr = _write_images(tmp_path / "hr", count=1)
    assert runner.invoke(app, ["degrade", "--hr", str(hr), "--out", str(tmp_path / "lr"), "--scale", "2"]).exit_code == 0
    result = runner.invoke(app, ["eval", "--hr", str(hr), "--lr-dir", str(tmp_path / "lr"), "--scale", "4"])
    assert result.exit_code == 2
    assert f"'--scale': 4 does not match {tmp_path / 'lr'} (its manifest.json), which says x2" in plain_text(result.output)


def test_eval_takes_the_setting_of_a_degrade_folder(tmp_path):
    hr = _write_images(tmp_path / "hr", count=1, size=(64, 64))
    made = runner.invoke(app, ["degrade", "--hr", str(hr), "--out", str(tmp_path / "lr"), "--setting", "aniso", "--seed", "5"])
    assert made.exit_code == 0, made.output
    result = runner.invoke(app, ["eval", "--hr", str(hr), "--lr-dir", str(tmp_path / "lr"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["setting"] == "aniso" and data["per_image"][0]["degradation"]["type"] == "anisotropic_gaussian"
    (tmp_path / "lr" / "manifest.json").write_text("{broken")
    broken = runner.invoke(app, ["eval", "--hr", str(hr), "--lr-dir", str(tmp_path / "lr")])
    assert broken.exit_code == 1 and "not valid JSON" in broken.output
