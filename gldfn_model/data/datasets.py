"""The standard image sets (Set5, Set14, BSD100 for evaluation; T91, BSD200 for training): research benchmarks, not
shipped with the project. docs/datasets.md says where each comes from and the layout expected: one folder holding
a folder per set (``Set5/``, ``Set14/``, ...) of HR images.

Commands that need them take that folder as ``--datasets DIR``; its default is ``$GLDFN_DATASETS``, else
``../shared/datasets`` beside the repository checkout when that exists (the project's development machines).
"""
from __future__ import annotations

import os
from pathlib import Path

from gldfn_model.common.errors import GldfnError

DATASETS_ENV = "GLDFN_DATASETS"
DATASETS_DOC = "docs/datasets.md"
DATASETS_HELP = (f"folder holding the image sets, one folder each (Set5/, Set14/, BSD100/, T91/, BSD200/); default: "
                 f"${DATASETS_ENV}, else ../shared/datasets beside the checkout ({DATASETS_DOC})")


class DatasetError(GldfnError, ValueError):
    """An image set a command needs is not where it was asked for; the message says how to give it."""


def datasets_dir() -> Path | None:
    """The default folder of the image sets ($GLDFN_DATASETS, else ../shared/datasets beside the checkout), or
    None when there is none."""
    env = os.environ.get(DATASETS_ENV)
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2].parent / "shared" / "datasets")
    return next((c for c in candidates if c.is_dir()), None)


def find_dataset(name: str) -> Path | None:
    """The folder of one image set (e.g. "Set5") in the default folder, or None when it is absent."""
    root = datasets_dir()
    return root / name if root is not None and (root / name).is_dir() else None


def image_set(name: str, root: str | os.PathLike[str] | None) -> Path:
    """The folder of image set ``name`` in ``root`` (a command's ``--datasets``; None: none was found); DatasetError
    saying how to give it when it is not there."""
    where = f"it is one of the research image sets, not shipped: {DATASETS_DOC} says where to get it"
    if root is None:
        raise DatasetError(f"{name} is needed and no image-set folder was given: pass --datasets DIR (a folder holding "
                           f"{name}/) or set ${DATASETS_ENV}; {where}")
    folder = Path(root) / name
    if not folder.is_dir():
        raise DatasetError(f"{folder} does not exist: the folder given as --datasets (or ${DATASETS_ENV}) must hold "
                           f"{name}/ with its images; {where}")
    return folder
