"""The plugin library for an engine build: checked to carry CUDA code (read from its fatbinary, ``cuda_binary``)
that runs on every GPU the engine targets, and built for those targets on first need when the default build folder
has none and no library was named.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from gldfn_runtime.plugin.build import (
    build_plugin_library,
    cuda_architectures_for,
    find_nvcc,
    missing_build_tools,
    nvcc_gpu_codes,
)
from gldfn_runtime.plugin.cuda_binary import FATBIN_SECTION, CudaArch, format_archs, uncovered_targets
from gldfn_runtime.plugin.library import (
    DEFAULT_TENSORRT_MAJOR,
    LIBRARY_ENV,
    PluginLibraryError,
    default_build_dir,
    find_plugin_library,
    installed_tensorrt_major,
    library_cuda_archs,
    library_filename,
    locate_plugin_library,
)


def report_to_stderr(line: str) -> None:
    """A progress line for the person waiting: on stderr."""
    print(line, file=sys.stderr, flush=True)


def _plugin_build_command(targets: Sequence[str], tensorrt_major: int) -> str:
    """The `gldfn-trt plugin build` command that builds a library covering ``targets``."""
    nvcc = find_nvcc()
    try:
        archs = cuda_architectures_for(targets, nvcc_gpu_codes(nvcc) if nvcc else None)
    except PluginLibraryError:
        archs = cuda_architectures_for(targets)
    major = "" if tensorrt_major == DEFAULT_TENSORRT_MAJOR else f" --tensorrt-major {tensorrt_major}"
    return f"gldfn-trt plugin build --cuda-archs '{archs}'{major}"


def check_library_targets(
    library: Path, targets: Sequence[str], *, origin: str = "the given path",
    tensorrt_major: int = DEFAULT_TENSORRT_MAJOR, choosable: Sequence[str] = (),
) -> tuple[CudaArch, ...]:
    """The CUDA architectures of ``library``; PluginLibraryError naming the targets, the library's architectures
    and the ways out when its code does not run on every GPU in ``targets`` (``SM86``...), or when it carries no
    CUDA code at all (then it runs on none). ``choosable``: the targets the engine could be built for instead
    (TensorRT-RTX's), offered as --compute-capability when the library covers some of them."""
    archs = library_cuda_archs(library)
    missing = list(targets) if archs is None else uncovered_targets(archs, targets)
    if not missing:
        return archs
    rebuild = f"`{_plugin_build_command(targets, tensorrt_major)}`"
    default = default_build_dir(tensorrt_major) / library_filename(tensorrt_major)
    if library.resolve() != default.resolve():
        rebuild += f" (it writes {default}: use that one)"
    if archs is None:
        raise PluginLibraryError(
            f"plugin library {library} ({origin}) carries no CUDA code (no {FATBIN_SECTION} section: not built by "
            f"`gldfn-trt plugin build`, or stripped of its device code), so it runs on none of the engine's targets "
            f"{', '.join(targets)}; rebuild it with {rebuild}"
        )
    which = "any" if missing == list(targets) else ", ".join(missing)
    covered = [target for target in choosable if not uncovered_targets(archs, [target])]
    if covered:
        fewer = f", or build the engine only for targets it runs on: --compute-capability {','.join(covered)}"
    elif choosable:
        fewer = f". It runs on none of the targets the engine can be built for ({', '.join(choosable)})"
    else:
        fewer = ""
    raise PluginLibraryError(
        f"plugin library {library} ({origin}) carries CUDA code for {format_archs(archs)}, which does not run on "
        f"{which} of the engine's targets {', '.join(targets)} (a cubin sm_XY runs on compute capability X.Y and "
        f"later minors of X, PTX compute_XY on X.Y and later). Rebuild the plugin for them with {rebuild}{fewer}"
    )


def resolve_plugin_library(
    path: str | os.PathLike[str] | None,
    targets: Sequence[str],
    *,
    tensorrt_major: int | None = None,
    choosable: Sequence[str] = (),
    build: bool = True,
    report: Callable[[str], None] | None = report_to_stderr,
) -> Path:
    """The plugin library for an engine that runs on GPUs ``targets`` (``SM86``...), found as
    :func:`find_plugin_library` finds it, and checked to carry code for every target (:func:`check_library_targets`).

    When no library was named (no ``path``, no $GLDFN_TRT_PLUGIN_LIBRARY) and the default build folder of
    ``tensorrt_major`` has none, it is built there first for ``targets`` when ``build`` is true and cmake, nvcc
    and that major's TensorRT headers are here (``report`` gets the progress lines); without them the error
    names what is missing and the command to run. A library that exists is never rebuilt, even when it lacks
    a target: engines built with it record its SHA-256."""
    major = tensorrt_major or installed_tensorrt_major() or DEFAULT_TENSORRT_MAJOR
    candidate, origin = locate_plugin_library(path, major)
    if build and not candidate.is_file() and path is None and not os.environ.get(LIBRARY_ENV):
        _build_on_first_need(candidate, origin, targets, major, report or (lambda line: None))
    library = find_plugin_library(path, major)
    check_library_targets(library, targets, origin=origin, tensorrt_major=major, choosable=choosable)
    return library


def _build_on_first_need(
    library: Path, origin: str, targets: Sequence[str], tensorrt_major: int, report: Callable[[str], None]
) -> None:
    missing = missing_build_tools(tensorrt_major)
    if missing:
        major = "" if tensorrt_major == DEFAULT_TENSORRT_MAJOR else f" --tensorrt-major {tensorrt_major}"
        raise PluginLibraryError(
            f"plugin library not found at {library} ({origin}), and it cannot be built here: missing "
            f"{'; '.join(missing)}. Install {'it' if len(missing) == 1 else 'them'}, then run `gldfn-trt plugin "
            f"build{major}`, or pass the path of a library built for TensorRT {tensorrt_major} with --plugin"
        )
    nvcc = find_nvcc()
    archs = cuda_architectures_for(targets, nvcc_gpu_codes(nvcc) if nvcc else None) if targets else None
    report(f"plugin library not found at {library}: building it for {', '.join(targets) or 'every SM nvcc knows'} "
           f"(CUDA architectures {archs or 'default'}; this takes a few minutes)")
    start = time.perf_counter()
    built = build_plugin_library(library.parent, cuda_architectures=archs, tensorrt_major=tensorrt_major,
                                 report=report)
    report(f"built {built} in {time.perf_counter() - start:.0f} s")
