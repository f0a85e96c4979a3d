"""FilterNorm (Zhou et al., DDF): standardize each generated filter over its k^2 taps, then scale it.

The statistics and the division always run in float32 and the epsilon is a normal float16 number, so a flat
region (all taps equal, std = 0) gives a zero filter instead of 0/0, in float16 as in float32.
"""
from __future__ import annotations

from torch import Tensor

# Smallest normal float16 is 6.1e-5: DDF's 1e-10 would underflow to 0 there.
FILTER_NORM_EPS = 1e-4


def filter_norm(filters: Tensor, dim: int, eps: float = FILTER_NORM_EPS) -> Tensor:
    """(f - mean) / (std + eps) over ``dim`` (population std), computed in float32, returned in f's dtype."""
    f32 = filters.float()
    mean = f32.mean(dim=dim, keepdim=True)
    centered = f32 - mean
    std = centered.square().mean(dim=dim, keepdim=True).sqrt()
    return (centered / (std + eps)).to(filters.dtype)
