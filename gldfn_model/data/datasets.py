"""Where the standard image sets (Set5, Set14, BSD100, T91, BSD200) are found: ``$GLDFN_DATASETS``, else
``../shared/datasets`` beside the repository checkout. They are research benchmarks and are not shipped."""
from __future__ import annotations

import os
from pathlib import Path

DATASETS_ENV = "GLDFN_DATASETS"


def datasets_dir() -> Path | None:
    """The folder holding the image sets, or None when there is none."""
    env = os.environ.get(DATASETS_ENV)
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2].parent / "shared" / "datasets")
    return next((c for c in candidates if c.is_dir()), None)


def find_dataset(name: str) -> Path | None:
    """The folder of one image set (e.g. "Set5"), or None when it is absent."""
    root = datasets_dir()
    return root / name if root is not None and (root / name).is_dir() else None
