"""The names of the degradation settings and of the spatially varying noise levels, apart from the degradation
code (which loads torch) so that the command lines can list them without it."""
from __future__ import annotations

SETTINGS = ("gaussian8", "iso", "aniso", "sv")
RANDOM_SETTINGS = ("iso", "aniso", "sv")
TRAINING_SETTINGS = (*RANDOM_SETTINGS, "mixed")
SV_NOISE_RANGES_255 = {"low": (0.0, 5.0), "high": (5.0, 10.0)}
