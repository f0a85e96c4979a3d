"""The one check every file the project reads goes through before its contents are used: checkpoints, engine
sidecars, ``gldfn degrade`` manifests and the shipped models' ``models.json``.

A file's size is bounded before it is read, its structure before anything is built from it, and every field is
checked for its declared type (strictly: no ``"32"`` for 32, no ``true`` for 1) by pydantic against the dataclass
or TypedDict that the reading module declares. Whatever does not fit becomes one error of the type the reader
asks for, naming the file and the field (``m.engine.json: field profile.min[0]: Input should be a valid
integer``), never a traceback from deeper down. Values shown in messages are never copied from the file: only
field names, and keys the file invented as ``repr`` cut short.

pydantic is used because it validates the dataclasses the modules already declare (one schema, no second copy)
and parses JSON with a bounded nesting depth; typer depends on it too.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import typing
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ConfigDict, TypeAdapter, ValidationError
from typing_extensions import NotRequired, Required, TypedDict

from gldfn_model.common.errors import GldfnError

T = TypeVar("T")
# Where the types are exact: no coercion of strings to numbers or numbers to booleans. Arbitrary types (tensors)
# are checked with isinstance.
STRICT = ConfigDict(strict=True, extra="forbid", arbitrary_types_allowed=True)
STRICT_OPEN = ConfigDict(strict=True, extra="allow", arbitrary_types_allowed=True)
_KEY_SHOWN = 40  # characters of a key named in a message
_ZIP_TAIL = 22 + 0xFFFF + 20 + 56  # end record, its longest comment, zip64 locator and record


def strict_schema(schema: type[T], *, open_ended: bool = False) -> type[T]:
    """``schema`` (a TypedDict) validated strictly; ``open_ended`` keeps keys it does not declare (else they
    are errors). Returns the same class."""
    schema.__pydantic_config__ = STRICT_OPEN if open_ended else STRICT  # type: ignore[attr-defined]
    return schema


@functools.cache
def fields_schema(cls: type, *, open_ended: bool = False, all_optional: bool = False) -> type:
    """A TypedDict of the dataclass ``cls``'s fields with their declared types (required where the dataclass has
    no default, unless ``all_optional``), so that a mapping can be checked strictly before ``cls(**mapping)``."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {}
    for field in dataclasses.fields(cls):
        optional = all_optional or field.default is not dataclasses.MISSING or \
            field.default_factory is not dataclasses.MISSING
        fields[field.name] = NotRequired[hints[field.name]] if optional else Required[hints[field.name]]
    return strict_schema(TypedDict(f"{cls.__name__}Fields", fields), open_ended=open_ended)  # type: ignore[operator]


@functools.cache
def _adapter(schema: Any) -> TypeAdapter:
    return TypeAdapter(schema)


def quoted(text: str) -> str:
    """Text taken from a file (a key, an entry name), quoted and cut short for a message."""
    shown = repr(text)
    return shown[:_KEY_SHOWN] + "…" if len(shown) > _KEY_SHOWN else shown


def _shown(part: str | int) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    if part.isidentifier() or part.replace(".", "_").isidentifier():
        return f".{part}"
    return f"[{quoted(part)}]"


def field_name(location: Sequence[str | int], prefix: str = "") -> str:
    """``("profile", "min", 0)`` -> ``profile.min[0]``; keys that are not names are quoted and cut short."""
    parts = list(location)
    key = parts[-1:] == ["[key]"]
    text = prefix + "".join(_shown(part) for part in (parts[:-1] if key else parts))
    text = text.lstrip(".") or "(the whole file)"
    return f"a key of {text}" if key else text


def describe(error: ValidationError, prefix: str = "") -> str:
    """The first problem of a pydantic error as ``field NAME: what is wrong``, with how many more there are."""
    problems = error.errors(include_url=False, include_input=False)
    first = problems[0]
    if first["type"] == "json_invalid":
        return f"not valid JSON ({first['msg'].removeprefix('Invalid JSON: ')})"
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return f"field {field_name(first['loc'], prefix)}: {first['msg']}{more}"


def _fail(error: type[GldfnError], source: str | os.PathLike[str], problem: str, advice: str) -> GldfnError:
    return error(f"{source}: {problem}" + (f"; {advice}" if advice else ""))


def validated(data: Any, schema: Any, *, source: str | os.PathLike[str], error: type[GldfnError],
              advice: str = "", prefix: str = "") -> Any:
    """``data`` (Python objects, e.g. from a checkpoint) checked against ``schema``; ``error`` naming ``source``
    and the field otherwise. ``prefix`` names where ``data`` sits in the file (``config``)."""
    try:
        return _adapter(schema).validate_python(data, strict=True)
    except ValidationError as exc:
        raise _fail(error, source, describe(exc, prefix), advice) from None


def construct(cls: type[T], data: Any, *, source: str | os.PathLike[str], error: type[GldfnError], advice: str = "",
              prefix: str = "") -> T:
    """``cls(**data)`` for a dataclass, after checking ``data``'s fields strictly; a ValueError of the dataclass's own
    checks (``__post_init__``) becomes ``error`` naming ``source`` too."""
    fields = validated(data, fields_schema(cls), source=source, error=error, advice=advice, prefix=prefix)
    try:
        return cls(**fields)
    except ValueError as exc:
        where = f"field {prefix}: " if prefix else ""
        raise _fail(error, source, f"{where}{exc}", advice) from None


def check_size(path: Path, max_bytes: int, *, error: type[GldfnError], what: str, advice: str = "") -> int:
    """The size of ``path``, a regular file of at most ``max_bytes``; ``error`` otherwise (before reading any of it)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _fail(error, path, f"cannot be read ({exc.strerror or exc})", advice) from None
    if not path.is_file():
        raise _fail(error, path, f"is not a file ({what} expected)", advice)
    if size > max_bytes:
        raise _fail(error, path, f"is {size / 2**20:.1f} MiB, more than a {what} can be "
                    f"({max_bytes / 2**20:.0f} MiB); it is not one", advice)
    return size


def read_json(path: str | os.PathLike[str], schema: Any, *, max_bytes: int, error: type[GldfnError], what: str,
              advice: str = "") -> Any:
    """The JSON file ``path`` checked against ``schema`` (size bounded before reading, nesting depth bounded while
    parsing), or ``error`` naming the file and the field."""
    path = Path(path)
    check_size(path, max_bytes, error=error, what=what, advice=advice)
    try:
        with open(path, "rb") as fh:
            text = fh.read(max_bytes + 1)  # the file may have grown since stat
    except OSError as exc:
        raise _fail(error, path, f"cannot be read ({exc.strerror or exc})", advice) from None
    if len(text) > max_bytes:
        raise _fail(error, path, f"is larger than a {what} can be ({max_bytes / 2**20:.0f} MiB)", advice)
    try:
        return _adapter(schema).validate_json(text, strict=True)
    except ValidationError as exc:
        raise _fail(error, path, describe(exc), advice) from None


def zip_entry_count(path: Path) -> int | None:
    """The number of entries a zip archive's end record declares (zip64 included), read from the file's tail
    without parsing its directory; None when there is no end record."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        tail_start = max(0, size - _ZIP_TAIL)
        fh.seek(tail_start)
        tail = fh.read()
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or end + 22 > len(tail):
        return None
    count = int.from_bytes(tail[end + 10 : end + 12], "little")
    locator = end - 20
    if count == 0xFFFF and locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
        record = int.from_bytes(tail[locator + 8 : locator + 16], "little") - tail_start
        if 0 <= record and tail[record : record + 4] == b"PK\x06\x06":
            count = int.from_bytes(tail[record + 32 : record + 40], "little")
    return count


def check_stored_archive(path: Path, max_bytes: int, *, error: type[GldfnError], what: str, advice: str = "",
                         max_entries: int = 100_000) -> None:
    """``path`` is a zip archive of at most ``max_bytes`` and ``max_entries`` entries (counted before its directory
    is parsed) whose entries are stored uncompressed (as torch.save writes them) and do not overlap, so that reading
    it allocates no more than the file's size: a deflated entry could expand to any size."""
    size = check_size(path, max_bytes, error=error, what=what, advice=advice)
    count = zip_entry_count(path)
    if count is not None and count > max_entries:
        raise _fail(error, path, f"its zip directory lists {count} entries, more than a {what} has "
                    f"({max_entries})", advice)
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise _fail(error, path, f"cannot be read as a {what} (not a zip archive as torch.save writes: {exc})",
                    advice) from None
    compressed = next((entry for entry in entries if entry.compress_type != zipfile.ZIP_STORED
                       or entry.file_size != entry.compress_size), None)
    if compressed is not None:
        raise _fail(error, path, f"entry {quoted(compressed.filename)} is compressed ({compressed.compress_size} "
                    f"bytes unpacking to {compressed.file_size}); torch.save stores entries uncompressed, so this "
                    f"file was repacked or crafted", advice)
    if sum(entry.file_size for entry in entries) > size:
        raise _fail(error, path, "its entries claim more bytes than the file holds (overlapping entries)", advice)
