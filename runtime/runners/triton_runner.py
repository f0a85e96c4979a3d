"""``TritonRunner``: a GLDFN model served by Triton Inference Server (a repository from ``gldfn-trt triton``) as a
:class:`~gldfn_model.inference.runner.Runner`, so the ``Upscaler`` and its tiler work with it as with any backend.

The scale, the LR sizes it accepts and the network's config come from the model's configuration (its ``gldfn.*``
parameters, ``triton_contract``). Tiles go out concurrently (``concurrent_tiles``: the model's instances plus one,
so the server never waits while this side blends), each thread with its own client. ``URL`` is ``HOST:PORT``
(HTTP) or ``grpc://HOST:PORT``; ``http://`` is accepted too.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

from gldfn_model.common.optional import import_optional
from gldfn_model.inference.runner import RunnerError, Size, check_batch, gldfn_bytes_per_lr_pixel
from gldfn_model.network.config import NAMED_CONFIGS
from gldfn_runtime.runners import triton_contract as contract

DEFAULT_MODEL = "gldfn"
DEFAULT_TIMEOUT = 600.0  # seconds for one tile: a large tile on a busy CPU server takes a while


def parse_url(url: str) -> tuple[str, str]:
    """(protocol, HOST:PORT) of ``HOST:PORT``, ``http://HOST:PORT`` or ``grpc://HOST:PORT``; RunnerError otherwise."""
    protocol, _, address = url.rpartition("://")
    protocol = protocol.lower() or "http"
    host, _, port = address.rstrip("/").rpartition(":")
    if protocol not in ("http", "grpc") or not host or not port.isdigit():
        raise RunnerError(f"--triton {url!r}: expected HOST:PORT (HTTP) or grpc://HOST:PORT, e.g. 127.0.0.1:8000")
    return protocol, f"{host}:{port}"


class TritonRunner:
    """The core model (LR batch in, SR batch out) of a Triton repository written by ``gldfn-trt triton``."""

    name = "triton"

    def __init__(self, url: str, model: str = DEFAULT_MODEL, *, timeout: float = DEFAULT_TIMEOUT,
                 concurrent_tiles: int | None = None) -> None:
        self._tritonclient = import_optional("tritonclient", "upscaling through a Triton server", contract.SERVE_EXTRA)
        self.protocol, self.address = parse_url(url)
        self.url, self.model, self.timeout = url, model, timeout
        self._local = threading.local()
        config = self._read_config()
        parameters = contract.json_parameters(config)
        if contract.SCALE not in parameters or len(config.get("input", [])) != 1 or len(config.get("output", [])) != 1:
            raise RunnerError(f"model {model!r} on Triton at {url} is not a GLDFN model written by gldfn-trt triton "
                              f"(one input, one output, a {contract.SCALE} parameter)")
        (model_input,), (model_output,) = config["input"], config["output"]
        data_type = model_input.get("data_type", "TYPE_FP32")
        if data_type not in ("TYPE_FP32", "TYPE_FP16"):
            raise RunnerError(f"model {model!r} on Triton at {url} takes {data_type}; a float32 or float16 batch is needed")
        self.input_name, self.output_name = model_input["name"], model_output["name"]
        self.input_dtype, self.wire_type = contract.DATA_TYPES[data_type], data_type.removeprefix("TYPE_")
        self.scale = int(parameters[contract.SCALE])
        self.min_size: Size | None = contract.parse_size(parameters.get(contract.MIN_SIZE))
        self.max_size: Size | None = contract.parse_size(parameters.get(contract.MAX_SIZE))
        self.config_name = parameters.get(contract.CONFIG)
        network = NAMED_CONFIGS.get(self.config_name or "", NAMED_CONFIGS["paper"])
        self.bytes_per_lr_pixel = gldfn_bytes_per_lr_pixel(network.channels)  # as in-process runners: same tiles
        instances = sum(int(group.get("count", 1)) for group in config.get("instance_group", [])) or 1
        self.concurrent_tiles = concurrent_tiles or instances + 1

    def _client(self) -> Any:
        """This thread's client (the HTTP client is not thread-safe)."""
        client = getattr(self._local, "client", None)
        if client is None:
            if self.protocol == "grpc":
                module = import_optional("tritonclient.grpc", "upscaling through a Triton server", contract.SERVE_EXTRA)
                client = module.InferenceServerClient(self.address)
            else:
                module = import_optional("tritonclient.http", "upscaling through a Triton server", contract.SERVE_EXTRA)
                client = module.InferenceServerClient(self.address, connection_timeout=self.timeout,
                                                      network_timeout=self.timeout)
            self._local.client, self._local.module = client, module
        return client

    def _failure(self, error: Exception, doing: str) -> RunnerError:
        exception_type = self._tritonclient.utils.InferenceServerException
        if isinstance(error, exception_type):
            return RunnerError(f"Triton at {self.url}, model {self.model!r}: {error.message()}")
        return RunnerError(f"cannot {doing} Triton at {self.url} ({type(error).__name__}: {error}); is the server "
                           "running? (gldfn-trt serve REPO)")

    def _read_config(self) -> dict[str, Any]:
        import_optional("tritonclient.utils", "upscaling through a Triton server", contract.SERVE_EXTRA)
        try:
            client = self._client()
            if not client.is_model_ready(self.model):
                raise RunnerError(f"model {self.model!r} is not ready on Triton at {self.url}; the server's models: "
                                  f"{self._model_names(client)}")
            if self.protocol == "grpc":
                return client.get_model_config(self.model, as_json=True)["config"]
            return client.get_model_config(self.model)
        except RunnerError:
            raise
        except Exception as error:  # noqa: BLE001 - connection and server errors of either protocol
            raise self._failure(error, "reach") from None

    def _model_names(self, client: Any) -> str:
        try:
            index = client.get_model_repository_index(as_json=True) if self.protocol == "grpc" else client.get_model_repository_index()
            models = index.get("models", []) if isinstance(index, dict) else index
            return ", ".join(sorted(m.get("name", "?") for m in models)) or "none"
        except Exception:  # noqa: BLE001 - only for the message
            return "unknown"

    def infer(self, lr: np.ndarray) -> np.ndarray:
        batch = check_batch(lr, "TritonRunner").astype(self.input_dtype, copy=False)
        try:
            client, module = self._client(), self._local.module
            tensor = module.InferInput(self.input_name, list(batch.shape), self.wire_type)
            tensor.set_data_from_numpy(batch)
            result = client.infer(self.model, [tensor], outputs=[module.InferRequestedOutput(self.output_name)])
            output = result.as_numpy(self.output_name)
        except Exception as error:  # noqa: BLE001 - connection and server errors of either protocol
            raise self._failure(error, "run a tile on") from None
        if output is None:
            raise RunnerError(f"Triton at {self.url}, model {self.model!r}: the response holds no {self.output_name!r}")
        # The client's arrays view its receive buffer, read-only; the tiler works in place on what it gets.
        return output.astype(np.float32, copy=not output.flags.writeable)

    def synchronize(self) -> None:
        """``infer`` returns finished outputs."""
