"""The PACE model: architecture config and presets (torch-free), network and exact pooling.

``ModelConfig``/``preset`` import without torch, so device-side code can read a bundle's
architecture; the network classes load torch on first use.
"""

from __future__ import annotations

from typing import Any

from .config import PRESETS, ModelConfig, preset

__all__ = [
    "PACE",
    "PRESETS",
    "AdaptivePool1d",
    "MixerBlock",
    "ModelConfig",
    "build_model",
    "pool_matrix",
    "pool_windows",
    "preset",
]

_LAZY = {
    "PACE": "pace",
    "MixerBlock": "pace",
    "build_model": "pace",
    "AdaptivePool1d": "pooling",
    "pool_matrix": "pooling",
    "pool_windows": "pooling",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(name)
