"""``HEIGHTxWIDTH`` size options of the command lines. Here rather than in ``gldfn_model.cli``, whose package
import registers every ``gldfn`` command (and loads PyTorch), so that ``gldfn-trt`` can parse sizes without it."""
from __future__ import annotations

import re

import typer


def parse_size(text: str) -> tuple[int, int]:
    """'180x270' -> (180, 270): height x width."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a size; write HEIGHTxWIDTH, e.g. 180x270") from None
    if height < 1 or width < 1:
        raise typer.BadParameter(f"{text!r}: height and width must be positive")
    return height, width


_BYTE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_bytes(text: str) -> int:
    """'4G', '500M', '1.5GiB', '2048' -> bytes; the units are binary (1K = 1024). ValueError naming the text."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if match is None:
        raise ValueError(f"{text!r} is not a size in bytes; write e.g. 4G, 500M or 1.5GiB (binary units)")
    return int(float(match[1]) * _BYTE_UNITS[match[2]])


def format_bytes(count: int) -> str:
    """1536 -> '1.5 KiB'."""
    value, unit = float(count), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
