"""The engine cache stays within its size cap by removing the least recently used engines (a lookup marks an engine
used), and ``gldfn-trt cache ls | clean [--max-size]`` lists and trims it. The cache is given plain byte strings as
engines: what it keeps, finds and evicts does not depend on what the bytes are."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from gldfn_model.common.temps import host_tag
from gldfn_runtime.cli.main import app
from gldfn_runtime.engine.cache import DEFAULT_MAX_SIZE, MAX_SIZE_ENV, EngineCache, default_max_size
from gldfn_runtime.engine.sidecar import EngineSidecar

ENGINE_BYTES = 1000


def _sidecar(plan: bytes, key: str, onnx_path: str = "/models/m.onnx") -> EngineSidecar:
    return EngineSidecar(
        engine_sha256=hashlib.sha256(plan).hexdigest(), engine_bytes=len(plan),
        onnx={"path": onnx_path, "sha256": "0" * 64, "precision": "fp32", "scale": 4, "config": "tiny"}, plugin=None,
        tensorrt={"flavour": "tensorrt-rtx", "version": "1.7"}, precision="fp16",
        profile={"input": "lr", "batch": 1, "min": [8, 8], "opt": [16, 16], "max": [32, 32]},
        target={"compute_capabilities": ["SM86"]}, build_seconds=1.0, built_at="2026-01-01T00:00:00+00:00",
        inputs=[{"name": "lr", "shape": [1, 3, -1, -1], "dtype": "float"}],
        outputs=[{"name": "sr", "shape": [1, 3, -1, -1], "dtype": "float"}], layers=[], macs_at_opt=None, cache_key=key,
        rebuild_command="gldfn-trt build ...",
    )


def _store(cache: EngineCache, name: str, when: float, onnx_path: str = "/models/m.onnx") -> str:
    """Store an engine for the key of ``name``, last used at ``when`` (seconds since the epoch)."""
    key = hashlib.sha256(name.encode()).hexdigest()[:32]
    plan = name.encode().ljust(ENGINE_BYTES, b".")
    cache.store(key, plan, _sidecar(plan, key, onnx_path))
    os.utime(cache.root / key, (when, when))
    return key


def _keys(cache: EngineCache) -> list[str]:
    return [entry.key for entry in cache.entries()]


def test_eviction_removes_the_least_recently_used_and_a_lookup_counts_as_a_use(tmp_path):
    cache = EngineCache(tmp_path, max_size=1 << 30)
    a, b, c = (_store(cache, name, when) for name, when in (("a", 1000), ("b", 2000), ("c", 3000)))
    assert _keys(cache) == [c, b, a]
    assert cache.lookup(a) is not None  # used now: the most recent
    assert _keys(cache) == [a, c, b]
    per_entry = cache.entries()[0].size
    removed = cache.evict(2 * per_entry)
    assert [entry.key for entry in removed] == [b] and _keys(cache) == [a, c]
    assert cache.lookup(b) is None


def test_storing_keeps_the_cache_within_its_cap_but_never_drops_the_new_engine(tmp_path):
    probe = EngineCache(tmp_path / "probe")
    _store(probe, "probe", 1000)
    per_entry = probe.entries()[0].size
    cache = EngineCache(tmp_path / "cache", max_size=2 * per_entry)
    first, second = _store(cache, "first", 1000), _store(cache, "second", 2000)
    third = _store(cache, "third", 3000)
    assert _keys(cache) == [third, second]
    tiny = EngineCache(tmp_path / "cache", max_size=1)
    fourth = _store(tiny, "fourth", 4000)
    assert _keys(tiny) == [fourth] and first not in _keys(tiny)


def test_the_default_cap_and_how_to_change_it(monkeypatch, tmp_path):
    monkeypatch.delenv(MAX_SIZE_ENV, raising=False)
    assert default_max_size() == DEFAULT_MAX_SIZE == 4 << 30
    monkeypatch.setenv(MAX_SIZE_ENV, "1.5G")
    assert EngineCache(tmp_path).max_size == 3 << 29
    monkeypatch.setenv(MAX_SIZE_ENV, "lots")
    result = CliRunner().invoke(app, ["cache", "ls", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"error: ${MAX_SIZE_ENV}: 'lots' is not a size in bytes" in result.output


def test_an_engine_being_written_is_not_evicted(tmp_path):
    cache = EngineCache(tmp_path, max_size=1 << 30)
    busy, idle = _store(cache, "busy", 1000), _store(cache, "idle", 2000)
    live = tmp_path / busy / f".model.engine.gldfn-{host_tag()}-1-abcd_123.tmp"  # pid 1: always running
    live.write_bytes(b"half")
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    dead = tmp_path / idle / f".model.engine.gldfn-{host_tag()}-{process.pid}-abcd_123.tmp"
    dead.write_bytes(b"half")
    assert [entry.key for entry in cache.evict(0)] == [idle]
    assert _keys(cache) == [busy] and live.exists()


def test_cli_lists_and_cleans_and_touches_nothing_else(tmp_path, monkeypatch):
    monkeypatch.delenv(MAX_SIZE_ENV, raising=False)
    cache = EngineCache(tmp_path / "cache")
    old = _store(cache, "old", time.time() - 3600, onnx_path="/models/old model.onnx")
    new = _store(cache, "new", time.time(), onnx_path="/models/x\x1b]0;pwned\x07.onnx")
    (tmp_path / "cache" / "notes").mkdir()
    (tmp_path / "cache" / "README").write_text("mine")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "model.engine").write_bytes(b"a user's file")
    (tmp_path / "cache" / ("f" * 32)).symlink_to(elsewhere)

    listed = CliRunner().invoke(app, ["cache", "ls", "--cache-dir", str(tmp_path / "cache")])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert "2 engine(s)" in lines[0] and "of 4.0 GiB (default; $GLDFN_TRT_CACHE_MAX_SIZE changes it)" in lines[0]
    assert lines[1].split()[0] == new[:12] and "(ONNX path not shown)" in lines[1] and "\x1b" not in listed.output
    assert lines[2].split()[0] == old[:12] and "fp16 from '/models/old model.onnx'" in lines[2]
    as_json = json.loads(CliRunner().invoke(app, ["cache", "ls", "--json", "--cache-dir", str(tmp_path / "cache")]).output)
    assert [row["key"] for row in as_json["engines"]] == [new, old] and as_json["max_bytes"] == 4 << 30

    size = cache.entries()[0].size
    trimmed = CliRunner().invoke(app, ["cache", "clean", "--max-size", str(size), "--cache-dir", str(tmp_path / "cache")])
    assert trimmed.exit_code == 0 and "removed 1 engine(s)" in trimmed.output and "1 left" in trimmed.output
    assert _keys(cache) == [new]
    emptied = CliRunner().invoke(app, ["cache", "clean", "--cache-dir", str(tmp_path / "cache")])
    assert emptied.exit_code == 0 and "removed 1 engine(s)" in emptied.output and _keys(cache) == []
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(["README", "notes", "f" * 32])
    assert (elsewhere / "model.engine").read_bytes() == b"a user's file"
    bad = CliRunner().invoke(app, ["cache", "clean", "--max-size", "a lot", "--cache-dir", str(tmp_path / "cache")])
    assert bad.exit_code == 2 and "is not a size in bytes" in bad.output


def test_a_missing_cache_lists_as_empty(tmp_path):
    result = CliRunner().invoke(app, ["cache", "ls", "--cache-dir", str(tmp_path / "none")])
    assert result.exit_code == 0 and "0 engine(s), 0 B of" in result.output
    assert not (tmp_path / "none").exists()
    assert Path(tmp_path).is_dir()
