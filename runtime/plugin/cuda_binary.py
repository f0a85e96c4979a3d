"""Which GPUs a shared library's CUDA code runs on, read from the library file itself.

nvcc embeds device code in an ELF section ``.nv_fatbin``: one or more fatbinary containers (magic 0xBA55ED50, a
16-byte header giving its own size and the size of the entries that follow), each holding entries that are SASS
(a cubin for one SM) or PTX (for JIT compilation), with the SM and flags in the entry's header. Compressed
entries keep that header uncompressed, so nothing here decompresses. The layout below was checked against
``cuobjdump --list-elf --list-ptx`` (tests/test_plugin_archs.py) on libraries nvcc 13 built.

Which GPU runs which code (CUDA's binary compatibility): a cubin for sm_XY runs on compute capability X.Z for
Z >= Y; an arch-specific cubin (sm_90a) only on X.Y itself; a family one (sm_100f) on X.Z, Z >= Y. PTX for
compute_XY is JIT-compiled on any GPU of capability >= X.Y (compute_XYa only on X.Y, compute_XYf within the
family).
"""
from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gldfn_model.common.errors import GldfnError

FATBIN_SECTION = ".nv_fatbin"
FATBIN_MAGIC = 0xBA55ED50
_CONTAINER = struct.Struct("<IHHQ")  # magic, version, header size, size of the entries after the header
_ENTRY_HEAD = struct.Struct("<HHIQ")  # kind, version, header size, payload size (padded)
_ENTRY_ARCH_AT, _ENTRY_FLAGS_AT, _MIN_ENTRY_HEADER = 28, 40, 48
_KIND_PTX, _KIND_ELF = 1, 2
_FLAG_ARCH_SPECIFIC, _FLAG_FAMILY = 0x100000, 0x200000  # sm_90a, sm_100f: as nvcc 13 writes them (undocumented)
_SHT_NOBITS = 8
_NAME = re.compile(r"(sm|compute)_(\d+)(\d)([af]?)")
_TARGET = re.compile(r"(?:SM|sm_)?(\d+)(\d)")


class CudaBinaryError(GldfnError, ValueError):
    """The file is not a 64-bit little-endian ELF, or its fatbinary cannot be read."""


@dataclass(frozen=True)
class CudaArch:
    """One entry's code: SASS (a cubin) or PTX, for SM ``major``.``minor``; ``variant`` "a" (arch-specific),
    "f" (family) or ""."""

    major: int
    minor: int
    ptx: bool
    variant: str = ""

    @property
    def name(self) -> str:
        """nvcc's spelling: ``sm_86`` for SASS, ``compute_86`` for PTX, with the variant suffix."""
        return f"{'compute' if self.ptx else 'sm'}_{self.major}{self.minor}{self.variant}"

    @classmethod
    def parse(cls, name: str) -> CudaArch:
        match = _NAME.fullmatch(name)
        if match is None:
            raise ValueError(f"{name!r} is not a CUDA architecture like sm_86, sm_90a or compute_80")
        return cls(int(match[2]), int(match[3]), match[1] == "compute", match[4])

    def runs_on(self, major: int, minor: int) -> bool:
        """Whether a GPU of compute capability ``major``.``minor`` runs this code (PTX: after JIT)."""
        if self.variant == "a":
            return (major, minor) == (self.major, self.minor)
        if self.ptx and not self.variant:
            return (major, minor) >= (self.major, self.minor)
        return major == self.major and minor >= self.minor

    def __str__(self) -> str:
        return self.name


def parse_target(target: str) -> tuple[int, int]:
    """``SM86`` (TensorRT-RTX's and the sidecar's spelling), ``sm_86`` or ``86`` as (8, 6)."""
    match = _TARGET.fullmatch(target.strip())
    if match is None:
        raise ValueError(f"{target!r} is not a compute capability like SM86")
    return int(match[1]), int(match[2])


def uncovered_targets(archs: Iterable[CudaArch], targets: Iterable[str]) -> list[str]:
    """The ``targets`` (``SM86``...) that none of ``archs`` runs on, in the given order."""
    archs = list(archs)
    return [target for target in targets if not any(arch.runs_on(*parse_target(target)) for arch in archs)]


def _elf_sections(data: bytes, path: Path) -> dict[str, bytes]:
    if data[:4] != b"\x7fELF" or data[4:6] != b"\x02\x01":
        raise CudaBinaryError(f"{path} is not a 64-bit little-endian ELF file (not a Linux shared library)")
    section = struct.Struct("<IIQQQQIIQQ")
    try:
        shoff, = struct.unpack_from("<Q", data, 0x28)
        if shoff == 0:
            return {}
        entsize, count, names_index = struct.unpack_from("<HHH", data, 0x3A)
        first = section.unpack_from(data, shoff)
        count = count or first[5]  # more than 0xff00 sections: the count and names index are in section 0
        names_index = first[6] if names_index == 0xFFFF else names_index
        headers = [section.unpack_from(data, shoff + i * entsize) for i in range(count)]
        names = headers[names_index]
    except (struct.error, IndexError):
        raise CudaBinaryError(f"{path}: truncated or malformed ELF section table") from None
    sections = {}
    for name_at, kind, _flags, _addr, offset, size, *_rest in headers[1:]:
        start = names[4] + name_at
        name = data[start:data.find(b"\0", start)].decode(errors="replace")
        sections[name] = b"" if kind == _SHT_NOBITS else data[offset:offset + size]
    return sections


def parse_fatbin(data: bytes, where: str = "fatbinary") -> list[CudaArch]:
    """Every entry's architecture in the consecutive fatbinary containers of ``data`` (zero padding between
    containers allowed), in file order."""
    archs, position = [], 0
    while position < len(data):
        if data[position:position + 8] == bytes(8):
            position += 8
            continue
        if len(data) - position < _CONTAINER.size:
            raise CudaBinaryError(f"{where}: {len(data) - position} stray bytes at offset {position}")
        magic, _version, header_size, size = _CONTAINER.unpack_from(data, position)
        end = position + header_size + size
        if magic != FATBIN_MAGIC or header_size < _CONTAINER.size or end > len(data):
            raise CudaBinaryError(f"{where}: no fatbinary container at offset {position} (magic {magic:#x})")
        entry = position + header_size
        while entry < end:
            if end - entry < _MIN_ENTRY_HEADER:
                raise CudaBinaryError(f"{where}: truncated entry header at offset {entry}")
            kind, _version, entry_header, payload = _ENTRY_HEAD.unpack_from(data, entry)
            if entry_header < _MIN_ENTRY_HEADER or entry + entry_header + payload > end:
                raise CudaBinaryError(f"{where}: malformed entry at offset {entry}")
            arch, = struct.unpack_from("<I", data, entry + _ENTRY_ARCH_AT)
            flags, = struct.unpack_from("<Q", data, entry + _ENTRY_FLAGS_AT)
            if kind in (_KIND_PTX, _KIND_ELF):
                variant = "a" if flags & _FLAG_ARCH_SPECIFIC else "f" if flags & _FLAG_FAMILY else ""
                archs.append(CudaArch(arch // 10, arch % 10, kind == _KIND_PTX, variant))
            entry += entry_header + payload
        position = end
    return archs


def read_cuda_archs(path: str | Path) -> tuple[CudaArch, ...] | None:
    """The distinct architectures of the CUDA code embedded in the ELF file ``path``, SASS then PTX, each by SM;
    None when it has no ``.nv_fatbin`` section (no CUDA code, or not built by nvcc)."""
    path = Path(path)
    sections = _elf_sections(path.read_bytes(), path)
    if FATBIN_SECTION not in sections:
        return None
    return tuple(sorted(set(parse_fatbin(sections[FATBIN_SECTION], f"{path} ({FATBIN_SECTION})")), key=_sass_first))


def _sass_first(arch: CudaArch) -> tuple[bool, int, int, str]:
    return arch.ptx, arch.major, arch.minor, arch.variant


def format_archs(archs: Iterable[CudaArch]) -> str:
    """``sm_80, sm_86, compute_80``: SASS first, then PTX."""
    return ", ".join(arch.name for arch in sorted(archs, key=_sass_first)) or "none"
