"""The calibration methods offered (kept free of heavy imports so that ``gldfn-calibrate --help`` is quick)."""
from __future__ import annotations

from enum import Enum


class Method(str, Enum):
    """How each activation's range is chosen from the calibration data: ``minmax`` takes the extremes,
    ``percentile`` the 99.999th percentile of |x|, ``entropy`` the threshold whose 128-level histogram keeps
    the KL divergence to the 2048-bin original smallest (TensorRT's calibrator)."""

    entropy = "entropy"
    minmax = "minmax"
    percentile = "percentile"
