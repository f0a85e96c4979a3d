"""The README as a first screen: short, a photo upscaled within its first 40 lines, no unfilled placeholders,
and every link it makes to the repository pointing at a file that exists (also in docs/manual.md)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_readme_is_a_first_screen() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail to docs/"
    first = "\n".join(lines[:40])
    assert "gldfn upscale photo.jpg -o photo_x4.png" in first
    assert "pip install" in first


def test_readme_has_no_placeholders() -> None:
    assert "<!--" not in README.read_text(), "fill the README's placeholders with real output"


@pytest.mark.parametrize("document", ["README.md", "docs/manual.md", "docs/compatibility.md"])
def test_relative_links_point_at_files(document: str) -> None:
    path = REPO / document
    missing = [target for target in LINK.findall(path.read_text())
               if "://" not in target and not (path.parent / target).exists()]
    assert not missing, f"{document} links to files that do not exist: {missing}"
