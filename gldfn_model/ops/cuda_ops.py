"""The project's CUDA kernel as the CUDA forward of ``torch.ops.gldfn.local_dynamic_filter``.

ldf_op registers :func:`local_dynamic_filter_cuda` as the op's CUDA kernel and imports this module only when the
op first runs on CUDA tensors, so the CPU path neither imports nor compiles anything from here. On that first
call the kernel sources in ``plugins/local_dynamic_filter`` and the binding
``plugins/torch_binding/ldf_torch_binding.cpp`` are compiled with ``torch.utils.cpp_extension.load`` (cached in
torch's extension folder, ``TORCH_EXTENSIONS_DIR``, rebuilt when a source changes). :func:`load_extension`
builds it ahead of time. torch marks a build in progress with a plain ``lock`` file that a killed build leaves
behind, and every later build waits for it forever; builds here hold an OS file lock (freed when its holder dies)
around torch's, so a ``lock`` file found while holding it is stale and is removed. Attributes outside the op contract are refused before either runs (ldf_op._check_inputs),
and the binding is compiled with the contract's dilation range (:func:`contract_defines`). Where the kernel cannot
run (no CUDA, no nvcc or ninja, a build error, a dtype it has no code for) the PyTorch reference runs instead and
a warning says why, once per reason.
The backward stays the reference's torch ops, which run on CUDA tensors as well.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from torch import Tensor

from gldfn_model.ops.contract import load_contract
from gldfn_model.ops.ldf_op import check_ldf_inputs, local_dynamic_filter_reference

REPO_ROOT = Path(__file__).resolve().parents[2]
KERNEL_DIR = REPO_ROOT / "plugins" / "local_dynamic_filter"
KERNEL_SOURCE = KERNEL_DIR / "ldf_kernel.cu"
KERNEL_HEADERS = [KERNEL_DIR / name for name in ("ldf_kernel.h", "ldf_kernel_impl.cuh", "ldf_arithmetic.h")]
BINDING_SOURCE = REPO_ROOT / "plugins" / "torch_binding" / "ldf_torch_binding.cpp"
EXTENSION_NAME = "gldfn_ldf_cuda"
SUPPORTED_DTYPES = (torch.float32, torch.float16)
_REASON_TAIL_CHARS = 3000

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtensionStatus:
    """The outcome of building and loading the extension: its forward, or why there is none."""

    forward: Callable[..., Tensor] | None
    reason: str = ""
    build_seconds: float = 0.0

    @property
    def available(self) -> bool:
        return self.forward is not None


def contract_defines() -> list[str]:
    """The op contract's dilation range as compiler definitions for the binding, so that a direct call of
    ``gldfn_cuda::local_dynamic_filter_forward`` accepts what the contract (and the plugin) does, no more."""
    dilation = load_contract().attribute("dilation")
    return [f"-DGLDFN_LDF_MIN_DILATION={int(dilation['min'])}", f"-DGLDFN_LDF_MAX_DILATION={int(dilation['max'])}"]


def build_extension(name: str, sources: Sequence[Path], include_dirs: Sequence[Path] = (),
                    depends_on: Sequence[Path] = (), defines: Sequence[str] = ()) -> ExtensionStatus:
    """Compile and load a torch extension whose sources register torch operators (no Python module).

    ``depends_on`` are headers whose contents go into the build flags, so that changing one rebuilds the
    extension; ``defines`` are extra ``-D`` flags. Never raises for a build problem: the status carries the
    error instead."""
    missing = [str(path) for path in [*sources, *depends_on] if not path.is_file()]
    if missing:
        return ExtensionStatus(None, f"sources not found: {', '.join(missing)} (the CUDA op is built from a source "
                                     "checkout of the project, where plugins/ sits next to gldfn_model/)")
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in depends_on)).hexdigest()[:16]
    flags = ["-O3", f"-DGLDFN_LDF_HEADERS_SHA={digest}", *defines]  # the C++ standard is the one torch requires
    start = time.perf_counter()
    try:
        from torch.utils import cpp_extension

        build_dir = Path(cpp_extension._get_build_directory(name, verbose=False))
        with _exclusive_build(build_dir):
            cpp_extension.load(name=name, sources=[str(path) for path in sources], extra_cflags=flags,
                               extra_cuda_cflags=flags, extra_include_paths=[str(path) for path in include_dirs],
                               build_directory=str(build_dir), is_python_module=False)
    # cpp_extension reports a missing nvcc/ninja/CUDA_HOME, a compiler error and a failed dlopen with different
    # exception types; every one of them means "use the reference and say why".
    except Exception as error:  # noqa: BLE001
        message = f"{type(error).__name__}: {error}".strip()
        if len(message) > _REASON_TAIL_CHARS:
            message = "..." + message[-_REASON_TAIL_CHARS:]
        return ExtensionStatus(None, f"building the CUDA extension {name!r} failed: {message}")
    return ExtensionStatus(torch.ops.gldfn_cuda.local_dynamic_filter_forward, build_seconds=time.perf_counter() - start)


@contextlib.contextmanager
def _exclusive_build(build_dir: Path):
    """Hold an OS lock on ``build_dir`` (released by the kernel when its holder dies) and remove torch's ``lock``
    file, which only a dead build can have left while this lock is held."""
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir.parent / f"{build_dir.name}.flock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        stale = build_dir / "lock"
        if stale.exists():
            log.warning("removing %s, left by a build that was killed", stale)
            stale.unlink(missing_ok=True)
        yield


@cache
def load_extension() -> ExtensionStatus:
    """Build (first time, then from cache) and load the CUDA extension; the result is kept for the process."""
    if not torch.cuda.is_available():
        return ExtensionStatus(None, "torch has no CUDA (a build without CUDA, or no GPU visible)")
    log.info("compiling the local dynamic filter CUDA extension (first use; cached afterwards)")
    status = build_extension(EXTENSION_NAME, [BINDING_SOURCE, KERNEL_SOURCE], [KERNEL_DIR], KERNEL_HEADERS,
                             contract_defines())
    if status.available:
        log.info("CUDA extension ready in %.1f s", status.build_seconds)
    return status


def unsupported_reason(x: Tensor, spatial: Tensor, channel: Tensor, kernel_size: int, dilation: int) -> str | None:
    """Why the CUDA kernel has no code for these (valid) arguments, or None when it has."""
    dtypes = {x.dtype, spatial.dtype, channel.dtype}
    if len(dtypes) > 1:
        return f"x, spatial and channel have different dtypes ({x.dtype}, {spatial.dtype}, {channel.dtype})"
    if x.dtype not in SUPPORTED_DTYPES:
        return f"dtype {x.dtype} has no CUDA kernel (float32 and float16 have)"
    return None  # kernel_size and dilation: the contract's ranges, checked by _check_inputs, all have kernels


_warned: set[str] = set()


def _warn_once(reason: str) -> None:
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"gldfn::local_dynamic_filter runs the PyTorch reference on CUDA: {reason}", RuntimeWarning,
                      stacklevel=3)


def local_dynamic_filter_cuda(x: Tensor, spatial: Tensor, channel: Tensor, kernel_size: int, dilation: int) -> Tensor:
    """The op's CUDA forward: the project's kernel, or the reference with a one-time warning where it can't run."""
    check_ldf_inputs(x, spatial, channel, kernel_size, dilation)
    if len({x.device, spatial.device, channel.device}) > 1:
        # Not a kernel limitation but a caller error: the reference raises torch's own device-mismatch error.
        return local_dynamic_filter_reference(x, spatial, channel, kernel_size, dilation)
    reason = unsupported_reason(x, spatial, channel, kernel_size, dilation)
    if reason is None:
        status = load_extension()
        if status.available:
            return status.forward(x, spatial, channel, kernel_size, dilation)
        reason = status.reason
    _warn_once(reason)
    return local_dynamic_filter_reference(x, spatial, channel, kernel_size, dilation)
