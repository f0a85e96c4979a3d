"""``BicubicRunner``: MATLAB-style bicubic upscaling as a :class:`~gldfn_model.inference.runner.Runner`."""
from __future__ import annotations

import numpy as np

from gldfn_model.inference.runner import Size, check_batch


class BicubicRunner:
    """MATLAB-style bicubic upscaling (gldfn_model.data.imresize): the classic baseline, and a purely local
    function (each output pixel depends on a 4 x 4 LR neighbourhood), which makes tiling exact away from seams."""

    name = "bicubic"
    min_size: Size | None = None
    max_size: Size | None = None
    receptive_radius = 2  # LR pixels on each side that reach an output pixel
    bytes_per_lr_pixel = 1024  # two resize products of up to scale^2 x 3 float32 values per LR pixel

    def __init__(self, scale: int) -> None:
        self.scale = scale

    def infer(self, lr: np.ndarray) -> np.ndarray:
        import torch

        from gldfn_model.data.imresize import imresize_torch

        batch = check_batch(lr, "BicubicRunner")
        return imresize_torch(torch.from_numpy(batch), self.scale).numpy()

    def synchronize(self) -> None:
        """Synchronous on the CPU."""
