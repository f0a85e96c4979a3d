"""``OnnxRuntimeRunner``: an exported GLDFN ONNX file (``gldfn-export``, ``gldfn-calibrate``) in ONNX Runtime,
as a :class:`~gldfn_model.inference.runner.Runner`. The only place the project creates an ONNX Runtime session."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from gldfn_model.common.optional import import_onnxruntime
from gldfn_model.common.threads import cpu_threads
from gldfn_model.inference.ort_custom_ops import custom_ops_libraries
from gldfn_model.inference.runner import RunnerError, Size, check_batch, gldfn_bytes_per_lr_pixel
from gldfn_model.network.config import NAMED_CONFIGS
from gldfn_model.ops import onnx_format

ort = import_onnxruntime()

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
}


def resolve_providers(providers: list[str] | tuple[str, ...] | str | None) -> list[str]:
    """Provider names for ONNX Runtime: aliases ``cpu``/``cuda`` accepted; CUDA falls back to the CPU for
    unsupported nodes. Asking for a provider this onnxruntime build lacks is an error, not a silent fallback."""
    if providers is None:
        providers = ["cpu"]
    if isinstance(providers, str):
        providers = [p for p in providers.split(",") if p]
    names = [PROVIDER_ALIASES.get(p.lower(), p) for p in providers]
    available = ort.get_available_providers()
    missing = [n for n in names if n not in available]
    if missing:
        hint = " (install onnxruntime-gpu: pip install 'gldfn-trt[gpu]')" if "CUDAExecutionProvider" in missing else ""
        raise RunnerError(f"ONNX Runtime provider(s) {missing} are not available here{hint}; available: {available}")
    if names and names[-1] != "CPUExecutionProvider":
        names.append("CPUExecutionProvider")
    return names


def session_options(
    threads: int | None = None, custom_ops: bool | None = None, providers: list[str] | None = None
) -> tuple[ort.SessionOptions, list[Path]]:
    """Options for a quiet session (errors only) on ``providers``, and the custom-op libraries registered in
    them (gldfn.inference.ort_custom_ops). ``custom_ops``: None registers those found (one ONNX Runtime refuses
    is skipped with a warning: the function bodies run instead); True requires one (RunnerError otherwise);
    False registers none, so the custom nodes run as their ONNX function bodies."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = cpu_threads(threads)
    # The memory pattern plans one block per input shape after the first run and keeps it beside the arena that
    # first run filled: the resident memory of a tiled photo doubled (349 -> 667 MiB for a 387 x 413 tiny x4 tile),
    # twice what the tiler budgets; without it the second run reuses the arena (352 MiB) at no measured speed cost.
    options.enable_mem_pattern = False
    registered = []
    for library in custom_ops_libraries(providers) if custom_ops is not False else []:
        try:
            options.register_custom_ops_library(str(library))
        except Exception as exc:  # ORT raises its own Fail type
            if custom_ops:
                raise RunnerError(f"ONNX Runtime cannot register the custom-op library {library}: {exc}") from exc
            warnings.warn(f"ONNX Runtime cannot register the custom-op library {library} ({exc}); the ONNX function "
                          "bodies run instead", RuntimeWarning, stacklevel=2)
            continue
        registered.append(library)
    if custom_ops and not registered:
        raise RunnerError("no ONNX Runtime custom-op library for these providers: build it with `gldfn-trt plugin "
                          "build-ort` (or set GLDFN_ORT_OPS_LIBRARY), or run the ONNX function bodies")
    return options, registered


def create_session(
    path: Path, providers: list[str], threads: int | None = None, custom_ops: bool | None = None
) -> tuple[ort.InferenceSession, list[Path]]:
    """A session on ``providers`` (see :func:`session_options`) and the custom-op libraries it registered;
    RunnerError when ONNX Runtime cannot load the file."""
    options, libraries = session_options(threads, custom_ops, providers)
    try:
        return ort.InferenceSession(str(path), options, providers=providers), libraries
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
        raise RunnerError(f"ONNX Runtime cannot load {path}: {exc}") from exc


class OnnxRuntimeRunner:
    """An exported GLDFN ONNX file in ONNX Runtime, CPU (default) or CUDA provider.

    The scale comes from the file's ``gldfn.scale`` metadata unless given. A file exported with a fixed batch
    runs any number of images in chunks of that batch, the last chunk filled up with copies of its last image.
    ``custom_ops`` chooses between the custom-op library's kernels and the ONNX function bodies
    (:func:`session_options`); ``custom_ops_libraries`` lists the libraries registered.
    """

    name = "onnxruntime"

    def __init__(
        self,
        path: str | os.PathLike[str],
        providers: list[str] | tuple[str, ...] | str | None = None,
        threads: int | None = None,
        scale: int | None = None,
        custom_ops: bool | None = None,
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise RunnerError(f"ONNX file {path} does not exist (export one with gldfn-export)")
        self.providers = resolve_providers(providers)
        self.session, self.custom_ops_libraries = create_session(path, self.providers, threads, custom_ops)
        self.path = path
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.scale = scale if scale is not None else self._scale_from_metadata()
        self.config_name = self.metadata.get(onnx_format.CONFIG)
        (model_input,) = self.session.get_inputs()
        self.input_name = model_input.name
        # A model with FP16 I/O gets its input cast; the runner's interface stays float32.
        self.input_dtype = {"tensor(float)": np.float32, "tensor(float16)": np.float16}.get(model_input.type)
        if self.input_dtype is None:
            raise RunnerError(f"{path}: input {model_input.name!r} is {model_input.type}; a float32 or float16 image "
                              "input is needed")
        config = NAMED_CONFIGS.get(self.config_name or "", NAMED_CONFIGS["paper"])
        self.bytes_per_lr_pixel = gldfn_bytes_per_lr_pixel(config.channels)
        shape = model_input.shape
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        fixed_hw = tuple(shape[2:]) if all(isinstance(d, int) for d in shape[2:]) else None
        self.min_size: Size | None = fixed_hw
        self.max_size: Size | None = fixed_hw

    def _scale_from_metadata(self) -> int:
        scale = onnx_format.scale_of(self.metadata)
        if scale is None:
            raise RunnerError(f"{self.path} carries no '{onnx_format.SCALE}' metadata; pass scale= explicitly")
        return scale

    def infer(self, lr: np.ndarray) -> np.ndarray:
        batch = check_batch(lr, "OnnxRuntimeRunner").astype(self.input_dtype, copy=False)
        count = batch.shape[0]
        step = self.fixed_batch or count
        outputs = []
        for start in range(0, count, step):
            chunk = batch[start : start + step]
            if len(chunk) < step:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], step - len(chunk), axis=0)])
            try:
                (output,) = self.session.run(None, {self.input_name: chunk})
            except Exception as exc:  # ORT raises its own types for shapes or nodes it cannot run
                shape = "x".join(map(str, chunk.shape))
                raise RunnerError(f"ONNX Runtime cannot run {self.path} on a {shape} batch: {exc}") from exc
            outputs.append(output[: count - start])
        output = outputs[0] if len(outputs) == 1 else np.concatenate(outputs)
        return output.astype(np.float32, copy=False)

    def synchronize(self) -> None:
        """``InferenceSession.run`` returns host arrays, so it has already waited for the device."""
