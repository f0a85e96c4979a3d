import json

from conftest import plain_text
from typer.testing import CliRunner

from gldfn_model.cli import app
from gldfn_model.network.config import get_config
from gldfn_model.network.gldfn import GLDFN

runner = CliRunner()


def test_info_json_matches_model():
    result = runner.invoke(app, ["info", "--config", "tiny", "--scale", "2", "--lr-size", "32x48", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["config"] == "tiny" and data["scale"] == 2 and data["lr_size"] == [32, 48]
    assert data["params"] == sum(p.numel() for p in GLDFN(get_config("tiny", 2)).parameters())
    assert isinstance(data["macs"], int) and data["macs"] > 0


def test_info_text_shows_table_iv():
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0
    assert "DCLS" in result.output and "346.74" in result.output


def test_info_ablation_lists_four_variants():
    result = runner.invoke(app, ["info", "--ablation", "--config", "tiny", "--json"])
    assert result.exit_code == 0
    assert sorted(json.loads(result.output)) == ["A", "B", "C", "D"]


def test_info_rejects_bad_size_and_config():
    assert runner.invoke(app, ["info", "--lr-size", "12"]).exit_code != 0
    bad = runner.invoke(app, ["info", "--config", "huge"])
    assert bad.exit_code == 2 and "'huge' is not one of 'paper', 'small', 'tiny'" in plain_text(bad.output)


def test_info_counts_a_peer_beside_table_iv():
    result = runner.invoke(app, ["info", "--model", "dcls", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    paper = data["table_iv"]
    assert data["model"] == "dcls" and paper["name"] == "DCLS" and paper["within_targets"]
    assert data["macs"] == data["module_macs"] + sum(data["functional_macs"].values())
    assert data["functional_macs"]["fft"] > 0
    assert sum(c.get("params", 0) for c in data["components"].values()) == data["params"]


def test_info_text_explains_the_dan_adjustment():
    result = runner.invoke(app, ["info", "--model", "danv1"])
    assert result.exit_code == 0, result.output
    assert "Table IV 926.72 G" in result.output and "Estimator 4 times" in result.output


def test_info_gldfn_json_carries_the_hook_count():
    result = runner.invoke(app, ["info", "--config", "tiny", "--lr-size", "20x24", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["counter_macs"] == data["macs"] and data["module_macs"] < data["macs"]


def test_info_rejects_unknown_models_and_peer_ablations():
    unknown = runner.invoke(app, ["info", "--model", "ikc"])
    assert unknown.exit_code == 2 and "'ikc' is not one of 'gldfn', 'dcls', 'danv1', 'danv2'" in plain_text(unknown.output)
    ablation = runner.invoke(app, ["info", "--model", "danv2", "--ablation"])
    assert ablation.exit_code != 0 and "Table I" in ablation.output
