"""The training batches: random HR crops and their degraded LR versions, drawn in order from a run's seeded
generators, optionally made one batch ahead in a background thread."""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gldfn_model.data.degradation import TrainingDegradation


class PatchSampler:
    """Random HR crops with random flips and 90-degree rotations, from a seeded NumPy generator."""

    def __init__(self, images: list[np.ndarray], crop: int, rng: np.random.Generator) -> None:
        self.images, self.crop, self.rng = images, crop, rng

    def sample(self, batch: int) -> Tensor:
        crops = []
        for _ in range(batch):
            image = self.images[self.rng.integers(len(self.images))]
            h, w = image.shape[:2]
            y, x = self.rng.integers(h - self.crop + 1), self.rng.integers(w - self.crop + 1)
            crop = image[y : y + self.crop, x : x + self.crop]
            if self.rng.random() < 0.5:
                crop = crop[:, ::-1]
            if self.rng.random() < 0.5:
                crop = crop[::-1]
            crop = np.rot90(crop, k=int(self.rng.integers(4)))
            crops.append(np.ascontiguousarray(crop))
        return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div_(255.0)


class TrainingBatches:
    """``count`` (HR, LR) batches, in the order the generators ``rng`` (crops, degradations) and ``noise`` (AWGN)
    draw them. With ``prefetch`` the next batch is made in a background thread while the caller trains on the
    current one, taking the crop sampling and degradation off the training step's critical path.

    :meth:`generator_state` is the generators' state as of the first batch not yet taken, however far ahead the
    thread is, so a checkpoint that saves it resumes exactly. Use as a context manager (it stops the thread)."""

    def __init__(self, sampler: PatchSampler, degradation: TrainingDegradation, batch: int, rng: np.random.Generator,
                 noise: torch.Generator, count: int, prefetch: bool = True) -> None:
        self.sampler, self.degradation, self.batch, self.rng, self.noise = sampler, degradation, batch, rng, noise
        self._remaining = count
        self._state = self._snapshot()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="gldfn-batches") if prefetch else None
        self._pending: Future[tuple[Tensor, Tensor, dict[str, Any]]] | None = None

    def _snapshot(self) -> dict[str, Any]:
        return {"numpy": self.rng.bit_generator.state, "torch_noise": self.noise.get_state()}

    def _make(self) -> tuple[Tensor, Tensor, dict[str, Any]]:
        hr = self.sampler.sample(self.batch)
        lr = self.degradation.degrade(hr, self.rng, self.noise)
        return hr, lr, self._snapshot()

    def next(self) -> tuple[Tensor, Tensor]:
        """The next (HR, LR) batch."""
        if self._remaining <= 0:
            raise RuntimeError("all the batches planned for this run were taken")
        self._remaining -= 1
        if self._executor is None:
            hr, lr, self._state = self._make()
            return hr, lr
        pending = self._pending or self._executor.submit(self._make)
        hr, lr, self._state = pending.result()
        self._pending = self._executor.submit(self._make) if self._remaining > 0 else None
        return hr, lr

    def generator_state(self) -> dict[str, Any]:
        return self._state

    def __enter__(self) -> TrainingBatches:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
