"""TensorRT-RTX's runtime cache, persisted beside the engine cache: TensorRT-RTX compiles an engine's kernels for the
GPU when it first runs them (at the first run of each new input shape, too); without a cache every process compiles
them again. With it, a later process on the same GPU, driver and TensorRT-RTX version loads them.

Layout: ``CACHE/rtx-runtime/<version>-<GPU>.cache`` in the engine cache folder (one file per GPU and version: a
cache made elsewhere is refused by TensorRT-RTX, which would otherwise make two GPUs overwrite each other's file).
The runner attaches the cache to the execution context's runtime config (``IRuntimeConfig.set_runtime_cache``) and
saves it, atomically, after the first run of each new shape and when it closes. A file TensorRT-RTX refuses starts
an empty cache; a file that cannot be written, or a cache the config does not take, costs only time, never the run.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gldfn_model.common.atomic import atomic_output

RUNTIME_CACHE_FOLDER = "rtx-runtime"


def runtime_cache_path(root: Path, version: str, gpu_name: str, compute_capability: str) -> Path:
    """The runtime cache file for TensorRT-RTX ``version`` on one GPU model, under the engine cache ``root``."""
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{version}-{gpu_name}-{compute_capability}").strip("_")
    return root / RUNTIME_CACHE_FOLDER / f"{slug}.cache"


class RuntimeCacheFile:
    """One runtime cache file: :meth:`attach` gives it to a runtime config, :meth:`save` writes what it holds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.loaded = False  # whether TensorRT-RTX took the file's kernels
        self._cache: Any = None
        self._saved: bytes | None = None

    def attach(self, runtime_config: Any) -> None:
        """Create the cache from the file (when TensorRT-RTX accepts it) and set it on ``runtime_config``."""
        cache = runtime_config.create_runtime_cache()
        try:
            blob = self.path.read_bytes()
        except OSError:
            blob = b""
        self.loaded = bool(blob) and bool(cache.deserialize(blob))
        self._saved = blob if self.loaded else None
        self._cache = cache if runtime_config.set_runtime_cache(cache) else None

    def save(self) -> bool:
        """Write the cache when it changed since it was loaded or saved; whether the file was written."""
        if self._cache is None:
            return False
        blob = bytes(self._cache.serialize())
        if not blob or blob == self._saved:
            return False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(self.path, overwrite=True) as tmp:  # this cache's own file, updated
                tmp.write_bytes(blob)
        except OSError:
            return False  # the kernels are compiled again next time
        self._saved = blob
        return True
