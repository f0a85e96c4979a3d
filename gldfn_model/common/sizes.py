"""``HEIGHTxWIDTH`` size options of the command lines. Here rather than in ``gldfn_model.cli``, whose package
import registers every ``gldfn`` command (and loads PyTorch), so that ``gldfn-trt`` can parse sizes without it."""
from __future__ import annotations

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
