"""The research image sets are not shipped: commands that need them take ``--datasets DIR`` (default
$GLDFN_DATASETS, else ../shared/datasets beside the checkout) and say clearly, naming docs/datasets.md, when a set
is not there."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gldfn_model.data.datasets import DATASETS_DOC, DatasetError, image_set

REPO = Path(__file__).resolve().parents[1]


def test_a_set_is_found_in_the_folder_given(tmp_path):
    (tmp_path / "Set5").mkdir()
    assert image_set("Set5", tmp_path) == tmp_path / "Set5"


def test_a_missing_set_or_folder_names_the_option_and_the_document(tmp_path):
    with pytest.raises(DatasetError, match=r"Set14 is needed and no image-set folder was given: pass --datasets DIR"):
        image_set("Set14", None)
    with pytest.raises(DatasetError, match=rf"{tmp_path / 'BSD100'} does not exist.*{DATASETS_DOC} says where to get it"):
        image_set("BSD100", tmp_path)
    assert (REPO / DATASETS_DOC).is_file()


@pytest.mark.parametrize("script, args", [
    ("evaluate_suite.py", ["--sets", "Set5"]),
    ("evaluate_weights.py", ["--sets", "Set14"]),
    ("tiling_seams.py", ["--large"]),
    ("training_speed.py", []),
])
def test_benchmark_scripts_ask_for_the_sets_by_argument(script, args, tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--datasets", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "error:" in last and "does not exist" in last and DATASETS_DOC in last and "Traceback" not in done.stderr
