"""The Python-backend models of the repository ``gldfn-trt triton`` writes; each version folder's ``model.py``
names one of them as ``TritonPythonModel``. They run inside Triton's Python stub, which provides
``triton_python_backend_utils``.

- :class:`OnnxRuntimeModel` (the cpu target's core model): an LR batch through the project's ONNX Runtime
  runner, one session per instance.
- :class:`TiledImageModel` (both targets' image model): a whole uint8 image, upscaled through the project's
  ``Upscaler`` and tiler on the server, each tile sent to the core model by BLS (Business Logic Scripting), up to
  ``gldfn.concurrent_tiles`` at once.

A request that fails gets an error response with the reason (the project's one-line messages), never a crash of
the stub.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gldfn_model.common.errors import GldfnError
from gldfn_model.common.threads import usable_cpus
from gldfn_model.inference.runner import RunnerError, check_batch, gldfn_bytes_per_lr_pixel
from gldfn_model.network.config import NAMED_CONFIGS
from gldfn_runtime.runners import triton_contract as contract


def _pb_utils() -> Any:
    import triton_python_backend_utils  # provided by the Python stub of the server

    return triton_python_backend_utils


def _model_config(args: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    config = json.loads(args["model_config"])
    return config, contract.json_parameters(config)


def _error_response(pb_utils: Any, error: Exception) -> Any:
    message = str(error) if isinstance(error, GldfnError) else f"unexpected {type(error).__name__}: {error}"
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message))


class OnnxRuntimeModel:
    """The exported ONNX file in ONNX Runtime: ``N x 3 x h x w`` float32 in, ``N x 3 x sh x sw`` float32 out."""

    def initialize(self, args: dict[str, str]) -> None:
        from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner

        config, parameters = _model_config(args)
        folder = Path(args["model_repository"]) / args["model_version"]
        instances = sum(int(group.get("count", 1)) for group in config.get("instance_group", [])) or 1
        threads = int(parameters.get(contract.THREADS) or max(1, usable_cpus() // instances))
        self.runner = OnnxRuntimeRunner(folder / parameters[contract.ONNX_FILE], threads=threads,
                                        scale=int(parameters[contract.SCALE]))
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]

    def execute(self, requests: list[Any]) -> list[Any]:
        pb_utils = _pb_utils()
        responses = []
        for request in requests:
            try:
                lr = pb_utils.get_input_tensor_by_name(request, self.input_name).as_numpy()
                sr = self.runner.infer(lr)
                responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(self.output_name, sr)]))
            except Exception as error:  # noqa: BLE001 - every failure becomes that request's error response
                responses.append(_error_response(pb_utils, error))
        return responses


class BlsRunner:
    """A Runner whose tiles go to another model of the same server by BLS."""

    name = "triton-bls"

    def __init__(self, parameters: dict[str, str]) -> None:
        self.model = parameters[contract.TILE_MODEL]
        self.input_name, self.output_name = parameters[contract.TILE_INPUT], parameters[contract.TILE_OUTPUT]
        self.dtype = contract.DATA_TYPES[parameters[contract.TILE_DTYPE]]
        self.scale = int(parameters[contract.SCALE])
        self.min_size = contract.parse_size(parameters.get(contract.MIN_SIZE))
        self.max_size = contract.parse_size(parameters.get(contract.MAX_SIZE))
        self.concurrent_tiles = int(parameters.get(contract.CONCURRENT_TILES) or 1)
        network = NAMED_CONFIGS.get(parameters.get(contract.CONFIG) or "", NAMED_CONFIGS["paper"])
        self.bytes_per_lr_pixel = gldfn_bytes_per_lr_pixel(network.channels)  # the tiles an in-process runner gets

    def infer(self, lr: np.ndarray) -> np.ndarray:
        pb_utils = _pb_utils()
        batch = check_batch(lr, self.name).astype(self.dtype, copy=False)
        request = pb_utils.InferenceRequest(
            model_name=self.model, requested_output_names=[self.output_name],
            inputs=[pb_utils.Tensor(self.input_name, batch)],
            preferred_memory=pb_utils.PreferredMemory(pb_utils.TRITONSERVER_MEMORY_CPU, 0))
        response = request.exec()
        if response.has_error():
            raise RunnerError(f"model {self.model}: {response.error().message()}")
        output = pb_utils.get_output_tensor_by_name(response, self.output_name).as_numpy()
        return output.astype(np.float32, copy=not output.flags.writeable)  # the tiler works in place

    def synchronize(self) -> None:
        """``exec`` returns finished outputs."""


class TiledImageModel:
    """A whole H x W (x 1|3|4) uint8 image in, the upscaled uint8 image out, tiled on the server."""

    def initialize(self, args: dict[str, str]) -> None:
        from gldfn_runtime.upscale.upscaler import Upscaler

        _, parameters = _model_config(args)
        tile = int(parameters[contract.TILE]) if parameters.get(contract.TILE) else None
        overlap = int(parameters[contract.OVERLAP])
        self.upscaler = Upscaler(BlsRunner(parameters), tile=tile, overlap=overlap)

    def execute(self, requests: list[Any]) -> list[Any]:
        pb_utils = _pb_utils()
        responses = []
        for request in requests:
            try:
                image = pb_utils.get_input_tensor_by_name(request, contract.IMAGE_INPUT).as_numpy()
                upscaled = self.upscaler.upscale(np.ascontiguousarray(image))
                responses.append(pb_utils.InferenceResponse(
                    output_tensors=[pb_utils.Tensor(contract.IMAGE_OUTPUT, upscaled)]))
            except Exception as error:  # noqa: BLE001 - every failure becomes that request's error response
                responses.append(_error_response(pb_utils, error))
        return responses
