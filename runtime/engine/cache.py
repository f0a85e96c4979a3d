"""A folder of built engines keyed by everything that shapes them (ONNX and plugin SHA-256, TensorRT flavour
and version, precision, profile, target GPU or compute capabilities, plugin embedding), so an unchanged
request reuses an engine instead of rebuilding it.

Layout: ``CACHE/<key>/model.engine`` with its sidecar ``model.engine.json``. The default folder is
$GLDFN_TRT_CACHE_DIR, else $XDG_CACHE_HOME/gldfn-trt/engines, else ~/.cache/gldfn-trt/engines.

The cache is bounded: after each engine is stored, the least recently used entries (an entry's folder time is
set whenever it is used) are removed until the whole is within $GLDFN_TRT_CACHE_MAX_SIZE (default 4 GiB).
``gldfn-trt cache ls`` lists it, ``gldfn-trt cache clean [--max-size SIZE]`` empties or trims it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gldfn_model.common.atomic import atomic_output, atomic_outputs, remove_stale_temps
from gldfn_model.common.errors import GldfnError
from gldfn_model.common.sizes import format_bytes, parse_bytes
from gldfn_model.common.temps import TEMP_SUFFIX, remove_stale_temp_files
from gldfn_runtime.engine.sidecar import (
    EngineSidecar,
    SidecarError,
    read_sidecar,
    sidecar_path,
    verify_engine_file,
    write_sidecar,
)

CACHE_ENV = "GLDFN_TRT_CACHE_DIR"
MAX_SIZE_ENV = "GLDFN_TRT_CACHE_MAX_SIZE"
# A few dozen engines of the paper config, a few hundred of tiny.
DEFAULT_MAX_SIZE = 4 << 30
ENGINE_NAME = "model.engine"
_KEY = re.compile("[0-9a-f]{32}")


class EngineCacheError(GldfnError, ValueError):
    """The cache's settings are unusable."""


def default_max_size() -> int:
    """$GLDFN_TRT_CACHE_MAX_SIZE (e.g. 10G), else DEFAULT_MAX_SIZE."""
    text = os.environ.get(MAX_SIZE_ENV)
    if not text:
        return DEFAULT_MAX_SIZE
    try:
        return parse_bytes(text)
    except ValueError as error:
        raise EngineCacheError(f"${MAX_SIZE_ENV}: {error}") from None


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "gldfn-trt" / "engines"


def cache_key(fields: dict[str, Any]) -> str:
    """A stable digest of the request fields (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]


def matching_engine(engine_path: Path, key: str) -> EngineSidecar | None:
    """The sidecar of ``engine_path`` when that engine is intact and was built for ``key``, else None."""
    try:
        sidecar = read_sidecar(engine_path)
        verify_engine_file(engine_path, sidecar)
    except (SidecarError, OSError):
        return None
    return sidecar if sidecar.cache_key == key else None


@dataclass(frozen=True)
class CacheEntry:
    """One engine of the cache: its folder, the bytes it takes, when it was last used (seconds since the epoch)
    and its sidecar (None when missing or unreadable: an incomplete entry)."""

    key: str
    folder: Path
    size: int
    last_used: float
    sidecar: EngineSidecar | None


def _folder_size(folder: Path) -> int:
    total = 0
    for entry in os.scandir(folder):
        if entry.is_file(follow_symlinks=False):
            total += entry.stat(follow_symlinks=False).st_size
    return total


def _being_written(folder: Path) -> bool:
    """Whether a live process has a temporary file in ``folder`` (stale ones are removed first)."""
    remove_stale_temp_files(folder)
    for name in (ENGINE_NAME, sidecar_path(ENGINE_NAME).name):
        remove_stale_temps(folder / name)  # named before temporaries carried their process id
    return any(name.startswith(".") and name.endswith(TEMP_SUFFIX) for name in os.listdir(folder))


class EngineCache:
    """The engine cache in ``root``, kept within ``max_size`` bytes (default: :func:`default_max_size`)."""

    def __init__(self, root: str | os.PathLike[str] | None = None, max_size: int | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.max_size = max_size if max_size is not None else default_max_size()

    def engine_path(self, key: str) -> Path:
        return self.root / key / ENGINE_NAME

    def lookup(self, key: str) -> EngineSidecar | None:
        """The sidecar of the intact engine stored for ``key`` (marked as just used), else None."""
        found = matching_engine(self.engine_path(key), key)
        if found is not None:
            try:
                os.utime(self.engine_path(key).parent)
            except OSError:  # a read-only cache still serves its engines
                pass
        return found

    def entries(self) -> list[CacheEntry]:
        """The cache's entries, most recently used first. Only folders named like a key count; nothing else in the
        cache folder is looked at."""
        found = []
        try:
            listing = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        for item in listing:
            if not (_KEY.fullmatch(item.name) and item.is_dir(follow_symlinks=False)):
                continue
            folder = Path(item.path)
            try:
                size, last_used = _folder_size(folder), item.stat(follow_symlinks=False).st_mtime
            except OSError:  # removed meanwhile
                continue
            try:
                sidecar = read_sidecar(folder / ENGINE_NAME)
            except (SidecarError, OSError):
                sidecar = None
            found.append(CacheEntry(item.name, folder, size, last_used, sidecar))
        return sorted(found, key=lambda entry: entry.last_used, reverse=True)

    def evict(self, max_size: int, keep: Iterable[str] = ()) -> list[CacheEntry]:
        """Remove the least recently used entries until the rest take at most ``max_size`` bytes (0: all), never
        those in ``keep`` nor one a live process is writing; return the removed entries."""
        entries, kept = self.entries(), set(keep)
        total = sum(entry.size for entry in entries)
        removed = []
        for entry in reversed(entries):  # least recently used first
            if total <= max_size:
                break
            if entry.key in kept or _being_written(entry.folder):
                continue
            shutil.rmtree(entry.folder, ignore_errors=True)
            if not entry.folder.exists():
                total -= entry.size
                removed.append(entry)
        return removed

    def store(self, key: str, plan: bytes, sidecar: EngineSidecar) -> Path:
        """Write the engine, then its sidecar (each atomically): a reader that finds the sidecar finds the engine."""
        path = self.engine_path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SidecarError(f"cannot create the engine cache folder {path.parent} ({error}); pass --cache-dir") from None
        with atomic_output(path, overwrite=True) as tmp:  # a concurrent build of the same key wrote the same engine
            tmp.write_bytes(plan)
        write_sidecar(path, sidecar, overwrite=True)
        self.evict(self.max_size, keep=[key])
        return path


def describe_cap(cache: EngineCache) -> str:
    """'4.0 GiB (default; $GLDFN_TRT_CACHE_MAX_SIZE changes it)' or the value set."""
    where = f"${MAX_SIZE_ENV}" if os.environ.get(MAX_SIZE_ENV) else f"default; ${MAX_SIZE_ENV} changes it"
    return f"{format_bytes(cache.max_size)} ({where})"


def copy_engine(source: Path, destination: Path, sidecar: EngineSidecar, *, overwrite: bool = False) -> None:
    """Copy an engine and write its sidecar beside the copy, both atomically and together (or neither); an
    existing file is replaced only with ``overwrite``."""
    if source.resolve() == destination.resolve():
        return
    with atomic_outputs([destination, sidecar_path(destination)], overwrite=overwrite) as (engine_tmp, sidecar_tmp):
        shutil.copyfile(source, engine_tmp)
        sidecar_tmp.write_text(sidecar.to_json())
