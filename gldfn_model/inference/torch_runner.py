"""``TorchRunner``: a GLDFN PyTorch model as a :class:`~gldfn_model.inference.runner.Runner`."""
from __future__ import annotations

import numpy as np
import torch

from gldfn_model.common.threads import set_torch_threads
from gldfn_model.inference.runner import RunnerError, Size, check_batch, gldfn_bytes_per_lr_pixel
from gldfn_model.network.gldfn import GLDFN


class TorchRunner:
    """A GLDFN model (or any network whose ``config`` has a ``scale``, such as the Table IV peers) in eval mode on
    ``device`` (default: where its weights are), in its weights' dtype. ``threads``: PyTorch's intra-op threads
    (process-wide; default: never more than the CPUs this process may use, gldfn_model.common.threads)."""

    name = "torch"
    min_size: Size | None = None
    max_size: Size | None = None

    def __init__(self, model: GLDFN | torch.nn.Module, device: str | torch.device | None = None, threads: int | None = None) -> None:
        parameter = next(model.parameters())
        self.device = torch.device(device) if device is not None else parameter.device
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RunnerError("device 'cuda' was asked for, but this PyTorch build sees no CUDA GPU; use device 'cpu'")
        set_torch_threads(threads)
        self.model = model.eval().to(self.device)
        self.dtype = parameter.dtype
        self.config = model.config
        self.scale = model.config.scale
        # The peers' configs have no GLDFN width; the paper config's figure bounds them for tiling.
        self.bytes_per_lr_pixel = gldfn_bytes_per_lr_pixel(getattr(model.config, "channels", 64))

    def infer(self, lr: np.ndarray) -> np.ndarray:
        batch = check_batch(lr, "TorchRunner")
        with torch.inference_mode():
            output = self.model(torch.from_numpy(batch).to(self.device, self.dtype))
        return output.float().cpu().numpy()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
