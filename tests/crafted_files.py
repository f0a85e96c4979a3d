"""Valid files of every kind the project reads (checkpoint, engine sidecar, degrade manifest, models.json, PNG),
written with the project's own writers, and the byte-level helpers to damage them: shared by the validation
tests and the fuzz tests."""
from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with a correct CRC (so that a decoder looks at its contents)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, data) chunks of a well-formed PNG file."""
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        chunks.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    return chunks


def png_from_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return PNG_SIGNATURE + b"".join(png_chunk(kind, data) for kind, data in chunks)


def write_png(path: Path, width: int = 24, height: int = 20, depth: int = 8, idat: bytes | None = None,
              extra: list[tuple[bytes, bytes]] = ()) -> Path:
    """An RGB PNG of ``depth`` bits (a smooth gradient), ``extra`` chunks before its data; ``idat`` replaces the
    compressed pixel data."""
    if idat is None:
        ramp = np.linspace(0, 2**depth - 1, width * 3, dtype=np.float64)
        row = ramp.astype(">u2" if depth == 16 else np.uint8).tobytes()
        idat = zlib.compress(b"".join(b"\x00" + row for _ in range(height)))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, 2, 0, 0, 0)
    path.write_bytes(png_from_chunks([(b"IHDR", ihdr), *extra, (b"IDAT", idat), (b"IEND", b"")]))
    return path


def corrupt_zlib(data: bytes) -> bytes:
    """``data`` (a zlib stream) with its deflate blocks scrambled: the header stays valid, decoding fails."""
    return data[:2] + bytes(b ^ 0x5A for b in data[2:40]) + data[40:]


def write_checkpoint(path: Path, scale: int = 4, **extra: object) -> Path:
    """A checkpoint of the tiny config (random weights, seed 0), as gldfn writes it."""
    from gldfn_model.network.checkpoint import save_checkpoint
    from gldfn_model.network.config import get_config
    from gldfn_model.network.gldfn import GLDFN

    torch.manual_seed(0)
    save_checkpoint(path, GLDFN(get_config("tiny", scale)), "tiny", **extra)
    return path


def checkpoint_payload(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def deflate_archive(source: Path, target: Path, extra_tensor_bytes: int = 0) -> Path:
    """``source`` (a torch.save zip) repacked with deflate; ``extra_tensor_bytes`` adds a tensor of zeros of that
    size under the key ``blob`` first (it packs to almost nothing)."""
    if extra_tensor_bytes:
        payload = checkpoint_payload(source)
        payload["blob"] = torch.zeros(extra_tensor_bytes // 4)
        stored = target.with_suffix(".stored")
        torch.save(payload, stored)
        source = stored
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as packed:
        for entry in archive.infolist():
            packed.writestr(entry.filename, archive.read(entry.filename))
    if extra_tensor_bytes:
        source.unlink()
    return target


def write_engine_with_sidecar(folder: Path) -> Path:
    """An engine file (opaque bytes) and the sidecar gldfn-trt build would write beside it; `gldfn-trt inspect`
    reads them without TensorRT."""
    import hashlib

    from gldfn_runtime.engine.sidecar import EngineSidecar, write_sidecar

    engine = folder / "model.engine"
    plan = bytes(range(256)) * 16
    engine.write_bytes(plan)
    sidecar = EngineSidecar(
        engine_sha256=hashlib.sha256(plan).hexdigest(), engine_bytes=len(plan),
        onnx={"path": str(folder / "model.onnx"), "sha256": "0" * 64, "precision": "fp32", "scale": 4, "config": "tiny"},
        plugin={"path": str(folder / "libgldfn_plugin.so"), "sha256": "1" * 64, "embedded": False},
        tensorrt={"flavour": "tensorrt-rtx", "version": "1.7.1.116"}, precision="fp32",
        profile={"input": "lr", "batch": 1, "min": [8, 8], "opt": [32, 48], "max": [64, 64]},
        target={"compute_capabilities": ["SM80", "SM86"]}, build_seconds=1.5, built_at="2026-12-01T00:00:00+00:00",
        inputs=[{"name": "lr", "shape": [1, 3, -1, -1], "dtype": "float"}],
        outputs=[{"name": "sr", "shape": [1, 3, -1, -1], "dtype": "float"}],
        layers=[{"name": "conv0", "type": "CONVOLUTION", "plugin": False}, {"name": "ldf0", "type": "PLUGIN_V3",
                                                                            "plugin": True}],
        macs_at_opt=123456, cache_key="c" * 32, rebuild_command="gldfn-trt build model.onnx -o model.engine --force",
    )
    write_sidecar(engine, sidecar)
    return engine


def write_degrade_folder(folder: Path) -> tuple[Path, Path]:
    """(HR folder, LR folder): one 64x48 HR image and its `gldfn degrade --setting iso -s 4` folder with manifest."""
    from conftest import write_smooth_images

    from gldfn_model.evaluation.evaluate import write_degraded_folder

    hr = write_smooth_images(folder / "hr", 1)
    write_degraded_folder(hr, folder / "lr", "iso", 4)
    return hr, folder / "lr"


def read_json(path: Path) -> object:
    return json.loads(path.read_text())
