"""The registry of shipped models (gldfn_model/weights/models.json), `gldfn models`, and `--model`."""
from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from conftest import plain_text
from PIL import Image
from typer.testing import CliRunner

from gldfn_model.cli import app
from gldfn_model.common.hashing import file_sha256
from gldfn_model.network import registry
from gldfn_model.network.checkpoint import load_checkpoint, shipped_weights_path

runner = CliRunner()


def test_every_manifest_entry_is_a_shipped_checkpoint_of_its_config_and_scale():
    models = registry.shipped_models()
    assert models and len({m.name for m in models}) == len(models)
    for model in models:
        path = model.checked_path()  # present and the file the manifest's SHA-256 names
        checkpoint = load_checkpoint(path, expect_scale=model.scale, expect_config=model.config)
        assert "optimizer" not in checkpoint.extra, f"{model.name}: ship weights without the training state"
        assert model.training["setting"] in ("iso", "aniso", "sv", "mixed") and model.use_for
        for row, figures in model.set5.items():
            assert 0 < figures["ssim"] < 1 and 15 < figures["psnr"] < 45, (model.name, row)


def test_defaults_are_the_setting_1_model_of_each_scale():
    for scale in (2, 3, 4):
        default = registry.default_model(scale)
        candidates = [m for m in registry.shipped_models() if m.scale == scale and m.config == "tiny"]
        if default is None:
            assert not any(m.is_setting_1 for m in candidates)
            assert shipped_weights_path("tiny", scale) is None
            continue
        assert default.is_setting_1 and default.scale == scale
        assert shipped_weights_path("tiny", scale) == default.path
    assert registry.default_model(4).name == "tiny-x4"
    def entry(setting, noise):
        return registry.ShippedModel("m", "tiny", 4, "f.pt", "0" * 64, {"setting": setting, "noise": noise}, "noisy")

    robust, noisy_iso = entry("mixed", [0, 30]), entry("iso", [0, 15])
    assert not robust.is_setting_1 and not noisy_iso.is_setting_1
    assert "Settings 1-3 mixed, noise sigma 0-30" == robust.describe_training()


def test_unknown_names_and_conflicting_scales_are_refused_with_the_known_names():
    with pytest.raises(registry.ModelRegistryError, match="no shipped model is named 'nope'.*tiny-x4.*gldfn models"):
        registry.find_model("nope")
    assert registry.scale_for("tiny-x4", None) == 4 and registry.scale_for("tiny-x4", 4) == 4
    assert registry.scale_for(None, None) == 4 and registry.scale_for(None, 3) == 3
    assert registry.scale_for(None, None, None) is None
    with pytest.raises(registry.ModelRegistryError, match="upscales x4, not x2.*--scale 4"):
        registry.scale_for("tiny-x4", 2)


def test_a_damaged_weights_file_is_named(tmp_path, monkeypatch):
    model = registry.find_model("tiny-x4")
    copy = tmp_path / model.file
    data = model.path.read_bytes()
    copy.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    monkeypatch.setattr(registry, "weights_dir", lambda: tmp_path)
    with pytest.raises(registry.ModelRegistryError, match="is not the file model 'tiny-x4' names"):
        model.checked_path()
    copy.unlink()
    with pytest.raises(registry.ModelRegistryError, match="missing from the installed package"):
        model.checked_path()


def test_gldfn_models_lists_them():
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["tiny-x4"]["scale"] == 4 and rows["tiny-x4"]["default"] is True
    assert rows["tiny-x4"]["params"] == 322_660 and rows["tiny-x4"]["training"]["setting"] == "iso"
    assert rows["tiny-x4"]["size_bytes"] == registry.find_model("tiny-x4").path.stat().st_size
    text = runner.invoke(app, ["models"])
    assert text.exit_code == 0 and "tiny-x4 *" in text.output
    assert "Setting 1 (isotropic Gaussian), no noise" in text.output


@pytest.fixture
def small_images(tmp_path):
    folder = tmp_path / "hr"
    folder.mkdir()
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, size=(12, 12, 3), dtype=np.uint8)
    Image.fromarray(small).resize((48, 48), Image.BICUBIC).save(folder / "a.png")
    return folder


def test_eval_with_model_is_eval_with_its_checkpoint(small_images):
    by_name = runner.invoke(app, ["eval", "--hr", str(small_images), "--model", "tiny-x4", "--json"])
    assert by_name.exit_code == 0, by_name.output
    by_file = runner.invoke(app, ["eval", "--hr", str(small_images), "--method", "model", "--json",
                                  "--checkpoint", str(registry.find_model("tiny-x4").path)])
    assert by_file.exit_code == 0, by_file.output
    assert json.loads(by_name.output)["method"] == "model" and json.loads(by_name.output)["scale"] == 4
    assert json.loads(by_name.output)["psnr"] == json.loads(by_file.output)["psnr"]
    refused = runner.invoke(app, ["eval", "--hr", str(small_images), "--model", "tiny-x4", "--scale", "2"])
    assert refused.exit_code == 2 and "'--scale': 2 does not match model 'tiny-x4', which says x4" in plain_text(refused.output)


def test_export_upscale_and_bench_resolve_the_named_model():
    from gldfn_export.cli import default_output
    from gldfn_model.network.checkpoint import CheckpointError
    from gldfn_model.network.model_source import resolve_model
    from gldfn_runtime.cli.upscale import Backend, build_upscaler, choose_backend

    shipped = registry.find_model("tiny-x4")
    source = resolve_model(4, None, None, False, model="tiny-x4")
    assert source.checkpoint_sha256 == file_sha256(shipped.path) and "shipped model tiny-x4" in source.description
    with pytest.raises(CheckpointError, match="excludes --checkpoint"):
        resolve_model(4, None, shipped.path, False, model="tiny-x4")
    with pytest.raises(CheckpointError, match="'tiny' x4, not 'small' x4"):
        resolve_model(4, "small", None, False, model="tiny-x4")
    assert str(default_output("tiny", 4, "fp32", "trt", "tiny-x4-robust")) == "gldfn_tiny_x4_robust_fp32.onnx"
    assert str(default_output("tiny", 4, "fp16", "trt")) == "gldfn_tiny_x4_fp16.onnx"
    backend = choose_backend(Backend.auto, model="tiny-x4")
    assert backend is Backend.torch and build_upscaler(backend, None, model="tiny-x4", threads=1).scale == 4
    with pytest.raises(typer.BadParameter, match="bicubic contradicts --model tiny-x4, which runs with --backend torch"):
        choose_backend(Backend.bicubic, model="tiny-x4")


def test_photo_model_is_the_robust_x4_and_the_setting_1_model_elsewhere():
    assert registry.photo_model(4).name == "tiny-x4-robust"
    assert registry.photo_model(4).training["noise"]  # trained with noise: what ordinary photos carry
    for scale in (2, 3):  # no robust model shipped at these scales
        assert registry.photo_model(scale) == registry.default_model(scale)
    assert registry.photo_model(4, "paper") is None
    rows = {row["name"]: row for row in json.loads(runner.invoke(app, ["models", "--json"]).output)}
    assert rows["tiny-x4-robust"]["upscale_default"] and not rows["tiny-x4"]["upscale_default"]
    # small-x4-robust is the robust model of its own config, but gldfn upscale runs the tiny one (docs/model_card.md)
    assert registry.photo_model(4, "small").name == "small-x4-robust" and not rows["small-x4-robust"]["upscale_default"]
    listing = runner.invoke(app, ["models"]).output
    assert "tiny-x4-robust +" in listing and "small-x4-robust +" not in listing
    lines = [line for line in listing.splitlines() if line.split(" ")[0] in rows]
    assert len({line.index(" x") for line in lines}) == 1  # the scale column lines up under the longest name


def test_upscale_without_a_model_runs_the_photo_model(tmp_path):
    """gldfn upscale's default is tiny-x4-robust, byte for byte; tiny-x4 (the Setting-1 default) gives another image,
    and an explicit --model or --config still wins."""
    from gldfn_model.data.reference_inputs import synthetic_card

    photo = tmp_path / "photo.png"
    card = synthetic_card(20, 24, 1)[0].transpose(1, 2, 0)
    rng = np.random.default_rng(0)
    noisy = np.clip(card * 255 + rng.normal(0, 12, card.shape), 0, 255).astype(np.uint8)  # a noisy "photo"
    Image.fromarray(noisy).save(photo)
    outputs = {}
    for name, args in (("default", []), ("robust", ["--model", "tiny-x4-robust"]), ("clean", ["--model", "tiny-x4"]),
                       ("tiny", ["--config", "tiny"])):
        result = runner.invoke(app, ["upscale", str(photo), "-o", str(tmp_path / f"{name}.png"), "--threads", "1", *args])
        assert result.exit_code == 0, result.output
        outputs[name] = (tmp_path / f"{name}.png").read_bytes()
        if not args or args[0] == "--config":
            assert "model: tiny-x4-robust, the default for photos" in result.output
        else:
            assert "the default for photos" not in result.output
    assert outputs["default"] == outputs["robust"] == outputs["tiny"] != outputs["clean"]
    x2 = runner.invoke(app, ["upscale", str(photo), "-o", str(tmp_path / "x2.png"), "-s", "2", "--threads", "1"])
    assert x2.exit_code == 0 and "model: tiny-x2, the default for photos" in x2.output
