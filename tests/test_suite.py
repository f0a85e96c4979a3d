"""The evaluation suite: one table of bicubic (dcls, ikc) and a model (dcls) across the test degradations."""
from __future__ import annotations

import pytest
from conftest import write_smooth_images

from gldfn_model.evaluation.evaluate import bicubic_restore
from gldfn_model.evaluation.suite import evaluate_suite, find_rows, format_suite


@pytest.fixture
def images(tmp_path):
    return write_smooth_images(tmp_path / "set", 2, seed=1)


def test_suite_scores_every_row_on_the_same_degraded_images(images):
    rows = find_rows(["gaussian8", "gaussian8+n30", "aniso", "sv-high"])
    # With bicubic as the "model", its column must equal bicubic's own: both saw the same LR images.
    results = evaluate_suite({"tiny": images}, 4, bicubic_restore(4), rows)
    assert [(r.set_name, r.row, r.images) for r in results] == [
        ("tiny", "gaussian8", 16), ("tiny", "gaussian8+n30", 16), ("tiny", "aniso", 2), ("tiny", "sv-high", 2)]
    for result in results:
        assert result.scores["model/dcls"] == result.scores["bicubic/dcls"]
        assert result.scores["bicubic/ikc"][0] < result.scores["bicubic/dcls"][0]  # full-range luma: no 16-235 lift
    clean, noisy = results[0].scores["bicubic/dcls"], results[1].scores["bicubic/dcls"]
    assert noisy[0] < clean[0] - 1 and noisy[1] < clean[1]
    table = format_suite(results, "title")
    assert "Gaussian8 + AWGN 30" in table and "bicubic (ikc)" in table and len(table.splitlines()) == 6
    assert format_suite(results, "title", markdown=True).count("\n|") == 6  # head, rule, 4 rows


def test_unknown_rows_are_named():
    with pytest.raises(ValueError, match="'blur'.*gaussian8"):
        find_rows(["gaussian8", "blur"])
