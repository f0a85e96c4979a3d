"""``gldfn-trt cache ls | clean``: a thin layer over gldfn_runtime.engine.cache."""
from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import typer

from gldfn_model.cli.options import JSON
from gldfn_model.common.cli_errors import GldfnTyper
from gldfn_model.common.sizes import format_bytes, parse_bytes
from gldfn_runtime.engine.cache import CacheEntry, EngineCache, describe_cap
from gldfn_runtime.engine.sidecar import PRECISIONS, showable_path

app = GldfnTyper(add_completion=False, no_args_is_help=True,
                 help="The engine cache (default: $GLDFN_TRT_CACHE_DIR or ~/.cache/gldfn-trt/engines).")
CACHE_DIR = typer.Option(None, "--cache-dir", help="the engine cache (default: $GLDFN_TRT_CACHE_DIR or "
                         "~/.cache/gldfn-trt/engines)")


def _max_size(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return parse_bytes(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def _describe(entry: CacheEntry) -> dict:
    sidecar = entry.sidecar
    onnx = sidecar.onnx if sidecar is not None and isinstance(sidecar.onnx, dict) else {}
    return {
        "key": entry.key, "bytes": entry.size,
        "last_used": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.last_used)),
        "precision": sidecar.precision if sidecar is not None and sidecar.precision in PRECISIONS else None,
        # Shown as a value, quoted; a path unfit to show (control characters) is left out.
        "onnx": showable_path(onnx.get("path")),
        "complete": sidecar is not None,
    }


@app.command("ls")
def list_command(cache_dir: Path | None = CACHE_DIR, as_json: bool = JSON) -> None:
    """The cached engines, most recently used first: key, size, last use, precision and the ONNX file each was
    built from; then the total and the size cap."""
    cache = EngineCache(cache_dir)
    entries = cache.entries()
    rows = [_describe(entry) for entry in entries]
    total = sum(entry.size for entry in entries)
    if as_json:
        typer.echo(json.dumps({"cache": str(cache.root), "max_bytes": cache.max_size, "total_bytes": total,
                               "engines": rows}, indent=2))
        return
    typer.echo(f"{cache.root}: {len(rows)} engine(s), {format_bytes(total)} of {describe_cap(cache)}")
    for row in rows:
        what = (f"{row['precision'] or 'unknown precision'} from {shlex.quote(row['onnx']) if row['onnx'] else '(ONNX path not shown)'}"
                if row["complete"] else "incomplete (no readable sidecar)")
        typer.echo(f"  {row['key'][:12]}  {format_bytes(row['bytes']):>10}  {row['last_used']}  {what}")


@app.command("clean")
def clean_command(
    max_size: str | None = typer.Option(None, "--max-size", help="keep the most recently used engines up to this "
                                        "size (e.g. 2G, 500M; binary units); default: remove every engine"),
    cache_dir: Path | None = CACHE_DIR,
) -> None:
    """Remove cached engines: all of them, or the least recently used beyond --max-size. An engine another
    process is writing is kept."""
    limit = _max_size(max_size)
    cache = EngineCache(cache_dir)
    removed = cache.evict(0 if limit is None else limit)
    left = cache.entries()
    typer.echo(f"removed {len(removed)} engine(s) ({format_bytes(sum(e.size for e in removed))}); {len(left)} left "
               f"({format_bytes(sum(e.size for e in left))}) in {cache.root}")
