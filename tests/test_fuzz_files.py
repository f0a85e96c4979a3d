"""Issue 19: property-based fuzzing of every file the project reads. Hypothesis mutates a valid checkpoint, engine
sidecar, degrade manifest, models.json and PNG (structure-aware: a value swapped for one of any type, a key dropped
or added, deep nesting, a chunk rewritten with a valid CRC; and byte-level: flips, insertions, truncation) and runs
the command that reads it. Each run must end with exit status 0 (a harmless mutation) or 1 with an ``error:`` line,
never a traceback, and a failed run writes nothing.

The default suite runs a few derandomized examples per kind; ``-m slow`` runs FUZZ_EXAMPLES (500, or
$GLDFN_FUZZ_EXAMPLES) per kind and prints how many ended which way."""
from __future__ import annotations

import collections
import json
import os
import struct
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from crafted_files import (
    checkpoint_payload,
    png_chunks,
    png_from_chunks,
    write_checkpoint,
    write_degrade_folder,
    write_engine_with_sidecar,
    write_png,
)
from typer.testing import CliRunner

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed (pip install -e '.[test]')")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

DEFAULT_EXAMPLES = 8
FUZZ_EXAMPLES = int(os.environ.get("GLDFN_FUZZ_EXAMPLES", "500"))  # per kind, in the slow test
KINDS = ("checkpoint", "sidecar", "manifest", "models", "png")
OUTCOMES: collections.Counter = collections.Counter()

# ---------------------------------------------------------------- mutations

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12)
           | st.sampled_from([0, 1, -1, 2**31, 2**63, 1e308, float("nan"), float("inf"), "", "x" * 200]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
tensors = st.builds(
    lambda shape, dtype, fill: torch.full(shape, fill).to(dtype),
    st.lists(st.integers(0, 5), max_size=4).map(tuple),
    st.sampled_from([torch.float32, torch.float16, torch.float64, torch.int64, torch.uint8, torch.bool]),
    st.sampled_from([0.0, 1.0, -3.5, float("nan"), float("inf")]),
)
CONTAINERS = (dict, list, tuple)
DEEP = "<deep>"
DEEP_JSON = "[" * 100_000 + "]" * 100_000


def _children(value: Any) -> list:
    return list(value) if isinstance(value, dict) else list(range(len(value)))


def _rebuilt(value: Any, path: tuple, change: Callable[[Any], Any]) -> Any:
    """``value`` with ``change`` applied to the container at ``path`` (tuples and lists rebuilt as copies)."""
    if not path:
        return change(value)
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _rebuilt(value[head], rest, change)}
    items = list(value)
    items[head] = _rebuilt(items[head], rest, change)
    return type(value)(items)


@st.composite
def tree_mutations(draw, document: Any, leaves: st.SearchStrategy, deepest: int = 5000) -> Any:
    """``document`` changed one to three times where a random walk from its root stops: a value replaced by one of
    any type, a key or item removed, one added, or a value buried under up to ``deepest`` levels of lists."""
    for _ in range(draw(st.integers(1, 3))):
        path, node = (), document
        while True:
            inner = [key for key in _children(node) if isinstance(node[key], CONTAINERS) and len(node[key])]
            if not inner or draw(st.integers(0, 2)) == 0:
                break
            key = draw(st.sampled_from(inner))
            path, node = (*path, key), node[key]
        keys = _children(node)
        action = draw(st.sampled_from(["replace", "replace", "delete", "add", "nest"] if keys else ["add"]))
        key = draw(st.sampled_from(keys)) if keys else None

        def change(container, action=action, key=key, node=node):
            if isinstance(container, dict):
                container = dict(container)
            else:
                container = list(container)
            if action == "replace":
                container[key] = draw(leaves)
            elif action == "delete":
                del container[key]
            elif action == "nest":
                nested = container[key]
                depth = draw(st.sampled_from([1, 50, deepest]))
                if depth > 500:
                    nested = DEEP  # serialized as that many levels of lists (too deep for json.dumps)
                else:
                    for _ in range(depth):
                        nested = [nested]
                container[key] = nested
            elif isinstance(container, dict):
                container[draw(st.text(max_size=8))] = draw(leaves)
            else:
                container.insert(draw(st.integers(0, len(container))), draw(leaves))
            return container if isinstance(node, (dict, list)) else tuple(container)

        document = _rebuilt(document, path, change)
    return document


@st.composite
def byte_mutations(draw, data: bytes, hot: int | None = None) -> bytes:
    """``data`` with bytes flipped, inserted, removed, repeated or cut off; ``hot``: half the positions fall in
    its first ``hot`` bytes (where a format keeps its structure)."""
    for _ in range(draw(st.integers(1, 4))):
        end = len(data) if hot is None or draw(st.booleans()) else min(hot, len(data))
        at = draw(st.integers(0, max(0, end - 1)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "repeat"]))
        if action == "flip" and data:
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
        elif action == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
        elif action == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 64)) :]
        elif action == "truncate":
            data = data[:at]
        elif action == "repeat":
            data = data[:at] + data[at : at + 64] * draw(st.integers(2, 50)) + data[at:]
    return data


@st.composite
def png_mutations(draw, data: bytes) -> bytes:
    """Chunk-level changes with valid CRCs (so decoders read them): a chunk's data rewritten or cut, an IHDR field
    changed, the pixel stream damaged, an ancillary chunk added (text, ICC, EXIF, palette; some inflating to
    megabytes); or byte-level damage."""
    if draw(st.integers(0, 3)) == 0:
        return draw(byte_mutations(data))
    chunks = png_chunks(data)
    action = draw(st.sampled_from(["ihdr", "idat", "chunk", "add", "add", "drop"]))
    if action == "ihdr":
        width, height, depth, colour, *rest = struct.unpack(">IIBBBBB", chunks[0][1])
        field = draw(st.sampled_from(["width", "height", "depth", "colour", "rest"]))
        value = draw(st.sampled_from([0, 1, 2, 3, 4, 6, 8, 16, 255, 65535, 2**31 - 1, 2**32 - 1]))
        width, height = (value if field == "width" else width), (value if field == "height" else height)
        depth, colour = (value % 256 if field == "depth" else depth), (value % 256 if field == "colour" else colour)
        rest = [value % 256 if field == "rest" else r for r in rest]
        chunks[0] = (b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, *rest))
    elif action == "idat":
        index = next(i for i, (kind, _) in enumerate(chunks) if kind == b"IDAT")
        chunks[index] = (b"IDAT", draw(byte_mutations(chunks[index][1])))
    elif action == "chunk":
        index = draw(st.integers(0, len(chunks) - 1))
        chunks[index] = (chunks[index][0], draw(byte_mutations(chunks[index][1])))
    elif action == "drop":
        del chunks[draw(st.integers(0, len(chunks) - 1))]
    else:
        kind = draw(st.sampled_from([b"tEXt", b"zTXt", b"iTXt", b"iCCP", b"eXIf", b"PLTE", b"tRNS", b"sBIT", b"gAMA",
                                     b"pHYs", b"acTL", b"fcTL", b"xxXx"]))
        inflated = draw(st.sampled_from([0, 100, 4 << 20]))
        body = draw(st.binary(max_size=24)) + (zlib.compress(b"\0" * inflated) if inflated else b"")
        if kind in (b"zTXt", b"iCCP"):
            body = b"key\x00\x00" + (zlib.compress(b"a" * inflated) if draw(st.booleans()) else body)
        chunks.insert(draw(st.integers(1, len(chunks) - 1)), (kind, body))
    return png_from_chunks(chunks)


# ---------------------------------------------------------------- running a mutated file

def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def _check(kind: str, app: Any, args: list[Any], folder: Path, before: set[Path], *named: Path) -> int:
    """Run the command; assert it succeeded or failed cleanly (an error naming one of the ``named`` files, if any
    are given, and nothing written); its exit status."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed and "Traceback" not in result.output, (args, result.output, repr(result.exception))
    assert result.exit_code in (0, 1), (args, result.exit_code, result.output)
    if result.exit_code == 1:
        text = result.output.replace("\n", "")
        assert "error:" in text and (not named or any(str(path) in text for path in named)), result.output
        assert _files(folder) == before, (args, result.output, sorted(_files(folder) - before))
    return result.exit_code


def _count(kind: str, *statuses: int) -> None:
    OUTCOMES[kind, "error" if any(statuses) else "ok"] += 1


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> dict[str, Any]:
    """The valid files every mutation starts from (contents, read once)."""
    from gldfn_model.network.registry import weights_dir

    folder = tmp_path_factory.mktemp("valid")
    engine = write_engine_with_sidecar(folder)
    _, lr = write_degrade_folder(folder)
    return {
        "checkpoint": checkpoint_payload(write_checkpoint(folder / "good.pt")),
        "checkpoint_bytes": (folder / "good.pt").read_bytes(),
        "sidecar": json.loads(Path(f"{engine}.json").read_text()),
        "engine": engine.read_bytes(),
        "manifest": json.loads((lr / "manifest.json").read_text()),
        "models": json.loads((weights_dir() / "models.json").read_text()),
        "png8": write_png(folder / "p8.png").read_bytes(),
        "png16": write_png(folder / "p16.png", depth=16).read_bytes(),
        "weights": weights_dir(),
    }


def _run_checkpoint(valid: dict, data: st.DataObject, folder: Path) -> None:
    from gldfn_model.cli import app

    path = folder / "m.pt"
    if data.draw(st.integers(0, 3)):
        torch.save(data.draw(tree_mutations(valid["checkpoint"], json_values | tensors, deepest=400)), path)
    else:
        path.write_bytes(data.draw(byte_mutations(valid["checkpoint_bytes"], hot=24_000)))
    photo = write_png(folder / "photo.png")
    _count("checkpoint", _check("checkpoint", app, ["upscale", "--checkpoint", path, photo, "-o", folder / "out"], folder,
                                _files(folder), path, photo))


def _mutated_json(valid: dict, key: str, data: st.DataObject) -> bytes:
    if data.draw(st.integers(0, 3)):
        text = json.dumps(data.draw(tree_mutations(valid[key], json_values)))
        return text.replace(json.dumps(DEEP), DEEP_JSON, 1).encode()
    return data.draw(byte_mutations(json.dumps(valid[key], indent=1).encode()))


def _run_sidecar(valid: dict, data: st.DataObject, folder: Path) -> None:
    from gldfn_runtime.cli.main import app

    engine = folder / "model.engine"
    engine.write_bytes(valid["engine"])
    sidecar = Path(f"{engine}.json")
    sidecar.write_bytes(_mutated_json(valid, "sidecar", data))
    _count("sidecar", _check("sidecar", app, ["inspect", engine], folder, _files(folder), sidecar, engine))


def _run_manifest(valid: dict, data: st.DataObject, folder: Path) -> None:
    from gldfn_model.cli import app

    hr, lr = write_degrade_folder(folder)
    (lr / "manifest.json").write_bytes(_mutated_json(valid, "manifest", data))
    _count("manifest", _check("manifest", app, ["eval", hr, "--lr-dir", lr], folder, _files(folder), lr / "manifest.json",
                              lr, hr))


def _run_models(valid: dict, data: st.DataObject, folder: Path) -> None:
    from gldfn_model.cli import app
    from gldfn_model.network import registry

    weights = folder / "weights"
    weights.mkdir()
    for path in valid["weights"].iterdir():
        if path.suffix == ".pt":
            (weights / path.name).symlink_to(path)
    (weights / "models.json").write_bytes(_mutated_json(valid, "models", data))
    photo = write_png(folder / "photo.png")
    before = _files(folder)
    original = registry.weights_dir
    registry.weights_dir = lambda: weights
    registry.shipped_models.cache_clear()
    try:
        _count("models", _check("models", app, ["models"], folder, before, weights / "models.json"),
               _check("models", app, ["upscale", photo, "-o", folder / "out"], folder, before))
    finally:
        registry.weights_dir = original
        registry.shipped_models.cache_clear()


def _run_png(valid: dict, data: st.DataObject, folder: Path) -> None:
    from gldfn_model.cli import app

    hr = folder / "hr"
    hr.mkdir()
    image = hr / "image.png"
    image.write_bytes(data.draw(png_mutations(valid[data.draw(st.sampled_from(["png8", "png16"]))])))
    _count("png", _check("png", app, ["degrade", hr, "-o", folder / "lr", "-s", "2", "--setting", "iso"], folder,
                         _files(folder), image))


RUNS = {"checkpoint": _run_checkpoint, "sidecar": _run_sidecar, "manifest": _run_manifest, "models": _run_models,
        "png": _run_png}


def _fuzz(kind: str, valid: dict, examples: int, derandomize: bool) -> None:
    @settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data: st.DataObject) -> None:
        with tempfile.TemporaryDirectory(prefix=f"gldfn-fuzz-{kind}-") as folder:
            RUNS[kind](valid, data, Path(folder))

    run()


@pytest.mark.parametrize("kind", KINDS)
def test_mutated_files_give_one_error_or_success(kind, valid):
    before = sum(OUTCOMES[kind, outcome] for outcome in ("ok", "error"))
    _fuzz(kind, valid, DEFAULT_EXAMPLES, derandomize=True)
    assert sum(OUTCOMES[kind, outcome] for outcome in ("ok", "error")) > before


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_hundreds_of_mutated_files_give_one_error_or_success(kind, valid, capsys):
    runs = {outcome: OUTCOMES[kind, outcome] for outcome in ("ok", "error")}
    _fuzz(kind, valid, FUZZ_EXAMPLES, derandomize=False)
    counts = {outcome: OUTCOMES[kind, outcome] - runs[outcome] for outcome in runs}
    with capsys.disabled():
        print(f"\nfuzz {kind}: {sum(counts.values())} mutated files, {counts['error']} refused with one error line, "
              f"{counts['ok']} harmless")
    assert sum(counts.values()) >= FUZZ_EXAMPLES
