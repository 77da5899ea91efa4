"""Model architecture as plain, serialisable config, with named presets (timm-style)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..errors import PaceEdgeError


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a PACE network, apart from its weights."""

    num_classes: int
    dim: int = 1024
    depth: int = 4
    kernel: int = 9
    patch: int = 16
    pool_dim: int = 256
    dropout: float = 0.0

    def validate(self) -> None:
        if self.num_classes < 2:
            raise PaceEdgeError(f"a classifier needs at least 2 classes, got {self.num_classes}")
        for name in ("dim", "depth", "kernel", "patch", "pool_dim"):
            if getattr(self, name) < 1:
                raise PaceEdgeError(f"model {name} must be positive, got {getattr(self, name)}")
        if self.pool_dim % self.patch:
            raise PaceEdgeError(
                f"pool_dim ({self.pool_dim}) must be a multiple of patch ({self.patch})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise PaceEdgeError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise PaceEdgeError(f"unknown model config keys: {', '.join(sorted(unknown))}")
        return cls(**data)


# Presets: architecture only; the number of classes comes from the data.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"dim": 1024, "depth": 4, "kernel": 9, "patch": 16, "pool_dim": 256},
    "medium": {"dim": 256, "depth": 4, "kernel": 9, "patch": 16, "pool_dim": 256},
    "small": {"dim": 128, "depth": 4, "kernel": 9, "patch": 16, "pool_dim": 256},
    "tiny": {"dim": 32, "depth": 2, "kernel": 9, "patch": 16, "pool_dim": 256},
}


def preset(name: str, num_classes: int, **overrides: Any) -> ModelConfig:
    """The config of preset ``name`` for ``num_classes`` classes, with optional overrides."""
    if name not in PRESETS:
        raise PaceEdgeError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    config = replace(ModelConfig(num_classes=num_classes, **PRESETS[name]), **overrides)
    config.validate()
    return config
