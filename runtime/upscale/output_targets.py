"""Where ``gldfn upscale`` and ``gldfn-trt run`` write: the input images, one output path for each, and the checks
that keep a user's files: no output onto an input, no existing file replaced unless asked.

``-o`` names a file when there is one input file and the path has a suffix (``photo.png -o big.png``), and a folder
otherwise (several inputs, a folder of inputs, an existing folder, a path without suffix or ending in ``/``).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gldfn_model.common.errors import GldfnError
from gldfn_model.data.image_io import IMAGE_SUFFIXES, ImageReadError, list_images

# -f/--format choices and the suffix each writes.
OUTPUT_FORMATS = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}
_SAME_FORMAT = {".jpeg": ".jpg", ".tiff": ".tif"}
_LISTED = 3


class OutputTargetError(GldfnError, ValueError):
    """The outputs cannot be written as asked (they would replace inputs or existing files, or -o is ambiguous)."""


@dataclass(frozen=True)
class OutputTargets:
    """``jobs``: (input, output) pairs to write; ``skipped``: outputs that exist and are kept (``skip_existing``);
    ``folder``: where the outputs go (created before writing); ``overwrite``: whether an output may replace a file
    (else one that appeared after the choice is kept and that output fails)."""

    folder: Path
    jobs: list[tuple[Path, Path]]
    skipped: list[Path]
    overwrite: bool = False


def collect_inputs(inputs: Sequence[Path]) -> list[Path]:
    """Image files named directly or found in folders (not recursive), in order, without duplicates;
    ImageReadError for a path that doesn't exist or a folder without images."""
    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            files.extend(list_images(path))
        elif path.exists():
            files.append(path)
        else:
            raise ImageReadError(f"{path}: no such file or folder")
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return [Path(p) for p in unique]


def _listing(paths: Sequence[Path]) -> str:
    shown = ", ".join(str(p) for p in paths[:_LISTED])
    return shown + (f" and {len(paths) - _LISTED} more" if len(paths) > _LISTED else "")


def _names_a_file(
    inputs: Sequence[Path], files: list[Path], out: str | os.PathLike[str], image_format: str | None
) -> bool:
    """Whether ``out`` is the output file itself (see the module's docstring); OutputTargetError where it is unclear.
    ``out`` as typed: a trailing separator, which Path drops, marks a folder."""
    if Path(out).is_dir() or os.fspath(out).endswith(("/", os.sep)):
        return False
    out = Path(out)
    single = len(inputs) == 1 and not inputs[0].is_dir()
    suffix = out.suffix.lower()
    if not single:
        if suffix in IMAGE_SUFFIXES or out.exists():
            raise OutputTargetError(f"-o {out} names a file, but several inputs or a folder were given "
                                  f"({len(files)} image(s)): -o must be a folder")
        return False
    if not suffix:
        return False
    if suffix not in IMAGE_SUFFIXES:
        raise OutputTargetError(f"-o {out}: {suffix} is not an image suffix ({', '.join(IMAGE_SUFFIXES)}); "
                              f"end the path with {os.sep} to make it a folder")
    if image_format is not None and _SAME_FORMAT.get(suffix, suffix) != OUTPUT_FORMATS[image_format]:
        raise OutputTargetError(f"-o {out} is not a .{image_format} file; drop -f {image_format} or change the name")
    return True


def check_suffix(suffix: str) -> None:
    """OutputTargetError for a --suffix that could lead a name out of its folder or is not a plain name part."""
    separators = {"/", os.sep, *([os.altsep] if os.altsep else [])}
    bad = sorted(c for c in set(suffix) if c in separators or not c.isprintable())  # NUL is not printable
    if bad:
        raise OutputTargetError(f"--suffix {suffix!r} holds {', '.join(repr(c) for c in bad)}: it is added to file "
                                "names inside the output folder, so it cannot hold folder separators or control "
                                "characters (e.g. --suffix _x4)")


def output_name(name: str, suffix: str = "", image_format: str | None = None) -> str:
    """The file name an input called ``name`` is written to in an output folder: its stem, ``suffix``, and the
    extension of ``image_format`` (default: its own)."""
    check_suffix(suffix)
    path = Path(name)
    return f"{path.stem}{suffix}{OUTPUT_FORMATS[image_format] if image_format else path.suffix}"


def check_distinct(sources: Sequence[object], targets: Sequence[Path]) -> None:
    """OutputTargetError when two sources would be written to one target."""
    seen: dict[Path, object] = {}
    for source, target in zip(sources, targets):
        if target in seen:
            raise OutputTargetError(f"{seen[target]} and {source} would both be written to {target}; "
                                  "upscale them into different folders")
        seen[target] = source


def check_existing(existing: Sequence[Path], overwrite: bool, skip_existing: bool) -> set[Path]:
    """The existing outputs to keep (``skip_existing``); OutputTargetError when some exist and neither
    ``overwrite`` nor ``skip_existing`` is given."""
    if existing and not (overwrite or skip_existing):
        raise OutputTargetError(
            f"{len(existing)} output(s) exist already ({_listing(existing)}): pass --skip-existing to keep them and "
            "write the rest, or --overwrite to replace them")
    return set(existing) if skip_existing else set()


def choose_outputs(
    inputs: Sequence[Path],
    out: str | os.PathLike[str],
    *,
    suffix: str = "",
    image_format: str | None = None,
    overwrite: bool = False,
    skip_existing: bool = False,
) -> OutputTargets:
    """The output of each input image: ``out`` itself for one input file and a file name, else
    ``out / (stem + suffix + extension)`` (the extension of ``image_format``, default the input's own).
    OutputTargetError when an output would replace an input (unless ``overwrite``) or an existing file (unless
    ``overwrite``, or ``skip_existing`` to keep it and skip that input), or when two inputs share an output."""
    if overwrite and skip_existing:
        raise OutputTargetError("--overwrite and --skip-existing exclude each other: choose one")
    if image_format is not None and image_format not in OUTPUT_FORMATS:
        raise OutputTargetError(f"unknown output format {image_format!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    files = collect_inputs(inputs)
    named_file = _names_a_file(inputs, files, out, image_format)
    out = Path(out)
    if named_file:
        if suffix:
            raise OutputTargetError(f"--suffix renames files written into a folder; -o {out} names the output itself")
        folder, targets = out.parent, [out]
    else:
        folder = out
        targets = [out / output_name(f.name, suffix, image_format) for f in files]
    check_distinct(files, targets)

    # Identity by device and inode: catches links, hard links and case-insensitive names, not just equal paths.
    input_ids = {(s.st_dev, s.st_ino) for s in (f.stat() for f in files)}
    onto_inputs, existing = [], []
    for target in targets:
        if target.is_dir() or not target.exists():
            continue  # a folder in the way fails that one file when it is written; the batch goes on
        stat = target.stat()
        if (stat.st_dev, stat.st_ino) in input_ids:
            onto_inputs.append(target)
        else:
            existing.append(target)
    if onto_inputs and not overwrite:
        raise OutputTargetError(
            f"{len(onto_inputs)} output(s) would replace input images ({_listing(onto_inputs)}): write them into "
            "another folder with -o, rename them with --suffix (e.g. --suffix _x4), or pass --overwrite to replace "
            "the originals")
    kept = check_existing(existing, overwrite, skip_existing)
    return OutputTargets(
        folder=folder,
        jobs=[(source, target) for source, target in zip(files, targets) if target not in kept],
        skipped=[target for target in targets if target in kept],
        overwrite=overwrite,
    )
