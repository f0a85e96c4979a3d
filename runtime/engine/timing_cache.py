"""TensorRT's timing cache, kept beside the engine cache: a build after an engine-cache miss (a new profile, precision
or model) re-times only the layer tactics that no earlier build on this GPU and TensorRT version timed.

Full TensorRT only. TensorRT-RTX times no tactics when it builds (its timing-cache calls are no-ops since 1.2); it
compiles kernels when an engine runs, and its runtime cache (``runners/rtx_runtime_cache.py``) keeps those instead.

Layout: ``CACHE/timing/<flavour>-<version>-<GPU>.cache`` in the engine cache folder. A build loads the file, and after
a successful build merges what it timed into the file's current content (another build may have added to it) and
writes it atomically. An unreadable or foreign file starts an empty cache; a file that cannot be written costs only
time, never the build.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gldfn_model.common.atomic import atomic_output

TIMING_FOLDER = "timing"


def timing_cache_path(root: Path, flavour_name: str, version: str, target: dict[str, Any]) -> Path:
    """The timing cache for builds of ``flavour_name`` ``version`` for ``target`` (a GPU, as engine builds record it)."""
    gpu = f"{target.get('gpu', '')}-{target.get('compute_capability', '')}"
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{flavour_name}-{version}-{gpu}").strip("_")
    return root / TIMING_FOLDER / f"{slug}.cache"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _load(config: Any, blob: bytes) -> Any:
    """A timing cache from ``blob``, or an empty one when TensorRT cannot take it."""
    try:
        cache = config.create_timing_cache(blob) if blob else None
    except Exception:  # TensorRT's bindings raise their own types for a corrupt blob
        cache = None
    return cache if cache is not None else config.create_timing_cache(b"")


@contextmanager
def persistent_timing_cache(config: Any, path: Path | None) -> Iterator[None]:
    """Give builder ``config`` the timing cache stored at ``path`` (None: none is kept); after the block ends without
    an error, merge the cache into the file."""
    if path is None:
        yield
        return
    cache = _load(config, _read(path))
    if not config.set_timing_cache(cache, False):  # made by another TensorRT or GPU: start afresh
        config.set_timing_cache(config.create_timing_cache(b""), False)
    yield
    save_timing_cache(config, path)


def save_timing_cache(config: Any, path: Path) -> None:
    """Merge ``config``'s timing cache into the file at ``path`` (written atomically)."""
    ours = config.get_timing_cache()
    if ours is None:
        return
    current = _load(config, _read(path))
    merged = current if current.combine(ours, False) else ours
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path, overwrite=True) as tmp:  # the merged cache replaces the one read
            tmp.write_bytes(bytes(merged.serialize()))
    except OSError:
        pass  # the engine is built and stored; without the file the next build times its tactics again
