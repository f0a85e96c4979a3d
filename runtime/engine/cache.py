"""A folder of built engines keyed by everything that shapes them (ONNX and plugin SHA-256, TensorRT flavour
and version, precision, profile, target GPU or compute capabilities, plugin embedding), so an unchanged
request reuses an engine instead of rebuilding it.

Layout: ``CACHE/<key>/model.engine`` with its sidecar ``model.engine.json``. The default folder is
$GLDFN_TRT_CACHE_DIR, else $XDG_CACHE_HOME/gldfn-trt/engines, else ~/.cache/gldfn-trt/engines.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from gldfn_model.common.atomic import atomic_output, atomic_outputs
from gldfn_runtime.engine.sidecar import (
    EngineSidecar,
    SidecarError,
    read_sidecar,
    sidecar_path,
    verify_engine_file,
    write_sidecar,
)

CACHE_ENV = "GLDFN_TRT_CACHE_DIR"
ENGINE_NAME = "model.engine"


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


class EngineCache:
    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def engine_path(self, key: str) -> Path:
        return self.root / key / ENGINE_NAME

    def lookup(self, key: str) -> EngineSidecar | None:
        return matching_engine(self.engine_path(key), key)

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
        return path


def copy_engine(source: Path, destination: Path, sidecar: EngineSidecar, *, overwrite: bool = False) -> None:
    """Copy an engine and write its sidecar beside the copy, both atomically and together (or neither); an
    existing file is replaced only with ``overwrite``."""
    if source.resolve() == destination.resolve():
        return
    with atomic_outputs([destination, sidecar_path(destination)], overwrite=overwrite) as (engine_tmp, sidecar_tmp):
        shutil.copyfile(source, engine_tmp)
        sidecar_tmp.write_text(sidecar.to_json())
