"""Spectral preprocessing as named, serialisable steps (numpy/scipy/pybaselines only)."""

from .baseline import SUPPORTED_BASELINES, Baseline
from .despike import Despike
from .pipeline import STEPS, BoundPipeline, Pipeline, step_from_dict
from .steps import NORMALIZE_METHODS, Crop, Normalize, Resample, Savgol, Step

__all__ = [
    "NORMALIZE_METHODS",
    "STEPS",
    "SUPPORTED_BASELINES",
    "Baseline",
    "Crop",
    "Despike",
    "Normalize",
    "BoundPipeline",
    "Pipeline",
    "Resample",
    "Savgol",
    "Step",
    "step_from_dict",
]
