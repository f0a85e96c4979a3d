"""A runner that takes several tiles at once (``concurrent_tiles``, e.g. one sending tiles to a Triton server) gets
them from a thread pool, never more at a time than it asked for, and the result is the one of tile after tile."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from gldfn_model.inference.bicubic_runner import BicubicRunner
from gldfn_runtime.upscale.tiling import upscale_tiled
from gldfn_runtime.upscale.upscaler import Upscaler


class CountingRunner(BicubicRunner):
    """Bicubic, holding each call a moment, and counting the calls in flight at once."""

    def __init__(self, scale: int, concurrent: int) -> None:
        super().__init__(scale)
        self.concurrent_tiles = concurrent
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = self.calls = 0

    def infer(self, lr: np.ndarray) -> np.ndarray:
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(0.02)
            return super().infer(lr)
        finally:
            with self.lock:
                self.in_flight -= 1


@pytest.mark.parametrize("shape", [(1, 3, 70, 50), (1, 3, 50, 70)])  # row bands, and column bands (transposed)
def test_tiles_in_flight_give_the_sequential_result(shape):
    lr = np.random.default_rng(0).random(shape, dtype=np.float32)
    sequential = upscale_tiled(CountingRunner(2, 1), lr, tile=24, overlap=8)
    runner = CountingRunner(2, 3)
    concurrent = upscale_tiled(runner, lr, tile=24, overlap=8)
    assert runner.calls == 12
    assert runner.most_in_flight == 3
    np.testing.assert_array_equal(concurrent, sequential)


def test_gray_and_rgba_images_keep_the_runners_concurrency():
    image = (np.random.default_rng(1).random((40, 40, 4)) * 255).astype(np.uint8)
    runner = CountingRunner(2, 2)
    tiled = Upscaler(runner, tile=16, overlap=4).upscale(image)
    assert runner.most_in_flight == 2
    np.testing.assert_array_equal(tiled, Upscaler(CountingRunner(2, 1), tile=16, overlap=4).upscale(image))
